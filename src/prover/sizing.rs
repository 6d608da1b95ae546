//! How a prover process splits its machine: how many proofs it computes at
//! once (`prover.workers`) and how many threads its proving thread pool has
//! (`prover.threads`), when the configuration leaves them unset.
//!
//! bellman runs the parallel parts of a proof (FFTs, multi-exponentiations)
//! on one process-wide rayon pool, which every concurrent proof of the
//! process shares; circuit synthesis and parts of the prover are serial.
//! So one proof at a time leaves cores idle during its serial parts, and
//! several proofs at once on one pool of all cores fill them without
//! oversubscribing the machine, with the proving parameters loaded once.
//! `docs/BENCHMARKS.md` ("Prover scaling") has the measurements behind the
//! rule in [`auto`].

use crate::circuit::Shape;

/// Share of a proof's single-thread time that does not run in parallel:
/// 0.12–0.13 measured on 2 cores for (2,4) and (8,16) (docs/BENCHMARKS.md,
/// "Prover scaling"), rounded up because parallel sections lose efficiency
/// as threads grow, which 2 cores do not show.
pub const SERIAL_FRACTION: f64 = 0.15;

/// Peak memory of one proof per constraint, from the proving benchmark's
/// peak RSS (381 MiB at 206k constraints, 775 MiB at 469k), rounded up.
pub const BYTES_PER_CONSTRAINT: u64 = 2_048;

/// Memory a prover may fill with concurrent proofs: the rest is left to the
/// parameters, the operating system and whatever else runs.
const MEMORY_SHARE: f64 = 0.5;

/// A resolved split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Proofs computed at once (the proving pool's workers and worker slots).
    pub workers: usize,
    /// Threads of the process-wide proving thread pool.
    pub threads: usize,
}

/// What the machine offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub cores: usize,
    /// Total memory in bytes, when known.
    pub memory: Option<u64>,
}

impl Machine {
    /// This machine: cores from the scheduler's view (cgroup limits
    /// included), memory from `/proc/meminfo`.
    pub fn current() -> Machine {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        });
        Machine { cores, memory }
    }
}

/// The split for `machine` when proving circuits of up to `max_constraints`
/// constraints, with what the configuration fixes (`workers`, `threads`)
/// taken as given.
///
/// * threads: every core, in one pool: more would only oversubscribe, and
///   the pool is shared by all of the process's proofs;
/// * workers: enough concurrent proofs that the serial parts of some keep
///   the cores the others' parallel parts leave idle: `⌈s·cores⌉ + 1` with
///   the serial fraction `s`, at most one per thread, and no more than half
///   of the memory holds at the proofs' peak.
pub fn auto(machine: Machine, max_constraints: usize, workers: Option<usize>, threads: Option<usize>) -> Sizing {
    let cores = machine.cores.max(1);
    let threads = threads.unwrap_or(cores).max(1);
    let workers = workers.unwrap_or_else(|| {
        let cover = (SERIAL_FRACTION * threads as f64).ceil() as usize + 1;
        let by_memory = machine.memory.map_or(usize::MAX, |m| {
            let per_proof = (max_constraints as u64).saturating_mul(BYTES_PER_CONSTRAINT).max(1);
            ((m as f64 * MEMORY_SHARE) as u64 / per_proof) as usize
        });
        cover.min(threads).min(by_memory).max(1)
    });
    Sizing { workers: workers.max(1), threads }
}

/// The largest constraint count among `shapes` (for the memory bound).
pub fn max_constraints(shapes: &[Shape]) -> Result<usize, bellman::SynthesisError> {
    let mut max = 0;
    for &shape in shapes {
        max = max.max(crate::circuit::batch_circuit::ConstraintCount::of(shape)?.constraints);
    }
    Ok(max)
}

/// Sizes the process-wide pool that bellman's parallel sections run on.
/// Call once, before the first proof: the pool cannot be resized later.
pub fn init_thread_pool(threads: usize) -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).thread_name(|i| format!("zkpow-par-{i}")).build_global()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    /// Constraints of the test shape (2,4) and of (16,20) in the current
    /// circuit version (docs/BENCHMARKS.md, "Circuit size").
    const SMALL: usize = 29_919;
    const LARGE: usize = 295_357;

    #[test]
    fn one_pool_of_all_cores_and_enough_proofs_to_cover_the_serial_parts() {
        let m = |cores| Machine { cores, memory: Some(24 * GIB) };
        assert_eq!(auto(m(1), SMALL, None, None), Sizing { workers: 1, threads: 1 });
        assert_eq!(auto(m(2), SMALL, None, None), Sizing { workers: 2, threads: 2 });
        assert_eq!(auto(m(8), SMALL, None, None), Sizing { workers: 3, threads: 8 });
        assert_eq!(auto(m(64), SMALL, None, None), Sizing { workers: 11, threads: 64 });
    }

    #[test]
    fn memory_bounds_the_concurrent_proofs() {
        // (16,20) needs about 0.56 GiB per proof: 8 GiB hold 7 at half use.
        let small_box = Machine { cores: 64, memory: Some(8 * GIB) };
        assert_eq!(auto(small_box, LARGE, None, None).workers, 7);
        let tiny = Machine { cores: 64, memory: Some(GIB / 4) };
        assert_eq!(auto(tiny, LARGE, None, None).workers, 1, "never below one");
        let unknown = Machine { cores: 64, memory: None };
        assert_eq!(auto(unknown, LARGE, None, None).workers, 11);
    }

    #[test]
    fn configured_values_win() {
        let m = Machine { cores: 64, memory: Some(256 * GIB) };
        assert_eq!(auto(m, SMALL, Some(3), None), Sizing { workers: 3, threads: 64 });
        // Fewer threads: fewer proofs are needed to cover them.
        assert_eq!(auto(m, SMALL, None, Some(4)), Sizing { workers: 2, threads: 4 });
        assert_eq!(auto(m, SMALL, Some(0), Some(0)), Sizing { workers: 1, threads: 1 });
    }

    #[test]
    fn constraint_counts_of_shapes() {
        assert_eq!(max_constraints(&[]).unwrap(), 0);
        assert_eq!(max_constraints(&[Shape::TEST]).unwrap(), SMALL);
    }
}

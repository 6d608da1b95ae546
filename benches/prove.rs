//! Proving benchmarks, in three parts (`ZKPOW_BENCH_PARTS`, a
//! `;`-separated subset of `versions;compare;scaling`, all by default).
//!
//! `versions`: the circuit versions side by side (version 1: binary tree,
//! width-3 Poseidon; version 2: 4-ary tree, width-5 Poseidon; version 3,
//! this build's: the 4-ary tree hashed with Anemoi), per shape: exact
//! constraints per transfer from `ConstraintCount`, and raw bellman proving
//! time of the same transfers in each version, the order rotated from run to
//! run in one process so machine noise hits all alike. Which versions:
//! `ZKPOW_BENCH_VERSIONS` (default `1;2;3`, the first is the baseline).
//! Older versions' parameters are cached in `v1/`, `v2/` below the test
//! parameter directory.
//!
//! `compare`: the zkpow backend (`ProverBackend::prove` / `verify`, which
//! add public-input derivation, EIP-2537 encoding and the prover's
//! self-check) against the raw bellman calls on the same circuit, alternated
//! likewise. Reports medians, their ratio, and peak memory per phase.
//!
//! Shapes of both: `ZKPOW_BENCH_SHAPES="4,8;8,16;16,20"` (the default), runs
//! per shape: `ZKPOW_BENCH_RUNS` (default 5).
//!
//! Then prover scaling: proofs per minute of the machine for each way to
//! split it between prover processes, proofs at once and proving threads
//! (one process with one proof on all cores, one process with one proof
//! per core sharing one pool of all cores, one single-threaded process per
//! core). Every configuration runs in child processes of this binary, since
//! the proving thread pool is sized once per process. Shapes:
//! `ZKPOW_BENCH_SCALING_SHAPES="2,4;8,16"` (the default), proofs per
//! configuration and shape `ZKPOW_BENCH_SCALING_PROOFS="24;4"`, rounds
//! `ZKPOW_BENCH_SCALING_ROUNDS="3;1"`.
//!
//! Without `--bench` (as `cargo test --benches` runs it) only the test
//! shape, once, and one proof per process of each split: a check that
//! everything starts and completes (and that every proof verifies).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use zkpow::circuit::batch::encode;
use zkpow::circuit::batch_circuit::ConstraintCount;
use zkpow::circuit::encoding::proof_to_bytes;
use zkpow::circuit::executor::apply_batch;
use zkpow::circuit::keys::{cached_test_keys, test_params_dir, Keys};
use zkpow::circuit::public::domain;
use zkpow::circuit::sample::{genesis_accounts, random_transfers};
use zkpow::circuit::{BatchCircuit, BatchWitness, Shape, StateTree, Transfer, Version};
use zkpow::prover::{Groth16Backend, ProverBackend};
use zkpow::wire::proof::ProofRequest;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Resets the kernel's peak-RSS counter (Linux: write 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A list knob: `;`-separated values from the environment, or the default.
fn env_list<T: std::str::FromStr>(var: &str, default: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(';')
        // An empty list skips the part (e.g. ZKPOW_BENCH_SHAPES="" for scaling only).
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<T>().map_err(|e| anyhow::anyhow!("{var}: {s:?}: {e}")))
        .collect()
}

/// Random transfers among 64 funded accounts of the benchmark's genesis.
fn sample_transfers(shape: Shape, rng: &mut rand::rngs::ChaCha20Rng) -> Vec<Transfer> {
    let state = StateTree::with_accounts(shape.d, genesis_accounts(shape, 64, 1_000_000));
    random_transfers(rng, shape, &state, 64, 0.2)
}

/// The witness of `transfers` over the benchmark's genesis in the tree of
/// `version`.
fn sample_witness(shape: Shape, version: Version, transfers: &[Transfer]) -> anyhow::Result<BatchWitness> {
    let mut state = StateTree::of_version_with_accounts(version, shape.d, genesis_accounts(shape, 64, 1_000_000));
    Ok(apply_batch(&mut state, shape, &encode(shape, transfers)?)?.0)
}

/// One batch of `shape` with random transfers, ready to prove.
fn sample_request(shape: Shape, rng: &mut rand::rngs::ChaCha20Rng) -> anyhow::Result<ProofRequest> {
    let witness = sample_witness(shape, Version::CURRENT, &sample_transfers(shape, rng))?;
    Ok(ProofRequest { witness, domain: domain(1, &[1; 20]), batch_num: 1, miner: [2; 20] })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--scaling-child") {
        return scaling_child(&args[2..]);
    }
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing.
    let smoke = !args.iter().any(|a| a == "--bench");
    let (shapes, runs): (Vec<Shape>, usize) = if smoke {
        (vec![Shape::TEST], 1)
    } else {
        let runs = std::env::var("ZKPOW_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
        (env_list("ZKPOW_BENCH_SHAPES", "4,8;8,16;16,20")?, runs)
    };
    let parts: Vec<String> = env_list("ZKPOW_BENCH_PARTS", "versions;compare;scaling")?;
    for part in &parts {
        anyhow::ensure!(["versions", "compare", "scaling"].contains(&part.as_str()), "ZKPOW_BENCH_PARTS: {part:?}");
    }
    let part = |name: &str| parts.iter().any(|p| p == name);
    print_machine(runs);
    if part("versions") {
        versions(&shapes, runs)?;
    }
    if part("compare") {
        compare(&shapes, runs)?;
    }
    if !part("scaling") {
        return Ok(());
    }
    if smoke {
        scaling(&[Shape::TEST], &[1], &[1], true)?;
        println!(
            "smoke run: the version comparison, the proving comparison and every scaling split started and completed"
        );
    } else {
        let shapes: Vec<Shape> = env_list("ZKPOW_BENCH_SCALING_SHAPES", "2,4;8,16")?;
        let proofs: Vec<usize> = env_list("ZKPOW_BENCH_SCALING_PROOFS", "24;4")?;
        let rounds: Vec<usize> = env_list("ZKPOW_BENCH_SCALING_ROUNDS", "3;1")?;
        scaling(&shapes, &proofs, &rounds, false)?;
    }
    Ok(())
}

fn print_machine(runs: usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("machine: {} cores, {cpu}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("runs per shape: {runs} (medians)\n");
}

/// The circuit versions side by side: constraints and proving time, each
/// against the first version listed.
fn versions(shapes: &[Shape], runs: usize) -> anyhow::Result<()> {
    let numbers: Vec<u32> = env_list("ZKPOW_BENCH_VERSIONS", "1;2;3")?;
    let versions = numbers
        .iter()
        .map(|n| {
            Version::from_number(*n).ok_or_else(|| anyhow::anyhow!("ZKPOW_BENCH_VERSIONS: no circuit version {n}"))
        })
        .collect::<anyhow::Result<Vec<Version>>>()?;
    anyhow::ensure!(!versions.is_empty(), "ZKPOW_BENCH_VERSIONS: no version");
    let names: Vec<String> = versions.iter().map(|v| format!("v{}", v.number())).collect();
    let base = &names[0];
    println!(
        "Circuit versions {} (v1: binary tree, width-3 Poseidon; v2: 4-ary tree, width-5 Poseidon; v3: 4-ary tree, Anemoi Jive; this build proves v{})\n",
        names.join(", "),
        Version::CURRENT.number()
    );
    let mut header = String::from("| shape (K,D) |");
    let mut rule = String::from("|---|");
    for (i, name) in names.iter().enumerate() {
        header += &format!(" {name} per transfer |");
        rule += "---|";
        if i > 0 {
            header += &format!(" {name} vs {base} |");
            rule += "---|";
        }
    }
    for name in &names {
        header += &format!(" keys s {name} |");
        rule += "---|";
    }
    for (i, name) in names.iter().enumerate() {
        header += &format!(" prove {name} ms |");
        rule += "---|";
        if i > 0 {
            header += &format!(" time {name}/{base} |");
            rule += "---|";
        }
    }
    println!("{header}\n{rule}");
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(3);
    for &shape in shapes {
        let mut counts = Vec::new();
        let mut keys = Vec::new();
        let mut key_secs = Vec::new();
        for &version in &versions {
            counts.push(ConstraintCount::of_version(shape, version)?);
            let started = Instant::now();
            keys.push(if version == Version::CURRENT {
                cached_test_keys(shape)?
            } else {
                let dir = test_params_dir().join(format!("v{}", version.number()));
                Keys::load_or_setup_version(&dir, shape, version, &mut rand::rng())?
            });
            key_secs.push(started.elapsed().as_secs_f64());
        }

        // The same transfers in every tree; the public inputs differ only in
        // the roots.
        let transfers = sample_transfers(shape, &mut rng);
        let mut jobs = Vec::new();
        for &version in &versions {
            let witness = sample_witness(shape, version, &transfers)?;
            let req = ProofRequest { witness, domain: domain(1, &[1; 20]), batch_num: 1, miner: [2; 20] };
            let public = req.public_inputs();
            jobs.push((version, req.witness, public));
        }

        let n = versions.len();
        let mut times = vec![Vec::new(); n];
        for run in 0..runs {
            // Rotate which goes first so warm caches and frequency drift
            // favour none of them.
            for k in 0..n {
                let side = (run + k) % n;
                let (version, witness, public) = &jobs[side];
                let circuit =
                    BatchCircuit { shape, version: *version, witness: Some(witness.clone()), public: Some(*public) };
                let t = Instant::now();
                let proof = groth16::create_random_proof(circuit, &keys[side].params, &mut rand::rng())?;
                times[side].push(t.elapsed());
                groth16::verify_proof(&keys[side].pvk, &proof, &public.to_vec())
                    .map_err(|e| anyhow::anyhow!("{shape} v{}: the proof does not verify: {e:?}", version.number()))?;
            }
        }
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        // Integer division, as the constraint tables in docs/BENCHMARKS.md.
        let per: Vec<usize> = counts.iter().map(|c| c.constraints / shape.k).collect();
        let mut row = format!("| {},{} |", shape.k, shape.d);
        for i in 0..n {
            row += &format!(" {} |", per[i]);
            if i > 0 {
                row += &format!(" {:+.1}% |", (per[i] as f64 / per[0] as f64 - 1.0) * 100.0);
            }
        }
        for s in &key_secs {
            row += &format!(" {s:.1} |");
        }
        for i in 0..n {
            row += &format!(" {:.0} |", ms(medians[i]));
            if i > 0 {
                row += &format!(" {:.3} |", medians[i].as_secs_f64() / medians[0].as_secs_f64());
            }
        }
        println!("{row}");
    }
    println!();
    Ok(())
}

fn compare(shapes: &[Shape], runs: usize) -> anyhow::Result<()> {
    println!("Backend overhead: zkpow's ProverBackend against raw bellman, circuit v{}\n", Version::CURRENT.number());
    println!("| shape (K,D) | constraints | per transfer | keys s (setup or load) | prove zkpow ms | prove bellman ms | ratio | verify zkpow ms | verify bellman ms | ratio | peak prove MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(1);
    for &shape in shapes {
        let count = ConstraintCount::of(shape)?;
        let started = Instant::now();
        let keys = cached_test_keys(shape)?;
        let setup_s = started.elapsed().as_secs_f64();
        let params = keys.params.clone();
        let pvk = groth16::prepare_verifying_key(&params.vk);
        let backend = Groth16Backend::new([keys]);

        let req = sample_request(shape, &mut rng)?;
        let public = req.public_inputs();

        reset_peak();
        let mut ours = Vec::new();
        let mut raw = Vec::new();
        let mut out = None;
        for run in 0..runs {
            // Alternate which goes first so warm caches and frequency drift
            // favour neither side.
            for side in [run % 2, 1 - run % 2] {
                let t = Instant::now();
                if side == 0 {
                    out = Some(backend.prove(&req)?);
                    ours.push(t.elapsed());
                } else {
                    let circuit = BatchCircuit::new(shape, Some(req.witness.clone()), Some(public));
                    let proof = groth16::create_random_proof(circuit, &params, &mut rand::rng())?;
                    std::hint::black_box(proof_to_bytes(&proof));
                    raw.push(t.elapsed());
                }
            }
        }
        let peak = peak_mib();
        let out = out.expect("at least one run");
        let raw_proof = zkpow::circuit::encoding::proof_from_bytes(&out.proof)?;
        let inputs = public.to_vec();
        let mut v_ours = Vec::new();
        let mut v_raw = Vec::new();
        for _ in 0..(runs * 10) {
            let t = Instant::now();
            backend.verify(shape, &out.proof, &out.public)?;
            v_ours.push(t.elapsed());
            let t = Instant::now();
            groth16::verify_proof(&pvk, &raw_proof, &inputs).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            v_raw.push(t.elapsed());
        }
        let (po, pr, vo, vr) = (median(ours), median(raw), median(v_ours), median(v_raw));
        println!(
            "| {},{} | {} | {} | {:.1} | {:.0} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} | {:.0} |",
            shape.k,
            shape.d,
            count.constraints,
            count.constraints / shape.k,
            setup_s,
            ms(po),
            ms(pr),
            po.as_secs_f64() / pr.as_secs_f64(),
            ms(vo),
            ms(vr),
            vo.as_secs_f64() / vr.as_secs_f64(),
            peak
        );
    }
    Ok(())
}

/// One way to split the machine: `procs` prover processes, each computing
/// `workers` proofs at once on a proving pool of `threads` threads.
#[derive(Debug, Clone, Copy)]
struct Split {
    procs: usize,
    workers: usize,
    threads: usize,
    name: &'static str,
}

fn splits(cores: usize) -> Vec<Split> {
    vec![
        Split { procs: 1, workers: 1, threads: cores, name: "one process, one proof on all cores" },
        Split { procs: 1, workers: cores, threads: cores, name: "one process, a proof per core, one shared pool" },
        Split { procs: cores, workers: 1, threads: 1, name: "a single-threaded process per core" },
    ]
}

/// What one child process reports.
struct ChildRun {
    secs: f64,
    mean_latency: f64,
    peak_mib: f64,
}

/// Runs `proofs` proofs of `shape` split as `split`; returns (proofs per
/// minute of the whole machine, mean seconds per proof, summed peak RSS).
fn run_split(shape: Shape, split: Split, proofs: usize) -> anyhow::Result<(f64, f64, f64)> {
    let exe = std::env::current_exe()?;
    let per_proc = proofs.div_ceil(split.procs).max(1);
    let mut children = Vec::new();
    for _ in 0..split.procs {
        let child = Command::new(&exe)
            .args(["--scaling-child", &shape.to_string()])
            .args([split.threads, split.workers, per_proc].map(|n| n.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        children.push(child);
    }
    // Every child loads its keys first; all start proving together.
    let mut readers = Vec::new();
    for child in &mut children {
        let out = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no child stdout"))?;
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ready", "a scaling child said {line:?} instead of ready");
        readers.push(reader);
    }
    for child in &mut children {
        let stdin = child.stdin.as_mut().ok_or_else(|| anyhow::anyhow!("no child stdin"))?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
    }
    let mut runs = Vec::new();
    for reader in &mut readers {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let v: Vec<f64> = line
            .strip_prefix("done ")
            .ok_or_else(|| anyhow::anyhow!("a scaling child said {line:?}"))?
            .split_whitespace()
            .map(|x| x.parse::<f64>())
            .collect::<Result<_, _>>()?;
        anyhow::ensure!(v.len() == 3, "a scaling child said {line:?}");
        runs.push(ChildRun { secs: v[0], mean_latency: v[1], peak_mib: v[2] });
    }
    for mut child in children {
        anyhow::ensure!(child.wait()?.success(), "a scaling child failed");
    }
    let wall = runs.iter().map(|r| r.secs).fold(0.0, f64::max);
    let total = per_proc * split.procs;
    let latency = runs.iter().map(|r| r.mean_latency).sum::<f64>() / runs.len() as f64;
    let peak = runs.iter().map(|r| r.peak_mib).sum();
    Ok((total as f64 / wall * 60.0, latency, peak))
}

/// `--scaling-child K,D THREADS WORKERS PROOFS`: sizes the proving pool,
/// loads the keys, says "ready", waits for a line on stdin, proves PROOFS
/// proofs WORKERS at a time and says "done SECS MEAN_LATENCY PEAK_MIB".
fn scaling_child(args: &[String]) -> anyhow::Result<()> {
    let [shape, threads, workers, proofs] = args else {
        anyhow::bail!("usage: --scaling-child K,D THREADS WORKERS PROOFS");
    };
    let shape: Shape = shape.parse()?;
    let (threads, workers, proofs): (usize, usize, usize) = (threads.parse()?, workers.parse()?, proofs.parse()?);
    // What `zkpow prover` does with prover.threads, before any proof.
    zkpow::prover::sizing::init_thread_pool(threads)?;
    let keys = Keys::load(&test_params_dir(), shape)?;
    let backend = Groth16Backend::new([keys]);
    let req = sample_request(shape, &mut rand::rngs::ChaCha20Rng::seed_from_u64(2))?;
    println!("ready");
    std::io::stdout().flush()?;
    let mut go = String::new();
    std::io::stdin().read_line(&mut go)?;
    reset_peak();
    let left = AtomicUsize::new(proofs);
    let started = Instant::now();
    let latencies: Vec<f64> = std::thread::scope(|scope| -> anyhow::Result<Vec<f64>> {
        let mut handles = Vec::new();
        for _ in 0..workers {
            // Synthesis of large shapes nests deeply (as in the ProvingPool).
            let handle = std::thread::Builder::new().stack_size(64 << 20).spawn_scoped(scope, || {
                let mut mine = Vec::new();
                while left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                    let t = Instant::now();
                    backend.prove(&req)?;
                    mine.push(t.elapsed().as_secs_f64());
                }
                Ok::<_, anyhow::Error>(mine)
            })?;
            handles.push(handle);
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| anyhow::anyhow!("a proving thread panicked"))??);
        }
        Ok(all)
    })?;
    let secs = started.elapsed().as_secs_f64();
    let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    println!("done {secs:.3} {mean:.3} {:.0}", peak_mib());
    Ok(())
}

fn scaling(shapes: &[Shape], proofs: &[usize], rounds: &[usize], smoke: bool) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("\nProver scaling on {cores} cores: proofs per minute of the machine per split (medians of rounds)\n");
    println!("| shape | split | processes × proofs at once × threads | proofs per round | proofs/min (rounds) | median proofs/min | s per proof | peak RSS MiB (all processes) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, &shape) in shapes.iter().enumerate() {
        let proofs = proofs.get(i).or(proofs.last()).copied().unwrap_or(4);
        let rounds = rounds.get(i).or(rounds.last()).copied().unwrap_or(1);
        // The children only load: make (or refresh) the shape's keys here.
        cached_test_keys(shape)?;
        let splits = splits(cores);
        let mut rates = vec![Vec::new(); splits.len()];
        let mut latency = vec![Vec::new(); splits.len()];
        let mut peak = vec![0.0f64; splits.len()];
        for round in 0..rounds {
            // Rotate the order so that load drifts hit every split alike.
            for k in 0..splits.len() {
                let j = (k + round) % splits.len();
                let split = splits[j];
                // In a smoke run: one proof per process is enough to check it.
                let n = if smoke { split.procs * split.workers } else { proofs };
                let (rate, lat, mib) = run_split(shape, split, n)?;
                eprintln!("{shape} {}: {rate:.1} proofs/min, {lat:.2} s per proof", split.name);
                rates[j].push(rate);
                latency[j].push(lat);
                peak[j] = peak[j].max(mib);
            }
        }
        for (j, split) in splits.iter().enumerate() {
            let med = |v: &[f64]| {
                let mut v = v.to_vec();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let runs: Vec<String> = rates[j].iter().map(|r| format!("{r:.1}")).collect();
            println!(
                "| {},{} | {} | {} × {} × {} | {} | {} | {:.1} | {:.2} | {:.0} |",
                shape.k,
                shape.d,
                split.name,
                split.procs,
                split.workers,
                split.threads,
                if smoke { split.procs * split.workers } else { proofs },
                runs.join(", "),
                med(&rates[j]),
                med(&latency[j]),
                peak[j]
            );
        }
    }
    Ok(())
}

//! Proving and verification benchmark per circuit shape: the zkpow backend
//! (`ProverBackend::prove` / `verify`, which add public-input derivation,
//! EIP-2537 encoding and the prover's self-check) against the raw bellman
//! calls on the same circuit, alternated in one run so machine noise hits
//! both alike. Reports medians, their ratio, and peak memory per phase.
//!
//! Shapes: `ZKPOW_BENCH_SHAPES="4,8;8,16;16,20"` (the default), runs per
//! shape: `ZKPOW_BENCH_RUNS` (default 5).

use std::time::{Duration, Instant};

use rand::SeedableRng;
use zkpow::circuit::batch::encode;
use zkpow::circuit::batch_circuit::ConstraintCount;
use zkpow::circuit::executor::apply_batch;
use zkpow::circuit::keys::{test_params_dir, Keys};
use zkpow::circuit::public::domain;
use zkpow::circuit::sample::{genesis_accounts, random_transfers};
use zkpow::circuit::{BatchCircuit, Shape, StateTree};
use zkpow::prover::encoding::proof_to_bytes;
use zkpow::prover::{Groth16Backend, ProofRequest, ProverBackend};

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

fn main() -> anyhow::Result<()> {
    let shapes: Vec<Shape> = std::env::var("ZKPOW_BENCH_SHAPES")
        .unwrap_or_else(|_| "4,8;8,16;16,20".into())
        .split(';')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let runs: usize = std::env::var("ZKPOW_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
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
    println!("| shape (K,D) | constraints | per transfer | keys s (setup or load) | prove zkpow ms | prove bellman ms | ratio | verify zkpow ms | verify bellman ms | ratio | peak prove MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(1);
    for shape in shapes {
        let count = ConstraintCount::of(shape)?;
        let started = Instant::now();
        let keys = Keys::load_or_setup(&test_params_dir(), shape, &mut rand::rng())?;
        let setup_s = started.elapsed().as_secs_f64();
        let params = keys.params.clone();
        let pvk = groth16::prepare_verifying_key(&params.vk);
        let backend = Groth16Backend::new([keys]);

        let mut state = StateTree::with_accounts(shape.d, genesis_accounts(shape, 64, 1_000_000));
        let transfers = random_transfers(&mut rng, shape, &state, 64, 0.2);
        let (witness, _) = apply_batch(&mut state, shape, &encode(shape, &transfers)?)?;
        let req = ProofRequest { witness, domain: domain(1, &[1; 20]), batch_num: 1, miner: [2; 20] };
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
                    let circuit = BatchCircuit { shape, witness: Some(req.witness.clone()), public: Some(public) };
                    let proof = groth16::create_random_proof(circuit, &params, &mut rand::rng())?;
                    std::hint::black_box(proof_to_bytes(&proof));
                    raw.push(t.elapsed());
                }
            }
        }
        let peak = peak_mib();
        let out = out.expect("at least one run");
        let raw_proof = zkpow::prover::encoding::proof_from_bytes(&out.proof)?;
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

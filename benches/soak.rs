//! Soak benchmark (`make bench-soak`): 2,000 sequences through the real
//! pipeline, watching the aggregator's memory, its database and its
//! in-memory task count for growth that verified sequences leave behind.
//!
//! Real: an anvil chain with fast blocks; the contracts (verifier, deposit,
//! rollup with short windows); the sequencer simulator posting sequences of
//! random transfers; the `zkpow aggregator` process with its SQLite database,
//! watcher, executor, planner, dispatcher, proof verification (Groth16
//! pairings) and the sender's commit, reveal and claim through its outbox;
//! the prover worker loop ([`run_worker`]) speaking the prover HTTP protocol.
//!
//! Benchmark-only, named as such: the proof system's setup and prover.
//! [`TrapdoorKeysForBenchmarks`] is a verifying key whose discrete logs the
//! benchmark knows (the contract tests' `TrapdoorGroth16` in Rust), written
//! as the shape's `vk.json` in a keys directory of its own; the rollup is
//! deployed with it and the aggregator loads it. [`TrapdoorProverForBenchmarks`]
//! then computes, for any public inputs, a proof that satisfies the Groth16
//! verification equation in well under a millisecond, without a circuit.
//! The aggregator's pairing check and the contract's accept these proofs
//! exactly as they accept circuit proofs, so everything after proving is
//! exercised as in production at a rate real proving could not sustain on
//! this machine. A trapdoor key proves nothing about a circuit: never deploy
//! one outside a benchmark.
//!
//! The sequencer keeps at most `--in-flight` sequences posted and not yet
//! verified. Every `--every` verified sequences the benchmark records the
//! aggregator's RSS (`VmRSS` of `/proc/<pid>/status`), the SQLite database's
//! size (file and write-ahead log) and the dispatcher's task count from
//! `/metrics` (`zkpow_tasks_in_memory`, or `zkpow_tasks_queue_depth` summed
//! where the former does not exist). At the end it waits until every
//! sequence's submission is done (the reward claimed after its window),
//! samples once more and prints the growth per 1,000 sequences (least
//! squares over the samples after the first), against the goal of 5 MB.
//!
//! Run by `cargo bench` (which passes `--bench`) it does the full run; run
//! without `--bench` (as `cargo test --benches` does) or with `--smoke` it
//! pushes 10 sequences through, sampling every 5, and checks the outcome:
//! all verified on chain with the executor's root, all rewarded, the
//! samples read. The report goes to stdout and `target/bench-soak.md`
//! (`target/bench-soak-smoke.md` for a smoke run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use anyhow::Context;
use bls12_381::{Bls12, G1Affine, G2Affine, Scalar};
use clap::Parser;
use groth16::VerifyingKey;
use sha3::{Digest, Keccak256};
use tokio::sync::watch;

use zkpow::chain::bindings::{MinerDeposit, ZkPowRollup};
use zkpow::chain::deploy::{check_eip2537, deploy_as, fund_rewards, RollupParams};
use zkpow::chain::root_to_b256;
use zkpow::circuit::encoding::{proof_to_bytes, vk_hash, vk_to_bytes};
use zkpow::circuit::keys::{vk_path, VerifierKey, VkFile};
use zkpow::circuit::public::PublicInputs;
use zkpow::circuit::sample::genesis_accounts;
use zkpow::circuit::{Shape, StateTree, CIRCUIT_VERSION};
use zkpow::db::{self, Db, SubmissionStatus};
use zkpow::devnet::anvil::{Chain, ChainSpec};
use zkpow::devnet::procs::{stop_all, ChildProc, STOP_GRACE};
use zkpow::devnet::sequencer::{History, Simulator, SimulatorConfig};
use zkpow::devnet::{
    genesis_path, spawn_miner, write_miner_config, MinerRollup, MinerSetup, ETHER, GENESIS_ACCOUNTS, GENESIS_BALANCE,
    OWNER_ACCOUNT, SEQUENCER_ACCOUNT,
};
use zkpow::prover::worker::{run_worker, WorkerConfig};
use zkpow::prover::{Groth16Verifier, ProverBackend, ProverError, ProvingPool};
use zkpow::token::BearerToken;
use zkpow::wire::proof::{ProofOutput, ProofRequest, ShapeKey};

mod common;
use common::{command_line, loadavg, machine, run_dir, target_dir};

const SHAPE: Shape = Shape::TEST;
const ROLLUP_NAME: &str = "soak";
const MINER_ACCOUNT: usize = 2;
/// A bond of half an ether per commit: room for hundreds in flight.
const MINER_DEPOSIT: u128 = 200 * ETHER;
/// Rewards of 0.1 ETH per sequence, and then some.
const REWARD_FUNDS: u128 = 500 * ETHER;
const INVALID_RATIO: f64 = 0.3;
/// The growth the issue allows once sequences are verified.
const GOAL_MB_PER_1000: f64 = 5.0;

#[derive(Debug, Parser)]
#[command(name = "soak", about = "Soak run: many sequences through the real pipeline with a benchmark-only prover")]
struct Args {
    /// Sequences to push through.
    #[arg(long, env = "SOAK_SEQUENCES", default_value_t = 2_000)]
    sequences: usize,
    /// A sample every this many verified sequences.
    #[arg(long, default_value_t = 250)]
    every: usize,
    /// Seconds between blocks: about one verification per block, so 2,000
    /// sequences take a quarter of an hour.
    #[arg(long, default_value_t = 0.3)]
    block_time: f64,
    /// Commit phase and reveal phase of a window, in blocks. The reveal
    /// phase is 6 s: a loaded machine's aggregator still reveals in time.
    #[arg(long, default_value_t = 6)]
    t1: u32,
    #[arg(long, default_value_t = 20)]
    t2: u32,
    /// At most this many sequences posted and not yet verified.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Batches per sequence: 1 to this many, at random (2: aggregate tasks too).
    #[arg(long, default_value_t = 2)]
    max_batches: usize,
    /// Prover slots of the benchmark-only prover (one registration each).
    #[arg(long, default_value_t = 2)]
    provers: usize,
    /// Give up after this many minutes.
    #[arg(long, default_value_t = 90.0)]
    limit_minutes: f64,
    /// 10 sequences, a sample every 5, checked (also the default without `--bench`).
    #[arg(long)]
    smoke: bool,
    /// Keep the data directory (chain state, database, logs).
    #[arg(long)]
    keep: bool,
    /// The aggregator's `retention.keep_settled_s`. 0 (with a pass every
    /// 5 s) prunes each settled sequence within seconds, so the database's
    /// growth is what a sequence keeps for good; with the daemon's default
    /// (an hour) the same plateau comes an hour of sequences later.
    #[arg(long, default_value_t = 0)]
    keep_settled_s: u64,
    /// Passed by `cargo bench`: run the full benchmark.
    #[arg(long, hide = true)]
    bench: bool,
}

// ---------------------------------------------------------------------------
// Benchmark-only proof system.

/// A scalar from a seed and a label, uniform enough for a benchmark key.
fn scalar(seed: u64, label: &str, i: u64) -> Scalar {
    let mut wide = [0u8; 64];
    for (half, out) in wide.chunks_mut(32).enumerate() {
        let h = Keccak256::new()
            .chain_update(b"zkpow soak benchmark trapdoor")
            .chain_update(seed.to_be_bytes())
            .chain_update(label.as_bytes())
            .chain_update(i.to_be_bytes())
            .chain_update([half as u8])
            .finalize();
        out.copy_from_slice(&h);
    }
    let s = Scalar::from_bytes_wide(&wide);
    if bool::from(ff::Field::is_zero(&s)) {
        Scalar::one()
    } else {
        s
    }
}

/// Benchmark-only Groth16 setup with a known trapdoor: alpha = a·G1,
/// beta = b·G2, gamma = g·G2, delta = d·G2, IC_j = u_j·G1. Whoever holds
/// these scalars can make a valid proof for any public inputs (see
/// [`TrapdoorProverForBenchmarks`]), which is the point here and why it is
/// never a key for anything but a benchmark.
struct TrapdoorKeysForBenchmarks {
    a: Scalar,
    b: Scalar,
    g: Scalar,
    d_inv: Scalar,
    u: Vec<Scalar>,
    vk: VerifyingKey<Bls12>,
    vk_hash: [u8; 32],
}

impl TrapdoorKeysForBenchmarks {
    fn new(seed: u64) -> anyhow::Result<Self> {
        let (a, b, g, d) = (scalar(seed, "a", 0), scalar(seed, "b", 0), scalar(seed, "g", 0), scalar(seed, "d", 0));
        let inputs = zkpow::circuit::public::NUM_PUBLIC_INPUTS;
        let u: Vec<Scalar> = (0..=inputs as u64).map(|j| scalar(seed, "u", j)).collect();
        let g1 = |s: &Scalar| G1Affine::from(G1Affine::generator() * s);
        let g2 = |s: &Scalar| G2Affine::from(G2Affine::generator() * s);
        let vk = VerifyingKey {
            alpha_g1: g1(&a),
            beta_g1: g1(&b),
            beta_g2: g2(&b),
            gamma_g2: g2(&g),
            delta_g1: g1(&d),
            delta_g2: g2(&d),
            ic: u.iter().map(g1).collect(),
        };
        let d_inv = Option::<Scalar>::from(d.invert()).context("delta's trapdoor is zero")?;
        let vk_hash = vk_hash(&vk)?;
        Ok(TrapdoorKeysForBenchmarks { a, b, g, d_inv, u, vk, vk_hash })
    }

    fn vk_hash_hex(&self) -> String {
        format!("0x{}", hex::encode(self.vk_hash))
    }

    /// Writes `groth16-k2-d4.vk.json` into `dir`, the file the aggregator
    /// loads (it never needs proving parameters).
    fn write_vk(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = VkFile {
            shape: SHAPE,
            circuit_version: CIRCUIT_VERSION,
            vk_hash: self.vk_hash_hex(),
            vk: format!("0x{}", hex::encode(vk_to_bytes(&self.vk)?)),
        };
        let path = vk_path(dir, SHAPE);
        std::fs::write(&path, serde_json::to_string_pretty(&file)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        // Read back through the aggregator's own loader: the same checks.
        VerifierKey::load(dir, SHAPE).context("the trapdoor key does not load as a verifying key")?;
        Ok(())
    }
}

/// Benchmark-only `ProverBackend`: no circuit, no witness check. For the
/// request's public inputs x it takes A = s·G1 (s fresh per proof), a fixed
/// B = t·G2 and C = c·G1 with c = (s·t − a·b − v·g) / d, v = u_0 + Σ x_j·u_{j+1},
/// which satisfies e(A, B) = e(alpha, beta)·e(IC(x), gamma)·e(C, delta).
/// Two G1 multiplications per proof. It verifies like the production
/// verifier (pairings), so the worker's protocol sees nothing unusual.
struct TrapdoorProverForBenchmarks {
    keys: Arc<TrapdoorKeysForBenchmarks>,
    t: Scalar,
    b_point: G2Affine,
    verifier: Groth16Verifier,
    counter: std::sync::atomic::AtomicU64,
}

impl TrapdoorProverForBenchmarks {
    fn new(keys: Arc<TrapdoorKeysForBenchmarks>, keys_dir: &Path) -> anyhow::Result<Self> {
        let t = scalar(0x7777, "t", 0);
        let verifier = Groth16Verifier::new([VerifierKey::load(keys_dir, SHAPE)?]);
        Ok(TrapdoorProverForBenchmarks {
            keys,
            t,
            b_point: G2Affine::from(G2Affine::generator() * t),
            verifier,
            counter: Default::default(),
        })
    }
}

impl ProverBackend for TrapdoorProverForBenchmarks {
    fn name(&self) -> &'static str {
        "trapdoor-for-benchmarks"
    }

    fn shapes(&self) -> Vec<ShapeKey> {
        vec![ShapeKey { shape: SHAPE, vk_hash: self.keys.vk_hash_hex() }]
    }

    fn prove(&self, req: &ProofRequest) -> Result<ProofOutput, ProverError> {
        if req.witness.shape != SHAPE {
            return Err(ProverError::UnknownShape(req.witness.shape));
        }
        let public = req.public_inputs();
        let k = &self.keys;
        let v = public.to_vec().iter().zip(&k.u[1..]).fold(k.u[0], |acc, (x, u)| acc + x * u);
        let s = scalar(req.batch_num, "s", self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let c = (s * self.t - k.a * k.b - v * k.g) * k.d_inv;
        let proof = groth16::Proof::<Bls12> {
            a: G1Affine::from(G1Affine::generator() * s),
            b: self.b_point,
            c: G1Affine::from(G1Affine::generator() * c),
        };
        Ok(ProofOutput { proof: proof_to_bytes(&proof), public })
    }

    fn verify(&self, shape: Shape, proof: &[u8], public: &PublicInputs) -> Result<(), ProverError> {
        self.verifier.verify(shape, proof, public)
    }
}

// ---------------------------------------------------------------------------
// The network.

struct Network {
    // Stopped in this order: provers (a watch), aggregator, chain.
    provers_stop: watch::Sender<bool>,
    provers: tokio::task::JoinHandle<anyhow::Result<()>>,
    aggregator: ChildProc,
    chain: Chain,
    reader: DynProvider,
    rollup: Address,
    api_port: u16,
    db_file: PathBuf,
    db_url: String,
    sim: Simulator,
    history: Arc<Mutex<History>>,
}

impl Network {
    fn check_children(&mut self) -> anyhow::Result<()> {
        for p in [&mut self.aggregator, &mut self.chain.proc] {
            if let Some(status) = p.exited() {
                anyhow::bail!("{} exited ({status}); last lines of {}:\n{}", p.name, p.log.display(), p.log_tail(30));
            }
        }
        anyhow::ensure!(!self.provers.is_finished(), "the benchmark's prover worker stopped");
        Ok(())
    }

    fn stop(&mut self) {
        let _ = self.provers_stop.send(true);
        stop_all([&mut self.aggregator], STOP_GRACE);
        stop_all([&mut self.chain.proc], STOP_GRACE);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?.local_addr()?.port())
}

/// Chain, contracts with the trapdoor key, the miner's bond, the aggregator
/// process, the benchmark-only provers and the sequencer. Spawns child
/// processes: call it from the main thread.
async fn start_network(args: &Args, dir: &Path) -> anyhow::Result<Network> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let keys_dir = dir.join("trapdoor-keys-benchmark-only");
    let keys = Arc::new(TrapdoorKeysForBenchmarks::new(2026)?);
    keys.write_vk(&keys_dir)?;

    let spec = ChainSpec {
        name: "soak".into(),
        chain_id: 31337,
        port: free_port()?,
        block_time: args.block_time,
        state: dir.join("chain.state.json"),
        log: logs.join("anvil.log"),
    };
    let chain = Chain::start(&spec).await?;
    let reader = chain.reader()?;
    check_eip2537(&reader).await?;

    let genesis = genesis_accounts(SHAPE, GENESIS_ACCOUNTS, GENESIS_BALANCE);
    let genesis_file = genesis_path(dir, ROLLUP_NAME);
    std::fs::write(&genesis_file, serde_json::to_string(&genesis)? + "\n")
        .with_context(|| format!("writing {}", genesis_file.display()))?;
    let root = root_to_b256(&StateTree::with_accounts(SHAPE.d, genesis.clone()).root());
    let (owner, provider) = chain.wallet(OWNER_ACCOUNT)?;
    let (sequencer, sequencer_provider) = chain.wallet(SEQUENCER_ACCOUNT)?;
    let mut params = RollupParams::dev(vk_to_bytes(&keys.vk)?, sequencer, root, SHAPE.batch_bytes() as u64);
    params.t1 = args.t1;
    params.t2 = args.t2;
    let dep = deploy_as(provider.clone(), owner, &params, None).await.context("deploying")?;
    fund_rewards(provider.clone(), dep.deposit, dep.rollup, REWARD_FUNDS).await.context("funding rewards")?;
    let (_, miner_wallet) = chain.wallet(MINER_ACCOUNT)?;
    let receipt = MinerDeposit::new(dep.deposit, miner_wallet)
        .deposit()
        .value(U256::from(MINER_DEPOSIT))
        .send()
        .await
        .context("bonding the miner's deposit")?
        .get_receipt()
        .await
        .context("bonding the miner's deposit")?;
    anyhow::ensure!(receipt.status(), "the miner's deposit reverted");

    let api_port = free_port()?;
    let miner_dir = dir.join("miner");
    let config = write_miner_config(&MinerSetup {
        dir: miner_dir.clone(),
        keys_dir: &keys_dir,
        account: MINER_ACCOUNT,
        api_port,
        block_time: args.block_time,
        chains: std::slice::from_ref(&chain),
        rollups: vec![MinerRollup {
            name: ROLLUP_NAME.into(),
            chain: chain.name.clone(),
            address: dep.rollup,
            shape: SHAPE,
            genesis_file,
        }],
        extra_toml: format!("[retention]\nkeep_settled_s = {}\ninterval_s = 5\n", args.keep_settled_s),
    })?;
    let (aggregator, _) = spawn_miner(Path::new(env!("CARGO_BIN_EXE_zkpow")), &config, "miner", 0, &logs)?;

    let token = std::fs::read_to_string(miner_dir.join("prover.token")).context("reading the prover token")?;
    let mut worker = WorkerConfig::new(
        format!("http://127.0.0.1:{api_port}"),
        BearerToken::new(token.trim())?,
        "trapdoor-prover-for-benchmarks",
    );
    worker.slots = args.provers;
    // Retry quickly while the aggregator starts.
    worker.backoff_max = Duration::from_secs(1);
    let backend = TrapdoorProverForBenchmarks::new(keys, &keys_dir)?;
    let pool = ProvingPool::new(Arc::new(backend), args.provers).context("starting the proving pool")?;
    let (provers_stop, stop_rx) = watch::channel(false);
    let provers = tokio::spawn(run_worker(worker, pool, stop_rx));

    let history = Arc::new(Mutex::new(History::default()));
    let sim_cfg = SimulatorConfig {
        rollup: ROLLUP_NAME.into(),
        shape: SHAPE,
        address: dep.rollup,
        accounts: GENESIS_ACCOUNTS as u32,
        max_batches: args.max_batches,
        invalid_ratio: INVALID_RATIO,
        // Unused: the benchmark posts with `post_one` as sequences verify.
        interval: Duration::ZERO,
        seed: 2026,
    };
    let sim = Simulator::resume(sim_cfg, sequencer_provider, &genesis, history.clone()).await?;
    let db_file = miner_dir.join("zkpow.db");
    Ok(Network {
        provers_stop,
        provers,
        aggregator,
        chain,
        reader,
        rollup: dep.rollup,
        api_port,
        db_url: format!("sqlite://{}", db_file.display()),
        db_file,
        sim,
        history,
    })
}

// ---------------------------------------------------------------------------
// Samples.

#[derive(Debug, Clone)]
struct Sample {
    label: String,
    elapsed_s: f64,
    posted: usize,
    verified: usize,
    rss_mb: f64,
    /// The anonymous part of the RSS (heap, stacks): what a leak grows.
    /// The rest is mostly the binary's pages, touched once.
    anon_mb: f64,
    db_mb: f64,
    wal_mb: f64,
    tasks: Option<i64>,
}

/// (VmRSS, RssAnon) of a process, in MB.
fn rss_mb(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} line in /proc/{pid}/status"))?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len() as f64 / (1024.0 * 1024.0)).unwrap_or(0.0)
}

/// The metric whose value counts the dispatcher's tasks, and the family
/// used when the aggregator does not export it.
const TASKS_METRIC: &str = "zkpow_tasks_in_memory";
const TASKS_FALLBACK: &str = "zkpow_tasks_queue_depth";
const PRUNED_METRIC: &str = "zkpow_retention_pruned_sequences_total";

/// The sum of a metric family's samples in the text format, None if absent.
fn metric_sum(text: &str, name: &str) -> Option<i64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = true;
            sum += v;
        }
    }
    found.then_some(sum as i64)
}

async fn scrape(client: &reqwest::Client, port: u16) -> anyhow::Result<String> {
    client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .context("scraping /metrics")?
        .text()
        .await
        .context("reading /metrics")
}

/// The task count and the metric it came from.
async fn tasks_in_memory(client: &reqwest::Client, port: u16) -> anyhow::Result<(Option<i64>, &'static str)> {
    let text = scrape(client, port).await?;
    Ok(match metric_sum(&text, TASKS_METRIC) {
        Some(n) => (Some(n), TASKS_METRIC),
        None => (metric_sum(&text, TASKS_FALLBACK), TASKS_FALLBACK),
    })
}

/// Least-squares slope of (x, y), None with fewer than two distinct x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    Some(points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx)
}

/// Growth per 1,000 verified sequences, over the samples after the first
/// (which still includes the start-up's allocations).
fn growth_per_1000(samples: &[Sample], y: impl Fn(&Sample) -> f64) -> Option<f64> {
    let pts: Vec<(f64, f64)> = samples.iter().skip(1).map(|s| (s.verified as f64, y(s))).collect();
    slope(&pts).map(|m| m * 1000.0)
}

// ---------------------------------------------------------------------------
// The run.

struct Outcome {
    samples: Vec<Sample>,
    tasks_metric: &'static str,
    elapsed_s: f64,
    rewarded: usize,
    blocks: u64,
    /// Settled sequences the aggregator pruned by the end.
    pruned: i64,
}

async fn run(args: &Args, dir: &Path) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let limit = Duration::from_secs_f64(args.limit_minutes * 60.0);
    let mut net = start_network(args, dir).await?;
    let result = drive(args, &mut net, started, limit).await;
    net.stop();
    result
}

async fn drive(args: &Args, net: &mut Network, started: Instant, limit: Duration) -> anyhow::Result<Outcome> {
    use alloy::providers::Provider;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let rollup = ZkPowRollup::new(net.rollup, net.reader.clone());
    let pid = net.aggregator.pid().context("the aggregator has no pid")?;
    let first_block = net.reader.get_block_number().await?;
    let mut posted: Vec<(u64, u64)> = Vec::new();
    let mut samples = Vec::new();
    let mut last_progress = Instant::now();
    let (db_file, wal_file) = (net.db_file.clone(), net.db_file.with_extension("db-wal"));
    let sample = |label: String, posted: usize, verified: usize, tasks: Option<i64>| -> anyhow::Result<Sample> {
        let (rss_mb, anon_mb) = rss_mb(pid)?;
        Ok(Sample {
            label,
            elapsed_s: started.elapsed().as_secs_f64(),
            posted,
            verified,
            rss_mb,
            anon_mb,
            db_mb: file_mb(&db_file),
            wal_mb: file_mb(&wal_file),
            tasks,
        })
    };
    eprintln!("soak: {} sequences, a sample every {} verified", args.sequences, args.every);
    loop {
        net.check_children()?;
        anyhow::ensure!(
            started.elapsed() < limit,
            "not done within {limit:?}: {} posted, samples {samples:?}",
            posted.len()
        );
        let verified_batch = rollup.lastVerifiedBatch().call().await.context("lastVerifiedBatch")?;
        let verified = posted.iter().take_while(|p| p.1 <= verified_batch).count();
        while samples.len() < args.sequences / args.every && verified >= (samples.len() + 1) * args.every {
            let (tasks, _) = tasks_in_memory(&client, net.api_port).await?;
            let s = sample(format!("{} verified", (samples.len() + 1) * args.every), posted.len(), verified, tasks)?;
            eprintln!(
                "  {}: {:.0} s, RSS {:.1} MB (anonymous {:.1} MB), database {:.2} MB + WAL {:.2} MB, tasks {}",
                s.label,
                s.elapsed_s,
                s.rss_mb,
                s.anon_mb,
                s.db_mb,
                s.wal_mb,
                s.tasks.map_or("–".into(), |t| t.to_string())
            );
            samples.push(s);
        }
        if verified >= args.sequences {
            break;
        }
        if posted.len() < args.sequences && posted.len() - verified < args.in_flight {
            posted.push(net.sim.post_one().await.context("posting a sequence")?);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if last_progress.elapsed() > Duration::from_secs(30) {
            last_progress = Instant::now();
            eprintln!("  {:.0} s: {} posted, {verified} verified", started.elapsed().as_secs_f64(), posted.len());
        }
    }
    let verified_at = started.elapsed().as_secs_f64();
    let blocks = net.reader.get_block_number().await? - first_block;

    // The chain's root is the executor's.
    let root = rollup.stateRoot().call().await.context("stateRoot")?;
    let last = posted.last().map(|p| p.1).unwrap_or(0);
    let want = net.history.lock().map_err(|_| anyhow::anyhow!("history poisoned"))?.root_at(last);
    anyhow::ensure!(want == Some(root), "verified root {root} differs from the executor's {want:?}");

    // Drain: every submission done (its reward claimed after the window).
    let database = Db::connect(&net.db_url).context("opening the aggregator's database")?;
    let rewarded = loop {
        net.check_children()?;
        anyhow::ensure!(started.elapsed() < limit, "submissions not done within {limit:?}");
        let subs = database
            .run(|c| db::outbox::list_submissions(c, &[], Some(SubmissionStatus::Done)))
            .await
            .context("reading submissions")?;
        if subs.len() >= args.sequences {
            let rewarded = subs.iter().filter(|s| s.outcome.as_deref() == Some("rewarded")).count();
            break rewarded;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    drop(database);
    // Let the aggregator's periodic clean-ups after the last claim run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (tasks, tasks_metric) = tasks_in_memory(&client, net.api_port).await?;
    samples.push(sample("all done".into(), posted.len(), args.sequences, tasks)?);
    // With keep_settled_s = 0 every sequence is pruned within a pass or two.
    let pruned_by = Instant::now() + Duration::from_secs(if args.keep_settled_s == 0 { 30 } else { 0 });
    let pruned = loop {
        let n = metric_sum(&scrape(&client, net.api_port).await?, PRUNED_METRIC).unwrap_or(0);
        if n >= args.sequences as i64 || Instant::now() >= pruned_by {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    Ok(Outcome { samples, tasks_metric, elapsed_s: verified_at, rewarded, blocks, pruned })
}

// ---------------------------------------------------------------------------
// Report.

fn fmt_growth(g: Option<f64>) -> String {
    g.map_or("–".into(), |g| format!("{g:+.2}"))
}

fn report(args: &Args, o: &Outcome, date: &str, load_start: &str) -> (String, bool) {
    let mut s = String::from("# zkpow soak run\n\n");
    s += &format!("- date: {date}\n- machine: {}\n", machine());
    s += &format!("- load average (1, 5, 15 min): {load_start} at the start, {} at the end\n", loadavg());
    s += &format!(
        "- zkpow {} ({}), `zkpow aggregator` on SQLite; anvil, {} s blocks, T1 = {}, T2 = {} blocks, shape {SHAPE}, \
         1–{} batches per sequence, at most {} sequences in flight; benchmark-only trapdoor prover with {} slots\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("BUILD_GIT_SHA").unwrap_or("unknown commit"),
        args.block_time,
        args.t1,
        args.t2,
        args.max_batches,
        args.in_flight,
        args.provers
    );
    s += &format!(
        "- {} sequences verified in {:.0} s ({} blocks, {:.2} sequences per minute); {} of them rewarded\n",
        args.sequences,
        o.elapsed_s,
        o.blocks,
        args.sequences as f64 * 60.0 / o.elapsed_s.max(1e-9),
        o.rewarded
    );
    s += &format!("- retention.keep_settled_s = {}: {} of them pruned by the end\n", args.keep_settled_s, o.pruned);
    s += &format!("- tasks: `{}` summed over its labels\n\n", o.tasks_metric);
    s += "| sample | elapsed s | posted | verified | aggregator RSS MB | of it anonymous MB | database MB | WAL MB | tasks in memory |\n";
    s += "|---|---|---|---|---|---|---|---|---|\n";
    for x in &o.samples {
        s += &format!(
            "| {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {} |\n",
            x.label,
            x.elapsed_s,
            x.posted,
            x.verified,
            x.rss_mb,
            x.anon_mb,
            x.db_mb,
            x.wal_mb,
            x.tasks.map_or("–".into(), |t| t.to_string())
        );
    }
    let rss = growth_per_1000(&o.samples, |x| x.rss_mb);
    let anon = growth_per_1000(&o.samples, |x| x.anon_mb);
    let db = growth_per_1000(&o.samples, |x| x.db_mb + x.wal_mb);
    let tasks = growth_per_1000(&o.samples, |x| x.tasks.unwrap_or(0) as f64);
    let met = |g: Option<f64>| g.is_some_and(|g| g < GOAL_MB_PER_1000);
    // A smoke run's samples after the first all sit at the same count.
    let verdict = |g: Option<f64>| match g {
        None => "too few samples",
        Some(_) if met(g) => "met",
        Some(_) => "**not met**",
    };
    s += &format!(
        "\nGrowth per 1,000 verified sequences (least squares over the samples after the first): RSS {} MB ({}; \
         anonymous {} MB), database + WAL {} MB ({}), tasks {}. Goal: under {GOAL_MB_PER_1000} MB.\n",
        fmt_growth(rss),
        verdict(rss),
        fmt_growth(anon),
        fmt_growth(db),
        verdict(db),
        fmt_growth(tasks)
    );
    (s, met(rss) && met(db))
}

fn check_smoke(args: &Args, o: &Outcome) -> anyhow::Result<()> {
    anyhow::ensure!(o.rewarded == args.sequences, "{} of {} sequences rewarded", o.rewarded, args.sequences);
    anyhow::ensure!(o.samples.len() == args.sequences / args.every + 1, "{} samples", o.samples.len());
    for x in &o.samples {
        anyhow::ensure!(x.rss_mb > 1.0 && x.db_mb > 0.0, "implausible sample {x:?}");
        anyhow::ensure!(x.tasks.is_some(), "no task count in /metrics: {x:?}");
    }
    if args.keep_settled_s == 0 {
        anyhow::ensure!(
            o.pruned == args.sequences as i64,
            "{} of {} settled sequences pruned",
            o.pruned,
            args.sequences
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    args.smoke |= !args.bench;
    if args.smoke {
        args.sequences = 10;
        args.every = 5;
        args.limit_minutes = 5.0;
    }
    if args.every == 0 || args.sequences < args.every || args.in_flight == 0 {
        eprintln!("error: --sequences ≥ --every ≥ 1 and --in-flight ≥ 1");
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let load_start = loadavg();
    let target_dir = target_dir();
    let data = match run_dir(&target_dir, "bench-soak-") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match tokio::runtime::Runtime::new() {
        // Child processes are spawned from this thread (block_on polls on
        // it), which lives as long as they should.
        Ok(rt) => rt.block_on(run(&args, data.path())),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak benchmark failed: {e:#}");
            eprintln!("data and logs kept in {}", data.keep().display());
            return ExitCode::FAILURE;
        }
    };
    let (text, met) = report(&args, &outcome, &date, &load_start);
    println!("\n{text}");
    let out = target_dir.join(if args.smoke { "bench-soak-smoke.md" } else { "bench-soak.md" });
    if let Err(e) = std::fs::write(&out, &text) {
        eprintln!("writing {}: {e}", out.display());
    }
    if args.keep {
        eprintln!("data kept in {}", data.keep().display());
    }
    if args.smoke {
        if let Err(e) = check_smoke(&args, &outcome) {
            eprintln!("soak benchmark smoke run: {e:#}");
            return ExitCode::FAILURE;
        }
        println!("smoke run: every sequence verified and rewarded, every sample read");
    } else if !met {
        eprintln!("the growth goal was missed (see the report)");
    }
    ExitCode::SUCCESS
}

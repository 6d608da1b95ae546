//! Dispatcher benchmark (`make bench-dispatch`): how fast the aggregator
//! hands proof tasks to provers and takes their results back, with the
//! proving itself simulated.
//!
//! What runs is the real thing except the proof: the aggregator's
//! [`Dispatcher`] actor behind the actix-web [`ProverApi`] on 127.0.0.1
//! (two HTTP workers, as `zkpow aggregator` starts it), and the real prover
//! worker loop ([`run_worker`]: register, long-poll claims, heartbeats,
//! submit) over real HTTP. Three stand-ins, all named as benchmark-only:
//!
//! * [`SimulatedProverForBenchmarks`], a `ProverBackend` that "proves" a
//!   batch by sleeping for the proof time drawn for it and returns a marker
//!   proof with the request's true public inputs;
//! * [`SimulatedProofVerifierForBenchmarks`], the aggregator's check of a
//!   result: the public inputs must be the task's and bundles the merge of
//!   their inputs, as in production, but the pairing is replaced by a
//!   comparison with the marker proof;
//! * [`PlannerSinkForBenchmarks`], the proof sink: it acknowledges every
//!   verified result at once (no database) and, like the planner, enqueues
//!   the aggregate and final tasks of a sequence's proof tree
//!   (`aggregator::generator::plan`) as their inputs complete.
//!
//! Measured, each several times in one run (medians reported):
//!
//! * (a) claim → submit round trips per second with 100 and 1,000 provers
//!   and zero proof time, so the dispatcher and HTTP are the bottleneck:
//!   completions per second over the middle 80 % of a pile of batch tasks;
//! * (b) prover utilisation, total proof time / (provers × makespan), for
//!   50 sequences × 8 batches on 16 provers with proof times drawn uniformly
//!   in [0.5, 1.5] × a mean, against the zero-overhead list schedule of the
//!   same tasks, times and dependencies in the dispatcher's own priority
//!   order (see [`ideal_makespan`]);
//! * (c) dispatch latency: from a task becoming ready (enqueued) while
//!   provers wait in long polls to the simulated backend receiving it, one
//!   task at a time; median and p99, with 16 and with 1,000 waiting provers.
//!
//! Run by `cargo bench` (which passes `--bench`) it does the full
//! measurement; run without `--bench` (as `cargo test --benches` does) or
//! with `--smoke` it runs one tiny iteration of each part and checks that it
//! completes. The report goes to stdout and `target/bench-dispatch.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{App, HttpServer};
use anyhow::Context as _;
use clap::Parser;
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;

use zkpow::aggregator::dispatcher::{Enqueue, GetSnapshot};
use zkpow::aggregator::generator::plan::{self, Range};
use zkpow::aggregator::{
    Dispatcher, DispatcherConfig, DispatcherHandle, NewTask, ProofAccepted, ProofBundle, ProofPayload, ProofVerifier,
    QueueConfig, Task, TaskInput, TaskKind,
};
use zkpow::api::ProverApi;
use zkpow::circuit::batch::encode;
use zkpow::circuit::executor::apply_batch;
use zkpow::circuit::public::{domain, PublicInputs};
use zkpow::circuit::sample::{genesis_accounts, random_transfers};
use zkpow::circuit::{BatchWitness, Shape, StateTree};
use zkpow::prover::worker::{run_worker, WorkerConfig};
use zkpow::prover::{ProverBackend, ProverError, ProvingPool};
use zkpow::token::BearerToken;
use zkpow::wire::proof::{ProofOutput, ProofRequest, ShapeKey};

mod common;
use common::{loadavg, machine};

const SHAPE: Shape = Shape::TEST;
const ROLLUP: &str = "bench";
const TOKEN: &str = "dispatch-benchmark-token-0123456789";
/// The VK hash the simulated backend announces and the tasks carry.
const SIM_VK: &str = "0x00000000000000000000000000000000000000000000000000000000000051a7";
/// The "proof" every simulated batch proof carries (a real one is 512 bytes too).
const SIM_PROOF: [u8; 512] = [0x5a; 512];
const MINER: [u8; 20] = [0x11; 20];

#[derive(Debug, Parser)]
#[command(name = "dispatch", about = "Dispatcher benchmark with simulated provers over real HTTP")]
struct Args {
    /// Runs of every measurement (medians reported).
    #[arg(long, env = "DISPATCH_RUNS", default_value_t = 5)]
    runs: usize,
    /// Prover counts of the round-trip measurement (a).
    #[arg(long, env = "DISPATCH_RT_PROVERS", value_delimiter = ',', default_value = "100,1000")]
    rt_provers: Vec<usize>,
    /// Round trips per prover in (a)...
    #[arg(long, default_value_t = 10)]
    rt_per_prover: usize,
    /// ...but at least this many tasks per run.
    #[arg(long, default_value_t = 5_000)]
    rt_min_tasks: usize,
    /// Sequences, batches per sequence and provers of the utilisation run (b).
    #[arg(long, default_value_t = 50)]
    sequences: u64,
    #[arg(long, default_value_t = 8)]
    batches: u64,
    #[arg(long, default_value_t = 16)]
    util_provers: usize,
    /// Mean simulated proof time in (b), ms; times are uniform in [0.5, 1.5] × mean.
    #[arg(long, env = "DISPATCH_MEAN_PROOF_MS", default_value_t = 200.0)]
    mean_proof_ms: f64,
    /// Waiting provers of the latency measurement (c).
    #[arg(long, value_delimiter = ',', default_value = "16,1000")]
    latency_provers: Vec<usize>,
    /// Tasks dispatched one at a time per latency run.
    #[arg(long, default_value_t = 200)]
    latency_samples: usize,
    /// Parts to run: any of a, b, c (e.g. `--parts a` to profile one).
    #[arg(long, value_delimiter = ',', default_value = "a,b,c")]
    parts: Vec<String>,
    /// Where the two sides run: `split` pins the aggregator's threads to the
    /// first half of the cores and the simulated provers' to the other half,
    /// as provers on other machines would leave the aggregator its cores;
    /// `shared` lets both use every core. Split needs at least 2 cores.
    #[arg(long, value_enum, default_value_t = Cores::Split)]
    cores: Cores,
    /// One tiny iteration of every part, checked (also the default without `--bench`).
    #[arg(long)]
    smoke: bool,
    /// Passed by `cargo bench`: run the full benchmark.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    /// `cargo test --benches` runs the binary without `--bench`: then only
    /// check that every part starts and completes.
    fn tiny(&mut self) {
        self.runs = 1;
        self.rt_provers = vec![8];
        self.rt_per_prover = 10;
        self.rt_min_tasks = 0;
        self.sequences = 3;
        self.batches = 4;
        self.util_provers = 4;
        self.mean_proof_ms = 10.0;
        self.latency_provers = vec![4];
        self.latency_samples = 10;
    }
}

// ---------------------------------------------------------------------------
// Benchmark-only stand-ins for the proof system and the database.

/// Benchmark-only `ProverBackend`: no circuit and no Groth16. A batch
/// "proof" sleeps for the time drawn for its batch number (none drawn:
/// zero) and returns [`SIM_PROOF`] with the request's public inputs. It
/// notes when each batch request reached it, the end of the dispatch path.
struct SimulatedProverForBenchmarks {
    proof_times: HashMap<u64, Duration>,
    received: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl ProverBackend for SimulatedProverForBenchmarks {
    fn name(&self) -> &'static str {
        "simulated-for-benchmarks"
    }

    fn shapes(&self) -> Vec<ShapeKey> {
        vec![ShapeKey { shape: SHAPE, vk_hash: SIM_VK.into() }]
    }

    fn prove(&self, req: &ProofRequest) -> Result<ProofOutput, ProverError> {
        let now = Instant::now();
        if let Ok(mut received) = self.received.lock() {
            received.entry(req.batch_num).or_insert(now);
        }
        if let Some(d) = self.proof_times.get(&req.batch_num).filter(|d| !d.is_zero()) {
            std::thread::sleep(*d);
        }
        Ok(ProofOutput { proof: SIM_PROOF.to_vec(), public: req.public_inputs() })
    }

    fn verify(&self, _: Shape, proof: &[u8], _: &PublicInputs) -> Result<(), ProverError> {
        if proof == SIM_PROOF {
            Ok(())
        } else {
            Err(ProverError::Invalid("not a simulated proof".into()))
        }
    }
}

/// Benchmark-only `ProofVerifier`: the production checks (the proof's public
/// inputs are the task's, a bundle is exactly the merge of its inputs)
/// with the Groth16 pairing replaced by a comparison with [`SIM_PROOF`].
struct SimulatedProofVerifierForBenchmarks;

impl ProofVerifier for SimulatedProofVerifierForBenchmarks {
    fn verify(&self, task: &Task, payload: &ProofPayload) -> Result<(), String> {
        match (&task.input, payload) {
            (TaskInput::Batch(req), ProofPayload::Batch(out)) => {
                if out.public != req.public_inputs() {
                    return Err("the proof's public inputs are not the task's".into());
                }
                if out.proof != SIM_PROOF {
                    return Err("not a simulated proof".into());
                }
                Ok(())
            }
            (TaskInput::Aggregate { left, right }, ProofPayload::Bundle(b)) => {
                let expected = ProofBundle::merge(left, right).map_err(|e| e.to_string())?;
                if *b != expected {
                    return Err("the bundle is not the merge of the task's inputs".into());
                }
                Ok(())
            }
            (TaskInput::Final { bundle }, ProofPayload::Bundle(b)) if b == bundle => Ok(()),
            (TaskInput::Final { .. }, ProofPayload::Bundle(_)) => {
                Err("the final bundle differs from the task's input".into())
            }
            _ => Err("the payload kind does not match the task".into()),
        }
    }
}

/// One sequence's proof tree as the benchmark's planner tracks it.
struct SequenceTree {
    root: Range,
    done: BTreeMap<Range, ProofBundle>,
    created: BTreeSet<(TaskKind, Range)>,
    final_done: bool,
}

/// What the sink saw, for the measurements.
#[derive(Default)]
struct Progress {
    /// When each result was acknowledged, in order.
    accepted: Vec<(Instant, TaskKind)>,
}

/// Benchmark-only proof sink and planner: acknowledges every verified
/// result at once (production persists it first) and, for sequences it
/// plans, enqueues the tree's aggregate and final tasks as soon as their
/// inputs exist, using the production planner's `plan::ready`.
struct PlannerSinkForBenchmarks {
    dispatcher: Arc<OnceLock<Addr<Dispatcher>>>,
    sequences: BTreeMap<u64, SequenceTree>,
    progress: Arc<Mutex<Progress>>,
    accepted: watch::Sender<usize>,
}

impl Actor for PlannerSinkForBenchmarks {
    type Context = Context<Self>;
}

impl Handler<ProofAccepted> for PlannerSinkForBenchmarks {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: ProofAccepted, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let count = {
            let mut p = self.progress.lock().map_err(|e| e.to_string())?;
            p.accepted.push((now, msg.task.kind));
            p.accepted.len()
        };
        if let Some(seq) = self.sequences.get_mut(&msg.task.seq_height) {
            let range = (msg.task.first_batch, msg.task.last_batch);
            match (msg.task.kind, msg.payload) {
                (TaskKind::Final, _) => seq.final_done = true,
                (_, ProofPayload::Batch(p)) => {
                    seq.done.insert(range, ProofBundle::single(p));
                }
                (_, ProofPayload::Bundle(b)) => {
                    seq.done.insert(range, b);
                }
            }
            let done: BTreeSet<Range> = seq.done.keys().copied().collect();
            for (kind, range) in plan::ready(seq.root, &done, seq.final_done, &seq.created) {
                let input = match kind {
                    TaskKind::Aggregate => {
                        let (l, r) = plan::children(range).ok_or("an aggregate of one batch")?;
                        let (left, right) = (seq.done.get(&l), seq.done.get(&r));
                        let (Some(left), Some(right)) = (left, right) else { return Err("inputs missing".into()) };
                        TaskInput::Aggregate { left: left.clone(), right: right.clone() }
                    }
                    TaskKind::Final => {
                        let bundle = seq.done.get(&seq.root).ok_or("root missing")?;
                        TaskInput::Final { bundle: bundle.clone() }
                    }
                    TaskKind::Batch => return Err("batch tasks are enqueued up front".into()),
                };
                seq.created.insert((kind, range));
                let task = NewTask {
                    rollup: ROLLUP.into(),
                    seq_height: seq.root.0,
                    first_batch: range.0,
                    last_batch: range.1,
                    shape: SHAPE,
                    vk_hash: SIM_VK.into(),
                    input,
                };
                self.dispatcher.get().ok_or("no dispatcher")?.do_send(Enqueue(task));
            }
        }
        self.accepted.send_replace(count);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The aggregator and the provers.

struct Aggregator {
    handle: DispatcherHandle,
    url: String,
    server: actix_web::dev::ServerHandle,
    progress: Arc<Mutex<Progress>>,
    accepted: watch::Receiver<usize>,
}

impl Aggregator {
    /// The dispatcher (production defaults: 60 s leases, 10 s long polls) and
    /// the prover API on a free port. `trees`: sequences whose proof tree the
    /// sink plans.
    async fn start(trees: &[Range]) -> anyhow::Result<Aggregator> {
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (tx, accepted) = watch::channel(0);
        let dispatcher_cell = Arc::new(OnceLock::new());
        let sequences = trees
            .iter()
            .map(|&root| {
                let created = (root.0..=root.1).map(|b| (TaskKind::Batch, (b, b))).collect();
                (root.0, SequenceTree { root, done: BTreeMap::new(), created, final_done: false })
            })
            .collect();
        let sink = PlannerSinkForBenchmarks {
            dispatcher: dispatcher_cell.clone(),
            sequences,
            progress: progress.clone(),
            accepted: tx,
        }
        .start();
        let cfg = DispatcherConfig {
            queue: QueueConfig::default(),
            poll_ms: zkpow::config::AggregatorConfig::default().claim_poll_ms,
            ..DispatcherConfig::default()
        };
        let handle = DispatcherHandle::start(Dispatcher::new(
            cfg,
            Arc::new(SimulatedProofVerifierForBenchmarks),
            sink.recipient(),
        ));
        dispatcher_cell.set(handle.addr().clone()).map_err(|_| anyhow::anyhow!("dispatcher set twice"))?;
        let api = ProverApi::new(handle.clone(), BearerToken::new(TOKEN)?);
        let server = HttpServer::new(move || {
            let api = api.clone();
            App::new().configure(move |c| api.configure(c))
        })
        // As `zkpow aggregator` serves it.
        .workers(2)
        .backlog(4096)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .context("binding the benchmark's HTTP server")?;
        let addr = *server.addrs().first().context("the server has no address")?;
        let server = server.run();
        let server_handle = server.handle();
        actix_rt::spawn(server);
        Ok(Aggregator { handle, url: format!("http://{addr}"), server: server_handle, progress, accepted })
    }

    fn enqueue(&self, task: NewTask) {
        self.handle.addr().do_send(Enqueue(task));
    }

    async fn registered(&self) -> anyhow::Result<usize> {
        Ok(self.handle.addr().send(GetSnapshot).await.context("asking the dispatcher")?.provers.len())
    }

    /// Waits until the sink acknowledged `n` results in all.
    async fn wait_accepted(&mut self, n: usize, limit: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, self.accepted.wait_for(|&c| c >= n))
            .await
            .with_context(|| format!("timed out after {limit:?} waiting for {n} results"))?
            .context("the sink stopped")?;
        Ok(())
    }

    fn accepted_times(&self) -> Vec<(Instant, TaskKind)> {
        self.progress.lock().map(|p| p.accepted.clone()).unwrap_or_default()
    }
}

struct Provers {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
    received: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl Provers {
    /// `n` prover slots of the real worker loop, each its own registration,
    /// on their own runtime (`rt`), as separate prover processes would be.
    fn start(
        rt: &tokio::runtime::Runtime,
        url: &str,
        n: usize,
        proof_times: HashMap<u64, Duration>,
    ) -> anyhow::Result<Provers> {
        let received = Arc::new(Mutex::new(HashMap::new()));
        // Sleeping proofs each need a thread; instant ones only a couple.
        let threads = if proof_times.values().any(|d| !d.is_zero()) { n } else { 2 };
        let backend = SimulatedProverForBenchmarks { proof_times, received: received.clone() };
        // Made on a thread with the provers' cores, which its threads inherit.
        let cores = SPLIT.get().map(|(_, provers)| provers.clone());
        let pool = std::thread::spawn(move || {
            if let Some(c) = &cores {
                pin_current_thread(c);
            }
            ProvingPool::new(Arc::new(backend), threads)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread starting the proving pool panicked"))?
        .context("starting the proving threads")?;
        let mut cfg = WorkerConfig::new(url, BearerToken::new(TOKEN)?, "sim");
        cfg.slots = n;
        cfg.backoff_min = Duration::from_millis(20);
        cfg.backoff_max = Duration::from_secs(1);
        cfg.shutdown_grace = Duration::from_secs(5);
        let (stop, rx) = watch::channel(false);
        let join = rt.spawn(run_worker(cfg, pool, rx));
        Ok(Provers { stop, join, received })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(30), self.join)
            .await
            .context("the provers did not stop within 30 s")?
            .context("the prover runtime failed")?
    }

    fn received(&self, batch: u64) -> Option<Instant> {
        self.received.lock().ok()?.get(&batch).copied()
    }
}

/// Starts `n` provers and waits until all registered and sit in their first
/// long poll.
async fn ready_provers(
    rt: &tokio::runtime::Runtime,
    agg: &Aggregator,
    n: usize,
    proof_times: HashMap<u64, Duration>,
) -> anyhow::Result<Provers> {
    let provers = Provers::start(rt, &agg.url, n, proof_times)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while agg.registered().await? < n {
        anyhow::ensure!(Instant::now() < deadline, "{n} provers did not register within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Registration answered; the first claim follows at once. A generous
    // pause so that every slot is waiting, not still connecting.
    tokio::time::sleep(Duration::from_millis(200 + n as u64)).await;
    Ok(provers)
}

// ---------------------------------------------------------------------------
// Tasks.

/// Real witnesses of the test shape, chained (each batch starts from the
/// previous one's root) so that aggregates of consecutive batches check out.
fn witnesses(n: usize, seed: u64) -> anyhow::Result<Vec<BatchWitness>> {
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed);
    let mut state = StateTree::with_accounts(SHAPE.d, genesis_accounts(SHAPE, 16, 1_000_000));
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let transfers = random_transfers(&mut rng, SHAPE, &state, 16, 0.2);
        let (w, _) = apply_batch(&mut state, SHAPE, &encode(SHAPE, &transfers)?)?;
        out.push(w);
    }
    Ok(out)
}

fn batch_task(seq_height: u64, batch_num: u64, witness: BatchWitness) -> NewTask {
    NewTask {
        rollup: ROLLUP.into(),
        seq_height,
        first_batch: batch_num,
        last_batch: batch_num,
        shape: SHAPE,
        vk_hash: SIM_VK.into(),
        input: TaskInput::Batch(Box::new(ProofRequest {
            witness,
            domain: domain(31337, &[0x22; 20]),
            batch_num,
            miner: MINER,
        })),
    }
}

// ---------------------------------------------------------------------------
// (a) round trips per second.

struct RoundTrips {
    per_sec: f64,
    /// CPU time per round trip of the aggregator's threads and of the
    /// simulated provers' (which would run on other machines), µs.
    aggregator_cpu_us: f64,
    provers_cpu_us: f64,
}

/// CPU seconds this process's live threads have used: (aggregator,
/// simulated provers). Provers are the threads of their runtime
/// ("sim-prover") and of their proving pool ("zkpow-prove-N"); the rest is
/// the aggregator (its actor system, HTTP workers and blocking pool) and
/// the benchmark's own bookkeeping on the main thread.
fn cpu_split() -> (f64, f64) {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (mut aggregator, mut provers) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return (f64::NAN, f64::NAN) };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (comm) state ...": the name may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
        let cpu = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = (cpu(11) + cpu(12)) / ticks;
        if comm.starts_with("sim-prover") || comm.starts_with("zkpow-prove") {
            provers += secs;
        } else {
            aggregator += secs;
        }
    }
    (aggregator, provers)
}

async fn round_trips(rt: &tokio::runtime::Runtime, provers: usize, args: &Args) -> anyhow::Result<RoundTrips> {
    let mut agg = Aggregator::start(&[]).await?;
    let p = ready_provers(rt, &agg, provers, HashMap::new()).await?;
    let tasks = (provers * args.rt_per_prover).max(args.rt_min_tasks);
    // Batch tasks need no chaining here: a few distinct witnesses, reused.
    let pool = witnesses(16, 7)?;
    let batch: Vec<NewTask> =
        (1..=tasks as u64).map(|n| batch_task(n, n, pool[(n as usize) % pool.len()].clone())).collect();
    let cpu_before = cpu_split();
    for task in batch {
        agg.enqueue(task);
    }
    agg.wait_accepted(tasks, Duration::from_secs(600)).await?;
    let cpu_after = cpu_split();
    let times: Vec<Instant> = agg.accepted_times().into_iter().map(|(t, _)| t).collect();
    // The middle 80 %: the start (all provers arriving at once) and the tail
    // (fewer tasks than provers left) are not the steady state.
    let (lo, hi) = (times.len() / 10, times.len() * 9 / 10);
    let secs = times[hi - 1].duration_since(times[lo]).as_secs_f64().max(1e-9);
    let per_sec = (hi - 1 - lo) as f64 / secs;
    p.stop().await?;
    agg.server.stop(false).await;
    let us = |after: f64, before: f64| (after - before) / tasks as f64 * 1e6;
    Ok(RoundTrips {
        per_sec,
        aggregator_cpu_us: us(cpu_after.0, cpu_before.0),
        provers_cpu_us: us(cpu_after.1, cpu_before.1),
    })
}

// ---------------------------------------------------------------------------
// (b) utilisation against the ideal schedule.

fn critical_rank(kind: TaskKind) -> u8 {
    // As the queue orders a sequence's tasks: final, aggregate, batch.
    match kind {
        TaskKind::Final => 0,
        TaskKind::Aggregate => 1,
        TaskKind::Batch => 2,
    }
}

/// Makespan of the zero-overhead list schedule: `provers` identical
/// machines; every batch task ready at 0; an aggregate ready when both
/// halves are done and the final when the root is, both taking no proving
/// time (the non-recursive backend only merges); whenever a machine is free
/// it takes the ready task that comes first in the dispatcher's order
/// (lowest sequence, then final > aggregate > batch, then lowest batch).
/// This is what the dispatcher would achieve with zero dispatch cost; it is
/// not the optimum of the scheduling problem, so the report also gives the
/// lower bound max(work / provers, longest batch).
fn ideal_makespan(trees: &[Range], times: &HashMap<u64, f64>, provers: usize) -> f64 {
    type Key = (u64, u8, u64, u64, TaskKind);
    let mut seqs: BTreeMap<u64, SequenceState> = BTreeMap::new();
    struct SequenceState {
        root: Range,
        done: BTreeSet<Range>,
        created: BTreeSet<(TaskKind, Range)>,
        final_done: bool,
    }
    let mut ready: BTreeSet<Key> = BTreeSet::new();
    for &root in trees {
        let created = (root.0..=root.1).map(|b| (TaskKind::Batch, (b, b))).collect();
        seqs.insert(root.0, SequenceState { root, done: BTreeSet::new(), created, final_done: false });
        for b in root.0..=root.1 {
            ready.insert((root.0, critical_rank(TaskKind::Batch), b, b, TaskKind::Batch));
        }
    }
    let mut running: Vec<(f64, Key)> = Vec::new();
    let mut now = 0.0f64;
    loop {
        while running.len() < provers {
            let Some(key) = ready.pop_first() else { break };
            let d = if key.4 == TaskKind::Batch { times.get(&key.2).copied().unwrap_or(0.0) } else { 0.0 };
            running.push((now + d, key));
        }
        let Some(next) = running.iter().map(|r| r.0).reduce(f64::min) else { break };
        now = next;
        let (finished, still): (Vec<_>, Vec<_>) = running.into_iter().partition(|r| r.0 <= now);
        running = still;
        for (_, (seq, _, first, last, kind)) in finished {
            let Some(s) = seqs.get_mut(&seq) else { continue };
            if kind == TaskKind::Final {
                s.final_done = true;
            } else {
                s.done.insert((first, last));
            }
            for (k, r) in plan::ready(s.root, &s.done, s.final_done, &s.created) {
                s.created.insert((k, r));
                ready.insert((seq, critical_rank(k), r.0, r.1, k));
            }
        }
    }
    now
}

struct Utilisation {
    measured: f64,
    ideal: f64,
    lower_bound_util: f64,
    makespan_s: f64,
    ideal_makespan_s: f64,
}

async fn utilisation(rt: &tokio::runtime::Runtime, args: &Args, seed: u64) -> anyhow::Result<Utilisation> {
    let trees: Vec<Range> = (0..args.sequences).map(|s| (s * args.batches + 1, (s + 1) * args.batches)).collect();
    let total = (args.sequences * args.batches) as usize;
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed);
    let times: HashMap<u64, f64> =
        (1..=total as u64).map(|b| (b, args.mean_proof_ms / 1000.0 * rng.random_range(0.5..1.5))).collect();
    let work: f64 = times.values().sum();
    let ideal_s = ideal_makespan(&trees, &times, args.util_provers);
    let longest = times.values().copied().fold(0.0, f64::max);
    let lower_bound = (work / args.util_provers as f64).max(longest);

    let mut agg = Aggregator::start(&trees).await?;
    let durations = times.iter().map(|(&b, &s)| (b, Duration::from_secs_f64(s))).collect();
    let p = ready_provers(rt, &agg, args.util_provers, durations).await?;
    let ws = witnesses(total, seed)?;
    let started = Instant::now();
    for (&(first, last), chunk) in trees.iter().zip(ws.chunks(args.batches as usize)) {
        for (b, w) in (first..=last).zip(chunk) {
            agg.enqueue(batch_task(first, b, w.clone()));
        }
    }
    // Every batch, every aggregate (batches − 1 per sequence) and every final.
    let results = total + args.sequences as usize * args.batches as usize;
    agg.wait_accepted(results, Duration::from_secs(600)).await?;
    let accepted = agg.accepted_times();
    let finals = accepted.iter().filter(|(_, k)| *k == TaskKind::Final).count();
    anyhow::ensure!(finals == args.sequences as usize, "{finals} finals for {} sequences", args.sequences);
    let end = accepted.iter().map(|(t, _)| *t).max().context("no results")?;
    let makespan = end.duration_since(started).as_secs_f64();
    p.stop().await?;
    agg.server.stop(false).await;
    let provers = args.util_provers as f64;
    Ok(Utilisation {
        measured: work / (provers * makespan),
        ideal: work / (provers * ideal_s),
        lower_bound_util: work / (provers * lower_bound),
        makespan_s: makespan,
        ideal_makespan_s: ideal_s,
    })
}

// ---------------------------------------------------------------------------
// (c) dispatch latency.

async fn latency(rt: &tokio::runtime::Runtime, provers: usize, samples: usize) -> anyhow::Result<Vec<f64>> {
    let mut agg = Aggregator::start(&[]).await?;
    let p = ready_provers(rt, &agg, provers, HashMap::new()).await?;
    let pool = witnesses(16, 9)?;
    let mut out = Vec::with_capacity(samples);
    for i in 1..=samples as u64 {
        let task = batch_task(i, i, pool[i as usize % pool.len()].clone());
        let ready = Instant::now();
        agg.enqueue(task);
        agg.wait_accepted(i as usize, Duration::from_secs(30)).await?;
        let got = p.received(i).context("the backend never saw the task")?;
        out.push(got.duration_since(ready).as_secs_f64() * 1000.0);
        // Let the prover that took it claim again, so every prover waits
        // in a long poll when the next task becomes ready.
        tokio::time::sleep(Duration::from_millis(10 + provers as u64 / 50)).await;
    }
    p.stop().await?;
    agg.server.stop(false).await;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reporting.

fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn runs(v: &[f64], digits: usize) -> String {
    v.iter().map(|x| format!("{x:.digits$}")).collect::<Vec<_>>().join(", ")
}

#[derive(Default)]
struct Results {
    rt: BTreeMap<usize, Vec<f64>>,
    rt_agg_cpu: BTreeMap<usize, Vec<f64>>,
    rt_prover_cpu: BTreeMap<usize, Vec<f64>>,
    util: Vec<Utilisation>,
    lat_p50: BTreeMap<usize, Vec<f64>>,
    lat_p99: BTreeMap<usize, Vec<f64>>,
}

fn report(args: &Args, r: &Results, load_start: &str) -> (String, bool) {
    let mut ok = true;
    let mut s = String::from("# zkpow dispatcher benchmark\n\n");
    s += &format!("- date: {}\n- machine: {}\n", utc_now(), machine());
    s += &format!("- load average (1, 5, 15 min): {load_start} at the start, {} at the end\n", loadavg());
    s += &match SPLIT.get() {
        Some((a, p)) => format!("- cores: the aggregator's threads on {a:?}, the simulated provers' on {p:?}\n"),
        None => "- cores: shared by the aggregator and the simulated provers\n".to_string(),
    };
    s += &format!("- runs per measurement: {} (medians; every run's value listed)\n\n", args.runs);
    s += "| measurement | goal | runs | median | met |\n|---|---|---|---|---|\n";
    let mut row = |name: String, goal: &str, vals: &[f64], digits: usize, met: bool| {
        if vals.is_empty() {
            // A part left out with --parts.
            return;
        }
        ok &= met;
        s += &format!(
            "| {name} | {goal} | {} | {:.digits$} | {} |\n",
            runs(vals, digits),
            median(vals),
            if met { "yes" } else { "**no**" }
        );
    };
    for (n, v) in &r.rt {
        row(format!("(a) round trips/s, {n} provers"), "≥ 5,000", v, 0, median(v) >= 5_000.0);
    }
    for (n, v) in &r.rt_agg_cpu {
        row(format!("(a) aggregator CPU per round trip, µs, {n} provers"), "", v, 0, true);
        let capacity: Vec<f64> = v.iter().map(|us| 1e6 / us).collect();
        row(format!("(a) aggregator round trips per CPU-second, {n} provers"), "", &capacity, 0, true);
    }
    for (n, v) in &r.rt_prover_cpu {
        row(format!("(a) simulated provers' CPU per round trip, µs, {n} provers"), "", v, 0, true);
    }
    let ratio: Vec<f64> = r.util.iter().map(|u| u.measured / u.ideal).collect();
    let measured: Vec<f64> = r.util.iter().map(|u| u.measured * 100.0).collect();
    let ideal: Vec<f64> = r.util.iter().map(|u| u.ideal * 100.0).collect();
    let lb: Vec<f64> = r.util.iter().map(|u| u.lower_bound_util * 100.0).collect();
    let mk: Vec<f64> = r.util.iter().map(|u| u.makespan_s).collect();
    let imk: Vec<f64> = r.util.iter().map(|u| u.ideal_makespan_s).collect();
    let shape = format!("{} seq × {} batches, {} provers", args.sequences, args.batches, args.util_provers);
    row(format!("(b) utilisation / ideal, {shape}"), "≥ 0.97", &ratio, 3, median(&ratio) >= 0.97);
    row("(b) utilisation measured, %".into(), "", &measured, 1, true);
    row("(b) utilisation of the ideal list schedule, %".into(), "", &ideal, 1, true);
    row("(b) utilisation at the lower bound max(work/provers, longest), %".into(), "", &lb, 1, true);
    row("(b) makespan measured, s".into(), "", &mk, 2, true);
    row("(b) makespan of the ideal list schedule, s".into(), "", &imk, 2, true);
    for (n, v) in &r.lat_p50 {
        row(format!("(c) dispatch latency median, ms, {n} waiting provers"), "< 5", v, 2, median(v) < 5.0);
    }
    for (n, v) in &r.lat_p99 {
        row(format!("(c) dispatch latency p99, ms, {n} waiting provers"), "", v, 2, true);
    }
    s += &format!(
        "\n(a): {} round trips per prover (at least {} tasks), zero proof time, rate over the middle 80 % of \
         completions. (b): proof times uniform in [0.5, 1.5] × {} ms per batch; aggregate and final tasks \
         take no proving time (the non-recursive backend merges bundles). (c): {} tasks one at a time, \
         enqueue → the simulated backend receiving the request (after the worker decoded the claim).\n",
        args.rt_per_prover, args.rt_min_tasks, args.mean_proof_ms, args.latency_samples
    );
    (s, ok)
}

async fn run(rt: &tokio::runtime::Runtime, args: &Args) -> anyhow::Result<Results> {
    let mut r = Results::default();
    // Rounds interleave the measurements so that machine load drifts hit
    // all of them alike.
    for round in 0..args.runs {
        eprintln!("round {} of {}", round + 1, args.runs);
        let part = |p: &str| args.parts.iter().any(|x| x == p);
        for &n in args.rt_provers.iter().filter(|_| part("a")) {
            let v = round_trips(rt, n, args).await.with_context(|| format!("(a) with {n} provers"))?;
            eprintln!(
                "  (a) {n} provers: {:.0} round trips/s; CPU per round trip: aggregator {:.0} µs, provers {:.0} µs",
                v.per_sec, v.aggregator_cpu_us, v.provers_cpu_us
            );
            r.rt.entry(n).or_default().push(v.per_sec);
            r.rt_agg_cpu.entry(n).or_default().push(v.aggregator_cpu_us);
            r.rt_prover_cpu.entry(n).or_default().push(v.provers_cpu_us);
        }
        if part("b") {
            let u = utilisation(rt, args, round as u64 + 1).await.context("(b) utilisation")?;
            eprintln!(
                "  (b) utilisation {:.1} % (ideal {:.1} %, ratio {:.3}), makespan {:.2} s (ideal {:.2} s)",
                u.measured * 100.0,
                u.ideal * 100.0,
                u.measured / u.ideal,
                u.makespan_s,
                u.ideal_makespan_s
            );
            r.util.push(u);
        }
        for &n in args.latency_provers.iter().filter(|_| part("c")) {
            let v = latency(rt, n, args.latency_samples).await.with_context(|| format!("(c) with {n} provers"))?;
            eprintln!("  (c) {n} provers: median {:.2} ms, p99 {:.2} ms", median(&v), percentile(&v, 0.99));
            r.lat_p50.entry(n).or_default().push(median(&v));
            r.lat_p99.entry(n).or_default().push(percentile(&v, 0.99));
        }
    }
    Ok(r)
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let smoke = args.smoke || !args.bench;
    if smoke {
        args.tiny();
    }
    // 1,000 provers are 1,000 connections on each side.
    raise_fd_limit();
    match (args.cores, core_halves()) {
        (Cores::Split, Some((aggregator, provers))) => {
            // Everything this thread starts from here on (the actix system,
            // its HTTP workers, the dispatcher) inherits the aggregator's half.
            pin_current_thread(&aggregator);
            let _ = SPLIT.set((aggregator, provers));
        }
        (Cores::Split, None) => eprintln!("--cores split needs at least 2 cores; running shared"),
        (Cores::Shared, _) => {}
    }
    let load_start = loadavg();
    // The provers' own runtime, as if they were other processes (two
    // threads: the machine's cores), made and dropped outside the
    // aggregator's system, which may not drop a runtime.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sim-prover")
        .on_thread_start(|| {
            if let Some((_, provers)) = SPLIT.get() {
                pin_current_thread(provers);
            }
        })
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting the provers' runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = actix_rt::System::new().block_on(run(&rt, &args));
    rt.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(r) => {
            let (text, met) = report(&args, &r, &load_start);
            println!("{text}");
            if smoke {
                if let Err(e) = check_smoke(&r) {
                    eprintln!("dispatch benchmark smoke run: {e:#}");
                    return ExitCode::FAILURE;
                }
                println!("smoke run: every part started and completed");
                return ExitCode::SUCCESS;
            }
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-dispatch.md");
            if let Err(e) = std::fs::write(&path, &text) {
                eprintln!("writing {}: {e}", path.display());
            }
            if !met {
                eprintln!("some goals were missed (see the table)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dispatch benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What a tiny run must show: every part produced sane numbers.
fn check_smoke(r: &Results) -> anyhow::Result<()> {
    anyhow::ensure!(r.rt.values().flatten().all(|&x| x.is_finite() && x > 0.0), "(a) measured no round trips");
    for u in &r.util {
        // Simulated sleeps only overshoot, and the list schedule has no
        // overhead: a dispatcher beating it would mean a measuring error.
        anyhow::ensure!(u.measured > 0.0 && u.measured <= u.ideal * 1.001, "(b) utilisation out of range");
        anyhow::ensure!(u.ideal <= u.lower_bound_util * 1.001, "(b) ideal schedule beats the lower bound");
    }
    anyhow::ensure!(r.lat_p50.values().flatten().all(|&x| x.is_finite() && x >= 0.0), "(c) no latencies");
    Ok(())
}

/// Lifts the soft open-files limit to the hard one (1,000 provers need
/// about 2,000 sockets in this one process).
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Cores {
    Split,
    Shared,
}

/// The aggregator's and the provers' halves of the cores, set when the run
/// is split: the provers' side pins the threads it starts to its half, and
/// the report names both.
static SPLIT: OnceLock<(Vec<usize>, Vec<usize>)> = OnceLock::new();

/// The cores this process may use, split in two halves (aggregator first),
/// or None with fewer than two.
fn core_halves() -> Option<(Vec<usize>, Vec<usize>)> {
    // SAFETY: sched_getaffinity writes only into the set passed, of the size given.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set filled above.
    let cores: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect();
    if cores.len() < 2 {
        return None;
    }
    let (a, p) = cores.split_at(cores.len() / 2);
    Some((a.to_vec(), p.to_vec()))
}

/// Restricts the calling thread (and the threads it starts later) to `cores`.
fn pin_current_thread(cores: &[usize]) {
    // SAFETY: the set is built locally and passed with its own size; pid 0 is
    // the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("pinning a thread to cores {cores:?} failed: {}", std::io::Error::last_os_error());
        }
    }
}

//! On-chain verification throughput of the network: how many sequences a
//! miner gets verified per minute as the sequencer posts faster, and how
//! long each one waits.
//!
//! Two networks run side by side in one process, each its own anvil chain
//! (1 s blocks), rollup (T1 = 10, T2 = 20 blocks, shape 2,4) and miner (one
//! `zkpow aggregator` and one `zkpow prover` of the release binary, 100 ETH
//! deposit): "pipelined" runs the sender with `sender.pipelined = true`,
//! "reference" with `false` (one window at a time, the old rule). Both
//! sequencers post the same one-batch sequences on the same schedule, driven
//! by block numbers: one sequence every N blocks for M minutes per rate, then
//! a drain without posts so the last sequences can still be verified.
//!
//! Everything measured comes from the rollups' events: `SequenceBatches`
//! (posted) and `SequenceVerified` (verified), with their blocks and block
//! timestamps. Per network and rate: sequences posted and verified per
//! minute, posted → verified latency (p50, p95) of the sequences posted at
//! that rate, and the lag (posted − verified sequences) at the start and the
//! end of the phase.
//!
//! `make bench-throughput` (about 42 minutes with the defaults);
//! `make bench-throughput BENCH_THROUGHPUT_ARGS="--smoke"` checks in about two
//! minutes that it starts and completes. The tables go to stdout and to
//! `target/bench-throughput.md`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;

use zkpow::chain::bindings::{MinerDeposit, ZkPowRollup};
use zkpow::chain::deploy::{check_eip2537, deploy_as, fund_rewards, RollupParams};
use zkpow::chain::root_to_b256;
use zkpow::circuit::keys::test_params_dir;
use zkpow::circuit::sample::genesis_accounts;
use zkpow::circuit::{Shape, StateTree};
use zkpow::devnet::anvil::{Chain, ChainSpec};
use zkpow::devnet::procs::{stop_all, ChildProc, STOP_GRACE};
use zkpow::devnet::sequencer::{History, Simulator, SimulatorConfig};
use zkpow::devnet::{
    genesis_path, load_keys, spawn_miner, write_miner_config, MinerRollup, MinerSetup, ETHER, GENESIS_ACCOUNTS,
    GENESIS_BALANCE, OWNER_ACCOUNT, SEQUENCER_ACCOUNT,
};

mod common;
use common::{command_line, loadavg, run_dir, target_dir};

/// The network: 1 s blocks, T1 = 10, T2 = 20, the test shape.
const BLOCK_TIME: f64 = 1.0;
const T1: u32 = 10;
const T2: u32 = 20;
const SHAPE: Shape = Shape::TEST;
/// Anvil account of each network's miner (the networks are separate chains).
const MINER_ACCOUNT: usize = 2;
/// Enough for many bonded commits at once.
const MINER_DEPOSIT: u128 = 100 * ETHER;
/// More than 40 minutes of sequences at every rate can earn.
const REWARD_FUNDS: u128 = 1_000 * ETHER;
/// The devnet's mix of valid and invalid transfers.
const INVALID_RATIO: f64 = 0.3;
const ROLLUP_NAME: &str = "rollup";
/// Seconds to wait for the aggregators to report ready.
const READY_LIMIT: Duration = Duration::from_secs(180);
/// A progress line on stderr every this many blocks.
const PROGRESS_BLOCKS: u64 = 60;

#[derive(Debug, Parser)]
#[command(
    name = "throughput",
    about = "On-chain verification throughput: the pipelined sender against the one-window rule"
)]
struct Args {
    /// Minutes per rate.
    #[arg(long, env = "THROUGHPUT_MINUTES", default_value_t = 10.0)]
    minutes: f64,
    /// Blocks between two sequences, one phase per value, in this order.
    #[arg(long, env = "THROUGHPUT_RATES", value_delimiter = ',', default_value = "20,10,5,3")]
    rates: Vec<u64>,
    /// Blocks without new sequences after the last phase, in which the last
    /// sequences can still be verified (latencies count them; the lag at the
    /// end of the drain shows what is left).
    #[arg(long, env = "THROUGHPUT_DRAIN_BLOCKS", default_value_t = 2 * (T1 + T2) as u64)]
    drain_blocks: u64,
    /// Check that the benchmark starts and completes: one sequence every 5
    /// blocks for 60 blocks, a 30-block drain (overrides the other knobs).
    #[arg(long)]
    smoke: bool,
    /// Keep the data directory (chain states, miners' databases, logs).
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`. Without it (`cargo test --benches`, as
    /// `make test` runs it) the benchmark runs `--smoke`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The rate schedule, in blocks from a network's start block.
#[derive(Debug, Clone)]
struct Plan {
    /// `(blocks between sequences, phase length in blocks)`.
    phases: Vec<(u64, u64)>,
    drain: u64,
}

impl Plan {
    fn from_args(args: &Args) -> anyhow::Result<Plan> {
        if args.smoke {
            return Ok(Plan { phases: vec![(5, 60)], drain: 30 });
        }
        anyhow::ensure!(!args.rates.is_empty(), "--rates needs at least one value");
        anyhow::ensure!(args.rates.iter().all(|&r| r >= 1), "--rates are blocks between sequences: at least 1");
        anyhow::ensure!(args.minutes > 0.0, "--minutes must be positive");
        let len = (args.minutes * 60.0 / BLOCK_TIME).round() as u64;
        anyhow::ensure!(len >= 1, "--minutes is shorter than a block");
        Ok(Plan { phases: args.rates.iter().map(|&r| (r, len)).collect(), drain: args.drain_blocks })
    }

    /// Blocks from the start to the end of phase `i` (`i == phases.len()`: the drain).
    fn bounds(&self, i: usize) -> (u64, u64) {
        let start: u64 = self.phases[..i.min(self.phases.len())].iter().map(|p| p.1).sum();
        let len = self.phases.get(i).map_or(self.drain, |p| p.1);
        (start, start + len)
    }

    fn total(&self) -> u64 {
        self.bounds(self.phases.len()).1
    }

    /// `(block offset, phase)` of every sequence to post.
    fn posts(&self) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        for (i, &(every, _)) in self.phases.iter().enumerate() {
            let (start, end) = self.bounds(i);
            out.extend((start..end).step_by(every as usize).map(|b| (b, i)));
        }
        out
    }

    fn describe(&self) -> String {
        let phases: Vec<String> =
            self.phases.iter().map(|(every, len)| format!("one every {every} blocks for {len} blocks")).collect();
        format!("{}, then {} blocks without posts", phases.join(", "), self.drain)
    }
}

struct Posted {
    init: u64,
    fin: u64,
    block: u64,
}

/// The rollup's events, read as the chain grows.
#[derive(Default)]
struct Events {
    /// The last block read.
    scanned: Option<u64>,
    posted: Vec<Posted>,
    /// `(finalNewBatch, block)` of every `SequenceVerified`, in order.
    verified: Vec<(u64, u64)>,
    timestamps: HashMap<u64, u64>,
}

impl Events {
    async fn collect(&mut self, provider: &DynProvider, rollup: Address, to: u64) -> anyhow::Result<()> {
        let from = self.scanned.map_or(0, |b| b + 1);
        if from > to {
            return Ok(());
        }
        let filter = Filter::new()
            .address(rollup)
            .event_signature(vec![
                ZkPowRollup::SequenceBatches::SIGNATURE_HASH,
                ZkPowRollup::SequenceVerified::SIGNATURE_HASH,
            ])
            .from_block(from)
            .to_block(to);
        let logs = provider.get_logs(&filter).await.context("reading the rollup's events")?;
        for log in logs {
            let block = log.block_number.context("a log without a block number")?;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.timestamps.entry(block) {
                let ts = match log.block_timestamp {
                    Some(ts) => ts,
                    None => {
                        provider
                            .get_block_by_number(BlockNumberOrTag::Number(block))
                            .await
                            .context("reading a block")?
                            .with_context(|| format!("block {block} is missing"))?
                            .header
                            .timestamp
                    }
                };
                slot.insert(ts);
            }
            if let Ok(e) = ZkPowRollup::SequenceBatches::decode_log(&log.inner) {
                self.posted.push(Posted { init: e.initNumBatch, fin: e.finalNewBatch, block });
            } else if let Ok(e) = ZkPowRollup::SequenceVerified::decode_log(&log.inner) {
                self.verified.push((e.finalNewBatch, block));
            }
        }
        self.scanned = Some(to);
        Ok(())
    }

    /// The block in which the sequence ending at batch `fin` was verified
    /// (by its own `SequenceVerified` or one covering it).
    fn verified_at(&self, fin: u64) -> Option<u64> {
        self.verified.iter().find(|(f, _)| *f >= fin).map(|(_, b)| *b)
    }

    /// Sequences posted but not verified at the end of block `b`.
    fn lag_at(&self, b: u64) -> usize {
        self.posted.iter().filter(|p| p.block <= b && self.verified_at(p.fin).is_none_or(|v| v > b)).count()
    }
}

/// One network: chain, rollup, sequencer and miner.
struct Network {
    name: &'static str,
    pipelined: bool,
    // Stopped in this order: provers, aggregator, chain.
    provers: Vec<ChildProc>,
    aggregator: ChildProc,
    chain: Chain,
    reader: DynProvider,
    rollup: Address,
    api_port: u16,
    sim: Simulator,
    events: Events,
    /// Start block of the schedule.
    start: u64,
    /// `initNumBatch` → (phase, scheduled block) of every sequence posted.
    scheduled: HashMap<u64, (usize, u64)>,
}

impl Network {
    fn procs_mut(&mut self) -> impl Iterator<Item = &mut ChildProc> {
        self.provers
            .iter_mut()
            .chain(std::iter::once(&mut self.aggregator))
            .chain(std::iter::once(&mut self.chain.proc))
    }

    /// An error naming the first child process that exited, with its log.
    fn check_children(&mut self) -> anyhow::Result<()> {
        for p in self.procs_mut() {
            if let Some(status) = p.exited() {
                anyhow::bail!("{} exited ({status}); last lines of {}:\n{}", p.name, p.log.display(), p.log_tail(30));
            }
        }
        Ok(())
    }
}

/// The `[sender]` section of a network's miner: `sender.pipelined` selects
/// the rule.
fn sender_section(pipelined: bool) -> String {
    format!("[sender]\npipelined = {pipelined}\n")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?.local_addr()?.port())
}

/// Starts a network's chain, deploys and funds its rollup, bonds the
/// miner's deposit, starts the miner and replays the (empty) rollup for the
/// sequencer. Spawns child processes: call it from the main thread.
async fn start_network(
    name: &'static str,
    pipelined: bool,
    chain_id: u64,
    data_dir: &Path,
    keys_dir: &Path,
    vk: &[u8],
) -> anyhow::Result<Network> {
    let dir = data_dir.join(name);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let spec = ChainSpec {
        name: name.into(),
        chain_id,
        port: free_port()?,
        block_time: BLOCK_TIME,
        state: dir.join("chain.state.json"),
        log: logs.join("anvil.log"),
    };
    let chain = Chain::start(&spec).await?;
    let reader = chain.reader()?;
    check_eip2537(&reader).await?;

    let genesis = genesis_accounts(SHAPE, GENESIS_ACCOUNTS, GENESIS_BALANCE);
    let genesis_file = genesis_path(&dir, ROLLUP_NAME);
    std::fs::write(&genesis_file, serde_json::to_string(&genesis)? + "\n")
        .with_context(|| format!("writing {}", genesis_file.display()))?;
    let root = root_to_b256(&StateTree::with_accounts(SHAPE.d, genesis.clone()).root());
    let (owner, provider) = chain.wallet(OWNER_ACCOUNT)?;
    let (sequencer, sequencer_provider) = chain.wallet(SEQUENCER_ACCOUNT)?;
    let mut params = RollupParams::dev(vk.to_vec(), sequencer, root, SHAPE.batch_bytes() as u64);
    params.t1 = T1;
    params.t2 = T2;
    let dep = deploy_as(provider.clone(), owner, &params, None).await.with_context(|| format!("{name}: deploying"))?;
    // One rollup per deposit contract: its whole reward pool is this rollup's.
    fund_rewards(provider.clone(), dep.deposit, dep.rollup, REWARD_FUNDS)
        .await
        .with_context(|| format!("{name}: funding"))?;
    let (_, miner_wallet) = chain.wallet(MINER_ACCOUNT)?;
    let receipt = MinerDeposit::new(dep.deposit, miner_wallet)
        .deposit()
        .value(U256::from(MINER_DEPOSIT))
        .send()
        .await
        .with_context(|| format!("{name}: bonding the miner's deposit"))?
        .get_receipt()
        .await
        .with_context(|| format!("{name}: bonding the miner's deposit"))?;
    anyhow::ensure!(receipt.status(), "{name}: the miner's deposit reverted");

    let api_port = free_port()?;
    let config = write_miner_config(&MinerSetup {
        dir: dir.join("miner"),
        keys_dir,
        account: MINER_ACCOUNT,
        api_port,
        block_time: BLOCK_TIME,
        chains: std::slice::from_ref(&chain),
        rollups: vec![MinerRollup {
            name: ROLLUP_NAME.into(),
            chain: chain.name.clone(),
            address: dep.rollup,
            shape: SHAPE,
            genesis_file,
        }],
        extra_toml: sender_section(pipelined),
    })?;
    let (aggregator, provers) = spawn_miner(Path::new(env!("CARGO_BIN_EXE_zkpow")), &config, "miner", 1, &logs)?;

    let sim_cfg = SimulatorConfig {
        rollup: name.into(),
        shape: SHAPE,
        address: dep.rollup,
        accounts: GENESIS_ACCOUNTS as u32,
        max_batches: 1,
        invalid_ratio: INVALID_RATIO,
        // Unused: the benchmark posts by block number (`post_one`).
        interval: Duration::ZERO,
        // The same seed on both networks: the same sequences.
        seed: 2026,
    };
    let sim = Simulator::resume(sim_cfg, sequencer_provider, &genesis, Arc::new(Mutex::new(History::default())))
        .await
        .with_context(|| format!("{name}: starting the sequencer"))?;
    Ok(Network {
        name,
        pipelined,
        provers,
        aggregator,
        chain,
        reader,
        rollup: dep.rollup,
        api_port,
        sim,
        events: Events::default(),
        start: 0,
        scheduled: HashMap::new(),
    })
}

/// Waits until every network's aggregator answers `/readyz` with success.
async fn wait_ready(nets: &mut [Network]) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let started = Instant::now();
    for net in nets.iter_mut() {
        let url = format!("http://127.0.0.1:{}/readyz", net.api_port);
        loop {
            net.check_children()?;
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < READY_LIMIT,
                "{}: the aggregator was not ready within {READY_LIMIT:?}; last lines of {}:\n{}",
                net.name,
                net.aggregator.log.display(),
                net.aggregator.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// Runs a network's schedule from `net.start`: posts on time, reads events
/// up to the end block, watches the children. Returns the last block
/// measured (short of the end when interrupted).
async fn drive(net: &mut Network, plan: &Plan, shutdown: watch::Receiver<bool>) -> anyhow::Result<u64> {
    let end = net.start + plan.total();
    let posts = plan.posts();
    let mut next = 0;
    let mut errors = 0u32;
    let mut shown = net.start;
    let interrupted = |net: &Network| net.events.scanned.unwrap_or(net.start);
    loop {
        if *shutdown.borrow() {
            return Ok(interrupted(net));
        }
        if let Err(e) = net.check_children() {
            // Ctrl-C reaches the children too; they may stop first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            if *shutdown.borrow() {
                return Ok(interrupted(net));
            }
            return Err(e.context(format!("network {}", net.name)));
        }
        let head = match net.reader.get_block_number().await {
            Ok(h) => h,
            Err(e) => {
                errors += 1;
                anyhow::ensure!(errors < 30, "network {}: the chain stopped answering: {e}", net.name);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(&(offset, phase)) = posts.get(next) {
            let due = net.start + offset;
            if due > head {
                break;
            }
            match net.sim.post_one().await {
                Ok((init, _)) => {
                    net.scheduled.insert(init, (phase, due));
                }
                Err(_) if *shutdown.borrow() => return Ok(interrupted(net)),
                Err(e) => return Err(e.context(format!("network {}: posting a sequence", net.name))),
            }
            next += 1;
        }
        match net.events.collect(&net.reader, net.rollup, head.min(end)).await {
            Ok(()) => errors = 0,
            Err(e) => {
                errors += 1;
                anyhow::ensure!(errors < 30, "network {}: {e:#}", net.name);
            }
        }
        let scanned = net.events.scanned.unwrap_or(0);
        if scanned >= shown + PROGRESS_BLOCKS || scanned >= end {
            shown = scanned;
            let offset = scanned.saturating_sub(net.start);
            // Phase i covers the blocks (start, end] of its bounds.
            let phase = (0..=plan.phases.len()).find(|&i| offset <= plan.bounds(i).1).unwrap_or(plan.phases.len());
            let what = plan.phases.get(phase).map_or("drain".to_string(), |p| format!("one every {} blocks", p.0));
            eprintln!(
                "[{}] block {offset}/{}, {what}: posted {}, verified {}, lag {}",
                net.name,
                plan.total(),
                net.events.posted.len(),
                net.events.posted.iter().filter(|p| net.events.verified_at(p.fin).is_some()).count(),
                net.events.lag_at(scanned)
            );
        }
        if scanned >= end {
            return Ok(end);
        }
        let mut sd = shutdown.clone();
        tokio::select! {
            _ = sd.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// One row of a network's table.
struct Row {
    /// Blocks between sequences; `None`: the drain.
    every: Option<u64>,
    blocks: u64,
    posted: usize,
    verified: usize,
    /// Posted → verified of the phase's verified sequences: (blocks, seconds).
    latencies: Vec<(u64, u64)>,
    unverified: usize,
    lag_start: usize,
    lag_end: usize,
}

/// The rows of a network up to block `last` (the end, or where it was interrupted).
fn rows(net: &Network, plan: &Plan, last: u64) -> Vec<Row> {
    let ev = &net.events;
    let mut out = Vec::new();
    for i in 0..=plan.phases.len() {
        let (s, e) = plan.bounds(i);
        let (start, end) = (net.start + s, (net.start + e).min(last));
        if start >= last {
            break;
        }
        let mut latencies = Vec::new();
        let mut posted = 0;
        let mut unverified = 0;
        for p in &ev.posted {
            if net.scheduled.get(&p.init).map(|s| s.0) != Some(i) {
                continue;
            }
            posted += 1;
            match ev.verified_at(p.fin) {
                Some(v) => {
                    let secs = ev.timestamps[&v].saturating_sub(ev.timestamps[&p.block]);
                    latencies.push((v - p.block, secs));
                }
                None => unverified += 1,
            }
        }
        // Sequences verified in the window (start, end], whenever posted.
        let verified =
            ev.posted.iter().filter(|p| ev.verified_at(p.fin).is_some_and(|v| v > start && v <= end)).count();
        latencies.sort_unstable();
        out.push(Row {
            every: plan.phases.get(i).map(|p| p.0),
            blocks: end - start,
            posted,
            verified,
            latencies,
            unverified,
            lag_start: ev.lag_at(start),
            lag_end: ev.lag_at(end),
        });
    }
    out
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[(u64, u64)], p: f64) -> Option<(u64, u64)> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn per_min(n: usize, blocks: u64) -> f64 {
    if blocks == 0 {
        return 0.0;
    }
    n as f64 * 60.0 / (blocks as f64 * BLOCK_TIME)
}

fn latency(l: Option<(u64, u64)>) -> String {
    l.map_or("–".into(), |(b, s)| format!("{b} ({s} s)"))
}

fn rate_label(every: Option<u64>) -> String {
    every.map_or("drain (no posts)".into(), |n| format!("every {n} blocks"))
}

fn network_table(net: &Network, rows: &[Row]) -> String {
    let rule = if net.pipelined { "sender.pipelined = true" } else { "sender.pipelined = false: one window at a time" };
    let mut s = format!("## {} ({rule})\n\n", net.name);
    s += "| rate | blocks | posted | posted/min | verified | verified/min | latency p50 blocks (s) | latency p95 blocks (s) | unverified at end | lag at start | lag at end |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} | {} | {} |\n",
            rate_label(r.every),
            r.blocks,
            r.posted,
            per_min(r.posted, r.blocks),
            r.verified,
            per_min(r.verified, r.blocks),
            latency(percentile(&r.latencies, 0.5)),
            latency(percentile(&r.latencies, 0.95)),
            if r.every.is_some() { r.unverified.to_string() } else { "–".into() },
            r.lag_start,
            r.lag_end
        );
    }
    let ev = &net.events;
    // Scheduling check: a post lands in the block after its due block when on time.
    let late = ev
        .posted
        .iter()
        .filter_map(|p| net.scheduled.get(&p.init).map(|&(_, due)| p.block.saturating_sub(due + 1)))
        .max()
        .unwrap_or(0);
    s += &format!(
        "\nSequences posted {}, verified {}; latest post {late} block(s) behind schedule.",
        ev.posted.len(),
        ev.posted.iter().filter(|p| ev.verified_at(p.fin).is_some()).count()
    );
    if let (Some(first), Some(last)) =
        (ev.posted.first(), ev.verified.last().map(|v| v.1).or(ev.posted.last().map(|p| p.block)))
    {
        if last > first.block {
            let secs = ev.timestamps[&last].saturating_sub(ev.timestamps[&first.block]);
            s += &format!(" Measured block time {:.2} s.", secs as f64 / (last - first.block) as f64);
        }
    }
    s + "\n"
}

fn side_by_side(a: (&Network, &[Row]), b: (&Network, &[Row])) -> String {
    let (na, nb) = (a.0.name, b.0.name);
    let mut s = String::from("## Side by side\n\n");
    s += &format!(
        "| rate | posted/min | verified/min {na} | verified/min {nb} | p50 {na} | p50 {nb} | p95 {na} | p95 {nb} | lag at end {na} | lag at end {nb} |\n"
    );
    s += "|---|---|---|---|---|---|---|---|---|---|\n";
    for (ra, rb) in a.1.iter().zip(b.1) {
        s += &format!(
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
            rate_label(ra.every),
            per_min(ra.posted, ra.blocks),
            per_min(ra.verified, ra.blocks),
            per_min(rb.verified, rb.blocks),
            latency(percentile(&ra.latencies, 0.5)),
            latency(percentile(&rb.latencies, 0.5)),
            latency(percentile(&ra.latencies, 0.95)),
            latency(percentile(&rb.latencies, 0.95)),
            ra.lag_end,
            rb.lag_end
        );
    }
    s
}

fn machine() -> String {
    let nproc = command_line("nproc", &[])
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.to_string()).unwrap_or_default());
    let info = |file: &str, key: &str| {
        std::fs::read_to_string(file).ok().and_then(|c| {
            c.lines().find(|l| l.starts_with(key)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string())
        })
    };
    let cpu = info("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let mem = info("/proc/meminfo", "MemTotal").unwrap_or_default();
    format!("{nproc} cores (nproc), {cpu}, {mem} memory")
}

struct Header {
    date: String,
    machine: String,
    load_start: String,
    plan: String,
}

fn report(h: &Header, nets: &[Network], all_rows: &[Vec<Row>], interrupted: bool) -> String {
    let mut s = String::from("# zkpow on-chain throughput\n\n");
    s += &format!("- date: {}\n- machine: {}\n", h.date, h.machine);
    s += &format!("- load average (1, 5, 15 min): {} at the start, {} at the end\n", h.load_start, loadavg());
    s += &format!(
        "- zkpow {} ({}), release build; anvil, {BLOCK_TIME} s blocks, T1 = {T1}, T2 = {T2} blocks, shape {SHAPE}, one-batch sequences\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("BUILD_GIT_SHA").unwrap_or("unknown commit")
    );
    s += &format!(
        "- per network: its own chain, rollup and miner (1 aggregator + 1 prover, {} ETH deposit); schedule: {}\n",
        MINER_DEPOSIT / ETHER,
        h.plan
    );
    s += "- measured from the rollups' `SequenceBatches` and `SequenceVerified` events. posted/min and verified/min: \
          sequences posted / verified within the phase's blocks; latency: posted → verified of the sequences posted \
          in the phase (verified at any later time; \"unverified at end\" were not verified by the end of the run); \
          lag = posted − verified sequences\n";
    if interrupted {
        s += "\n**Interrupted: the tables cover the run up to the interruption.**\n";
    }
    for (net, rows) in nets.iter().zip(all_rows) {
        s += "\n";
        s += &network_table(net, rows);
    }
    if let [a, b] = nets {
        s += "\n";
        s += &side_by_side((a, &all_rows[0]), (b, &all_rows[1]));
    }
    s
}

/// Turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("stopping (the tables cover the run so far)");
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn run(args: Args, data_dir: &Path, target_dir: &Path) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let smoke = args.smoke;
    let header_date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let load_start = loadavg();
    let mut shutdown = shutdown_signal()?;

    let keys_dir = test_params_dir();
    eprintln!("throughput benchmark: {}; data and logs in {}", plan.describe(), data_dir.display());

    let setup = async {
        let vk = load_keys(&keys_dir, &[SHAPE]).await?.remove(0);
        let mut nets = Vec::new();
        for (name, pipelined, chain_id) in [("pipelined", true, 31337), ("reference", false, 31338)] {
            nets.push(start_network(name, pipelined, chain_id, data_dir, &keys_dir, &vk).await?);
        }
        wait_ready(&mut nets).await?;
        anyhow::Ok(nets)
    };
    let mut nets = tokio::select! {
        n = setup => n?,
        _ = shutdown.changed() => anyhow::bail!("interrupted while starting"),
    };
    for net in nets.iter_mut() {
        net.start = net.reader.get_block_number().await.context("reading the start block")?;
    }
    eprintln!("networks ready; the schedule takes {} blocks", plan.total());

    let [a, b] = nets.as_mut_slice() else { unreachable!("two networks") };
    let (last_a, last_b) = tokio::try_join!(drive(a, &plan, shutdown.clone()), drive(b, &plan, shutdown.clone()))?;
    let interrupted = *shutdown.borrow();

    // Provers first (a prover hands its last proof to its aggregator), then
    // the aggregators, then the chains.
    stop_all(nets.iter_mut().flat_map(|n| n.provers.iter_mut()), STOP_GRACE);
    stop_all(nets.iter_mut().map(|n| &mut n.aggregator), STOP_GRACE);
    stop_all(nets.iter_mut().map(|n| &mut n.chain.proc), STOP_GRACE);

    let all_rows = vec![rows(&nets[0], &plan, last_a), rows(&nets[1], &plan, last_b)];
    let header = Header { date: header_date, machine: machine(), load_start, plan: plan.describe() };
    let text = report(&header, &nets, &all_rows, interrupted);
    println!("\n{text}");
    if smoke {
        // The check `make test` relies on: both networks got sequences verified.
        for (net, rows) in nets.iter().zip(&all_rows) {
            let verified: usize = rows.iter().map(|r| r.verified).sum();
            anyhow::ensure!(verified > 0 || interrupted, "smoke run: network {} verified no sequence", net.name);
        }
    }
    // A smoke run does not replace the full run's tables.
    let out = target_dir.join(if smoke { "bench-throughput-smoke.md" } else { "bench-throughput.md" });
    std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("written to {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    args.smoke |= !args.bench;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let target_dir = target_dir();
    let data = match run_dir(&target_dir, "bench-throughput-") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keep = args.keep;
    let result = match tokio::runtime::Runtime::new() {
        // Child processes are spawned from this thread (block_on polls on
        // it), which lives as long as they should.
        Ok(rt) => rt.block_on(run(args, data.path(), &target_dir)),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match result {
        Ok(()) if !keep => ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!("data kept in {}", data.keep().display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            // Nothing to look at when it failed before starting anything.
            if std::fs::read_dir(data.path()).is_ok_and(|mut d| d.next().is_some()) {
                eprintln!("data and logs kept in {}", data.keep().display());
            }
            ExitCode::FAILURE
        }
    }
}

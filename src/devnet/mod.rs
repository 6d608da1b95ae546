//! `zkpow devnet`: a whole prover network on one machine. Two anvil chains
//! (ids 31337 and 31338), a rollup on each with a different circuit shape
//! (2,4 and 2,5), a sequencer simulator per rollup, and two miners (anvil
//! accounts 2 and 3), each an `zkpow aggregator` child process with its own
//! key, SQLite database and prover token, plus `zkpow prover` children,
//! which the devnet supervises (`supervise`: a child that dies is restarted
//! with a backoff) and, in chaos mode, kills at random (`chaos`). The
//! devnet owns the layout of its data directory:
//!
//! ```text
//! devnet.json            deployed addresses (present: resume, absent: deploy)
//! status.json            the latest progress view, rewritten every second
//! chaos.json             the summary of a chaos run (`--chaos`)
//! chain-*.state.json     anvil state (a second run resumes the chains)
//! genesis-*.json         the rollups' genesis accounts
//! keys/                  Groth16 parameters (kept by --fresh)
//! miner*/                config.toml, miner.key, prover.token, zkpow.db
//! logs/                  one log file per child process
//! ```
//!
//! Everything listens on 127.0.0.1 only.

pub mod anvil;
pub mod chaos;
pub mod deploy_cmd;
pub mod procs;
pub mod progress;
pub mod sequencer;
pub mod supervise;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::anvil::{dev_signer, Chain, ChainSpec};
use self::chaos::{AuditChain, AuditMiner, AuditRollup, Chaos, ChaosSummary, Drain, RollupSummary};
use self::procs::{ensure_port_free, stop_all, ChildProc, STOP_GRACE};
use self::progress::{ChainView, Display, MinerView, Monitor, RollupView, Status};
use self::sequencer::{History, Simulator, SimulatorConfig};
use self::supervise::{Backoff, ProcKind, ProcSpec, Supervisor};
use crate::aggregator::genesis::load_genesis;
use crate::chain::bindings::MinerDeposit;
use crate::chain::deploy::{check_eip2537, deploy_as, RollupParams};
use crate::chain::root_to_b256;
use crate::circuit::encoding::vk_to_bytes;
use crate::circuit::keys::Keys;
use crate::circuit::sample::genesis_accounts;
use crate::circuit::{Account, Shape, StateTree};

pub const ETHER: u128 = 1_000_000_000_000_000_000;

/// Accounts with a balance at genesis; the simulator moves funds among them.
pub const GENESIS_ACCOUNTS: u64 = 8;
pub const GENESIS_BALANCE: u64 = 1_000_000;
/// Funds for rewards, per chain.
const REWARD_FUNDS: u128 = 100 * ETHER;
/// Anvil account that deploys and owns the contracts, and the sequencer's.
pub const OWNER_ACCOUNT: usize = 0;
pub const SEQUENCER_ACCOUNT: usize = 1;

struct ChainDef {
    name: &'static str,
    chain_id: u64,
}

struct RollupDef {
    name: &'static str,
    chain: usize,
    shape: Shape,
}

struct MinerDef {
    name: &'static str,
    account: usize,
    /// Bonded on every chain; rewards are shared pro rata to it.
    bond: u128,
}

const CHAINS: [ChainDef; 2] =
    [ChainDef { name: "chain-a", chain_id: 31337 }, ChainDef { name: "chain-b", chain_id: 31338 }];
const ROLLUPS: [RollupDef; 2] = [
    RollupDef { name: "rollup-a", chain: 0, shape: Shape { k: 2, d: 4 } },
    RollupDef { name: "rollup-b", chain: 1, shape: Shape { k: 2, d: 5 } },
];
const MINERS: [MinerDef; 2] = [
    MinerDef { name: "miner1", account: 2, bond: 3 * ETHER },
    MinerDef { name: "miner2", account: 3, bond: 2 * ETHER },
];

#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Where chains, keys, miners' databases and logs live.
    #[arg(long, value_name = "DIR", default_value = "data/devnet")]
    pub data_dir: PathBuf,
    /// Delete the data directory (except the keys) and start new chains.
    #[arg(long)]
    pub fresh: bool,
    /// Seconds between blocks.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub block_time: f64,
    /// RPC port of the first chain; the second uses the next one.
    #[arg(long, value_name = "PORT", default_value_t = 8545)]
    pub base_port: u16,
    /// HTTP port of the first miner's aggregator; the second uses the next one.
    #[arg(long, value_name = "PORT", default_value_t = 8600)]
    pub api_port: u16,
    /// Groth16 parameters (generated once when missing; default: DATA_DIR/keys).
    #[arg(long, value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Commit window of new rollups, in blocks (fixed at deployment).
    #[arg(long, default_value_t = 10)]
    pub t1: u32,
    /// Reveal window of new rollups, in blocks (fixed at deployment).
    #[arg(long, default_value_t = 20)]
    pub t2: u32,
    /// Seconds between two sequences of a rollup's sequencer.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub interval_secs: f64,
    /// Most batches in one sequence (each sequence has 1..=N).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_batches: usize,
    /// Share of transfers the sequencer makes invalid (they are no-ops).
    #[arg(long, value_name = "RATIO", default_value_t = 0.3)]
    pub invalid_ratio: f64,
    /// Prover processes per miner.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub provers: usize,
    /// Seconds between progress lines when stdout is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub status_secs: u64,
    /// Stop after the first chain has mined this many blocks in this run.
    #[arg(long, value_name = "N")]
    pub blocks: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "N")]
    pub duration_secs: Option<u64>,
    /// Chaos mode: SIGKILL a random miner aggregator or prover every SECS
    /// seconds (the supervisor restarts it). A bounded run then stops
    /// posting, drains, audits the miners and writes DATA_DIR/chaos.json;
    /// it fails if an honest miner was penalized, a transaction was sent
    /// twice, an outbox nonce is missing, or the lag did not drain.
    #[arg(long, value_name = "SECS")]
    pub chaos: Option<f64>,
    /// Seed of the chaos victims (default: from the clock; printed, so a
    /// run can be repeated).
    #[arg(long, value_name = "N", requires = "chaos")]
    pub chaos_seed: Option<u64>,
    /// After the bound: stop the sequencers and wait up to SECS for every
    /// posted sequence to be verified, failing if it is not (default with
    /// --chaos: 300; without --chaos a bounded run drains only when given).
    #[arg(long, value_name = "SECS")]
    pub drain_secs: Option<u64>,
}

/// `devnet.json`: what was deployed, so a second run resumes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    chains: Vec<ManifestChain>,
    rollups: Vec<ManifestRollup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestChain {
    name: String,
    chain_id: u64,
    deposit: Address,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestRollup {
    name: String,
    chain: String,
    shape: Shape,
    verifier: Address,
    rollup: Address,
}

struct Miner {
    def: &'static MinerDef,
    address: Address,
    config: PathBuf,
}

/// The sequencer simulators' tasks.
struct Sequencers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sequencers {
    /// Stops posting and waits for a post in flight to finish (idempotent).
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "a sequencer task failed");
            }
        }
    }
}

/// Runs the devnet until `shutdown` (Ctrl-C, SIGTERM) or the bound of
/// `--blocks` / `--duration-secs` (then, with `--chaos` or `--drain-secs`,
/// until the lag drained). A bounded run fails if nothing was verified or
/// the lag did not drain; any run fails if a verified root differs from the
/// executor's, or, with `--chaos`, if the audit finds a problem.
pub async fn run(args: DevnetArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    anyhow::ensure!(args.block_time > 0.0, "--block-time must be positive");
    if let Some(secs) = args.chaos {
        anyhow::ensure!(secs.is_finite() && secs >= 1.0, "--chaos must be at least 1 second");
    }
    anyhow::ensure!(args.max_batches >= 1 && args.max_batches <= 64, "--max-batches must be within 1..=64");
    anyhow::ensure!(
        args.t1 >= 4 && args.t2 >= 2,
        "--t1 must be at least 4 blocks (commits need margin), --t2 at least 2"
    );
    let data_dir = std::path::absolute(&args.data_dir).context("resolving --data-dir")?;
    let keys_dir = std::path::absolute(args.keys_dir.clone().unwrap_or_else(|| data_dir.join("keys")))
        .context("resolving --keys-dir")?;
    if args.fresh {
        wipe(&data_dir, &keys_dir)?;
    }
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let chain_port = |i: usize| args.base_port.checked_add(i as u16).context("--base-port too high");
    let api_port = |i: usize| args.api_port.checked_add(i as u16).context("--api-port too high");
    for (i, m) in MINERS.iter().enumerate() {
        ensure_port_free(api_port(i)?, &format!("the aggregator of {}", m.name))?;
    }

    let vks = load_keys(&keys_dir, &ROLLUPS.map(|r| r.shape)).await?;

    let mut chains: Vec<Chain> = Vec::with_capacity(CHAINS.len());
    for (i, c) in CHAINS.iter().enumerate() {
        let spec = ChainSpec {
            name: c.name.into(),
            chain_id: c.chain_id,
            port: chain_port(i)?,
            block_time: args.block_time,
            state: data_dir.join(format!("{}.state.json", c.name)),
            log: logs.join(format!("anvil-{}.log", c.name)),
        };
        let chain = Chain::start(&spec).await?;
        check_eip2537(&chain.reader()?).await.with_context(|| format!("chain {}", c.name))?;
        tracing::info!(chain = c.name, chain_id = c.chain_id, url = %chain.url, "chain running");
        chains.push(chain);
    }

    let manifest_path = data_dir.join("devnet.json");
    let manifest = if manifest_path.exists() {
        let m: Manifest = serde_json::from_str(
            &std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?,
        )
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
        check_resumable(&m, &chains).await?;
        tracing::info!(manifest = %manifest_path.display(), "resuming the deployed contracts");
        m
    } else {
        let m = deploy_all(&chains, &vks, &data_dir, &args).await?;
        std::fs::write(&manifest_path, serde_json::to_string_pretty(&m)? + "\n")
            .with_context(|| format!("writing {}", manifest_path.display()))?;
        m
    };

    let mut miners = Vec::with_capacity(MINERS.len());
    for (i, def) in MINERS.iter().enumerate() {
        let config = write_miner_config(&MinerSetup {
            dir: data_dir.join(def.name),
            keys_dir: &keys_dir,
            account: def.account,
            api_port: api_port(i)?,
            block_time: args.block_time,
            chains: &chains,
            rollups: manifest
                .rollups
                .iter()
                .map(|r| MinerRollup {
                    name: r.name.clone(),
                    chain: r.chain.clone(),
                    address: r.rollup,
                    shape: r.shape,
                    genesis_file: genesis_path(&data_dir, &r.name),
                })
                .collect(),
            extra_toml: String::new(),
        })?;
        miners.push(Miner { def, address: dev_signer(def.account)?.address(), config });
    }
    let exe = std::env::current_exe().context("locating the zkpow executable")?;
    let specs = miners.iter().flat_map(|m| miner_procs(&exe, &m.config, m.def.name, args.provers, &logs)).collect();
    // Started here, and restarted by `watch`, on this thread: it runs the
    // whole devnet (see `Supervisor` on PR_SET_PDEATHSIG).
    let supervisor = Supervisor::start(specs, Backoff::DEFAULT)?;
    for m in &miners {
        tracing::info!(miner = m.def.name, address = %m.address, provers = args.provers, "miner started");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut rollup_views = Vec::with_capacity(ROLLUPS.len());
    let mut audit_rollups = Vec::with_capacity(ROLLUPS.len());
    let mut tasks = Vec::new();
    for (i, def) in ROLLUPS.iter().enumerate() {
        let entry = manifest.rollups.iter().find(|r| r.name == def.name).context("devnet.json lacks a rollup")?;
        let genesis = load_genesis(&genesis_path(&data_dir, def.name))?;
        let history = Arc::new(Mutex::new(History::default()));
        let (_, provider) = chains[def.chain].wallet(SEQUENCER_ACCOUNT)?;
        let cfg = SimulatorConfig {
            rollup: def.name.into(),
            shape: def.shape,
            address: entry.rollup,
            accounts: GENESIS_ACCOUNTS as u32,
            max_batches: args.max_batches,
            invalid_ratio: args.invalid_ratio,
            interval: Duration::from_secs_f64(args.interval_secs.max(0.1)),
            seed: CHAINS[def.chain].chain_id * 1000 + i as u64,
        };
        let sim = Simulator::resume(cfg, provider, &genesis, history.clone()).await?;
        tasks.push(tokio::spawn(sim.run(stop_rx.clone(), genesis)));
        audit_rollups.push((def.name, def.chain, entry.rollup, history.clone()));
        rollup_views.push(RollupView {
            name: def.name.into(),
            chain: def.chain,
            shape: def.shape,
            address: entry.rollup,
            history,
        });
    }
    let chain_views = chains
        .iter()
        .zip(&manifest.chains)
        .map(|(c, m)| {
            Ok(ChainView {
                name: c.name.clone(),
                chain_id: c.chain_id,
                url: c.url.clone(),
                provider: c.reader()?,
                deposit: m.deposit,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let miner_views = miners.iter().map(|m| MinerView { name: m.def.name.into(), address: m.address }).collect();
    let audit = AuditTargets {
        miners: miners
            .iter()
            .map(|m| AuditMiner {
                name: m.def.name.into(),
                address: m.address,
                database_url: format!("sqlite://{}", data_dir.join(m.def.name).join("zkpow.db").display()),
            })
            .collect(),
        chains: chains
            .iter()
            .map(|c| Ok(AuditChain { name: c.name.clone(), chain_id: c.chain_id, provider: c.reader()? }))
            .collect::<anyhow::Result<Vec<_>>>()?,
        rollups: audit_rollups,
    };
    let status_path = data_dir.join("status.json");
    println!("devnet running in {} (logs in {}); Ctrl-C stops it", data_dir.display(), logs.display());
    for m in &miners {
        println!("  {}: zkpow status --config {}", m.def.name, m.config.display());
    }
    let chaos = args.chaos.map(|secs| {
        let seed = args.chaos_seed.unwrap_or_else(clock_seed);
        println!("chaos: a random miner aggregator or prover is killed every {secs}s (seed {seed})");
        Chaos::new(Duration::from_secs_f64(secs), seed, Instant::now())
    });
    let first_block = chains[0].reader()?.get_block_number().await.context("reading the block number")?;

    let mut net = Network {
        monitor: Monitor::new(chain_views, rollup_views, miner_views),
        supervisor,
        chains,
        sequencers: Sequencers { stop: stop_tx, tasks },
        chaos,
        audit,
    };
    let result = net.watch(&args, &status_path, first_block, shutdown).await;

    // Stop in dependency order: sequencers, then miners, then the chains
    // (anvil writes its state file on SIGTERM).
    net.sequencers.stop().await;
    let last = net.refresh().await;
    // Provers first: a prover hands its last proof to its aggregator.
    net.supervisor.stop_kind(ProcKind::Prover, STOP_GRACE);
    net.supervisor.stop_kind(ProcKind::Aggregator, STOP_GRACE);
    let end = match result {
        Ok(end) => end,
        Err(e) => {
            stop_all(net.chains.iter_mut().map(|c| &mut c.proc), STOP_GRACE);
            return Err(e);
        }
    };
    let status = match last {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "final status read failed; showing the last one");
            end.status.clone()
        }
    };
    // The audit reads the chains: before they stop.
    let summary = match &net.chaos {
        Some(chaos) => Some(net.chaos_summary(chaos, &status, &end).await),
        None => None,
    };
    stop_all(net.chains.iter_mut().map(|c| &mut c.proc), STOP_GRACE);

    if let Err(e) = status.write(&status_path) {
        tracing::warn!(error = %format!("{e:#}"), "writing status.json");
    }
    println!("\nsummary\n{}", status.lines().join("\n"));
    for r in &status.rollups {
        if let Some(t) = r.first_verified_secs {
            println!("  {}: first sequence verified {t:.1}s after start", r.name);
        }
    }
    let summary = summary.transpose().context("auditing the chaos run")?;
    if let Some(summary) = &summary {
        let path = data_dir.join("chaos.json");
        summary.write(&path)?;
        println!("\n{}\n(written to {})", summary.lines().join("\n"), path.display());
    }
    if let Some(r) = status.rollups.iter().find(|r| r.root_matches == Some(false)) {
        anyhow::bail!("rollup {}: the verified state root differs from the native executor's", r.name);
    }
    if let Some(summary) = &summary {
        anyhow::ensure!(summary.failures.is_empty(), "the chaos run failed: {}", summary.failures.join("; "));
    }
    let bounded = args.blocks.is_some() || args.duration_secs.is_some();
    if bounded && status.rollups.iter().all(|r| r.verified_this_run == 0) {
        anyhow::bail!("nothing was verified during this run");
    }
    if let Some((Drain::TimedOut, took)) = end.drain {
        anyhow::bail!("the lag did not drain within {:.0}s of the bound", took.as_secs_f64());
    }
    Ok(())
}

/// A seed for the chaos victims when none is given.
fn clock_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// What the chaos audit reads: the miners' databases and accounts, the
/// chains, the rollups' posted sequences.
struct AuditTargets {
    miners: Vec<AuditMiner>,
    chains: Vec<AuditChain>,
    /// Name, chain index, address, the sequencer's history.
    rollups: Vec<(&'static str, usize, Address, Arc<Mutex<History>>)>,
}

impl AuditTargets {
    fn rollups(&self) -> Vec<AuditRollup> {
        self.rollups
            .iter()
            .map(|(name, chain, address, history)| AuditRollup {
                name: name.to_string(),
                chain: *chain,
                address: *address,
                sequences: history.lock().unwrap_or_else(|e| e.into_inner()).sequences.clone(),
            })
            .collect()
    }
}

/// How the watch loop ended.
struct LoopEnd {
    status: Status,
    /// The drain after the bound, and how long it took, if there was one.
    drain: Option<(Drain, Duration)>,
}

/// Where the watch loop is.
#[derive(Clone, Copy)]
enum Phase {
    Running,
    /// Bound reached: no chaos, no new sequences; waiting for the lag to drain.
    Draining {
        since: Instant,
        limit: Duration,
    },
}

/// Whether every posted sequence is verified.
fn all_verified(s: &Status) -> bool {
    s.rollups.iter().all(|r| r.sequences_verified == r.sequences_posted && r.lag_batches == 0)
}

/// The running network the watch loop looks after.
struct Network {
    monitor: Monitor,
    supervisor: Supervisor,
    chains: Vec<Chain>,
    sequencers: Sequencers,
    chaos: Option<Chaos>,
    audit: AuditTargets,
}

impl Network {
    /// The chains' view plus the supervised processes and the kills.
    async fn refresh(&mut self) -> anyhow::Result<Status> {
        let mut s = self.monitor.refresh().await?;
        s.processes = self.supervisor.snapshot();
        s.chaos_kills = self.chaos.as_ref().map(|c| c.kills);
        Ok(s)
    }

    /// Refreshes the view every second, supervises the miners' processes
    /// and kills one now and then in chaos mode, until shutdown or the bound
    /// (then, when draining, until the lag drained or the drain timed out).
    async fn watch(
        &mut self,
        args: &DevnetArgs,
        status_path: &Path,
        first_block: u64,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<LoopEnd> {
        let drain_limit = args.drain_secs.or(args.chaos.map(|_| chaos::DEFAULT_DRAIN_SECS)).map(Duration::from_secs);
        let mut display = Display::new(Duration::from_secs(args.status_secs.max(1)));
        let mut last: Option<Status> = None;
        let mut phase = Phase::Running;
        let mut errors = 0u32;
        let drain = loop {
            let now = Instant::now();
            if self.supervisor.tick(now) {
                display.detach();
            }
            // A chain that dies is fatal, not restarted: anvil would come
            // back from its last state file, seconds older than the blocks
            // the miners' databases and outboxes have seen.
            for c in self.chains.iter_mut() {
                if let Some(status) = c.proc.exited() {
                    display.detach();
                    anyhow::bail!(
                        "chain {} exited ({status}); last lines of {}:\n{}",
                        c.name,
                        c.proc.log.display(),
                        c.proc.log_tail(30)
                    );
                }
            }
            match self.refresh().await {
                Ok(s) => {
                    errors = 0;
                    display.show(&s);
                    if let Err(e) = s.write(status_path) {
                        tracing::warn!(error = %format!("{e:#}"), "writing status.json");
                    }
                    last = Some(s);
                }
                Err(e) => {
                    errors += 1;
                    display.detach();
                    tracing::warn!(error = %format!("{e:#}"), "reading the chains");
                    anyhow::ensure!(errors < 30, "the chains stopped answering: {e:#}");
                }
            }
            match phase {
                Phase::Running => {
                    if let Some(chaos) = self.chaos.as_mut() {
                        if let Some(victim) = chaos.due(now, &self.supervisor.candidates()) {
                            if let Some((_, kind)) = self.supervisor.kill(victim, now) {
                                chaos.kills.record(kind);
                                display.detach();
                            }
                        }
                    }
                    let blocks_done = args
                        .blocks
                        .is_some_and(|n| last.as_ref().is_some_and(|s| s.chains[0].block >= first_block + n));
                    let time_done =
                        args.duration_secs.is_some_and(|d| self.monitor.elapsed() >= Duration::from_secs(d));
                    if blocks_done || time_done {
                        let Some(limit) = drain_limit else { break None };
                        self.sequencers.stop().await;
                        display.detach();
                        println!(
                            "bound reached: chaos and sequencers stopped; waiting up to {}s for the lag to drain",
                            limit.as_secs()
                        );
                        phase = Phase::Draining { since: Instant::now(), limit };
                        continue;
                    }
                }
                Phase::Draining { since, limit } => {
                    if last.as_ref().is_some_and(all_verified) && self.supervisor.all_running() {
                        // Every sequence verified and every process back up;
                        // the miners' commits must be revealed too before the
                        // miners stop (or the stop would cost them penalties).
                        match chaos::commits(&self.audit.miners, &self.audit.chains, &self.audit.rollups()).await {
                            Ok(c) if c.pending.is_empty() => break Some((Drain::Drained, since.elapsed())),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %format!("{e:#}"), "reading the miners' commits"),
                        }
                    }
                    if since.elapsed() >= limit {
                        break Some((Drain::TimedOut, since.elapsed()));
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if *shutdown.borrow() {
                break match phase {
                    Phase::Running => None,
                    Phase::Draining { since, .. } => Some((Drain::Interrupted, since.elapsed())),
                };
            }
        };
        display.detach();
        let status = last.context("no status was ever read from the chains")?;
        if let Some((Drain::Drained, took)) = drain {
            println!("drained: every posted sequence verified {:.1}s after the bound", took.as_secs_f64());
        }
        Ok(LoopEnd { status, drain })
    }

    /// Audits a chaos run (stop the miners first: this reads their
    /// databases) and gives its verdict.
    async fn chaos_summary(&self, chaos: &Chaos, status: &Status, end: &LoopEnd) -> anyhow::Result<ChaosSummary> {
        let outboxes = chaos::outboxes(&self.audit.miners, &self.audit.chains).await?;
        let commits = chaos::commits(&self.audit.miners, &self.audit.chains, &self.audit.rollups()).await?;
        let mut details = Vec::new();
        let mut penalties = 0u64;
        for m in &status.miners {
            for c in m.chains.iter().filter(|c| c.punished > 0) {
                penalties += c.punished;
                details.push(format!(
                    "{} on {}: {} penalties ({})",
                    m.name,
                    c.chain,
                    c.punished,
                    progress::eth(c.penalties_wei)
                ));
            }
        }
        penalties += commits.missed.len() as u64;
        details.extend(commits.missed.iter().map(|m| format!("commit expired without a valid proof: {m}")));
        details.extend(commits.pending.iter().map(|m| format!("commit not revealed when the miners stopped: {m}")));
        details.extend(outboxes.double_sends.iter().cloned());
        details.extend(outboxes.nonce_gaps.iter().cloned());
        let rollups: Vec<RollupSummary> = status
            .rollups
            .iter()
            .map(|r| RollupSummary {
                name: r.name.clone(),
                sequences_posted: r.sequences_posted,
                sequences_verified: r.sequences_verified,
                lag_batches: r.lag_batches,
            })
            .collect();
        let (drain, drain_took) = end.drain.unwrap_or((Drain::Interrupted, Duration::ZERO));
        let mut summary = ChaosSummary {
            seed: chaos.seed,
            every_secs: chaos.every.as_secs_f64(),
            elapsed_secs: status.elapsed_secs,
            kills: chaos.kills,
            restarts: status.restarts(),
            sequences_posted: rollups.iter().map(|r| r.sequences_posted).sum(),
            sequences_verified: rollups.iter().map(|r| r.sequences_verified).sum(),
            rollups,
            drain,
            drain_secs: drain_took.as_secs_f64(),
            honest_penalties: penalties,
            double_sends: outboxes.double_sends.len() as u64,
            nonce_gaps: outboxes.nonce_gaps.len() as u64,
            transactions: outboxes.transactions,
            reverted_transactions: outboxes.reverted,
            details,
            failures: Vec::new(),
        };
        summary.failures = summary.verdict();
        Ok(summary)
    }
}

/// Empties the data directory but keeps the keys, which take long to make
/// and do not depend on the chains.
fn wipe(data_dir: &Path, keys_dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", data_dir.display())),
    };
    for entry in entries {
        let path = entry.with_context(|| format!("reading {}", data_dir.display()))?.path();
        if path == keys_dir {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    tracing::info!(dir = %data_dir.display(), "data directory wiped (keys kept)");
    Ok(())
}

/// The EIP-2537 verifying key of each shape, generating parameters the
/// first time (a single-party setup: development only).
pub async fn load_keys(dir: &Path, shapes: &[Shape]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(shapes.len());
    for &shape in shapes {
        let dir = dir.to_path_buf();
        if !crate::circuit::keys::params_path(&dir, shape).exists() {
            println!("generating Groth16 parameters for shape {shape} in {} (once; takes a while)", dir.display());
        }
        let vk = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
            let keys = Keys::load_or_setup(&dir, shape, &mut rand::rng())?;
            Ok(vk_to_bytes(&keys.params.vk)?)
        })
        .await
        .context("the key loading task failed")?
        .with_context(|| format!("keys for shape {shape}"))?;
        out.push(vk);
    }
    Ok(out)
}

/// Where a rollup's genesis accounts are kept in the data directory.
pub fn genesis_path(data_dir: &Path, rollup: &str) -> PathBuf {
    data_dir.join(format!("genesis-{rollup}.json"))
}

/// Deploys a deposit contract per chain and the rollups, funds rewards and
/// bonds the miners' deposits.
async fn deploy_all(chains: &[Chain], vks: &[Vec<u8>], data_dir: &Path, args: &DevnetArgs) -> anyhow::Result<Manifest> {
    let sequencer = dev_signer(SEQUENCER_ACCOUNT)?.address();
    let mut manifest = Manifest { chains: Vec::new(), rollups: Vec::new() };
    for (ci, chain) in chains.iter().enumerate() {
        let (owner, provider) = chain.wallet(OWNER_ACCOUNT)?;
        let mut deposit = None;
        for (ri, r) in ROLLUPS.iter().enumerate().filter(|(_, r)| r.chain == ci) {
            let genesis: Vec<(u64, Account)> = genesis_accounts(r.shape, GENESIS_ACCOUNTS, GENESIS_BALANCE);
            let path = genesis_path(data_dir, r.name);
            std::fs::write(&path, serde_json::to_string(&genesis)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            let root = root_to_b256(&StateTree::with_accounts(r.shape.d, genesis).root());
            let mut params = RollupParams::dev(vks[ri].clone(), sequencer, root, r.shape.batch_bytes() as u64);
            params.t1 = args.t1;
            params.t2 = args.t2;
            let dep = deploy_as(provider.clone(), owner, &params, deposit)
                .await
                .with_context(|| format!("deploying rollup {} on {}", r.name, chain.name))?;
            deposit = Some(dep.deposit);
            crate::chain::deploy::fund_rewards(provider.clone(), dep.deposit, dep.rollup, REWARD_FUNDS).await?;
            tracing::info!(rollup = r.name, chain = %chain.name, rollup_address = %dep.rollup, verifier = %dep.verifier, deposit = %dep.deposit, "rollup deployed");
            manifest.rollups.push(ManifestRollup {
                name: r.name.into(),
                chain: chain.name.clone(),
                shape: r.shape,
                verifier: dep.verifier,
                rollup: dep.rollup,
            });
        }
        let deposit = deposit.context("a chain without rollups")?;
        for m in &MINERS {
            let (_, w) = chain.wallet(m.account)?;
            let receipt = MinerDeposit::new(deposit, w)
                .deposit()
                .value(U256::from(m.bond))
                .send()
                .await
                .with_context(|| format!("{} bonding its deposit on {}", m.name, chain.name))?
                .get_receipt()
                .await
                .with_context(|| format!("{} bonding its deposit on {}", m.name, chain.name))?;
            anyhow::ensure!(receipt.status(), "{}: deposit reverted on {}", m.name, chain.name);
        }
        manifest.chains.push(ManifestChain { name: chain.name.clone(), chain_id: chain.chain_id, deposit });
    }
    Ok(manifest)
}

/// A resumed devnet needs its contracts on the chains: anvil's state file
/// may be missing or older than the manifest.
async fn check_resumable(m: &Manifest, chains: &[Chain]) -> anyhow::Result<()> {
    for r in &m.rollups {
        let chain = chains.iter().find(|c| c.name == r.chain).context("devnet.json names an unknown chain")?;
        let code = chain.reader()?.get_code_at(r.rollup).await.context("reading contract code")?;
        anyhow::ensure!(
            !code.is_empty(),
            "rollup {} is not on {} any more (its state file was lost?); start over with --fresh",
            r.name,
            chain.name
        );
    }
    Ok(())
}

/// A rollup as a miner's configuration names it.
pub struct MinerRollup {
    pub name: String,
    /// The name of its chain among [`MinerSetup::chains`].
    pub chain: String,
    pub address: Address,
    pub shape: Shape,
    pub genesis_file: PathBuf,
}

/// What a miner's directory holds: its key (an anvil development account,
/// the same on every chain), prover token, database and configuration.
pub struct MinerSetup<'a> {
    pub dir: PathBuf,
    pub keys_dir: &'a Path,
    /// Index into [`anvil::DEV_KEYS`].
    pub account: usize,
    pub api_port: u16,
    /// Seconds between blocks: sets how often the aggregator polls.
    pub block_time: f64,
    pub chains: &'a [Chain],
    pub rollups: Vec<MinerRollup>,
    /// Further TOML sections (e.g. `[sender]`), appended as given.
    pub extra_toml: String,
}

/// Writes a miner's directory: key, prover token (kept across runs),
/// configuration (rewritten: ports may change). Returns the configuration's path.
pub fn write_miner_config(m: &MinerSetup) -> anyhow::Result<PathBuf> {
    let dir = &m.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_file = dir.join("miner.key");
    write_private(&key_file, &format!("{}\n", anvil::DEV_KEYS.get(m.account).context("no such development account")?))?;
    let token_file = dir.join("prover.token");
    if !token_file.exists() {
        let token: [u8; 32] = rand::random();
        write_private(&token_file, &format!("{}\n", hex::encode(token)))?;
    }
    // The control API's admin token, so that `zkpow status --config
    // DIR/config.toml` works against the running miner out of the box.
    let admin_file = dir.join("admin.token");
    if !admin_file.exists() {
        let token: [u8; 32] = rand::random();
        write_private(&admin_file, &format!("{}\n", hex::encode(token)))?;
    }
    let toml_str = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let mut shapes: Vec<String> = Vec::new();
    for r in &m.rollups {
        let s = format!("\"{}\"", r.shape);
        if !shapes.contains(&s) {
            shapes.push(s);
        }
    }
    let poll_ms = ((m.block_time * 500.0) as u64).clamp(100, 2_000);
    let port = m.api_port;
    let mut text = format!(
        "# Written by `zkpow devnet` (or the throughput benchmark) on every start.\n\n\
         [node]\ndata_dir = {dir}\n\n\
         [keys]\ndir = {keys}\nshapes = [{shapes}]\n\n\
         [aggregator]\ndatabase_url = {db}\nlisten = \"127.0.0.1:{port}\"\nprover_token_file = {token}\n\
         poll_interval_ms = {poll_ms}\nlease_ms = 15000\nclaim_poll_ms = 1000\n\n\
         [prover]\naggregator_url = \"http://127.0.0.1:{port}\"\ntoken_file = {token}\n\
         # Every miner's provers share this one machine: one proof at a time each.\nworkers = 1\n\n\
         [api]\nadmin_token_file = {admin}\n",
        admin = toml_str(&admin_file),
        dir = toml_str(dir),
        keys = toml_str(m.keys_dir),
        shapes = shapes.join(", "),
        db = toml::Value::String(format!("sqlite://{}", dir.join("zkpow.db").display())),
        token = toml_str(&token_file),
    );
    for c in m.chains {
        // anvil never reorganises: no confirmations needed.
        text += &format!(
            "\n[[chains]]\nname = \"{}\"\nrpc_url = \"{}\"\nchain_id = {}\nconfirmations = 0\nkey_file = {}\n",
            c.name,
            c.url,
            c.chain_id,
            toml_str(&key_file)
        );
    }
    for r in &m.rollups {
        text += &format!(
            "\n[[rollups]]\nname = \"{}\"\nchain = \"{}\"\naddress = \"{}\"\nshape = \"{}\"\ngenesis_file = {}\n",
            r.name,
            r.chain,
            r.address,
            r.shape,
            toml_str(&r.genesis_file)
        );
    }
    if !m.extra_toml.is_empty() {
        text += "\n";
        text += &m.extra_toml;
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A miner's processes: its `zkpow aggregator` and `provers` × `zkpow
/// prover`, run from `exe` with the configuration at `config`, logging to
/// `logs/NAME-*.log`. The aggregator comes first.
pub fn miner_procs(exe: &Path, config: &Path, name: &str, provers: usize, logs: &Path) -> Vec<ProcSpec> {
    let base = |kind: ProcKind| -> Vec<OsString> { vec!["--config".into(), config.into(), kind.as_str().into()] };
    let mut out = vec![ProcSpec {
        name: format!("{name} aggregator"),
        kind: ProcKind::Aggregator,
        miner: name.into(),
        program: exe.into(),
        args: base(ProcKind::Aggregator),
        env: Vec::new(),
        log: logs.join(format!("{name}-aggregator.log")),
    }];
    for p in 0..provers {
        let prover = format!("{name}-prover{p}");
        out.push(ProcSpec {
            name: prover.clone(),
            kind: ProcKind::Prover,
            miner: name.into(),
            program: exe.into(),
            args: base(ProcKind::Prover),
            env: vec![("ZKPOW_PROVER__NAME".into(), prover.as_str().into())],
            log: logs.join(format!("{prover}.log")),
        });
    }
    out
}

/// Starts a miner's processes (see [`miner_procs`]) without supervision.
/// Call it from the thread that lives as long as the miner (see [`ChildProc::spawn`]).
pub fn spawn_miner(
    exe: &Path,
    config: &Path,
    name: &str,
    provers: usize,
    logs: &Path,
) -> anyhow::Result<(ChildProc, Vec<ChildProc>)> {
    let mut procs = miner_procs(exe, config, name, provers, logs).into_iter();
    let aggregator = procs.next().context("a miner without an aggregator")?.spawn()?;
    let provers = procs.map(|p| p.spawn()).collect::<anyhow::Result<Vec<_>>>()?;
    Ok((aggregator, provers))
}

/// Writes a secret readable by the owner only.
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

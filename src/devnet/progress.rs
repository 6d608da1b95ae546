//! What the devnet shows while it runs: per rollup the sequences posted and
//! verified and the lag (read from the contract: `lastBatch`,
//! `lastVerifiedBatch`, `stateRoot`), per miner and chain the rewards and
//! penalties (summed from the deposit contract's `Rewarded` and `Slashed`
//! events, so claiming does not hide them), per supervised child process
//! whether it runs and how often it was restarted, and chaos mode's kills.
//! The same [`Status`] is written to `status.json` in the data directory
//! for scripts and tests.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::chaos::Kills;
use super::sequencer::History;
use super::supervise::ProcKind;
use crate::chain::bindings::{MinerDeposit, ZkPowRollup};
use crate::circuit::Shape;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub elapsed_secs: f64,
    pub chains: Vec<ChainStatus>,
    pub rollups: Vec<RollupStatus>,
    pub miners: Vec<MinerStatus>,
    /// The miners' supervised child processes (filled in by the devnet's
    /// loop, not read from the chains).
    #[serde(default)]
    pub processes: Vec<ProcStatus>,
    /// Chaos mode's kills so far (absent without `--chaos`).
    #[serde(default)]
    pub chaos_kills: Option<Kills>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcStatus {
    pub name: String,
    pub kind: ProcKind,
    pub miner: String,
    pub running: bool,
    pub pid: Option<u32>,
    /// Times the supervisor started it again after it died or was killed.
    pub restarts: u32,
    /// How it ended last time (exit status, or the chaos kill).
    pub last_exit: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainStatus {
    pub name: String,
    pub chain_id: u64,
    pub rpc_url: String,
    pub block: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollupStatus {
    pub name: String,
    pub chain: String,
    pub shape: Shape,
    pub address: Address,
    pub sequences_posted: usize,
    pub sequences_verified: usize,
    pub last_batch: u64,
    pub last_verified_batch: u64,
    /// Batches posted but not verified yet.
    pub lag_batches: u64,
    /// Batches verified since this devnet process started.
    pub verified_this_run: u64,
    /// Seconds from the start of this process to the first verification it saw.
    pub first_verified_secs: Option<f64>,
    /// The contract's verified state root.
    pub state_root: B256,
    /// Whether it equals the native executor's root after the same batch
    /// (`None` before the simulator has replayed the chain).
    pub root_matches: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinerStatus {
    pub name: String,
    pub address: Address,
    pub chains: Vec<MinerChainStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MinerChainStatus {
    pub chain: String,
    pub deposit_wei: u128,
    pub rewards_wei: u128,
    pub rewarded: u64,
    pub penalties_wei: u128,
    pub punished: u64,
}

pub struct ChainView {
    pub name: String,
    pub chain_id: u64,
    pub url: String,
    pub provider: DynProvider,
    pub deposit: Address,
}

pub struct RollupView {
    pub name: String,
    /// Index into the chains.
    pub chain: usize,
    pub shape: Shape,
    pub address: Address,
    pub history: Arc<Mutex<History>>,
}

pub struct MinerView {
    pub name: String,
    pub address: Address,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    rewards: u128,
    rewarded: u64,
    penalties: u128,
    punished: u64,
}

/// Reads the chains and keeps running totals.
pub struct Monitor {
    chains: Vec<ChainView>,
    rollups: Vec<RollupView>,
    miners: Vec<MinerView>,
    started: Instant,
    /// Per chain: the last block whose deposit events are tallied.
    scanned: Vec<Option<u64>>,
    tallies: HashMap<(usize, Address), Tally>,
    verified_at_start: Vec<Option<u64>>,
    first_verified: Vec<Option<f64>>,
}

impl Monitor {
    pub fn new(chains: Vec<ChainView>, rollups: Vec<RollupView>, miners: Vec<MinerView>) -> Monitor {
        let (n_chains, n_rollups) = (chains.len(), rollups.len());
        Monitor {
            chains,
            rollups,
            miners,
            started: Instant::now(),
            scanned: vec![None; n_chains],
            tallies: HashMap::new(),
            verified_at_start: vec![None; n_rollups],
            first_verified: vec![None; n_rollups],
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub async fn refresh(&mut self) -> anyhow::Result<Status> {
        let mut chains = Vec::with_capacity(self.chains.len());
        for (i, c) in self.chains.iter().enumerate() {
            let block =
                c.provider.get_block_number().await.with_context(|| format!("chain {}: block number", c.name))?;
            let from = self.scanned[i].map_or(0, |b| b + 1);
            if from <= block {
                let filter = Filter::new()
                    .address(c.deposit)
                    .event_signature(vec![
                        MinerDeposit::Rewarded::SIGNATURE_HASH,
                        MinerDeposit::Slashed::SIGNATURE_HASH,
                    ])
                    .from_block(from)
                    .to_block(block);
                let logs =
                    c.provider.get_logs(&filter).await.with_context(|| format!("chain {}: deposit events", c.name))?;
                for log in logs {
                    if let Ok(e) = MinerDeposit::Rewarded::decode_log(&log.inner) {
                        let t = self.tallies.entry((i, e.miner)).or_default();
                        t.rewards += e.amount.saturating_to::<u128>();
                        t.rewarded += 1;
                    } else if let Ok(e) = MinerDeposit::Slashed::decode_log(&log.inner) {
                        let t = self.tallies.entry((i, e.miner)).or_default();
                        t.penalties += e.amount.saturating_to::<u128>();
                        t.punished += 1;
                    }
                }
                self.scanned[i] = Some(block);
            }
            chains.push(ChainStatus { name: c.name.clone(), chain_id: c.chain_id, rpc_url: c.url.clone(), block });
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut rollups = Vec::with_capacity(self.rollups.len());
        for (i, r) in self.rollups.iter().enumerate() {
            let chain = &self.chains[r.chain];
            let contract = ZkPowRollup::new(r.address, chain.provider.clone());
            let last_batch =
                contract.lastBatch().call().await.with_context(|| format!("rollup {}: lastBatch", r.name))?;
            let last_verified = contract
                .lastVerifiedBatch()
                .call()
                .await
                .with_context(|| format!("rollup {}: lastVerifiedBatch", r.name))?;
            let state_root =
                contract.stateRoot().call().await.with_context(|| format!("rollup {}: stateRoot", r.name))?;
            let start = *self.verified_at_start[i].get_or_insert(last_verified);
            if last_verified > start && self.first_verified[i].is_none() {
                self.first_verified[i] = Some(elapsed);
            }
            let (posted, verified, expected) = {
                let h = r.history.lock().unwrap_or_else(|e| e.into_inner());
                (h.sequences.len(), h.verified_sequences(last_verified), h.root_at(last_verified))
            };
            rollups.push(RollupStatus {
                name: r.name.clone(),
                chain: chain.name.clone(),
                shape: r.shape,
                address: r.address,
                sequences_posted: posted,
                sequences_verified: verified,
                last_batch,
                last_verified_batch: last_verified,
                lag_batches: last_batch.saturating_sub(last_verified),
                verified_this_run: last_verified - start,
                first_verified_secs: self.first_verified[i],
                state_root,
                root_matches: expected.map(|e| e == state_root),
            });
        }
        let mut miners = Vec::with_capacity(self.miners.len());
        for m in &self.miners {
            let mut per_chain = Vec::with_capacity(self.chains.len());
            for (i, c) in self.chains.iter().enumerate() {
                let deposit = MinerDeposit::new(c.deposit, c.provider.clone())
                    .depositOf(m.address)
                    .call()
                    .await
                    .with_context(|| format!("chain {}: depositOf {}", c.name, m.name))?;
                let t = self.tallies.get(&(i, m.address)).copied().unwrap_or_default();
                per_chain.push(MinerChainStatus {
                    chain: c.name.clone(),
                    deposit_wei: deposit.saturating_to(),
                    rewards_wei: t.rewards,
                    rewarded: t.rewarded,
                    penalties_wei: t.penalties,
                    punished: t.punished,
                });
            }
            miners.push(MinerStatus { name: m.name.clone(), address: m.address, chains: per_chain });
        }
        Ok(Status { elapsed_secs: elapsed, chains, rollups, miners, processes: Vec::new(), chaos_kills: None })
    }
}

pub fn eth(wei: u128) -> String {
    format!("{:.4} ETH", wei as f64 / 1e18)
}

fn duration(secs: f64) -> String {
    let s = secs as u64;
    format!("{}m{:02}s", s / 60, s % 60)
}

impl Status {
    /// The multi-line view.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let chains: Vec<String> =
            self.chains.iter().map(|c| format!("{} (id {}) block {}", c.name, c.chain_id, c.block)).collect();
        out.push(format!("zkpow devnet  {}  {}", duration(self.elapsed_secs), chains.join("  ")));
        out.push(format!(
            "  {:<10} {:<8} {:<5} {:>7} {:>9} {:>8} {:>9} {:>5}  {}",
            "rollup", "chain", "shape", "posted", "verified", "batches", "verified", "lag", "root"
        ));
        for r in &self.rollups {
            let root = match r.root_matches {
                Some(true) => "matches executor",
                Some(false) => "MISMATCH",
                None => "-",
            };
            out.push(format!(
                "  {:<10} {:<8} {:<5} {:>7} {:>9} {:>8} {:>9} {:>5}  {root}",
                r.name,
                r.chain,
                r.shape.to_string(),
                r.sequences_posted,
                r.sequences_verified,
                r.last_batch,
                r.last_verified_batch,
                r.lag_batches
            ));
        }
        for m in &self.miners {
            let per: Vec<String> = m
                .chains
                .iter()
                .map(|c| {
                    format!(
                        "{}: rewards {} ({}) penalties {} ({}) deposit {}",
                        c.chain,
                        eth(c.rewards_wei),
                        c.rewarded,
                        eth(c.penalties_wei),
                        c.punished,
                        eth(c.deposit_wei)
                    )
                })
                .collect();
            out.push(format!("  {:<7} {}  {}", m.name, m.address, per.join(" | ")));
        }
        if !self.processes.is_empty() {
            let procs: Vec<String> = self
                .processes
                .iter()
                .map(|p| format!("{} {} (restarts {})", p.name, if p.running { "up" } else { "DOWN" }, p.restarts))
                .collect();
            out.push(format!("  processes  {}", procs.join(", ")));
        }
        if let Some(k) = &self.chaos_kills {
            out.push(format!("  chaos      kills {} (aggregators {}, provers {})", k.total, k.aggregator, k.prover));
        }
        out
    }

    /// Restarts of all supervised processes together.
    pub fn restarts(&self) -> u32 {
        self.processes.iter().map(|p| p.restarts).sum()
    }

    /// One line for logs.
    pub fn line(&self) -> String {
        let rollups: Vec<String> = self
            .rollups
            .iter()
            .map(|r| {
                format!(
                    "{} posted {} verified {} lag {} batches{}",
                    r.name,
                    r.sequences_posted,
                    r.sequences_verified,
                    r.lag_batches,
                    if r.root_matches == Some(false) { " ROOT MISMATCH" } else { "" }
                )
            })
            .collect();
        let miners: Vec<String> = self
            .miners
            .iter()
            .map(|m| {
                let rewards: u128 = m.chains.iter().map(|c| c.rewards_wei).sum();
                let penalties: u128 = m.chains.iter().map(|c| c.penalties_wei).sum();
                format!("{} rewards {} penalties {}", m.name, eth(rewards), eth(penalties))
            })
            .collect();
        let mut line =
            format!("devnet {} | {} | {}", duration(self.elapsed_secs), rollups.join(" | "), miners.join(" | "));
        if !self.processes.is_empty() {
            // Only the processes that needed the supervisor, to keep the line short.
            let restarted: Vec<String> = self
                .processes
                .iter()
                .filter(|p| p.restarts > 0 || !p.running)
                .map(|p| format!("{} {}{}", p.name, p.restarts, if p.running { "" } else { " (down)" }))
                .collect();
            line += &format!(" | restarts {}", self.restarts());
            if !restarted.is_empty() {
                line += &format!(" ({})", restarted.join(", "));
            }
        }
        if let Some(k) = &self.chaos_kills {
            line += &format!(" | chaos kills {}", k.total);
        }
        line
    }

    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

/// A refreshing view on a terminal, a plain line every `every` otherwise.
pub struct Display {
    tty: bool,
    drawn: usize,
    every: Duration,
    last: Option<Instant>,
}

impl Display {
    pub fn new(every: Duration) -> Display {
        Display { tty: std::io::stdout().is_terminal(), drawn: 0, every, last: None }
    }

    pub fn show(&mut self, status: &Status) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            // Up over the previous view, then rewrite it line by line.
            if self.drawn > 0 {
                let _ = write!(out, "\x1b[{}A", self.drawn);
            }
            let lines = status.lines();
            for l in &lines {
                let _ = writeln!(out, "\x1b[2K{l}");
            }
            self.drawn = lines.len();
        } else if self.last.is_none_or(|t| t.elapsed() >= self.every) {
            let _ = writeln!(out, "{}", status.line());
            self.last = Some(Instant::now());
        }
        let _ = out.flush();
    }

    /// Something else is about to write: the next view starts below it.
    pub fn detach(&mut self) {
        self.drawn = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(name: &str, kind: ProcKind, running: bool, restarts: u32) -> ProcStatus {
        ProcStatus {
            name: name.into(),
            kind,
            miner: "miner1".into(),
            running,
            pid: running.then_some(42),
            restarts,
            last_exit: None,
        }
    }

    #[test]
    fn restarts_and_kills_show_in_the_view_and_the_line() {
        let mut s = Status {
            elapsed_secs: 61.0,
            chains: Vec::new(),
            rollups: Vec::new(),
            miners: Vec::new(),
            processes: vec![
                proc("miner1 aggregator", ProcKind::Aggregator, true, 2),
                proc("miner1-prover0", ProcKind::Prover, false, 1),
                proc("miner2 aggregator", ProcKind::Aggregator, true, 0),
            ],
            chaos_kills: None,
        };
        assert_eq!(s.restarts(), 3);
        let view = s.lines().join("\n");
        assert!(view.contains("miner1 aggregator up (restarts 2), miner1-prover0 DOWN (restarts 1)"), "{view}");
        assert!(!view.contains("chaos"), "{view}");
        let line = s.line();
        assert!(line.ends_with("| restarts 3 (miner1 aggregator 2, miner1-prover0 1 (down))"), "{line}");

        s.chaos_kills = Some(Kills { total: 3, aggregator: 2, prover: 1 });
        assert!(s.lines().join("\n").contains("kills 3 (aggregators 2, provers 1)"));
        assert!(s.line().ends_with("| chaos kills 3"), "{}", s.line());
    }

    #[test]
    fn a_status_json_without_processes_still_reads() {
        let s: Status =
            serde_json::from_str(r#"{"elapsed_secs": 1.0, "chains": [], "rollups": [], "miners": []}"#).unwrap();
        assert!(s.processes.is_empty() && s.chaos_kills.is_none());
    }
}

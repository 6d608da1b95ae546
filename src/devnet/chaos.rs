//! Chaos mode (`zkpow devnet --chaos SECS`): every SECS seconds a random
//! miner process (aggregator or prover) is SIGKILLed and the supervisor
//! restarts it. This module owns the choice of victims, the kill tally, the
//! audit at the end of the run (honest penalties, transactions sent twice
//! for one step, outbox nonce gaps, commits left unrevealed) and the
//! summary's verdict, written to `DATA_DIR/chaos.json`.
//!
//! The plain logic (victims, the outbox checks, commit outcomes, the
//! verdict) is in plain functions with unit tests; [`audit`] only reads the
//! miners' databases and the chains.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolCall;
use anyhow::Context;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::supervise::ProcKind;
use crate::aggregator::sender::Phase;
use crate::chain::bindings::ZkPowRollup;
use crate::db::{self, ChainTx, Db, TxPurpose, TxStatus};

/// Default of `--drain-secs`: how long a bounded chaos run waits, after
/// the bound, for every posted sequence to be verified.
pub const DEFAULT_DRAIN_SECS: u64 = 300;

/// Transactions the devnet itself sends from a miner's account on each
/// chain before the miner's daemon starts (the bond deposit in
/// `deploy_all`): the outbox starts at this nonce.
pub const NONCES_BEFORE_OUTBOX: u64 = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kills {
    pub total: u32,
    pub aggregator: u32,
    pub prover: u32,
}

impl Kills {
    pub fn record(&mut self, kind: ProcKind) {
        self.total += 1;
        match kind {
            ProcKind::Aggregator => self.aggregator += 1,
            ProcKind::Prover => self.prover += 1,
        }
    }
}

/// Chooses whom to kill. Kinds alternate, aggregators first (an aggregator
/// restart is what the outbox and the commit–reveal must survive, so every
/// run of two kills or more has one); within a kind the victim is random
/// among the running processes. Seeded, so a run can be repeated.
pub struct VictimPicker {
    rng: rand::rngs::ChaCha20Rng,
    next: ProcKind,
}

impl VictimPicker {
    pub fn new(seed: u64) -> VictimPicker {
        VictimPicker { rng: rand::rngs::ChaCha20Rng::seed_from_u64(seed), next: ProcKind::Aggregator }
    }

    /// The index of the process to kill among `procs` (kind, running), or
    /// None when none runs. Falls back to the other kind when none of the
    /// due kind runs (all of them are waiting for their restart).
    pub fn pick(&mut self, procs: &[(ProcKind, bool)]) -> Option<usize> {
        for kind in [self.next, self.next.other()] {
            let running: Vec<usize> =
                procs.iter().enumerate().filter(|(_, (k, up))| *k == kind && *up).map(|(i, _)| i).collect();
            if !running.is_empty() {
                self.next = kind.other();
                return Some(running[self.rng.random_range(0..running.len())]);
            }
        }
        None
    }
}

/// The chaos clock and its tally.
pub struct Chaos {
    pub seed: u64,
    pub every: Duration,
    next: Instant,
    picker: VictimPicker,
    pub kills: Kills,
}

impl Chaos {
    /// The first kill is `every` after `now`.
    pub fn new(every: Duration, seed: u64, now: Instant) -> Chaos {
        Chaos { seed, every, next: now + every, picker: VictimPicker::new(seed), kills: Kills::default() }
    }

    /// The victim if a kill is due at `now` (the clock then moves on by `every`).
    pub fn due(&mut self, now: Instant, procs: &[(ProcKind, bool)]) -> Option<usize> {
        if now < self.next {
            return None;
        }
        self.next = now + self.every;
        self.picker.pick(procs)
    }
}

/// One step of the sender: a transaction for it is sent once (again only
/// after a revert).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StepKey {
    pub chain_id: u64,
    pub purpose: String,
    pub rollup: String,
    pub init_batch: u64,
    pub window_id: u32,
    /// For settlements, the miner whose commit is settled: a settler may
    /// settle several commits of one window.
    pub subject: Option<Address>,
}

fn step_of(tx: &ChainTx) -> StepKey {
    let subject = (tx.purpose == TxPurpose::Settle)
        .then(|| ZkPowRollup::settleNoProofCall::abi_decode(&tx.calldata).ok().map(|c| c.miner))
        .flatten();
    StepKey {
        chain_id: tx.chain_id,
        purpose: tx.purpose.to_string(),
        rollup: tx.rollup.clone(),
        init_batch: tx.init_batch,
        window_id: tx.window_id,
        subject,
    }
}

/// Transactions sent twice for one step: per step (in nonce order), every
/// row that follows a row that did not revert. A retry after a revert is
/// the sender's rule and not counted; a second commit or reveal of the same
/// window is (the contract rejects it, so it shows up as a reverted row
/// here rather than as a second event on chain). Returns each offending
/// step with the nonces of all its rows.
pub fn double_sends(txs: &[ChainTx]) -> Vec<(StepKey, Vec<u64>)> {
    let mut steps: BTreeMap<StepKey, Vec<&ChainTx>> = BTreeMap::new();
    for t in txs {
        steps.entry(step_of(t)).or_default().push(t);
    }
    let mut out = Vec::new();
    for (key, mut rows) in steps {
        rows.sort_by_key(|t| t.nonce);
        let first_kept = rows.iter().position(|t| t.status != TxStatus::Reverted);
        if first_kept.is_some_and(|k| k + 1 < rows.len()) {
            out.push((key, rows.iter().map(|t| t.nonce).collect()));
        }
    }
    out
}

/// Gaps between a miner's outbox and its account on one chain: the outbox
/// nonces (ascending) must run without holes from `first` (the account's
/// transactions before the daemon ran), and the account's next nonce on
/// chain must be the one after the outbox's last. Returns one line per gap.
pub fn nonce_gaps(outbox: &[u64], first: u64, onchain_next: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut expect = first;
    for &n in outbox {
        if n > expect {
            out.push(format!("nonces {expect}..={} are missing from the outbox", n - 1));
        } else if n < expect {
            out.push(format!("nonce {n} is out of order in the outbox (expected {expect})"));
        }
        expect = expect.max(n + 1);
    }
    if onchain_next != expect {
        out.push(format!(
            "the account's next nonce on chain is {onchain_next}, the outbox's is {expect} \
             (transactions {} the outbox)",
            if onchain_next > expect { "missing from" } else { "in the outbox but never sent by" }
        ));
    }
    out
}

/// What became of a miner's latest commit to a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    None,
    /// Revealed and valid.
    Valid,
    /// Punished already (a `Slashed` event, counted with the others).
    Punished,
    /// Settled without a punishment flag (cannot happen for a commit
    /// without a valid proof today; kept apart so it is not miscounted).
    Settled,
    /// Not revealed and its window still running: it may still be.
    Pending,
    /// Its window ended without a valid proof and nobody settled it yet:
    /// a penalty that has not been taken.
    Missed,
}

/// Classifies a commit (`commitOf`) against its sequence's current window
/// (`windowStatus`).
pub fn commit_outcome(
    commit_window: u32,
    valid: bool,
    punished: bool,
    settled: bool,
    window: u32,
    phase: Phase,
) -> CommitOutcome {
    if commit_window == 0 {
        CommitOutcome::None
    } else if valid {
        CommitOutcome::Valid
    } else if punished {
        CommitOutcome::Punished
    } else if settled {
        CommitOutcome::Settled
    } else if commit_window < window || phase == Phase::Ended {
        CommitOutcome::Missed
    } else {
        CommitOutcome::Pending
    }
}

/// A miner as the audit sees it.
pub struct AuditMiner {
    pub name: String,
    pub address: Address,
    pub database_url: String,
}

pub struct AuditChain {
    pub name: String,
    pub chain_id: u64,
    pub provider: DynProvider,
}

pub struct AuditRollup {
    pub name: String,
    /// Index into the chains.
    pub chain: usize,
    pub address: Address,
    /// `(initNumBatch, finalNewBatch)` of every posted sequence.
    pub sequences: Vec<(u64, u64)>,
}

/// The miners' commits to the posted sequences, on chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commits {
    /// Commits that may still be revealed (the run has not settled down).
    pub pending: Vec<String>,
    /// Commits whose window ended without the miner's valid proof and that
    /// nobody settled yet: penalties to come.
    pub missed: Vec<String>,
}

/// Reads every miner's latest commit to every posted sequence.
pub async fn commits(miners: &[AuditMiner], chains: &[AuditChain], rollups: &[AuditRollup]) -> anyhow::Result<Commits> {
    let mut out = Commits::default();
    for r in rollups {
        let chain = chains.get(r.chain).context("a rollup on an unknown chain")?;
        let contract = ZkPowRollup::new(r.address, chain.provider.clone());
        for &(init, _) in &r.sequences {
            let ws = contract.windowStatus(init).call().await.with_context(|| format!("{}: windowStatus", r.name))?;
            for m in miners {
                let c = contract
                    .commitOf(init, m.address)
                    .call()
                    .await
                    .with_context(|| format!("{}: commitOf {}", r.name, m.name))?;
                let what = format!("{} on {} sequence {init} window {}", m.name, r.name, c.windowId);
                match commit_outcome(c.windowId, c.valid, c.punished, c.settled, ws.windowId, Phase::from_u8(ws.phase))
                {
                    CommitOutcome::Pending => out.pending.push(what),
                    CommitOutcome::Missed => out.missed.push(what),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// What the audit of the miners' outboxes found.
#[derive(Debug, Clone, Default)]
pub struct Outboxes {
    pub double_sends: Vec<String>,
    pub nonce_gaps: Vec<String>,
    /// Rows that reverted on chain (not an error by themselves; shown).
    pub reverted: u64,
    pub transactions: u64,
}

/// Reads every miner's outbox (stop the miners first: the aggregator holds
/// its database) and every account's next nonce on chain.
pub async fn outboxes(miners: &[AuditMiner], chains: &[AuditChain]) -> anyhow::Result<Outboxes> {
    let mut out = Outboxes::default();
    for m in miners {
        let database = Db::connect(&m.database_url).with_context(|| format!("{}: opening its database", m.name))?;
        for c in chains {
            let (chain_id, sender) = (c.chain_id, m.address.0 .0);
            let txs = database
                .run(move |conn| db::outbox::sender_txs(conn, chain_id, &sender))
                .await
                .with_context(|| format!("{}: reading its outbox for {}", m.name, c.name))?;
            let onchain_next = c
                .provider
                .get_transaction_count(m.address)
                .pending()
                .await
                .with_context(|| format!("{}: nonce of {} on {}", c.name, m.name, m.address))?;
            out.transactions += txs.len() as u64;
            out.reverted += txs.iter().filter(|t| t.status == TxStatus::Reverted).count() as u64;
            for (key, nonces) in double_sends(&txs) {
                out.double_sends.push(format!(
                    "{} on {}: {} of {} sequence {} window {}{} sent {} times (nonces {nonces:?})",
                    m.name,
                    c.name,
                    key.purpose,
                    key.rollup,
                    key.init_batch,
                    key.window_id,
                    key.subject.map(|a| format!(" for {a}")).unwrap_or_default(),
                    nonces.len()
                ));
            }
            let nonces: Vec<u64> = txs.iter().map(|t| t.nonce).collect();
            for gap in nonce_gaps(&nonces, NONCES_BEFORE_OUTBOX, onchain_next) {
                out.nonce_gaps.push(format!("{} on {}: {gap}", m.name, c.name));
            }
        }
    }
    Ok(out)
}

/// How the drain after the bound ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Drain {
    /// Every posted sequence verified, every commit to them resolved.
    Drained,
    /// `--drain-secs` passed first.
    TimedOut,
    /// Ctrl-C / SIGTERM (or an unbounded run): no drain verdict.
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollupSummary {
    pub name: String,
    pub sequences_posted: usize,
    pub sequences_verified: usize,
    pub lag_batches: u64,
}

/// `chaos.json`. Every count under "must be 0" is a failure when it is not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosSummary {
    pub seed: u64,
    pub every_secs: f64,
    pub elapsed_secs: f64,
    pub kills: Kills,
    /// Restarts by the supervisor (kills, and crashes if there were any).
    pub restarts: u32,
    pub rollups: Vec<RollupSummary>,
    pub sequences_posted: usize,
    pub sequences_verified: usize,
    pub drain: Drain,
    pub drain_secs: f64,
    /// Must be 0: penalties taken from the (honest) devnet miners, plus
    /// their commits that expired unrevealed and await a penalty.
    pub honest_penalties: u64,
    /// Must be 0.
    pub double_sends: u64,
    /// Must be 0.
    pub nonce_gaps: u64,
    /// Outbox rows, and those that reverted (a revert is retried by rule).
    pub transactions: u64,
    pub reverted_transactions: u64,
    /// One line per problem found.
    pub details: Vec<String>,
    /// Why the run failed; empty: it passed.
    pub failures: Vec<String>,
}

impl ChaosSummary {
    /// The failures, from the counts (`failures` is set from this).
    pub fn verdict(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.honest_penalties != 0 {
            out.push(format!("{} penalties of honest miners", self.honest_penalties));
        }
        if self.double_sends != 0 {
            out.push(format!("{} transactions sent twice for one step", self.double_sends));
        }
        if self.nonce_gaps != 0 {
            out.push(format!("{} outbox nonce gaps", self.nonce_gaps));
        }
        match self.drain {
            Drain::Drained if self.sequences_verified != self.sequences_posted => {
                out.push(format!("{} of {} posted sequences verified", self.sequences_verified, self.sequences_posted))
            }
            Drain::TimedOut => out.push(format!(
                "the lag did not drain within {:.0}s: {} of {} posted sequences verified",
                self.drain_secs, self.sequences_verified, self.sequences_posted
            )),
            _ => {}
        }
        out
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![
            format!("chaos summary (seed {}, a kill every {:.1}s)", self.seed, self.every_secs),
            format!(
                "  kills {} (aggregators {}, provers {}), restarts {}",
                self.kills.total, self.kills.aggregator, self.kills.prover, self.restarts
            ),
        ];
        for r in &self.rollups {
            out.push(format!(
                "  {}: {} posted, {} verified, lag {} batches",
                r.name, r.sequences_posted, r.sequences_verified, r.lag_batches
            ));
        }
        let drain = match self.drain {
            Drain::Drained => format!("drained in {:.1}s", self.drain_secs),
            Drain::TimedOut => format!("NOT drained after {:.1}s", self.drain_secs),
            Drain::Interrupted => "interrupted (no drain)".into(),
        };
        out.push(format!(
            "  {drain}; honest penalties {}, double sends {}, nonce gaps {} ({} transactions, {} reverted)",
            self.honest_penalties, self.double_sends, self.nonce_gaps, self.transactions, self.reverted_transactions
        ));
        out.extend(self.details.iter().map(|d| format!("  - {d}")));
        out.push(if self.failures.is_empty() {
            "  PASS".into()
        } else {
            format!("  FAIL: {}", self.failures.join("; "))
        });
        out
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcKind::{Aggregator as A, Prover as P};

    #[test]
    fn victims_alternate_kinds_aggregators_first_and_only_running_ones() {
        let procs = [(A, true), (P, true), (A, true), (P, true)];
        let mut picker = VictimPicker::new(7);
        let kinds: Vec<ProcKind> = (0..6).map(|_| procs[picker.pick(&procs).unwrap()].0).collect();
        assert_eq!(kinds, [A, P, A, P, A, P]);

        // Both aggregators down: a prover instead, and aggregators stay next.
        let procs = [(A, false), (P, true), (A, false), (P, false)];
        let mut picker = VictimPicker::new(7);
        assert_eq!(picker.pick(&procs), Some(1));
        let procs = [(A, true), (P, true), (A, false), (P, false)];
        assert_eq!(picker.pick(&procs), Some(0), "the next due kind is still aggregator");
        assert_eq!(picker.pick(&[(A, false), (P, false)]), None);
    }

    #[test]
    fn victims_are_random_within_a_kind_and_reproducible() {
        let procs = [(A, true), (P, true), (A, true), (P, true)];
        let run = |seed| {
            let mut p = VictimPicker::new(seed);
            (0..40).map(|_| p.pick(&procs).unwrap()).collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1), "same seed, same victims");
        for i in 0..4 {
            assert!(a.contains(&i), "process {i} never picked in 40 kills: {a:?}");
        }
    }

    #[test]
    fn the_chaos_clock_kills_every_period() {
        let t0 = Instant::now();
        let mut c = Chaos::new(Duration::from_secs(10), 3, t0);
        let procs = [(A, true), (P, true)];
        assert_eq!(c.due(t0 + Duration::from_secs(9), &procs), None);
        assert_eq!(c.due(t0 + Duration::from_secs(10), &procs), Some(0));
        assert_eq!(c.due(t0 + Duration::from_secs(11), &procs), None, "next one 10 s later");
        assert_eq!(c.due(t0 + Duration::from_secs(20), &procs), Some(1));
    }

    fn tx(nonce: u64, purpose: TxPurpose, init: u64, window: u32, status: TxStatus) -> ChainTx {
        ChainTx {
            id: format!("r/{init}/w{window}/{purpose}/{nonce}"),
            chain_id: 31337,
            sender: [2; 20],
            nonce,
            purpose,
            rollup: "r".into(),
            init_batch: init,
            window_id: window,
            to: [1; 20],
            calldata: Vec::new(),
            gas_limit: 0,
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
            raw_tx: Vec::new(),
            tx_hash: [0; 32],
            hashes: Vec::new(),
            status,
            sent_block: 0,
            replacements: 0,
            mined_block: None,
            mined_hash: None,
            gas_used: None,
            effective_gas_price: None,
            error: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn one_transaction_per_step_retries_only_after_a_revert() {
        use TxPurpose::*;
        use TxStatus::*;
        let clean = [
            tx(1, Commit, 1, 1, Confirmed),
            tx(2, Reveal, 1, 1, Confirmed),
            tx(3, Claim, 1, 1, Confirmed),
            // A new window is a new step.
            tx(4, Commit, 3, 1, Confirmed),
            tx(5, Commit, 3, 2, Confirmed),
            // A retry after a revert is the rule.
            tx(6, Reveal, 3, 2, Reverted),
            tx(7, Reveal, 3, 2, Confirmed),
        ];
        assert_eq!(double_sends(&clean), []);

        let twice = [tx(1, Commit, 1, 1, Confirmed), tx(2, Commit, 1, 1, Reverted), tx(3, Reveal, 1, 1, Pending)];
        let found = double_sends(&twice);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0.purpose.as_str(), found[0].0.init_batch, &found[0].1), ("commit", 1, &vec![1, 2]));
        // After a revert, a retry and then another one.
        let thrice = [tx(1, Reveal, 1, 1, Reverted), tx(2, Reveal, 1, 1, Mined), tx(3, Reveal, 1, 1, Confirmed)];
        assert_eq!(double_sends(&thrice)[0].1, [1, 2, 3]);
    }

    #[test]
    fn settlements_of_different_miners_are_different_steps() {
        let settle = |nonce, miner: Address| {
            let mut t = tx(nonce, TxPurpose::Settle, 5, 1, TxStatus::Confirmed);
            t.calldata = ZkPowRollup::settleNoProofCall { initNumBatch: 5, miner }.abi_encode();
            t
        };
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        assert_eq!(double_sends(&[settle(1, a), settle(2, b)]), []);
        assert_eq!(double_sends(&[settle(1, a), settle(2, a)]).len(), 1);
    }

    #[test]
    fn nonces_run_from_the_deposit_to_the_chain_without_holes() {
        assert_eq!(nonce_gaps(&[1, 2, 3], 1, 4), Vec::<String>::new());
        assert_eq!(nonce_gaps(&[], 1, 1), Vec::<String>::new(), "only the deposit");
        let g = nonce_gaps(&[1, 2, 5], 1, 6);
        assert_eq!(g.len(), 1);
        assert!(g[0].contains("3..=4"), "{g:?}");
        assert_eq!(nonce_gaps(&[2, 3], 1, 4).len(), 1, "the first outbox nonce must follow the deposit");
        let g = nonce_gaps(&[1, 2], 1, 4);
        assert!(g.len() == 1 && g[0].contains("missing from the outbox"), "{g:?}");
        let g = nonce_gaps(&[1, 2, 3], 1, 3);
        assert!(g.len() == 1 && g[0].contains("never sent"), "{g:?}");
    }

    #[test]
    fn commit_outcomes() {
        use CommitOutcome::*;
        assert_eq!(commit_outcome(0, false, false, false, 1, Phase::Commit), None);
        assert_eq!(commit_outcome(1, true, false, true, 1, Phase::Ended), Valid);
        assert_eq!(commit_outcome(1, false, true, true, 1, Phase::Ended), Punished);
        assert_eq!(commit_outcome(1, false, false, false, 1, Phase::Reveal), Pending);
        assert_eq!(commit_outcome(1, false, false, false, 1, Phase::AwaitingPredecessor), Pending);
        assert_eq!(commit_outcome(1, false, false, false, 1, Phase::Ended), Missed);
        assert_eq!(commit_outcome(1, false, false, false, 2, Phase::Commit), Missed, "an earlier window");
    }

    fn summary() -> ChaosSummary {
        ChaosSummary {
            seed: 1,
            every_secs: 12.0,
            elapsed_secs: 80.0,
            kills: Kills { total: 6, aggregator: 3, prover: 3 },
            restarts: 6,
            rollups: Vec::new(),
            sequences_posted: 10,
            sequences_verified: 10,
            drain: Drain::Drained,
            drain_secs: 12.0,
            honest_penalties: 0,
            double_sends: 0,
            nonce_gaps: 0,
            transactions: 40,
            reverted_transactions: 0,
            details: Vec::new(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_names_every_nonzero_must_be_zero_and_an_undrained_lag() {
        assert_eq!(summary().verdict(), Vec::<String>::new());
        let mut s = summary();
        s.honest_penalties = 1;
        s.double_sends = 2;
        s.nonce_gaps = 3;
        let v = s.verdict();
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v[0].contains("penalties") && v[1].contains("twice") && v[2].contains("nonce"), "{v:?}");

        let mut s = summary();
        s.drain = Drain::TimedOut;
        s.sequences_verified = 8;
        assert!(s.verdict()[0].contains("8 of 10"), "{:?}", s.verdict());
        // Interrupted by the user: no drain verdict, the other checks still count.
        let mut s = summary();
        s.drain = Drain::Interrupted;
        s.sequences_verified = 8;
        assert_eq!(s.verdict(), Vec::<String>::new());
        s.double_sends = 1;
        assert_eq!(s.verdict().len(), 1);
    }
}

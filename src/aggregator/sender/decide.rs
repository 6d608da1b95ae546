//! The proof sender's state machine: given what the chain says about a
//! sequence and what we hold locally, the one next step of the two-step
//! submission (commit the proof hash within T1, reveal the proof within T2,
//! claim the reward after the window, settle a commit that holds our bond
//! without a valid proof). A plain function of its inputs, so every rule is
//! unit-tested here. It is the one rule book of the sender: each of the
//! three stage actors ([`super`]) reads the inputs, asks [`decide`], and
//! either carries the step out or hands the sequence to the stage it
//! belongs to ([`super::stage`]).
//!
//! Protocol v2 pipelines windows: every proven, unverified sequence is
//! committed to as soon as its window takes commits, whatever the state of
//! the sequences before it; its reveal phase starts once T1 is over *and*
//! the previous sequence is verified, so sequences committed in parallel are
//! revealed one after the other as their predecessors verify.
//!
//! ```text
//!            ┌──────────── window ended unverified (resend) ──────────────────┐
//!            ▼                                                                 │
//!  proven ─► COMMIT ─(mined)─► wait T1 and predecessor ─► REVEAL ─(valid)─► wait end ─► CLAIM ─► done: rewarded
//!    │         │                                                                
//!    │         └─ too late in T1 ─► wait (next window)       window over without our valid proof ─► SETTLE (frees the bond)
//!    └─ verified by others before our commit ─► done: verified_by_others (no gas spent)
//! ```

use crate::config::SenderConfig;
use crate::db::TxPurpose;

/// The contract's `WindowPhase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No sequence starts at this batch (reorged away, or not posted).
    None,
    NotOpen,
    Commit,
    Reveal,
    Ended,
    /// T1 is over and the previous sequence is not verified yet: the reveal
    /// phase has not started.
    AwaitingPredecessor,
}

impl Phase {
    pub fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::NotOpen,
            2 => Phase::Commit,
            3 => Phase::Reveal,
            4 => Phase::Ended,
            5 => Phase::AwaitingPredecessor,
            _ => Phase::None,
        }
    }
}

/// Our commit record for the sequence (`commitOf`), latest window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OurCommit {
    /// 0: never committed.
    pub window_id: u32,
    pub revealed: bool,
    pub valid: bool,
    pub punished: bool,
    pub rewarded: bool,
    /// The commit's bond was released or slashed.
    pub settled: bool,
}

impl OurCommit {
    /// A commit without a valid proof whose bond is still locked.
    fn holds_bond(&self) -> bool {
        self.window_id != 0 && !self.valid && !self.settled
    }
}

/// The chain's view of one sequence, all read at one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainView {
    pub head: u64,
    pub init_batch: u64,
    pub last_verified: u64,
    pub verified: bool,
    pub phase: Phase,
    pub window_id: u32,
    /// Exclusive end of the current window's commit phase (0 when not open).
    pub commit_end: u64,
    /// Exclusive end of the reveal phase (0 while it is not known: window
    /// not open, or the previous sequence not verified yet).
    pub reveal_end: u64,
    /// T2 of the sequence's windows (fixed when it was posted).
    pub t2: u32,
    pub ours: OurCommit,
}

/// What we hold locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalView {
    /// The final artifact (the proof to reveal) is in the database.
    pub artifact: bool,
    /// Our committed hash is the hash of the artifact at hand. A reveal of
    /// anything else costs the wrong-proof penalty, more than not revealing.
    pub commit_matches: bool,
    /// A transaction for this sequence is sent and not yet settled.
    pub in_flight: Option<TxPurpose>,
}

/// Why a submission is finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Our valid proof was rewarded (or rewards are not claimed by config).
    Rewarded,
    /// Someone else verified it before we committed: nothing to gain.
    VerifiedByOthers,
    /// We committed but did not get a valid reveal in before it was verified.
    Missed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Rewarded => "rewarded",
            Outcome::VerifiedByOthers => "verified_by_others",
            Outcome::Missed => "missed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do now; the reason is for logs and the status API.
    Wait(&'static str),
    /// Commit the proof hash; the commit belongs to this window.
    Commit {
        window_id: u32,
    },
    Reveal,
    Claim,
    /// `settleNoProof` on our own commit: the penalty is due either way,
    /// settling releases the rest of the bond for other commits.
    Settle,
    Done(Outcome),
}

/// The next step for a sequence we hold a submission for.
pub fn decide(v: &ChainView, local: &LocalView, cfg: &SenderConfig) -> Action {
    if local.in_flight.is_some() {
        return Action::Wait("a transaction for this sequence is in flight");
    }
    if v.phase == Phase::None {
        return Action::Wait("the sequence is not on chain (reorged away?)");
    }
    let ours = v.ours;
    if ours.valid {
        if ours.rewarded || !cfg.claim_rewards {
            return Action::Done(Outcome::Rewarded);
        }
        // A valid proof verifies the sequence, so its window is the last one.
        return if v.phase == Phase::Ended { Action::Claim } else { Action::Wait("reward claimable after the window") };
    }
    let committed_now = ours.window_id != 0 && ours.window_id == v.window_id;
    if committed_now {
        match v.phase {
            Phase::Commit => return Action::Wait("committed; the reveal phase starts after T1"),
            Phase::AwaitingPredecessor => {
                return Action::Wait("committed; the reveal phase starts once the previous sequence is verified")
            }
            Phase::Reveal if !ours.revealed => {
                if !local.artifact || !local.commit_matches {
                    return Action::Wait("the committed proof is not at hand; not revealing");
                }
                // The reveal lands in the next block at the earliest.
                if v.head + 1 + cfg.reveal_margin_blocks.saturating_sub(1) >= v.reveal_end {
                    return Action::Wait("too late in T2 to reveal");
                }
                return Action::Reveal;
            }
            Phase::Reveal => return Action::Wait("our reveal was rejected; waiting for the window to end"),
            // An ended (or reset) window without our valid proof: if nobody
            // verified the sequence either, start over in the next window
            // (that commit settles this one).
            Phase::Ended | Phase::NotOpen | Phase::None => {}
        }
    }
    if v.verified {
        if ours.holds_bond() {
            return Action::Settle;
        }
        return Action::Done(if ours.window_id != 0 { Outcome::Missed } else { Outcome::VerifiedByOthers });
    }
    if !cfg.pipelined && v.init_batch != v.last_verified + 1 {
        return Action::Wait("an earlier sequence is not verified yet (pipelining off)");
    }
    if !local.artifact {
        return Action::Wait("the final proof is not ready");
    }
    match v.phase {
        Phase::NotOpen | Phase::Ended => {
            // This commit opens a window: T2 must leave room for the reveal.
            if u64::from(v.t2) <= cfg.reveal_margin_blocks {
                return Action::Wait("the sequence's T2 is too short to reveal in");
            }
            let window_id = if v.phase == Phase::Ended { v.window_id + 1 } else { v.window_id };
            Action::Commit { window_id }
        }
        Phase::Commit => {
            if v.commit_end > v.head + cfg.commit_margin_blocks {
                Action::Commit { window_id: v.window_id }
            } else {
                Action::Wait("too late in T1 to commit; next window if unverified")
            }
        }
        Phase::Reveal | Phase::AwaitingPredecessor => Action::Wait("another miner's window is past its commit phase"),
        Phase::None => Action::Wait("the sequence is not on chain"),
    }
}

/// The profitability guard: whether committing (and revealing) at
/// `fee_per_gas` costs no more than the sequence's whole reward.
pub fn commit_pays(commit_gas: u64, reveal_gas: u64, fee_per_gas: u128, reward: u128) -> bool {
    let cost = u128::from(commit_gas + reveal_gas).saturating_mul(fee_per_gas);
    cost <= reward
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SenderConfig {
        SenderConfig::default()
    }

    fn view(phase: Phase) -> ChainView {
        let (commit_end, reveal_end) = match phase {
            Phase::Commit | Phase::Reveal | Phase::Ended => (120, 152),
            _ => (0, 0),
        };
        let head = match phase {
            Phase::Commit => 105,
            Phase::Reveal => 130,
            Phase::Ended => 160,
            _ => 100,
        };
        ChainView {
            head,
            init_batch: 5,
            last_verified: 4,
            verified: false,
            phase,
            window_id: 1,
            commit_end,
            reveal_end,
            t2: 32,
            ours: OurCommit::default(),
        }
    }

    const READY: LocalView = LocalView { artifact: true, commit_matches: true, in_flight: None };

    fn committed(mut v: ChainView) -> ChainView {
        v.ours.window_id = v.window_id;
        v
    }

    #[test]
    fn commits_a_proven_sequence_when_the_window_is_closed_or_in_t1() {
        assert_eq!(decide(&view(Phase::NotOpen), &READY, &cfg()), Action::Commit { window_id: 1 });
        assert_eq!(decide(&view(Phase::Commit), &READY, &cfg()), Action::Commit { window_id: 1 });
        // An ended window without a valid proof: the commit opens the next one.
        assert_eq!(decide(&view(Phase::Ended), &READY, &cfg()), Action::Commit { window_id: 2 });
    }

    #[test]
    fn never_commits_when_the_commit_could_land_after_t1() {
        let mut v = view(Phase::Commit);
        v.head = v.commit_end - cfg().commit_margin_blocks;
        assert!(matches!(decide(&v, &READY, &cfg()), Action::Wait(_)));
        v.head -= 1;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Commit { window_id: 1 });
        // Nor in another miner's reveal phase.
        assert!(matches!(decide(&view(Phase::Reveal), &READY, &cfg()), Action::Wait(_)));
        // Nor when T2 leaves no room to reveal.
        let mut v = view(Phase::NotOpen);
        v.t2 = 1;
        assert!(matches!(decide(&v, &READY, &cfg()), Action::Wait(_)));
    }

    #[test]
    fn no_gas_for_a_sequence_someone_else_verified() {
        for phase in [Phase::Commit, Phase::Reveal, Phase::Ended] {
            let mut v = view(phase);
            v.verified = true;
            v.last_verified = 5;
            assert_eq!(decide(&v, &READY, &cfg()), Action::Done(Outcome::VerifiedByOthers), "{phase:?}");
        }
    }

    #[test]
    fn a_committer_reveals_in_t2_even_after_someone_else_verified() {
        assert!(matches!(decide(&committed(view(Phase::Commit)), &READY, &cfg()), Action::Wait(_)));
        let mut v = committed(view(Phase::Reveal));
        assert_eq!(decide(&v, &READY, &cfg()), Action::Reveal);
        // A late valid reveal is still rewarded.
        v.verified = true;
        v.last_verified = 5;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Reveal);
        // Too close to the end of T2: the reveal would revert.
        v.head = v.reveal_end - 1;
        assert!(matches!(decide(&v, &READY, &cfg()), Action::Wait(_)));
    }

    #[test]
    fn never_reveals_a_proof_other_than_the_committed_one() {
        let v = committed(view(Phase::Reveal));
        let lost = LocalView { commit_matches: false, ..READY };
        assert!(matches!(decide(&v, &lost, &cfg()), Action::Wait(_)));
        let gone = LocalView { artifact: false, ..READY };
        assert!(matches!(decide(&v, &gone, &cfg()), Action::Wait(_)));
    }

    #[test]
    fn a_missed_window_is_resent_in_the_next_one() {
        // We committed to window 1 and never revealed; nobody verified.
        let v = committed(view(Phase::Ended));
        assert_eq!(decide(&v, &READY, &cfg()), Action::Commit { window_id: 2 });
        // Someone reset the window explicitly: the next commit opens window 2.
        let mut v = committed(view(Phase::NotOpen));
        v.ours.window_id = 1;
        v.window_id = 2;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Commit { window_id: 2 });
        // But if it was verified meanwhile, we missed it: settle our own
        // commit first (it frees the rest of the bond), then we are done.
        let mut v = committed(view(Phase::Ended));
        v.verified = true;
        v.last_verified = 5;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Settle);
        v.ours.settled = true;
        v.ours.punished = true;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Done(Outcome::Missed));
    }

    #[test]
    fn claims_after_the_window_then_is_done() {
        let mut v = committed(view(Phase::Reveal));
        v.verified = true;
        v.last_verified = 5;
        v.ours.revealed = true;
        v.ours.valid = true;
        assert!(matches!(decide(&v, &READY, &cfg()), Action::Wait(_)));
        v.phase = Phase::Ended;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Claim);
        v.ours.rewarded = true;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Done(Outcome::Rewarded));
        let no_claims = SenderConfig { claim_rewards: false, ..cfg() };
        v.ours.rewarded = false;
        assert_eq!(decide(&v, &READY, &no_claims), Action::Done(Outcome::Rewarded));
    }

    #[test]
    fn waits_for_in_flight_transactions_and_proofs() {
        let busy = LocalView { in_flight: Some(TxPurpose::Commit), ..READY };
        assert!(matches!(decide(&view(Phase::NotOpen), &busy, &cfg()), Action::Wait(_)));
        let unproven = LocalView { artifact: false, ..READY };
        assert!(matches!(decide(&view(Phase::NotOpen), &unproven, &cfg()), Action::Wait(_)));
        assert!(matches!(decide(&view(Phase::None), &READY, &cfg()), Action::Wait(_)));
    }

    #[test]
    fn a_rejected_reveal_waits_then_retries_in_the_next_window() {
        let mut v = committed(view(Phase::Reveal));
        v.ours.revealed = true;
        v.ours.punished = true;
        assert!(matches!(decide(&v, &READY, &cfg()), Action::Wait(_)));
        v.phase = Phase::Ended;
        v.head = v.reveal_end;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Commit { window_id: 2 });
    }

    #[test]
    fn pipelined_commits_do_not_wait_for_earlier_sequences() {
        // Sequence 5 while batches 1..2 are verified: sequence 3 is still open.
        let mut v = view(Phase::NotOpen);
        v.last_verified = 2;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Commit { window_id: 1 });
        let mut c = view(Phase::Commit);
        c.last_verified = 2;
        assert_eq!(decide(&c, &READY, &cfg()), Action::Commit { window_id: 1 });
        // The one-window-at-a-time reference waits.
        let serial = SenderConfig { pipelined: false, ..cfg() };
        assert!(matches!(decide(&v, &READY, &serial), Action::Wait(_)));
        v.last_verified = 4;
        assert_eq!(decide(&v, &READY, &serial), Action::Commit { window_id: 1 });
    }

    #[test]
    fn a_committer_waits_for_the_predecessor_then_reveals() {
        let mut v = committed(view(Phase::AwaitingPredecessor));
        v.last_verified = 2;
        v.head = 140;
        v.reveal_end = 0;
        assert!(matches!(decide(&v, &READY, &cfg()), Action::Wait(_)));
        // Nobody else commits into a window past its commit phase either.
        let mut other = view(Phase::AwaitingPredecessor);
        other.last_verified = 2;
        assert!(matches!(decide(&other, &READY, &cfg()), Action::Wait(_)));
        // The predecessor is verified in block 150: the reveal phase runs
        // 150..170, long after the window's own T1 ended.
        v.phase = Phase::Reveal;
        v.last_verified = 4;
        v.head = 150;
        v.reveal_end = 170;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Reveal);
    }

    #[test]
    fn a_window_that_ended_without_our_proof_is_settled_or_recommitted() {
        // Unverified: the next commit settles the stale one by itself.
        let v = committed(view(Phase::Ended));
        assert_eq!(decide(&v, &READY, &cfg()), Action::Commit { window_id: 2 });
        // Verified by someone else while our bond is locked: settle it.
        let mut v = committed(view(Phase::Ended));
        v.verified = true;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Settle);
        // Someone else settled it already: nothing left to do.
        v.ours.settled = true;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Done(Outcome::Missed));
        // A rejected reveal was slashed (settled) at once.
        let mut v = committed(view(Phase::Ended));
        v.verified = true;
        v.ours.revealed = true;
        v.ours.punished = true;
        v.ours.settled = true;
        assert_eq!(decide(&v, &READY, &cfg()), Action::Done(Outcome::Missed));
    }

    #[test]
    fn profit_guard_compares_gas_cost_with_the_reward() {
        let gwei = 1_000_000_000u128;
        assert!(commit_pays(64_000, 400_000, gwei, 10u128.pow(17)));
        assert!(!commit_pays(64_000, 400_000, 1_000 * gwei, 10u128.pow(17)));
        assert!(!commit_pays(u64::MAX / 4, u64::MAX / 4, u128::MAX / 2, u128::MAX - 1), "saturates, no overflow");
    }
}

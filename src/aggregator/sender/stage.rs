//! Which stage of the sender a sequence belongs to, given the rule book's
//! answer, and when its actor should look at it again.
//!
//! The three actors ask the same [`decide`](super::decide::decide); what an
//! answer means for *where* the sequence goes is decided here, in one
//! place, so a restart, a reorg or a lost commit, which can put a sequence
//! in any cache, is sorted out by the same rules as the normal flow.

use super::decide::{Action, ChainView, LocalView, Outcome, Phase};
use crate::db::TxPurpose;

/// A stage of the two-step submission, and its actor and cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// `HashCommitter` on `finalProofMsgCache`: commits the proof hash in T1.
    Commit,
    /// `CommitMonitor` on `monitPHTxCache`: waits for the commit's
    /// inclusion and for the reveal phase.
    Monitor,
    /// `ProofRevealer` on `ProofHashCache`: reveals in T2, claims and
    /// settles after the window.
    Reveal,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Commit, Stage::Monitor, Stage::Reveal];

    /// The cache's name, as in the metrics' `cache` label.
    pub fn cache(self) -> &'static str {
        match self {
            Stage::Commit => "final_proof_msg",
            Stage::Monitor => "monit_ph_tx",
            Stage::Reveal => "proof_hash",
        }
    }

    /// The actor's name, as in logs and the metrics' `kind` label.
    pub fn actor(self) -> &'static str {
        match self {
            Stage::Commit => "hash_committer",
            Stage::Monitor => "commit_monitor",
            Stage::Reveal => "proof_revealer",
        }
    }
}

/// Where a sequence goes after a look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// This stage's actor owns the sequence now (it acts, or waits there).
    To(Stage),
    /// Finished: the submission is closed and leaves the caches.
    Done(Outcome),
}

/// The stage that owns the sequence for `action`.
///
/// Transactions decide by their purpose: commits belong to the committer,
/// reveals, claims and settlements to the revealer. A wait belongs to the
/// stage whose event ends it: a commit in flight or a commit waiting for
/// the reveal phase to the monitor; a reveal in flight, a rejected reveal
/// or a reward waiting for the window's end to the revealer; anything that
/// waits to (re-)commit (no proof yet, too late in T1, another miner's
/// window) to the committer.
pub fn route(v: &ChainView, local: &LocalView, action: &Action) -> Route {
    match action {
        Action::Done(outcome) => Route::Done(*outcome),
        Action::Commit { .. } => Route::To(Stage::Commit),
        Action::Reveal | Action::Claim | Action::Settle => Route::To(Stage::Reveal),
        Action::Wait(_) => Route::To(waiting_stage(v, local)),
    }
}

fn waiting_stage(v: &ChainView, local: &LocalView) -> Stage {
    match local.in_flight {
        Some(TxPurpose::Commit) => return Stage::Monitor,
        Some(_) => return Stage::Reveal,
        None => {}
    }
    if v.ours.valid {
        return Stage::Reveal;
    }
    let committed_now = v.ours.window_id != 0 && v.ours.window_id == v.window_id;
    if !committed_now {
        return Stage::Commit;
    }
    match v.phase {
        Phase::Commit | Phase::AwaitingPredecessor => Stage::Monitor,
        Phase::Reveal => Stage::Reveal,
        // Our window ended (or was reset): the next step is a commit.
        Phase::Ended | Phase::NotOpen | Phase::None => Stage::Commit,
    }
}

/// The first head at which the sequence is worth a look again. Block
/// timers: a commit waiting for T1 sleeps until T1's last block, a valid
/// proof waiting to claim until the window's end; the chain cannot change
/// the answer before then. Everything else looks again at the next block.
pub fn next_look(v: &ChainView, local: &LocalView, action: &Action) -> u64 {
    let next = v.head + 1;
    if !matches!(action, Action::Wait(_)) || local.in_flight.is_some() {
        return next;
    }
    let committed_now = v.ours.window_id != 0 && v.ours.window_id == v.window_id;
    let at = if v.ours.valid && v.phase != Phase::Ended {
        v.reveal_end
    } else if committed_now && v.phase == Phase::Commit {
        v.commit_end
    } else {
        next
    };
    at.max(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregator::sender::decide::{decide, OurCommit};
    use crate::config::SenderConfig;

    fn view(phase: Phase) -> ChainView {
        ChainView {
            head: 105,
            init_batch: 5,
            last_verified: 4,
            verified: false,
            phase,
            window_id: 1,
            commit_end: 120,
            reveal_end: 152,
            t2: 32,
            ours: OurCommit::default(),
        }
    }

    const READY: LocalView = LocalView { artifact: true, commit_matches: true, in_flight: None };

    fn committed(mut v: ChainView) -> ChainView {
        v.ours.window_id = v.window_id;
        v
    }

    /// Routes through the real rule book, as the actors do.
    fn routed(v: &ChainView, local: &LocalView) -> Route {
        route(v, local, &decide(v, local, &SenderConfig::default()))
    }

    #[test]
    fn transactions_go_to_the_stage_that_sends_them() {
        let v = view(Phase::Commit);
        assert_eq!(route(&v, &READY, &Action::Commit { window_id: 1 }), Route::To(Stage::Commit));
        for a in [Action::Reveal, Action::Claim, Action::Settle] {
            assert_eq!(route(&v, &READY, &a), Route::To(Stage::Reveal), "{a:?}");
        }
        assert_eq!(
            route(&v, &READY, &Action::Done(Outcome::Rewarded)),
            Route::Done(Outcome::Rewarded),
            "done leaves the caches"
        );
    }

    #[test]
    fn the_happy_path_walks_commit_monitor_reveal() {
        let mut v = view(Phase::NotOpen);
        v.head = 100;
        assert_eq!(routed(&v, &READY), Route::To(Stage::Commit));
        // The commit is in flight, then mined in T1: the monitor waits.
        let sent = LocalView { in_flight: Some(TxPurpose::Commit), ..READY };
        assert_eq!(routed(&view(Phase::Commit), &sent), Route::To(Stage::Monitor));
        assert_eq!(routed(&committed(view(Phase::Commit)), &READY), Route::To(Stage::Monitor));
        let mut waiting = committed(view(Phase::AwaitingPredecessor));
        waiting.head = 125;
        assert_eq!(routed(&waiting, &READY), Route::To(Stage::Monitor));
        // T2: the revealer reveals, follows its reveal, then claims.
        let mut r = committed(view(Phase::Reveal));
        r.head = 130;
        assert_eq!(routed(&r, &READY), Route::To(Stage::Reveal));
        let revealing = LocalView { in_flight: Some(TxPurpose::Reveal), ..READY };
        assert_eq!(routed(&r, &revealing), Route::To(Stage::Reveal));
        r.ours.revealed = true;
        r.ours.valid = true;
        r.verified = true;
        assert_eq!(routed(&r, &READY), Route::To(Stage::Reveal), "waits there for the window's end");
        r.phase = Phase::Ended;
        r.head = 160;
        assert_eq!(routed(&r, &READY), Route::To(Stage::Reveal), "claims");
        r.ours.rewarded = true;
        assert_eq!(routed(&r, &READY), Route::Done(Outcome::Rewarded));
    }

    #[test]
    fn a_window_that_ended_without_our_proof_goes_back_to_the_committer() {
        // Found by the monitor after a freeze, or by the revealer after a
        // rejected or missed reveal: the same answer.
        let mut v = committed(view(Phase::Ended));
        v.head = 160;
        assert_eq!(routed(&v, &READY), Route::To(Stage::Commit));
        v.ours.revealed = true;
        v.ours.punished = true;
        assert_eq!(routed(&v, &READY), Route::To(Stage::Commit));
        // A rejected reveal waits in the revealer for the window to end.
        let mut r = committed(view(Phase::Reveal));
        r.head = 130;
        r.ours.revealed = true;
        assert_eq!(routed(&r, &READY), Route::To(Stage::Reveal));
    }

    #[test]
    fn a_lost_or_reorged_commit_goes_back_to_the_committer() {
        // The monitor held a sequence whose commit a reorg removed: the
        // chain shows no commit of ours in the open window.
        assert_eq!(routed(&view(Phase::Commit), &READY), Route::To(Stage::Commit));
        // The sequence itself was reorged away: the committer waits for it.
        assert_eq!(routed(&view(Phase::None), &READY), Route::To(Stage::Commit));
        // Our committed proof is gone: the revealer holds it (it must not
        // reveal anything else) until the window ends.
        let mut r = committed(view(Phase::Reveal));
        r.head = 130;
        let lost = LocalView { commit_matches: false, ..READY };
        assert_eq!(routed(&r, &lost), Route::To(Stage::Reveal));
    }

    #[test]
    fn someone_elses_verification_ends_or_settles_it() {
        let mut v = view(Phase::Reveal);
        v.verified = true;
        assert_eq!(routed(&v, &READY), Route::Done(Outcome::VerifiedByOthers));
        let mut c = committed(view(Phase::Ended));
        c.verified = true;
        assert_eq!(routed(&c, &READY), Route::To(Stage::Reveal), "settle our own stale commit");
        c.ours.settled = true;
        assert_eq!(routed(&c, &READY), Route::Done(Outcome::Missed));
    }

    #[test]
    fn block_timers_sleep_through_t1_and_to_the_window_end_only() {
        let cfg = SenderConfig::default();
        let look = |v: &ChainView, l: &LocalView| next_look(v, l, &decide(v, l, &cfg));
        // Committed in T1: nothing can change before T1's last block.
        let v = committed(view(Phase::Commit));
        assert_eq!(look(&v, &READY), 120);
        // A valid proof waits for the window's end to claim.
        let mut r = committed(view(Phase::Reveal));
        r.head = 130;
        r.ours.valid = true;
        r.ours.revealed = true;
        assert_eq!(look(&r, &READY), 152);
        // Anything in flight or waiting on others: the next block.
        let sent = LocalView { in_flight: Some(TxPurpose::Commit), ..READY };
        assert_eq!(look(&view(Phase::Commit), &sent), 106);
        let mut p = committed(view(Phase::AwaitingPredecessor));
        p.head = 125;
        assert_eq!(look(&p, &READY), 126);
        // An action is followed up at the next block.
        assert_eq!(next_look(&view(Phase::Commit), &READY, &Action::Commit { window_id: 1 }), 106);
        // A stale end (the head already past it) never schedules backwards.
        let mut late = committed(view(Phase::Commit));
        late.head = 125;
        assert_eq!(look(&late, &READY), 126);
    }
}

//! Retention: what the database gives up once a sequence is settled, so its
//! size follows the sequences in flight rather than the daemon's whole life.
//!
//! A sequence may be pruned when it is settled (verified or skipped) and
//! has been for `retention.keep_settled_s`, its submission (if any) is done
//! and none of its transactions is still open (pending or mined without
//! enough confirmations). Pruning deletes its proofs and empties its
//! transactions' signed bytes and calldata; everything an operator reads
//! afterwards stays: the sequence, its batches and roots, its tasks, its
//! submission with outcome, reward and penalty, its transactions' hashes,
//! nonces and fees, and the booked events. Witnesses are gone already
//! (cleared when the sequence is verified).
//!
//! Nothing pruned is needed again: a settled sequence is never proven or
//! submitted again, and a finished transaction is never re-broadcast.

use std::time::Duration;

use tokio::sync::watch;

use crate::config::RetentionConfig;
use crate::db::{self, AnyConnection, Db, DbError, Millis, Sequence, SubmissionStatus};

/// Sequences looked at per page of a pass.
const PAGE: u32 = 256;

/// What one pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sequences: usize,
    pub proofs: usize,
    pub transactions: usize,
}

/// Whether everything on chain about `seq` is finished: no active
/// submission, no open transaction.
fn finished(conn: &mut AnyConnection, seq: &Sequence) -> Result<bool, DbError> {
    if let Some(sub) = db::outbox::get_submission(conn, &seq.rollup, seq.init_batch)? {
        if sub.status == SubmissionStatus::Active {
            return Ok(false);
        }
    }
    let txs = db::outbox::sequence_txs(conn, &seq.rollup, seq.init_batch)?;
    Ok(txs.iter().all(|t| !t.status.is_open()))
}

/// One pass: prunes every sequence settled at or before `now - keep_ms`
/// whose on-chain business is finished. Each sequence is pruned in its own
/// transaction, so a crash leaves it either whole or pruned and marked.
pub fn prune_settled(conn: &mut AnyConnection, now: Millis, keep_ms: u64) -> Result<Pruned, DbError> {
    prune_in_pages(conn, now, keep_ms, PAGE)
}

fn prune_in_pages(conn: &mut AnyConnection, now: Millis, keep_ms: u64, page_size: u32) -> Result<Pruned, DbError> {
    let before = now.saturating_sub(i64::try_from(keep_ms).unwrap_or(i64::MAX));
    let mut pruned = Pruned::default();
    let mut after: Option<(Millis, String, u64)> = None;
    loop {
        let page = db::sequences::settled_unpruned(
            conn,
            before,
            after.as_ref().map(|(t, r, i)| (*t, r.as_str(), *i)),
            page_size,
        )?;
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.rollup.clone(), last.init_batch));
        for seq in &page {
            db::transaction(conn, |conn| {
                // Checked inside the transaction: a transaction recorded in
                // between (a late settlement) keeps the sequence whole.
                if !finished(conn, seq)? {
                    return Ok(());
                }
                pruned.proofs += db::tasks::delete_sequence_proofs(conn, &seq.rollup, seq.init_batch)?;
                pruned.transactions += db::outbox::strip_sequence_txs(conn, &seq.rollup, seq.init_batch)?;
                db::sequences::clear_witnesses(conn, &seq.rollup, seq.init_batch)?;
                db::sequences::mark_pruned(conn, &seq.rollup, seq.init_batch, now)?;
                pruned.sequences += 1;
                Ok(())
            })?;
        }
        if page.len() < page_size as usize {
            break;
        }
    }
    Ok(pruned)
}

/// Runs [`prune_settled`] every `interval_s` until shutdown. A failed pass
/// is logged and tried again at the next tick; nothing depends on it.
pub async fn run(db: Db, cfg: RetentionConfig, mut shutdown: watch::Receiver<bool>) {
    let keep_ms = cfg.keep_settled_s.saturating_mul(1_000);
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match db.run_op("prune_settled", move |c| prune_settled(c, db::now_ms(), keep_ms)).await {
            Ok(p) if p.sequences > 0 => {
                crate::metrics::retention_pruned(p.sequences);
                tracing::info!(
                    sequences = p.sequences,
                    proofs = p.proofs,
                    transactions = p.transactions,
                    "pruned settled sequences"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "pruning settled sequences failed; next pass retries"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{NewBatch, NewSequence, SequenceState};

    #[test]
    fn a_pass_pages_through_every_candidate_even_when_the_first_page_is_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(dir.path().join("r.db").to_str().unwrap()).unwrap();
        let mut conn = db.conn().unwrap();
        let c = &mut *conn;
        for init in 1..=7u64 {
            let seq = NewSequence {
                rollup: "r".into(),
                init_batch: init,
                final_batch: init,
                l1_block: init,
                l1_block_hash: [1; 32],
                l1_tx_hash: [2; 32],
                posted_at: 0,
            };
            let batch = NewBatch { batch_num: init, data: vec![init as u8], data_hash: [3; 32] };
            db::sequences::insert_sequence(c, &seq, &[batch], 0).unwrap();
            db::sequences::update_sequence_state(c, "r", init, SequenceState::Verified, init as i64).unwrap();
            // The three oldest have an active submission: a page of 2 holds
            // only blocked ones at first, and the pass must go past them.
            if init <= 3 {
                db::outbox::offer_submission(c, "r", init, init, 0).unwrap();
            }
        }
        let p = prune_in_pages(c, 100, 0, 2).unwrap();
        assert_eq!(p.sequences, 4);
        let pruned: Vec<u64> =
            (1..=7).filter(|&i| db::sequences::get_sequence(c, "r", i).unwrap().unwrap().pruned_at.is_some()).collect();
        assert_eq!(pruned, vec![4, 5, 6, 7]);
    }
}

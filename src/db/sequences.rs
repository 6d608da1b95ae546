use diesel::prelude::*;

use crate::circuit::public::fr_to_be;
use crate::circuit::BatchWitness;
use crate::db::models::{
    convert_all, from_db, to_db, Batch, BatchRow, Hash32, Inserted, Millis, NewBatch, NewSequence, Rewind, Sequence,
    SequenceRow, SequenceState,
};
use crate::db::schema::{batches, proof_tasks, proofs, rollup_states, sequences};
use crate::db::{per_backend, transaction, AnyConnection, DbError};

/// Stores a posted sequence with all its batches, atomically.
///
/// Idempotent for re-delivered events: storing the identical sequence again
/// returns [`Inserted::AlreadyPresent`]. A different sequence at the same
/// `(rollup, init_batch)`, or one whose batches overlap a stored sequence,
/// is a [`DbError::Conflict`]: the chain and the database disagree, which
/// means a reorg was missed.
pub fn insert_sequence(
    conn: &mut AnyConnection,
    seq: &NewSequence,
    batches: &[NewBatch],
    now: Millis,
) -> Result<Inserted, DbError> {
    check_batches(seq, batches)?;
    let row = SequenceRow {
        rollup: seq.rollup.clone(),
        init_batch: to_db(seq.init_batch, "init batch")?,
        final_batch: to_db(seq.final_batch, "final batch")?,
        l1_block: to_db(seq.l1_block, "l1 block")?,
        l1_block_hash: seq.l1_block_hash.to_vec(),
        l1_tx_hash: seq.l1_tx_hash.to_vec(),
        posted_at: seq.posted_at,
        state: SequenceState::Posted.as_str().to_string(),
        verified_at: None,
        updated_at: now,
        pruned_at: None,
    };
    let batch_rows = batches
        .iter()
        .map(|b| {
            Ok(BatchRow {
                rollup: seq.rollup.clone(),
                batch_num: to_db(b.batch_num, "batch number")?,
                init_batch: row.init_batch,
                data: b.data.clone(),
                data_hash: b.data_hash.to_vec(),
                old_root: None,
                new_root: None,
                witness: None,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;

    transaction(conn, |conn| {
        let inserted = per_backend!(conn, |c| diesel::insert_into(sequences::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(c))?;
        if inserted == 0 {
            let stored = get_sequence(conn, &seq.rollup, seq.init_batch)?
                .ok_or_else(|| DbError::Conflict(format!("sequence {}/{} vanished", seq.rollup, seq.init_batch)))?;
            let stored_batches = sequence_batches(conn, &seq.rollup, seq.init_batch)?;
            return if same_sequence(&stored, &stored_batches, seq, batches) {
                Ok(Inserted::AlreadyPresent)
            } else {
                Err(DbError::Conflict(format!(
                    "sequence {}/{} is already stored with different contents (stored from l1 block {}, offered from {})",
                    seq.rollup, seq.init_batch, stored.l1_block, seq.l1_block
                )))
            };
        }
        for b in &batch_rows {
            diesel::insert_into(batches::table).values(b).execute(conn).map_err(|e| match DbError::from(e) {
                DbError::Conflict(m) => DbError::Conflict(format!(
                    "batch {}/{} already belongs to another sequence: {m}",
                    b.rollup, b.batch_num
                )),
                other => other,
            })?;
        }
        Ok(Inserted::New)
    })
}

/// A sequence must carry exactly its batches, in order; anything else is a
/// bug in the caller, caught before it reaches the table.
fn check_batches(seq: &NewSequence, batches: &[NewBatch]) -> Result<(), DbError> {
    if seq.rollup.is_empty() {
        return Err(DbError::Invalid("sequence without a rollup name".into()));
    }
    if seq.final_batch < seq.init_batch {
        return Err(DbError::Invalid(format!("sequence range {}..={} is empty", seq.init_batch, seq.final_batch)));
    }
    let expected = seq.final_batch - seq.init_batch + 1;
    if batches.len() as u64 != expected {
        return Err(DbError::Invalid(format!(
            "sequence {}..={} needs {expected} batches, got {}",
            seq.init_batch,
            seq.final_batch,
            batches.len()
        )));
    }
    for (b, n) in batches.iter().zip(seq.init_batch..) {
        if b.batch_num != n {
            return Err(DbError::Invalid(format!("batch {} where batch {n} was expected", b.batch_num)));
        }
    }
    Ok(())
}

/// Whether a stored sequence is the one offered (ignoring what the
/// aggregator has done with it since).
fn same_sequence(stored: &Sequence, stored_batches: &[Batch], seq: &NewSequence, batches: &[NewBatch]) -> bool {
    stored.final_batch == seq.final_batch
        && stored.l1_block == seq.l1_block
        && stored.l1_block_hash == seq.l1_block_hash
        && stored.l1_tx_hash == seq.l1_tx_hash
        && stored.posted_at == seq.posted_at
        && stored_batches.len() == batches.len()
        && stored_batches
            .iter()
            .zip(batches)
            .all(|(s, b)| s.batch_num == b.batch_num && s.data == b.data && s.data_hash == b.data_hash)
}

pub fn get_sequence(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<Option<Sequence>, DbError> {
    sequences::table
        .find((rollup, to_db(init_batch, "init batch")?))
        .select(SequenceRow::as_select())
        .first(conn)
        .optional()?
        .map(Sequence::try_from)
        .transpose()
}

/// The sequences of `rollup` in any of `states` (all of them when `states`
/// is empty), lowest first: the order they must be verified in.
pub fn list_sequences(
    conn: &mut AnyConnection,
    rollup: &str,
    states: &[SequenceState],
) -> Result<Vec<Sequence>, DbError> {
    let mut query = sequences::table.filter(sequences::rollup.eq(rollup)).into_boxed();
    if !states.is_empty() {
        query = query.filter(sequences::state.eq_any(states.iter().map(|s| s.as_str())));
    }
    convert_all(query.order(sequences::init_batch.asc()).select(SequenceRow::as_select()).load(conn)?)
}

/// The sequences of `rollup` the aggregator still has to do something about
/// (every state but verified and skipped, so failed ones too), lowest first.
/// This is what a restart resumes.
pub fn unverified_sequences(conn: &mut AnyConnection, rollup: &str) -> Result<Vec<Sequence>, DbError> {
    let open: Vec<SequenceState> = SequenceState::ALL.iter().copied().filter(|s| !s.is_settled()).collect();
    list_sequences(conn, rollup, &open)
}

/// Moves a sequence to `state`. Entering `Verified` stamps `verified_at`
/// (once: repeating it keeps the first time); leaving it clears the stamp,
/// as when the verifying transaction was reorged out.
pub fn update_sequence_state(
    conn: &mut AnyConnection,
    rollup: &str,
    init_batch: u64,
    state: SequenceState,
    now: Millis,
) -> Result<Sequence, DbError> {
    transaction(conn, |conn| {
        let current = get_sequence(conn, rollup, init_batch)?
            .ok_or_else(|| DbError::not_found(format!("sequence {rollup}/{init_batch}")))?;
        let verified_at = match state {
            SequenceState::Verified => current.verified_at.or(Some(now)),
            _ => None,
        };
        diesel::update(sequences::table.find((rollup, to_db(init_batch, "init batch")?)))
            .set((
                sequences::state.eq(state.as_str()),
                sequences::verified_at.eq(verified_at),
                sequences::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(Sequence { state, verified_at, updated_at: now, ..current })
    })
}

/// Undoes a reorg: removes every sequence of `rollup` posted in a block
/// after `l1_block`, with its batches, proof tasks and proofs, and the
/// executor snapshots that include any removed batch. One transaction, so
/// a crash leaves either the old or the rewound state.
pub fn rewind(conn: &mut AnyConnection, rollup: &str, l1_block: u64) -> Result<Rewind, DbError> {
    let block = to_db(l1_block, "l1 block")?;
    transaction(conn, |conn| {
        let removed: Vec<i64> = sequences::table
            .filter(sequences::rollup.eq(rollup))
            .filter(sequences::l1_block.gt(block))
            .select(sequences::init_batch)
            .order(sequences::init_batch.asc())
            .load(conn)?;
        let Some(&first) = removed.first() else { return Ok(Rewind::default()) };

        let task_ids: Vec<String> = proof_tasks::table
            .filter(proof_tasks::rollup.eq(rollup))
            .filter(proof_tasks::init_batch.eq_any(&removed))
            .select(proof_tasks::id)
            .load(conn)?;
        // Children first: the foreign keys forbid orphans.
        let proofs = diesel::delete(proofs::table.filter(proofs::task_id.eq_any(&task_ids))).execute(conn)?;
        let tasks = diesel::delete(proof_tasks::table.filter(proof_tasks::id.eq_any(&task_ids))).execute(conn)?;
        let batches = diesel::delete(
            batches::table.filter(batches::rollup.eq(rollup)).filter(batches::init_batch.eq_any(&removed)),
        )
        .execute(conn)?;
        let sequences = diesel::delete(
            sequences::table.filter(sequences::rollup.eq(rollup)).filter(sequences::init_batch.eq_any(&removed)),
        )
        .execute(conn)?;
        super::outbox::rewind_submissions(conn, rollup, first)?;
        let snapshots = diesel::delete(
            rollup_states::table
                .filter(rollup_states::rollup.eq(rollup))
                .filter(rollup_states::last_executed_batch.ge(first)),
        )
        .execute(conn)?;
        Ok(Rewind {
            sequences,
            batches,
            tasks,
            proofs,
            snapshots,
            first_removed_batch: Some(from_db(first, "init batch")?),
        })
    })
}

pub fn get_batch(conn: &mut AnyConnection, rollup: &str, batch_num: u64) -> Result<Option<Batch>, DbError> {
    batches::table
        .find((rollup, to_db(batch_num, "batch number")?))
        .select(BatchRow::as_select())
        .first(conn)
        .optional()?
        .map(Batch::try_from)
        .transpose()
}

/// The batches of the sequence starting at `init_batch`, in order.
pub fn sequence_batches(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<Vec<Batch>, DbError> {
    convert_all(
        batches::table
            .filter(batches::rollup.eq(rollup))
            .filter(batches::init_batch.eq(to_db(init_batch, "init batch")?))
            .order(batches::batch_num.asc())
            .select(BatchRow::as_select())
            .load(conn)?,
    )
}

/// Stores the executor's witness for a batch and the roots it moves between
/// (taken from the witness, so the two cannot disagree). The witness must be
/// for the stored batch bytes.
pub fn set_batch_witness(
    conn: &mut AnyConnection,
    rollup: &str,
    batch_num: u64,
    witness: &BatchWitness,
) -> Result<(), DbError> {
    let key = (rollup, to_db(batch_num, "batch number")?);
    let json = serde_json::to_string(witness)?;
    transaction(conn, |conn| {
        let data: Vec<u8> = batches::table
            .find(key)
            .select(batches::data)
            .first(conn)
            .optional()?
            .ok_or_else(|| DbError::not_found(format!("batch {rollup}/{batch_num}")))?;
        if data != witness.batch {
            return Err(DbError::Invalid(format!(
                "witness for batch {rollup}/{batch_num} is for different batch data"
            )));
        }
        diesel::update(batches::table.find(key))
            .set((
                batches::old_root.eq(Some(fr_to_be(&witness.old_root).to_vec())),
                batches::new_root.eq(Some(fr_to_be(&witness.new_root).to_vec())),
                batches::witness.eq(Some(json)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Records the roots of a batch without a witness (for instance when the
/// roots come from the chain rather than from execution).
pub fn set_batch_roots(
    conn: &mut AnyConnection,
    rollup: &str,
    batch_num: u64,
    old_root: &Hash32,
    new_root: &Hash32,
) -> Result<(), DbError> {
    let key = (rollup, to_db(batch_num, "batch number")?);
    transaction(conn, |conn| {
        let n = diesel::update(batches::table.find(key))
            .set((batches::old_root.eq(Some(old_root.to_vec())), batches::new_root.eq(Some(new_root.to_vec()))))
            .execute(conn)?;
        if n == 0 {
            return Err(DbError::not_found(format!("batch {rollup}/{batch_num}")));
        }
        Ok(())
    })
}

/// A batch row's columns but its witness, in table order.
type BareBatch = (String, i64, i64, Vec<u8>, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Drops the witnesses of a sequence's batches, which are large and useless
/// once it is verified; the roots stay. Returns how many were dropped.
///
/// The rows are deleted and inserted again without their witness rather
/// than updated: SQLite stores a row of up to 4 KB whole in its page, and
/// an UPDATE that shrinks it leaves the page almost empty for good (batch
/// numbers only grow, so no later row lands there). A delete frees and
/// merges such pages, and the file stops growing with history.
pub fn clear_witnesses(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<usize, DbError> {
    let init = to_db(init_batch, "init batch")?;
    transaction(conn, |conn| {
        let with_witness = batches::table
            .filter(batches::rollup.eq(rollup))
            .filter(batches::init_batch.eq(init))
            .filter(batches::witness.is_not_null());
        let kept: Vec<BareBatch> = with_witness
            .select((
                batches::rollup,
                batches::batch_num,
                batches::init_batch,
                batches::data,
                batches::data_hash,
                batches::old_root,
                batches::new_root,
            ))
            .load(conn)?;
        if kept.is_empty() {
            return Ok(0);
        }
        diesel::delete(with_witness).execute(conn)?;
        let n = kept.len();
        for (rollup, batch_num, init_batch, data, data_hash, old_root, new_root) in kept {
            let row = BatchRow { rollup, batch_num, init_batch, data, data_hash, old_root, new_root, witness: None };
            diesel::insert_into(batches::table).values(&row).execute(conn)?;
        }
        Ok(n)
    })
}

/// Drops the witnesses still stored for sequences of `rollup` verified at or
/// after `since`: a sweep that also catches a witness written again after
/// [`clear_witnesses`] ran (by a process that was frozen mid-execution and
/// resumed). Bounded by `since` so its cost does not grow with history.
pub fn clear_verified_witnesses(conn: &mut AnyConnection, rollup: &str, since: Millis) -> Result<usize, DbError> {
    transaction(conn, |conn| {
        let verified = sequences::table
            .filter(sequences::rollup.eq(rollup))
            .filter(sequences::state.eq(SequenceState::Verified.as_str()))
            .filter(sequences::verified_at.ge(since))
            .select(sequences::init_batch);
        let inits: Vec<i64> = batches::table
            .filter(batches::rollup.eq(rollup))
            .filter(batches::witness.is_not_null())
            .filter(batches::init_batch.eq_any(verified))
            .select(batches::init_batch)
            .distinct()
            .load(conn)?;
        let mut n = 0;
        for init in inits {
            n += clear_witnesses(conn, rollup, from_db(init, "init batch")?)?;
        }
        Ok(n)
    })
}

/// Settled sequences not pruned yet whose last state change is at or before
/// `before`, oldest first, after the `after` key (keyset paging: `None` for
/// the first page), at most `limit`. Whether each may be pruned is the
/// caller's check (its submission and transactions).
pub fn settled_unpruned(
    conn: &mut AnyConnection,
    before: Millis,
    after: Option<(Millis, &str, u64)>,
    limit: u32,
) -> Result<Vec<Sequence>, DbError> {
    let settled: Vec<&str> = SequenceState::ALL.iter().filter(|s| s.is_settled()).map(|s| s.as_str()).collect();
    let mut q = sequences::table
        .filter(sequences::state.eq_any(settled))
        .filter(sequences::pruned_at.is_null())
        .filter(sequences::updated_at.le(before))
        .into_boxed();
    if let Some((at, rollup, init)) = after {
        let init = to_db(init, "init batch")?;
        let rollup = rollup.to_string();
        q = q.filter(sequences::updated_at.gt(at).or(sequences::updated_at.eq(at).and(
            sequences::rollup.gt(rollup.clone()).or(sequences::rollup.eq(rollup).and(sequences::init_batch.gt(init))),
        )));
    }
    convert_all(
        q.order((sequences::updated_at.asc(), sequences::rollup.asc(), sequences::init_batch.asc()))
            .limit(i64::from(limit))
            .select(SequenceRow::as_select())
            .load(conn)?,
    )
}

/// Records that a sequence's proofs and transaction bytes are gone.
pub fn mark_pruned(conn: &mut AnyConnection, rollup: &str, init_batch: u64, now: Millis) -> Result<(), DbError> {
    let key = (rollup, to_db(init_batch, "init batch")?);
    transaction(conn, |conn| {
        let n = diesel::update(sequences::table.find(key)).set(sequences::pruned_at.eq(Some(now))).execute(conn)?;
        if n == 0 {
            return Err(DbError::not_found(format!("sequence {rollup}/{init_batch}")));
        }
        Ok(())
    })
}

/// How many sequences of `rollup` are in each state (states with none are absent).
pub fn count_sequences_by_state(conn: &mut AnyConnection, rollup: &str) -> Result<Vec<(SequenceState, u64)>, DbError> {
    let rows: Vec<(String, i64)> = sequences::table
        .filter(sequences::rollup.eq(rollup))
        .group_by(sequences::state)
        .select((sequences::state, diesel::dsl::count_star()))
        .load(conn)?;
    rows.into_iter().map(|(s, n)| Ok((s.parse()?, from_db(n, "count")?))).collect()
}

/// One page of sequences, newest first: those of `rollup` (any when `None`)
/// in `state` (any when `None`), skipping `offset`, at most `limit`.
pub fn page_sequences(
    conn: &mut AnyConnection,
    rollup: Option<&str>,
    state: Option<SequenceState>,
    offset: u64,
    limit: u32,
) -> Result<Vec<Sequence>, DbError> {
    let mut q = sequences::table.into_boxed();
    if let Some(r) = rollup {
        q = q.filter(sequences::rollup.eq(r.to_string()));
    }
    if let Some(s) = state {
        q = q.filter(sequences::state.eq(s.as_str()));
    }
    convert_all(
        q.order((sequences::init_batch.desc(), sequences::rollup.asc()))
            .offset(to_db(offset, "offset")?)
            .limit(i64::from(limit))
            .select(SequenceRow::as_select())
            .load(conn)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(init: u64, fin: u64) -> NewSequence {
        NewSequence {
            rollup: "r".into(),
            init_batch: init,
            final_batch: fin,
            l1_block: 10,
            l1_block_hash: [1; 32],
            l1_tx_hash: [2; 32],
            posted_at: 1000,
        }
    }

    fn batch(n: u64) -> NewBatch {
        NewBatch { batch_num: n, data: vec![n as u8; 4], data_hash: [n as u8; 32] }
    }

    #[test]
    fn batches_must_match_the_sequence_range() {
        assert!(check_batches(&seq(3, 5), &[batch(3), batch(4), batch(5)]).is_ok());
        assert!(matches!(check_batches(&seq(3, 5), &[batch(3), batch(4)]), Err(DbError::Invalid(_))));
        assert!(matches!(check_batches(&seq(3, 5), &[batch(3), batch(5), batch(4)]), Err(DbError::Invalid(_))));
        assert!(matches!(check_batches(&seq(5, 3), &[]), Err(DbError::Invalid(_))));
        let mut nameless = seq(1, 1);
        nameless.rollup.clear();
        assert!(matches!(check_batches(&nameless, &[batch(1)]), Err(DbError::Invalid(_))));
    }

    #[test]
    fn sameness_ignores_progress_but_not_chain_data() {
        let new = seq(1, 2);
        let stored = Sequence {
            rollup: "r".into(),
            init_batch: 1,
            final_batch: 2,
            l1_block: 10,
            l1_block_hash: [1; 32],
            l1_tx_hash: [2; 32],
            posted_at: 1000,
            state: SequenceState::Proving,
            verified_at: None,
            updated_at: 5000,
            pruned_at: None,
        };
        let stored_batches: Vec<Batch> = [batch(1), batch(2)]
            .into_iter()
            .map(|b| Batch {
                rollup: "r".into(),
                batch_num: b.batch_num,
                init_batch: 1,
                data: b.data,
                data_hash: b.data_hash,
                old_root: Some([0; 32]),
                new_root: None,
                witness: None,
            })
            .collect();
        assert!(same_sequence(&stored, &stored_batches, &new, &[batch(1), batch(2)]));
        let mut other_data = batch(2);
        other_data.data.push(0);
        assert!(!same_sequence(&stored, &stored_batches, &new, &[batch(1), other_data]));
        let mut other_block = new.clone();
        other_block.l1_block_hash = [9; 32];
        assert!(!same_sequence(&stored, &stored_batches, &other_block, &[batch(1), batch(2)]));
    }
}

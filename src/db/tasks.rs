use diesel::prelude::*;

use crate::db::models::{
    convert_all, to_db, Completion, Millis, NewProof, NewTask, Proof, ProofRow, ProofTask, ProofTaskRow, TaskStatus,
};
use crate::db::schema::{proof_tasks as pt, proofs};
use crate::db::{per_backend, transaction, AnyConnection, DbError};

/// Creates the tasks that do not exist yet and returns how many that was.
/// Task ids are deterministic ([`NewTask::id`]), so re-creating the tasks of
/// a sequence after a restart is a no-op. The sequence must be stored.
pub fn create_tasks(conn: &mut AnyConnection, tasks: &[NewTask], now: Millis) -> Result<usize, DbError> {
    let rows = tasks
        .iter()
        .map(|t| {
            if t.last_batch < t.first_batch || t.first_batch < t.init_batch {
                return Err(DbError::Invalid(format!(
                    "task {} covers batches {}..={} of the sequence at {}",
                    t.id(),
                    t.first_batch,
                    t.last_batch,
                    t.init_batch
                )));
            }
            Ok(ProofTaskRow {
                id: t.id(),
                rollup: t.rollup.clone(),
                kind: t.kind.as_str().to_string(),
                first_batch: to_db(t.first_batch, "first batch")?,
                last_batch: to_db(t.last_batch, "last batch")?,
                init_batch: to_db(t.init_batch, "init batch")?,
                status: TaskStatus::Queued.as_str().to_string(),
                attempts: 0,
                last_error: None,
                created_at: now,
                updated_at: now,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    transaction(conn, |conn| {
        let mut created = 0;
        for row in &rows {
            created +=
                per_backend!(conn, |c| diesel::insert_into(pt::table).values(row).on_conflict_do_nothing().execute(c))?;
        }
        Ok(created)
    })
}

pub fn get_task(conn: &mut AnyConnection, id: &str) -> Result<Option<ProofTask>, DbError> {
    pt::table.find(id).select(ProofTaskRow::as_select()).first(conn).optional()?.map(ProofTask::try_from).transpose()
}

/// All tasks of the sequence starting at `init_batch`.
pub fn sequence_tasks(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<Vec<ProofTask>, DbError> {
    convert_all(
        pt::table
            .filter(pt::rollup.eq(rollup))
            .filter(pt::init_batch.eq(to_db(init_batch, "init batch")?))
            .order((pt::first_batch.asc(), pt::last_batch.asc(), pt::id.asc()))
            .select(ProofTaskRow::as_select())
            .load(conn)?,
    )
}

/// Marks a task done and stores its (already verified) proof, atomically.
///
/// Any prover's result is taken as long as the task is not done yet — also
/// a late one whose lease expired or passed to another prover — because
/// a valid proof is a valid proof. If the task is
/// already done this is a no-op returning [`Completion::AlreadyDone`] and the
/// first proof stays.
pub fn complete_task(conn: &mut AnyConnection, id: &str, proof: &NewProof, now: Millis) -> Result<Completion, DbError> {
    let row = ProofRow {
        task_id: id.to_string(),
        payload: proof.payload.clone(),
        public_inputs: serde_json::to_string(&proof.public_inputs)?,
        prover: proof.prover.clone(),
        created_at: now,
    };
    transaction(conn, |conn| {
        // The status check is inside the update, so two concurrent
        // completions cannot both pass it.
        let n = diesel::update(pt::table.find(id).filter(pt::status.ne(TaskStatus::Done.as_str())))
            .set((pt::status.eq(TaskStatus::Done.as_str()), pt::last_error.eq(None::<String>), pt::updated_at.eq(now)))
            .execute(conn)?;
        if n == 0 {
            return match get_task(conn, id)? {
                Some(_) => Ok(Completion::AlreadyDone),
                None => Err(DbError::not_found(format!("task {id}"))),
            };
        }
        diesel::insert_into(proofs::table).values(&row).execute(conn)?;
        Ok(Completion::Completed)
    })
}

pub fn get_proof(conn: &mut AnyConnection, task_id: &str) -> Result<Option<Proof>, DbError> {
    proofs::table.find(task_id).select(ProofRow::as_select()).first(conn).optional()?.map(Proof::try_from).transpose()
}

/// Deletes the stored proofs of a sequence's tasks (the tasks stay, done,
/// as its history). Returns how many were deleted.
pub fn delete_sequence_proofs(conn: &mut AnyConnection, rollup: &str, init_batch: u64) -> Result<usize, DbError> {
    let init = to_db(init_batch, "init batch")?;
    transaction(conn, |conn| {
        let ids = pt::table.filter(pt::rollup.eq(rollup)).filter(pt::init_batch.eq(init)).select(pt::id);
        Ok(diesel::delete(proofs::table.filter(proofs::task_id.eq_any(ids))).execute(conn)?)
    })
}

/// Forgets a sequence's final task and its proof and moves the sequence
/// back to proving, so the planner creates the final task again (a lost or
/// unusable final artifact). Returns whether a task was removed.
pub fn reset_final_task(conn: &mut AnyConnection, rollup: &str, init_batch: u64, now: Millis) -> Result<bool, DbError> {
    transaction(conn, |conn| {
        let seq = super::sequences::get_sequence(conn, rollup, init_batch)?
            .ok_or_else(|| DbError::not_found(format!("sequence {rollup}/{init_batch}")))?;
        let id = crate::db::task_id(rollup, crate::db::TaskKind::Final, seq.init_batch, seq.final_batch);
        diesel::delete(proofs::table.find(&id)).execute(conn)?;
        let removed = diesel::delete(pt::table.find(&id)).execute(conn)?;
        if !seq.state.is_settled() {
            super::sequences::update_sequence_state(conn, rollup, init_batch, crate::db::SequenceState::Proving, now)?;
        }
        Ok(removed > 0)
    })
}

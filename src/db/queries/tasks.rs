use diesel::prelude::*;

use crate::db::models::{
    convert_all, count_to_db, to_db, Completion, Millis, NewProof, NewTask, Proof, ProofRow, ProofTask, ProofTaskRow,
    TaskStatus,
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
                lease_holder: None,
                lease_expires_at: None,
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

/// Tasks in `status`, lowest sequence first, then by batch range.
pub fn tasks_by_status(conn: &mut AnyConnection, status: TaskStatus) -> Result<Vec<ProofTask>, DbError> {
    convert_all(
        pt::table
            .filter(pt::status.eq(status.as_str()))
            .order((pt::rollup.asc(), pt::init_batch.asc(), pt::first_batch.asc(), pt::id.asc()))
            .select(ProofTaskRow::as_select())
            .load(conn)?,
    )
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

/// The tasks currently leased to `holder`, so a prover that reconnects gets
/// its unfinished work back.
pub fn leased_to(conn: &mut AnyConnection, holder: &str) -> Result<Vec<ProofTask>, DbError> {
    convert_all(
        pt::table
            .filter(pt::status.eq(TaskStatus::Leased.as_str()))
            .filter(pt::lease_holder.eq(holder))
            .order(pt::id.asc())
            .select(ProofTaskRow::as_select())
            .load(conn)?,
    )
}

/// Leases a queued task to `holder` until `lease_until`, counting an
/// attempt. Returns the leased task, or `None` if the task was not queued
/// (someone else won it, or it is finished). The status check and the
/// update are one statement, so of two concurrent leasers exactly one wins.
pub fn lease_task(
    conn: &mut AnyConnection,
    id: &str,
    holder: &str,
    now: Millis,
    lease_until: Millis,
) -> Result<Option<ProofTask>, DbError> {
    transaction(conn, |conn| {
        let won = diesel::update(pt::table.find(id).filter(pt::status.eq(TaskStatus::Queued.as_str())))
            .set((
                pt::status.eq(TaskStatus::Leased.as_str()),
                pt::lease_holder.eq(Some(holder)),
                pt::lease_expires_at.eq(Some(lease_until)),
                pt::attempts.eq(pt::attempts + 1),
                pt::updated_at.eq(now),
            ))
            .execute(conn)?;
        if won == 0 {
            return Ok(None);
        }
        get_task(conn, id)
    })
}

/// Extends `holder`'s lease (a heartbeat). Returns false if the task is no
/// longer leased to `holder`, which tells the prover to drop it.
pub fn renew_lease(
    conn: &mut AnyConnection,
    id: &str,
    holder: &str,
    now: Millis,
    lease_until: Millis,
) -> Result<bool, DbError> {
    transaction(conn, |conn| {
        let n = diesel::update(
            pt::table.find(id).filter(pt::status.eq(TaskStatus::Leased.as_str())).filter(pt::lease_holder.eq(holder)),
        )
        .set((pt::lease_expires_at.eq(Some(lease_until)), pt::updated_at.eq(now)))
        .execute(conn)?;
        Ok(n == 1)
    })
}

/// Hands a leased task back (its prover gave up on it or sent a proof that
/// did not verify): queued again, or failed once `max_attempts` leases have
/// been spent. Returns the task as it is now, or `None` if it was not leased
/// to `holder`.
pub fn release_task(
    conn: &mut AnyConnection,
    id: &str,
    holder: &str,
    error: &str,
    max_attempts: u32,
    now: Millis,
) -> Result<Option<ProofTask>, DbError> {
    transaction(conn, |conn| {
        let Some(task) = get_task(conn, id)? else { return Err(DbError::not_found(format!("task {id}"))) };
        if task.status != TaskStatus::Leased || task.lease_holder.as_deref() != Some(holder) {
            return Ok(None);
        }
        let status = if task.attempts >= max_attempts { TaskStatus::Failed } else { TaskStatus::Queued };
        end_lease(conn, &task, status, error, now)
    })
}

/// Ends the leases that expired by `now`: each task is queued again, or
/// failed once `max_attempts` leases have been spent, with the reason in
/// `last_error`. Returns the tasks as they are now.
pub fn requeue_expired(conn: &mut AnyConnection, now: Millis, max_attempts: u32) -> Result<Vec<ProofTask>, DbError> {
    transaction(conn, |conn| {
        let expired: Vec<ProofTask> = convert_all(
            pt::table
                .filter(pt::status.eq(TaskStatus::Leased.as_str()))
                .filter(pt::lease_expires_at.le(now))
                .order(pt::id.asc())
                .select(ProofTaskRow::as_select())
                .load(conn)?,
        )?;
        let mut ended = Vec::with_capacity(expired.len());
        for task in expired {
            let status = if task.attempts >= max_attempts { TaskStatus::Failed } else { TaskStatus::Queued };
            let error = format!(
                "lease of {} expired at {} (attempt {} of {max_attempts})",
                task.lease_holder.as_deref().unwrap_or("?"),
                task.lease_expires_at.unwrap_or_default(),
                task.attempts
            );
            ended.extend(end_lease(conn, &task, status, &error, now)?);
        }
        Ok(ended)
    })
}

/// Moves a task out of the lease it was read in. The update re-checks the
/// lease it saw, so a lease renewed or completed in between is left alone
/// (`None`).
fn end_lease(
    conn: &mut AnyConnection,
    task: &ProofTask,
    status: TaskStatus,
    error: &str,
    now: Millis,
) -> Result<Option<ProofTask>, DbError> {
    let n = diesel::update(
        pt::table
            .find(&task.id)
            .filter(pt::status.eq(TaskStatus::Leased.as_str()))
            .filter(pt::lease_holder.eq(task.lease_holder.as_deref()))
            .filter(pt::lease_expires_at.eq(task.lease_expires_at))
            .filter(pt::attempts.eq(count_to_db(task.attempts, "attempts")?)),
    )
    .set((
        pt::status.eq(status.as_str()),
        pt::lease_holder.eq(None::<String>),
        pt::lease_expires_at.eq(None::<i64>),
        pt::last_error.eq(Some(error)),
        pt::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    get_task(conn, &task.id)
}

/// Marks a task done and stores its (already verified) proof, atomically.
///
/// Any prover's result is taken as long as the task is not done yet — also
/// a late one whose lease expired or passed to another prover, or one for a
/// task that failed — because a valid proof is a valid proof. If the task is
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
            .set((
                pt::status.eq(TaskStatus::Done.as_str()),
                pt::lease_holder.eq(None::<String>),
                pt::lease_expires_at.eq(None::<i64>),
                pt::last_error.eq(None::<String>),
                pt::updated_at.eq(now),
            ))
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

/// Marks a task failed for good (it stays so until [`retry_task`]). Returns
/// false if it was already done, which wins over a failure.
pub fn fail_task(conn: &mut AnyConnection, id: &str, error: &str, now: Millis) -> Result<bool, DbError> {
    transaction(conn, |conn| {
        let n = diesel::update(pt::table.find(id).filter(pt::status.ne(TaskStatus::Done.as_str())))
            .set((
                pt::status.eq(TaskStatus::Failed.as_str()),
                pt::lease_holder.eq(None::<String>),
                pt::lease_expires_at.eq(None::<i64>),
                pt::last_error.eq(Some(error)),
                pt::updated_at.eq(now),
            ))
            .execute(conn)?;
        if n == 0 && get_task(conn, id)?.is_none() {
            return Err(DbError::not_found(format!("task {id}")));
        }
        Ok(n == 1)
    })
}

/// Queues a failed task again with a fresh attempt budget (an operator's
/// resend). Returns false if the task was not failed.
pub fn retry_task(conn: &mut AnyConnection, id: &str, now: Millis) -> Result<bool, DbError> {
    transaction(conn, |conn| {
        let n = diesel::update(pt::table.find(id).filter(pt::status.eq(TaskStatus::Failed.as_str())))
            .set((pt::status.eq(TaskStatus::Queued.as_str()), pt::attempts.eq(0), pt::updated_at.eq(now)))
            .execute(conn)?;
        if n == 0 && get_task(conn, id)?.is_none() {
            return Err(DbError::not_found(format!("task {id}")));
        }
        Ok(n == 1)
    })
}

pub fn get_proof(conn: &mut AnyConnection, task_id: &str) -> Result<Option<Proof>, DbError> {
    proofs::table.find(task_id).select(ProofRow::as_select()).first(conn).optional()?.map(Proof::try_from).transpose()
}

/// Forgets a sequence's final task and its proof and moves the sequence
/// back to proving, so the planner creates the final task again (a lost or
/// unusable final artifact). Returns whether a task was removed.
pub fn reset_final_task(conn: &mut AnyConnection, rollup: &str, init_batch: u64, now: Millis) -> Result<bool, DbError> {
    transaction(conn, |conn| {
        let seq = super::get_sequence(conn, rollup, init_batch)?
            .ok_or_else(|| DbError::not_found(format!("sequence {rollup}/{init_batch}")))?;
        let id = crate::db::task_id(rollup, crate::db::TaskKind::Final, seq.init_batch, seq.final_batch);
        diesel::delete(proofs::table.find(&id)).execute(conn)?;
        let removed = diesel::delete(pt::table.find(&id)).execute(conn)?;
        if !seq.state.is_settled() {
            super::update_sequence_state(conn, rollup, init_batch, crate::db::SequenceState::Proving, now)?;
        }
        Ok(removed > 0)
    })
}

use diesel::prelude::*;

use crate::db::models::{to_db, RollupState, RollupStateRow};
use crate::db::schema::rollup_states;
use crate::db::{transaction, AnyConnection, DbError};

/// Stores an executor snapshot (replacing one at the same batch) and prunes
/// the rollup's snapshots to the newest `keep` (at least one). Older ones are
/// kept at all so a reorg [`rewind`](super::sequences::rewind) can fall back to one
/// before the fork instead of replaying from genesis.
pub fn save_rollup_state(conn: &mut AnyConnection, state: &RollupState, keep: usize) -> Result<(), DbError> {
    if state.rollup.is_empty() {
        return Err(DbError::Invalid("rollup state without a rollup name".into()));
    }
    let row = RollupStateRow {
        rollup: state.rollup.clone(),
        last_executed_batch: to_db(state.last_executed_batch, "last executed batch")?,
        root: state.root.to_vec(),
        accounts: serde_json::to_string(&state.accounts)?,
        updated_at: state.updated_at,
    };
    let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
    transaction(conn, |conn| {
        let mine = rollup_states::table.filter(rollup_states::rollup.eq(&row.rollup));
        diesel::delete(mine.filter(rollup_states::last_executed_batch.eq(row.last_executed_batch))).execute(conn)?;
        diesel::insert_into(rollup_states::table).values(&row).execute(conn)?;
        let oldest_kept: Option<i64> = mine
            .select(rollup_states::last_executed_batch)
            .order(rollup_states::last_executed_batch.desc())
            .offset(keep - 1)
            .first(conn)
            .optional()?;
        if let Some(oldest) = oldest_kept {
            diesel::delete(mine.filter(rollup_states::last_executed_batch.lt(oldest))).execute(conn)?;
        }
        Ok(())
    })
}

/// The newest snapshot of `rollup`, to resume execution from.
pub fn load_rollup_state(conn: &mut AnyConnection, rollup: &str) -> Result<Option<RollupState>, DbError> {
    rollup_states::table
        .filter(rollup_states::rollup.eq(rollup))
        .order(rollup_states::last_executed_batch.desc())
        .select(RollupStateRow::as_select())
        .first(conn)
        .optional()?
        .map(RollupState::try_from)
        .transpose()
}

/// The batches the stored snapshots of `rollup` were taken after, newest
/// first.
pub fn rollup_state_batches(conn: &mut AnyConnection, rollup: &str) -> Result<Vec<u64>, DbError> {
    let rows: Vec<i64> = rollup_states::table
        .filter(rollup_states::rollup.eq(rollup))
        .order(rollup_states::last_executed_batch.desc())
        .select(rollup_states::last_executed_batch)
        .load(conn)?;
    rows.into_iter().map(|b| crate::db::models::from_db(b, "last executed batch")).collect()
}

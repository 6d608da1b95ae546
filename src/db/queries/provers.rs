use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::models::{convert_all, count_to_db, Millis, Prover, ProverInfo, ProverRow};
use crate::db::schema::provers as pv;
use crate::db::{per_backend, transaction, AnyConnection, DbError};

/// Registers a prover, or updates what it announces when it registers
/// again. Its registration time, invalid-proof count and quarantine survive
/// re-registration, so reconnecting does not wipe a bad record.
pub fn upsert_prover(conn: &mut AnyConnection, info: &ProverInfo, now: Millis) -> Result<Prover, DbError> {
    if info.id.is_empty() {
        return Err(DbError::Invalid("prover without an id".into()));
    }
    let row = ProverRow {
        id: info.id.clone(),
        name: info.name.clone(),
        version: info.version.clone(),
        shapes: serde_json::to_string(&info.shapes)?,
        threads: count_to_db(info.threads, "threads")?,
        registered_at: now,
        last_seen_at: now,
        invalid_proofs: 0,
        quarantined_until: None,
    };
    transaction(conn, |conn| {
        per_backend!(conn, |c| diesel::insert_into(pv::table)
            .values(&row)
            .on_conflict(pv::id)
            .do_update()
            .set((
                pv::name.eq(excluded(pv::name)),
                pv::version.eq(excluded(pv::version)),
                pv::shapes.eq(excluded(pv::shapes)),
                pv::threads.eq(excluded(pv::threads)),
                pv::last_seen_at.eq(excluded(pv::last_seen_at)),
            ))
            .execute(c))?;
        get_prover(conn, &info.id)?.ok_or_else(|| DbError::not_found(format!("prover {}", info.id)))
    })
}

pub fn get_prover(conn: &mut AnyConnection, id: &str) -> Result<Option<Prover>, DbError> {
    pv::table.find(id).select(ProverRow::as_select()).first(conn).optional()?.map(Prover::try_from).transpose()
}

pub fn list_provers(conn: &mut AnyConnection) -> Result<Vec<Prover>, DbError> {
    convert_all(pv::table.order(pv::id.asc()).select(ProverRow::as_select()).load(conn)?)
}

/// Records that the prover was heard from.
pub fn touch_prover(conn: &mut AnyConnection, id: &str, now: Millis) -> Result<(), DbError> {
    transaction(conn, |conn| {
        let n = diesel::update(pv::table.find(id)).set(pv::last_seen_at.eq(now)).execute(conn)?;
        if n == 0 {
            return Err(DbError::not_found(format!("prover {id}")));
        }
        Ok(())
    })
}

/// Counts an invalid proof against the prover and, if `quarantine_until` is
/// given, quarantines it until then (never shortening a longer quarantine
/// already in force). Returns the prover as it is now.
pub fn record_invalid_proof(
    conn: &mut AnyConnection,
    id: &str,
    quarantine_until: Option<Millis>,
) -> Result<Prover, DbError> {
    transaction(conn, |conn| {
        let Some(prover) = get_prover(conn, id)? else { return Err(DbError::not_found(format!("prover {id}"))) };
        let until = match (prover.quarantined_until, quarantine_until) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (old, new) => new.or(old),
        };
        diesel::update(pv::table.find(id))
            .set((pv::invalid_proofs.eq(pv::invalid_proofs + 1), pv::quarantined_until.eq(until)))
            .execute(conn)?;
        get_prover(conn, id)?.ok_or_else(|| DbError::not_found(format!("prover {id}")))
    })
}

/// Sets or (with `None`) lifts a prover's quarantine.
pub fn set_quarantine(conn: &mut AnyConnection, id: &str, until: Option<Millis>) -> Result<(), DbError> {
    transaction(conn, |conn| {
        let n = diesel::update(pv::table.find(id)).set(pv::quarantined_until.eq(until)).execute(conn)?;
        if n == 0 {
            return Err(DbError::not_found(format!("prover {id}")));
        }
        Ok(())
    })
}

//! The aggregator lease: which of a miner's aggregator processes is the
//! active one, and the fence that keeps every other process out of the
//! outbox.
//!
//! A lease row names its holder and an epoch. Taking over an expired lease
//! raises the epoch by one, so a (holder, epoch) pair names one term of
//! office for good. Expiry is measured on the database's clock, so the hosts'
//! clocks need not agree. The active process renews well before expiry; a
//! write that must only come from the active process checks the row in the
//! same transaction ([`check_fence`]), and on PostgreSQL locks it there, so a
//! takeover waits for that write to commit and then sees it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::schema::aggregator_lease::dsl as al;
use crate::db::{transaction, AnyConnection, DbError};

/// The lease row, as read.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = crate::db::schema::aggregator_lease)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    pub expires_at: i64,
    pub acquired_at: i64,
}

/// What [`try_acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The lease is ours with this epoch; `previous` held it before (None:
    /// the first holder ever).
    Acquired { epoch: i64, previous: Option<String> },
    /// Someone else holds it for `remaining_ms` more.
    Held { holder: String, epoch: i64, remaining_ms: i64 },
}

/// The database's clock in unix milliseconds.
pub fn db_now_ms(conn: &mut AnyConnection) -> Result<i64, DbError> {
    let now = match conn {
        AnyConnection::Sqlite(c) => {
            diesel::select(diesel::dsl::sql::<BigInt>("CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"))
                .get_result::<i64>(c)?
        }
        AnyConnection::Postgres(c) => {
            diesel::select(diesel::dsl::sql::<BigInt>("CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"))
                .get_result::<i64>(c)?
        }
    };
    Ok(now)
}

/// The lease row, locked until the end of the caller's transaction on
/// PostgreSQL (SQLite's write transaction locks the whole file anyway).
fn locked_row(conn: &mut AnyConnection, name: &str) -> Result<Option<LeaseRow>, DbError> {
    let row = match conn {
        AnyConnection::Sqlite(c) => {
            al::aggregator_lease.find(name).select(LeaseRow::as_select()).first(c).optional()?
        }
        AnyConnection::Postgres(c) => {
            al::aggregator_lease.find(name).select(LeaseRow::as_select()).for_update().first(c).optional()?
        }
    };
    Ok(row)
}

/// The lease row as it is now, without locking (for status pages).
pub fn get(conn: &mut AnyConnection, name: &str) -> Result<Option<(LeaseRow, i64)>, DbError> {
    let row = al::aggregator_lease.find(name).select(LeaseRow::as_select()).first(conn).optional()?;
    match row {
        Some(r) => Ok(Some((r, db_now_ms(conn)?))),
        None => Ok(None),
    }
}

/// Takes the lease `name` for `holder` for `ttl` if nobody holds it or its
/// holder let it expire.
pub fn try_acquire(conn: &mut AnyConnection, name: &str, holder: &str, ttl: Duration) -> Result<Acquire, DbError> {
    let ttl_ms = i64::try_from(ttl.as_millis()).map_err(|_| DbError::Invalid("lease time too long".into()))?;
    let attempt = transaction(conn, |conn| {
        let now = db_now_ms(conn)?;
        match locked_row(conn, name)? {
            None => {
                diesel::insert_into(al::aggregator_lease)
                    .values((
                        al::name.eq(name),
                        al::holder.eq(holder),
                        al::epoch.eq(1i64),
                        al::expires_at.eq(now + ttl_ms),
                        al::acquired_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(Acquire::Acquired { epoch: 1, previous: None })
            }
            Some(row) if row.expires_at > now && row.holder != holder => {
                Ok(Acquire::Held { holder: row.holder, epoch: row.epoch, remaining_ms: row.expires_at - now })
            }
            Some(row) => {
                let epoch = row.epoch + 1;
                diesel::update(al::aggregator_lease.find(name))
                    .set((
                        al::holder.eq(holder),
                        al::epoch.eq(epoch),
                        al::expires_at.eq(now + ttl_ms),
                        al::acquired_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(Acquire::Acquired { epoch, previous: Some(row.holder) })
            }
        }
    });
    match attempt {
        // Two first holders raced to insert the row; the other one won.
        Err(DbError::Conflict(_)) => match get(conn, name)? {
            Some((row, now)) => {
                Ok(Acquire::Held { remaining_ms: row.expires_at - now, holder: row.holder, epoch: row.epoch })
            }
            None => Err(DbError::Busy("the lease row vanished while it was being taken".into())),
        },
        other => other,
    }
}

/// Extends the term (`holder`, `epoch`) by `ttl` from now. False: the term
/// is over, someone else took the lease. A term whose lease expired but was
/// not taken may still be renewed: nobody else acted in it.
pub fn renew(conn: &mut AnyConnection, name: &str, holder: &str, epoch: i64, ttl: Duration) -> Result<bool, DbError> {
    let ttl_ms = i64::try_from(ttl.as_millis()).map_err(|_| DbError::Invalid("lease time too long".into()))?;
    transaction(conn, |conn| {
        let now = db_now_ms(conn)?;
        let n = diesel::update(
            al::aggregator_lease.filter(al::name.eq(name)).filter(al::holder.eq(holder)).filter(al::epoch.eq(epoch)),
        )
        .set(al::expires_at.eq(now + ttl_ms))
        .execute(conn)?;
        Ok(n == 1)
    })
}

/// Ends the term now so that a standby takes over without waiting for the
/// expiry (a clean shutdown). Nothing happens if the term is over already.
pub fn release(conn: &mut AnyConnection, name: &str, holder: &str, epoch: i64) -> Result<(), DbError> {
    transaction(conn, |conn| {
        diesel::update(
            al::aggregator_lease.filter(al::name.eq(name)).filter(al::holder.eq(holder)).filter(al::epoch.eq(epoch)),
        )
        .set(al::expires_at.eq(0i64))
        .execute(conn)?;
        Ok(())
    })
}

/// A term of office as the process that holds it sees it: the database
/// check for writes ([`check_fence`]) and a local deadline for actions that
/// leave the process (a broadcast), which the holder moves forward at every
/// renewal and which always falls before the database's expiry.
#[derive(Debug)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    live_until: Mutex<Instant>,
}

impl Fence {
    pub fn new(name: &str, holder: &str, epoch: i64, live_until: Instant) -> Fence {
        Fence { name: name.into(), holder: holder.into(), epoch, live_until: Mutex::new(live_until) }
    }

    /// Whether the term surely still lasts by the local clock. False after a
    /// freeze (SIGSTOP, a stalled runtime) longer than the renewal margin,
    /// until a renewal succeeds again.
    pub fn is_live(&self) -> bool {
        Instant::now() < self.live_until()
    }

    pub fn live_until(&self) -> Instant {
        *self.live_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn extend(&self, until: Instant) {
        *self.live_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Ends the local term at once (deposed, or shutting down).
    pub fn revoke(&self) {
        self.extend(Instant::now());
    }

    fn fenced(&self, why: &str) -> DbError {
        DbError::Fenced(format!("aggregator lease {:?} epoch {} of {}: {why}", self.name, self.epoch, self.holder))
    }
}

/// Whether a process may act now: always without a fence (the database's
/// only user), else while its term lasts by the local clock.
pub fn may_act(fence: Option<&Fence>) -> bool {
    fence.is_none_or(|f| f.is_live())
}

/// Fails unless `fence` is the lease's current, unexpired term. Call it
/// inside the transaction of the write it guards: on PostgreSQL it locks the
/// lease row until that transaction ends, so a takeover cannot slip between
/// the check and the write.
pub fn check_fence(conn: &mut AnyConnection, fence: &Fence) -> Result<(), DbError> {
    if !fence.is_live() {
        return Err(fence.fenced("the term lapsed by the local clock"));
    }
    let now = db_now_ms(conn)?;
    match locked_row(conn, &fence.name)? {
        Some(row) if row.holder == fence.holder && row.epoch == fence.epoch && row.expires_at > now => Ok(()),
        Some(row) if row.epoch != fence.epoch || row.holder != fence.holder => {
            Err(fence.fenced(&format!("{} holds epoch {} now", row.holder, row.epoch)))
        }
        Some(_) => Err(fence.fenced("the lease expired")),
        None => Err(fence.fenced("no lease row")),
    }
}

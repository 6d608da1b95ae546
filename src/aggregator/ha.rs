//! Failover: which of a miner's aggregator processes is the active one.
//!
//! On PostgreSQL several aggregator processes of one miner may share the
//! database (two hosts, one database). They contend for one lease row
//! ([`db::lease::try_acquire`]). The holder runs the daemon; the others stand
//! by, serving only health, readiness, status and metrics
//! (the standby API), and try to take the lease every
//! `failover.renew_ms`. The active process renews at the same pace. Its own
//! view of its term ([`Fence`]) ends one renewal period before the
//! database's expiry, and the outbox checks the term in the transaction of
//! every write and before every broadcast, so a deposed process cannot take
//! a nonce or send anything.
//!
//! A process that finds itself deposed, or that cannot renew before its term
//! lapses, replaces itself with a fresh standby (`exec` of its own command
//! line): the old term's memory is thrown away whole, and everything that
//! matters is in the database.
//!
//! On SQLite one process owns the database; [`SqliteLock`] makes a second one
//! fail at start with an error that says so.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::watch;

use crate::config::FailoverConfig;
use crate::db::lease::{Acquire, Fence};
use crate::db::{self, Db, DbError};

/// The lease's name. One database serves one miner, so one name suffices.
pub const LEASE_NAME: &str = "aggregator";

/// What this process is, as `/readyz`, `/v1/status` and the metrics say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// The database's only user (SQLite).
    Single,
    /// Holds the lease in this epoch.
    Active { holder: String, epoch: i64 },
    /// Waits for the lease.
    Standby { holder: String },
}

/// A name for this process's terms: host, pid and a random part, so a
/// restarted process on the same host is a new holder.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>())
}

/// The local end of a term whose renewal (or acquisition) began at `started`.
/// The database counts the lease from a moment after `started`, so this falls
/// a renewal period before the database's expiry: a broadcast checked
/// against it cannot go out after a standby took over, unless the process
/// freezes for longer than that period between the check and the send.
pub fn live_until(started: Instant, cfg: &FailoverConfig) -> Instant {
    started + Duration::from_millis(cfg.lease_ms.saturating_sub(cfg.renew_ms))
}

/// What the active process does after a renewal attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Still ours, until the given local deadline.
    Renewed(Instant),
    /// Another process holds the lease now.
    Deposed,
    /// The renewal failed and the term lapsed by the local clock: we no
    /// longer know who holds the lease.
    Lapsed,
    /// The renewal failed but the term lasts: try again.
    Retry,
}

/// The rule after one renewal attempt that began at `started`.
pub fn after_renewal(
    result: &Result<bool, DbError>,
    started: Instant,
    now: Instant,
    live_until_now: Instant,
    cfg: &FailoverConfig,
) -> Renewal {
    match result {
        Ok(true) => Renewal::Renewed(live_until(started, cfg)),
        Ok(false) => Renewal::Deposed,
        Err(_) if now >= live_until_now => Renewal::Lapsed,
        Err(_) => Renewal::Retry,
    }
}

/// Waits until this process holds the lease; None if `shutdown` came first.
pub async fn acquire(
    db: &Db,
    holder: &str,
    cfg: &FailoverConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<Arc<Fence>>> {
    let ttl = Duration::from_millis(cfg.lease_ms);
    let mut waiting_for: Option<(String, i64)> = None;
    crate::metrics::failover_role(false, 0);
    loop {
        let started = Instant::now();
        let (name, me) = (LEASE_NAME, holder.to_string());
        match db.run(move |c| db::lease::try_acquire(c, name, &me, ttl)).await {
            Ok(Acquire::Acquired { epoch, previous }) => {
                crate::metrics::failover_role(true, epoch);
                if previous.is_some() {
                    crate::metrics::failover_takeover();
                }
                tracing::info!(
                    holder,
                    epoch,
                    previous = previous.as_deref().unwrap_or("none"),
                    "holding the aggregator lease: this process is the active aggregator"
                );
                return Ok(Some(Arc::new(Fence::new(LEASE_NAME, holder, epoch, live_until(started, cfg)))));
            }
            Ok(Acquire::Held { holder: active, epoch, remaining_ms }) => {
                if waiting_for.as_ref() != Some(&(active.clone(), epoch)) {
                    tracing::info!(
                        active = %active, epoch, expires_in_ms = remaining_ms,
                        "standing by: another aggregator process holds the lease"
                    );
                    waiting_for = Some((active, epoch));
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "taking the aggregator lease failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_millis(cfg.renew_ms)) => {}
        }
        if *shutdown.borrow() {
            return Ok(None);
        }
    }
}

/// How a term ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermEnd {
    /// The process is shutting down ([`release`] ends the term).
    Shutdown,
    /// Deposed or lapsed: this process must stop acting at once.
    Lost(Renewal),
}

/// Renews the lease of `fence` until the process shuts down or the term is
/// lost.
pub async fn keep(db: Db, fence: Arc<Fence>, cfg: FailoverConfig, mut shutdown: watch::Receiver<bool>) -> TermEnd {
    let ttl = Duration::from_millis(cfg.lease_ms);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(cfg.renew_ms)) => {}
        }
        if *shutdown.borrow() {
            return TermEnd::Shutdown;
        }
        let started = Instant::now();
        let (name, holder, epoch) = (fence.name.clone(), fence.holder.clone(), fence.epoch);
        let result = db.run(move |c| db::lease::renew(c, &name, &holder, epoch, ttl)).await;
        match after_renewal(&result, started, Instant::now(), fence.live_until(), &cfg) {
            Renewal::Renewed(until) => fence.extend(until),
            Renewal::Retry => {
                crate::metrics::failover_renew_failed();
                if let Err(e) = &result {
                    tracing::warn!(error = %format!("{e:#}"), epoch = fence.epoch, "renewing the aggregator lease failed; retrying");
                }
            }
            lost => {
                fence.revoke();
                crate::metrics::failover_role(false, 0);
                if let Err(e) = &result {
                    crate::metrics::failover_renew_failed();
                    tracing::error!(error = %format!("{e:#}"), epoch = fence.epoch, "the aggregator lease lapsed: no renewal in time");
                } else {
                    tracing::error!(epoch = fence.epoch, "deposed: another aggregator process holds the lease");
                }
                return TermEnd::Lost(lost);
            }
        }
    }
}

/// Ends the term at a clean shutdown, so that a standby takes over without
/// waiting for the lease to expire. Nothing of this process may send after it.
pub async fn release(db: &Db, fence: &Fence) {
    fence.revoke();
    crate::metrics::failover_role(false, 0);
    let (name, holder, epoch) = (fence.name.clone(), fence.holder.clone(), fence.epoch);
    match db.run(move |c| db::lease::release(c, &name, &holder, epoch)).await {
        Ok(()) => tracing::info!(epoch = fence.epoch, "aggregator lease released"),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "releasing the aggregator lease failed; it expires by itself")
        }
    }
}

/// Replaces this process with a fresh instance of itself (same executable,
/// arguments and environment), which starts as a standby. Only returns by
/// exiting if the `exec` fails; a supervisor then restarts the process.
pub fn restart_as_standby() -> ! {
    use std::os::unix::process::CommandExt;
    let err = match std::env::current_exe() {
        Ok(exe) => {
            tracing::warn!(exe = %exe.display(), "restarting as a standby");
            std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec()
        }
        Err(e) => e,
    };
    tracing::error!(error = %err, "cannot restart as a standby; exiting");
    std::process::exit(75)
}

/// An exclusive lock on a SQLite database, held for the life of the process
/// (the kernel drops it when the process dies, however it dies).
#[derive(Debug)]
pub struct SqliteLock {
    _file: File,
    pub path: PathBuf,
}

impl SqliteLock {
    /// Locks `DB.lock` beside the database file `db`, writing our pid into it.
    pub fn acquire(db: &Path) -> anyhow::Result<SqliteLock> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        let mut name = db.as_os_str().to_os_string();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is shared.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            anyhow::bail!(
                "another aggregator (pid {}) is using the SQLite database {}: a SQLite database serves one \
                 aggregator process; use PostgreSQL (aggregator.database_url = \"postgres://...\") to run a standby",
                pid.trim(),
                db.display()
            );
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing the lock file {}", path.display()))?;
        Ok(SqliteLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FailoverConfig {
        FailoverConfig { lease_ms: 5_000, renew_ms: 1_000 }
    }

    #[test]
    fn the_local_term_ends_a_renewal_period_before_the_database_expiry() {
        let t0 = Instant::now();
        assert_eq!(live_until(t0, &cfg()), t0 + Duration::from_millis(4_000));
    }

    #[test]
    fn renewal_outcomes() {
        let t0 = Instant::now();
        let live = t0 + Duration::from_secs(2);
        let c = cfg();
        assert_eq!(after_renewal(&Ok(true), t0, t0, live, &c), Renewal::Renewed(live_until(t0, &c)));
        assert_eq!(after_renewal(&Ok(false), t0, t0, live, &c), Renewal::Deposed);
        let err = || Err(DbError::Connection("down".into()));
        assert_eq!(after_renewal(&err(), t0, t0 + Duration::from_secs(1), live, &c), Renewal::Retry);
        assert_eq!(after_renewal(&err(), t0, live, live, &c), Renewal::Lapsed);
        // A successful renewal after a freeze revives the term: the epoch
        // did not change, so nobody acted in between.
        let late = t0 + Duration::from_secs(30);
        assert_eq!(after_renewal(&Ok(true), late, late, live, &c), Renewal::Renewed(live_until(late, &c)));
    }

    #[test]
    fn a_second_lock_on_one_sqlite_file_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("zkpow.db");
        let first = SqliteLock::acquire(&db).unwrap();
        let err = format!("{:#}", SqliteLock::acquire(&db).unwrap_err());
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("PostgreSQL"), "{err}");
        drop(first);
        SqliteLock::acquire(&db).expect("free again once the holder is gone");
    }

    #[test]
    fn holder_ids_differ_per_call() {
        assert_ne!(holder_id(), holder_id());
    }
}

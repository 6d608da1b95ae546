//! Supervision of the miners' child processes (aggregators and provers),
//! the way a service manager would do it: a child that dies is restarted
//! after an exponential backoff while the rest of the network keeps running.
//!
//! This module owns the restart policy ([`Backoff`]), the per-process
//! bookkeeping ([`RestartBook`], plain logic with unit tests) and the
//! supervised children themselves ([`Supervisor`], a thin shell over
//! [`ChildProc`]). Chains are not supervised here (see `watch_loop`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::procs::{stop_all, ChildProc};
use super::progress::ProcStatus;

/// What a supervised child does in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcKind {
    Aggregator,
    Prover,
}

impl ProcKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcKind::Aggregator => "aggregator",
            ProcKind::Prover => "prover",
        }
    }

    pub fn other(self) -> ProcKind {
        match self {
            ProcKind::Aggregator => ProcKind::Prover,
            ProcKind::Prover => ProcKind::Aggregator,
        }
    }
}

/// Restart delays: `initial`, doubling with every consecutive failure up to
/// `max`; a child that ran for `healthy_after` before it died starts over
/// from `initial` (systemd's `RestartSec` with `RestartSteps`, and a reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub healthy_after: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
        healthy_after: Duration::from_secs(60),
    };

    /// The delay before the restart that follows the `failures`-th
    /// consecutive failure (1: the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// Why a child stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited or crashed on its own: a failure, which escalates the backoff.
    Died,
    /// Chaos mode killed it. Not the child's fault: it restarts after the
    /// initial delay and its failure count stays as it was, so a long chaos
    /// run does not push healthy processes to the 30 s cap (and their miners
    /// past their reveal windows).
    Chaos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running { since: Instant },
    Waiting { until: Instant },
}

/// The restart bookkeeping of one child: whether it runs, since when, how
/// often it was restarted and how many failures in a row it has had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartBook {
    life: Life,
    restarts: u32,
    failures: u32,
}

impl RestartBook {
    /// A child that was started at `now`.
    pub fn started(now: Instant) -> RestartBook {
        RestartBook { life: Life::Running { since: now }, restarts: 0, failures: 0 }
    }

    /// Records that the child stopped at `now`; returns how long to wait
    /// before starting it again.
    pub fn exited(&mut self, now: Instant, cause: ExitCause, policy: &Backoff) -> Duration {
        if let Life::Running { since } = self.life {
            if now.saturating_duration_since(since) >= policy.healthy_after {
                self.failures = 0;
            }
        }
        let delay = match cause {
            ExitCause::Died => {
                self.failures = self.failures.saturating_add(1);
                policy.delay(self.failures)
            }
            ExitCause::Chaos => policy.initial,
        };
        self.life = Life::Waiting { until: now + delay };
        delay
    }

    /// A restart attempt failed to spawn the process: a failure like a crash
    /// at start.
    pub fn spawn_failed(&mut self, now: Instant, policy: &Backoff) -> Duration {
        self.life = Life::Running { since: now };
        self.exited(now, ExitCause::Died, policy)
    }

    /// Whether the child waits for a restart and its delay has passed.
    pub fn due(&self, now: Instant) -> bool {
        matches!(self.life, Life::Waiting { until } if now >= until)
    }

    /// Records a restart at `now`.
    pub fn restarted(&mut self, now: Instant) {
        self.restarts = self.restarts.saturating_add(1);
        self.life = Life::Running { since: now };
    }

    pub fn running(&self) -> bool {
        matches!(self.life, Life::Running { .. })
    }

    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Consecutive failures since the last healthy run.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// How to start a child, again and again: the command is rebuilt for every start.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub name: String,
    pub kind: ProcKind,
    /// The miner it belongs to.
    pub miner: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub log: PathBuf,
}

impl ProcSpec {
    /// Starts the process; see [`ChildProc::spawn`] on which thread to call it from.
    pub fn spawn(&self) -> anyhow::Result<ChildProc> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        ChildProc::spawn(&self.name, cmd, &self.log)
    }
}

struct Supervised {
    spec: ProcSpec,
    proc: Option<ChildProc>,
    book: RestartBook,
    last_exit: Option<String>,
    /// Stopped on purpose (shutdown): never restarted.
    stopped: bool,
}

/// The supervised children. Every method that may start a process must be
/// called from the thread that lives as long as the devnet (the one that
/// runs `devnet::run`): `PR_SET_PDEATHSIG` fires when the spawning *thread*
/// exits, so a child started from a short-lived thread would be killed with it.
pub struct Supervisor {
    procs: Vec<Supervised>,
    policy: Backoff,
}

impl Supervisor {
    /// Starts every child.
    pub fn start(specs: Vec<ProcSpec>, policy: Backoff) -> anyhow::Result<Supervisor> {
        let mut procs = Vec::with_capacity(specs.len());
        for spec in specs {
            let proc = spec.spawn()?;
            procs.push(Supervised {
                spec,
                proc: Some(proc),
                book: RestartBook::started(Instant::now()),
                last_exit: None,
                stopped: false,
            });
        }
        Ok(Supervisor { procs, policy })
    }

    /// Notices children that died and restarts those whose delay has
    /// passed. Returns whether anything happened (and was logged).
    pub fn tick(&mut self, now: Instant) -> bool {
        let policy = self.policy;
        let mut happened = false;
        for s in self.procs.iter_mut().filter(|s| !s.stopped) {
            if let Some(status) = s.proc.as_mut().and_then(|p| p.exited()) {
                let pid = s.proc.as_ref().and_then(|p| p.pid());
                s.proc = None;
                let delay = s.book.exited(now, ExitCause::Died, &policy);
                tracing::warn!(
                    process = %s.spec.name,
                    kind = s.spec.kind.as_str(),
                    miner = %s.spec.miner,
                    pid,
                    status = %status,
                    failures = s.book.failures(),
                    restart_in_ms = delay.as_millis() as u64,
                    log = %s.spec.log.display(),
                    "child process died; restarting it after the backoff"
                );
                s.last_exit = Some(status.to_string());
                happened = true;
            }
            if s.proc.is_none() && s.book.due(now) {
                happened = true;
                match s.spec.spawn() {
                    Ok(p) => {
                        s.book.restarted(now);
                        tracing::info!(
                            process = %s.spec.name,
                            kind = s.spec.kind.as_str(),
                            miner = %s.spec.miner,
                            pid = p.pid(),
                            restarts = s.book.restarts(),
                            "child process restarted"
                        );
                        s.proc = Some(p);
                    }
                    Err(e) => {
                        let delay = s.book.spawn_failed(now, &policy);
                        tracing::error!(
                            process = %s.spec.name,
                            error = %format!("{e:#}"),
                            restart_in_ms = delay.as_millis() as u64,
                            "restarting a child process failed"
                        );
                        s.last_exit = Some(format!("restart failed: {e:#}"));
                    }
                }
            }
        }
        happened
    }

    /// Kind and liveness of every child, in order (the index is what
    /// [`Supervisor::kill`] takes).
    pub fn candidates(&self) -> Vec<(ProcKind, bool)> {
        self.procs.iter().map(|s| (s.spec.kind, s.proc.is_some())).collect()
    }

    /// Whether every child (not stopped on purpose) is running.
    pub fn all_running(&self) -> bool {
        self.procs.iter().all(|s| s.stopped || s.proc.is_some())
    }

    /// SIGKILLs child `i` (chaos mode) and schedules its restart. Returns
    /// its name, or None if it was not running.
    pub fn kill(&mut self, i: usize, now: Instant) -> Option<(String, ProcKind)> {
        let policy = self.policy;
        let s = self.procs.get_mut(i)?;
        let mut proc = s.proc.take()?;
        let pid = proc.pid();
        let status = proc.kill();
        let delay = s.book.exited(now, ExitCause::Chaos, &policy);
        tracing::warn!(
            process = %s.spec.name,
            kind = s.spec.kind.as_str(),
            miner = %s.spec.miner,
            pid,
            restart_in_ms = delay.as_millis() as u64,
            "chaos: killed with SIGKILL"
        );
        s.last_exit = Some(match status {
            Some(st) => format!("chaos: {st}"),
            None => "chaos: killed".into(),
        });
        Some((s.spec.name.clone(), s.spec.kind))
    }

    /// The view of every child for the progress display and `status.json`.
    pub fn snapshot(&self) -> Vec<ProcStatus> {
        self.procs
            .iter()
            .map(|s| ProcStatus {
                name: s.spec.name.clone(),
                kind: s.spec.kind,
                miner: s.spec.miner.clone(),
                running: s.proc.is_some(),
                pid: s.proc.as_ref().and_then(|p| p.pid()),
                restarts: s.book.restarts(),
                last_exit: s.last_exit.clone(),
            })
            .collect()
    }

    /// Stops the children of one kind (SIGTERM, one shared grace period);
    /// nothing of that kind is restarted afterwards.
    pub fn stop_kind(&mut self, kind: ProcKind, grace: Duration) {
        stop_all(self.procs.iter_mut().filter(|s| s.spec.kind == kind).filter_map(|s| s.proc.as_mut()), grace);
        for s in self.procs.iter_mut().filter(|s| s.spec.kind == kind) {
            s.proc = None;
            s.stopped = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Backoff = Backoff::DEFAULT;

    #[test]
    fn delays_double_from_one_second_to_the_cap() {
        let secs: Vec<u64> = (1..=8).map(|f| P.delay(f).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(P.delay(0), Duration::from_secs(1));
        assert_eq!(P.delay(u32::MAX), Duration::from_secs(30), "no overflow");
    }

    #[test]
    fn a_crash_loop_backs_off_and_a_healthy_minute_resets_it() {
        let t0 = Instant::now();
        let mut b = RestartBook::started(t0);
        let mut t = t0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            t += Duration::from_secs(2);
            let d = b.exited(t, ExitCause::Died, &P);
            delays.push(d.as_secs());
            assert!(!b.running());
            assert!(!b.due(t + d - Duration::from_millis(1)), "not before the delay");
            assert!(b.due(t + d));
            t += d;
            b.restarted(t);
        }
        assert_eq!(delays, [1, 2, 4, 8]);
        assert_eq!((b.restarts(), b.failures()), (4, 4));
        // Healthy for a minute, then a crash: back to the first delay.
        t += Duration::from_secs(60);
        assert_eq!(b.exited(t, ExitCause::Died, &P), Duration::from_secs(1));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn chaos_kills_restart_quickly_and_do_not_escalate() {
        let t0 = Instant::now();
        let mut b = RestartBook::started(t0);
        let mut t = t0;
        for i in 1..=5 {
            t += Duration::from_secs(5);
            assert_eq!(b.exited(t, ExitCause::Chaos, &P), Duration::from_secs(1), "kill {i}");
            t += Duration::from_secs(1);
            b.restarted(t);
        }
        assert_eq!((b.restarts(), b.failures()), (5, 0));
        // A real crash after them starts at the first step.
        assert_eq!(b.exited(t + Duration::from_secs(1), ExitCause::Died, &P), Duration::from_secs(1));
    }

    #[test]
    fn a_failed_spawn_counts_as_a_failure() {
        let t0 = Instant::now();
        let mut b = RestartBook::started(t0);
        assert_eq!(b.exited(t0, ExitCause::Died, &P), Duration::from_secs(1));
        assert_eq!(b.spawn_failed(t0 + Duration::from_secs(1), &P), Duration::from_secs(2));
        assert_eq!(b.restarts(), 0);
        assert!(!b.due(t0 + Duration::from_secs(2)));
        assert!(b.due(t0 + Duration::from_secs(3)));
    }
}

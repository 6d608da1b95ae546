//! Child processes of the devnet (anvil, aggregators, provers): spawned with
//! their output in a log file, stopped with SIGTERM and a grace period (or
//! SIGKILLed by chaos mode), and never left behind. Restarting them is
//! `supervise`'s business.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long a child gets to stop on SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running child. Dropping it stops it (SIGTERM, then SIGKILL) and reaps it.
pub struct ChildProc {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl ChildProc {
    /// Spawns `cmd` with stdout and stderr appended to `log`. The child gets
    /// SIGTERM if the spawning thread dies, so a devnet killed with SIGKILL
    /// does not leave chains and miners running; spawn from the thread that
    /// lives as long as the devnet.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<ChildProc> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log file {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("opening log file {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        tracing::debug!(name, pid = child.id(), log = %log.display(), "started");
        Ok(ChildProc { name: name.to_string(), log: log.to_path_buf(), child: Some(child) })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The exit status if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Asks the child to stop (SIGTERM) without waiting.
    pub fn terminate(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        if let Ok(None) = child.try_wait() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: plain syscall on our own child's pid, which we have not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }

    /// SIGKILL, the way a crash or the OOM killer ends a process (no chance
    /// to clean up), and reaps it. Returns its exit status.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // Fails only if the child was reaped already; `wait` then returns its status.
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; always reaps the child.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.terminate();
        self.wait_or_kill(Instant::now() + grace)
    }

    fn wait_or_kill(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(name = %self.name, "did not stop on SIGTERM; killing it");
        let _ = child.kill();
        child.wait().ok()
    }

    /// The last `n` lines of the child's log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Stops several children at once: SIGTERM to all, then one shared grace period.
pub fn stop_all<'a>(procs: impl IntoIterator<Item = &'a mut ChildProc>, grace: Duration) {
    let mut procs: Vec<&mut ChildProc> = procs.into_iter().collect();
    for p in procs.iter_mut() {
        p.terminate();
    }
    let deadline = Instant::now() + grace;
    for p in procs {
        p.wait_or_kill(deadline);
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.stop(STOP_GRACE);
    }
}

/// Fails if something already listens on 127.0.0.1:`port`.
pub fn ensure_port_free(port: u16, what: &str) -> anyhow::Result<()> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .with_context(|| format!("port {port} for {what} is taken (another devnet running? choose other ports)"))
}

//! Real `zkpow` processes for the end-to-end tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Kills the child process when dropped, so a failing test leaves nothing running.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// SIGSTOP / SIGCONT: freezes the process without it noticing (a hung
    /// machine, as far as the rest of the network can tell).
    pub fn stop(&self) {
        signal(self.pid(), "STOP");
    }

    pub fn cont(&self) {
        signal(self.pid(), "CONT");
    }
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "kill -{sig} {pid} failed");
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGKILL promptly.
        let _ = Command::new("kill").arg("-CONT").arg(self.0.id().to_string()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port").local_addr().expect("local addr").port()
}

/// Runs `zkpow --config <config> <args>` with its log (stderr) in `log`.
pub fn zkpow(config: &Path, args: &[&str], log: &Path, env: &[(&str, &str)]) -> Proc {
    let out = std::fs::File::create(log).expect("creating a log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkpow"));
    cmd.arg("--config").arg(config).args(args).stdout(Stdio::null()).stderr(out).env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().expect("spawning zkpow"))
}

/// The last `n` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

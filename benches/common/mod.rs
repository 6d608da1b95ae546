//! What the benchmarks print about the machine they ran on. Each benchmark
//! is its own crate and uses a part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A command's trimmed standard output, if it succeeded and printed anything.
pub fn command_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Cores, CPU model and memory.
pub fn machine() -> String {
    let info = |file: &str, key: &str| {
        std::fs::read_to_string(file).ok().and_then(|c| {
            c.lines().find(|l| l.starts_with(key)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string())
        })
    };
    // The machine's, not this thread's: a benchmark may have pinned itself.
    // SAFETY: sysconf reads a constant of the system.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(0);
    let cpu = info("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let mem = info("/proc/meminfo", "MemTotal").unwrap_or_default();
    format!("{cores} cores, {cpu}, {mem} memory")
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The cargo target directory of the `zkpow` binary a benchmark runs
/// (`target/<profile>/zkpow` → `target`), where reports and run data go.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_zkpow"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// A fresh directory for one run's chains, databases and logs under
/// `target`, named `<prefix>…`; the message names the place on failure.
pub fn run_dir(target: &Path, prefix: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(target)
        .map_err(|e| format!("creating a data directory in {}: {e}", target.display()))
}

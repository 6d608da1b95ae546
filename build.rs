//! Embeds the commit the daemon is built from as `BUILD_GIT_SHA` (reported by
//! the `zkpow_build_info` metric). Order: the `BUILD_GIT_SHA` environment
//! variable (for builds from a source tarball), else `git rev-parse --short
//! HEAD` when the package is the root of a git work tree, else "unknown".
//!
//! The name must not start with `ZKPOW_`: cargo also sets it in the test
//! binaries' environment, daemons started by tests inherit it, and every
//! `ZKPOW_*` variable is configuration.
//!
//! The script does not rerun when HEAD moves (that would rebuild the crate
//! on every commit); release and CI builds start clean, so theirs is exact.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BUILD_GIT_SHA");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let from_env = std::env::var("BUILD_GIT_SHA").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let sha = from_env.or_else(|| {
        // A tarball unpacked inside some other repository must not report
        // that repository's commit.
        let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
        let same = std::fs::canonicalize(&top).ok()? == std::fs::canonicalize(&dir).ok()?;
        if !same {
            return None;
        }
        git(&dir, &["rev-parse", "--short", "HEAD"])
    });
    println!("cargo:rustc-env=BUILD_GIT_SHA={}", sha.as_deref().unwrap_or("unknown"));
}

//! Embeds the commit the daemon is built from as `ZKPOW_GIT_SHA` (reported by
//! the `zkpow_build_info` metric). Order: the `ZKPOW_GIT_SHA` environment
//! variable (for builds from a source tarball), else `git rev-parse --short
//! HEAD` when the package is the root of a git work tree, else "unknown".

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
    println!("cargo:rerun-if-env-changed=ZKPOW_GIT_SHA");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let from_env = std::env::var("ZKPOW_GIT_SHA").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let sha = from_env.or_else(|| {
        // A tarball unpacked inside some other repository must not report
        // that repository's commit.
        let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
        let same = std::fs::canonicalize(&top).ok()? == std::fs::canonicalize(&dir).ok()?;
        if !same {
            return None;
        }
        // Rebuild when HEAD moves: HEAD itself, the branch it points to, and
        // packed refs (paths asked from git, so linked work trees work too).
        let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
        if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            watch.push(branch);
        }
        for name in watch {
            if let Some(path) = git(&dir, &["rev-parse", "--git-path", &name]) {
                let path = if Path::new(&path).is_absolute() { PathBuf::from(path) } else { dir.join(path) };
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        git(&dir, &["rev-parse", "--short", "HEAD"])
    });
    println!("cargo:rustc-env=ZKPOW_GIT_SHA={}", sha.as_deref().unwrap_or("unknown"));
}

//! Records the git commit runsc is built from (`runsc --version`, `runsc
//! features`) as RUNSC_GIT_COMMIT: `git rev-parse --short HEAD`, or "unknown"
//! when the source is not a git checkout (or git is missing).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// A file under the git dir (worktree-aware), if it exists.
fn git_file(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(git(&["rev-parse", "--git-path", name])?);
    let p = if p.is_absolute() {
        p
    } else {
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR")?).join(p)
    };
    p.exists().then_some(p)
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RUNSC_GIT_COMMIT={commit}");
    // Rerun when HEAD moves: HEAD itself, the branch it points to, packed refs.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(r);
    }
    println!("cargo:rerun-if-changed=build.rs");
    for f in watched.iter().filter_map(|n| git_file(n)) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
}

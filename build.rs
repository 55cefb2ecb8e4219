//! Records the commit baton is built from, for `baton --version`: the short hash of
//! `HEAD` when the source is a git checkout of its own, else "unknown" (a tarball, a
//! crate from a registry, a copy vendored into another repository's tree).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));
    // Only a `.git` of the source's own (a directory, or a worktree's file) counts: an
    // enclosing repository's HEAD is not the commit this source came from.
    let commit = if dir.join(".git").exists() {
        watch_head(&dir);
        git(&dir, &["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    println!(
        "cargo:rustc-env=BATON_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}

/// Rebuilds when HEAD moves, and only then: HEAD itself (a checkout of another
/// branch or commit), the branch it names (a commit), and the packed refs (where a
/// branch lives after `git gc`). A path that does not exist is not named, since cargo
/// would take it as changed on every build.
fn watch_head(dir: &Path) {
    let absolute = |p: String| dir.join(p);
    let Some(git_dir) = git(dir, &["rev-parse", "--git-dir"]).map(absolute) else {
        return;
    };
    let common = git(dir, &["rev-parse", "--git-common-dir"])
        .map(absolute)
        .unwrap_or_else(|| git_dir.clone());
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(branch));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// One line of git's output, or None when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        // A build started from a git hook must not ask the hook's repository.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

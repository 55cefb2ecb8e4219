//! What the worktree pool asks of git: taking a finished worktree back to a commit
//! with nothing else in it, and moving a pooled one to a new base by rewriting only
//! the files that differ (so unchanged files keep their mtimes, and build directories
//! built from them stay valid).

use std::path::{Path, PathBuf};

use super::{Repo, Result};

impl Repo {
    /// Makes the worktree at `dir` exactly `commit`, detached: tracked files as the
    /// commit has them, every untracked and ignored file gone but those under `keep`
    /// (paths relative to the worktree's root: the build directories).
    pub fn worktree_reset(&self, dir: &Path, commit: &str, keep: &[String]) -> Result<()> {
        // A checkout stopped by a kill leaves its lock; nobody else writes a worktree
        // of baton's pool, so the lock is stale by the time this runs.
        if let Some(admin) = Self::worktree_admin_dir(dir) {
            let _ = std::fs::remove_file(admin.join("index.lock"));
        }
        Self::run_in(
            dir,
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "checkout",
                "--quiet",
                "--force",
                "--detach",
                commit,
            ],
            &[],
            None,
        )?;
        let mut args = vec!["clean", "-ffdxq"];
        let excludes: Vec<String> = keep.iter().map(|k| format!("/{k}")).collect();
        for e in &excludes {
            args.extend(["-e", e]);
        }
        Self::run_in(dir, &args, &[], None).map(drop)
    }

    /// Moves the clean worktree at `dir`, which holds `from`, to `commit`, on a new
    /// `branch` when one is given (else detached), touching only the paths that
    /// differ between the two commits: their index entries (`update-index
    /// --index-info`), then their files (removed, or written by `checkout-index`).
    /// Nothing else is read or stat'ed — `git checkout` or `read-tree -m -u` would
    /// walk both trees and every index entry (150 ms at 100,000 files), and the pool
    /// has just proved that nobody wrote the worktree.
    pub fn worktree_move(
        &self,
        dir: &Path,
        from: &str,
        commit: &str,
        branch: Option<&str>,
    ) -> Result<()> {
        let raw = self.run(&["diff-tree", "-r", "-z", "--no-renames", from, commit])?;
        let mut info = Vec::new();
        let mut write = Vec::new();
        let mut gone: Vec<PathBuf> = vec![];
        let mut fields = raw.split(|&b| b == 0);
        while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
            // ":<old mode> <new mode> <old oid> <new oid> <status>"
            let meta = String::from_utf8_lossy(meta);
            let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
            let [_, mode, _, oid, status] = parts[..] else {
                continue;
            };
            if status.starts_with('D') {
                info.extend_from_slice(format!("0 {}\t", "0".repeat(oid.len())).as_bytes());
                gone.push(dir.join(String::from_utf8_lossy(path).as_ref()));
            } else {
                info.extend_from_slice(format!("{mode} {oid}\t").as_bytes());
                write.extend_from_slice(path);
                write.push(0);
            }
            info.extend_from_slice(path);
            info.push(0);
        }
        if !info.is_empty() {
            Self::run_in(
                dir,
                &["update-index", "-z", "--index-info"],
                &[],
                Some(&info),
            )?;
        }
        // Deletions first: a file may give way to a directory of the same name.
        for path in &gone {
            let _ = std::fs::remove_file(path);
            let mut parent = path.parent();
            while let Some(p) = parent.filter(|p| *p != dir) {
                if std::fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
        }
        if !write.is_empty() {
            Self::run_in(
                dir,
                &["checkout-index", "-f", "-z", "--stdin"],
                &[],
                Some(&write),
            )?;
        }
        match branch {
            Some(b) => {
                let name = format!("refs/heads/{b}");
                // Created only if it does not exist yet (the empty old value).
                Self::run_in(dir, &["update-ref", &name, commit, ""], &[], None)?;
                Self::run_in(dir, &["symbolic-ref", "HEAD", &name], &[], None).map(drop)
            }
            None => Self::run_in(
                dir,
                &["update-ref", "--no-deref", "HEAD", commit],
                &[],
                None,
            )
            .map(drop),
        }
    }

    /// The worktree's own directory in the repository's git directory
    /// (`<common>/worktrees/<name>`): its HEAD, index and lock live there.
    pub fn worktree_admin_dir(dir: &Path) -> Option<PathBuf> {
        let link = std::fs::read_to_string(dir.join(".git")).ok()?;
        let gitdir = link.trim().strip_prefix("gitdir: ")?;
        let gitdir = dir.join(gitdir);
        gitdir.is_dir().then_some(gitdir)
    }

    /// Sets the reason the linked worktree at `dir` is locked (`git worktree list`
    /// shows it). git keeps the reason in the `locked` file of the worktree's admin
    /// directory; writing it there costs no git process.
    pub fn set_worktree_lock(dir: &Path, reason: &str) -> std::io::Result<()> {
        let admin = Self::worktree_admin_dir(dir).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a linked worktree", dir.display()),
            )
        })?;
        let tmp = admin.join("locked.baton-tmp");
        std::fs::write(&tmp, reason)?;
        std::fs::rename(&tmp, admin.join("locked"))
    }

    /// The reason the linked worktree at `dir` is locked, if it is.
    pub fn worktree_lock_reason(dir: &Path) -> Option<String> {
        let admin = Self::worktree_admin_dir(dir)?;
        std::fs::read_to_string(admin.join("locked")).ok()
    }

    /// The branch checked out in the linked worktree at `dir`, if any.
    pub fn worktree_branch(dir: &Path) -> Option<String> {
        let admin = Self::worktree_admin_dir(dir)?;
        let head = std::fs::read_to_string(admin.join("HEAD")).ok()?;
        head.trim()
            .strip_prefix("ref: refs/heads/")
            .map(str::to_string)
    }

    /// The paths that differ between commits `a` and `b` (no rename detection).
    pub fn changed_paths(&self, a: &str, b: &str) -> Result<Vec<String>> {
        let out = self.run(&["diff-tree", "-r", "-z", "--name-only", "--no-renames", a, b])?;
        Ok(out
            .split(|&c| c == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }
}

//! Talking to a remote: what `baton worker`, `sweep land`, `sweep status` and `sweep
//! plan` need to coordinate through git alone. Always the git binary (libgit2 has no
//! `--force-with-lease`, and the binary honours the user's transports, credentials and
//! `url.*.insteadOf`), always with an explicit URL and refspecs, so nothing depends on
//! a configured remote's name or its fetch refspec.
//!
//! The compare-and-swap primitive is `git push --force-with-lease=<ref>:<expect>` on
//! an explicit ref: an empty `<expect>` means "the ref must not exist" (create-only).
//! Verified on git 2.47: a ref whose push is `[up to date]` is *not* checked against its
//! lease, even in an `--atomic` push — so a lease that fences another update must
//! move (a new commit each time), never be pushed as it is.

use std::path::Path;

use super::{GitError, Repo, Result};
use crate::process;

/// What a pushed ref is expected to be on the remote before the push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// It must not exist (create-only).
    Absent,
    /// It must point here.
    At(String),
}

/// One ref of a push: `src` (a commit id; `None` deletes the ref) to `dst` on the remote,
/// only if it is as `expect` says.
#[derive(Debug, Clone)]
pub struct RefUpdate {
    pub src: Option<String>,
    pub dst: String,
    pub expect: Expect,
}

/// How a push went, when the remote answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Every ref is as asked.
    Done,
    /// The remote refused (a lease did not hold, a hook, a protected ref): nothing of
    /// an atomic push was written. The refs and git's reasons.
    Refused(Vec<(String, String)>),
}

/// The error of a remote that could not be reached (or is not a repository).
fn unreachable(url: &str, what: &str, stderr: &[u8]) -> GitError {
    let text = String::from_utf8_lossy(stderr);
    let reason = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("Please make sure") && !l.starts_with("and the repository"))
        .map(|l| {
            l.trim_start_matches("fatal: ")
                .trim_start_matches("error: ")
        })
        .collect::<Vec<_>>()
        .join("; ");
    GitError::Remote {
        url: url.to_string(),
        what: what.to_string(),
        reason: if reason.is_empty() {
            "git failed without saying why".into()
        } else {
            reason
        },
    }
}

impl Repo {
    /// `git clone URL DIR` (a full clone with a checkout of the remote's HEAD).
    pub fn clone_into(url: &str, dir: &Path) -> Result<Repo> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|source| GitError::Io {
            context: format!("cannot create {}", parent.display()),
            source,
        })?;
        let mut cmd = Self::git_in(parent);
        cmd.args(["clone", "-q", "--no-tags", "--", url]).arg(dir);
        let out = process::capture(&mut cmd, None).map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(unreachable(url, "clone", &out.stderr));
        }
        Repo::discover(dir)
    }

    /// The refs of the remote matching `patterns` (`git ls-remote`), name to id.
    pub fn ls_remote(
        &self,
        url: &str,
        patterns: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let mut cmd = Self::git_in(&self.root);
        cmd.args(["ls-remote", "--", url]).args(patterns);
        let out = process::capture(&mut cmd, None).map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(unreachable(url, "ls-remote", &out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (oid, name) = l.split_once('\t')?;
                Some((name.to_string(), oid.to_string()))
            })
            .collect())
    }

    /// The branch the remote's HEAD names (`refs/heads/…`), if it says.
    pub fn remote_head_branch(&self, url: &str) -> Result<Option<String>> {
        let mut cmd = Self::git_in(&self.root);
        cmd.args(["ls-remote", "--symref", "--", url, "HEAD"]);
        let out = process::capture(&mut cmd, None).map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(unreachable(url, "ls-remote", &out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let rest = l.strip_prefix("ref: ")?;
            let (name, _) = rest.split_once('\t')?;
            Some(name.to_string())
        }))
    }

    /// `git fetch URL REFSPEC…` (forced refspecs are the caller's; `prune`: local refs
    /// under a glob refspec's destination that the remote no longer has are removed).
    pub fn fetch(&self, url: &str, refspecs: &[String], prune: bool) -> Result<()> {
        let mut cmd = Self::git_in(&self.root);
        cmd.args(["fetch", "-q", "--no-tags", "--no-write-fetch-head"]);
        if prune {
            cmd.arg("--prune");
        }
        cmd.arg("--").arg(url).args(refspecs);
        let out = process::capture(&mut cmd, None).map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(unreachable(url, "fetch", &out.stderr));
        }
        Ok(())
    }

    /// Pushes `updates` to `url`, each with its lease, all or nothing (`--atomic`).
    /// `Ok(Refused)` when the remote answered no; `Err` when it could not be reached.
    pub fn push(&self, url: &str, updates: &[RefUpdate]) -> Result<Pushed> {
        let mut cmd = Self::git_in(&self.root);
        cmd.args(["push", "--porcelain", "--atomic", "--no-verify"]);
        for u in updates {
            let expect = match &u.expect {
                Expect::Absent => String::new(),
                Expect::At(oid) => oid.clone(),
            };
            cmd.arg(format!("--force-with-lease={}:{expect}", u.dst));
        }
        cmd.arg("--").arg(url);
        for u in updates {
            cmd.arg(format!("{}:{}", u.src.as_deref().unwrap_or(""), u.dst));
        }
        let out = process::capture(&mut cmd, None).map_err(GitError::Spawn)?;
        // Porcelain: `<flag>\t<from>:<to>\t<summary>` per ref; `!` is a refusal.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let refused: Vec<(String, String)> = stdout
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('\t');
                let flag = parts.next()?;
                let refs = parts.next()?;
                let summary = parts.next().unwrap_or("").trim();
                (flag == "!").then(|| {
                    let dst = refs.rsplit_once(':').map(|(_, d)| d).unwrap_or(refs);
                    (dst.to_string(), summary.to_string())
                })
            })
            .collect();
        if !refused.is_empty() {
            return Ok(Pushed::Refused(refused));
        }
        if !out.status.success() {
            return Err(unreachable(url, "push", &out.stderr));
        }
        Ok(Pushed::Done)
    }

    /// A tree of plain files (`name`, blob id), written to the object store.
    pub fn mktree(&self, entries: &[(&str, &str)]) -> Result<String> {
        let mut input = String::new();
        for (name, blob) in entries {
            input.push_str(&format!("100644 blob {blob}\t{name}\n"));
        }
        let out = Self::run_in(&self.root, &["mktree"], &[], Some(input.as_bytes()))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// The content of `path` in `commit`'s tree, if it has one there.
    pub fn file_at(&self, commit: &str, path: &str) -> Option<Vec<u8>> {
        self.run(&["cat-file", "blob", &format!("{commit}:{path}")])
            .ok()
    }

    /// The files at the top of `commit`'s tree.
    pub fn top_files(&self, commit: &str) -> Result<Vec<String>> {
        let out = self.run(&["ls-tree", "--name-only", "-z", commit])?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect())
    }

    /// The messages of the commits reachable from `tip` and not from `since`, newest
    /// first, each with its id.
    pub fn messages_since(&self, since: &str, tip: &str) -> Result<Vec<(String, String)>> {
        let range = format!("{since}..{tip}");
        let out = self.run(&["log", "-z", "--format=%H%n%B", &range, "--"])?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .filter_map(|r| {
                let text = String::from_utf8_lossy(r);
                let (oid, body) = text.split_once('\n')?;
                Some((oid.trim().to_string(), body.to_string()))
            })
            .collect())
    }

    /// The id git gives `bytes` as a blob (`git hash-object --stdin`; nothing written):
    /// a content hash every machine computes the same.
    pub fn hash_bytes(&self, bytes: &[u8]) -> Result<String> {
        let out = Self::run_in(&self.root, &["hash-object", "--stdin"], &[], Some(bytes))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// Points `refname` at `new` whatever it was (a local mirror of a remote's ref).
    pub fn set_ref(&self, refname: &str, new: &str, message: &str) -> Result<()> {
        self.run(&["update-ref", "--no-deref", "-m", message, refname, new])
            .map(drop)
    }

    /// Removes `refname` locally, if it exists.
    pub fn delete_ref(&self, refname: &str) -> Result<()> {
        if self.ref_target(refname).is_none() {
            return Ok(());
        }
        self.run(&["update-ref", "--no-deref", "-d", refname])
            .map(drop)
    }

    /// Moves this checkout (one baton made for itself: its cache clone) to `commit`,
    /// detached. Never used on a user's checkout.
    pub fn checkout_detached(&self, commit: &str) -> Result<()> {
        self.run(&["checkout", "-q", "-f", "--detach", commit])
            .map(drop)
    }
}

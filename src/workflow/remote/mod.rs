//! A sweep scaled out over machines, with git as the only coordination point:
//! `baton worker` runs one task of a task file and pushes its result as a ref;
//! `baton sweep land` fetches the results and lands the passing ones through the same
//! merge queue as `baton sweep` ([`super::queue`]), publishing by a push of the
//! target branch with a lease instead of a local compare-and-swap; `baton sweep
//! status --remote` reads what is there. This module owns the protocol (the refs, the
//! sweep id, the lander's lease) and those three workflows; git access is `git/`'s.
//!
//! The refs on the remote (docs/distributed.md tells the story):
//!
//! - `refs/baton/open/<key>` — the sweep a task file has open on a branch. `key` is a
//!   hash of the target branch's name, the task file's stem and its bytes. The first
//!   party that needs the sweep creates it (create-only push); everyone else reads it.
//!   It points at the sweep's **record**: a commit whose parent is the base (the
//!   branch's tip when the sweep was opened), whose tree holds the task file, and
//!   whose message carries `Baton-Sweep-Key:`, `Baton-Base:`, `Baton-Target:`,
//!   `Baton-Task-File:` and who opened it.
//! - `refs/baton/sweeps/<id>/base` — the same record, by sweep id, kept after the
//!   sweep closes. The id is `<stem>-<hash of (key, record)>`: from the record, not
//!   the base alone, so that the same file run again from an unchanged branch (say,
//!   after every task failed) is a new sweep and not the old one's results.
//! - `refs/baton/results/<id>/<task>` — a worker's result, first writer wins
//!   (create-only): a commit whose tree holds `report.json`, `events.jsonl` and
//!   `diff.patch` of the run, and whose first parent is the candidate commit (the
//!   run's tree on the base, with the run's trailers), or the base when the run
//!   changed nothing.
//! - `refs/baton/sweeps/<id>/lander` — the lander's lease: a commit naming the host,
//!   repository, pid and start of the lander holding it, created create-only and
//!   moved to a new commit (a beat) with every push of the branch, in the same atomic
//!   push, so a lander whose lease was taken over can land nothing more.
//!
//! The files: `id` (the key, the record, opening and closing a sweep), `worker`,
//! `status` (reading results and the branch, the report), `land` (the lease, the
//! queue's publisher for a remote, the lander) and `plan`.
//!
//! A task landed on the branch is known by its commit's trailers (`Baton-Sweep: <id>`
//! and `Baton-Task: <task>`), which arrive with the branch in one atomic push: a
//! resumed lander never lands a task twice.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::Observer;
use crate::git::{Expect, Pushed, RefUpdate, Repo};
use crate::journal;
use crate::report::{RunReport, Verdict};
use crate::run::{self, Base};
use crate::{exit, process};

use super::queue::{self, Candidate, Decision, Publisher, Queue, QueueConfig, QueueStats};
use super::sweep::{self, Context, Flags, SweepEvents, SweepJournal, SweepObserver, TaskFile};

mod id;
mod land;
mod plan;
mod status;
mod worker;

use id::*;
use status::*;

pub use id::{Source, SweepRef, key_of, result_ref};
pub use land::land;
pub use plan::{PlanInput, plan_input, plan_open};
pub use status::{RemoteOptions, RemoteReport, RemoteTask, status};
pub use worker::{WorkerOptions, WorkerReport, worker};

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "--index {index} is outside the task list of {file}: it has {count} task(s), so an index is 0 to {last}"
    )]
    IndexOutOfRange {
        index: usize,
        file: String,
        count: usize,
        last: usize,
    },
    #[error(
        "no task to run: pass --index I (0 to {last} for {file}), or set JOB_COMPLETION_INDEX as a Kubernetes Indexed Job does"
    )]
    NoIndex { file: String, last: usize },
    #[error("JOB_COMPLETION_INDEX is `{0}`, not a task index; pass --index I, or unset it")]
    BadIndexEnv(String),
    #[error(
        "{file} is not the task file of sweep {sweep}: the sweep was opened for a file with key {theirs} ({their_file} on {target}), this one's key is {ours}; give the sweep's own task file, or leave out --sweep to use the sweep this file opens"
    )]
    Mismatch {
        file: String,
        sweep: String,
        theirs: String,
        their_file: String,
        target: String,
        ours: String,
    },
    #[error(
        "no sweep {sweep} on {url}; `baton sweep status TASKS --remote {url}` names the sweep a task file has open"
    )]
    NoSuchSweep { sweep: String, url: String },
    #[error(
        "{file} has no open sweep on {url} (branch {branch}); `baton worker`, `baton sweep land` or `baton sweep plan` opens one, and a closed sweep is shown by its id (`baton sweep status ID --remote {url}`)"
    )]
    NotOpen {
        file: String,
        url: String,
        branch: String,
    },
    #[error(
        "the remote {url} has no branch {branch}; pass --branch with one it has (`git ls-remote --heads {url}`)"
    )]
    NoBranch { url: String, branch: String },
    #[error(
        "sweep {sweep} lands on {theirs}, not {ours}; leave out --branch (the sweep's record names its branch)"
    )]
    OtherBranch {
        sweep: String,
        theirs: String,
        ours: String,
    },
    #[error("the remote {url} does not say which branch its HEAD is; pass --branch")]
    NoHead { url: String },
    #[error("the sweep record {what} on {url} is damaged: {detail}")]
    Damaged {
        what: String,
        url: String,
        detail: String,
    },
    #[error(
        "sweep {sweep}: another lander holds its lease ({holder}, since {since}); wait for it to finish, or if it is gone for good run again with --take-over"
    )]
    LeaseHeld {
        sweep: String,
        holder: String,
        since: String,
    },
    #[error(
        "sweep {sweep}: the lease was taken over by another lander ({holder}); this one stops and lands nothing more"
    )]
    LeaseLost { sweep: String, holder: String },
    #[error(
        "could not push the result of task `{task}` to {url} ({reason}); the run is kept in {clone} (run {run_id}) — push it later with `{command}`"
    )]
    PushFailed {
        task: String,
        url: String,
        reason: String,
        clone: String,
        run_id: String,
        command: String,
    },
    #[error("the remote {url} refused the push of {what}: {reason}")]
    Refused {
        url: String,
        what: String,
        reason: String,
    },
    #[error("could not read the task file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no place for baton's clone of {url}: set HOME (or XDG_CACHE_HOME), or run baton inside a clone"
    )]
    NoCacheDir { url: String },
}

impl RemoteError {
    /// The exit status this error stands for.
    pub fn exit_code(&self) -> i32 {
        match self {
            RemoteError::LeaseHeld { .. } | RemoteError::LeaseLost { .. } => exit::LEASE_HELD,
            RemoteError::PushFailed { .. } => exit::BATON_FAILED,
            _ => exit::USAGE,
        }
    }
}

pub const OPEN_PREFIX: &str = "refs/baton/open";
pub const SWEEPS_PREFIX: &str = "refs/baton/sweeps";
pub const RESULTS_PREFIX: &str = "refs/baton/results";
/// Where a lander keeps its copy of the remote's results.
const FETCHED_PREFIX: &str = "refs/baton/fetched-results";
/// Where a repository keeps its copy of the remote's target branch (never the user's
/// own branch: a lander or worker may run in the user's clone).
const UPSTREAM_PREFIX: &str = "refs/baton/upstream";

/// The remote and the branch a sweep lands on.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    /// `refs/heads/<name>`.
    pub branch: String,
}

impl Remote {
    /// `url` and `branch` (a name, or `None`: the remote's HEAD), checked against the
    /// remote.
    pub fn resolve(repo: &Repo, url: &str, branch: Option<&str>) -> Result<Remote> {
        let branch = match branch {
            Some(b) => format!("refs/heads/{}", b.trim_start_matches("refs/heads/")),
            None => repo
                .remote_head_branch(url)?
                .ok_or_else(|| RemoteError::NoHead { url: url.into() })?,
        };
        let heads = repo.ls_remote(url, &[&branch])?;
        if !heads.contains_key(&branch) {
            return Err(RemoteError::NoBranch {
                url: url.into(),
                branch: short_branch(&branch).into(),
            }
            .into());
        }
        Ok(Remote {
            url: url.to_string(),
            branch,
        })
    }

    fn name(&self) -> &str {
        short_branch(&self.branch)
    }

    fn upstream(&self) -> String {
        format!("{UPSTREAM_PREFIX}/{}", self.name())
    }

    /// Fetches the branch into its local copy; its tip.
    fn fetch_tip(&self, repo: &Repo) -> Result<String> {
        let local = self.upstream();
        repo.fetch(&self.url, &[format!("+{}:{local}", self.branch)], false)?;
        repo.ref_target(&local).ok_or_else(|| {
            RemoteError::NoBranch {
                url: self.url.clone(),
                branch: self.name().into(),
            }
            .into()
        })
    }
}

fn short_branch(b: &str) -> &str {
    b.strip_prefix("refs/heads/").unwrap_or(b)
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

/// The repository a worker or lander works in: the one `cwd` is in, fetched into; or
/// else baton's own clone of `url` in the user's cache directory (made on first use),
/// which baton may check out as it likes. True when it is baton's own.
pub fn workspace(cwd: &Path, url: &str) -> Result<(Repo, bool)> {
    if let Ok(repo) = Repo::discover(cwd) {
        return Ok((repo, false));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| RemoteError::NoCacheDir { url: url.into() })?;
    let dir = cache.join("baton").join("clones").join(url_dir(url));
    match Repo::discover(&dir) {
        Ok(repo) if repo.root == dir => Ok((repo, true)),
        _ => {
            let _ = std::fs::remove_dir_all(&dir);
            Ok((Repo::clone_into(url, &dir)?, true))
        }
    }
}

/// A directory name for `url`'s clone: readable, and distinct for distinct URLs (the
/// last path component, then a 64-bit FNV-1a hash of the whole URL).
pub(super) fn url_dir(url: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git");
    format!("{}-{h:016x}", stem_of(&format!("{last}.git")))
}

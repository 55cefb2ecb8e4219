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

// ---------------------------------------------------------------------------------
// The sweep id
// ---------------------------------------------------------------------------------

/// A sweep as its record on the remote says.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRef {
    pub id: String,
    pub key: String,
    /// The record commit (`refs/baton/sweeps/<id>/base`).
    pub record: String,
    /// The commit every task starts from.
    pub base: String,
    /// `refs/heads/<name>`.
    pub target: String,
    /// The task file's name (its last component), as it is in the record's tree.
    pub file_name: String,
}

/// The task file's stem, made safe for a ref and an id.
fn stem_of(file_name: &str) -> String {
    let stem = Path::new(file_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let safe = safe.trim_matches('-').to_string();
    if safe.is_empty() {
        "sweep".into()
    } else {
        safe
    }
}

/// The key of a task file on a branch: the same on every machine for the same
/// branch, file name and bytes.
pub fn key_of(repo: &Repo, target: &str, file_name: &str, bytes: &[u8]) -> Result<String> {
    let mut input = format!("baton sweep key 1\n{target}\n{}\n", stem_of(file_name)).into_bytes();
    input.extend_from_slice(bytes);
    Ok(repo.hash_bytes(&input)?[..16].to_string())
}

/// The id of the sweep of `key` opened as `record`.
fn id_of(repo: &Repo, file_name: &str, key: &str, record: &str) -> Result<String> {
    let h = repo.hash_bytes(format!("baton sweep id 1\n{key}\n{record}\n").as_bytes())?;
    Ok(format!("{}-{}", stem_of(file_name), &h[..10]))
}

fn trailer<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .map(str::trim)
}

/// Who is acting, as records and leases name them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    host: String,
    repo: String,
    pid: u32,
    pid_start: Option<u64>,
    since: u64,
}

impl Holder {
    fn me(repo: &Repo) -> Holder {
        Holder {
            host: host_name(),
            repo: repo
                .common_dir
                .canonicalize()
                .unwrap_or_else(|_| repo.common_dir.clone())
                .display()
                .to_string(),
            pid: std::process::id(),
            pid_start: process::own_start_time(),
            since: journal::now(),
        }
    }

    fn trailers(&self) -> String {
        format!(
            "Baton-Host: {}\nBaton-Repo: {}\nBaton-Pid: {}\nBaton-Pid-Start: {}\nBaton-Since: {}\n",
            self.host,
            self.repo,
            self.pid,
            self.pid_start.map(|s| s.to_string()).unwrap_or_default(),
            self.since
        )
    }

    fn parse(message: &str) -> Option<Holder> {
        Some(Holder {
            host: trailer(message, "Baton-Host")?.to_string(),
            repo: trailer(message, "Baton-Repo")?.to_string(),
            pid: trailer(message, "Baton-Pid")?.parse().ok()?,
            pid_start: trailer(message, "Baton-Pid-Start").and_then(|s| s.parse().ok()),
            since: trailer(message, "Baton-Since")?.parse().ok()?,
        })
    }

    fn describe(&self) -> String {
        format!("pid {} on {} in {}", self.pid, self.host, self.repo)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

fn open_ref(key: &str) -> String {
    format!("{OPEN_PREFIX}/{key}")
}

fn base_ref(id: &str) -> String {
    format!("{SWEEPS_PREFIX}/{id}/base")
}

fn lease_ref(id: &str) -> String {
    format!("{SWEEPS_PREFIX}/{id}/lander")
}

pub fn result_ref(id: &str, task: &str) -> String {
    format!("{RESULTS_PREFIX}/{id}/{task}")
}

/// Reads the record commit `record` (already fetched).
fn read_record(repo: &Repo, url: &str, record: &str) -> Result<SweepRef> {
    let damaged = |detail: &str| RemoteError::Damaged {
        what: short(record).to_string(),
        url: url.to_string(),
        detail: detail.to_string(),
    };
    let info = repo.commit_info(record)?;
    let m = &info.message;
    let key = trailer(m, "Baton-Sweep-Key").ok_or_else(|| damaged("no Baton-Sweep-Key"))?;
    let base = trailer(m, "Baton-Base").ok_or_else(|| damaged("no Baton-Base"))?;
    let target = trailer(m, "Baton-Target").ok_or_else(|| damaged("no Baton-Target"))?;
    let file_name = trailer(m, "Baton-Task-File").ok_or_else(|| damaged("no Baton-Task-File"))?;
    if info.parents.first().map(String::as_str) != Some(base) {
        return Err(damaged("its parent is not its base").into());
    }
    Ok(SweepRef {
        id: id_of(repo, file_name, key, record)?,
        key: key.to_string(),
        record: record.to_string(),
        base: base.to_string(),
        target: target.to_string(),
        file_name: file_name.to_string(),
    })
}

/// The task file's bytes as the sweep's record holds them.
fn record_file(repo: &Repo, sweep: &SweepRef) -> Result<Vec<u8>> {
    repo.file_at(&sweep.record, &sweep.file_name)
        .ok_or_else(|| {
            RemoteError::Damaged {
                what: sweep.id.clone(),
                url: String::new(),
                detail: format!("its record has no {}", sweep.file_name),
            }
            .into()
        })
}

/// The sweep `id`, from the remote.
pub fn find(repo: &Repo, remote: &Remote, id: &str) -> Result<SweepRef> {
    let name = base_ref(id);
    if repo.ls_remote(&remote.url, &[&name])?.is_empty() {
        return Err(RemoteError::NoSuchSweep {
            sweep: id.into(),
            url: remote.url.clone(),
        }
        .into());
    }
    repo.fetch(&remote.url, &[format!("+{name}:{name}")], false)?;
    let record = repo
        .ref_target(&name)
        .ok_or_else(|| RemoteError::NoSuchSweep {
            sweep: id.into(),
            url: remote.url.clone(),
        })?;
    let sweep = read_record(repo, &remote.url, &record)?;
    if sweep.id != id {
        return Err(RemoteError::Damaged {
            what: id.into(),
            url: remote.url.clone(),
            detail: format!("its record is that of sweep {}", sweep.id),
        }
        .into());
    }
    Ok(sweep)
}

/// The sweep a task file has open on the branch, if any.
fn find_open(repo: &Repo, remote: &Remote, key: &str) -> Result<Option<SweepRef>> {
    let name = open_ref(key);
    if repo.ls_remote(&remote.url, &[&name])?.is_empty() {
        return Ok(None);
    }
    // It may be closed between the two calls: then it is not open.
    if repo
        .fetch(&remote.url, &[format!("+{name}:{name}")], false)
        .is_err()
    {
        return Ok(None);
    }
    match repo.ref_target(&name) {
        Some(record) => {
            let sweep = read_record(repo, &remote.url, &record)?;
            repo.set_ref(&base_ref(&sweep.id), &record, "baton: sweep record")?;
            Ok(Some(sweep))
        }
        None => Ok(None),
    }
}

/// Opens the sweep of a task file (`file_name`, `bytes`) on the branch: the one it has
/// open there, or a new one from the branch's tip now, made create-only so that of
/// two parties opening at once one wins and the other uses its sweep.
pub fn open(repo: &Repo, remote: &Remote, file_name: &str, bytes: &[u8]) -> Result<SweepRef> {
    let key = key_of(repo, &remote.branch, file_name, bytes)?;
    for _ in 0..5 {
        if let Some(sweep) = find_open(repo, remote, &key)? {
            return Ok(sweep);
        }
        let base = remote.fetch_tip(repo)?;
        let blob = repo.write_blobs(&[bytes])?.pop().unwrap_or_default();
        let tree = repo.mktree(&[(file_name, &blob)])?;
        let message = format!(
            "baton sweep of {file_name} on {}\n\nBaton-Sweep-Key: {key}\nBaton-Base: {base}\nBaton-Target: {}\nBaton-Task-File: {file_name}\n{}",
            remote.name(),
            remote.branch,
            Holder::me(repo).trailers()
        );
        let record = repo.commit_tree(&tree, &[&base], &message)?;
        let id = id_of(repo, file_name, &key, &record)?;
        let pushed = repo.push(
            &remote.url,
            &[
                RefUpdate {
                    src: Some(record.clone()),
                    dst: open_ref(&key),
                    expect: Expect::Absent,
                },
                RefUpdate {
                    src: Some(record.clone()),
                    dst: base_ref(&id),
                    expect: Expect::Absent,
                },
            ],
        )?;
        if pushed == Pushed::Done {
            repo.set_ref(&base_ref(&id), &record, "baton: sweep opened")?;
            return read_record(repo, &remote.url, &record);
        }
        // Someone else opened it first: theirs is the sweep.
    }
    Err(RemoteError::Refused {
        url: remote.url.clone(),
        what: open_ref(&key),
        reason: "the sweep could be neither opened nor read".into(),
    }
    .into())
}

/// Closes the sweep: the next run of its task file opens a new one from the branch as
/// it is then. Only this sweep's open ref is removed (leased on its record).
fn close(repo: &Repo, remote: &Remote, sweep: &SweepRef) -> Result<bool> {
    let pushed = repo.push(
        &remote.url,
        &[RefUpdate {
            src: None,
            dst: open_ref(&sweep.key),
            expect: Expect::At(sweep.record.clone()),
        }],
    )?;
    let _ = repo.delete_ref(&open_ref(&sweep.key));
    Ok(pushed == Pushed::Done)
}

/// What names a sweep on the command line: a task file, or a sweep id.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Id(String),
}

impl Source {
    /// A path that exists is a task file; anything else a sweep id.
    pub fn parse(text: &str, cwd: &Path) -> Source {
        let path = cwd.join(text);
        if path.is_file() {
            Source::File(path)
        } else {
            Source::Id(text.to_string())
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        RemoteError::Read {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tasks.toml".into())
}

/// The sweep of `file` (`bytes`), or `sweep` when given — then `file` must be its task
/// file. `open`: open one when the file has none (else: not open is an error).
fn sweep_of(
    repo: &Repo,
    remote: &Remote,
    file: &Path,
    bytes: &[u8],
    sweep: Option<&str>,
    open_it: bool,
) -> Result<SweepRef> {
    let name = file_name_of(file);
    match sweep {
        Some(id) => {
            let found = find(repo, remote, id)?;
            let ours = key_of(repo, &found.target, &name, bytes)?;
            if ours != found.key {
                return Err(RemoteError::Mismatch {
                    file: file.display().to_string(),
                    sweep: id.into(),
                    theirs: found.key.clone(),
                    their_file: found.file_name.clone(),
                    target: short_branch(&found.target).into(),
                    ours,
                }
                .into());
            }
            Ok(found)
        }
        None if open_it => open(repo, remote, &name, bytes),
        None => {
            let key = key_of(repo, &remote.branch, &name, bytes)?;
            find_open(repo, remote, &key)?.ok_or_else(|| {
                RemoteError::NotOpen {
                    file: file.display().to_string(),
                    url: remote.url.clone(),
                    branch: remote.name().into(),
                }
                .into()
            })
        }
    }
}

/// The sweep a command names (a file or an id), and the task file's bytes.
fn resolve_source(
    repo: &Repo,
    remote: &Remote,
    source: &Source,
    given: Option<&str>,
    open_it: bool,
) -> Result<(SweepRef, Vec<u8>)> {
    match source {
        Source::File(path) => {
            let bytes = read_file(path)?;
            let sweep = sweep_of(repo, remote, path, &bytes, given, open_it)?;
            Ok((sweep, bytes))
        }
        Source::Id(id) => {
            let sweep = find(repo, remote, id)?;
            let bytes = record_file(repo, &sweep)?;
            Ok((sweep, bytes))
        }
    }
}

/// Refuses a sweep that lands on another branch than `remote`'s.
fn same_branch(sweep: &SweepRef, remote: &Remote) -> Result<()> {
    if sweep.target != remote.branch {
        return Err(RemoteError::OtherBranch {
            sweep: sweep.id.clone(),
            theirs: short_branch(&sweep.target).into(),
            ours: remote.name().into(),
        }
        .into());
    }
    Ok(())
}

/// The task file resolved as `baton sweep` resolves it (every plan before anything
/// starts), landing on the sweep's branch. Flags are none: on many machines the file
/// is the whole contract.
fn load(repo: &Repo, cwd: &Path, path: &Path, bytes: &[u8], target: &str) -> Result<TaskFile> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let ctx = Context {
        repo,
        cwd: cwd.to_path_buf(),
        flags: Flags::default(),
        target: target.to_string(),
        pipelines_dir: std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
    };
    sweep::load(&ctx, path, &text)
}

// ---------------------------------------------------------------------------------
// Where baton works: a clone
// ---------------------------------------------------------------------------------

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
fn url_dir(url: &str) -> String {
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

// ---------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------

/// What `baton worker` is asked.
pub struct WorkerOptions {
    pub file: PathBuf,
    /// `None`: `JOB_COMPLETION_INDEX`.
    pub index: Option<usize>,
    pub url: String,
    pub branch: Option<String>,
    pub sweep: Option<String>,
    pub cwd: PathBuf,
}

/// What a worker did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    pub sweep_id: String,
    pub task: String,
    pub index: usize,
    /// `refs/baton/results/<sweep>/<task>`.
    pub result_ref: String,
    /// The result now on the remote (`None` when another worker's is there).
    pub result: Option<String>,
    /// True when the result was already there (this worker ran nothing, or its run
    /// lost the race to another worker's).
    pub already_there: bool,
    /// The run's verdict, when this worker ran it.
    pub verdict: Option<Verdict>,
    pub run_id: Option<String>,
    /// Where the work is in this machine's clone.
    pub clone: PathBuf,
    /// The run's own status, as `baton run` gives it (0 when this worker ran nothing).
    pub exit_code: i32,
}

/// The task index: `--index`, else `JOB_COMPLETION_INDEX`.
fn task_index(index: Option<usize>, file: &str, count: usize) -> Result<usize> {
    let last = count.saturating_sub(1);
    let index = match index {
        Some(i) => i,
        None => match std::env::var("JOB_COMPLETION_INDEX") {
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| RemoteError::BadIndexEnv(v.clone()))?,
            Err(_) => {
                return Err(RemoteError::NoIndex {
                    file: file.into(),
                    last,
                }
                .into());
            }
        },
    };
    if index >= count {
        return Err(RemoteError::IndexOutOfRange {
            index,
            file: file.into(),
            count,
            last,
        }
        .into());
    }
    Ok(index)
}

/// `baton worker TASKS --index I --remote URL`: runs task I from the sweep's base, as
/// `baton sweep` runs a task (`--on-pass keep`), and pushes its result, first writer
/// wins. It never touches the target branch.
pub fn worker(opts: &WorkerOptions, observers: Vec<Box<dyn Observer>>) -> Result<WorkerReport> {
    let bytes = read_file(&opts.file)?;
    let (repo, own) = workspace(&opts.cwd, &opts.url)?;
    repo.check_identity()?;
    let remote = Remote::resolve(&repo, &opts.url, opts.branch.as_deref())?;
    // The file is resolved, and the index checked, before anything is pushed.
    let tip = remote.fetch_tip(&repo)?;
    if own {
        repo.checkout_detached(&tip)?;
    }
    let file = load(&repo, &opts.cwd, &opts.file, &bytes, &remote.branch)?;
    let shown = opts.file.display().to_string();
    let index = task_index(opts.index, &shown, file.tasks.len())?;
    let sweep = sweep_of(
        &repo,
        &remote,
        &opts.file,
        &bytes,
        opts.sweep.as_deref(),
        true,
    )?;
    let task = &file.tasks[index];
    let name = result_ref(&sweep.id, &task.id);
    let mut report = WorkerReport {
        sweep_id: sweep.id.clone(),
        task: task.id.clone(),
        index,
        result_ref: name.clone(),
        result: None,
        already_there: false,
        verdict: None,
        run_id: None,
        clone: repo.root.clone(),
        exit_code: exit::OK,
    };
    if let Some(oid) = repo.ls_remote(&remote.url, &[&name])?.get(&name) {
        report.already_there = true;
        report.result = Some(oid.clone());
        return Ok(report);
    }
    // A result made here before that could not be pushed: pushed now, not run again.
    let result = match repo.ref_target(&name) {
        Some(r) => r,
        None => {
            if own {
                repo.checkout_detached(&sweep.base)?;
            }
            let mut plan = task.plan.clone();
            plan.base = Base::Rev(sweep.base.clone());
            plan.sweep = Some(sweep.id.clone());
            let run = match &task.pipeline {
                None => run::run(&repo, &plan, observers, &mut |r| run::default_policy(r))?,
                Some(p) => {
                    let first = std::sync::Mutex::new(Some(observers));
                    let obs = || {
                        first
                            .lock()
                            .ok()
                            .and_then(|mut f| f.take())
                            .unwrap_or_default()
                    };
                    let done = super::pipeline::pipeline(&repo, &plan, p, false, &obs)
                        .map_err(Error::from)?;
                    sweep::read_run(&repo.common_dir, &done.run_id).ok_or_else(|| {
                        Error::Usage(format!("run {}: its state cannot be read", done.run_id))
                    })?
                }
            };
            // A run stopped by Ctrl-C is no verdict: pushed, it would stand for the
            // task (first writer wins) and no retry could run it again.
            if run.interrupted {
                return Err(Error::Interrupted);
            }
            report.verdict = Some(run.verdict);
            report.run_id = Some(run.run_id.clone());
            report.exit_code = exit::for_report(&run);
            let result = result_commit(&repo, &sweep, &task.id, &run)?;
            repo.set_ref(&name, &result, "baton worker: result")?;
            result
        }
    };
    process::crash_point("worker.push");
    let pushed = repo.push(
        &remote.url,
        &[RefUpdate {
            src: Some(result.clone()),
            dst: name.clone(),
            expect: Expect::Absent,
        }],
    );
    match pushed {
        Ok(Pushed::Done) => {
            report.result = Some(result);
            Ok(report)
        }
        // First writer wins: another worker's result is the task's.
        Ok(Pushed::Refused(_)) => {
            report.already_there = true;
            report.exit_code = exit::OK;
            report.result = repo.ls_remote(&remote.url, &[&name])?.get(&name).cloned();
            Ok(report)
        }
        Err(e) => Err(RemoteError::PushFailed {
            task: task.id.clone(),
            url: remote.url.clone(),
            reason: match &e {
                crate::git::GitError::Remote { reason, .. } => reason.clone(),
                other => other.to_string(),
            },
            clone: repo.root.display().to_string(),
            run_id: report.run_id.clone().unwrap_or_else(|| "-".into()),
            command: format!(
                "git -C {} push --force-with-lease={name}: {} {name}:{name}",
                shell_word(&repo.root.display().to_string()),
                shell_word(&remote.url)
            ),
        }
        .into()),
    }
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The result of `run` as a commit: its tree holds the run's report and events, its
/// first parent is the candidate (the run's tree on the base, with the run's
/// trailers), or the base when the run left no tree.
fn result_commit(repo: &Repo, sweep: &SweepRef, task: &str, run: &RunReport) -> Result<String> {
    let candidate = match &run.tree {
        Some(tree) => repo.commit_tree(tree, &[&run.base], &run::commit_message(run))?,
        None => run.base.clone(),
    };
    let report = serde_json::to_vec_pretty(run).map_err(|e| Error::Usage(e.to_string()))?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![("report.json", report)];
    for name in [journal::EVENTS_FILE, journal::PATCH_FILE] {
        if let Ok(bytes) = std::fs::read(run.journal.join(name)) {
            files.push((name, bytes));
        }
    }
    let contents: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
    let blobs = repo.write_blobs(&contents)?;
    let entries: Vec<(&str, &str)> = files
        .iter()
        .zip(&blobs)
        .map(|((n, _), b)| (*n, b.as_str()))
        .collect();
    let tree = repo.mktree(&entries)?;
    let verdict = serde_json::to_value(run.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let message = format!(
        "baton result of task {task} in sweep {}: {verdict}\n\nBaton-Sweep: {}\nBaton-Task: {task}\nBaton-Run: {}\nBaton-Verdict: {verdict}\n",
        sweep.id, sweep.id, run.run_id
    );
    Ok(repo.commit_tree(&tree, &[&candidate], &message)?)
}

// ---------------------------------------------------------------------------------
// Reading the results and the branch
// ---------------------------------------------------------------------------------

/// A result on the remote, read.
struct Found {
    oid: String,
    report: RunReport,
    /// The candidate commit (the result's first parent), when the run made a tree.
    candidate: Option<String>,
}

/// Fetches every result of the sweep; by task.
fn fetch_results(
    repo: &Repo,
    remote: &Remote,
    sweep: &SweepRef,
) -> Result<BTreeMap<String, std::result::Result<Found, String>>> {
    // Into a namespace of their own, pruned: exactly what the remote has, never a
    // result this repository made and could not push (a worker's, under its own name).
    let theirs = format!("{RESULTS_PREFIX}/{}/", sweep.id);
    let mine = format!("{FETCHED_PREFIX}/{}/", sweep.id);
    repo.fetch(&remote.url, &[format!("+{theirs}*:{mine}*")], true)?;
    let mut out = BTreeMap::new();
    for (name, oid) in repo.refs()? {
        let Some(task) = name.strip_prefix(&mine) else {
            continue;
        };
        out.insert(task.to_string(), read_result(repo, &oid));
    }
    Ok(out)
}

fn read_result(repo: &Repo, oid: &str) -> std::result::Result<Found, String> {
    let bytes = repo
        .file_at(oid, "report.json")
        .ok_or("its commit has no report.json")?;
    let report: RunReport =
        serde_json::from_slice(&bytes).map_err(|e| format!("its report.json: {e}"))?;
    let info = repo.commit_info(oid).map_err(|e| e.to_string())?;
    let parent = info.parents.first().cloned();
    let candidate = match (&report.tree, parent) {
        (Some(tree), Some(p)) => {
            // The candidate must hold the tree the report judged.
            if repo.tree_of(&p).ok().as_ref() != Some(tree) {
                return Err("its candidate commit's tree is not the one its report judged".into());
            }
            Some(p)
        }
        _ => None,
    };
    Ok(Found {
        oid: oid.to_string(),
        report,
        candidate,
    })
}

/// The tasks of the sweep on the branch: by the trailers of the commits since the
/// base, each task's landed commit.
fn landed_on(repo: &Repo, sweep: &SweepRef, tip: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (oid, message) in repo.messages_since(&sweep.base, tip)? {
        if trailer(&message, "Baton-Sweep") != Some(sweep.id.as_str()) {
            continue;
        }
        if let Some(task) = trailer(&message, "Baton-Task") {
            out.entry(task.to_string()).or_insert(oid);
        }
    }
    Ok(out)
}

/// What became of one task of a remote sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteTask {
    pub id: String,
    /// The result's verdict (`passed`, `checks_failed`, …), or `missing`.
    pub result: String,
    pub landed: bool,
    /// Why it did not land (`null` once landed): the result's verdict, `missing`,
    /// `conflict`, `integration_failed`, `queued` (passed, not landed yet), `error`.
    pub reason: Option<String>,
    /// Where the work is: the landed commit, or the result ref.
    #[serde(rename = "where")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A remote sweep's report (`sweep land`, `sweep status --remote`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteReport {
    pub sweep_id: String,
    pub remote: String,
    pub target: String,
    pub base: String,
    /// The branch's tip when the report was made.
    pub tip: String,
    pub landed: usize,
    pub total: usize,
    pub missing: usize,
    /// The sweep's open ref was removed: its task file opens a new sweep next time.
    pub closed: bool,
    pub interrupted: bool,
    pub tasks: Vec<RemoteTask>,
    pub queue: QueueStats,
    pub exit_code: i32,
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Each task as the results and the branch say, the queue's decisions over them.
fn task_rows(
    file: &TaskFile,
    sweep: &SweepRef,
    results: &BTreeMap<String, std::result::Result<Found, String>>,
    landed: &BTreeMap<String, String>,
    decisions: &HashMap<String, Decision>,
    target: &str,
) -> Vec<RemoteTask> {
    file.tasks
        .iter()
        .map(|t| {
            let name = result_ref(&sweep.id, &t.id);
            let mut row = RemoteTask {
                id: t.id.clone(),
                result: "missing".into(),
                landed: false,
                reason: Some("missing".into()),
                location: None,
                commit: None,
                result_ref: None,
                run_id: None,
                paths: vec![],
                check: None,
                detail: None,
            };
            match results.get(&t.id) {
                None => {
                    row.detail = Some(format!("no worker pushed {name} yet"));
                }
                Some(Err(e)) => {
                    row.result = "damaged".into();
                    row.reason = Some("error".into());
                    row.result_ref = Some(name.clone());
                    row.location = Some(format!("result {name}"));
                    row.detail = Some(format!("{name}: {e}"));
                }
                Some(Ok(r)) => {
                    row.result = verdict_name(r.report.verdict);
                    row.run_id = Some(r.report.run_id.clone());
                    row.result_ref = Some(name.clone());
                    row.location = Some(format!("result {name} ({})", short(&r.oid)));
                    if !r.report.verdict.passed() {
                        row.reason = Some(row.result.clone());
                        row.check = r
                            .report
                            .checks
                            .iter()
                            .find(|c| !c.status.passed())
                            .map(|c| c.command.clone());
                    } else if let Some(e) = &r.report.error {
                        row.reason = Some("error".into());
                        row.detail = Some(e.clone());
                    } else {
                        row.reason = Some("queued".into());
                    }
                }
            }
            if let Some(commit) = landed.get(&t.id) {
                row.landed = true;
                row.reason = None;
                row.location = Some(format!("commit {} on {target}", short(commit)));
                row.commit = Some(commit.clone());
                return row;
            }
            match decisions.get(&t.id) {
                Some(Decision::Conflict { paths, .. }) => {
                    row.reason = Some("conflict".into());
                    row.paths = paths.clone();
                }
                Some(Decision::IntegrationFailed { check, status, .. }) => {
                    row.reason = Some("integration_failed".into());
                    row.check = Some(check.clone());
                    row.detail = Some(format!("`{check}` {status} merged onto {target}"));
                }
                Some(Decision::Landed { commit, .. }) => {
                    row.landed = true;
                    row.reason = None;
                    row.location = Some(format!("commit {} on {target}", short(commit)));
                    row.commit = Some(commit.clone());
                }
                _ => {}
            }
            row
        })
        .collect()
}

fn summary(
    sweep: &SweepRef,
    remote: &Remote,
    tip: String,
    tasks: Vec<RemoteTask>,
    queue: QueueStats,
    closed: bool,
    interrupted: bool,
) -> RemoteReport {
    let landed = tasks.iter().filter(|t| t.landed).count();
    let missing = tasks.iter().filter(|t| t.result == "missing").count();
    let total = tasks.len();
    RemoteReport {
        sweep_id: sweep.id.clone(),
        remote: remote.url.clone(),
        target: remote.name().to_string(),
        base: sweep.base.clone(),
        tip,
        landed,
        total,
        missing,
        closed,
        interrupted,
        tasks,
        queue,
        exit_code: exit::for_sweep(landed == total, interrupted),
    }
}

/// What `sweep land` and `sweep status --remote` are asked.
pub struct RemoteOptions {
    pub source: Source,
    pub url: String,
    pub branch: Option<String>,
    pub cwd: PathBuf,
    /// The sweep the task file must be the file of (`--sweep`).
    pub sweep: Option<String>,
    /// Take the lease from a lander that holds it (`--take-over`).
    pub take_over: bool,
    /// Candidates tested together (`--batch`, over the file's `[sweep] batch`).
    pub batch: Option<usize>,
}

/// The remote and branch of a sweep named by `opts`: the branch the record names when
/// the sweep is given by id.
fn remote_for(repo: &Repo, opts: &RemoteOptions) -> Result<Remote> {
    let id = match (&opts.source, &opts.sweep) {
        (Source::Id(id), _) | (_, Some(id)) => Some(id),
        _ => None,
    };
    match (id, &opts.branch) {
        (Some(id), None) => {
            // The record says which branch; the remote's HEAD may be another.
            let name = base_ref(id);
            if repo.ls_remote(&opts.url, &[&name])?.is_empty() {
                return Err(RemoteError::NoSuchSweep {
                    sweep: id.clone(),
                    url: opts.url.clone(),
                }
                .into());
            }
            repo.fetch(&opts.url, &[format!("+{name}:{name}")], false)?;
            let record = repo.ref_target(&name).unwrap_or_default();
            let sweep = read_record(repo, &opts.url, &record)?;
            Remote::resolve(repo, &opts.url, Some(&sweep.target))
        }
        (_, b) => Remote::resolve(repo, &opts.url, b.as_deref()),
    }
}

/// `baton sweep status TASKS|SWEEP --remote URL`: which tasks have results, which
/// landed, which are missing. Reads only; opens nothing.
pub fn status(opts: &RemoteOptions) -> Result<RemoteReport> {
    let (repo, _) = workspace(&opts.cwd, &opts.url)?;
    let remote = remote_for(&repo, opts)?;
    let (sweep, bytes) =
        resolve_source(&repo, &remote, &opts.source, opts.sweep.as_deref(), false)?;
    same_branch(&sweep, &remote)?;
    let path = PathBuf::from(&sweep.file_name);
    let file = load(&repo, &opts.cwd, &path, &bytes, &remote.branch)?;
    let tip = remote.fetch_tip(&repo)?;
    let results = fetch_results(&repo, &remote, &sweep)?;
    let landed = landed_on(&repo, &sweep, &tip)?;
    let open = !repo
        .ls_remote(&remote.url, &[&open_ref(&sweep.key)])?
        .is_empty();
    let rows = task_rows(
        &file,
        &sweep,
        &results,
        &landed,
        &HashMap::new(),
        remote.name(),
    );
    let mut report = summary(
        &sweep,
        &remote,
        tip,
        rows,
        QueueStats::default(),
        !open,
        false,
    );
    report.exit_code = exit::OK;
    Ok(report)
}

// ---------------------------------------------------------------------------------
// The lander
// ---------------------------------------------------------------------------------

/// The lander's lease on a sweep, as this lander holds it.
struct Lease {
    url: String,
    sweep: String,
    holder: Holder,
    /// The lease commit on the remote now.
    current: String,
    beats: u64,
}

impl Lease {
    /// A new commit of the lease (each push of the branch moves it, so a lease that
    /// was taken over fails the push).
    fn beat(&mut self, repo: &Repo) -> Result<String> {
        self.beats += 1;
        let tree = repo.mktree(&[])?;
        let message = format!(
            "baton lander of sweep {}\n\nBaton-Sweep: {}\n{}Baton-Beat: {} {}\n",
            self.sweep,
            self.sweep,
            self.holder.trailers(),
            self.beats,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        Ok(repo.commit_tree(&tree, &[], &message)?)
    }

    /// Takes the lease of `sweep`: a new one if nobody holds it; the one a dead lander
    /// of this repository on this host left; anyone's with `take_over`.
    fn acquire(repo: &Repo, url: &str, sweep: &str, take_over: bool) -> Result<Lease> {
        let name = lease_ref(sweep);
        let mut lease = Lease {
            url: url.to_string(),
            sweep: sweep.to_string(),
            holder: Holder::me(repo),
            current: String::new(),
            beats: 0,
        };
        for _ in 0..5 {
            let held = repo.ls_remote(url, &[&name])?.get(&name).cloned();
            let expect = match held {
                None => Expect::Absent,
                Some(old) => {
                    repo.fetch(url, &[format!("+{name}:{name}")], false)?;
                    let message = repo
                        .commit_info(&old)
                        .map(|i| i.message)
                        .unwrap_or_default();
                    let holder = Holder::parse(&message);
                    let mine = holder.as_ref().is_some_and(|h| {
                        h.host == lease.holder.host
                            && h.repo == lease.holder.repo
                            && !process::running(h.pid, h.pid_start)
                    });
                    if !(mine || take_over) {
                        let (who, since) = match &holder {
                            Some(h) => (h.describe(), format!("{} (unix time)", h.since)),
                            None => ("a lander baton cannot name".into(), "?".into()),
                        };
                        return Err(RemoteError::LeaseHeld {
                            sweep: sweep.to_string(),
                            holder: who,
                            since,
                        }
                        .into());
                    }
                    Expect::At(old)
                }
            };
            let new = lease.beat(repo)?;
            let pushed = repo.push(
                url,
                &[RefUpdate {
                    src: Some(new.clone()),
                    dst: name.clone(),
                    expect,
                }],
            )?;
            if pushed == Pushed::Done {
                lease.current = new;
                return Ok(lease);
            }
        }
        Err(RemoteError::Refused {
            url: url.into(),
            what: name,
            reason: "the lease could not be taken".into(),
        }
        .into())
    }

    /// Gives the lease back (only if it is still this lander's).
    fn release(&self, repo: &Repo) {
        let _ = repo.push(
            &self.url,
            &[RefUpdate {
                src: None,
                dst: lease_ref(&self.sweep),
                expect: Expect::At(self.current.clone()),
            }],
        );
    }

    /// Who holds the lease now, when it is not this lander.
    fn lost(&self, repo: &Repo) -> Option<String> {
        let name = lease_ref(&self.sweep);
        let now = repo
            .ls_remote(&self.url, &[&name])
            .ok()?
            .get(&name)
            .cloned();
        match now {
            Some(oid) if oid == self.current => None,
            Some(oid) => {
                repo.fetch(&self.url, &[format!("+{name}:{name}")], false)
                    .ok()?;
                let message = repo.commit_info(&oid).map(|i| i.message).ok()?;
                Some(
                    Holder::parse(&message)
                        .map(|h| h.describe())
                        .unwrap_or_else(|| short(&oid).to_string()),
                )
            }
            None => Some("nobody (it was removed)".into()),
        }
    }
}

/// The queue's publisher for a remote: the branch pushed with a lease on the tested
/// tip, atomically with a beat of the lander's lease.
struct PushBranch<'a> {
    remote: &'a Remote,
    lease: &'a mut Lease,
    /// Each task's candidate commit on the remote (under its result ref).
    verified: HashMap<String, String>,
}

impl Publisher for PushBranch<'_> {
    fn target_name(&self) -> String {
        self.remote.name().to_string()
    }

    fn trailers(&self, task: &str) -> Vec<String> {
        vec![format!("Baton-Task: {task}")]
    }

    fn verified_commit(&self, task: &str) -> Option<String> {
        self.verified.get(task).cloned()
    }

    fn publish(&mut self, repo: &Repo, tip: &str, new: &str) -> Result<bool> {
        let beat = self.lease.beat(repo)?;
        let pushed = repo.push(
            &self.remote.url,
            &[
                RefUpdate {
                    src: Some(new.to_string()),
                    dst: self.remote.branch.clone(),
                    expect: Expect::At(tip.to_string()),
                },
                RefUpdate {
                    src: Some(beat.clone()),
                    dst: lease_ref(&self.lease.sweep),
                    expect: Expect::At(self.lease.current.clone()),
                },
            ],
        )?;
        match pushed {
            Pushed::Done => {
                self.lease.current = beat;
                repo.set_ref(&self.remote.upstream(), new, "baton sweep land: pushed")?;
                Ok(true)
            }
            Pushed::Refused(refused) => {
                if let Some(holder) = self.lease.lost(repo) {
                    return Err(RemoteError::LeaseLost {
                        sweep: self.lease.sweep.clone(),
                        holder,
                    }
                    .into());
                }
                // Someone else pushed the branch: its new tip is tested on next.
                let now = self.remote.fetch_tip(repo)?;
                if now != tip {
                    return Ok(false);
                }
                Err(RemoteError::Refused {
                    url: self.remote.url.clone(),
                    what: self.remote.name().to_string(),
                    reason: refused
                        .iter()
                        .map(|(r, why)| format!("{r} {why}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                }
                .into())
            }
        }
    }
}

/// `baton sweep land TASKS|SWEEP --remote URL`: every passing result of the sweep
/// through the merge queue, the branch pushed with a lease; the sweep closed once
/// every task has a result.
pub fn land(opts: &RemoteOptions, observers: Vec<Box<dyn SweepObserver>>) -> Result<RemoteReport> {
    let (repo, _) = workspace(&opts.cwd, &opts.url)?;
    repo.check_identity()?;
    let remote = remote_for(&repo, opts)?;
    let (sweep, bytes) = resolve_source(&repo, &remote, &opts.source, opts.sweep.as_deref(), true)?;
    same_branch(&sweep, &remote)?;
    let dir = repo
        .common_dir
        .join("baton")
        .join("landers")
        .join(&sweep.id);
    let journal = Arc::new(SweepJournal::at(dir.clone())?);
    let path = dir.join(&sweep.file_name);
    std::fs::write(&path, &bytes).map_err(|source| Error::Io {
        context: format!("cannot write {}", path.display()),
        source,
    })?;
    let file = load(&repo, &opts.cwd, &path, &bytes, &remote.branch)?;
    let mut lease = Lease::acquire(&repo, &remote.url, &sweep.id, opts.take_over)?;
    // A killed lander's landing worktrees (the queue names them `<sweep>-land-<n>`
    // and starts again at 1) go first.
    let prefix = format!("{}-land-", sweep.id);
    for wt in repo.worktrees()? {
        let ours = wt
            .path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
        if ours {
            let _ = crate::worktree::remove_detached(&repo, &wt.path);
        }
    }
    let _ = crate::worktree::prune(&repo);
    let result = land_with(
        &repo,
        &remote,
        &sweep,
        &file,
        journal.clone(),
        observers,
        &mut lease,
    );
    lease.release(&repo);
    let report = result?;
    let _ = journal.write("report.json", &report);
    Ok(report)
}

fn land_with(
    repo: &Repo,
    remote: &Remote,
    sweep: &SweepRef,
    file: &TaskFile,
    journal: Arc<SweepJournal>,
    observers: Vec<Box<dyn SweepObserver>>,
    lease: &mut Lease,
) -> Result<RemoteReport> {
    let tip = remote.fetch_tip(repo)?;
    let results = fetch_results(repo, remote, sweep)?;
    let landed = landed_on(repo, sweep, &tip)?;
    let events = SweepEvents::new(&sweep.id, journal.clone(), observers);
    let first = file.tasks.first().map(|t| &t.plan);
    let cfg = QueueConfig {
        sweep_id: sweep.id.clone(),
        target: remote.upstream(),
        gate: file.queue.gate.clone(),
        flaky_retries: file.queue.flaky_retries.unwrap_or(1),
        batch: file
            .queue
            .batch
            .unwrap_or_else(|| queue::default_batch(file.tasks.len())),
        on_fail: crate::report::Policy::Keep,
        worktrees_dir: first
            .map(|p| p.worktrees_dir.clone())
            .unwrap_or_else(std::env::temp_dir),
        logs: journal.dir.join("checks"),
        check_timeout: file
            .tasks
            .iter()
            .map(|t| t.plan.check_timeout)
            .max()
            .unwrap_or(crate::config::DEFAULT_CHECK_TIMEOUT),
        kill_grace: first
            .map(|p| p.kill_grace)
            .unwrap_or(crate::config::DEFAULT_KILL_GRACE),
    };
    events.emit(sweep::SweepEvent::Started {
        tasks: file.tasks.len(),
        jobs: 0,
        batch: cfg.batch,
        target: remote.name().to_string(),
        format_version: sweep::FORMAT_VERSION,
    })?;
    let mut verified = HashMap::new();
    let mut candidates = vec![];
    for t in &file.tasks {
        if landed.contains_key(&t.id) {
            continue;
        }
        if let Some(Ok(r)) = results.get(&t.id) {
            if r.report.verdict.passed() && r.report.error.is_none() && r.report.tree.is_some() {
                if let Some(c) = &r.candidate {
                    verified.insert(t.id.clone(), c.clone());
                }
                candidates.push(Candidate {
                    task: t.id.clone(),
                    report: r.report.clone(),
                });
            }
        }
    }
    let no_runs = |_: &str| -> Vec<Box<dyn Observer>> { vec![] };
    let mut decisions: HashMap<String, Decision> = HashMap::new();
    let stats = {
        let publisher = PushBranch {
            remote,
            lease,
            verified,
        };
        let mut queue = Queue::new(repo, cfg, &events, &no_runs).publish_with(Box::new(publisher));
        for c in candidates {
            queue.push(c)?;
        }
        while queue.waiting() > 0 && !process::interrupted() {
            for d in queue.round()? {
                decisions.insert(d.task, d.decision);
            }
        }
        queue.stats().clone()
    };
    let interrupted = process::interrupted();
    let tip = remote.fetch_tip(repo)?;
    let landed = landed_on(repo, sweep, &tip)?;
    let rows = task_rows(file, sweep, &results, &landed, &decisions, remote.name());
    let missing = rows.iter().any(|r| r.result == "missing");
    // Every task decided: the file's next run is a new sweep from the branch then.
    let closed = !missing && !interrupted && close(repo, remote, sweep)?;
    let report = summary(sweep, remote, tip, rows, stats, closed, interrupted);
    events.emit(sweep::SweepEvent::Finished {
        exit_code: report.exit_code,
        landed: report.landed,
        total: report.total,
    })?;
    Ok(report)
}

/// A task file ready to be planned: read, every task resolved, against the remote.
pub struct PlanInput {
    repo: Repo,
    remote: Remote,
    bytes: Vec<u8>,
    /// The task file's text.
    pub text: String,
    /// Its path relative to the repository's root (with `/`), where a machine's
    /// checkout has it; its name when it is not in the repository.
    pub task_file: String,
    pub tasks: usize,
    /// The branch the sweep lands on, by name.
    pub target: String,
}

/// `baton sweep plan`, first half: the task file read and resolved (every task), the
/// remote and its branch checked. Nothing is pushed yet.
pub fn plan_input(cwd: &Path, file: &Path, url: &str, branch: Option<&str>) -> Result<PlanInput> {
    let bytes = read_file(file)?;
    let (repo, own) = workspace(cwd, url)?;
    let remote = Remote::resolve(&repo, url, branch)?;
    let tip = remote.fetch_tip(&repo)?;
    if own {
        repo.checkout_detached(&tip)?;
    }
    let tasks = load(&repo, cwd, file, &bytes, &remote.branch)?.tasks.len();
    let root = repo
        .root
        .canonicalize()
        .unwrap_or_else(|_| repo.root.clone());
    let task_file = file
        .canonicalize()
        .ok()
        .and_then(|f| {
            f.strip_prefix(&root)
                .ok()
                .map(|r| r.to_string_lossy().replace('\\', "/"))
        })
        .filter(|_| !own)
        .unwrap_or_else(|| file_name_of(file));
    Ok(PlanInput {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        target: remote.name().to_string(),
        repo,
        remote,
        bytes,
        task_file,
        tasks,
    })
}

/// `baton sweep plan`, second half: the sweep opened (or the one the file has open),
/// so that the manifest can name it.
pub fn plan_open(input: &PlanInput, file: &Path) -> Result<SweepRef> {
    input.repo.check_identity()?;
    sweep_of(&input.repo, &input.remote, file, &input.bytes, None, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stem_is_safe_for_a_ref() {
        assert_eq!(stem_of("fixes.toml"), "fixes");
        assert_eq!(stem_of("my bugs!.md"), "my-bugs");
        assert_eq!(stem_of(".toml"), "toml");
        assert_eq!(stem_of("???.toml"), "sweep");
    }

    #[test]
    fn a_holder_reads_back_what_it_wrote() {
        let h = Holder {
            host: "pod-7".into(),
            repo: "/work/clone/.git".into(),
            pid: 42,
            pid_start: Some(99),
            since: 1_700_000_000,
        };
        let message = format!("baton lander\n\n{}", h.trailers());
        assert_eq!(Holder::parse(&message), Some(h));
    }

    #[test]
    fn a_trailer_is_read_from_the_end_of_a_message() {
        let m = "subject\n\nBaton-Sweep: a\nBaton-Task: t1\n";
        assert_eq!(trailer(m, "Baton-Task"), Some("t1"));
        assert_eq!(trailer(m, "Baton-Run"), None);
    }
}

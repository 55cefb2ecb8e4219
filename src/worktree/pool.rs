//! The worktree pool: a finished run's worktree is taken back to a commit (tracked
//! files as the commit has them, every other file gone but the declared build
//! directories), detached, and kept for the next run, which moves it to its own base
//! with a checkout that rewrites only the files that differ. Unchanged files keep
//! their mtimes, so the build directories stay valid, and the second run costs
//! O(changed files) instead of a whole checkout and removal.
//!
//! The registry (`<common dir>/baton/pool.json`) says which worktrees are free,
//! leased, or no longer trusted; it is only read and written under the worktrees
//! lock, so two runs never lease the same worktree.
//!
//! Trust: a pooled worktree is reused only when nothing has been written in it since
//! baton returned it. The return ends by reading the filesystem's clock; a lease
//! walks the worktree (the build directories left out) and refuses it if any file or
//! directory — or the worktree's index or HEAD — has a later ctime. ctime cannot be
//! set by a program, so an edit, a new file, a deletion (its directory's ctime), a
//! `chmod` or a `git add` by hand are all seen; such a worktree is never reset by
//! baton (it may hold someone's work): `baton status` shows it, and only
//! `baton clean --pool --force` removes it.
//!
//! A killed baton's lease is found by its dead pid: when no run's journal claims the
//! worktree, it is returned again; when one does, the run's `recover` owns it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Worktree, WorktreeError};
use crate::config::Config;
use crate::git::Repo;
use crate::journal::RepoLock;

/// What `git worktree list` shows as the lock reason of a free pooled worktree.
pub const POOL_REASON: &str = "baton pool: free, for the next baton run to lease";

/// The pool's limits and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// How many free worktrees are kept (0: no pool).
    pub size: usize,
    /// The disk budget of the free worktrees.
    pub max_bytes: u64,
    /// A free worktree unused for longer is removed.
    pub max_age: Duration,
    /// The build directories, relative to the worktree's root: kept on return.
    pub keep: Vec<String>,
}

impl PoolSettings {
    /// The pool's settings in `config`, for the repository at `root` (whose
    /// `.worktreeinclude` may name build directories too).
    pub fn of(config: &Config, root: &Path) -> PoolSettings {
        let w = &config.worktree;
        // The build directories as the warm caches declare them; a declaration that
        // cannot be read (refused when the run was planned) keeps nothing.
        let keep = super::warm::WarmSpec::resolve(config, root)
            .map(|spec| spec.entries)
            .unwrap_or_default();
        PoolSettings {
            size: w.pool.unwrap_or(crate::config::DEFAULT_POOL),
            max_bytes: w
                .pool_max_size
                .unwrap_or(crate::config::DEFAULT_POOL_MAX_SIZE),
            max_age: w
                .pool_max_age
                .unwrap_or(crate::config::DEFAULT_POOL_MAX_AGE),
            keep,
        }
    }

    /// The settings of the repository's configuration; a configuration that cannot
    /// be read (it was checked when the run began) turns the pool off.
    pub fn load(repo: &Repo) -> PoolSettings {
        let root = repo.main_root().unwrap_or_else(|| repo.root.clone());
        Config::load(&root)
            .map(|c| PoolSettings::of(&c, &root))
            .unwrap_or_else(|_| PoolSettings::off())
    }

    pub fn off() -> PoolSettings {
        PoolSettings {
            size: 0,
            max_bytes: 0,
            max_age: Duration::ZERO,
            keep: vec![],
        }
    }
}

/// One pooled worktree, as the registry records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    /// The commit it was taken back to (detached HEAD).
    pub commit: String,
    /// When it was returned (ms since the epoch), for the age limit and LRU order.
    pub returned_ms: u64,
    /// The filesystem's clock when baton's last write of the return was done
    /// (nanoseconds since the epoch): anything later was written by someone else.
    pub clock_ns: u64,
    /// Disk use: the tracked part and the build directories.
    pub bytes: u64,
    /// A run that is taking it; a dead pid here is a killed baton's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Why it is not reused (something wrote it after it was pooled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    pub run_id: String,
    pub pid: u32,
    #[serde(default)]
    pub pid_start: Option<u64>,
}

impl Entry {
    fn free(&self) -> bool {
        self.lease.is_none() && self.untrusted.is_none()
    }

    /// A lease whose baton is gone.
    pub fn stale_lease(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| !crate::process::running(l.pid, l.pid_start))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    #[serde(default)]
    entries: Vec<Entry>,
}

fn registry_path(repo: &Repo) -> PathBuf {
    repo.common_dir.join("baton").join("pool.json")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorktreeError + '_ {
    move |source| WorktreeError::Pool {
        path: path.to_path_buf(),
        source,
    }
}

/// The registry; a damaged one is read as empty (its worktrees are still git's
/// linked worktrees, locked with [`POOL_REASON`], and `baton clean` finds them so).
fn load(repo: &Repo) -> Registry {
    std::fs::read(registry_path(repo))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(repo: &Repo, registry: &Registry) -> Result<(), WorktreeError> {
    crate::journal::write_atomic(&registry_path(repo), registry, false)?;
    Ok(())
}

/// Reads, changes and writes the registry under the worktrees lock.
fn update<T>(repo: &Repo, f: impl FnOnce(&mut Registry) -> T) -> Result<T, WorktreeError> {
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    let mut registry = load(repo);
    let out = f(&mut registry);
    save(repo, &registry)?;
    Ok(out)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A pooled worktree taken for a run, not yet moved to the run's base.
#[derive(Debug)]
pub struct Claim {
    pub path: PathBuf,
    /// The commit it holds now.
    pub commit: String,
}

/// Takes the most recently returned trusted worktree of the pool for `run_id`, or
/// `None` (no pool, or nothing free). Free worktrees past the age limit are removed
/// on the way. A worktree written since it was pooled is marked untrusted and left
/// as it is.
pub fn claim(
    repo: &Repo,
    settings: &PoolSettings,
    run_id: &str,
) -> Result<Option<Claim>, WorktreeError> {
    if settings.size == 0 {
        return Ok(None);
    }
    loop {
        let now = now_ms();
        let max_age = settings.max_age.as_millis() as u64;
        let (picked, expired) = update(repo, |reg| {
            let (expired, kept): (Vec<Entry>, Vec<Entry>) = reg.entries.drain(..).partition(|e| {
                e.free() && max_age > 0 && now.saturating_sub(e.returned_ms) > max_age
            });
            reg.entries = kept;
            // A pooled worktree whose directory someone removed is forgotten (git's
            // record of it goes with the next prune).
            reg.entries.retain(|e| e.lease.is_some() || e.path.exists());
            let picked = reg
                .entries
                .iter_mut()
                .filter(|e| e.free() && e.path.exists())
                .max_by_key(|e| e.returned_ms)
                .map(|e| {
                    e.lease = Some(Lease {
                        run_id: run_id.to_string(),
                        pid: std::process::id(),
                        pid_start: crate::process::own_start_time(),
                    });
                    e.clone()
                });
            (picked, expired)
        })?;
        for e in expired {
            let _ = remove_worktree(repo, &e.path);
        }
        let Some(entry) = picked else {
            return Ok(None);
        };
        match untouched_since(&entry.path, entry.clock_ns, &settings.keep) {
            Ok(tracked) => {
                // Kept for the return's disk report, which then walks only the build
                // directories.
                if let Some(admin) = Repo::worktree_admin_dir(&entry.path) {
                    let _ = std::fs::write(admin.join(TRACKED_BYTES), tracked.to_string());
                }
                return Ok(Some(Claim {
                    path: entry.path,
                    commit: entry.commit,
                }));
            }
            Err(why) => {
                update(repo, |reg| {
                    if let Some(e) = reg.entries.iter_mut().find(|e| e.path == entry.path) {
                        e.lease = None;
                        e.untrusted = Some(why);
                    }
                })?;
            }
        }
    }
}

impl Claim {
    /// Moves the claimed worktree to `commit` (on `branch` when given, else
    /// detached) and locks it for the run with `reason`; the pool forgets it, as the
    /// worktree is now the run's (its journal names it). On failure the worktree is
    /// removed: it is in no state worth trusting, and holds nobody's work.
    ///
    /// With `keep_lease` the pool keeps the lease instead (a worktree for checking a
    /// tree, which no journal names): a killed baton's lease is then found by its
    /// dead pid, and the worktree goes back to the pool.
    pub fn check_out(
        self,
        repo: &Repo,
        branch: Option<&str>,
        commit: &str,
        reason: &str,
        keep_lease: bool,
    ) -> Result<Worktree, WorktreeError> {
        let moved = repo
            .worktree_move(&self.path, &self.commit, commit, branch)
            .map_err(WorktreeError::Create)
            .and_then(|()| Repo::set_worktree_lock(&self.path, reason).map_err(io_err(&self.path)))
            .and_then(|()| {
                repo.submodules_checkout(&self.path, commit)
                    .map(drop)
                    .map_err(WorktreeError::Submodules)
            });
        let forget = if keep_lease && moved.is_ok() {
            Ok(())
        } else {
            update(repo, |reg| reg.entries.retain(|e| e.path != self.path))
        };
        if let Err(e) = moved {
            let _ = remove_worktree(repo, &self.path);
            if let Some(b) = branch {
                let _ = repo.branch_delete(b);
            }
            return Err(e);
        }
        forget?;
        Ok(Worktree {
            path: self.path,
            branch: branch.unwrap_or_default().to_string(),
            base: commit.to_string(),
        })
    }
}

/// While above zero, nothing is returned to the pool (see [`suspend`]).
static SUSPENDED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Until the guard is dropped, worktrees given back are removed instead of pooled:
/// `recover` holds one for a killed run whose agent had started, since a process of
/// that agent's that nobody recorded (spawned in the instant before baton was killed)
/// could still write into the worktree after the next run leased it.
pub fn suspend() -> Suspended {
    SUSPENDED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Suspended(())
}

/// See [`suspend`].
pub struct Suspended(());

impl Drop for Suspended {
    fn drop(&mut self) {
        SUSPENDED.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Returns the worktree at `path` to the pool, taken back to `commit`, its branch
/// (when it has one) deleted. `Ok(false)` when it was not pooled — no pool, or a
/// worktree the pool does not take (one with submodules) — and the caller removes it.
/// The caller has saved what it wanted to keep of the worktree.
pub fn give_back(
    repo: &Repo,
    settings: &PoolSettings,
    path: &Path,
    branch: Option<&str>,
    commit: &str,
) -> Result<bool, WorktreeError> {
    let suspended = SUSPENDED.load(std::sync::atomic::Ordering::SeqCst) > 0;
    if suspended || settings.size == 0 || !path.is_dir() || path.join(".gitmodules").exists() {
        return Ok(false);
    }
    // A warm copy a killed baton left half-made beside the worktree goes first.
    super::warm::remove_partial(path);
    // The worktree is still locked for its run while it is taken back, so nobody
    // leases it half-reset; a failure leaves it to be removed.
    repo.worktree_reset(path, commit, &settings.keep)
        .map_err(WorktreeError::Remove)?;
    if let Some(b) = branch.filter(|b| !b.is_empty()) {
        if repo.branch_delete(b).is_err() && repo.branch_exists(b) {
            return Ok(false);
        }
    }
    Repo::set_worktree_lock(path, POOL_REASON).map_err(io_err(path))?;
    let bytes = disk_use(path, &settings.keep);

    // The last of baton's writes is done: anything written after this clock's
    // reading was written by someone else.
    let clock = super::file_clock(path).map_err(io_err(path))?;
    let entry = Entry {
        path: path.to_path_buf(),
        commit: commit.to_string(),
        returned_ms: now_ms(),
        clock_ns: nanos(clock),
        bytes,
        lease: None,
        untrusted: None,
    };
    let evicted = update(repo, |reg| {
        reg.entries.retain(|e| e.path != entry.path);
        reg.entries.push(entry);
        evict(&mut reg.entries, settings)
    })?;
    for e in &evicted {
        let _ = remove_worktree(repo, &e.path);
    }
    Ok(!evicted.iter().any(|e| e.path == path))
}

/// The free entries beyond the pool's size or disk budget, least recently used
/// first, taken out of `entries`.
fn evict(entries: &mut Vec<Entry>, settings: &PoolSettings) -> Vec<Entry> {
    let mut free: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].free()).collect();
    // Most recently returned first: those are kept.
    free.sort_by_key(|&i| std::cmp::Reverse(entries[i].returned_ms));
    let mut total = 0u64;
    let mut out = vec![];
    for (n, &i) in free.iter().enumerate() {
        total = total.saturating_add(entries[i].bytes);
        if n >= settings.size || total > settings.max_bytes {
            out.push(i);
        }
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.into_iter().map(|i| entries.remove(i)).collect()
}

fn remove_worktree(repo: &Repo, path: &Path) -> Result<(), WorktreeError> {
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    repo.worktree_remove(path).map_err(WorktreeError::Remove)
}

/// Ok (with the tracked part's disk use) when nothing in `dir` — the build
/// directories `keep` left out — nor its index or HEAD has a ctime after
/// `clock_ns`; else what was written.
fn untouched_since(dir: &Path, clock_ns: u64, keep: &[String]) -> Result<u64, String> {
    let later = |meta: &std::fs::Metadata| {
        let ns = (meta.ctime().max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec().max(0) as u64);
        ns > clock_ns
    };
    if let Some(admin) = Repo::worktree_admin_dir(dir) {
        for name in ["index", "HEAD"] {
            if let Ok(meta) = std::fs::symlink_metadata(admin.join(name)) {
                if later(&meta) {
                    return Err(format!("its {name} changed after baton pooled it"));
                }
            }
        }
    } else {
        return Err("it is no longer a linked worktree of this repository".into());
    }
    if later(&std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?) {
        return Err(changed(dir, dir));
    }
    walk(
        dir,
        &|path| !keep.is_empty() && is_kept(dir, path, keep),
        &|path, meta| {
            if later(meta) {
                Err(changed(dir, path))
            } else {
                Ok(())
            }
        },
    )
}

/// Every entry under `root` but those `skip` names (and what lies in them), each
/// given to `visit` with its stat data, on as many threads as there are cores: a
/// walk of 100,000 files is all system calls, which run side by side. Returns the
/// disk use of the files visited, or the first error `visit` gave.
fn walk(
    root: &Path,
    skip: &(dyn Fn(&Path) -> bool + Sync),
    visit: &(dyn Fn(&Path, &std::fs::Metadata) -> Result<(), String> + Sync),
) -> Result<u64, String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Condvar, Mutex};
    // The directories still to read, and how many are being read.
    let queue = Mutex::new((vec![root.to_path_buf()], 0usize));
    let wake = Condvar::new();
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let bytes = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let read = |d: &Path, subdirs: &mut Vec<PathBuf>| -> Result<u64, String> {
        let mut used = 0u64;
        for entry in std::fs::read_dir(d).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            if skip(&path) {
                continue;
            }
            let meta = entry.metadata().map_err(|e| e.to_string())?;
            visit(&path, &meta)?;
            if meta.is_dir() {
                subdirs.push(path);
            } else {
                used = used.saturating_add(meta.blocks() * 512);
            }
        }
        Ok(used)
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let lock = || queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let d = {
                        let mut q = lock();
                        loop {
                            let stop = failed.lock().map(|f| f.is_some()).unwrap_or(true);
                            if stop {
                                return;
                            }
                            if let Some(d) = q.0.pop() {
                                q.1 += 1;
                                break d;
                            }
                            if q.1 == 0 {
                                return;
                            }
                            q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let mut subdirs = vec![];
                    let result = read(&d, &mut subdirs);
                    let mut q = lock();
                    q.0.extend(subdirs);
                    q.1 -= 1;
                    match result {
                        Ok(used) => {
                            bytes.fetch_add(used, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                    wake.notify_all();
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(bytes.into_inner()),
    }
}

fn changed(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let shown = if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        crate::ui::quote_path(&rel.to_string_lossy()).to_string()
    };
    format!("{shown} was written after baton pooled it")
}

/// Whether `path` (in the worktree at `root`) is one of the build directories
/// (`target`, `web/node_modules`): the walk skips it whole.
fn is_kept(root: &Path, path: &Path, keep: &[String]) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let rel = rel.to_string_lossy();
    keep.iter().any(|k| k == rel.as_ref())
}

/// Where a lease leaves the disk use of a worktree's tracked part, which its walk
/// measured, so that the return need not walk the whole worktree again.
const TRACKED_BYTES: &str = "baton-tracked-bytes";

/// Disk use of the worktree at `dir`, in bytes: the tracked part as its lease
/// measured it (walked here for a worktree never leased), and the build directories.
fn disk_use(dir: &Path, keep: &[String]) -> u64 {
    let tracked = Repo::worktree_admin_dir(dir)
        .and_then(|a| std::fs::read_to_string(a.join(TRACKED_BYTES)).ok())
        .and_then(|t| t.trim().parse::<u64>().ok());
    match tracked {
        Some(t) => keep
            .iter()
            .map(|k| du(&dir.join(k)))
            .fold(t, u64::saturating_add),
        None => du(dir),
    }
}

/// Disk use of everything under `dir`, in bytes.
pub fn disk_use_of(dir: &Path) -> u64 {
    du(dir)
}

fn du(dir: &Path) -> u64 {
    walk(dir, &|_| false, &|_, _| Ok(())).unwrap_or(0)
}

/// The pool's entries, for `baton status`.
pub fn entries(repo: &Repo) -> Vec<Entry> {
    load(repo).entries
}

/// What `baton clean --pool` did.
#[derive(Debug, Default)]
pub struct Emptied {
    pub removed: usize,
    pub bytes: u64,
    /// Untrusted worktrees left in place (they may hold someone's work), and why.
    pub kept: Vec<(PathBuf, String)>,
}

/// Removes the pool's free worktrees (and, with `force`, the untrusted ones too).
/// Worktrees leased by a live run are left to it.
pub fn empty(repo: &Repo, force: bool) -> Result<Emptied, WorktreeError> {
    let (gone, kept) = update(repo, |reg| {
        let (gone, stay): (Vec<Entry>, Vec<Entry>) = reg
            .entries
            .drain(..)
            .partition(|e| e.lease.is_none() && (e.untrusted.is_none() || force));
        let kept = stay
            .iter()
            .filter_map(|e| e.untrusted.clone().map(|why| (e.path.clone(), why)))
            .collect::<Vec<_>>();
        reg.entries = stay;
        (gone, kept)
    })?;
    let mut out = Emptied {
        kept,
        ..Emptied::default()
    };
    for e in gone {
        remove_worktree(repo, &e.path)?;
        out.removed += 1;
        out.bytes += e.bytes;
    }
    // Pooled worktrees the registry lost (a damaged pool.json) still carry the
    // pool's lock reason.
    for wt in repo.worktrees().map_err(WorktreeError::Remove)? {
        if wt.branch.is_none()
            && Repo::worktree_lock_reason(&wt.path).as_deref() == Some(POOL_REASON)
            && !load(repo).entries.iter().any(|e| e.path == wt.path)
        {
            remove_worktree(repo, &wt.path)?;
            out.removed += 1;
        }
    }
    let _ = super::prune(repo);
    Ok(out)
}

/// Leases of killed batons: a worktree no run's journal names goes back to the pool
/// (no agent can have run in it); one a run names is that run's, for its recovery.
/// `claimed` are the worktree paths the journal's runs name. Returns how many leases
/// were taken back.
pub fn recover_leases(
    repo: &Repo,
    settings: &PoolSettings,
    claimed: &[PathBuf],
) -> Result<usize, WorktreeError> {
    let stale = update(repo, |reg| {
        let (stale, live): (Vec<Entry>, Vec<Entry>) =
            reg.entries.drain(..).partition(Entry::stale_lease);
        reg.entries = live;
        stale
    })?;
    let mut n = 0;
    for e in stale {
        if claimed.contains(&e.path) {
            continue;
        }
        n += 1;
        let branch = Repo::worktree_branch(&e.path);
        if !give_back(repo, settings, &e.path, branch.as_deref(), &e.commit).unwrap_or(false) {
            remove_worktree(repo, &e.path)?;
            if let Some(b) = branch {
                let _ = repo.branch_delete(&b);
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, returned_ms: u64, bytes: u64) -> Entry {
        Entry {
            path: PathBuf::from(path),
            commit: "c".into(),
            returned_ms,
            clock_ns: 0,
            bytes,
            lease: None,
            untrusted: None,
        }
    }

    fn settings(size: usize, max_bytes: u64) -> PoolSettings {
        PoolSettings {
            size,
            max_bytes,
            max_age: Duration::from_secs(60),
            keep: vec![],
        }
    }

    #[test]
    fn the_least_recently_used_go_first_beyond_the_size_and_the_budget() {
        let mut entries = vec![entry("/a", 1, 10), entry("/b", 3, 10), entry("/c", 2, 10)];
        let gone = evict(&mut entries, &settings(2, 100));
        assert_eq!(
            gone.iter().map(|e| e.path.clone()).collect::<Vec<_>>(),
            [PathBuf::from("/a")]
        );
        let gone = evict(&mut entries, &settings(5, 15));
        assert_eq!(
            gone.iter().map(|e| e.path.clone()).collect::<Vec<_>>(),
            [PathBuf::from("/c")]
        );
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, PathBuf::from("/b"));
    }

    #[test]
    fn leased_and_untrusted_worktrees_are_never_evicted() {
        let mut entries = vec![entry("/a", 1, 10), entry("/b", 2, 10)];
        entries[0].untrusted = Some("edited".into());
        entries[1].lease = Some(Lease {
            run_id: "r".into(),
            pid: 1,
            pid_start: None,
        });
        assert!(evict(&mut entries, &settings(0, 0)).is_empty());
    }
}

//! The worktree stage: where a run works. A new branch `baton/<run-id>` from the base
//! commit, checked out in a locked linked worktree outside the repository (in the
//! per-user data directory), so the repository's own build tools never take it for
//! part of the project. With `--include-dirty` the base is a snapshot commit of the
//! user's uncommitted work, made without touching the user's tree or index.
//!
//! Its submodules are checked out from the user's own local copies of them (never
//! fetched; the user's copies are only read), so the agent sees what the user sees.
//! A submodule the user has no copy of stays an empty directory.

pub mod pool;
pub mod warm;

use std::path::{Path, PathBuf};

use crate::git::{GitError, Repo};
use crate::journal::RepoLock;

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("cannot create worktrees in {}: it is not a writable directory; set {} or `[worktree] dir` in .baton/config.toml to one that is", dir.display(), crate::config::WORKTREES_ENV)]
    Unwritable { dir: PathBuf },
    #[error("the worktrees directory {} is inside the repository {}; set {} or `[worktree] dir` to a directory outside it (the default is ~/.local/share/baton/worktrees)", dir.display(), repo.display(), crate::config::WORKTREES_ENV)]
    InsideRepository { dir: PathBuf, repo: PathBuf },
    #[error("could not create the run's worktree")]
    Create(#[source] GitError),
    #[error(
        "could not check out the submodules of the run's worktree from your local copies of them"
    )]
    Submodules(#[source] GitError),
    #[error("could not remove the run's worktree")]
    Remove(#[source] GitError),
    #[error("could not snapshot your uncommitted changes")]
    Snapshot(#[source] GitError),
    #[error("could not update the worktree pool at {}: {source}", path.display())]
    Pool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::journal::JournalError),
}

/// A run's worktree, as created.
#[derive(Debug, Clone)]
pub struct Worktree {
    pub path: PathBuf,
    pub branch: String,
    pub base: String,
}

/// The lock reason of a run's worktree (`name`: the run's id, or `<id>-aN` for a later
/// attempt): what `git worktree list` shows, and how baton tells whose it is now.
pub fn run_lock_reason(name: &str) -> String {
    format!("baton run {name} (pid {})", std::process::id())
}

/// Whether the worktree at `path` is still the one of the run whose branch is
/// `branch`: a finished run's worktree may since have gone to the pool, and on to
/// another run. Its lock reason says; one with no lock (older runs) by its branch.
pub fn holds_run(path: &Path, branch: &str) -> bool {
    if !path.exists() {
        return false;
    }
    let name = branch.trim_start_matches("baton/");
    match Repo::worktree_lock_reason(path) {
        Some(reason) => reason.starts_with(&format!("baton run {name} ")),
        None => Repo::worktree_branch(path).as_deref() == Some(branch),
    }
}

/// The id of the run whose worktree `path` is now, by its lock reason
/// ([`run_lock_reason`]); a later attempt's `<id>-aN` names run `<id>`.
pub fn run_holding(path: &Path) -> Option<String> {
    let reason = Repo::worktree_lock_reason(path)?;
    let name = reason.strip_prefix("baton run ")?.split(' ').next()?;
    // An id has two dashes (`20261201-120000-1a2b`); `-aN` after it is an attempt.
    let id = match name.rsplit_once("-a") {
        Some((id, n))
            if !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && id.matches('-').count() >= 2 =>
        {
            id
        }
        _ => name,
    };
    Some(id.to_string())
}

pub fn branch_name(run_id: &str) -> String {
    format!("baton/{run_id}")
}

/// A stable, short directory name for a repository: its name and a hash of where its
/// git directory lives, so two clones named alike do not share a directory.
fn repo_key(repo: &Repo) -> String {
    let path = repo.common_dir.to_string_lossy();
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in path.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    let name = repo
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    format!("{name}-{:08x}", hash as u32)
}

/// `path` made absolute with `.` and `..` taken out, and symlinks resolved as far as
/// the path exists, so it can be compared with the repository's (canonical) root.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // The longest part that exists, canonicalized, then the rest as written.
    let mut existing = clean.clone();
    let mut rest = vec![];
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return clean,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}

/// Where the worktree of `run_id` goes, after checking the directory is outside the
/// repository and can be written. The path is absolute.
pub fn location(worktrees_dir: &Path, repo: &Repo, run_id: &str) -> Result<PathBuf, WorktreeError> {
    let worktrees_dir = resolved(worktrees_dir);
    // A worktree inside the repository would show in the user's `git status` as an
    // untracked directory, and its build tools would take it for part of the project.
    let roots = [Some(repo.root.clone()), repo.main_root()];
    for root in roots.into_iter().flatten() {
        let root = root.canonicalize().unwrap_or(root);
        if worktrees_dir.starts_with(&root) {
            return Err(WorktreeError::InsideRepository {
                dir: worktrees_dir,
                repo: root,
            });
        }
    }
    let dir = worktrees_dir.join(repo_key(repo));
    if !crate::process::dir_writable(&dir) {
        return Err(WorktreeError::Unwritable {
            dir: worktrees_dir.to_path_buf(),
        });
    }
    Ok(dir.join(run_id))
}

/// With uncommitted changes in the user's tree, a commit on top of HEAD that holds them
/// (staged, unstaged and untracked-but-not-ignored); `None` when the tree is clean.
pub fn dirty_base(repo: &Repo, head: &str, run_id: &str) -> Result<Option<String>, WorktreeError> {
    let tree = repo
        .snapshot_tree(&repo.root)
        .map_err(WorktreeError::Snapshot)?;
    let head_tree = repo.tree_of(head).map_err(WorktreeError::Snapshot)?;
    if tree == head_tree {
        return Ok(None);
    }
    let message = format!("baton: uncommitted changes at the start of run {run_id}\n");
    repo.commit_tree(&tree, &[head], &message)
        .map(Some)
        .map_err(WorktreeError::Snapshot)
}

pub fn create(
    repo: &Repo,
    path: &Path,
    run_id: &str,
    base: &str,
) -> Result<Worktree, WorktreeError> {
    let branch = branch_name(run_id);
    let reason = run_lock_reason(run_id);
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    repo.worktree_add(path, &branch, base, &reason)
        .map_err(WorktreeError::Create)?;
    if let Err(e) = repo.submodules_checkout(path, base) {
        // Half a worktree is no use to anyone: take it back before saying why.
        let _ = repo.worktree_remove(path);
        let _ = repo.branch_delete(&branch);
        return Err(WorktreeError::Submodules(e));
    }
    Ok(Worktree {
        path: path.to_path_buf(),
        branch,
        base: base.to_string(),
    })
}

/// A worktree with `commit` checked out detached, for verifying a tree before any
/// branch holds it (a change merged onto a branch that moved, a staged tree), with
/// its submodules checked out as [`create`] does: checks that read or build a
/// submodule see what the user sees, not an empty directory.
pub fn create_detached(repo: &Repo, path: &Path, commit: &str) -> Result<Worktree, WorktreeError> {
    let reason = format!("baton verification (pid {})", std::process::id());
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    repo.worktree_add_detached(path, commit, &reason)
        .map_err(WorktreeError::Create)?;
    if let Err(e) = repo.submodules_checkout(path, commit) {
        // Half a worktree would fail the checks for a reason that is not theirs.
        let _ = repo.worktree_remove(path);
        return Err(WorktreeError::Submodules(e));
    }
    Ok(Worktree {
        path: path.to_path_buf(),
        branch: String::new(),
        base: commit.to_string(),
    })
}

/// A worktree with `commit` checked out detached, for checking a tree: leased from
/// the pool when it has one free (true), else created at `path`. Either way its
/// submodules are checked out (the pool's lease does it too; the pool takes no
/// worktree with a `.gitmodules` back, so such a worktree is always created afresh
/// after its first use).
pub fn detached(
    repo: &Repo,
    settings: &pool::PoolSettings,
    run_id: &str,
    path: &Path,
    commit: &str,
) -> Result<(Worktree, bool), WorktreeError> {
    if let Some(claim) = pool::claim(repo, settings, run_id)? {
        let reason = format!("baton check of run {run_id} (pid {})", std::process::id());
        if let Ok(wt) = claim.check_out(repo, None, commit, &reason, true) {
            return Ok((wt, true));
        }
    }
    create_detached(repo, path, commit).map(|wt| (wt, false))
}

/// Done with a worktree of [`detached`]: back to the pool, else removed.
pub fn retire_detached(
    repo: &Repo,
    settings: &pool::PoolSettings,
    path: &Path,
    commit: &str,
) -> Result<(), WorktreeError> {
    if let Ok(true) = pool::give_back(repo, settings, path, None, commit) {
        return Ok(());
    }
    remove_detached(repo, path)
}

/// Removes a worktree that has no branch of its own (see [`create_detached`]).
pub fn remove_detached(repo: &Repo, path: &Path) -> Result<(), WorktreeError> {
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    repo.worktree_remove(path).map_err(WorktreeError::Remove)
}

/// A run's worktree that is done with (its change saved or landed): back to the
/// pool, taken back to `commit`, when the pool takes it; else removed with its
/// branch. A worktree that cannot be taken back cleanly is removed.
pub fn retire(repo: &Repo, path: &Path, branch: &str, commit: &str) -> Result<(), WorktreeError> {
    let settings = pool::PoolSettings::load(repo);
    if let Ok(true) = pool::give_back(repo, &settings, path, Some(branch), commit) {
        return Ok(());
    }
    remove(repo, path, branch)
}

/// Removes a run's worktree and branch. The caller has saved what it wanted to keep.
pub fn remove(repo: &Repo, path: &Path, branch: &str) -> Result<(), WorktreeError> {
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    repo.worktree_remove(path).map_err(WorktreeError::Remove)?;
    if let Err(e) = repo.branch_delete(branch) {
        if repo.branch_exists(branch) {
            return Err(WorktreeError::Remove(e));
        }
    }
    // What a seeding killed halfway left beside the worktree goes with it.
    warm::remove_partial(path);
    if let Some(parent) = path.parent() {
        // Only removes the per-repository directory when no other run uses it.
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// The time now by the clock the filesystem of the worktree at `path` stamps files
/// with: the kernel's coarse clock (which lags the real-time clock by up to a tick),
/// at that filesystem's granularity. Every file written after this has a ctime no
/// earlier than it, which is what telling the agent's writes from the checkout's needs.
pub fn file_clock(path: &Path) -> std::io::Result<std::time::SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().unwrap_or(path);
    let mark = tempfile::Builder::new()
        .prefix(".baton-clock-")
        .tempfile_in(dir)?;
    let meta = mark.as_file().metadata()?;
    let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    Ok(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// Drops git's records of worktrees whose directories are gone.
pub fn prune(repo: &Repo) -> Result<(), WorktreeError> {
    let _lock = RepoLock::worktrees(&repo.common_dir)?;
    repo.prune_worktrees().map_err(WorktreeError::Remove)
}

/// The content of the worktree's `.git` file, which ties it to the repository. An
/// agent that rewrites it could point git (and baton's judgement) at another place.
pub fn git_link(path: &Path) -> Option<String> {
    std::fs::read_to_string(path.join(".git")).ok()
}

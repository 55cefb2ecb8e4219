//! The index as a landing target: a verified fix of the staged tree written back into
//! the index a commit is being made from, and into the working tree only where that
//! cannot lose an edit of the user's.
//!
//! Under the repository lock and git's own lock on that index file:
//!
//! 1. the index must still hold the tree that was checked (else nothing is written:
//!    the user, or a tool, staged something else while the agent worked);
//! 2. each file the fix changes is planned: where the working-tree file still equals
//!    its old staged content it is overwritten with the fix; where the user has
//!    unstaged edits the fix is merged into their version (3-way, from the old staged
//!    content); a conflict anywhere means nothing is written at all;
//! 3. a backup of the index's entries and the working-tree files at those paths goes
//!    under `refs/baton/backup/<run>` (announced with the one command that restores
//!    it), then the whole plan is recorded in the run's journal as an [`IndexWrite`]
//!    intent, synced, before any file changes;
//! 4. the working-tree files are written, then the index is replaced in one rename.
//!
//! A baton killed in the middle leaves the intent: [`resolve`] finishes (the index
//! was replaced: everything is written) or undoes it (the index is as it was: the
//! files baton wrote get the user's content back, and no file the user changed since
//! is touched). Never a stash, never a checkout over the user's files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::git::{Entry, GitError, Repo};
use crate::journal::{Journal, RepoLock};
use crate::outcome::{Landing, Operation, OutcomeError, Resolution};
use crate::report::{OutcomeAction, OutcomeReport};
use crate::{process, worktree};

type Result<T> = std::result::Result<T, OutcomeError>;

/// The journal file that marks a run as a pre-commit run (its base is the staged
/// tree, and it lands in the index): what `baton merge RUN --apply` goes by.
pub const RECORD_FILE: &str = "precommit.json";

/// The last write into the index, kept after it is done (the intent is removed):
/// what `baton precommit --restore` tells apart from the user's later edits.
pub const WRITE_FILE: &str = "index-write.json";

/// What the pre-commit workflow records about its run, in the run's journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub format_version: u32,
    /// The index file the commit was being made from when the run started.
    pub index: PathBuf,
    /// The staged tree the checks failed on (the tree of the run's base).
    pub staged_tree: String,
    /// The paths staged in it (against HEAD): the delegated fix's scope by default.
    pub staged_paths: Vec<String>,
}

/// True when the run of `journal` started from the staged tree (`baton precommit`).
pub fn is_index_run(journal: &Journal) -> bool {
    journal.path(RECORD_FILE).exists()
}

/// Where baton keeps the backup taken before it changes anything of the user's for
/// run `run_id`.
pub fn backup_ref(run_id: &str) -> String {
    format!("refs/baton/backup/{run_id}")
}

/// The command that puts everything the backup of `run_id` holds back.
pub fn restore_command(run_id: &str) -> String {
    format!("baton precommit --restore {run_id}")
}

/// One write into the user's index and working tree, as recorded before it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexWrite {
    /// The index file written.
    pub index: PathBuf,
    /// Its tree before (the checked staged tree) and after (the fixed tree).
    pub from: String,
    pub to: String,
    /// The entries the index gets at the changed paths (`None`: removed).
    pub entries: BTreeMap<String, Option<Entry>>,
    /// The working-tree files at those paths before (as hashed then; `None`: no file)
    /// and what baton writes there; a path missing from `after` is left alone.
    pub before: BTreeMap<String, Option<Entry>>,
    pub after: BTreeMap<String, Option<Entry>>,
    /// The backup of all of it.
    pub backup: String,
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

fn conflict(message: String, paths: Vec<String>) -> OutcomeReport {
    OutcomeReport {
        action: OutcomeAction::Conflict,
        message,
        commit: None,
        target: None,
        stash: None,
        paths,
    }
}

fn quote_all(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| crate::ui::quote_path(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_file(e: &Entry) -> bool {
    e.mode == "100644" || e.mode == "100755"
}

/// Lands the fix `l.tree` of the staged tree `tree_of(l.base)` in the index file
/// `index` and the working tree, as the module says. `notify` hears the backup and
/// its restore command before anything of the user's changes.
pub fn to_index(l: &Landing, index: &Path, notify: &mut dyn FnMut(&str)) -> Result<OutcomeReport> {
    let repo = l.repo;
    let _lock = RepoLock::acquire(&repo.common_dir)?;
    let retry = format!(
        "the fix is kept: `baton show {id}`, and `baton merge {id} --apply` lands it later",
        id = l.run_id
    );
    let from = repo.tree_of(l.base)?;
    let moved = |now: &str| {
        conflict(
            format!(
                "the index changed while the fix was made (it held {}, it holds {} now), so nothing was written; {retry}",
                short(&from),
                short(now)
            ),
            vec![],
        )
    };
    // A first look without the lock; the plan and the backup are made before git's
    // lock on the index is taken, so that a baton killed while it holds that lock
    // has recorded its intent (and `recover` can take the lock away).
    let now = repo.index_tree(index)?;
    if now != from {
        return Ok(moved(&now));
    }
    let changes = repo.diff_trees(&from, l.tree)?;
    let mut paths: Vec<String> = vec![];
    for c in &changes {
        paths.push(c.path.clone());
        if let Some(old) = &c.old_path {
            paths.push(old.clone());
        }
    }
    paths.sort();
    paths.dedup();
    let staged = repo.tree_entries(&from, &paths)?;
    let fixed = repo.tree_entries(l.tree, &paths)?;

    // The plan, path by path; a conflict anywhere and nothing is written.
    let mut before = BTreeMap::new();
    let mut after = BTreeMap::new();
    let mut conflicts = vec![];
    for p in &paths {
        let (old, new) = (staged.get(p), fixed.get(p));
        let file = stored_entry(repo, p)?;
        if file.is_none() && std::fs::symlink_metadata(repo.root.join(p)).is_ok() {
            // A directory where the file was: nothing baton may overwrite.
            conflicts.push(p.clone());
            continue;
        }
        before.insert(p.clone(), file.clone());
        if file.as_ref() == new {
            continue; // the user's file already is the fix
        }
        if file.as_ref() == old {
            after.insert(p.clone(), new.cloned());
            continue;
        }
        // Unstaged edits of the user's: the fix merged into their version.
        match (old, file.as_ref(), new) {
            (Some(o), Some(f), Some(n)) if is_file(o) && is_file(f) && is_file(n) => {
                match repo.merge_blobs(&o.oid, &f.oid, &n.oid)? {
                    Some(merged) => {
                        // Their file's mode stays, unless the fix changed the mode.
                        let mode = if n.mode != o.mode { &n.mode } else { &f.mode };
                        after.insert(p.clone(), Some(Entry::new(mode, &merged)));
                    }
                    None => conflicts.push(p.clone()),
                }
            }
            _ => conflicts.push(p.clone()),
        }
    }
    if !conflicts.is_empty() {
        return Ok(conflict(
            format!(
                "the fix conflicts with your unstaged changes in {}, so nothing was written (your index and files are as they were); {retry}",
                quote_all(&conflicts)
            ),
            conflicts,
        ));
    }

    backup(repo, l, &from, &paths, &before)?;
    notify(&format!(
        "your index and the files the fix touches are saved as {} — `{}` puts them back",
        backup_ref(l.run_id),
        restore_command(l.run_id)
    ));
    let locked = match repo.lock_index(index) {
        Ok(lock) => lock,
        Err(e @ GitError::IndexLocked { .. }) => {
            return Ok(conflict(format!("{e}; {retry}"), vec![]));
        }
        Err(e) => return Err(e.into()),
    };
    // Under the lock, the compare of the compare-and-swap: the index, and the files
    // as planned (an editor may have saved one since).
    let now = locked.tree(repo)?;
    if now != from {
        return Ok(moved(&now));
    }
    let edited: Vec<String> = before
        .iter()
        .filter(|(p, e)| on_disk(repo, p).as_ref() != e.as_ref())
        .map(|(p, _)| p.clone())
        .collect();
    if !edited.is_empty() {
        return Ok(conflict(
            format!(
                "{} changed while the fix was being written, so nothing was written; {retry}",
                quote_all(&edited)
            ),
            edited,
        ));
    }
    let entries: BTreeMap<String, Option<Entry>> = paths
        .iter()
        .map(|p| (p.clone(), fixed.get(p).cloned()))
        .collect();
    let write = IndexWrite {
        index: index.to_path_buf(),
        from: from.clone(),
        to: l.tree.to_string(),
        entries: entries.clone(),
        before,
        after: after.clone(),
        backup: backup_ref(l.run_id),
    };
    if let Ok(text) = serde_json::to_vec_pretty(&write) {
        l.journal.write_file(WRITE_FILE, &text)?;
    }
    l.journal.begin(&crate::outcome::Intent {
        pid: std::process::id(),
        pid_start: process::own_start_time(),
        op: Operation::Index(write),
    })?;
    process::crash_point("precommit.intent");
    write_worktree(repo, &after)?;
    process::crash_point("precommit.worktree");
    locked.commit(repo, &entries)?;
    process::crash_point("precommit.index");
    also_in_the_index_git_keeps(repo, index, &staged, &entries)?;
    worktree::retire(repo, l.worktree, l.branch, l.base)?;
    let merged = after
        .iter()
        .filter(|(p, e)| e.as_ref() != fixed.get(*p))
        .count();
    let how = if merged == 0 {
        String::new()
    } else {
        format!(
            " ({} merged with your unstaged changes, which stay unstaged)",
            crate::report::count(merged, "file")
        )
    };
    Ok(OutcomeReport {
        action: OutcomeAction::Applied,
        message: format!(
            "the fix is in your index and working tree{how}; `{}` puts everything back",
            restore_command(l.run_id)
        ),
        commit: None,
        target: Some("index".into()),
        stash: None,
        paths,
    })
}

/// `git commit PATHS` commits from a temporary index (`next-index-*.lock`) while it
/// holds the real one as `index.lock`, which becomes the index after the commit: the
/// fix goes there too, at the paths where that index holds what was staged, or the
/// commit would leave the fix unstaged and its reversal staged.
fn also_in_the_index_git_keeps(
    repo: &Repo,
    index: &Path,
    staged: &BTreeMap<String, Entry>,
    entries: &BTreeMap<String, Option<Entry>>,
) -> Result<()> {
    let partial = index
        .file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with("next-index-") && n.ends_with(".lock"));
    let Some(kept) = index.parent().map(|d| d.join("index.lock")) else {
        return Ok(());
    };
    if !partial || !kept.exists() {
        return Ok(());
    }
    let paths: Vec<String> = entries.keys().cloned().collect();
    let there = repo.index_entries_of(&kept, &paths)?;
    let same: BTreeMap<String, Option<Entry>> = entries
        .iter()
        .filter(|(p, _)| there.get(*p) == staged.get(*p))
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect();
    if same.is_empty() {
        return Ok(());
    }
    // git holds this one's lock (it is the lock file); baton's lock is its `.lock`.
    repo.lock_index(&kept)?.commit(repo, &same)?;
    Ok(())
}

/// The working-tree file at `path` as git would store it (no content filters), its
/// bytes written to the object store so that a merge, the backup and an undo have
/// them; `None` when there is no file (or a directory) there.
fn stored_entry(repo: &Repo, path: &str) -> Result<Option<Entry>> {
    use std::os::unix::fs::PermissionsExt;
    let full = repo.root.join(path);
    let Ok(meta) = std::fs::symlink_metadata(&full) else {
        return Ok(None);
    };
    let mode = if meta.file_type().is_symlink() {
        "120000"
    } else if !meta.is_file() {
        return Ok(None);
    } else if meta.permissions().mode() & 0o111 != 0 {
        "100755"
    } else {
        "100644"
    };
    let Some(bytes) = read_worktree(&full) else {
        return Ok(None);
    };
    let oid = repo.write_blobs(&[&bytes])?.pop().unwrap_or_default();
    Ok(Some(Entry::new(mode, &oid)))
}

/// Records the index's entries and the working-tree files at `paths` as they are now:
/// a commit holding the index's tree (parent: HEAD), and above it a commit holding
/// that tree with the working-tree files at `paths` instead, under
/// [`backup_ref`]. Never the stash: the user's stash is not baton's to fill.
fn backup(
    repo: &Repo,
    l: &Landing,
    index_tree: &str,
    paths: &[String],
    files: &BTreeMap<String, Option<Entry>>,
) -> Result<String> {
    // The files' bytes are in the object store already (see `stored_entry`).
    let head = repo.head()?.commit;
    let index_commit = repo.commit_tree(
        index_tree,
        &[&head],
        &format!("baton backup of the index before run {}\n", l.run_id),
    )?;
    let worktree_tree = repo.tree_with(index_tree, files)?;
    let mut message = format!(
        "baton backup before run {} wrote its fix into the index\n\nThe first parent is HEAD, the second the index; this tree is the index with the working-tree files at:\n\n",
        l.run_id
    );
    for p in paths {
        message.push_str(&format!("  {}\n", crate::ui::quote_path(p)));
    }
    let commit = repo.commit_tree(&worktree_tree, &[&head, &index_commit], &message)?;
    let reference = backup_ref(l.run_id);
    let old = repo
        .ref_target(&reference)
        .unwrap_or_else(|| "0".repeat(40));
    repo.update_ref(
        &reference,
        &commit,
        &old,
        "baton: backup before a pre-commit fix",
    )?;
    Ok(commit)
}

/// The bytes git would store for the working-tree file at `path` (a symlink's target).
fn read_worktree(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        Some(
            std::fs::read_link(path)
                .ok()?
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else {
        std::fs::read(path).ok()
    }
}

/// Makes the working-tree files at the paths of `files` hold those entries (`None`:
/// removed), each written beside its place and renamed over it, so a file is never
/// seen half written.
pub(crate) fn write_worktree(repo: &Repo, files: &BTreeMap<String, Option<Entry>>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let wanted: Vec<(&String, &Entry)> = files
        .iter()
        .filter_map(|(p, e)| e.as_ref().map(|e| (p, e)))
        .collect();
    let oids: Vec<&str> = wanted.iter().map(|(_, e)| e.oid.as_str()).collect();
    let blobs = repo.blobs(&oids)?;
    let io = |path: &Path| {
        let context = format!("could not write {}", path.display());
        move |source| GitError::Io { context, source }
    };
    for ((p, e), bytes) in wanted.iter().zip(blobs) {
        let path = repo.root.join(p);
        let dir = path.parent().unwrap_or(&repo.root);
        std::fs::create_dir_all(dir).map_err(io(&path))?;
        let tmp = dir.join(format!(".baton-write-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if e.mode == "120000" {
            use std::os::unix::ffi::OsStringExt;
            let target = std::ffi::OsString::from_vec(bytes);
            std::os::unix::fs::symlink(target, &tmp).map_err(io(&path))?;
        } else {
            std::fs::write(&tmp, &bytes).map_err(io(&path))?;
            let mode = if e.mode == "100755" { 0o755 } else { 0o644 };
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                .map_err(io(&path))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
    }
    for (p, _) in files.iter().filter(|(_, e)| e.is_none()) {
        let path = repo.root.join(p);
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// What stands at `path` in the working tree, hashed (nothing written); `None` when
/// no file is there.
fn on_disk(repo: &Repo, path: &str) -> Option<Entry> {
    repo.worktree_entry(path).filter(|e| e.mode != "040000")
}

/// Finishes or undoes an [`IndexWrite`] a killed baton left (under the repository
/// lock, which the caller holds). The index replaced: every file was written before
/// it, so the landing is done. The index as it was, or gone (`git commit -a`'s
/// temporary index is removed when the commit stops): the files that hold what baton
/// wrote get the user's content back; a file the user changed since is left alone.
/// The index holding anything else: the user has moved on, nothing is touched.
pub fn resolve(l: &Landing, w: &IndexWrite) -> Result<Resolution> {
    let repo = l.repo;
    // baton held git's lock on the index from before the intent until the rename; a
    // lock file still there is its own (no git could take the lock while it stood),
    // and would stop every git command of the user's.
    let mut lock = w.index.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    if lock.exists() {
        std::fs::remove_file(&lock).map_err(|source| GitError::Io {
            context: format!("could not remove baton's stale lock {}", lock.display()),
            source,
        })?;
    }
    let now = if w.index.exists() {
        Some(repo.index_tree(&w.index)?)
    } else {
        None
    };
    if now.as_deref() == Some(w.to.as_str()) {
        worktree::retire(repo, l.worktree, l.branch, l.base)?;
        return Ok(Resolution::Done(OutcomeReport {
            action: OutcomeAction::Applied,
            message: format!(
                "the fix is in your index and working tree (finished by `baton recover`); `{}` puts everything back",
                restore_command(l.run_id)
            ),
            commit: None,
            target: Some("index".into()),
            stash: None,
            paths: w.entries.keys().cloned().collect(),
        }));
    }
    if now.is_some() && now.as_deref() != Some(w.from.as_str()) {
        return Ok(Resolution::Stuck(format!(
            "baton was stopped while writing a pre-commit fix into your index, and the index has changed since; nothing was touched — `{}` puts back what you had, and the fix is kept on branch {}",
            restore_command(l.run_id),
            l.branch
        )));
    }
    let undo: BTreeMap<String, Option<Entry>> = w
        .after
        .iter()
        .filter(|(p, written)| on_disk(repo, p).as_ref() == written.as_ref())
        .filter_map(|(p, _)| Some((p.clone(), w.before.get(p)?.clone())))
        .collect();
    write_worktree(repo, &undo)?;
    Ok(Resolution::Undone)
}

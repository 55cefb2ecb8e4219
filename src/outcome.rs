//! The outcome stage: what becomes of a judged run — merged onto the user's branch,
//! applied as uncommitted changes, reverted, stashed, or kept. Landing is computed in
//! memory first; a conflict, an overlap with the user's uncommitted work, or a branch
//! that moved meanwhile writes nothing and keeps the run (a verdict, not an error).
//! Every change to the user's repository happens under the per-repository lock, and
//! is written to the journal as an [`Intent`] before it is made, so that a baton
//! killed halfway (SIGKILL, a power cut) leaves something [`resolve`] can finish or
//! undo: never a half-applied merge, never a lost change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::git::{Change, ChangeKind, Entry, GitError, Repo, TreeMerge};
use crate::journal::{Journal, JournalError, RepoLock};
use crate::report::{OutcomeAction, OutcomeReport, RunReport};
use crate::{process, worktree};

#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Worktree(#[from] worktree::WorktreeError),
}

type Result<T> = std::result::Result<T, OutcomeError>;

/// Everything the outcome needs to know about a judged run.
pub struct Landing<'a> {
    pub repo: &'a Repo,
    pub run_id: &'a str,
    pub task: &'a str,
    /// The commit the worktree started from.
    pub base: &'a str,
    /// The judged tree: the whole state of the worktree.
    pub tree: &'a str,
    pub branch: &'a str,
    pub worktree: &'a Path,
    /// The base is a snapshot of the user's uncommitted work, so the change can only
    /// land as uncommitted changes on top of it.
    pub include_dirty: bool,
    /// The commit message, trailers included.
    pub message: &'a str,
    /// Where the intent of each change to the user's repository is recorded first.
    pub journal: &'a Journal,
}

impl<'a> Landing<'a> {
    /// The landing of `tree` for the run `report` describes (its current attempt's
    /// branch and worktree); callers change what differs.
    pub fn of_run(
        repo: &'a Repo,
        journal: &'a Journal,
        report: &'a RunReport,
        tree: &'a str,
        message: &'a str,
    ) -> Landing<'a> {
        Landing {
            repo,
            run_id: &report.run_id,
            task: &report.task,
            base: &report.base,
            tree,
            branch: &report.branch,
            worktree: &report.worktree,
            include_dirty: report.include_dirty,
            message,
            journal,
        }
    }
}

/// One change to the user's repository (or the end of a run's only record of its
/// change), as recorded before it is made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Operation {
    /// The user's index and tree go from `from` to `to` at `paths` (`read-tree -m
    /// -u`), then `target` moves from `old` to `new` (compare and swap).
    Merge {
        target: String,
        old: String,
        new: String,
        from: String,
        to: String,
        paths: Vec<String>,
        /// This run's own commit when several land together (a merge queue's batch:
        /// `new` is the last of them); absent when `new` is the run's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
    },
    /// The user's index and tree go from `from` to `to` at `paths`; no ref moves.
    Apply {
        from: String,
        to: String,
        paths: Vec<String>,
    },
    /// Files of the user's working tree go from their content in `from` (the user's
    /// work when the run began) to their content in `to`; the index is not touched.
    ApplyDirty {
        from: String,
        to: String,
        paths: Vec<String>,
    },
    /// The stash commit `stash` (already made) goes into the stash list.
    Stash { stash: String, message: String },
    /// Only baton's worktree and branch go.
    Revert,
    /// A pre-commit fix goes into the index a commit is made from, and into the
    /// working tree where that loses nothing (see `workflow::precommit::land`).
    Index(crate::workflow::precommit::land::IndexWrite),
}

/// An [`Operation`] and the process that set out to do it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intent {
    pub pid: u32,
    #[serde(default)]
    pub pid_start: Option<u64>,
    #[serde(flatten)]
    pub op: Operation,
}

impl Intent {
    /// True while the process that recorded it still runs (it may yet finish it).
    pub fn in_progress(&self) -> bool {
        self.pid != std::process::id() && process::running(self.pid, self.pid_start)
    }
}

/// Paths for a message a person reads, quoted as git quotes them.
fn quote_all(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| crate::ui::quote_path(p))
        .collect::<Vec<_>>()
        .join(", ")
}

fn begin(l: &Landing, op: Operation) -> Result<()> {
    l.journal.begin(&Intent {
        pid: std::process::id(),
        pid_start: process::own_start_time(),
        op,
    })?;
    Ok(())
}

/// Forgets an intent that was not carried out (a refusal after it was recorded).
fn abandon(l: &Landing) {
    let _ = l.journal.done();
}

fn report(action: OutcomeAction, message: String) -> OutcomeReport {
    OutcomeReport {
        action,
        message,
        commit: None,
        target: None,
        stash: None,
        paths: vec![],
    }
}

fn conflict(message: String, paths: Vec<String>) -> OutcomeReport {
    OutcomeReport {
        paths,
        ..report(OutcomeAction::Conflict, message)
    }
}

/// Every path a change touches, old sides of renames included.
pub(crate) fn touched(changes: &[Change]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for c in changes {
        set.insert(c.path.clone());
        if let Some(old) = &c.old_path {
            set.insert(old.clone());
        }
    }
    set.into_iter().collect()
}

/// Paths the change would create where something already stands on disk: a file of
/// the user's, untracked or ignored, or a file where a directory must go.
pub(crate) fn in_the_way(root: &Path, changes: &[Change]) -> Vec<String> {
    let mut blocked = vec![];
    for c in changes {
        if !matches!(
            c.kind,
            ChangeKind::Added | ChangeKind::Renamed | ChangeKind::Copied
        ) {
            continue;
        }
        let parts: Vec<&str> = c.path.split('/').collect();
        let mut prefix = root.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            prefix.push(part);
            let last = i + 1 == parts.len();
            match std::fs::symlink_metadata(&prefix) {
                Ok(meta) if last || !meta.is_dir() => {
                    blocked.push(c.path.clone());
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    blocked
}

/// Why the user's tree could not be switched, and what to do.
fn refused(e: &GitError, retry: &str) -> String {
    match e {
        GitError::IndexLocked { .. } => format!("{e}; {retry}"),
        _ => format!("git refused to update your tree ({e}); {retry}"),
    }
}

fn target_name(branch: &Option<String>) -> String {
    branch
        .as_deref()
        .map(|b| b.trim_start_matches("refs/heads/").to_string())
        .unwrap_or_else(|| "HEAD (detached)".to_string())
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

/// Brings the change onto the user's current branch as one verified commit, or as
/// uncommitted changes with `apply` (always, for a run that started from dirty work).
pub fn merge(l: &Landing, apply: bool) -> Result<OutcomeReport> {
    let repo = l.repo;
    let _lock = RepoLock::acquire(&repo.common_dir)?;
    let retry = format!("then run `baton merge {}`", l.run_id);
    if let Some(op) = repo.operation_in_progress() {
        return Ok(conflict(
            format!("you are in the middle of {op}; finish or abort it, {retry}"),
            vec![],
        ));
    }
    if l.include_dirty {
        return apply_onto_dirty(l, &retry);
    }
    let head = repo.head()?;
    let head_tree = repo.tree_of(&head.commit)?;
    let merged = if head.commit == l.base {
        l.tree.to_string()
    } else {
        let base_tree = repo.tree_of(l.base)?;
        match repo.merge_trees(&base_tree, &head_tree, l.tree)? {
            TreeMerge::Clean(tree) => tree,
            TreeMerge::Conflicts(paths) => {
                // Point at where the change is: the kept worktree always has it; the
                // branch only if the agent committed it there.
                let on_branch = repo.resolve_commit(l.branch).is_ok_and(|tip| tip != l.base);
                let where_ = if on_branch {
                    format!(
                        "from branch {} (kept in {})",
                        l.branch,
                        l.worktree.display()
                    )
                } else {
                    format!(
                        "in the kept worktree {} (the patch is {})",
                        l.worktree.display(),
                        l.journal.path(crate::journal::PATCH_FILE).display()
                    )
                };
                return Ok(conflict(
                    format!(
                        "the change conflicts with what {} gained since the run started in {}; resolve by hand {where_}, or rerun the task",
                        target_name(&head.branch),
                        quote_all(&paths),
                    ),
                    paths,
                ));
            }
        }
    };
    let changes = repo.diff_trees(&head_tree, &merged)?;
    if changes.is_empty() {
        worktree::retire(repo, l.worktree, l.branch, l.base)?;
        return Ok(report(
            OutcomeAction::Merged,
            format!(
                "{} already has this change; nothing to commit",
                target_name(&head.branch)
            ),
        ));
    }
    let paths = touched(&changes);
    let mut overlap = repo.dirty_paths(&paths)?;
    overlap.extend(in_the_way(&repo.root, &changes));
    overlap.sort();
    overlap.dedup();
    if !overlap.is_empty() {
        return Ok(conflict(
            format!(
                "you have uncommitted changes (or files in the way) at {}; commit or stash them, {retry}",
                quote_all(&overlap)
            ),
            overlap,
        ));
    }

    if apply {
        begin(
            l,
            Operation::Apply {
                from: head_tree.clone(),
                to: merged.clone(),
                paths: paths.clone(),
            },
        )?;
        process::crash_point("landing.intent");
        if let Err(e) = repo.switch_tree(&head_tree, &merged) {
            abandon(l);
            return Ok(conflict(refused(&e, &retry), paths));
        }
        process::crash_point("landing.switched");
        worktree::retire(repo, l.worktree, l.branch, l.base)?;
        return Ok(OutcomeReport {
            paths,
            target: Some(target_name(&head.branch)),
            ..report(
                OutcomeAction::Applied,
                "applied to your working tree and index, not committed".to_string(),
            )
        });
    }

    let verified = repo.commit_tree(l.tree, &[l.base], l.message)?;
    let landed = if head.commit == l.base {
        verified.clone()
    } else {
        let message = format!("{}Baton-Verified-Commit: {verified}\n", l.message);
        repo.commit_tree(&merged, &[&head.commit], &message)?
    };
    let target_ref = head.branch.clone().unwrap_or_else(|| "HEAD".to_string());
    begin(
        l,
        Operation::Merge {
            target: target_ref.clone(),
            old: head.commit.clone(),
            new: landed.clone(),
            from: head_tree.clone(),
            to: merged.clone(),
            paths: paths.clone(),
            commit: None,
        },
    )?;
    process::crash_point("landing.intent");
    if let Err(e) = repo.switch_tree(&head_tree, &merged) {
        abandon(l);
        return Ok(conflict(refused(&e, &retry), paths));
    }
    process::crash_point("landing.switched");
    let reflog = format!("baton: land run {}", l.run_id);
    if repo
        .update_ref(&target_ref, &landed, &head.commit, &reflog)
        .is_err()
    {
        // The branch moved between our check and our update: put the tree back.
        let _ = repo.switch_tree(&merged, &head_tree);
        abandon(l);
        return Ok(conflict(
            format!(
                "{} moved while baton was landing; {retry}",
                target_name(&head.branch)
            ),
            vec![],
        ));
    }
    process::crash_point("landing.ref");
    worktree::retire(repo, l.worktree, l.branch, l.base)?;
    process::crash_point("landing.removed");
    Ok(OutcomeReport {
        commit: Some(landed.clone()),
        target: Some(target_name(&head.branch)),
        paths,
        ..report(
            OutcomeAction::Merged,
            format!(
                "committed onto {} as {}",
                target_name(&head.branch),
                short(&landed)
            ),
        )
    })
}

/// For a run that started from the user's uncommitted work: write the agent's change
/// into the working tree, but only where the user has not edited since the run began.
fn apply_onto_dirty(l: &Landing, retry: &str) -> Result<OutcomeReport> {
    let repo = l.repo;
    let start_tree = repo.tree_of(l.base)?;
    let changes = repo.diff_trees(&start_tree, l.tree)?;
    let paths = touched(&changes);
    let now = repo.snapshot_tree(&repo.root)?;
    let edited: BTreeSet<String> = touched(&repo.diff_trees(&start_tree, &now)?)
        .into_iter()
        .collect();
    let mut overlap: Vec<String> = paths
        .iter()
        .filter(|p| edited.contains(*p))
        .cloned()
        .collect();
    overlap.extend(in_the_way(&repo.root, &changes));
    overlap.sort();
    overlap.dedup();
    if !overlap.is_empty() {
        return Ok(conflict(
            format!(
                "you changed {} since the run started; save your edits elsewhere, {retry}",
                quote_all(&overlap)
            ),
            overlap,
        ));
    }
    begin(
        l,
        Operation::ApplyDirty {
            from: start_tree.clone(),
            to: l.tree.to_string(),
            paths: paths.clone(),
        },
    )?;
    process::crash_point("landing.intent");
    write_files(repo, l.tree, &paths)?;
    process::crash_point("landing.switched");
    worktree::retire(repo, l.worktree, l.branch, l.base)?;
    Ok(OutcomeReport {
        paths,
        ..report(
            OutcomeAction::Applied,
            "applied to your working tree as uncommitted changes (the run started from your uncommitted work)".into(),
        )
    })
}

/// Makes the working tree's files at `paths` what they are in `tree` (written, or
/// removed where `tree` has none), leaving the index alone.
fn write_files(repo: &Repo, tree: &str, paths: &[String]) -> Result<()> {
    let wanted = repo.tree_entries(tree, paths)?;
    let present: Vec<String> = paths
        .iter()
        .filter(|p| wanted.contains_key(*p))
        .cloned()
        .collect();
    repo.write_paths_from_tree(tree, &present)?;
    for p in paths.iter().filter(|p| !wanted.contains_key(*p)) {
        let path = repo.root.join(p);
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::remove_file(&path).map_err(|source| GitError::Io {
                context: format!("could not remove {}", path.display()),
                source,
            })?;
        }
    }
    Ok(())
}

/// Saves the change as a stash entry of the user's repository, then drops the worktree.
pub fn stash(l: &Landing) -> Result<OutcomeReport> {
    let _lock = RepoLock::acquire(&l.repo.common_dir)?;
    let message = format!(
        "baton {}: {}",
        l.run_id,
        l.task.lines().next().unwrap_or("")
    );
    let stash = l.repo.stash_commit(l.base, l.tree, &message)?;
    begin(
        l,
        Operation::Stash {
            stash: stash.clone(),
            message: message.clone(),
        },
    )?;
    process::crash_point("stash.intent");
    l.repo.stash_record(&stash, &message)?;
    process::crash_point("stash.recorded");
    worktree::retire(l.repo, l.worktree, l.branch, l.base)?;
    Ok(stashed(&stash, &message))
}

fn stashed(stash: &str, message: &str) -> OutcomeReport {
    OutcomeReport {
        stash: Some(stash.to_string()),
        ..report(
            OutcomeAction::Stashed,
            format!(
                "saved as stash \"{message}\" ({}); `git stash apply` brings it back",
                short(stash)
            ),
        )
    }
}

/// Drops the worktree and branch; the patch stays in the journal.
pub fn revert(l: &Landing) -> Result<OutcomeReport> {
    let _lock = RepoLock::acquire(&l.repo.common_dir)?;
    // The journal's patch is all that will be left of the change: on the disk first.
    l.journal.sync(crate::journal::PATCH_FILE)?;
    begin(l, Operation::Revert)?;
    worktree::retire(l.repo, l.worktree, l.branch, l.base)?;
    Ok(reverted(l))
}

fn reverted(l: &Landing) -> OutcomeReport {
    report(
        OutcomeAction::Reverted,
        format!(
            "discarded; the patch stays in {}",
            l.journal.path(crate::journal::PATCH_FILE).display()
        ),
    )
}

/// Drops the worktree and branch of a run that changed nothing.
pub fn discard(l: &Landing) -> Result<OutcomeReport> {
    let _lock = RepoLock::acquire(&l.repo.common_dir)?;
    // No intent: there is nothing to lose, and a run stopped here is found with its
    // worktree unchanged, which recovery discards all the same.
    worktree::retire(l.repo, l.worktree, l.branch, l.base)?;
    Ok(discarded())
}

fn discarded() -> OutcomeReport {
    report(
        OutcomeAction::Discarded,
        "nothing changed; worktree removed".into(),
    )
}

pub fn keep(l: &Landing) -> OutcomeReport {
    report(
        OutcomeAction::Kept,
        format!(
            "kept in {} on branch {}; decide with `baton merge|revert|stash {}`",
            l.worktree.display(),
            l.branch,
            l.run_id
        ),
    )
}

/// What became of a landing that baton was stopped in the middle of.
#[derive(Debug)]
pub enum Resolution {
    /// It had gone through, or has now been finished: its outcome.
    Done(OutcomeReport),
    /// Nothing of it stands in the user's tree or branch (what had been written is
    /// put back); the run's change is still on its branch and in its worktree.
    Undone,
    /// The user's tree has changed since in a way baton cannot tell apart from the
    /// landing; nothing was touched, and the message says what to look at.
    Stuck(String),
}

/// Finishes or undoes the recorded `intent` of a baton that was stopped halfway,
/// under the repository lock. A change already in the user's tree is finished (one
/// compare-and-swap ref update, which touches no file); one not yet written there is
/// undone, putting back exactly the files that hold baton's half-written content.
pub fn resolve(l: &Landing, intent: &Operation) -> Result<Resolution> {
    let repo = l.repo;
    let _lock = RepoLock::acquire(&repo.common_dir)?;
    let gone = |outcome: OutcomeReport| -> Result<Resolution> {
        worktree::retire(repo, l.worktree, l.branch, l.base)?;
        Ok(Resolution::Done(outcome))
    };
    match intent {
        Operation::Merge {
            target,
            old,
            new,
            from,
            to,
            paths,
            commit,
        } => {
            let name = target_name(&Some(target.clone()).filter(|t| t != "HEAD"));
            let own = commit.as_ref().unwrap_or(new);
            let merged = |how: &str| OutcomeReport {
                commit: Some(own.clone()),
                target: Some(name.clone()),
                paths: paths.clone(),
                ..report(
                    OutcomeAction::Merged,
                    format!("committed onto {name} as {}{how}", short(own)),
                )
            };
            let now = repo.ref_target(target);
            if now
                .as_deref()
                .is_some_and(|n| n == new || repo.is_ancestor(new, n))
            {
                return gone(merged(""));
            }
            match tree_state(repo, from, to, paths)? {
                TreeState::Switched if now.as_deref() == Some(old.as_str()) => {
                    let reflog = format!("baton: land run {} (recovered)", l.run_id);
                    repo.update_ref(target, new, old, &reflog)?;
                    gone(merged(" (finished by `baton recover`)"))
                }
                TreeState::Untouched => Ok(Resolution::Undone),
                _ => Ok(Resolution::Stuck(format!(
                    "baton was stopped while landing onto {name}, and the tree or branch has changed since; the change is safe on branch {}: look at `git status`, then `baton merge|stash {}`",
                    l.branch, l.run_id
                ))),
            }
        }
        Operation::Apply { from, to, paths } => match tree_state(repo, from, to, paths)? {
            TreeState::Switched => gone(OutcomeReport {
                paths: paths.clone(),
                ..report(
                    OutcomeAction::Applied,
                    "applied to your working tree and index, not committed (finished by `baton recover`)".into(),
                )
            }),
            TreeState::Untouched => Ok(Resolution::Undone),
            TreeState::Mixed => Ok(Resolution::Stuck(format!(
                "baton was stopped while applying the change, and your index has changed since; the change is safe on branch {}: look at `git status`, then `baton merge --apply {}`",
                l.branch, l.run_id
            ))),
        },
        Operation::ApplyDirty { from, to, paths } => {
            let before = repo.tree_entries(from, paths)?;
            let after = repo.tree_entries(to, paths)?;
            let (mut ours, mut theirs, mut pending) = (vec![], vec![], vec![]);
            for p in paths {
                let now = repo.worktree_entry(p);
                if now.as_ref() == after.get(p) {
                    ours.push(p.clone());
                } else if now.as_ref() == before.get(p) {
                    pending.push(p.clone());
                } else {
                    theirs.push(p.clone());
                }
            }
            if theirs.is_empty() {
                // Every file is either written or still as the run found it: finish.
                write_files(repo, to, &pending)?;
                return gone(OutcomeReport {
                    paths: paths.clone(),
                    ..report(
                        OutcomeAction::Applied,
                        "applied to your working tree as uncommitted changes (finished by `baton recover`)".into(),
                    )
                });
            }
            // The user edited some of these files since: take back what was written,
            // so that nothing is half applied, and leave their edits alone.
            write_files(repo, from, &ours)?;
            Ok(Resolution::Undone)
        }
        Operation::Stash { stash, message } => {
            if !repo.stash_has(stash) {
                repo.stash_record(stash, message)?;
            }
            gone(stashed(stash, message))
        }
        Operation::Revert => gone(reverted(l)),
        Operation::Index(write) => crate::workflow::precommit::land::resolve(l, write),
    }
}

/// Where the user's index and tree stand between two trees, at the paths a landing
/// changes.
enum TreeState {
    /// The index is as in `from`; working files that hold the `to` content (written
    /// by a `read-tree` that did not get to write the index) have been put back.
    Untouched,
    /// The index is as in `to`.
    Switched,
    /// Neither: the user has changed the index since.
    Mixed,
}

fn tree_state(repo: &Repo, from: &str, to: &str, paths: &[String]) -> Result<TreeState> {
    let index = repo.index_entries(paths)?;
    let before: BTreeMap<String, Entry> = repo.tree_entries(from, paths)?;
    let after: BTreeMap<String, Entry> = repo.tree_entries(to, paths)?;
    if index == after {
        return Ok(TreeState::Switched);
    }
    if index != before {
        return Ok(TreeState::Mixed);
    }
    let half_written: Vec<String> = paths
        .iter()
        .filter(|p| after.get(*p) != before.get(*p))
        .filter(|p| repo.worktree_entry(p).as_ref() == after.get(*p))
        .cloned()
        .collect();
    let (restore, remove): (Vec<String>, Vec<String>) = half_written
        .into_iter()
        .partition(|p| before.contains_key(p));
    repo.restore_from_index(&restore)?;
    for p in remove {
        let path = repo.root.join(&p);
        std::fs::remove_file(&path).map_err(|source| GitError::Io {
            context: format!("could not remove {}", path.display()),
            source,
        })?;
    }
    Ok(TreeState::Untouched)
}

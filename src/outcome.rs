//! The outcome stage: what becomes of a judged run — merged onto the user's branch,
//! applied as uncommitted changes, reverted, stashed, or kept. Landing is computed in
//! memory first; a conflict, an overlap with the user's uncommitted work, or a branch
//! that moved meanwhile writes nothing and keeps the run (a verdict, not an error).
//! Every change to the user's repository happens under the per-repository lock.

use std::collections::BTreeSet;
use std::path::Path;

use crate::git::{Change, ChangeKind, GitError, Repo, TreeMerge};
use crate::journal::{JournalError, RepoLock};
use crate::report::{OutcomeAction, OutcomeReport};
use crate::worktree;

#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Journal(#[from] JournalError),
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
fn touched(changes: &[Change]) -> Vec<String> {
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
fn in_the_way(root: &Path, changes: &[Change]) -> Vec<String> {
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
                return Ok(conflict(
                    format!(
                        "the change conflicts with what {} gained since the run started in {}; resolve by hand from branch {}, or rerun the task",
                        target_name(&head.branch),
                        paths.join(", "),
                        l.branch
                    ),
                    paths,
                ));
            }
        }
    };
    let changes = repo.diff_trees(&head_tree, &merged)?;
    if changes.is_empty() {
        worktree::remove(repo, l.worktree, l.branch)?;
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
                overlap.join(", ")
            ),
            overlap,
        ));
    }

    if apply {
        if let Err(e) = repo.switch_tree(&head_tree, &merged) {
            return Ok(conflict(
                format!("git refused to update your tree ({e}); {retry}"),
                paths,
            ));
        }
        worktree::remove(repo, l.worktree, l.branch)?;
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
    if let Err(e) = repo.switch_tree(&head_tree, &merged) {
        return Ok(conflict(
            format!("git refused to update your tree ({e}); {retry}"),
            paths,
        ));
    }
    let target_ref = head.branch.clone().unwrap_or_else(|| "HEAD".to_string());
    let reflog = format!("baton: land run {}", l.run_id);
    if repo
        .update_ref(&target_ref, &landed, &head.commit, &reflog)
        .is_err()
    {
        // The branch moved between our check and our update: put the tree back.
        let _ = repo.switch_tree(&merged, &head_tree);
        return Ok(conflict(
            format!(
                "{} moved while baton was landing; {retry}",
                target_name(&head.branch)
            ),
            vec![],
        ));
    }
    worktree::remove(repo, l.worktree, l.branch)?;
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
                overlap.join(", ")
            ),
            overlap,
        ));
    }
    let written: Vec<String> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Deleted)
        .map(|c| c.path.clone())
        .collect();
    repo.write_paths_from_tree(l.tree, &written)?;
    for c in &changes {
        let gone = match c.kind {
            ChangeKind::Deleted => Some(&c.path),
            ChangeKind::Renamed => c.old_path.as_ref(),
            _ => None,
        };
        if let Some(p) = gone {
            let path = repo.root.join(p);
            if std::fs::symlink_metadata(&path).is_ok() {
                std::fs::remove_file(&path).map_err(|source| GitError::Io {
                    context: format!("could not remove {}", path.display()),
                    source,
                })?;
            }
        }
    }
    worktree::remove(repo, l.worktree, l.branch)?;
    Ok(OutcomeReport {
        paths,
        ..report(
            OutcomeAction::Applied,
            "applied to your working tree as uncommitted changes (the run started from your uncommitted work)".into(),
        )
    })
}

/// Saves the change as a stash entry of the user's repository, then drops the worktree.
pub fn stash(l: &Landing) -> Result<OutcomeReport> {
    let _lock = RepoLock::acquire(&l.repo.common_dir)?;
    let message = format!(
        "baton {}: {}",
        l.run_id,
        l.task.lines().next().unwrap_or("")
    );
    let stash = l.repo.stash_store(l.base, l.tree, &message)?;
    worktree::remove(l.repo, l.worktree, l.branch)?;
    Ok(OutcomeReport {
        stash: Some(stash.clone()),
        ..report(
            OutcomeAction::Stashed,
            format!(
                "saved as stash \"{message}\" ({}); `git stash apply` brings it back",
                short(&stash)
            ),
        )
    })
}

/// Drops the worktree and branch; the patch stays in the journal.
pub fn revert(l: &Landing, journal_dir: &Path) -> Result<OutcomeReport> {
    let _lock = RepoLock::acquire(&l.repo.common_dir)?;
    worktree::remove(l.repo, l.worktree, l.branch)?;
    Ok(report(
        OutcomeAction::Reverted,
        format!(
            "discarded; the patch stays in {}",
            journal_dir.join(crate::journal::PATCH_FILE).display()
        ),
    ))
}

/// Drops the worktree and branch of a run that changed nothing.
pub fn discard(l: &Landing) -> Result<OutcomeReport> {
    let _lock = RepoLock::acquire(&l.repo.common_dir)?;
    worktree::remove(l.repo, l.worktree, l.branch)?;
    Ok(report(
        OutcomeAction::Discarded,
        "nothing changed; worktree removed".into(),
    ))
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

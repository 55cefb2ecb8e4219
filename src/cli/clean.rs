//! `baton clean`

use std::path::Path;

use clap::Args;

use super::status::{outcome_of, state_of, stopped_halfway};
use crate::error::Result;
use crate::journal::{self, RepoLock};
use crate::report::Stage;
use crate::{exit, process, recover, ui, worktree};

/// Remove the worktrees and branches of finished runs. A kept run's unlanded work is
/// only removed with --force (its patch stays in the journal); a run stopped halfway
/// (its baton was killed) is left to `baton recover`, or recovered first with --force.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Also remove kept runs' worktrees and branches, and recover (saving their
    /// work) and remove runs that were stopped halfway.
    /// With --pool: also remove pooled worktrees that were written after baton
    /// pooled them (they may hold someone's work).
    #[arg(long)]
    force: bool,
    /// Only empty the worktree pool (finished worktrees kept for later runs).
    #[arg(long)]
    pool: bool,
}

pub fn cmd_clean(dir: &Path, args: CleanArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    if !args.pool {
        clean_runs(&repo, &args)?;
    }
    empty_pool(&repo, args.force)?;
    Ok(exit::OK)
}

/// Removes the pool's worktrees and says what that freed.
fn empty_pool(repo: &crate::git::Repo, force: bool) -> Result<()> {
    let emptied = worktree::pool::empty(repo, force)?;
    for (path, why) in &emptied.kept {
        ui::progress(
            "clean",
            format!(
                "pooled worktree {} left alone: {why}; look at it, then `baton clean --pool --force` removes it",
                ui::quote_path(&path.to_string_lossy())
            ),
        );
    }
    ui::progress(
        "clean",
        format!(
            "{} pooled worktree(s) removed ({})",
            emptied.removed,
            crate::scope::human_size(emptied.bytes)
        ),
    );
    Ok(())
}

fn clean_runs(repo: &crate::git::Repo, args: &CleanArgs) -> Result<()> {
    let repo = repo.clone();
    let mut removed = 0;
    for (journal, state) in journal::list_runs(&repo.common_dir)? {
        let mut r = match state {
            Ok(r) => r,
            Err(e) => {
                ui::progress("clean", format!("left alone: {}", journal.damage_hint(&e)));
                continue;
            }
        };
        if r.stage != Stage::Finished && r.error.is_none() && process::running(r.pid, r.pid_start) {
            ui::progress("clean", format!("{}: still running, left alone", r.run_id));
            continue;
        }
        if recover::needs_recovery(&r, &journal) {
            if !args.force {
                let why = if stopped_halfway(&r) {
                    format!(
                        "stopped halfway at the {:?} stage (baton, pid {}, is gone and its lock is stale)",
                        r.stage, r.pid
                    )
                    .to_lowercase()
                } else {
                    "stopped while landing".to_string()
                };
                ui::progress(
                    "clean",
                    format!(
                        "{}: {why}; left alone — `baton recover` finishes or rolls it back",
                        r.run_id
                    ),
                );
                continue;
            }
            if let Some(done) = recover::recover(&repo, &journal)? {
                ui::progress(
                    "clean",
                    format!("{}: recovered first: {}", r.run_id, done.message),
                );
            }
            r = journal.read_state()?;
        }
        let has_worktree = worktree::holds_run(&r.worktree, &r.branch);
        let has_branch = repo.branch_exists(&r.branch);
        if !has_worktree && !has_branch {
            continue;
        }
        let pending = r.outcome.as_ref().is_some_and(|o| o.action.is_pending());
        if pending && !args.force {
            ui::progress(
                "clean",
                format!(
                    "{}: {} ({}) with unlanded work, left alone (decide with `baton merge|stash|revert {}`, or `baton clean --force`)",
                    r.run_id,
                    outcome_of(&r),
                    state_of(&r),
                    r.run_id
                ),
            );
            continue;
        }
        let _lock = RepoLock::acquire(&repo.common_dir)?;
        if has_worktree {
            worktree::remove(&repo, &r.worktree, &r.branch)?;
        } else {
            repo.branch_delete(&r.branch)?;
        }
        removed += 1;
        ui::progress(
            "clean",
            format!("{}: removed worktree and branch {}", r.run_id, r.branch),
        );
    }
    ui::progress("clean", format!("{removed} run(s) cleaned"));
    Ok(())
}

//! `baton clean`

use std::path::Path;

use clap::Args;

use super::status::{all_runs, outcome_of, state_of};
use crate::error::Result;
use crate::journal::RepoLock;
use crate::report::Stage;
use crate::{exit, process, ui, worktree};

/// Remove the worktrees and branches of finished runs. A kept run's unlanded work, or
/// an interrupted run's, is only removed with --force (its patch stays in the journal).
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Also remove kept and interrupted runs' worktrees and branches.
    #[arg(long)]
    force: bool,
}

pub fn cmd_clean(dir: &Path, args: CleanArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let _lock = RepoLock::acquire(&repo.common_dir)?;
    let mut removed = 0;
    for r in all_runs(&repo.common_dir)? {
        let has_worktree = r.worktree.exists();
        let has_branch = repo.branch_exists(&r.branch);
        if !has_worktree && !has_branch {
            continue;
        }
        let finished = r.stage == Stage::Finished;
        if !finished && r.error.is_none() && process::alive(r.pid) {
            ui::progress("clean", format!("{}: still running, left alone", r.run_id));
            continue;
        }
        let pending = r.outcome.as_ref().is_some_and(|o| o.action.is_pending());
        if (pending || !finished) && !args.force {
            ui::progress(
                "clean",
                format!(
                    "{}: {} with unlanded work, left alone (decide with `baton merge|stash|revert {}`, or `baton clean --force`)",
                    r.run_id,
                    if pending {
                        outcome_of(&r)
                    } else {
                        state_of(&r)
                    },
                    r.run_id
                ),
            );
            continue;
        }
        worktree::remove(&repo, &r.worktree, &r.branch)?;
        removed += 1;
        ui::progress(
            "clean",
            format!("{}: removed worktree and branch {}", r.run_id, r.branch),
        );
    }
    ui::progress("clean", format!("{removed} run(s) cleaned"));
    Ok(exit::OK)
}

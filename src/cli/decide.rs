//! `baton merge`, `baton revert`, `baton stash`: deciding later what becomes of a kept run.

use std::path::Path;

use clap::Args;

use crate::error::Result;
use crate::journal::Journal;
use crate::report::Policy;
use crate::{exit, process, run, ui};

/// A run to decide on.
#[derive(Debug, Args)]
pub struct RunRef {
    /// The run id (a unique prefix is enough, or `last`).
    run: String,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
}

/// Land a kept run on your current branch (verifying it again if its worktree changed).
#[derive(Debug, Args)]
pub struct MergeArgs {
    #[command(flatten)]
    run: RunRef,
    /// Leave the change uncommitted instead of committing it.
    #[arg(long)]
    apply: bool,
}

fn decide(dir: &Path, run: RunRef, policy: Policy, apply: bool) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let journal = Journal::open(&repo.common_dir, &run.run)?;
    process::install_interrupt_handler();
    let report = run::land_later(
        &repo,
        std::sync::Arc::new(journal),
        policy,
        run::Target::of_apply(apply),
        super::observers(false),
    )?;
    ui::summary(&report);
    if run.json {
        super::print_json(&report);
    }
    Ok(exit::for_decision(&report, policy))
}

pub fn cmd_merge(dir: &Path, args: MergeArgs) -> Result<i32> {
    decide(dir, args.run, Policy::Merge, args.apply)
}

pub fn cmd_revert(dir: &Path, args: RunRef) -> Result<i32> {
    decide(dir, args, Policy::Revert, false)
}

pub fn cmd_stash(dir: &Path, args: RunRef) -> Result<i32> {
    decide(dir, args, Policy::Stash, false)
}

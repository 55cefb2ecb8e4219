//! `baton recover`

use std::path::Path;

use clap::Args;

use crate::error::Result;
use crate::{exit, recover, ui};

/// Finish or roll back what a killed baton left in flight (SIGKILL, a crash, a power
/// cut): a landing that was under way is finished when the change already stands in
/// your tree, or undone when not; a run stopped before its outcome has its processes
/// stopped and its work kept or stashed. Runs that are still running are left alone.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Only this run (a unique prefix of its id, or `last`).
    run: Option<String>,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

pub fn cmd_recover(dir: &Path, args: RecoverArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let done = recover::recover_all(&repo, args.run.as_deref())?;
    for r in &done {
        ui::progress(
            "recover",
            format!("{}: {} — {}", r.run_id, r.state, r.message),
        );
    }
    if done.is_empty() {
        ui::progress("recover", "nothing to recover: no run was stopped halfway");
    }
    if args.json {
        super::print_json(&done);
    }
    Ok(exit::for_recovery(done.iter().any(|r| r.needs_you)))
}

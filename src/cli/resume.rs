//! `baton resume`

use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::config::Config;
use crate::error::Result;
use crate::journal::Journal;
use crate::report::Policy;
use crate::run::{self, ResumeOptions};
use crate::{duration, exit, process, ui};

/// Continue a kept run's agent session in the same worktree (codex's own session),
/// then run the checks, judge the scope and decide the outcome again.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id (a unique prefix is enough, or `last`).
    run: String,
    /// What to tell the agent (default: what failed, with the evidence).
    #[arg(long)]
    prompt: Option<String>,
    /// What to do when it passes now: merge, revert, stash or keep.
    #[arg(long, value_name = "POLICY")]
    on_pass: Option<String>,
    /// What to do when it fails again: stash, revert or keep.
    #[arg(long, value_name = "POLICY")]
    on_fail: Option<String>,
    /// Land a passing change as uncommitted changes instead of a commit.
    #[arg(long)]
    apply: bool,
    /// Wall-clock limit for the agent, like 20m.
    #[arg(long, value_parser = duration::parse)]
    timeout: Option<Duration>,
    /// Stop the agent after this long without output, like 5m.
    #[arg(long, value_parser = duration::parse)]
    idle_timeout: Option<Duration>,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn policy(text: Option<&str>, flag: &str) -> Result<Option<Policy>> {
    text.map(|t| super::parse_policy(t, flag)).transpose()
}

pub fn cmd_resume(dir: &Path, args: ResumeArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let journal = Journal::open(&repo.common_dir, &args.run)?;
    let on_fail = policy(args.on_fail.as_deref(), "--on-fail")?;
    let opts = ResumeOptions {
        prompt: args.prompt,
        on_pass: policy(args.on_pass.as_deref(), "--on-pass")?,
        on_fail,
        apply: args.apply,
        timeout: args.timeout,
        idle_timeout: args.idle_timeout,
        config: Config::load(&repo.root)?,
    };
    process::install_interrupt_handler();
    let report = run::resume(
        &repo,
        std::sync::Arc::new(journal),
        opts,
        super::observers(false),
        &mut |r| run::default_policy(r),
    )?;
    ui::summary(&report);
    if args.json {
        super::print_json(&report);
    }
    Ok(exit::for_report(&report))
}

//! `baton demo`

use std::path::PathBuf;

use clap::Args;

use crate::agent::AgentSpec;
use crate::error::{Error, Result};
use crate::handoff::{self, NewHandoff};
use crate::report::Policy;
use crate::run::{self, RunOptions};
use crate::{config, demo, exit, git, process, ui};

/// Run a whole delegation offline on a scratch repository: a failing test, a scripted
/// agent that fixes it in a worktree, the check, the scope, the merge.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to make the scratch repository (default: a new temporary directory,
    /// left in place so you can look at it).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn cmd_demo(args: DemoArgs) -> Result<i32> {
    let dir = match args.dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("baton-demo-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "could not make a temporary directory".into(),
                source,
            })?
            .keep(),
    };
    let scratch = demo::make_scratch(&dir)?;
    ui::progress(
        "demo",
        format!("scratch repository at {}", scratch.repo.display()),
    );
    ui::progress(
        "demo",
        format!("its test fails: `{}` expects add(2, 3) == 5", demo::CHECK),
    );
    let repo = git::Repo::discover(&scratch.repo)?;
    let handoff = handoff::render_new(
        &NewHandoff {
            template: "bugfix".into(),
            task: "Make add() return the sum of its arguments".into(),
            context: "`add(2, 3)` returns -1; test_calc.py expects 5.".into(),
            scope: vec![demo::SCOPE.into()],
            checks: vec![demo::CHECK.into()],
            agent: Some(demo::AGENT.into()),
            ..NewHandoff::default()
        },
        None,
    )?;
    process::install_interrupt_handler();
    let opts = RunOptions {
        agent: AgentSpec::parse(demo::AGENT)?,
        base_rev: None,
        include_dirty: false,
        on_pass: Policy::Merge,
        on_fail: Policy::Stash,
        apply: false,
        scope: handoff.contract.scope.clone(),
        deny: vec![],
        checks: handoff.contract.checks.clone(),
        timeout: Some(config::DEFAULT_TIMEOUT),
        idle_timeout: None,
        check_timeout: config::DEFAULT_CHECK_TIMEOUT,
        kill_grace: config::DEFAULT_KILL_GRACE,
        worktrees_dir: scratch.worktrees.clone(),
        handoff,
        config: crate::config::Config::default(),
    };
    let report = run::run(&repo, opts, &mut |r| run::default_policy(r))?;
    ui::summary(&report);
    eprintln!(
        "\n{}:\n{}",
        scratch.repo.display(),
        git::log_oneline(&scratch.repo, 2)?
    );
    eprintln!("look around: cd {} && git show", scratch.repo.display());
    if args.json {
        super::print_json(&report);
    }
    Ok(exit::for_report(&report))
}

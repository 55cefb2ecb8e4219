//! `baton precommit`: what the pre-commit hook runs.

use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::config::Config;
use crate::error::Result;
use crate::workflow::precommit::{
    self, CheckSettings, Checked, NoFix, NotLanded, Options, Precommit,
};
use crate::{duration, exit, process, ui};

/// Check the staged tree in a worktree of its own and, when it fails, have the agent
/// fix it in your index: what the pre-commit hook runs.
///
/// The staged tree is what `git commit` is about to commit, read from
/// $GIT_INDEX_FILE when git sets it; it is checked in a worktree, never in yours. When
/// the checks fail, hand the fix to the configured agent (scope: the staged paths),
/// verify it, and write it into your index, and into your working tree where that
/// loses nothing (a 3-way merge with your unstaged changes; any conflict writes
/// nothing and keeps the run). A backup is taken first. Never a stash.
///
/// Exit status: 0 the commit may go on (passed, or fixed); 1 checks failed (no fix,
/// or `[precommit] stop_after_fix`); 2 no checks configured; 3/4 the fix left its
/// scope / the agent failed (the run is kept); 5 the fix conflicts (kept); 130
/// interrupted.
#[derive(Debug, Args)]
pub struct PrecommitArgs {
    /// A check to run (repeatable, in order); replaces the configured ones.
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// Only check and report: never hand a failure to an agent.
    #[arg(long)]
    no_delegate: bool,
    /// The whole hook's time budget, like 5m: past it the commit is stopped and the
    /// run kept (default `[precommit] timeout`, else none; 0 means none).
    #[arg(long, value_parser = duration::parse)]
    timeout: Option<Duration>,
    /// Run the checks even when this staged tree passed them before.
    #[arg(long)]
    no_cache: bool,
    /// Put back what the backup taken before RUN's fix holds: your index entries and
    /// files at the paths the fix touched.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["checks", "no_delegate", "timeout", "no_cache"])]
    restore: Option<String>,
}

/// The failing check, with where its whole log is.
fn show_failure(checked: &Checked) {
    if let Some(f) = checked.failure() {
        let log = f
            .log
            .as_ref()
            .map(|l| format!("; its log: {}", l.display()))
            .unwrap_or_default();
        ui::progress(
            "precommit",
            format!(
                "`{}` {} on the staged tree (run {}){log}",
                f.command,
                f.status.name(),
                checked.run_id
            ),
        );
    }
}

fn passed_line(checked: &Checked) -> String {
    if checked.cached {
        format!(
            "the staged tree passed these checks before (run {}): nothing to run; the commit goes on",
            checked.run_id
        )
    } else {
        let secs: u64 = checked.checks.iter().map(|c| c.duration_ms).sum();
        format!(
            "{} passed on the staged tree ({:.1}s); the commit goes on",
            crate::report::count(checked.checks.len(), "check"),
            secs as f64 / 1000.0
        )
    }
}

pub fn cmd_precommit(dir: &Path, args: PrecommitArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    if let Some(run) = &args.restore {
        let restored = precommit::restore(&repo, run)?;
        ui::progress(
            "restore",
            format!(
                "put back your index and files at {} from {}",
                restored
                    .paths
                    .iter()
                    .map(|p| ui::quote_path(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                restored.reference
            ),
        );
        return Ok(exit::OK);
    }
    let config = Config::load(&repo.root)?;
    let mut checks = CheckSettings::resolve(&config, &args.checks, dir, &repo.root)?;
    checks.use_cache = !args.no_cache;
    process::install_interrupt_handler();
    let opts = Options {
        budget: args.timeout.or(config.precommit.timeout),
        config,
        checks,
        no_delegate: args.no_delegate,
        cwd: dir.to_path_buf(),
    };
    let result = precommit::precommit(&repo, &opts, &|| super::observers(false), &mut |line| {
        ui::progress("backup", line)
    })?;
    Ok(match result {
        Precommit::VerifiedByCommit { .. } => {
            ui::progress(
                "precommit",
                "the staged tree was just verified by `baton commit`; the commit goes on",
            );
            exit::OK
        }
        Precommit::Passed(checked) => {
            ui::progress("precommit", passed_line(&checked));
            exit::OK
        }
        Precommit::Failed { checked, why } => {
            show_failure(&checked);
            let how = match why {
                NoFix::NotAsked => "commit stopped (--no-delegate: no fix attempted)".to_string(),
                NoFix::NoAgent => "commit stopped; no agent is configured to fix it — set `[precommit] agent = \"codex\"` (or `[defaults] agent`) in .baton/config.toml to have baton delegate the fix".to_string(),
                NoFix::OutOfTime => "commit stopped: the time budget ran out during the checks".to_string(),
            };
            ui::progress("precommit", how);
            if checked.interrupted {
                exit::INTERRUPTED
            } else {
                exit::CHECKS_FAILED
            }
        }
        Precommit::Fixed { run, stop, .. } => {
            if stop {
                ui::progress(
                    "precommit",
                    format!(
                        "fixed by run {}; commit stopped ([precommit] stop_after_fix): look at the fix with `git diff --cached`, then commit again",
                        run.run_id
                    ),
                );
                exit::CHECKS_FAILED
            } else {
                ui::progress(
                    "precommit",
                    format!(
                        "fixed by run {}; the commit goes on with the fixed index",
                        run.run_id
                    ),
                );
                exit::OK
            }
        }
        Precommit::Kept { checked, run, why } => {
            show_failure(&checked);
            let id = &run.run_id;
            let (line, code) = match why {
                NotLanded::Failed => (
                    format!(
                        "commit stopped: the fix of run {id} did not pass ({}); it is kept — `baton show {id}`",
                        run.verdict.describe()
                    ),
                    exit::for_report(&run),
                ),
                NotLanded::Conflict => (
                    format!(
                        "commit stopped: {}",
                        run.outcome
                            .as_ref()
                            .map(|o| o.message.as_str())
                            .unwrap_or("the fix could not be written")
                    ),
                    exit::CONFLICT,
                ),
                NotLanded::OutOfTime => (
                    format!(
                        "commit stopped: the time budget ran out; run {id} is kept — `baton show {id}`, and `baton merge {id} --apply` once it passes"
                    ),
                    exit::CHECKS_FAILED,
                ),
                NotLanded::Interrupted => (
                    format!(
                        "interrupted: nothing was written; run {id} is kept — `baton show {id}`"
                    ),
                    exit::INTERRUPTED,
                ),
            };
            ui::progress("precommit", line);
            code
        }
    })
}

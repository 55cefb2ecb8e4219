//! `baton worker TASKS --index I --remote URL`

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::Result;
use crate::workflow::remote::{self, WorkerOptions};
use crate::{process, ui};

/// Run one task of a task file, as `baton sweep` runs it, and push its result to the
/// remote as `refs/baton/results/<sweep>/<task>` for `baton sweep land` to land.
///
/// Meant for many machines at once (a Kubernetes Indexed Job, an Actions matrix), each
/// started with only the task file and the remote: they agree on the sweep through the
/// remote. The first result pushed for a task wins; a worker that finds its task's
/// result there does nothing. The target branch is never touched. Exit status, once
/// the result is on the remote (pass or fail: the lander decides): the run's own, as
/// `baton run` gives it (0 passed, 1 checks failed, 3 scope violated, 4 the agent
/// failed); 0 when the task's result was already there; 2 bad input (an index outside
/// the task list, a task file that is not the sweep's), nothing pushed; 6 the result
/// could not be pushed — the run is kept here and the message says the command that
/// pushes it later.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The task file (TOML or Markdown): the same bytes on every worker and the lander.
    #[arg(value_name = "TASKS")]
    tasks: PathBuf,
    /// The task to run, by its place in the file from 0 (default: $JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I")]
    index: Option<usize>,
    /// The remote the workers and the lander share (any URL or path git takes).
    #[arg(long, value_name = "URL")]
    remote: String,
    /// The branch the sweep lands on (default: the remote's HEAD).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// The sweep, as `baton sweep plan` writes it into the manifest (default: the one
    /// the task file has open on the branch, opened if it has none).
    #[arg(long, value_name = "ID")]
    sweep: Option<String>,
    /// Print what the worker did as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn cmd_worker(dir: &Path, args: WorkerArgs) -> Result<i32> {
    process::install_interrupt_handler();
    let opts = WorkerOptions {
        file: dir.join(&args.tasks),
        index: args.index,
        url: args.remote.clone(),
        branch: args.branch.clone(),
        sweep: args.sweep.clone(),
        cwd: dir.to_path_buf(),
    };
    let report = remote::worker(&opts, super::observers(false))?;
    if report.already_there {
        ui::progress(
            "worker",
            format!(
                "task {} of sweep {} already has its result ({}); nothing to do",
                report.task, report.sweep_id, report.result_ref
            ),
        );
    } else {
        let verdict = report
            .verdict
            .map(|v| v.describe().to_string())
            .unwrap_or_else(|| "run before".into());
        ui::progress(
            "worker",
            format!(
                "task {} (index {}) of sweep {}: {verdict}; result pushed as {}",
                report.task, report.index, report.sweep_id, report.result_ref
            ),
        );
    }
    if args.json {
        super::print_json(&report);
    }
    Ok(report.exit_code)
}

//! `baton pipeline`

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::handoff::NewHandoff;
use crate::process;
use crate::run::{Base, Plan, Request};
use crate::settings::Settings;
use crate::workflow::pipeline::{self, Pipeline, Stage};

/// Run stages one after another in one worktree, each with its own agent and
/// template (implement, tests, review, docs, ...); a review stage must answer with a
/// JSON verdict, and its blocking findings go back to the implementing agent. The
/// whole lands as one commit.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// A pipeline file (TOML: handoff fields at the top, one [[stage]] per stage).
    file: Option<PathBuf>,
    /// The task (with --stage, or over the file's).
    #[arg(long)]
    task: Option<String>,
    /// A stage, AGENT:TEMPLATE (repeatable, in order), like `codex:implement`.
    #[arg(long = "stage", value_name = "AGENT:TEMPLATE")]
    stages: Vec<String>,
    /// A glob of paths the change may touch (repeatable).
    #[arg(long, value_name = "GLOB")]
    scope: Vec<String>,
    /// A check run after every stage (repeatable, in order).
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// What to do when every stage passed: merge, stash, revert or keep.
    #[arg(long, value_name = "POLICY")]
    on_pass: Option<String>,
    /// What to do with the work when a stage fails: stash, revert or keep.
    #[arg(long, value_name = "POLICY")]
    on_fail: Option<String>,
    /// Land as uncommitted changes instead of a commit.
    #[arg(long)]
    apply: bool,
    /// Print the pipeline's report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn cmd_pipeline(dir: &Path, args: PipelineArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let config = Config::load(&repo.root)?;
    let (defaults, mut stages) = match &args.file {
        Some(path) => {
            let file = pipeline::load(path)?;
            (file.defaults, file.stages)
        }
        None => (Settings::default(), vec![]),
    };
    for s in &args.stages {
        stages.push(Stage::parse(s)?);
    }
    let Some(first) = stages.first().cloned() else {
        return Err(pipeline::PipelineError::NoStages.into());
    };
    let task = args
        .task
        .clone()
        .or_else(|| defaults.task.clone())
        .ok_or_else(|| {
            Error::Usage("no task; give --task \"...\" or `task` in the pipeline file".into())
        })?;
    let top_scope = if args.scope.is_empty() {
        defaults.scope.clone().unwrap_or_default()
    } else {
        args.scope.clone()
    };
    let top_checks = if args.checks.is_empty() {
        defaults.checks.clone().unwrap_or_default()
    } else {
        args.checks.clone()
    };
    let pipeline = Pipeline {
        stages,
        scope: top_scope,
        checks: top_checks,
    };
    // The plan is resolved (and refused) over the whole: every stage's scope and
    // checks; each stage is then judged by its own.
    let scope = pipeline.whole_scope();
    let checks = pipeline.all_checks();
    let handoff = crate::handoff::render_new(
        &NewHandoff {
            template: first.template().to_string(),
            task,
            scope: scope.clone(),
            checks: checks.clone(),
            agent: Some(first.agent.clone()),
            ..NewHandoff::default()
        },
        Some(&crate::config::repo_templates(&repo.root)),
    )?;
    let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let flags = Settings {
        agent: Some(first.agent.clone()),
        scope: list(scope),
        checks: list(checks),
        on_pass: args
            .on_pass
            .as_deref()
            .map(|p| super::parse_policy(p, "--on-pass"))
            .transpose()?
            .or(defaults.on_pass),
        on_fail: args
            .on_fail
            .as_deref()
            .map(|p| super::parse_policy(p, "--on-fail"))
            .transpose()?
            // The file's own policy, when the command line gives none.
            .or(defaults.on_fail),
        ..defaults
    };
    let plan = Plan::resolve(
        config,
        Request {
            flags,
            handoff,
            base: Base::Head,
            apply: args.apply,
            cwd: dir.to_path_buf(),
            repo_root: repo.root.clone(),
            worktrees_dir: None,
        },
    )?;
    process::install_interrupt_handler();
    // Each stage and round is shown as a run is: its stages, its checks, its outcome.
    let shown = || -> Vec<Box<dyn crate::events::Observer>> {
        vec![Box::new(StageView(crate::events::Terminal::new(
            super::verbosity(),
        )))]
    };
    let report = pipeline::pipeline(&repo, &plan, &pipeline, args.apply, &shown)?;
    crate::say!("{}", pipeline::summary(&report).trim_end());
    if args.json {
        super::print_json(&report);
    }
    Ok(report.exit_code)
}

/// A stage's run on the terminal, as `baton run` shows it, but for the hand-off
/// between stages: a stage's run is kept only for the next stage to go on in, which
/// is no outcome the user has to decide on, and the pipeline's own summary says how
/// the whole ended.
struct StageView(crate::events::Terminal);

impl crate::events::Observer for StageView {
    fn on(&mut self, run_id: &str, ts_ms: u64, event: &crate::events::RunEvent) {
        use crate::events::RunEvent;
        let handed_on = match event {
            RunEvent::Outcome { outcome } => outcome.action == crate::report::OutcomeAction::Kept,
            RunEvent::RunFinished { .. } => true,
            _ => false,
        };
        if !handed_on {
            self.0.on(run_id, ts_ms, event);
        }
    }
}

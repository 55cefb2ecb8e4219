//! `baton run`

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::handoff::{HandoffFields, load_or_build};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::handoff::{Handoff, NewHandoff};
use crate::report::{Policy, RunReport};
use crate::run::{self, Base, Plan, Request};
use crate::settings::Settings;
use crate::{duration, exit, process, ui};

/// Delegate one change: write or read the handoff, run the agent in a fresh worktree,
/// run the checks, judge the scope, then merge, revert, stash or keep the result.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A handoff file (see `baton handoff new`); or give --task instead.
    file: Option<PathBuf>,
    /// The task, when there is no handoff file; baton writes the handoff.
    #[arg(long, conflicts_with = "file")]
    task: Option<String>,
    #[command(flatten)]
    fields: HandoffFields,
    /// The agent: codex, claude, gemini, cmd:<shell command> (run with `sh -c` in the
    /// worktree), or auto (picked by the task's words: `baton route "TASK"` shows which).
    #[arg(long)]
    agent: Option<String>,
    /// The model the agent is to use (its `[agents.NAME] model` for this run).
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// An agent to hand the task to when the previous one fails (repeatable, in order).
    #[arg(long = "fallback", value_name = "AGENT")]
    fallback: Vec<String>,
    /// Retry a rate-limited, server-error or network failure this many times per agent.
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// When the checks fail or the scope is violated, resume the agent's session with
    /// what failed (templates/repair.md.hbs) and verify again, up to N times.
    #[arg(long, value_name = "N")]
    repair: Option<u32>,
    /// A glob of paths the change may touch (repeatable; `*` does not cross `/`).
    /// Replaces the handoff's scope.
    #[arg(long, value_name = "GLOB")]
    scope: Vec<String>,
    /// A glob of paths the change must never touch (repeatable; added to the handoff's).
    #[arg(long, value_name = "GLOB")]
    deny: Vec<String>,
    /// A check to run in the worktree (repeatable, in order). Replaces the handoff's.
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// Start from this commit instead of HEAD.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Start from your staged, unstaged and untracked changes (your tree is not touched).
    #[arg(long, conflicts_with = "base")]
    include_dirty: bool,
    /// What to do when the run passes: merge, revert, stash or keep.
    #[arg(long, value_name = "POLICY")]
    on_pass: Option<String>,
    /// What to do when it fails: stash, revert or keep.
    #[arg(long, value_name = "POLICY")]
    on_fail: Option<String>,
    /// Ask at the terminal what to do with the result.
    #[arg(long)]
    ask: bool,
    /// Land a passing change as uncommitted changes instead of a commit.
    #[arg(long)]
    apply: bool,
    /// Wall-clock limit for the agent, like 20m (default 20m; 0 means no limit).
    #[arg(long, value_parser = duration::parse)]
    timeout: Option<Duration>,
    /// Stop the agent after this long without output, like 5m (default none; 0 means
    /// no limit).
    #[arg(long, value_parser = duration::parse)]
    idle_timeout: Option<Duration>,
    /// Limit for each check, like 10m (default 10m; 0 means no limit).
    #[arg(long, value_parser = duration::parse)]
    check_timeout: Option<Duration>,
    /// Largest file the change may write, like 512k or 10M (default 10M; 0 means no
    /// limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_file_size: Option<u64>,
    /// Most files the change may touch (default none; 0 means no limit).
    #[arg(long, value_name = "N")]
    max_files: Option<u64>,
    /// Most lines the change may add and remove, together (default none; 0 means no
    /// limit).
    #[arg(long, value_name = "N")]
    max_lines: Option<u64>,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// With --json: print every event as a JSON line on stdout while the run goes,
    /// ending with a `report` line (the format is in README.md).
    #[arg(long, requires = "json")]
    stream: bool,
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    crate::scope::parse_size(text).map_err(|e| e.to_string())
}

fn load_handoff(dir: &Path, args: &RunArgs) -> Result<Handoff> {
    load_or_build(
        dir,
        args.file.as_deref(),
        args.task.as_deref(),
        &args.fields,
        NewHandoff {
            scope: args.scope.clone(),
            deny: args.deny.clone(),
            checks: args.checks.clone(),
            agent: args.agent.clone(),
            timeout: args.timeout,
            idle_timeout: args.idle_timeout,
            ..NewHandoff::default()
        },
        "nothing to run; give a handoff file (`baton run task.md`) or --task \"...\"",
    )
}

/// The flags as the top layer of settings; a list flag given no value leaves the
/// layers below in force.
fn flags(args: &RunArgs) -> Result<Settings> {
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    Ok(Settings {
        agent: args.agent.clone(),
        fallback: list(&args.fallback),
        scope: list(&args.scope),
        deny: list(&args.deny),
        checks: list(&args.checks),
        timeout: args.timeout,
        idle_timeout: args.idle_timeout,
        check_timeout: args.check_timeout,
        on_pass: args
            .on_pass
            .as_deref()
            .map(|p| super::parse_policy(p, "--on-pass"))
            .transpose()?,
        on_fail: args
            .on_fail
            .as_deref()
            .map(|p| super::parse_policy(p, "--on-fail"))
            .transpose()?,
        retries: args.retries,
        repair: args.repair,
        max_file_size: args.max_file_size,
        max_files: args.max_files,
        max_lines: args.max_lines,
        ..Settings::default()
    })
}

/// Resolves flags over the handoff over the config into the run's plan, refusing bad
/// input before anything is created.
fn plan(dir: &Path, args: &RunArgs, repo_root: &Path) -> Result<Plan> {
    let config = Config::load(repo_root)?;
    let flags = flags(args)?;
    let handoff = load_handoff(dir, args)?;
    if args.ask && !ui::stdin_is_terminal() {
        return Err(Error::Usage(
            "--ask needs a terminal to ask at; in scripts use --on-pass and --on-fail".into(),
        ));
    }
    let base = match (&args.base, args.include_dirty) {
        (_, true) => Base::Dirty,
        (Some(rev), false) => Base::Rev(rev.clone()),
        (None, false) => Base::Head,
    };
    let plan = Plan::resolve(
        config,
        Request {
            flags,
            handoff,
            base,
            apply: args.apply,
            cwd: dir.to_path_buf(),
            repo_root: repo_root.to_path_buf(),
            worktrees_dir: None,
        },
    )?;
    with_model(plan, args.model.as_deref())
}

/// `--model M`: the first agent's `[agents.NAME] model` for this run; refused for a
/// `cmd:` agent, which has no model to set.
fn with_model(mut plan: Plan, model: Option<&str>) -> Result<Plan> {
    let Some(model) = model else {
        return Ok(plan);
    };
    let name = match &plan.agents[0] {
        crate::agent::AgentSpec::Codex => "codex",
        crate::agent::AgentSpec::Claude => "claude",
        crate::agent::AgentSpec::Gemini => "gemini",
        crate::agent::AgentSpec::Cmd(_) => {
            return Err(Error::Usage(
                "--model sets the model of codex, claude or gemini; a cmd: agent has none".into(),
            ));
        }
    };
    plan.config.agents.entry(name.into()).or_default().model = Some(model.to_string());
    Ok(plan)
}

fn ask_policy(report: &RunReport) -> Policy {
    let (question, choices): (&str, &[(&str, Policy)]) = if report.verdict.passed() {
        (
            "The run passed. [m]erge, [s]tash, [r]evert or [k]eep?",
            &[
                ("m", Policy::Merge),
                ("s", Policy::Stash),
                ("r", Policy::Revert),
                ("k", Policy::Keep),
            ],
        )
    } else {
        (
            "The run did not pass. [s]tash, [r]evert or [k]eep?",
            &[
                ("s", Policy::Stash),
                ("r", Policy::Revert),
                ("k", Policy::Keep),
            ],
        )
    };
    loop {
        // No answer (end of input) keeps the run: the safest choice loses nothing.
        let Some(answer) = ui::ask(question) else {
            return Policy::Keep;
        };
        if let Some((_, p)) = choices
            .iter()
            .find(|(key, p)| answer == *key || Some(*p) == Policy::parse(&answer))
        {
            return *p;
        }
    }
}

pub fn cmd_run(dir: &Path, args: RunArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let plan = plan(dir, &args, &repo.root)?;
    process::install_interrupt_handler();
    let ask = args.ask;
    let report = run::run(&repo, &plan, super::observers(args.stream), &mut |r| {
        if ask {
            ask_policy(r)
        } else {
            run::default_policy(r)
        }
    })?;
    ui::summary(&report);
    if args.json && !args.stream {
        super::print_json(&report);
    }
    Ok(exit::for_report(&report))
}

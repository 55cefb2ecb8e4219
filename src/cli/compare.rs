//! `baton compare`, `baton compare show`, `baton compare land`

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use super::handoff::{HandoffFields, load_or_build};
use crate::agent::AgentSpec;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::handoff::{Handoff, NewHandoff};
use crate::report::Policy;
use crate::run::{Base, Plan, Request};
use crate::settings::Settings;
use crate::workflow::compare::{self, Options};
use crate::{duration, exit, process, ui};

/// Run the same handoff as several candidates at once, each in its own worktree, and
/// land the best by evidence: checks pass and scope clean, then identical changes vote,
/// then the smallest change, then the first to finish (or `--judge AGENT`). Every
/// candidate's change is kept as `refs/baton/compare/<id>/<n>`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CompareArgs {
    #[command(subcommand)]
    command: Option<CompareCommand>,
    /// A handoff file; or give --task instead.
    file: Option<PathBuf>,
    /// The task, when there is no handoff file; baton writes the handoff.
    #[arg(long, conflicts_with = "file")]
    task: Option<String>,
    #[command(flatten)]
    fields: HandoffFields,
    /// Candidates, comma-separated: `codex,claude,gemini`, `codex:2` (two of it),
    /// `codex@gpt-5.5` (with a model).
    #[arg(long, value_name = "A,B,...")]
    agents: Vec<String>,
    /// One candidate, taken whole (repeatable; how `cmd:` candidates are given).
    #[arg(long, value_name = "AGENT")]
    agent: Vec<String>,
    /// Run each --agent (or the handoff's agent) this many times.
    #[arg(short = 'n', value_name = "N")]
    n: Option<u32>,
    /// Stop the other candidates as soon as one passes (their work is still kept).
    #[arg(long)]
    first_pass: bool,
    /// An agent shown the tied diffs when rules 1-3 leave a tie; it answers with a
    /// candidate number (a judge that does not answer changes nothing).
    #[arg(long, value_name = "AGENT")]
    judge: Option<String>,
    /// A glob of paths the change may touch (repeatable). Replaces the handoff's scope.
    #[arg(long, value_name = "GLOB")]
    scope: Vec<String>,
    /// A glob of paths the change must never touch (repeatable).
    #[arg(long, value_name = "GLOB")]
    deny: Vec<String>,
    /// A check to run in each worktree (repeatable, in order). Replaces the handoff's.
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// Start from this commit instead of HEAD.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// What to do with the winner: merge, stash, revert or keep.
    #[arg(long, value_name = "POLICY")]
    on_pass: Option<String>,
    /// What becomes of the other candidates' runs: keep (the default; `baton compare
    /// land ID N` can land one), stash or revert. Their refs stay either way.
    #[arg(long, value_name = "POLICY", default_value = "keep")]
    losers: String,
    /// Land the winner as uncommitted changes instead of a commit.
    #[arg(long)]
    apply: bool,
    /// Wall-clock limit for each agent, like 20m.
    #[arg(long, value_parser = duration::parse)]
    timeout: Option<Duration>,
    /// Stop an agent after this long without output, like 5m.
    #[arg(long, value_parser = duration::parse)]
    idle_timeout: Option<Duration>,
    /// Print the compare's report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum CompareCommand {
    /// Show a compare's table, and with --diff each candidate's change.
    Show(ShowArgs),
    /// Land another candidate of a compare instead of its winner.
    Land(LandArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The compare id (a unique prefix, or `last`).
    id: String,
    /// Show the candidates' diffs one after another.
    #[arg(long)]
    diff: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LandArgs {
    /// The compare id (a unique prefix, or `last`).
    id: String,
    /// The candidate's number, as the table shows it.
    candidate: u32,
    /// merge (the default), stash or revert.
    #[arg(long, value_name = "POLICY", default_value = "merge")]
    policy: String,
    /// Leave the change uncommitted instead of committing it.
    #[arg(long)]
    apply: bool,
    #[arg(long)]
    json: bool,
}

fn load_handoff(dir: &Path, args: &CompareArgs) -> Result<Handoff> {
    load_or_build(
        dir,
        args.file.as_deref(),
        args.task.as_deref(),
        &args.fields,
        NewHandoff {
            scope: args.scope.clone(),
            deny: args.deny.clone(),
            checks: args.checks.clone(),
            timeout: args.timeout,
            idle_timeout: args.idle_timeout,
            ..NewHandoff::default()
        },
        "nothing to compare; give a handoff file (`baton compare task.md --agents codex,claude`) or --task \"...\"",
    )
}

pub fn cmd_compare(dir: &Path, args: CompareArgs) -> Result<i32> {
    match args.command {
        Some(CompareCommand::Show(show)) => return cmd_show(dir, show),
        Some(CompareCommand::Land(land)) => return cmd_land(dir, land),
        None => {}
    }
    let repo = super::open_repo(dir)?;
    let config = Config::load(&repo.root)?;
    let handoff = load_handoff(dir, &args)?;
    let default = handoff
        .contract
        .agent
        .clone()
        .or_else(|| config.defaults.agent.clone());
    let candidates = compare::candidates(&args.agents, &args.agent, args.n, default.as_deref())?;
    let judge = args
        .judge
        .as_deref()
        .map(|j| {
            AgentSpec::parse(j).map_err(|e| {
                Error::from(compare::CompareError::NotAJudge {
                    text: j.to_string(),
                    reason: e.to_string(),
                })
            })
        })
        .transpose()?;
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let on_pass = args
        .on_pass
        .as_deref()
        .map(|p| super::parse_policy(p, "--on-pass"))
        .transpose()?;
    let flags = Settings {
        // The plan is resolved for the first candidate; each candidate's own agent
        // replaces it (see `compare::plans`).
        agent: Some(candidates[0].agent.label()),
        scope: list(&args.scope),
        deny: list(&args.deny),
        checks: list(&args.checks),
        timeout: args.timeout,
        idle_timeout: args.idle_timeout,
        on_pass,
        ..Settings::default()
    };
    let base = match &args.base {
        Some(rev) => Base::Rev(rev.clone()),
        None => Base::Head,
    };
    let plan = Plan::resolve(
        config,
        Request {
            flags,
            handoff,
            base,
            apply: args.apply,
            cwd: dir.to_path_buf(),
            repo_root: repo.root.clone(),
            worktrees_dir: None,
        },
    )?;
    let on_pass = plan.on_pass;
    let opts = Options {
        first_pass: args.first_pass,
        judge,
        losers: super::parse_policy(&args.losers, "--losers")?,
    };
    let plans = compare::plans(&plan, &candidates, &opts)?;
    process::install_interrupt_handler();
    let quiet = super::verbosity() == ui::Verbosity::Quiet;
    if !quiet {
        crate::say!(
            "baton compare: {} candidates at once: {}",
            candidates.len(),
            candidates
                .iter()
                .map(|c| c.label())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let report = compare::compare(
        &repo,
        plans,
        &candidates,
        &opts,
        on_pass,
        args.apply,
        &|n, label, r| {
            if !quiet {
                crate::say!(
                    "  candidate {n} ({label}) finished: {}",
                    r.verdict.describe()
                );
            }
        },
    )?;
    crate::say!("{}", compare::table(&report).trim_end());
    if args.json {
        super::print_json(&report);
    }
    Ok(report.exit_code)
}

fn cmd_show(dir: &Path, args: ShowArgs) -> Result<i32> {
    let repo = super::open_repo_to_read(dir)?;
    let report = compare::open(&repo, &args.id)?;
    if args.json {
        super::print_json(&report);
        return Ok(exit::OK);
    }
    crate::out!("{}", compare::table(&report).trim_end());
    if args.diff {
        let text = compare::diffs(&repo, &report)?;
        ui::out_raw(&ui::color_patch(ui::colored(true), &text));
    }
    Ok(exit::OK)
}

fn cmd_land(dir: &Path, args: LandArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let policy = super::parse_policy(&args.policy, "--policy")?;
    if policy == Policy::Keep {
        return Err(Error::Usage(
            "--policy keep lands nothing; use merge, stash or revert".into(),
        ));
    }
    let mut report = compare::open(&repo, &args.id)?;
    process::install_interrupt_handler();
    let landed = compare::land_other(&repo, &mut report, args.candidate, policy, args.apply)?;
    ui::summary(&landed);
    if args.json {
        super::print_json(&landed);
    }
    Ok(exit::for_decision(&landed, policy))
}

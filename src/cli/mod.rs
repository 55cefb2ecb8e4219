//! The command line: the only place that knows clap. One file per command, each with
//! an Args struct whose doc comments are the help text and a `cmd_*` function that
//! builds options and calls the core.

mod clean;
mod commit;
mod compare;
mod completions;
mod decide;
mod demo;
mod doctor;
mod handoff;
mod help;
mod hook;
mod init;
mod man;
mod model_server;
mod pager;
mod pipeline;
mod precommit;
mod recover;
mod replay;
mod resume;
mod route;
mod run;
mod status;
mod sweep;
mod worker;

use std::path::PathBuf;

use clap::{FromArgMatches as _, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::{exit, ui};

/// baton hands a scoped change to a coding agent in an isolated git worktree, verifies
/// it (checks and scope), then merges, reverts, stashes or keeps it.
///
/// Exit status: 0 landed or passed as asked; 1 checks failed; 2 usage or configuration
/// error; 3 scope violation; 4 the agent failed; 5 conflict with your branch or tree; 6 baton
/// itself failed after the run started; 7 another lander holds a sweep's lease;
/// 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "baton", version = help::VERSION, max_term_width = 100)]
pub struct Cli {
    /// Run as if baton was started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    directory: Option<PathBuf>,

    /// Show more while a run goes: the agent's and the checks' output lines.
    #[arg(short = 'v', long, global = true, conflicts_with = "quiet")]
    verbose: bool,

    /// Show only the result of a run (errors still show).
    #[arg(short = 'q', long, global = true)]
    quiet: bool,

    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: ui::ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::InitArgs),
    /// Write a handoff from a template, or print one as the agent receives it.
    #[command(subcommand)]
    Handoff(handoff::HandoffCommand),
    Run(Box<run::RunArgs>),
    Compare(Box<compare::CompareArgs>),
    Pipeline(Box<pipeline::PipelineArgs>),
    Status(status::StatusArgs),
    Show(status::ShowArgs),
    Replay(replay::ReplayArgs),
    Resume(resume::ResumeArgs),
    Merge(decide::MergeArgs),
    /// Discard a kept run: remove its worktree and branch (its patch stays in the
    /// journal).
    Revert(decide::RunRef),
    /// Save a kept run as an entry of your stash (`git stash apply` brings it back),
    /// then remove its worktree and branch.
    Stash(decide::RunRef),
    Sweep(Box<sweep::SweepArgs>),
    Worker(worker::WorkerArgs),
    Recover(recover::RecoverArgs),
    Clean(clean::CleanArgs),
    Demo(demo::DemoArgs),
    Route(route::RouteArgs),
    Doctor(doctor::DoctorArgs),
    ModelServer(model_server::ModelServerArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
    Precommit(precommit::PrecommitArgs),
    Commit(commit::CommitArgs),
    /// Install or remove the pre-commit hook that runs `baton precommit`.
    #[command(subcommand)]
    Hook(hook::HookCommand),
}

/// Parses the command line, runs the command, and returns the exit status.
pub fn main() -> i32 {
    // Parsed through `help::command()`, the command line with its examples and
    // environment attached, so `--help` shows them.
    let parsed = help::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if !e.use_stderr() => {
            // --help and --version, as clap writes them.
            let _ = e.print();
            return exit::OK;
        }
        Err(e) => {
            ui::error(&usage_line(&e), &[]);
            return exit::USAGE;
        }
    };
    let pager = paged(&matches).then(pager::start).flatten();
    // The page stands for the terminal stdout was: its colours stay on, as git's do
    // in its pager, unless asked otherwise (decided before `dispatch` sets the choice).
    if pager.is_some() && cli.color == ui::ColorChoice::Auto && ui::colored(false) {
        ui::set_color(ui::ColorChoice::Always);
    }
    let result = dispatch(cli);
    // The page is over before an error is said, so the error is not lost behind it.
    if let Some(pager) = pager {
        pager.finish();
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            let message = err.to_string();
            let mut causes: Vec<String> = vec![];
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                // A cause already said (an io error quoted in its context) is not said
                // again.
                let text = cause.to_string();
                if !message.contains(&text) && !causes.iter().any(|c| c.contains(&text)) {
                    causes.push(text);
                }
                source = cause.source();
            }
            ui::error(&message, &causes);
            let code = exit::for_error(&err);
            if std::env::args().any(|a| a == "--json") {
                // A script that asked for JSON gets the error as JSON too.
                crate::out!(
                    "{}",
                    serde_json::json!({ "error": { "message": message, "causes": causes, "exit_code": code } })
                );
            }
            if let Error::RunFailed(f) = &err {
                crate::say!(
                    "  run {} stopped in its {} stage; its journal is {} — `baton show {}` tells what it did, `baton recover` finishes or rolls back what it left",
                    f.run_id,
                    format!("{:?}", f.stage).to_lowercase(),
                    f.journal.display(),
                    f.run_id
                );
            }
            code
        }
    }
}

/// How much runs started by this command show, from `-v` / `-q` (set once, when the
/// command line is parsed).
static VERBOSITY: std::sync::OnceLock<ui::Verbosity> = std::sync::OnceLock::new();

fn verbosity() -> ui::Verbosity {
    VERBOSITY.get().copied().unwrap_or_default()
}

/// clap's own error as one line like baton's: what is wrong, clap's hints (the values
/// allowed, a similar name that exists), and the help to read — the command's own
/// when the command line names one.
fn usage_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    // The message is clap's lines before its usage, joined (the values allowed among
    // them); its tips (a similar name that exists) follow a blank line.
    let message = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = match message.trim_start_matches("error: ") {
        "" => "bad usage",
        m => m,
    };
    let tips: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    let tips = if tips.is_empty() {
        String::new()
    } else {
        format!(" ({})", tips.join("; "))
    };
    let top = help::command();
    let command = std::env::args()
        .skip(1)
        .find(|a| top.find_subcommand(a).is_some())
        .map(|c| format!("baton {c} --help"))
        .unwrap_or_else(|| "baton --help".into());
    format!("{message}{tips}; see `{command}`")
}

/// Whether the command prints something long enough for a pager: `show --diff`
/// (not with `--json`).
fn paged(matches: &clap::ArgMatches) -> bool {
    let flag = |m: &clap::ArgMatches, id: &str| {
        m.try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    };
    matches
        .subcommand_matches("show")
        .is_some_and(|show| flag(show, "diff") && !flag(show, "json"))
}

fn dispatch(cli: Cli) -> Result<i32> {
    ui::set_color(cli.color);
    let _ = VERBOSITY.set(match (cli.verbose, cli.quiet) {
        (true, _) => ui::Verbosity::Verbose,
        (_, true) => ui::Verbosity::Quiet,
        _ => ui::Verbosity::Normal,
    });
    let dir = match cli.directory {
        // Said here, before any command mistakes it for "not a repository".
        Some(d) => match std::fs::metadata(&d) {
            Ok(m) if m.is_dir() => d,
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "-C {}: not a directory; give the directory to run baton in",
                    d.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Usage(format!(
                    "-C {}: no such directory; check the path (it is taken from where baton was started)",
                    d.display()
                )));
            }
            Err(source) => {
                return Err(Error::Io {
                    context: format!("cannot use -C {}", d.display()),
                    source,
                });
            }
        },
        None => std::env::current_dir().map_err(|source| Error::Io {
            context: "cannot read the current directory".into(),
            source,
        })?,
    };
    match cli.command {
        Command::Init(args) => init::cmd_init(&dir, args),
        Command::Handoff(cmd) => handoff::cmd_handoff(&dir, cmd),
        Command::Run(args) => run::cmd_run(&dir, *args),
        Command::Compare(args) => compare::cmd_compare(&dir, *args),
        Command::Pipeline(args) => pipeline::cmd_pipeline(&dir, *args),
        Command::Status(args) => status::cmd_status(&dir, args),
        Command::Show(args) => status::cmd_show(&dir, args),
        Command::Replay(args) => replay::cmd_replay(&dir, args),
        Command::Resume(args) => resume::cmd_resume(&dir, args),
        Command::Merge(args) => decide::cmd_merge(&dir, args),
        Command::Revert(args) => decide::cmd_revert(&dir, args),
        Command::Stash(args) => decide::cmd_stash(&dir, args),
        Command::Sweep(args) => sweep::cmd_sweep(&dir, *args),
        Command::Worker(args) => worker::cmd_worker(&dir, args),
        Command::Recover(args) => recover::cmd_recover(&dir, args),
        Command::Clean(args) => clean::cmd_clean(&dir, args),
        Command::Demo(args) => demo::cmd_demo(args),
        Command::Route(args) => route::cmd_route(&dir, args),
        Command::Doctor(args) => doctor::cmd_doctor(&dir, args),
        Command::ModelServer(args) => model_server::cmd_model_server(args),
        Command::Completions(args) => completions::cmd_completions(args),
        Command::Man(args) => man::cmd_man(args),
        Command::Precommit(args) => precommit::cmd_precommit(&dir, args),
        Command::Commit(args) => commit::cmd_commit(&dir, args),
        Command::Hook(cmd) => hook::cmd_hook(&dir, cmd),
    }
}

/// A landing policy from a flag; `--on-fail merge` is refused, since it would land
/// a change that was not verified.
fn parse_policy(text: &str, flag: &str) -> Result<crate::report::Policy> {
    use crate::report::Policy;
    let policy = Policy::parse(text).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} `{text}` is not a policy; use merge, revert, stash or keep"
        ))
    })?;
    if flag == "--on-fail" && policy == Policy::Merge {
        return Err(Error::Usage(
            "--on-fail merge would land a change that was not verified; choose stash, revert or keep".into(),
        ));
    }
    Ok(policy)
}

/// The repository baton was started in, refusing one of baton's own run worktrees:
/// a run started there would branch from, and land on, the kept run's `baton/<id>`.
fn open_repo(dir: &std::path::Path) -> Result<Repo> {
    let repo = Repo::discover(dir)?;
    let back = || {
        repo.main_root()
            .map(|m| m.display().to_string())
            .unwrap_or_else(|| "your repository".into())
    };
    if let Some(reason) = Repo::worktree_lock_reason(&repo.root) {
        if reason.starts_with(crate::worktree::pool::POOL_REASON) {
            return Err(Error::Usage(format!(
                "{} is a worktree of baton's pool, kept for the next run, not your repository; cd back to {} and run baton there",
                repo.root.display(),
                back(),
            )));
        }
    }
    if let Some((run_id, _)) = own_worktree(&repo) {
        return Err(Error::Usage(format!(
            "{} is the worktree of baton run {run_id}, not your repository; cd back to {} and run baton there (`baton show {run_id}` tells what the run did)",
            repo.root.display(),
            back(),
        )));
    }
    Ok(repo)
}

/// For commands that only read the journal (status, show): any checkout will do.
fn open_repo_to_read(dir: &std::path::Path) -> Result<Repo> {
    Ok(Repo::discover(dir)?)
}

/// The run whose worktree `repo` is checked out in, if it is one of baton's.
fn own_worktree(repo: &Repo) -> Option<(String, Option<std::path::PathBuf>)> {
    if repo.git_dir == repo.common_dir {
        return None;
    }
    let root = repo
        .root
        .canonicalize()
        .unwrap_or_else(|_| repo.root.clone());
    // The lock reason names the run that has the worktree now (a pooled worktree
    // keeps the name of the run it was made for).
    if let Some(id) = crate::worktree::run_holding(&repo.root) {
        return Some((id, repo.main_root()));
    }
    let runs = crate::journal::list_runs(&repo.common_dir).ok()?;
    let name = root.file_name()?.to_string_lossy().into_owned();
    let parent = root.parent()?.to_path_buf();
    runs.into_iter().find_map(|(_, state)| {
        let r = state.ok()?;
        // A run's worktrees sit side by side: `<id>` and, for later attempts, `<id>-aN`.
        let same_dir = r
            .worktree
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|p| p == parent);
        let ours = same_dir && (name == r.run_id || name.starts_with(&format!("{}-a", r.run_id)));
        ours.then(|| (r.run_id.clone(), repo.main_root()))
    })
}

/// Who watches a run started from the command line: the terminal, and with
/// `--json --stream` the JSON Lines on stdout.
fn observers(stream: bool) -> Vec<Box<dyn crate::events::Observer>> {
    let mut observers: Vec<Box<dyn crate::events::Observer>> =
        vec![Box::new(crate::events::Terminal::new(verbosity()))];
    if stream {
        observers.push(Box::new(crate::events::JsonLines));
    }
    observers
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => crate::out!("{text}"),
        Err(e) => ui::warn(format!("could not print JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_app() {
        super::help::command().debug_assert();
    }
}

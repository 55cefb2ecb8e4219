//! `baton sweep TASKS`, `baton sweep status [SWEEP]`, `baton sweep resume SWEEP`, and
//! for a sweep over machines `baton sweep land|status TASKS|SWEEP --remote URL`

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::error::{Error, Result};
use crate::events::{Observer, RunEvent};
use crate::report::Policy;
use crate::settings::Settings;
use crate::workflow::remote;
use crate::workflow::sweep::{
    self, Context, Flags, Options, QueueSettings, SweepEvent, SweepObserver, SweepReport, Watch,
};
use crate::{duration, process, ui};

/// Run many tasks at once, each in its own worktree, and land the ones that pass
/// through a merge queue that checks every change merged onto the branch as it lands.
///
/// TASKS is a TOML file (`[defaults]`, `[sweep]` and `[[task]]` tables, each task a
/// handoff contract with an `id`) or a Markdown checklist (every `- [ ] …` line is a
/// task; the flags give the rest). Exit status: 0 every task landed; 1 a task did not
/// (the report says why and where its work is); 2 bad input, nothing started; 130
/// interrupted.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: Option<SweepCommand>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Debug, Subcommand)]
enum SweepCommand {
    Status(StatusArgs),
    Resume(ResumeArgs),
    Land(LandArgs),
    Plan(PlanArgs),
}

/// Write a sweep out as a manifest for machines elsewhere: a Kubernetes Indexed Job
/// (one pod per task) or a GitHub Actions workflow (matrices of task indices and a
/// land job), each machine running `baton worker` for one task.
///
/// It opens the sweep on the remote first (or uses the one the task file has open
/// there), so that the manifest names it (`--sweep ID`). A bad input (an image that is
/// no image reference, `--parallelism 0`, a string that cannot go in a manifest) is
/// refused in one line before anything is pushed or written. Exit status: 0 written;
/// 2 bad input.
#[derive(Debug, Args)]
struct PlanArgs {
    /// The task file.
    #[arg(value_name = "TASKS")]
    tasks: PathBuf,
    /// The engine: k8s (or kubernetes), github.
    #[arg(long, value_name = "ENGINE")]
    emit: String,
    /// The remote every machine clones from and pushes its result to.
    #[arg(long, value_name = "URL")]
    remote: String,
    /// The container image the tasks run in (git, baton and the agent CLI on PATH).
    #[arg(long, value_name = "IMG", default_value = "")]
    image: String,
    /// Tasks running at once at most (default: all of them, up to 16).
    #[arg(long, value_name = "N")]
    parallelism: Option<usize>,
    /// The branch the sweep lands on (default: the remote's HEAD).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// A secret handed to the worker as an environment variable of that name, on
    /// GitHub (repeatable; default: OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY).
    #[arg(long = "agent-env", value_name = "NAME")]
    agent_env: Vec<String>,
    /// Where the manifest goes (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Show what became of every task of a sweep (the last one by default).
///
/// With --remote: the sweep of a task file (or a sweep id) on that remote — which
/// tasks have results (passed or not), which landed on the branch, which are missing.
#[derive(Debug, Args)]
struct StatusArgs {
    /// The sweep id (a unique prefix is enough, or `last`); with --remote, a task file
    /// or a sweep id.
    sweep: Option<String>,
    /// The remote of a sweep over machines (`baton worker`, `baton sweep land`).
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// With --remote: the branch the sweep lands on (default: the remote's HEAD, or
    /// the sweep's own when a sweep id is given).
    #[arg(long, value_name = "BRANCH", requires = "remote")]
    branch: Option<String>,
    /// With --remote: the sweep the task file must be the task file of.
    #[arg(long = "sweep", value_name = "ID", requires = "remote")]
    sweep_id: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Land the results `baton worker`s pushed to a remote: every passing one through the
/// merge queue (merged onto the branch's current tip, checked there, batched and
/// bisected), the branch pushed with a lease on the tip that was tested.
///
/// One lander per sweep: it holds the sweep's lease (`refs/baton/sweeps/<id>/lander`)
/// while it works; a killed lander run again in the same repository on the same host
/// takes its lease back, anyone else needs --take-over. A task already on the branch is
/// never landed again. Once every task has a result, the sweep is closed: the task
/// file's next run opens a new one. Exit status: 0 every task landed; 1 a task did not
/// (the report says why and where its result is); 2 bad input; 7 another lander holds
/// the lease; 130 interrupted.
#[derive(Debug, Args)]
struct LandArgs {
    /// The task file, or the sweep id.
    #[arg(value_name = "TASKS|SWEEP")]
    sweep: String,
    /// The remote the workers pushed their results to.
    #[arg(long, value_name = "URL")]
    remote: String,
    /// The branch the sweep lands on (default: the remote's HEAD, or the sweep's own
    /// when a sweep id is given).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// The sweep TASKS must be the task file of (as `baton sweep plan` names it).
    #[arg(long = "sweep", value_name = "ID")]
    sweep_id: Option<String>,
    /// Take the lease from the lander that holds it (when that lander is gone for good).
    #[arg(long)]
    take_over: bool,
    /// Candidates tested together (default: the file's `[sweep] batch`, else a quarter
    /// of the sweep, 1 to 16).
    #[arg(long, value_name = "K")]
    batch: Option<usize>,
    /// Wait this long (like 2h) for results still missing, landing each as it comes,
    /// instead of landing what is there and ending.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    wait: Option<Duration>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Finish a sweep that was interrupted or killed: recover its runs, start the tasks
/// that never ran, land the verified ones not yet landed.
#[derive(Debug, Args)]
struct ResumeArgs {
    /// The sweep id (a unique prefix is enough, or `last`).
    sweep: String,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// With --json: every event as a JSON line while it goes.
    #[arg(long, requires = "json")]
    stream: bool,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// The task file (TOML or Markdown).
    #[arg(required = true, value_name = "TASKS")]
    tasks: Option<PathBuf>,
    /// Runs at once (default: the number of CPUs).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Candidates the queue tests together (default: a quarter of the sweep, 1 to 16).
    #[arg(long, value_name = "K")]
    batch: Option<usize>,
    /// Run a task that conflicts with what landed before it again, once, from the new tip.
    #[arg(long)]
    retry_conflicts: bool,
    /// What becomes of a failed run, and of a candidate whose checks fail merged onto
    /// the branch: stash, revert or keep (runs: stash; candidates: keep).
    #[arg(long, value_name = "POLICY")]
    on_fail: Option<String>,
    /// A check run on every integrated tree before it lands (repeatable; over the
    /// file's `[sweep] gate`).
    #[arg(long = "gate", value_name = "CMD")]
    gate: Vec<String>,
    /// Reruns of a failing check before it counts against a candidate (default 1).
    #[arg(long, value_name = "N")]
    flaky_retries: Option<u32>,
    /// The agent of every task (over the file's).
    #[arg(long)]
    agent: Option<String>,
    /// An agent to hand a task to when the previous one fails (repeatable).
    #[arg(long = "fallback", value_name = "AGENT")]
    fallback: Vec<String>,
    /// A glob of paths a task's change may touch (repeatable).
    #[arg(long, value_name = "GLOB")]
    scope: Vec<String>,
    /// A glob of paths no change may touch (repeatable).
    #[arg(long, value_name = "GLOB")]
    deny: Vec<String>,
    /// A check to run in each task's worktree (repeatable, in order).
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// The handoff template of every task.
    #[arg(long)]
    template: Option<String>,
    /// Retry a rate-limited, server-error or network failure this many times per agent.
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Repair rounds when a task's checks fail or its scope is violated.
    #[arg(long, value_name = "N")]
    repair: Option<u32>,
    /// Wall-clock limit for each agent, like 20m.
    #[arg(long, value_parser = duration::parse)]
    timeout: Option<Duration>,
    /// Stop an agent after this long without output, like 5m.
    #[arg(long, value_parser = duration::parse)]
    idle_timeout: Option<Duration>,
    /// Limit for each check, like 10m.
    #[arg(long, value_parser = duration::parse)]
    check_timeout: Option<Duration>,
    /// Most files a change may touch.
    #[arg(long, value_name = "N")]
    max_files: Option<u64>,
    /// Most lines a change may add and remove, together.
    #[arg(long, value_name = "N")]
    max_lines: Option<u64>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// With --json: every event of every run (tagged with its task) and of the queue
    /// as a JSON line while the sweep goes, ending with a `sweep.report` line.
    #[arg(long, requires = "json")]
    stream: bool,
}

pub fn cmd_sweep(dir: &Path, args: SweepArgs) -> Result<i32> {
    match args.command {
        Some(SweepCommand::Status(a)) => cmd_status(dir, a),
        Some(SweepCommand::Resume(a)) => cmd_resume(dir, a),
        Some(SweepCommand::Land(a)) => cmd_land(dir, a),
        Some(SweepCommand::Plan(a)) => cmd_plan(dir, a),
        None => cmd_start(dir, args.start),
    }
}

fn flags(args: &StartArgs) -> Result<Flags> {
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let on_fail = args
        .on_fail
        .as_deref()
        .map(|p| super::parse_policy(p, "--on-fail"))
        .transpose()?;
    Ok(Flags {
        settings: Settings {
            agent: args.agent.clone(),
            fallback: list(&args.fallback),
            scope: list(&args.scope),
            deny: list(&args.deny),
            checks: list(&args.checks),
            template: args.template.clone(),
            timeout: args.timeout,
            idle_timeout: args.idle_timeout,
            check_timeout: args.check_timeout,
            retries: args.retries,
            repair: args.repair,
            max_files: args.max_files,
            max_lines: args.max_lines,
            on_fail,
            ..Settings::default()
        },
        queue: QueueSettings {
            gate: args.gate.clone(),
            flaky_retries: args.flaky_retries,
            batch: args.batch,
        },
    })
}

fn cmd_start(dir: &Path, args: StartArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let Some(path) = args.tasks.clone() else {
        return Err(Error::Usage(
            "nothing to sweep; give a task file: `baton sweep tasks.toml`".into(),
        ));
    };
    if args.jobs == Some(0) {
        return Err(Error::Usage(
            "-j 0 would run nothing; give at least 1".into(),
        ));
    }
    let flags = flags(&args)?;
    let text = std::fs::read_to_string(&path).map_err(|source| sweep::SweepError::Read {
        path: path.clone(),
        source,
    })?;
    let ctx = Context {
        repo: &repo,
        cwd: dir.to_path_buf(),
        flags: flags.clone(),
        target: sweep::target_of(&repo)?,
        pipelines_dir: None,
    };
    // Every task is resolved before anything starts.
    let file = sweep::load(&ctx, &path, &text)?;
    let mut options = Options {
        retry_conflicts: args.retry_conflicts,
        on_fail: flags.settings.on_fail,
        ..Options::default()
    };
    if let Some(j) = args.jobs {
        options.jobs = j;
    }
    if options.on_fail == Some(Policy::Merge) {
        return Err(Error::Usage("--on-fail merge is refused".into()));
    }
    process::install_interrupt_handler();
    let view = View::new(file.tasks.len(), args.stream);
    let runs = view.run_observers();
    let report = sweep::start(&repo, file, flags, options, view.watch(&runs));
    view.close();
    finish(&report?, args.json && !args.stream)
}

fn cmd_resume(dir: &Path, args: ResumeArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    process::install_interrupt_handler();
    let view = View::new(0, args.stream);
    let runs = view.run_observers();
    let report = sweep::resume(&repo, &args.sweep, dir, view.watch(&runs));
    view.close();
    finish(&report?, args.json && !args.stream)
}

fn remote_options(
    dir: &Path,
    what: &str,
    url: &str,
    branch: Option<String>,
    sweep: Option<String>,
    take_over: bool,
) -> remote::RemoteOptions {
    remote::RemoteOptions {
        source: remote::Source::parse(what, dir),
        url: url.to_string(),
        branch,
        cwd: dir.to_path_buf(),
        sweep,
        take_over,
        batch: None,
        wait: None,
    }
}

fn cmd_land(dir: &Path, args: LandArgs) -> Result<i32> {
    if args.batch == Some(0) {
        return Err(Error::Usage(
            "--batch 0 would test nothing; a batch holds at least one candidate".into(),
        ));
    }
    process::install_interrupt_handler();
    let mut opts = remote_options(
        dir,
        &args.sweep,
        &args.remote,
        args.branch,
        args.sweep_id,
        args.take_over,
    );
    opts.batch = args.batch;
    opts.wait = args.wait;
    let observers = || -> Vec<Box<dyn SweepObserver>> {
        if super::verbosity() == ui::Verbosity::Quiet {
            vec![]
        } else {
            vec![Box::new(QueueLines)]
        }
    };
    let report = remote::land(&opts, &observers)?;
    let mut text = String::from("\n");
    remote_table(&report, &mut text);
    crate::say!("{}", text.trim_end());
    if args.json {
        super::print_json(&report);
    }
    Ok(report.exit_code)
}

fn cmd_plan(dir: &Path, args: PlanArgs) -> Result<i32> {
    use crate::workflow::manifest::{self, DEFAULT_AGENT_ENV, Engine, PlanSpec};
    let engine: Engine = args.emit.parse()?;
    let file = dir.join(&args.tasks);
    let input = remote::plan_input(dir, &file, &args.remote, args.branch.as_deref())?;
    let agent_env: Vec<&str> = if args.agent_env.is_empty() {
        DEFAULT_AGENT_ENV.to_vec()
    } else {
        args.agent_env.iter().map(String::as_str).collect()
    };
    let spec = |sweep_id| PlanSpec {
        sweep_id,
        remote: &args.remote,
        image: &args.image,
        parallelism: args.parallelism.unwrap_or(input.tasks.clamp(1, 16)),
        task_file: &input.task_file,
        task_file_text: &input.text,
        tasks: input.tasks,
        target: &input.target,
        agent_env: &agent_env,
    };
    // Every input but the id is checked before the sweep is opened: a refused
    // manifest pushes nothing. (An id baton derives always goes in a manifest.)
    manifest::emit(engine, &spec("sweep-id"))?;
    let sweep = remote::plan_open(&input, &file)?;
    let text = manifest::emit(engine, &spec(&sweep.id))?;
    match &args.output {
        Some(path) => std::fs::write(dir.join(path), &text).map_err(|source| Error::Io {
            context: format!("cannot write the manifest to {}", path.display()),
            source,
        })?,
        None => crate::ui::out_raw(&text),
    }
    ui::progress(
        "plan",
        format!(
            "sweep {} of {} task(s) on {} at {}, from {}{}",
            sweep.id,
            input.tasks,
            input.target,
            args.remote,
            &sweep.base[..sweep.base.len().min(10)],
            args.output
                .as_ref()
                .map(|p| format!("; {engine} manifest written to {}", p.display()))
                .unwrap_or_default()
        ),
    );
    Ok(crate::exit::OK)
}

fn cmd_remote_status(dir: &Path, args: StatusArgs, url: &str) -> Result<i32> {
    let Some(what) = args.sweep.as_deref() else {
        return Err(Error::Usage(format!(
            "sweep status --remote needs the task file or the sweep id: `baton sweep status tasks.toml --remote {url}`"
        )));
    };
    let opts = remote_options(dir, what, url, args.branch, args.sweep_id, false);
    let report = remote::status(&opts)?;
    if args.json {
        super::print_json(&report);
    } else {
        let mut text = String::new();
        remote_table(&report, &mut text);
        crate::ui::out_raw(&text);
    }
    Ok(crate::exit::OK)
}

/// The table of a sweep over machines: every task, its result, whether it landed, and
/// where its work is.
fn remote_table(report: &remote::RemoteReport, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "sweep {}: {} of {} task(s) landed on {} at {}{}{}",
        report.sweep_id,
        report.landed,
        report.total,
        report.target,
        report.remote,
        if report.missing > 0 {
            format!(", {} without a result yet", report.missing)
        } else {
            String::new()
        },
        if report.closed { " (closed)" } else { "" },
    );
    let width = report
        .tasks
        .iter()
        .map(|t| t.id.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 32);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<14}  {:<6}  {:<18}  where",
        "task", "result", "landed", "reason"
    );
    for t in &report.tasks {
        let id: String = t.id.chars().take(width).collect();
        let _ = writeln!(
            out,
            "  {:<width$}  {:<14}  {:<6}  {:<18}  {}",
            id,
            t.result,
            if t.landed { "yes" } else { "no" },
            t.reason.as_deref().unwrap_or("-"),
            t.location.as_deref().unwrap_or("-"),
        );
        let why = match (&t.check, t.paths.is_empty(), &t.detail) {
            (_, false, _) => Some(format!(
                "paths: {}",
                t.paths
                    .iter()
                    .map(|p| ui::quote_path(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (Some(check), _, _) => Some(format!("check: {check}")),
            (None, true, Some(d)) if !t.landed && t.result != "missing" => Some(d.clone()),
            _ => None,
        };
        if let Some(why) = why {
            let _ = writeln!(out, "  {:<width$}  {}", "", ui::printable(&why));
        }
    }
}

fn cmd_status(dir: &Path, args: StatusArgs) -> Result<i32> {
    if let Some(url) = args.remote.clone() {
        return cmd_remote_status(dir, args, &url);
    }
    let repo = super::open_repo_to_read(dir)?;
    let query = args.sweep.as_deref().unwrap_or("last");
    let report = sweep::status(&repo, query)?;
    if args.json {
        super::print_json(&report);
    } else {
        let mut text = String::new();
        table(&report, &mut text);
        crate::ui::out_raw(&text);
    }
    Ok(crate::exit::OK)
}

fn finish(report: &SweepReport, json: bool) -> Result<i32> {
    let mut text = String::from("\n");
    table(report, &mut text);
    crate::say!("{}", text.trim_end());
    if json {
        super::print_json(report);
    }
    Ok(report.exit_code)
}

type RunObserverFactory = Box<dyn Fn(&str) -> Vec<Box<dyn Observer>> + Sync>;

/// How a sweep is shown: on a terminal a live board (one line per active run and a
/// line of totals, redrawn in place, with the queue's news printed above it); else
/// plain progress lines, each run's prefixed with its id. `--json --stream` adds every
/// event on stdout.
struct View {
    stream: bool,
    board: Option<Arc<Mutex<Board>>>,
    ticker: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl View {
    fn new(tasks: usize, stream: bool) -> View {
        let quiet = super::verbosity() == ui::Verbosity::Quiet;
        if quiet || !std::io::stderr().is_terminal() {
            return View {
                stream,
                board: None,
                ticker: None,
            };
        }
        let mut board = Board::new(tasks);
        board.area = Some(crate::ui::terminal::live_area());
        let board = Arc::new(Mutex::new(board));
        let stop = Arc::new(AtomicBool::new(false));
        // The elapsed times move even when no event comes.
        let ticker = {
            let (board, stop) = (board.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(500));
                    lock(&board).redraw();
                }
            })
        };
        View {
            stream,
            board: Some(board),
            ticker: Some((stop, ticker)),
        }
    }

    /// Each run's observers.
    fn run_observers(&self) -> RunObserverFactory {
        let stream = self.stream;
        let board = self.board.clone();
        Box::new(move |task: &str| {
            let mut observers: Vec<Box<dyn Observer>> = match &board {
                Some(b) => vec![Box::new(BoardRun {
                    board: b.clone(),
                    task: task.to_string(),
                })],
                None => vec![Box::new(crate::events::Terminal::new(super::verbosity()))],
            };
            if stream {
                observers.push(Box::new(TaskLines {
                    task: task.to_string(),
                }));
            }
            observers
        })
    }

    fn watch<'a>(&self, runs: &'a RunObserverFactory) -> Watch<'a> {
        let mut sweep: Vec<Box<dyn SweepObserver>> = match &self.board {
            Some(b) => vec![Box::new(BoardSweep { board: b.clone() })],
            None if super::verbosity() == ui::Verbosity::Quiet => vec![],
            None => vec![Box::new(QueueLines)],
        };
        if self.stream {
            sweep.push(Box::new(SweepLines));
        }
        Watch {
            runs: runs.as_ref(),
            sweep,
        }
    }

    /// Stops the board and takes it off the screen, before the table is printed.
    fn close(self) {
        if let Some((stop, ticker)) = self.ticker {
            stop.store(true, Ordering::SeqCst);
            let _ = ticker.join();
        }
        if let Some(board) = self.board {
            lock(&board).clear();
        }
    }
}

fn lock(board: &Mutex<Board>) -> std::sync::MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(|p| p.into_inner())
}

/// One active run on the board.
struct Row {
    run_id: String,
    task: String,
    agent: String,
    stage: String,
    since: Instant,
}

/// The live board's state, drawn (on a terminal) by indicatif in the screen area the
/// runs' status lines share.
struct Board {
    rows: Vec<Row>,
    /// Where it is drawn; none in the unit tests.
    area: Option<indicatif::ProgressBar>,
    tasks: usize,
    finished: usize,
    waiting: usize,
    landed: usize,
    started: Instant,
}

impl Board {
    fn new(tasks: usize) -> Board {
        Board {
            rows: vec![],
            area: None,
            tasks,
            finished: 0,
            waiting: 0,
            landed: 0,
            started: Instant::now(),
        }
    }

    /// The board's lines, each cut to `width` so that none wraps (a wrapped line would
    /// throw the redraw off).
    fn lines(&self, width: usize) -> Vec<String> {
        let now = Instant::now();
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "  {:<24} {:<20} {:<8} {:>4.0}s  {}",
                    truncate(&r.task, 24),
                    r.run_id,
                    r.stage,
                    now.duration_since(r.since).as_secs_f64(),
                    r.agent
                )
            })
            .collect();
        let of = if self.tasks > 0 {
            format!("/{}", self.tasks)
        } else {
            String::new()
        };
        lines.push(format!(
            "  {} running · {}{of} finished · {} waiting to land · {} landed · {:.0}s",
            self.rows.len(),
            self.finished,
            self.waiting,
            self.landed,
            now.duration_since(self.started).as_secs_f64()
        ));
        lines
            .into_iter()
            .map(|l| truncate(&ui::printable(&l), width))
            .collect()
    }

    fn clear(&mut self) {
        if let Some(area) = self.area.take() {
            area.finish_and_clear();
        }
    }

    fn redraw(&mut self) {
        // One column short of the terminal's width, so that no line wraps (80, as
        // indicatif assumes, when the terminal does not say).
        let width = ui::columns(libc::STDERR_FILENO)
            .filter(|&c| c > 0)
            .unwrap_or(80)
            .saturating_sub(1)
            .max(20);
        let lines = self.lines(width);
        if let Some(area) = &self.area {
            area.set_message(lines.join("\n"));
        }
    }

    /// A line of news above the board.
    fn say(&mut self, stage: &str, line: &str) {
        match &self.area {
            Some(area) => area.println(ui::progress_line(stage, line)),
            None => ui::progress(stage, line),
        }
        self.redraw();
    }
}

fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_string();
    }
    text.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
}

/// A run's events on the board.
struct BoardRun {
    board: Arc<Mutex<Board>>,
    task: String,
}

impl Observer for BoardRun {
    fn on(&mut self, run_id: &str, _ts_ms: u64, event: &RunEvent) {
        let mut board = lock(&self.board);
        let row = |board: &mut Board| board.rows.iter_mut().position(|r| r.run_id == run_id);
        match event {
            RunEvent::RunStarted { agent, .. } => {
                board.rows.push(Row {
                    run_id: run_id.to_string(),
                    task: self.task.clone(),
                    agent: agent.clone(),
                    stage: "created".into(),
                    since: Instant::now(),
                });
            }
            RunEvent::Stage { stage } => {
                if let Some(i) = row(&mut board) {
                    board.rows[i].stage = format!("{stage:?}").to_lowercase();
                }
            }
            RunEvent::Fallback { to, .. } => {
                if let Some(i) = row(&mut board) {
                    board.rows[i].agent = to.clone();
                }
            }
            RunEvent::Warning { message } => {
                let line = format!("{}: {message}", self.task);
                board.say("warning", &line);
                return;
            }
            // A kept run waits for the queue, whose news it is; so is a run the queue
            // lands later (it has no row any more).
            RunEvent::Outcome { outcome }
                if outcome.action != crate::report::OutcomeAction::Kept
                    && row(&mut board).is_some() =>
            {
                let line = format!("{}: {}", self.task, outcome.message);
                board.say("outcome", &line);
                return;
            }
            RunEvent::RunFinished { .. } => {
                if let Some(i) = row(&mut board) {
                    board.rows.remove(i);
                    board.finished += 1;
                }
            }
            _ => return,
        }
        board.redraw();
    }
}

/// The sweep's own events on the board: its counts, and the queue's news above it.
struct BoardSweep {
    board: Arc<Mutex<Board>>,
}

impl SweepObserver for BoardSweep {
    fn on(&mut self, sweep_id: &str, _ts_ms: u64, event: &SweepEvent) {
        let mut board = lock(&self.board);
        match event {
            SweepEvent::Started { tasks, .. } => board.tasks = *tasks,
            SweepEvent::Candidate { .. } => board.waiting += 1,
            SweepEvent::Landed { tasks, .. } => {
                board.landed += tasks.len();
                board.waiting = board.waiting.saturating_sub(tasks.len());
            }
            SweepEvent::Conflict { .. }
            | SweepEvent::IntegrationFailed { .. }
            | SweepEvent::DirtyOverlap { .. } => {
                board.waiting = board.waiting.saturating_sub(1);
            }
            _ => {}
        }
        // Only what a person acts on or waits for goes above the board.
        let news = matches!(
            event,
            SweepEvent::Started { .. }
                | SweepEvent::Landed { .. }
                | SweepEvent::Conflict { .. }
                | SweepEvent::IntegrationFailed { .. }
                | SweepEvent::DirtyOverlap { .. }
                | SweepEvent::Flaky { .. }
                | SweepEvent::Retry { .. }
                | SweepEvent::TipMoved { .. }
        );
        match queue_line(sweep_id, event) {
            Some((stage, line)) if news => board.say(stage, &line),
            _ => board.redraw(),
        }
    }
}

/// `--json --stream` for one run of a sweep: its events, each with the task's id.
struct TaskLines {
    task: String,
}

impl Observer for TaskLines {
    fn on(&mut self, run_id: &str, ts_ms: u64, event: &RunEvent) {
        let mut line = crate::events::line(run_id, ts_ms, event);
        line["task"] = serde_json::Value::String(self.task.clone());
        crate::out!("{line}");
    }

    fn report(&mut self, report: &crate::report::RunReport) {
        crate::out!(
            "{}",
            serde_json::json!({ "run_id": report.run_id, "task": self.task, "event": "report", "report": report })
        );
    }
}

/// `--json --stream` for the sweep's own events, ending with its report.
struct SweepLines;

impl SweepObserver for SweepLines {
    fn on(&mut self, sweep_id: &str, ts_ms: u64, event: &SweepEvent) {
        crate::out!("{}", sweep::sweep_line(sweep_id, ts_ms, event));
    }

    fn report(&mut self, report: &SweepReport) {
        crate::out!(
            "{}",
            serde_json::json!({ "sweep_id": report.sweep_id, "event": "sweep.report", "report": report })
        );
    }
}

/// The queue's progress lines on stderr.
struct QueueLines;

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

impl SweepObserver for QueueLines {
    fn on(&mut self, sweep_id: &str, _ts_ms: u64, event: &SweepEvent) {
        if let Some((stage, line)) = queue_line(sweep_id, event) {
            ui::progress(stage, line);
        }
    }
}

/// The line a person reads for one of the sweep's events, if it is one to show.
fn queue_line(sweep_id: &str, event: &SweepEvent) -> Option<(&'static str, String)> {
    let quote = |paths: &[String]| {
        paths
            .iter()
            .map(|p| ui::quote_path(p).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(match event {
        SweepEvent::Started {
            tasks,
            jobs,
            batch,
            target,
            ..
        } => (
            "sweep",
            format!(
                "{sweep_id}: {tasks} task(s), {}landing on {} in batches of up to {batch}",
                // A lander runs nothing: its runs were the workers'.
                if *jobs > 0 {
                    format!("{jobs} at once, ")
                } else {
                    String::new()
                },
                target.trim_start_matches("refs/heads/")
            ),
        ),
        SweepEvent::Candidate { task, .. } => (
            "queue",
            format!("{task}: passed on its own, waiting to land"),
        ),
        SweepEvent::Testing {
            tasks, tip, checks, ..
        } if *checks > 0 => (
            "queue",
            format!("testing {} merged onto {}", tasks.join(", "), short(tip)),
        ),
        SweepEvent::Check {
            tasks,
            attempt,
            result,
            ..
        } => (
            "queue",
            format!(
                "{} on {} — {} ({:.1}s){}",
                result.command,
                tasks.join(", "),
                result.status.name(),
                result.duration_ms as f64 / 1000.0,
                if *attempt > 1 {
                    format!(", attempt {attempt}")
                } else {
                    String::new()
                }
            ),
        ),
        SweepEvent::Cached {
            tasks,
            command,
            passed,
            ..
        } => (
            "queue",
            format!(
                "{command} on {} — {} (this tree was checked before)",
                tasks.join(", "),
                if *passed { "passed" } else { "failed" }
            ),
        ),
        SweepEvent::Flaky {
            command, attempts, ..
        } => (
            "queue",
            format!("{command} failed, then passed on attempt {attempts}: a flake"),
        ),
        SweepEvent::Landed {
            tasks, target, new, ..
        } => (
            "queue",
            format!("landed {} onto {target} ({})", tasks.join(", "), short(new)),
        ),
        SweepEvent::Conflict { task, paths, .. } => (
            "queue",
            format!(
                "{task}: conflicts with what landed at {}; kept",
                quote(paths)
            ),
        ),
        SweepEvent::IntegrationFailed {
            task,
            check,
            status,
            ..
        } => (
            "queue",
            format!("{task}: {check} {status} merged onto the branch; not landed"),
        ),
        SweepEvent::DirtyOverlap { task, paths, .. } => (
            "queue",
            format!(
                "{task}: waits — your uncommitted changes at {}",
                quote(paths)
            ),
        ),
        SweepEvent::TipMoved { .. } => (
            "queue",
            "the branch moved while testing; testing again on its new tip".to_string(),
        ),
        SweepEvent::Retry { task, .. } => {
            ("sweep", format!("{task}: running again from the new tip"))
        }
        _ => return None,
    })
}

/// The summary table: every task, what happened, and where its work is.
fn table(report: &SweepReport, out: &mut String) {
    use std::fmt::Write as _;
    let state = if report.running {
        " (still running)"
    } else if report.interrupted {
        " (interrupted: `baton sweep resume` finishes it)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "sweep {}: {} of {} task(s) landed on {}{state}",
        report.sweep_id, report.landed, report.total, report.target
    );
    let width = report
        .tasks
        .iter()
        .map(|t| t.id.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 32);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<14}  {:<6}  {:<18}  {:<20}  where",
        "task", "verdict", "landed", "reason", "run"
    );
    for t in &report.tasks {
        let mut id: String = t.id.chars().take(width).collect();
        if t.id.chars().count() > width {
            id.pop();
            id.push('…');
        }
        let _ = writeln!(
            out,
            "  {:<width$}  {:<14}  {:<6}  {:<18}  {:<20}  {}",
            id,
            t.verdict,
            if t.landed { "yes" } else { "no" },
            t.reason.as_deref().unwrap_or("-"),
            t.run_id.as_deref().unwrap_or("-"),
            t.location.as_deref().unwrap_or("-"),
        );
        let why = match (t.reason.as_deref(), &t.check, t.paths.is_empty()) {
            (Some("conflict" | "dirty_overlap"), _, false) => Some(format!(
                "paths: {}",
                t.paths
                    .iter()
                    .map(|p| ui::quote_path(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (Some(_), Some(check), _) => Some(format!(
                "check: {check}{}",
                t.log
                    .as_ref()
                    .map(|l| format!(" (log {})", l.display()))
                    .unwrap_or_default()
            )),
            (Some("error"), _, _) => t.detail.clone(),
            _ => None,
        };
        if let Some(why) = why {
            let _ = writeln!(out, "  {:<width$}  {}", "", ui::printable(&why));
        }
    }
    let _ = writeln!(out, "  journal: {}", report.journal.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_has_a_line_per_active_run_and_one_of_totals_none_too_wide() {
        let mut board = Board::new(9);
        board.rows.push(Row {
            run_id: "20261201-120000-1a2b".into(),
            task: "round-cents-in-shop-money-and-much-more".into(),
            agent: "cmd:sed -i \"s/int(amount \\* 100)/round(amount * 100)/\" shop/money.py".into(),
            stage: "agent".into(),
            since: Instant::now(),
        });
        board.finished = 3;
        board.waiting = 1;
        board.landed = 2;
        let lines = board.lines(70);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("round-cents-in-shop-mon…"), "{lines:?}");
        assert!(lines[0].contains("agent"), "{lines:?}");
        assert!(
            lines[1].contains("1 running · 3/9 finished · 1 waiting to land · 2 landed"),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 70), "{lines:?}");
    }
}

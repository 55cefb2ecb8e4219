//! The terminal observer: what a person watching a run sees on stderr.
//!
//! Each fact that ends a stage is one progress line, as `stage  words` (prefixed with
//! `[run-id]` when more than one run of the process is live). On a terminal a live
//! status line per run sits under them — its stage, the time so far, and the agent's
//! latest action or the check running — drawn by indicatif and replaced by the
//! stage's final line when the stage ends. Not on a terminal, a stage that runs past
//! 30 s gets a line saying so (and again every 30 s), so a log never goes silent for
//! minutes. `-v` adds the agent's and the checks' output lines; `-q` shows nothing
//! but the result.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::events::{LIVE_RUNS, Observer, RunEvent};
use crate::scope::PathVerdict;
use crate::ui::{self, Verbosity};

/// How long a stage may run quietly before a log (not a terminal) is told it is still
/// going.
pub const SLOW_STAGE: Duration = Duration::from_secs(30);

/// How many lines of a failing agent's stderr, or of a failing check's output, are
/// shown with its final line.
const TAIL_SHOWN: usize = 8;

/// The bars of every live run of the process share one area of the screen.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A live area of several lines under the progress lines, in the same screen area as
/// every run's status line (a sweep's board): its text is set whole, lines printed
/// with [`ProgressBar::println`] go above it, and it is taken off the screen with
/// [`ProgressBar::finish_and_clear`].
pub fn live_area() -> ProgressBar {
    let bar = multi().add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar
}

/// The current stage of a run, for the not-a-terminal watch.
struct Watch {
    stage: String,
    since: Instant,
    told: u32,
}

pub struct Terminal {
    verbosity: Verbosity,
    bar: Option<ProgressBar>,
    /// Its stage for the slow-stage watch; the [`ticker`] holds it weakly.
    watch: Option<Arc<Mutex<Watch>>>,
    /// The agent's latest stderr lines, shown when it fails.
    stderr: VecDeque<String>,
    run_id: String,
}

impl Terminal {
    /// A terminal observer; a live status line when stderr is a terminal (and not
    /// quiet), else plain lines with the slow-stage watch.
    pub fn new(verbosity: Verbosity) -> Terminal {
        let tty = std::io::stderr().is_terminal();
        let mut t = Terminal {
            verbosity,
            bar: None,
            watch: None,
            stderr: VecDeque::new(),
            run_id: String::new(),
        };
        if verbosity == Verbosity::Quiet {
            return t;
        }
        if tty {
            let bar = multi().add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:>9}  {elapsed:>4}  {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            lock(ticker()).bars.push(bar.downgrade());
            t.bar = Some(bar);
        } else {
            let state = Arc::new(Mutex::new(Watch {
                stage: "run".into(),
                since: Instant::now(),
                told: 0,
            }));
            lock(ticker()).watches.push(Arc::downgrade(&state));
            t.watch = Some(state);
        }
        t
    }

    fn print(&self, stage: &str, message: &str) {
        let message = if LIVE_RUNS.load(Ordering::SeqCst) > 1 && !self.run_id.is_empty() {
            format!("[{}] {message}", self.run_id)
        } else {
            message.to_string()
        };
        match &self.bar {
            Some(bar) => bar.println(ui::progress_line(stage, &message)),
            None if stage == "warning" => ui::warn(message),
            None => ui::progress(stage, message),
        }
    }

    fn status(&self, stage: Option<&str>, action: Option<String>) {
        if let Some(bar) = &self.bar {
            if let Some(stage) = stage {
                bar.set_prefix(stage.to_string());
                bar.reset_elapsed();
            }
            if let Some(action) = action {
                let action = ui::printable(&action).into_owned();
                let action = if LIVE_RUNS.load(Ordering::SeqCst) > 1 {
                    format!("[{}] {action}", self.run_id)
                } else {
                    action
                };
                bar.set_message(action);
            }
        }
        if let (Some(stage), Some(watch)) = (stage, &self.watch) {
            let mut w = lock(watch);
            *w = Watch {
                stage: stage.to_string(),
                since: Instant::now(),
                told: 0,
            };
        }
    }
}

/// Tells a log that a stage is still running, at 30 s and every 30 s after.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the one ticker thread keeps moving: every live run's spinner, and every
/// not-a-terminal run's slow-stage watch. Held weakly: a run's observer that is
/// dropped drops out.
#[derive(Default)]
struct Ticking {
    bars: Vec<indicatif::WeakProgressBar>,
    watches: Vec<std::sync::Weak<Mutex<Watch>>>,
}

/// One thread for the status of every run of the process, started with the first: a
/// sweep of many runs has one ticker, not one per run.
fn ticker() -> &'static Mutex<Ticking> {
    static TICKING: OnceLock<Arc<Mutex<Ticking>>> = OnceLock::new();
    TICKING.get_or_init(|| {
        let ticking = Arc::new(Mutex::new(Ticking::default()));
        let shared = ticking.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(120));
                tick(&shared);
            }
        });
        ticking
    })
}

fn tick(ticking: &Mutex<Ticking>) {
    let mut t = lock(ticking);
    t.bars.retain(|bar| match bar.upgrade() {
        Some(bar) => {
            if !bar.is_finished() {
                bar.tick();
            }
            true
        }
        None => false,
    });
    t.watches.retain(|watch| {
        let Some(watch) = watch.upgrade() else {
            return false;
        };
        let mut w = lock(&watch);
        let due = SLOW_STAGE * (w.told + 1);
        if w.since.elapsed() >= due {
            w.told += 1;
            ui::progress(
                &w.stage,
                format!(
                    "still running after {}",
                    crate::duration::format_exact(SLOW_STAGE * w.told)
                ),
            );
        }
        true
    });
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            multi().remove(&bar);
        }
    }
}

/// What the agent is doing now, in a few words, for the status line.
fn action(kind: &str, data: &Value) -> Option<String> {
    let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("");
    Some(match kind {
        "agent.file_change" => format!("{} {}", field("kind"), ui::quote_path(field("path"))),
        "agent.command" => format!("ran {}", field("command")),
        "agent.message" => format!("says: {}", field("text").lines().next().unwrap_or("")),
        "agent.output" => field("line").to_string(),
        _ => return None,
    })
}

impl Observer for Terminal {
    fn on(&mut self, run_id: &str, _ts_ms: u64, event: &RunEvent) {
        if self.run_id.is_empty() {
            self.run_id = run_id.to_string();
        }
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        match event {
            RunEvent::Stage { stage } => {
                let name = format!("{stage:?}").to_lowercase();
                self.status(Some(&name), Some(String::new()));
            }
            RunEvent::Agent { kind, data } => {
                if kind == "agent.output" && field(data, "stream") == "stderr" {
                    if self.stderr.len() == TAIL_SHOWN {
                        self.stderr.pop_front();
                    }
                    self.stderr.push_back(field(data, "line").to_string());
                }
                if self.verbosity == Verbosity::Verbose && kind == "agent.output" {
                    self.print("agent", &format!("| {}", field(data, "line")));
                }
                self.status(None, action(kind, data));
            }
            RunEvent::CheckStarted { command, .. } => {
                self.status(Some("check"), Some(format!("running {command}")));
            }
            RunEvent::CheckOutput { line, .. } => {
                if self.verbosity == Verbosity::Verbose {
                    self.print("check", &format!("| {line}"));
                }
                self.status(None, Some(line.clone()));
            }
            RunEvent::RunFinished { .. } | RunEvent::RunError { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                    multi().remove(&bar);
                }
            }
            _ => {}
        }
        for (stage, message) in describe(event) {
            self.print(stage, &message);
        }
        // Why it failed, on screen: the agent's last words on stderr, a check's
        // last lines (all of it is in their logs).
        match event {
            RunEvent::AgentFinished { result }
                if result.status != crate::report::AgentStatus::Succeeded =>
            {
                for line in std::mem::take(&mut self.stderr) {
                    self.print("agent", &format!("| {line}"));
                }
            }
            RunEvent::AgentFinished { .. } => self.stderr.clear(),
            RunEvent::CheckFinished { result, .. }
                if !result.status.passed() && self.verbosity != Verbosity::Verbose =>
            {
                let shown = result.tail.len().saturating_sub(TAIL_SHOWN);
                for line in &result.tail[shown..] {
                    self.print("check", &format!("| {line}"));
                }
            }
            _ => {}
        }
    }
}

fn field<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The line for one build directory seeded into a new worktree, or not.
fn warmed(
    entry: &str,
    method: crate::worktree::warm::Method,
    files: u64,
    bytes: u64,
    ms: u64,
    reason: Option<&str>,
) -> String {
    use crate::worktree::warm::Method;
    let took = crate::duration::format(std::time::Duration::from_millis(ms));
    let size = crate::scope::human_size(bytes);
    let files = if files == 1 {
        "1 file".to_string()
    } else {
        format!("{files} files")
    };
    match method {
        Method::Reflink => {
            format!("{entry}/ cloned from your checkout by reflink ({files}, {size}, in {took})")
        }
        Method::Copy => format!(
            "{entry}/ copied from your checkout: no reflink on this filesystem, `warm_copy = true` ({files}, {size}, took {took})"
        ),
        Method::Stale => format!(
            "{entry}/ not copied, the cache is stale: {}; cold start",
            reason.unwrap_or("its key changed")
        ),
        Method::NoReflink => format!(
            "{entry}/: cold start — this filesystem cannot reflink, and copying is off (`[worktree] warm_copy = true` copies)"
        ),
        Method::Absent => format!("{entry}/ is not in your checkout; cold start"),
        Method::Present => format!("{entry}/ is checked out by git; left as it is"),
        Method::NotIgnored => format!(
            "{entry}/ is not ignored by git, so a copy would be part of the change; not seeded (add it to .gitignore)"
        ),
    }
}

/// The progress lines an event is shown as: each the stage's name and the words.
pub fn describe(event: &RunEvent) -> Vec<(&'static str, String)> {
    vec![match event {
        RunEvent::RunStarted { run_id, task, .. } => (
            "run",
            format!("{run_id}: {}", task.lines().next().unwrap_or("")),
        ),
        RunEvent::Routed { agent, rule, why } => ("route", format!("{agent} (rule {rule}: {why})")),
        RunEvent::DirtyBase { .. } => ("worktree", "including your uncommitted changes".into()),
        RunEvent::WorktreeCreated {
            path,
            branch,
            leased,
            ..
        } => {
            let from = if *leased {
                " (leased from the pool)"
            } else {
                ""
            };
            ("worktree", format!("{branch} at {}{from}", path.display()))
        }
        RunEvent::Warmed {
            entry,
            method,
            files,
            bytes,
            ms,
            reason,
        } => (
            "warm",
            warmed(entry, *method, *files, *bytes, *ms, reason.as_deref()),
        ),
        RunEvent::Setup { command, ms } => (
            "setup",
            format!(
                "{command} ({})",
                crate::duration::format(std::time::Duration::from_millis(*ms))
            ),
        ),
        RunEvent::AgentStarted { agent } => ("agent", format!("{agent} working")),
        RunEvent::Agent { kind, data } if kind == "agent.message" => {
            let text = data.get("text").and_then(Value::as_str).unwrap_or("");
            (
                "agent",
                format!("says: {}", text.lines().next().unwrap_or("")),
            )
        }
        RunEvent::AgentFinished { result } => ("agent", result.describe()),
        RunEvent::Warning { message } => ("warning", message.clone()),
        RunEvent::CheckFinished { result, .. } => (
            "check",
            format!(
                "{} — {} ({:.1}s)",
                result.command,
                result.status.name(),
                result.duration_ms as f64 / 1000.0
            ),
        ),
        RunEvent::NoChecks => (
            "check",
            "no checks configured (give --check or run `baton init`)".into(),
        ),
        RunEvent::ScopeJudged { scope } => {
            let mut lines = vec![];
            if scope.defaulted_to_everything {
                lines.push("no scope given: judged against `**`".to_string());
            }
            for p in scope.paths.iter().filter(|p| p.verdict.is_violation()) {
                let size = p
                    .size
                    .filter(|_| matches!(p.verdict, PathVerdict::TooLarge { .. }))
                    .map(|n| format!(" ({})", crate::scope::human_size(n)))
                    .unwrap_or_default();
                lines.push(format!(
                    "{}{size}: {}",
                    ui::quote_path(&p.path),
                    p.verdict.describe()
                ));
            }
            lines.push(scope.summary());
            return lines.into_iter().map(|l| ("scope", l)).collect();
        }
        RunEvent::Repair {
            round,
            rounds,
            agent,
            ..
        } => (
            "repair",
            format!("round {round} of {rounds}: {agent} again, told what failed"),
        ),
        RunEvent::Retry {
            agent,
            class,
            after_ms,
        } => (
            "retry",
            format!(
                "{agent} ({class}): again in {}",
                crate::duration::format(std::time::Duration::from_millis(*after_ms))
            ),
        ),
        RunEvent::Fallback { from, class, to } => (
            "fallback",
            format!("{from} ended {class}; handing the task to {to}"),
        ),
        RunEvent::Reverify {
            integrated: false, ..
        } => (
            "verify",
            "the worktree changed since it was judged; judging it again".into(),
        ),
        RunEvent::Reverify {
            integrated: true, ..
        } => (
            "verify",
            "your branch moved since the run was judged; checking the change merged onto it".into(),
        ),
        RunEvent::Resume {
            session,
            agent,
            worktree,
            ..
        } => (
            "resume",
            format!("{agent} session {session} in {}", worktree.display()),
        ),
        RunEvent::Outcome { outcome } => ("outcome", outcome.message.clone()),
        _ => return vec![],
    }]
}

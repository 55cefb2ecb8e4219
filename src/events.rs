//! The run's one event stream. Every fact of a run is emitted once, as a typed
//! [`RunEvent`], and observers consume it: the journal (`events.jsonl`), the
//! terminal (progress lines on stderr), and `--json --stream` (JSON Lines on stdout).
//! The run's phases never print and never write events.jsonl by hand.
//!
//! The line format (versioned by [`FORMAT_VERSION`], documented in README.md) is one
//! JSON object per line: `ts_ms` (milliseconds since the Unix epoch), `run_id`,
//! `event` (the kind), then the kind's own fields. `baton replay` reads it back and
//! shows it through the same terminal observer the run used live.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agent::AgentEvent;
use crate::checklist::CheckResult;
use crate::journal::Journal;
use crate::report::{AgentReport, Attempt, OutcomeReport, RunReport, Stage, Verdict};
use crate::scope::ScopeReport;

/// The version of the events.jsonl line format.
pub const FORMAT_VERSION: u32 = 1;

/// One fact of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum RunEvent {
    #[serde(rename = "run.started")]
    RunStarted {
        run_id: String,
        task: String,
        agent: String,
        #[serde(default)]
        format_version: u32,
    },
    /// `--agent auto` chose the agent by a routing rule.
    #[serde(rename = "route")]
    Routed {
        agent: String,
        rule: usize,
        why: String,
    },
    /// The run entered a stage (recorded before the stage acts).
    #[serde(rename = "stage")]
    Stage { stage: Stage },
    /// The base is a snapshot of the user's uncommitted changes.
    #[serde(rename = "worktree.dirty_base")]
    DirtyBase { base: String },
    #[serde(rename = "worktree.created")]
    WorktreeCreated {
        path: PathBuf,
        branch: String,
        base: String,
        attempt: u32,
        /// Leased from the worktree pool (moved to the base), not created.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        leased: bool,
    },
    /// A new worktree seeded, or not and why, with one build directory of the
    /// checkout (`[worktree] warm`).
    #[serde(rename = "worktree.warm")]
    Warmed {
        entry: String,
        method: crate::worktree::warm::Method,
        #[serde(default)]
        files: u64,
        #[serde(default)]
        bytes: u64,
        #[serde(default)]
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A setup command ran in a new worktree, and passed (`[worktree] setup`).
    #[serde(rename = "worktree.setup")]
    Setup { command: String, ms: u64 },
    #[serde(rename = "agent.started")]
    AgentStarted { agent: String },
    /// Something the agent did or said (its backend's parsed stream): the kind is
    /// `agent.<what>` and the fields are the backend's.
    #[serde(skip)]
    Agent { kind: String, data: Value },
    #[serde(rename = "agent.finished")]
    AgentFinished { result: AgentReport },
    #[serde(rename = "warning")]
    Warning { message: String },
    #[serde(rename = "check.started")]
    CheckStarted { index: usize, command: String },
    /// A line of a check's output: shown (with `-v`), not journaled (the check's log
    /// has it).
    #[serde(rename = "check.output")]
    CheckOutput { index: usize, line: String },
    #[serde(rename = "check.finished")]
    CheckFinished { index: usize, result: CheckResult },
    /// The run has no checks to run.
    #[serde(rename = "checks.none")]
    NoChecks,
    #[serde(rename = "scope.judged")]
    ScopeJudged { scope: ScopeReport },
    #[serde(rename = "verdict")]
    Verdict { verdict: Verdict },
    #[serde(rename = "attempt")]
    Attempt { attempt: Option<Attempt> },
    #[serde(rename = "repair")]
    Repair {
        attempt: u32,
        round: u32,
        rounds: u32,
        agent: String,
        session: String,
    },
    #[serde(rename = "retry")]
    Retry {
        agent: String,
        class: String,
        after_ms: u64,
    },
    #[serde(rename = "fallback")]
    Fallback {
        from: String,
        class: String,
        to: String,
    },
    /// The run is judged again before it lands: its worktree changed since it was
    /// judged, or (`integrated`) the branch it lands on moved, and the change merged
    /// onto it is checked.
    #[serde(rename = "reverify")]
    Reverify {
        old_tree: Option<String>,
        new_tree: String,
        #[serde(default)]
        integrated: bool,
    },
    #[serde(rename = "resume")]
    Resume {
        session: String,
        resumes: u32,
        agent: String,
        worktree: PathBuf,
    },
    #[serde(rename = "outcome")]
    Outcome { outcome: OutcomeReport },
    #[serde(rename = "run.finished")]
    RunFinished {
        exit_code: Option<i32>,
        verdict: Verdict,
    },
    #[serde(rename = "run.error")]
    RunError { error: Option<String>, stage: Stage },
}

impl RunEvent {
    /// An agent backend's event, as the run records it.
    pub fn agent(event: &AgentEvent) -> RunEvent {
        let (kind, data) = event.journal_entry();
        RunEvent::Agent {
            kind: kind.to_string(),
            data,
        }
    }

    /// The event's line (without `ts_ms` and `run_id`).
    pub fn to_value(&self) -> Value {
        match self {
            RunEvent::Agent { kind, data } => {
                let mut line = json!({ "event": kind });
                if let (Value::Object(map), Value::Object(extra)) = (&mut line, data.clone()) {
                    map.extend(extra);
                }
                line
            }
            other => serde_json::to_value(other).unwrap_or(Value::Null),
        }
    }

    /// Reads one journal line back; `None` for a kind this version does not know.
    pub fn from_value(line: &Value) -> Option<RunEvent> {
        let kind = line.get("event")?.as_str()?;
        if let Ok(event) = serde_json::from_value::<RunEvent>(line.clone()) {
            return Some(event);
        }
        kind.starts_with("agent.").then(|| {
            let mut data = line.clone();
            if let Value::Object(map) = &mut data {
                map.remove("event");
                map.remove("ts_ms");
                map.remove("run_id");
            }
            RunEvent::Agent {
                kind: kind.to_string(),
                data,
            }
        })
    }
}

/// Something that consumes a run's events.
pub trait Observer: Send {
    fn on(&mut self, run_id: &str, ts_ms: u64, event: &RunEvent);

    /// The run's report, once it is finished.
    fn report(&mut self, _report: &RunReport) {}
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How many runs of this process are live, so the terminal can tell their lines apart.
pub(crate) static LIVE_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Where a run's events go: the journal first (a failure to write it stops the run),
/// then every observer.
pub struct Events {
    run_id: String,
    journal: Option<Arc<Journal>>,
    observers: Mutex<Vec<Box<dyn Observer>>>,
    live: bool,
}

impl Events {
    /// The stream of one run: recorded in `journal`, shown to `observers`.
    pub fn new(run_id: &str, journal: Arc<Journal>, observers: Vec<Box<dyn Observer>>) -> Events {
        LIVE_RUNS.fetch_add(1, Ordering::SeqCst);
        Events {
            run_id: run_id.to_string(),
            journal: Some(journal),
            observers: Mutex::new(observers),
            live: true,
        }
    }

    /// A stream that only shows (for `baton replay`, and before a run has a journal).
    pub fn unrecorded(run_id: &str, observers: Vec<Box<dyn Observer>>) -> Events {
        Events {
            run_id: run_id.to_string(),
            journal: None,
            observers: Mutex::new(observers),
            live: false,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Emits one event: journaled (with its time and the run's id), then observed.
    pub fn emit(&self, event: RunEvent) -> Result<(), crate::journal::JournalError> {
        self.emit_at(now_ms(), event)
    }

    /// Emits an event with the time it happened (replay keeps the recorded times).
    pub fn emit_at(&self, ts_ms: u64, event: RunEvent) -> Result<(), crate::journal::JournalError> {
        if let Some(journal) = &self.journal {
            journal.append(&line(&self.run_id, ts_ms, &event))?;
        }
        let mut observers = self.observers.lock().unwrap_or_else(|p| p.into_inner());
        for o in observers.iter_mut() {
            o.on(&self.run_id, ts_ms, &event);
        }
        Ok(())
    }

    /// Shows an event to the observers without journaling it (a check's output
    /// lines, which its log already holds).
    pub fn show(&self, event: RunEvent) {
        let mut observers = self.observers.lock().unwrap_or_else(|p| p.into_inner());
        for o in observers.iter_mut() {
            o.on(&self.run_id, now_ms(), &event);
        }
    }

    /// Hands the finished report to the observers that want it (`--json --stream`).
    pub fn report(&self, report: &RunReport) {
        let mut observers = self.observers.lock().unwrap_or_else(|p| p.into_inner());
        for o in observers.iter_mut() {
            o.report(report);
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if self.live {
            LIVE_RUNS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// One journal line of `event`.
pub fn line(run_id: &str, ts_ms: u64, event: &RunEvent) -> Value {
    let mut line = json!({ "ts_ms": ts_ms, "run_id": run_id });
    if let (Value::Object(map), Value::Object(fields)) = (&mut line, event.to_value()) {
        map.extend(fields);
    }
    line
}

pub use crate::ui::terminal::{Terminal, describe};

/// `--json --stream`: every event as a JSON line on stdout, then the report.
pub struct JsonLines;

impl Observer for JsonLines {
    fn on(&mut self, run_id: &str, ts_ms: u64, event: &RunEvent) {
        // The stream is the journal's events as they happen; a check's output lines
        // are in its log.
        if !matches!(event, RunEvent::CheckOutput { .. }) {
            crate::out!("{}", line(run_id, ts_ms, event));
        }
    }

    fn report(&mut self, report: &RunReport) {
        crate::out!(
            "{}",
            json!({ "ts_ms": now_ms(), "run_id": report.run_id, "event": "report", "report": report })
        );
    }
}

/// Reads a run's events.jsonl back, in order, with their recorded times.
pub fn read_journal(
    journal: &Journal,
) -> Result<Vec<(u64, RunEvent)>, crate::journal::JournalError> {
    let path = journal.path(crate::journal::EVENTS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|source| crate::journal::JournalError::Read { path, source })?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let ts = v.get("ts_ms").and_then(Value::as_u64).unwrap_or(0);
            RunEvent::from_value(&v).map(|e| (ts, e))
        })
        .collect())
}

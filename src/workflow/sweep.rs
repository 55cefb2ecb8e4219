//! `baton sweep TASKS`: many tasks, one run each, landed through the merge queue.
//!
//! This module owns the task file (a TOML file of `[defaults]`, `[sweep]` and
//! `[[task]]` tables, or a Markdown checklist), its resolution into one [`Plan`] per
//! task — every plan before any run starts, so a bad field in task 9 is one error line
//! naming the file, the line and the field, and task 1 never began — the pool of
//! threads that runs up to N of them at once (each a full `run::run` with its own event
//! stream, `--on-pass keep` implied), the sweep's journal, `sweep resume`, `sweep
//! status` and the sweep's report. Landing is the queue's job ([`super::queue`]).
//!
//! The journal is `<git common dir>/baton/sweeps/<sweep-id>/`, versioned like a run's:
//! `sweep.json` (what was asked: the task file's copy, the flags, the target; written
//! once), `state.json` (the queue's decisions, rewritten atomically), `runs/<run-id>`
//! (the task a run belongs to, written by the run's own thread as it starts, so a
//! SIGKILL never loses which run was whose), `events.jsonl` (the sweep's own events:
//! the queue's tests, checks, landings), `checks/` (the queue's check logs) and
//! `report.json`. Each run's report names its sweep (`sweep`). baton never writes to
//! the task file.
//!
//! Supervision is not on tokio yet: the runs of a sweep are OS threads of a bounded
//! pool, each calling `run::run`, and each child process is supervised by the process
//! module as in a single run. git values never cross threads (a `Repo` is paths only).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agent::AgentSpec;
use crate::checklist::CheckResult;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::events::{Observer, RunEvent};
use crate::git::Repo;
use crate::handoff::{self, NewHandoff};
use crate::journal::{self, Journal};
use crate::report::{OutcomeAction, Policy, RunReport, Stage, Verdict};
use crate::run::{self, Base, Plan, Request};
use crate::scope::Scope;
use crate::settings::Settings;
use crate::{exit, process, recover};

use super::pipeline::{self, Pipeline, PipelineFile};
use super::queue::{self, Candidate, Decided, Decision, Queue, QueueConfig, QueueStats};

/// The version of the sweep journal's files.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Bad input in the task file (or a flag): nothing was started.
    #[error("{place}: {message}")]
    TaskFile { place: String, message: String },
    #[error("could not read the task file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no tasks: a TOML task file needs `[[task]]` tables, a Markdown one `- [ ] …` lines", path.display())]
    NoTasks { path: PathBuf },
    #[error("no sweep matches `{0}`; `baton sweep status` lists the sweeps")]
    NoSuchSweep(String),
    #[error("`{query}` matches several sweeps ({matches}); give more of the id")]
    Ambiguous { query: String, matches: String },
    #[error("no sweeps yet; start one with `baton sweep TASKS`")]
    NoSweeps,
    #[error(
        "sweep {sweep_id} is still running (pid {pid}); wait for it to finish, or stop it with Ctrl-C first"
    )]
    StillRunning { sweep_id: String, pid: u32 },
    #[error("could not write the sweep journal at {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sweep journal file {} is damaged: {message}", path.display())]
    Damaged { path: PathBuf, message: String },
    /// baton itself failed in the middle of a sweep; what it did is in its journal.
    #[error(
        "sweep {sweep_id} stopped: {error}; its journal is {} — `baton sweep resume {sweep_id}` finishes it (`baton recover` first if it was landing)",
        journal.display()
    )]
    Stopped {
        sweep_id: String,
        journal: PathBuf,
        error: Box<Error>,
    },
}

impl SweepError {
    /// True for a failure of baton's own after the sweep started (its journal could
    /// not be written), as opposed to bad input.
    pub fn after_start(&self) -> bool {
        matches!(
            self,
            SweepError::Write { .. } | SweepError::Damaged { .. } | SweepError::Stopped { .. }
        )
    }
}

type SweepResult<T> = std::result::Result<T, SweepError>;

// ---------------------------------------------------------------------------------
// The task file
// ---------------------------------------------------------------------------------

/// The two kinds of task file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `[defaults]`, `[sweep]` and `[[task]]` tables.
    Toml,
    /// Every unchecked `- [ ] …` line is a task; the flags give the rest.
    Markdown,
}

impl Kind {
    fn of(path: &Path, text: &str) -> Kind {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Kind::Toml,
            Some("md" | "markdown") => Kind::Markdown,
            _ if text.contains("[[task]]") => Kind::Toml,
            _ => Kind::Markdown,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Kind::Toml => "tasks.toml",
            Kind::Markdown => "tasks.md",
        }
    }
}

/// The `[sweep]` table (and its flags): how the queue lands. The repository's config
/// may hold one too, under the task file's and the flags'.
pub use crate::config::SweepConfig as QueueSettings;

/// One task, resolved.
#[derive(Clone)]
pub struct Task {
    pub id: String,
    /// Its line in the task file.
    pub line: usize,
    pub plan: Plan,
    /// A task that is a pipeline (`pipeline = "FILE"`): its stages, resolved with the
    /// plan; the plan's run is the pipeline's.
    pub pipeline: Option<Pipeline>,
}

/// A task file, every task resolved into its plan.
pub struct TaskFile {
    pub path: PathBuf,
    pub text: String,
    pub kind: Kind,
    pub tasks: Vec<Task>,
    pub queue: QueueSettings,
    /// The ref the queue lands on, and every run starts from.
    pub target: String,
}

/// Fields of a `[[task]]` table that are not settings: the rest of the handoff.
const HANDOFF_FIELDS: &[&str] = &[
    "id",
    "context",
    "requirements",
    "patterns",
    "notes",
    "vars",
    "pipeline",
];

/// Where a section and its keys are in a TOML file: the line of its header and of
/// each key's first line.
#[derive(Debug, Default, Clone)]
struct Section {
    header: usize,
    keys: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
struct TomlLines {
    tables: BTreeMap<String, Section>,
    tasks: Vec<Section>,
}

/// Finds the line of every table header and key. serde's spans do not survive the
/// conversion of a table into settings, and an error a person can act on names the
/// line; this is enough for the file's own layout (headers, `key = value`, multi-line
/// strings and arrays).
fn scan_toml(text: &str) -> TomlLines {
    let mut lines = TomlLines::default();
    let mut current: Option<(bool, String)> = None;
    let mut in_string: Option<&str> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if let Some(delim) = in_string {
            if line.matches(delim).count() % 2 == 1 {
                in_string = None;
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("").trim().to_string();
            if name == "task" {
                lines.tasks.push(Section {
                    header: n,
                    ..Section::default()
                });
                current = Some((true, name));
            } else {
                lines.tables.entry(name.clone()).or_insert(Section {
                    header: n,
                    ..Section::default()
                });
                current = Some((false, name));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("").trim().to_string();
            lines.tables.entry(name.clone()).or_insert(Section {
                header: n,
                ..Section::default()
            });
            current = Some((false, name));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"').trim_matches('\'').to_string();
        for delim in ["\"\"\"", "'''"] {
            if value.matches(delim).count() % 2 == 1 {
                in_string = Some(delim);
            }
        }
        let section = match &current {
            Some((true, _)) => lines.tasks.last_mut(),
            Some((false, name)) => lines.tables.get_mut(name),
            None => None,
        };
        match section {
            Some(s) => {
                s.keys.entry(key).or_insert(n);
            }
            None => {
                lines
                    .tables
                    .entry(String::new())
                    .or_default()
                    .keys
                    .entry(key)
                    .or_insert(n);
            }
        }
    }
    lines
}

/// A task as written, before it is resolved.
#[derive(Debug, Clone, Default)]
struct RawTask {
    id: Option<String>,
    line: usize,
    settings: Settings,
    context: String,
    requirements: Vec<String>,
    patterns: Vec<String>,
    notes: String,
    vars: BTreeMap<String, String>,
    /// A pipeline file the task runs as (`pipeline = "FILE"`, relative to the task file).
    pipeline: Option<String>,
    /// Where each field was written (TOML only).
    fields: BTreeMap<String, usize>,
}

/// What the command line gives a sweep besides the task file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flags {
    /// The flags as the top layer of every task's settings.
    #[serde(default)]
    pub settings: Settings,
    /// `--gate`, `--flaky-retries`, `--batch`: over the file's `[sweep]`.
    #[serde(default)]
    pub queue: QueueSettings,
}

/// How a sweep runs, from the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Runs at once (`-j`).
    pub jobs: usize,
    /// A conflicting task is run again once from the new tip.
    pub retry_conflicts: bool,
    /// What becomes of a candidate that fails integrated (`--on-fail`; default keep).
    pub on_fail: Option<Policy>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            retry_conflicts: false,
            on_fail: None,
        }
    }
}

fn bad(place: String, message: impl Into<String>) -> SweepError {
    SweepError::TaskFile {
        place,
        message: message.into(),
    }
}

/// One line of an error: whitespace runs made single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads `table` as settings one field at a time, so that an error names its field;
/// `place(field)` says where that field was written.
fn settings_of(
    table: &toml::Table,
    place: &dyn Fn(&str) -> String,
    allow_task: bool,
) -> SweepResult<Settings> {
    for (key, value) in table {
        if key == "task" && !allow_task {
            return Err(bad(
                place(key),
                "`task` in [defaults]: a task belongs in a `[[task]]` table",
            ));
        }
        let mut one = toml::Table::new();
        one.insert(key.clone(), value.clone());
        if let Err(e) = toml::Value::Table(one).try_into::<Settings>() {
            return Err(bad(place(key), one_line(e.message())));
        }
    }
    toml::Value::Table(table.clone())
        .try_into::<Settings>()
        .map_err(|e| bad(place(""), one_line(e.message())))
}

fn strings(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// Reads a TOML task file into its `[defaults]`, `[sweep]` and tasks.
fn parse_toml(
    name: &str,
    text: &str,
) -> SweepResult<(Settings, QueueSettings, Vec<RawTask>, TomlLines)> {
    let lines = scan_toml(text);
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        bad(
            match line {
                Some(l) => format!("{name}:{l}"),
                None => name.to_string(),
            },
            format!(
                "not valid TOML: {}{}",
                one_line(e.message()),
                crate::settings::toml_place(text, &e)
            ),
        )
    })?;
    let line_of = |table: &str| lines.tables.get(table).map_or(1, |s| s.header);
    let mut defaults = Settings::default();
    let mut queue_settings = QueueSettings::default();
    let mut tasks = vec![];
    for (key, value) in &table {
        match (key.as_str(), value) {
            ("defaults", toml::Value::Table(t)) => {
                let section = lines.tables.get("defaults").cloned().unwrap_or_default();
                defaults = settings_of(
                    t,
                    &|field| {
                        format!(
                            "{name}:{}: [defaults] field `{field}`",
                            section.keys.get(field).copied().unwrap_or(section.header)
                        )
                    },
                    false,
                )?;
            }
            ("sweep", toml::Value::Table(t)) => {
                let section = lines.tables.get("sweep").cloned().unwrap_or_default();
                for (field, v) in t {
                    let mut one = toml::Table::new();
                    one.insert(field.clone(), v.clone());
                    if let Err(e) = toml::Value::Table(one).try_into::<QueueSettings>() {
                        let line = section.keys.get(field).copied().unwrap_or(section.header);
                        return Err(bad(
                            format!("{name}:{line}: [sweep] field `{field}`"),
                            format!(
                                "{}; [sweep] takes gate, flaky_retries and batch",
                                one_line(e.message())
                            ),
                        ));
                    }
                }
                queue_settings = toml::Value::Table(t.clone())
                    .try_into()
                    .map_err(|e| bad(format!("{name}: [sweep]"), one_line(e.message())))?;
            }
            ("task", toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let section = lines.tasks.get(i).cloned().unwrap_or_default();
                    let toml::Value::Table(t) = item else {
                        return Err(bad(
                            format!("{name}:{}", section.header),
                            "`task` must be `[[task]]` tables",
                        ));
                    };
                    tasks.push(raw_task(name, t, &section)?);
                }
            }
            (other, _) => {
                return Err(bad(
                    format!("{name}:{}", line_of(other)),
                    format!(
                        "unknown table `{other}`; a task file has [defaults], [sweep] and [[task]] tables"
                    ),
                ));
            }
        }
    }
    Ok((defaults, queue_settings, tasks, lines))
}

fn raw_task(name: &str, t: &toml::Table, section: &Section) -> SweepResult<RawTask> {
    let line_of = |field: &str| section.keys.get(field).copied().unwrap_or(section.header);
    let id_hint = t
        .get("id")
        .and_then(|v| v.as_str())
        .map(|id| format!("task `{id}`"))
        .unwrap_or_else(|| "task".to_string());
    let place = |field: &str| format!("{name}:{}: {id_hint}, field `{field}`", line_of(field));
    let mut raw = RawTask {
        line: section.header,
        fields: section.keys.clone(),
        ..RawTask::default()
    };
    let mut rest = toml::Table::new();
    for (key, value) in t {
        let text = || {
            value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(place(key), "must be a string"))
        };
        let list = || strings(value).ok_or_else(|| bad(place(key), "must be a list of strings"));
        match key.as_str() {
            "id" => raw.id = Some(text()?),
            "context" => raw.context = text()?,
            "notes" => raw.notes = text()?,
            "pipeline" => raw.pipeline = Some(text()?),
            "requirements" => raw.requirements = list()?,
            "patterns" => raw.patterns = list()?,
            "vars" => {
                let toml::Value::Table(vars) = value else {
                    return Err(bad(place(key), "must be a table of strings"));
                };
                for (k, v) in vars {
                    let v = v
                        .as_str()
                        .ok_or_else(|| bad(place(key), format!("`{k}` must be a string")))?;
                    raw.vars.insert(k.clone(), v.to_string());
                }
            }
            _ => {
                rest.insert(key.clone(), value.clone());
            }
        }
    }
    raw.settings = settings_of(&rest, &place, true).map_err(|e| match e {
        SweepError::TaskFile { place, message } if message.starts_with("unknown field") => bad(
            place,
            format!("{message}; a task also takes {}", HANDOFF_FIELDS.join(", ")),
        ),
        other => other,
    })?;
    Ok(raw)
}

/// Every unchecked `- [ ] …` line of a Markdown checklist is a task.
fn parse_markdown(text: &str) -> Vec<RawTask> {
    let mut tasks = vec![];
    let mut fence = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        let Some(item) = ["- [ ] ", "* [ ] ", "+ [ ] "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
        else {
            continue;
        };
        let task = item.trim();
        if task.is_empty() {
            continue;
        }
        tasks.push(RawTask {
            line: i + 1,
            settings: Settings {
                task: Some(task.to_string()),
                ..Settings::default()
            },
            ..RawTask::default()
        });
    }
    tasks
}

/// An id from the task's text: its first words, lower-case, joined by `-`.
fn derive_id(task: &str) -> String {
    let words: Vec<String> = task
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5)
        .map(str::to_ascii_lowercase)
        .collect();
    let mut id = String::new();
    for w in words {
        if !id.is_empty() && id.len() + w.len() + 1 > 32 {
            break;
        }
        if !id.is_empty() {
            id.push('-');
        }
        id.push_str(&w);
    }
    if id.is_empty() { "task".into() } else { id }
}

/// A task id names refs (`refs/baton/results/<sweep>/<id>` for a distributed sweep),
/// so it is one component git takes as a ref name: no `..`, no `.` at either end, no
/// `.lock` at the end (git refuses those only at the push, after the run).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.ends_with(".lock")
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Threads that resolve a task file's plans.
const RESOLVERS: usize = 4;

/// What a task file resolves against: the repository, its config, the command line.
pub struct Context<'a> {
    pub repo: &'a Repo,
    /// Where baton was started (for relative paths in the config).
    pub cwd: PathBuf,
    pub flags: Flags,
    /// The ref the sweep lands on ([`target_of`] when it starts).
    pub target: String,
    /// Where a task's relative `pipeline = "FILE"` is found: the task file's own
    /// directory, or — when resuming from the journal's copy of the task file — the
    /// directory the task file was in when the sweep started.
    pub pipelines_dir: Option<PathBuf>,
}

/// The task file `path` (its `text`), every task resolved into its plan, or the one
/// error line that says what is wrong where.
pub fn load(ctx: &Context, path: &Path, text: &str) -> Result<TaskFile> {
    let name = path.display().to_string();
    let kind = Kind::of(path, text);
    let (file_defaults, file_queue, raws, lines) = match kind {
        Kind::Toml => {
            let (d, q, t, l) = parse_toml(&name, text)?;
            (d, q, t, Some(l))
        }
        Kind::Markdown => (
            Settings::default(),
            QueueSettings::default(),
            parse_markdown(text),
            None,
        ),
    };
    if raws.is_empty() {
        return Err(SweepError::NoTasks {
            path: path.to_path_buf(),
        }
        .into());
    }
    let config = Config::load(&ctx.repo.root)?;
    let defaults_line = |field: &str| -> Option<usize> {
        let section = lines.as_ref()?.tables.get("defaults")?;
        section.keys.get(field).copied()
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut named = vec![];
    for raw in raws {
        let task_text = raw.settings.task_text().trim().to_string();
        let id = match &raw.id {
            Some(id) => {
                let place = format!(
                    "{name}:{}: task `{id}`, field `id`",
                    raw.fields.get("id").copied().unwrap_or(raw.line)
                );
                if !valid_id(id) {
                    return Err(bad(
                        place,
                        "an id is letters, digits, `-`, `_` and `.` (at most 64; no `..`, no `.` at either end, not ending in `.lock`)",
                    )
                    .into());
                }
                if let Some(first) = seen.get(id) {
                    return Err(bad(
                        place,
                        format!("duplicate id `{id}`: task at line {first} has it too"),
                    )
                    .into());
                }
                id.clone()
            }
            None => {
                let base = derive_id(&task_text);
                let mut id = base.clone();
                let mut k = 2;
                while seen.contains_key(&id) {
                    id = format!("{base}-{k}");
                    k += 1;
                }
                id
            }
        };
        seen.insert(id.clone(), raw.line);
        if task_text.is_empty() {
            return Err(bad(
                format!("{name}:{}: task `{id}`, field `task`", raw.line),
                "the task has no text; set `task = \"...\"`",
            )
            .into());
        }
        named.push((raw, id, task_text));
    }
    // Each plan costs a few milliseconds, mostly a git process or two: resolved a few
    // at a time, then taken in the file's order (the first error is the first task's).
    let resolve_one = |(raw, id, task_text): &(RawTask, String, String)| -> Result<Resolved> {
        // Where a field's value came from, for the error line: the flag, the task, the
        // file's [defaults], or the config.
        let from = |field: &str, flag: &str| -> String {
            let task_place = format!("{name}:{}: task `{id}`", raw.line);
            if flag_set(&ctx.flags.settings, field) {
                format!("{task_place}, flag `{flag}`")
            } else if let Some(l) = raw.fields.get(field) {
                format!("{name}:{l}: task `{id}`, field `{field}`")
            } else if let Some(l) = defaults_line(field) {
                format!("{name}:{l}: [defaults] field `{field}` (for task `{id}`)")
            } else {
                format!(
                    "{task_place}, field `{field}` (from `[defaults] {field}` in {})",
                    config::repo_file(&ctx.repo.root).display()
                )
            }
        };
        resolve(
            ctx,
            &config,
            &file_defaults,
            path,
            raw,
            task_text,
            &from,
            &format!("{name}:{}: task `{id}`", raw.line),
        )
    };
    let chunk = named.len().div_ceil(RESOLVERS).max(1);
    let plans: Vec<Result<Resolved>> = std::thread::scope(|scope| {
        let handles: Vec<_> = named
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(resolve_one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(Error::Usage("resolving a task panicked".into()))])
            })
            .collect()
    });
    let mut tasks = vec![];
    for ((raw, id, _), resolved) in named.into_iter().zip(plans) {
        let (plan, pipeline) = resolved?;
        tasks.push(Task {
            id,
            line: raw.line,
            plan,
            pipeline,
        });
    }
    let mut queue_settings = config.sweep.clone().overlay(file_queue);
    let over = &ctx.flags.queue;
    if !over.gate.is_empty() {
        queue_settings.gate = over.gate.clone();
    }
    queue_settings.flaky_retries = over.flaky_retries.or(queue_settings.flaky_retries);
    queue_settings.batch = over.batch.or(queue_settings.batch);
    if queue_settings.batch == Some(0) {
        return Err(bad(
            format!("{name}: [sweep] field `batch` (or --batch)"),
            "a batch holds at least one candidate",
        )
        .into());
    }
    Ok(TaskFile {
        path: path.to_path_buf(),
        text: text.to_string(),
        kind,
        tasks,
        queue: queue_settings,
        target: ctx.target.clone(),
    })
}

/// Whether the command line set `field`.
fn flag_set(flags: &Settings, field: &str) -> bool {
    let value = serde_json::to_value(flags).unwrap_or(Value::Null);
    value.get(field).is_some_and(|v| !v.is_null())
}

/// One task's plan: its handoff rendered from its fields, resolved by the run
/// library (config `[defaults]` < the file's `[defaults]` < the task < the flags),
/// with `--on-pass keep`: landing is the queue's job. Every field a run would refuse is
/// checked here first, so the error names it.
/// A task's plan, and its stages when it is a pipeline.
type Resolved = (Plan, Option<Pipeline>);

/// The pipeline file a task names, read and its stages' agents checked, or the one
/// error line naming the task's field and the place in the pipeline file.
fn load_pipeline(dir: &Path, name: &str, config: &Config, place: &str) -> Result<PipelineFile> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(
            place.to_string(),
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let file = PipelineFile::parse(&text).map_err(|e| {
        let (at, why) = match &e {
            pipeline::PipelineError::File(t) => {
                // A field a stage does not take is found after parsing, where the
                // span is lost: its line is the first that sets it.
                let line = match t.span() {
                    Some(s) => Some(text[..s.start.min(text.len())].matches('\n').count() + 1),
                    None => t.message().split('`').nth(1).and_then(|field| {
                        let sets = |l: &str| {
                            l.trim_start()
                                .strip_prefix(field)
                                .is_some_and(|r| r.trim_start().starts_with('='))
                        };
                        text.lines().position(sets).map(|i| i + 1)
                    }),
                };
                (
                    line.map(|l| format!(":{l}")).unwrap_or_default(),
                    one_line(t.message()),
                )
            }
            other => (String::new(), other.to_string()),
        };
        bad(place.to_string(), format!("{}{at}: {why}", path.display()))
    })?;
    for (i, stage) in file.stages.iter().enumerate() {
        check_agent(&stage.agent, config).map_err(|m| {
            bad(
                place.to_string(),
                format!("{}: stage {}, field `agent`: {m}", path.display(), i + 1),
            )
        })?;
    }
    Ok(file)
}

#[expect(clippy::too_many_arguments)]
fn resolve(
    ctx: &Context,
    config: &Config,
    file_defaults: &Settings,
    task_file: &Path,
    raw: &RawTask,
    task_text: &str,
    from: &dyn Fn(&str, &str) -> String,
    task_place: &str,
) -> Result<Resolved> {
    let mut config_defaults = config.defaults.clone();
    if config_defaults.checks.is_none() && !config.checks.is_empty() {
        config_defaults.checks = Some(config.checks.clone());
    }
    // A pipeline's top level sits between the file's [defaults] and the task's own
    // fields; its first stage's agent and template are the run's.
    let piped = match &raw.pipeline {
        Some(name) => Some(load_pipeline(
            &ctx.pipelines_dir.clone().unwrap_or_else(|| {
                task_file
                    .parent()
                    .unwrap_or_else(|| Path::new("."))
                    .to_path_buf()
            }),
            name,
            config,
            &from("pipeline", "--pipeline"),
        )?),
        None => None,
    };
    let mut contract = file_defaults.clone();
    if let Some(p) = &piped {
        contract = contract.overlay(p.defaults.clone());
    }
    let mut contract = contract.overlay(raw.settings.clone());
    let first = piped.as_ref().and_then(|p| p.stages.first());
    if let Some(first) = first {
        contract.agent = Some(first.agent.clone());
        contract.template = Some(first.template().to_string());
    }
    let mut effective = config_defaults
        .clone()
        .overlay(contract.clone())
        .overlay(ctx.flags.settings.clone());
    if let Some(first) = first {
        effective.agent = Some(first.agent.clone());
        effective.template = Some(first.template().to_string());
    }

    let Some(agent) = effective.agent.clone() else {
        return Err(bad(
            format!("{task_place}, field `agent`"),
            "no agent given; set `agent` in the task or in [defaults], or pass --agent",
        )
        .into());
    };
    if agent.trim() != "auto" {
        check_agent(&agent, config).map_err(|m| bad(from("agent", "--agent"), m))?;
    }
    for a in Settings::list(&effective.fallback) {
        check_agent(a, config).map_err(|m| bad(from("fallback", "--fallback"), m))?;
    }
    for g in Settings::list(&effective.scope) {
        Scope::compile(std::slice::from_ref(g), &[])
            .map_err(|e| bad(from("scope", "--scope"), e.to_string()))?;
    }
    for g in Settings::list(&effective.deny) {
        Scope::compile(&[], std::slice::from_ref(g))
            .map_err(|e| bad(from("deny", "--deny"), e.to_string()))?;
    }
    if effective.on_fail == Some(Policy::Merge) {
        return Err(bad(
            from("on_fail", "--on-fail"),
            "`merge` would land a change that was not verified; choose stash, revert or keep",
        )
        .into());
    }
    let template = effective
        .template
        .clone()
        .unwrap_or_else(|| "implement".into());
    let new = NewHandoff {
        template,
        task: task_text.to_string(),
        context: raw.context.clone(),
        scope: Settings::list(&effective.scope).to_vec(),
        deny: Settings::list(&effective.deny).to_vec(),
        checks: Settings::list(&effective.checks).to_vec(),
        requirements: raw.requirements.clone(),
        patterns: raw.patterns.clone(),
        notes: raw.notes.clone(),
        agent: Some(agent),
        timeout: effective.timeout,
        idle_timeout: effective.idle_timeout,
        vars: raw.vars.clone(),
    };
    let templates = config::repo_templates(&ctx.repo.root);
    let mut handoff = handoff::render_new(&new, Some(&templates))
        .map_err(|e| bad(from("template", "--template"), e.to_string()))?;
    // The handoff as sent holds the task's whole contract (its layers from the file).
    handoff.contract = Settings {
        task: Some(task_text.to_string()),
        template: Some(new.template.clone()),
        ..contract
    };
    let mut flags = Settings {
        on_pass: Some(Policy::Keep),
        ..ctx.flags.settings.clone()
    };
    // A pipeline's plan is resolved over the whole (every stage's scope and checks);
    // each stage is judged by its own.
    let pipeline = piped.map(|p| Pipeline {
        stages: p.stages,
        scope: Settings::list(&effective.scope).to_vec(),
        checks: Settings::list(&effective.checks).to_vec(),
    });
    if let Some(p) = &pipeline {
        let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
        flags.agent = effective.agent.clone();
        flags.scope = list(p.whole_scope());
        flags.checks = list(p.all_checks());
    }
    // Every run starts from the tip of the branch the sweep lands on.
    let base = if ctx.target.starts_with("refs/") {
        Base::Rev(ctx.target.clone())
    } else {
        Base::Head
    };
    let plan = Plan::resolve(
        config.clone(),
        Request {
            flags,
            handoff,
            base,
            apply: false,
            cwd: ctx.cwd.clone(),
            repo_root: ctx.repo.root.clone(),
            worktrees_dir: None,
        },
    )
    .map_err(|e| bad(task_place.to_string(), e.to_string()))?;
    Ok((plan, pipeline))
}

/// The agent `text` names, and that it can be started; else what is wrong.
fn check_agent(text: &str, config: &Config) -> std::result::Result<(), String> {
    let spec = AgentSpec::parse(text).map_err(|e| e.to_string())?;
    spec.backend(config).map(drop).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------
// The journal
// ---------------------------------------------------------------------------------

pub fn sweeps_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("baton").join("sweeps")
}

const RECORD_FILE: &str = "sweep.json";
const STATE_FILE: &str = "state.json";
const REPORT_FILE: &str = "report.json";
const EVENTS_FILE: &str = "events.jsonl";
const RUNS_DIR: &str = "runs";
const CHECKS_DIR: &str = "checks";

/// What was asked: written once, when the sweep starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    pub format_version: u32,
    pub sweep_id: String,
    /// The task file as the user named it (baton reads its copy in the journal).
    pub file: PathBuf,
    pub kind: Kind,
    pub flags: Flags,
    pub options: Options,
    /// The ref the queue moves.
    pub target: String,
    pub started_at: u64,
    pub tasks: Vec<TaskEntry>,
    /// The task file's directory, absolute, where its relative pipeline files are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipelines_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskEntry {
    pub id: String,
    pub task: String,
    pub line: usize,
}

/// What happened so far; rewritten atomically by the sweep's main thread.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SweepState {
    pub format_version: u32,
    pub sweep_id: String,
    pub pid: u32,
    #[serde(default)]
    pub pid_start: Option<u64>,
    pub updated_at: u64,
    /// Every task ran and every candidate was decided.
    pub finished: bool,
    pub interrupted: bool,
    /// The queue's last decision per task.
    #[serde(default)]
    pub decisions: BTreeMap<String, Decision>,
    /// How long each run took, by run id.
    #[serde(default)]
    pub durations: BTreeMap<String, u64>,
    /// Tasks already run again after a conflict (`--retry-conflicts`: once each).
    #[serde(default)]
    pub retried: BTreeSet<String>,
    /// A run baton itself could not finish, by task: the error.
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
    #[serde(default)]
    pub queue: QueueStats,
}

/// One sweep's journal directory.
pub struct SweepJournal {
    pub dir: PathBuf,
    events: crate::journal::LineLog,
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> SweepResult<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err(path))?;
    tmp.write_all(bytes).map_err(write_err(path))?;
    tmp.persist(path).map_err(|e| SweepError::Write {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

impl SweepJournal {
    fn create(common_dir: &Path, id: &str) -> SweepResult<SweepJournal> {
        let dir = sweeps_dir(common_dir).join(id);
        let parent = sweeps_dir(common_dir);
        std::fs::create_dir_all(&parent).map_err(write_err(&parent))?;
        std::fs::create_dir(&dir).map_err(write_err(&dir))?;
        for sub in [RUNS_DIR, CHECKS_DIR] {
            std::fs::create_dir(dir.join(sub)).map_err(write_err(&dir))?;
        }
        Ok(SweepJournal {
            dir,
            events: crate::journal::LineLog::default(),
        })
    }

    /// A journal of the sweep's own events and check logs in `dir` (made if need be),
    /// for a queue that lands runs made elsewhere (`baton sweep land`).
    pub(crate) fn at(dir: PathBuf) -> SweepResult<SweepJournal> {
        let checks = dir.join(CHECKS_DIR);
        std::fs::create_dir_all(&checks).map_err(write_err(&checks))?;
        Ok(SweepJournal {
            dir,
            events: crate::journal::LineLog::default(),
        })
    }

    /// Writes `name` in the journal as JSON, atomically.
    pub(crate) fn write(&self, name: &str, value: &impl Serialize) -> SweepResult<()> {
        self.write_json(name, value)
    }

    /// The sweep whose id is `query`, a unique prefix of it, or `last`.
    pub fn open(common_dir: &Path, query: &str) -> SweepResult<SweepJournal> {
        let ids = list(common_dir)?;
        let id = if query == "last" {
            ids.last().cloned().ok_or(SweepError::NoSweeps)?
        } else if ids.iter().any(|i| i == query) {
            query.to_string()
        } else {
            let matches: Vec<&String> = ids.iter().filter(|i| i.starts_with(query)).collect();
            match matches.as_slice() {
                [one] => one.to_string(),
                [] => return Err(SweepError::NoSuchSweep(query.into())),
                many => {
                    return Err(SweepError::Ambiguous {
                        query: query.into(),
                        matches: many
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        };
        Ok(SweepJournal {
            dir: sweeps_dir(common_dir).join(id),
            events: crate::journal::LineLog::default(),
        })
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> SweepResult<()> {
        let path = self.dir.join(name);
        let text = serde_json::to_vec_pretty(value).map_err(|e| SweepError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &text)
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> SweepResult<T> {
        let path = self.dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|source| SweepError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| SweepError::Damaged {
            path,
            message: e.to_string(),
        })
    }

    fn append(&self, line: &Value) -> SweepResult<()> {
        let path = self.dir.join(EVENTS_FILE);
        self.events.append(&path, line).map_err(write_err(&path))
    }

    /// Records that `run_id` is a run of task `task`.
    fn link(&self, run_id: &str, task: &str) -> SweepResult<()> {
        let path = self.dir.join(RUNS_DIR).join(run_id);
        if path.exists() {
            return Ok(());
        }
        write_atomic(&path, task.as_bytes())
    }

    /// Every run of the sweep and its task.
    fn links(&self) -> Vec<(String, String)> {
        let mut links: Vec<(String, String)> = std::fs::read_dir(self.dir.join(RUNS_DIR))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let run = e.file_name().to_string_lossy().into_owned();
                let task = std::fs::read_to_string(e.path()).ok()?;
                Some((run, task.trim().to_string()))
            })
            .collect();
        links.sort();
        links
    }

    pub fn id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The sweeps of the repository, oldest first.
pub fn list(common_dir: &Path) -> SweepResult<Vec<String>> {
    let dir = sweeps_dir(common_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(SweepError::Read { path: dir, source }),
    };
    let mut ids: Vec<(u64, String)> = entries
        .flatten()
        .filter(|e| e.path().join(RECORD_FILE).exists())
        .map(|e| {
            let started = std::fs::read_to_string(e.path().join(RECORD_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("started_at").and_then(Value::as_u64))
                .unwrap_or(0);
            (started, e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

// ---------------------------------------------------------------------------------
// The sweep's own events
// ---------------------------------------------------------------------------------

/// One fact of the sweep itself (a run's facts are its own [`RunEvent`]s).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event")]
pub enum SweepEvent {
    #[serde(rename = "sweep.started")]
    Started {
        tasks: usize,
        jobs: usize,
        batch: usize,
        target: String,
        format_version: u32,
    },
    /// A run passed on its own and was kept: it waits to land.
    #[serde(rename = "queue.candidate")]
    Candidate { task: String, run_id: String },
    /// Candidates merged onto `tip` as `tree`, about to be checked.
    #[serde(rename = "queue.testing")]
    Testing {
        tasks: Vec<String>,
        tip: String,
        tree: String,
        checks: usize,
    },
    /// One check command run on an integrated tree.
    #[serde(rename = "queue.check")]
    Check {
        tasks: Vec<String>,
        tree: String,
        attempt: u32,
        result: CheckResult,
    },
    /// A check's result on a tree that was already verified.
    #[serde(rename = "queue.cached")]
    Cached {
        tasks: Vec<String>,
        tree: String,
        command: String,
        passed: bool,
    },
    /// A check failed, then passed when run again.
    #[serde(rename = "queue.flaky")]
    Flaky {
        tasks: Vec<String>,
        command: String,
        attempts: u32,
    },
    #[serde(rename = "queue.landed")]
    Landed {
        tasks: Vec<String>,
        commits: Vec<String>,
        target: String,
        old: String,
        new: String,
    },
    #[serde(rename = "queue.conflict")]
    Conflict {
        task: String,
        run_id: String,
        paths: Vec<String>,
    },
    #[serde(rename = "queue.integration_failed")]
    IntegrationFailed {
        task: String,
        run_id: String,
        check: String,
        status: String,
        log: Option<PathBuf>,
    },
    #[serde(rename = "queue.dirty_overlap")]
    DirtyOverlap {
        task: String,
        run_id: String,
        paths: Vec<String>,
    },
    /// The target moved between the test and the landing: tested again on the new tip.
    #[serde(rename = "queue.tip_moved")]
    TipMoved { tested: String },
    /// A conflicting task is run again from the new tip.
    #[serde(rename = "sweep.retry")]
    Retry { task: String, after: String },
    #[serde(rename = "sweep.finished")]
    Finished {
        exit_code: i32,
        landed: usize,
        total: usize,
    },
}

/// Something that consumes the sweep's own events (and its report at the end).
pub trait SweepObserver: Send {
    fn on(&mut self, sweep_id: &str, ts_ms: u64, event: &SweepEvent);

    fn report(&mut self, _report: &SweepReport) {}
}

/// The observers a run of task `id` gets.
pub type RunObservers = dyn Fn(&str) -> Vec<Box<dyn Observer>> + Sync;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One line of the sweep's events.jsonl.
pub fn sweep_line(sweep_id: &str, ts_ms: u64, event: &SweepEvent) -> Value {
    let mut line = json!({ "ts_ms": ts_ms, "sweep_id": sweep_id });
    if let (Value::Object(map), Ok(Value::Object(fields))) =
        (&mut line, serde_json::to_value(event))
    {
        map.extend(fields);
    }
    line
}

/// Where the sweep's events go: its journal first, then every observer.
pub struct SweepEvents {
    sweep_id: String,
    journal: Arc<SweepJournal>,
    observers: Mutex<Vec<Box<dyn SweepObserver>>>,
}

impl SweepEvents {
    /// The events of sweep `sweep_id`, into `journal`, then to `observers`.
    pub(crate) fn new(
        sweep_id: &str,
        journal: Arc<SweepJournal>,
        observers: Vec<Box<dyn SweepObserver>>,
    ) -> SweepEvents {
        SweepEvents {
            sweep_id: sweep_id.to_string(),
            journal,
            observers: Mutex::new(observers),
        }
    }

    pub fn emit(&self, event: SweepEvent) -> SweepResult<()> {
        let ts = now_ms();
        self.journal
            .append(&sweep_line(&self.sweep_id, ts, &event))?;
        let mut observers = self.observers.lock().unwrap_or_else(|p| p.into_inner());
        for o in observers.iter_mut() {
            o.on(&self.sweep_id, ts, &event);
        }
        Ok(())
    }

    fn report(&self, report: &SweepReport) {
        let mut observers = self.observers.lock().unwrap_or_else(|p| p.into_inner());
        for o in observers.iter_mut() {
            o.report(report);
        }
    }
}

/// Who watches a sweep: observers for each run, and for the sweep's own events.
pub struct Watch<'a> {
    pub runs: &'a RunObservers,
    pub sweep: Vec<Box<dyn SweepObserver>>,
}

// ---------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------

/// A task to run: its place in the sweep and its plan.
struct Job {
    task: usize,
    plan: Plan,
    pipeline: Option<Pipeline>,
}

/// What the pool tells the sweep's main thread.
enum Msg {
    /// A run started (its journal exists): `runs/<run-id>` already says whose it is.
    Started { task: usize, run_id: String },
    /// A run ended, as its report says, or baton could not finish it.
    Done {
        task: usize,
        result: std::result::Result<Box<RunReport>, String>,
        duration_ms: u64,
    },
    /// Not started: Ctrl-C came first.
    Skipped,
}

/// Records a run's task in the sweep's journal the moment the run has an id.
struct Link {
    task: usize,
    task_id: String,
    journal: Arc<SweepJournal>,
    tx: Sender<Msg>,
}

impl Observer for Link {
    fn on(&mut self, run_id: &str, _ts_ms: u64, event: &RunEvent) {
        if let RunEvent::RunStarted { .. } = event {
            // The main thread writes it again if this fails.
            let _ = self.journal.link(run_id, &self.task_id);
            let _ = self.tx.send(Msg::Started {
                task: self.task,
                run_id: run_id.to_string(),
            });
        }
    }
}

/// The observers of a job's run: the caller's for its task, and the link that ties
/// the run to the task the moment it has an id.
fn job_observers(
    job: &Job,
    tx: &Sender<Msg>,
    ids: &[String],
    journal: &Arc<SweepJournal>,
    observers: &RunObservers,
) -> (String, Vec<Box<dyn Observer>>) {
    let task_id = ids.get(job.task).cloned().unwrap_or_default();
    let mut obs = observers(&task_id);
    obs.push(Box::new(Link {
        task: job.task,
        task_id: task_id.clone(),
        journal: journal.clone(),
        tx: tx.clone(),
    }));
    (task_id, obs)
}

/// What the sweep reports of a run that baton could not finish.
fn failed(e: Error) -> String {
    match e {
        Error::RunFailed(f) => format!("run {}: {}", f.run_id, f.error),
        other => other.to_string(),
    }
}

/// Where a sweep's runs run. Plain tasks are futures of one supervisor thread
/// ([`supervise_runs`]): each run's agent and checks are children supervised on its
/// runtime, its long git work on the runtime's few blocking threads, so the threads
/// baton has do not grow with the runs it has going. A pipeline task (a workflow
/// that is synchronous still) runs on a thread of its own.
struct Runners<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    runs: tokio::sync::mpsc::UnboundedSender<Job>,
    repo: &'env Repo,
    tx: Sender<Msg>,
    ids: &'env [String],
    journal: &'env Arc<SweepJournal>,
    observers: &'env RunObservers,
}

impl Runners<'_, '_> {
    /// Starts `job` as soon as a slot is free; false when the runners are gone.
    fn start(&self, job: Job) -> bool {
        if job.pipeline.is_none() {
            return self.runs.send(job).is_ok();
        }
        let (repo, tx, ids, journal, observers) = (
            self.repo,
            self.tx.clone(),
            self.ids,
            self.journal,
            self.observers,
        );
        self.scope
            .spawn(move || pipeline_job(repo, job, &tx, ids, journal, observers));
        true
    }
}

/// The supervisor thread of a sweep: every plain task's run, at most `slots` at once,
/// as futures of one runtime on this thread, until the job channel closes and every
/// run started has ended.
fn supervise_runs(
    repo: &Repo,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    slots: usize,
    tx: Sender<Msg>,
    ids: &[String],
    journal: &Arc<SweepJournal>,
    observers: &RunObservers,
) {
    let local = match process::runtime::Local::new() {
        Ok(local) => local,
        Err(e) => {
            // No runtime, no runs: each task is told so, and the sweep ends.
            while let Some(job) = jobs.blocking_recv() {
                let _ = tx.send(Msg::Done {
                    task: job.task,
                    result: Err(format!("baton could not start its process supervisor: {e}")),
                    duration_ms: 0,
                });
            }
            return;
        }
    };
    local.run(process::runtime::each(&mut jobs, slots, |job| {
        Box::pin(run_job(repo, job, tx.clone(), ids, journal, observers))
    }));
}

/// One plain task's run, as a future of the sweep's supervisor.
async fn run_job(
    repo: &Repo,
    job: Job,
    tx: Sender<Msg>,
    ids: &[String],
    journal: &Arc<SweepJournal>,
    observers: &RunObservers,
) {
    if process::interrupted() {
        let _ = tx.send(Msg::Skipped);
        return;
    }
    let (_, obs) = job_observers(&job, &tx, ids, journal, observers);
    let started = Instant::now();
    let result = run::run_async(repo, &job.plan, obs, &mut |r| run::default_policy(r))
        .await
        .map(Box::new)
        .map_err(failed);
    done(&tx, job.task, started, result);
}

/// Tells the sweep that the run of task `task`, started at `started`, ended so.
fn done(
    tx: &Sender<Msg>,
    task: usize,
    started: Instant,
    result: std::result::Result<Box<RunReport>, String>,
) {
    let _ = tx.send(Msg::Done {
        task,
        result,
        duration_ms: started.elapsed().as_millis() as u64,
    });
}

/// One pipeline task, on its own thread.
fn pipeline_job(
    repo: &Repo,
    job: Job,
    tx: &Sender<Msg>,
    ids: &[String],
    journal: &Arc<SweepJournal>,
    observers: &RunObservers,
) {
    if process::interrupted() {
        let _ = tx.send(Msg::Skipped);
        return;
    }
    let Some(p) = job.pipeline.as_ref() else {
        return;
    };
    let (task_id, obs) = job_observers(&job, tx, ids, journal, observers);
    let started = Instant::now();
    let result = run_pipeline(repo, &job, p, obs, &|| observers(&task_id));
    done(tx, job.task, started, result);
}

/// A pipeline task: its stages in one run, that run kept (the queue lands it) when
/// every stage passed. `first` observes the first stage (its start links the run to
/// the task); `more` gives each later round's observers.
fn run_pipeline(
    repo: &Repo,
    job: &Job,
    p: &Pipeline,
    first: Vec<Box<dyn Observer>>,
    more: &dyn Fn() -> Vec<Box<dyn Observer>>,
) -> std::result::Result<Box<RunReport>, String> {
    let first = Mutex::new(Some(first));
    let observers = || {
        first
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .unwrap_or_else(more)
    };
    let report = pipeline::pipeline(repo, &job.plan, p, false, &observers)
        .map_err(|e| Error::from(e).to_string())?;
    read_run(&repo.common_dir, &report.run_id)
        .map(Box::new)
        .ok_or_else(|| format!("run {}: its state cannot be read", report.run_id))
}

/// Stops the sweep's runs (`SweepStopping`) when dropped armed: the sweep failed.
struct StopRuns(Option<process::Cancel>);

impl Drop for StopRuns {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel(process::CancelReason::SweepStopping);
        }
    }
}

/// One sweep being driven.
struct Driver<'a> {
    repo: &'a Repo,
    journal: Arc<SweepJournal>,
    events: Arc<SweepEvents>,
    record: SweepRecord,
    state: SweepState,
    tasks: Vec<Task>,
    queue_settings: QueueSettings,
    /// The parent of every run's cancel token: cancelled with `SweepStopping` when
    /// the sweep fails while runs are going (it hears Ctrl-C too).
    stopping: process::Cancel,
}

impl Driver<'_> {
    fn save(&mut self) -> SweepResult<()> {
        self.state.updated_at = journal::now();
        self.journal.write_json(STATE_FILE, &self.state)
    }

    fn queue_config(&self) -> QueueConfig {
        let first = self.tasks.first().map(|t| &t.plan);
        let check_timeout = self
            .tasks
            .iter()
            .map(|t| t.plan.check_timeout)
            .max()
            .unwrap_or(config::DEFAULT_CHECK_TIMEOUT);
        QueueConfig {
            sweep_id: self.record.sweep_id.clone(),
            target: self.record.target.clone(),
            gate: self.queue_settings.gate.clone(),
            flaky_retries: self.queue_settings.flaky_retries.unwrap_or(1),
            batch: self
                .queue_settings
                .batch
                .unwrap_or_else(|| queue::default_batch(self.tasks.len())),
            on_fail: self.record.options.on_fail.unwrap_or(Policy::Keep),
            worktrees_dir: first
                .map(|p| p.worktrees_dir.clone())
                .unwrap_or_else(std::env::temp_dir),
            logs: self.journal.dir.join(CHECKS_DIR),
            check_timeout,
            kill_grace: first
                .map(|p| p.kill_grace)
                .unwrap_or(config::DEFAULT_KILL_GRACE),
        }
    }

    /// Runs `start` (task indexes) and lands them and `candidates` through the queue;
    /// returns when every task ran and every candidate was decided, or after Ctrl-C.
    fn drive(
        &mut self,
        start: Vec<usize>,
        candidates: Vec<Candidate>,
        runs: &RunObservers,
    ) -> Result<()> {
        let cfg = self.queue_config();
        let jobs = self.record.options.jobs.max(1);
        let retry_conflicts = self.record.options.retry_conflicts;
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).collect();
        let repo = self.repo;
        let journal = self.journal.clone();
        let (job_tx, job_rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (tx, rx) = mpsc::channel::<Msg>();
        let events = self.events.clone();
        let stopping = self.stopping.clone();
        std::thread::scope(|scope| -> Result<()> {
            // Until the loop below ends well, the runs still going are stopped if it
            // fails (the sweep cannot record or land them any more): each saves its
            // work as an interrupted run does, and the scope does not wait out their
            // agents.
            let mut stop_runs = StopRuns(Some(stopping));
            {
                let (tx, ids, journal) = (tx.clone(), &ids, &journal);
                scope.spawn(move || supervise_runs(repo, job_rx, jobs, tx, ids, journal, runs));
            }
            let runners = Runners {
                scope,
                runs: job_tx,
                repo,
                tx,
                ids: &ids,
                journal: &journal,
                observers: runs,
            };
            let mut outstanding = 0usize;
            for &task in &start {
                let plan = self.plan_of(task);
                let pipeline = self.tasks[task].pipeline.clone();
                if runners.start(Job {
                    task,
                    plan,
                    pipeline,
                }) {
                    outstanding += 1;
                }
            }
            // The runners stay while a conflicting task may be run again.
            let mut runners = Some(runners);
            let mut queue = Queue::new(repo, cfg, &events, runs);
            for c in candidates {
                queue.push(c)?;
            }
            let mut unparked = false;
            let result = loop {
                // Everything that has happened, then what the queue can do about it.
                // With no run outstanding no message can come: nothing to wait for
                // (the sweep's last landing is its end, not 50 ms before it).
                let wait = if (queue.ready(outstanding == 0) && !process::interrupted())
                    || outstanding == 0
                {
                    Duration::ZERO
                } else {
                    Duration::from_millis(50)
                };
                match rx.recv_timeout(wait) {
                    Ok(msg) => {
                        if self.on_message(msg, &mut queue, &mut outstanding)? {
                            continue;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        outstanding = 0;
                    }
                }
                if process::interrupted() {
                    // Runs still going save their work as a single run would; none is
                    // started, and nothing more is landed.
                    runners = None;
                    if outstanding == 0 {
                        break Ok(());
                    }
                    continue;
                }
                if queue.ready(outstanding == 0) {
                    let decided = queue.round()?;
                    self.state.queue = queue.stats().clone();
                    for d in decided {
                        if let Some(job) = self.on_decided(d, retry_conflicts)? {
                            if runners.as_ref().is_some_and(|r| r.start(job)) {
                                outstanding += 1;
                            }
                        }
                    }
                    self.save()?;
                    continue;
                }
                if outstanding == 0 && queue.waiting() == 0 {
                    // Candidates that waited for the user's tree get one more try.
                    if !unparked && queue.unpark() {
                        unparked = true;
                        continue;
                    }
                    break Ok(());
                }
            };
            if result.is_ok() {
                stop_runs.0 = None;
            }
            // Closes the supervisor's job channel: it ends once its runs have.
            drop(runners);
            self.state.queue = queue.stats().clone();
            result
        })?;
        Ok(())
    }

    fn plan_of(&self, task: usize) -> Plan {
        let mut plan = self.tasks[task].plan.clone();
        plan.sweep = Some(self.record.sweep_id.clone());
        plan.cancel = Some(match &plan.cancel {
            Some(own) => own.child(),
            None => self.stopping.child(),
        });
        plan
    }

    /// Handles one message from the pool; true when a candidate entered the queue.
    fn on_message(&mut self, msg: Msg, queue: &mut Queue, outstanding: &mut usize) -> Result<bool> {
        match msg {
            Msg::Started { task, run_id } => {
                self.journal.link(&run_id, &self.tasks[task].id)?;
                Ok(false)
            }
            Msg::Skipped => {
                *outstanding = outstanding.saturating_sub(1);
                Ok(false)
            }
            Msg::Done {
                task,
                result,
                duration_ms,
            } => {
                *outstanding = outstanding.saturating_sub(1);
                let id = self.tasks[task].id.clone();
                let report = match result {
                    Ok(r) => *r,
                    Err(e) => {
                        self.state.errors.insert(id, e);
                        self.save()?;
                        return Ok(false);
                    }
                };
                self.journal.link(&report.run_id, &id)?;
                self.state
                    .durations
                    .insert(report.run_id.clone(), duration_ms);
                self.state.errors.remove(&id);
                let kept = report
                    .outcome
                    .as_ref()
                    .is_some_and(|o| o.action == OutcomeAction::Kept);
                let entered = report.verdict.passed() && kept && !report.interrupted;
                if entered {
                    queue.push(Candidate { task: id, report })?;
                }
                self.save()?;
                Ok(entered)
            }
        }
    }

    /// Records the queue's decision; a job when a conflicting task is to run again.
    fn on_decided(&mut self, d: Decided, retry_conflicts: bool) -> Result<Option<Job>> {
        let Decided { task, decision } = d;
        let index = self.tasks.iter().position(|t| t.id == task);
        let mut job = None;
        if let (Decision::Conflict { run_id, .. }, Some(index)) = (&decision, index) {
            if retry_conflicts && self.state.retried.insert(task.clone()) {
                self.events.emit(SweepEvent::Retry {
                    task: task.clone(),
                    after: run_id.clone(),
                })?;
                job = Some(Job {
                    task: index,
                    plan: self.plan_of(index),
                    pipeline: self.tasks[index].pipeline.clone(),
                });
            }
        }
        if let Decision::Landed { run_id, .. } = &decision {
            // A run it replaced (kept after a conflict) is superseded: discarded, its
            // patch still in its journal.
            if let Some(Decision::Conflict { run_id: old, .. }) = self.state.decisions.get(&task) {
                if old != run_id {
                    let _ = discard_superseded(self.repo, old);
                }
            }
        }
        self.state.decisions.insert(task, decision);
        Ok(job)
    }
}

/// Drops a kept run that a later run of the same task replaced.
fn discard_superseded(repo: &Repo, run_id: &str) -> Result<()> {
    let journal = Arc::new(Journal::open(&repo.common_dir, run_id)?);
    let mut report = journal.read_state()?;
    if !report
        .outcome
        .as_ref()
        .is_some_and(|o| o.action.is_pending())
    {
        return Ok(());
    }
    let outcome = run::land(repo, &report, &journal, Policy::Revert, run::Target::Branch)?;
    let events = crate::events::Events::new(&report.run_id, journal.clone(), vec![]);
    run::land::finish(&journal, &events, &mut report, outcome)?;
    Ok(())
}

/// The ref a sweep lands on: the user's branch, or HEAD when it is detached.
pub fn target_of(repo: &Repo) -> Result<String> {
    Ok(repo.head()?.branch.unwrap_or_else(|| "HEAD".into()))
}

/// Starts a sweep of `file`: every task run, every passing run landed through the queue.
pub fn start(
    repo: &Repo,
    file: TaskFile,
    flags: Flags,
    options: Options,
    watch: Watch,
) -> Result<SweepReport> {
    repo.check_identity()?;
    let target = file.target.clone();
    let (sweep_id, journal) = new_journal(repo)?;
    let journal = Arc::new(journal);
    std::fs::copy(&file.path, journal.dir.join(file.kind.file_name())).map_err(|source| {
        SweepError::Write {
            path: journal.dir.join(file.kind.file_name()),
            source,
        }
    })?;
    let record = SweepRecord {
        format_version: FORMAT_VERSION,
        sweep_id: sweep_id.clone(),
        file: file.path.clone(),
        pipelines_dir: std::path::absolute(&file.path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
        kind: file.kind,
        flags,
        options,
        target,
        started_at: journal::now(),
        tasks: file
            .tasks
            .iter()
            .map(|t| TaskEntry {
                id: t.id.clone(),
                task: t.plan.task().lines().next().unwrap_or("").to_string(),
                line: t.line,
            })
            .collect(),
    };
    journal.write_json(RECORD_FILE, &record)?;
    let state = SweepState {
        format_version: FORMAT_VERSION,
        sweep_id: sweep_id.clone(),
        pid: std::process::id(),
        pid_start: process::own_start_time(),
        updated_at: journal::now(),
        ..SweepState::default()
    };
    let start: Vec<usize> = (0..file.tasks.len()).collect();
    drive(repo, journal, record, state, file, watch, start, vec![])
}

/// Runs the tasks `start` of a sweep (new or resumed) and lands what passes, with
/// `candidates` (verified runs not landed yet) first in the queue.
#[allow(clippy::too_many_arguments)]
fn drive(
    repo: &Repo,
    journal: Arc<SweepJournal>,
    record: SweepRecord,
    state: SweepState,
    file: TaskFile,
    watch: Watch<'_>,
    start: Vec<usize>,
    candidates: Vec<Candidate>,
) -> Result<SweepReport> {
    let events = Arc::new(SweepEvents {
        sweep_id: record.sweep_id.clone(),
        journal: journal.clone(),
        observers: Mutex::new(watch.sweep),
    });
    let mut driver = Driver {
        repo,
        journal,
        events,
        record,
        state,
        stopping: process::Cancel::default(),
        queue_settings: file.queue.clone(),
        tasks: file.tasks,
    };
    driver.save()?;
    driver.run(start, candidates, watch.runs)
}

impl Driver<'_> {
    /// The whole sweep from here: runs, queue, report. A failure of baton's own on the
    /// way names the sweep, which `sweep resume` finishes.
    fn run(
        mut self,
        start: Vec<usize>,
        candidates: Vec<Candidate>,
        runs: &RunObservers,
    ) -> Result<SweepReport> {
        let result = self
            .begin()
            .and_then(|()| self.drive(start, candidates, runs));
        if let Err(e) = result {
            if matches!(e, Error::Interrupted) {
                return Err(e);
            }
            let _ = self.save();
            return Err(SweepError::Stopped {
                sweep_id: self.record.sweep_id.clone(),
                journal: self.journal.dir.clone(),
                error: Box::new(e),
            }
            .into());
        }
        self.end()
    }

    fn begin(&mut self) -> Result<()> {
        let cfg = self.queue_config();
        self.events.emit(SweepEvent::Started {
            tasks: self.tasks.len(),
            jobs: self.record.options.jobs,
            batch: cfg.batch,
            target: self.record.target.clone(),
            format_version: FORMAT_VERSION,
        })?;
        Ok(())
    }

    fn end(mut self) -> Result<SweepReport> {
        self.state.interrupted = process::interrupted();
        self.state.finished = !self.state.interrupted;
        self.save()?;
        let report = report_of(self.repo, &self.journal, &self.record, &self.state)?;
        self.events.emit(SweepEvent::Finished {
            exit_code: report.exit_code,
            landed: report.landed,
            total: report.total,
        })?;
        self.journal.write_json(REPORT_FILE, &report)?;
        self.events.report(&report);
        Ok(report)
    }
}

fn new_journal(repo: &Repo) -> Result<(String, SweepJournal)> {
    let mut last = None;
    for _ in 0..20 {
        let id = run::new_run_id();
        match SweepJournal::create(&repo.common_dir, &id) {
            Ok(j) => return Ok((id, j)),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    Err(last.map(Error::from).unwrap_or(Error::Interrupted))
}

/// `baton sweep resume SWEEP`: recovers what a killed sweep left, starts the tasks that
/// never ran (or were stopped before they were judged), and lands the verified runs
/// not yet landed. A task that landed is never landed again.
pub fn resume(repo: &Repo, query: &str, cwd: &Path, watch: Watch) -> Result<SweepReport> {
    let journal = Arc::new(SweepJournal::open(&repo.common_dir, query)?);
    let record: SweepRecord = journal.read_json(RECORD_FILE)?;
    let mut state: SweepState = journal.read_json(STATE_FILE)?;
    if !state.finished
        && state.pid != std::process::id()
        && process::running(state.pid, state.pid_start)
    {
        return Err(SweepError::StillRunning {
            sweep_id: record.sweep_id.clone(),
            pid: state.pid,
        }
        .into());
    }
    // What a killed sweep left: its runs halfway (recover finishes or rolls back each,
    // a landing cut short included), and its landing worktrees.
    for (run_id, _) in journal.links() {
        if let Ok(j) = Journal::open(&repo.common_dir, &run_id) {
            let _ = recover::recover(repo, &j);
        }
    }
    queue::remove_landing_worktrees(repo, &record.sweep_id)?;
    let copy = journal.dir.join(record.kind.file_name());
    let text = std::fs::read_to_string(&copy).map_err(|source| SweepError::Read {
        path: copy.clone(),
        source,
    })?;
    let ctx = Context {
        repo,
        cwd: cwd.to_path_buf(),
        flags: record.flags.clone(),
        target: record.target.clone(),
        pipelines_dir: record.pipelines_dir.clone(),
    };
    let file = load(&ctx, &copy, &text)?;
    let runs = runs_by_task(repo, &journal);
    let mut start = vec![];
    let mut candidates = vec![];
    for (i, task) in file.tasks.iter().enumerate() {
        let latest = runs.get(&task.id).and_then(|r| r.last());
        match latest {
            None => start.push(i),
            Some(r) if landed(r) => {}
            Some(r) if r.verdict.passed() && pending(r) => {
                // Landing removes the worktree: one edited since it was judged holds
                // work that was never verified, and is left for `baton merge`.
                let edited = r.worktree.exists()
                    && repo.snapshot_tree(&r.worktree).ok().as_ref() != r.tree.as_ref();
                if edited {
                    state.decisions.insert(
                        task.id.clone(),
                        Decision::Edited {
                            run_id: r.run_id.clone(),
                        },
                    );
                    continue;
                }
                state.decisions.remove(&task.id);
                candidates.push(Candidate {
                    task: task.id.clone(),
                    report: r.clone(),
                });
            }
            // Stopped before it was judged (Ctrl-C, SIGKILL, baton's own failure): its
            // work was saved by recovery; the task runs again.
            Some(r) if r.stage != Stage::Finished || r.interrupted || r.error.is_some() => {
                start.push(i)
            }
            Some(_) => {}
        }
    }
    for (task, _) in state.errors.clone() {
        if let Some(i) = file.tasks.iter().position(|t| t.id == task) {
            if !start.contains(&i) && !runs.get(&task).is_some_and(|r| r.iter().any(landed)) {
                start.push(i);
            }
        }
    }
    start.sort_unstable();
    state.pid = std::process::id();
    state.pid_start = process::own_start_time();
    state.finished = false;
    state.interrupted = false;
    drive(repo, journal, record, state, file, watch, start, candidates)
}

fn landed(r: &RunReport) -> bool {
    r.outcome
        .as_ref()
        .is_some_and(|o| o.action == OutcomeAction::Merged)
}

fn pending(r: &RunReport) -> bool {
    r.outcome.as_ref().is_some_and(|o| o.action.is_pending())
}

/// A run's state as its journal has it now (`None`: no readable state).
pub(crate) fn read_run(common_dir: &Path, run_id: &str) -> Option<RunReport> {
    // Straight to the file: opening a journal by query lists every run of the repository.
    let path = journal::runs_dir(common_dir)
        .join(run_id)
        .join(journal::STATE_FILE);
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Every run of the sweep, by task, in the order they were created.
fn runs_by_task(repo: &Repo, journal: &SweepJournal) -> BTreeMap<String, Vec<RunReport>> {
    let mut by_task: BTreeMap<String, Vec<RunReport>> = BTreeMap::new();
    for (run_id, task) in journal.links() {
        let Some(state) = read_run(&repo.common_dir, &run_id) else {
            continue;
        };
        by_task.entry(task).or_default().push(state);
    }
    for runs in by_task.values_mut() {
        runs.sort_by_key(|r| (r.seq, r.started_at));
    }
    by_task
}

// ---------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------

/// What became of one task, and where its work is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskReport {
    pub id: String,
    pub task: String,
    /// Its latest run (`None`: it never started).
    pub run_id: Option<String>,
    /// Every run of it, oldest first.
    pub runs: Vec<String>,
    /// The run's verdict (`passed`, `checks_failed`, …), `not_started` or
    /// `interrupted`.
    pub verdict: String,
    pub landed: bool,
    /// Why it did not land: `checks_failed`, `scope_violated`, `agent_failed`,
    /// `no_change`, `conflict`, `integration_failed`, `dirty_overlap`, `edited`,
    /// `interrupted`, `not_started`, `queued` (verified, not landed yet) or `error`.
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// Where the work is: the landed commit, the kept branch, the stash, the patch.
    #[serde(rename = "where")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stash: Option<String>,
    /// The paths of a conflict or of the user's work in the way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The check that failed (on the run's own tree, or integrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A sweep's report: one entry per task, in the file's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub format_version: u32,
    pub sweep_id: String,
    pub file: PathBuf,
    pub target: String,
    pub finished: bool,
    pub interrupted: bool,
    /// The sweep's process is still going (`sweep status` of a live sweep).
    pub running: bool,
    pub landed: usize,
    pub total: usize,
    pub tasks: Vec<TaskReport>,
    pub queue: QueueStats,
    pub journal: PathBuf,
    pub exit_code: i32,
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn task_report(
    entry: &TaskEntry,
    runs: &[RunReport],
    state: &SweepState,
    target: &str,
) -> TaskReport {
    let mut t = TaskReport {
        id: entry.id.clone(),
        task: entry.task.clone(),
        run_id: None,
        runs: runs.iter().map(|r| r.run_id.clone()).collect(),
        verdict: "not_started".into(),
        landed: false,
        reason: Some("not_started".into()),
        duration_ms: 0,
        location: None,
        commit: None,
        branch: None,
        stash: None,
        paths: vec![],
        check: None,
        log: None,
        detail: None,
    };
    let Some(r) = runs.last() else {
        if let Some(e) = state.errors.get(&entry.id) {
            t.reason = Some("error".into());
            t.detail = Some(e.clone());
        }
        return t;
    };
    t.run_id = Some(r.run_id.clone());
    t.duration_ms = state
        .durations
        .get(&r.run_id)
        .copied()
        .unwrap_or_else(|| r.updated_at.saturating_sub(r.started_at) * 1000);
    t.verdict = verdict_name(r.verdict);
    let outcome = r.outcome.as_ref();
    let kept = || {
        (
            Some(format!(
                "branch {} (worktree {})",
                r.branch,
                r.worktree.display()
            )),
            Some(r.branch.clone()),
        )
    };
    match outcome.map(|o| o.action) {
        Some(OutcomeAction::Merged) => {
            t.landed = true;
            t.reason = None;
            t.commit = outcome.and_then(|o| o.commit.clone());
            t.location = Some(match &t.commit {
                Some(c) => format!("commit {} on {target}", short(c)),
                None => format!("on {target}"),
            });
            return t;
        }
        Some(OutcomeAction::Kept | OutcomeAction::Conflict) => {
            (t.location, t.branch) = kept();
        }
        Some(OutcomeAction::Stashed) => {
            t.stash = outcome.and_then(|o| o.stash.clone());
            t.location = Some(format!(
                "stash {} (`git stash list`: \"baton {}: …\")",
                t.stash.as_deref().map(short).unwrap_or("?"),
                r.run_id
            ));
        }
        Some(OutcomeAction::Reverted) => {
            t.location = Some(format!(
                "patch {}",
                r.journal.join(journal::PATCH_FILE).display()
            ));
        }
        Some(OutcomeAction::Applied) => {
            t.location = Some("applied to your working tree".into());
        }
        Some(OutcomeAction::Discarded) | None => {
            if r.stage != Stage::Finished {
                (t.location, t.branch) = kept();
            }
        }
    }
    let failed_check = r
        .checks
        .iter()
        .find(|c| !c.status.passed() && c.status != crate::checklist::CheckStatus::Skipped);
    if r.stage != Stage::Finished || (r.interrupted && !r.verdict.passed()) {
        t.verdict = "interrupted".into();
        t.reason = Some("interrupted".into());
        return t;
    }
    if let Some(e) = &r.error {
        t.reason = Some("error".into());
        t.detail = Some(e.clone());
        return t;
    }
    if !r.verdict.passed() {
        t.reason = Some(verdict_name(r.verdict));
        if let Some(c) = failed_check {
            t.check = Some(c.command.clone());
            t.log = c.log.clone();
        }
        return t;
    }
    match state.decisions.get(&entry.id) {
        Some(d @ Decision::Conflict { paths, .. }) if d.run_id() == r.run_id => {
            t.reason = Some("conflict".into());
            t.paths = paths.clone();
        }
        Some(
            d @ Decision::IntegrationFailed {
                check, log, status, ..
            },
        ) if d.run_id() == r.run_id => {
            t.reason = Some("integration_failed".into());
            t.check = Some(check.clone());
            t.log = log.clone();
            t.detail = Some(format!("`{check}` {status} merged onto {target}"));
        }
        Some(d @ Decision::DirtyOverlap { paths, detail, .. }) if d.run_id() == r.run_id => {
            t.reason = Some("dirty_overlap".into());
            t.paths = paths.clone();
            t.detail = Some(detail.clone());
        }
        Some(d @ Decision::Edited { run_id }) if d.run_id() == r.run_id => {
            t.reason = Some("edited".into());
            t.detail = Some(format!(
                "its worktree was changed since it was judged; `baton merge {run_id}` judges it again and lands it"
            ));
        }
        _ => {
            t.reason = Some("queued".into());
            t.detail =
                Some("verified on its own, not landed yet: `baton sweep resume` lands it".into());
        }
    }
    t
}

fn report_of(
    repo: &Repo,
    journal: &SweepJournal,
    record: &SweepRecord,
    state: &SweepState,
) -> Result<SweepReport> {
    let runs = runs_by_task(repo, journal);
    let target = record
        .target
        .strip_prefix("refs/heads/")
        .unwrap_or(&record.target)
        .to_string();
    let tasks: Vec<TaskReport> = record
        .tasks
        .iter()
        .map(|e| {
            let none = vec![];
            task_report(e, runs.get(&e.id).unwrap_or(&none), state, &target)
        })
        .collect();
    let landed = tasks.iter().filter(|t| t.landed).count();
    let running = !state.finished
        && state.pid != std::process::id()
        && process::running(state.pid, state.pid_start);
    let interrupted =
        state.interrupted || (!state.finished && !running && state.pid != std::process::id());
    let total = tasks.len();
    Ok(SweepReport {
        format_version: FORMAT_VERSION,
        sweep_id: record.sweep_id.clone(),
        file: record.file.clone(),
        target,
        finished: state.finished,
        interrupted,
        running,
        landed,
        total,
        tasks,
        queue: state.queue.clone(),
        journal: journal.dir.clone(),
        exit_code: exit::for_sweep(landed == total, interrupted),
    })
}

/// `baton sweep status [SWEEP]`: the report of a sweep as its journal has it now.
pub fn status(repo: &Repo, query: &str) -> Result<SweepReport> {
    let journal = SweepJournal::open(&repo.common_dir, query)?;
    let record: SweepRecord = journal.read_json(RECORD_FILE)?;
    let state: SweepState = journal.read_json(STATE_FILE)?;
    report_of(repo, &journal, &record, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_the_task_text() {
        assert_eq!(derive_id("Fix add() so it adds"), "fix-add-so-it-adds");
        assert_eq!(
            derive_id("Round cents in shop/money.py instead of truncating them, please"),
            "round-cents-in-shop-money"
        );
        assert_eq!(derive_id("!!!"), "task");
        assert!(valid_id("fix-money_2.a"));
        assert!(!valid_id("../x") && !valid_id("") && !valid_id("a b"));
        // What git would refuse as a ref name at the worker's push, after its run.
        assert!(!valid_id("fix.lock") && !valid_id("a..b") && !valid_id("fix."));
    }

    #[test]
    fn the_lines_of_tables_and_keys_are_found() {
        let text = "[defaults]\nagent = \"cmd:true\"\n\n[[task]]\nid = \"a\"\ntask = \"\"\"\nx = 1\n\"\"\"\ncheck = 2\n\n[[task]]\n  scope = [\n \"a\",\n]\n";
        let lines = scan_toml(text);
        assert_eq!(lines.tables["defaults"].keys["agent"], 2);
        assert_eq!(lines.tasks.len(), 2);
        assert_eq!(lines.tasks[0].header, 4);
        assert_eq!(lines.tasks[0].keys["task"], 6);
        // Inside the multi-line string, `x = 1` is text, not a key.
        assert!(!lines.tasks[0].keys.contains_key("x"));
        assert_eq!(lines.tasks[0].keys["check"], 9);
        assert_eq!(lines.tasks[1].keys["scope"], 12);
    }

    #[test]
    fn a_toml_task_names_its_bad_field_and_line() {
        let text = "[[task]]\nid = \"a\"\ntask = \"t\"\n\n[[task]]\nid = \"b\"\ntask = \"t\"\non_pass = \"mrege\"\n";
        let err = parse_toml("tasks.toml", text).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.starts_with("tasks.toml:8: task `b`, field `on_pass`:"),
            "{err}"
        );
        assert!(err.contains("mrege") && !err.contains('\n'), "{err}");
        let text = "[[task]]\ntask = \"t\"\nagnet = \"x\"\n";
        let err = parse_toml("t.toml", text).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.starts_with("t.toml:3: task, field `agnet`:"), "{err}");
        assert!(err.contains("requirements"), "{err}");
    }

    #[test]
    fn a_markdown_checklist_has_a_task_per_unchecked_item() {
        let text = "# Bugs\n\n- [ ] Round cents\n- [x] Done already\n* [ ] Count quantities\n```\n- [ ] not a task\n```\n  - [ ] nested too\n";
        let tasks = parse_markdown(text);
        let found: Vec<(usize, &str)> = tasks
            .iter()
            .map(|t| (t.line, t.settings.task_text()))
            .collect();
        assert_eq!(
            found,
            [
                (3, "Round cents"),
                (5, "Count quantities"),
                (9, "nested too")
            ]
        );
    }
}

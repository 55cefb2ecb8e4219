//! The agent stage: one backend trait, one implementation per kind of agent, all
//! producing the same event stream and the same [`AgentReport`]. The backends run
//! their children through `process` (process group, timeouts, kill); what the agent
//! claims is information only — the verdict comes later from the worktree's real diff.

mod claude;
mod cmd;
mod codex;
mod gemini;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{AgentConfig, Config};
use crate::process::{self, Stream};
use crate::report::{AgentReport, AgentStatus, FailureClass};

pub use claude::pointed_at as claude_pointed_at;
pub use codex::{CODEX_PACKAGE, CODEX_VERSION, pointed_at};

/// Every agent a user can name, as help and errors list them.
pub const AGENT_NAMES: &str = "codex, claude, gemini, cmd:<shell command>, auto";
/// The agents that do the work (`auto` only picks one of them).
pub const BACKEND_NAMES: &str = "codex, claude, gemini, cmd:<shell command>";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("unknown agent `{0}`; use one of: {AGENT_NAMES} (for example --agent 'cmd:./fix.sh')")]
    Unknown(String),
    /// `auto` where an agent must be named: a fallback, a route's choice.
    #[error(
        "`{0}` picks the first agent by routing the task, so it cannot be a fallback; name one of: {BACKEND_NAMES}"
    )]
    NotAvailable(String),
    #[error("the agent `cmd:` has no command; write it as cmd:<shell command>")]
    EmptyCommand,
    #[error(
        "{name} is not installed (not found{where_}); install it with `npm install -g {package}`, or set `[agents.{name}] path` in .baton/config.toml"
    )]
    NotInstalled {
        name: String,
        package: String,
        where_: String,
    },
    #[error("the {0} agent keeps no session to resume; start a new run instead")]
    NoResume(String),
    #[error("could not run the agent")]
    Process(#[from] process::ProcessError),
}

/// Which agent a run uses, as written on the command line or in a handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSpec {
    Cmd(String),
    Codex,
    Claude,
    Gemini,
}

impl AgentSpec {
    pub fn parse(text: &str) -> Result<AgentSpec, AgentError> {
        let text = text.trim();
        if let Some(command) = text.strip_prefix("cmd:") {
            if command.trim().is_empty() {
                return Err(AgentError::EmptyCommand);
            }
            return Ok(AgentSpec::Cmd(command.to_string()));
        }
        match text {
            "codex" => Ok(AgentSpec::Codex),
            "claude" => Ok(AgentSpec::Claude),
            "gemini" => Ok(AgentSpec::Gemini),
            // `auto` is resolved by routing before an agent is parsed.
            "auto" => Err(AgentError::NotAvailable(text.into())),
            _ => Err(AgentError::Unknown(text.into())),
        }
    }

    pub fn label(&self) -> String {
        match self {
            AgentSpec::Cmd(c) => format!("cmd:{c}"),
            AgentSpec::Codex => "codex".into(),
            AgentSpec::Claude => "claude".into(),
            AgentSpec::Gemini => "gemini".into(),
        }
    }

    /// The backend, configured; fails early when its CLI cannot be found.
    pub fn backend(&self, config: &Config) -> Result<Box<dyn Backend>, AgentError> {
        Ok(match self {
            AgentSpec::Cmd(c) => Box::new(cmd::CmdBackend::new(c.clone())),
            AgentSpec::Codex => Box::new(codex::CodexBackend::new(config.agent("codex"))?),
            AgentSpec::Claude => Box::new(claude::ClaudeBackend::new(config.agent("claude"))?),
            AgentSpec::Gemini => Box::new(gemini::GeminiBackend::new(config.agent("gemini"))?),
        })
    }
}

/// What a backend gets to work with.
#[derive(Debug, Clone)]
pub struct AgentContext {
    pub run_id: String,
    pub worktree: PathBuf,
    /// The handoff document as sent (front matter and body).
    pub handoff: PathBuf,
    /// The prompt alone: the handoff's body, or a follow-up when resuming.
    pub prompt: PathBuf,
    /// Continue this session of the agent instead of starting a new one.
    pub resume: Option<String>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub log: PathBuf,
    /// Stops the agent, for its reason, once cancelled; [`process::Cancel::default`]
    /// hears Ctrl-C only. The backend hands it to the agent's process.
    pub cancel: process::Cancel,
}

impl AgentContext {
    /// The environment that gives an isolated agent (`[agents.NAME] isolate`) a private,
    /// empty home in the run's journal, under `var`.
    fn private_home(&self, cfg: &AgentConfig, var: &str) -> Vec<(String, String)> {
        if !cfg.isolate {
            return vec![];
        }
        let dir = self.log.with_file_name("agent-home");
        let _ = std::fs::create_dir_all(&dir);
        vec![(var.to_string(), dir.display().to_string())]
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("BATON_HANDOFF".into(), self.handoff.display().to_string()),
            ("BATON_PROMPT".into(), self.prompt.display().to_string()),
            ("BATON_RUN_ID".into(), self.run_id.clone()),
            ("BATON_WORKTREE".into(), self.worktree.display().to_string()),
        ]
    }
}

/// One event of the agent's stream, whatever the backend.
#[derive(Debug, Clone)]
pub enum AgentEvent<'a> {
    /// A line of output the backend does not parse (all of a `cmd:` agent's output,
    /// and anything an agent CLI prints that baton does not know): kept verbatim.
    Output {
        stream: Stream,
        line: &'a str,
    },
    /// The agent's session, for resuming it.
    Session {
        id: String,
    },
    TurnStarted,
    Message {
        text: String,
    },
    FileChange {
        path: String,
        kind: String,
    },
    Command {
        command: String,
        exit_code: Option<i64>,
        status: String,
    },
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    /// A model or agent error (the run's failure, when it is the last word).
    Error {
        message: String,
    },
    /// A known kind of event baton does not act on (reasoning, plans, warnings).
    Other {
        kind: String,
        data: serde_json::Value,
    },
}

impl AgentEvent<'_> {
    /// The journal's name and data for this event.
    pub fn journal_entry(&self) -> (&'static str, serde_json::Value) {
        use serde_json::json;
        match self {
            AgentEvent::Output { stream, line } => {
                let stream = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                ("agent.output", json!({ "stream": stream, "line": line }))
            }
            AgentEvent::Session { id } => ("agent.session", json!({ "session": id })),
            AgentEvent::TurnStarted => ("agent.turn", json!({})),
            AgentEvent::Message { text } => ("agent.message", json!({ "text": text })),
            AgentEvent::FileChange { path, kind } => {
                ("agent.file_change", json!({ "path": path, "kind": kind }))
            }
            AgentEvent::Command {
                command,
                exit_code,
                status,
            } => (
                "agent.command",
                json!({ "command": command, "exit_code": exit_code, "status": status }),
            ),
            AgentEvent::Usage {
                input_tokens,
                output_tokens,
            } => (
                "agent.usage",
                json!({ "input_tokens": input_tokens, "output_tokens": output_tokens }),
            ),
            AgentEvent::Error { message } => ("agent.error", json!({ "message": message })),
            AgentEvent::Other { kind, data } => {
                ("agent.other", json!({ "kind": kind, "data": data }))
            }
        }
    }
}

/// What an agent CLI's stream told us, gathered for the report.
#[derive(Debug, Default)]
struct Gathered {
    session: Option<String>,
    error: Option<String>,
    last_message: Option<String>,
    usage: Option<crate::report::Usage>,
    cost_usd: Option<f64>,
    /// The CLI's own verdict line, when it prints one (Gemini CLI's `result`).
    result_ok: Option<bool>,
}

/// A string field of a JSON event, or "".
fn text(v: &serde_json::Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// Reads one line of an agent CLI's stdout into events and what the report needs.
type ParseLine = fn(&str, &mut Gathered, &mut dyn FnMut(AgentEvent<'_>));

/// How one agent CLI is started; the rest of the run is the same for all of them.
struct Cli<'a> {
    name: &'static str,
    argv: Vec<std::ffi::OsString>,
    cfg: &'a AgentConfig,
    /// The variable that points the CLI at its state, for `isolate`.
    home_var: &'static str,
    extra_env: Vec<(String, String)>,
    /// Stop the CLI once it printed its verdict (for one that lingers after it).
    stop_after_result: bool,
    parse: ParseLine,
}

impl Cli<'_> {
    /// Runs the CLI in the worktree with the prompt on stdin, parses its stdout, keeps
    /// its stderr verbatim, and fills the report from what the stream said.
    async fn run(
        self,
        ctx: &AgentContext,
        on_event: &mut dyn FnMut(AgentEvent<'_>),
    ) -> Result<AgentReport, AgentError> {
        let finished = self
            .stop_after_result
            .then(|| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let spec = process::Spec {
            command: self
                .argv
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            argv: Some(self.argv.clone()),
            stdin: Some(ctx.prompt.clone()),
            cwd: ctx.worktree.clone(),
            env: ctx
                .env()
                .into_iter()
                .chain(self.extra_env.iter().cloned())
                .chain(ctx.private_home(self.cfg, self.home_var))
                .chain(self.cfg.env.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect(),
            timeout: ctx.timeout,
            idle_timeout: ctx.idle_timeout,
            grace: ctx.kill_grace,
            log: Some(ctx.log.clone()),
            finished: finished.clone(),
            cancel: ctx.cancel.clone(),
        };
        let mut got = Gathered::default();
        let done = process::supervise(&spec, &mut |stream, line| match stream {
            Stream::Stdout => {
                (self.parse)(line, &mut got, on_event);
                if let (Some(f), Some(_)) = (&finished, got.result_ok) {
                    f.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            Stream::Stderr => on_event(AgentEvent::Output { stream, line }),
        })
        .await?;
        let mut report = report_from(self.name.into(), &done);
        // A CLI that prints its own verdict is believed about itself (not about the
        // work: that is judged from the worktree).
        if let Some(ok) = got.result_ok {
            if matches!(report.status, AgentStatus::Succeeded | AgentStatus::Failed) {
                report.status = if ok {
                    AgentStatus::Succeeded
                } else {
                    AgentStatus::Failed
                };
            }
        }
        report.session = got.session.or_else(|| ctx.resume.clone());
        // A failure the CLI did not put in its stream (a bad config, a missing home)
        // is explained by the last thing it printed.
        report.error = got.error.or_else(|| {
            (report.status == AgentStatus::Failed)
                .then(|| {
                    report
                        .tail
                        .iter()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .cloned()
                })
                .flatten()
        });
        report.last_message = got.last_message.filter(|m| !m.is_empty());
        report.usage = got.usage;
        report.cost_usd = got.cost_usd;
        Ok(report)
    }
}

/// What an agent's run is while it goes: a future of the runtime it is awaited on
/// (not `Send`: a sweep's runs all live on one thread).
pub type Running<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<AgentReport, AgentError>> + 'a>>;

pub trait Backend {
    /// Runs the agent in `ctx.worktree`, each thing its stream says an event.
    fn run_async<'a>(
        &'a self,
        ctx: &'a AgentContext,
        on_event: &'a mut dyn FnMut(AgentEvent<'_>),
    ) -> Running<'a>;

    /// [`Backend::run_async`] for synchronous callers.
    fn run(
        &self,
        ctx: &AgentContext,
        on_event: &mut dyn FnMut(AgentEvent<'_>),
    ) -> Result<AgentReport, AgentError> {
        process::runtime::block_on(self.run_async(ctx, on_event)).map_err(|source| {
            AgentError::Process(process::ProcessError::Wait {
                command: "the agent".into(),
                source,
            })
        })?
    }
}

/// Turns a finished process into a report, the same way for every backend.
fn report_from(agent: String, done: &process::Finished) -> AgentReport {
    let (exit_code, signal) = match done.ended {
        process::Ended::Exited(c) => (Some(c), None),
        process::Ended::Signalled(s) => (None, Some(s)),
    };
    let status = match done.stopped {
        Some(process::Stopped::Timeout) => AgentStatus::TimedOut,
        Some(process::Stopped::Idle) => AgentStatus::Idle,
        // Stopped by baton before it was done: like a Ctrl-C, the work so far is the
        // caller's to keep or drop. (A report status of their own comes with the
        // workflows that cancel so.)
        Some(
            process::Stopped::Interrupted
            | process::Stopped::OtherCandidateWon
            | process::Stopped::SweepStopping,
        ) => AgentStatus::Interrupted,
        // The backend reported its result; it decides success from that result.
        Some(process::Stopped::AfterResult) => AgentStatus::Succeeded,
        None if done.success() => AgentStatus::Succeeded,
        None => AgentStatus::Failed,
    };
    AgentReport {
        agent,
        status,
        class: FailureClass::Ok,
        exit_code,
        signal,
        duration_ms: done.duration.as_millis() as u64,
        left_background_process: done.lingering,
        tail: done.tail.clone(),
        session: None,
        error: None,
        last_message: None,
        usage: None,
        cost_usd: None,
    }
}

/// The class of a finished attempt, from its status, exit, error and output tail.
/// Words are matched on the model's or CLI's own error (and the HTTP status in it),
/// never on a friendly summary alone; a non-zero exit without a model error is a
/// crash.
/// `word` in `text`, not as part of a longer word or number (`429` is not in `a4293f`).
fn contains_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

pub fn classify(report: &AgentReport) -> FailureClass {
    match report.status {
        AgentStatus::Succeeded => return FailureClass::Ok,
        AgentStatus::TimedOut => return FailureClass::Timeout,
        AgentStatus::Idle => return FailureClass::Idle,
        AgentStatus::Interrupted => return FailureClass::Interrupted,
        AgentStatus::Failed => {}
    }
    if report.signal.is_some() {
        return FailureClass::Crashed;
    }
    // The agent's own error when it gave one; its last output only when it did not
    // (the output also holds paths, ids and ports, where any digits can turn up).
    let text = match &report.error {
        Some(e) => e.to_lowercase(),
        None => report.tail.join(" ").to_lowercase(),
    };
    let has = |words: &[&str]| words.iter().any(|w| contains_word(&text, w));
    // Gemini CLI exits with the HTTP status modulo 256: 429 → 173, 500 → 244, 401 → 145,
    // 403 → 147; 41 is its "invalid auth method", 55 an untrusted folder.
    let gemini_exit = if report.agent == "gemini" {
        report.exit_code
    } else {
        None
    };
    if has(&[
        "429",
        "too many requests",
        "rate limit",
        "rate_limit",
        "resource_exhausted",
        "quota",
        "rate_limit_error",
    ]) || gemini_exit == Some(173)
    {
        FailureClass::RateLimited
    } else if has(&[
        "401",
        "403",
        "unauthorized",
        "forbidden",
        "invalid api key",
        "invalid_api_key",
        "authentication",
        "authentication_error",
        "invalid auth",
        "permission_denied",
    ]) || matches!(gemini_exit, Some(145 | 147 | 41))
    {
        FailureClass::Auth
    } else if has(&[
        "500",
        "502",
        "503",
        "529",
        "internal server error",
        "high demand",
        "overloaded",
        "api_error",
        "server_error",
        "internal",
        "overloaded_error",
    ]) || gemini_exit == Some(244)
    {
        FailureClass::ServerError
    } else if has(&[
        "stream disconnected",
        "connection",
        "network",
        "econnrefused",
        "econnreset",
        "fetch failed",
        "timed out",
        "idle timeout",
    ]) {
        FailureClass::Network
    } else if has(&[
        "config",
        "configuration",
        "codex_home",
        "not found",
        "unknown variant",
        "invalid value",
        "untrusted",
    ]) || gemini_exit == Some(55)
    {
        FailureClass::Config
    } else {
        FailureClass::Crashed
    }
}

/// Where the CLI `name` is: the configured path, else on PATH, else in baton's own
/// cache (where `baton demo` installs the pinned version).
pub fn find_executable(name: &str, configured: Option<&Path>) -> Result<PathBuf, AgentError> {
    let package = match name {
        "codex" => format!("{CODEX_PACKAGE}@{CODEX_VERSION}"),
        "claude" => format!("{}@{}", claude::CLAUDE_PACKAGE, claude::CLAUDE_VERSION),
        "gemini" => format!("{}@{}", gemini::GEMINI_PACKAGE, gemini::GEMINI_VERSION),
        other => other.to_string(),
    };
    if let Some(p) = configured {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(AgentError::NotInstalled {
                name: name.into(),
                package,
                where_: format!(" at the configured {}", p.display()),
            })
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(std::iter::once(
            cache_dir().join("node_modules").join(".bin").join(name),
        ))
        .find(|p| p.is_file())
        .ok_or(AgentError::NotInstalled {
            name: name.into(),
            package,
            where_: " on PATH".into(),
        })
}

/// The version of the CLI `name` that baton is tested with.
pub fn tested_version(name: &str) -> Option<&'static str> {
    match name {
        "codex" => Some(CODEX_VERSION),
        "claude" => Some(claude::CLAUDE_VERSION),
        "gemini" => Some(gemini::GEMINI_VERSION),
        _ => None,
    }
}

/// baton's own cache of agent CLIs: `$XDG_CACHE_HOME/baton/agents` (`~/.cache/...`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("baton")
        .join("agents")
}

/// The settings used to build `cfg`'s command line, for `doctor` and messages.
pub fn describe(cfg: &AgentConfig) -> String {
    let mut parts = vec![];
    if let Some(m) = &cfg.model {
        parts.push(format!("model {m}"));
    }
    if let Some(p) = &cfg.profile {
        parts.push(format!("profile {p}"));
    }
    if !cfg.config.is_empty() {
        parts.push(format!("{} overrides", cfg.config.len()));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(error: Option<&str>, tail: &[&str]) -> AgentReport {
        let mut r = report_from(
            "claude".into(),
            &process::Finished {
                ended: process::Ended::Exited(1),
                stopped: None,
                duration: Duration::ZERO,
                tail: tail.iter().map(|t| t.to_string()).collect(),
                lingering: false,
            },
        );
        r.error = error.map(str::to_string);
        r
    }

    #[test]
    fn an_agent_stopped_by_its_token_is_reported_interrupted() {
        for stopped in [
            process::Stopped::Interrupted,
            process::Stopped::OtherCandidateWon,
            process::Stopped::SweepStopping,
        ] {
            let r = report_from(
                "cmd:x".into(),
                &process::Finished {
                    ended: process::Ended::Signalled(libc::SIGTERM),
                    stopped: Some(stopped),
                    duration: Duration::ZERO,
                    tail: vec![],
                    lingering: false,
                },
            );
            assert_eq!(r.status, AgentStatus::Interrupted, "{stopped:?}");
            assert_eq!(classify(&r), FailureClass::Interrupted);
        }
    }

    #[test]
    fn the_cmd_backend_hands_its_token_to_the_agent_process() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = AgentContext {
            run_id: "r".into(),
            worktree: dir.path().to_path_buf(),
            handoff: dir.path().join("handoff.md"),
            prompt: dir.path().join("prompt.md"),
            resume: None,
            timeout: Some(Duration::from_secs(20)),
            idle_timeout: None,
            kill_grace: Duration::from_millis(300),
            log: dir.path().join("agent.log"),
            cancel: process::Cancel::detached(),
        };
        ctx.cancel.cancel(process::CancelReason::OtherCandidateWon);
        let backend = cmd::CmdBackend::new("sleep 30".into());
        let report = backend.run(&ctx, &mut |_| {}).unwrap();
        assert_eq!(report.status, AgentStatus::Interrupted);
        assert!(report.duration_ms < 10_000, "{}", report.duration_ms);
    }

    #[test]
    fn classes_come_from_the_error_not_from_digits_in_ids() {
        let r = failed(
            Some("API error 500: the model had an internal error"),
            &["session c4013f-429a"],
        );
        assert_eq!(classify(&r), FailureClass::ServerError);
        assert_eq!(
            classify(&failed(
                Some("exceeded retry limit, last status: 429 Too Many Requests"),
                &[]
            )),
            FailureClass::RateLimited
        );
        assert_eq!(
            classify(&failed(Some("API error 401: invalid x-api-key"), &[])),
            FailureClass::Auth
        );
        assert_eq!(
            classify(&failed(None, &["uuid 4013a429-500b"])),
            FailureClass::Crashed
        );
        assert!(contains_word("status: 429.", "429") && !contains_word("a4293f", "429"));
    }
}

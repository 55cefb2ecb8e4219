//! The agent stage: one backend trait, one implementation per kind of agent, all
//! producing the same event stream and the same [`AgentReport`]. The backends run
//! their children through `process` (process group, timeouts, kill); what the agent
//! claims is information only — the verdict comes later from the worktree's real diff.

mod cmd;

use std::path::PathBuf;
use std::time::Duration;

use crate::process::{self, Stream};
use crate::report::{AgentReport, AgentStatus};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("unknown agent `{0}`; use cmd:<shell command> (for example --agent 'cmd:./fix.sh')")]
    Unknown(String),
    #[error(
        "the `{0}` agent is not available in this version of baton yet; use --agent cmd:<shell command>"
    )]
    NotAvailable(String),
    #[error("the agent `cmd:` has no command; write it as cmd:<shell command>")]
    EmptyCommand,
    #[error("could not run the agent")]
    Process(#[from] process::ProcessError),
}

/// Which agent a run uses, as written on the command line or in a handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSpec {
    Cmd(String),
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
            "codex" | "claude" | "gemini" | "auto" => Err(AgentError::NotAvailable(text.into())),
            _ => Err(AgentError::Unknown(text.into())),
        }
    }

    pub fn label(&self) -> String {
        match self {
            AgentSpec::Cmd(c) => format!("cmd:{c}"),
        }
    }

    pub fn backend(&self) -> Box<dyn Backend> {
        match self {
            AgentSpec::Cmd(c) => Box::new(cmd::CmdBackend::new(c.clone())),
        }
    }
}

/// What a backend gets to work with.
#[derive(Debug, Clone)]
pub struct AgentContext {
    pub run_id: String,
    pub worktree: PathBuf,
    pub handoff: PathBuf,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub log: PathBuf,
}

/// One event of the agent's stream, whatever the backend.
#[derive(Debug, Clone)]
pub enum AgentEvent<'a> {
    Output { stream: Stream, line: &'a str },
}

pub trait Backend {
    fn run(
        &self,
        ctx: &AgentContext,
        on_event: &mut dyn FnMut(AgentEvent<'_>),
    ) -> Result<AgentReport, AgentError>;
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
        Some(process::Stopped::Interrupted) => AgentStatus::Interrupted,
        None if done.success() => AgentStatus::Succeeded,
        None => AgentStatus::Failed,
    };
    AgentReport {
        agent,
        status,
        exit_code,
        signal,
        duration_ms: done.duration.as_millis() as u64,
        left_background_process: done.lingering,
        tail: done.tail.clone(),
    }
}

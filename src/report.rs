//! The run report: everything a run did and decided, as plain data. It is the journal's
//! state file while the run is live and `report.json` when it ends, and what `--json`
//! prints. Verdicts are data here, not errors (see STYLE: a failing check is a result).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checklist::CheckResult;
use crate::scope::ScopeReport;

/// The on-disk format of state and report files; bump on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Created,
    Worktree,
    Agent,
    Checks,
    Scope,
    Outcome,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pending,
    Passed,
    ChecksFailed,
    ScopeViolated,
    AgentFailed,
    NoChange,
}

impl Verdict {
    pub fn passed(self) -> bool {
        self == Verdict::Passed
    }

    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Pending => "pending",
            Verdict::Passed => "passed",
            Verdict::ChecksFailed => "checks failed",
            Verdict::ScopeViolated => "scope violated",
            Verdict::AgentFailed => "agent failed",
            Verdict::NoChange => "no change",
        }
    }
}

/// What happened to the agent's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Succeeded,
    Failed,
    TimedOut,
    Idle,
    Interrupted,
}

/// How an agent attempt ended, decided from its exit, its event stream and its stderr
/// together. Transient classes are retried; every class but `ok` can hand the task to
/// the next agent of a fallback chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    #[default]
    Ok,
    RateLimited,
    ServerError,
    Network,
    Auth,
    Config,
    Timeout,
    Idle,
    Crashed,
    NoChange,
    Interrupted,
}

impl FailureClass {
    /// Worth trying again on the same backend.
    pub fn transient(self) -> bool {
        matches!(
            self,
            FailureClass::RateLimited | FailureClass::ServerError | FailureClass::Network
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Ok => "ok",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ServerError => "server_error",
            FailureClass::Network => "network",
            FailureClass::Auth => "auth",
            FailureClass::Config => "config",
            FailureClass::Timeout => "timeout",
            FailureClass::Idle => "idle",
            FailureClass::Crashed => "crashed",
            FailureClass::NoChange => "no_change",
            FailureClass::Interrupted => "interrupted",
        }
    }
}

/// One agent attempt of a run (a run has several with retries or a fallback chain).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    /// 0 for the attempt itself, then each repair round of it.
    #[serde(default)]
    pub round: u32,
    pub agent: String,
    pub class: FailureClass,
    pub verdict: Verdict,
    pub duration_ms: u64,
    pub branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where a set-aside attempt's change was kept (a stash), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// What this round's judge found, kept beside every other round's (a later round
    /// replaces the run's own `tree`, `checks` and `scope`, never this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<AttemptEvidence>,
    /// The pipeline stage this round belongs to (`baton pipeline`); the landed
    /// commit's `Baton-Stage` trailers are read from these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<StageTag>,
}

/// A pipeline stage, as a round of the run names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTag {
    /// 1 for the first stage.
    pub number: u32,
    /// Its template (`implement`, `review`, …) or handoff file's name.
    pub name: String,
}

/// One round's evidence, side by side with the others' in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptEvidence {
    /// The judged tree of the round's worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    pub checks: Vec<crate::checklist::CheckResult>,
    /// Paths changed, and how many of them broke a rule.
    pub files: usize,
    pub violations: usize,
    /// The scope's verdict in words (`1 file changed (+1 -1), all in scope`).
    pub scope: String,
    /// The round's change as a patch, in the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentReport {
    pub agent: String,
    pub status: AgentStatus,
    #[serde(default)]
    pub class: FailureClass,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// It left a background process behind, which baton killed with its group.
    pub left_background_process: bool,
    pub tail: Vec<String>,
    /// The agent's session (codex's thread), for `baton resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The model's or the agent's own error, when it failed on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the agent said last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the model calls cost, as the agent reported it (Claude Code does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// Tokens the model used, as the agent reported them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl AgentReport {
    pub fn describe(&self) -> String {
        let secs = self.duration_ms as f64 / 1000.0;
        match self.status {
            AgentStatus::Succeeded => format!("finished in {secs:.1}s"),
            AgentStatus::Failed if self.error.is_some() => format!(
                "failed after {secs:.1}s: {}",
                self.error.as_deref().unwrap_or_default()
            ),
            AgentStatus::Failed => match (self.exit_code, self.signal) {
                (Some(c), _) => format!("failed with exit status {c} after {secs:.1}s"),
                (_, Some(s)) => format!("killed by signal {s} after {secs:.1}s"),
                _ => format!("failed after {secs:.1}s"),
            },
            AgentStatus::TimedOut => format!("stopped by --timeout after {secs:.1}s"),
            AgentStatus::Idle => format!("stopped by --idle-timeout after {secs:.1}s"),
            AgentStatus::Interrupted => "interrupted".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeAction {
    /// Committed onto the user's branch.
    Merged,
    /// Left as uncommitted changes in the user's tree (`--apply`, `--include-dirty`).
    Applied,
    Reverted,
    Stashed,
    Kept,
    /// Nothing to keep: the run changed nothing.
    Discarded,
    /// Landing was refused because it would conflict; the run is kept.
    Conflict,
}

impl OutcomeAction {
    /// The run's worktree and branch are still there, waiting for a decision.
    pub fn is_pending(self) -> bool {
        matches!(self, OutcomeAction::Kept | OutcomeAction::Conflict)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutcomeReport {
    pub action: OutcomeAction,
    /// One line for a person: what happened and, if something is left to do, what.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stash: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// The landing policies a user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    Merge,
    Revert,
    Stash,
    Keep,
}

impl Policy {
    pub fn parse(text: &str) -> Option<Policy> {
        match text {
            "merge" => Some(Policy::Merge),
            "revert" => Some(Policy::Revert),
            "stash" => Some(Policy::Stash),
            "keep" => Some(Policy::Keep),
            _ => None,
        }
    }
}

/// What the run was judged by, kept so a later `baton merge` can verify again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSettings {
    pub scope: Vec<String>,
    pub deny: Vec<String>,
    pub checks: Vec<String>,
    #[serde(default)]
    pub limits: crate::scope::Limits,
    pub check_timeout_ms: u64,
    pub kill_grace_ms: u64,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub format_version: u32,
    pub run_id: String,
    /// The run's place in this repository's order of creation (1, 2, 3, …): what
    /// `last` and `baton status` order by, since two runs can share a second of their
    /// ids. 0 for runs journaled before it was recorded.
    #[serde(default)]
    pub seq: u64,
    pub task: String,
    pub agent: String,
    pub stage: Stage,
    pub pid: u32,
    /// When that process started (clock ticks since boot), so a reused pid is not
    /// taken for the run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub updated_at: u64,
    pub repo: PathBuf,
    /// The commit the worktree started from (with `--include-dirty`, a snapshot commit
    /// of the user's uncommitted changes on top of HEAD).
    pub base: String,
    /// HEAD when the run started, and its branch.
    pub head: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_branch: Option<String>,
    pub include_dirty: bool,
    pub branch: String,
    pub worktree: PathBuf,
    pub journal: PathBuf,
    pub on_pass: Policy,
    pub on_fail: Policy,
    pub apply: bool,
    pub settings: RunSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_result: Option<AgentReport>,
    /// The tree of the change as judged (everything in the worktree, as a git tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeReport>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeReport>,
    pub interrupted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Every agent attempt, in order (one unless retried or fallen back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// How many times the agent's session was resumed (`baton resume`).
    #[serde(default)]
    pub resumes: u32,
    /// Why baton itself stopped, when it could not finish the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The sweep this run belongs to (`baton sweep`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
}

impl RunReport {
    pub fn checks_summary(&self) -> String {
        if self.checks.is_empty() {
            return "none".into();
        }
        let passed = self.checks.iter().filter(|c| c.status.passed()).count();
        format!("{passed}/{} passed", self.checks.len())
    }

    pub fn scope_summary(&self) -> String {
        match &self.scope {
            None => "-".into(),
            Some(s) if s.clean() => format!("ok ({})", count(s.paths.len(), "file")),
            Some(s) => count(s.violations, "violation"),
        }
    }
}

/// `n` and its noun, singular or plural as the number wants (`1 file`, `2 files`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

//! The one settings type: every field that a flag, a handoff's front matter and the
//! config's `[defaults]` can set, declared once and all optional. Layers are combined
//! by one [`Settings::overlay`] (the upper layer wins field by field; `deny` adds up),
//! and `run::plan` resolves the result once into a run's plan.
//!
//! Zero means one thing in every limit, from every layer: no limit. `timeout`,
//! `idle_timeout`, `check_timeout`, `max_file_size`, `max_files` and `max_lines` set
//! to 0 lift that limit (and win over a lower layer's, as any value does), where a
//! zero taken literally would stop every agent at once or refuse every change.
//! Counts of things to do (`retries`, `repair`) are counts: 0 is none.
//!
//! Values a user types that have a fixed set of meanings (landing policies, fallback
//! triggers) are parsed into enums when the file is read, so a typo is an error that
//! names the file, the line and the allowed values — never a silently ignored setting.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration;
use crate::report::{FailureClass, Policy, Verdict};

/// Everything a run can be told, from any layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What the agent is to do (a handoff's, or a sweep task's; never `[defaults]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// codex, claude, gemini, cmd:<shell command>, or auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Agents tried next when the first fails, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<String>>,
    /// Globs the change may touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// Globs the change must never touch: every layer's add up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
    /// The checklist, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
    /// The agent's wall-clock limit (default 20m; 0 is no limit).
    #[serde(
        default,
        with = "duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// How long the agent may stay quiet (default: no limit; 0 is no limit).
    #[serde(
        default,
        with = "duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Each check's wall-clock limit (default 10m; 0 is no limit).
    #[serde(
        default,
        with = "duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub check_timeout: Option<Duration>,
    /// How long a stopped child gets between SIGTERM and SIGKILL.
    #[serde(
        default,
        with = "duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub kill_grace: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pass: Option<Policy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<Policy>,
    /// What hands a run to the next agent of its fallback chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_on: Option<Vec<Trigger>>,
    /// Retries of a transient failure on the same agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Repair rounds: the agent's session resumed with what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<u32>,
    /// baton's default denials (git files, CI configuration, `.env*`, lock files) apply
    /// unless this is false; a run's scope that names such a path still allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_deny: Option<bool>,
    /// Largest file the change may write: bytes, or `512k`, `10M` (default 10M; 0 is no limit).
    #[serde(
        default,
        with = "crate::scope::size_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_file_size: Option<u64>,
    /// Most files the change may touch (default: no limit; 0 is no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
    /// Most lines the change may add and remove, together (no default; 0 is no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u64>,
}

impl Settings {
    /// `over` laid on `self`: each field of `over` that is set wins; denials add up.
    pub fn overlay(self, over: Settings) -> Settings {
        let deny = match (self.deny, over.deny) {
            (Some(mut low), Some(high)) => {
                for g in high {
                    if !low.contains(&g) {
                        low.push(g);
                    }
                }
                Some(low)
            }
            (low, high) => high.or(low),
        };
        Settings {
            task: over.task.or(self.task),
            template: over.template.or(self.template),
            agent: over.agent.or(self.agent),
            fallback: over.fallback.or(self.fallback),
            scope: over.scope.or(self.scope),
            deny,
            checks: over.checks.or(self.checks),
            timeout: over.timeout.or(self.timeout),
            idle_timeout: over.idle_timeout.or(self.idle_timeout),
            check_timeout: over.check_timeout.or(self.check_timeout),
            kill_grace: over.kill_grace.or(self.kill_grace),
            on_pass: over.on_pass.or(self.on_pass),
            on_fail: over.on_fail.or(self.on_fail),
            fallback_on: over.fallback_on.or(self.fallback_on),
            retries: over.retries.or(self.retries),
            repair: over.repair.or(self.repair),
            default_deny: over.default_deny.or(self.default_deny),
            max_file_size: over.max_file_size.or(self.max_file_size),
            max_files: over.max_files.or(self.max_files),
            max_lines: over.max_lines.or(self.max_lines),
        }
    }

    /// The task's text ("" when none is set).
    pub fn task_text(&self) -> &str {
        self.task.as_deref().unwrap_or("")
    }

    /// A list field, or nothing.
    pub fn list(field: &Option<Vec<String>>) -> &[String] {
        field.as_deref().unwrap_or(&[])
    }
}

/// What hands a run to the next agent of its fallback chain: a failure class of the
/// agent, or a verdict on its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Class(FailureClass),
    ChecksFailed,
    ScopeViolated,
}

/// Every trigger's name, as written in `fallback_on`.
pub const TRIGGERS: &[(&str, Trigger)] = &[
    ("rate_limited", Trigger::Class(FailureClass::RateLimited)),
    ("server_error", Trigger::Class(FailureClass::ServerError)),
    ("network", Trigger::Class(FailureClass::Network)),
    ("auth", Trigger::Class(FailureClass::Auth)),
    ("config", Trigger::Class(FailureClass::Config)),
    ("timeout", Trigger::Class(FailureClass::Timeout)),
    ("idle", Trigger::Class(FailureClass::Idle)),
    ("crashed", Trigger::Class(FailureClass::Crashed)),
    ("no_change", Trigger::Class(FailureClass::NoChange)),
    ("checks_failed", Trigger::ChecksFailed),
    ("scope_violated", Trigger::ScopeViolated),
];

/// The triggers of a fallback when none are configured: every failure of the agent
/// but auth and config (another agent would not fix those), and a change that failed
/// its checks or left its scope.
pub const DEFAULT_FALLBACK_ON: &[Trigger] = &[
    Trigger::Class(FailureClass::RateLimited),
    Trigger::Class(FailureClass::ServerError),
    Trigger::Class(FailureClass::Network),
    Trigger::Class(FailureClass::Timeout),
    Trigger::Class(FailureClass::Idle),
    Trigger::Class(FailureClass::Crashed),
    Trigger::Class(FailureClass::NoChange),
    Trigger::ChecksFailed,
    Trigger::ScopeViolated,
];

impl Trigger {
    pub fn parse(text: &str) -> Option<Trigger> {
        TRIGGERS.iter().find(|(n, _)| *n == text).map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        TRIGGERS
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether an attempt that ended with `class` and `verdict` pulls this trigger.
    pub fn fires(self, class: FailureClass, verdict: Verdict) -> bool {
        match self {
            Trigger::Class(c) => c == class,
            Trigger::ChecksFailed => verdict == Verdict::ChecksFailed,
            Trigger::ScopeViolated => verdict == Verdict::ScopeViolated,
        }
    }
}

impl Serialize for Trigger {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Trigger, D::Error> {
        let text = String::deserialize(d)?;
        Trigger::parse(&text).ok_or_else(|| {
            let names: Vec<&str> = TRIGGERS.iter().map(|(n, _)| *n).collect();
            serde::de::Error::custom(format!(
                "unknown fallback_on trigger `{text}`; use one of: {}",
                names.join(", ")
            ))
        })
    }
}

/// Where in `text` a TOML error is, as ` at line N: `the line``, for one-line errors.
pub fn toml_place(text: &str, err: &toml::de::Error) -> String {
    err.span()
        .map(|span| {
            let start = text[..span.start.min(text.len())]
                .rfind('\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            let end = text[span.start.min(text.len())..]
                .find('\n')
                .map(|i| i + span.start)
                .unwrap_or(text.len());
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" at line {line}: `{}`", text[start..end].trim())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_layer_wins_and_denials_add_up() {
        let low = Settings {
            agent: Some("codex".into()),
            checks: Some(vec!["make".into()]),
            deny: Some(vec!["a".into()]),
            retries: Some(2),
            ..Settings::default()
        };
        let high = Settings {
            agent: Some("claude".into()),
            deny: Some(vec!["b".into(), "a".into()]),
            ..Settings::default()
        };
        let s = low.overlay(high);
        assert_eq!(s.agent.as_deref(), Some("claude"));
        assert_eq!(s.checks, Some(vec!["make".to_string()]));
        assert_eq!(s.deny, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(s.retries, Some(2));
    }

    #[test]
    fn an_unknown_trigger_or_policy_names_the_allowed_values() {
        let err = toml::from_str::<Settings>("fallback_on = [\"timeout\", \"timout\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timout") && err.contains("rate_limited"),
            "{err}"
        );
        let err = toml::from_str::<Settings>("on_pass = \"mrge\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mrge") && err.contains("keep"), "{err}");
        let s: Settings = toml::from_str("fallback_on = [\"checks_failed\"]").unwrap();
        assert_eq!(s.fallback_on, Some(vec![Trigger::ChecksFailed]));
    }
}

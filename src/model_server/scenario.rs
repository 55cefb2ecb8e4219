//! Scenario files: what the scripted model answers, turn by turn.
//!
//! ```toml
//! description = "fixes add() in calc.py"
//!
//! [[turn]]                  # a fault served before the next real turn
//! fault = "rate_limit"      # rate_limit | server_error | auth | hang | stall | drop
//! times = 2                 # served this many times, then the next turn answers
//!
//! [[turn]]
//! patch = """
//! *** Begin Patch
//! *** Update File: calc.py
//! @@
//! -    return a - b
//! +    return a + b
//! *** End Patch
//! """
//!
//! [[turn]]
//! shell = "python3 -m pytest -q"
//!
//! [[turn]]
//! message = "Fixed add()."
//! repeat = 1                # the message as this many output items in one response
//! ```
//!
//! A real turn is exactly one of `patch`, `shell` or `message`. The turn answered is
//! the number of model turns already in the conversation the client sends, so a
//! client's retry of a request gets the same turn again. Faults without `times` are
//! served for ever at their place.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("could not read the scenario {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the scenario {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 429 with `Retry-After`.
    RateLimit,
    /// HTTP 500.
    ServerError,
    /// HTTP 401: the key is refused.
    Auth,
    /// The request is read and never answered.
    Hang,
    /// The stream starts, then goes quiet for ever.
    Stall,
    /// The stream starts, then the connection is dropped.
    Drop,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimit => "rate_limit",
            Fault::ServerError => "server_error",
            Fault::Auth => "auth",
            Fault::Hang => "hang",
            Fault::Stall => "stall",
            Fault::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    patch: Option<String>,
    shell: Option<String>,
    message: Option<String>,
    fault: Option<Fault>,
    times: Option<u32>,
    repeat: Option<u32>,
    only: Option<Api>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    description: String,
    #[serde(default)]
    turn: Vec<RawTurn>,
}

/// One model answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An `apply_patch` call with this patch.
    Patch(String),
    /// A shell command, through the client's shell tool.
    Shell(String),
    /// A final message, `repeat` times in one response.
    Message { text: String, repeat: u32 },
    /// Read these files first (agents whose edit tools require it; not written in
    /// scenarios, but made from a patch for them).
    Read(Vec<String>),
}

/// A fault attached to a turn position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFault {
    pub fault: Fault,
    /// `None`: served for ever.
    pub times: Option<u32>,
}

/// One entry of a scenario, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Fault(PendingFault),
    Answer(Answer),
}

/// A parsed scenario: its entries, each for every client or for one API only.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub description: String,
    pub entries: Vec<(Option<Api>, Entry)>,
}

/// The turns one client sees: for each position the faults served first, then the
/// answer; and the faults after the last answer.
pub type Steps = (Vec<(Vec<PendingFault>, Answer)>, Vec<PendingFault>);

/// Which wire protocol a request speaks (and, in a scenario, `only = "openai"` for a
/// turn that only that client's conversation has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Scenario {
    /// The turns as one client sees them: for Claude Code, whose Edit tool refuses a
    /// file it has not read, a patch is preceded by a turn reading the files it updates.
    /// The turns as one client sees them. Turns marked `only` for another API are left
    /// out. For Claude Code, whose Edit tool refuses a file it has not read, a patch is
    /// preceded by a turn reading the files it updates. Gemini CLI offers no shell tool
    /// unless it runs in yolo mode (`shell` false): shell turns are then left out.
    pub fn steps(&self, api: Api, shell: bool) -> Steps {
        let mut steps = vec![];
        let mut faults = vec![];
        for (only, entry) in &self.entries {
            if only.is_some_and(|o| o != api) {
                continue;
            }
            let answer = match entry {
                Entry::Fault(f) => {
                    faults.push(f.clone());
                    continue;
                }
                Entry::Answer(a) => a,
            };
            match (api, answer) {
                (Api::Gemini, Answer::Shell(_)) if !shell => {}
                (Api::Anthropic, Answer::Patch(p)) => {
                    let mut files: Vec<String> = super::patch::parse(p)
                        .into_iter()
                        .filter(|op| matches!(op, super::patch::EditOp::Update { .. }))
                        .map(|op| op.path().to_string())
                        .collect();
                    files.dedup();
                    if files.is_empty() {
                        steps.push((std::mem::take(&mut faults), answer.clone()));
                    } else {
                        steps.push((std::mem::take(&mut faults), Answer::Read(files)));
                        steps.push((vec![], answer.clone()));
                    }
                }
                _ => steps.push((std::mem::take(&mut faults), answer.clone())),
            }
        }
        (steps, faults)
    }

    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text).map_err(|message| ScenarioError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Scenario, String> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut scenario = Scenario {
            description: raw.description,
            ..Scenario::default()
        };
        for (i, t) in raw.turn.into_iter().enumerate() {
            let n = i + 1;
            if let Some(fault) = t.fault {
                if t.patch.is_some() || t.shell.is_some() || t.message.is_some() {
                    return Err(format!(
                        "turn {n}: a fault turn has no patch, shell or message"
                    ));
                }
                scenario.entries.push((
                    t.only,
                    Entry::Fault(PendingFault {
                        fault,
                        times: t.times,
                    }),
                ));
                continue;
            }
            let answer = match (t.patch, t.shell, t.message) {
                (Some(p), None, None) => Answer::Patch(p),
                (None, Some(s), None) => Answer::Shell(s),
                (None, None, Some(m)) => Answer::Message {
                    text: m,
                    repeat: t.repeat.unwrap_or(1).max(1),
                },
                _ => {
                    return Err(format!(
                        "turn {n}: give exactly one of patch, shell, message or fault"
                    ));
                }
            };
            scenario.entries.push((t.only, Entry::Answer(answer)));
        }
        Ok(scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_attach_to_the_next_turn() {
        let s = Scenario::parse(
            r#"
            [[turn]]
            fault = "rate_limit"
            times = 2
            [[turn]]
            shell = "ls"
            [[turn]]
            message = "done"
            [[turn]]
            fault = "hang"
            "#,
        )
        .unwrap();
        let (turns, trailing) = s.steps(Api::OpenAi, true);
        assert_eq!(turns.len(), 2);
        assert_eq!(
            turns[0].0,
            [PendingFault {
                fault: Fault::RateLimit,
                times: Some(2)
            }]
        );
        assert_eq!(
            turns[1].1,
            Answer::Message {
                text: "done".into(),
                repeat: 1
            }
        );
        assert_eq!(trailing[0].fault, Fault::Hang);
        // A turn for one client only.
        let only = Scenario::parse(
            "[[turn]]\nfault = \"rate_limit\"\nonly = \"openai\"\n[[turn]]\nmessage = \"hi\"\n",
        )
        .unwrap();
        assert!(only.steps(Api::Anthropic, true).0[0].0.is_empty());
        assert_eq!(only.steps(Api::OpenAi, true).0[0].0.len(), 1);
        assert!(Scenario::parse("[[turn]]\nshell='a'\nmessage='b'\n").is_err());
    }
}

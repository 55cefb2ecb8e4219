//! Scenario files: what the scripted model answers, turn by turn.
//!
//! ```toml
//! description = "fixes add() in calc.py"
//!
//! [[turn]]                  # a fault served before the next real turn
//! fault = "rate_limit"      # rate_limit | server_error | hang | stall | drop
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

/// A parsed scenario: for each turn position, the faults served first, then the answer.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub description: String,
    pub turns: Vec<(Vec<PendingFault>, Answer)>,
    /// Faults after the last answer: served when the conversation runs past the script.
    pub trailing_faults: Vec<PendingFault>,
}

/// Which wire protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Scenario {
    /// The turns as one client sees them: for Claude Code, whose Edit tool refuses a
    /// file it has not read, a patch is preceded by a turn reading the files it updates.
    /// Gemini CLI offers no shell tool unless it runs in yolo mode (`shell` false):
    /// shell turns are then left out.
    pub fn steps(&self, api: Api, shell: bool) -> Vec<(Vec<PendingFault>, Answer)> {
        let mut steps = vec![];
        for (faults, answer) in &self.turns {
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
                        steps.push((faults.clone(), answer.clone()));
                    } else {
                        steps.push((faults.clone(), Answer::Read(files)));
                        steps.push((vec![], answer.clone()));
                    }
                }
                _ => steps.push((faults.clone(), answer.clone())),
            }
        }
        steps
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
        let mut faults = vec![];
        for (i, t) in raw.turn.into_iter().enumerate() {
            let n = i + 1;
            if let Some(fault) = t.fault {
                if t.patch.is_some() || t.shell.is_some() || t.message.is_some() {
                    return Err(format!(
                        "turn {n}: a fault turn has no patch, shell or message"
                    ));
                }
                faults.push(PendingFault {
                    fault,
                    times: t.times,
                });
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
            scenario.turns.push((std::mem::take(&mut faults), answer));
        }
        scenario.trailing_faults = faults;
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
        assert_eq!(s.turns.len(), 2);
        assert_eq!(
            s.turns[0].0,
            [PendingFault {
                fault: Fault::RateLimit,
                times: Some(2)
            }]
        );
        assert_eq!(
            s.turns[1].1,
            Answer::Message {
                text: "done".into(),
                repeat: 1
            }
        );
        assert_eq!(s.trailing_faults[0].fault, Fault::Hang);
        assert!(Scenario::parse("[[turn]]\nshell='a'\nmessage='b'\n").is_err());
    }
}

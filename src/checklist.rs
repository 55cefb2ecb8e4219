//! The checklist stage: the verification commands (lint, build, test) run in the
//! worktree, in order, each with its own timeout and its own log in the journal. A
//! failing check is a result, not an error; after the first failure the rest are
//! skipped (a broken build makes the tests meaningless, and time matters). Once the
//! checklist's cancel token is cancelled, the running check is stopped and the rest
//! are not started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::{self, Ended, Stopped};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    Failed,
    TimedOut,
    Skipped,
    Interrupted,
}

impl CheckStatus {
    pub fn passed(self) -> bool {
        self == CheckStatus::Passed
    }

    /// The status as people read it (and as the report spells it).
    pub fn name(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::TimedOut => "timed out",
            CheckStatus::Skipped => "skipped",
            CheckStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub command: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// The last lines of its output.
    pub tail: Vec<String>,
}

pub struct Checklist<'a> {
    pub commands: &'a [String],
    pub worktree: &'a Path,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub env: Vec<(String, String)>,
    /// Stops the checks, for its reason, once cancelled; [`process::Cancel::default`]
    /// hears Ctrl-C only.
    pub cancel: process::Cancel,
}

/// What a running checklist tells its caller, as it happens.
pub enum Progress<'a> {
    Started {
        index: usize,
        command: &'a str,
    },
    /// A line of the check's output (all of it is in the check's log too).
    Line {
        index: usize,
        line: &'a str,
    },
    Done {
        index: usize,
        result: &'a CheckResult,
    },
}

impl Checklist<'_> {
    /// Runs the checks in order. `log_for(i)` names each check's log file; `on` hears
    /// each check start, each line of its output and each result, for progress and
    /// the journal.
    pub fn run(
        &self,
        log_for: &dyn Fn(usize) -> PathBuf,
        on: &mut dyn FnMut(Progress),
    ) -> Result<Vec<CheckResult>, process::ProcessError> {
        process::runtime::block_on(self.run_async(log_for, on)).map_err(|source| {
            process::ProcessError::Wait {
                command: self.commands.join(" && "),
                source,
            }
        })?
    }

    /// [`Checklist::run`] as a task of the runtime it is awaited on.
    pub async fn run_async(
        &self,
        log_for: &dyn Fn(usize) -> PathBuf,
        on: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Vec<CheckResult>, process::ProcessError> {
        let mut results = Vec::with_capacity(self.commands.len());
        let mut failed = false;
        for (i, command) in self.commands.iter().enumerate() {
            let result = if failed || self.cancel.is_cancelled() {
                CheckResult {
                    command: command.clone(),
                    status: if failed {
                        CheckStatus::Skipped
                    } else {
                        CheckStatus::Interrupted
                    },
                    exit_code: None,
                    duration_ms: 0,
                    log: None,
                    tail: vec![],
                }
            } else {
                let log = log_for(i);
                let spec = process::Spec {
                    command: command.clone(),
                    cwd: self.worktree.to_path_buf(),
                    env: self.env.clone(),
                    timeout: Some(self.timeout),
                    idle_timeout: None,
                    grace: self.kill_grace,
                    log: Some(log.clone()),
                    cancel: self.cancel.clone(),
                    ..process::Spec::default()
                };
                on(Progress::Started { index: i, command });
                let done =
                    process::supervise(&spec, &mut |_, line| on(Progress::Line { index: i, line }))
                        .await?;
                let status = match (done.stopped, done.ended) {
                    (
                        Some(
                            Stopped::Interrupted
                            | Stopped::OtherCandidateWon
                            | Stopped::SweepStopping,
                        ),
                        _,
                    ) => CheckStatus::Interrupted,
                    (Some(Stopped::Timeout | Stopped::Idle | Stopped::AfterResult), _) => {
                        CheckStatus::TimedOut
                    }
                    (None, Ended::Exited(0)) => CheckStatus::Passed,
                    (None, _) => CheckStatus::Failed,
                };
                CheckResult {
                    command: command.clone(),
                    status,
                    exit_code: match done.ended {
                        Ended::Exited(c) => Some(c),
                        Ended::Signalled(_) => None,
                    },
                    duration_ms: done.duration.as_millis() as u64,
                    log: Some(log),
                    tail: done.tail.iter().rev().take(20).rev().cloned().collect(),
                }
            };
            failed |= !result.status.passed();
            on(Progress::Done {
                index: i,
                result: &result,
            });
            results.push(result);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Cancel, CancelReason};

    fn checklist<'a>(commands: &'a [String], dir: &'a Path, cancel: Cancel) -> Checklist<'a> {
        Checklist {
            commands,
            worktree: dir,
            timeout: Duration::from_secs(20),
            kill_grace: Duration::from_millis(300),
            env: vec![],
            cancel,
        }
    }

    #[test]
    fn a_cancelled_checklist_stops_the_running_check_and_starts_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let commands = ["sleep 30".to_string(), "touch started".to_string()];
        let cancel = Cancel::detached();
        let token = cancel.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            token.cancel(CancelReason::OtherCandidateWon);
        });
        let results = checklist(&commands, dir.path(), cancel)
            .run(&|i| dir.path().join(format!("check-{i}.log")), &mut |_| {})
            .unwrap();
        canceller.join().unwrap();
        let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
        // As after any check that did not pass, the rest are skipped.
        assert_eq!(statuses, [CheckStatus::Interrupted, CheckStatus::Skipped]);
        assert!(!dir.path().join("started").exists());
    }

    #[test]
    fn a_check_that_runs_out_of_time_is_timed_out_and_the_rest_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let commands = ["sleep 30".to_string(), "true".to_string()];
        let mut list = checklist(&commands, dir.path(), Cancel::detached());
        list.timeout = Duration::from_millis(200);
        let results = list
            .run(&|i| dir.path().join(format!("check-{i}.log")), &mut |_| {})
            .unwrap();
        let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [CheckStatus::TimedOut, CheckStatus::Skipped]);
    }
}

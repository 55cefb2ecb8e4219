//! Judge: a worktree against its base → [`Evidence`]. The snapshot (the whole state
//! of the worktree as a git tree: committed, staged, unstaged, untracked), the change
//! against the base, its patch in the journal, the scope's verdict on every path, the
//! checklist, and the verdict that ranks them.
//!
//! The worktree's freshness is an input, never a guess: only a worktree that nobody
//! but git wrote since its checkout may have its stat data trusted (the fast path);
//! a resumed, repaired or reused worktree gets git's own racy-file handling.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::checklist::{CheckResult, CheckStatus, Checklist, Progress};
use crate::error::Result;
use crate::events::{Events, RunEvent};
use crate::git::{Change, ChangeKind, Repo};
use crate::journal::{self, Journal};
use crate::process::runtime;
use crate::report::{Stage, Verdict};
use crate::scope::{JudgedPath, PathVerdict, Scope, ScopeReport};

/// Who has written the worktree since git checked it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Only git, until `since` (the agent's start by the filesystem's clock): files
    /// whose stat data predates it are the checkout's own.
    Fresh { since: SystemTime },
    /// Someone else may have (a resumed or repaired session, a reused worktree, a
    /// user's hand): every file is compared by content where its stat data is racy.
    Used,
}

/// What the judge found.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The judged tree: the whole state of the worktree.
    pub tree: String,
    pub scope: ScopeReport,
    pub checks: Vec<CheckResult>,
    pub verdict: Verdict,
    /// A check was stopped by Ctrl-C or SIGTERM.
    pub interrupted: bool,
}

impl Evidence {
    pub fn has_change(&self) -> bool {
        !self.scope.paths.is_empty()
    }
}

/// Where and by what a worktree is judged.
pub struct Judge<'a> {
    pub repo: &'a Repo,
    pub journal: &'a Journal,
    pub events: &'a Events,
    pub run_id: &'a str,
    pub scope: &'a Scope,
    pub checks: &'a [String],
    pub check_timeout: Duration,
    pub kill_grace: Duration,
    /// Stops the checks (Ctrl-C, or the workflow's reason).
    pub cancel: crate::process::Cancel,
}

/// How the agent ended, as far as judging needs it.
#[derive(Debug, Clone, Copy)]
pub struct AgentEnd {
    /// The agent succeeded: only then do the checks run.
    pub ok: bool,
    /// A Ctrl-C or SIGTERM stopped it: the checks do not run.
    pub interrupted: bool,
}

/// The worktree's whole state as a git tree (the user's index and tree are not
/// touched: a scratch index is used). What every reading of a worktree starts from:
/// a round's judgement, a later landing, and `recover`.
pub fn snapshot(repo: &Repo, worktree: &Path, freshness: Freshness) -> Result<String> {
    Ok(match freshness {
        Freshness::Fresh { since } => repo.snapshot_tree_since(worktree, since)?,
        Freshness::Used => repo.snapshot_tree(worktree)?,
    })
}

impl Judge<'_> {
    /// [`snapshot`] of `worktree`.
    pub fn snapshot(&self, worktree: &Path, freshness: Freshness) -> Result<String> {
        snapshot(self.repo, worktree, freshness)
    }

    /// [`snapshot`] of `worktree`, off the thread that supervises children.
    pub async fn snapshot_async(&self, worktree: &Path, freshness: Freshness) -> Result<String> {
        let (repo, worktree) = (self.repo.clone(), worktree.to_path_buf());
        runtime::blocking(move || snapshot(&repo, &worktree, freshness)).await
    }

    /// [`Judge::judge_async`] for synchronous callers.
    pub fn judge(
        &self,
        worktree: &Path,
        base: &str,
        tree: String,
        agent: AgentEnd,
        outside: &[String],
        enter: &mut dyn FnMut(Stage) -> Result<()>,
    ) -> Result<Evidence> {
        runtime::block_on(self.judge_async(worktree, base, tree, agent, outside, enter)).map_err(
            |source| crate::error::Error::Io {
                context: "could not wait for the checks".into(),
                source,
            },
        )?
    }

    /// Judges `tree` (the state of `worktree`) against `base`: scope, then — when the
    /// agent succeeded and changed something — the checks in the worktree.
    /// `outside` names writes the tree cannot show (the `.git` link, the git
    /// directory's control files), each a violation. `enter` records each stage
    /// change before the stage acts.
    pub async fn judge_async(
        &self,
        worktree: &Path,
        base: &str,
        tree: String,
        agent: AgentEnd,
        outside: &[String],
        enter: &mut dyn FnMut(Stage) -> Result<()>,
    ) -> Result<Evidence> {
        let base_tree = self.repo.tree_of(base)?;
        // The change, its patch and the sizes of what it writes, read together (off
        // the thread that supervises children: on a large tree this takes a while).
        let diff = if tree == base_tree {
            crate::git::TreeDiff::default()
        } else {
            let (repo, t, bt) = (self.repo.clone(), tree.clone(), base_tree.clone());
            runtime::blocking(move || repo.diff_for_judging(&bt, &t)).await?
        };
        self.journal.write_file(journal::PATCH_FILE, &diff.patch)?;
        let mut scope_report = judge_sized(self.repo, self.scope, &diff.changes, &diff.sizes)?;
        for path in outside {
            scope_report.paths.push(JudgedPath {
                path: path.clone(),
                old_path: None,
                change: ChangeKind::Modified,
                mode: None,
                verdict: PathVerdict::GitInternal,
                added: None,
                removed: None,
                size: None,
                binary: false,
            });
            scope_report.violations += 1;
        }
        let has_change = !scope_report.paths.is_empty();

        let mut checks = vec![];
        let mut interrupted = false;
        if agent.ok && has_change && !agent.interrupted {
            enter(Stage::Checks)?;
            checks = self.run_checks_async(worktree).await?;
            interrupted = checks.iter().any(|c| c.status == CheckStatus::Interrupted);
        }

        enter(Stage::Scope)?;
        self.events.emit(RunEvent::ScopeJudged {
            scope: scope_report.clone(),
        })?;
        let verdict = verdict(agent.ok, has_change, scope_report.clean(), &checks);
        self.events.emit(RunEvent::Verdict { verdict })?;
        Ok(Evidence {
            tree,
            scope: scope_report,
            checks,
            verdict,
            interrupted,
        })
    }

    /// [`Judge::run_checks_async`] for synchronous callers.
    pub fn run_checks(&self, worktree: &Path) -> Result<Vec<CheckResult>> {
        runtime::block_on(self.run_checks_async(worktree)).map_err(|source| {
            crate::error::Error::Io {
                context: "could not wait for the checks".into(),
                source,
            }
        })?
    }

    /// The checklist in `worktree`, each result an event as it comes.
    pub async fn run_checks_async(&self, worktree: &Path) -> Result<Vec<CheckResult>> {
        let checklist = Checklist {
            commands: self.checks,
            worktree,
            timeout: self.check_timeout,
            kill_grace: self.kill_grace,
            env: vec![("BATON_RUN_ID".into(), self.run_id.to_string())],
            cancel: self.cancel.clone(),
        };
        let mut failure = None;
        let log_for = |i| self.journal.check_log(i);
        let results = checklist
            .run_async(&log_for, &mut |progress| {
                let emitted = match progress {
                    Progress::Started { index, command } => {
                        self.events.emit(RunEvent::CheckStarted {
                            index,
                            command: command.to_string(),
                        })
                    }
                    // The check's log holds every line; the stream only shows them.
                    Progress::Line { index, line } => {
                        self.events.show(RunEvent::CheckOutput {
                            index,
                            line: line.to_string(),
                        });
                        Ok(())
                    }
                    Progress::Done { index, result } => self.events.emit(RunEvent::CheckFinished {
                        index,
                        result: result.clone(),
                    }),
                };
                if let Err(e) = emitted {
                    failure.get_or_insert(e);
                }
            })
            .await?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        if self.checks.is_empty() {
            self.events.emit(RunEvent::NoChecks)?;
        }
        Ok(results)
    }
}

/// The worst thing that is true of a judged change, in the order the exit statuses
/// rank them: the agent failed, it changed nothing, it left its scope, a check failed.
pub fn verdict(
    agent_ok: bool,
    has_change: bool,
    in_scope: bool,
    checks: &[CheckResult],
) -> Verdict {
    if !agent_ok {
        Verdict::AgentFailed
    } else if !has_change {
        Verdict::NoChange
    } else if !in_scope {
        Verdict::ScopeViolated
    } else if checks.iter().any(|c| !c.status.passed()) {
        Verdict::ChecksFailed
    } else {
        Verdict::Passed
    }
}

/// Judges a change by the scope, after reading what the judgement needs from git: the
/// target of every symlink it adds or modifies, and the size of every file it writes.
pub fn judge_change(repo: &Repo, scope: &Scope, changes: &[Change]) -> Result<ScopeReport> {
    let oids: Vec<String> = changes
        .iter()
        .filter_map(Change::written_blob)
        .map(str::to_string)
        .collect();
    judge_sized(repo, scope, changes, &repo.blob_sizes(&oids)?)
}

/// [`judge_change`] with the sizes of the blobs the change writes already read, by
/// blob id (the symlinks' targets are read here, all through one repository).
pub fn judge_sized(
    repo: &Repo,
    scope: &Scope,
    changes: &[Change],
    by_oid: &BTreeMap<String, u64>,
) -> Result<ScopeReport> {
    let links: Vec<&Change> = changes
        .iter()
        .filter(|c| c.new_mode == Change::SYMLINK_MODE)
        .collect();
    let oids: Vec<&str> = links.iter().map(|c| c.new_oid.as_str()).collect();
    let targets = links
        .iter()
        .zip(repo.blobs(&oids)?)
        .map(|(c, target)| {
            (
                c.path.clone(),
                String::from_utf8_lossy(&target).into_owned(),
            )
        })
        .collect();
    let sizes = changes
        .iter()
        .filter_map(|c| Some((c.path.clone(), *by_oid.get(c.written_blob()?)?)))
        .collect();
    Ok(scope.judge(changes, &targets, &sizes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: CheckStatus) -> CheckResult {
        CheckResult {
            command: "c".into(),
            status,
            exit_code: None,
            duration_ms: 0,
            log: None,
            tail: vec![],
        }
    }

    #[test]
    fn the_verdict_ranks_agent_change_scope_then_checks() {
        let failed = [check(CheckStatus::Failed)];
        assert_eq!(verdict(false, true, false, &failed), Verdict::AgentFailed);
        assert_eq!(verdict(true, false, false, &failed), Verdict::NoChange);
        assert_eq!(verdict(true, true, false, &failed), Verdict::ScopeViolated);
        assert_eq!(verdict(true, true, true, &failed), Verdict::ChecksFailed);
        assert_eq!(
            verdict(true, true, true, &[check(CheckStatus::Passed)]),
            Verdict::Passed
        );
        assert_eq!(verdict(true, true, true, &[]), Verdict::Passed);
    }
}

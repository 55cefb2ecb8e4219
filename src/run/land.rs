//! Land: a judged run's result carried out by policy — merged onto the user's branch
//! (or applied to their working tree), reverted, stashed or kept — now, or later by
//! `baton merge|revert|stash RUN`. A landing later is judged again when the worktree
//! changed since it was judged. What cannot be landed is a typed [`Refusal`], with
//! nothing touched; a conflict with the user's work is an outcome (data), not an error.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::events::{Events, Observer, RunEvent};
use crate::git::{Repo, TreeMerge};
use crate::journal::{self, Journal};
use crate::outcome::{self, Landing};
use crate::report::{OutcomeAction, OutcomeReport, Policy, RunReport, Stage, Verdict};
use crate::scope::Scope;
use crate::{exit, process, worktree};

use super::judge::{AgentEnd, Freshness, Judge};

/// Where a passing change lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A commit on the user's current branch (or detached HEAD).
    Branch,
    /// Uncommitted changes in the user's working tree and index (`--apply`).
    WorkingTree,
    /// The index a commit is being made from, and the working tree only where that
    /// loses nothing: a run whose base is the staged tree (`baton precommit`).
    Index,
}

impl Target {
    pub fn of_apply(apply: bool) -> Target {
        if apply {
            Target::WorkingTree
        } else {
            Target::Branch
        }
    }

    fn apply(self) -> bool {
        matches!(self, Target::WorkingTree | Target::Index)
    }
}

/// Why a run cannot be landed as asked; nothing was touched.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("run {run_id} is still running (pid {pid}); wait for it to finish, or stop it first")]
    StillRunning { run_id: String, pid: u32 },
    #[error(
        "run {run_id} is {state}, not kept; only a kept run (or one stopped by a conflict) can be decided later — see `baton show {run_id}`"
    )]
    NotKept { run_id: String, state: String },
    #[error("the worktree of run {run_id} is gone ({worktree}); its patch is in {patch}")]
    WorktreeGone {
        run_id: String,
        worktree: String,
        patch: String,
    },
    #[error(
        "run {run_id} passed on its own but not merged onto {target} as it is now: `{check}` {status}; the run is kept — rerun the task from the new {target}, or resolve by hand from branch baton/{run_id}"
    )]
    IntegrationFailed {
        run_id: String,
        target: String,
        check: String,
        status: String,
    },
    #[error(
        "run {run_id} did not pass ({verdict}); baton only lands verified changes — `baton stash {run_id}` keeps it for `git stash apply`"
    )]
    NotVerified {
        run_id: String,
        verdict: String,
        scope_violated: bool,
    },
}

/// The verified commit's message: the task, then trailers carrying the evidence.
pub fn commit_message(report: &RunReport) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut lines = report.task.trim().lines();
    let subject = lines.next().unwrap_or("baton run");
    let rest: Vec<&str> = lines.collect();
    let mut msg = format!("{subject}\n\n");
    if !rest.is_empty() {
        msg.push_str(rest.join("\n").trim());
        msg.push_str("\n\n");
    }
    msg.push_str(&format!(
        "Delegated by baton run {} to {}, verified in an isolated worktree.\n\n",
        report.run_id, report.agent
    ));
    let checks = if report.checks.is_empty() {
        "none".to_string()
    } else {
        report
            .checks
            .iter()
            .map(|c| format!("{} ({})", one_line(&c.command), c.status.name()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let scope = report
        .scope
        .as_ref()
        .map(|s| format!("{} ({})", s.allowed.join(", "), s.summary()))
        .unwrap_or_else(|| "-".into());
    msg.push_str(&format!("Baton-Run: {}\n", report.run_id));
    msg.push_str(&format!("Baton-Agent: {}\n", one_line(&report.agent)));
    msg.push_str(&format!("Baton-Checks: {checks}\n"));
    msg.push_str(&format!("Baton-Scope: {}\n", one_line(&scope)));
    // A pipeline's stages, each once, in order, with the agent of its last round (the
    // one whose work stands: a fallback's, not the agent that was first asked).
    let mut stages: Vec<(u32, &str, &str)> = vec![];
    for a in &report.attempts {
        let Some(tag) = &a.stage else { continue };
        match stages.iter_mut().find(|(n, _, _)| *n == tag.number) {
            Some(s) => s.2 = &a.agent,
            None => stages.push((tag.number, &tag.name, &a.agent)),
        }
    }
    stages.sort_by_key(|s| s.0);
    for (number, name, agent) in stages {
        msg.push_str(&format!(
            "Baton-Stage: {number} {} {}\n",
            one_line(name),
            one_line(agent)
        ));
    }
    msg
}

fn not_verified(report: &RunReport) -> Refusal {
    // What broke, named: each path out of bounds with its rule, each failing check.
    let mut broke: Vec<String> = report
        .scope
        .iter()
        .flat_map(|s| s.paths.iter())
        .filter(|p| p.verdict.is_violation())
        .map(|p| {
            format!(
                "{}: {}",
                crate::ui::quote_path(&p.path),
                p.verdict.describe()
            )
        })
        .collect();
    broke.extend(
        report
            .scope
            .iter()
            .flat_map(|s| s.over_limits.iter().cloned()),
    );
    broke.extend(
        report
            .checks
            .iter()
            .filter(|c| !c.status.passed() && c.status != crate::checklist::CheckStatus::Skipped)
            .map(|c| format!("`{}` {}", c.command, c.status.name())),
    );
    let verdict = if broke.is_empty() {
        report.verdict.describe().to_string()
    } else {
        format!("{}: {}", report.verdict.describe(), broke.join("; "))
    };
    Refusal::NotVerified {
        run_id: report.run_id.clone(),
        verdict,
        scope_violated: report.verdict == Verdict::ScopeViolated,
    }
}

/// Carries out `policy` for the judged run `report`.
pub fn land(
    repo: &Repo,
    report: &RunReport,
    journal: &Journal,
    policy: Policy,
    target: Target,
) -> Result<OutcomeReport> {
    let tree = report.tree.clone().unwrap_or_default();
    let message = commit_message(report);
    let landing = Landing::of_run(repo, journal, report, &tree, &message);
    if report.verdict == Verdict::NoChange {
        return Ok(outcome::discard(&landing)?);
    }
    // A failed run that changed nothing has nothing to save: a stash entry of it would
    // only be an empty one that says `git stash apply` brings something back.
    let unchanged = report.tree.is_some() && repo.tree_of(&report.base)? == tree;
    if unchanged && matches!(policy, Policy::Stash | Policy::Revert) {
        let mut discarded = outcome::discard(&landing)?;
        if policy == Policy::Stash {
            discarded.message = "nothing changed, so nothing was stashed; worktree removed".into();
        }
        return Ok(discarded);
    }
    let result = match policy {
        Policy::Merge if report.verdict.passed() && target == Target::Index => {
            let index = crate::workflow::precommit::staged_index(repo)?;
            crate::workflow::precommit::land::to_index(&landing, &index, &mut |line| {
                crate::ui::progress("backup", line)
            })?
        }
        Policy::Merge if report.verdict.passed() => outcome::merge(&landing, target.apply())?,
        Policy::Merge => return Err(not_verified(report).into()),
        Policy::Stash => outcome::stash(&landing)?,
        Policy::Revert => outcome::revert(&landing)?,
        Policy::Keep => outcome::keep(&landing),
    };
    Ok(result)
}

/// Records the outcome and the exit status; the run's last journal writes.
pub fn finish(
    journal: &Journal,
    events: &Events,
    report: &mut RunReport,
    outcome: OutcomeReport,
) -> Result<()> {
    events.emit(RunEvent::Outcome {
        outcome: outcome.clone(),
    })?;
    report.outcome = Some(outcome);
    report.stage = Stage::Finished;
    report.updated_at = journal::now();
    // A Ctrl-C that came while the outcome was being carried out let it finish (a
    // landing is never left half done); the exit status still says it came.
    report.interrupted |= process::interrupted();
    report.exit_code = Some(exit::for_report(report));
    events.emit(RunEvent::RunFinished {
        exit_code: report.exit_code,
        verdict: report.verdict,
    })?;
    // A report of a change to the user's repository is synced before the intent that
    // preceded it is forgotten.
    let touched_user = report.outcome.as_ref().is_some_and(|o| {
        matches!(
            o.action,
            OutcomeAction::Merged | OutcomeAction::Applied | OutcomeAction::Stashed
        )
    });
    journal.write_report(report, touched_user)?;
    journal.done()?;
    events.report(report);
    Ok(())
}

/// `baton merge|revert|stash RUN` on a run that was kept (or refused by a conflict).
/// If the worktree changed since it was judged, it is judged again — scope and
/// checks — before anything lands.
pub fn land_later(
    repo: &Repo,
    journal: Arc<Journal>,
    policy: Policy,
    target: Target,
    observers: Vec<Box<dyn Observer>>,
) -> Result<RunReport> {
    let mut report = journal.read_state()?;
    let pending = report
        .outcome
        .as_ref()
        .is_some_and(|o| o.action.is_pending());
    if report.stage != Stage::Finished && process::running(report.pid, report.pid_start) {
        return Err(Refusal::StillRunning {
            run_id: report.run_id.clone(),
            pid: report.pid,
        }
        .into());
    }
    if report.stage != Stage::Finished || !pending {
        let state = report
            .outcome
            .as_ref()
            .map(|o| format!("{:?}", o.action).to_lowercase())
            .unwrap_or_else(|| format!("{:?}", report.stage).to_lowercase());
        return Err(Refusal::NotKept {
            run_id: report.run_id.clone(),
            state,
        }
        .into());
    }
    if !report.worktree.exists() {
        return Err(Refusal::WorktreeGone {
            run_id: report.run_id.clone(),
            worktree: report.worktree.display().to_string(),
            patch: journal.path(journal::PATCH_FILE).display().to_string(),
        }
        .into());
    }
    // A run that started from the staged tree lands where it came from: the index.
    let target = if crate::workflow::precommit::land::is_index_run(&journal) {
        Target::Index
    } else {
        target
    };
    let events = Events::new(&report.run_id, journal.clone(), observers);
    // This decision is a new act of the user's: whether the run it decides on was once
    // interrupted (it is in the warnings and attempts) no longer sets its status.
    report.interrupted = false;
    let s = report.settings.clone();
    let scope = Scope::compile(&s.scope, &s.deny)?.with_limits(s.limits);
    let judge = Judge {
        repo,
        journal: &journal,
        events: &events,
        run_id: &report.run_id,
        scope: &scope,
        checks: &s.checks,
        check_timeout: std::time::Duration::from_millis(s.check_timeout_ms),
        kill_grace: std::time::Duration::from_millis(s.kill_grace_ms),
        cancel: process::Cancel::default(),
    };
    let tree = judge.snapshot(&report.worktree, Freshness::Used)?;
    if report.tree.as_deref() != Some(tree.as_str()) {
        events.emit(RunEvent::Reverify {
            old_tree: report.tree.clone(),
            new_tree: tree.clone(),
            integrated: false,
        })?;
        let agent = AgentEnd {
            ok: true,
            interrupted: false,
        };
        let evidence = judge.judge(
            &report.worktree.clone(),
            &report.base.clone(),
            tree,
            agent,
            &[],
            &mut |_| Ok(()),
        )?;
        report.interrupted |= evidence.interrupted;
        report.verdict = evidence.verdict;
        report.checks = evidence.checks;
        report.scope = Some(evidence.scope);
        report.tree = Some(evidence.tree);
    }
    if policy == Policy::Merge && !report.verdict.passed() {
        return Err(not_verified(&report).into());
    }
    // The index target checks for itself that the index still holds what was judged.
    if policy == Policy::Merge && target != Target::Index {
        verify_integrated(repo, &judge, &report)?;
    }
    let outcome = land(repo, &report, &journal, policy, target)?;
    report.apply = target.apply();
    finish(&journal, &events, &mut report, outcome)?;
    Ok(report)
}

/// When the branch a kept run lands on moved since the run was judged, what lands is
/// the change merged onto its new tip: that tree is checked (in a worktree of its own,
/// detached) before anything lands, and a failure refuses the landing with the run
/// still kept. A merge that conflicts is left to the landing, which keeps the run.
fn verify_integrated(repo: &Repo, judge: &Judge, report: &RunReport) -> Result<()> {
    let head = repo.head()?;
    let (Some(tree), false) = (report.tree.as_deref(), judge.checks.is_empty()) else {
        return Ok(());
    };
    if head.commit == report.head {
        return Ok(());
    }
    let base_tree = repo.tree_of(&report.base)?;
    let head_tree = repo.tree_of(&head.commit)?;
    let TreeMerge::Clean(merged) = repo.merge_trees(&base_tree, &head_tree, tree)? else {
        return Ok(());
    };
    if merged == head_tree {
        return Ok(());
    }
    judge.events.emit(RunEvent::Reverify {
        old_tree: report.tree.clone(),
        new_tree: merged.clone(),
        integrated: true,
    })?;
    let path = PathBuf::from(format!("{}-integrated", report.worktree.display()));
    let message = format!("baton: run {} merged onto {}\n", report.run_id, head.commit);
    let checks = in_detached_tree(repo, &path, &merged, &head.commit, &message, |wt| {
        judge.run_checks(wt)
    })??;
    if let Some(failed) = checks.iter().find(|c| !c.status.passed()) {
        return Err(Refusal::IntegrationFailed {
            run_id: report.run_id.clone(),
            target: head
                .branch
                .as_deref()
                .map(|b| b.trim_start_matches("refs/heads/").to_string())
                .unwrap_or_else(|| "HEAD".into()),
            check: failed.command.clone(),
            status: failed.status.name().into(),
        }
        .into());
    }
    Ok(())
}

/// Runs `work` in a worktree of its own at `path` with `tree` checked out, detached, as
/// a new commit on `parent` that no branch holds; the worktree is removed afterwards,
/// whatever `work` found. This is how a tree is checked before any branch points at it:
/// a kept run merged onto a branch that moved, a sweep's candidates merged onto the tip.
pub fn in_detached_tree<T>(
    repo: &Repo,
    path: &std::path::Path,
    tree: &str,
    parent: &str,
    message: &str,
    work: impl FnOnce(&std::path::Path) -> T,
) -> Result<T> {
    let commit = repo.commit_tree(tree, &[parent], message)?;
    // Leased from the pool when it has a worktree free: then re-verifying is an
    // incremental build in a warm worktree.
    let pool = worktree::pool::PoolSettings::load(repo);
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (wt, _) = worktree::detached(repo, &pool, &label, path, &commit)?;
    let found = work(&wt.path);
    worktree::retire_detached(repo, &pool, &wt.path, &commit)?;
    Ok(found)
}

/// The outcome a run gets when nobody is asked.
pub fn default_policy(report: &RunReport) -> Policy {
    if report.verdict.passed() {
        report.on_pass
    } else {
        report.on_fail
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        Error::Refused(r)
    }
}

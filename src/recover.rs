//! Recovery: what a baton that was killed (SIGKILL, the OOM killer, a power cut) left
//! in flight, finished or rolled back. It owns the decision, per run, between the two:
//!
//! - a run stopped while changing the user's repository left an intent in its journal
//!   (see [`outcome::Intent`]); [`outcome::resolve`] finishes it when the change
//!   already stands in the user's tree, or undoes what was half written when not;
//! - a run stopped before its outcome left work in its worktree (and perhaps in other
//!   attempts' worktrees): the processes it left running are stopped, and the work is
//!   kept (a run that passed, or `--on-fail keep`), stashed, or — with `--on-fail
//!   revert` — dropped with its patch in the journal; nothing is ever landed here.
//!
//! Then the run's report says what happened, and its worktrees and branches are gone
//! unless kept. A run whose process still lives is left alone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::error::Result;
use crate::git::Repo;
use crate::journal::{self, Journal};
use crate::outcome::{self, Intent, Landing, Resolution};
use crate::report::{OutcomeAction, OutcomeReport, Policy, RunReport, Stage, Verdict};
use crate::run::judge::Freshness;
use crate::{exit, process, run, worktree};

/// What recovery did with one run.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub run_id: String,
    /// The run's outcome now (`merged`, `stashed`, `kept`, …), or `running`.
    pub state: String,
    /// One line for a person.
    pub message: String,
    /// The user must look: baton could not tell its half-done work from theirs.
    pub needs_you: bool,
}

/// True when the run was stopped with something left to finish or undo.
pub fn needs_recovery(report: &RunReport, journal: &Journal) -> bool {
    report.stage != Stage::Finished || journal.path(journal::INTENT_FILE).exists()
}

/// True while the process of a run (or of the landing it recorded) still works on it.
fn still_running(report: &RunReport, intent: Option<&Intent>) -> bool {
    if let Some(i) = intent {
        return i.in_progress();
    }
    report.stage != Stage::Finished
        && report.error.is_none()
        && report.pid != std::process::id()
        && process::running(report.pid, report.pid_start)
}

/// Waits a little for a lock file git holds: a git command baton started may still
/// be finishing after baton itself was killed.
fn wait_for_index_lock(repo: &Repo) -> Option<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let lock = repo.index_lock()?;
        if Instant::now() >= deadline {
            return Some(lock);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Recovers one run, if it needs it.
pub fn recover(repo: &Repo, journal: &Journal) -> Result<Option<Recovered>> {
    let mut report = journal.read_state()?;
    if !needs_recovery(&report, journal) {
        return Ok(None);
    }
    let intent: Option<Intent> = journal.intent()?;
    let run_id = report.run_id.clone();
    if still_running(&report, intent.as_ref()) {
        return Ok(Some(Recovered {
            run_id,
            state: "running".into(),
            message: format!("still running (pid {}), left alone", report.pid),
            needs_you: false,
        }));
    }
    let stopped_at = format!("{:?}", report.stage).to_lowercase();
    let grace = Duration::from_millis(report.settings.kill_grace_ms.max(100));
    let orphans = process::stop_orphaned_groups(&journal.dir, grace);
    if !orphans.is_empty() {
        report.warnings.push(format!(
            "stopped {} process group(s) the killed baton had left running",
            orphans.len()
        ));
    }
    let uses_index = intent.as_ref().is_some_and(|i| {
        matches!(
            i.op,
            outcome::Operation::Merge { .. } | outcome::Operation::Apply { .. }
        )
    });
    if let Some(lock) = uses_index.then(|| wait_for_index_lock(repo)).flatten() {
        return Ok(Some(Recovered {
            run_id,
            state: "stuck".into(),
            message: format!(
                "{} is in the way (held by a git command, or left by one that was killed); if no git command is running, remove it and run `baton recover` again",
                lock.display()
            ),
            needs_you: true,
        }));
    }
    journal.event(
        "recover",
        json!({ "stage": report.stage, "pid": report.pid, "intent": intent }),
    )?;
    let was_finished = report.stage == Stage::Finished;
    let (outcome, needs_you, landed) = match &intent {
        Some(i) => resolve_landing(repo, journal, &report, &i.op)?,
        None => (save_work(repo, journal, &mut report)?, false, false),
    };
    report.outcome = Some(outcome.clone());
    if !landed {
        report.interrupted = report.interrupted || !was_finished;
    }
    let how = if report.error.is_some() {
        "failed"
    } else {
        "was stopped"
    };
    report.warnings.push(format!(
        "baton (pid {}) {how} during the {stopped_at} stage; `baton recover` {}",
        report.pid,
        if landed {
            "finished the landing"
        } else {
            "recovered the run"
        }
    ));
    report.stage = Stage::Finished;
    report.updated_at = journal::now();
    report.exit_code = Some(exit::for_report(&report));
    journal.event("recovered", json!({ "outcome": outcome }))?;
    journal.write_report(&report, true)?;
    journal.done()?;
    Ok(Some(Recovered {
        run_id,
        state: format!("{:?}", outcome.action).to_lowercase(),
        message: outcome.message,
        needs_you,
    }))
}

/// Finishes or undoes a recorded landing; the outcome, whether the user must look,
/// and whether the change landed.
fn resolve_landing(
    repo: &Repo,
    journal: &Journal,
    report: &RunReport,
    op: &outcome::Operation,
) -> Result<(OutcomeReport, bool, bool)> {
    let tree = report.tree.clone().unwrap_or_default();
    let message = run::commit_message(report);
    let l = Landing::of_run(repo, journal, report, &tree, &message);
    Ok(match outcome::resolve(&l, op)? {
        Resolution::Done(o) => {
            let landed = matches!(o.action, OutcomeAction::Merged | OutcomeAction::Applied);
            (o, false, landed)
        }
        Resolution::Undone => {
            let mut kept = outcome::keep(&l);
            kept.message = format!(
                "baton was stopped before the change landed; nothing of it is in your tree — {}",
                kept.message
            );
            (kept, false, false)
        }
        Resolution::Stuck(why) => {
            let mut kept = outcome::keep(&l);
            kept.action = OutcomeAction::Conflict;
            kept.message = why;
            (kept, true, false)
        }
    })
}

/// One place a stopped run may have left work: a worktree, a branch, or both.
struct Leftover {
    branch: String,
    worktree: Option<PathBuf>,
}

/// The worktrees and branches of a run: its current attempt's and any earlier or
/// half-made attempt's (`baton/<id>-aN`).
fn leftovers(repo: &Repo, report: &RunReport) -> Result<Vec<Leftover>> {
    let ours = |branch: &str| {
        let name = branch.trim_start_matches("refs/heads/");
        let id = worktree::branch_name(&report.run_id);
        name == id || name.strip_prefix(&format!("{id}-a")).is_some()
    };
    let mut found: Vec<Leftover> = vec![];
    for wt in repo.worktrees()? {
        if let Some(branch) = wt.branch.as_deref().filter(|b| ours(b)) {
            found.push(Leftover {
                branch: branch.trim_start_matches("refs/heads/").to_string(),
                worktree: Some(wt.path),
            });
        }
    }
    for branch in repo.branches_with_prefix(&worktree::branch_name(&report.run_id))? {
        if ours(&branch) && !found.iter().any(|l| l.branch == branch) {
            found.push(Leftover {
                branch,
                worktree: None,
            });
        }
    }
    // The agent may have switched its worktree to another branch: it is still ours.
    if report.worktree.exists() && !found.iter().any(|l| l.branch == report.branch) {
        found.push(Leftover {
            branch: report.branch.clone(),
            worktree: Some(report.worktree.clone()),
        });
    }
    Ok(found)
}

/// Saves what a run stopped before its outcome had done; returns its outcome.
fn save_work(repo: &Repo, journal: &Journal, report: &mut RunReport) -> Result<OutcomeReport> {
    let base_tree = repo.tree_of(&report.base)?;
    // Once its agent had started, a killed run's worktree cannot be proven free of a
    // process of that agent's that nobody recorded: it is removed, never pooled.
    let _no_pool =
        (!matches!(report.stage, Stage::Created | Stage::Worktree)).then(worktree::pool::suspend);
    let mut outcome = None;
    for left in leftovers(repo, report)? {
        let current = left.branch == report.branch;
        let tree = match &left.worktree {
            // A worktree whose checkout never wrote its index (baton was killed while
            // `git worktree add` ran, and git may still be at it): no agent ever
            // started in it, so it holds nothing to save — and its half-written
            // files must not be taken for a change.
            Some(path) if path.exists() && !repo.worktree_has_index(path) => base_tree.clone(),
            // The run stopped before its agent started: whatever the worktree holds
            // is baton's checkout (a pooled worktree it leased and was moving), not
            // anybody's work.
            Some(path)
                if path.exists()
                    && current
                    && matches!(report.stage, Stage::Created | Stage::Worktree) =>
            {
                base_tree.clone()
            }
            // Someone (the killed run's agent) wrote it: judged as a used worktree.
            Some(path) if path.exists() => run::judge::snapshot(repo, path, Freshness::Used)?,
            _ => match repo.ref_target(&format!("refs/heads/{}", left.branch)) {
                Some(commit) => repo.tree_of(&commit)?,
                None => base_tree.clone(),
            },
        };
        let path = left.worktree.clone().unwrap_or_default();
        let changed = tree != base_tree;
        if current && changed {
            journal.write_file(journal::PATCH_FILE, &repo.patch(&base_tree, &tree)?)?;
            report.tree = Some(tree.clone());
        }
        let task = if current {
            format!("{} (interrupted)", report.task.lines().next().unwrap_or(""))
        } else {
            format!(
                "{} (interrupted attempt, {})",
                report.task.lines().next().unwrap_or(""),
                left.branch
            )
        };
        // The leftover lands as a run would, by the landing phase: kept when the run
        // had passed or keeps what fails, reverted when it reverts what fails, else
        // stashed; nothing changed is discarded.
        let keep = current
            && path.exists()
            && (report.verdict == Verdict::Passed || report.on_fail == Policy::Keep);
        let policy = if !changed || (current && !keep && report.on_fail == Policy::Revert) {
            Policy::Revert
        } else if keep {
            Policy::Keep
        } else {
            Policy::Stash
        };
        let leftover = RunReport {
            task,
            branch: left.branch.clone(),
            worktree: path.clone(),
            tree: Some(tree.clone()),
            ..report.clone()
        };
        let result = run::land::land(repo, &leftover, journal, policy, run::land::Target::Branch)?;
        journal.done()?;
        if current {
            outcome = Some(result);
        } else if let Some(stash) = &result.stash {
            report.warnings.push(format!(
                "{}: its change saved as stash {stash}",
                left.branch
            ));
        }
    }
    Ok(outcome.unwrap_or_else(|| OutcomeReport {
        action: OutcomeAction::Discarded,
        message: "nothing to keep: the run had not changed anything".into(),
        commit: None,
        target: None,
        stash: None,
        paths: vec![],
    }))
}

/// Recovers every run of the repository that needs it (or the one given).
pub fn recover_all(repo: &Repo, only: Option<&str>) -> Result<Vec<Recovered>> {
    let ids = match only {
        Some(q) => vec![
            Journal::open(&repo.common_dir, q)?
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ],
        None => journal::list_ids(&repo.common_dir)?,
    };
    let mut done = vec![];
    for id in ids {
        let journal = Journal::open(&repo.common_dir, &id)?;
        // One run that cannot be recovered (a damaged journal) does not stop the rest.
        match recover(repo, &journal) {
            Ok(Some(r)) => done.push(r),
            Ok(None) => {}
            Err(e) => done.push(Recovered {
                run_id: id,
                state: "stuck".into(),
                message: format!(
                    "could not recover it: {e}; its journal is in {}",
                    journal.dir.display()
                ),
                needs_you: true,
            }),
        }
    }
    // Leases of killed batons that no run's journal took over go back to the pool.
    let claimed: Vec<std::path::PathBuf> = journal::list_runs(&repo.common_dir)?
        .into_iter()
        .filter_map(|(_, state)| state.ok())
        .filter(|r| r.outcome.as_ref().is_none_or(|o| o.action.is_pending()))
        .map(|r| r.worktree)
        .collect();
    let settings = worktree::pool::PoolSettings::load(repo);
    worktree::pool::recover_leases(repo, &settings, &claimed)?;
    worktree::prune(repo)?;
    Ok(done)
}

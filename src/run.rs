//! The pipeline of one delegation: handoff → worktree → agent → checklist → scope →
//! outcome, each stage handing plain data to the next, with the journal recording
//! every hand-over before the next stage acts. The verdict is data in the
//! [`RunReport`]; an `Err` means baton itself could not do its job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::agent::{AgentContext, AgentEvent, AgentSpec, Backend};
use crate::checklist::{CheckStatus, Checklist};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::git::{Change, Repo};
use crate::guard::Guard;
use crate::handoff::Handoff;
use crate::journal::{self, Journal};
use crate::outcome::{self, Landing};
use crate::report::{
    AgentStatus, FORMAT_VERSION, FailureClass, OutcomeAction, OutcomeReport, Policy, RunReport,
    RunSettings, Stage, Verdict,
};
use crate::scope::{JudgedPath, PathVerdict, Scope, ScopeReport};
use crate::{exit, process, ui, worktree};

/// Everything a run needs, resolved and validated by the caller.
pub struct RunOptions {
    pub handoff: Handoff,
    pub agent: AgentSpec,
    pub base_rev: Option<String>,
    pub include_dirty: bool,
    pub on_pass: Policy,
    pub on_fail: Policy,
    pub apply: bool,
    pub scope: Vec<String>,
    pub deny: Vec<String>,
    pub checks: Vec<String>,
    pub limits: crate::scope::Limits,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub check_timeout: Duration,
    pub kill_grace: Duration,
    pub worktrees_dir: PathBuf,
    pub config: Config,
    /// The agents tried next, in order, when an attempt ends in `fallback_on`.
    pub fallback: Vec<AgentSpec>,
    pub fallback_on: Vec<String>,
    /// Retries of a transient failure (rate limit, server error, network) per agent.
    pub retries: u32,
    /// Repair rounds: resume the agent's session with what failed, up to this many times.
    pub repair: u32,
}

/// Decides the outcome when the user asked to be asked; otherwise the policy stands.
pub type Decide<'a> = &'a mut dyn FnMut(&RunReport) -> Policy;

fn new_run_id() -> String {
    let secs = journal::now();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{salt:04x}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn journal_for_new_run(repo: &Repo) -> Result<(String, Journal, u64)> {
    let mut last_err = None;
    for _ in 0..20 {
        let id = new_run_id();
        match Journal::create(&repo.common_dir, &id) {
            Ok((j, seq)) => return Ok((id, j, seq)),
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    Err(last_err.map(Error::from).unwrap_or(Error::Interrupted))
}

/// A stage change: recorded in the journal before the stage acts.
fn enter(journal: &Journal, report: &mut RunReport, stage: Stage) -> Result<()> {
    report.stage = stage;
    report.updated_at = journal::now();
    journal.event("stage", json!({ "stage": stage }))?;
    journal.write_state(report)?;
    Ok(())
}

/// Runs one delegation from start to outcome.
pub fn run(repo: &Repo, opts: RunOptions, decide: Decide) -> Result<RunReport> {
    // Everything that can be refused is refused before anything is created.
    let head = repo.head()?;
    let head_label = head.branch.clone();
    let base_commit = match &opts.base_rev {
        Some(rev) => repo.resolve_commit(rev)?,
        None => head.commit.clone(),
    };
    repo.check_identity()?;
    Scope::compile(&opts.scope, &opts.deny)?;
    // Every agent of the chain must be there before anything starts.
    opts.agent.backend(&opts.config)?;
    for fallback in &opts.fallback {
        fallback.backend(&opts.config)?;
    }
    let (run_id, journal, seq) = journal_for_new_run(repo)?;
    let wt_path = match worktree::location(&opts.worktrees_dir, repo, &run_id) {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&journal.dir);
            return Err(e.into());
        }
    };
    let task = opts.handoff.contract.task.clone();
    let handoff_path =
        journal.write_file(journal::HANDOFF_FILE, opts.handoff.to_document().as_bytes())?;

    let mut report = RunReport {
        format_version: FORMAT_VERSION,
        run_id: run_id.clone(),
        seq,
        task: task.clone(),
        agent: opts.agent.label(),
        stage: Stage::Created,
        pid: std::process::id(),
        pid_start: process::own_start_time(),
        started_at: journal::now(),
        updated_at: journal::now(),
        repo: repo.root.clone(),
        base: base_commit.clone(),
        head: head.commit.clone(),
        head_branch: head_label,
        include_dirty: opts.include_dirty,
        branch: worktree::branch_name(&run_id),
        worktree: wt_path.clone(),
        journal: journal.dir.clone(),
        on_pass: opts.on_pass,
        on_fail: opts.on_fail,
        apply: opts.apply,
        settings: RunSettings {
            scope: opts.scope.clone(),
            deny: opts.deny.clone(),
            checks: opts.checks.clone(),
            limits: opts.limits,
            check_timeout_ms: opts.check_timeout.as_millis() as u64,
            kill_grace_ms: opts.kill_grace.as_millis() as u64,
            timeout_ms: opts.timeout.map(|d| d.as_millis() as u64),
            idle_timeout_ms: opts.idle_timeout.map(|d| d.as_millis() as u64),
        },
        agent_result: None,
        tree: None,
        checks: vec![],
        scope: None,
        verdict: Verdict::Pending,
        outcome: None,
        interrupted: false,
        warnings: vec![],
        error: None,
        attempts: vec![],
        resumes: 0,
        exit_code: None,
    };
    journal.event(
        "run.started",
        json!({ "run_id": run_id, "task": task, "agent": report.agent }),
    )?;
    journal.write_state(&report)?;
    ui::progress(
        "run",
        format!("{run_id}: {}", task.lines().next().unwrap_or("")),
    );

    let result = stages(repo, &opts, decide, &journal, &mut report, handoff_path);
    match result {
        Ok(()) => Ok(report),
        Err(e) => {
            // The journal says where and why the run stopped; `baton status` shows it.
            report.error = Some(e.to_string());
            report.updated_at = journal::now();
            let _ = journal.event(
                "run.error",
                json!({ "error": report.error, "stage": report.stage }),
            );
            let _ = journal.write_state(&report);
            if process::interrupted() {
                Err(Error::Interrupted)
            } else {
                Err(e)
            }
        }
    }
}

fn stages(
    repo: &Repo,
    opts: &RunOptions,
    decide: Decide,
    journal: &Journal,
    report: &mut RunReport,
    handoff_path: PathBuf,
) -> Result<()> {
    let run_id = report.run_id.clone();
    let base_commit = report.base.clone();
    let wt_path = report.worktree.clone();
    let scope = Scope::compile(&opts.scope, &opts.deny)?.with_limits(opts.limits);
    // worktree
    enter(journal, report, Stage::Worktree)?;
    if opts.include_dirty {
        if let Some(snapshot) = worktree::dirty_base(repo, &base_commit, &run_id)? {
            report.base = snapshot;
            ui::progress("worktree", "including your uncommitted changes");
        } else {
            report.include_dirty = false;
        }
    }
    let prompt = journal.write_file(journal::PROMPT_FILE, opts.handoff.body.as_bytes())?;
    let chain: Vec<&AgentSpec> = std::iter::once(&opts.agent).chain(&opts.fallback).collect();
    let mut number = 0u32;
    'agents: for (position, agent) in chain.iter().enumerate() {
        let backend = agent.backend(&opts.config)?;
        let mut retries = 0;
        loop {
            number += 1;
            if number > 1 {
                // A fresh worktree from the same base: attempts never mix.
                report.branch = format!("{}-a{number}", worktree::branch_name(&run_id));
                report.worktree = PathBuf::from(format!("{}-a{number}", wt_path.display()));
                report.agent = agent.label();
                report.checks.clear();
                report.scope = None;
                report.verdict = Verdict::Pending;
            }
            let name = report.branch.trim_start_matches("baton/").to_string();
            let wt = worktree::create(repo, &report.worktree, &name, &report.base)?;
            journal.event(
                "worktree.created",
                json!({ "path": wt.path, "branch": wt.branch, "base": wt.base, "attempt": number }),
            )?;
            ui::progress(
                "worktree",
                format!("{} at {}", wt.branch, wt.path.display()),
            );
            let log = if number == 1 {
                journal.path(journal::AGENT_LOG)
            } else {
                journal.path(&format!("agent-{number}.log"))
            };
            // The attempt's first round in its fresh worktree, then repair rounds that
            // resume the agent's session there.
            let work = |prompt: PathBuf, resume: Option<String>, log: PathBuf| Work {
                backend: backend.as_ref(),
                fresh: resume.is_none(),
                ctx: AgentContext {
                    run_id: run_id.clone(),
                    worktree: wt.path.clone(),
                    handoff: handoff_path.clone(),
                    prompt,
                    resume,
                    timeout: opts.timeout,
                    idle_timeout: opts.idle_timeout,
                    kill_grace: opts.kill_grace,
                    log,
                },
                scope: scope.clone(),
                checks: &opts.checks,
                check_timeout: opts.check_timeout,
                kill_grace: opts.kill_grace,
            };
            judge_attempt(repo, journal, report, work(prompt.clone(), None, log))?;
            let mut round = 0;
            while matches!(
                report.verdict,
                Verdict::ChecksFailed | Verdict::ScopeViolated
            ) && round < opts.repair
            {
                let Some(session) = report.agent_result.as_ref().and_then(|a| a.session.clone())
                else {
                    break;
                };
                report
                    .attempts
                    .push(attempt_record(report, number, round, &agent.label()));
                round += 1;
                let text = repair_prompt(report, round, opts.repair)?;
                let prompt =
                    journal.write_file(&format!("repair-{number}-{round}.md"), text.as_bytes())?;
                journal.event(
                    "repair",
                    json!({ "attempt": number, "round": round, "session": session }),
                )?;
                ui::progress(
                    "repair",
                    format!(
                        "round {round} of {}: {} again, told what failed",
                        opts.repair,
                        agent.label()
                    ),
                );
                report.checks.clear();
                let log = journal.path(&format!("agent-{number}-repair-{round}.log"));
                judge_attempt(repo, journal, report, work(prompt, Some(session), log))?;
            }
            let class = report
                .agent_result
                .as_ref()
                .map(|a| a.class)
                .unwrap_or_default();
            report
                .attempts
                .push(attempt_record(report, number, round, &agent.label()));
            journal.event("attempt", json!({ "attempt": report.attempts.last() }))?;
            if report.verdict.passed() || report.interrupted {
                break 'agents;
            }
            let retry = class.transient() && retries < opts.retries;
            let next =
                position + 1 < chain.len() && falls_back(&opts.fallback_on, class, report.verdict);
            if !retry && !next {
                break 'agents;
            }
            set_aside(repo, journal, report)?;
            if retry {
                retries += 1;
                let wait = Duration::from_secs(1 << (retries - 1).min(5));
                ui::progress(
                    "retry",
                    format!(
                        "{} ({}): again in {}",
                        agent.label(),
                        class.name(),
                        crate::duration::format(wait)
                    ),
                );
                std::thread::sleep(wait);
                continue;
            }
            ui::progress(
                "fallback",
                format!(
                    "{} ended {}; handing the task to {}",
                    agent.label(),
                    class.name(),
                    chain[position + 1].label()
                ),
            );
            continue 'agents;
        }
    }
    conclude(repo, journal, report, opts.apply, decide)
}

fn attempt_record(
    report: &RunReport,
    number: u32,
    round: u32,
    agent: &str,
) -> crate::report::Attempt {
    let class = report
        .agent_result
        .as_ref()
        .map(|a| a.class)
        .unwrap_or_default();
    crate::report::Attempt {
        number,
        round,
        agent: agent.to_string(),
        class,
        verdict: report.verdict,
        duration_ms: report
            .agent_result
            .as_ref()
            .map(|a| a.duration_ms)
            .unwrap_or(0),
        branch: report.branch.clone(),
        error: report.agent_result.as_ref().and_then(|a| a.error.clone()),
        kept: None,
    }
}

/// The follow-up of a repair round (or of `baton resume`): the failing checks with the
/// tail of their output, and the paths out of scope with the rule.
pub fn repair_prompt(report: &RunReport, round: u32, rounds: u32) -> Result<String> {
    let repair = crate::handoff::Repair {
        task: report.task.lines().next().unwrap_or("").to_string(),
        round,
        rounds,
        checks: report
            .checks
            .iter()
            .filter(|c| !c.status.passed() && c.status != CheckStatus::Skipped)
            .map(|c| crate::handoff::FailedCheck {
                command: c.command.clone(),
                status: match c.status {
                    CheckStatus::TimedOut => "timed out".into(),
                    _ => "failed".into(),
                },
                exit_code: c.exit_code,
                tail: c.tail.join("\n"),
            })
            .collect(),
        violations: report
            .scope
            .iter()
            .flat_map(|s| s.paths.iter())
            .filter(|p| p.verdict.is_violation())
            .map(|p| crate::handoff::Violation {
                path: p.path.clone(),
                reason: p.verdict.describe(),
            })
            .collect(),
        allowed: report
            .scope
            .as_ref()
            .map(|s| s.allowed.clone())
            .unwrap_or_default(),
        denied: report
            .scope
            .as_ref()
            .map(|s| s.denied.clone())
            .unwrap_or_default(),
    };
    let templates = crate::config::repo_templates(&report.repo);
    Ok(crate::handoff::render_repair(&repair, Some(&templates))?)
}

/// The default triggers of a fallback: every failure of the agent, and a change that
/// failed its checks or left its scope.
pub const DEFAULT_FALLBACK_ON: &[&str] = &[
    "rate_limited",
    "server_error",
    "network",
    "timeout",
    "idle",
    "crashed",
    "no_change",
    "checks_failed",
    "scope_violated",
];

fn falls_back(on: &[String], class: FailureClass, verdict: Verdict) -> bool {
    let verdict_name = match verdict {
        Verdict::ChecksFailed => "checks_failed",
        Verdict::ScopeViolated => "scope_violated",
        _ => "",
    };
    on.iter()
        .any(|t| t == class.name() || (!verdict_name.is_empty() && t == verdict_name))
}

/// Keeps a failed attempt's change (its patch in the journal, and a stash when it
/// changed anything) and drops its worktree, before the next attempt starts afresh.
fn set_aside(repo: &Repo, journal: &Journal, report: &mut RunReport) -> Result<()> {
    let number = report.attempts.len();
    if let Ok(patch) = std::fs::read(journal.path(journal::PATCH_FILE)) {
        journal.write_file(&format!("attempt-{number}.patch"), &patch)?;
    }
    let tree = report.tree.clone().unwrap_or_default();
    let message = commit_message(report);
    let task = format!(
        "{} (attempt {number}, {})",
        report.task.lines().next().unwrap_or(""),
        report.agent
    );
    let landing = Landing {
        task: &task,
        ..Landing::of_run(repo, journal, report, &tree, &message)
    };
    let changed = repo
        .tree_of(&report.base)
        .map(|t| t != tree)
        .unwrap_or(true);
    let kept = if changed {
        Some(outcome::stash(&landing)?.stash.unwrap_or_default())
    } else {
        outcome::discard(&landing)?;
        None
    };
    if let Some(a) = report.attempts.last_mut() {
        a.kept = kept;
    }
    journal.write_state(report)?;
    journal.done()?;
    Ok(())
}

/// What the agent stage onwards needs, for a new run or a resumed one.
struct Work<'a> {
    backend: &'a dyn Backend,
    ctx: AgentContext,
    scope: Scope,
    checks: &'a [String],
    check_timeout: Duration,
    kill_grace: Duration,
    /// The worktree was made for this round (see the snapshot).
    fresh: bool,
}

/// agent → snapshot → checklist → scope → verdict, in an existing worktree.
fn judge_attempt(repo: &Repo, journal: &Journal, report: &mut RunReport, w: Work) -> Result<()> {
    // agent
    enter(journal, report, Stage::Agent)?;
    let wt_path = report.worktree.clone();
    let run_id = report.run_id.clone();
    let git_link = worktree::git_link(&wt_path);
    ui::progress("agent", format!("{} working", report.agent));
    let guard = Guard::before(repo, &wt_path, &report.branch)?;
    let mut journal_failure = None;
    let agent_started = worktree::file_clock(&wt_path).map_err(|source| Error::Io {
        context: format!("could not write next to {}", wt_path.display()),
        source,
    })?;
    let agent_report = w.backend.run(&w.ctx, &mut |event| {
        if let AgentEvent::Message { text } = &event {
            ui::progress(
                "agent",
                format!("says: {}", ui::printable(text.lines().next().unwrap_or(""))),
            );
        }
        let (kind, data) = event.journal_entry();
        if let Err(e) = journal.event(kind, data) {
            journal_failure.get_or_insert(e);
        }
    })?;
    if let Some(e) = journal_failure {
        return Err(e.into());
    }
    journal.event("agent.finished", json!({ "result": agent_report }))?;
    ui::progress("agent", agent_report.describe());
    if agent_report.left_background_process {
        report.warnings.push(
            "the agent left a background process running; baton killed its process group".into(),
        );
    }
    let trespass = guard.after(repo)?;
    for w in &trespass.warnings {
        ui::warn(w);
    }
    report.warnings.extend(trespass.warnings);
    report.interrupted |= agent_report.status == AgentStatus::Interrupted;
    let mut agent_report = agent_report;
    agent_report.class = crate::agent::classify(&agent_report);
    report.agent_result = Some(agent_report);

    // scope (judged before the checks run, so the tree judged is the agent's alone)
    let mut link_broken = false;
    if worktree::git_link(&wt_path) != git_link {
        // Put the link back first: every git command below reads it.
        if let Some(original) = &git_link {
            let _ = std::fs::write(wt_path.join(".git"), original);
        }
        link_broken = true;
    }
    // The checkout's stat data can be trusted only in a worktree nobody but the agent
    // of this round has touched since it was made; a resumed or repaired worktree
    // gets git's own (slower, always right) racy-file handling.
    let tree = if link_broken || !w.fresh {
        repo.snapshot_tree(&wt_path)?
    } else {
        repo.snapshot_tree_since(&wt_path, agent_started)?
    };
    report.tree = Some(tree.clone());
    let base_tree = repo.tree_of(&report.base)?;
    let diff = if tree == base_tree {
        crate::git::TreeDiff::default()
    } else {
        repo.diff_for_judging(&base_tree, &tree)?
    };
    journal.write_file(journal::PATCH_FILE, &diff.patch)?;
    let mut scope_report = judge_sized(repo, &w.scope, &diff.changes, &diff.sizes)?;
    // Writes outside the tree that the snapshot cannot show: the worktree's link to
    // the repository, and the git directory's config, hooks and info.
    let outside = link_broken
        .then(|| ".git".to_string())
        .into_iter()
        .chain(trespass.restored);
    for path in outside {
        scope_report.paths.push(JudgedPath {
            path,
            old_path: None,
            change: crate::git::ChangeKind::Modified,
            mode: None,
            verdict: PathVerdict::GitInternal,
            added: None,
            removed: None,
            size: None,
            binary: false,
        });
        scope_report.violations += 1;
    }
    let agent_ok = report
        .agent_result
        .as_ref()
        .is_some_and(|a| a.status == AgentStatus::Succeeded);
    let has_change = !scope_report.paths.is_empty();
    if let Some(a) = report
        .agent_result
        .as_mut()
        .filter(|a| a.class == FailureClass::Ok && !has_change)
    {
        a.class = FailureClass::NoChange;
    }

    // checklist
    if agent_ok && has_change && !report.interrupted {
        enter(journal, report, Stage::Checks)?;
        let checklist = Checklist {
            commands: w.checks,
            worktree: &wt_path,
            timeout: w.check_timeout,
            kill_grace: w.kill_grace,
            env: vec![("BATON_RUN_ID".into(), run_id.clone())],
        };
        report.checks = checklist.run(&|i| journal.check_log(i), &mut |i, result| {
            let _ = journal.event("check.finished", json!({ "index": i, "result": result }));
            ui::progress(
                "check",
                format!(
                    "{} — {} ({:.1}s)",
                    result.command,
                    result.status.name(),
                    result.duration_ms as f64 / 1000.0
                ),
            );
        })?;
        report.interrupted |= report
            .checks
            .iter()
            .any(|c| c.status == CheckStatus::Interrupted);
        if w.checks.is_empty() {
            ui::progress(
                "check",
                "no checks configured (give --check or run `baton init`)",
            );
        }
    }

    enter(journal, report, Stage::Scope)?;
    if scope_report.defaulted_to_everything {
        ui::progress("scope", "no scope given: judged against `**`");
    }
    for p in scope_report
        .paths
        .iter()
        .filter(|p| p.verdict.is_violation())
    {
        let size = p
            .size
            .filter(|_| matches!(p.verdict, PathVerdict::TooLarge { .. }))
            .map(|n| format!(" ({})", crate::scope::human_size(n)))
            .unwrap_or_default();
        ui::progress(
            "scope",
            format!(
                "{}{size}: {}",
                ui::quote_path(&p.path),
                p.verdict.describe()
            ),
        );
    }
    ui::progress("scope", scope_report.summary());
    journal.event("scope.judged", json!({ "scope": scope_report }))?;
    report.verdict = verdict(agent_ok, has_change, scope_report.clean(), &report.checks);
    report.scope = Some(scope_report);
    journal.event("verdict", json!({ "verdict": report.verdict }))?;

    Ok(())
}

/// The worst thing that is true of a judged change, in the order the exit statuses
/// rank them: the agent failed, it changed nothing, it left its scope, a check failed.
fn verdict(
    agent_ok: bool,
    has_change: bool,
    in_scope: bool,
    checks: &[crate::checklist::CheckResult],
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

/// The outcome of a judged run, by policy (or by asking).
fn conclude(
    repo: &Repo,
    journal: &Journal,
    report: &mut RunReport,
    apply: bool,
    decide: Decide,
) -> Result<()> {
    enter(journal, report, Stage::Outcome)?;
    let policy = if report.verdict == Verdict::NoChange {
        Policy::Revert
    } else {
        decide(report)
    };
    let outcome = land(repo, report, journal, policy, apply)?;
    finish(journal, report, outcome)?;
    Ok(())
}

/// Judges a change by the scope, after reading what the judgement needs from git: the
/// target of every symlink it adds or modifies, and the size of every file it writes.
fn judge_change(repo: &Repo, scope: &Scope, changes: &[Change]) -> Result<ScopeReport> {
    let oids: Vec<String> = changes
        .iter()
        .filter_map(Change::written_blob)
        .map(str::to_string)
        .collect();
    judge_sized(repo, scope, changes, &repo.blob_sizes(&oids)?)
}

/// [`judge_change`] with the sizes of the blobs the change writes already read, by
/// blob id.
fn judge_sized(
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
    msg
}

/// Carries out a policy for a judged run.
pub fn land(
    repo: &Repo,
    report: &RunReport,
    journal: &Journal,
    policy: Policy,
    apply: bool,
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
        Policy::Merge if report.verdict.passed() => outcome::merge(&landing, apply)?,
        Policy::Merge => {
            return Err(Error::NotVerified {
                run_id: report.run_id.clone(),
                verdict: report.verdict.describe().into(),
                scope_violated: report.verdict == Verdict::ScopeViolated,
            });
        }
        Policy::Stash => outcome::stash(&landing)?,
        Policy::Revert => outcome::revert(&landing)?,
        Policy::Keep => outcome::keep(&landing),
    };
    Ok(result)
}

/// Records the outcome and the exit status; the run's last journal writes.
pub fn finish(journal: &Journal, report: &mut RunReport, outcome: OutcomeReport) -> Result<()> {
    journal.event("outcome", json!({ "outcome": outcome }))?;
    ui::progress("outcome", &outcome.message);
    report.outcome = Some(outcome);
    report.stage = Stage::Finished;
    report.updated_at = journal::now();
    // A Ctrl-C that came while the outcome was being carried out let it finish (a
    // landing is never left half done); the exit status still says it came.
    report.interrupted |= process::interrupted();
    report.exit_code = Some(exit::for_report(report));
    journal.event(
        "run.finished",
        json!({ "exit_code": report.exit_code, "verdict": report.verdict }),
    )?;
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
    Ok(())
}

/// `baton merge|revert|stash RUN` on a run that was kept (or refused by a conflict).
/// If the worktree changed since it was judged, it is judged again — scope and
/// checks — before anything lands.
pub fn decide_later(
    repo: &Repo,
    journal: &Journal,
    policy: Policy,
    apply: bool,
) -> Result<RunReport> {
    let mut report = journal.read_state()?;
    let pending = report
        .outcome
        .as_ref()
        .is_some_and(|o| o.action.is_pending());
    if report.stage != Stage::Finished || !pending {
        let state = report
            .outcome
            .as_ref()
            .map(|o| format!("{:?}", o.action).to_lowercase())
            .unwrap_or_else(|| format!("{:?}", report.stage).to_lowercase());
        return Err(Error::Usage(format!(
            "run {} is {state}, not kept; only a kept run (or one stopped by a conflict) can be decided later — see `baton show {}`",
            report.run_id, report.run_id
        )));
    }
    if !report.worktree.exists() {
        return Err(Error::Usage(format!(
            "the worktree of run {} is gone ({}); its patch is in {}",
            report.run_id,
            report.worktree.display(),
            journal.path(journal::PATCH_FILE).display()
        )));
    }
    // This decision is a new act of the user's: whether the run it decides on was once
    // interrupted (it is in the warnings and attempts) no longer sets its status.
    report.interrupted = false;
    let tree = repo.snapshot_tree(&report.worktree)?;
    if report.tree.as_deref() != Some(tree.as_str()) {
        ui::progress(
            "verify",
            "the worktree changed since it was judged; judging it again",
        );
        journal.event(
            "reverify",
            json!({ "old_tree": report.tree, "new_tree": tree }),
        )?;
        reverify(repo, journal, &mut report, tree)?;
    }
    if policy == Policy::Merge && !report.verdict.passed() {
        return Err(Error::NotVerified {
            run_id: report.run_id.clone(),
            verdict: report.verdict.describe().into(),
            scope_violated: report.verdict == Verdict::ScopeViolated,
        });
    }
    let outcome = land(repo, &report, journal, policy, apply)?;
    report.apply = apply;
    finish(journal, &mut report, outcome)?;
    Ok(report)
}

fn reverify(repo: &Repo, journal: &Journal, report: &mut RunReport, tree: String) -> Result<()> {
    let s = report.settings.clone();
    let scope = Scope::compile(&s.scope, &s.deny)?.with_limits(s.limits);
    let base_tree = repo.tree_of(&report.base)?;
    let changes = repo.diff_trees(&base_tree, &tree)?;
    journal.write_file(journal::PATCH_FILE, &repo.patch(&base_tree, &tree)?)?;
    let scope_report = judge_change(repo, &scope, &changes)?;
    let checklist = Checklist {
        commands: &s.checks,
        worktree: &report.worktree,
        timeout: Duration::from_millis(s.check_timeout_ms),
        kill_grace: Duration::from_millis(s.kill_grace_ms),
        env: vec![("BATON_RUN_ID".into(), report.run_id.clone())],
    };
    report.checks = checklist.run(&|i| journal.check_log(i), &mut |_, r| {
        ui::progress("check", format!("{} — {}", r.command, r.status.name()));
    })?;
    report.interrupted |= report
        .checks
        .iter()
        .any(|c| c.status == CheckStatus::Interrupted);
    report.verdict = verdict(
        true,
        !changes.is_empty(),
        scope_report.clean(),
        &report.checks,
    );
    report.scope = Some(scope_report);
    report.tree = Some(tree);
    Ok(())
}

/// The outcome a run gets when nobody is asked.
pub fn default_policy(report: &RunReport) -> Policy {
    if report.verdict.passed() {
        report.on_pass
    } else {
        report.on_fail
    }
}

/// What `baton resume` may change about the run it continues.
pub struct ResumeOptions {
    pub prompt: Option<String>,
    pub on_pass: Option<Policy>,
    pub on_fail: Option<Policy>,
    pub apply: bool,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub config: Config,
}

/// The follow-up a resumed agent gets when the user gives none: what failed, and the
/// evidence (the failing check's command and output tail, or the paths out of scope).
pub fn follow_up(report: &RunReport) -> Result<String> {
    let mut text = repair_prompt(report, 1, 1)?;
    if let Some(e) = report.agent_result.as_ref().and_then(|a| a.error.as_ref()) {
        text.push_str(&format!("\nYour last attempt ended with an error: {e}\n"));
    }
    Ok(text)
}

/// `baton resume RUN`: continues the agent's own session in the run's kept worktree,
/// then verifies and decides again.
pub fn resume(
    repo: &Repo,
    journal: &Journal,
    opts: ResumeOptions,
    decide: Decide,
) -> Result<RunReport> {
    let mut report = journal.read_state()?;
    let pending = report
        .outcome
        .as_ref()
        .is_some_and(|o| o.action.is_pending());
    if report.stage != Stage::Finished || !pending || !report.worktree.exists() {
        return Err(Error::Usage(format!(
            "run {} has no kept worktree to resume in (its outcome: {}); resume works on runs kept with `--on-fail keep` or `--on-pass keep`",
            report.run_id,
            report
                .outcome
                .as_ref()
                .map(|o| o.message.as_str())
                .unwrap_or("none")
        )));
    }
    let session = report
        .agent_result
        .as_ref()
        .and_then(|a| a.session.clone())
        .ok_or_else(|| {
            Error::Usage(format!(
                "run {} has no agent session to resume ({} keeps none); start a new run",
                report.run_id, report.agent
            ))
        })?;
    let agent = AgentSpec::parse(&report.agent)?;
    let backend = agent.backend(&opts.config)?;
    let s = report.settings.clone();
    let scope = Scope::compile(&s.scope, &s.deny)?.with_limits(s.limits);
    report.on_pass = opts.on_pass.unwrap_or(report.on_pass);
    report.on_fail = opts.on_fail.unwrap_or(report.on_fail);
    report.apply = opts.apply || report.apply;
    report.resumes += 1;
    let text = match opts.prompt.clone() {
        Some(t) => t,
        None => follow_up(&report)?,
    };
    let prompt = journal.write_file(&format!("resume-{}.md", report.resumes), text.as_bytes())?;
    report.pid = std::process::id();
    report.pid_start = process::own_start_time();
    report.verdict = Verdict::Pending;
    report.checks.clear();
    report.outcome = None;
    report.interrupted = false;
    report.error = None;
    report.exit_code = None;
    journal.event(
        "resume",
        json!({ "session": session, "resumes": report.resumes }),
    )?;
    ui::progress(
        "resume",
        format!(
            "{} session {session} in {}",
            report.agent,
            report.worktree.display()
        ),
    );
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let work = Work {
        backend: backend.as_ref(),
        ctx: AgentContext {
            run_id: report.run_id.clone(),
            worktree: report.worktree.clone(),
            handoff: journal.path(journal::HANDOFF_FILE),
            prompt,
            resume: Some(session),
            timeout: opts.timeout.or(ms(s.timeout_ms)),
            idle_timeout: opts.idle_timeout.or(ms(s.idle_timeout_ms)),
            kill_grace: Duration::from_millis(s.kill_grace_ms),
            log: journal.path(&format!("agent-resume-{}.log", report.resumes)),
        },
        scope,
        checks: &s.checks,
        check_timeout: Duration::from_millis(s.check_timeout_ms),
        kill_grace: Duration::from_millis(s.kill_grace_ms),
        fresh: false,
    };
    let apply = report.apply;
    let result = judge_attempt(repo, journal, &mut report, work)
        .and_then(|()| conclude(repo, journal, &mut report, apply, decide));
    if let Err(e) = result {
        report.error = Some(e.to_string());
        let _ = journal.write_state(&report);
        return Err(e);
    }
    report.apply = apply;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_read_as_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
        let id = new_run_id();
        assert_eq!(id.len(), "20261124-153012-a1b2".len());
    }
}

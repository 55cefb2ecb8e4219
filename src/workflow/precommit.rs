//! Pre-commit delegation: what the git hook runs (`baton precommit`), built on the run
//! library with a new base and a new landing target rather than a copy of the driver.
//!
//! 1. The staged tree (read from `$GIT_INDEX_FILE` when git sets it, so `git commit
//!    -a`'s temporary index and partial staging both work) is checked in a worktree
//!    of its own, never in the user's tree: nothing of theirs is hidden, stashed or
//!    touched. A tree that passed before is answered from the cache (by tree and
//!    commands).
//! 2. Failing checks are delegated — unless told not to, or no agent is configured —
//!    as one run of [`crate::run`] from [`Base::Index`] (HEAD's commit with the
//!    staged tree), scoped to the staged paths, with the failing output in the
//!    handoff; the run is kept whatever its verdict (a failed fix is never stashed).
//! 3. A fix that passes lands in the index ([`land::to_index`]: the repository lock,
//!    a backup ref, an intent in the journal, then the writes).
//!
//! Also here: [`check_staged`], the checks of a staged tree that `baton commit`
//! shares, [`restore`] (the backup put back), and the hook files ([`hook`]). This
//! module decides and returns data; the command line prints.

pub mod hook;
pub mod land;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::checklist::{CheckResult, CheckStatus};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{Events, Observer, RunEvent};
use crate::git::{ChangeKind, GitError, Head, Repo};
use crate::handoff::{self, NewHandoff};
use crate::journal::{self, Journal};
use crate::outcome::Landing;
use crate::report::{
    FORMAT_VERSION, OutcomeAction, OutcomeReport, Policy, RunReport, RunSettings, Stage, Verdict,
};
use crate::run::{self, Base, Plan, Request};
use crate::scope::Scope;
use crate::settings::Settings;
use crate::{config, process, worktree};

/// Set by `baton commit` for the hooks it runs: the tree it has just verified, so
/// baton's own pre-commit hook does not check it again.
pub const VERIFIED_TREE_ENV: &str = "BATON_VERIFIED_TREE";

#[derive(Debug, thiserror::Error)]
pub enum PrecommitError {
    #[error(
        "no checks are configured for the pre-commit hook; add them to .baton/config.toml (`checks = [\"make test\"]`, or under `[precommit]`) — `baton init` detects them"
    )]
    NoChecks,
    #[error(
        "the index has unmerged paths (a merge or rebase is under way), so there is no staged tree to check; resolve them first"
    )]
    Unmerged(#[source] GitError),
    #[error(
        "run {run_id} has no backup to restore (`baton precommit` takes one only before it writes a fix)"
    )]
    NoBackup { run_id: String },
    #[error(
        "you changed {paths} since the fix was written, so baton restores nothing; put them back by hand from {reference} (`git restore --source={reference} -- PATH`)"
    )]
    ChangedSince { paths: String, reference: String },
    #[error("{}: there is already a file there that is not baton's; move it away first", path.display())]
    HookInTheWay { path: PathBuf },
    #[error("could not {what} {}", path.display())]
    HookIo {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `git commit` is about to commit.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The index file it commits from.
    pub index: PathBuf,
    pub tree: String,
    pub head: Head,
    pub head_tree: String,
    /// The paths the staged tree adds or changes against HEAD.
    pub paths: Vec<String>,
}

/// The index a commit is made from: `$GIT_INDEX_FILE` when set (git sets it for its
/// hooks: the real index, `git commit -a`'s `index.lock`, or a partial commit's
/// temporary one), taken from where baton was started as git takes it; else the
/// checkout's own index.
pub fn staged_index(repo: &Repo) -> crate::git::Result<PathBuf> {
    match std::env::var_os("GIT_INDEX_FILE").filter(|v| !v.is_empty()) {
        Some(v) => {
            let path = PathBuf::from(v);
            Ok(if path.is_absolute() {
                path
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&path))
                    .unwrap_or(path)
            })
        }
        None => repo.default_index(),
    }
}

/// Reads the staged tree (nothing of the user's is written).
pub fn read_staged(repo: &Repo) -> Result<Staged> {
    let index = staged_index(repo)?;
    let tree = repo.index_tree(&index).map_err(PrecommitError::Unmerged)?;
    let head = repo.head()?;
    let head_tree = repo.tree_of(&head.commit)?;
    let paths = if tree == head_tree {
        vec![]
    } else {
        repo.diff_trees(&head_tree, &tree)?
            .into_iter()
            .filter(|c| c.kind != ChangeKind::Deleted)
            .map(|c| c.path)
            .collect()
    };
    Ok(Staged {
        index,
        tree,
        head,
        head_tree,
        paths,
    })
}

/// How the staged tree is checked.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub checks: Vec<String>,
    pub check_timeout: Duration,
    pub kill_grace: Duration,
    pub worktrees_dir: PathBuf,
    /// Answer from the cache when this tree passed these checks before.
    pub use_cache: bool,
}

impl CheckSettings {
    /// The hook's checks: `flags` when given, else `[precommit] checks`, else the
    /// repository's checklist. None at all is refused: a hook that checks nothing
    /// would pass every commit silently.
    pub fn resolve(
        config: &Config,
        flags: &[String],
        cwd: &Path,
        root: &Path,
    ) -> std::result::Result<CheckSettings, PrecommitError> {
        let checks = if !flags.is_empty() {
            flags.to_vec()
        } else if let Some(c) = &config.precommit.checks {
            c.clone()
        } else if !config.checks.is_empty() {
            config.checks.clone()
        } else {
            Settings::list(&config.defaults.checks).to_vec()
        };
        if checks.is_empty() {
            return Err(PrecommitError::NoChecks);
        }
        Ok(CheckSettings {
            checks,
            check_timeout: config
                .defaults
                .check_timeout
                .unwrap_or(config::DEFAULT_CHECK_TIMEOUT),
            kill_grace: config
                .defaults
                .kill_grace
                .unwrap_or(config::DEFAULT_KILL_GRACE),
            worktrees_dir: config.worktrees_dir(cwd, root),
            use_cache: true,
        })
    }
}

/// The checks of one staged tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    pub tree: String,
    pub checks: Vec<CheckResult>,
    /// The run that ran them (its journal holds their logs).
    pub run_id: String,
    /// Answered from the cache: they passed on this tree before, in `run_id`.
    #[serde(default)]
    pub cached: bool,
    /// A Ctrl-C or SIGTERM stopped them.
    #[serde(default)]
    pub interrupted: bool,
}

impl Checked {
    pub fn passed(&self) -> bool {
        !self.interrupted && self.checks.iter().all(|c| c.status.passed())
    }

    /// The first check that did not pass.
    pub fn failure(&self) -> Option<&CheckResult> {
        self.checks.iter().find(|c| !c.status.passed())
    }
}

/// The cache of passing staged trees: `<common dir>/baton/cache/checks/`, one file per
/// tree and checklist. Only passes are kept; a failure is always run again (the cause
/// may be outside the tree: a tool that was missing).
mod cache {
    use super::*;

    fn key(tree: &str, checks: &[String]) -> String {
        let mut hash: u64 = 0xcbf29ce484222325;
        for b in checks.join("\0").bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x100000001b3);
        }
        format!("{tree}-{hash:016x}.json")
    }

    fn dir(repo: &Repo) -> PathBuf {
        repo.common_dir.join("baton").join("cache").join("checks")
    }

    pub fn lookup(repo: &Repo, tree: &str, checks: &[String]) -> Option<Checked> {
        let text = std::fs::read_to_string(dir(repo).join(key(tree, checks))).ok()?;
        let hit: Checked = serde_json::from_str(&text).ok()?;
        (hit.tree == tree && hit.passed()).then_some(Checked {
            cached: true,
            ..hit
        })
    }

    /// Best effort: a cache that cannot be written only costs the next run its time.
    pub fn store(repo: &Repo, checked: &Checked, checks: &[String]) {
        let dir = dir(repo);
        let Ok(text) = serde_json::to_vec_pretty(checked) else {
            return;
        };
        let _ = std::fs::create_dir_all(&dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(&dir))
            .and_then(|mut tmp| {
                std::io::Write::write_all(&mut tmp, &text)?;
                tmp.persist(dir.join(key(&checked.tree, checks)))
                    .map(drop)
                    .map_err(|e| e.error)
            });
    }
}

/// Runs the checks on the staged tree in a worktree of their own (detached at HEAD's
/// commit with that tree), as a run of the journal — `baton show` has its logs — whose
/// agent is `none`; or answers from the cache.
pub fn check_staged(
    repo: &Repo,
    staged: &Staged,
    settings: &CheckSettings,
    task: &str,
    observers: Vec<Box<dyn Observer>>,
) -> Result<Checked> {
    if settings.use_cache {
        if let Some(hit) = cache::lookup(repo, &staged.tree, &settings.checks) {
            return Ok(hit);
        }
    }
    let (run_id, journal, seq) = run::journal_for_new_run(repo)?;
    let path = worktree::location(&settings.worktrees_dir, repo, &run_id)?;
    let journal = Arc::new(journal);
    let events = Events::new(&run_id, journal.clone(), observers);
    let base = repo.commit_tree(
        &staged.tree,
        &[&staged.head.commit],
        &format!("baton: the staged tree at the start of run {run_id}\n"),
    )?;
    let mut report = RunReport {
        format_version: FORMAT_VERSION,
        run_id: run_id.clone(),
        seq,
        task: task.to_string(),
        agent: "none".into(),
        stage: Stage::Created,
        pid: std::process::id(),
        pid_start: process::own_start_time(),
        started_at: journal::now(),
        updated_at: journal::now(),
        repo: repo.root.clone(),
        base: base.clone(),
        head: staged.head.commit.clone(),
        head_branch: staged.head.branch.clone(),
        include_dirty: false,
        branch: worktree::branch_name(&run_id),
        worktree: path.clone(),
        journal: journal.dir.clone(),
        on_pass: Policy::Revert,
        on_fail: Policy::Revert,
        apply: false,
        settings: RunSettings {
            scope: vec![],
            deny: vec![],
            checks: settings.checks.clone(),
            limits: Default::default(),
            check_timeout_ms: settings.check_timeout.as_millis() as u64,
            kill_grace_ms: settings.kill_grace.as_millis() as u64,
            timeout_ms: None,
            idle_timeout_ms: None,
        },
        agent_result: None,
        tree: Some(staged.tree.clone()),
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
        sweep: None,
    };
    events.emit(RunEvent::RunStarted {
        run_id: run_id.clone(),
        task: task.to_string(),
        agent: "none".into(),
        format_version: crate::events::FORMAT_VERSION,
    })?;
    journal.write_state(&report)?;
    run::enter(&journal, &events, &mut report, Stage::Worktree)?;
    let pool = worktree::pool::PoolSettings::load(repo);
    let (wt, leased) = worktree::detached(repo, &pool, &run_id, &path, &base)?;
    let path = wt.path;
    report.worktree = path.clone();
    events.emit(RunEvent::WorktreeCreated {
        path: path.clone(),
        branch: "the staged tree".into(),
        base: base.clone(),
        attempt: 1,
        leased,
    })?;
    run::enter(&journal, &events, &mut report, Stage::Checks)?;
    let scope = Scope::compile(&[], &[])?;
    let judge = run::judge::Judge {
        repo,
        journal: &journal,
        events: &events,
        run_id: &run_id,
        scope: &scope,
        checks: &settings.checks,
        check_timeout: settings.check_timeout,
        kill_grace: settings.kill_grace,
        cancel: process::Cancel::default(),
    };
    let results = judge.run_checks(&path);
    // The worktree goes whatever the checks did: the logs are in the journal.
    worktree::retire_detached(repo, &pool, &path, &base)?;
    let results = results?;
    let checked = Checked {
        tree: staged.tree.clone(),
        interrupted: results.iter().any(|c| c.status == CheckStatus::Interrupted),
        checks: results,
        run_id: run_id.clone(),
        cached: false,
    };
    report.checks = checked.checks.clone();
    report.interrupted = checked.interrupted;
    report.verdict = if checked.checks.iter().all(|c| c.status.passed()) {
        Verdict::Passed
    } else {
        Verdict::ChecksFailed
    };
    events.emit(RunEvent::Verdict {
        verdict: report.verdict,
    })?;
    let outcome = OutcomeReport {
        action: OutcomeAction::Discarded,
        message: "the staged tree was checked; nothing to land".into(),
        commit: None,
        target: None,
        stash: None,
        paths: vec![],
    };
    run::land::finish(&journal, &events, &mut report, outcome)?;
    if checked.passed() {
        cache::store(repo, &checked, &settings.checks);
    }
    Ok(checked)
}

/// What `baton precommit` is asked to do.
pub struct Options {
    pub config: Config,
    pub checks: CheckSettings,
    /// Check and report only: never delegate a fix.
    pub no_delegate: bool,
    /// The whole hook's time budget.
    pub budget: Option<Duration>,
    /// Where baton was started.
    pub cwd: PathBuf,
}

/// Why a failing staged tree was not given to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFix {
    /// `--no-delegate`.
    NotAsked,
    /// No `[precommit] agent` nor `[defaults] agent`.
    NoAgent,
    /// The time budget ran out during the checks.
    OutOfTime,
}

/// Why a delegated fix did not land; the run is kept in each case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLanded {
    /// The fix failed its checks, its scope, or the agent failed.
    Failed,
    /// Writing it would have conflicted (the index changed, or unstaged edits of the
    /// same lines): nothing was written.
    Conflict,
    /// The time budget ran out.
    OutOfTime,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

/// What `baton precommit` found and did.
#[derive(Debug)]
pub enum Precommit {
    /// `baton commit` verified this very tree and is running the hooks.
    VerifiedByCommit {
        tree: String,
    },
    Passed(Checked),
    Failed {
        checked: Checked,
        why: NoFix,
    },
    /// The fix is in the index (and the working tree); `stop` says the commit stops
    /// anyway (`[precommit] stop_after_fix`).
    Fixed {
        checked: Checked,
        run: Box<RunReport>,
        stop: bool,
    },
    Kept {
        checked: Checked,
        run: Box<RunReport>,
        why: NotLanded,
    },
}

/// Shows a run's events but its outcome: a check run's "nothing to land", and a
/// delegated run's "kept" before it is landed (the command says what became of it).
struct Quiet(Box<dyn Observer>);

/// `observers`, each without the outcome line (see [`Quiet`]).
pub(crate) fn quiet(observers: Vec<Box<dyn Observer>>) -> Vec<Box<dyn Observer>> {
    observers
        .into_iter()
        .map(|o| Box::new(Quiet(o)) as Box<dyn Observer>)
        .collect()
}

impl Observer for Quiet {
    fn on(&mut self, run_id: &str, ts_ms: u64, event: &RunEvent) {
        if !matches!(event, RunEvent::Outcome { .. }) {
            self.0.on(run_id, ts_ms, event);
        }
    }
}

/// Marks the delegated run as a pre-commit run in its journal the moment it has one
/// (its first event), so that `baton merge RUN --apply` and `baton recover` land it in
/// the index even if this baton is killed right after.
struct MarkRun {
    common_dir: PathBuf,
    record: Option<land::Record>,
}

impl Observer for MarkRun {
    fn on(&mut self, run_id: &str, _: u64, event: &RunEvent) {
        if let (RunEvent::RunStarted { .. }, Some(record)) = (event, self.record.take()) {
            let path = journal::runs_dir(&self.common_dir)
                .join(run_id)
                .join(land::RECORD_FILE);
            if let Ok(text) = serde_json::to_vec_pretty(&record) {
                let _ = std::fs::write(path, text);
            }
        }
    }
}

/// A wall clock for the whole hook: once it runs out, every check and agent still
/// running is stopped (the process-wide cancel token, reason `Timeout`) and what was
/// started is kept.
struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    fn start(budget: Option<Duration>) -> Budget {
        let deadline = budget.filter(|d| !d.is_zero()).map(|d| Instant::now() + d);
        if let Some(deadline) = deadline {
            std::thread::spawn(move || {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                process::Cancel::process_wide().cancel(process::CancelReason::Timeout);
            });
        }
        Budget { deadline }
    }

    fn left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn spent(&self) -> bool {
        self.left().is_some_and(|d| d.is_zero())
    }
}

/// A path as a glob that matches it alone.
fn literal_glob(path: &str) -> String {
    let mut glob = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '!') {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob
}

/// The pre-commit hook: checks, a delegated fix, and its landing in the index.
/// `observers` makes the observers for each run it starts; `notify` hears the backup
/// line before anything of the user's is changed.
pub fn precommit(
    repo: &Repo,
    opts: &Options,
    observers: &dyn Fn() -> Vec<Box<dyn Observer>>,
    notify: &mut dyn FnMut(&str),
) -> Result<Precommit> {
    let budget = Budget::start(opts.budget);
    let staged = read_staged(repo)?;
    if std::env::var(VERIFIED_TREE_ENV).is_ok_and(|t| t == staged.tree) {
        return Ok(Precommit::VerifiedByCommit { tree: staged.tree });
    }
    let checked = check_staged(
        repo,
        &staged,
        &opts.checks,
        "pre-commit checks on the staged tree",
        quiet(observers()),
    )?;
    if process::interrupted() {
        return Err(Error::Interrupted);
    }
    if checked.passed() {
        return Ok(Precommit::Passed(checked));
    }
    let agent = opts
        .config
        .precommit
        .agent
        .clone()
        .or_else(|| opts.config.defaults.agent.clone());
    let why = match (&agent, opts.no_delegate, budget.spent()) {
        (_, true, _) => Some(NoFix::NotAsked),
        (None, _, _) => Some(NoFix::NoAgent),
        (_, _, true) => Some(NoFix::OutOfTime),
        _ => None,
    };
    if let Some(why) = why {
        return Ok(Precommit::Failed { checked, why });
    }
    let mut report = delegate(repo, &staged, &checked, opts, agent, &budget, observers)?;
    let why = if report.interrupted || process::interrupted() {
        Some(NotLanded::Interrupted)
    } else if budget.spent() {
        Some(NotLanded::OutOfTime)
    } else if !report.verdict.passed() {
        Some(NotLanded::Failed)
    } else {
        None
    };
    if let Some(why) = why {
        return Ok(Precommit::Kept {
            checked,
            run: Box::new(report),
            why,
        });
    }
    let journal = Arc::new(Journal::open(&repo.common_dir, &report.run_id)?);
    let tree = report.tree.clone().unwrap_or_default();
    let message = run::commit_message(&report);
    let outcome = {
        let landing = Landing::of_run(repo, &journal, &report, &tree, &message);
        land::to_index(&landing, &staged.index, notify)?
    };
    let events = Events::new(&report.run_id, journal.clone(), observers());
    let landed = outcome.action == OutcomeAction::Applied;
    run::land::finish(&journal, &events, &mut report, outcome)?;
    if landed {
        // The fixed tree is the staged tree now, and it passed these very checks: the
        // next hook on it (after `stop_after_fix`, or a message editor closed empty)
        // answers at once.
        cache::store(
            repo,
            &Checked {
                tree: tree.clone(),
                checks: report.checks.clone(),
                run_id: report.run_id.clone(),
                cached: false,
                interrupted: false,
            },
            &opts.checks.checks,
        );
    }
    let run = Box::new(report);
    Ok(if landed {
        Precommit::Fixed {
            checked,
            run,
            stop: opts.config.precommit.stop_after_fix.unwrap_or(false),
        }
    } else {
        Precommit::Kept {
            checked,
            run,
            why: NotLanded::Conflict,
        }
    })
}

/// One run of the run library from the staged tree, told what failed; kept whatever
/// its verdict.
fn delegate(
    repo: &Repo,
    staged: &Staged,
    checked: &Checked,
    opts: &Options,
    agent: Option<String>,
    budget: &Budget,
    observers: &dyn Fn() -> Vec<Box<dyn Observer>>,
) -> Result<RunReport> {
    let scope = opts
        .config
        .precommit
        .scope
        .clone()
        .unwrap_or_else(|| staged.paths.iter().map(|p| literal_glob(p)).collect());
    let failure = checked.failure();
    let context = match failure {
        Some(f) => format!(
            "The staged changes (what `git commit` is about to commit) fail the pre-commit check `{}` ({}). The last lines of its output:\n\n```\n{}\n```\n\nThis worktree holds exactly the staged tree. The fix is written back into the user's index, so change only the staged files.",
            f.command,
            f.status.name(),
            f.tail.join("\n")
        ),
        None => "The staged changes fail the pre-commit checks.".into(),
    };
    let handoff = handoff::render_new(
        &NewHandoff {
            template: "bugfix".into(),
            task: "Make the pre-commit checks pass on the staged changes".into(),
            context,
            scope: scope.clone(),
            checks: opts.checks.checks.clone(),
            requirements: vec![
                "Change only the staged files listed in Scope; do not stage, commit or reformat anything else.".into(),
            ],
            agent: agent.clone(),
            ..NewHandoff::default()
        },
        Some(&config::repo_templates(&repo.root)),
    )?;
    let timeout = match (budget.left(), opts.config.defaults.timeout) {
        (Some(left), Some(t)) if !t.is_zero() => Some(left.min(t)),
        (Some(left), _) => Some(left),
        (None, t) => t,
    };
    let flags = Settings {
        agent,
        scope: Some(scope),
        checks: Some(opts.checks.checks.clone()),
        on_pass: Some(Policy::Keep),
        on_fail: Some(Policy::Keep),
        // A retry or a fallback sets the earlier attempt aside as a stash entry: from
        // inside a hook, the user's stash is not baton's to fill. Repair rounds (the
        // same worktree) are fine.
        retries: Some(0),
        fallback: Some(vec![]),
        timeout,
        ..Settings::default()
    };
    let plan = Plan::resolve(
        opts.config.clone(),
        Request {
            flags,
            handoff,
            base: Base::Index(staged.tree.clone()),
            apply: true,
            cwd: opts.cwd.clone(),
            repo_root: repo.root.clone(),
            worktrees_dir: Some(opts.checks.worktrees_dir.clone()),
        },
    )?;
    let mut shown: Vec<Box<dyn Observer>> = vec![Box::new(MarkRun {
        common_dir: repo.common_dir.clone(),
        record: Some(land::Record {
            format_version: 1,
            index: staged.index.clone(),
            staged_tree: staged.tree.clone(),
            staged_paths: staged.paths.clone(),
        }),
    })];
    shown.extend(quiet(observers()));
    run::run(repo, &plan, shown, &mut |r| run::default_policy(r))
}

/// What [`restore`] put back.
#[derive(Debug)]
pub struct Restored {
    pub reference: String,
    pub paths: Vec<String>,
}

/// Puts back what the backup of run `query` holds: the index's entries and the
/// working-tree files at the paths its fix touched. A file changed since the fix was
/// written (neither the backup's content nor the fix's) is not overwritten: nothing
/// is restored, and the error names it.
pub fn restore(repo: &Repo, query: &str) -> Result<Restored> {
    let journal = Journal::open(&repo.common_dir, query)?;
    // A baton killed while it wrote the fix left an intent (and its lock on the
    // index): that is settled first, as `baton recover` would.
    if crate::recover::needs_recovery(&journal.read_state()?, &journal) {
        crate::recover::recover(repo, &journal)?;
    }
    let report = journal.read_state()?;
    let reference = land::backup_ref(&report.run_id);
    let Some(backup) = repo.ref_target(&reference) else {
        return Err(PrecommitError::NoBackup {
            run_id: report.run_id,
        }
        .into());
    };
    let _lock = journal::RepoLock::acquire(&repo.common_dir)?;
    let index_tree = repo.tree_of(&format!("{backup}^2"))?;
    let files_tree = repo.tree_of(&backup)?;
    let fixed = report.tree.clone().unwrap_or_default();
    let mut paths: Vec<String> = vec![];
    for c in repo.diff_trees(&repo.tree_of(&report.base)?, &fixed)? {
        paths.push(c.path);
        paths.extend(c.old_path);
    }
    paths.sort();
    paths.dedup();
    let index_entries = repo.tree_entries(&index_tree, &paths)?;
    let file_entries = repo.tree_entries(&files_tree, &paths)?;
    let fixed_entries = repo.tree_entries(&fixed, &paths)?;
    let written: Option<land::IndexWrite> = std::fs::read_to_string(journal.path(land::WRITE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut changed = vec![];
    let mut files = BTreeMap::new();
    let mut entries = BTreeMap::new();
    for p in &paths {
        let now = repo.worktree_entry(p).filter(|e| e.mode != "040000");
        let baton_wrote = written
            .as_ref()
            .and_then(|w| w.after.get(p))
            .is_some_and(|e| e.as_ref() == now.as_ref());
        let backed_up = file_entries.get(p);
        if now.as_ref() != backed_up && now.as_ref() != fixed_entries.get(p) && !baton_wrote {
            changed.push(crate::ui::quote_path(p).into_owned());
        }
        files.insert(p.clone(), backed_up.cloned());
        entries.insert(p.clone(), index_entries.get(p).cloned());
    }
    if !changed.is_empty() {
        return Err(PrecommitError::ChangedSince {
            paths: changed.join(", "),
            reference,
        }
        .into());
    }
    land::write_worktree(repo, &files)?;
    let index = staged_index(repo)?;
    repo.lock_index(&index)?.commit(repo, &entries)?;
    Ok(Restored { reference, paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_path_becomes_a_glob_that_matches_it_alone() {
        let paths = ["src/a[1].rs", "docs/*.md", "weird{x}?.txt", "back\\slash"];
        let globs: Vec<String> = paths.iter().map(|p| literal_glob(p)).collect();
        let scope = Scope::compile(&globs, &[]).unwrap();
        for p in paths {
            assert!(
                !scope.judge_path(p).is_violation(),
                "{p} is in its own scope"
            );
        }
        for other in ["src/a1.rs", "docs/readme.md", "weirdxx.txt"] {
            assert!(scope.judge_path(other).is_violation(), "{other} is not");
        }
    }
}

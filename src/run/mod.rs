//! The run as a library: one delegation, as phases with plain data between them.
//!
//! ```text
//! Plan ──► worktree ──► attempt ──► judge ──► strategy: retry | fallback | repair | stop
//!  │                    AgentStep   Evidence                                  │
//!  └ Base: Head | Rev | Dirty | Index                   land(policy, target) ◄┘
//! events: one RunEvent stream ──► journal · terminal · --json --stream
//! ```
//!
//! - [`plan`] resolves flags > handoff > config once into a validated [`Plan`];
//! - [`attempt`] runs one agent in one worktree → an [`attempt::AgentStep`];
//! - [`judge`] snapshots, scopes and checks a worktree against its base, told whether
//!   the worktree is fresh → [`judge::Evidence`];
//! - [`strategy`] is pure: given the rounds so far, what next;
//! - [`land`] carries out a policy now or later, with typed refusals.
//!
//! This module is the driver that follows them for `baton run` and `baton resume`.
//! Every fact is an event ([`crate::events`]); the journal records every hand-over
//! before the next phase acts. The verdict is data in the [`RunReport`]; an `Err`
//! means baton itself could not do its job.

pub mod attempt;
pub mod judge;
pub mod land;
pub mod plan;
pub mod strategy;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::{AgentContext, AgentSpec};
use crate::config::Config;
use crate::error::{Error, Result, RunFailed};
use crate::events::{Events, Observer, RunEvent};
use crate::git::Repo;
use crate::journal::{self, Journal};
use crate::outcome::{self, Landing};
use crate::report::{
    AgentStatus, Attempt, AttemptEvidence, FORMAT_VERSION, FailureClass, Policy, RunReport, Stage,
    Verdict,
};
use crate::scope::Scope;
use crate::{process, worktree};

pub use land::{Refusal, Target, commit_message, default_policy, land, land_later};
pub use plan::{Base, Plan, Request};

use attempt::AgentStep;
use judge::{AgentEnd, Evidence, Freshness, Judge};
use strategy::{Next, Round};

/// Decides the outcome when the user asked to be asked; otherwise the policy stands.
pub type Decide<'a> = &'a mut dyn FnMut(&RunReport) -> Policy;

/// A new id for a run (or a group of runs): the date and time, and a random part.
pub fn new_run_id() -> String {
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

pub(crate) fn journal_for_new_run(repo: &Repo) -> Result<(String, Journal, u64)> {
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

/// The commit a run's worktree starts from, and whether it carries the user's
/// uncommitted work.
fn base_commit(repo: &Repo, base: &Base, head: &str, run_id: &str) -> Result<(String, bool)> {
    Ok(match base {
        Base::Head => (head.to_string(), false),
        Base::Rev(rev) => (repo.resolve_commit(rev)?, false),
        Base::Dirty => match worktree::dirty_base(repo, head, run_id)? {
            Some(snapshot) => (snapshot, true),
            None => (head.to_string(), false),
        },
        Base::Index(tree) => {
            let message = format!("baton: the staged tree at the start of run {run_id}\n");
            (repo.commit_tree(tree, &[head], &message)?, false)
        }
    })
}

/// One run being driven: its plan, its journal and event stream, and its report.
struct Driver<'a> {
    repo: &'a Repo,
    plan: &'a Plan,
    journal: Arc<Journal>,
    events: Arc<Events>,
    report: RunReport,
    /// The rounds so far, as the strategy sees them.
    rounds: Vec<Round>,
}

impl Driver<'_> {
    /// A stage change: recorded in the journal before the stage acts.
    fn enter(&mut self, stage: Stage) -> Result<()> {
        enter(&self.journal, &self.events, &mut self.report, stage)
    }
}

/// A stage change of `report`: journaled and its state written before the stage acts.
pub(crate) fn enter(
    journal: &Journal,
    events: &Events,
    report: &mut RunReport,
    stage: Stage,
) -> Result<()> {
    report.stage = stage;
    report.updated_at = journal::now();
    events.emit(RunEvent::Stage { stage })?;
    journal.write_state(report)?;
    Ok(())
}

/// Runs one delegation from start to outcome, showing its events to `observers`.
pub fn run(
    repo: &Repo,
    plan: &Plan,
    observers: Vec<Box<dyn Observer>>,
    decide: Decide,
) -> Result<RunReport> {
    process::runtime::block_on(run_async(repo, plan, observers, decide)).map_err(|source| {
        Error::Io {
            context: "could not start the runtime that supervises the agent".into(),
            source,
        }
    })?
}

/// [`run`] as a task of the runtime it is awaited on: its agent and checks supervised
/// there, its long git work (the worktree, the snapshot, the diff) on the runtime's
/// blocking threads, so many runs share one thread ([`process::runtime::Local`]).
pub async fn run_async(
    repo: &Repo,
    plan: &Plan,
    observers: Vec<Box<dyn Observer>>,
    decide: Decide<'_>,
) -> Result<RunReport> {
    // The run's start (reading HEAD and the identity, the journal, the handoff) is
    // git and file work: off the thread that supervises other runs' children.
    let (r, p) = (repo.clone(), plan.clone());
    let Begun {
        journal,
        events,
        report,
    } = process::runtime::blocking(move || begin(&r, &p, observers)).await?;
    let mut driver = Driver {
        repo,
        plan,
        journal,
        events,
        report,
        rounds: vec![],
    };
    let result = match driver.start() {
        Ok(()) => driver.stages(decide).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(driver.report),
        Err(e) => Err(driver.stopped(e)),
    }
}

/// A run that has begun: its journal, event stream and first report.
struct Begun {
    journal: Arc<Journal>,
    events: Arc<Events>,
    report: RunReport,
}

/// Everything of a run's start that can be refused is refused before anything is
/// created; then its journal, its handoff and its first report.
fn begin(repo: &Repo, plan: &Plan, observers: Vec<Box<dyn Observer>>) -> Result<Begun> {
    let head = repo.head()?;
    if let Base::Rev(rev) = &plan.base {
        repo.resolve_commit(rev)?;
    }
    repo.check_identity()?;
    let (run_id, journal, seq) = journal_for_new_run(repo)?;
    let wt_path = match worktree::location(&plan.worktrees_dir, repo, &run_id) {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&journal.dir);
            return Err(e.into());
        }
    };
    let journal = Arc::new(journal);
    let events = Arc::new(Events::new(&run_id, journal.clone(), observers));
    let task = plan.task().to_string();
    journal.write_file(journal::HANDOFF_FILE, plan.handoff.to_document().as_bytes())?;

    let report = RunReport {
        format_version: FORMAT_VERSION,
        run_id: run_id.clone(),
        seq,
        task: task.clone(),
        agent: plan.agents[0].label(),
        stage: Stage::Created,
        pid: std::process::id(),
        pid_start: process::own_start_time(),
        started_at: journal::now(),
        updated_at: journal::now(),
        repo: repo.root.clone(),
        base: head.commit.clone(),
        head: head.commit.clone(),
        head_branch: head.branch.clone(),
        include_dirty: false,
        branch: worktree::branch_name(&run_id),
        worktree: wt_path,
        journal: journal.dir.clone(),
        on_pass: plan.on_pass,
        on_fail: plan.on_fail,
        apply: plan.apply,
        settings: plan.settings.clone(),
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
        sweep: plan.sweep.clone(),
    };
    Ok(Begun {
        journal,
        events,
        report,
    })
}

impl Driver<'_> {
    fn start(&mut self) -> Result<()> {
        self.events.emit(RunEvent::RunStarted {
            run_id: self.report.run_id.clone(),
            task: self.report.task.clone(),
            agent: self.report.agent.clone(),
            format_version: crate::events::FORMAT_VERSION,
        })?;
        if let Some(choice) = &self.plan.routed {
            self.events.emit(RunEvent::Routed {
                agent: choice.agent.clone(),
                rule: choice.rule,
                why: choice.why.clone(),
            })?;
        }
        self.journal.write_state(&self.report)?;
        Ok(())
    }

    /// Records where and why the run stopped (`baton status` shows it), and turns
    /// the error into what the command line reports.
    fn stopped(mut self, e: Error) -> Error {
        self.report.error = Some(e.to_string());
        self.report.updated_at = journal::now();
        let _ = self.events.emit(RunEvent::RunError {
            error: self.report.error.clone(),
            stage: self.report.stage,
        });
        let _ = self.journal.write_state(&self.report);
        if process::interrupted() {
            return Error::Interrupted;
        }
        Error::RunFailed(RunFailed {
            run_id: self.report.run_id.clone(),
            stage: self.report.stage,
            journal: self.journal.dir.clone(),
            error: Box::new(e),
        })
    }

    async fn stages(&mut self, decide: Decide<'_>) -> Result<()> {
        let plan = self.plan;
        let run_id = self.report.run_id.clone();
        let first_worktree = self.report.worktree.clone();
        self.enter(Stage::Worktree)?;
        let (base, dirty) = base_commit(self.repo, &plan.base, &self.report.head, &run_id)?;
        self.report.base = base.clone();
        self.report.include_dirty = dirty;
        if dirty {
            self.events.emit(RunEvent::DirtyBase { base })?;
        }
        let prompt = self
            .journal
            .write_file(journal::PROMPT_FILE, plan.handoff.body.as_bytes())?;
        let limits = strategy::Limits {
            agents: plan.agents.len(),
            retries: plan.retries,
            repair: plan.repair,
            fallback_on: plan.fallback_on.clone(),
        };
        let mut agent_index = 0;
        let mut number = 0u32;
        loop {
            // A new attempt: a fresh worktree from the same base, so attempts never mix.
            number += 1;
            let agent = &plan.agents[agent_index];
            if number > 1 {
                self.report.branch = format!("{}-a{number}", worktree::branch_name(&run_id));
                self.report.worktree =
                    PathBuf::from(format!("{}-a{number}", first_worktree.display()));
                self.report.agent = agent.label();
                self.report.checks.clear();
                self.report.scope = None;
                self.report.verdict = Verdict::Pending;
            }
            let (leased, setup_ran) = self.new_prepared_worktree(number).await?;
            let log = if number == 1 {
                self.journal.path(journal::AGENT_LOG)
            } else {
                self.journal.path(&format!("agent-{number}.log"))
            };
            let mut ctx = self.context(prompt.clone(), None, log);
            // Only git has written a new worktree (seeding writes only what git
            // ignores): the judge may trust its stat data. A leased one was written by
            // earlier runs, and a setup command may have written anything: git's
            // racy-file rules apply.
            let mut fresh = !leased && !setup_ran;
            let mut repair_round = 0;
            let next = loop {
                self.round(agent, &ctx, fresh, agent_index, number, repair_round)
                    .await?;
                let next = strategy::next(&self.rounds, &limits);
                let Next::Repair { round } = next else {
                    break next;
                };
                // Resume the same session in the same worktree, told what failed.
                let session = self
                    .report
                    .agent_result
                    .as_ref()
                    .and_then(|a| a.session.clone())
                    .unwrap_or_default();
                let text = repair_prompt(&self.report, round, plan.repair)?;
                let prompt = self
                    .journal
                    .write_file(&format!("repair-{number}-{round}.md"), text.as_bytes())?;
                self.events.emit(RunEvent::Repair {
                    attempt: number,
                    round,
                    rounds: plan.repair,
                    agent: agent.label(),
                    session: session.clone(),
                })?;
                self.report.checks.clear();
                let log = self
                    .journal
                    .path(&format!("agent-{number}-repair-{round}.log"));
                ctx = self.context(prompt, Some(session), log);
                fresh = false;
                repair_round = round;
            };
            let last = self.report.attempts.last().cloned();
            self.events.emit(RunEvent::Attempt { attempt: last })?;
            match next {
                Next::Stop | Next::Repair { .. } => break,
                Next::Retry { after } => {
                    self.set_aside()?;
                    let class = self.rounds.last().map(|r| r.class).unwrap_or_default();
                    self.events.emit(RunEvent::Retry {
                        agent: agent.label(),
                        class: class.name().into(),
                        after_ms: after.as_millis() as u64,
                    })?;
                    tokio::time::sleep(after).await;
                }
                Next::Fallback { agent: to } => {
                    self.set_aside()?;
                    let class = self.rounds.last().map(|r| r.class).unwrap_or_default();
                    self.events.emit(RunEvent::Fallback {
                        from: agent.label(),
                        class: class.name().into(),
                        to: plan.agents[to].label(),
                    })?;
                    agent_index = to;
                }
            }
        }
        self.conclude(decide)
    }

    /// The worktree of a new attempt, leased or created, and prepared
    /// ([`Setup::new_worktree`], [`Setup::prepare`]), off the thread that supervises
    /// children: a checkout of a large tree or a seeding copy takes a while. Returns
    /// whether it was leased and whether a setup command ran.
    async fn new_prepared_worktree(&mut self, number: u32) -> Result<(bool, bool)> {
        let mut setup = Setup {
            repo: self.repo.clone(),
            plan: self.plan.clone(),
            journal: self.journal.clone(),
            events: self.events.clone(),
            report: self.report.clone(),
        };
        let (setup, done) = process::runtime::blocking(move || {
            let done = setup.new_prepared_worktree(number);
            (setup, done)
        })
        .await;
        self.report = setup.report;
        done
    }
}

/// What preparing a new attempt's worktree needs, owned: it runs off the thread that
/// supervises children.
struct Setup {
    repo: Repo,
    plan: Plan,
    journal: Arc<Journal>,
    events: Arc<Events>,
    report: RunReport,
}

impl Setup {
    fn new_prepared_worktree(&mut self, number: u32) -> Result<(bool, bool)> {
        let (wt, leased_from) = self.new_worktree()?;
        let leased = leased_from.is_some();
        self.events.emit(RunEvent::WorktreeCreated {
            path: wt.path.clone(),
            branch: wt.branch.clone(),
            base: wt.base.clone(),
            attempt: number,
            leased,
        })?;
        let setup_ran = self.prepare(&wt, number, leased_from.as_deref())?;
        Ok((leased, setup_ran))
    }

    /// The worktree of a new attempt, at the report's base on the report's branch:
    /// leased from the pool when it has one free (with the commit it held), else
    /// created where the report says. A lease is journaled (the report names the
    /// pooled worktree) before the worktree is moved, so a killed baton's `recover`
    /// finds it.
    fn new_worktree(&mut self) -> Result<(worktree::Worktree, Option<String>)> {
        let name = self.report.branch.trim_start_matches("baton/").to_string();
        let settings = worktree::pool::PoolSettings::of(&self.plan.config, &self.repo.root);
        if let Some(claim) = worktree::pool::claim(&self.repo, &settings, &self.report.run_id)? {
            let planned = std::mem::replace(&mut self.report.worktree, claim.path.clone());
            self.journal.write_state(&self.report)?;
            process::crash_point("pool.claimed");
            let reason = worktree::run_lock_reason(&name);
            let held = claim.commit.clone();
            match claim.check_out(
                &self.repo,
                Some(&self.report.branch),
                &self.report.base,
                &reason,
                false,
            ) {
                Ok(wt) => return Ok((wt, Some(held))),
                Err(e) => {
                    // The pool is a cache: a worktree it cannot move is removed, and
                    // the run goes on in a new one.
                    self.events.emit(RunEvent::Warning {
                        message: format!(
                            "a pooled worktree could not be reused ({e}); creating a new one"
                        ),
                    })?;
                    self.report.worktree = planned;
                    self.journal.write_state(&self.report)?;
                }
            }
        }
        let wt = worktree::create(&self.repo, &self.report.worktree, &name, &self.report.base)?;
        Ok((wt, None))
    }

    /// Seeds a new worktree with the checkout's build directories and runs its setup
    /// commands (`[worktree] warm`, `setup`); a worktree leased from the pool, which
    /// has its own build directories, runs only the setup commands whose files
    /// differ between the commit it held (`leased_from`) and its base. Each step is
    /// an event. True when a setup command ran. A worktree whose setup failed is
    /// removed (nobody's work is in it yet), never returned to the pool.
    fn prepare(
        &mut self,
        wt: &worktree::Worktree,
        attempt: u32,
        leased_from: Option<&str>,
    ) -> Result<bool> {
        let prepared = self.prepare_steps(wt, attempt, leased_from);
        if prepared.is_err() {
            let _ = worktree::remove(&self.repo, &wt.path, &wt.branch);
        }
        prepared
    }

    fn prepare_steps(
        &mut self,
        wt: &worktree::Worktree,
        attempt: u32,
        leased_from: Option<&str>,
    ) -> Result<bool> {
        use worktree::warm::{self, SetupOptions, Step};
        if self.plan.warm.is_empty() {
            return Ok(false);
        }
        let journal = self.journal.clone();
        let log = move |i: usize| journal.path(&format!("setup-{attempt}-{i}.log"));
        let opts = SetupOptions {
            timeout: Some(self.plan.check_timeout),
            grace: self.plan.kill_grace,
            log: Some(&log),
            cancel: self.plan.cancel.clone().unwrap_or_default(),
        };
        let events = &self.events;
        let mut emitted = Ok(());
        if let Some(held) = leased_from {
            let changed = self.repo.changed_paths(held, &wt.base)?;
            let ran = warm::run_setup(
                &self.plan.warm,
                &wt.path,
                warm::SetupWhen::Leased { changed: &changed },
                &opts,
                &mut |s| {
                    if emitted.is_ok() {
                        emitted = events.emit(RunEvent::Setup {
                            command: s.command.clone(),
                            ms: s.duration.as_millis() as u64,
                        });
                    }
                },
            )?;
            emitted?;
            return Ok(!ran.is_empty());
        }
        let prepared = warm::prepare_new(
            &self.plan.warm,
            &self.repo.root,
            &wt.path,
            &opts,
            &mut |step| {
                let event = match step {
                    Step::Seeded(s) => RunEvent::Warmed {
                        entry: s.entry.clone(),
                        method: s.method,
                        files: s.files,
                        bytes: s.bytes,
                        ms: s.duration.as_millis() as u64,
                        reason: s.reason.clone(),
                    },
                    Step::Setup(s) => RunEvent::Setup {
                        command: s.command.clone(),
                        ms: s.duration.as_millis() as u64,
                    },
                };
                if emitted.is_ok() {
                    emitted = events.emit(event);
                }
            },
        );
        let prepared = prepared?;
        emitted?;
        Ok(!prepared.setup.is_empty())
    }
}

impl Driver<'_> {
    /// The agent's context for one round in the current worktree.
    fn context(&self, prompt: PathBuf, resume: Option<String>, log: PathBuf) -> AgentContext {
        AgentContext {
            run_id: self.report.run_id.clone(),
            worktree: self.report.worktree.clone(),
            handoff: self.journal.path(journal::HANDOFF_FILE),
            prompt,
            resume,
            timeout: self.plan.timeout,
            idle_timeout: self.plan.idle_timeout,
            kill_grace: self.plan.kill_grace,
            log,
            cancel: self.plan.cancel.clone().unwrap_or_default(),
        }
    }

    /// One round: the agent, then the judge, into the report and the rounds.
    async fn round(
        &mut self,
        agent: &AgentSpec,
        ctx: &AgentContext,
        fresh: bool,
        agent_index: usize,
        number: u32,
        repair: u32,
    ) -> Result<()> {
        let backend = agent.backend(&self.plan.config)?;
        let config = judge_settings(self.plan);
        round(
            self.repo,
            &self.journal,
            &self.events,
            &mut self.report,
            &config,
            backend.as_ref(),
            ctx,
            fresh,
        )
        .await?;
        let class = self
            .report
            .agent_result
            .as_ref()
            .map(|a| a.class)
            .unwrap_or_default();
        self.rounds.push(Round {
            agent: agent_index,
            repair,
            class,
            verdict: self.report.verdict,
            session: self
                .report
                .agent_result
                .as_ref()
                .is_some_and(|a| a.session.is_some()),
            interrupted: self.report.interrupted,
        });
        let record = attempt_record(&self.report, number, repair, &agent.label());
        self.report.attempts.push(record);
        Ok(())
    }

    /// Keeps a failed attempt's change (its patch in the journal, and a stash when it
    /// changed anything) and drops its worktree, before the next attempt starts afresh.
    fn set_aside(&mut self) -> Result<()> {
        let report = &mut self.report;
        let number = report.attempts.len();
        let journal = &self.journal;
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
            ..Landing::of_run(self.repo, journal, report, &tree, &message)
        };
        let changed = self
            .repo
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
            if let Some(e) = a.evidence.as_mut() {
                e.patch = Some(journal.path(&format!("attempt-{number}.patch")));
            }
        }
        journal.write_state(report)?;
        journal.done()?;
        Ok(())
    }

    /// The outcome of a judged run, by policy (or by asking).
    fn conclude(&mut self, decide: Decide) -> Result<()> {
        conclude(
            self.repo,
            &self.journal,
            &self.events,
            &mut self.report,
            decide,
        )
    }
}

/// What the judge of a round is given, from a plan or a kept run's settings.
struct JudgeSettings {
    scope: Scope,
    checks: Vec<String>,
    check_timeout: Duration,
    kill_grace: Duration,
}

fn judge_settings(plan: &Plan) -> JudgeSettings {
    JudgeSettings {
        scope: plan.scope.clone(),
        checks: plan.settings.checks.clone(),
        check_timeout: plan.check_timeout,
        kill_grace: plan.kill_grace,
    }
}

/// agent → judge, in an existing worktree, into the run's report. `fresh` says the
/// worktree was made for this round and nobody but git wrote it before the agent.
#[allow(clippy::too_many_arguments)]
async fn round(
    repo: &Repo,
    journal: &Journal,
    events: &Events,
    report: &mut RunReport,
    settings: &JudgeSettings,
    backend: &dyn crate::agent::Backend,
    ctx: &AgentContext,
    fresh: bool,
) -> Result<()> {
    // The last round's judgement is in its attempt record; the stage writes of this
    // round do not carry its (possibly huge) path list again.
    report.scope = None;
    report.checks.clear();
    enter(journal, events, report, Stage::Agent)?;
    let step: AgentStep =
        attempt::attempt(repo, events, &report.agent, backend, ctx, &report.branch).await?;
    report.warnings.extend(step.warnings.iter().cloned());
    report.interrupted |= step.report.status == AgentStatus::Interrupted;
    let agent = AgentEnd {
        ok: step.report.status == AgentStatus::Succeeded,
        interrupted: report.interrupted,
    };
    report.agent_result = Some(step.report.clone());

    let run_id = report.run_id.clone();
    let judge = Judge {
        repo,
        journal,
        events,
        run_id: &run_id,
        scope: &settings.scope,
        checks: &settings.checks,
        check_timeout: settings.check_timeout,
        kill_grace: settings.kill_grace,
        // The checks stop with their round's agent.
        cancel: ctx.cancel.clone(),
    };
    // The checkout's stat data can be trusted only in a worktree nobody but the agent
    // of this round has touched since it was made.
    let freshness = if fresh && !step.link_broken {
        Freshness::Fresh {
            since: step.started,
        }
    } else {
        Freshness::Used
    };
    let worktree = report.worktree.clone();
    let base = report.base.clone();
    let tree = judge.snapshot_async(&worktree, freshness).await?;
    report.tree = Some(tree.clone());
    // Writes outside the tree that the snapshot cannot show: the worktree's link to
    // the repository, and the git directory's config, hooks and info.
    let outside: Vec<String> = step
        .link_broken
        .then(|| ".git".to_string())
        .into_iter()
        .chain(step.restored.iter().cloned())
        .collect();
    let evidence: Evidence = judge
        .judge_async(&worktree, &base, tree, agent, &outside, &mut |stage| {
            enter(journal, events, report, stage)
        })
        .await?;
    if let Some(a) = report
        .agent_result
        .as_mut()
        .filter(|a| a.class == FailureClass::Ok && !evidence.has_change())
    {
        a.class = FailureClass::NoChange;
    }
    report.interrupted |= evidence.interrupted;
    report.verdict = evidence.verdict;
    report.checks = evidence.checks;
    report.scope = Some(evidence.scope);
    report.tree = Some(evidence.tree);
    Ok(())
}

pub(crate) fn attempt_record(report: &RunReport, number: u32, round: u32, agent: &str) -> Attempt {
    let class = report
        .agent_result
        .as_ref()
        .map(|a| a.class)
        .unwrap_or_default();
    Attempt {
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
        evidence: Some(AttemptEvidence {
            tree: report.tree.clone(),
            checks: report.checks.clone(),
            files: report.scope.as_ref().map_or(0, |s| s.paths.len()),
            violations: report.scope.as_ref().map_or(0, |s| s.violations),
            scope: report
                .scope
                .as_ref()
                .map(|s| s.summary())
                .unwrap_or_default(),
            patch: None,
        }),
        stage: None,
    }
}

/// The follow-up of a repair round (or of `baton resume`): the failing checks with the
/// tail of their output, and the paths out of scope with the rule.
pub fn repair_prompt(report: &RunReport, round: u32, rounds: u32) -> Result<String> {
    use crate::checklist::CheckStatus;
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

/// The outcome of a judged run, by policy (or by asking).
fn conclude(
    repo: &Repo,
    journal: &Journal,
    events: &Events,
    report: &mut RunReport,
    decide: Decide,
) -> Result<()> {
    enter(journal, events, report, Stage::Outcome)?;
    let policy = if report.verdict == Verdict::NoChange {
        Policy::Revert
    } else {
        decide(report)
    };
    let outcome = land(
        repo,
        report,
        journal,
        policy,
        Target::of_apply(report.apply),
    )?;
    land::finish(journal, events, report, outcome)?;
    Ok(())
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
/// then verifies and decides again — the same attempt, judge and land as a run.
pub fn resume(
    repo: &Repo,
    journal: Arc<Journal>,
    opts: ResumeOptions,
    observers: Vec<Box<dyn Observer>>,
    decide: Decide,
) -> Result<RunReport> {
    continue_with(repo, journal, opts, None, observers, decide)
}

/// Another agent taking over a kept run's worktree (a pipeline's next stage), in a
/// session of its own (`None`: a new one).
pub struct Handover {
    pub agent: AgentSpec,
    pub session: Option<String>,
}

/// [`resume`], or with `handover` another agent's round in the same kept worktree:
/// the same attempt, judge (told the worktree is used) and land as a run.
pub fn continue_with(
    repo: &Repo,
    journal: Arc<Journal>,
    opts: ResumeOptions,
    handover: Option<Handover>,
    observers: Vec<Box<dyn Observer>>,
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
    let (agent, session) = match handover {
        Some(h) => (h.agent, h.session),
        None => {
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
            (AgentSpec::parse(&report.agent)?, Some(session))
        }
    };
    report.agent = agent.label();
    let backend = agent.backend(&opts.config)?;
    let s = report.settings.clone();
    let settings = JudgeSettings {
        scope: Scope::compile(&s.scope, &s.deny)?.with_limits(s.limits),
        checks: s.checks.clone(),
        check_timeout: Duration::from_millis(s.check_timeout_ms),
        kill_grace: Duration::from_millis(s.kill_grace_ms),
    };
    let events = Events::new(&report.run_id, journal.clone(), observers);
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
    events.emit(RunEvent::Resume {
        session: session.clone().unwrap_or_default(),
        resumes: report.resumes,
        agent: report.agent.clone(),
        worktree: report.worktree.clone(),
    })?;
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let ctx = AgentContext {
        run_id: report.run_id.clone(),
        worktree: report.worktree.clone(),
        handoff: journal.path(journal::HANDOFF_FILE),
        prompt,
        resume: session,
        timeout: opts.timeout.or(ms(s.timeout_ms)),
        idle_timeout: opts.idle_timeout.or(ms(s.idle_timeout_ms)),
        kill_grace: Duration::from_millis(s.kill_grace_ms),
        log: journal.path(&format!("agent-resume-{}.log", report.resumes)),
        cancel: process::Cancel::default(),
    };
    let apply = report.apply;
    // A resumed worktree was written before: the judge is told it is not fresh.
    let judged = process::runtime::block_on(round(
        repo,
        &journal,
        &events,
        &mut report,
        &settings,
        backend.as_ref(),
        &ctx,
        false,
    ))
    .map_err(|source| Error::Io {
        context: "could not start the runtime that supervises the agent".into(),
        source,
    });
    let result = judged
        .and_then(|r| r.and_then(|()| conclude(repo, &journal, &events, &mut report, decide)));
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

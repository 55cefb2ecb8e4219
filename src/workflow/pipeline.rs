//! Pipeline: stages run one after another in one worktree, from `--stage
//! AGENT:TEMPLATE` or a pipeline file, and the review verdict a review stage must
//! answer with, validated failing closed.
//!
//! This module owns what a pipeline *is*, what a review *said*, and the order of the
//! stages: the first stage is a run ([`run::run`], kept), every later one another
//! agent's round in the same worktree ([`run::continue_with`]), a blocked review sends
//! its findings back to the implementing agent for at most `rounds` repair rounds, and
//! the whole lands once ([`run::land_later`]) as one commit naming every stage's agent.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::agent::AgentSpec;
use crate::error::Error;
use crate::events::{Events, Observer};
use crate::git::Repo;
use crate::handoff::{Handoff, NewHandoff};
use crate::journal::Journal;
use crate::report::{Policy, RunReport, StageTag, Verdict};
use crate::run::judge::{self, AgentEnd, Freshness, Judge};
use crate::run::{self, Handover, Plan, ResumeOptions, Target};
use crate::scope::Scope;

/// Repair rounds of a blocked review when the stage says nothing.
pub const DEFAULT_ROUNDS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("--stage `{0}` is not AGENT:TEMPLATE (like `codex:implement` or `claude:review`)")]
    BadStage(String),
    #[error(
        "a pipeline needs at least one stage; give --stage AGENT:TEMPLATE or a [[stage]] table"
    )]
    NoStages,
    #[error("stage {number} gives both `template` and `handoff`; a stage has one or the other")]
    TemplateAndHandoff { number: usize },
    #[error("the pipeline file is not valid")]
    File(#[source] toml::de::Error),
    #[error(transparent)]
    Run(#[from] Error),
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Error {
        match e {
            PipelineError::Run(e) => e,
            other => {
                let mut text = other.to_string();
                if let Some(cause) = std::error::Error::source(&other) {
                    text.push_str(&format!(": {cause}"));
                }
                Error::Usage(text)
            }
        }
    }
}

impl From<crate::handoff::HandoffError> for PipelineError {
    fn from(e: crate::handoff::HandoffError) -> PipelineError {
        PipelineError::Run(e.into())
    }
}

impl From<crate::agent::AgentError> for PipelineError {
    fn from(e: crate::agent::AgentError) -> PipelineError {
        PipelineError::Run(e.into())
    }
}

impl From<crate::journal::JournalError> for PipelineError {
    fn from(e: crate::journal::JournalError) -> PipelineError {
        PipelineError::Run(e.into())
    }
}

impl From<crate::scope::ScopeError> for PipelineError {
    fn from(e: crate::scope::ScopeError) -> PipelineError {
        PipelineError::Run(e.into())
    }
}

impl From<crate::git::GitError> for PipelineError {
    fn from(e: crate::git::GitError) -> PipelineError {
        PipelineError::Run(e.into())
    }
}

/// Why a review stage's answer is not a verdict. Every one of them fails the stage:
/// a reviewer that did not say "pass" in the agreed form has not passed the change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the review gave no JSON verdict")]
    Missing,
    #[error("the review's JSON verdict is malformed: {0}")]
    Malformed(String),
}

/// One stage: who does it, and with which handoff.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub agent: String,
    /// A built-in or repository template; `implement` when neither this nor `handoff`
    /// is given.
    #[serde(default)]
    pub template: Option<String>,
    /// A handoff file of its own instead of a template.
    #[serde(default)]
    pub handoff: Option<std::path::PathBuf>,
    /// This stage's checks, after the pipeline's.
    #[serde(default)]
    pub checks: Vec<String>,
    /// This stage's scope, added to the pipeline's.
    #[serde(default)]
    pub scope: Vec<String>,
    /// Repair rounds of a blocked review (default [`DEFAULT_ROUNDS`]).
    #[serde(default)]
    pub rounds: Option<u32>,
}

impl Stage {
    /// `codex:implement`, `claude:review`: the template is after the last `:`, so a
    /// `cmd:` agent keeps its own colons (`cmd:./fix.sh:tests`).
    pub fn parse(text: &str) -> Result<Stage, PipelineError> {
        let bad = || PipelineError::BadStage(text.to_string());
        let (agent, template) = text.rsplit_once(':').ok_or_else(bad)?;
        if agent.trim().is_empty() || agent == "cmd" || template.trim().is_empty() {
            return Err(bad());
        }
        Ok(Stage {
            agent: agent.trim().to_string(),
            template: Some(template.trim().to_string()),
            handoff: None,
            checks: vec![],
            scope: vec![],
            rounds: None,
        })
    }

    pub fn template(&self) -> &str {
        self.template.as_deref().unwrap_or("implement")
    }

    pub fn is_review(&self) -> bool {
        self.handoff.is_none() && self.template() == "review"
    }

    pub fn rounds(&self) -> u32 {
        self.rounds.unwrap_or(DEFAULT_ROUNDS)
    }
}

/// A pipeline file: the handoff fields every stage inherits at the top level, and one
/// `[[stage]]` table per stage.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    pub defaults: crate::handoff::Contract,
    pub stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stages {
    #[serde(default)]
    stage: Vec<Stage>,
}

impl PipelineFile {
    pub fn parse(text: &str) -> Result<PipelineFile, PipelineError> {
        // The handoff fields refuse unknown keys, so the stages are taken out first
        // and each part is read by its own type (a typo is still an error in both).
        let mut table: toml::Table = toml::from_str(text).map_err(PipelineError::File)?;
        let mut stages = toml::Table::new();
        if let Some(s) = table.remove("stage") {
            stages.insert("stage".into(), s);
        }
        let defaults: crate::handoff::Contract = table.try_into().map_err(PipelineError::File)?;
        let Stages { stage: stages } = stages.try_into().map_err(PipelineError::File)?;
        if stages.is_empty() {
            return Err(PipelineError::NoStages);
        }
        for (i, s) in stages.iter().enumerate() {
            if s.template.is_some() && s.handoff.is_some() {
                return Err(PipelineError::TemplateAndHandoff { number: i + 1 });
            }
        }
        Ok(PipelineFile { defaults, stages })
    }
}

/// How much a finding matters, in the review template's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Blocker,
    Major,
    Minor,
    Nit,
}

/// One thing a reviewer found.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub path: String,
    #[serde(default)]
    pub line: Option<u64>,
    pub severity: Severity,
    pub blocking: bool,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewVerdict {
    Pass,
    Block,
}

/// A review stage's answer: `{"verdict": "pass" | "block", "findings": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub verdict: ReviewVerdict,
    pub findings: Vec<Finding>,
}

impl Review {
    /// Whether the change may go on: a "pass" with no blocking finding. A "pass" that
    /// lists a blocking finding contradicts itself, and the finding wins.
    pub fn passes(&self) -> bool {
        self.verdict == ReviewVerdict::Pass && !self.findings.iter().any(|f| f.blocking)
    }

    /// The blocking findings of `self` that `before` did not already have (a repair
    /// round that adds none is the last).
    pub fn new_blocking<'a>(&'a self, before: &Review) -> Vec<&'a Finding> {
        self.findings
            .iter()
            .filter(|f| f.blocking && !before.findings.contains(f))
            .collect()
    }
}

/// The review verdict in a reviewer's last words: the last fenced ```json block, else
/// the last line that is a JSON object alone. Anything else fails closed.
pub fn parse_review(text: &str) -> Result<Review, ReviewError> {
    let candidate = last_json_block(text)
        .or_else(|| {
            text.lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('{') && l.ends_with('}'))
                .map(str::to_string)
        })
        .ok_or(ReviewError::Missing)?;
    serde_json::from_str(&candidate).map_err(|e| ReviewError::Malformed(e.to_string()))
}

fn last_json_block(text: &str) -> Option<String> {
    let mut found = None;
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let t = line.trim();
        match &mut current {
            None if t == "```json" => current = Some(vec![]),
            Some(_) if t == "```" => found = current.take().map(|l| l.join("\n")),
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    found
}

/// One stage as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub number: u32,
    pub agent: String,
    pub template: String,
    pub verdict: Verdict,
    /// For a review: `pass`, `block`, or why its answer is no verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingReport>,
    /// Repair rounds a blocked review sent back to the implementing agent.
    pub rounds: u32,
    /// Paths the stage (or a repair round for its review) wrote outside its own
    /// scope, each with the rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside_scope: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingReport {
    pub path: String,
    pub line: Option<u64>,
    pub blocking: bool,
    pub message: String,
    /// The review round that found it (0: the first review).
    pub round: u32,
}

/// The whole pipeline: its run, its stages, and where it stopped.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub run_id: String,
    pub stages: Vec<StageReport>,
    /// The stage that stopped the pipeline, with why; `None` when every stage passed.
    pub stopped: Option<(u32, String)>,
    /// What became of the work, in the run's words.
    pub outcome: Option<String>,
    pub exit_code: i32,
}

/// What the agent said last (a `cmd:` agent: its last output lines).
fn last_words(report: &RunReport) -> String {
    report
        .agent_result
        .as_ref()
        .map(|a| a.last_message.clone().unwrap_or_else(|| a.tail.join("\n")))
        .unwrap_or_default()
}

/// A pipeline ready to run: its stages, and what every stage inherits from the
/// pipeline (the command line's or the file's top level).
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
    /// The scope every stage inherits (empty: everything, unless a stage narrows it).
    pub scope: Vec<String>,
    /// The checks run after every stage, before the stage's own.
    pub checks: Vec<String>,
}

/// `more` appended to `list`, each glob or command once.
fn push_new(list: &mut Vec<String>, more: &[String]) {
    for m in more {
        if !list.contains(m) {
            list.push(m.clone());
        }
    }
}

impl Pipeline {
    /// What stage `i` (from 0) may touch: the pipeline's scope and its own (empty,
    /// everything, when neither names any).
    pub fn stage_scope(&self, i: usize) -> Vec<String> {
        let mut globs = self.scope.clone();
        if let Some(s) = self.stages.get(i) {
            push_new(&mut globs, &s.scope);
        }
        globs
    }

    /// What runs after stage `i`: the pipeline's checks, then its own.
    pub fn stage_checks(&self, i: usize) -> Vec<String> {
        let mut checks = self.checks.clone();
        if let Some(s) = self.stages.get(i) {
            push_new(&mut checks, &s.checks);
        }
        checks
    }

    /// What the stages up to `last` may touch together: the union of their scopes,
    /// everything as soon as one of them may touch everything.
    pub fn scope_through(&self, last: usize) -> Vec<String> {
        let mut all = vec![];
        for i in 0..=last.min(self.stages.len().saturating_sub(1)) {
            let own = self.stage_scope(i);
            if own.is_empty() {
                return vec![];
            }
            push_new(&mut all, &own);
        }
        all
    }

    /// What the whole may touch: every stage's scope together.
    pub fn whole_scope(&self) -> Vec<String> {
        self.scope_through(self.stages.len().saturating_sub(1))
    }

    /// What the whole is checked by: every stage's checks, in order, each once.
    pub fn all_checks(&self) -> Vec<String> {
        let mut all = vec![];
        for i in 0..self.stages.len() {
            push_new(&mut all, &self.stage_checks(i));
        }
        all
    }
}

impl Stage {
    /// Its name in the report and the trailers: the template, or the handoff file's.
    pub fn name(&self) -> String {
        match &self.handoff {
            Some(path) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "handoff".into()),
            None => self.template().to_string(),
        }
    }
}

/// The handoff of stage `index`: its template over the original task, its own scope
/// and checks, with the cumulative diff so far and the previous stage's summary as its
/// context.
fn stage_handoff(
    repo: &Repo,
    pipeline: &Pipeline,
    index: usize,
    task: &str,
    previous: Option<(&RunReport, &str)>,
) -> Result<Handoff, PipelineError> {
    let stage = pipeline.stages.get(index).ok_or(PipelineError::NoStages)?;
    let context = match previous {
        None => String::new(),
        Some((report, agent)) => {
            let patch = match &report.tree {
                Some(tree) => {
                    let base_tree = repo.tree_of(&report.base)?;
                    String::from_utf8_lossy(&repo.patch(&base_tree, tree)?).into_owned()
                }
                None => String::new(),
            };
            format!(
                "The change so far (every earlier stage's, against the base):\n\n```diff\n{patch}```\n\nThe previous stage ({agent}) said:\n\n{}\n",
                last_words(report).trim()
            )
        }
    };
    let mut handoff = match &stage.handoff {
        Some(path) => Handoff::load(path)?,
        None => crate::handoff::render_new(
            &NewHandoff {
                template: stage.template().to_string(),
                task: task.to_string(),
                context,
                scope: pipeline.stage_scope(index),
                checks: pipeline.stage_checks(index),
                ..NewHandoff::default()
            },
            Some(&crate::config::repo_templates(&repo.root)),
        )?,
    };
    handoff.contract.agent = Some(stage.agent.clone());
    Ok(handoff)
}

/// The findings of a blocked review, for the implementing agent's repair round.
fn repair_text(task: &str, review: &Review, round: u32, rounds: u32) -> String {
    let mut text = format!(
        "A review of your change for the task \"{}\" blocks it (repair round {round} of {rounds}). Fix these findings, and change nothing else:\n\n",
        task.lines().next().unwrap_or("")
    );
    for f in review.findings.iter().filter(|f| f.blocking) {
        let at = f.line.map(|l| format!(":{l}")).unwrap_or_default();
        text.push_str(&format!("- {}{at}: {}\n", f.path, f.message));
    }
    text
}

/// Where the stages run: the pipeline's repository, its one run and what it inherits.
struct Runner<'a> {
    repo: &'a Repo,
    journal: Arc<Journal>,
    base: &'a Plan,
    pipeline: &'a Pipeline,
    observers: &'a dyn Fn() -> Vec<Box<dyn Observer>>,
}

/// One round in the pipeline's worktree, as the pipeline judged it.
struct StageRound {
    report: RunReport,
    /// Paths the round wrote outside its own stage's scope, each with the rule.
    outside: Vec<String>,
}

impl StageRound {
    fn verdict(&self) -> Verdict {
        if self.outside.is_empty() {
            self.report.verdict
        } else {
            Verdict::ScopeViolated
        }
    }

    fn session(&self) -> Option<String> {
        self.report
            .agent_result
            .as_ref()
            .and_then(|a| a.session.clone())
    }

    /// Why it failed, in words.
    fn why(&self) -> String {
        if self.outside.is_empty() {
            self.report.verdict.describe().to_string()
        } else {
            format!(
                "it wrote outside its own scope: {}",
                self.outside.join("; ")
            )
        }
    }
}

impl Runner<'_> {
    /// A round of stage `stage` (from 0; a repair round is its implementing stage's)
    /// by `agent` in the kept worktree: the run library's round, judged as a used
    /// worktree, with the stage's own checks after it and the change so far held to
    /// the scopes of the stages through `through`; then what this round changed, and
    /// only that, held to the stage's own scope.
    fn round(
        &self,
        stage: usize,
        through: usize,
        round: u32,
        agent: &AgentSpec,
        session: Option<String>,
        prompt: String,
    ) -> Result<StageRound, PipelineError> {
        let mut state = self.journal.read_state()?;
        let before = state.tree.clone();
        state.settings.scope = self.pipeline.scope_through(through);
        state.settings.checks = self.pipeline.stage_checks(stage);
        self.journal.write_report(&state, false)?;
        let report = run::continue_with(
            self.repo,
            self.journal.clone(),
            ResumeOptions {
                prompt: Some(prompt),
                on_pass: Some(Policy::Keep),
                on_fail: Some(Policy::Keep),
                apply: false,
                timeout: None,
                idle_timeout: None,
                config: self.base.config.clone(),
            },
            Some(Handover {
                agent: agent.clone(),
                session,
            }),
            (self.observers)(),
            &mut |_| Policy::Keep,
        )?;
        let mut outside = vec![];
        if let (Some(before), Some(after)) = (&before, &report.tree) {
            if before != after {
                let own =
                    Scope::compile(&self.pipeline.stage_scope(stage), &self.base.settings.deny)?;
                let changes = self.repo.diff_trees(before, after)?;
                let judged = judge::judge_change(self.repo, &own, &changes)?;
                outside = judged
                    .paths
                    .iter()
                    .filter(|p| p.verdict.is_violation())
                    .map(|p| format!("{}: {}", p.path, p.verdict.describe()))
                    .collect();
            }
        }
        let judged = StageRound { report, outside };
        self.tag(stage, round, agent, Some(judged.verdict()))?;
        Ok(judged)
    }

    /// Records the run's last round as a round of stage `stage` (the commit's
    /// `Baton-Stage` trailers are read from these), with the stage's own verdict.
    fn tag(
        &self,
        stage: usize,
        round: u32,
        agent: &AgentSpec,
        verdict: Option<Verdict>,
    ) -> Result<(), PipelineError> {
        let mut state = self.journal.read_state()?;
        let tag = StageTag {
            number: stage as u32 + 1,
            name: self
                .pipeline
                .stages
                .get(stage)
                .map(Stage::name)
                .unwrap_or_default(),
        };
        let fresh_round = round > 0 || stage > 0;
        if fresh_round || state.attempts.is_empty() {
            let mut record = run::attempt_record(&state, tag.number, round, &agent.label());
            record.stage = Some(tag);
            if let Some(v) = verdict {
                record.verdict = v;
            }
            state.attempts.push(record);
        } else if let Some(a) = state.attempts.last_mut() {
            // The first stage is a run of its own: its last attempt is the one whose
            // work stands (a retried or fallen-back one's was set aside).
            a.stage = Some(tag);
        }
        self.journal.write_report(&state, false)?;
        Ok(())
    }
}

fn report_of(number: u32, stage: &Stage, verdict: Verdict) -> StageReport {
    StageReport {
        number,
        agent: stage.agent.clone(),
        template: stage.name(),
        verdict,
        review: None,
        findings: vec![],
        rounds: 0,
        outside_scope: vec![],
    }
}

/// Runs `pipeline`'s stages over `base` (its handoff is the original task) in one
/// worktree, each stage checked by its own checks and held to its own scope, then
/// judges the whole against every stage's scope and checks and lands it by `on_pass`
/// — or, when a stage fails, saves the work so far by `on_fail`. `observers` gives
/// each round's event observers.
pub fn pipeline(
    repo: &Repo,
    base: &Plan,
    pipeline: &Pipeline,
    apply: bool,
    observers: &dyn Fn() -> Vec<Box<dyn Observer>>,
) -> Result<PipelineReport, PipelineError> {
    let stages = &pipeline.stages;
    let first = stages.first().ok_or(PipelineError::NoStages)?;
    // Every stage's agent must be there before anything starts.
    let agents: Vec<AgentSpec> = stages
        .iter()
        .map(|s| AgentSpec::parse(&s.agent))
        .collect::<Result<_, _>>()?;
    for a in &agents {
        a.backend(&base.config)?;
    }
    let task = base.task().to_string();
    // The first stage is a run judged by its own scope and checks.
    let mut plan = base.clone();
    plan.agents = vec![agents[0].clone()];
    plan.handoff = stage_handoff(repo, pipeline, 0, &task, None)?;
    plan.settings.scope = pipeline.stage_scope(0);
    plan.settings.checks = pipeline.stage_checks(0);
    plan.scope = Scope::compile(&plan.settings.scope, &plan.settings.deny)?
        .with_limits(plan.settings.limits);
    plan.on_pass = Policy::Keep;
    plan.on_fail = Policy::Keep;
    let last = run::run(repo, &plan, observers(), &mut |r| run::default_policy(r))?;
    let runner = Runner {
        repo,
        journal: Arc::new(Journal::open(&repo.common_dir, &last.run_id)?),
        base,
        pipeline,
        observers,
    };
    runner.tag(0, 0, &agents[0], None)?;
    let mut reports = vec![report_of(1, first, last.verdict)];
    // The stage whose agent repairs what a review blocks: the last that changed code.
    let mut implementer = (
        0usize,
        agents[0].clone(),
        last.agent_result.as_ref().and_then(|a| a.session.clone()),
    );
    let mut stopped = (!last.verdict.passed())
        .then(|| (1, format!("{} ({})", last.verdict.describe(), first.agent)));
    let mut failed = (!last.verdict.passed()).then_some(last.verdict);
    let mut last = StageRound {
        report: last,
        outside: vec![],
    };
    for (i, stage) in stages.iter().enumerate().skip(1) {
        if stopped.is_some() {
            break;
        }
        let number = i as u32 + 1;
        let previous = stages[i - 1].agent.clone();
        let prompt = stage_handoff(repo, pipeline, i, &task, Some((&last.report, &previous)))?.body;
        last = runner.round(i, i, 0, &agents[i], None, prompt)?;
        let mut report = report_of(number, stage, last.verdict());
        report.outside_scope = last.outside.clone();
        if !stage.is_review() {
            if !last.verdict().passed() {
                stopped = Some((number, last.why()));
                failed = Some(last.verdict());
            } else {
                implementer = (i, agents[i].clone(), last.session());
            }
            reports.push(report);
            continue;
        }
        let mut seen: Option<Review> = None;
        let mut reviewer = last.session();
        loop {
            if !last.verdict().passed() {
                report.verdict = last.verdict();
                stopped = Some((number, last.why()));
                failed = Some(last.verdict());
                break;
            }
            let review = match parse_review(&last_words(&last.report)) {
                Err(e) => {
                    report.review = Some(e.to_string());
                    stopped = Some((number, e.to_string()));
                    failed = Some(Verdict::ChecksFailed);
                    break;
                }
                Ok(r) => r,
            };
            report.review = Some(if review.passes() { "pass" } else { "block" }.into());
            // Every finding of every round, once: what was found and then fixed too.
            for f in &review.findings {
                let seen_before = report
                    .findings
                    .iter()
                    .any(|r| r.path == f.path && r.line == f.line && r.message == f.message);
                if !seen_before {
                    report.findings.push(FindingReport {
                        path: f.path.clone(),
                        line: f.line,
                        blocking: f.blocking,
                        message: f.message.clone(),
                        round: report.rounds,
                    });
                }
            }
            report.verdict = last.verdict();
            if review.passes() {
                break;
            }
            let fresh = seen.as_ref().map_or(1, |b| review.new_blocking(b).len());
            if report.rounds >= stage.rounds() || fresh == 0 {
                stopped = Some((number, "the review blocks the change".into()));
                failed = Some(Verdict::ChecksFailed);
                break;
            }
            report.rounds += 1;
            let text = repair_text(&task, &review, report.rounds, stage.rounds());
            let (at, agent, session) = implementer.clone();
            // The repair is the implementing stage's work: its checks, its scope.
            let repaired = runner.round(at, i, report.rounds, &agent, session, text)?;
            implementer.2 = repaired.session();
            report
                .outside_scope
                .extend(repaired.outside.iter().cloned());
            if !repaired.verdict().passed() {
                report.verdict = repaired.verdict();
                stopped = Some((number, format!("the repair: {}", repaired.why())));
                failed = Some(repaired.verdict());
                break;
            }
            let prompt = stage_handoff(
                repo,
                pipeline,
                i,
                &task,
                Some((&repaired.report, &agent.label())),
            )?
            .body;
            // The reviewer looks again in its own session where it keeps one, so it
            // knows what it asked for.
            last = runner.round(i, i, report.rounds, &agents[i], reviewer.clone(), prompt)?;
            reviewer = last.session();
            seen = Some(review);
        }
        reports.push(report);
    }

    let journal = &runner.journal;
    let mut state = journal.read_state()?;
    state.agent = stages
        .iter()
        .map(|s| format!("{} ({})", s.agent, s.name()))
        .collect::<Vec<_>>()
        .join(", ");
    // A first stage that changed nothing was already discarded by its run: there is
    // nothing left to judge, land or save.
    let kept = state
        .outcome
        .as_ref()
        .is_some_and(|o| o.action.is_pending());
    if kept && stopped.is_none() {
        // Each stage passed on its own; the whole is judged again, against every
        // stage's scope and by every stage's checks, before anything lands.
        state.settings.scope = pipeline.whole_scope();
        state.settings.checks = pipeline.all_checks();
        let s = &state.settings;
        let scope = Scope::compile(&s.scope, &s.deny)?.with_limits(s.limits);
        let events = Events::new(&state.run_id, journal.clone(), observers());
        let judge = Judge {
            repo,
            journal,
            events: &events,
            run_id: &state.run_id,
            scope: &scope,
            checks: &s.checks,
            check_timeout: base.check_timeout,
            kill_grace: base.kill_grace,
            cancel: base.cancel.clone().unwrap_or_default(),
        };
        let worktree = state.worktree.clone();
        let tree = judge.snapshot(&worktree, Freshness::Used)?;
        let agent = AgentEnd {
            ok: true,
            interrupted: false,
        };
        let evidence = judge.judge(&worktree, &state.base, tree, agent, &[], &mut |_| Ok(()))?;
        drop(events);
        state.interrupted |= evidence.interrupted;
        state.verdict = evidence.verdict;
        state.checks = evidence.checks;
        state.scope = Some(evidence.scope);
        state.tree = Some(evidence.tree);
        if !state.verdict.passed() {
            stopped = Some((0, format!("the whole: {}", state.verdict.describe())));
        }
    } else if let Some(v) = failed {
        // The run's own verdict is the last round's; the pipeline's is the stage's
        // that stopped it (a blocked review counts as a failed check), so that what is
        // kept is never taken for a passing change.
        state.verdict = v;
    }
    if kept {
        state.exit_code = Some(crate::exit::for_report(&state));
    }
    journal.write_report(&state, false)?;
    let policy = if stopped.is_none() {
        base.on_pass
    } else {
        base.on_fail
    };
    let landed = if policy == Policy::Keep || !kept {
        state
    } else {
        run::land_later(
            repo,
            journal.clone(),
            policy,
            Target::of_apply(apply),
            observers(),
        )?
    };
    let exit_code = match &stopped {
        None => crate::exit::for_decision(&landed, policy),
        Some(_) if landed.verdict.passed() => crate::exit::CHECKS_FAILED,
        Some(_) => crate::exit::for_report(&landed),
    };
    Ok(PipelineReport {
        run_id: landed.run_id.clone(),
        stages: reports,
        stopped,
        outcome: landed.outcome.as_ref().map(|o| o.message.clone()),
        exit_code,
    })
}

/// The stages one line each, and where the pipeline stopped.
pub fn summary(report: &PipelineReport) -> String {
    let mut out = String::new();
    for s in &report.stages {
        let review = s
            .review
            .as_ref()
            .map(|r| format!(", review: {r}"))
            .unwrap_or_default();
        let rounds = if s.rounds > 0 {
            format!(", {} repair round(s)", s.rounds)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "stage {} {} ({}): {}{review}{rounds}\n",
            s.number,
            s.template,
            s.agent,
            s.verdict.describe()
        ));
        for f in &s.findings {
            let at = f.line.map(|l| format!(":{l}")).unwrap_or_default();
            let kind = if f.blocking { "blocking" } else { "note" };
            out.push_str(&format!("  {kind}: {}{at}: {}\n", f.path, f.message));
        }
    }
    if let Some((n, why)) = &report.stopped {
        out.push_str(&format!("stopped at stage {n}: {why}\n"));
    }
    if let Some(o) = &report.outcome {
        out.push_str(&format!("run {}: {o}\n", report.run_id));
    }
    out
}

/// Reads a pipeline file from `path`.
pub fn load(path: &Path) -> Result<PipelineFile, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        PipelineError::Run(Error::Io {
            context: format!("could not read the pipeline file {}", path.display()),
            source,
        })
    })?;
    PipelineFile::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_agent_colon_template() {
        let s = Stage::parse("claude:review").unwrap();
        assert_eq!((s.agent.as_str(), s.template()), ("claude", "review"));
        assert!(s.is_review());
        let s = Stage::parse("cmd:./fix.sh --fast:tests").unwrap();
        assert_eq!(s.agent, "cmd:./fix.sh --fast");
        assert!(Stage::parse("codex").is_err());
        assert!(Stage::parse("cmd:review").is_err());
    }

    #[test]
    fn a_pipeline_file_holds_handoff_fields_and_stages() {
        let file = PipelineFile::parse(
            "task = \"Fix add()\"\nscope = [\"calc.py\"]\n\n[[stage]]\nagent = \"codex\"\n\n[[stage]]\nagent = \"claude\"\ntemplate = \"review\"\nrounds = 3\n",
        )
        .unwrap();
        assert_eq!(file.stages.len(), 2);
        assert_eq!(file.stages[0].template(), "implement");
        assert_eq!(file.stages[1].rounds(), 3);
        assert_eq!(file.defaults.task.as_deref(), Some("Fix add()"));
        assert!(PipelineFile::parse("task = \"x\"\n").is_err());
    }

    #[test]
    fn the_review_template_shows_the_form_the_parser_reads() {
        let template = include_str!("../../templates/review.md.hbs");
        let example = parse_review(template).unwrap();
        assert_eq!(example.findings[0].severity, Severity::Major);
    }

    #[test]
    fn a_review_passes_only_when_it_says_so_in_valid_json() {
        let pass = "Looks good.\n```json\n{\"verdict\": \"pass\", \"findings\": []}\n```\n";
        assert!(parse_review(pass).unwrap().passes());
        let block = r#"{"verdict": "block", "findings": [{"path": "calc.py", "line": 5, "severity": "major", "blocking": true, "message": "add() subtracts"}]}"#;
        let review = parse_review(block).unwrap();
        assert!(!review.passes());
        assert_eq!(review.new_blocking(&review).len(), 0);
        // A pass that lists a blocking finding does not pass.
        let contradicts = block.replace("\"block\"", "\"pass\"");
        assert!(!parse_review(&contradicts).unwrap().passes());
        // Fail closed: no verdict, or one that is not the agreed form.
        assert_eq!(parse_review("LGTM!"), Err(ReviewError::Missing));
        assert!(matches!(
            parse_review("{\"verdict\": \"approve\", \"findings\": []}"),
            Err(ReviewError::Malformed(_))
        ));
        assert!(matches!(
            parse_review("{\"verdict\": \"pass\"}"),
            Err(ReviewError::Malformed(_))
        ));
    }
}

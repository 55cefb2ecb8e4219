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
use crate::git::Repo;
use crate::handoff::{Handoff, NewHandoff};
use crate::journal::Journal;
use crate::report::{Policy, RunReport, Verdict};
use crate::run::{self, Handover, Plan, ResumeOptions, Target};

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

/// The handoff of stage `stage`: its template over the original task, with the
/// cumulative diff so far and the previous stage's summary as its context.
fn stage_handoff(
    repo: &Repo,
    stage: &Stage,
    task: &str,
    base: &Plan,
    previous: Option<(&RunReport, &str)>,
) -> Result<Handoff, PipelineError> {
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
                scope: base.settings.scope.clone(),
                checks: base.settings.checks.clone(),
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

/// Another agent's round in the pipeline's worktree, the run kept after it.
fn step(
    repo: &Repo,
    journal: &Arc<Journal>,
    base: &Plan,
    agent: &AgentSpec,
    session: Option<String>,
    prompt: String,
) -> Result<RunReport, PipelineError> {
    Ok(run::continue_with(
        repo,
        journal.clone(),
        ResumeOptions {
            prompt: Some(prompt),
            on_pass: Some(Policy::Keep),
            on_fail: Some(Policy::Keep),
            apply: false,
            timeout: None,
            idle_timeout: None,
            config: base.config.clone(),
        },
        Some(Handover {
            agent: agent.clone(),
            session,
        }),
        vec![],
        &mut |_| Policy::Keep,
    )?)
}

fn report_of(number: u32, stage: &Stage, run: &RunReport) -> StageReport {
    StageReport {
        number,
        agent: stage.agent.clone(),
        template: stage.template().to_string(),
        verdict: run.verdict,
        review: None,
        findings: vec![],
        rounds: 0,
    }
}

/// Runs `stages` over `base` (its handoff is the original task) in one worktree, then
/// lands the whole by `on_pass` — or, when a stage fails, saves the work by `on_fail`.
pub fn pipeline(
    repo: &Repo,
    base: &Plan,
    stages: &[Stage],
    apply: bool,
) -> Result<PipelineReport, PipelineError> {
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
    let mut plan = base.clone();
    plan.agents = vec![agents[0].clone()];
    plan.handoff = stage_handoff(repo, first, &task, base, None)?;
    plan.on_pass = Policy::Keep;
    plan.on_fail = Policy::Keep;
    let mut last = run::run(repo, &plan, vec![], &mut |r| run::default_policy(r))?;
    let journal = Arc::new(Journal::open(&repo.common_dir, &last.run_id)?);
    let mut reports = vec![report_of(1, first, &last)];
    let mut implementer = (
        agents[0].clone(),
        last.agent_result.as_ref().and_then(|a| a.session.clone()),
    );
    let mut stopped = (!last.verdict.passed())
        .then(|| (1, format!("{} ({})", last.verdict.describe(), first.agent)));
    for (i, stage) in stages.iter().enumerate().skip(1) {
        if stopped.is_some() {
            break;
        }
        let number = i as u32 + 1;
        let previous = stages[i - 1].agent.clone();
        let prompt = stage_handoff(repo, stage, &task, base, Some((&last, &previous)))?.body;
        last = step(repo, &journal, base, &agents[i], None, prompt)?;
        let mut report = report_of(number, stage, &last);
        if !stage.is_review() {
            if !last.verdict.passed() {
                stopped = Some((number, last.verdict.describe().to_string()));
            } else {
                implementer = (
                    agents[i].clone(),
                    last.agent_result.as_ref().and_then(|a| a.session.clone()),
                );
            }
            reports.push(report);
            continue;
        }
        let mut seen: Option<Review> = None;
        let mut reviewer = last.agent_result.as_ref().and_then(|a| a.session.clone());
        loop {
            let review = match parse_review(&last_words(&last)) {
                Err(e) => {
                    report.review = Some(e.to_string());
                    stopped = Some((number, e.to_string()));
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
            report.verdict = last.verdict;
            if !last.verdict.passed() {
                stopped = Some((number, last.verdict.describe().to_string()));
                break;
            }
            if review.passes() {
                break;
            }
            let fresh = seen.as_ref().map_or(1, |b| review.new_blocking(b).len());
            if report.rounds >= stage.rounds() || fresh == 0 {
                stopped = Some((number, "the review blocks the change".into()));
                break;
            }
            report.rounds += 1;
            let text = repair_text(&task, &review, report.rounds, stage.rounds());
            let (agent, session) = implementer.clone();
            last = step(repo, &journal, base, &agent, session, text)?;
            implementer.1 = last.agent_result.as_ref().and_then(|a| a.session.clone());
            if !last.verdict.passed() {
                report.verdict = last.verdict;
                stopped = Some((number, format!("the repair {}", last.verdict.describe())));
                break;
            }
            let prompt = stage_handoff(
                repo,
                stage,
                &task,
                base,
                Some((&last, &implementer.0.label())),
            )?
            .body;
            // The reviewer looks again in its own session where it keeps one, so it
            // knows what it asked for.
            last = step(repo, &journal, base, &agents[i], reviewer.clone(), prompt)?;
            reviewer = last.agent_result.as_ref().and_then(|a| a.session.clone());
            seen = Some(review);
        }
        reports.push(report);
    }

    // One commit for the whole: its trailers name every stage's agent.
    let mut state = journal.read_state()?;
    state.agent = stages
        .iter()
        .map(|s| format!("{} ({})", s.agent, s.template()))
        .collect::<Vec<_>>()
        .join(", ");
    journal.write_state(&state)?;
    let policy = if stopped.is_none() {
        base.on_pass
    } else {
        base.on_fail
    };
    // A first stage that changed nothing was already discarded by its run: there is
    // nothing left to land or save.
    let kept = state
        .outcome
        .as_ref()
        .is_some_and(|o| o.action.is_pending());
    let landed = if policy == Policy::Keep || !kept {
        state
    } else {
        run::land_later(
            repo,
            journal.clone(),
            policy,
            Target::of_apply(apply),
            vec![],
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

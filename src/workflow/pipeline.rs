//! Pipeline (its first pieces): the stages a pipeline is made of, from `--stage
//! AGENT:TEMPLATE` or from a pipeline file, and the review verdict a review stage must
//! answer with, validated failing closed.
//!
//! This module owns what a pipeline *is* and what a review *said*; running the stages
//! in one worktree is not here yet (see the issue): it is to drive the run library
//! ([`crate::run`]) stage by stage, as compare does, never copy it.

use serde::Deserialize;

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

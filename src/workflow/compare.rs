//! Compare: one handoff run by N candidates at once, each a whole run (`--on-pass keep`
//! semantics) in its own worktree, and one winner picked by evidence, in this order:
//!
//! 1. only candidates whose checks pass and whose scope is clean;
//! 2. identical changes (whitespace at line ends ignored) count as votes;
//! 3. the smallest change (lines added + removed);
//! 4. the first to finish — or the `--judge` agent's answer, when it gives one.
//!
//! This module owns the candidates (parsed from `--agents` / `--agent` / `-n`), the
//! choice, the refs `refs/baton/compare/<id>/<n>` that keep every candidate's change,
//! and the compare's record in `<common dir>/baton/compares/<id>/report.json`. Running a
//! candidate is [`run::run`]'s and landing one is [`run::land_later`]'s: a compare copies
//! neither.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::agent::{AgentContext, AgentSpec};
use crate::error::Error;
use crate::git::Repo;
use crate::journal::Journal;
use crate::process::{Cancel, CancelReason};
use crate::report::{Policy, RunReport, Verdict};
use crate::run::{self, Plan, Target};
use crate::{exit, worktree};

/// How many candidates a compare may start when `[compare] max` says nothing.
pub const DEFAULT_MAX: u32 = 8;

/// The version of the compare record on disk.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "{what} asks for no candidates; give at least one (`--agents codex,claude`, or `-n 3 --agent codex`)"
    )]
    NoCandidates { what: String },
    #[error("candidate `{text}`: {reason}")]
    BadCandidate { text: String, reason: String },
    #[error(
        "{count} candidates is more than `[compare] max` ({max}); ask for fewer, or raise `[compare] max` in .baton/config.toml"
    )]
    TooMany { count: usize, max: u32 },
    #[error("--judge `{text}` is not an agent baton can run: {reason}")]
    NotAJudge { text: String, reason: String },
    #[error("no compare `{0}`; `baton compare show last` shows the newest")]
    NotFound(String),
    #[error("compare {id} has no candidate {number}; its candidates are 1 to {count}")]
    NoSuchCandidate {
        id: String,
        number: u32,
        count: usize,
    },
    #[error("could not read or write the compare record {path}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the compare record {path} cannot be read")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Run(#[from] Error),
}

impl From<CompareError> for Error {
    fn from(e: CompareError) -> Error {
        match e {
            CompareError::Run(e) => e,
            CompareError::Record { path, source } => Error::Io {
                context: format!(
                    "could not read or write the compare record {}",
                    path.display()
                ),
                source,
            },
            // Everything else is what the user asked for, refused before anything ran.
            other => Error::Usage(other.to_string()),
        }
    }
}

impl From<crate::git::GitError> for CompareError {
    fn from(e: crate::git::GitError) -> CompareError {
        CompareError::Run(e.into())
    }
}

/// One candidate as the user named it: an agent, and the model it is to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub agent: AgentSpec,
    pub model: Option<String>,
}

impl Candidate {
    /// `codex`, `codex@gpt-5.5`, or `cmd:<command>` (taken whole: a command may hold `@`).
    pub fn parse(text: &str) -> Result<Candidate, CompareError> {
        let text = text.trim();
        let bad = |reason: String| CompareError::BadCandidate {
            text: text.to_string(),
            reason,
        };
        let (name, model) = match text.split_once('@') {
            _ if text.starts_with("cmd:") => (text, None),
            Some((_, m)) if m.trim().is_empty() => {
                return Err(bad("names no model after `@`".into()));
            }
            Some((name, m)) => (name, Some(m.trim().to_string())),
            None => (text, None),
        };
        let agent = AgentSpec::parse(name).map_err(|e| bad(e.to_string()))?;
        Ok(Candidate { agent, model })
    }

    pub fn label(&self) -> String {
        match &self.model {
            Some(m) => format!("{}@{m}", self.agent.label()),
            None => self.agent.label(),
        }
    }
}

/// The config name of an agent with a `[agents.NAME]` section (not `cmd:`).
fn config_name(agent: &AgentSpec) -> Option<&'static str> {
    match agent {
        AgentSpec::Codex => Some("codex"),
        AgentSpec::Claude => Some("claude"),
        AgentSpec::Gemini => Some("gemini"),
        AgentSpec::Cmd(_) => None,
    }
}

/// The candidates of `--agents A,B:2` (comma-separated, `:N` repeats one), then of each
/// `--agent` (repeatable, taken whole, so a `cmd:` may hold commas and colons) `n`
/// times; with neither, `n` times `default` (the handoff's or the config's agent).
pub fn candidates(
    agents: &[String],
    agent: &[String],
    n: Option<u32>,
    default: Option<&str>,
) -> Result<Vec<Candidate>, CompareError> {
    if n == Some(0) {
        return Err(CompareError::NoCandidates {
            what: "-n 0".into(),
        });
    }
    let mut out = vec![];
    for item in agents.iter().flat_map(|a| a.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // `codex:2` repeats; a `cmd:` item is never split (its command is the rest).
        let (text, count) = match item.rsplit_once(':') {
            Some((text, count)) if !item.starts_with("cmd:") => {
                let count: u32 = count
                    .trim()
                    .parse()
                    .map_err(|_| CompareError::BadCandidate {
                        text: item.to_string(),
                        reason: "the count after `:` is not a number".into(),
                    })?;
                (text, count)
            }
            _ => (item, 1),
        };
        if count == 0 {
            return Err(CompareError::NoCandidates {
                what: format!("`{item}`"),
            });
        }
        let c = Candidate::parse(text)?;
        out.extend(std::iter::repeat_n(c, count as usize));
    }
    let times = n.unwrap_or(1) as usize;
    for a in agent {
        out.extend(std::iter::repeat_n(Candidate::parse(a)?, times));
    }
    if agents.is_empty() && agent.is_empty() {
        if let Some(d) = default {
            out.extend(std::iter::repeat_n(Candidate::parse(d)?, times));
        }
    }
    if out.is_empty() {
        return Err(CompareError::NoCandidates {
            what: "this compare".into(),
        });
    }
    Ok(out)
}

/// What the user asked of the compare beyond the plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop the other candidates as soon as one passes (their work is still kept).
    pub first_pass: bool,
    /// Asked to break a tie that rules 1–3 leave.
    pub judge: Option<AgentSpec>,
    /// What becomes of the other candidates' runs once the winner is chosen: kept
    /// (`baton compare land ID N` can land one), stashed, or reverted. Their refs stay
    /// whatever this says.
    pub losers: Policy,
}

/// The plans of `candidates` over `base`, each refused (an agent not installed, a
/// count over `[compare] max`) before anything starts. Each gets its own cancel token.
pub fn plans(
    base: &Plan,
    candidates: &[Candidate],
    opts: &Options,
) -> Result<Vec<(Plan, Cancel)>, CompareError> {
    let max = base.config.compare.max.unwrap_or(DEFAULT_MAX);
    if candidates.len() > max as usize {
        return Err(CompareError::TooMany {
            count: candidates.len(),
            max,
        });
    }
    if opts.losers == Policy::Merge {
        return Err(CompareError::BadCandidate {
            text: "--losers merge".into(),
            reason: "only the winner lands; the others are kept, stashed or reverted".into(),
        });
    }
    if let Some(judge) = &opts.judge {
        judge
            .backend(&base.config)
            .map_err(|e| CompareError::NotAJudge {
                text: judge.label(),
                reason: e.to_string(),
            })?;
    }
    let mut out = vec![];
    for c in candidates {
        let mut plan = base.clone();
        plan.agents = vec![c.agent.clone()];
        plan.routed = None;
        if let (Some(model), Some(name)) = (&c.model, config_name(&c.agent)) {
            plan.config.agents.entry(name.into()).or_default().model = Some(model.clone());
        }
        // Every candidate is kept whatever its verdict: the compare decides, after.
        plan.on_pass = Policy::Keep;
        plan.on_fail = Policy::Keep;
        c.agent
            .backend(&plan.config)
            .map_err(|e| CompareError::BadCandidate {
                text: c.label(),
                reason: e.to_string(),
            })?;
        let cancel = Cancel::default();
        plan.cancel = Some(cancel.clone());
        out.push((plan, cancel));
    }
    Ok(out)
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// No candidate passed its checks with a clean scope.
    NonePassed,
    /// Only one candidate passed its checks with a clean scope.
    OnlyOnePassed,
    /// Identical changes outvoted the others.
    Votes,
    /// The smallest change.
    Smallest,
    /// Still tied: the first to finish.
    FirstToFinish,
    /// Still tied: the `--judge` agent's answer.
    Judge,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::NonePassed => "no candidate passed",
            Rule::OnlyOnePassed => "the only one whose checks pass and scope is clean",
            Rule::Votes => "identical changes vote",
            Rule::Smallest => "the smallest change",
            Rule::FirstToFinish => "the first to finish",
            Rule::Judge => "the judge's answer",
        }
    }
}

/// One candidate's row of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateReport {
    pub number: u32,
    pub agent: String,
    /// The model it asked for: the one named (`codex@M`), else its `[agents.NAME]
    /// model`, else `None` (the CLI's own default).
    pub model: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    pub verdict: Verdict,
    /// `2/2 passed`, `1/2 passed`, or `-` without checks.
    pub checks: String,
    pub files: usize,
    pub added: u64,
    pub removed: u64,
    pub duration_ms: u64,
    #[serde(default)]
    pub tokens: Option<u64>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Candidates (itself included) whose change is the same as this one's.
    pub votes: u32,
    /// 1 for the first to finish.
    pub finished: u32,
    /// Stopped because another candidate passed first (`--first-pass`).
    pub cancelled: bool,
    pub base: String,
    #[serde(default)]
    pub tree: Option<String>,
    /// `refs/baton/compare/<id>/<n>`, when it changed anything.
    #[serde(default)]
    pub kept_as: Option<String>,
    /// baton's own failure running it.
    #[serde(default)]
    pub error: Option<String>,
    /// What became of its run, in the run's own words.
    #[serde(default)]
    pub outcome: Option<String>,
}

impl CandidateReport {
    pub fn lines(&self) -> u64 {
        self.added + self.removed
    }

    fn qualified(&self) -> bool {
        self.verdict.passed() && self.error.is_none()
    }
}

/// A whole compare, as `baton compare` prints it and `show` reads it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareReport {
    pub format_version: u32,
    pub id: String,
    pub task: String,
    pub candidates: Vec<CandidateReport>,
    pub winner: Option<u32>,
    pub rule: Rule,
    /// Why, in a sentence.
    pub why: String,
    /// The policy the winner was landed by.
    pub on_pass: Policy,
    /// The winner's landing, in its run's words; or why it did not land.
    #[serde(default)]
    pub landed: Option<String>,
    pub exit_code: i32,
}

/// The choice among finished candidates, by the rules of this module's doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// An index into the candidates.
    pub winner: Option<usize>,
    pub rule: Rule,
    /// The candidates still tied when rule 4 decided (for a judge to see).
    pub tied: Vec<usize>,
    pub why: String,
}

/// A change's identity for voting: its patch without blob ids, whitespace at line
/// ends dropped.
pub fn fingerprint(patch: &str) -> String {
    patch
        .lines()
        .filter(|l| !l.starts_with("index "))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rules 1–4 (rule 4 by finishing order) over `rows`, `prints[i]` being row i's
/// [`fingerprint`].
pub fn choose(rows: &[CandidateReport], prints: &[String]) -> Choice {
    let passed: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].qualified()).collect();
    let first = |set: &[usize]| set.iter().copied().min_by_key(|&i| rows[i].finished);
    match passed.len() {
        0 => {
            return Choice {
                winner: None,
                rule: Rule::NonePassed,
                tied: vec![],
                why: "no candidate's checks passed with a clean scope".into(),
            };
        }
        1 => {
            return Choice {
                winner: Some(passed[0]),
                rule: Rule::OnlyOnePassed,
                tied: vec![],
                why: format!(
                    "candidate {} is the only one whose checks pass and whose scope is clean",
                    rows[passed[0]].number
                ),
            };
        }
        _ => {}
    }
    // Rule 2: the largest group of identical changes, when it is larger than one and
    // larger than every other group.
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in &passed {
        groups.entry(prints[i].as_str()).or_default().push(i);
    }
    let most = groups.values().map(Vec::len).max().unwrap_or(1);
    let top: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() == most).collect();
    if most > 1 && top.len() == 1 {
        let group = top[0];
        let winner = first(group);
        return Choice {
            winner,
            rule: Rule::Votes,
            tied: vec![],
            why: format!(
                "{most} candidates ({}) made the same change",
                group
                    .iter()
                    .map(|&i| rows[i].number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    // The groups still in the race, one representative each (its first to finish).
    let reps: Vec<usize> = top.iter().filter_map(|g| first(g)).collect();
    let least = reps.iter().map(|&i| rows[i].lines()).min().unwrap_or(0);
    let smallest: Vec<usize> = reps
        .iter()
        .copied()
        .filter(|&i| rows[i].lines() == least)
        .collect();
    if smallest.len() == 1 {
        let others = reps
            .iter()
            .filter(|&&i| i != smallest[0])
            .map(|&i| format!("{} for candidate {}", rows[i].lines(), rows[i].number))
            .collect::<Vec<_>>()
            .join(", ");
        return Choice {
            winner: Some(smallest[0]),
            rule: Rule::Smallest,
            tied: vec![],
            why: format!(
                "candidate {}: {least} lines against {others}",
                rows[smallest[0]].number
            ),
        };
    }
    let winner = first(&smallest);
    Choice {
        winner,
        rule: Rule::FirstToFinish,
        why: format!(
            "candidates {} tie at {least} lines; candidate {} finished first",
            smallest
                .iter()
                .map(|&i| rows[i].number.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            winner.map(|i| rows[i].number).unwrap_or(0)
        ),
        tied: smallest,
    }
}

fn compares_dir(repo: &Repo) -> PathBuf {
    repo.common_dir.join("baton").join("compares")
}

/// The ref that keeps candidate `number` of compare `id`.
pub fn ref_name(id: &str, number: u32) -> String {
    format!("refs/baton/compare/{id}/{number}")
}

/// What one candidate's thread hands back.
struct Finished {
    result: Result<RunReport, Error>,
    duration: Duration,
    order: u32,
}

/// Runs the compare: every candidate at once, then the choice, the refs, the winner
/// landed by `on_pass` (with `apply`), and the record written. `on_finish` hears of
/// each candidate as it finishes (for progress).
pub fn compare(
    repo: &Repo,
    plans: Vec<(Plan, Cancel)>,
    candidates: &[Candidate],
    opts: &Options,
    on_pass: Policy,
    apply: bool,
    on_finish: &(dyn Fn(u32, &str, &RunReport) + Sync),
) -> Result<CompareReport, CompareError> {
    // Ids read as dates, as runs' and sweeps' do.
    let id = run::new_run_id();
    let dir = compares_dir(repo).join(&id);
    std::fs::create_dir_all(&dir).map_err(|source| CompareError::Record {
        path: dir.clone(),
        source,
    })?;
    let task = plans
        .first()
        .map(|(p, _)| p.task().to_string())
        .unwrap_or_default();
    let tokens: Vec<Cancel> = plans.iter().map(|(_, c)| c.clone()).collect();
    let order = Mutex::new(0u32);
    let finished: Vec<Finished> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .enumerate()
            .map(|(i, (plan, _))| {
                let (tokens, order, candidates) = (&tokens, &order, candidates);
                s.spawn(move || {
                    let start = Instant::now();
                    let result = run::run(repo, plan, vec![], &mut |r| run::default_policy(r));
                    let duration = start.elapsed();
                    let mut n = order.lock().unwrap_or_else(|p| p.into_inner());
                    *n += 1;
                    let position = *n;
                    if let Ok(r) = &result {
                        on_finish(i as u32 + 1, &candidates[i].label(), r);
                        if opts.first_pass && r.verdict.passed() {
                            for (j, t) in tokens.iter().enumerate() {
                                if j != i {
                                    t.cancel(CancelReason::OtherCandidateWon);
                                }
                            }
                        }
                    }
                    drop(n);
                    Finished {
                        result,
                        duration,
                        order: position,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Finished {
                    result: Err(Error::Usage("a candidate's thread panicked".into())),
                    duration: Duration::ZERO,
                    order: u32::MAX,
                })
            })
            .collect()
    });

    let head = repo.head()?;
    let mut rows = vec![];
    let mut prints = vec![];
    for (i, f) in finished.iter().enumerate() {
        let number = i as u32 + 1;
        let c = &candidates[i];
        let (plan, token) = &plans[i];
        let model = c
            .model
            .clone()
            .or_else(|| config_name(&c.agent).and_then(|name| plan.config.agent(name).model));
        let mut row = CandidateReport {
            number,
            agent: c.agent.label(),
            model,
            run_id: None,
            verdict: Verdict::Pending,
            checks: "-".into(),
            files: 0,
            added: 0,
            removed: 0,
            duration_ms: f.duration.as_millis() as u64,
            tokens: None,
            cost_usd: None,
            votes: 0,
            finished: f.order,
            cancelled: token.reason() == Some(CancelReason::OtherCandidateWon),
            base: head.commit.clone(),
            tree: None,
            kept_as: None,
            error: None,
            outcome: None,
        };
        let mut print = String::new();
        match &f.result {
            Err(e) => row.error = Some(e.to_string()),
            Ok(r) => {
                row.run_id = Some(r.run_id.clone());
                row.verdict = r.verdict;
                row.base = r.base.clone();
                row.tree = r.tree.clone();
                if !r.checks.is_empty() {
                    let ok = r.checks.iter().filter(|c| c.status.passed()).count();
                    row.checks = format!("{ok}/{} passed", r.checks.len());
                }
                if let Some(s) = &r.scope {
                    row.files = s.paths.len();
                    row.added = s.lines_added;
                    row.removed = s.lines_removed;
                }
                if let Some(a) = &r.agent_result {
                    row.tokens = a.usage.map(|u| u.input_tokens + u.output_tokens);
                    row.cost_usd = a.cost_usd;
                }
                row.outcome = r.outcome.as_ref().map(|o| o.message.clone());
                if let Some(tree) = &r.tree {
                    let base_tree = repo.tree_of(&r.base)?;
                    if *tree != base_tree {
                        let message = format!(
                            "baton compare {id}: candidate {number} ({})\n\n{}\n",
                            c.label(),
                            task.lines().next().unwrap_or("")
                        );
                        let commit = repo.commit_tree(tree, &[&r.base], &message)?;
                        let name = ref_name(&id, number);
                        repo.update_ref(&name, &commit, "", "baton compare: keep a candidate")?;
                        row.kept_as = Some(name);
                        let patch = repo.patch(&base_tree, tree)?;
                        print = fingerprint(&String::from_utf8_lossy(&patch));
                    }
                }
            }
        }
        rows.push(row);
        prints.push(print);
    }
    for i in 0..rows.len() {
        if rows[i].qualified() {
            rows[i].votes = (0..rows.len())
                .filter(|&j| rows[j].qualified() && prints[j] == prints[i])
                .count() as u32;
        }
    }

    let mut choice = choose(&rows, &prints);
    if let (Some(judge), true) = (&opts.judge, choice.rule == Rule::FirstToFinish) {
        match ask_judge(repo, &dir, judge, &plans[0].0, &rows, &choice.tied, &task) {
            Some(i) => {
                choice.why = format!(
                    "candidates {} tie; the judge {} chose candidate {}",
                    choice
                        .tied
                        .iter()
                        .map(|&t| rows[t].number.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    judge.label(),
                    rows[i].number
                );
                choice.winner = Some(i);
                choice.rule = Rule::Judge;
            }
            None => {
                choice.why.push_str(&format!(
                    " (the judge {} gave no candidate number, so that stands)",
                    judge.label()
                ));
            }
        }
    }

    let mut landed = None;
    let mut exit_code = no_winner_exit(&rows);
    if let Some(w) = choice.winner {
        exit_code = exit::OK;
        if let (Some(run_id), true) = (&rows[w].run_id, on_pass != Policy::Keep) {
            match land_candidate(repo, run_id, on_pass, apply) {
                Ok(r) => {
                    exit_code = exit::for_decision(&r, on_pass);
                    let message = r.outcome.as_ref().map(|o| o.message.clone());
                    rows[w].outcome = message.clone();
                    landed = message;
                }
                Err(e) => {
                    exit_code = exit::for_error(&e);
                    landed = Some(format!("not landed: {e}"));
                }
            }
        }
    }
    if opts.losers != Policy::Keep {
        for (i, row) in rows.iter_mut().enumerate() {
            let Some(run_id) = row.run_id.clone().filter(|_| choice.winner != Some(i)) else {
                continue;
            };
            // A run that was not kept (it changed nothing) has nothing left to stash;
            // its refusal is no failure of the compare.
            if let Ok(r) = land_candidate(repo, &run_id, opts.losers, false) {
                row.outcome = r.outcome.as_ref().map(|o| o.message.clone());
            }
        }
    }
    if crate::process::interrupted() {
        exit_code = exit::INTERRUPTED;
    }
    let report = CompareReport {
        format_version: FORMAT_VERSION,
        id,
        task,
        winner: choice.winner.map(|i| rows[i].number),
        candidates: rows,
        rule: choice.rule,
        why: choice.why,
        on_pass,
        landed,
        exit_code,
    };
    write_record(&dir, &report)?;
    Ok(report)
}

/// The exit status when nothing won: checks failed if any candidate's did, else a
/// scope violation if any, else the agents failed.
fn no_winner_exit(rows: &[CandidateReport]) -> i32 {
    let any = |v: Verdict| rows.iter().any(|r| r.verdict == v);
    if any(Verdict::ChecksFailed) {
        exit::CHECKS_FAILED
    } else if any(Verdict::ScopeViolated) {
        exit::SCOPE_VIOLATION
    } else {
        exit::AGENT_FAILED
    }
}

/// Lands the kept run of a candidate by `policy`, verifying it again if its worktree
/// or the branch moved since it was judged.
fn land_candidate(
    repo: &Repo,
    run_id: &str,
    policy: Policy,
    apply: bool,
) -> Result<RunReport, Error> {
    let journal = Journal::open(&repo.common_dir, run_id)?;
    run::land_later(
        repo,
        Arc::new(journal),
        policy,
        Target::of_apply(apply),
        vec![],
    )
}

/// Shows the judge the tied diffs in a detached worktree of the base and reads a
/// candidate number from its last words. Any failure is `None`: a judge that cannot
/// answer changes nothing.
fn ask_judge(
    repo: &Repo,
    dir: &Path,
    judge: &AgentSpec,
    plan: &Plan,
    rows: &[CandidateReport],
    tied: &[usize],
    task: &str,
) -> Option<usize> {
    let mut prompt = format!(
        "# Pick the best change\n\nSeveral candidates did this task, and their checks all pass:\n\n> {}\n\nTheir changes follow. Answer with the number of the best candidate alone.\n",
        task.lines().next().unwrap_or("")
    );
    for &i in tied {
        let row = &rows[i];
        let tree = row.tree.as_deref()?;
        let patch = repo.patch(&row.base, tree).ok()?;
        prompt.push_str(&format!(
            "\n## Candidate {}\n\n```diff\n{}```\n",
            row.number,
            String::from_utf8_lossy(&patch)
        ));
    }
    let prompt_path = dir.join("judge-prompt.md");
    std::fs::write(&prompt_path, &prompt).ok()?;
    let backend = judge.backend(&plan.config).ok()?;
    let path = PathBuf::from(format!(
        "{}-judge",
        plan.worktrees_dir
            .join(dir.file_name()?.to_string_lossy().as_ref())
            .display()
    ));
    let base = rows.get(*tied.first()?)?.base.clone();
    worktree::create_detached(repo, &path, &base).ok()?;
    let ctx = AgentContext {
        run_id: format!("compare-{}", dir.file_name()?.to_string_lossy()),
        worktree: path.clone(),
        handoff: prompt_path.clone(),
        prompt: prompt_path,
        resume: None,
        timeout: plan.timeout,
        idle_timeout: plan.idle_timeout,
        kill_grace: plan.kill_grace,
        log: dir.join("judge.log"),
        cancel: Cancel::default(),
    };
    let answer = backend.run(&ctx, &mut |_| {});
    let _ = worktree::remove_detached(repo, &path);
    let answer = answer.ok()?;
    let words = answer
        .last_message
        .or_else(|| answer.tail.last().cloned())
        .unwrap_or_default();
    let number: u32 = words
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())?
        .parse()
        .ok()?;
    tied.iter().copied().find(|&i| rows[i].number == number)
}

fn write_record(dir: &Path, report: &CompareReport) -> Result<(), CompareError> {
    let path = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).map_err(|source| CompareError::Corrupt {
        path: path.clone(),
        source,
    })?;
    let tmp = dir.join("report.json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| CompareError::Record { path, source })
}

/// Reads compare `query` back: its id, a unique prefix of one, or `last`.
pub fn open(repo: &Repo, query: &str) -> Result<CompareReport, CompareError> {
    let root = compares_dir(repo);
    let mut ids: Vec<String> = std::fs::read_dir(&root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| root.join(n).join("report.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    let id = if query == "last" {
        ids.last().cloned()
    } else if ids.iter().any(|i| i == query) {
        Some(query.to_string())
    } else {
        let matching: Vec<&String> = ids.iter().filter(|i| i.starts_with(query)).collect();
        (matching.len() == 1).then(|| matching[0].clone())
    };
    let id = id.ok_or_else(|| CompareError::NotFound(query.to_string()))?;
    let path = root.join(&id).join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|source| CompareError::Record {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CompareError::Corrupt { path, source })
}

/// `baton compare land ID N`: lands candidate `number` instead, by `policy`, and
/// records it.
pub fn land_other(
    repo: &Repo,
    report: &mut CompareReport,
    number: u32,
    policy: Policy,
    apply: bool,
) -> Result<RunReport, CompareError> {
    let count = report.candidates.len();
    let row = report
        .candidates
        .iter_mut()
        .find(|c| c.number == number)
        .ok_or_else(|| CompareError::NoSuchCandidate {
            id: report.id.clone(),
            number,
            count,
        })?;
    let run_id = row
        .run_id
        .clone()
        .ok_or_else(|| CompareError::BadCandidate {
            text: number.to_string(),
            reason: "it never ran, so there is nothing to land".into(),
        })?;
    let landed = land_candidate(repo, &run_id, policy, apply)?;
    row.outcome = landed.outcome.as_ref().map(|o| o.message.clone());
    report.landed = Some(format!(
        "candidate {number}: {}",
        row.outcome.clone().unwrap_or_default()
    ));
    write_record(&compares_dir(repo).join(&report.id), report)?;
    Ok(landed)
}

/// The side-by-side table, one row per candidate, the winner starred, then the rule.
pub fn table(report: &CompareReport) -> String {
    let header = [
        "",
        "#",
        "agent",
        "model",
        "verdict",
        "checks",
        "files",
        "lines",
        "time",
        "tokens/cost",
        "votes",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for c in &report.candidates {
        let usage = match (c.tokens, c.cost_usd) {
            (Some(t), Some(cost)) => format!("{t} / ${cost:.4}"),
            (Some(t), None) => t.to_string(),
            (None, Some(cost)) => format!("${cost:.4}"),
            (None, None) => "-".into(),
        };
        let verdict = if c.cancelled {
            format!("{} (stopped)", c.verdict.describe())
        } else if let Some(e) = &c.error {
            format!("error: {}", e.lines().next().unwrap_or(""))
        } else {
            c.verdict.describe().to_string()
        };
        rows.push(vec![
            if report.winner == Some(c.number) {
                "*"
            } else {
                ""
            }
            .into(),
            c.number.to_string(),
            one_line(&c.agent),
            c.model.clone().unwrap_or_else(|| "-".into()),
            verdict,
            c.checks.clone(),
            c.files.to_string(),
            format!("+{} -{}", c.added, c.removed),
            format!("{:.1}s", c.duration_ms as f64 / 1000.0),
            usage,
            c.votes.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|k| {
            rows.iter()
                .map(|r| unicode_width::UnicodeWidthStr::width(r[k].as_str()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| {
                let pad = w.saturating_sub(unicode_width::UnicodeWidthStr::width(cell.as_str()));
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    match report.winner {
        Some(w) => out.push_str(&format!(
            "winner: candidate {w} (rule: {}) — {}\n",
            report.rule.describe(),
            report.why
        )),
        None => out.push_str(&format!("no winner: {}\n", report.why)),
    }
    if let Some(l) = &report.landed {
        out.push_str(&format!("landed: {l}\n"));
    }
    out.push_str(&format!(
        "every change is kept as refs/baton/compare/{}/<n>; `baton compare land {} N` lands another, `baton compare show {} --diff` shows them\n",
        report.id, report.id, report.id
    ));
    out
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(39).collect::<String>())
    } else {
        s
    }
}

/// The candidates' diffs one after another, each under a header line.
pub fn diffs(repo: &Repo, report: &CompareReport) -> Result<String, CompareError> {
    let mut out = String::new();
    for c in &report.candidates {
        out.push_str(&format!(
            "=== candidate {} ({}) — {}\n",
            c.number,
            one_line(&c.agent),
            c.verdict.describe()
        ));
        match &c.tree {
            Some(tree) => {
                let base_tree = repo.tree_of(&c.base)?;
                let patch = repo.patch(&base_tree, tree)?;
                if patch.is_empty() {
                    out.push_str("(no change)\n");
                }
                out.push_str(&String::from_utf8_lossy(&patch));
            }
            None => out.push_str("(no change)\n"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: u32, verdict: Verdict, lines: u64, finished: u32) -> CandidateReport {
        CandidateReport {
            number,
            agent: "cmd:x".into(),
            model: None,
            run_id: None,
            verdict,
            checks: "-".into(),
            files: 1,
            added: lines,
            removed: 0,
            duration_ms: 0,
            tokens: None,
            cost_usd: None,
            votes: 0,
            finished,
            cancelled: false,
            base: "b".into(),
            tree: None,
            kept_as: None,
            error: None,
            outcome: None,
        }
    }

    #[test]
    fn candidates_come_from_agents_counts_and_repeated_agents() {
        let got = candidates(
            &["codex:2,claude@sonnet".into()],
            &["cmd:echo a,b:c".into()],
            None,
            None,
        )
        .unwrap();
        let labels: Vec<String> = got.iter().map(Candidate::label).collect();
        assert_eq!(
            labels,
            ["codex", "codex", "claude@sonnet", "cmd:echo a,b:c"]
        );
        let three = candidates(&[], &["codex@gpt-5.5".into()], Some(3), None).unwrap();
        assert_eq!(three.len(), 3);
        assert_eq!(three[0].model.as_deref(), Some("gpt-5.5"));
        assert!(candidates(&[], &["codex".into()], Some(0), None).is_err());
        assert!(candidates(&["codex:0".into()], &[], None, None).is_err());
        assert!(candidates(&["nope".into()], &[], None, None).is_err());
    }

    #[test]
    fn the_smallest_passing_change_wins_unless_identical_ones_outvote_it() {
        let rows = vec![
            row(1, Verdict::ChecksFailed, 1, 1),
            row(2, Verdict::Passed, 9, 2),
            row(3, Verdict::Passed, 3, 3),
        ];
        let prints = vec!["a".to_string(), "b".into(), "c".into()];
        let c = choose(&rows, &prints);
        assert_eq!((c.winner, c.rule), (Some(2), Rule::Smallest));

        let rows = vec![
            row(1, Verdict::Passed, 9, 2),
            row(2, Verdict::Passed, 9, 3),
            row(3, Verdict::Passed, 3, 1),
        ];
        let prints = vec!["a".to_string(), "a".into(), "c".into()];
        let c = choose(&rows, &prints);
        assert_eq!((c.winner, c.rule), (Some(0), Rule::Votes));

        let rows = vec![row(1, Verdict::Passed, 3, 2), row(2, Verdict::Passed, 3, 1)];
        let prints = vec!["a".to_string(), "b".into()];
        let c = choose(&rows, &prints);
        assert_eq!((c.winner, c.rule), (Some(1), Rule::FirstToFinish));
        assert_eq!(c.tied.len(), 2);
    }

    #[test]
    fn whitespace_at_line_ends_does_not_make_a_change_different() {
        assert_eq!(
            fingerprint("index 1..2\n+a  \n-b"),
            fingerprint("index 3..4\n+a\n-b\t")
        );
    }
}

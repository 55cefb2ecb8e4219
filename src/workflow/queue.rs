//! The merge queue a sweep lands through. It keeps one promise: **nothing lands that
//! was not tested as it lands** (bors' rule). Each candidate is a run that passed on its
//! own and was kept; for a candidate, or a batch of them, in the order they came:
//!
//! 1. its 3-way merge onto the *current* tip of the target branch, in memory; a text
//!    conflict with the tip is decided at once (`conflict`, the paths named, the run
//!    kept), a conflict only with a batch mate waits for the next round;
//! 2. the batch's checks (each candidate's own, then the sweep's gate) on the merged
//!    tree, checked out detached in a landing worktree of its own; results are cached
//!    by (tree, command), so a tree is never verified twice — a run's own checks on its
//!    own tree seed the cache;
//! 3. only if they pass: one commit per candidate on the tip that was tested (the
//!    run's trailers plus `Baton-Sweep:`), the user's checkout moved with
//!    `read-tree -m -u` as `baton merge` moves it, and the branch by compare-and-swap
//!    from the tested tip — all under the repository lock, with each run's intent in
//!    its journal first, so `baton recover` finishes or undoes a landing cut short. A
//!    tip that moved meanwhile sends the batch back to 1; a candidate whose paths hold
//!    the user's uncommitted work waits (`dirty_overlap`), never written over;
//! 4. a failure of a batch is bisected: each half is merged onto the tip as it is by
//!    then and tested again, so the union that survives is verified before it lands,
//!    and two changes that pass alone but fail together never land together. A single
//!    candidate that fails is `integration_failed` (kept, or set aside by `--on-fail`).
//!
//! A failing check is retried (`[sweep] flaky_retries`, default 1) before it counts
//! against a single candidate, since a flake looks exactly like a failure; in a batch a
//! failure only splits the batch, and the halves are tested anyway, so a retry there
//! would only cost a run.
//!
//! The queue does not start runs or decide what the sweep does next; it returns each
//! candidate's [`Decision`].

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checklist::{CheckResult, CheckStatus, Checklist};
use crate::error::Result;
use crate::events::Events;
use crate::git::{Change, Repo, TreeMerge};
use crate::journal::{Journal, RepoLock};
use crate::outcome::{self, Intent, Operation};
use crate::report::{OutcomeAction, OutcomeReport, Policy, RunReport};
use crate::run::{self, land};
use crate::{process, worktree};

use super::sweep::{RunObservers, SweepEvent, SweepEvents};

/// A run that passed on its own and was kept, waiting to land.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The task's id in the sweep.
    pub task: String,
    /// The run as it was judged.
    pub report: RunReport,
}

/// A candidate in the queue, with what every round needs of it read once: the trees
/// of its base and its change, and the change itself (as the run's judge found it).
#[derive(Debug, Clone)]
struct Entry {
    task: String,
    report: RunReport,
    base_tree: String,
    tree: String,
    changes: Vec<Change>,
}

impl Entry {
    fn new(repo: &Repo, c: Candidate, trees: &mut HashMap<String, String>) -> Result<Entry> {
        // Most runs of a sweep share their base: its tree is read once.
        let base_tree = match trees.get(&c.report.base) {
            Some(t) => t.clone(),
            None => {
                let t = repo.tree_of(&c.report.base)?;
                trees.insert(c.report.base.clone(), t.clone());
                t
            }
        };
        let tree = c.report.tree.clone().unwrap_or_else(|| base_tree.clone());
        // The judge's list of the change is the diff of these trees, path by path.
        let changes = c
            .report
            .scope
            .iter()
            .flat_map(|s| s.paths.iter())
            .map(|p| Change {
                kind: p.change,
                path: p.path.clone(),
                old_path: p.old_path.clone(),
                old_mode: String::new(),
                new_mode: p.mode.clone().unwrap_or_default(),
                old_oid: String::new(),
                new_oid: String::new(),
                inside: vec![],
                added: p.added,
                removed: p.removed,
            })
            .collect();
        Ok(Entry {
            task: c.task,
            report: c.report,
            base_tree,
            tree,
            changes,
        })
    }

    fn run_id(&self) -> &str {
        &self.report.run_id
    }

    /// Every path its change touches.
    fn paths(&self) -> Vec<String> {
        outcome::touched(&self.changes)
    }
}

/// What the queue decided about a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Decision {
    /// On the target branch as `commit`.
    Landed {
        run_id: String,
        commit: String,
        target: String,
    },
    /// Its change conflicts with the tip at `paths`; the run is kept.
    Conflict { run_id: String, paths: Vec<String> },
    /// Its checks failed merged onto the tip: not landed, kept or set aside.
    IntegrationFailed {
        run_id: String,
        check: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log: Option<PathBuf>,
        #[serde(default)]
        tail: Vec<String>,
    },
    /// It would land on paths where the user has uncommitted work: it waits.
    DirtyOverlap {
        run_id: String,
        paths: Vec<String>,
        detail: String,
    },
    /// Its kept worktree was changed since it was judged: not the change that was
    /// verified, so the queue leaves it (`baton merge RUN` judges it again).
    Edited { run_id: String },
}

impl Decision {
    pub fn run_id(&self) -> &str {
        match self {
            Decision::Landed { run_id, .. }
            | Decision::Conflict { run_id, .. }
            | Decision::IntegrationFailed { run_id, .. }
            | Decision::DirtyOverlap { run_id, .. }
            | Decision::Edited { run_id } => run_id,
        }
    }

    /// The reason a task did not land, as the report spells it (`None` once landed).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Decision::Landed { .. } => None,
            Decision::Conflict { .. } => Some("conflict"),
            Decision::IntegrationFailed { .. } => Some("integration_failed"),
            Decision::DirtyOverlap { .. } => Some("dirty_overlap"),
            Decision::Edited { .. } => Some("edited"),
        }
    }
}

/// One task's decision.
#[derive(Debug, Clone)]
pub struct Decided {
    pub task: String,
    pub decision: Decision,
}

/// How the queue lands.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub sweep_id: String,
    /// The ref that moves: `refs/heads/<branch>`, or `HEAD` when it was detached.
    pub target: String,
    /// Checks run on every integrated tree, after the candidates' own.
    pub gate: Vec<String>,
    /// Reruns of a failing check before it counts against a single candidate.
    pub flaky_retries: u32,
    /// Candidates tested together.
    pub batch: usize,
    /// What becomes of a candidate that fails integrated: kept, stashed or reverted.
    pub on_fail: Policy,
    pub worktrees_dir: PathBuf,
    /// Where the queue's check logs go (the sweep's journal).
    pub logs: PathBuf,
    pub check_timeout: Duration,
    pub kill_grace: Duration,
}

/// What the queue did, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Sets of candidates tested (a batch, a half of one, a single candidate).
    pub tests: u32,
    /// Check commands run (every retry counted).
    pub checks_run: u32,
    /// Check commands answered from the cache.
    pub cache_hits: u32,
    /// Compare-and-swap updates of the target branch.
    pub landings: u32,
    /// Failed batches split in two.
    pub bisections: u32,
}

/// A cached result of one command on one tree.
struct Cached {
    passed: bool,
    /// Runs so far (a failure is final for a single candidate after 1 + flaky_retries).
    attempts: u32,
    result: CheckResult,
}

/// How a set of candidates fared on its merged tree.
enum Tested {
    Passed,
    Failed(Box<CheckResult>),
    /// Ctrl-C stopped a check: nothing is decided.
    Interrupted,
}

/// How a landing went.
enum Published {
    Landed(Vec<(Entry, String)>),
    /// The tip is not the one that was tested: the candidates, handed back.
    TipMoved(Vec<Entry>),
    /// Some candidates (by their place, with the paths) would touch the user's
    /// uncommitted work, as the message says; all are handed back.
    Dirty(Vec<Entry>, Vec<(usize, Vec<String>)>, String),
}

/// Where a tested landing is published: the strategy of step 3 for a target that is
/// not the local branch (`baton sweep land` pushes a remote's branch with a lease).
/// Without one the queue moves the local branch by compare-and-swap, the user's
/// checkout with it, and finishes each run's journal (`baton sweep`).
pub trait Publisher {
    /// The target as people read it (`main on <url>`).
    fn target_name(&self) -> String;
    /// Trailers of the commit of `task`, after the run's and `Baton-Sweep:`.
    fn trailers(&self, task: &str) -> Vec<String>;
    /// The commit that was verified for `task` (named by `Baton-Verified-Commit:` when
    /// the tree that lands differs), if the publisher has one where readers find it.
    fn verified_commit(&self, task: &str) -> Option<String>;
    /// Makes `new` (a descendant of `tip`) the target, only if the target is still at
    /// `tip`: true when it is now; false when the target had moved — the queue's
    /// target ref is then the new tip, and the queue tests again on it.
    fn publish(&mut self, repo: &Repo, tip: &str, new: &str) -> Result<bool>;
}

pub struct Queue<'a> {
    repo: &'a Repo,
    cfg: QueueConfig,
    /// `None`: the local branch (see [`Publisher`]).
    publisher: Option<Box<dyn Publisher + 'a>>,
    events: &'a SweepEvents,
    observers: &'a RunObservers,
    waiting: VecDeque<Entry>,
    /// Candidates waiting for the user's tree (dirty_overlap), tried again at the end.
    parked: Vec<Entry>,
    cache: HashMap<(String, String), Cached>,
    /// The tree of each base commit seen.
    base_trees: HashMap<String, String>,
    stats: QueueStats,
}

impl<'a> Queue<'a> {
    pub fn new(
        repo: &'a Repo,
        cfg: QueueConfig,
        events: &'a SweepEvents,
        observers: &'a RunObservers,
    ) -> Queue<'a> {
        Queue {
            repo,
            cfg,
            publisher: None,
            events,
            observers,
            waiting: VecDeque::new(),
            parked: vec![],
            cache: HashMap::new(),
            base_trees: HashMap::new(),
            stats: QueueStats::default(),
        }
    }

    /// Lands through `publisher` instead of moving the local branch.
    pub fn publish_with(mut self, publisher: Box<dyn Publisher + 'a>) -> Queue<'a> {
        self.publisher = Some(publisher);
        self
    }

    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// A candidate enters the queue. Its own checks passed on its own tree: that is
    /// already a verified (tree, command).
    pub fn push(&mut self, candidate: Candidate) -> Result<()> {
        if let Some(tree) = &candidate.report.tree {
            for check in candidate.report.checks.iter().filter(|c| c.status.passed()) {
                self.cache
                    .entry((tree.clone(), check.command.clone()))
                    .or_insert(Cached {
                        passed: true,
                        attempts: 1,
                        result: check.clone(),
                    });
            }
        }
        self.events.emit(SweepEvent::Candidate {
            task: candidate.task.clone(),
            run_id: candidate.report.run_id.clone(),
        })?;
        let entry = Entry::new(self.repo, candidate, &mut self.base_trees)?;
        self.waiting.push_back(entry);
        Ok(())
    }

    /// Whether a round is worth starting now. With checks to run, the queue waits for a
    /// full batch while runs are still going (fewer check runs); with nothing to check,
    /// or nothing left to wait for, it goes at once.
    pub fn ready(&self, nothing_running: bool) -> bool {
        !self.waiting.is_empty()
            && (nothing_running
                || self.waiting.len() >= self.cfg.batch
                || self.needs_no_checks(self.waiting.iter()))
    }

    fn needs_no_checks<'c>(&self, mut set: impl Iterator<Item = &'c Entry>) -> bool {
        self.cfg.gate.is_empty() && set.all(|c| c.report.settings.checks.is_empty())
    }

    /// Candidates that waited for the user's tree go back into the queue (once the rest
    /// is done); true when there were any.
    pub fn unpark(&mut self) -> bool {
        let any = !self.parked.is_empty();
        self.waiting.extend(self.parked.drain(..));
        any
    }

    /// Candidates never decided (the sweep was interrupted): their runs stay kept.
    pub fn undecided(&self) -> usize {
        self.waiting.len()
    }

    /// One round: the next batch, tested and landed (bisected on a failure), every
    /// candidate of it decided unless a Ctrl-C came first.
    pub fn round(&mut self) -> Result<Vec<Decided>> {
        let mut decided = vec![];
        // A run landed or set aside by hand meanwhile (`baton merge RUN`) is not ours.
        // (A published candidate's run is not in this repository: nothing to check.)
        if self.publisher.is_none() {
            let mut fresh = VecDeque::new();
            for c in self.waiting.drain(..) {
                let pending = super::sweep::read_run(&self.repo.common_dir, c.run_id())
                    .is_some_and(|r| r.outcome.is_some_and(|o| o.action.is_pending()));
                if pending {
                    fresh.push_back(c);
                }
            }
            self.waiting = fresh;
        }
        let take = if self.needs_no_checks(self.waiting.iter()) {
            self.waiting.len()
        } else {
            self.cfg.batch.min(self.waiting.len())
        };
        let batch: Vec<Entry> = self.waiting.drain(..take).collect();
        if !batch.is_empty() {
            self.settle(batch, &mut decided)?;
        }
        Ok(decided)
    }

    /// The ref's commit now.
    fn tip(&self) -> Result<String> {
        self.repo.ref_target(&self.cfg.target).ok_or_else(|| {
            crate::error::Error::Usage(format!(
                "the sweep's target {} is gone; nothing more can land",
                self.cfg.target
            ))
        })
    }

    /// The branch's name as people read it.
    fn target_name(&self) -> String {
        if let Some(p) = &self.publisher {
            return p.target_name();
        }
        match self.cfg.target.strip_prefix("refs/heads/") {
            Some(b) => b.to_string(),
            None => "HEAD (detached)".into(),
        }
    }

    /// True when the user's checkout is on the target: landing must move it too.
    fn on_checkout(&self) -> Result<bool> {
        if self.publisher.is_some() {
            return Ok(false);
        }
        let head = self.repo.head()?;
        Ok(match head.branch.as_deref() {
            Some(b) => b == self.cfg.target,
            None => self.cfg.target == "HEAD",
        })
    }

    /// Decides every candidate of `set` (or puts it back to wait).
    fn settle(&mut self, set: Vec<Entry>, decided: &mut Vec<Decided>) -> Result<()> {
        let mut set = set;
        loop {
            if process::interrupted() {
                put_back(&mut self.waiting, set);
                return Ok(());
            }
            let tip = self.tip()?;
            let tip_tree = self.repo.tree_of(&tip)?;
            let checkout = self.on_checkout()?;
            // The user's uncommitted work: a candidate that would write over it waits.
            let (clean, dirty) = self.split_dirty(set, checkout)?;
            for (c, paths) in dirty {
                self.park(c, paths, None, decided)?;
            }
            // 1. The union onto the tip, in order. One that does not merge is looked at
            // alone: a conflict with the tip is final (`conflict`); one only with a
            // batch mate goes back to the front of the queue, for the next round.
            let (members, trees, unmerged) = self.chain(&tip_tree, clean)?;
            let mut deferred = vec![];
            for c in unmerged {
                match self.repo.merge_trees(&c.base_tree, &tip_tree, &c.tree)? {
                    TreeMerge::Clean(_) => deferred.push(c),
                    TreeMerge::Conflicts(paths) => {
                        self.events.emit(SweepEvent::Conflict {
                            task: c.task.clone(),
                            run_id: c.run_id().to_string(),
                            paths: paths.clone(),
                        })?;
                        decided.push(Decided {
                            task: c.task.clone(),
                            decision: Decision::Conflict {
                                run_id: c.run_id().to_string(),
                                paths,
                            },
                        });
                    }
                }
            }
            put_back(&mut self.waiting, deferred);
            let Some(tree) = trees.last().cloned() else {
                return Ok(());
            };
            let single = members.len() == 1;
            // 2. The checks on the merged tree.
            match self.verify(&tip, &tree, &members, single)? {
                Tested::Interrupted => {
                    put_back(&mut self.waiting, members);
                    return Ok(());
                }
                // 3. Land as tested, or go round again.
                Tested::Passed => {
                    match self.publish(&tip, &tip_tree, checkout, members, &trees)? {
                        Published::Landed(landed) => {
                            for (c, commit) in landed {
                                decided.push(Decided {
                                    task: c.task.clone(),
                                    decision: Decision::Landed {
                                        run_id: c.run_id().to_string(),
                                        commit,
                                        target: self.target_name(),
                                    },
                                });
                            }
                            return Ok(());
                        }
                        Published::TipMoved(members) => {
                            self.events.emit(SweepEvent::TipMoved {
                                tested: tip.clone(),
                            })?;
                            set = members;
                        }
                        Published::Dirty(members, overlaps, detail) => {
                            let mut rest = vec![];
                            for (i, c) in members.into_iter().enumerate() {
                                match overlaps.iter().find(|(j, _)| *j == i) {
                                    Some((_, paths)) => {
                                        self.park(c, paths.clone(), Some(detail.clone()), decided)?
                                    }
                                    None => rest.push(c),
                                }
                            }
                            set = rest;
                        }
                    }
                }
                Tested::Failed(check) if single => {
                    if let Some(c) = members.into_iter().next() {
                        self.reject(c, *check, decided)?;
                    }
                    return Ok(());
                }
                Tested::Failed(_) => {
                    // 4. Bisect: each half onto the tip as it is by then, tested again
                    // (the first half's tree is new; the second's, after the first
                    // landed, is often the failed union's, answered by the cache).
                    self.stats.bisections += 1;
                    let mut left = members;
                    let right = left.split_off(left.len() / 2);
                    self.settle(left, decided)?;
                    return self.settle(right, decided);
                }
            }
        }
    }

    /// Candidates whose own change touches a path where the user has uncommitted work
    /// (or an untracked file in the way), when the user's checkout is on the target.
    #[expect(clippy::type_complexity)]
    fn split_dirty(
        &self,
        set: Vec<Entry>,
        checkout: bool,
    ) -> Result<(Vec<Entry>, Vec<(Entry, Vec<String>)>)> {
        if set.is_empty() || !checkout {
            return Ok((set, vec![]));
        }
        // One `git status` for all of them.
        let mut all: Vec<String> = set.iter().flat_map(Entry::paths).collect();
        all.sort();
        all.dedup();
        let dirty = self.repo.dirty_paths(&all)?;
        let mut clean = vec![];
        let mut waiting = vec![];
        for c in set {
            let mut overlap: Vec<String> = c
                .paths()
                .into_iter()
                .filter(|p| dirty.contains(p))
                .collect();
            overlap.extend(outcome::in_the_way(&self.repo.root, &c.changes));
            overlap.sort();
            overlap.dedup();
            if overlap.is_empty() {
                clean.push(c);
            } else {
                waiting.push((c, overlap));
            }
        }
        Ok((clean, waiting))
    }

    fn park(
        &mut self,
        c: Entry,
        paths: Vec<String>,
        detail: Option<String>,
        decided: &mut Vec<Decided>,
    ) -> Result<()> {
        let detail = detail.unwrap_or_else(|| {
            format!(
                "you have uncommitted changes (or files in the way) at {}; the change waits — commit or stash them, then `baton sweep resume {}`",
                quote_all(&paths),
                self.cfg.sweep_id
            )
        });
        self.events.emit(SweepEvent::DirtyOverlap {
            task: c.task.clone(),
            run_id: c.run_id().to_string(),
            paths: paths.clone(),
        })?;
        decided.push(Decided {
            task: c.task.clone(),
            decision: Decision::DirtyOverlap {
                run_id: c.run_id().to_string(),
                paths,
                detail,
            },
        });
        self.parked.push(c);
        Ok(())
    }

    /// The candidates merged one after the other onto `tip_tree`, in memory: those
    /// that merge and the tree after each, and those that do not.
    fn chain(
        &self,
        tip_tree: &str,
        set: Vec<Entry>,
    ) -> Result<(Vec<Entry>, Vec<String>, Vec<Entry>)> {
        let mut acc = tip_tree.to_string();
        let (mut members, mut trees, mut unmerged) = (vec![], vec![], vec![]);
        for c in set {
            let merged = if c.base_tree == acc {
                TreeMerge::Clean(c.tree.clone())
            } else {
                self.repo.merge_trees(&c.base_tree, &acc, &c.tree)?
            };
            match merged {
                TreeMerge::Clean(t) => {
                    acc = t.clone();
                    trees.push(t);
                    members.push(c);
                }
                TreeMerge::Conflicts(_) => unmerged.push(c),
            }
        }
        Ok((members, trees, unmerged))
    }

    /// The checks of `members` (each one's own, then the gate) on `tree`, the merge of
    /// them all onto `tip`: from the cache where the tree was verified before, else in
    /// a landing worktree. `single`: a failure here decides a candidate, so it is
    /// retried first.
    fn verify(&mut self, tip: &str, tree: &str, members: &[Entry], single: bool) -> Result<Tested> {
        let mut checks: Vec<String> = vec![];
        for c in members
            .iter()
            .flat_map(|c| c.report.settings.checks.iter())
            .chain(self.cfg.gate.iter())
        {
            if !checks.contains(c) {
                checks.push(c.clone());
            }
        }
        self.stats.tests += 1;
        let tasks: Vec<String> = members.iter().map(|c| c.task.clone()).collect();
        self.events.emit(SweepEvent::Testing {
            tasks: tasks.clone(),
            tip: tip.to_string(),
            tree: tree.to_string(),
            checks: checks.len(),
        })?;
        let most = if single {
            1 + self.cfg.flaky_retries
        } else {
            1
        };
        // What the cache answers, and what must run (with the runs it already had).
        let mut to_run: Vec<(String, u32)> = vec![];
        for command in &checks {
            match self.cache.get(&(tree.to_string(), command.clone())) {
                Some(hit) if hit.passed || hit.attempts >= most => {
                    self.stats.cache_hits += 1;
                    self.events.emit(SweepEvent::Cached {
                        tasks: tasks.clone(),
                        tree: tree.to_string(),
                        command: command.clone(),
                        passed: hit.passed,
                    })?;
                    if !hit.passed {
                        return Ok(Tested::Failed(Box::new(hit.result.clone())));
                    }
                }
                Some(hit) => to_run.push((command.clone(), hit.attempts)),
                None => to_run.push((command.clone(), 0)),
            }
        }
        if to_run.is_empty() {
            return Ok(Tested::Passed);
        }
        let n = self.stats.tests;
        let repo = self.repo;
        let path = worktree::location(
            &self.cfg.worktrees_dir,
            repo,
            &landing_name(&self.cfg.sweep_id, n),
        )?;
        let message = format!(
            "baton sweep {}: {} merged onto {tip}\n",
            self.cfg.sweep_id,
            tasks.join(", ")
        );
        land::in_detached_tree(repo, &path, tree, tip, &message, |wt| {
            self.run_checks(wt, n, tree, &tasks, to_run, most)
        })?
    }

    fn run_checks(
        &mut self,
        wt: &Path,
        n: u32,
        tree: &str,
        tasks: &[String],
        to_run: Vec<(String, u32)>,
        most: u32,
    ) -> Result<Tested> {
        for (k, (command, done)) in to_run.into_iter().enumerate() {
            let mut attempt = done;
            loop {
                attempt += 1;
                let log = self
                    .cfg
                    .logs
                    .join(format!("{n:03}-{:02}-{attempt}.log", k + 1));
                let result = self.run_check(wt, &command, log)?;
                self.stats.checks_run += 1;
                self.events.emit(SweepEvent::Check {
                    tasks: tasks.to_vec(),
                    tree: tree.to_string(),
                    attempt,
                    result: result.clone(),
                })?;
                if result.status == CheckStatus::Interrupted {
                    return Ok(Tested::Interrupted);
                }
                let passed = result.status.passed();
                if passed && attempt > 1 {
                    self.events.emit(SweepEvent::Flaky {
                        tasks: tasks.to_vec(),
                        command: command.clone(),
                        attempts: attempt,
                    })?;
                }
                self.cache.insert(
                    (tree.to_string(), command.clone()),
                    Cached {
                        passed,
                        attempts: attempt,
                        result: result.clone(),
                    },
                );
                if passed {
                    break;
                }
                if attempt >= most {
                    return Ok(Tested::Failed(Box::new(result)));
                }
            }
        }
        Ok(Tested::Passed)
    }

    fn run_check(&self, wt: &Path, command: &str, log: PathBuf) -> Result<CheckResult> {
        let commands = [command.to_string()];
        let list = Checklist {
            commands: &commands,
            worktree: wt,
            timeout: self.cfg.check_timeout,
            kill_grace: self.cfg.kill_grace,
            env: vec![("BATON_SWEEP_ID".into(), self.cfg.sweep_id.clone())],
            cancel: process::Cancel::default(),
        };
        let results = list.run(&|_| log.clone(), &mut |_| {})?;
        results
            .into_iter()
            .next()
            .ok_or_else(|| crate::error::Error::Usage(format!("the check `{command}` did not run")))
    }

    /// One commit per candidate, each on the one before, the first on the tested tip;
    /// and the last.
    fn commits(
        &self,
        tip: &str,
        tip_tree: &str,
        members: &[Entry],
        trees: &[String],
    ) -> Result<(Vec<String>, String)> {
        let repo = self.repo;
        let mut commits = vec![];
        let mut parent = tip.to_string();
        let mut parent_tree = tip_tree.to_string();
        for (c, tree) in members.iter().zip(trees) {
            if *tree == parent_tree {
                // Its change is already there (another task made the same one).
                commits.push(parent.clone());
                continue;
            }
            let mut message = run::commit_message(&c.report);
            if c.tree != *tree {
                let verified = match self
                    .publisher
                    .as_ref()
                    .and_then(|p| p.verified_commit(&c.task))
                {
                    Some(v) => v,
                    None => repo.commit_tree(&c.tree, &[&c.report.base], &message)?,
                };
                message.push_str(&format!("Baton-Verified-Commit: {verified}\n"));
            }
            message.push_str(&format!("Baton-Sweep: {}\n", self.cfg.sweep_id));
            for t in self.publisher.iter().flat_map(|p| p.trailers(&c.task)) {
                message.push_str(&format!("{t}\n"));
            }
            parent = repo.commit_tree(tree, &[&parent], &message)?;
            parent_tree = tree.clone();
            commits.push(parent.clone());
        }
        Ok((commits, parent))
    }

    /// Lands `members` through the publisher: their commits on the tested tip, then
    /// the publisher's compare-and-swap of the target (no checkout, no run journal:
    /// the runs are elsewhere).
    fn publish_elsewhere(
        &mut self,
        tip: &str,
        tip_tree: &str,
        members: Vec<Entry>,
        trees: &[String],
    ) -> Result<Published> {
        if self.tip()? != tip {
            return Ok(Published::TipMoved(members));
        }
        let (commits, new) = self.commits(tip, tip_tree, &members, trees)?;
        process::crash_point("land.push");
        let Some(publisher) = self.publisher.as_mut() else {
            return Ok(Published::TipMoved(members));
        };
        if !publisher.publish(self.repo, tip, &new)? {
            return Ok(Published::TipMoved(members));
        }
        process::crash_point("land.pushed");
        self.stats.landings += 1;
        self.events.emit(SweepEvent::Landed {
            tasks: members.iter().map(|c| c.task.clone()).collect(),
            commits: commits.clone(),
            target: self.target_name(),
            old: tip.to_string(),
            new,
        })?;
        Ok(Published::Landed(
            members.into_iter().zip(commits).collect(),
        ))
    }

    /// Lands `members` (tested merged onto `tip` as `trees`) in one compare-and-swap:
    /// one commit each, the user's checkout (when it is on the target) moved first,
    /// exactly as `baton merge` moves it.
    fn publish(
        &mut self,
        tip: &str,
        tip_tree: &str,
        checkout: bool,
        members: Vec<Entry>,
        trees: &[String],
    ) -> Result<Published> {
        if self.publisher.is_some() {
            return self.publish_elsewhere(tip, tip_tree, members, trees);
        }
        let repo = self.repo;
        let _lock = RepoLock::acquire(&repo.common_dir)?;
        if self.tip()? != tip {
            return Ok(Published::TipMoved(members));
        }
        let last = trees
            .last()
            .cloned()
            .unwrap_or_else(|| tip_tree.to_string());
        let mut paths: Vec<String> = members.iter().flat_map(Entry::paths).collect();
        paths.sort();
        paths.dedup();
        if checkout {
            let retry = format!("then `baton sweep resume {}`", self.cfg.sweep_id);
            if let Some(op) = repo.operation_in_progress() {
                let all = (0..members.len()).map(|i| (i, vec![])).collect();
                return Ok(Published::Dirty(
                    members,
                    all,
                    format!("you are in the middle of {op}; finish or abort it, {retry}"),
                ));
            }
            // Checked again under the lock: the user may have edited since the round began.
            let mut overlap = repo.dirty_paths(&paths)?;
            for c in &members {
                overlap.extend(outcome::in_the_way(&repo.root, &c.changes));
            }
            if !overlap.is_empty() {
                let mut hit = vec![];
                for (i, c) in members.iter().enumerate() {
                    let mine: Vec<String> = c
                        .paths()
                        .into_iter()
                        .filter(|p| overlap.contains(p))
                        .collect();
                    if !mine.is_empty() {
                        hit.push((i, mine));
                    }
                }
                let message = format!(
                    "you have uncommitted changes (or files in the way) at {}; the change waits — commit or stash them, {retry}",
                    quote_all(&overlap)
                );
                return Ok(Published::Dirty(members, hit, message));
            }
        }
        let (commits, new) = self.commits(tip, tip_tree, &members, trees)?;
        // Each run's journal holds the landing's intent before anything changes, so
        // `baton recover` finishes (the ref is all that is left) or undoes it.
        let mut journals = vec![];
        for (c, own) in members.iter().zip(&commits) {
            let journal = Arc::new(Journal::open(&repo.common_dir, c.run_id())?);
            journal.begin(&Intent {
                pid: std::process::id(),
                pid_start: process::own_start_time(),
                op: Operation::Merge {
                    target: self.cfg.target.clone(),
                    old: tip.to_string(),
                    new: new.clone(),
                    from: tip_tree.to_string(),
                    to: last.clone(),
                    paths: paths.clone(),
                    commit: Some(own.clone()),
                },
            })?;
            journals.push(journal);
        }
        let abandon = |journals: &[Arc<Journal>]| {
            for j in journals {
                let _ = j.done();
            }
        };
        process::crash_point("sweep.intent");
        if checkout {
            if let Err(e) = repo.switch_tree(tip_tree, &last) {
                abandon(&journals);
                let all = (0..members.len())
                    .map(|i| (i, members[i].paths()))
                    .collect();
                return Ok(Published::Dirty(
                    members,
                    all,
                    format!("git refused to update your tree ({e}); the change waits"),
                ));
            }
        }
        process::crash_point("sweep.switched");
        let reflog = format!(
            "baton: sweep {} lands {} run(s)",
            self.cfg.sweep_id,
            members.len()
        );
        if let Err(e) = repo.update_ref(&self.cfg.target, &new, tip, &reflog) {
            // The branch moved between our check and our update: put the tree back.
            if checkout {
                let _ = repo.switch_tree(&last, tip_tree);
            }
            abandon(&journals);
            if self.tip()? == tip {
                // It did not move, git could not move it (a lock of its own in the
                // way): trying again at once would only fail again.
                return Err(e.into());
            }
            return Ok(Published::TipMoved(members));
        }
        process::crash_point("sweep.ref");
        self.stats.landings += 1;
        self.events.emit(SweepEvent::Landed {
            tasks: members.iter().map(|c| c.task.clone()).collect(),
            commits: commits.clone(),
            target: self.target_name(),
            old: tip.to_string(),
            new: new.clone(),
        })?;
        let mut landed = vec![];
        let count = members.len();
        for ((c, commit), journal) in members.into_iter().zip(commits).zip(journals) {
            let mut report = journal.read_state()?;
            worktree::retire(repo, &report.worktree, &report.branch, &report.base)?;
            let outcome = OutcomeReport {
                action: OutcomeAction::Merged,
                message: format!(
                    "committed onto {} as {} by sweep {}{}",
                    self.target_name(),
                    &commit[..commit.len().min(10)],
                    self.cfg.sweep_id,
                    if count > 1 {
                        format!(" (one of {count} tested together)")
                    } else {
                        String::new()
                    }
                ),
                commit: Some(commit.clone()),
                target: Some(self.target_name()),
                stash: None,
                paths: c.paths(),
            };
            let events = Events::new(&report.run_id, journal.clone(), (self.observers)(&c.task));
            land::finish(&journal, &events, &mut report, outcome)?;
            landed.push((c, commit));
        }
        Ok(Published::Landed(landed))
    }

    /// A single candidate failed merged onto the tip: not landed, and kept or set
    /// aside as `--on-fail` says.
    fn reject(&mut self, c: Entry, check: CheckResult, decided: &mut Vec<Decided>) -> Result<()> {
        self.events.emit(SweepEvent::IntegrationFailed {
            task: c.task.clone(),
            run_id: c.run_id().to_string(),
            check: check.command.clone(),
            status: check.status.name().to_string(),
            log: check.log.clone(),
        })?;
        if self.cfg.on_fail != Policy::Keep {
            let journal = Arc::new(Journal::open(&self.repo.common_dir, c.run_id())?);
            let mut report = journal.read_state()?;
            let outcome = run::land(
                self.repo,
                &report,
                &journal,
                self.cfg.on_fail,
                run::Target::Branch,
            )?;
            let events = Events::new(&report.run_id, journal.clone(), (self.observers)(&c.task));
            land::finish(&journal, &events, &mut report, outcome)?;
        }
        decided.push(Decided {
            task: c.task.clone(),
            decision: Decision::IntegrationFailed {
                run_id: c.run_id().to_string(),
                check: check.command,
                status: check.status.name().to_string(),
                log: check.log,
                tail: check.tail,
            },
        });
        Ok(())
    }
}

/// Candidates back to the front of the queue, in their order.
fn put_back(waiting: &mut VecDeque<Entry>, set: Vec<Entry>) {
    for c in set.into_iter().rev() {
        waiting.push_front(c);
    }
}

fn quote_all(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| crate::ui::quote_path(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of the `n`th landing worktree of sweep `sweep_id`.
fn landing_name(sweep_id: &str, n: u32) -> String {
    format!("{sweep_id}{LANDING}{n}")
}

/// What every landing worktree's name holds after its sweep's id.
const LANDING: &str = "-land-";

/// Removes the landing worktrees a killed queue of sweep `sweep_id` left (the queue
/// counts them from 1 again when it starts), so they cannot be mistaken for its new
/// ones or pile up.
pub fn remove_landing_worktrees(repo: &Repo, sweep_id: &str) -> Result<()> {
    let prefix = format!("{sweep_id}{LANDING}");
    for wt in repo.worktrees()? {
        let ours = wt
            .path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
        if ours {
            let _ = worktree::remove_detached(repo, &wt.path);
        }
    }
    let _ = worktree::prune(repo);
    Ok(())
}

/// The batch size when none is given: about a quarter of the sweep, so that a sweep
/// whose candidates all pass lands in about four tested batches, at most 16 at once
/// (a failure costs about two tests per halving).
pub fn default_batch(tasks: usize) -> usize {
    tasks.div_ceil(4).clamp(1, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_batch_is_a_quarter_of_the_sweep_within_bounds() {
        assert_eq!(default_batch(0), 1);
        assert_eq!(default_batch(3), 1);
        assert_eq!(default_batch(9), 3);
        assert_eq!(default_batch(32), 8);
        assert_eq!(default_batch(500), 16);
    }

    #[test]
    fn a_decision_names_its_reason_as_the_report_spells_it() {
        let d = Decision::DirtyOverlap {
            run_id: "r".into(),
            paths: vec!["a".into()],
            detail: "d".into(),
        };
        assert_eq!(d.reason(), Some("dirty_overlap"));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["reason"], "dirty_overlap");
        let back: Decision = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }
}

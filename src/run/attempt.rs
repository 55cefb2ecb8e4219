//! Attempt: one agent in one worktree, start to exit → an [`AgentStep`]. The agent
//! may start a fresh session or resume one, in a worktree made for it or one that
//! was used before; judging what it did is `judge`'s job, not this one's.
//!
//! Around the agent: the guard notes the git directory's control files and refs
//! before and puts back what the agent changed after; the worktree's `.git` link is
//! restored if the agent rewrote it (every git command of the judge reads it).

use std::path::Path;
use std::time::SystemTime;

use crate::agent::{AgentContext, Backend};
use crate::error::{Error, Result};
use crate::events::{Events, RunEvent};
use crate::git::Repo;
use crate::guard::Guard;
use crate::report::AgentReport;
use crate::worktree;

/// What one agent did, as far as baton can tell without judging its change.
pub struct AgentStep {
    /// The agent's report, its failure class decided.
    pub report: AgentReport,
    /// Control files of the git directory the agent changed (put back since).
    pub restored: Vec<String>,
    /// The agent rewrote the worktree's `.git` link (put back since).
    pub link_broken: bool,
    /// The agent's start by the worktree filesystem's clock: what the judge's
    /// fast path compares file times with.
    pub started: SystemTime,
    /// What the user should know (refs the agent moved, processes it left).
    pub warnings: Vec<String>,
}

/// Runs `backend` in `ctx.worktree`, on `branch`, reporting to `events`.
pub async fn attempt(
    repo: &Repo,
    events: &Events,
    agent: &str,
    backend: &dyn Backend,
    ctx: &AgentContext,
    branch: &str,
) -> Result<AgentStep> {
    let wt_path = ctx.worktree.clone();
    let git_link = worktree::git_link(&wt_path);
    events.emit(RunEvent::AgentStarted {
        agent: agent.to_string(),
    })?;
    let guard = Guard::before(repo, &wt_path, branch)?;
    let started = worktree::file_clock(&wt_path).map_err(|source| Error::Io {
        context: format!("could not write next to {}", wt_path.display()),
        source,
    })?;
    let mut journal_failure = None;
    let mut report = backend
        .run_async(ctx, &mut |event| {
            if let Err(e) = events.emit(RunEvent::agent(&event)) {
                journal_failure.get_or_insert(e);
            }
        })
        .await?;
    if let Some(e) = journal_failure {
        return Err(e.into());
    }
    events.emit(RunEvent::AgentFinished {
        result: report.clone(),
    })?;
    let mut warnings = vec![];
    if report.left_background_process {
        warnings.push(
            "the agent left a background process running; baton killed its process group".into(),
        );
    }
    let trespass = guard.after(repo)?;
    for w in &trespass.warnings {
        events.emit(RunEvent::Warning { message: w.clone() })?;
    }
    warnings.extend(trespass.warnings);
    report.class = crate::agent::classify(&report);
    let link_broken = restore_link(&wt_path, git_link.as_deref());
    Ok(AgentStep {
        report,
        restored: trespass.restored,
        link_broken,
        started,
        warnings,
    })
}

/// Puts back the worktree's link to the repository if the agent rewrote it; true
/// when it had to.
fn restore_link(wt_path: &Path, original: Option<&str>) -> bool {
    if worktree::git_link(wt_path).as_deref() == original {
        return false;
    }
    if let Some(original) = original {
        let _ = std::fs::write(wt_path.join(".git"), original);
    }
    true
}

//! The errors that stop baton from doing its job (as opposed to verdicts, which are
//! data in the run report). Each stage module has its own error enum; this one gathers
//! them for the command line, which prints the message and its causes once.

use crate::{agent, config, duration, git, handoff, journal, outcome, process, scope, worktree};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Handoff(#[from] handoff::HandoffError),
    #[error(transparent)]
    Scope(#[from] scope::ScopeError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Worktree(#[from] worktree::WorktreeError),
    #[error(transparent)]
    Agent(#[from] agent::AgentError),
    #[error(transparent)]
    Outcome(#[from] outcome::OutcomeError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Duration(#[from] duration::DurationError),
    /// Bad usage that clap cannot catch; the message says what to do instead.
    #[error("{0}")]
    Usage(String),
    #[error(
        "run {run_id} did not pass ({verdict}); baton only lands verified changes — `baton stash {run_id}` keeps it for `git stash apply`"
    )]
    NotVerified {
        run_id: String,
        verdict: String,
        scope_violated: bool,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

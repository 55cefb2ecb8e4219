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
    Warm(#[from] worktree::warm::WarmError),
    #[error(transparent)]
    Agent(#[from] agent::AgentError),
    #[error(transparent)]
    Outcome(#[from] outcome::OutcomeError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Duration(#[from] duration::DurationError),
    /// A sweep's task file or journal (`baton sweep`).
    #[error(transparent)]
    Sweep(#[from] crate::workflow::SweepError),
    /// A sweep over machines (`baton worker`, `sweep land`, `sweep status --remote`).
    #[error(transparent)]
    Remote(Box<crate::workflow::remote::RemoteError>),
    #[error(transparent)]
    Precommit(#[from] crate::workflow::precommit::PrecommitError),
    /// `baton commit` refused before committing anything.
    #[error(transparent)]
    Commit(#[from] crate::workflow::commit::CommitError),
    /// `baton sweep plan` could not write the manifest asked for.
    #[error(transparent)]
    Manifest(#[from] crate::workflow::manifest::ManifestError),
    /// Bad usage that clap cannot catch; the message says what to do instead.
    #[error("{0}")]
    Usage(String),
    /// A run cannot be landed as asked (not kept, not verified, its worktree gone).
    #[error(transparent)]
    Refused(crate::run::Refusal),
    /// baton itself failed after the run had started; the journal says where.
    #[error(transparent)]
    RunFailed(RunFailed),
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

// Boxed: its messages carry the commands to run, and every `Result` would pay for them.
impl From<crate::workflow::remote::RemoteError> for Error {
    fn from(e: crate::workflow::remote::RemoteError) -> Error {
        Error::Remote(Box::new(e))
    }
}

/// An error that stopped a run after it had started: the run's journal records the
/// stage it stopped in (`baton status`, `baton show`), and `baton recover` can finish
/// or roll back what it left. Shown as the error itself; the run is a hint.
#[derive(Debug)]
pub struct RunFailed {
    pub run_id: String,
    pub stage: crate::report::Stage,
    pub journal: std::path::PathBuf,
    pub error: Box<Error>,
}

impl std::fmt::Display for RunFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for RunFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

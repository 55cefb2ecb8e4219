//! Every exit status baton returns, and the one place that decides which applies.
//!
//! The numbers are a contract with scripts and CI jobs (README.md lists them), so they
//! never change meaning.

use crate::error::Error;
use crate::report::{OutcomeAction, Policy, RunReport, Verdict};

/// The run landed, or passed and was handled as asked.
pub const OK: i32 = 0;
/// A check of the checklist failed or timed out.
pub const CHECKS_FAILED: i32 = 1;
/// Bad usage or configuration: nothing was started, nothing was touched.
pub const USAGE: i32 = 2;
/// The change left its scope (or touched a denied path, `.git`, an escaping symlink).
pub const SCOPE_VIOLATION: i32 = 3;
/// The agent failed (crashed, timed out, went idle, or changed nothing) on every backend.
pub const AGENT_FAILED: i32 = 4;
/// The change conflicts with the user's branch or uncommitted work: nothing was written.
pub const CONFLICT: i32 = 5;
/// baton itself failed after the run had started (a journal, git or process error in
/// the middle of a run): the run's journal says which stage it stopped in, and
/// `baton recover` finishes or rolls back what it left.
pub const BATON_FAILED: i32 = 6;
/// `baton sweep land`: another lander holds the sweep's lease (or took it over from
/// this one): nothing was landed by this lander after that.
pub const LEASE_HELD: i32 = 7;
/// Interrupted by Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;

/// The status for an error that stopped baton from doing its job. Every kind of error
/// is named, so a new one must be given its status here.
pub fn for_error(err: &Error) -> i32 {
    use crate::run::Refusal;
    use crate::workflow::precommit::PrecommitError;
    match err {
        Error::Interrupted => INTERRUPTED,
        // A setup command that fails is the configuration's fault, not baton's: the
        // run stops with its output, and the worktree is left for `baton recover`.
        Error::RunFailed(f)
            if matches!(
                *f.error,
                Error::Warm(crate::worktree::warm::WarmError::Setup { .. })
            ) =>
        {
            USAGE
        }
        Error::RunFailed(_) => BATON_FAILED,
        Error::Refused(Refusal::NotVerified {
            scope_violated: true,
            ..
        }) => SCOPE_VIOLATION,
        Error::Refused(Refusal::NotVerified { .. } | Refusal::IntegrationFailed { .. }) => {
            CHECKS_FAILED
        }
        Error::Refused(
            Refusal::NotKept { .. } | Refusal::StillRunning { .. } | Refusal::WorktreeGone { .. },
        ) => USAGE,
        // Nothing restored: files were changed since the fix, as for a conflict.
        Error::Precommit(PrecommitError::ChangedSince { .. }) => CONFLICT,
        // The sweep's own journal could not be written once it had started.
        Error::Sweep(e) if e.after_start() => BATON_FAILED,
        Error::Sweep(_) => USAGE,
        Error::Remote(e) => e.exit_code(),

        // Refused before anything was started or touched.
        Error::Precommit(_)
        | Error::Commit(_)
        | Error::Manifest(_)
        | Error::Git(_)
        | Error::Handoff(_)
        | Error::Scope(_)
        | Error::Config(_)
        | Error::Journal(_)
        | Error::Worktree(_)
        | Error::Warm(_)
        | Error::Agent(_)
        | Error::Outcome(_)
        | Error::Process(_)
        | Error::Duration(_)
        | Error::Usage(_)
        | Error::Io { .. } => USAGE,
    }
}

/// The status for `baton merge|revert|stash RUN`: stashing or reverting a run that
/// failed is what was asked, so it succeeds; a merge answers like a run.
pub fn for_decision(report: &RunReport, policy: Policy) -> i32 {
    match policy {
        Policy::Merge => for_report(report),
        _ if report.interrupted => INTERRUPTED,
        _ => OK,
    }
}

/// The status for `baton recover`: 0 when every run was finished or rolled back, 5
/// when one needs the user to look (baton could not tell its work from theirs).
pub fn for_recovery(needs_you: bool) -> i32 {
    if needs_you { CONFLICT } else { OK }
}

/// The status for a sweep (`baton sweep`, `sweep resume`): 0 when every task landed,
/// 130 when it was interrupted, else 1 (a task did not land; the report says why).
pub fn for_sweep(all_landed: bool, interrupted: bool) -> i32 {
    if interrupted {
        INTERRUPTED
    } else if all_landed {
        OK
    } else {
        CHECKS_FAILED
    }
}

/// The status for a finished run: the worst verdict wins, then the landing.
pub fn for_report(report: &RunReport) -> i32 {
    if report.interrupted {
        return INTERRUPTED;
    }
    match report.verdict {
        Verdict::AgentFailed | Verdict::NoChange | Verdict::Pending => AGENT_FAILED,
        Verdict::ScopeViolated => SCOPE_VIOLATION,
        Verdict::ChecksFailed => CHECKS_FAILED,
        Verdict::Passed => match report.outcome.as_ref().map(|o| o.action) {
            Some(OutcomeAction::Conflict) => CONFLICT,
            _ => OK,
        },
    }
}

//! Strategy: given the rounds a run has had so far, what it does next — retry the
//! same agent, repair (resume its session with what failed), fall back to the next
//! agent, or stop. Pure: no processes, no git, so every path is unit tested. The
//! driver in `run` follows the answer; retries, fallback and repair are data to it.

use std::time::Duration;

use crate::report::{FailureClass, Verdict};
use crate::settings::Trigger;

/// One round as the strategy sees it: which agent of the chain, which repair round
/// of its attempt, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// The agent's place in the chain (0 is the first agent).
    pub agent: usize,
    /// 0 for an attempt's first round, then each repair round of it.
    pub repair: u32,
    pub class: FailureClass,
    pub verdict: Verdict,
    /// The agent left a session that a repair round can resume.
    pub session: bool,
    /// A Ctrl-C or SIGTERM came during the round.
    pub interrupted: bool,
}

/// The limits a strategy works within, from the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Agents in the chain (the first plus its fallbacks).
    pub agents: usize,
    /// Retries of a transient failure, per agent.
    pub retries: u32,
    /// Repair rounds per attempt.
    pub repair: u32,
    pub fallback_on: Vec<Trigger>,
}

/// What the run does after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The same agent again, in a fresh worktree, after a wait.
    Retry { after: Duration },
    /// Resume the agent's session in the same worktree, told what failed.
    Repair { round: u32 },
    /// The next agent of the chain, in a fresh worktree.
    Fallback { agent: usize },
    /// Judge what there is and land it by policy.
    Stop,
}

/// The next step after `rounds` (the last one is the round just finished).
pub fn next(rounds: &[Round], limits: &Limits) -> Next {
    let Some(last) = rounds.last() else {
        return Next::Stop;
    };
    if last.interrupted || last.verdict.passed() {
        return Next::Stop;
    }
    if matches!(last.verdict, Verdict::ChecksFailed | Verdict::ScopeViolated)
        && last.repair < limits.repair
        && last.session
    {
        return Next::Repair {
            round: last.repair + 1,
        };
    }
    // Retries of this agent so far: its attempts after its first, counted by their
    // first rounds since it took over.
    let tries_of_agent = rounds
        .iter()
        .rev()
        .take_while(|r| r.agent == last.agent)
        .filter(|r| r.repair == 0)
        .count() as u32;
    let retries_used = tries_of_agent.saturating_sub(1);
    if last.class.transient() && retries_used < limits.retries {
        // 1 s, 2 s, 4 s … (at most 32 s) between tries of the same agent.
        return Next::Retry {
            after: Duration::from_secs(1 << retries_used.min(5)),
        };
    }
    if last.agent + 1 < limits.agents
        && limits
            .fallback_on
            .iter()
            .any(|t| t.fires(last.class, last.verdict))
    {
        return Next::Fallback {
            agent: last.agent + 1,
        };
    }
    Next::Stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DEFAULT_FALLBACK_ON;

    fn limits(agents: usize, retries: u32, repair: u32) -> Limits {
        Limits {
            agents,
            retries,
            repair,
            fallback_on: DEFAULT_FALLBACK_ON.to_vec(),
        }
    }

    fn round(agent: usize, class: FailureClass, verdict: Verdict) -> Round {
        Round {
            agent,
            repair: 0,
            class,
            verdict,
            session: true,
            interrupted: false,
        }
    }

    #[test]
    fn a_pass_or_an_interrupt_stops() {
        let l = limits(2, 3, 3);
        assert_eq!(
            next(&[round(0, FailureClass::Ok, Verdict::Passed)], &l),
            Next::Stop
        );
        let mut r = round(0, FailureClass::RateLimited, Verdict::AgentFailed);
        r.interrupted = true;
        assert_eq!(next(&[r], &l), Next::Stop);
        assert_eq!(next(&[], &l), Next::Stop);
    }

    #[test]
    fn a_transient_failure_is_retried_with_backoff_then_falls_back() {
        let l = limits(2, 2, 0);
        let rate = |a| round(a, FailureClass::RateLimited, Verdict::AgentFailed);
        assert_eq!(
            next(&[rate(0)], &l),
            Next::Retry {
                after: Duration::from_secs(1)
            }
        );
        assert_eq!(
            next(&[rate(0), rate(0)], &l),
            Next::Retry {
                after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            next(&[rate(0), rate(0), rate(0)], &l),
            Next::Fallback { agent: 1 }
        );
        // The next agent gets its own retries.
        assert_eq!(
            next(&[rate(0), rate(0), rate(0), rate(1)], &l),
            Next::Retry {
                after: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn auth_is_neither_retried_nor_handed_on_by_default() {
        let l = limits(2, 3, 0);
        assert_eq!(
            next(&[round(0, FailureClass::Auth, Verdict::AgentFailed)], &l),
            Next::Stop
        );
    }

    #[test]
    fn failed_checks_are_repaired_in_the_session_then_handed_on() {
        let l = limits(2, 0, 1);
        let failed = round(0, FailureClass::Ok, Verdict::ChecksFailed);
        assert_eq!(next(&[failed], &l), Next::Repair { round: 1 });
        let repaired = Round {
            repair: 1,
            ..failed
        };
        assert_eq!(next(&[failed, repaired], &l), Next::Fallback { agent: 1 });
        // Without a session there is nothing to resume.
        let no_session = Round {
            session: false,
            ..failed
        };
        assert_eq!(next(&[no_session], &l), Next::Fallback { agent: 1 });
    }

    #[test]
    fn only_the_configured_triggers_hand_on() {
        let l = Limits {
            fallback_on: vec![Trigger::ScopeViolated],
            ..limits(2, 0, 0)
        };
        assert_eq!(
            next(&[round(0, FailureClass::Ok, Verdict::ChecksFailed)], &l),
            Next::Stop
        );
        assert_eq!(
            next(&[round(0, FailureClass::Ok, Verdict::ScopeViolated)], &l),
            Next::Fallback { agent: 1 }
        );
        // The last agent of the chain has no one to hand on to.
        assert_eq!(
            next(&[round(1, FailureClass::Ok, Verdict::ScopeViolated)], &l),
            Next::Stop
        );
    }
}

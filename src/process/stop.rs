//! When to stop a running child, and how. Pure: it reads a clock, the limits and the
//! cancel token's reason, never a process, so every rule is tested without one. The
//! runner ([`super::run`]) looks, asks [`decide`], and carries out the answer with the
//! group's kill ladder.

use std::time::{Duration, Instant};

use super::Stopped;
use super::cancel::CancelReason;

/// The limits a child runs under. A zero limit is no limit, as everywhere in baton
/// (`--timeout 0s`, `check_timeout = "0s"`): a limit that stopped every child at once
/// would be of no use, and this is the one place every child's limits pass through.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Limits {
    /// Wall clock since the start; zero is no limit.
    pub timeout: Option<Duration>,
    /// Quiet since the last line of output (or the start); zero is no limit.
    pub idle: Option<Duration>,
    /// Quiet after the child said its last word ([`super::Spec::finished`]) before it
    /// counts as lingering.
    pub after_result: Duration,
}

/// What the runner saw at one look at a child that is still running.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub now: Instant,
    pub started: Instant,
    pub last_output: Instant,
    /// The child's cancel token's reason, if it is cancelled.
    pub cancel: Option<CancelReason>,
    /// The child said its last word.
    pub finished: bool,
}

/// How to stop the child, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// SIGTERM to the group, the grace period, then SIGKILL.
    Gently(Stopped),
    /// SIGKILL to the group now: nobody wants to wait for the grace period.
    AtOnce(Stopped),
}

impl Stop {
    pub fn why(self) -> Stopped {
        match self {
            Stop::Gently(why) | Stop::AtOnce(why) => why,
        }
    }
}

/// Whether to stop the child now. A cancellation comes first (it is someone's
/// decision, the limits are only defaults), then a finished child's lingering, then
/// the wall clock, then the idle limit.
pub(super) fn decide(seen: &Seen, limits: &Limits) -> Option<Stop> {
    if let Some(reason) = seen.cancel {
        let why = Stopped::from(reason);
        return Some(if reason.skips_grace() {
            Stop::AtOnce(why)
        } else {
            Stop::Gently(why)
        });
    }
    let since = |t: Instant| seen.now.saturating_duration_since(t);
    let passed = |limit: Option<Duration>, from: Instant| {
        limit.is_some_and(|l| !l.is_zero() && since(from) >= l)
    };
    let why = if seen.finished && since(seen.last_output) >= limits.after_result {
        Stopped::AfterResult
    } else if passed(limits.timeout, seen.started) {
        Stopped::Timeout
    } else if passed(limits.idle, seen.last_output) {
        Stopped::Idle
    } else {
        return None;
    };
    Some(Stop::Gently(why))
}

/// During the grace period: true when it must be cut short (SIGKILL now), whatever
/// started the stop. A first interrupt during a timeout's grace does not cut it; a
/// second one does.
pub(super) fn cut_grace(cancel: Option<CancelReason>) -> bool {
    cancel.is_some_and(CancelReason::skips_grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A look `elapsed` after the start, with the last output `quiet` before it.
    fn seen(elapsed: Duration, quiet: Duration) -> Seen {
        let started = Instant::now();
        let now = started + elapsed;
        Seen {
            now,
            started,
            last_output: now - quiet,
            cancel: None,
            finished: false,
        }
    }

    fn limits(timeout: Option<Duration>, idle: Option<Duration>) -> Limits {
        Limits {
            timeout,
            idle,
            after_result: S / 2,
        }
    }

    #[test]
    fn nothing_stops_a_child_within_its_limits() {
        let l = limits(Some(10 * S), Some(3 * S));
        assert_eq!(decide(&seen(9 * S, 2 * S), &l), None);
        assert_eq!(decide(&seen(100 * S, 100 * S), &Limits::default()), None);
    }

    #[test]
    fn the_wall_clock_stops_a_child_that_keeps_talking() {
        let l = limits(Some(10 * S), Some(3 * S));
        assert_eq!(
            decide(&seen(10 * S, Duration::ZERO), &l),
            Some(Stop::Gently(Stopped::Timeout))
        );
        // Both limits passed: the wall clock is the one reported.
        assert_eq!(
            decide(&seen(11 * S, 5 * S), &l),
            Some(Stop::Gently(Stopped::Timeout))
        );
    }

    #[test]
    fn a_zero_limit_is_no_limit() {
        let zero = limits(Some(Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(decide(&seen(100 * S, 100 * S), &zero), None);
    }

    #[test]
    fn the_idle_limit_counts_from_the_last_output_not_the_start() {
        let l = limits(Some(60 * S), Some(3 * S));
        assert_eq!(decide(&seen(30 * S, 2 * S), &l), None);
        assert_eq!(
            decide(&seen(30 * S, 3 * S), &l),
            Some(Stop::Gently(Stopped::Idle))
        );
        // Without output at all, quiet counts from the start.
        assert_eq!(
            decide(&seen(3 * S, 3 * S), &limits(None, Some(3 * S))),
            Some(Stop::Gently(Stopped::Idle))
        );
    }

    #[test]
    fn every_cancel_reason_stops_the_child_under_its_own_name() {
        use CancelReason::*;
        let cases = [
            (Interrupt, Stop::Gently(Stopped::Interrupted)),
            (SecondInterrupt, Stop::AtOnce(Stopped::Interrupted)),
            (Timeout, Stop::Gently(Stopped::Timeout)),
            (Idle, Stop::Gently(Stopped::Idle)),
            (OtherCandidateWon, Stop::Gently(Stopped::OtherCandidateWon)),
            (SweepStopping, Stop::Gently(Stopped::SweepStopping)),
        ];
        for (reason, stop) in cases {
            let mut s = seen(S, Duration::ZERO);
            s.cancel = Some(reason);
            assert_eq!(decide(&s, &limits(None, None)), Some(stop), "{reason:?}");
        }
    }

    #[test]
    fn a_cancellation_is_reported_over_a_limit_that_passed_too() {
        let mut s = seen(20 * S, 20 * S);
        s.cancel = Some(CancelReason::OtherCandidateWon);
        assert_eq!(
            decide(&s, &limits(Some(10 * S), Some(3 * S))),
            Some(Stop::Gently(Stopped::OtherCandidateWon))
        );
    }

    #[test]
    fn only_a_second_interrupt_cuts_the_grace_period_short() {
        assert!(cut_grace(Some(CancelReason::SecondInterrupt)));
        for reason in [
            None,
            Some(CancelReason::Interrupt),
            Some(CancelReason::Timeout),
            Some(CancelReason::OtherCandidateWon),
        ] {
            assert!(!cut_grace(reason), "{reason:?}");
        }
    }

    #[test]
    fn a_finished_child_is_stopped_once_it_stays_quiet() {
        let l = limits(Some(60 * S), None);
        let mut s = seen(5 * S, S / 4);
        s.finished = true;
        assert_eq!(decide(&s, &l), None);
        s.last_output = s.now - S / 2;
        assert_eq!(decide(&s, &l), Some(Stop::Gently(Stopped::AfterResult)));
    }
}

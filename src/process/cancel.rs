//! Cancellation with a reason. A [`Cancel`] token says whether the work it is given
//! to should stop, and why ([`CancelReason`]); the runner of a child process polls it
//! and stops the child's group accordingly.
//!
//! Tokens form a tree. One process-wide root ([`Cancel::process_wide`]) is fed by
//! SIGINT and SIGTERM; every token made with [`Cancel::child`] (or
//! [`Cancel::default`]) sees what happens above it, so a Ctrl-C reaches every child
//! process, while cancelling a child (one candidate of several lost) touches it and
//! its own children alone.
//!
//! A child holds its parent, not the other way round: cancellation is read when a
//! token is asked, never pushed down. So a long-lived parent does not collect one
//! entry per child it ever had, and the signal handler only has to bump a counter,
//! the one thing an async-signal-safe handler may do here. The runner asks every
//! 50 ms or sooner, which bounds how late a cancellation is seen.
//!
//! This module also owns the signal handler and its counter ([`install_interrupt_handler`],
//! [`interrupted`]).

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Why work is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The first Ctrl-C or SIGTERM: stop children with their grace period, then let the
    /// caller save the work.
    Interrupt,
    /// A second Ctrl-C or SIGTERM: the person does not want to wait. Children are
    /// killed at once, without what is left of their grace period.
    SecondInterrupt,
    /// A wall-clock limit passed (a child's own timeout, or a caller's budget for a
    /// larger piece of work).
    Timeout,
    /// Nothing was heard for too long.
    Idle,
    /// Several candidates work on the same task and another one has already won: this
    /// one's work is no longer wanted. Its worktree is the caller's to keep or drop.
    OtherCandidateWon,
    /// A sweep over many tasks is winding down (its budget is spent, or it was asked
    /// to stop): tasks still running are stopped, finished ones are kept.
    SweepStopping,
}

impl CancelReason {
    /// True when the grace period is skipped: SIGKILL to the group at once.
    pub fn skips_grace(self) -> bool {
        self == CancelReason::SecondInterrupt
    }

    /// The reason as stored in a token's atomic; 0 is "not cancelled".
    fn code(self) -> u8 {
        match self {
            CancelReason::Interrupt => 1,
            CancelReason::SecondInterrupt => 2,
            CancelReason::Timeout => 3,
            CancelReason::Idle => 4,
            CancelReason::OtherCandidateWon => 5,
            CancelReason::SweepStopping => 6,
        }
    }

    fn from_code(code: u8) -> Option<CancelReason> {
        Some(match code {
            1 => CancelReason::Interrupt,
            2 => CancelReason::SecondInterrupt,
            3 => CancelReason::Timeout,
            4 => CancelReason::Idle,
            5 => CancelReason::OtherCandidateWon,
            6 => CancelReason::SweepStopping,
            _ => return None,
        })
    }
}

/// A cancel token: cheap to clone (clones share one state), cancelled once with a
/// reason, and cancelled too when a token above it is.
#[derive(Clone)]
pub struct Cancel {
    node: Arc<Node>,
}

struct Node {
    /// This token's own reason ([`CancelReason::code`]), 0 while it has none.
    reason: AtomicU8,
    above: Above,
}

enum Above {
    /// A root of its own.
    Nothing,
    /// A root that is also cancelled by the signals this counter counts.
    Signals(&'static AtomicUsize),
    Parent(Arc<Node>),
}

impl Node {
    /// The reason recorded here, not looking at the parent.
    fn own(&self) -> Option<CancelReason> {
        let recorded = CancelReason::from_code(self.reason.load(Ordering::SeqCst));
        match &self.above {
            Above::Signals(count) => match count.load(Ordering::SeqCst) {
                0 => recorded,
                1 => recorded.or(Some(CancelReason::Interrupt)),
                _ => Some(CancelReason::SecondInterrupt),
            },
            Above::Nothing | Above::Parent(_) => recorded,
        }
    }
}

impl Cancel {
    /// The process-wide root: cancelled by SIGINT and SIGTERM once
    /// [`install_interrupt_handler`] ran (`Interrupt`, then `SecondInterrupt`). Hand
    /// out its [`child`](Cancel::child)ren rather than the root itself, so that whoever
    /// cancels their token does not cancel the whole process.
    pub fn process_wide() -> Cancel {
        static ROOT: OnceLock<Cancel> = OnceLock::new();
        ROOT.get_or_init(|| Cancel::fed_by(&INTERRUPTS)).clone()
    }

    /// A root of its own, cancelled only by [`cancel`](Cancel::cancel): Ctrl-C does not
    /// reach it. For work that must not stop on a signal, and for tests.
    pub fn detached() -> Cancel {
        Cancel::with(Above::Nothing)
    }

    /// A root fed by a signal counter (the process-wide one, or a test's).
    fn fed_by(signals: &'static AtomicUsize) -> Cancel {
        Cancel::with(Above::Signals(signals))
    }

    fn with(above: Above) -> Cancel {
        Cancel {
            node: Arc::new(Node {
                reason: AtomicU8::new(0),
                above,
            }),
        }
    }

    /// A new token below this one: cancelled when this one is, and cancellable alone.
    pub fn child(&self) -> Cancel {
        Cancel::with(Above::Parent(Arc::clone(&self.node)))
    }

    /// Cancels this token and every token below it. The first reason is kept (it is
    /// the one to report); only a second interrupt replaces it, because it changes
    /// what to do (kill at once).
    pub fn cancel(&self, reason: CancelReason) {
        if reason == CancelReason::SecondInterrupt {
            self.node.reason.store(reason.code(), Ordering::SeqCst);
        } else {
            // Err means a reason is already there; it stays.
            let _ = self.node.reason.compare_exchange(
                0,
                reason.code(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// Why this token is cancelled, if it is: its own reason, else the nearest one
    /// above it; but a second interrupt anywhere above wins, since it means "now".
    pub fn reason(&self) -> Option<CancelReason> {
        let mut nearest = None;
        let mut node = &*self.node;
        loop {
            let here = node.own();
            if here == Some(CancelReason::SecondInterrupt) {
                return here;
            }
            nearest = nearest.or(here);
            match &node.above {
                Above::Parent(parent) => node = parent,
                Above::Nothing | Above::Signals(_) => return nearest,
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }
}

/// A child of the process-wide token: it hears Ctrl-C, and cancelling it cancels
/// nothing else. The safe choice for a child process nobody else will cancel.
impl Default for Cancel {
    fn default() -> Cancel {
        Cancel::process_wide().child()
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("reason", &self.reason())
            .finish()
    }
}

/// SIGINT and SIGTERM received so far; read by the process-wide token.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// Makes Ctrl-C and SIGTERM cancel the process-wide token instead of killing baton,
/// so that a running child's group is stopped and the run's work is saved before
/// baton exits 130.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// True once Ctrl-C or SIGTERM reached baton (the process-wide token's reason is an
/// interrupt). Other reasons given to the process-wide token do not count.
pub fn interrupted() -> bool {
    matches!(
        Cancel::process_wide().reason(),
        Some(CancelReason::Interrupt | CancelReason::SecondInterrupt)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_parent_reaches_its_children_and_theirs() {
        let root = Cancel::detached();
        let child = root.child();
        let grandchild = child.child();
        assert_eq!(grandchild.reason(), None);
        root.cancel(CancelReason::SweepStopping);
        assert_eq!(child.reason(), Some(CancelReason::SweepStopping));
        assert_eq!(grandchild.reason(), Some(CancelReason::SweepStopping));
    }

    #[test]
    fn a_child_cancelled_alone_leaves_its_parent_and_siblings_running() {
        let root = Cancel::detached();
        let loser = root.child();
        let winner = root.child();
        loser.cancel(CancelReason::OtherCandidateWon);
        assert_eq!(loser.reason(), Some(CancelReason::OtherCandidateWon));
        assert!(!root.is_cancelled());
        assert!(!winner.is_cancelled());
        // A clone is the same token.
        assert_eq!(
            loser.clone().reason(),
            Some(CancelReason::OtherCandidateWon)
        );
    }

    #[test]
    fn the_first_reason_is_kept_and_only_a_second_interrupt_replaces_it() {
        let token = Cancel::detached();
        token.cancel(CancelReason::Timeout);
        token.cancel(CancelReason::OtherCandidateWon);
        assert_eq!(token.reason(), Some(CancelReason::Timeout));
        token.cancel(CancelReason::SecondInterrupt);
        assert_eq!(token.reason(), Some(CancelReason::SecondInterrupt));
        token.cancel(CancelReason::Interrupt);
        assert_eq!(token.reason(), Some(CancelReason::SecondInterrupt));
    }

    #[test]
    fn the_nearest_reason_is_reported_but_a_second_interrupt_above_wins() {
        let root = Cancel::detached();
        let child = root.child();
        child.cancel(CancelReason::OtherCandidateWon);
        root.cancel(CancelReason::Interrupt);
        assert_eq!(child.reason(), Some(CancelReason::OtherCandidateWon));
        root.cancel(CancelReason::SecondInterrupt);
        assert_eq!(child.reason(), Some(CancelReason::SecondInterrupt));
        assert!(child.reason().is_some_and(CancelReason::skips_grace));
    }

    #[test]
    fn signals_counted_by_the_handler_cancel_the_root_and_everything_below() {
        // A counter of the test's own, standing for the handler's.
        static SIGNALS: AtomicUsize = AtomicUsize::new(0);
        let root = Cancel::fed_by(&SIGNALS);
        let child = root.child();
        assert_eq!(child.reason(), None);
        SIGNALS.fetch_add(1, Ordering::SeqCst);
        assert_eq!(root.reason(), Some(CancelReason::Interrupt));
        assert_eq!(child.reason(), Some(CancelReason::Interrupt));
        SIGNALS.fetch_add(1, Ordering::SeqCst);
        assert_eq!(child.reason(), Some(CancelReason::SecondInterrupt));
    }

    #[test]
    fn every_reason_survives_its_storage() {
        use CancelReason::*;
        for reason in [
            Interrupt,
            SecondInterrupt,
            Timeout,
            Idle,
            OtherCandidateWon,
            SweepStopping,
        ] {
            assert_eq!(CancelReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(CancelReason::from_code(0), None);
    }
}

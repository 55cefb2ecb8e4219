//! Child processes under control. Every child baton starts for an agent or a check
//! runs here: in its own process group, stdin closed, output streamed line by line to a
//! log file and a callback (never accumulated in memory beyond a short tail), with a
//! wall-clock and an idle timeout, a cancel token that can stop it for a reason, and a
//! stop that takes the whole group: SIGTERM, a grace period, then SIGKILL. Short git
//! invocations use [`capture`], which only scrubs the environment.
//!
//! [`supervise`] puts the parts together, as one task on a tokio runtime
//! ([`runtime`]): `stop` decides when to stop a child and how (pure), `output` carries
//! its lines from the pipes to the log, the tail and the caller, `group` owns its
//! process group (the kill ladder, the `.pgid` record, what it leaves behind) and
//! `cancel` says why it is being stopped ([`Cancel`]). [`run`] is the same for
//! synchronous callers.
//!
//! This module also owns baton's reaction to Ctrl-C and SIGTERM: the signal cancels
//! the process-wide token, the running child's group is stopped, and the caller
//! decides what to keep. A SIGKILL cannot be caught, so while a child runs its group
//! is recorded next to its log (`<log>.pgid`): `baton recover` stops what a killed
//! baton left running.

mod cancel;
mod group;
mod output;
pub mod runtime;
mod stop;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

pub use cancel::{Cancel, CancelReason, install_interrupt_handler, interrupted};
pub use group::stop_orphaned_groups;

use group::{AfterExit, Group, LINGER};
use output::{Lines, Sink};
use stop::{Limits, Seen, Stop};

/// Environment variables that would make a child's git look at another repository
/// than the directory it runs in (baton may itself run inside a git hook).
const GIT_LOCATION_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
];

/// The credentials a worker of a distributed sweep pushes its result with (the
/// manifests' credential helper answers git with them). The agent and the checks run
/// what the task and the model say: they must not be able to push, so no child of a
/// run gets them. baton's own git (through [`command`]) keeps them.
const WITHHELD_VARS: &[&str] = &["BATON_GIT_TOKEN", "BATON_GIT_USER"];

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("could not start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write the log {}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not wait for `{command}`")]
    Wait {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to run, in `cwd`: a shell command line (`sh -c`), or a program and its
/// arguments when `argv` is given.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub command: String,
    pub argv: Option<Vec<std::ffi::OsString>>,
    /// A file to give the child as stdin; otherwise stdin is closed.
    pub stdin: Option<PathBuf>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub grace: Duration,
    pub log: Option<PathBuf>,
    /// Set by the caller (from `on_line`) once the child has said its last word, for
    /// a child that lingers after it (Gemini CLI, about 18 s after an error).
    pub finished: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Stops the child, for its reason, once cancelled. The default hears Ctrl-C and
    /// nothing else.
    pub cancel: Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
}

/// Why baton stopped the child, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Timeout,
    Idle,
    /// Ctrl-C or SIGTERM (a second one killed it at once).
    Interrupted,
    /// It had reported its result and lingered; see [`Spec::finished`].
    AfterResult,
    /// Its token was cancelled: another candidate for the same task won.
    OtherCandidateWon,
    /// Its token was cancelled: the sweep it belongs to is stopping.
    SweepStopping,
}

impl From<CancelReason> for Stopped {
    fn from(reason: CancelReason) -> Stopped {
        match reason {
            CancelReason::Interrupt | CancelReason::SecondInterrupt => Stopped::Interrupted,
            CancelReason::Timeout => Stopped::Timeout,
            CancelReason::Idle => Stopped::Idle,
            CancelReason::OtherCandidateWon => Stopped::OtherCandidateWon,
            CancelReason::SweepStopping => Stopped::SweepStopping,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finished {
    pub ended: Ended,
    pub stopped: Option<Stopped>,
    pub duration: Duration,
    /// The last lines of output, stdout and stderr interleaved as they came.
    pub tail: Vec<String>,
    /// The child exited but something it started kept its output open; baton killed
    /// the process group.
    pub lingering: bool,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.stopped.is_none() && self.ended == Ended::Exited(0)
    }
}

/// A command whose environment cannot point its git at another repository than the
/// directory it runs in. Variables set on it afterwards still apply.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in GIT_LOCATION_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a short command to completion and captures its output (for git plumbing).
/// It gets a process group of its own, so a Ctrl-C at the terminal reaches baton
/// alone: baton lets the git command finish (a checkout, a snapshot) and then stops
/// the run in order, instead of git dying halfway and the run with it.
pub fn capture(cmd: &mut Command, stdin: Option<&[u8]>) -> std::io::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    group::own_group(cmd);
    match stdin {
        None => {
            cmd.stdin(Stdio::null());
            cmd.output()
        }
        Some(input) => {
            cmd.stdin(Stdio::piped());
            let mut child = cmd.spawn()?;
            if let Some(mut pipe) = child.stdin.take() {
                let data = input.to_vec();
                // A writer thread, so a child that fills its stdout before reading all
                // of stdin cannot deadlock us.
                let writer = thread::spawn(move || std::io::Write::write_all(&mut pipe, &data));
                let out = child.wait_with_output()?;
                writer
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("stdin writer panicked")))?;
                Ok(out)
            } else {
                child.wait_with_output()
            }
        }
    }
}

/// Runs `spec` to the end (or until it is stopped) and reports each output line to
/// `on_line`: [`supervise`] for synchronous callers.
pub fn run(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> Result<Finished, ProcessError> {
    let wait_err = |source| ProcessError::Wait {
        command: spec.command.clone(),
        source,
    };
    if !runtime::driving() {
        return runtime::block_on(supervise(spec, on_line)).map_err(wait_err)?;
    }
    // This thread drives async work (or is one of a runtime's): it cannot block on
    // more. The child is supervised on a thread of its own, its lines handed back here.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<(Stream, String)>();
        let supervisor = scope.spawn(move || {
            runtime::block_on(supervise(spec, &mut |stream, line| {
                let _ = tx.send((stream, line.to_string()));
            }))
        });
        for (stream, line) in rx {
            on_line(stream, &line);
        }
        match supervisor.join() {
            Ok(done) => done.map_err(wait_err)?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `spec` to the end (or until it is stopped) and reports each output line to
/// `on_line`, as a task of the runtime it is awaited on: its pipes read by the
/// runtime's I/O driver, its limits and cancel token looked at every 50 ms or sooner.
pub async fn supervise(
    spec: &Spec,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<Finished, ProcessError> {
    let cmd = command_for(spec)?;
    let mut sink = Sink::create(spec.log.as_deref(), on_line)?;
    let started = Instant::now();
    let record = spec.log.as_deref().map(group::record_for);
    let mut group = Group::spawn(cmd, record, &spec.command)?;
    let mut lines = Lines::read(group.child());

    let wait_err = |source| ProcessError::Wait {
        command: spec.command.clone(),
        source,
    };
    let limits = Limits {
        timeout: spec.timeout,
        idle: spec.idle_timeout,
        after_result: LINGER,
    };
    let mut last_output = started;
    let mut exit: Option<(ExitStatus, Instant)> = None;
    let mut stopped = None;
    let mut lingering = false;
    let mut poll = Duration::from_millis(1);

    loop {
        let now = Instant::now();
        if exit.is_none() {
            let seen = Seen {
                now,
                started,
                last_output,
                cancel: spec.cancel.reason(),
                finished: spec
                    .finished
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::SeqCst)),
            };
            if let Some(stop) = stop::decide(&seen, &limits) {
                stopped = Some(stop.why());
                let status = match stop {
                    Stop::Gently(_) => group.stop(spec.grace, &spec.cancel).await,
                    Stop::AtOnce(_) => group.kill_now().await,
                }
                .map_err(wait_err)?;
                exit = Some((status, Instant::now()));
            } else if let Some(status) = group.try_wait().map_err(wait_err)? {
                exit = Some((status, now));
            }
        }
        if let Some((_, at)) = exit {
            match group::after_exit(now.saturating_duration_since(at), lines.open(), lingering) {
                AfterExit::Done | AfterExit::GiveUp => break,
                AfterExit::KillGroup => {
                    lingering = true;
                    group.kill();
                }
                AfterExit::Wait => {}
            }
        }
        let wait = if lines.open() == 0 {
            // Output closed but the child not yet reaped: poll quickly, backing off.
            poll = (poll * 2).min(Duration::from_millis(50));
            poll
        } else {
            Duration::from_millis(50)
        };
        if let Some((stream, bytes)) = lines.next(wait).await {
            last_output = Instant::now();
            sink.line(stream, &bytes)?;
        }
    }
    // Whatever is left in the group once the leader is gone (a daemon that closed its
    // output, a `cmd &`) was started by the child and outlives it: stop it.
    if stopped.is_none() && group.outlives(Duration::from_millis(300)).await {
        lingering = true;
        group.kill();
    }
    let tail = sink.finish()?;
    // Removes the `.pgid` record: nothing of the group is left for `recover`.
    drop(group);
    Ok(Finished {
        ended: ended(exit.map(|(status, _)| status)),
        stopped,
        duration: started.elapsed(),
        tail,
        lingering,
    })
}

/// The command `spec` describes, with its stdin, pipes, directory and environment.
fn command_for(spec: &Spec) -> Result<Command, ProcessError> {
    let mut cmd = match spec.argv.as_deref() {
        Some([program, args @ ..]) => {
            let mut c = command(program);
            c.args(args);
            c
        }
        _ => {
            let mut c = command("sh");
            c.arg("-c").arg(&spec.command);
            c
        }
    };
    cmd.current_dir(&spec.cwd);
    for var in WITHHELD_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let stdin = match &spec.stdin {
        Some(path) => {
            Stdio::from(
                std::fs::File::open(path).map_err(|source| ProcessError::Spawn {
                    command: spec.command.clone(),
                    source,
                })?,
            )
        }
        None => Stdio::null(),
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

fn ended(status: Option<ExitStatus>) -> Ended {
    match status.map(|s| (s.code(), s.signal())) {
        Some((Some(code), _)) => Ended::Exited(code),
        Some((None, Some(sig))) => Ended::Signalled(sig),
        Some((None, None)) | None => Ended::Exited(-1),
    }
}

/// When the process `pid` started, in clock ticks since boot (from /proc): with the
/// pid, it names one process for good, where a pid alone is reused.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; "pid (comm) state ..." — comm may hold spaces, so count after ')'.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The start time of this process, for the journal.
pub fn own_start_time() -> Option<u64> {
    start_time(std::process::id())
}

/// True while the process `pid` that started at `started` (when known) still runs;
/// a pid reused by another process does not count.
pub fn running(pid: u32, started: Option<u64>) -> bool {
    if !alive(pid) {
        return false;
    }
    match (started, start_time(pid)) {
        (Some(recorded), Some(now)) => recorded == now,
        _ => true,
    }
}

/// A fault on purpose, for the fault-matrix tests: when `BATON_CRASH_AT` names this
/// point, baton kills itself with SIGKILL here, as a power cut or the OOM killer
/// would; when `BATON_PAUSE_AT` names it, baton waits two seconds here (for a signal
/// to arrive in the middle of what it is doing). Outside the tests neither variable
/// is set and this does nothing.
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<(Option<String>, Option<String>)> = std::sync::OnceLock::new();
    let (crash, pause) = AT.get_or_init(|| {
        (
            std::env::var("BATON_CRASH_AT").ok(),
            std::env::var("BATON_PAUSE_AT").ok(),
        )
    });
    if crash.as_deref() == Some(name) {
        // SAFETY: signalling ourselves; nothing after this runs.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    if pause.as_deref() == Some(name) {
        thread::sleep(Duration::from_secs(2));
    }
}

/// True when a process with this id exists (it may belong to another user).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// True when `path` can be created as a directory or already is a writable one.
pub fn dir_writable(path: &Path) -> bool {
    std::fs::create_dir_all(path).is_ok() && tempfile::tempfile_in(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cmd: &str) -> Spec {
        Spec {
            command: cmd.into(),
            cwd: std::env::temp_dir(),
            timeout: Some(Duration::from_secs(20)),
            grace: Duration::from_millis(300),
            ..Spec::default()
        }
    }

    #[test]
    fn reports_lines_and_exit_code() {
        let mut lines = vec![];
        let done = run(&spec("echo one; echo two >&2; exit 3"), &mut |_, l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert_eq!(done.ended, Ended::Exited(3));
        lines.sort();
        assert_eq!(lines, ["one", "two"]);
    }

    #[test]
    fn wall_clock_timeout_stops_the_whole_group() {
        let marker = tempfile::NamedTempFile::new().unwrap();
        let path = marker.path().display().to_string();
        // The grandchild would write the marker after 2 s if it survived the stop.
        let cmd = format!("(sleep 2; echo alive > {path}) & sleep 30");
        let mut s = spec(&cmd);
        s.timeout = Some(Duration::from_millis(300));
        let done = run(&s, &mut |_, _| {}).unwrap();
        assert_eq!(done.stopped, Some(Stopped::Timeout));
        thread::sleep(Duration::from_millis(2500));
        assert_eq!(std::fs::read_to_string(marker.path()).unwrap(), "");
    }

    #[test]
    fn idle_timeout_fires_only_when_quiet() {
        let mut s = spec("echo a; sleep 0.2; echo b; sleep 30");
        s.idle_timeout = Some(Duration::from_millis(600));
        let mut lines = vec![];
        let done = run(&s, &mut |_, l| lines.push(l.to_string())).unwrap();
        assert_eq!(done.stopped, Some(Stopped::Idle));
        assert_eq!(lines, ["a", "b"]);
    }

    #[test]
    fn a_child_cancelled_because_another_candidate_won_is_stopped_with_that_reason() {
        let parent = Cancel::detached();
        let mut s = spec("echo working; sleep 30");
        s.cancel = parent.child();
        let token = s.cancel.clone();
        let canceller = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            token.cancel(CancelReason::OtherCandidateWon);
        });
        let mut lines = vec![];
        let done = run(&s, &mut |_, l| lines.push(l.to_string())).unwrap();
        canceller.join().unwrap();
        assert_eq!(done.stopped, Some(Stopped::OtherCandidateWon));
        assert_eq!(done.ended, Ended::Signalled(libc::SIGTERM));
        assert!(
            done.duration < Duration::from_secs(10),
            "{:?}",
            done.duration
        );
        assert_eq!(lines, ["working"]);
        // The loser alone was cancelled.
        assert!(!parent.is_cancelled());
    }

    #[test]
    fn a_second_interrupt_cuts_the_grace_period_of_a_child_that_ignores_sigterm() {
        let mut s = spec("trap '' TERM; echo ready; sleep 30");
        s.cancel = Cancel::detached();
        s.grace = Duration::from_secs(3600);
        let token = s.cancel.clone();
        let presses = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            token.cancel(CancelReason::Interrupt);
            thread::sleep(Duration::from_millis(300));
            token.cancel(CancelReason::SecondInterrupt);
        });
        let done = run(&s, &mut |_, _| {}).unwrap();
        presses.join().unwrap();
        assert_eq!(done.stopped, Some(Stopped::Interrupted));
        assert_eq!(done.ended, Ended::Signalled(libc::SIGKILL));
        assert!(
            done.duration < Duration::from_secs(10),
            "{:?}",
            done.duration
        );
    }

    #[test]
    fn a_child_started_after_a_second_interrupt_is_killed_without_a_grace_period() {
        let mut s = spec("trap '' TERM; sleep 30");
        s.cancel = Cancel::detached();
        s.cancel.cancel(CancelReason::SecondInterrupt);
        s.grace = Duration::from_secs(3600);
        let done = run(&s, &mut |_, _| {}).unwrap();
        assert_eq!(done.stopped, Some(Stopped::Interrupted));
        assert_eq!(done.ended, Ended::Signalled(libc::SIGKILL));
        assert!(
            done.duration < Duration::from_secs(10),
            "{:?}",
            done.duration
        );
    }

    #[test]
    fn the_group_record_is_there_while_the_child_runs_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("check.log");
        let record = group::record_for(&log);
        // The record is written once the child is in its group, which may be just
        // after the child starts: wait for it.
        let mut s = spec(&format!(
            "while [ ! -s '{0}' ]; do sleep 0.01; done; cat '{0}'",
            record.display()
        ));
        s.log = Some(log.clone());
        let mut lines = vec![];
        let done = run(&s, &mut |_, l| lines.push(l.to_string())).unwrap();
        assert!(done.success());
        assert!(lines[0].split_whitespace().count() == 2, "{lines:?}");
        assert!(!record.exists());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("{}\n", lines[0])
        );
    }

    #[test]
    fn a_child_run_from_a_thread_that_supervises_others_is_supervised_beside_it() {
        // Synchronous code reached from a sweep's supervisor thread cannot block on
        // its runtime: the child goes to a thread of its own, its lines come back.
        let local = runtime::Local::new().unwrap();
        let (done, lines) = local.run(async {
            assert!(runtime::driving());
            let mut lines = vec![];
            let done = run(&spec("echo one; echo two >&2; exit 3"), &mut |_, l| {
                lines.push(l.to_string())
            });
            (done, lines)
        });
        let mut lines = lines;
        lines.sort();
        assert_eq!(done.unwrap().ended, Ended::Exited(3));
        assert_eq!(lines, ["one", "two"]);
    }

    #[test]
    fn background_process_holding_output_is_killed() {
        let done = run(&spec("sleep 30 & echo started"), &mut |_, _| {}).unwrap();
        assert!(done.lingering);
        assert_eq!(done.ended, Ended::Exited(0));
    }
}

//! Child processes under control. Every child baton starts for an agent or a check
//! runs here: in its own process group, stdin closed, output streamed line by line to a
//! log file and a callback (never accumulated in memory beyond a short tail), with a
//! wall-clock and an idle timeout, and a stop that takes the whole group: SIGTERM, a
//! grace period, then SIGKILL. Short git invocations use [`capture`], which only
//! scrubs the environment.
//!
//! This module also owns baton's reaction to Ctrl-C and SIGTERM: the signal sets a
//! flag, the running child's group is stopped, and the caller decides what to keep.
//! A SIGKILL cannot be caught, so while a child runs its group is recorded next to its
//! log (`<log>.pgid`): `baton recover` stops what a killed baton left running.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

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

/// Lines read but not yet handled, at most (each up to [`MAX_LINE`]).
const LINE_QUEUE: usize = 64;
/// How many lines of output a result keeps for the report.
const TAIL_LINES: usize = 40;
/// A line longer than this is cut into pieces, so one endless line cannot fill memory.
const MAX_LINE: usize = 1024 * 1024;
/// How long the pipes may stay open after the child exited before we conclude that a
/// grandchild holds them and stop the group.
const LINGER: Duration = Duration::from_millis(500);

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
    Interrupted,
    /// It had reported its result and lingered; see [`Spec::finished`].
    AfterResult,
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
    own_group(cmd);
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
                let writer = thread::spawn(move || pipe.write_all(&data));
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

/// Starts the child in a process group of its own, with no moment in which a Ctrl-C
/// meant for baton's group can kill it. With glibc's `posix_spawn` (what `Command`
/// uses when it can) the child sits in baton's group, with baton's handlers already
/// reset to the default, until it moves to its own: a group signal in that moment
/// kills it before it starts (the fault-matrix suite saw `git add` die so). With
/// fork, the child keeps baton's harmless handler until it has moved.
fn own_group(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: the closure does nothing; it is there to make `Command` fork.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
}

enum Message {
    Line(Stream, Vec<u8>),
    Closed,
}

/// Runs `spec` to the end (or to a timeout) and reports each output line to `on_line`.
pub fn run(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> Result<Finished, ProcessError> {
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
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let stdin = match &spec.stdin {
        Some(path) => Stdio::from(File::open(path).map_err(|source| ProcessError::Spawn {
            command: spec.command.clone(),
            source,
        })?),
        None => Stdio::null(),
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    own_group(&mut cmd);

    let mut log = match &spec.log {
        Some(path) => Some(BufWriter::new(File::create(path).map_err(|source| {
            ProcessError::Log {
                path: path.clone(),
                source,
            }
        })?)),
        None => None,
    };

    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        command: spec.command.clone(),
        source,
    })?;
    let pgid = child.id() as libc::pid_t;
    let group_file = spec.log.as_ref().map(|log| group_file_for(log));
    if let Some(path) = &group_file {
        let record = format!("{pgid} {}\n", start_time(pgid as u32).unwrap_or(0));
        std::fs::write(path, record).map_err(|source| ProcessError::Log {
            path: path.clone(),
            source,
        })?;
    }

    // Bounded: a child that writes faster than the journal takes its lines is slowed
    // down by its own pipe, instead of its output piling up in baton's memory.
    let (tx, rx) = mpsc::sync_channel(LINE_QUEUE);
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        spawn_reader(out, Stream::Stdout, tx.clone());
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(err, Stream::Stderr, tx.clone());
        readers += 1;
    }
    drop(tx);

    let wait_err = |source| ProcessError::Wait {
        command: spec.command.clone(),
        source,
    };
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut last_activity = Instant::now();
    let mut exit: Option<(ExitStatus, Instant)> = None;
    let mut stopped = None;
    let mut lingering = false;
    let mut open = readers;
    let mut poll = Duration::from_millis(1);

    loop {
        let now = Instant::now();
        if exit.is_none() && stopped.is_none() {
            let reason = if interrupted() {
                Some(Stopped::Interrupted)
            } else if spec
                .finished
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
                && now - last_activity >= LINGER
            {
                Some(Stopped::AfterResult)
            } else if spec.timeout.is_some_and(|t| now - start >= t) {
                Some(Stopped::Timeout)
            } else if spec.idle_timeout.is_some_and(|t| now - last_activity >= t) {
                Some(Stopped::Idle)
            } else {
                None
            };
            if let Some(reason) = reason {
                stopped = Some(reason);
                let status = stop_group(&mut child, pgid, spec.grace).map_err(wait_err)?;
                exit = Some((status, Instant::now()));
            }
        }
        if exit.is_none() {
            if let Some(status) = child.try_wait().map_err(wait_err)? {
                exit = Some((status, Instant::now()));
            }
        }
        if let Some((_, at)) = exit {
            if open == 0 {
                break;
            }
            if now - at > LINGER && !lingering {
                // The leader is gone but its output is still open: a background
                // process survived. It belongs to the group; take it down.
                lingering = true;
                kill_group(pgid, libc::SIGKILL);
            } else if lingering && now - at > LINGER * 4 {
                // Something left the group and keeps the pipe: stop listening.
                break;
            }
        }
        let wait = if open == 0 {
            // Output closed but the child not yet reaped: poll quickly, backing off.
            poll = (poll * 2).min(Duration::from_millis(50));
            poll
        } else {
            Duration::from_millis(50)
        };
        match rx.recv_timeout(wait) {
            Ok(Message::Line(stream, bytes)) => {
                last_activity = Instant::now();
                if let Some(log) = log.as_mut() {
                    log.write_all(&bytes).map_err(|source| ProcessError::Log {
                        path: spec.log.clone().unwrap_or_default(),
                        source,
                    })?;
                }
                let text = String::from_utf8_lossy(&bytes);
                let line = text.trim_end_matches(['\n', '\r']);
                on_line(stream, line);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
            Ok(Message::Closed) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
    }
    // Whatever is left in the group once the leader is gone (a daemon that closed its
    // output, a `cmd &`) was started by the child and outlives it: stop it.
    if stopped.is_none() && group_outlives(pgid, Duration::from_millis(300)) {
        lingering = true;
        kill_group(pgid, libc::SIGKILL);
    }
    if let Some(log) = log.as_mut() {
        log.flush().map_err(|source| ProcessError::Log {
            path: spec.log.clone().unwrap_or_default(),
            source,
        })?;
    }
    if let Some(path) = &group_file {
        let _ = std::fs::remove_file(path);
    }
    let status = exit.map(|(s, _)| s);
    let ended = match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Ended::Exited(code),
            (None, Some(sig)) => Ended::Signalled(sig),
            (None, None) => Ended::Exited(-1),
        },
        None => Ended::Exited(-1),
    };
    Ok(Finished {
        ended,
        stopped,
        duration: start.elapsed(),
        tail: tail.into_iter().collect(),
        lingering,
    })
}

fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    stream: Stream,
    tx: mpsc::SyncSender<Message>,
) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&chunk[..=pos]);
                if tx
                    .send(Message::Line(stream, std::mem::take(&mut line)))
                    .is_err()
                {
                    return;
                }
                chunk = &chunk[pos + 1..];
            }
            line.extend_from_slice(chunk);
            if line.len() >= MAX_LINE {
                let mut piece = std::mem::take(&mut line);
                piece.push(b'\n');
                if tx.send(Message::Line(stream, piece)).is_err() {
                    return;
                }
            }
        }
        if !line.is_empty() {
            line.push(b'\n');
            let _ = tx.send(Message::Line(stream, line));
        }
        let _ = tx.send(Message::Closed);
    });
}

/// True while a live process is left in the group. Zombies do not count: an agent
/// that did not reap a child leaves one behind, and where nothing reaps orphans (a
/// container without an init) it stays, harmless, until the machine's end.
fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 to a group only checks that it has members.
    if unsafe { libc::kill(-pgid, 0) } != 0 {
        return false;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs.flatten().any(|p| {
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so read after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        matches!((fields.first(), fields.get(2)), (Some(state), Some(pgrp)) if *state != "Z" && pgrp.parse::<libc::pid_t>() == Ok(pgid))
    })
}

/// True when the group still has live members after `wait` (members that are only
/// exiting are gone by then).
fn group_outlives(pgid: libc::pid_t, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while group_alive(pgid) {
        if Instant::now() >= deadline {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

fn kill_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// SIGTERM to the group, a grace period for the leader to exit, then SIGKILL to the
/// group whatever happened (its children may outlive the leader).
fn stop_group(
    child: &mut Child,
    pgid: libc::pid_t,
    grace: Duration,
) -> std::io::Result<ExitStatus> {
    kill_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    let interrupts_before = interrupt_count();
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() || interrupt_count() > interrupts_before.max(1) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    kill_group(pgid, libc::SIGKILL);
    child.wait()
}

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// Makes Ctrl-C and SIGTERM set a flag instead of killing baton, so that a running
/// child's group is stopped and the run's work is saved before baton exits 130.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn interrupted() -> bool {
    interrupt_count() > 0
}

fn interrupt_count() -> usize {
    INTERRUPTS.load(Ordering::SeqCst)
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

fn group_file_for(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".pgid");
    PathBuf::from(name)
}

/// Stops the process groups that children of a killed baton left running, as recorded
/// under `dir` (a run's journal). Returns the groups it stopped.
pub fn stop_orphaned_groups(dir: &Path, grace: Duration) -> Vec<u32> {
    let mut files = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pgid") {
                files.push(path);
            }
        }
    }
    let mut stopped = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        if let (Some(Some(pgid)), Some(Some(started))) = (fields.next(), fields.next()) {
            let leader = pgid as u32;
            // A group id is its leader's pid. While the leader lives it must be the
            // process we started (not a reuse of its pid); once it is gone, no new group
            // can take its id, so whoever is left in it is ours.
            let ours = match start_time(leader) {
                Some(now) => started == 0 || now == started,
                None => true,
            };
            if ours && pgid > 1 && group_alive(pgid as libc::pid_t) {
                kill_group(pgid as libc::pid_t, libc::SIGTERM);
                let _ = group_outlives(pgid as libc::pid_t, grace);
                kill_group(pgid as libc::pid_t, libc::SIGKILL);
                stopped.push(leader);
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    stopped
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
    fn background_process_holding_output_is_killed() {
        let done = run(&spec("sleep 30 & echo started"), &mut |_, _| {}).unwrap();
        assert!(done.lingering);
        assert_eq!(done.ended, Ended::Exited(0));
    }
}

//! A child's process group, from its start to whatever it leaves behind: the child
//! starts in a group of its own (forked, see [`own_group`]), the group is recorded
//! next to the log (`<log>.pgid`) for `baton recover`, it is stopped as a whole (the
//! kill ladder: SIGTERM, a grace period, SIGKILL), and once the child exited, what it
//! left running in the group is found and killed ([`after_exit`], [`Group::outlives`]).
//!
//! A [`Group`] that is dropped before its child was reaped (baton failed halfway
//! through a run, say the log could not be written) kills the group: baton never goes
//! on with a child it has stopped watching.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use tokio::process::Child;

use super::cancel::Cancel;
use super::{ProcessError, start_time, stop};

/// How long the pipes may stay open after the child exited before we conclude that a
/// grandchild holds them and stop the group; also how long a child that said its
/// last word may stay quiet before it counts as lingering.
pub(super) const LINGER: Duration = Duration::from_millis(500);

/// Starts the child in a process group of its own, with no moment in which a Ctrl-C
/// meant for baton's group can kill it. With glibc's `posix_spawn` (what `Command`
/// uses when it can) the child sits in baton's group, with baton's handlers already
/// reset to the default, until it moves to its own: a group signal in that moment
/// kills it before it starts (the fault-matrix suite saw `git add` die so). With
/// fork, the child keeps baton's harmless handler until it has moved.
pub(super) fn own_group(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: the closure does nothing; it is there to make `Command` fork.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
}

/// A running child, leader of its own process group, supervised on the runtime.
pub(super) struct Group {
    child: Child,
    pgid: libc::pid_t,
    /// The `.pgid` record, while it exists.
    record: Option<PathBuf>,
    /// The leader was waited for: its pid (and so the group id) may be reused once the
    /// group is empty, so the group is only signalled while it is known to be alive.
    reaped: bool,
}

impl Group {
    /// Starts `cmd` in a group of its own and records the group in `record`, when
    /// given. `command` names it in errors.
    pub fn spawn(
        mut cmd: Command,
        record: Option<PathBuf>,
        command: &str,
    ) -> Result<Group, ProcessError> {
        own_group(&mut cmd);
        let spawn_err = |source| ProcessError::Spawn {
            command: command.to_string(),
            source,
        };
        let child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(spawn_err)?;
        // A child that was just spawned and not yet waited for has its id.
        let pgid = child
            .id()
            .ok_or_else(|| spawn_err(std::io::Error::other("the child has no process id")))?
            as libc::pid_t;
        let mut group = Group {
            child,
            pgid,
            record: None,
            reaped: false,
        };
        if let Some(path) = record {
            let line = format!("{pgid} {}\n", start_time(pgid as u32).unwrap_or(0));
            // On failure the group is dropped, which kills it.
            std::fs::write(&path, line).map_err(|source| ProcessError::Log {
                path: path.clone(),
                source,
            })?;
            group.record = Some(path);
        }
        Ok(group)
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.reaped = true;
        Ok(status)
    }

    /// The kill ladder: SIGTERM to the group, the grace period for the leader to exit
    /// (cut short when `cancel` says so, see [`stop::cut_grace`]), then SIGKILL to the
    /// group whatever happened (its children may outlive the leader).
    pub async fn stop(&mut self, grace: Duration, cancel: &Cancel) -> std::io::Result<ExitStatus> {
        kill_group(self.pgid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() || stop::cut_grace(cancel.reason()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill_group(self.pgid, libc::SIGKILL);
        self.wait().await
    }

    /// SIGKILL to the group now, without a grace period.
    pub async fn kill_now(&mut self) -> std::io::Result<ExitStatus> {
        kill_group(self.pgid, libc::SIGKILL);
        self.wait().await
    }

    /// SIGKILL to what is left of the group (the leader is gone or going).
    pub fn kill(&self) {
        kill_group(self.pgid, libc::SIGKILL);
    }

    /// True when the group still has live members after `wait` (members that are
    /// only exiting are gone by then).
    pub async fn outlives(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while group_alive(self.pgid) {
            if Instant::now() >= deadline {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            kill_group(self.pgid, libc::SIGKILL);
            // Killed, it exits at once; the runtime reaps it once it has.
            let _ = self.child.start_kill();
        } else if group_alive(self.pgid) {
            kill_group(self.pgid, libc::SIGKILL);
        }
        if let Some(path) = self.record.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What to do, once the leader exited, about output something still holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterExit {
    /// Every pipe is closed: the child is done.
    Done,
    /// Give the pipes a moment: the last lines may still be on their way.
    Wait,
    /// The leader is gone but its output is still open: a background process
    /// survived. It belongs to the group; take the group down.
    KillGroup,
    /// The group was killed and the pipe is still open: something left the group and
    /// keeps it. Stop listening.
    GiveUp,
}

/// What to do `since_exit` after the leader exited, with `open_pipes` still open and
/// the group `killed` already (or not).
pub(super) fn after_exit(since_exit: Duration, open_pipes: usize, killed: bool) -> AfterExit {
    if open_pipes == 0 {
        AfterExit::Done
    } else if !killed && since_exit > LINGER {
        AfterExit::KillGroup
    } else if killed && since_exit > LINGER * 4 {
        AfterExit::GiveUp
    } else {
        AfterExit::Wait
    }
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

/// Where the group of the child logging to `log` is recorded.
pub(super) fn record_for(log: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_held_after_exit_is_waited_for_then_the_group_killed_then_abandoned() {
        let ms = Duration::from_millis;
        assert_eq!(after_exit(ms(10_000), 0, false), AfterExit::Done);
        assert_eq!(after_exit(ms(100), 1, false), AfterExit::Wait);
        assert_eq!(after_exit(LINGER + ms(1), 2, false), AfterExit::KillGroup);
        assert_eq!(after_exit(LINGER + ms(1), 1, true), AfterExit::Wait);
        assert_eq!(after_exit(LINGER * 4 + ms(1), 1, true), AfterExit::GiveUp);
    }

    #[test]
    fn a_group_dropped_unreaped_is_killed_and_its_record_removed() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("agent.log.pgid");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let pgid = super::super::runtime::block_on(async {
            let group = Group::spawn(cmd, Some(record.clone()), "sleep 30").unwrap();
            let pgid = group.pgid;
            let text = std::fs::read_to_string(&record).unwrap();
            assert!(text.starts_with(&format!("{pgid} ")), "{text}");
            drop(group);
            // Killed and reaped by the runtime.
            let deadline = Instant::now() + Duration::from_secs(5);
            while group_alive(pgid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            pgid
        })
        .unwrap();
        assert!(!group_alive(pgid));
        assert!(!record.exists());
    }
}

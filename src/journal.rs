//! The journal: `<git common dir>/baton/runs/<run-id>/`, the record of every run —
//! the handoff as sent, `events.jsonl`, the agent's and each check's log, `diff.patch`,
//! `report.json`, and `state.json`, rewritten atomically (temp file, rename) at
//! every stage so that a reader never sees half a state. It also owns the
//! per-repository lock that serializes baton's changes to the user's branch.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::report::RunReport;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("could not write the journal at {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read the journal at {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal file {} is damaged: {message}", path.display())]
    Damaged { path: PathBuf, message: String },
    #[error("no run matches `{0}`; `baton status` lists the runs")]
    NoSuchRun(String),
    #[error("`{query}` matches several runs ({matches}); give more of the id")]
    Ambiguous { query: String, matches: String },
}

type Result<T> = std::result::Result<T, JournalError>;

pub const STATE_FILE: &str = "state.json";
pub const REPORT_FILE: &str = "report.json";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const HANDOFF_FILE: &str = "handoff.md";
pub const PROMPT_FILE: &str = "prompt.md";
pub const PATCH_FILE: &str = "diff.patch";
pub const AGENT_LOG: &str = "agent.log";
/// What baton is about to do to the user's repository, written (durably) before it
/// does it and removed once the run's report says it was done; see `outcome::Intent`.
pub const INTENT_FILE: &str = "landing.json";
/// A run's number in the repository's creation sequence; also the name of the
/// repository's counter of it (`<common dir>/baton/seq`).
pub const SEQ_FILE: &str = "seq";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub fn runs_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("baton").join("runs")
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// An append-only file of JSON lines (a journal's `events.jsonl`), opened on the first
/// line. Each line is written whole with one `write`, so `tail -f` and a reader after a
/// crash see complete lines.
#[derive(Debug, Default)]
pub struct LineLog {
    file: Mutex<Option<File>>,
}

impl LineLog {
    pub fn append(&self, path: &Path, line: &Value) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(OpenOptions::new().create(true).append(true).open(path)?);
        }
        let mut text = line.to_string();
        text.push('\n');
        match guard.as_mut() {
            Some(file) => file.write_all(text.as_bytes()),
            None => Ok(()),
        }
    }
}

/// One run's journal directory.
#[derive(Debug)]
pub struct Journal {
    pub dir: PathBuf,
    events: LineLog,
}

impl Journal {
    /// Makes a new run directory; fails if the id is taken, so ids stay unique. The
    /// run gets the next number of the repository's creation sequence (its `seq`
    /// file), under a lock, so runs created in the same second still have an order.
    pub fn create(common_dir: &Path, run_id: &str) -> Result<(Journal, u64)> {
        let runs = runs_dir(common_dir);
        std::fs::create_dir_all(&runs).map_err(write_err(&runs))?;
        let _lock = RepoLock::acquire_file(common_dir, "seq.lock")?;
        let dir = runs.join(run_id);
        std::fs::create_dir(&dir).map_err(write_err(&dir))?;
        std::fs::create_dir(dir.join("checks")).map_err(write_err(&dir))?;
        let counter = common_dir.join("baton").join(SEQ_FILE);
        let last = match std::fs::read_to_string(&counter) {
            Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(JournalError::Read {
                    path: counter,
                    source,
                });
            }
        };
        // A counter lost or reset (a copied repository) never hands out a number that
        // an existing run already has.
        let seq = last.max(highest_seq(&runs)) + 1;
        std::fs::write(dir.join(SEQ_FILE), format!("{seq}\n")).map_err(write_err(&dir))?;
        write_atomic_text(&counter, format!("{seq}\n").as_bytes(), false)?;
        Ok((
            Journal {
                dir,
                events: LineLog::default(),
            },
            seq,
        ))
    }

    /// Opens the run whose id is `query`, a unique prefix of it, or `last`.
    pub fn open(common_dir: &Path, query: &str) -> Result<Journal> {
        let ids = list_ids(common_dir)?;
        let id = if query == "last" {
            ids.last().cloned()
        } else if ids.iter().any(|i| i == query) {
            Some(query.to_string())
        } else {
            let matches: Vec<&String> = ids.iter().filter(|i| i.starts_with(query)).collect();
            if matches.len() > 1 {
                return Err(JournalError::Ambiguous {
                    query: query.into(),
                    matches: matches
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            matches.first().map(|s| s.to_string())
        };
        let id = id.ok_or_else(|| JournalError::NoSuchRun(query.to_string()))?;
        Ok(Journal {
            dir: runs_dir(common_dir).join(id),
            events: LineLog::default(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn check_log(&self, index: usize) -> PathBuf {
        self.dir
            .join("checks")
            .join(format!("{:02}.log", index + 1))
    }

    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(name);
        std::fs::write(&path, bytes).map_err(write_err(&path))?;
        Ok(path)
    }

    /// Appends one event line. Each line is written whole, so `tail -f` and a reader
    /// after a crash see complete events.
    pub fn event(&self, kind: &str, data: Value) -> Result<()> {
        let mut line = json!({ "ts_ms": now_ms() as u64, "event": kind });
        if let (Value::Object(map), Value::Object(extra)) = (&mut line, data) {
            map.extend(extra);
        }
        self.append(&line)
    }

    /// Appends one line (an event of [`crate::events`]) to events.jsonl.
    pub fn append(&self, line: &Value) -> Result<()> {
        let path = self.path(EVENTS_FILE);
        self.events.append(&path, line).map_err(write_err(&path))
    }

    /// Rewrites `state.json` atomically.
    pub fn write_state(&self, report: &RunReport) -> Result<()> {
        write_atomic(&self.path(STATE_FILE), report, false)
    }

    /// The run's last state, as `report.json` and `state.json`. `durable` syncs both to
    /// the disk, for a report that records a change to the user's repository.
    pub fn write_report(&self, report: &RunReport, durable: bool) -> Result<()> {
        // Serialized once for both files: a report of a change to 100,000 paths takes
        // a tenth of a second to serialize.
        let path = self.path(REPORT_FILE);
        let text = to_json(&path, report)?;
        write_atomic_text(&path, &text, durable)?;
        write_atomic_text(&self.path(STATE_FILE), &text, durable)
    }

    /// Records what baton is about to do to the user's repository, on the disk (file
    /// and directory synced) before anything is done: after a crash or a power cut,
    /// `baton recover` reads it to finish or undo that one thing.
    pub fn begin<T: Serialize>(&self, intent: &T) -> Result<()> {
        write_atomic(&self.path(INTENT_FILE), intent, true)
    }

    /// Forces a journal file to the disk.
    pub fn sync(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match File::open(&path) {
            Ok(f) => f.sync_all().map_err(write_err(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(write_err(&path)(e)),
        }
    }

    /// The intent of a landing that has not been recorded as done, if any.
    pub fn intent<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let path = self.path(INTENT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(JournalError::Read { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| JournalError::Damaged {
                path,
                message: e.to_string(),
            })
    }

    /// Forgets the intent, once the report records its result.
    pub fn done(&self) -> Result<()> {
        let path = self.path(INTENT_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_err(&path)(e)),
            _ => Ok(()),
        }
    }

    pub fn read_state(&self) -> Result<RunReport> {
        let path = self.path(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| JournalError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| JournalError::Damaged {
            path,
            message: e.to_string(),
        })
    }
}

fn to_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| JournalError::Damaged {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

pub(crate) fn write_atomic<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
    durable: bool,
) -> Result<()> {
    write_atomic_text(path, &to_json(path, value)?, durable)
}

fn write_atomic_text(path: &Path, text: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err(path))?;
    tmp.write_all(text).map_err(write_err(path))?;
    // Without `durable`, no fsync: the rename makes the replacement atomic for any
    // reader and any crash of baton itself. An fsync would, on ext4's ordered mode,
    // also force out the worktree checkout's dirty pages and cost more than a whole
    // run; a state file lost to a power cut only makes `recover` see an earlier stage,
    // which it handles the same way. What precedes a change to the user's repository
    // is synced.
    if durable {
        tmp.as_file().sync_all().map_err(write_err(path))?;
    }
    tmp.persist(path).map_err(|e| JournalError::Write {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    if durable {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err(path))?;
    }
    Ok(())
}

/// A run directory's number in the creation sequence; 0 when it has none (runs
/// journaled before the sequence was), which sorts them first, by id.
fn seq_of(run_dir: &Path) -> u64 {
    std::fs::read_to_string(run_dir.join(SEQ_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn highest_seq(runs: &Path) -> u64 {
    std::fs::read_dir(runs)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| seq_of(&e.path()))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Run ids in creation order: by the recorded sequence, never by the random part of
/// the id (two runs of the same second would come out in any order).
pub fn list_ids(common_dir: &Path) -> Result<Vec<String>> {
    let runs = runs_dir(common_dir);
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(JournalError::Read { path: runs, source }),
    };
    let mut ids: Vec<(u64, String)> = entries
        .flatten()
        .filter(|e| e.path().join(STATE_FILE).exists())
        .map(|e| {
            (
                seq_of(&e.path()),
                e.file_name().to_string_lossy().into_owned(),
            )
        })
        .collect();
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// Every run of the repository in creation order, each with its state or, for a run
/// whose state file is damaged, the error: one damaged run must not hide the others.
pub fn list_runs(common_dir: &Path) -> Result<Vec<(Journal, Result<RunReport>)>> {
    Ok(list_ids(common_dir)?
        .into_iter()
        .map(|id| {
            let journal = Journal {
                dir: runs_dir(common_dir).join(id),
                events: LineLog::default(),
            };
            let state = journal.read_state();
            (journal, state)
        })
        .collect())
}

impl Journal {
    /// The run's id (its directory's name).
    pub fn id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// What to tell a person about a run whose state cannot be read: where it is,
    /// what is left of it, and how to be rid of it.
    pub fn damage_hint(&self, err: &JournalError) -> String {
        format!(
            "run {}: its journal is damaged ({err}); what is left of it (the patch is {}) is in {} — look there, or remove that directory to forget the run",
            self.id(),
            PATCH_FILE,
            self.dir.display()
        )
    }
}

/// An exclusive lock on the repository for baton's own changes to refs, the stash
/// and the user's tree; released when dropped.
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    pub fn acquire(common_dir: &Path) -> Result<RepoLock> {
        Self::acquire_file(common_dir, "lock")
    }

    /// A second lock, for adding and removing linked worktrees only: `git worktree
    /// add` reads every other worktree's records and fails on one that another git is
    /// still writing, and `git worktree prune` could take it for stale. Taken after
    /// the repository lock when both are needed, never before.
    pub fn worktrees(common_dir: &Path) -> Result<RepoLock> {
        Self::acquire_file(common_dir, "worktrees.lock")
    }

    fn acquire_file(common_dir: &Path, name: &str) -> Result<RepoLock> {
        let dir = common_dir.join("baton");
        std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(write_err(&path))?;
        // SAFETY: flock on a descriptor we own, without waiting.
        let try_lock = || unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        // A lock held for a moment (another run of this same baton, a sweep's or a
        // compare's, or a short git operation of another baton's) is no news: only a
        // wait past a fifth of a second is said, since a silent wait looks like a hang.
        let mut rc = try_lock();
        for _ in 0..40 {
            if rc == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            rc = try_lock();
        }
        if rc != 0 {
            // The holder wrote its pid into the file when it took the lock.
            let holder = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            crate::ui::progress(
                "lock",
                format!("waiting for another baton{holder} to finish with this repository …"),
            );
            // SAFETY: as above; blocks until the other baton releases it.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc != 0 {
                return Err(JournalError::Write {
                    path,
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        // Who holds it now, for the next one to wait.
        let _ = file.set_len(0);
        let _ = (&file).write_all(std::process::id().to_string().as_bytes());
        Ok(RepoLock { _file: file })
    }
}

//! Warm worktrees: the build directories (`target/`, `node_modules/`, a `.venv/`) a
//! new worktree is seeded with, and the setup commands it runs once. It owns what
//! `[worktree] warm`, `warm_copy`, `setup` and a `.worktreeinclude` file mean; it does
//! not own the pool of finished worktrees (it only tells the pool, by
//! [`WarmSpec::entries`], which directories a returned worktree keeps).
//!
//! How an entry is seeded, from the checkout baton was started in into the new
//! worktree, after git checked the worktree out:
//!
//! - **Only what git ignores.** An entry that the worktree's `.gitignore` does not
//!   ignore would be part of the agent's change, and one that git already checked out
//!   (tracked files) is never overwritten: both are left alone, and said so.
//! - **Only a cache that still fits.** An entry is keyed on the files that invalidate
//!   it, next to it (in the entry's parent directory): `target` on `Cargo.lock`,
//!   `rust-toolchain` and `rust-toolchain.toml`; `node_modules` on `package-lock.json`,
//!   `npm-shrinkwrap.json`, `yarn.lock`, `pnpm-lock.yaml` and `bun.lockb`; `.venv` and
//!   `venv` on `requirements*.txt`, `poetry.lock`, `uv.lock`, `Pipfile.lock` and
//!   `pyproject.toml`. When any of them differs between the checkout and the new
//!   worktree (the run's base), the cache is stale and not copied: the build starts
//!   cold. A `target` is also keyed on the compiler: the rustc that cargo recorded in
//!   `target/.rustc_info.json` must be the one `rustc -vV` reports in the worktree
//!   (where a `rust-toolchain` file may pick another). When either cannot be read the
//!   compiler is not held against the cache: cargo's own fingerprints include the
//!   compiler, so a mismatch costs a rebuild, never a wrong build. Other entries have
//!   no key and are always copied.
//! - **By reflink, else by copy only when asked.** Files are cloned copy-on-write
//!   (`FICLONE`), so a gigabyte `target/` costs no space and little time; directories
//!   are made anew, symlinks copied as symlinks, and permissions and times (to the
//!   nanosecond: cargo's fingerprints compare mtimes) kept. Never hard links (a build
//!   writing through one would change the checkout's files) and never a shared
//!   `CARGO_TARGET_DIR` (it would link one worktree's code into another's build). On a
//!   filesystem that cannot reflink, the files are copied (`copy_file_range`) only
//!   with `warm_copy = true`; otherwise the worktree starts cold and the run says so.
//! - **All or nothing.** The copy is made under a temporary name next to the worktree
//!   (`.<worktree>.warm-<entry>.tmp-<pid>`, outside its tree, so no snapshot of the
//!   worktree sees half a copy) and renamed into place when whole. A failure removes
//!   it and is an error; a copy killed outright leaves only that temporary, which
//!   [`remove_partial`] takes away when the worktree is removed.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{Config, SetupCommand};
use crate::git::{GitError, Repo};
use crate::process;

/// The file at the repository's root that lists more build directories, one a line.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// A `warm` entry baton refuses, named where it was written.
    #[error("{}: {field}: {problem}", file.display())]
    Entry {
        file: PathBuf,
        field: String,
        problem: String,
    },
    #[error("could not read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not tell whether git ignores `{entry}` in the new worktree")]
    Ignored {
        entry: String,
        #[source]
        source: GitError,
    },
    /// A copy that failed midway; what it had made is removed.
    #[error("could not seed `{entry}` into the new worktree ({}); the partial copy was removed", path.display())]
    Seed {
        entry: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted while seeding `{entry}`; the partial copy was removed")]
    Interrupted { entry: String },
    #[error("could not run the setup command `{command}`")]
    SetupSpawn {
        command: String,
        #[source]
        source: process::ProcessError,
    },
    /// A setup command that failed: the run stops here, showing what it said.
    #[error("the setup command `{command}` ({field}) {how} in {}; fix it or the command, then run again{}", worktree.display(), output_block(output))]
    Setup {
        command: String,
        field: &'static str,
        how: String,
        worktree: PathBuf,
        output: Vec<String>,
    },
}

fn output_block(lines: &[String]) -> String {
    if lines.is_empty() {
        return " (it printed nothing)".into();
    }
    let mut text = String::from("; its output:");
    for l in lines {
        text.push_str("\n  | ");
        text.push_str(l);
    }
    text
}

/// What seeds a new worktree and what it runs once: resolved from the config and the
/// repository's `.worktreeinclude`, validated before anything is created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmSpec {
    /// Directories relative to the repository's root, `/`-separated, no trailing `/`,
    /// each once, in the order written (config first).
    pub entries: Vec<String>,
    /// Copy when the filesystem cannot reflink (`[worktree] warm_copy`).
    pub copy: bool,
    pub setup: Vec<SetupCommand>,
}

/// Why `entry` (as written in `[worktree] warm`) cannot be a build directory, with
/// the fix; `None` when it can. Config reading uses it to refuse the file.
pub fn entry_problem(entry: &str) -> Option<String> {
    normalize(entry).err()
}

/// `entry` as a clean relative path, or why it cannot be one.
fn normalize(entry: &str) -> Result<String, String> {
    let fix = "name a directory inside the repository, relative to its root (like \"target\" or \"web/node_modules\")";
    let trimmed = entry.trim();
    if trimmed.is_empty() {
        return Err(format!("an empty entry; {fix}"));
    }
    if trimmed.starts_with('/') || Path::new(trimmed).is_absolute() {
        return Err(format!("`{entry}` is absolute; {fix}"));
    }
    if trimmed.starts_with('!') || trimmed.contains(['*', '?', '[', '\\']) {
        return Err(format!(
            "`{entry}` is a pattern; baton takes plain directory paths only (no globs or negations): {fix}"
        ));
    }
    let mut parts = vec![];
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("`{entry}` leaves the repository; {fix}")),
            ".git" => {
                return Err(format!(
                    "`{entry}` is git's own directory, not a build directory; {fix}"
                ));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("`{entry}` is the whole repository; {fix}"));
    }
    Ok(parts.join("/"))
}

impl WarmSpec {
    /// The spec of the repository at `repo_root` under `config`: `[worktree] warm`,
    /// then the lines of `.worktreeinclude` (`#` comments and blank lines skipped; a
    /// leading `/` anchors a gitignore pattern at the root, which every entry is).
    pub fn resolve(config: &Config, repo_root: &Path) -> Result<WarmSpec, WarmError> {
        let wt = &config.worktree;
        let mut entries: Vec<String> = vec![];
        let mut add = |e: String| {
            if !entries.contains(&e) {
                entries.push(e);
            }
        };
        for entry in wt.warm.iter().flatten() {
            let clean = normalize(entry).map_err(|problem| WarmError::Entry {
                file: crate::config::repo_file(repo_root),
                field: "[worktree] warm".into(),
                problem,
            })?;
            add(clean);
        }
        let include = repo_root.join(INCLUDE_FILE);
        match std::fs::read_to_string(&include) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let anchored = line.strip_prefix('/').unwrap_or(line);
                    let clean = normalize(anchored).map_err(|problem| WarmError::Entry {
                        file: include.clone(),
                        field: format!("line {}", i + 1),
                        problem,
                    })?;
                    add(clean);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(WarmError::Read {
                    path: include,
                    source,
                });
            }
        }
        Ok(WarmSpec {
            entries,
            copy: wt.warm_copy.unwrap_or(false),
            setup: wt.setup.clone().unwrap_or_default(),
        })
    }

    /// Nothing to seed and nothing to run.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.setup.is_empty()
    }
}

/// What seeding did with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Cloned copy-on-write.
    Reflink,
    /// Copied byte for byte (no reflink here, and `warm_copy = true`).
    Copy,
    /// Not copied: a key file differs, or the compiler.
    Stale,
    /// Not copied: the filesystem cannot reflink and `warm_copy` is off.
    NoReflink,
    /// The checkout has no such directory.
    Absent,
    /// The worktree has it already (git checked it out): left as it is.
    Present,
    /// git does not ignore it: a copy would be part of the change.
    NotIgnored,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Reflink => "reflink",
            Method::Copy => "copy",
            Method::Stale => "stale",
            Method::NoReflink => "no_reflink",
            Method::Absent => "absent",
            Method::Present => "present",
            Method::NotIgnored => "not_ignored",
        }
    }

    /// The worktree got the cache.
    pub fn warmed(self) -> bool {
        matches!(self, Method::Reflink | Method::Copy)
    }
}

/// One entry, seeded or not, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub entry: String,
    pub method: Method,
    /// Files (and symlinks) placed in the worktree.
    pub files: u64,
    pub bytes: u64,
    pub duration: Duration,
    /// Why it was not copied (the stale key), when it was not.
    pub reason: Option<String>,
}

impl Seeded {
    fn skipped(entry: &str, method: Method, reason: Option<String>) -> Seeded {
        Seeded {
            entry: entry.to_string(),
            method,
            files: 0,
            bytes: 0,
            duration: Duration::ZERO,
            reason,
        }
    }
}

/// Seeds the worktree at `worktree` with each entry of `spec` found in `main_root`
/// (the checkout baton was started in), reporting each to `on` as it is done.
pub fn seed(
    spec: &WarmSpec,
    main_root: &Path,
    worktree: &Path,
    on: &mut dyn FnMut(&Seeded),
) -> Result<Vec<Seeded>, WarmError> {
    let mut done = vec![];
    if spec.entries.is_empty() {
        return Ok(done);
    }
    // A worktree outside any repository cannot be asked; then nothing is seeded.
    let wt_repo = Repo::discover(worktree).map_err(|source| WarmError::Ignored {
        entry: spec.entries[0].clone(),
        source,
    })?;
    for entry in &spec.entries {
        let seeded = seed_one(spec, entry, main_root, worktree, &wt_repo)?;
        on(&seeded);
        done.push(seeded);
    }
    Ok(done)
}

fn seed_one(
    spec: &WarmSpec,
    entry: &str,
    main_root: &Path,
    worktree: &Path,
    wt_repo: &Repo,
) -> Result<Seeded, WarmError> {
    let src = main_root.join(entry);
    let dst = worktree.join(entry);
    let Ok(src_meta) = std::fs::symlink_metadata(&src) else {
        return Ok(Seeded::skipped(entry, Method::Absent, None));
    };
    if std::fs::symlink_metadata(&dst).is_ok() {
        return Ok(Seeded::skipped(entry, Method::Present, None));
    }
    let ignored = wt_repo
        .is_ignored(entry, src_meta.is_dir())
        .map_err(|source| WarmError::Ignored {
            entry: entry.to_string(),
            source,
        })?;
    if !ignored {
        return Ok(Seeded::skipped(entry, Method::NotIgnored, None));
    }
    if let Some(reason) = stale_key(entry, main_root, worktree) {
        return Ok(Seeded::skipped(entry, Method::Stale, Some(reason)));
    }
    let started = Instant::now();
    let tmp = temp_path(worktree, entry);
    // A temporary of this very name is from a process that reused our pid after a
    // kill: nothing is using it.
    let _ = remove_any(&tmp);
    let mut copier = Copier {
        allow_copy: spec.copy,
        mode: Mode::Undecided,
        files: 0,
        bytes: 0,
    };
    let result = copier.entry(&src, &tmp).and_then(|()| {
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Abort::Io(parent.to_path_buf(), e))?;
        }
        std::fs::rename(&tmp, &dst).map_err(|e| Abort::Io(dst.clone(), e))
    });
    match result {
        Ok(()) => Ok(Seeded {
            entry: entry.to_string(),
            // Undecided (only empty files): nothing needed cloning, and nothing was
            // copied byte for byte either.
            method: if copier.mode == Mode::Copy {
                Method::Copy
            } else {
                Method::Reflink
            },
            files: copier.files,
            bytes: copier.bytes,
            duration: started.elapsed(),
            reason: None,
        }),
        Err(abort) => {
            let _ = remove_any(&tmp);
            match abort {
                Abort::NoReflink => Ok(Seeded::skipped(entry, Method::NoReflink, None)),
                Abort::Interrupted => Err(WarmError::Interrupted {
                    entry: entry.to_string(),
                }),
                Abort::Io(path, source) => Err(WarmError::Seed {
                    entry: entry.to_string(),
                    path,
                    source,
                }),
            }
        }
    }
}

/// Where the copy of `entry` is made before it is whole: next to the worktree (on
/// its filesystem, so the rename and the reflink work) and outside its tree.
fn temp_path(worktree: &Path, entry: &str) -> PathBuf {
    let name = worktree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let slug = entry.replace('/', "%");
    let parent = worktree.parent().unwrap_or(worktree);
    parent.join(format!(".{name}.warm-{slug}.tmp-{}", std::process::id()))
}

/// Removes what a killed seeding left next to the worktree at `worktree` (its
/// temporaries, whatever their pid). Called when the worktree goes.
pub fn remove_partial(worktree: &Path) {
    let (Some(name), Some(parent)) = (worktree.file_name(), worktree.parent()) else {
        return;
    };
    let prefix = format!(".{}.warm-", name.to_string_lossy());
    let Ok(dir) = std::fs::read_dir(parent) else {
        return;
    };
    for e in dir.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.contains(".tmp-") {
            let _ = remove_any(&e.path());
        }
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            // A read-only directory of the copy (a crate's source in cargo's registry
            // copy) must be made writable before what is in it can go.
            make_writable(path);
            std::fs::remove_dir_all(path)
        }
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn make_writable(dir: &Path) {
    if let Ok(m) = std::fs::symlink_metadata(dir) {
        if m.is_dir() {
            let _ =
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m.mode() | 0o700));
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

/// The key files of an entry, by its name: what, when it changes, makes the cache
/// stale.
fn is_key_file(entry_name: &str, file: &str) -> bool {
    match entry_name {
        "target" => matches!(
            file,
            "Cargo.lock" | "rust-toolchain" | "rust-toolchain.toml"
        ),
        "node_modules" => matches!(
            file,
            "package-lock.json"
                | "npm-shrinkwrap.json"
                | "yarn.lock"
                | "pnpm-lock.yaml"
                | "bun.lockb"
        ),
        ".venv" | "venv" => {
            (file.starts_with("requirements") && file.ends_with(".txt"))
                || matches!(
                    file,
                    "poetry.lock" | "uv.lock" | "Pipfile.lock" | "pyproject.toml"
                )
        }
        _ => false,
    }
}

/// Why the checkout's copy of `entry` does not fit the new worktree, if it does not.
fn stale_key(entry: &str, main_root: &Path, worktree: &Path) -> Option<String> {
    let (parent, name) = match entry.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, entry),
    };
    let dir_of = |root: &Path| parent.map_or(root.to_path_buf(), |p| root.join(p));
    let (main_dir, wt_dir) = (dir_of(main_root), dir_of(worktree));
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|f| is_key_file(name, f))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut keys = names(&main_dir);
    keys.extend(names(&wt_dir));
    keys.sort();
    keys.dedup();
    for key in keys {
        let shown = parent.map_or(key.clone(), |p| format!("{p}/{key}"));
        match (
            std::fs::read(main_dir.join(&key)).ok(),
            std::fs::read(wt_dir.join(&key)).ok(),
        ) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => {
                return Some(format!(
                    "{shown} in your checkout differs from the run's base"
                ));
            }
            (Some(_), None) => return Some(format!("{shown} is not in the run's base")),
            (None, _) => return Some(format!("{shown} is not in your checkout")),
        }
    }
    if name == "target" {
        return rustc_stale(&main_root.join(entry), &wt_dir);
    }
    None
}

/// Why the compiler that built `target` is not the worktree's, if both are known.
fn rustc_stale(target: &Path, worktree_dir: &Path) -> Option<String> {
    let info = std::fs::read_to_string(target.join(".rustc_info.json")).ok()?;
    let info: serde_json::Value = serde_json::from_str(&info).ok()?;
    let recorded: Vec<&str> = info
        .get("outputs")?
        .as_object()?
        .values()
        .filter_map(|o| o.get("stdout")?.as_str())
        .filter(|s| s.starts_with("rustc ") && s.contains("\nrelease: "))
        .collect();
    let built_by = recorded.first()?.lines().next()?.to_string();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = process::capture(
        process::command(rustc).arg("-vV").current_dir(worktree_dir),
        None,
    )
    .ok()
    .filter(|o| o.status.success())?;
    let now = String::from_utf8_lossy(&out.stdout);
    let now = now.lines().next()?.trim().to_string();
    let same = recorded
        .iter()
        .any(|r| r.lines().next() == Some(now.as_str()));
    (!same).then(|| {
        format!("your checkout's target/ was built by {built_by}, the worktree's compiler is {now}")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No file with data cloned yet: the first one tells whether this filesystem can.
    Undecided,
    Reflink,
    Copy,
}

/// Why a copy stopped before it was whole.
enum Abort {
    NoReflink,
    Interrupted,
    Io(PathBuf, std::io::Error),
}

struct Copier {
    allow_copy: bool,
    mode: Mode,
    files: u64,
    bytes: u64,
}

/// An error of the filesystem meaning "no reflink here", as opposed to a real failure:
/// not supported by the filesystem, or the two paths on different ones.
fn no_reflink(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOTTY | libc::EXDEV | libc::EINVAL | libc::ENOSYS)
    )
}

impl Copier {
    fn entry(&mut self, src: &Path, dst: &Path) -> Result<(), Abort> {
        if process::interrupted() {
            return Err(Abort::Interrupted);
        }
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| Abort::Io(p, e)
        };
        let meta = std::fs::symlink_metadata(src).map_err(io(src))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(src).map_err(io(src))?;
            std::os::unix::fs::symlink(target, dst).map_err(io(dst))?;
            self.files += 1;
            set_times(dst, &meta, true).map_err(io(dst))?;
        } else if kind.is_dir() {
            std::fs::create_dir(dst).map_err(io(dst))?;
            let mut children: Vec<_> = std::fs::read_dir(src)
                .map_err(io(src))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io(src))?;
            children.sort();
            for child in children {
                self.entry(&src.join(&child), &dst.join(&child))?;
            }
            // After the children: writing them changed the directory's times, and a
            // read-only directory could not have taken them.
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io(dst))?;
            set_times(dst, &meta, false).map_err(io(dst))?;
        } else if kind.is_file() {
            self.file(src, dst, &meta)?;
            self.files += 1;
            self.bytes += meta.len();
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io(dst))?;
            set_times(dst, &meta, false).map_err(io(dst))?;
            // For the fault tests: a kill with the copy half made.
            if self.files == 1 {
                process::crash_point("warm.copying");
            }
        }
        // Sockets, fifos and devices are not build output: not copied.
        Ok(())
    }

    fn file(&mut self, src: &Path, dst: &Path, meta: &std::fs::Metadata) -> Result<(), Abort> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| Abort::Io(p, e)
        };
        if meta.len() == 0 {
            // Nothing to clone; an empty file tells nothing about the filesystem.
            std::fs::File::create_new(dst).map_err(io(dst))?;
            return Ok(());
        }
        if self.mode != Mode::Copy {
            match reflink(src, dst) {
                Ok(()) => {
                    self.mode = Mode::Reflink;
                    return Ok(());
                }
                Err(e) if no_reflink(&e) => {
                    let _ = std::fs::remove_file(dst);
                    if !self.allow_copy {
                        return Err(if self.mode == Mode::Undecided {
                            Abort::NoReflink
                        } else {
                            // Cloned so far, then refused: half a cache is an error.
                            Abort::Io(src.to_path_buf(), e)
                        });
                    }
                    if self.mode == Mode::Undecided {
                        self.mode = Mode::Copy;
                    }
                }
                Err(e) => return Err(Abort::Io(dst.to_path_buf(), e)),
            }
        }
        // std's copy uses copy_file_range, in the kernel.
        std::fs::copy(src, dst).map_err(io(dst))?;
        Ok(())
    }
}

/// `dst` made a copy-on-write clone of `src` (`FICLONE`), or the error that said no.
fn reflink(src: &Path, dst: &Path) -> std::io::Result<()> {
    let from = std::fs::File::open(src)?;
    let to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE takes
    // the source descriptor as its argument and writes nothing to our memory.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Gives `path` the access and modification times of `meta`, to the nanosecond
/// (`nofollow`: of the symlink itself).
fn set_times(path: &Path, meta: &std::fs::Metadata, nofollow: bool) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let times = [
        libc::timespec {
            tv_sec: meta.atime() as libc::time_t,
            tv_nsec: meta.atime_nsec() as libc::c_long,
        },
        libc::timespec {
            tv_sec: meta.mtime() as libc::time_t,
            tv_nsec: meta.mtime_nsec() as libc::c_long,
        },
    ];
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: `c` is a NUL-terminated path and `times` two valid timespecs, both
    // alive for the call.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// When setup commands run.
#[derive(Debug, Clone, Copy)]
pub enum SetupWhen<'a> {
    /// The worktree was just made: every command runs.
    Created,
    /// A pooled worktree was leased, and these paths (relative to its root) differ
    /// from what it last ran its setup on: only the `{ run, on_change }` commands
    /// naming one of them run again.
    Leased { changed: &'a [String] },
}

/// How setup commands run.
pub struct SetupOptions<'a> {
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// The log file of the `i`th command (from 1), when logs are kept.
    pub log: Option<&'a dyn Fn(usize) -> PathBuf>,
    pub cancel: process::Cancel,
}

/// One setup command that ran, and passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRan {
    pub command: String,
    pub duration: Duration,
}

/// Whether `command` runs `when`.
pub fn setup_due(command: &SetupCommand, when: SetupWhen<'_>) -> bool {
    match when {
        SetupWhen::Created => true,
        SetupWhen::Leased { changed } => command.on_change().iter().any(|f| {
            let f = f.trim_start_matches("./");
            changed.iter().any(|c| c == f)
        }),
    }
}

/// Runs the setup commands of `spec` due `when` in `worktree`, in order, each with
/// `sh -c` under baton's process control; the first that fails stops them with an
/// error holding its output.
pub fn run_setup(
    spec: &WarmSpec,
    worktree: &Path,
    when: SetupWhen<'_>,
    opts: &SetupOptions<'_>,
    on: &mut dyn FnMut(&SetupRan),
) -> Result<Vec<SetupRan>, WarmError> {
    let mut ran = vec![];
    for (i, command) in spec.setup.iter().enumerate() {
        if !setup_due(command, when) {
            continue;
        }
        let text = command.command().to_string();
        let spec = process::Spec {
            command: text.clone(),
            cwd: worktree.to_path_buf(),
            timeout: opts.timeout,
            grace: opts.grace,
            log: opts.log.map(|log| log(i + 1)),
            cancel: opts.cancel.clone(),
            ..process::Spec::default()
        };
        let done = process::run(&spec, &mut |_, _| {}).map_err(|source| WarmError::SetupSpawn {
            command: text.clone(),
            source,
        })?;
        if !done.success() {
            let how = match (done.stopped, done.ended) {
                (Some(process::Stopped::Timeout), _) => "timed out".to_string(),
                (Some(process::Stopped::Interrupted), _) => "was interrupted".to_string(),
                (Some(why), _) => format!("was stopped ({why:?})"),
                (None, process::Ended::Exited(code)) => format!("failed (exit {code})"),
                (None, process::Ended::Signalled(sig)) => format!("was killed (signal {sig})"),
            };
            return Err(WarmError::Setup {
                command: text,
                field: "[worktree] setup",
                how,
                worktree: worktree.to_path_buf(),
                output: done.tail,
            });
        }
        let one = SetupRan {
            command: text,
            duration: done.duration,
        };
        on(&one);
        ran.push(one);
    }
    Ok(ran)
}

/// What preparing a new worktree did.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub seeded: Vec<Seeded>,
    pub setup: Vec<SetupRan>,
}

/// One step of [`prepare_new`], as it is done.
pub enum Step<'a> {
    Seeded(&'a Seeded),
    Setup(&'a SetupRan),
}

/// A freshly created worktree made ready: seeded with the build directories of
/// `main_root`, then its setup commands run.
pub fn prepare_new(
    spec: &WarmSpec,
    main_root: &Path,
    worktree: &Path,
    opts: &SetupOptions<'_>,
    on: &mut dyn FnMut(Step<'_>),
) -> Result<Prepared, WarmError> {
    let seeded = seed(spec, main_root, worktree, &mut |s| on(Step::Seeded(s)))?;
    let setup = run_setup(spec, worktree, SetupWhen::Created, opts, &mut |s| {
        on(Step::Setup(s))
    })?;
    Ok(Prepared { seeded, setup })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn entries_are_cleaned_and_bad_ones_refused_with_the_fix() {
        assert_eq!(normalize("target/").as_deref(), Ok("target"));
        assert_eq!(
            normalize("./web//node_modules").as_deref(),
            Ok("web/node_modules")
        );
        for (bad, says) in [
            ("/abs/target", "is absolute"),
            ("../sibling", "leaves the repository"),
            ("a/../../b", "leaves the repository"),
            ("*.cache", "is a pattern"),
            ("!target", "is a pattern"),
            (".git", "git's own directory"),
            (".", "the whole repository"),
            ("", "an empty entry"),
        ] {
            let problem = entry_problem(bad).unwrap_or_default();
            assert!(problem.contains(says), "{bad}: {problem}");
            assert!(problem.contains("relative to its root"), "{problem}");
        }
    }

    #[test]
    fn resolve_reads_the_config_then_worktreeinclude() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(INCLUDE_FILE),
            "# build output\n/target\n\nnode_modules/\n.venv\n",
        )
        .unwrap();
        let spec = WarmSpec::resolve(
            &config("[worktree]\nwarm = [\"target\"]\nwarm_copy = true\nsetup = [\"npm ci\", { run = \"make\", on_change = [\"Makefile\"] }]\n"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(spec.entries, ["target", "node_modules", ".venv"]);
        assert!(spec.copy);
        assert_eq!(spec.setup.len(), 2);
        assert_eq!(spec.entries, ["target", "node_modules", ".venv"]);

        std::fs::write(dir.path().join(INCLUDE_FILE), "target\n../up\n").unwrap();
        let err = WarmSpec::resolve(&Config::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(".worktreeinclude: line 2: `../up` leaves the repository"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn setup_on_a_leased_worktree_runs_only_what_a_changed_file_names() {
        let spec = WarmSpec::resolve(
            &config("[worktree]\nsetup = [\"always\", { run = \"npm ci\", on_change = [\"package-lock.json\"] }]\n"),
            Path::new("/nonexistent"),
        )
        .unwrap();
        let due = |changed: &[String]| -> Vec<&str> {
            spec.setup
                .iter()
                .filter(|c| setup_due(c, SetupWhen::Leased { changed }))
                .map(|c| c.command())
                .collect()
        };
        assert!(due(&["src/lib.rs".into()]).is_empty());
        assert_eq!(due(&["package-lock.json".into()]), ["npm ci"]);
        let all: Vec<_> = spec
            .setup
            .iter()
            .filter(|c| setup_due(c, SetupWhen::Created))
            .collect();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn a_failing_setup_command_is_an_error_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let spec = WarmSpec {
            setup: vec![
                SetupCommand::Run("echo first > made".into()),
                SetupCommand::Run("echo npm ERR! missing lock; exit 7".into()),
                SetupCommand::Run("echo never > never".into()),
            ],
            ..WarmSpec::default()
        };
        let opts = SetupOptions {
            timeout: Some(Duration::from_secs(20)),
            grace: Duration::from_millis(200),
            log: None,
            cancel: process::Cancel::detached(),
        };
        let mut seen = vec![];
        let err = run_setup(&spec, dir.path(), SetupWhen::Created, &opts, &mut |s| {
            seen.push(s.command.clone())
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`echo npm ERR! missing lock; exit 7`"),
            "{err}"
        );
        assert!(err.contains("failed (exit 7)"), "{err}");
        assert!(err.contains("| npm ERR! missing lock"), "{err}");
        assert_eq!(seen, ["echo first > made"]);
        assert!(dir.path().join("made").exists());
        assert!(!dir.path().join("never").exists());
    }

    /// A checkout and a worktree of it, with `target` ignored, for the copy itself.
    fn pair(copy: bool) -> (tempfile::TempDir, PathBuf, PathBuf, WarmSpec) {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("main");
        std::fs::create_dir_all(&main).unwrap();
        let git = |dir: &Path, args: &[&str]| {
            let out = process::command("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@e")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@e")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        std::fs::write(main.join(".gitignore"), "/target/\n").unwrap();
        std::fs::write(main.join("Cargo.lock"), "# lock\n").unwrap();
        git(&main, &["init", "-q"]);
        git(&main, &["add", "-A"]);
        git(&main, &["commit", "-qm", "init"]);
        let wt = tmp.path().join("wts").join("wt");
        std::fs::create_dir_all(wt.parent().unwrap()).unwrap();
        git(
            &main,
            &["worktree", "add", "-q", "--detach", wt.to_str().unwrap()],
        );
        let spec = WarmSpec {
            entries: vec!["target".into()],
            copy,
            setup: vec![],
        };
        (tmp, main, wt, spec)
    }

    #[test]
    fn a_copy_keeps_modes_symlinks_and_nanosecond_mtimes() {
        let (_tmp, main, wt, spec) = pair(true);
        let target = main.join("target/debug/deps");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("libx.rlib"), b"rlib").unwrap();
        std::fs::write(target.join("empty"), b"").unwrap();
        std::fs::write(main.join("target/debug/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            main.join("target/debug/tool"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::os::unix::fs::symlink("deps/libx.rlib", main.join("target/debug/link")).unwrap();
        let seeded = seed(&spec, &main, &wt, &mut |_| {}).unwrap();
        assert_eq!(seeded.len(), 1);
        assert!(seeded[0].method.warmed(), "{seeded:?}");
        assert_eq!(seeded[0].files, 4);
        for rel in [
            "target/debug/deps/libx.rlib",
            "target/debug/deps/empty",
            "target/debug/tool",
            "target/debug/deps",
        ] {
            let a = std::fs::metadata(main.join(rel)).unwrap();
            let b = std::fs::metadata(wt.join(rel)).unwrap();
            assert_eq!(
                (a.mtime(), a.mtime_nsec(), a.mode()),
                (b.mtime(), b.mtime_nsec(), b.mode()),
                "{rel}"
            );
        }
        assert_eq!(
            std::fs::read_link(wt.join("target/debug/link")).unwrap(),
            Path::new("deps/libx.rlib")
        );
        assert_eq!(
            std::fs::read(wt.join("target/debug/deps/libx.rlib")).unwrap(),
            b"rlib"
        );
        // Nothing is left beside the worktree.
        let beside: Vec<_> = std::fs::read_dir(wt.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(beside, [std::ffi::OsString::from("wt")]);
    }

    #[test]
    fn a_stale_lock_file_or_a_tracked_or_unignored_entry_is_not_copied() {
        let (_tmp, main, wt, mut spec) = pair(true);
        std::fs::create_dir_all(main.join("target")).unwrap();
        std::fs::write(main.join("target/x"), b"x").unwrap();
        std::fs::write(main.join("Cargo.lock"), "# lock, changed\n").unwrap();
        let seeded = seed(&spec, &main, &wt, &mut |_| {}).unwrap();
        assert_eq!(seeded[0].method, Method::Stale);
        assert_eq!(
            seeded[0].reason.as_deref(),
            Some("Cargo.lock in your checkout differs from the run's base")
        );
        assert!(!wt.join("target").exists());

        std::fs::create_dir_all(main.join("cache")).unwrap();
        std::fs::write(main.join("cache/y"), b"y").unwrap();
        spec.entries = vec!["cache".into(), "absent".into(), ".gitignore".into()];
        let methods: Vec<Method> = seed(&spec, &main, &wt, &mut |_| {})
            .unwrap()
            .iter()
            .map(|s| s.method)
            .collect();
        assert_eq!(
            methods,
            [Method::NotIgnored, Method::Absent, Method::Present]
        );
        assert!(!wt.join("cache").exists());
    }

    #[test]
    fn a_target_built_by_another_rustc_is_stale() {
        let (_tmp, main, wt, spec) = pair(true);
        std::fs::create_dir_all(main.join("target/debug")).unwrap();
        std::fs::write(main.join("target/debug/x"), b"x").unwrap();
        let info = |version: &str| {
            serde_json::json!({ "rustc_fingerprint": 1, "outputs": { "1": {
                "success": true, "status": "", "code": 0, "stderr": "",
                "stdout": format!("{version}\nbinary: rustc\nrelease: 1.0.0\n"),
            } } })
            .to_string()
        };
        let write_info = |version: &str| {
            std::fs::write(main.join("target/.rustc_info.json"), info(version)).unwrap()
        };
        write_info("rustc 1.0.0 (a59807616 2015-05-15)");
        let seeded = seed(&spec, &main, &wt, &mut |_| {}).unwrap();
        assert_eq!(seeded[0].method, Method::Stale, "{seeded:?}");
        let reason = seeded[0].reason.clone().unwrap_or_default();
        assert!(
            reason.starts_with("your checkout's target/ was built by rustc 1.0.0 (a59807616 2015-05-15), the worktree's compiler is rustc "),
            "{reason}"
        );
        // The compiler of this machine is not held against its own build.
        let out = process::capture(process::command("rustc").arg("-vV"), None).unwrap();
        let now = String::from_utf8_lossy(&out.stdout);
        write_info(now.lines().next().unwrap());
        let seeded = seed(&spec, &main, &wt, &mut |_| {}).unwrap();
        assert!(seeded[0].method.warmed(), "{seeded:?}");
    }

    #[test]
    fn remove_partial_takes_the_temporaries_of_its_worktree_only() {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("run-1");
        std::fs::create_dir_all(&wt).unwrap();
        let mine = temp_path(&wt, "web/node_modules");
        std::fs::create_dir_all(mine.join("a/b")).unwrap();
        std::fs::set_permissions(mine.join("a"), std::fs::Permissions::from_mode(0o500)).unwrap();
        let other = temp_path(&dir.path().join("run-10"), "target");
        std::fs::create_dir_all(&other).unwrap();
        remove_partial(&wt);
        assert!(!mine.exists());
        assert!(other.exists());
        assert!(wt.exists());
    }
}

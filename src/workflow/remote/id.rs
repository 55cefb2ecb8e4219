//! The sweep id: a task file's key, the sweep's record on the remote, opening and
//! closing it, and who acts (the names a record or a lease carries).

use super::*;

/// A sweep as its record on the remote says.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRef {
    pub id: String,
    pub key: String,
    /// The record commit (`refs/baton/sweeps/<id>/base`).
    pub record: String,
    /// The commit every task starts from.
    pub base: String,
    /// `refs/heads/<name>`.
    pub target: String,
    /// The task file's name (its last component), as it is in the record's tree.
    pub file_name: String,
}

/// The task file's stem, made safe for a ref and an id.
pub(super) fn stem_of(file_name: &str) -> String {
    let stem = Path::new(file_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let safe = safe.trim_matches('-').to_string();
    if safe.is_empty() {
        "sweep".into()
    } else {
        safe
    }
}

/// The key of a task file on a branch: the same on every machine for the same
/// branch, file name and bytes.
pub fn key_of(repo: &Repo, target: &str, file_name: &str, bytes: &[u8]) -> Result<String> {
    let mut input = format!("baton sweep key 1\n{target}\n{}\n", stem_of(file_name)).into_bytes();
    input.extend_from_slice(bytes);
    let h = repo.hash_bytes(&input)?;
    Ok(h.get(..16).unwrap_or(&h).to_string())
}

/// The id of the sweep of `key` opened as `record`.
pub(super) fn id_of(repo: &Repo, file_name: &str, key: &str, record: &str) -> Result<String> {
    let h = repo.hash_bytes(format!("baton sweep id 1\n{key}\n{record}\n").as_bytes())?;
    Ok(format!(
        "{}-{}",
        stem_of(file_name),
        h.get(..10).unwrap_or(&h)
    ))
}

pub(super) fn trailer<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .map(str::trim)
}

/// Who is acting, as records and leases name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Holder {
    pub(super) host: String,
    pub(super) repo: String,
    pub(super) pid: u32,
    pub(super) pid_start: Option<u64>,
    pub(super) since: u64,
}

impl Holder {
    pub(super) fn me(repo: &Repo) -> Holder {
        Holder {
            host: host_name(),
            repo: repo
                .common_dir
                .canonicalize()
                .unwrap_or_else(|_| repo.common_dir.clone())
                .display()
                .to_string(),
            pid: std::process::id(),
            pid_start: process::own_start_time(),
            since: journal::now(),
        }
    }

    pub(super) fn trailers(&self) -> String {
        format!(
            "Baton-Host: {}\nBaton-Repo: {}\nBaton-Pid: {}\nBaton-Pid-Start: {}\nBaton-Since: {}\n",
            self.host,
            self.repo,
            self.pid,
            self.pid_start.map(|s| s.to_string()).unwrap_or_default(),
            self.since
        )
    }

    pub(super) fn parse(message: &str) -> Option<Holder> {
        Some(Holder {
            host: trailer(message, "Baton-Host")?.to_string(),
            repo: trailer(message, "Baton-Repo")?.to_string(),
            pid: trailer(message, "Baton-Pid")?.parse().ok()?,
            pid_start: trailer(message, "Baton-Pid-Start").and_then(|s| s.parse().ok()),
            since: trailer(message, "Baton-Since")?.parse().ok()?,
        })
    }

    pub(super) fn describe(&self) -> String {
        format!("pid {} on {} in {}", self.pid, self.host, self.repo)
    }
}

pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

pub(super) fn open_ref(key: &str) -> String {
    format!("{OPEN_PREFIX}/{key}")
}

pub(super) fn base_ref(id: &str) -> String {
    format!("{SWEEPS_PREFIX}/{id}/base")
}

pub(super) fn lease_ref(id: &str) -> String {
    format!("{SWEEPS_PREFIX}/{id}/lander")
}

pub fn result_ref(id: &str, task: &str) -> String {
    format!("{RESULTS_PREFIX}/{id}/{task}")
}

/// Reads the record commit `record` (already fetched).
pub(super) fn read_record(repo: &Repo, url: &str, record: &str) -> Result<SweepRef> {
    let damaged = |detail: &str| RemoteError::Damaged {
        what: short(record).to_string(),
        url: url.to_string(),
        detail: detail.to_string(),
    };
    let info = repo.commit_info(record)?;
    let m = &info.message;
    let key = trailer(m, "Baton-Sweep-Key").ok_or_else(|| damaged("no Baton-Sweep-Key"))?;
    let base = trailer(m, "Baton-Base").ok_or_else(|| damaged("no Baton-Base"))?;
    let target = trailer(m, "Baton-Target").ok_or_else(|| damaged("no Baton-Target"))?;
    let file_name = trailer(m, "Baton-Task-File").ok_or_else(|| damaged("no Baton-Task-File"))?;
    if info.parents.first().map(String::as_str) != Some(base) {
        return Err(damaged("its parent is not its base").into());
    }
    Ok(SweepRef {
        id: id_of(repo, file_name, key, record)?,
        key: key.to_string(),
        record: record.to_string(),
        base: base.to_string(),
        target: target.to_string(),
        file_name: file_name.to_string(),
    })
}

/// The task file's bytes as the sweep's record holds them.
pub(super) fn record_file(repo: &Repo, sweep: &SweepRef) -> Result<Vec<u8>> {
    repo.file_at(&sweep.record, &sweep.file_name)
        .ok_or_else(|| {
            RemoteError::Damaged {
                what: sweep.id.clone(),
                url: String::new(),
                detail: format!("its record has no {}", sweep.file_name),
            }
            .into()
        })
}

/// The sweep `id`, from the remote.
pub fn find(repo: &Repo, remote: &Remote, id: &str) -> Result<SweepRef> {
    let name = base_ref(id);
    if repo.ls_remote(&remote.url, &[&name])?.is_empty() {
        return Err(RemoteError::NoSuchSweep {
            sweep: id.into(),
            url: remote.url.clone(),
        }
        .into());
    }
    repo.fetch(&remote.url, &[format!("+{name}:{name}")], false)?;
    let record = repo
        .ref_target(&name)
        .ok_or_else(|| RemoteError::NoSuchSweep {
            sweep: id.into(),
            url: remote.url.clone(),
        })?;
    let sweep = read_record(repo, &remote.url, &record)?;
    if sweep.id != id {
        return Err(RemoteError::Damaged {
            what: id.into(),
            url: remote.url.clone(),
            detail: format!("its record is that of sweep {}", sweep.id),
        }
        .into());
    }
    Ok(sweep)
}

/// The sweep a task file has open on the branch, if any.
pub(super) fn find_open(repo: &Repo, remote: &Remote, key: &str) -> Result<Option<SweepRef>> {
    let name = open_ref(key);
    if repo.ls_remote(&remote.url, &[&name])?.is_empty() {
        return Ok(None);
    }
    // It may be closed between the two calls: then it is not open.
    if repo
        .fetch(&remote.url, &[format!("+{name}:{name}")], false)
        .is_err()
    {
        return Ok(None);
    }
    match repo.ref_target(&name) {
        Some(record) => {
            let sweep = read_record(repo, &remote.url, &record)?;
            repo.set_ref(&base_ref(&sweep.id), &record, "baton: sweep record")?;
            Ok(Some(sweep))
        }
        None => Ok(None),
    }
}

/// Opens the sweep of a task file (`file_name`, `bytes`) on the branch: the one it has
/// open there, or a new one from the branch's tip now, made create-only so that of
/// two parties opening at once one wins and the other uses its sweep.
pub fn open(repo: &Repo, remote: &Remote, file_name: &str, bytes: &[u8]) -> Result<SweepRef> {
    let key = key_of(repo, &remote.branch, file_name, bytes)?;
    for _ in 0..5 {
        if let Some(sweep) = find_open(repo, remote, &key)? {
            return Ok(sweep);
        }
        let base = remote.fetch_tip(repo)?;
        let blob = repo.write_blobs(&[bytes])?.pop().unwrap_or_default();
        let tree = repo.mktree(&[(file_name, &blob)])?;
        let message = format!(
            "baton sweep of {file_name} on {}\n\nBaton-Sweep-Key: {key}\nBaton-Base: {base}\nBaton-Target: {}\nBaton-Task-File: {file_name}\n{}",
            remote.name(),
            remote.branch,
            Holder::me(repo).trailers()
        );
        let record = repo.commit_tree(&tree, &[&base], &message)?;
        let id = id_of(repo, file_name, &key, &record)?;
        let pushed = repo.push(
            &remote.url,
            &[
                RefUpdate {
                    src: Some(record.clone()),
                    dst: open_ref(&key),
                    expect: Expect::Absent,
                },
                RefUpdate {
                    src: Some(record.clone()),
                    dst: base_ref(&id),
                    expect: Expect::Absent,
                },
            ],
        )?;
        if pushed == Pushed::Done {
            repo.set_ref(&base_ref(&id), &record, "baton: sweep opened")?;
            return read_record(repo, &remote.url, &record);
        }
        // Someone else opened it first: theirs is the sweep.
    }
    Err(RemoteError::Refused {
        url: remote.url.clone(),
        what: open_ref(&key),
        reason: "the sweep could be neither opened nor read".into(),
    }
    .into())
}

/// Closes the sweep: the next run of its task file opens a new one from the branch as
/// it is then. Only this sweep's open ref is removed (leased on its record).
pub(super) fn close(repo: &Repo, remote: &Remote, sweep: &SweepRef) -> Result<bool> {
    let pushed = repo.push(
        &remote.url,
        &[RefUpdate {
            src: None,
            dst: open_ref(&sweep.key),
            expect: Expect::At(sweep.record.clone()),
        }],
    )?;
    let _ = repo.delete_ref(&open_ref(&sweep.key));
    Ok(pushed == Pushed::Done)
}

/// What names a sweep on the command line: a task file, or a sweep id.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Id(String),
}

impl Source {
    /// A path that exists is a task file, and so is one with a `.` or a `/` (a sweep id
    /// has neither: a missing file is then said to be missing); anything else a sweep id.
    pub fn parse(text: &str, cwd: &Path) -> Source {
        let path = cwd.join(text);
        if path.is_file() || text.contains(['.', '/']) {
            Source::File(path)
        } else {
            Source::Id(text.to_string())
        }
    }
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        RemoteError::Read {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

pub(super) fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tasks.toml".into())
}

/// The sweep of `file` (`bytes`), or `sweep` when given — then `file` must be its task
/// file. `open`: open one when the file has none (else: not open is an error).
pub(super) fn sweep_of(
    repo: &Repo,
    remote: &Remote,
    file: &Path,
    bytes: &[u8],
    sweep: Option<&str>,
    open_it: bool,
) -> Result<SweepRef> {
    let name = file_name_of(file);
    match sweep {
        Some(id) => {
            let found = find(repo, remote, id)?;
            let ours = key_of(repo, &found.target, &name, bytes)?;
            if ours != found.key {
                return Err(RemoteError::Mismatch {
                    file: file.display().to_string(),
                    sweep: id.into(),
                    theirs: found.key.clone(),
                    their_file: found.file_name.clone(),
                    target: short_branch(&found.target).into(),
                    ours,
                }
                .into());
            }
            Ok(found)
        }
        None if open_it => open(repo, remote, &name, bytes),
        None => {
            let key = key_of(repo, &remote.branch, &name, bytes)?;
            find_open(repo, remote, &key)?.ok_or_else(|| {
                RemoteError::NotOpen {
                    file: file.display().to_string(),
                    url: remote.url.clone(),
                    branch: remote.name().into(),
                }
                .into()
            })
        }
    }
}

/// The sweep a command names (a file or an id), and the task file's bytes.
pub(super) fn resolve_source(
    repo: &Repo,
    remote: &Remote,
    source: &Source,
    given: Option<&str>,
    open_it: bool,
) -> Result<(SweepRef, Vec<u8>)> {
    match source {
        Source::File(path) => {
            let bytes = read_file(path)?;
            let sweep = sweep_of(repo, remote, path, &bytes, given, open_it)?;
            Ok((sweep, bytes))
        }
        Source::Id(id) => {
            let sweep = find(repo, remote, id)?;
            let bytes = record_file(repo, &sweep)?;
            Ok((sweep, bytes))
        }
    }
}

/// Refuses a sweep that lands on another branch than `remote`'s.
pub(super) fn same_branch(sweep: &SweepRef, remote: &Remote) -> Result<()> {
    if sweep.target != remote.branch {
        return Err(RemoteError::OtherBranch {
            sweep: sweep.id.clone(),
            theirs: short_branch(&sweep.target).into(),
            ours: remote.name().into(),
        }
        .into());
    }
    Ok(())
}

/// The task file resolved as `baton sweep` resolves it (every plan before anything
/// starts), landing on the sweep's branch. Flags are none: on many machines the file
/// is the whole contract.
pub(super) fn load(
    repo: &Repo,
    cwd: &Path,
    path: &Path,
    bytes: &[u8],
    target: &str,
) -> Result<TaskFile> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let ctx = Context {
        repo,
        cwd: cwd.to_path_buf(),
        flags: Flags::default(),
        target: target.to_string(),
        pipelines_dir: std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
    };
    sweep::load(&ctx, path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stem_is_safe_for_a_ref() {
        assert_eq!(stem_of("fixes.toml"), "fixes");
        assert_eq!(stem_of("my bugs!.md"), "my-bugs");
        assert_eq!(stem_of(".toml"), "toml");
        assert_eq!(stem_of("???.toml"), "sweep");
    }

    #[test]
    fn a_holder_reads_back_what_it_wrote() {
        let h = Holder {
            host: "pod-7".into(),
            repo: "/work/clone/.git".into(),
            pid: 42,
            pid_start: Some(99),
            since: 1_700_000_000,
        };
        let message = format!("baton lander\n\n{}", h.trailers());
        assert_eq!(Holder::parse(&message), Some(h));
    }

    #[test]
    fn a_trailer_is_read_from_the_end_of_a_message() {
        let m = "subject\n\nBaton-Sweep: a\nBaton-Task: t1\n";
        assert_eq!(trailer(m, "Baton-Task"), Some("t1"));
        assert_eq!(trailer(m, "Baton-Run"), None);
    }
}

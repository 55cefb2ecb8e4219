//! Submodules in baton's worktrees, and in what a run changed.
//!
//! - A run's worktree gets each submodule checked out from the user's own local copy
//!   of it: a clone that borrows that copy's objects (git's alternates), so nothing is
//!   fetched, nothing is copied, and nothing of the user's is written — not their
//!   `.git/config`, not their `.git/modules`. Its `origin` is removed, so no push from
//!   inside the worktree can reach the user's copy. A submodule the user has no copy
//!   of (never initialized here) stays an empty directory: baton never fetches.
//! - A snapshot of a worktree records a submodule whose content differs from its
//!   gitlink (edits, new files, the agent's own commits there, or files written into
//!   an empty submodule directory) as a gitlink to a commit of that content, made in
//!   this repository's object store. Without it git would take the gitlink as it was,
//!   and the agent's work there would be dropped as "no change".
//! - A diff names the paths inside such a submodule, and a patch carries their
//!   content, reading the old side from the user's copy.
//!
//! Landing a change inside a submodule is not done: it is another repository, and
//! the new commit exists only here. The scope judges every such path a violation.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Change, GitError, Repo, Result};

/// A submodule as a commit records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submodule {
    /// Its name in `.gitmodules` (and of its git directory under `.git/modules`).
    pub name: String,
    pub path: String,
    /// The commit its gitlink records.
    pub commit: String,
}

/// In a worktree's clone of a submodule, the commit it was checked out at: where the
/// objects only the clone has begin.
const BASE_REF: &str = "refs/baton/base";

/// Who made the commits that stand for a submodule's content in a snapshot.
const IDENTITY: [&str; 4] = ["-c", "user.name=baton", "-c", "user.email=baton@localhost"];

impl Repo {
    /// The submodules of `treeish`: its gitlinks at the paths its `.gitmodules`
    /// names (every gitlink, by its path, when that file names none git can read).
    /// No `.gitmodules`, no submodules: that is the quick answer for most trees.
    pub fn submodules(&self, treeish: &str) -> Result<Vec<Submodule>> {
        let blob = format!("{treeish}:.gitmodules");
        if self.run(&["cat-file", "-e", &blob]).is_err() {
            return Ok(vec![]);
        }
        let mut names = BTreeMap::new();
        let listed = self.run(&[
            "config",
            "-z",
            "--blob",
            &blob,
            "--get-regexp",
            r"^submodule\..*\.path$",
        ]);
        // Each record is "submodule.<name>.path\n<path>".
        for record in listed.unwrap_or_default().split(|&b| b == 0) {
            let record = String::from_utf8_lossy(record);
            let Some((key, path)) = record.split_once('\n') else {
                continue;
            };
            if let Some(name) = key
                .strip_prefix("submodule.")
                .and_then(|k| k.strip_suffix(".path"))
            {
                names.insert(path.to_string(), name.to_string());
            }
        }
        let out = if names.is_empty() {
            self.run(&["ls-tree", "-r", "-z", "--full-tree", treeish])?
        } else {
            let mut args = vec![
                "--literal-pathspecs",
                "ls-tree",
                "-z",
                "--full-tree",
                treeish,
                "--",
            ];
            args.extend(names.keys().map(String::as_str));
            self.run(&args)?
        };
        let mut subs = vec![];
        // "<mode> <type> <oid>\t<path>"
        for record in out.split(|&b| b == 0) {
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else {
                continue;
            };
            let fields: Vec<&str> = meta.split(' ').collect();
            if let [Change::GITLINK_MODE, _, oid] = fields[..] {
                subs.push(Submodule {
                    name: names.get(path).cloned().unwrap_or_else(|| path.to_string()),
                    path: path.to_string(),
                    commit: oid.to_string(),
                });
            }
        }
        Ok(subs)
    }

    /// The git directory of the user's own copy of `sub`, when it holds the commit
    /// the gitlink records: where the user's checkout of it points (its `.git`), else
    /// where git keeps it (`.git/modules/<name>`). baton only ever reads it.
    pub fn submodule_store(&self, sub: &Submodule) -> Option<PathBuf> {
        let checkout = self.root.join(&sub.path);
        let link = checkout.join(".git");
        let mut candidates = vec![];
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.is_dir() => candidates.push(link),
            Ok(meta) if meta.is_file() => {
                let text = std::fs::read_to_string(&link).unwrap_or_default();
                if let Some(dir) = text.trim().strip_prefix("gitdir:") {
                    candidates.push(checkout.join(dir.trim()));
                }
            }
            _ => {}
        }
        // git refuses such names itself; a `..` here would read outside `modules`.
        if !sub.name.split('/').any(|c| c == ".." || c.is_empty()) {
            candidates.push(self.git_dir.join("modules").join(&sub.name));
            candidates.push(self.common_dir.join("modules").join(&sub.name));
        }
        candidates.into_iter().find(|dir| {
            dir.join("objects").is_dir()
                && Self::run_in(
                    &self.root,
                    &["cat-file", "-e", &format!("{}^{{commit}}", sub.commit)],
                    &[("GIT_DIR", dir)],
                    None,
                )
                .is_ok()
        })
    }

    /// The paths of the files of `commit` in the submodule git directory `store`.
    pub fn submodule_files(&self, store: &Path, commit: &str) -> Vec<String> {
        Self::run_in(
            &self.root,
            &["ls-tree", "-r", "-z", "--name-only", commit],
            &[("GIT_DIR", store)],
            None,
        )
        .map(|out| {
            out.split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Checks out every submodule of `base` in the new worktree at `worktree` that
    /// the user has a local copy of, at the commit its gitlink records (detached, as
    /// `git submodule update` leaves it). Returns the paths of those left empty.
    pub fn submodules_checkout(&self, worktree: &Path, base: &str) -> Result<Vec<String>> {
        let mut missing = vec![];
        for sub in self.submodules(base)? {
            let Some(store) = self.submodule_store(&sub) else {
                missing.push(sub.path);
                continue;
            };
            let dest = worktree.join(&sub.path);
            Self::run_in(
                worktree,
                &[
                    // The source is the user's own copy, on this disk.
                    "-c",
                    "protocol.file.allow=always",
                    "clone",
                    "--quiet",
                    "--shared",
                    "--no-checkout",
                    &store.to_string_lossy(),
                    &dest.to_string_lossy(),
                ],
                &[],
                None,
            )?;
            Self::run_in(&dest, &["remote", "remove", "origin"], &[], None)?;
            Self::run_in(
                &dest,
                &[
                    "-c",
                    "core.hooksPath=/dev/null",
                    "checkout",
                    "--quiet",
                    "--detach",
                    &sub.commit,
                ],
                &[],
                None,
            )?;
            Self::run_in(&dest, &["update-ref", BASE_REF, &sub.commit], &[], None)?;
        }
        Ok(missing)
    }

    /// `tree`, the snapshot of baton's worktree at `dir`, with each submodule whose
    /// content differs from its gitlink recorded as a gitlink to a commit of that
    /// content. Not for the user's own checkout: there a gitlink says what the user
    /// committed or staged, and their submodules' work in progress is theirs.
    pub(super) fn with_submodule_content(&self, dir: &Path, tree: String) -> Result<String> {
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        if same(dir, &self.root) || std::fs::symlink_metadata(dir.join(".gitmodules")).is_err() {
            return Ok(tree);
        }
        let mut moved = vec![];
        for sub in self.submodules(&tree)? {
            if let Some(commit) = self.submodule_content(dir, &sub)? {
                moved.push((sub.path, commit));
            }
        }
        if moved.is_empty() {
            return Ok(tree);
        }
        let scratch = self.scratch_file()?;
        let env = [("GIT_INDEX_FILE", scratch.path())];
        Self::run_in(dir, &["read-tree", &tree], &env, None)?;
        let mut info = Vec::new();
        for (path, commit) in &moved {
            info.extend_from_slice(format!("{} {commit}\t{path}", Change::GITLINK_MODE).as_bytes());
            info.push(0);
        }
        Self::run_in(
            dir,
            &["update-index", "-z", "--index-info"],
            &env,
            Some(&info),
        )?;
        let out = Self::run_in(dir, &["write-tree"], &env, None)?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// The commit that holds the content of the submodule `sub` in the worktree at
    /// `dir`, when it differs from the commit its gitlink records; `None` when it does
    /// not (or nothing is there: a removed submodule is in the tree already).
    fn submodule_content(&self, dir: &Path, sub: &Submodule) -> Result<Option<String>> {
        let work = dir.join(&sub.path);
        if !std::fs::symlink_metadata(&work).is_ok_and(|m| m.is_dir()) {
            return Ok(None);
        }
        let dot_git = work.join(".git");
        // The clone baton made (or what the agent left of it); GIT_DIR is explicit so
        // that git never walks up to the superproject from a broken one.
        let clone_dir = Self::run_in(
            &work,
            &["rev-parse", "--absolute-git-dir"],
            &[("GIT_DIR", &dot_git)],
            None,
        )
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out).trim()));
        // The user's copy, when it holds the gitlink's commit: what the worktree was
        // checked out from, and what its content is compared with. Without it (never
        // initialized, or the gitlink now names a commit the agent made there, which
        // only the worktree has) whatever is there is recorded.
        let store = self.submodule_store(sub);
        let io = |source| GitError::Io {
            context: format!("could not read the index of submodule {}", work.display()),
            source,
        };
        if clone_dir.is_none()
            && store.is_none()
            && std::fs::read_dir(&work).map_err(io)?.next().is_none()
        {
            // Never checked out, and nothing written there since.
            return Ok(None);
        }
        let scratch = self.scratch_file()?;
        match clone_dir.as_ref().map(|d| d.join("index")) {
            Some(index) if index.exists() => {
                // The clone's index as a stat cache, with its own time kept, so that
                // git's racy-file check still sees edits made in its last second.
                std::fs::copy(&index, scratch.path()).map_err(io)?;
                let written = std::fs::metadata(&index)
                    .and_then(|m| m.modified())
                    .map_err(io)?;
                scratch
                    .as_file()
                    .set_times(std::fs::FileTimes::new().set_modified(written))
                    .map_err(io)?;
            }
            // git reads a missing index as an empty one, an empty file as broken.
            _ => {
                let _ = std::fs::remove_file(scratch.path());
            }
        }
        // Objects are read from the clone (and through it the user's copy) and
        // written here, in this repository, where the judge and the journal read them.
        let mut alternates = vec![];
        if let Some(d) = &clone_dir {
            alternates.push(d.join("objects"));
        }
        if let Some(store) = &store {
            alternates.push(store.join("objects"));
        }
        let alternates = join_paths(&alternates);
        let mut env = vec![
            ("GIT_DIR", self.common_dir.as_path()),
            ("GIT_WORK_TREE", work.as_path()),
            ("GIT_INDEX_FILE", scratch.path()),
        ];
        if let Some(a) = &alternates {
            env.push(("GIT_ALTERNATE_OBJECT_DIRECTORIES", Path::new(a)));
        }
        Self::run_in(&work, &["add", "--all"], &env, None)?;
        let tree = Self::run_in(&work, &["write-tree"], &env, None)?;
        let tree = String::from_utf8_lossy(&tree).trim().to_string();
        let text = |out: Vec<u8>| String::from_utf8_lossy(&out).trim().to_string();
        let old_tree = match &store {
            Some(_) => Self::run_in(
                &work,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{}^{{tree}}", sub.commit),
                ],
                &env,
                None,
            )
            .ok()
            .map(text),
            // Nothing was checked out: only an empty directory is no change.
            None if clone_dir.is_none() => self.empty_tree().ok(),
            // A commit only the worktree has: recorded as it is, whatever it holds.
            None => None,
        };
        if old_tree.as_deref() == Some(tree.as_str()) {
            return Ok(None);
        }
        // The clone's HEAD (the agent may have committed there) as the parent, so
        // the agent's history in the submodule is kept with its content.
        let parent = clone_dir.as_ref().and_then(|clone_dir| {
            Self::run_in(
                &work,
                &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
                &[("GIT_DIR", clone_dir)],
                None,
            )
            .ok()
            .map(text)
        });
        let mut args = IDENTITY.to_vec();
        args.extend(["commit-tree", &tree]);
        if let Some(p) = &parent {
            args.extend(["-p", p]);
        }
        let message = format!(
            "baton: the content of submodule {} in a run's worktree\n",
            sub.path
        );
        let commit = text(Self::run_in(&work, &args, &env, Some(message.as_bytes()))?);
        if let Some(clone_dir) = &clone_dir {
            self.copy_new_objects(&work, clone_dir, &commit);
        }
        Ok(Some(commit))
    }

    /// Copies the objects of `commit` that only the worktree's clone at `clone_dir`
    /// holds (the agent's own commits in the submodule, and their files) into this
    /// repository, so they outlive the worktree; what the user's copy has stays
    /// there (`--local` leaves borrowed objects out). Best effort: without them the
    /// change is still judged, by the submodule's path.
    fn copy_new_objects(&self, work: &Path, clone_dir: &Path, commit: &str) {
        let here = self.common_dir.join("objects");
        let env = [
            ("GIT_DIR", clone_dir),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES", here.as_path()),
        ];
        // From where the clone started when that ref is still there (the agent may
        // have removed it): the rest of the submodule's history is the user's.
        let listed = Self::run_in(
            work,
            &["rev-list", "--objects", commit, "--not", BASE_REF],
            &env,
            None,
        )
        .or_else(|_| Self::run_in(work, &["rev-list", "--objects", commit], &env, None));
        let Ok(listed) = listed else {
            return;
        };
        let Ok(pack) = Self::run_in(
            work,
            &["pack-objects", "--stdout", "--local", "-q"],
            &env,
            Some(&listed),
        ) else {
            return;
        };
        let _ = Self::run_in(
            &self.root,
            &["unpack-objects", "-q"],
            &[("GIT_DIR", &self.common_dir)],
            Some(&pack),
        );
    }

    /// Fills in what changed inside each submodule of `changes` whose gitlink moved
    /// from tree `a`: the new commit from this repository (where snapshots put it),
    /// the old one from the user's copy of the submodule, or, without one, as if
    /// the submodule had been empty (as the worktree had it). Best effort: a change
    /// whose content cannot be read stays the submodule's own path.
    pub(super) fn fill_submodule_changes(&self, a: &str, changes: &mut [Change]) {
        if !changes.iter().any(moved_gitlink) {
            return;
        }
        let subs = self.submodules(a).unwrap_or_default();
        for c in changes.iter_mut().filter(|c| moved_gitlink(c)) {
            let Some((old, env)) = self.submodule_sides(&subs, c) else {
                continue;
            };
            let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
            let diff = |format: &str| {
                let args = [
                    "diff-tree",
                    "-r",
                    "-z",
                    "-M",
                    "--no-ext-diff",
                    format,
                    &old,
                    &c.new_oid,
                ];
                Self::run_in(&self.root, &args, &env, None)
            };
            if let (Ok(raw), Ok(numstat)) = (diff("--raw"), diff("--numstat")) {
                c.inside = super::diff::parse(&raw, &numstat);
            }
        }
    }

    /// The patches inside the submodules that `patch` (from tree `a` to tree `b`)
    /// shows only as "Subproject commit" lines, with paths from the repository's root.
    pub(super) fn submodule_patches(&self, a: &str, b: &str, patch: &[u8]) -> Vec<u8> {
        let marker = b"\n+Subproject commit ";
        if !patch.windows(marker.len()).any(|w| w == marker) {
            return vec![];
        }
        let Ok(changes) = self.diff_trees(a, b) else {
            return vec![];
        };
        let subs = self.submodules(a).unwrap_or_default();
        let mut out = vec![];
        for c in changes
            .iter()
            .filter(|c| moved_gitlink(c) && !c.inside.is_empty())
        {
            let Some((old, env)) = self.submodule_sides(&subs, c) else {
                continue;
            };
            let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
            let src = format!("--src-prefix=a/{}/", c.path);
            let dst = format!("--dst-prefix=b/{}/", c.path);
            let args = [
                "diff-tree",
                "-p",
                "-M",
                "--binary",
                "--no-ext-diff",
                "--no-color",
                &src,
                &dst,
                &old,
                &c.new_oid,
            ];
            if let Ok(p) = Self::run_in(&self.root, &args, &env, None) {
                out.extend(p);
            }
        }
        out
    }

    /// The old side of a moved gitlink to diff from (its commit when the user's copy
    /// has it, else the empty tree), and the environment that makes it readable.
    fn submodule_sides(
        &self,
        subs: &[Submodule],
        c: &Change,
    ) -> Option<(String, Vec<(&'static str, PathBuf)>)> {
        let store = subs
            .iter()
            .find(|s| s.path == c.path && s.commit == c.old_oid)
            .and_then(|s| self.submodule_store(s));
        match store.and_then(|s| join_paths(&[s.join("objects")])) {
            Some(objects) => Some((
                c.old_oid.clone(),
                vec![("GIT_ALTERNATE_OBJECT_DIRECTORIES", PathBuf::from(objects))],
            )),
            None => Some((self.empty_tree().ok()?, vec![])),
        }
    }

    /// The id of the empty tree in this repository's hash.
    fn empty_tree(&self) -> Result<String> {
        let out = Self::run_in(
            &self.root,
            &["hash-object", "-t", "tree", "--stdin"],
            &[],
            Some(b""),
        )?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// An empty scratch file in the git directory, for an index of baton's own.
    fn scratch_file(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix("baton-index-")
            .tempfile_in(&self.common_dir)
            .map_err(|source| GitError::Io {
                context: format!(
                    "could not create a scratch index in {}",
                    self.common_dir.display()
                ),
                source,
            })
    }
}

/// A gitlink that was there before and points at another commit now.
fn moved_gitlink(c: &Change) -> bool {
    c.of_submodule() && c.new_mode == Change::GITLINK_MODE
}

/// A list of object directories for `GIT_ALTERNATE_OBJECT_DIRECTORIES`; `None` when
/// there are none, or one holds the list's separator.
fn join_paths(dirs: &[PathBuf]) -> Option<OsString> {
    if dirs.is_empty() || dirs.iter().any(|d| d.to_string_lossy().contains(':')) {
        return None;
    }
    std::env::join_paths(dirs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = Repo::git_in(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c"])
            .arg("protocol.file.allow=always")
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    #[test]
    fn a_submodule_is_found_by_its_name_where_the_user_keeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("lib");
        let root = tmp.path().join("repo");
        for dir in [&lib, &root] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("a.txt"), "a\n").unwrap();
            super::super::init_with_commit(dir, "first").unwrap();
        }
        let lib_s = lib.to_string_lossy().into_owned();
        // A name unlike its path, with a dot in it, as `.gitmodules` allows.
        git(
            &root,
            &[
                "submodule",
                "add",
                "-q",
                "--name",
                "my.lib",
                &lib_s,
                "vendor/lib",
            ],
        );
        git(&root, &["commit", "-q", "-m", "sub"]);
        let repo = Repo::discover(&root).unwrap();
        let subs = repo.submodules("HEAD").unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(
            (subs[0].name.as_str(), subs[0].path.as_str()),
            ("my.lib", "vendor/lib")
        );
        let store = repo.submodule_store(&subs[0]).unwrap();
        assert_eq!(
            store.canonicalize().unwrap(),
            repo.common_dir
                .join("modules/my.lib")
                .canonicalize()
                .unwrap()
        );
        assert_eq!(repo.submodule_files(&store, &subs[0].commit), ["a.txt"]);
        // No .gitmodules: no submodules, and no error.
        assert!(
            Repo::discover(&lib)
                .unwrap()
                .submodules("HEAD")
                .unwrap()
                .is_empty()
        );
    }
}

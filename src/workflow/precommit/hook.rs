//! The git hook file: `baton hook install` writes a `pre-commit` hook that runs
//! `baton precommit`, in the directory git takes hooks from (`core.hooksPath` when it
//! is set). A hook that is already there is never overwritten: it is kept beside ours
//! as `pre-commit.pre-baton` and run first, with the same arguments; `baton hook
//! uninstall` puts it back.

use std::path::{Path, PathBuf};

use super::PrecommitError;
use crate::git::Repo;

/// The line that tells baton's hook from anyone else's.
const MARK: &str = "# baton pre-commit hook";

/// Where a hook that was there before baton's is kept.
pub const CHAINED: &str = "pre-commit.pre-baton";

type Result<T> = std::result::Result<T, crate::error::Error>;

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The hook is in place; `chained` names the hook kept and run first.
    Installed {
        hook: PathBuf,
        chained: Option<PathBuf>,
    },
    Already {
        hook: PathBuf,
    },
}

/// What `uninstall` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninstalled {
    /// Removed; `restored` names the hook put back in its place.
    Removed {
        hook: PathBuf,
        restored: Option<PathBuf>,
    },
    NotInstalled {
        hook: PathBuf,
    },
}

fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> PrecommitError + 'a {
    move |source| PrecommitError::HookIo {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(MARK))
}

/// A string as one shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The hook's text: the kept hook first, then baton (`baton` is the binary that
/// installed it, or the one on PATH when that one is gone).
fn script(baton: &Path) -> String {
    format!(
        "#!/bin/sh\n{MARK}: installed by `baton hook install`; `baton hook uninstall` removes it\n\
         # and puts back the hook that was here before (kept as {CHAINED}, run first).\n\
         hooks=$(dirname \"$0\")\n\
         if [ -x \"$hooks/{CHAINED}\" ]; then\n    \"$hooks/{CHAINED}\" \"$@\" || exit $?\nfi\n\
         baton={}\n\
         [ -x \"$baton\" ] || baton=baton\n\
         exec \"$baton\" precommit\n",
        shell_quote(&baton.to_string_lossy())
    )
}

/// Installs baton's pre-commit hook for `repo`.
pub fn install(repo: &Repo, baton: &Path) -> Result<Installed> {
    use std::os::unix::fs::PermissionsExt;
    let dir = repo.hooks_dir()?;
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let hook = dir.join("pre-commit");
    if is_ours(&hook) {
        return Ok(Installed::Already { hook });
    }
    let kept = dir.join(CHAINED);
    let chained = if std::fs::symlink_metadata(&hook).is_ok() {
        if std::fs::symlink_metadata(&kept).is_ok() {
            // Both taken: moving the hook would overwrite the kept one.
            return Err(PrecommitError::HookInTheWay { path: kept }.into());
        }
        std::fs::rename(&hook, &kept).map_err(io("keep", &hook))?;
        Some(kept)
    } else {
        None
    };
    let tmp = dir.join(".pre-commit.baton-new");
    std::fs::write(&tmp, script(baton)).map_err(io("write", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &hook).map_err(io("write", &hook))?;
    Ok(Installed::Installed { hook, chained })
}

/// Removes baton's pre-commit hook and puts back the one it kept, if any.
pub fn uninstall(repo: &Repo) -> Result<Uninstalled> {
    let dir = repo.hooks_dir()?;
    let hook = dir.join("pre-commit");
    if !is_ours(&hook) {
        return Ok(Uninstalled::NotInstalled { hook });
    }
    let kept = dir.join(CHAINED);
    let restored = if std::fs::symlink_metadata(&kept).is_ok() {
        std::fs::rename(&kept, &hook).map_err(io("restore", &kept))?;
        Some(hook.clone())
    } else {
        std::fs::remove_file(&hook).map_err(io("remove", &hook))?;
        None
    };
    Ok(Uninstalled::Removed { hook, restored })
}

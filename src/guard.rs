//! The guard around an agent: what it may not touch outside its worktree, even where no
//! sandbox stops it (a `cmd:` agent, gemini's shell under yolo). The repository's git
//! directory is shared by every worktree, so an agent's git commands reach the user's
//! refs, config and hooks. Before the agent runs the guard notes them; after, it
//!
//! - puts back the git directory's `config`, `hooks/` and `info/` as they were (a
//!   planted hook would run on the user's next commit) and names each as a violation;
//! - reports refs created, moved or deleted meanwhile, other than by baton (its own
//!   `baton/*` branches, its landings and stashes): a warning, not a violation, since
//!   the user may have moved them — they are not put back;
//! - reports a worktree the agent switched off its branch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::git::{GitError, Repo};

/// The state of what the agent must leave alone, before it ran.
pub struct Guard {
    worktree: PathBuf,
    branch: String,
    refs: BTreeMap<String, String>,
    control: BTreeMap<String, (u32, Vec<u8>)>,
}

/// What the agent did that it should not have.
#[derive(Debug, Default)]
pub struct Trespass {
    /// Git directory files it changed, put back; paths like `.git/hooks/pre-commit`.
    pub restored: Vec<String>,
    /// One line each for the run's warnings.
    pub warnings: Vec<String>,
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

impl Guard {
    pub fn before(repo: &Repo, worktree: &Path, branch: &str) -> Result<Guard, GitError> {
        Ok(Guard {
            worktree: worktree.to_path_buf(),
            branch: format!("refs/heads/{branch}"),
            refs: repo.refs()?,
            control: repo.control_files(),
        })
    }

    pub fn after(&self, repo: &Repo) -> Result<Trespass, GitError> {
        let mut found = Trespass::default();
        let control = repo.control_files();
        let changed: Vec<String> = self
            .control
            .keys()
            .chain(control.keys())
            .filter(|k| self.control.get(*k) != control.get(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !changed.is_empty() {
            repo.restore_control_files(&self.control, &changed)?;
            found.warnings.push(format!(
                "the agent changed the repository's {}; baton put {} back",
                changed.join(", "),
                if changed.len() == 1 { "it" } else { "them" }
            ));
            found.restored = changed.iter().map(|p| format!(".git/{p}")).collect();
        }

        let refs = repo.refs()?;
        let names: std::collections::BTreeSet<&String> =
            self.refs.keys().chain(refs.keys()).collect();
        for name in names {
            if name.starts_with("refs/heads/baton/") {
                continue;
            }
            let (was, now) = (self.refs.get(name), refs.get(name));
            if was == now {
                continue;
            }
            // baton's own landings and stashes of other runs say so in the reflog.
            if now.is_some()
                && repo
                    .last_reflog_message(name)
                    .is_some_and(|m| m.starts_with("baton"))
            {
                continue;
            }
            let what = match (was, now) {
                (None, Some(n)) => format!("created {name} at {}", short(n)),
                (Some(w), None) => format!("deleted {name} (it was at {w})"),
                (Some(w), Some(n)) => format!("moved {name} from {w} to {}", short(n)),
                (None, None) => continue,
            };
            found.warnings.push(format!(
                "{what} while the agent worked (by the agent, or by you); baton left it as it is"
            ));
        }

        match Repo::checked_out(&self.worktree) {
            Some(b) if b == self.branch => {}
            Some(b) => found.warnings.push(format!(
                "the agent switched its worktree from {} to {}",
                self.branch.trim_start_matches("refs/heads/"),
                b.trim_start_matches("refs/heads/")
            )),
            None if self.worktree.exists() => found.warnings.push(format!(
                "the agent detached its worktree from {}",
                self.branch.trim_start_matches("refs/heads/")
            )),
            None => {}
        }
        Ok(found)
    }
}

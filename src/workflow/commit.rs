//! Verified commits (`baton commit`): the staged tree checked in a worktree of its own
//! ([`precommit::check_staged`]), and committed only if it passed — the commit made
//! from exactly the tree that was tested, on exactly the HEAD that was tested.
//!
//! It follows `git commit`'s conventions: the message from `-m` (paragraphs) or `-F`,
//! or the editor (`git var GIT_EDITOR`) with comment lines stripped; the author and
//! committer as git resolves them; the `pre-commit`, `prepare-commit-msg`,
//! `commit-msg` and `post-commit` hooks, run as git runs them (`git hook run`,
//! `--no-verify` skips the first and third). baton's own pre-commit hook is told that
//! this tree is verified and does not check it again. A pre-commit hook that changes
//! the staged tree has the new tree checked too. The branch moves by compare-and-swap
//! from the tested HEAD, with `git commit`'s reflog line; the user's working tree and
//! index are not touched. Trailers carry the evidence: `Baton-Checks:` (each check
//! with its status and duration), `Baton-Tested-Tree:`, `Baton-Run:`.

use std::path::PathBuf;

use super::precommit::{self, CheckSettings, Checked, Staged, VERIFIED_TREE_ENV};
use crate::error::{Error, Result};
use crate::events::Observer;
use crate::git::Repo;

/// Where the commit message comes from.
#[derive(Debug, Clone)]
pub enum Message {
    /// `-m`, each a paragraph.
    Args(Vec<String>),
    /// `-F FILE` (`-` for standard input, read by the caller).
    Text(String),
    /// Neither: the editor.
    Editor,
}

pub struct Options {
    pub message: Message,
    pub checks: CheckSettings,
    /// `--no-verify`: no `pre-commit` and `commit-msg` hooks.
    pub no_verify: bool,
}

/// What `baton commit` did.
#[derive(Debug)]
pub enum Committed {
    /// The commit is made and the branch moved to it.
    Done {
        commit: String,
        /// `main`, or `HEAD` when detached.
        target: String,
        subject: String,
        checked: Checked,
    },
    /// The checks failed: no commit.
    ChecksFailed(Checked),
    /// A hook refused: no commit.
    HookFailed { hook: &'static str },
    /// HEAD moved while the checks ran: no commit, the branch as the user left it.
    Moved { head: String },
}

/// How many times a pre-commit hook may change the staged tree before baton gives up
/// checking the tree it left.
const HOOK_ROUNDS: usize = 3;

pub fn commit(
    repo: &Repo,
    opts: &Options,
    observers: &dyn Fn() -> Vec<Box<dyn Observer>>,
) -> Result<Committed> {
    if let Some(op) = repo.operation_in_progress() {
        return Err(Error::Usage(format!(
            "you are in the middle of {op}; finish it with `git commit` (baton commits only plain commits)"
        )));
    }
    repo.check_identity()?;
    let mut staged = precommit::read_staged(repo)?;
    if staged.tree == staged.head_tree {
        return Err(Error::Usage(
            "nothing to commit: the staged tree is HEAD's; stage changes with `git add`".into(),
        ));
    }
    let mut rounds = 0;
    let checked = loop {
        rounds += 1;
        let checked = precommit::check_staged(
            repo,
            &staged,
            &opts.checks,
            "baton commit: checks on the staged tree",
            precommit::quiet(observers()),
        )?;
        if crate::process::interrupted() {
            return Err(Error::Interrupted);
        }
        if !checked.passed() {
            return Ok(Committed::ChecksFailed(checked));
        }
        if opts.no_verify {
            break checked;
        }
        let env = [(VERIFIED_TREE_ENV, staged.tree.as_str())];
        if !repo.run_hook("pre-commit", &[], &staged.index, &env)? {
            return Ok(Committed::HookFailed { hook: "pre-commit" });
        }
        // A hook may restage (a formatter): what is committed must be what was tested.
        let now = precommit::read_staged(repo)?;
        if now.tree == staged.tree {
            break checked;
        }
        if rounds >= HOOK_ROUNDS {
            return Err(Error::Usage(format!(
                "the pre-commit hook changed the staged tree {HOOK_ROUNDS} times; run it by hand until it settles, then `baton commit` again"
            )));
        }
        staged = now;
    };
    let message = message(repo, opts, &staged, &checked)?;
    let Some(message) = message else {
        return Ok(Committed::HookFailed { hook: "commit-msg" });
    };
    let subject = message.lines().next().unwrap_or_default().to_string();
    let commit = repo.commit_tree(&staged.tree, &[&staged.head.commit], &message)?;
    let target = staged
        .head
        .branch
        .clone()
        .unwrap_or_else(|| "HEAD".to_string());
    let reflog = format!("commit: {subject}");
    if repo
        .update_ref(&target, &commit, &staged.head.commit, &reflog)
        .is_err()
    {
        let head = repo.head().map(|h| h.commit).unwrap_or_default();
        return Ok(Committed::Moved { head });
    }
    // What git does after a commit; its verdict changes nothing.
    let _ = repo.run_hook("post-commit", &[], &staged.index, &[]);
    Ok(Committed::Done {
        commit,
        target: target.trim_start_matches("refs/heads/").to_string(),
        subject,
        checked,
    })
}

/// The evidence of `checked`, as trailers.
fn trailers(checked: &Checked) -> Vec<String> {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let checks = checked
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} ({} in {:.1}s)",
                one_line(&c.command),
                c.status.name(),
                c.duration_ms as f64 / 1000.0
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let run = if checked.cached {
        format!(
            "{} (cached: this tree passed these checks there)",
            checked.run_id
        )
    } else {
        checked.run_id.clone()
    };
    vec![
        format!("Baton-Checks: {checks}"),
        format!("Baton-Tested-Tree: {}", checked.tree),
        format!("Baton-Run: {run}"),
    ]
}

/// The message as `git commit` makes it: written, hooked, edited, cleaned up, with
/// the trailers; `None` when the commit-msg hook refused it.
fn message(
    repo: &Repo,
    opts: &Options,
    staged: &Staged,
    checked: &Checked,
) -> Result<Option<String>> {
    let file: PathBuf = repo.git_dir.join("COMMIT_EDITMSG");
    let write = |text: &str| {
        std::fs::write(&file, text).map_err(|source| Error::Io {
            context: format!("could not write {}", file.display()),
            source,
        })
    };
    let read = || {
        std::fs::read_to_string(&file).map_err(|source| Error::Io {
            context: format!("could not read {}", file.display()),
            source,
        })
    };
    let (initial, source, edit) = match &opts.message {
        Message::Args(paragraphs) => (paragraphs.join("\n\n"), "message", false),
        Message::Text(text) => (text.clone(), "message", false),
        Message::Editor => (
            "\n# Please enter the commit message for your changes. Lines starting\n# with '#' will be ignored, and an empty message aborts the commit.\n# baton checked the staged tree; its evidence is added as trailers.\n".to_string(),
            "",
            true,
        ),
    };
    write(&initial)?;
    let path = file.to_string_lossy().into_owned();
    let mut args = vec![path.as_str()];
    if !source.is_empty() {
        args.push(source);
    }
    if !repo.run_hook("prepare-commit-msg", &args, &staged.index, &[])? {
        return Ok(None);
    }
    if edit {
        run_editor(repo, &file)?;
    }
    let cleaned = repo.stripspace(&read()?, edit)?;
    if cleaned.trim().is_empty() {
        return Err(Error::Usage(
            "aborting the commit: the message is empty".into(),
        ));
    }
    write(&repo.add_trailers(&cleaned, &trailers(checked))?)?;
    if !opts.no_verify && !repo.run_hook("commit-msg", &[path.as_str()], &staged.index, &[])? {
        return Ok(None);
    }
    Ok(Some(read()?))
}

/// The user's editor on `file`, as git starts it (`sh -c` with the file as `$1`).
fn run_editor(repo: &Repo, file: &std::path::Path) -> Result<()> {
    let editor = repo.editor()?;
    let status = crate::process::command("sh")
        .current_dir(&repo.root)
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(file)
        .status()
        .map_err(|source| Error::Io {
            context: format!("could not start the editor `{editor}`"),
            source,
        })?;
    if !status.success() {
        return Err(Error::Usage(format!(
            "the editor `{editor}` failed ({status}); nothing was committed"
        )));
    }
    Ok(())
}

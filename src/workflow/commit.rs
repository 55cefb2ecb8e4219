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
//!
//! Also as `git commit` has them: signing (`commit.gpgSign`, `-S[KEYID]`,
//! `--no-gpg-sign` — `git commit-tree` reads no `commit.gpgSign`, so baton resolves
//! it), `--amend` (HEAD replaced: its parents, its message by default, its author
//! unless `--reset-author`; the `post-rewrite` hook told), `--author` and `--date`.

use std::path::PathBuf;

use super::precommit::{self, CheckSettings, Checked, Staged, VERIFIED_TREE_ENV};
use crate::error::{Error, Result};
use crate::events::Observer;
use crate::git::{CommitAs, CommitInfo, Ident, Repo};

/// Why `baton commit` refused before it committed anything.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(
        "you are in the middle of {op}; finish it with `git commit` (baton commits only plain commits)"
    )]
    InProgress { op: &'static str },
    #[error("nothing to commit: the staged tree is HEAD's; stage changes with `git add`")]
    NothingToCommit,
    #[error(
        "there is no commit to amend: the repository has no commits yet; make the first one with `baton commit` without --amend"
    )]
    NothingToAmend,
    #[error(
        "--author `{given}` is not in the form `Name <email>`; write it as git commit takes it, e.g. --author \"Ada User <ada@example.com>\""
    )]
    BadAuthor { given: String },
    #[error(
        "--date `{given}` is not a date git reads; give it as `2026-01-01T12:00:00+01:00`, `Thu, 1 Jan 2026 12:00:00 +0100` or `@1767268800 +0000`"
    )]
    BadDate { given: String },
    #[error("--reset-author only goes with --amend (a new commit is yours already)")]
    ResetAuthorWithoutAmend,
    #[error(
        "the pre-commit hook changed the staged tree {rounds} times; run it by hand until it settles, then `baton commit` again"
    )]
    HookDidNotSettle { rounds: usize },
    #[error("aborting the commit: the message is empty")]
    EmptyMessage,
    #[error("the editor `{editor}` failed ({status}); nothing was committed")]
    EditorFailed {
        editor: String,
        status: std::process::ExitStatus,
    },
}

/// Whether to sign, as the command line said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Signing {
    /// Neither flag: as `commit.gpgSign` says.
    #[default]
    AsConfigured,
    /// `-S` / `--gpg-sign`, with a key id or (`None`) `user.signingKey`.
    Sign(Option<String>),
    /// `--no-gpg-sign`.
    Never,
}

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
    /// `--amend`: replace HEAD rather than add to it.
    pub amend: bool,
    /// `--no-edit`: take the message as it is (HEAD's, with `--amend`), no editor.
    pub no_edit: bool,
    /// `--reset-author` (with `--amend`): the author is you, now.
    pub reset_author: bool,
    /// `--author "Name <email>"`, as given.
    pub author: Option<String>,
    /// `--date`, as given.
    pub date: Option<String>,
    pub signing: Signing,
}

/// The author and signing of the commit, resolved and checked before any check runs
/// (bad input costs nothing and writes nothing). `amended` is HEAD's, with `--amend`.
fn commit_as(repo: &Repo, opts: &Options, amended: Option<&CommitInfo>) -> Result<CommitAs> {
    if opts.reset_author && !opts.amend {
        return Err(CommitError::ResetAuthorWithoutAmend.into());
    }
    let mut how = CommitAs::default();
    // git's order: the amended commit's author, then --author, then --date.
    if let Some(author) = amended.and_then(|c| c.author.as_ref()) {
        if !opts.reset_author {
            how.author = Some((author.name.clone(), author.email.clone()));
            how.author_date = author.date.clone();
        }
    }
    if let Some(given) = &opts.author {
        let ident = Ident::parse(given).ok_or_else(|| CommitError::BadAuthor {
            given: given.clone(),
        })?;
        how.author = Some((ident.name, ident.email));
    }
    if let Some(date) = &opts.date {
        how.author_date = Some(date.clone());
    }
    // git's own reading of the date (its reason would only repeat the date).
    if let Err(e) = repo.author_ident(&how) {
        return Err(match &opts.date {
            Some(given) => CommitError::BadDate {
                given: given.clone(),
            }
            .into(),
            None => e.into(),
        });
    }
    how.sign = match &opts.signing {
        Signing::Sign(key) => Some(key.clone().unwrap_or_default()),
        Signing::Never => None,
        Signing::AsConfigured => repo
            .config_bool("commit.gpgSign")?
            .unwrap_or(false)
            .then(String::new),
    };
    Ok(how)
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
        return Err(CommitError::InProgress { op }.into());
    }
    repo.check_identity()?;
    let mut staged = precommit::read_staged(repo)?;
    let amended = if opts.amend {
        Some(repo.commit_info(&staged.head.commit)?)
    } else {
        None
    };
    let how = commit_as(repo, opts, amended.as_ref())?;
    // An amend may keep the tree: it rewords, or re-signs, or re-authors.
    if staged.tree == staged.head_tree && !opts.amend {
        return Err(CommitError::NothingToCommit.into());
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
            return Err(CommitError::HookDidNotSettle {
                rounds: HOOK_ROUNDS,
            }
            .into());
        }
        staged = now;
    };
    let message = message(repo, opts, amended.as_ref(), &staged, &checked)?;
    let Some(message) = message else {
        return Ok(Committed::HookFailed { hook: "commit-msg" });
    };
    let subject = message.lines().next().unwrap_or_default().to_string();
    let parents: Vec<&str> = match &amended {
        Some(info) => info.parents.iter().map(String::as_str).collect(),
        None => vec![staged.head.commit.as_str()],
    };
    let commit = repo.commit_tree_as(&staged.tree, &parents, &message, &how)?;
    let target = staged
        .head
        .branch
        .clone()
        .unwrap_or_else(|| "HEAD".to_string());
    let reflog = if opts.amend {
        format!("commit (amend): {subject}")
    } else {
        format!("commit: {subject}")
    };
    if repo
        .update_ref(&target, &commit, &staged.head.commit, &reflog)
        .is_err()
    {
        let head = repo.head().map(|h| h.commit).unwrap_or_default();
        return Ok(Committed::Moved { head });
    }
    // What git does after a commit; their verdicts change nothing.
    let _ = repo.run_hook("post-commit", &[], &staged.index, &[]);
    if opts.amend {
        let _ = repo.run_hook_fed(
            "post-rewrite",
            &["amend"],
            &staged.index,
            format!("{} {commit}\n", staged.head.commit).as_bytes(),
        );
    }
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
    amended: Option<&CommitInfo>,
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
    const HELP: &str = "\n# Please enter the commit message for your changes. Lines starting\n# with '#' will be ignored, and an empty message aborts the commit.\n# baton checked the staged tree; its evidence is added as trailers.\n";
    // The hook's arguments after the file, as git gives them: the message's source,
    // and for an amend's reused message the commit it comes from.
    let (initial, source, edit): (String, &[&str], bool) = match (&opts.message, amended) {
        (Message::Args(paragraphs), _) => (paragraphs.join("\n\n"), &["message"], false),
        (Message::Text(text), _) => (text.clone(), &["message"], false),
        (Message::Editor, Some(info)) if opts.no_edit => {
            (info.message.clone(), &["commit", "HEAD"], false)
        }
        (Message::Editor, Some(info)) => {
            (format!("{}{HELP}", info.message), &["commit", "HEAD"], true)
        }
        // `git commit --no-edit` without a message: nothing to commit with.
        (Message::Editor, None) if opts.no_edit => (String::new(), &[], false),
        (Message::Editor, None) => (HELP.to_string(), &[], true),
    };
    write(&initial)?;
    let path = file.to_string_lossy().into_owned();
    let mut args = vec![path.as_str()];
    args.extend_from_slice(source);
    if !repo.run_hook("prepare-commit-msg", &args, &staged.index, &[])? {
        return Ok(None);
    }
    if edit {
        run_editor(repo, &file)?;
    }
    let cleaned = repo.stripspace(&read()?, edit)?;
    if cleaned.trim().is_empty() {
        return Err(CommitError::EmptyMessage.into());
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
        return Err(CommitError::EditorFailed { editor, status }.into());
    }
    Ok(())
}

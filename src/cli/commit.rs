//! `baton commit`: a verified commit of the staged tree.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::git::GitError;
use crate::workflow::commit::{self, CommitError, Committed, Message, Options, Signing};
use crate::workflow::precommit::CheckSettings;
use crate::{exit, process, ui};

/// Commit what is staged only if the checks pass on exactly that tree, with the
/// evidence as trailers.
///
/// The staged tree is checked out in a worktree of its own (your working tree and unstaged changes are not
/// touched), the checks run there, and the commit is made from that tree on the HEAD
/// that was tested (the branch moves by compare-and-swap), with the evidence as
/// trailers (Baton-Checks:, Baton-Tested-Tree:, Baton-Run:). Message, author and hooks
/// as `git commit` has them; baton's own pre-commit hook is not run again.
///
/// As `git commit` also: signed when `commit.gpgSign` is true (or -S), `--amend`
/// replaces HEAD (its parents; its message unless -m/-F; its author unless
/// --reset-author), `--author` and `--date` set the author (the committer is you).
///
/// Exit status: 0 committed; 1 a check failed or a hook refused (nothing committed);
/// 2 nothing to commit, no checks configured, bad input; 5 HEAD moved meanwhile
/// (nothing committed); 130 interrupted.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The commit message (repeatable: each is a paragraph, as for `git commit -m`).
    #[arg(
        short = 'm',
        long = "message",
        value_name = "MSG",
        conflicts_with = "file"
    )]
    messages: Vec<String>,
    /// Take the message from FILE (`-` for standard input).
    #[arg(short = 'F', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// A check to run (repeatable, in order); replaces the configured ones.
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// Do not run the pre-commit and commit-msg hooks (the checks still run).
    #[arg(short = 'n', long)]
    no_verify: bool,
    /// Run the checks even when this staged tree passed them before.
    #[arg(long)]
    no_cache: bool,
    /// Replace HEAD with a commit of the staged tree (its parents; its message unless
    /// -m or -F, in the editor unless --no-edit; its author unless --reset-author).
    #[arg(long)]
    amend: bool,
    /// Use the message as it is, without the editor (HEAD's, with --amend).
    #[arg(long)]
    no_edit: bool,
    /// With --amend: you are the author, now (not the amended commit's author).
    #[arg(long)]
    reset_author: bool,
    /// The author, as `Name <email>` (the committer is still you).
    #[arg(long, value_name = "AUTHOR")]
    author: Option<String>,
    /// The author date, in a form git reads (ISO 8601, RFC 2822, `@SECONDS ZONE`).
    #[arg(long, value_name = "DATE")]
    date: Option<String>,
    /// Sign the commit, with KEYID or `user.signingKey` (as `git commit -S`; the
    /// default when `commit.gpgSign` is true): -S, -SKEYID, --gpg-sign[=KEYID].
    #[arg(
        short = 'S',
        long = "gpg-sign",
        value_name = "KEYID",
        num_args = 0..=1,
        default_missing_value = "",
        overrides_with = "no_gpg_sign"
    )]
    gpg_sign: Option<String>,
    /// Do not sign the commit, whatever `commit.gpgSign` says.
    #[arg(long, overrides_with = "gpg_sign")]
    no_gpg_sign: bool,
}

fn read_message(file: &Path) -> Result<String> {
    let io = |source| Error::Io {
        context: format!("could not read the message from {}", file.display()),
        source,
    };
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(io)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(io)
    }
}

pub fn cmd_commit(dir: &Path, args: CommitArgs) -> Result<i32> {
    let repo = match super::open_repo(dir) {
        Err(Error::Git(GitError::NoCommits)) if args.amend => {
            return Err(CommitError::NothingToAmend.into());
        }
        other => other?,
    };
    let config = Config::load(&repo.root)?;
    let mut checks = CheckSettings::resolve(&config, &args.checks, dir, &repo.root)?;
    checks.use_cache = !args.no_cache;
    let message = match (&args.file, args.messages.is_empty()) {
        (Some(file), _) => Message::Text(read_message(file)?),
        (None, false) => Message::Args(args.messages.clone()),
        (None, true) => Message::Editor,
    };
    process::install_interrupt_handler();
    let signing = match (&args.gpg_sign, args.no_gpg_sign) {
        (_, true) => Signing::Never,
        (Some(key), false) => Signing::Sign(Some(key.clone()).filter(|k| !k.is_empty())),
        (None, false) => Signing::AsConfigured,
    };
    let opts = Options {
        message,
        checks,
        no_verify: args.no_verify,
        amend: args.amend,
        no_edit: args.no_edit,
        reset_author: args.reset_author,
        author: args.author.clone(),
        date: args.date.clone(),
        signing,
    };
    Ok(
        match commit::commit(&repo, &opts, &|| super::observers(false))? {
            Committed::Done {
                commit,
                target,
                subject,
                checked,
            } => {
                let how = if checked.cached {
                    format!("checks passed on this tree before (run {})", checked.run_id)
                } else {
                    format!("checks passed (run {})", checked.run_id)
                };
                ui::progress(
                    "commit",
                    format!(
                        "[{target} {}] {subject} — {how}",
                        &commit[..commit.len().min(7)]
                    ),
                );
                exit::OK
            }
            Committed::ChecksFailed(checked) => {
                let failed = checked.failure();
                let log = failed
                    .and_then(|f| f.log.as_ref())
                    .map(|l| format!("; its log: {}", l.display()))
                    .unwrap_or_default();
                ui::progress(
                    "commit",
                    format!(
                        "nothing committed: `{}` {} on the staged tree (run {}){log}",
                        failed.map(|f| f.command.as_str()).unwrap_or("a check"),
                        failed.map(|f| f.status.name()).unwrap_or("failed"),
                        checked.run_id
                    ),
                );
                if checked.interrupted {
                    exit::INTERRUPTED
                } else {
                    exit::CHECKS_FAILED
                }
            }
            Committed::HookFailed { hook } => {
                ui::progress(
                    "commit",
                    format!("nothing committed: the {hook} hook refused"),
                );
                exit::CHECKS_FAILED
            }
            Committed::Moved { head } => {
                ui::progress(
                    "commit",
                    format!(
                        "nothing committed: HEAD moved to {} while the checks ran; run `baton commit` again",
                        &head[..head.len().min(10)]
                    ),
                );
                exit::CONFLICT
            }
        },
    )
}

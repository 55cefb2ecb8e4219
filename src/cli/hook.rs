//! `baton hook install` and `baton hook uninstall`

use std::path::Path;

use clap::Subcommand;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::workflow::precommit::CheckSettings;
use crate::workflow::precommit::hook::{self, Installed, Uninstalled};
use crate::{exit, ui};

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Install the pre-commit hook that runs `baton precommit` (where `core.hooksPath`
    /// says, else .git/hooks). A hook already there is kept, run first, and put back
    /// by `uninstall`. Refused while no checks are configured.
    Install,
    /// Remove baton's pre-commit hook and put back the one it kept.
    Uninstall,
}

pub fn cmd_hook(dir: &Path, cmd: HookCommand) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    match cmd {
        HookCommand::Install => {
            let config = Config::load(&repo.root)?;
            // The same refusal the hook itself would give, before it is installed.
            CheckSettings::resolve(&config, &[], dir, &repo.root)?;
            let baton = std::env::current_exe().map_err(|source| Error::Io {
                context: "cannot tell where the baton binary is".into(),
                source,
            })?;
            match hook::install(&repo, &baton)? {
                Installed::Installed { hook, chained } => {
                    ui::progress("hook", format!("installed {}", hook.display()));
                    if let Some(kept) = chained {
                        ui::progress(
                            "hook",
                            format!(
                                "the hook that was there is kept as {} and runs first; `baton hook uninstall` puts it back",
                                kept.display()
                            ),
                        );
                    }
                }
                Installed::Already { hook } => {
                    ui::progress("hook", format!("already installed: {}", hook.display()));
                }
            }
            Ok(exit::OK)
        }
        HookCommand::Uninstall => {
            match hook::uninstall(&repo)? {
                Uninstalled::Removed { hook, restored } => {
                    ui::progress("hook", format!("removed baton's hook {}", hook.display()));
                    if let Some(back) = restored {
                        ui::progress(
                            "hook",
                            format!("put back the hook that was there: {}", back.display()),
                        );
                    }
                }
                Uninstalled::NotInstalled { hook } => {
                    ui::progress(
                        "hook",
                        format!("{} is not baton's hook; nothing to remove", hook.display()),
                    );
                }
            }
            Ok(exit::OK)
        }
    }
}

//! `baton completions`

use clap::Args;

use crate::error::Result;
use crate::{exit, ui};

/// Print a completion script for your shell.
///
/// bash: `baton completions bash > ~/.local/share/bash-completion/completions/baton`;
/// zsh: `baton completions zsh > "${fpath[1]}/_baton"`; fish: `baton completions fish
/// > ~/.config/fish/completions/baton.fish`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh or fish (or elvish, powershell).
    shell: clap_complete::Shell,
}

pub fn cmd_completions(args: CompletionsArgs) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut super::help::command(),
        "baton",
        &mut script,
    );
    // Written whole, through the writer that ignores a closed pipe (`| head`).
    ui::out_raw(&String::from_utf8_lossy(&script));
    Ok(exit::OK)
}

//! `baton init`

use std::path::Path;

use clap::Args;

use crate::error::{Error, Result};
use crate::{config, exit, init, ui};

/// Write .baton/config.toml with the checks baton detects (Cargo, npm scripts, pytest,
/// Makefile, Go) and the build directories new worktrees are seeded with (`target`,
/// `node_modules`, a `.venv`), and say what it found and why.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing .baton/config.toml.
    #[arg(long)]
    force: bool,
}

pub fn cmd_init(dir: &Path, args: InitArgs) -> Result<i32> {
    let repo = super::open_repo(dir)?;
    let path = config::repo_file(&repo.root);
    if path.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} already exists; edit it, or pass --force to replace it",
            path.display()
        )));
    }
    let checks = init::detect(&repo.root);
    if checks.is_empty() {
        ui::progress("init", "no checks detected; add yours to the `checks` list");
    }
    for c in &checks {
        ui::progress("init", format!("check `{}` ({})", c.command, c.because));
    }
    let warm = init::detect_warm(&repo.root);
    for w in &warm {
        ui::progress(
            "init",
            format!(
                "warm `{}/`: new worktrees get a reflink clone of it ({})",
                w.command, w.because
            ),
        );
    }
    let io_err = |source| Error::Io {
        context: format!("could not write {}", path.display()),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    std::fs::write(&path, init::config_text(&checks, &warm)).map_err(io_err)?;
    ui::progress("init", format!("wrote {}", path.display()));
    for line in init::advice(config::user_file().as_deref()) {
        ui::progress("init", line);
    }
    Ok(exit::OK)
}

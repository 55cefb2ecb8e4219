//! `baton doctor`

use std::path::Path;

use clap::Args;

use crate::config::Config;
use crate::error::Result;
use crate::{doctor, exit};

/// Check each configured agent for real: found, version, and — through the scripted
/// model server, offline — that an edit lands in a worktree and that its sandbox
/// refuses a write outside the worktree. One line per check; exit 0 only if all pass.
#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn cmd_doctor(dir: &Path, _args: DoctorArgs) -> Result<i32> {
    let root = crate::git::Repo::discover(dir)
        .map(|r| r.root)
        .unwrap_or_else(|_| dir.to_path_buf());
    let config = Config::load(&root)?;
    let checks = doctor::codex(&config);
    for c in &checks {
        crate::out!(
            "{:<4}  {}: {} — {}",
            if c.ok { "ok" } else { "FAIL" },
            c.agent,
            c.what,
            c.detail
        );
    }
    Ok(if checks.iter().all(|c| c.ok) && checks.len() == 4 {
        exit::OK
    } else {
        exit::USAGE
    })
}

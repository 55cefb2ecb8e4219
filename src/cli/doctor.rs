//! `baton doctor`

use std::path::Path;

use clap::Args;

use crate::config::Config;
use crate::doctor::{self, Status};
use crate::error::Result;
use crate::exit;

/// Check every agent CLI for real: found, version, and — through the scripted model
/// server, offline — that an edit lands in a worktree (for codex also that its sandbox
/// refuses a write outside it).
///
/// One line per check: `ok`, `FAIL`, or `--` for an agent that is not installed and
/// that nothing in the configuration asks for. Exit 0 only if no check failed and at
/// least one agent works; a missing agent that the config names (`[agents.NAME]`, the
/// default agent, a fallback, a route) fails.
#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn cmd_doctor(dir: &Path, _args: DoctorArgs) -> Result<i32> {
    let root = crate::git::Repo::discover(dir)
        .map(|r| r.root)
        .unwrap_or_else(|_| dir.to_path_buf());
    let config = Config::load(&root)?;
    let mut checks = vec![];
    for name in doctor::AGENTS {
        // Each agent's lines as soon as they are known: a probe takes seconds.
        let lines = doctor::agent(&config, name, doctor::asked_for(&config, name));
        for c in &lines {
            let status = match c.status {
                Status::Ok => "ok",
                Status::Failed => "FAIL",
                Status::Absent => "--",
            };
            crate::out!("{status:<4}  {}: {} — {}", c.agent, c.what, c.detail);
        }
        checks.extend(lines);
    }
    Ok(if doctor::passed(&checks) {
        exit::OK
    } else {
        exit::USAGE
    })
}

//! `baton route`

use std::path::Path;

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::{exit, route};

/// Print the agent `--agent auto` would choose for a task, and the rule that chose it.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The task, as you would give it to `baton run --task`.
    task: String,
}

pub fn cmd_route(dir: &Path, args: RouteArgs) -> Result<i32> {
    let root = crate::git::Repo::discover(dir)
        .map(|r| r.root)
        .unwrap_or_else(|_| dir.to_path_buf());
    let config = Config::load(&root)?;
    let rules = config.routes();
    let choice = route::choose(&rules, &args.task).ok_or_else(|| {
        Error::Usage(
            "no route matches and there is no default rule; add a `[[route]]` with no `when`"
                .into(),
        )
    })?;
    crate::out!("{}", choice.agent);
    crate::out!("  rule {} of {}: {}", choice.rule, rules.len(), choice.why);
    Ok(exit::OK)
}

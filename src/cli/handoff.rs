//! `baton handoff new` and `baton handoff render`

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::error::{Error, Result};
use crate::handoff::{self, Handoff, NewHandoff};
use crate::{config, duration, exit, ui};

#[derive(Debug, Subcommand)]
pub enum HandoffCommand {
    New(Box<NewArgs>),
    Render(RenderArgs),
}

/// The fields a handoff is written from (shared by `handoff new` and `run --task`).
#[derive(Debug, Args, Default)]
pub struct HandoffFields {
    /// The template: implement, bugfix, refactor, tests, docs, review, or one of
    /// .baton/templates/NAME.md.hbs.
    #[arg(long, default_value = "implement")]
    pub template: String,
    /// Background the agent needs: what is wrong, where to look.
    #[arg(long)]
    pub context: Option<String>,
    /// A requirement the change must meet (repeatable).
    #[arg(long = "requirement", value_name = "TEXT")]
    pub requirements: Vec<String>,
    /// A pattern in the code base to follow (repeatable).
    #[arg(long = "pattern", value_name = "TEXT")]
    pub patterns: Vec<String>,
    /// Anything else for the agent.
    #[arg(long)]
    pub notes: Option<String>,
    /// A field for the repository's own templates (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

/// Write a new handoff from a template.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// What the agent is to do.
    #[arg(long)]
    task: String,
    #[command(flatten)]
    fields: HandoffFields,
    /// A glob of paths the change may touch (repeatable; `*` does not cross `/`).
    #[arg(long, value_name = "GLOB")]
    scope: Vec<String>,
    /// A glob of paths the change must never touch, even inside scope (repeatable).
    #[arg(long, value_name = "GLOB")]
    deny: Vec<String>,
    /// A check to run in the worktree (repeatable, in order).
    #[arg(long = "check", value_name = "CMD")]
    checks: Vec<String>,
    /// The agent: codex, claude, gemini, cmd:<shell command>, or auto (picked by the
    /// task's words when the handoff runs).
    #[arg(long)]
    agent: Option<String>,
    /// Wall-clock limit for the agent, like 20m.
    #[arg(long, value_parser = duration::parse)]
    timeout: Option<std::time::Duration>,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Print the prompt exactly as the agent receives it.
#[derive(Debug, Args)]
pub struct RenderArgs {
    file: PathBuf,
}

/// Renders a handoff from the template and fields, with the repository's own
/// templates when `dir` is inside one.
/// The handoff a command works on: the `file` given, else one written from `task`
/// (with the flags' `fields` and `contract`), else the usage error `none`.
pub fn load_or_build(
    dir: &Path,
    file: Option<&Path>,
    task: Option<&str>,
    fields: &HandoffFields,
    contract: NewHandoff,
    none: &str,
) -> Result<Handoff> {
    match (file, task) {
        (Some(file), _) => Ok(Handoff::load(file)?),
        (None, Some(task)) => build(dir, task, fields, contract),
        (None, None) => Err(Error::Usage(none.to_string())),
    }
}

pub fn build(
    dir: &Path,
    task: &str,
    fields: &HandoffFields,
    contract: NewHandoff,
) -> Result<Handoff> {
    let mut vars = std::collections::BTreeMap::new();
    for v in &fields.vars {
        let (k, val) = handoff::parse_var(v)?;
        vars.insert(k, val);
    }
    let repo_templates = crate::git::Repo::discover(dir)
        .ok()
        .map(|r| config::repo_templates(&r.root));
    let new = NewHandoff {
        template: fields.template.clone(),
        task: task.to_string(),
        context: fields.context.clone().unwrap_or_default(),
        requirements: fields.requirements.clone(),
        patterns: fields.patterns.clone(),
        notes: fields.notes.clone().unwrap_or_default(),
        vars,
        ..contract
    };
    Ok(handoff::render_new(&new, repo_templates.as_deref())?)
}

pub fn cmd_handoff(dir: &Path, cmd: HandoffCommand) -> Result<i32> {
    match cmd {
        HandoffCommand::New(args) => {
            let args = *args;
            let contract = NewHandoff {
                scope: args.scope.clone(),
                deny: args.deny.clone(),
                checks: args.checks.clone(),
                agent: args.agent.clone(),
                timeout: args.timeout,
                ..NewHandoff::default()
            };
            // `auto` is routed when the handoff runs.
            if let Some(agent) = args.agent.as_deref().filter(|a| a.trim() != "auto") {
                crate::agent::AgentSpec::parse(agent)?;
            }
            crate::scope::Scope::compile(&args.scope, &args.deny)?;
            let handoff = build(dir, &args.task, &args.fields, contract)?;
            let text = handoff.to_document();
            match &args.output {
                Some(path) => {
                    if path.exists() {
                        return Err(Error::Usage(format!(
                            "{} already exists; choose another file or remove it first",
                            path.display()
                        )));
                    }
                    std::fs::write(path, text).map_err(|source| Error::Io {
                        context: format!("could not write {}", path.display()),
                        source,
                    })?;
                    ui::progress("handoff", format!("wrote {}", path.display()));
                }
                None => crate::ui::out_raw(&text),
            }
            Ok(exit::OK)
        }
        HandoffCommand::Render(args) => {
            let handoff = Handoff::load(&args.file)?;
            crate::ui::out_raw(&handoff.body);
            Ok(exit::OK)
        }
    }
}

//! `baton demo`

use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::handoff::{self, NewHandoff};
use crate::model_server::{ModelServer, Scenario};
use crate::report::Policy;
use crate::run::{self, Base, Plan, Request};
use crate::settings::Settings;
use crate::{agent, demo, exit, git, process, ui};

/// Run a whole delegation offline on a scratch repository: a failing test, the real
/// Codex CLI (driven by baton's scripted model on 127.0.0.1) fixing it in a worktree,
/// the check, the scope, the merge.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to make the scratch repository (default: a new temporary directory,
    /// left in place so you can look at it).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn cmd_demo(args: DemoArgs) -> Result<i32> {
    let dir = match args.dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("baton-demo-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "could not make a temporary directory".into(),
                source,
            })?
            .keep(),
    };
    let user_config = Config::load(&dir).unwrap_or_default();
    let codex = demo::ensure_codex(&user_config.agent("codex"))?;
    let scratch = demo::make_scratch(&dir)?;
    ui::progress(
        "demo",
        format!("scratch repository at {}", scratch.repo.display()),
    );
    let scenario = Scenario::parse(demo::SCENARIO).map_err(Error::Usage)?;
    let model =
        ModelServer::start(scenario, Some(dir.join("model-requests.jsonl"))).map_err(|source| {
            Error::Io {
                context: "could not start the scripted model server".into(),
                source,
            }
        })?;
    ui::progress(
        "demo",
        format!(
            "scripted model at {} (codex: {})",
            model.base_url(),
            codex.display()
        ),
    );
    let mut config = Config::default();
    let mut codex_cfg = user_config.agent("codex");
    codex_cfg.path = Some(codex);
    config.agents.insert(
        "codex".into(),
        agent::pointed_at(codex_cfg, &model.base_url(), &scratch.codex_home),
    );
    ui::progress(
        "demo",
        format!("its test fails: `{}` expects add(2, 3) == 5", demo::CHECK),
    );
    let repo = git::Repo::discover(&scratch.repo)?;
    let handoff = handoff::render_new(
        &NewHandoff {
            template: "bugfix".into(),
            task: "Make add() return the sum of its arguments".into(),
            context: "`add(2, 3)` returns -1; test_calc.py expects 5.".into(),
            scope: vec![demo::SCOPE.into()],
            checks: vec![demo::CHECK.into()],
            agent: Some("codex".into()),
            ..NewHandoff::default()
        },
        None,
    )?;
    process::install_interrupt_handler();
    let flags = Settings {
        agent: Some("codex".into()),
        on_pass: Some(Policy::Merge),
        on_fail: Some(Policy::Stash),
        timeout: Some(std::time::Duration::from_secs(300)),
        fallback_on: Some(vec![]),
        ..Settings::default()
    };
    let plan = Plan::resolve(
        config,
        Request {
            flags,
            handoff,
            base: Base::Head,
            apply: false,
            cwd: scratch.repo.clone(),
            repo_root: scratch.repo.clone(),
            worktrees_dir: Some(scratch.worktrees.clone()),
        },
    )?;
    let report = run::run(&repo, &plan, super::observers(false), &mut |r| {
        run::default_policy(r)
    })?;
    ui::summary(&report);
    crate::say!(
        "\n{}:\n{}",
        scratch.repo.display(),
        git::log_oneline(&scratch.repo, 2)?
    );
    crate::say!("look around: cd {} && git show", scratch.repo.display());
    if args.json {
        super::print_json(&report);
    }
    Ok(exit::for_report(&report))
}

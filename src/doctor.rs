//! `baton doctor`: checks each configured agent for real — found, its version, and,
//! through the scripted model server, that an edit it makes lands in a worktree and
//! that its sandbox refuses a write outside the worktree on this machine. It runs the
//! same pipeline as `baton run`, on scratch repositories, offline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent;
use crate::config::{AgentConfig, Config};
use crate::error::{Error, Result};
use crate::handoff::{Contract, Handoff};
use crate::model_server::{ModelServer, Scenario};
use crate::report::{OutcomeAction, Policy, RunReport, Verdict};
use crate::run::{self, Base, Plan, Request};
use crate::settings::Settings;
use crate::{git, process};

/// One line of the doctor's answer.
#[derive(Debug, Clone)]
pub struct Check {
    pub agent: String,
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

fn check(what: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        agent: "codex".into(),
        what: what.into(),
        ok,
        detail: detail.into(),
    }
}

/// A directory outside the worktree and outside the temporary directories an agent's
/// sandbox may leave writable: under the user's data directory.
fn outside_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("baton")
        .join(format!("doctor-probe-{}", std::process::id()))
}

/// Runs one scripted delegation with codex on a scratch repository.
fn scripted_run(cfg: &AgentConfig, scenario: &str, scope: &str) -> Result<RunReport> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let scratch = tempfile::Builder::new()
        .prefix("baton-doctor-")
        .tempdir()
        .map_err(io("could not make a scratch directory"))?;
    let repo_dir = scratch.path().join("repo");
    let codex_home = scratch.path().join("codex-home");
    for d in [&repo_dir, &codex_home] {
        std::fs::create_dir_all(d).map_err(io("could not make a scratch directory"))?;
    }
    std::fs::write(
        repo_dir.join("README.md"),
        "baton doctor's scratch repository\n",
    )
    .map_err(io("could not write the scratch repository"))?;
    git::init_with_commit(&repo_dir, "scratch")?;
    let repo = git::Repo::discover(&repo_dir)?;
    let scenario = Scenario::parse(scenario).map_err(Error::Usage)?;
    let model = ModelServer::start(scenario, None)
        .map_err(io("could not start the scripted model server"))?;
    let mut config = Config::default();
    config.agents.insert(
        "codex".into(),
        agent::pointed_at(cfg.clone(), &model.base_url(), &codex_home),
    );
    // The same plan and phases as `baton run`, resolved from settings given here
    // instead of flags; nothing is shown (the doctor reports its own lines).
    let flags = Settings {
        agent: Some("codex".into()),
        scope: Some(vec![scope.into()]),
        on_pass: Some(Policy::Revert),
        on_fail: Some(Policy::Revert),
        timeout: Some(Duration::from_secs(120)),
        check_timeout: Some(Duration::from_secs(60)),
        kill_grace: Some(Duration::from_secs(2)),
        fallback_on: Some(vec![]),
        ..Settings::default()
    };
    let plan = Plan::resolve(
        config,
        Request {
            flags,
            handoff: Handoff {
                contract: Contract {
                    task: Some("baton doctor probe".into()),
                    ..Contract::default()
                },
                body: "Do what the scripted model says.\n".into(),
            },
            base: Base::Head,
            apply: false,
            cwd: repo.root.clone(),
            repo_root: repo.root.clone(),
            worktrees_dir: Some(scratch.path().join("worktrees")),
        },
    )?;
    run::run(&repo, &plan, vec![], &mut |r| run::default_policy(r))
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The checks for codex, in order; later ones are skipped when codex is missing.
pub fn codex(config: &Config) -> Vec<Check> {
    let cfg = config.agent("codex");
    let mut checks = vec![];
    let exe = match agent::find_executable("codex", cfg.path.as_deref()) {
        Ok(exe) => {
            checks.push(check("found", true, exe.display().to_string()));
            exe
        }
        Err(e) => {
            checks.push(check("found", false, e.to_string()));
            return checks;
        }
    };
    let mut cfg = cfg;
    cfg.path = Some(exe.clone());

    let spec = process::Spec {
        command: format!("{} --version", shell_quote(&exe)),
        cwd: std::env::temp_dir(),
        timeout: Some(Duration::from_secs(30)),
        grace: Duration::from_secs(1),
        ..process::Spec::default()
    };
    let mut version = String::new();
    match process::run(&spec, &mut |_, line| {
        if version.is_empty() && !line.trim().is_empty() && !line.starts_with("WARNING") {
            version = line.trim().to_string();
        }
    }) {
        Ok(done) if done.success() => {
            let tested = format!("baton is tested with {}", agent::CODEX_VERSION);
            checks.push(check("version", true, format!("{version} ({tested})")));
        }
        Ok(done) => checks.push(check(
            "version",
            false,
            format!("`codex --version` failed: {}", done.tail.join(" ")),
        )),
        Err(e) => checks.push(check("version", false, e.to_string())),
    }

    let edit = "[[turn]]\npatch = \"\"\"\n*** Begin Patch\n*** Add File: doctor.txt\n+written by codex for baton doctor\n*** End Patch\n\"\"\"\n\n[[turn]]\nmessage = \"Added doctor.txt.\"\n";
    checks.push(match scripted_run(&cfg, edit, "doctor.txt") {
        Ok(r)
            if r.verdict == Verdict::Passed
                && r.scope
                    .as_ref()
                    .is_some_and(|s| s.paths.iter().any(|p| p.path == "doctor.txt")) =>
        {
            check(
                "edit lands in a worktree",
                true,
                "an apply_patch edit was found in the run's diff",
            )
        }
        Ok(r) => check(
            "edit lands in a worktree",
            false,
            format!(
                "the run ended {} ({})",
                r.verdict.describe(),
                r.agent_result
                    .and_then(|a| a.error)
                    .unwrap_or_else(|| "no error reported".into())
            ),
        ),
        Err(e) => check("edit lands in a worktree", false, e.to_string()),
    });

    let outside = outside_dir();
    let probe = outside.join("probe.txt");
    let prepared = std::fs::create_dir_all(&outside).is_ok();
    let escape = format!(
        "[[turn]]\nshell = \"printf escaped > {} ; echo done > inside.txt\"\n\n[[turn]]\nmessage = \"Tried.\"\n",
        shell_quote(&probe).replace('"', "\\\"")
    );
    checks.push(if !prepared {
        check("sandbox refuses writes outside", false, format!("could not create {}", outside.display()))
    } else {
        match scripted_run(&cfg, &escape, "inside.txt") {
            Ok(_) if probe.exists() => check(
                "sandbox refuses writes outside",
                false,
                format!(
                    "the agent wrote {} outside its worktree; check `[agents.codex] sandbox` and codex's sandbox support on this machine",
                    probe.display()
                ),
            ),
            Ok(r) if r.outcome.as_ref().is_some_and(|o| o.action == OutcomeAction::Reverted) => check(
                "sandbox refuses writes outside",
                true,
                format!("a write to {} was refused while the worktree stayed writable", outside.display()),
            ),
            Ok(r) => check(
                "sandbox refuses writes outside",
                false,
                format!("the probe run did not complete: {}", r.verdict.describe()),
            ),
            Err(e) => check("sandbox refuses writes outside", false, e.to_string()),
        }
    });
    let _ = std::fs::remove_dir_all(&outside);
    checks
}

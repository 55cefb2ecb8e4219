//! `baton doctor`: checks every agent CLI baton drives (codex, claude, gemini) for
//! real — found, its version, and, through the scripted model server, that an edit it
//! makes lands in a worktree; for codex also that its sandbox refuses a write outside
//! the worktree on this machine. It runs the same pipeline as `baton run`, on scratch
//! repositories, offline. An agent that is not installed is reported; it fails the
//! doctor only when the configuration asks for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent;
use crate::config::{AgentConfig, Config};
use crate::error::{Error, Result};
use crate::handoff::{Contract, Handoff};
use crate::model_server::{ModelServer, Scenario};
use crate::report::{Policy, RunReport, Verdict};
use crate::run::{self, Base, Plan, Request};
use crate::settings::Settings;
use crate::{git, process};

/// One line of the doctor's answer.
#[derive(Debug, Clone)]
pub struct Check {
    pub agent: String,
    pub what: String,
    pub status: Status,
    pub detail: String,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Not installed, and nothing in the configuration asks for it: said, not failed.
    Absent,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// Whether the doctor's answer is a pass: no check failed, and at least one agent
/// works (a machine with no agent CLI at all cannot delegate anything).
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Failed) && checks.iter().any(Check::ok)
}

/// The agent CLIs baton drives, in the order the doctor checks them.
pub const AGENTS: &[&str] = &["codex", "claude", "gemini"];

/// Whether the configuration asks for agent `name`: its own `[agents.NAME]`, or
/// naming it as the default agent, a fallback or a route's choice. Such an agent
/// that is missing fails the doctor.
pub fn asked_for(config: &Config, name: &str) -> bool {
    let named = |text: &str| text.trim() == name;
    config.agents.contains_key(name)
        || config.defaults.agent.as_deref().is_some_and(named)
        || crate::settings::Settings::list(&config.defaults.fallback)
            .iter()
            .any(|a| named(a))
        || config.route.iter().any(|r| named(&r.agent))
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

/// `cfg` pointed at the scripted model at `model` as agent `name`, with homes of its
/// own under `scratch`, so neither the user's state nor their provider is touched.
fn pointed(
    name: &str,
    cfg: &AgentConfig,
    model: &ModelServer,
    scratch: &Path,
) -> std::io::Result<AgentConfig> {
    let home = scratch.join(format!("{name}-home"));
    std::fs::create_dir_all(&home)?;
    let root = format!("http://127.0.0.1:{}", model.port());
    Ok(match name {
        "codex" => agent::pointed_at(cfg.clone(), &model.base_url(), &home),
        "claude" => agent::claude_pointed_at(cfg.clone(), &root, &home),
        _ => {
            // Gemini CLI takes its base URL and key from the environment, but the way
            // it signs in from its settings: an API key, and no retries of its own.
            std::fs::create_dir_all(home.join(".gemini"))?;
            std::fs::write(
                home.join(".gemini").join("settings.json"),
                r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"general":{"maxAttempts":1}}"#,
            )?;
            let mut cfg = cfg.clone();
            for (k, v) in [
                ("GOOGLE_GEMINI_BASE_URL", root),
                ("GEMINI_API_KEY", "scripted".to_string()),
                ("HOME", home.display().to_string()),
            ] {
                cfg.env.insert(k.into(), v);
            }
            cfg
        }
    })
}

/// Runs one scripted delegation with agent `name` on a scratch repository.
fn scripted_run(name: &str, cfg: &AgentConfig, scenario: &str, scope: &str) -> Result<RunReport> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let scratch = tempfile::Builder::new()
        .prefix("baton-doctor-")
        .tempdir()
        .map_err(io("could not make a scratch directory"))?;
    let repo_dir = scratch.path().join("repo");
    std::fs::create_dir_all(&repo_dir).map_err(io("could not make a scratch directory"))?;
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
        name.into(),
        pointed(name, cfg, &model, scratch.path())
            .map_err(io("could not prepare the agent's scratch home"))?,
    );
    // The same plan and phases as `baton run`, resolved from settings given here
    // instead of flags; nothing is shown (the doctor reports its own lines).
    let flags = Settings {
        agent: Some(name.into()),
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

/// The checks for agent `name`, in order; the others are skipped when it is missing,
/// which fails the doctor only when `required`.
pub fn agent(config: &Config, name: &str, required: bool) -> Vec<Check> {
    let check = |what: &str, ok: bool, detail: String| Check {
        agent: name.into(),
        what: what.into(),
        status: if ok { Status::Ok } else { Status::Failed },
        detail,
    };
    let cfg = config.agent(name);
    let mut checks = vec![];
    let exe = match agent::find_executable(name, cfg.path.as_deref()) {
        Ok(exe) => {
            checks.push(check("found", true, exe.display().to_string()));
            exe
        }
        Err(e) => {
            let mut missing = check("found", false, e.to_string());
            if !required {
                missing.status = Status::Absent;
            }
            checks.push(missing);
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
            let tested = agent::tested_version(name)
                .map(|v| format!(" (baton is tested with {v})"))
                .unwrap_or_default();
            checks.push(check("version", true, format!("{version}{tested}")));
        }
        Ok(done) => checks.push(check(
            "version",
            false,
            format!("`{name} --version` failed: {}", done.tail.join(" ")),
        )),
        Err(e) => checks.push(check("version", false, e.to_string())),
    }

    // One scenario for all three: a patch is codex's apply_patch, claude's Write and
    // gemini's write_file.
    let edit = format!(
        "[[turn]]\npatch = \"\"\"\n*** Begin Patch\n*** Add File: doctor.txt\n+written by {name} for baton doctor\n*** End Patch\n\"\"\"\n\n[[turn]]\nmessage = \"Added doctor.txt.\"\n"
    );
    checks.push(match scripted_run(name, &cfg, &edit, "doctor.txt") {
        Ok(r)
            if r.verdict == Verdict::Passed
                && r.scope
                    .as_ref()
                    .is_some_and(|s| s.paths.iter().any(|p| p.path == "doctor.txt")) =>
        {
            check(
                "edit lands in a worktree",
                true,
                "an edit by the scripted model was found in the run's diff".into(),
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
    checks.push(outside_probe(name, &cfg));
    checks
}

/// Whether the agent is stopped from writing outside its worktree on this machine,
/// while the worktree stays writable: for codex its sandbox, against a shell command;
/// for claude and gemini their permission modes, against their file tools.
fn outside_probe(name: &str, cfg: &AgentConfig) -> Check {
    let what = if name == "codex" {
        "sandbox refuses writes outside"
    } else {
        "refuses edits outside"
    };
    let check = |ok: bool, detail: String| Check {
        agent: name.into(),
        what: what.into(),
        status: if ok { Status::Ok } else { Status::Failed },
        detail,
    };
    let outside = outside_dir();
    let probe = outside.join("probe.txt");
    if std::fs::create_dir_all(&outside).is_err() {
        return check(false, format!("could not create {}", outside.display()));
    }
    let scenario = if name == "codex" {
        format!(
            "[[turn]]\nshell = \"printf escaped > {} ; echo done > inside.txt\"\n\n[[turn]]\nmessage = \"Tried.\"\n",
            shell_quote(&probe).replace('"', "\\\"")
        )
    } else {
        let add = |path: &str, line: &str| {
            format!(
                "[[turn]]\npatch = \"\"\"\n*** Begin Patch\n*** Add File: {path}\n+{line}\n*** End Patch\n\"\"\"\n\n"
            )
        };
        format!(
            "{}{}[[turn]]\nmessage = \"Tried.\"\n",
            add(&probe.display().to_string(), "escaped"),
            add("inside.txt", "done")
        )
    };
    let setting = if name == "codex" {
        "sandbox"
    } else {
        "permission_mode"
    };
    let result = match scripted_run(name, cfg, &scenario, "inside.txt") {
        Ok(_) if probe.exists() => check(
            false,
            format!(
                "the agent wrote {} outside its worktree; check `[agents.{name}] {setting}`{}",
                probe.display(),
                if name == "codex" {
                    " and codex's sandbox support on this machine"
                } else {
                    ""
                }
            ),
        ),
        Ok(r) if r.verdict == Verdict::Passed => check(
            true,
            format!(
                "a write to {} was refused while the worktree stayed writable",
                outside.display()
            ),
        ),
        Ok(r) => check(
            false,
            format!("the probe run did not complete: {}", r.verdict.describe()),
        ),
        Err(e) => check(false, e.to_string()),
    };
    let _ = std::fs::remove_dir_all(&outside);
    result
}

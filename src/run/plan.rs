//! Plan: what a command asks for (its flags, a handoff, the config) resolved once,
//! validated, into the [`Plan`] every run follows. Flags over the handoff over the
//! config's `[defaults]`, by [`Settings::overlay`]; everything that can be refused is
//! refused here, before anything is created.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::AgentSpec;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::handoff::Handoff;
use crate::report::{Policy, RunSettings};
use crate::route::Choice;
use crate::scope::{Limits, Scope};
use crate::settings::{DEFAULT_FALLBACK_ON, Settings, Trigger};

/// What a run's worktree starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// The user's HEAD when the run starts.
    Head,
    /// A commit the user named (`--base REV`), as they wrote it.
    Rev(String),
    /// HEAD plus the user's uncommitted work (staged, unstaged, untracked), as a
    /// snapshot commit made without touching their tree (`--include-dirty`).
    Dirty,
    /// HEAD's commit with this tree (the staged tree, for pre-commit delegation).
    Index(String),
}

/// What a command asks for, beyond the config: its flags as settings (the top
/// layer), the handoff, and where to start.
pub struct Request {
    pub flags: Settings,
    pub handoff: Handoff,
    pub base: Base,
    /// Land a passing change as uncommitted changes instead of a commit.
    pub apply: bool,
    /// Where baton was started (for a relative `$BATON_WORKTREES_DIR`).
    pub cwd: PathBuf,
    /// The repository's root (for a relative `[worktree] dir`).
    pub repo_root: PathBuf,
    /// Where worktrees go, when the command decides it (doctor, demo); else the config.
    pub worktrees_dir: Option<PathBuf>,
}

/// A run, resolved and validated.
#[derive(Clone)]
pub struct Plan {
    pub handoff: Handoff,
    /// The first agent, then the fallback chain, in order.
    pub agents: Vec<AgentSpec>,
    /// How `auto` chose the first agent, when it did.
    pub routed: Option<Choice>,
    /// The compiled scope, with its limits.
    pub scope: Scope,
    /// What the run is judged by, in the resolved form the report keeps.
    pub settings: RunSettings,
    pub base: Base,
    pub on_pass: Policy,
    pub on_fail: Policy,
    pub apply: bool,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub check_timeout: Duration,
    pub kill_grace: Duration,
    pub worktrees_dir: PathBuf,
    /// What a new worktree is seeded with and runs once (`[worktree] warm`, `setup`).
    pub warm: crate::worktree::warm::WarmSpec,
    pub fallback_on: Vec<Trigger>,
    /// Retries of a transient failure (rate limit, server error, network) per agent.
    pub retries: u32,
    /// Repair rounds: the agent's session resumed with what failed, up to this many.
    pub repair: u32,
    pub config: Config,
    /// Stops this run's agents and checks, for its reason, when cancelled (a compare
    /// stops its other candidates once one passes); `None` hears Ctrl-C only.
    pub cancel: Option<crate::process::Cancel>,
    /// The sweep the run belongs to, recorded in its report.
    pub sweep: Option<String>,
}

impl Plan {
    /// The task, as the handoff gives it.
    pub fn task(&self) -> &str {
        self.handoff.contract.task_text()
    }

    /// Resolves `request` over `config` into a plan, or refuses it.
    pub fn resolve(config: Config, request: Request) -> Result<Plan> {
        let mut defaults = config.defaults.clone();
        if defaults.checks.is_none() && !config.checks.is_empty() {
            defaults.checks = Some(config.checks.clone());
        }
        let contract = &request.handoff.contract;
        let s = defaults
            .clone()
            .overlay(contract.clone())
            .overlay(request.flags.clone());

        let agent_text = s.agent.clone().ok_or_else(|| {
            Error::Usage(
                "no agent given; pass --agent 'cmd:<shell command>' (or set `agent` in the handoff, or `[defaults] agent` in .baton/config.toml)".into(),
            )
        })?;
        let (agent_text, routed) = if agent_text.trim() == "auto" {
            let choice = crate::route::choose(&config.routes(), contract.task_text()).ok_or_else(|| {
                Error::Usage("--agent auto found no route for this task; add a default `[[route]]` (one with no `when`)".into())
            })?;
            (choice.agent.clone(), Some(choice))
        } else {
            (agent_text, None)
        };
        let mut agents = vec![AgentSpec::parse(&agent_text)?];
        for name in Settings::list(&s.fallback) {
            agents.push(AgentSpec::parse(name)?);
        }
        // Every agent of the chain must be there before anything starts.
        for a in &agents {
            a.backend(&config)?;
        }

        let scope_globs = Settings::list(&s.scope).to_vec();
        // Denials in the order a reader of the report expects: the handoff's, the
        // flags', the config's, then baton's defaults for what the scope leaves out.
        let mut deny: Vec<String> = vec![];
        let default_deny = if s.default_deny.unwrap_or(true) {
            crate::scope::default_deny_for(&scope_globs)
        } else {
            vec![]
        };
        for g in Settings::list(&contract.deny)
            .iter()
            .chain(Settings::list(&request.flags.deny))
            .chain(Settings::list(&defaults.deny))
            .chain(&default_deny)
        {
            if !deny.contains(g) {
                deny.push(g.clone());
            }
        }
        let checks = Settings::list(&s.checks).to_vec();
        let limits = Limits {
            max_file_size: s.max_file_size,
            max_files: s.max_files,
            max_lines: s.max_lines,
        };
        let scope = Scope::compile(&scope_globs, &deny)?.with_limits(limits);
        if !scope.is_everything() {
            // Plans made outside a repository (tests, previews) have none to look in.
            if let Ok(repo) = Repo::discover(&request.repo_root) {
                let from = if request.flags.scope.is_some() {
                    "--scope"
                } else if contract.scope.is_some() {
                    "the handoff's scope"
                } else {
                    "`[defaults] scope` in the config"
                };
                refuse_scope_in_submodules(&repo, &scope, &request.base, from)?;
            }
        }

        let on_pass = s.on_pass.unwrap_or(Policy::Merge);
        let on_fail = s.on_fail.unwrap_or(Policy::Stash);
        if on_fail == Policy::Merge {
            let from = if request.flags.on_fail.is_some() {
                "--on-fail merge"
            } else if contract.on_fail.is_some() {
                "the handoff's `on_fail = \"merge\"`"
            } else {
                "`[defaults] on_fail = \"merge\"` in the config"
            };
            return Err(Error::Usage(format!(
                "{from} would land a change that was not verified; choose stash, revert or keep"
            )));
        }

        let timeout = s.timeout.or(Some(config::DEFAULT_TIMEOUT));
        let check_timeout = s.check_timeout.unwrap_or(config::DEFAULT_CHECK_TIMEOUT);
        let kill_grace = s.kill_grace.unwrap_or(config::DEFAULT_KILL_GRACE);
        let settings = RunSettings {
            scope: scope_globs,
            deny,
            checks,
            limits,
            check_timeout_ms: check_timeout.as_millis() as u64,
            kill_grace_ms: kill_grace.as_millis() as u64,
            timeout_ms: timeout.map(|d| d.as_millis() as u64),
            idle_timeout_ms: s.idle_timeout.map(|d| d.as_millis() as u64),
        };
        // A bad `.worktreeinclude` line is refused here, before anything is created.
        let warm = crate::worktree::warm::WarmSpec::resolve(&config, &request.repo_root)?;
        let worktrees_dir = request
            .worktrees_dir
            .clone()
            .unwrap_or_else(|| config.worktrees_dir(&request.cwd, &request.repo_root));
        Ok(Plan {
            agents,
            routed,
            scope,
            settings,
            base: request.base,
            on_pass,
            on_fail,
            apply: request.apply,
            timeout,
            idle_timeout: s.idle_timeout,
            check_timeout,
            kill_grace,
            worktrees_dir,
            warm,
            fallback_on: s
                .fallback_on
                .clone()
                .unwrap_or_else(|| DEFAULT_FALLBACK_ON.to_vec()),
            retries: s.retries.unwrap_or(0),
            repair: s.repair.unwrap_or(0),
            handoff: request.handoff,
            config,
            cancel: None,
            sweep: None,
        })
    }
}

/// Refuses a scope that invites the agent into a submodule: baton lands changes in
/// this repository only and judges every change inside a submodule a violation, so
/// such a run could not pass. Said before anything starts, with the way out.
fn refuse_scope_in_submodules(repo: &Repo, scope: &Scope, base: &Base, from: &str) -> Result<()> {
    let rev = match base {
        Base::Rev(rev) => rev.as_str(),
        Base::Index(tree) => tree.as_str(),
        Base::Head | Base::Dirty => "HEAD",
    };
    // A base that does not resolve is refused later, by the run, with its own words.
    let Ok(submodules) = repo.submodules(rev) else {
        return Ok(());
    };
    for sub in submodules {
        let store = repo.submodule_store(&sub);
        let files = store
            .as_deref()
            .map(|s| repo.submodule_files(s, &sub.commit))
            .unwrap_or_default();
        if let Some(glob) = scope.reaching_into(&sub.path, &files) {
            let missing = if store.is_none() {
                ", which is not checked out here (and baton does not fetch it)"
            } else {
                ""
            };
            return Err(Error::Usage(format!(
                "{from} `{glob}` reaches into submodule `{path}`{missing}; baton does not land changes inside a submodule — narrow the scope, add `--deny {path}/`, or run baton in the submodule's own checkout",
                path = sub.path
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::Contract;

    fn request(flags: Settings, contract: Contract) -> Request {
        Request {
            flags,
            handoff: Handoff {
                contract: Contract {
                    task: Some("t".into()),
                    ..contract
                },
                body: "b".into(),
            },
            base: Base::Head,
            apply: false,
            cwd: PathBuf::from("/"),
            repo_root: PathBuf::from("/repo"),
            worktrees_dir: Some(PathBuf::from("/wt")),
        }
    }

    #[test]
    fn flags_win_over_the_handoff_over_the_config() {
        let mut config = Config::default();
        config.defaults.agent = Some("cmd:config".into());
        config.defaults.retries = Some(3);
        config.checks = vec!["make".into()];
        let contract = Contract {
            agent: Some("cmd:handoff".into()),
            scope: Some(vec!["src/**".into()]),
            ..Contract::default()
        };
        let flags = Settings {
            agent: Some("cmd:flag".into()),
            ..Settings::default()
        };
        let plan = Plan::resolve(config.clone(), request(flags, contract.clone())).unwrap();
        assert_eq!(plan.agents[0].label(), "cmd:flag");
        assert_eq!(plan.retries, 3);
        assert_eq!(plan.settings.checks, vec!["make".to_string()]);
        assert_eq!(plan.settings.scope, vec!["src/**".to_string()]);
        let plan = Plan::resolve(config, request(Settings::default(), contract)).unwrap();
        assert_eq!(plan.agents[0].label(), "cmd:handoff");
        assert_eq!(plan.on_pass, Policy::Merge);
        assert_eq!(plan.on_fail, Policy::Stash);
        assert_eq!(plan.fallback_on, DEFAULT_FALLBACK_ON.to_vec());
    }

    #[test]
    fn merge_on_failure_is_refused_and_names_where_it_was_set() {
        let mut config = Config::default();
        config.defaults.agent = Some("cmd:true".into());
        config.defaults.on_fail = Some(Policy::Merge);
        let err = Plan::resolve(config, request(Settings::default(), Contract::default()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("[defaults] on_fail"), "{err}");
    }

    #[test]
    fn no_agent_anywhere_is_refused() {
        let err = Plan::resolve(
            Config::default(),
            request(Settings::default(), Contract::default()),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("no agent given"), "{err}");
    }
}

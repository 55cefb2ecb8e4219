//! baton's configuration: `.baton/config.toml` in the repository over
//! `~/.config/baton/config.toml` over built-in defaults. It owns the file format and
//! where the per-user data (worktrees) lives; it decides nothing about a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Overrides where baton puts its worktrees.
pub const WORKTREES_ENV: &str = "BATON_WORKTREES_DIR";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid: {message}; fix it or move it aside", path.display())]
    Parse { path: PathBuf, message: String },
    /// A value that parses but would be refused later: refused when the file is read,
    /// so the error names the file, the field and its line.
    #[error("{}: {field}{}: {problem}", path.display(), at_line(*line))]
    Field {
        path: PathBuf,
        field: String,
        line: Option<usize>,
        problem: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// One step of the way to a value in a TOML document: a key, or an array's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

/// The line (1-based) where the value at `keys` is written in the TOML `text`, or,
/// when the last key names a table (`[agents.codx]`), where that key is. None when the
/// text does not parse or holds no such value.
pub fn line_of(text: &str, keys: &[Key<'_>]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut value: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    let mut start = root.span().start;
    for key in keys {
        let next = match (key, table, value) {
            (Key::Name(name), Some(t), _) => {
                let (k, v) = t.get_key_value(*name)?;
                // A table's own line is its header's, where its key is written.
                start = if matches!(v.get_ref(), DeValue::Table(_)) {
                    k.span().start
                } else {
                    v.span().start
                };
                v
            }
            (Key::Index(i), _, Some(DeValue::Array(a))) => {
                let v = a.get(*i)?;
                start = v.span().start;
                v
            }
            _ => return None,
        };
        value = Some(next.get_ref());
        table = match next.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    Some(text.get(..start)?.matches('\n').count() + 1)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The checklist when a handoff names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    #[serde(default)]
    /// Settings of every run in the repository, under those of its handoff and flags.
    pub defaults: crate::settings::Settings,
    #[serde(default)]
    pub worktree: WorktreeConfig,
    /// Routing rules for `--agent auto`, first match wins (default: route::default_rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<crate::route::Rule>,
    /// Per-agent settings, `[agents.codex]` and so on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, AgentConfig>,
    /// The pre-commit hook (`baton precommit`) and `baton commit`.
    #[serde(default)]
    pub precommit: PrecommitConfig,
    /// `baton compare`'s limits, `[compare]`.
    #[serde(default, skip_serializing_if = "CompareConfig::is_unset")]
    pub compare: CompareConfig,
    /// How every sweep's merge queue lands, `[sweep]` (a task file's own `[sweep]`
    /// and the flags win).
    #[serde(default, skip_serializing_if = "SweepConfig::is_unset")]
    pub sweep: SweepConfig,
}

/// The `[sweep]` table of the config or of a task file: how the merge queue lands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Checks run on every integrated tree, after the candidates' own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate: Vec<String>,
    /// Reruns of a failing check before it counts against a candidate (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky_retries: Option<u32>,
    /// Candidates tested together (default: a quarter of the sweep, 1 to 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

impl SweepConfig {
    fn is_unset(&self) -> bool {
        *self == SweepConfig::default()
    }

    /// `over`'s values where it has them (a gate replaces the gate), else these.
    pub fn overlay(self, over: SweepConfig) -> SweepConfig {
        SweepConfig {
            gate: if over.gate.is_empty() {
                self.gate
            } else {
                over.gate
            },
            flaky_retries: over.flaky_retries.or(self.flaky_retries),
            batch: over.batch.or(self.batch),
        }
    }
}

/// `[precommit]`: what the pre-commit hook checks and who fixes what fails.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecommitConfig {
    /// The hook's checklist (default: the repository's `checks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
    /// Who fixes a failing staged tree (default: `[defaults] agent`; none: the hook
    /// only checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What the fix may touch (default: exactly the staged paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// Stop the commit after a fix is written into the index, so you look first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_fix: Option<bool>,
    /// The whole hook's time budget: checks, fix and its checks (default: none; 0 is
    /// none).
    #[serde(
        default,
        with = "crate::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl PrecommitConfig {
    fn overlay(self, over: PrecommitConfig) -> PrecommitConfig {
        PrecommitConfig {
            checks: over.checks.or(self.checks),
            agent: over.agent.or(self.agent),
            scope: over.scope.or(self.scope),
            stop_after_fix: over.stop_after_fix.or(self.stop_after_fix),
            timeout: over.timeout.or(self.timeout),
        }
    }
}

/// `[compare]`: how many candidates one compare may start (default 8), so a typo
/// like `-n 80` does not start eighty agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

impl CompareConfig {
    fn is_unset(&self) -> bool {
        self.max.is_none()
    }
}

/// How baton starts one agent CLI. Everything is optional: the CLI's own
/// configuration (for codex, `CODEX_HOME` and its `config.toml`) applies first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The executable (default: found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A profile of the CLI's own configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Overrides of the CLI's configuration, `key=value` (codex's `-c`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<String>,
    /// Extra arguments, added last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// codex's `--sandbox` (default `workspace-write`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// claude's `--permission-mode` (default `acceptEdits`: edits inside the worktree only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// Give the agent a private, empty home for the run (codex: `CODEX_HOME`; claude and
    /// gemini: `HOME`) instead of the user's own configuration and sessions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate: bool,
    /// Environment variables for the agent's process (e.g. `CODEX_HOME`, a key's variable).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl AgentConfig {
    fn overlay(self, over: AgentConfig) -> AgentConfig {
        let mut config = self.config;
        config.extend(over.config);
        let mut args = self.args;
        args.extend(over.args);
        AgentConfig {
            path: over.path.or(self.path),
            model: over.model.or(self.model),
            profile: over.profile.or(self.profile),
            config,
            args,
            sandbox: over.sandbox.or(self.sandbox),
            permission_mode: over.permission_mode.or(self.permission_mode),
            isolate: over.isolate || self.isolate,
            env: {
                let mut env = self.env;
                env.extend(over.env);
                env
            },
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorktreeConfig {
    /// Where run worktrees are created (default: the per-user data directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// How many finished worktrees are kept for later runs to lease (default
    /// [`DEFAULT_POOL`]; 0 turns the pool off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<usize>,
    /// The pool's disk budget: beyond it the least recently used pooled worktree goes
    /// (bytes, or `512M`, `20G`; default [`DEFAULT_POOL_MAX_SIZE`]).
    #[serde(
        default,
        with = "crate::scope::size_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub pool_max_size: Option<u64>,
    /// A pooled worktree unused for longer is removed by the next run (default 7d).
    #[serde(
        default,
        with = "crate::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub pool_max_age: Option<Duration>,
    /// The build directories (`target`, `node_modules`, …): a pooled worktree keeps
    /// them, and a new worktree is seeded with a copy-on-write clone of the main
    /// checkout's. Relative to the repository's root, inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<Vec<String>>,
    /// On a filesystem without reflink, copy the build directories byte by byte
    /// (default false: start cold and say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_copy: Option<bool>,
    /// Commands run once in a new worktree (and in a leased one when a file named in
    /// `on_change` differs from what the worktree last ran them on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<Vec<SetupCommand>>,
}

/// One `[worktree] setup` entry: `"npm ci"`, or `{ run = "npm ci", on_change =
/// ["package-lock.json"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SetupCommand {
    Run(String),
    Table(SetupTable),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupTable {
    pub run: String,
    #[serde(default)]
    pub on_change: Vec<String>,
}

impl SetupCommand {
    pub fn command(&self) -> &str {
        match self {
            SetupCommand::Run(run) | SetupCommand::Table(SetupTable { run, .. }) => run,
        }
    }

    /// The files whose change makes a leased worktree run the command again.
    pub fn on_change(&self) -> &[String] {
        match self {
            SetupCommand::Run(_) => &[],
            SetupCommand::Table(t) => &t.on_change,
        }
    }
}

/// Finished worktrees kept for reuse unless `[worktree] pool` says otherwise.
pub const DEFAULT_POOL: usize = 4;
/// The pool's disk budget unless `[worktree] pool_max_size` says otherwise.
pub const DEFAULT_POOL_MAX_SIZE: u64 = 20 * 1024 * 1024 * 1024;
/// How long a pooled worktree may go unused unless `[worktree] pool_max_age` says.
pub const DEFAULT_POOL_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// The repository's config file.
pub fn repo_file(root: &Path) -> PathBuf {
    root.join(".baton").join("config.toml")
}

/// The repository's own templates.
pub fn repo_templates(root: &Path) -> PathBuf {
    root.join(".baton").join("templates")
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The user's own config file, under every repository's:
/// `$XDG_CONFIG_HOME/baton/config.toml` (`~/.config/...`).
pub fn user_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))?;
    Some(base.join("baton").join("config.toml"))
}

fn read(path: &Path) -> Result<Option<Config>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.message().trim().to_string() + &crate::settings::toml_place(&text, &e),
    })?;
    check(path, &text, &config)?;
    if config.defaults.task.is_some() {
        return Err(ConfigError::Parse {
            path: path.to_path_buf(),
            message: "`task` in [defaults]: a task belongs in a handoff (or a sweep's [[task]]), not in the config".into(),
        });
    }
    Ok(Some(config))
}

/// Refuses what parses but could never work, naming the file, the field and its line:
/// a `[defaults]` value a run would refuse (see [`check_settings`]), an `[agents.X]`
/// for no agent baton has, a `[[route]]` that picks no agent baton has, or a word of
/// one that can never match a task.
fn check(path: &Path, text: &str, config: &Config) -> Result<(), ConfigError> {
    let refuse = |field: String, keys: &[Key<'_>], problem: String| ConfigError::Field {
        path: path.to_path_buf(),
        field,
        line: line_of(text, keys),
        problem,
    };
    if let Some(bad) = check_settings(&config.defaults) {
        let mut keys = vec![Key::Name("defaults"), Key::Name(bad.field)];
        keys.extend(bad.index.map(Key::Index));
        return Err(refuse(
            format!("[defaults] {}", bad.field),
            &keys,
            bad.problem,
        ));
    }
    if let Some(name) = config
        .agents
        .keys()
        .find(|n| !CONFIGURABLE.contains(&n.as_str()))
    {
        return Err(refuse(
            format!("[agents.{name}]"),
            &[Key::Name("agents"), Key::Name(name)],
            format!(
                "baton has no agent `{name}` to configure; configure one of: {}",
                CONFIGURABLE.join(", ")
            ),
        ));
    }
    for (i, entry) in config.worktree.warm.iter().flatten().enumerate() {
        if let Some(problem) = crate::worktree::warm::entry_problem(entry) {
            let keys = [Key::Name("worktree"), Key::Name("warm"), Key::Index(i)];
            return Err(refuse("[worktree] warm".into(), &keys, problem));
        }
    }
    for (i, rule) in config.route.iter().enumerate() {
        let field = |name: &str| format!("[[route]] {}, `{name}`", i + 1);
        if let Some(problem) = route_agent_problem(&rule.agent) {
            let keys = [Key::Name("route"), Key::Index(i), Key::Name("agent")];
            return Err(refuse(field("agent"), &keys, problem));
        }
        for (j, term) in rule.when.iter().enumerate() {
            if let Some(problem) = crate::route::unmatchable(term) {
                let keys = [
                    Key::Name("route"),
                    Key::Index(i),
                    Key::Name("when"),
                    Key::Index(j),
                ];
                return Err(refuse(field("when"), &keys, problem));
            }
        }
    }
    Ok(())
}

/// The agents with an `[agents.NAME]` section: the CLIs baton starts.
pub const CONFIGURABLE: &[&str] = &["codex", "claude", "gemini"];

/// A value of a settings layer (`[defaults]`, a handoff's front matter) that parses
/// but that a run would refuse: which field (and which entry of a list), and the
/// problem with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub index: Option<usize>,
    pub problem: String,
}

/// The first value of `s` a run would refuse, found when its file is read so that
/// the error can name the file and the line: an agent baton does not have, `auto`
/// as a fallback, `on_fail = "merge"` (it would land an unverified change), a glob
/// that does not compile.
pub fn check_settings(s: &crate::settings::Settings) -> Option<Invalid> {
    use crate::settings::Settings;
    let invalid = |field, index, problem| {
        Some(Invalid {
            field,
            index,
            problem,
        })
    };
    if let Some(problem) = s.agent.as_deref().and_then(|a| agent_problem(a, true)) {
        return invalid("agent", None, problem);
    }
    for (i, a) in Settings::list(&s.fallback).iter().enumerate() {
        if let Some(problem) = agent_problem(a, false) {
            return invalid("fallback", Some(i), problem);
        }
    }
    if s.on_fail == Some(crate::report::Policy::Merge) {
        return invalid(
            "on_fail",
            None,
            "`merge` would land a change that was not verified; use stash, revert or keep".into(),
        );
    }
    for (field, globs) in [("scope", &s.scope), ("deny", &s.deny)] {
        for (i, g) in Settings::list(globs).iter().enumerate() {
            let one = std::slice::from_ref(g);
            let compiled = if field == "scope" {
                crate::scope::Scope::compile(one, &[])
            } else {
                crate::scope::Scope::compile(&[], one)
            };
            if let Err(e) = compiled {
                return invalid(field, Some(i), e.to_string());
            }
        }
    }
    None
}

/// Why `text` names no agent, if it does not; `auto` only where it may stand.
fn agent_problem(text: &str, auto_ok: bool) -> Option<String> {
    use crate::agent::{AGENT_NAMES, AgentError, AgentSpec, BACKEND_NAMES};
    match AgentSpec::parse(text) {
        Ok(_) => None,
        Err(AgentError::NotAvailable(_)) if auto_ok => None,
        Err(AgentError::Unknown(name)) => Some(format!(
            "unknown agent `{name}`; use one of: {}",
            if auto_ok { AGENT_NAMES } else { BACKEND_NAMES }
        )),
        Err(e) => Some(e.to_string()),
    }
}

/// Why a route cannot pick `agent`, if it cannot.
fn route_agent_problem(agent: &str) -> Option<String> {
    use crate::agent::{AgentError, AgentSpec, BACKEND_NAMES};
    match AgentSpec::parse(agent) {
        Ok(_) => None,
        Err(AgentError::NotAvailable(_)) => Some(format!(
            "a route cannot pick `auto` (routing is what picks); name one of: {BACKEND_NAMES}"
        )),
        Err(AgentError::Unknown(name)) => Some(format!(
            "unknown agent `{name}`; a route picks one of: {BACKEND_NAMES}"
        )),
        Err(e) => Some(e.to_string()),
    }
}

impl Config {
    /// The routing rules in force.
    pub fn routes(&self) -> Vec<crate::route::Rule> {
        if self.route.is_empty() {
            crate::route::default_rules()
        } else {
            self.route.clone()
        }
    }

    /// The settings of agent `name`, or the defaults.
    pub fn agent(&self, name: &str) -> AgentConfig {
        self.agents.get(name).cloned().unwrap_or_default()
    }

    /// The repository's file over the user's file.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        let user = match user_file() {
            Some(p) => read(&p)?.unwrap_or_default(),
            None => Config::default(),
        };
        let repo = read(&repo_file(root))?.unwrap_or_default();
        Ok(user.overlay(repo))
    }

    fn overlay(self, over: Config) -> Config {
        Config {
            checks: if over.checks.is_empty() {
                self.checks
            } else {
                over.checks
            },
            defaults: self.defaults.overlay(over.defaults),
            worktree: WorktreeConfig {
                dir: over.worktree.dir.or(self.worktree.dir),
                pool: over.worktree.pool.or(self.worktree.pool),
                pool_max_size: over.worktree.pool_max_size.or(self.worktree.pool_max_size),
                pool_max_age: over.worktree.pool_max_age.or(self.worktree.pool_max_age),
                warm: over.worktree.warm.or(self.worktree.warm),
                warm_copy: over.worktree.warm_copy.or(self.worktree.warm_copy),
                setup: over.worktree.setup.or(self.worktree.setup),
            },
            route: if over.route.is_empty() {
                self.route
            } else {
                over.route
            },
            compare: CompareConfig {
                max: over.compare.max.or(self.compare.max),
            },
            agents: {
                let mut agents = self.agents;
                for (name, cfg) in over.agents {
                    let merged = agents.remove(&name).unwrap_or_default().overlay(cfg);
                    agents.insert(name, merged);
                }
                agents
            },
            precommit: self.precommit.overlay(over.precommit),
            sweep: self.sweep.overlay(over.sweep),
        }
    }

    /// Where this repository's run worktrees go: `$BATON_WORKTREES_DIR`, else the
    /// config, else `$XDG_DATA_HOME/baton/worktrees` (`~/.local/share/...`). Never
    /// inside the repository, so its build tools cannot mistake a worktree for part
    /// of the project.
    ///
    /// A relative `$BATON_WORKTREES_DIR` is taken from `cwd` (where baton was started,
    /// or `-C`), a relative `[worktree] dir` from the repository's root; the result is
    /// absolute, so a run's recorded worktree is found from any directory later.
    pub fn worktrees_dir(&self, cwd: &Path, repo_root: &Path) -> PathBuf {
        if let Some(dir) = std::env::var_os(WORKTREES_ENV).filter(|v| !v.is_empty()) {
            return cwd.join(dir);
        }
        if let Some(dir) = &self.worktree.dir {
            return repo_root.join(dir);
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".local").join("share")))
            .unwrap_or_else(std::env::temp_dir);
        data.join("baton").join("worktrees")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_finds_values_table_headers_and_list_entries() {
        let text = "checks = []\n\n[defaults]\nfallback = [\n  \"claude\",\n  \"bar\",\n]\n\n[agents.codx]\nmodel = \"m\"\n\n[[route]]\nagent = \"a\"\n[[route]]\nagent = \"b\"\n";
        let at = |keys: &[Key<'_>]| line_of(text, keys);
        assert_eq!(
            at(&[Key::Name("defaults"), Key::Name("fallback"), Key::Index(1)]),
            Some(6)
        );
        assert_eq!(at(&[Key::Name("agents"), Key::Name("codx")]), Some(9));
        assert_eq!(
            at(&[Key::Name("route"), Key::Index(1), Key::Name("agent")]),
            Some(15)
        );
        assert_eq!(at(&[Key::Name("nowhere")]), None);
        assert_eq!(line_of("not = [toml", &[Key::Name("not")]), None);
    }
}

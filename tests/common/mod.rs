//! The test bench: a fixture repository copied into a temp dir, hermetic git (no
//! global or system config, fixed dates, a throwaway HOME), and baton run as the real
//! binary against it. Helpers return what a user would look at: files, branches,
//! stashes, worktrees, exit status, the journal.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DATE: &str = "2026-01-01T12:00:00+00:00";

pub struct Bench {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub repo: PathBuf,
    pub worktrees: PathBuf,
    pub home: PathBuf,
}

/// What one baton invocation did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The report's judged paths, as (path, change, verdict).
    pub fn judged(&self) -> Vec<(String, String, String)> {
        self.json()["scope"]["paths"]
            .as_array()
            .expect("the report has judged paths")
            .iter()
            .map(|p| {
                let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                (field("path"), field("change"), field("verdict"))
            })
            .collect()
    }

    #[track_caller]
    pub fn expect(&self, code: i32) -> &Ran {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

impl Bench {
    /// An empty bench: no repository yet.
    pub fn empty() -> Bench {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let home = root.join("home");
        std::fs::create_dir_all(home.join(".codex")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        Bench {
            repo: root.join("repo"),
            worktrees: root.join("worktrees"),
            home,
            root,
            _tmp: tmp,
        }
    }

    /// A fixture project, committed as the first commit of a new repository.
    pub fn with_fixture(name: &str) -> Bench {
        let bench = Bench::empty();
        copy_dir(&fixture(name), &bench.repo);
        bench.git(&["init", "-q", "-b", "main"]);
        bench.git(&["add", "-A"]);
        bench.git(&["commit", "-q", "-m", "initial"]);
        bench
    }

    /// The bench's environment on a command the test builds itself.
    pub fn hermetic_env(&self, cmd: &mut Command) {
        self.hermetic(cmd);
    }

    fn hermetic(&self, cmd: &mut Command) {
        let path = std::env::join_paths(std::iter::once(agents_bin()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Ada User")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada User")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", DATE)
            .env("GIT_COMMITTER_DATE", DATE)
            .env("LC_ALL", "C")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("BATON_WORKTREES_DIR", &self.worktrees)
            .env("CODEX_HOME", self.home.join(".codex"))
            .env("BATON_TEST_KEY", "scripted")
            // The agent CLIs drop files in the temporary directory (Gemini CLI's error
            // reports): keep them in the bench.
            .env("TMPDIR", self.root.join("tmp"));
        if let Some(v) = std::env::var_os("CARGO_HOME") {
            cmd.env("CARGO_HOME", v);
        }
        if let Some(v) = std::env::var_os("RUSTUP_HOME") {
            cmd.env("RUSTUP_HOME", v);
        }
    }

    /// Runs baton in the repository.
    pub fn baton(&self, args: &[&str]) -> Ran {
        self.baton_in(&self.repo, args)
    }

    /// A baton command in the repository, to spawn and signal.
    pub fn baton_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(args).current_dir(&self.repo);
        self.hermetic(&mut cmd);
        cmd
    }

    pub fn baton_in(&self, dir: &Path, args: &[&str]) -> Ran {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(args).current_dir(dir);
        self.hermetic(&mut cmd);
        let out: Output = cmd.output().expect("baton runs");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// baton at a terminal: in a pseudo-terminal made by util-linux `script`, so its
    /// stdout and stderr are a tty, with `env` added to the bench's environment. What
    /// the terminal showed (both streams) comes back as stdout, `\r\n` made `\n`.
    pub fn at_a_terminal(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let line = std::iter::once(env!("CARGO_BIN_EXE_baton"))
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .current_dir(&self.repo)
            .stdin(std::process::Stdio::null());
        self.hermetic(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("script (util-linux) runs");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs git in the repository and returns its stdout; panics if git fails.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    #[track_caller]
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(dir);
        self.hermetic(&mut cmd);
        let out = cmd.output().expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.repo.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    pub fn write(&self, path: &str, text: &str) {
        let p = self.repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    pub fn stash_list(&self) -> Vec<String> {
        self.git(&["stash", "list", "--format=%gs"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The worktrees that are not baton's pool: the main checkout and runs' own.
    pub fn worktree_count(&self) -> usize {
        self.worktree_list()
            .iter()
            .filter(|(_, locked)| !locked.starts_with(POOL_REASON))
            .count()
    }

    /// Every worktree git lists, with its lock reason ("" when not locked).
    pub fn worktree_list(&self) -> Vec<(PathBuf, String)> {
        let mut out: Vec<(PathBuf, String)> = vec![];
        for line in self.git(&["worktree", "list", "--porcelain"]).lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                out.push((PathBuf::from(path), String::new()));
            } else if let (Some(reason), Some(last)) = (line.strip_prefix("locked"), out.last_mut())
            {
                last.1 = reason.trim().to_string();
            }
        }
        out
    }

    /// The worktrees of baton's pool, each proven to be what the pool promises:
    /// detached, locked with the pool's reason, and holding its commit's files and
    /// nothing else (no change, no untracked or ignored file).
    #[track_caller]
    pub fn pooled_worktrees(&self) -> Vec<PathBuf> {
        self.pooled_worktrees_keeping(&[])
    }

    /// [`Bench::pooled_worktrees`] where the pool keeps the build directories `keep`.
    #[track_caller]
    pub fn pooled_worktrees_keeping(&self, keep: &[&str]) -> Vec<PathBuf> {
        let listing = self.git(&["worktree", "list", "--porcelain"]);
        let mut pooled = vec![];
        for block in listing.split("\n\n") {
            if !block.contains(&format!("locked {POOL_REASON}")) {
                continue;
            }
            let path = block
                .lines()
                .find_map(|l| l.strip_prefix("worktree "))
                .map(PathBuf::from)
                .unwrap();
            assert!(
                block.contains("\ndetached"),
                "a pooled worktree is detached: {block}"
            );
            // Read-only: a plain `git status` may rewrite the index, which the pool
            // rightly takes for someone at work in the worktree.
            let status = Command::new("git")
                .args([
                    "--no-optional-locks",
                    "status",
                    "--porcelain",
                    "--ignored",
                    "--untracked-files=all",
                ])
                .current_dir(&path)
                .output()
                .unwrap();
            let kept: Vec<String> = keep.iter().map(|k| format!("!! {k}/")).collect();
            let left: Vec<&str> = std::str::from_utf8(&status.stdout)
                .unwrap()
                .lines()
                .filter(|l| !kept.iter().any(|k| l.starts_with(k.as_str())))
                .collect();
            assert!(
                left.is_empty(),
                "the pooled worktree {} holds only its commit's files: {left:?}",
                path.display()
            );
            pooled.push(path);
        }
        pooled
    }

    pub fn baton_branches(&self) -> Vec<String> {
        self.git(&["branch", "--list", "baton/*", "--format=%(refname:short)"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The user's branches, baton's own left out.
    pub fn user_branches(&self) -> String {
        self.git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads/",
        ])
        .lines()
        .filter(|l| !l.starts_with("refs/heads/baton/"))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Every file of the working tree (outside .git) with its bytes, for
    /// byte-for-byte comparisons of the user's tree before and after.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let path = e.path();
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let ft = e.file_type().unwrap();
                if rel == ".git" {
                    continue;
                }
                if ft.is_dir() {
                    walk(base, &path, out);
                } else if ft.is_symlink() {
                    out.insert(
                        rel,
                        std::fs::read_link(&path)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned()
                            .into_bytes(),
                    );
                } else {
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.repo, &self.repo, &mut out);
        out
    }

    /// The user's index, as `git ls-files --stage` shows it.
    pub fn index(&self) -> String {
        self.git(&["ls-files", "--stage"])
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.repo.join(".git").join("baton").join("runs")
    }

    /// Ids of the runs in the journal, oldest first.
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.runs_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn only_run(&self) -> String {
        let ids = self.run_ids();
        assert_eq!(ids.len(), 1, "expected one run, found {ids:?}");
        ids[0].clone()
    }

    pub fn report(&self, run: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.runs_dir().join(run).join("report.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn journal_file(&self, run: &str, name: &str) -> String {
        std::fs::read_to_string(self.runs_dir().join(run).join(name)).unwrap_or_default()
    }

    /// Nothing of baton's is left but its pool: only the main worktree and clean
    /// pooled worktrees, no baton/* branch.
    #[track_caller]
    pub fn assert_clean(&self) {
        self.assert_clean_keeping(&[]);
    }

    /// [`Bench::assert_clean`] where the pool keeps the build directories `keep`.
    #[track_caller]
    pub fn assert_clean_keeping(&self, keep: &[&str]) {
        assert_eq!(
            self.worktree_count(),
            1,
            "{}",
            self.git(&["worktree", "list"])
        );
        self.pooled_worktrees_keeping(keep);
        assert!(
            self.baton_branches().is_empty(),
            "{:?}",
            self.baton_branches()
        );
    }
}

/// The lock reason of a free worktree in baton's pool (`worktree::pool::POOL_REASON`).
pub const POOL_REASON: &str = "baton pool: free, for the next baton run to lease";

/// `text` quoted for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Every file and directory under `dir`, `.git` included, with its bytes (directories
/// as `name/`), for proving a command wrote nothing at all.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(base, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What the user could lose, taken before a command: their files byte for byte, their
/// index, HEAD, branches and stash list.
pub struct Before {
    pub files: BTreeMap<String, Vec<u8>>,
    pub index: String,
    pub head: String,
    pub branches: String,
    pub stashes: Vec<String>,
}

impl Before {
    pub fn take(bench: &Bench) -> Before {
        Before {
            files: bench.files(),
            index: bench.index(),
            head: bench.head(),
            branches: bench.user_branches(),
            stashes: bench.stash_list(),
        }
    }

    /// Nothing of the user's changed: files, index, HEAD, branches.
    #[track_caller]
    pub fn assert_untouched(&self, bench: &Bench) {
        assert_eq!(
            bench.files(),
            self.files,
            "the user's files are as they were"
        );
        assert_eq!(bench.index(), self.index, "the user's index is as it was");
        assert_eq!(bench.head(), self.head, "HEAD did not move");
        assert_eq!(bench.user_branches(), self.branches, "no branch moved");
    }

    /// Nothing happened at all: the user's tree, index and HEAD are as they were, no
    /// run in the journal, no baton branch or worktree, no stash.
    #[track_caller]
    pub fn assert_nothing_started(&self, bench: &Bench) {
        self.assert_untouched(bench);
        assert!(
            bench.run_ids().is_empty(),
            "a run was journaled: {:?}",
            bench.run_ids()
        );
        assert!(bench.stash_list().is_empty(), "{:?}", bench.stash_list());
        bench.assert_clean();
    }

    /// Exactly the fix landed: one verified commit on top of the old HEAD, the tree
    /// and index at it, and every other file as it was.
    #[track_caller]
    pub fn assert_fix_landed(&self, bench: &Bench) {
        assert_eq!(
            bench.git(&["rev-parse", "HEAD~1"]).trim(),
            self.head,
            "one commit on top"
        );
        assert!(
            bench
                .git(&["log", "-1", "--format=%B"])
                .contains("Baton-Run: ")
        );
        assert_eq!(
            bench.git(&["diff", "--name-only", "HEAD~1", "HEAD"]).trim(),
            "calc.py"
        );
        assert_eq!(
            bench.git(&["status", "--porcelain"]).trim(),
            "",
            "tree and index are at the landed commit"
        );
        let mut expected = self.files.clone();
        expected.insert(
            "calc.py".into(),
            bench.git(&["show", "HEAD:calc.py"]).into_bytes(),
        );
        assert_eq!(bench.files(), expected);
        assert!(bench.read("calc.py").contains(FIXED));
    }

    /// The stash list grew by exactly one entry, which holds the fix.
    #[track_caller]
    pub fn assert_fix_stashed_once(&self, bench: &Bench) {
        let stashes = bench.stash_list();
        assert_eq!(stashes.len(), self.stashes.len() + 1, "{stashes:?}");
        assert!(bench.git(&["show", "stash@{0}:calc.py"]).contains(FIXED));
    }
}

/// An agent that removes its own run's journal from under baton (and tries again while
/// baton is still creating files in it), which baton cannot survive: exit 6.
pub const REMOVE_OWN_JOURNAL: &str = "cmd:d=\"$(git rev-parse --git-common-dir)/baton/runs/$BATON_RUN_ID\"; for i in 1 2 3 4 5 6 7 8 9 10; do rm -rf \"$d\" 2>/dev/null && break; sleep 0.05; done; test ! -e \"$d\"";

/// The fixed line of the python-calc fixture's bug.
pub const FIXED: &str = "return a + b";

/// Where the test setup (`npm ci --prefix tests/agents`) installs the agent CLIs.
pub fn agents_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/node_modules/.bin")
}

/// The real agent CLI `name`, which must be installed: a missing one fails the test.
#[track_caller]
pub fn require_cli(name: &str) -> PathBuf {
    let cli = agents_bin().join(name);
    assert!(
        cli.is_file(),
        "the {name} CLI is not installed at {}; run `npm ci --prefix tests/agents` (scripts/test.sh does)",
        cli.display()
    );
    cli
}

#[track_caller]
pub fn require_codex() -> PathBuf {
    require_cli("codex")
}

/// The agents a scripted model can stand behind.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Codex,
    Claude,
    Gemini,
}

impl Agent {
    /// The agent's section of baton's user config, pointing it at the server on
    /// `root` (`http://127.0.0.1:PORT`) as a user would point it at any provider.
    fn config(self, root: &str) -> String {
        match self {
            Agent::Codex => format!(
                "[agents.codex]\nmodel = \"gpt-5.5\"\nconfig = [\n  'model_provider=\"scripted\"',\n  'model_providers.scripted.name=\"scripted\"',\n  'model_providers.scripted.base_url=\"{root}/v1\"',\n  'model_providers.scripted.wire_api=\"responses\"',\n  'model_providers.scripted.env_key=\"BATON_TEST_KEY\"',\n  'model_providers.scripted.request_max_retries=0',\n  'model_providers.scripted.stream_max_retries=0',\n]\n"
            ),
            Agent::Claude => format!(
                "[agents.claude]\nenv = {{ ANTHROPIC_BASE_URL = \"{root}\", ANTHROPIC_API_KEY = \"scripted\", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = \"1\", CLAUDE_CODE_MAX_RETRIES = \"0\" }}\n"
            ),
            Agent::Gemini => format!(
                "[agents.gemini]\nenv = {{ GOOGLE_GEMINI_BASE_URL = \"{root}\", GEMINI_API_KEY = \"scripted\" }}\n"
            ),
        }
    }

    fn cli(self) -> &'static str {
        match self {
            Agent::Codex => "codex",
            Agent::Claude => "claude",
            Agent::Gemini => "gemini",
        }
    }
}

impl Bench {
    /// Starts the scripted model on `scenario` (a file of fixtures/scenarios/) and
    /// points each of `agents` at it through the (test) user's baton config; gemini
    /// also gets the API-key auth and no retries in its `~/.gemini/settings.json`.
    pub fn scripted(&self, agents: &[Agent], scenario: &str) -> baton::model_server::ModelServer {
        for a in agents {
            require_cli(a.cli());
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/scenarios")
            .join(format!("{scenario}.toml"));
        let scenario = baton::model_server::Scenario::load(&path).unwrap();
        let server = baton::model_server::ModelServer::start(scenario, None).unwrap();
        let root = format!("http://127.0.0.1:{}", server.port());
        if agents.contains(&Agent::Gemini) {
            std::fs::create_dir_all(self.home.join(".gemini")).unwrap();
            std::fs::write(
                self.home.join(".gemini/settings.json"),
                r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"general":{"maxAttempts":1}}"#,
            )
            .unwrap();
        }
        let config: Vec<String> = agents.iter().map(|a| a.config(&root)).collect();
        let dir = self.home.join(".config/baton");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), config.join("\n")).unwrap();
        server
    }

    pub fn scripted_codex(&self, scenario: &str) -> baton::model_server::ModelServer {
        self.scripted(&[Agent::Codex], scenario)
    }

    pub fn scripted_claude(&self, scenario: &str) -> baton::model_server::ModelServer {
        self.scripted(&[Agent::Claude], scenario)
    }

    pub fn scripted_gemini(&self, scenario: &str) -> baton::model_server::ModelServer {
        self.scripted(&[Agent::Gemini], scenario)
    }

    /// One scripted model behind codex, claude and gemini at once (fallback chains):
    /// each sees the scenario's turns meant for its API.
    pub fn scripted_all(&self, scenario: &str) -> baton::model_server::ModelServer {
        self.scripted(&[Agent::Codex, Agent::Claude, Agent::Gemini], scenario)
    }
}

/// The task the tests hand over for the python-calc fixture's bug.
pub const FIX_TASK: &str = "Fix add() so it adds";

/// `baton run` for the fixture's bug: the task, `agent`, scope `calc.py`, then `extra`.
pub fn fix_args<'a>(agent: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run", "--task", FIX_TASK, "--agent", agent, "--scope", "calc.py",
    ];
    args.extend_from_slice(extra);
    args
}

impl Bench {
    /// The fixture's bug handed to `agent`, with the report as JSON on stdout.
    pub fn run_fix(&self, agent: &str, extra: &[&str]) -> Ran {
        let mut args = fix_args(agent, &["--json"]);
        args.extend_from_slice(extra);
        self.baton(&args)
    }
}

/// The fix for the python-calc fixture's bug, as a `cmd:` agent.
pub const FIX_ADD: &str = "cmd:sed -i '0,/return a - b/s//return a + b/' calc.py";
pub const PYTEST: &str = "python3 -m pytest -q";

impl Bench {
    /// [`Bench::with_fixture`] in a temporary directory under `parent` (a filesystem
    /// a test needs: one that can reflink, or one that cannot).
    pub fn with_fixture_in(name: &str, parent: &Path) -> Bench {
        let tmp = tempfile::tempdir_in(parent).unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let home = root.join("home");
        std::fs::create_dir_all(home.join(".codex")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        let bench = Bench {
            repo: root.join("repo"),
            worktrees: root.join("worktrees"),
            home,
            root,
            _tmp: tmp,
        };
        copy_dir(&fixture(name), &bench.repo);
        bench.git(&["init", "-q", "-b", "main"]);
        bench.git(&["add", "-A"]);
        bench.git(&["commit", "-q", "-m", "initial"]);
        bench
    }
}

/// The program `name` from the PATH, which must be installed: a missing tool fails
/// the test (scripts/test.sh installs what the tests need).
#[track_caller]
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {}", shell_quote(name))])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed; scripts/test.sh installs it (or: apt-get install the package that has it)"
    );
}

//! What baton's pre-commit hook adds to `git commit` when the staged tree passes.
//!
//! A scratch repository of 10,000 files (`BATON_BENCH_FILES` to change it), a checklist
//! of one check, `true`, and baton's hook installed with `baton hook install`. Each
//! iteration stages a one-line change to a different file and times, interleaved after
//! one warm-up of each:
//!
//! - **plain**: `git commit -q --no-verify -m …` — the commit without any hook;
//! - **first run**: `git commit -q -m …` with baton's hook, on a staged tree it has
//!   never seen: the staged tree read from the index, a pooled worktree leased and
//!   moved to it, `true` run there, the worktree returned to the pool, the pass cached;
//! - **second run**: the same, after `baton precommit` already checked that staged
//!   tree (a commit retried after its message editor was closed empty, or after
//!   `stop_after_fix`): the hook answers from the cache.
//!
//! The scratch directory is made under /dev/shm when it exists (a tmpfs: on these
//! machines' ext4 disks creating and removing 10,000 files is slow and noisy), else
//! under `$TMPDIR`; the benchmark prints which. The target is ≤ 150 ms added once a
//! pooled worktree exists: after the warm-up the hook's check worktree is leased from
//! the pool (moved to the staged tree by rewriting the one file that differs) and
//! returned to it, instead of a checkout and removal of the whole tree, which the
//! `git worktree add` + `remove` line times beside it.
//!
//! ```text
//! cargo bench --bench hook
//! BATON_BENCH_FILES=2000 BATON_BENCH_ITERS=3 cargo bench --bench hook
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What the hook may add, once a pooled worktree exists.
const TARGET_ADDED_MS: f64 = 150.0;

struct Scratch {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
}

impl Scratch {
    fn new() -> (Scratch, PathBuf) {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let tmp = tempfile::Builder::new()
            .prefix("baton-bench-hook-")
            .tempdir_in(&base)
            .expect("a scratch directory");
        let root = tmp.path().to_path_buf();
        let s = Scratch {
            repo: root.join("repo"),
            home: root.join("home"),
            _tmp: tmp,
        };
        std::fs::create_dir_all(&s.repo).expect("the repository directory");
        std::fs::create_dir_all(&s.home).expect("a home");
        (s, base)
    }

    /// `program` with a hermetic environment: no inherited git variable, no global
    /// or system config, a scratch home, a fixed identity; worktrees beside the
    /// repository (on the same filesystem).
    fn cmd(&self, program: impl Into<OsString>) -> Command {
        let mut cmd = Command::new(program.into());
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("GIT_")) {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(&self.repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("BATON_WORKTREES_DIR", self.home.join("worktrees"))
            .env("GIT_AUTHOR_NAME", "Baton Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@baton.invalid")
            .env("GIT_COMMITTER_NAME", "Baton Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@baton.invalid")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, mut cmd: Command, what: &str) -> Output {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "`{what}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn git(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd("git");
        cmd.args(["-c", "core.fsmonitor=false"]).args(args);
        self.run(cmd, &format!("git {}", args.join(" ")))
    }

    fn baton(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd(env!("CARGO_BIN_EXE_baton"));
        cmd.args(args);
        self.run(cmd, &format!("baton {}", args.join(" ")))
    }

    /// Stages a one-line change to file `n`.
    fn stage_change(&self, n: usize, files: usize) {
        let path = file_path(&self.repo, n % files);
        let mut text = std::fs::read_to_string(&path).expect("a generated file");
        text.push_str(&format!("change {n}\n"));
        std::fs::write(&path, text).expect("a change");
        let rel = path
            .strip_prefix(&self.repo)
            .expect("inside the repository")
            .to_string_lossy()
            .into_owned();
        self.git(&["add", &rel]);
    }

    fn commit(&self, hook: bool, n: usize) -> Duration {
        let message = format!("change {n}");
        let mut args = vec!["commit", "-q", "-m", &message];
        if !hook {
            args.push("--no-verify");
        }
        let start = Instant::now();
        self.git(&args);
        start.elapsed()
    }
}

fn file_path(repo: &Path, i: usize) -> PathBuf {
    repo.join("src")
        .join(format!("d{:03}", i / 100))
        .join(format!("f{:02}.txt", i % 100))
}

fn generate(s: &Scratch, files: usize) {
    for i in 0..files {
        let path = file_path(&s.repo, i);
        if i % 100 == 0 {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        }
        std::fs::write(&path, format!("file {i}\n")).expect("a file");
    }
    std::fs::create_dir_all(s.repo.join(".baton")).expect(".baton");
    std::fs::write(s.repo.join(".baton/config.toml"), "checks = [\"true\"]\n").expect("config");
    s.git(&["init", "-q", "-b", "main"]);
    s.git(&["config", "gc.auto", "0"]);
    s.git(&["config", "maintenance.auto", "false"]);
    s.git(&["add", "-A"]);
    s.git(&["commit", "-q", "--no-verify", "-m", "bench: initial"]);
    s.git(&["repack", "-a", "-d", "-q"]);
    s.git(&["prune-packed"]);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut ds: Vec<Duration>) -> Duration {
    ds.sort();
    ds[ds.len() / 2]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn main() {
    let files = env_number("BATON_BENCH_FILES", 10_000);
    let iters = env_number("BATON_BENCH_ITERS", 5);
    let (s, base) = Scratch::new();
    println!(
        "baton pre-commit hook: {files} files, check `true`, {iters} iteration(s) after one warm-up, under {}{}",
        base.display(),
        if base == Path::new("/dev/shm") {
            " (tmpfs)"
        } else {
            " (not a tmpfs: expect noise)"
        }
    );
    generate(&s, files);
    s.baton(&["hook", "install"]);

    let (mut plain, mut first, mut second, mut direct) = (vec![], vec![], vec![], vec![]);
    let mut checkout = vec![];
    let mut n = 0;
    for i in 0..=iters {
        n += 1;
        s.stage_change(n, files);
        let p = s.commit(false, n);
        n += 1;
        s.stage_change(n, files);
        let f = s.commit(true, n);
        n += 1;
        s.stage_change(n, files);
        // The tree checked once already: the hook's run is the second on it.
        s.baton(&["precommit"]);
        let start = Instant::now();
        s.baton(&["precommit"]);
        let d = start.elapsed();
        let c = s.commit(true, n);
        // What a pooled worktree would save: checking out and removing the whole tree.
        let wt = s.home.join("bench-wt");
        let wt_s = wt.to_string_lossy().into_owned();
        let start = Instant::now();
        s.git(&["worktree", "add", "-q", "--detach", &wt_s, "HEAD"]);
        s.git(&["worktree", "remove", "--force", &wt_s]);
        let w = start.elapsed();
        if i > 0 {
            checkout.push(w);
            plain.push(p);
            first.push(f);
            second.push(c);
            direct.push(d);
        }
    }
    let (plain, first, second, direct) =
        (median(plain), median(first), median(second), median(direct));
    println!(
        "  median git commit --no-verify (no hook):      {:8.1} ms",
        ms(plain)
    );
    println!(
        "  median git commit, hook, first run on a tree: {:8.1} ms  (+{:.1} ms)",
        ms(first),
        ms(first) - ms(plain)
    );
    println!(
        "  median git commit, hook, second run (cached): {:8.1} ms  (+{:.1} ms)",
        ms(second),
        ms(second) - ms(plain)
    );
    println!(
        "  median baton precommit alone, cached:         {:8.1} ms",
        ms(direct)
    );
    let checkout = median(checkout);
    println!(
        "  median git worktree add --detach + remove:   {:8.1} ms  (what a pooled worktree saves)",
        ms(checkout)
    );
    let added = ms(first) - ms(plain);
    println!(
        "  first run adds {added:.0} ms (target ≤ {TARGET_ADDED_MS:.0} ms, the check worktree leased from the pool after the warm-up); the cached run adds {:.0} ms",
        ms(second) - ms(plain)
    );
}

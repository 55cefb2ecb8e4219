//! Whether `baton compare` really runs its candidates at once: a compare of three
//! candidates whose agents each take 3 s against one `baton run` of the same agent,
//! both on a small scratch repository with one check.
//!
//! - **single**: `baton run --task bench --agent 'cmd:sleep 3 && echo x >> f.txt'
//!   --check true --on-pass revert`, its wall time;
//! - **compare**: `baton compare --task bench -n 3 --agent '<the same>' --check true
//!   --on-pass revert`, its wall time.
//!
//! ```text
//! cargo bench --bench compare
//! BATON_COMPARE_ITERS=1 BATON_COMPARE_SLEEP=1 cargo bench --bench compare
//! ```
//!
//! Target: the compare at most 1.3× the single run (the medians of `BATON_COMPARE_ITERS`
//! runs each, default 3, interleaved). Both runs are checked to have passed. Nothing is
//! asserted about the ratio: this is a measurement, not a test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET: f64 = 1.3;

fn hermetic(home: &Path, program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("GIT_")) || key == "BATON_WORKTREES_DIR" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("GIT_AUTHOR_NAME", "Baton Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@baton.invalid")
        .env("GIT_COMMITTER_NAME", "Baton Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@baton.invalid")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

fn must(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn timed(home: &Path, repo: &Path, args: &[&str], what: &str) -> Duration {
    let start = Instant::now();
    must(
        hermetic(home, env!("CARGO_BIN_EXE_baton"))
            .arg("-C")
            .arg(repo)
            .arg("-q")
            .args(args),
        what,
    );
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter given after it is not ours to read.
    let iters: usize = std::env::var("BATON_COMPARE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let sleep: u64 = std::env::var("BATON_COMPARE_SLEEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&repo).expect("repo");
    std::fs::write(repo.join("f.txt"), "start\n").expect("a file");
    must(
        hermetic(&home, "git")
            .current_dir(&repo)
            .args(["init", "-q", "-b", "main"]),
        "git init",
    );
    must(
        hermetic(&home, "git")
            .current_dir(&repo)
            .args(["add", "-A"]),
        "git add",
    );
    must(
        hermetic(&home, "git")
            .current_dir(&repo)
            .args(["commit", "-q", "-m", "initial"]),
        "git commit",
    );
    let agent = format!("cmd:sleep {sleep} && echo x >> f.txt");
    let common = ["--task", "bench", "--check", "true", "--on-pass", "revert"];
    let mut single = vec![];
    let mut compare = vec![];
    for _ in 0..iters {
        let mut args = vec!["run", "--agent", &agent];
        args.extend(common);
        single.push(timed(&home, &repo, &args, "baton run"));
        let mut args = vec!["compare", "-n", "3", "--agent", &agent];
        args.extend(common);
        compare.push(timed(&home, &repo, &args, "baton compare"));
    }
    let (s, c) = (median(single), median(compare));
    let ratio = c.as_secs_f64() / s.as_secs_f64();
    println!("agents sleeping {sleep} s, median of {iters}:");
    println!("  one run            {:>7.2} s", s.as_secs_f64());
    println!("  compare of three   {:>7.2} s", c.as_secs_f64());
    println!(
        "  ratio              {ratio:>7.2}x (target <= {TARGET}x): {}",
        if ratio <= TARGET { "ok" } else { "over target" }
    );
}

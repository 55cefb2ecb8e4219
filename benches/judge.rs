//! How long baton takes to judge a change that touches every file of a repository,
//! compared with plain git doing the same work.
//!
//! For each size N (1,000, 10,000 and 100,000 files by default) the benchmark builds a
//! scratch repository of N small files (100 to a directory, one commit, packed like a
//! clone) and times, interleaved (baseline, baton, baseline, baton, ...) after one
//! warm-up of each, runs whose agent appends a line to every one of the N files:
//!
//! - **baton**: `baton -C <repo> run --task bench --agent 'cmd:<agent>' --check true
//!   --on-pass revert --on-fail revert`. Its **judging** time is read from the run
//!   journal's `events.jsonl`: from the `agent.finished` event to the `stage` event of
//!   the checks, which covers the snapshot (scratch index, `git add --all`,
//!   `write-tree`), the diff (raw and numstat), the patch, the blob sizes and the scope
//!   judgement of every path. Its **whole run** is the process's wall time.
//! - **baseline**: `git worktree add -q -b bench-i <tmp>/wt-i HEAD`, the same agent
//!   command (`sh -c` in the worktree), then — timed as the baseline's judging — a copy
//!   of the worktree's index as a scratch index (`GIT_INDEX_FILE`), `git add -A`,
//!   `git write-tree`, `git diff-tree -r -z -M --raw HEAD <tree>` and the same with
//!   `--numstat` (`-M` as baton asks for it), then `git worktree remove --force` and
//!   `git branch -D bench-i`. Its whole run is all of that.
//!
//! Both sides check that all N files were changed (N numstat records; N judged paths
//! in baton's `scope.judged` event).
//!
//! The whole run is compared at 30,000 files (a pass of its own, after the sizes).
//!
//! ```text
//! TMPDIR=/dev/shm cargo bench --bench judge
//! BATON_JUDGE_SIZES=1000,10000 BATON_JUDGE_WHOLE=0 BATON_JUDGE_ITERS=3 cargo bench --bench judge
//! ```
//!
//! `BATON_JUDGE_SIZES`: comma-separated file counts (default `1000,10000,100000`);
//! `BATON_JUDGE_WHOLE`: the file count of the whole-run pass (default `30000`, `0`
//! skips it); `BATON_JUDGE_ITERS`: measured iterations of each kind per size (default
//! 3).
//!
//! Reading the result: ratios are baton's median over the baseline's median, measured
//! in the same process on the same filesystem, so the machine's speed mostly cancels
//! out. Targets: judging at most 1.2× plain git at every size, the whole run at 30,000
//! files at most 1.3×. Nothing is asserted about them (this is a measurement, not a
//! test). The repository and every worktree live under `/dev/shm` when it is a
//! writable directory (a tmpfs: the disk's noise stays out); otherwise under the
//! temporary directory, with a warning.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

const TARGET_JUDGE: f64 = 1.2;
const TARGET_WHOLE: f64 = 1.3;
const FILES_PER_DIR: usize = 100;
const DEFAULT_SIZES: &[usize] = &[1_000, 10_000, 100_000];
const DEFAULT_WHOLE: usize = 30_000;
const DEFAULT_ITERS: usize = 3;
/// The agent of both sides: one line appended to every file of the repository.
const AGENT: &str =
    r#"find src -type f -exec sh -c 'for f do echo "changed by the agent" >> "$f"; done' sh {} +"#;

fn main() {
    let sizes = counts_from_env("BATON_JUDGE_SIZES", DEFAULT_SIZES);
    let whole = counts_from_env("BATON_JUDGE_WHOLE", &[DEFAULT_WHOLE])
        .first()
        .copied()
        .unwrap_or(0);
    let iters = counts_from_env("BATON_JUDGE_ITERS", &[DEFAULT_ITERS])
        .first()
        .copied()
        .unwrap_or(DEFAULT_ITERS)
        .max(1);
    let base = scratch_base();
    println!(
        "baton judging: {iters} measured iteration(s) of each kind per size, after one warm-up of each, interleaved baseline/baton"
    );
    println!("  agent (both sides): {AGENT}");
    println!(
        "  baton    = baton run --agent 'cmd:<agent>' --check true --on-pass revert --on-fail revert; judging = agent.finished -> stage checks in events.jsonl"
    );
    println!(
        "  baseline = worktree add; agent; [cp index; GIT_INDEX_FILE add -A; write-tree; diff-tree -r -z -M --raw; --numstat]; worktree remove; branch -D"
    );
    println!("  scratch directory: {}", base.display());
    println!();

    let mut results = vec![];
    for &n in &sizes {
        results.push(bench_size(&base, n, iters));
    }
    let whole_result = (whole > 0).then(|| bench_size(&base, whole, iters));

    println!();
    println!(
        "{:>8} | {:>16} | {:>12} | {:>11} | {:>9} | {:>14} | {:>14} | {:>11}",
        "files",
        "baton judge med",
        "git med",
        "ratio (med)",
        "ratio min",
        "baton run med",
        "git run med",
        "run ratio"
    );
    println!("{}", "-".repeat(116));
    for r in results.iter().chain(whole_result.iter()) {
        println!(
            "{:>8} | {:>13.0} ms | {:>9.0} ms | {:>11.2} | {:>9.2} | {:>11.0} ms | {:>11.0} ms | {:>11.2}",
            r.files,
            ms(median(&r.baton_judge)),
            ms(median(&r.git_judge)),
            r.judge_ratio(),
            ms(min(&r.baton_judge)) / ms(min(&r.git_judge)),
            ms(median(&r.baton_run)),
            ms(median(&r.git_run)),
            r.run_ratio()
        );
    }
    println!();
    for r in results.iter().chain(whole_result.iter()) {
        println!(
            "{:>8} files, all iterations (ms): baton judging [{}]  git [{}]  baton run [{}]  git run [{}]",
            r.files,
            list_ms(&r.baton_judge),
            list_ms(&r.git_judge),
            list_ms(&r.baton_run),
            list_ms(&r.git_run)
        );
        let spans: Vec<String> = r
            .baton_spans
            .iter()
            .map(|(name, ds)| format!("{name} {:.0} ms", ms(median(ds))))
            .collect();
        println!(
            "{:>8} files, baton's journal (medians): {}",
            r.files,
            spans.join(", ")
        );
    }
    println!();
    for r in &results {
        println!(
            "judging {} files: ratio {:.2} (target <= {TARGET_JUDGE:.2})",
            r.files,
            r.judge_ratio()
        );
    }
    if let Some(r) = &whole_result {
        println!(
            "judging {} files: ratio {:.2} (target <= {TARGET_JUDGE:.2})",
            r.files,
            r.judge_ratio()
        );
        println!(
            "whole run {} files: ratio {:.2} (target <= {TARGET_WHOLE:.2})",
            r.files,
            r.run_ratio()
        );
    }
}

fn counts_from_env(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(text) if !text.trim().is_empty() => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.replace('_', "")
                    .parse::<usize>()
                    .unwrap_or_else(|_| panic!("{var}: `{s}` is not a number"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

/// `/dev/shm` when it is a writable directory, else the temporary directory (warned).
fn scratch_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let probe = tempfile::Builder::new()
        .prefix("baton-judge-probe-")
        .tempdir_in(shm);
    match probe {
        Ok(_) => shm.to_path_buf(),
        Err(e) => {
            let tmp = std::env::temp_dir();
            println!(
                "warning: /dev/shm is not usable ({e}); running in {} instead, where the disk's own noise adds to both sides",
                tmp.display()
            );
            tmp
        }
    }
}

struct Scratch {
    _tmp: TempDir,
    home: PathBuf,
    repo: PathBuf,
    wt_dir: PathBuf,
    baton_wt_dir: PathBuf,
}

impl Scratch {
    fn new(base: &Path, files: usize) -> Scratch {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("baton-judge-{files}-"))
            .tempdir_in(base)
            .expect("could not create a scratch directory for the benchmark");
        let root = tmp.path().to_path_buf();
        let s = Scratch {
            home: root.join("home"),
            repo: root.join("repo"),
            wt_dir: root.join("worktrees"),
            baton_wt_dir: root.join("baton-worktrees"),
            _tmp: tmp,
        };
        for dir in [&s.home, &s.repo, &s.wt_dir, &s.baton_wt_dir] {
            fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
        }
        s
    }

    /// No inherited `GIT_*` variable, no global or system git config, a scratch
    /// `HOME`, a fixed identity and dates.
    fn hermetic(&self, program: impl Into<OsString>) -> Command {
        let mut cmd = Command::new(program.into());
        for (key, _) in std::env::vars_os() {
            let inherited_git = key.to_str().is_some_and(|k| k.starts_with("GIT_"));
            if inherited_git || key == "BATON_WORKTREES_DIR" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("GIT_AUTHOR_NAME", "Baton Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@baton.invalid")
            .env("GIT_COMMITTER_NAME", "Baton Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@baton.invalid")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    fn git_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = self.hermetic("git");
        cmd.current_dir(dir)
            .args(["-c", "core.fsmonitor=false"])
            .args(args);
        cmd
    }

    fn git_ok_in(&self, dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Vec<u8> {
        let mut cmd = self.git_in(dir, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("could not run `git {}`: {e}", args.join(" ")));
        check_success(&format!("git {}", args.join(" ")), &out);
        out.stdout
    }

    fn git_ok(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.git_ok_in(&self.repo, args, &[])).into_owned()
    }
}

fn check_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "`{what}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `files` small, distinct files under `src/`, 100 to a directory, committed and packed.
fn generate_repo(s: &Scratch, files: usize) {
    let mut dir = PathBuf::new();
    for i in 0..files {
        let leaf = i / FILES_PER_DIR;
        if i % FILES_PER_DIR == 0 {
            dir = s
                .repo
                .join("src")
                .join(format!("a{:03}", leaf / 100))
                .join(format!("b{:02}", leaf % 100));
            fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
        }
        let path = dir.join(format!("f{:02}.txt", i % FILES_PER_DIR));
        let content = format!(
            "file {i}\nkey {:016x}\n",
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        fs::write(&path, content)
            .unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
    }
    s.git_ok(&["init", "-q", "-b", "main"]);
    s.git_ok(&["config", "gc.auto", "0"]);
    s.git_ok(&["config", "maintenance.auto", "false"]);
    s.git_ok(&["add", "-A"]);
    s.git_ok(&["commit", "-q", "--no-verify", "-m", "bench: initial"]);
    s.git_ok(&["repack", "-a", "-d", "-q"]);
    s.git_ok(&["prune-packed"]);
}

fn run_agent(s: &Scratch, wt: &Path) {
    let out = s
        .hermetic("sh")
        .arg("-c")
        .arg(AGENT)
        .current_dir(wt)
        .output()
        .expect("could not run the agent");
    check_success("the agent", &out);
}

/// One baseline iteration: (judging, whole run).
fn baseline_once(s: &Scratch, i: usize, files: usize) -> (Duration, Duration) {
    let branch = format!("bench-{i}");
    let wt = s.wt_dir.join(format!("wt-{i}"));
    let wt_s = wt.to_string_lossy().into_owned();
    let scratch_index = s.wt_dir.join(format!("index-{i}"));
    let start = Instant::now();
    s.git_ok(&["worktree", "add", "-q", "-b", &branch, &wt_s, "HEAD"]);
    run_agent(s, &wt);
    let judge_start = Instant::now();
    let index = s.git_ok_in(
        &wt,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
        &[],
    );
    let index = PathBuf::from(String::from_utf8_lossy(&index).trim());
    fs::copy(&index, &scratch_index).expect("could not copy the worktree's index");
    let env = [("GIT_INDEX_FILE", scratch_index.as_path())];
    s.git_ok_in(&wt, &["add", "-A"], &env);
    let tree = s.git_ok_in(&wt, &["write-tree"], &env);
    let tree = String::from_utf8_lossy(&tree).trim().to_string();
    let diff = |format: &str| {
        s.git_ok_in(
            &wt,
            &["diff-tree", "-r", "-z", "-M", format, "HEAD", &tree],
            &[],
        )
    };
    diff("--raw");
    let numstat = diff("--numstat");
    let judge = judge_start.elapsed();
    s.git_ok(&["worktree", "remove", "--force", &wt_s]);
    s.git_ok(&["branch", "-q", "-D", &branch]);
    let whole = start.elapsed();
    let _ = fs::remove_file(&scratch_index);
    let records = numstat.split(|&b| b == 0).filter(|r| !r.is_empty()).count();
    assert_eq!(
        records, files,
        "the baseline's diff should change every file"
    );
    (judge, whole)
}

/// What one baton run took: its judging (from the journal), its wall time, and the
/// spans between its journal's later events.
struct BatonRun {
    judge: Duration,
    whole: Duration,
    spans: Vec<(&'static str, Duration)>,
}

fn baton_once(s: &Scratch, files: usize) -> BatonRun {
    let runs = s.repo.join(".git/baton/runs");
    let before = run_dirs(&runs);
    let start = Instant::now();
    let out = s
        .hermetic(env!("CARGO_BIN_EXE_baton"))
        .arg("-C")
        .arg(&s.repo)
        .args(["run", "--task", "bench", "--agent"])
        .arg(format!("cmd:{AGENT}"))
        .args([
            "--check",
            "true",
            "--on-pass",
            "revert",
            "--on-fail",
            "revert",
        ])
        .env("BATON_WORKTREES_DIR", &s.baton_wt_dir)
        .output()
        .expect("could not start the baton binary");
    let whole = start.elapsed();
    check_success("baton run", &out);
    let new: Vec<PathBuf> = run_dirs(&runs)
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    let [journal] = new.as_slice() else {
        panic!("expected one new run journal, found {new:?}");
    };
    let events = fs::read_to_string(journal.join("events.jsonl"))
        .expect("could not read the run's events.jsonl");
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("events.jsonl has a line that is not JSON"))
        .collect();
    let ts = |pred: &dyn Fn(&Value) -> bool| -> u64 {
        events
            .iter()
            .find(|e| pred(e))
            .and_then(|e| e["ts_ms"].as_u64())
            .unwrap_or_else(|| panic!("an event is missing from {}", journal.display()))
    };
    let is = |name: &'static str| move |e: &Value| e["event"] == name;
    let stage = |name: &'static str| move |e: &Value| e["event"] == "stage" && e["stage"] == name;
    let agent_done = ts(&is("agent.finished"));
    let checks = ts(&stage("checks"));
    let judged = ts(&is("scope.judged"));
    let outcome = ts(&stage("outcome"));
    let finished = ts(&is("run.finished"));
    let judged_paths = events
        .iter()
        .find(|e| e["event"] == "scope.judged")
        .and_then(|e| e["scope"]["paths"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(judged_paths, files, "baton should judge every file");
    let span = |a: u64, b: u64| Duration::from_millis(b.saturating_sub(a));
    let _ = fs::remove_dir_all(journal);
    BatonRun {
        judge: span(agent_done, checks),
        whole,
        spans: vec![
            ("agent.finished -> checks", span(agent_done, checks)),
            ("checks -> scope.judged", span(checks, judged)),
            ("scope.judged -> outcome", span(judged, outcome)),
            ("outcome -> run.finished", span(outcome, finished)),
        ],
    }
}

fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    fs::read_dir(runs)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

struct SizeResult {
    files: usize,
    baton_judge: Vec<Duration>,
    git_judge: Vec<Duration>,
    baton_run: Vec<Duration>,
    git_run: Vec<Duration>,
    baton_spans: Vec<(&'static str, Vec<Duration>)>,
}

impl SizeResult {
    fn judge_ratio(&self) -> f64 {
        ms(median(&self.baton_judge)) / ms(median(&self.git_judge))
    }

    fn run_ratio(&self) -> f64 {
        ms(median(&self.baton_run)) / ms(median(&self.git_run))
    }
}

fn bench_size(base: &Path, files: usize, iters: usize) -> SizeResult {
    let s = Scratch::new(base, files);
    eprintln!(
        "[{files} files] generating the repository in {}",
        s.repo.display()
    );
    let setup = Instant::now();
    generate_repo(&s, files);
    eprintln!(
        "[{files} files] generated in {:.1}s; warming up",
        setup.elapsed().as_secs_f64()
    );
    baseline_once(&s, 0, files);
    baton_once(&s, files);
    let mut r = SizeResult {
        files,
        baton_judge: vec![],
        git_judge: vec![],
        baton_run: vec![],
        git_run: vec![],
        baton_spans: vec![],
    };
    for i in 1..=iters {
        let (git_judge, git_run) = baseline_once(&s, i, files);
        let baton = baton_once(&s, files);
        eprintln!(
            "[{files} files] iteration {i}/{iters}: judging baton {:.0} ms, git {:.0} ms; whole run baton {:.0} ms, git {:.0} ms",
            ms(baton.judge),
            ms(git_judge),
            ms(baton.whole),
            ms(git_run)
        );
        for (name, d) in baton.spans {
            match r.baton_spans.iter_mut().find(|(n, _)| *n == name) {
                Some((_, ds)) => ds.push(d),
                None => r.baton_spans.push((name, vec![d])),
            }
        }
        r.git_judge.push(git_judge);
        r.git_run.push(git_run);
        r.baton_judge.push(baton.judge);
        r.baton_run.push(baton.whole);
    }
    r
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(ds: &[Duration]) -> Duration {
    let mut v = ds.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

fn min(ds: &[Duration]) -> Duration {
    ds.iter().copied().min().unwrap_or(Duration::ZERO)
}

fn list_ms(ds: &[Duration]) -> String {
    ds.iter()
        .map(|d| format!("{:.0}", ms(*d)))
        .collect::<Vec<_>>()
        .join(", ")
}

//! How much time `baton run` adds around an instant agent, compared with the plain
//! git work it cannot avoid.
//!
//! For each repository size (10,000 and 100,000 files by default) the benchmark builds
//! a scratch repository under a temporary directory (100 small, distinct files per
//! directory, one commit, then packed like a clone would be) and times, interleaved
//! (baseline, baton, baseline, baton, ...) after one warm-up of each:
//!
//! - **baseline**: `git worktree add -q -b bench-N <tmp>/wt-N HEAD`, then
//!   `git worktree remove --force <tmp>/wt-N`, then `git branch -D bench-N`: the
//!   checkout and removal of a linked worktree on a new branch, which is the floor for
//!   any tool that isolates a change the way baton does;
//! - **baton**: `baton -C <repo> run --task bench --agent cmd:true --on-pass revert
//!   --on-fail revert`, with `BATON_WORKTREES_DIR` on the same filesystem. The agent
//!   changes nothing, so baton exits 4 ("changed nothing") after creating the worktree,
//!   running the agent, snapshotting and judging the tree and discarding the run; the
//!   benchmark checks that exit status and that no worktree or `baton/*` branch is left.
//!   The worktree pool is off (`[worktree] pool = 0` in the scratch user config), so
//!   both sides check out and remove a whole worktree every time; `benches/pool.rs`
//!   measures a pooled worktree's lease and return against the same baseline.
//!
//! Every git and baton process runs with a hermetic environment (no global or system git
//! config, a scratch `HOME`, a fixed identity and dates, `core.fsmonitor=false`).
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench overhead
//! BATON_BENCH_SIZES=10000 BATON_BENCH_ITERS=3 cargo bench --bench overhead
//! ```
//!
//! `BATON_BENCH_SIZES` is a comma-separated list of file counts (default
//! `10000,100000`), `BATON_BENCH_ITERS` the number of measured iterations of each kind
//! per size (default 5).
//!
//! Reading the result: the ratio is baton's median time over the baseline's median time,
//! both measured in the same process run on the same repository, so the machine's speed
//! mostly cancels out. 1.00 means baton costs nothing beyond the worktree it has to make;
//! 1.30 means it adds 30% on top. The target is a ratio of at most 1.30. The absolute
//! milliseconds are printed for context only and nothing is asserted about them (this
//! is a measurement, not a test). The per-stage table splits baton's time at the events
//! the run recorded in its journal (`events.jsonl`, each with its `ts_ms`), to show where
//! any extra time goes.
//!
//! Noise: both sides spend their time creating and deleting thousands of files, so the
//! filesystem under the temporary directory (`$TMPDIR`, else `/tmp`; the repository and
//! both kinds of worktree are all on it) matters. On ext4 without a journal, creating
//! files soon after many were deleted gets slower and slower (the inode allocator skips
//! inodes freed in the last minute or more), so times grow from one iteration to the
//! next and the ratio drifts towards 1. The benchmark prints which filesystem it ran
//! on, warns when that is ext4 without a journal or when one series spreads more than
//! 1.5x, and then the ratio of minimums is the better guide. A tmpfs gives a steadier
//! comparison: `TMPDIR=/dev/shm cargo bench --bench overhead`.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The ratio of medians (baton / baseline) the project aims to stay under.
const TARGET_RATIO: f64 = 1.30;
/// Files in each leaf directory of a generated repository.
const FILES_PER_DIR: usize = 100;
/// `baton run`'s exit status when the agent changed nothing.
const EXIT_AGENT_FAILED: i32 = 4;
/// Above this slowest/fastest iteration spread, the run is flagged as noisy.
const NOISY_SPREAD: f64 = 1.5;
const DEFAULT_SIZES: &[usize] = &[10_000, 100_000];
const DEFAULT_ITERS: usize = 5;

fn main() {
    let sizes = sizes_from_env();
    let iters = iters_from_env();
    println!(
        "baton overhead: {iters} measured iteration(s) of each kind per size, after one warm-up of each, interleaved baseline/baton"
    );
    println!(
        "  baseline = git worktree add -q -b bench-N <tmp>/wt-N HEAD; git worktree remove --force <tmp>/wt-N; git branch -D bench-N"
    );
    println!(
        "  baton    = baton -C <repo> run --task bench --agent cmd:true --on-pass revert --on-fail revert (expects exit 4: no change)"
    );
    let tmp = std::env::temp_dir();
    let fs_info = filesystem_of(&tmp);
    println!(
        "  temporary directory: {} ({})",
        tmp.display(),
        fs_info
            .as_ref()
            .map(FsInfo::describe)
            .unwrap_or_else(|| "filesystem unknown".into())
    );
    println!();

    let mut results = Vec::new();
    for &size in &sizes {
        results.push(bench_size(size, iters));
    }

    println!();
    print_table(&results);
    for r in &results {
        println!();
        print_stages(r);
    }
    println!();
    if fs_info.as_ref().is_some_and(FsInfo::unjournaled_ext4) {
        println!(
            "warning: {} is on ext4 without a journal, where creating files soon after many were \
             deleted is very slow (the inode allocator skips recently freed inodes); that cost \
             inflates both sides, grows over the run and pulls the ratio towards 1. For a ratio \
             that means something, run with TMPDIR on a tmpfs or a journaled filesystem, e.g. \
             TMPDIR=/dev/shm cargo bench --bench overhead",
            tmp.display()
        );
        println!();
    }
    for r in &results {
        println!(
            "overhead {} files: ratio {:.2} (target <= {TARGET_RATIO:.2})",
            r.files,
            r.ratio_median()
        );
    }
}

fn sizes_from_env() -> Vec<usize> {
    match std::env::var("BATON_BENCH_SIZES") {
        Ok(text) if !text.trim().is_empty() => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.replace('_', "")
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| {
                        panic!("BATON_BENCH_SIZES: `{s}` is not a positive file count (expected e.g. 10000,100000)")
                    })
            })
            .collect(),
        _ => DEFAULT_SIZES.to_vec(),
    }
}

fn iters_from_env() -> usize {
    match std::env::var("BATON_BENCH_ITERS") {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                panic!("BATON_BENCH_ITERS: `{text}` is not a positive number of iterations")
            }),
        _ => DEFAULT_ITERS,
    }
}

/// The scratch places of one size: all under one temporary directory, so on one
/// filesystem; removed when dropped.
struct Scratch {
    _tmp: TempDir,
    home: PathBuf,
    repo: PathBuf,
    /// Where the baseline's worktrees go.
    wt_dir: PathBuf,
    /// `BATON_WORKTREES_DIR`.
    baton_wt_dir: PathBuf,
}

impl Scratch {
    fn new(files: usize) -> Scratch {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("baton-bench-{files}-"))
            .tempdir()
            .expect("could not create a temporary directory for the benchmark");
        let root = tmp.path().to_path_buf();
        let scratch = Scratch {
            home: root.join("home"),
            repo: root.join("repo"),
            wt_dir: root.join("worktrees"),
            baton_wt_dir: root.join("baton-worktrees"),
            _tmp: tmp,
        };
        for dir in [
            &scratch.home,
            &scratch.repo,
            &scratch.wt_dir,
            &scratch.baton_wt_dir,
        ] {
            fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
        }
        // The pool off: this measures baton's own work around a new worktree against
        // the same checkout and removal; what the pool saves is `benches/pool.rs`'s.
        let config = scratch.home.join(".config").join("baton");
        fs::create_dir_all(&config).expect("a config directory");
        fs::write(config.join("config.toml"), "[worktree]\npool = 0\n").expect("the config");
        scratch
    }

    /// A command with the hermetic environment: no inherited `GIT_*` variable, no
    /// global or system git config, a scratch `HOME` and XDG directories, a fixed
    /// identity and dates.
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

    /// `git -c core.fsmonitor=false <args>` in the repository.
    fn git(&self, args: &[&str]) -> Command {
        let mut cmd = self.hermetic("git");
        cmd.current_dir(&self.repo)
            .args(["-c", "core.fsmonitor=false"])
            .args(args);
        cmd
    }

    /// Runs git to success and returns its stdout.
    fn git_ok(&self, args: &[&str]) -> String {
        let out = self
            .git(args)
            .output()
            .unwrap_or_else(|e| panic!("could not run `git {}`: {e}", args.join(" ")));
        check_success(&format!("git {}", args.join(" ")), &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn baton(&self) -> Command {
        let mut cmd = self.hermetic(env!("CARGO_BIN_EXE_baton"));
        cmd.arg("-C")
            .arg(&self.repo)
            .args([
                "run",
                "--task",
                "bench",
                "--agent",
                "cmd:true",
                "--on-pass",
                "revert",
                "--on-fail",
                "revert",
            ])
            .env("BATON_WORKTREES_DIR", &self.baton_wt_dir);
        cmd
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

/// Writes `files` small, distinct files, 100 to a directory, two levels deep, then
/// commits them with one `git add -A` and packs the objects.
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
    fs::write(
        s.repo.join("README.md"),
        "baton overhead benchmark repository\n",
    )
    .expect("could not write the scratch repository's README.md");

    s.git_ok(&["init", "-q", "-b", "main"]);
    // No background maintenance in the middle of a measurement.
    s.git_ok(&["config", "gc.auto", "0"]);
    s.git_ok(&["config", "maintenance.auto", "false"]);
    s.git_ok(&["add", "-A"]);
    s.git_ok(&["commit", "-q", "--no-verify", "-m", "bench: initial"]);
    // A clone's objects are packed; 100k loose objects would make every checkout slower
    // than any real repository of that size.
    s.git_ok(&["repack", "-a", "-d", "-q"]);
    s.git_ok(&["prune-packed"]);
}

/// One baseline iteration: add a worktree on a new branch, remove it, delete the branch.
fn baseline_once(s: &Scratch, n: usize) -> Duration {
    let branch = format!("bench-{n}");
    let wt = s.wt_dir.join(format!("wt-{n}"));
    let wt_s = wt.to_string_lossy().into_owned();
    let steps: [Vec<&str>; 3] = [
        vec!["worktree", "add", "-q", "-b", &branch, &wt_s, "HEAD"],
        vec!["worktree", "remove", "--force", &wt_s],
        vec!["branch", "-q", "-D", &branch],
    ];
    let start = Instant::now();
    let mut outputs = Vec::with_capacity(steps.len());
    for args in &steps {
        let out = s
            .git(args)
            .output()
            .unwrap_or_else(|e| panic!("could not run `git {}`: {e}", args.join(" ")));
        let failed = !out.status.success();
        outputs.push((args, out));
        if failed {
            break;
        }
    }
    let elapsed = start.elapsed();
    for (args, out) in &outputs {
        check_success(&format!("git {}", args.join(" ")), out);
    }
    assert!(!wt.exists(), "{} is still there", wt.display());
    elapsed
}

/// A line of baton's stderr, kept for the report and for failures.
struct StderrLine {
    text: String,
}

/// One event of the run's journal and when it happened, relative to the spawn.
struct Event {
    at: Duration,
    name: String,
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The events of the newest run of the scratch repository (`events.jsonl`), each named
/// by its kind (`stage:<name>` for a stage change), timed from `spawned_ms`.
fn run_events(s: &Scratch, spawned_ms: u64) -> Vec<Event> {
    let runs = s.repo.join(".git/baton/runs");
    let newest = fs::read_dir(&runs)
        .expect("the run has a journal")
        .flatten()
        .max_by_key(|e| {
            fs::read_to_string(e.path().join("seq"))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .expect("the run has a journal directory");
    let text = fs::read_to_string(newest.path().join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let ts = v.get("ts_ms")?.as_u64()?;
            let kind = v.get("event")?.as_str()?;
            let name = match (kind, v.get("stage").and_then(|s| s.as_str())) {
                ("stage", Some(stage)) => format!("stage:{stage}"),
                _ => kind.to_string(),
            };
            Some(Event {
                at: Duration::from_millis(ts.saturating_sub(spawned_ms)),
                name,
            })
        })
        .collect()
}

/// One baton iteration; returns its wall time, its stderr and its journal's events.
fn baton_once(s: &Scratch) -> (Duration, Vec<StderrLine>, Vec<Event>) {
    let start = Instant::now();
    let spawned_ms = epoch_ms();
    let mut child = s
        .baton()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start the baton binary");
    let stderr = child.stderr.take().expect("baton's stderr was not piped");
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let text = line.expect("could not read baton's stderr");
        lines.push(StderrLine { text });
    }
    let status = child.wait().expect("could not wait for baton");
    let elapsed = start.elapsed();
    check_baton_result(s, status, &lines);
    (elapsed, lines, run_events(s, spawned_ms))
}

/// Proves the run did its work and cleaned up: exit 4, only the main worktree left, no
/// `baton/*` branch.
fn check_baton_result(s: &Scratch, status: ExitStatus, lines: &[StderrLine]) {
    let stderr = || {
        lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        status.code(),
        Some(EXIT_AGENT_FAILED),
        "baton run should exit {EXIT_AGENT_FAILED} (the agent changed nothing), got {status}; stderr:\n{}",
        stderr()
    );
    let worktrees = s.git_ok(&["worktree", "list", "--porcelain"]);
    let count = worktrees
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .count();
    assert_eq!(
        count,
        1,
        "baton left a worktree behind:\n{worktrees}\nstderr:\n{}",
        stderr()
    );
    let branches = s.git_ok(&["branch", "--list", "baton/*"]);
    assert!(
        branches.trim().is_empty(),
        "baton left a branch behind: {branches}\nstderr:\n{}",
        stderr()
    );
}

/// Splits a baton run at its journal's events: `spawn → run.started`, ...,
/// `<last> → exit`, with `#2`, `#3` for repeated names.
fn stages(events: &[Event], total: Duration) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut prev_name = "spawn".to_string();
    let mut prev_at = Duration::ZERO;
    for event in events {
        let word = event.name.clone();
        let n = match seen.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((word.clone(), 1));
                1
            }
        };
        let name = if n == 1 { word } else { format!("{word}#{n}") };
        out.push((
            format!("{prev_name} → {name}"),
            event.at.saturating_sub(prev_at),
        ));
        prev_name = name;
        prev_at = event.at;
    }
    out.push((format!("{prev_name} → exit"), total.saturating_sub(prev_at)));
    out
}

/// What baton does between two of its events, as far as the benchmark knows (events
/// may be added; an unknown pair just has no hint).
fn stage_hint(name: &str) -> &'static str {
    match name {
        "spawn → run.started" => "start-up: open repo, config, HEAD, identity, journal",
        "stage:worktree → worktree.created" => "git worktree add (branch + checkout)",
        "agent.started → agent.finished" => "the agent (cmd:true)",
        "agent.finished → stage:scope" => "snapshot: copy index, git add --all, write-tree, diff",
        "stage:outcome → outcome" => "discard: worktree unlock/remove/prune, branch delete",
        _ => "",
    }
}

struct SizeResult {
    files: usize,
    setup: Duration,
    baseline: Vec<Duration>,
    baton: Vec<Duration>,
    /// Stage name, then its duration in each iteration that had it.
    stages: Vec<(String, Vec<Duration>)>,
    /// Baton's stderr of the last measured run, for reference.
    sample_stderr: Vec<String>,
}

impl SizeResult {
    fn ratio_median(&self) -> f64 {
        ms(median(&self.baton)) / ms(median(&self.baseline))
    }

    fn ratio_min(&self) -> f64 {
        ms(min(&self.baton)) / ms(min(&self.baseline))
    }
}

fn bench_size(files: usize, iters: usize) -> SizeResult {
    let scratch = Scratch::new(files);
    eprintln!(
        "[{files} files] generating the repository in {}",
        scratch.repo.display()
    );
    let setup_start = Instant::now();
    generate_repo(&scratch, files);
    let setup = setup_start.elapsed();
    eprintln!(
        "[{files} files] generated and committed in {:.1}s; warming up",
        setup.as_secs_f64()
    );

    let warm_base = baseline_once(&scratch, 0);
    let (warm_baton, _, _) = baton_once(&scratch);
    eprintln!(
        "[{files} files] warm-up: baseline {:.1} ms, baton {:.1} ms",
        ms(warm_base),
        ms(warm_baton)
    );

    let mut result = SizeResult {
        files,
        setup,
        baseline: Vec::with_capacity(iters),
        baton: Vec::with_capacity(iters),
        stages: Vec::new(),
        sample_stderr: Vec::new(),
    };
    for i in 1..=iters {
        let base = baseline_once(&scratch, i);
        let (baton, lines, events) = baton_once(&scratch);
        eprintln!(
            "[{files} files] iteration {i}/{iters}: baseline {:.1} ms, baton {:.1} ms",
            ms(base),
            ms(baton)
        );
        for (name, d) in stages(&events, baton) {
            match result.stages.iter_mut().find(|(n, _)| *n == name) {
                Some((_, ds)) => ds.push(d),
                None => result.stages.push((name, vec![d])),
            }
        }
        result.sample_stderr = lines.into_iter().map(|l| l.text).collect();
        result.baseline.push(base);
        result.baton.push(baton);
    }
    result
}

fn print_table(results: &[SizeResult]) {
    println!(
        "{:>8} | {:>7} | {:>13} | {:>10} | {:>11} | {:>12} | {:>9} | {:>9}",
        "files",
        "setup s",
        "baseline med",
        "baton med",
        "ratio (med)",
        "baseline min",
        "baton min",
        "ratio min"
    );
    println!("{}", "-".repeat(104));
    for r in results {
        println!(
            "{:>8} | {:>7.1} | {:>10.1} ms | {:>7.1} ms | {:>11.2} | {:>9.1} ms | {:>6.1} ms | {:>9.2}",
            r.files,
            r.setup.as_secs_f64(),
            ms(median(&r.baseline)),
            ms(median(&r.baton)),
            r.ratio_median(),
            ms(min(&r.baseline)),
            ms(min(&r.baton)),
            r.ratio_min()
        );
    }
    for r in results {
        println!(
            "{:>8} files, all iterations (ms): baseline [{}]  baton [{}]",
            r.files,
            list_ms(&r.baseline),
            list_ms(&r.baton)
        );
    }
    for r in results {
        let spread = |ds: &[Duration]| ms(max(ds)) / ms(min(ds));
        let worst = spread(&r.baseline).max(spread(&r.baton));
        if worst > NOISY_SPREAD {
            println!(
                "warning: {} files: the slowest iteration took {worst:.1}x the fastest; the machine or its \
                 filesystem was noisy (see the notes at the top of benches/overhead.rs), so trust \
                 the ratio of minimums more than the ratio of medians",
                r.files
            );
        }
    }
}

fn print_stages(r: &SizeResult) {
    println!(
        "baton stages, {} files (median ms over {} run(s); split at the run's events in events.jsonl):",
        r.files,
        r.baton.len()
    );
    for (name, ds) in &r.stages {
        println!(
            "  {name:<24} {:>8.1} ms   {}",
            ms(median(ds)),
            stage_hint(name)
        );
    }
    println!(
        "  {:<24} {:>8.1} ms   (the baseline's median, for comparison)",
        "[baseline total]",
        ms(median(&r.baseline))
    );
    println!("  last run's stderr:");
    for line in &r.sample_stderr {
        println!("    | {line}");
    }
}

/// The filesystem a directory is on, as `/proc/self/mountinfo` tells (Linux only).
struct FsInfo {
    fstype: String,
    source: String,
    mount_point: PathBuf,
    /// `major:minor` of the device.
    dev: String,
}

impl FsInfo {
    /// Whether this is ext4 without a journal (jbd2 lists every journaled device).
    fn unjournaled_ext4(&self) -> bool {
        if self.fstype != "ext4" {
            return false;
        }
        let Some(name) = fs::read_link(format!("/sys/dev/block/{}", self.dev))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        else {
            return false;
        };
        let prefix = format!("{name}-");
        let journaled = fs::read_dir("/proc/fs/jbd2").is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        });
        !journaled
    }

    fn describe(&self) -> String {
        let journal = if self.unjournaled_ext4() {
            ", without a journal"
        } else {
            ""
        };
        format!(
            "{} on {}, mounted at {}{journal}",
            self.fstype,
            self.source,
            self.mount_point.display()
        )
    }
}

fn filesystem_of(dir: &std::path::Path) -> Option<FsInfo> {
    let dir = fs::canonicalize(dir).ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    };
    let mut best: Option<FsInfo> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let (Some(dev), Some(mount_point), Some(fstype), Some(source)) =
            (fields.get(2), fields.get(4), right.next(), right.next())
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        // The deepest mount containing `dir`; a later mount on the same point wins.
        let deeper = best
            .as_ref()
            .is_none_or(|b| mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if dir.starts_with(&mount_point) && deeper {
            best = Some(FsInfo {
                fstype: fstype.to_string(),
                source: unescape(source),
                mount_point,
                dev: dev.to_string(),
            });
        }
    }
    best
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

fn max(ds: &[Duration]) -> Duration {
    ds.iter().copied().max().unwrap_or(Duration::ZERO)
}

fn list_ms(ds: &[Duration]) -> String {
    ds.iter()
        .map(|d| format!("{:.1}", ms(*d)))
        .collect::<Vec<_>>()
        .join(", ")
}

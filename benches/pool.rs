//! P1: what a run's worktree costs when it comes from the pool, against `git worktree
//! add` + `git worktree remove` of the same repository.
//!
//! For each size N (10,000 and 100,000 files by default; 100 to a directory) the
//! benchmark builds a scratch repository with two commits, A and B, that differ in
//! 10 files, and times, interleaved after one warm-up of each:
//!
//! - **baseline**: `git worktree add --detach <wt> <base>` and
//!   `git worktree remove --force <wt>`, the base alternating A, B, A, ...
//! - **pooled** (the second and later runs): baton's own lease — claim under the
//!   worktrees lock, the walk that proves nobody wrote the pooled worktree since it
//!   was returned, `git checkout` to the base (rewriting only the 10 files that
//!   differ), the lock reason — and its return: `git checkout --force --detach` to the
//!   base, `git clean -ffdx`, the disk use, the registry. The base alternates too.
//! - **first run**: a new worktree (`worktree::create`) and its return to the pool.
//!
//! Both sides also run, in a second pair of columns, the agent's edit (one file) and
//! the judge's snapshot (`Repo::snapshot_tree`: scratch index, `git add --all`,
//! `write-tree`) between getting the worktree and giving it up, as a run does.
//!
//! ```text
//! cargo bench --bench pool
//! BATON_POOL_SIZES=10000 BATON_POOL_ITERS=5 cargo bench --bench pool
//! ```
//!
//! Ratios are medians over medians, both sides in one process on one filesystem:
//! `/dev/shm` (tmpfs) when it is writable, since this machine's `/tmp` ext4 crawls on
//! freshly freed inodes and would time the disk, not the work. Target: pooled ≤ 0.2×
//! at 100,000 files. Nothing is asserted (a measurement, not a test).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use baton::git::Repo;
use baton::worktree::{self, pool};

const FILES_PER_DIR: usize = 100;
const DIFFERING: usize = 10;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file(repo: &Path, i: usize) -> PathBuf {
    let leaf = i / FILES_PER_DIR;
    repo.join("src")
        .join(format!("a{:03}", leaf / 100))
        .join(format!("b{:02}", leaf % 100))
        .join(format!("f{:02}.txt", i % FILES_PER_DIR))
}

/// A repository of `files` files; returns commits A and B (B changes 10 files).
fn generate(repo: &Path, files: usize) -> (String, String) {
    for i in 0..files {
        let path = file(repo, i);
        if i % FILES_PER_DIR == 0 {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        std::fs::write(&path, format!("file {i}\n")).unwrap();
    }
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["config", "gc.auto", "0"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "--no-verify", "-m", "A"]);
    let a = git(repo, &["rev-parse", "HEAD"]);
    for k in 0..DIFFERING {
        let i = k * (files / DIFFERING);
        std::fs::write(file(repo, i), format!("file {i}, changed in B\n")).unwrap();
    }
    git(repo, &["commit", "-q", "-am", "B"]);
    let b = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["repack", "-a", "-d", "-q"]);
    (a, b)
}

/// The agent's edit and the judge's snapshot, as a run does between the two ends.
fn work(repo: &Repo, wt: &Path, n: usize) {
    std::fs::write(file(wt, 1), format!("edited {n}\n")).unwrap();
    repo.snapshot_tree(wt).expect("snapshot");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Sides {
    baseline: Vec<Duration>,
    pooled: Vec<Duration>,
}

fn measure(repo: &Repo, wt_dir: &Path, bases: [&str; 2], iters: usize, with_work: bool) -> Sides {
    let settings = pool::PoolSettings {
        size: 1,
        max_bytes: u64::MAX,
        max_age: Duration::from_secs(3600),
        keep: vec![],
    };
    // The first run: a new worktree, given to the pool.
    let first = wt_dir.join("first");
    let start = Instant::now();
    worktree::create(repo, &first, "bench-first", bases[0]).expect("create");
    if with_work {
        work(repo, &first, 0);
    }
    assert!(pool::give_back(repo, &settings, &first, Some("baton/bench-first"), bases[0]).unwrap());
    println!(
        "    first run (create + return{}): {:.0} ms",
        if with_work {
            ", with edit and snapshot"
        } else {
            ""
        },
        ms(start.elapsed())
    );
    let mut sides = Sides {
        baseline: vec![],
        pooled: vec![],
    };
    for i in 0..=iters {
        let base = bases[(i + 1) % 2];
        let plain = wt_dir.join(format!("plain-{i}"));
        let plain_s = plain.to_string_lossy().into_owned();
        let root = repo.root.clone();
        let t = Instant::now();
        git(
            &root,
            &["worktree", "add", "-q", "--detach", &plain_s, base],
        );
        if with_work {
            work(repo, &plain, i);
        }
        git(&root, &["worktree", "remove", "--force", &plain_s]);
        let baseline = t.elapsed();

        let t = Instant::now();
        let claim = pool::claim(repo, &settings, &format!("bench-{i}"))
            .unwrap()
            .expect("the pool has the worktree");
        let branch = format!("baton/bench-{i}");
        let wt = claim
            .check_out(repo, Some(&branch), base, "baton run bench", false)
            .expect("lease");
        if with_work {
            work(repo, &wt.path, i);
        }
        assert!(pool::give_back(repo, &settings, &wt.path, Some(&branch), base).unwrap());
        let pooled = t.elapsed();
        // The first iteration warms both sides up.
        if i > 0 {
            sides.baseline.push(baseline);
            sides.pooled.push(pooled);
        }
    }
    pool::empty(repo, true).unwrap();
    sides
}

fn main() {
    let sizes = env_list("BATON_POOL_SIZES", &[10_000, 100_000]);
    let iters = env_list("BATON_POOL_ITERS", &[5])[0].max(1);
    let shm = Path::new("/dev/shm");
    let base = if tempfile::tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        println!("warning: /dev/shm is not usable; measuring in the temporary directory");
        std::env::temp_dir()
    };
    println!(
        "worktree pool (P1): {iters} iteration(s) per side after a warm-up, in {}",
        base.display()
    );
    // One identity and no user config for every git both sides start.
    // SAFETY: set before any thread starts.
    unsafe {
        std::env::set_var("GIT_CONFIG_GLOBAL", "/dev/null");
        std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
        std::env::set_var("GIT_AUTHOR_NAME", "Bench");
        std::env::set_var("GIT_AUTHOR_EMAIL", "bench@baton.invalid");
        std::env::set_var("GIT_COMMITTER_NAME", "Bench");
        std::env::set_var("GIT_COMMITTER_EMAIL", "bench@baton.invalid");
    }
    for files in sizes {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("baton-pool-{files}-"))
            .tempdir_in(&base)
            .unwrap();
        let root = tmp.path().join("repo");
        let wt_dir = tmp.path().join("worktrees");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&wt_dir).unwrap();
        let (a, b) = generate(&root, files);
        let repo = Repo::discover(&root).unwrap();
        println!("  {files} files, bases differing in {DIFFERING}:");
        for with_work in [false, true] {
            let s = measure(&repo, &wt_dir, [&a, &b], iters, with_work);
            let (bl, po) = (median(s.baseline), median(s.pooled));
            println!(
                "    {}: git worktree add + remove {:.0} ms, pooled lease + return {:.0} ms: {:.2}×{}",
                if with_work {
                    "with edit + snapshot"
                } else {
                    "lifecycle only     "
                },
                ms(bl),
                ms(po),
                po.as_secs_f64() / bl.as_secs_f64(),
                if !with_work && files >= 100_000 {
                    " (target ≤ 0.2×)"
                } else {
                    ""
                }
            );
        }
    }
}

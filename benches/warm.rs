//! P2: a check of `cargo build` on baton's own crate, in a run's worktree, against the
//! same incremental build in the main checkout.
//!
//! The scratch repository is a clone of this repository (its committed HEAD) under
//! `/dev/shm` when writable (this machine's `/tmp` ext4 crawls on freshly freed
//! inodes), with `[worktree] warm = ["target"]`. It is built once in the main
//! checkout (`cargo build`, cold: not timed against anything). Then:
//!
//! - **main tree**: a one-line edit of `src/ui/mod.rs` in the main checkout and
//!   `cargo build` there, timed — the incremental build the user would have run;
//! - **run 1** (a new worktree): `baton run` with an agent making another one-line
//!   edit and the check `cargo build`; the worktree is new, seeded (or not) from the
//!   main checkout's `target/` as `[worktree] warm` says; the check's time is read from
//!   the report;
//! - **run 2 and later** (a pooled worktree): the same, in the worktree run 1 returned
//!   to the pool with its `target/`.
//!
//! Ratios are each check's time over the main tree's build. Target: run 2 ≤ 1.2×.
//!
//! ```text
//! cargo bench --bench warm
//! BATON_WARM_RUNS=3 cargo bench --bench warm   # default 6: one new worktree, five pooled
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn must(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(dir: &Path, args: &[&str]) -> String {
    must(
        Command::new("git").current_dir(dir).args(args),
        &format!("git {}", args.join(" ")),
    )
}

/// One line appended to a source file: a new doc comment line, so the crate
/// rebuilds and nothing else changes.
fn edit_command(n: usize) -> String {
    format!("printf '\\n// edit {n}\\n' >> src/ui/mod.rs")
}

fn cargo_build(dir: &Path) -> std::time::Duration {
    let start = Instant::now();
    must(
        Command::new("cargo")
            .current_dir(dir)
            .args(["build", "--quiet", "--offline"])
            .env_remove("CARGO_TARGET_DIR"),
        "cargo build",
    );
    start.elapsed()
}

fn main() {
    let runs = env_number("BATON_WARM_RUNS", 6).max(2);
    let shm = Path::new("/dev/shm");
    let base: PathBuf = if tempfile::tempdir_in(shm).is_ok() {
        shm.into()
    } else {
        println!("warning: /dev/shm is not usable; measuring in the temporary directory");
        std::env::temp_dir()
    };
    let tmp = tempfile::Builder::new()
        .prefix("baton-warm-")
        .tempdir_in(&base)
        .unwrap();
    let repo = tmp.path().join("repo");
    let worktrees = tmp.path().join("worktrees");
    let own = Path::new(env!("CARGO_MANIFEST_DIR"));
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--no-hardlinks",
            &own.to_string_lossy(),
            "repo",
        ],
    );
    for (k, v) in [
        ("user.name", "Bench"),
        ("user.email", "bench@baton.invalid"),
    ] {
        git(&repo, &["config", k, v]);
    }
    std::fs::create_dir_all(repo.join(".baton")).unwrap();
    std::fs::write(
        repo.join(".baton/config.toml"),
        "[worktree]\nwarm = [\"target\"]\nwarm_copy = true\n",
    )
    .unwrap();
    git(&repo, &["add", ".baton/config.toml"]);
    git(&repo, &["commit", "-qm", "bench: warm target"]);
    println!(
        "P2: cargo build of baton's own crate after a one-line edit, in {}",
        base.display()
    );
    let cold = cargo_build(&repo);
    println!(
        "  cold build in the main checkout (setup): {:.1} s",
        cold.as_secs_f64()
    );
    // The user's own incremental build, edited and built, then put back.
    let src = repo.join("src/ui/mod.rs");
    let original = std::fs::read_to_string(&src).unwrap();
    let mut builds = vec![];
    for n in 0..3 {
        std::fs::write(&src, format!("{original}\n// the user's edit {n}\n")).unwrap();
        builds.push(cargo_build(&repo));
        std::fs::write(&src, &original).unwrap();
        cargo_build(&repo);
    }
    builds.sort();
    let main_tree = builds[1];
    println!(
        "  main tree, incremental (median of 3): {:.2} s",
        main_tree.as_secs_f64()
    );
    let baton = env!("CARGO_BIN_EXE_baton");
    let mut pooled: Vec<f64> = vec![];
    for n in 1..=runs {
        let agent = format!("cmd:{}", edit_command(n));
        let out = must(
            Command::new(baton)
                .current_dir(&repo)
                .env("BATON_WORKTREES_DIR", &worktrees)
                .env_remove("CARGO_TARGET_DIR")
                .args([
                    "run",
                    "--task",
                    "bench",
                    "--agent",
                    &agent,
                    "--check",
                    "cargo build --quiet --offline",
                    "--scope",
                    "src/**",
                    "--on-pass",
                    "revert",
                    "--json",
                ]),
            "baton run",
        );
        let report: serde_json::Value = serde_json::from_str(&out).expect("the report");
        let ms = report["checks"][0]["duration_ms"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let events = std::fs::read_to_string(
            PathBuf::from(report["journal"].as_str().unwrap()).join("events.jsonl"),
        )
        .unwrap();
        let leased = events.contains("\"leased\":true");
        println!(
            "  run {n} ({}): check {:.2} s = {:.2}× the main tree{}",
            if leased {
                "pooled worktree"
            } else {
                "new worktree"
            },
            ms / 1000.0,
            ms / 1000.0 / main_tree.as_secs_f64(),
            if n >= 2 && leased {
                " (target ≤ 1.2×)"
            } else {
                ""
            },
        );
        // How the new worktree was warmed: the worktree.warm event.
        for line in events.lines().filter(|l| l.contains("\"worktree.warm\"")) {
            let e: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            println!(
                "    warmed: {} by {} ({} files, {} bytes, {} ms)",
                e["entry"], e["method"], e["files"], e["bytes"], e["ms"]
            );
        }
        if leased {
            pooled.push(ms / 1000.0);
        }
    }
    pooled.sort_by(f64::total_cmp);
    if let Some(m) = pooled.get(pooled.len() / 2) {
        println!(
            "  pooled worktree, median of {}: {m:.2} s = {:.2}× the main tree (target ≤ 1.2×)",
            pooled.len(),
            m / main_tree.as_secs_f64()
        );
    }
}

//! Warm worktrees, end to end: a real Cargo project, built in the user's checkout,
//! then a `baton run` whose check is `cargo build -v` in the new worktree. Whether
//! the worktree's build was warm is read from cargo's own words in the check's log
//! (`Fresh unicode-width` against `Compiling unicode-width`), not from time.
//!
//! The reflink path runs on a filesystem that can reflink: scripts/test.sh mounts a
//! small XFS image and names it in `BATON_TEST_REFLINK_DIR`; without it the reflink
//! test fails. The other paths run on a filesystem that cannot (the ordinary disk,
//! or tmpfs where the ordinary disk can reflink).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Before, Bench, Ran};

/// The fixture's one dependency, as cargo names it in its progress lines.
const DEP: &str = "unicode-width v0.2.3";
/// The change the agent makes: the crate's own source, so it is rebuilt either way.
const EDIT: &str = "cmd:sed -i 's/+ 1/+ 2/' src/lib.rs";
const BUILD: &str = "cargo build -v --offline";

/// Where cargo's registry cache is: the dependency is built offline from it.
fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME is set")
}

/// True when `dir`'s filesystem clones files (`cp --reflink=always` works there).
fn can_reflink(dir: &Path) -> bool {
    let a = dir.join(".reflink-probe-a");
    let b = dir.join(".reflink-probe-b");
    let ok = std::fs::write(&a, b"probe").is_ok()
        && Command::new("cp")
            .args(["--reflink=always"])
            .arg(&a)
            .arg(&b)
            .status()
            .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    ok
}

/// A directory on a filesystem that cannot reflink: the ordinary temporary
/// directory, or tmpfs when that one can.
fn no_reflink_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if !can_reflink(&tmp) {
        return tmp;
    }
    let shm = PathBuf::from("/dev/shm");
    assert!(
        shm.is_dir() && !can_reflink(&shm),
        "no filesystem without reflink found for the no-reflink tests ({} can reflink, /dev/shm is not usable)",
        tmp.display()
    );
    shm
}

/// The Cargo fixture with `config` as its committed `.baton/config.toml`, in `parent`.
fn cargo_bench(parent: &Path, config: &str) -> Bench {
    let bench = Bench::with_fixture_in("cargo-warm", parent);
    if !config.is_empty() {
        bench.write(".baton/config.toml", config);
        bench.git(&["add", "-A"]);
        bench.git(&["commit", "-q", "-m", "baton config"]);
    }
    bench
}

/// cargo in `dir` with the bench's environment (and the real registry cache).
fn cargo(bench: &Bench, dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("cargo");
    bench.hermetic_env(&mut cmd);
    cmd.env("CARGO_HOME", cargo_home())
        .args(args)
        .current_dir(dir);
    let out = cmd.output().expect("cargo runs");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cargo {args:?} failed:\n{text}");
    text
}

/// `baton run` with the bench's environment and the real registry cache, plus `env`.
fn baton(bench: &Bench, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = bench.baton_command(args);
    cmd.env("CARGO_HOME", cargo_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("baton runs");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_args<'a>(check: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--task",
        "Widen the greeting",
        "--agent",
        EDIT,
        "--scope",
        "src/**",
        "--check",
        check,
        "--on-pass",
        "keep",
    ];
    args.extend_from_slice(extra);
    args
}

/// What baton's progress lines for `stage` said (`    warm  target/ ...`).
fn lines_of<'a>(ran: &'a Ran, stage: &str) -> Vec<&'a str> {
    let prefix = format!("{stage}  ");
    ran.stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(&prefix))
        .collect()
}

/// What the run's `cargo build -v` said in the worktree.
fn check_log(bench: &Bench) -> String {
    bench.journal_file(&bench.only_run(), "checks/01.log")
}

#[track_caller]
fn assert_dep(log: &str, word: &str) {
    let wanted = format!("{word} {DEP}");
    assert!(
        log.lines().any(|l| l.trim_start().starts_with(&wanted)),
        "cargo did not say `{wanted}` in the worktree:\n{log}"
    );
}

/// The worktree of the bench's only run, as its journal records it (`state.json`,
/// there even when the run did not finish).
fn worktree_of(bench: &Bench) -> PathBuf {
    let state: serde_json::Value =
        serde_json::from_str(&bench.journal_file(&bench.only_run(), "state.json"))
            .expect("the run's state.json is JSON");
    PathBuf::from(state["worktree"].as_str().unwrap_or_default())
}

#[test]
fn a_copied_target_makes_the_worktrees_build_incremental() {
    let bench = cargo_bench(
        &no_reflink_dir(),
        "[worktree]\nwarm = [\"target\"]\nwarm_copy = true\n",
    );
    cargo(&bench, &bench.repo, &["build", "--offline"]);
    let ran = baton(&bench, &run_args(BUILD, &[]), &[]);
    ran.expect(0);
    let warm = lines_of(&ran, "warm");
    assert_eq!(warm.len(), 1, "{}", ran.stderr);
    assert!(
        warm[0].contains("target/ copied from your checkout: no reflink on this filesystem")
            && warm[0].contains("took "),
        "{}",
        warm[0]
    );
    let log = check_log(&bench);
    assert_dep(&log, "Fresh");
    assert!(!log.contains(&format!("Compiling {DEP}")), "{log}");
    // The agent's own crate was rebuilt: the cache did not hide its change.
    assert!(log.contains("Compiling app v0.1.0"), "{log}");
    // The copy is the worktree's own: the checkout's target is as it was built.
    let wt = worktree_of(&bench);
    assert!(wt.join("target/debug").is_dir());
    assert_ne!(
        std::fs::canonicalize(wt.join("target")).unwrap(),
        std::fs::canonicalize(bench.repo.join("target")).unwrap()
    );
}

#[test]
fn without_warm_the_worktrees_build_starts_from_nothing() {
    let bench = cargo_bench(&no_reflink_dir(), "");
    cargo(&bench, &bench.repo, &["build", "--offline"]);
    let ran = baton(&bench, &run_args(BUILD, &[]), &[]);
    ran.expect(0);
    assert!(lines_of(&ran, "warm").is_empty(), "{}", ran.stderr);
    assert_dep(&check_log(&bench), "Compiling");
}

#[test]
fn without_reflink_or_warm_copy_the_worktree_starts_cold_and_says_so() {
    let bench = cargo_bench(&no_reflink_dir(), "[worktree]\nwarm = [\"target\"]\n");
    cargo(&bench, &bench.repo, &["build", "--offline"]);
    let ran = baton(&bench, &run_args(BUILD, &[]), &[]);
    ran.expect(0);
    assert_eq!(
        lines_of(&ran, "warm"),
        [
            "target/: cold start — this filesystem cannot reflink, and copying is off (`[worktree] warm_copy = true` copies)"
        ],
        "{}",
        ran.stderr
    );
    assert_dep(&check_log(&bench), "Compiling");
    // Nothing was left half made beside the worktree.
    let beside: Vec<String> = std::fs::read_dir(worktree_of(&bench).parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".warm-"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

#[test]
fn a_stale_cache_is_not_copied_and_the_run_says_why() {
    let bench = cargo_bench(
        &no_reflink_dir(),
        "[worktree]\nwarm = [\"target\"]\nwarm_copy = true\n",
    );
    cargo(&bench, &bench.repo, &["build", "--offline"]);
    // The user's Cargo.lock has moved on from the commit the run starts from.
    let lock = bench.read("Cargo.lock");
    bench.write("Cargo.lock", &format!("{lock}\n# updated\n"));
    let ran = baton(&bench, &run_args(BUILD, &[]), &[]);
    ran.expect(0);
    assert_eq!(
        lines_of(&ran, "warm"),
        [
            "target/ not copied, the cache is stale: Cargo.lock in your checkout differs from the run's base; cold start"
        ],
        "{}",
        ran.stderr
    );
    assert_dep(&check_log(&bench), "Compiling");
}

/// A target directory of `n` small files and one larger one, as a build leaves.
fn fake_target(repo: &Path, n: usize) {
    let deps = repo.join("target/debug/deps");
    std::fs::create_dir_all(&deps).unwrap();
    for i in 0..n {
        std::fs::write(deps.join(format!("lib{i}.rlib")), format!("object {i}\n")).unwrap();
    }
    std::fs::write(deps.join("big.rlib"), vec![7u8; 1 << 20]).unwrap();
}

#[test]
fn a_copy_killed_halfway_leaves_nothing_half_made() {
    let bench = cargo_bench(
        &no_reflink_dir(),
        "[worktree]\nwarm = [\"target\"]\nwarm_copy = true\n",
    );
    fake_target(&bench.repo, 200);
    // baton is killed (SIGKILL, as the OOM killer would) with one file of the copy
    // written.
    let ran = baton(
        &bench,
        &run_args("true", &[]),
        &[("BATON_CRASH_AT", "warm.copying")],
    );
    assert_eq!(ran.code, -1, "killed by a signal: {}", ran.stderr);
    let wt = worktree_of(&bench);
    assert!(wt.is_dir(), "the worktree is there for recover");
    assert!(
        !wt.join("target").exists(),
        "no half copy under the real name"
    );
    let parent = wt.parent().unwrap().to_path_buf();
    let partial: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".warm-target.tmp-"))
        .collect();
    assert_eq!(partial.len(), 1, "the copy was under way: {partial:?}");
    // The snapshot of the worktree cannot see the partial copy: it is outside it.
    assert!(!partial[0].starts_with(&wt));

    let recovered = bench.baton(&["recover"]);
    recovered.expect(0);
    // No agent ran in it: the worktree goes back to the pool, clean, and the half
    // copy is gone.
    bench.assert_clean();
    let left: Vec<PathBuf> = walk(&bench.worktrees)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".warm-"))
        .collect();
    assert!(left.is_empty(), "left in the worktrees directory: {left:?}");
    assert!(bench.stash_list().is_empty(), "{:?}", bench.stash_list());
}

/// Every file and directory under `dir` (none when it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn on_a_filesystem_that_can_reflink_the_target_is_cloned_not_copied() {
    let dir = std::env::var_os("BATON_TEST_REFLINK_DIR").map(PathBuf::from);
    let dir = dir.expect(
        "BATON_TEST_REFLINK_DIR is not set: it names a directory on a filesystem that can reflink (scripts/test.sh mounts an XFS image for it)",
    );
    assert!(
        can_reflink(&dir),
        "{} cannot reflink (`cp --reflink=always` fails there); scripts/test.sh mounts an XFS image made with `mkfs.xfs -m reflink=1`",
        dir.display()
    );
    // The checkout and the worktrees both on it; no warm_copy, so only a clone warms.
    let bench = cargo_bench(&dir, "[worktree]\nwarm = [\"target\"]\n");
    cargo(&bench, &bench.repo, &["build", "--offline"]);
    fake_target(&bench.repo, 50);
    let ran = baton(&bench, &run_args(BUILD, &[]), &[]);
    ran.expect(0);
    let warm = lines_of(&ran, "warm");
    assert_eq!(warm.len(), 1, "{}", ran.stderr);
    assert!(
        warm[0].starts_with("target/ cloned from your checkout by reflink ("),
        "{}",
        warm[0]
    );
    // The clone is a build cache cargo trusts.
    assert_dep(&check_log(&bench), "Fresh");
    let wt = worktree_of(&bench);
    let big = wt.join("target/debug/deps/big.rlib");
    assert_eq!(std::fs::read(&big).unwrap(), vec![7u8; 1 << 20]);
    // The clone shares its extents with the checkout's file: the filesystem says so.
    let out = Command::new("filefrag")
        .arg("-v")
        .arg(&big)
        .output()
        .expect("filefrag (e2fsprogs) runs");
    let extents = String::from_utf8_lossy(&out.stdout);
    assert!(extents.contains("shared"), "{extents}");
    // A write to the clone does not reach the checkout's file.
    std::fs::write(&big, b"rebuilt").unwrap();
    assert_eq!(
        std::fs::read(bench.repo.join("target/debug/deps/big.rlib")).unwrap(),
        vec![7u8; 1 << 20]
    );
}

#[test]
fn setup_runs_once_in_a_new_worktree_before_the_agent() {
    let bench = cargo_bench(
        &no_reflink_dir(),
        "[worktree]\nsetup = [\"mkdir -p target && echo ready > target/setup-ran\"]\n",
    );
    let agent = "cmd:test -f target/setup-ran && sed -i 's/+ 1/+ 2/' src/lib.rs";
    let mut args = run_args("true", &[]);
    args[4] = agent;
    let ran = baton(&bench, &args, &[]);
    ran.expect(0);
    let setup = lines_of(&ran, "setup");
    assert_eq!(setup.len(), 1, "{}", ran.stderr);
    assert!(
        setup[0].starts_with("mkdir -p target && echo ready > target/setup-ran ("),
        "{}",
        setup[0]
    );
}

#[test]
fn a_failing_setup_command_stops_the_run_with_its_output() {
    let bench = cargo_bench(
        &no_reflink_dir(),
        "[worktree]\nsetup = [\"echo 'npm ERR! could not resolve' >&2; exit 3\"]\n",
    );
    let ran = baton(&bench, &run_args("true", &[]), &[]);
    ran.expect(2);
    assert!(
        ran.stderr
            .contains("the setup command `echo 'npm ERR! could not resolve' >&2; exit 3` ([worktree] setup) failed (exit 3)"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("| npm ERR! could not resolve"),
        "{}",
        ran.stderr
    );
    // The agent never ran; the worktree whose setup failed is removed, not pooled.
    assert!(!worktree_of(&bench).exists());
    assert_eq!(
        bench.worktree_list().len(),
        1,
        "{:?}",
        bench.worktree_list()
    );
    assert!(bench.baton_branches().is_empty());
}

#[test]
fn a_warm_entry_outside_the_repository_is_refused_before_anything_starts() {
    for (entry, says) in [
        ("/home/me/target", "is absolute"),
        ("../target", "leaves the repository"),
    ] {
        let bench = cargo_bench(
            &no_reflink_dir(),
            &format!("[worktree]\nwarm = [\"target\", {entry:?}]\n"),
        );
        let before = Before::take(&bench);
        let ran = baton(&bench, &run_args("true", &[]), &[]);
        ran.expect(2);
        let error = ran.stderr.trim();
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(
            error.contains(".baton/config.toml: [worktree] warm at line 2: ")
                && error.contains(&format!("`{entry}` {says}"))
                && error.contains("relative to its root"),
            "{error}"
        );
        before.assert_nothing_started(&bench);
    }
}

#[test]
fn a_worktreeinclude_line_outside_the_repository_is_refused_before_anything_starts() {
    let bench = cargo_bench(&no_reflink_dir(), "");
    bench.write(
        ".worktreeinclude",
        "# build output\ntarget/\n../elsewhere\n",
    );
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-q", "-m", "include"]);
    let before = Before::take(&bench);
    let ran = baton(&bench, &run_args("true", &[]), &[]);
    ran.expect(2);
    let error = ran.stderr.trim();
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains(".worktreeinclude: line 3: `../elsewhere` leaves the repository"),
        "{error}"
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn init_writes_the_build_directories_it_detects_and_says_so() {
    let bench = Bench::with_fixture_in("cargo-warm", &no_reflink_dir());
    let ran = bench.baton(&["init"]);
    ran.expect(0);
    assert!(
        ran.stderr.contains(
            "warm `target/`: new worktrees get a reflink clone of it (Cargo.toml: cargo builds into target/)"
        ),
        "{}",
        ran.stderr
    );
    let config = bench.read(".baton/config.toml");
    let parsed: toml::Value = toml::from_str(&config).unwrap();
    assert_eq!(
        parsed["worktree"]["warm"],
        toml::Value::Array(vec![toml::Value::String("target".into())]),
        "{config}"
    );
}

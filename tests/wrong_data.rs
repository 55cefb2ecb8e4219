//! Stories of wrong data put in front of a user: the wrong run merged by `last`,
//! check commands recorded changed, agent-made names rewriting the terminal, empty
//! stash entries, worktrees inside the repository, a run started inside a run's own
//! worktree, and one damaged journal hiding every other run.

mod common;

use common::{Bench, FIX_ADD};

/// Runs that each write "edit N" into notes.txt and are kept, as fast as a loop
/// makes them (several share a second of their ids).
fn kept_edits(bench: &Bench, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            let agent = format!("cmd:echo 'edit {i}' > notes.txt");
            let ran = bench.baton(&[
                "run",
                "--task",
                &format!("edit {i}"),
                "--agent",
                &agent,
                "--scope",
                "notes.txt",
                "--on-pass",
                "keep",
                "--json",
            ]);
            ran.expect(0);
            ran.json()["run_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn last_is_the_run_started_last_even_within_one_second() {
    let bench = Bench::with_fixture("python-calc");
    let ids = kept_edits(&bench, 8);

    // status lists them in the order they were started.
    let listed: Vec<String> = bench
        .baton(&["status", "--json"])
        .expect(0)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids, "status lists runs in creation order");
    let seqs: Vec<u64> = bench
        .baton(&["status", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());

    bench.baton(&["merge", "last"]).expect(0);
    assert_eq!(
        bench.read("notes.txt"),
        "edit 8\n",
        "the last run was merged"
    );
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.contains(&format!("Baton-Run: {}", ids[7])),
        "{message}"
    );
}

#[test]
fn check_commands_are_recorded_exactly_as_given() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--check", "test -f README.md"]);
    ran.expect(0);
    assert_eq!(ran.json()["checks"][0]["command"], "test -f README.md");
    assert!(
        ran.stderr.contains("test -f README.md — passed"),
        "{}",
        ran.stderr
    );
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.contains("Baton-Checks: test -f README.md (passed)\n"),
        "{message}"
    );
}

#[test]
fn a_file_name_with_terminal_escapes_is_quoted_on_screen_and_exact_in_json() {
    let bench = Bench::with_fixture("python-calc");
    let name = "a\u{1b}[31mRED\u{1b}[0m.txt";
    let quoted = "\"a\\033[31mRED\\033[0m.txt\"";
    let ran = bench.run_fix(
        "cmd:printf x > \"$(printf 'a\\033[31mRED\\033[0m.txt')\"",
        &[],
    );
    ran.expect(3);
    assert!(
        !ran.stderr.contains('\u{1b}'),
        "raw escape on screen:\n{}",
        ran.stderr
    );
    assert!(ran.stderr.contains(quoted), "{}", ran.stderr);
    assert_eq!(ran.judged()[0].0, name, "JSON keeps the exact name");

    let run = bench.only_run();
    let shown = bench.baton(&["show", &run]);
    shown.expect(0);
    assert!(!shown.stdout.contains('\u{1b}'), "{}", shown.stdout);
    assert!(shown.stdout.contains(quoted), "{}", shown.stdout);
    let json = bench.baton(&["show", &run, "--json"]);
    assert_eq!(json.json()["scope"]["paths"][0]["path"], name);
}

#[test]
fn a_failed_run_that_changed_nothing_adds_no_stash_entry() {
    let bench = Bench::with_fixture("python-calc");
    let before = bench.files();
    // The agent fails; then one times out; neither wrote anything.
    let ran = bench.run_fix("cmd:exit 1", &[]);
    ran.expect(4);
    let message = ran.json()["outcome"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("nothing was stashed"), "{message}");
    assert!(!message.contains("git stash apply"), "{message}");
    bench
        .run_fix("cmd:sleep 30", &["--timeout", "1s"])
        .expect(4);
    assert!(bench.stash_list().is_empty(), "{:?}", bench.stash_list());
    assert_eq!(bench.files(), before);
    bench.assert_clean();
}

#[test]
fn a_worktrees_directory_inside_the_repository_is_refused() {
    let bench = Bench::with_fixture("python-calc");
    let before = bench.files();
    for dir in [
        "wts",
        "./sub/../wts",
        &bench.repo.join("inside").display().to_string(),
    ] {
        let out = bench
            .baton_command(&common::fix_args(FIX_ADD, &[]))
            .env("BATON_WORKTREES_DIR", dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(baton::exit::USAGE), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("inside the repository"), "{stderr}");
        assert!(stderr.contains("BATON_WORKTREES_DIR"), "{stderr}");
    }
    bench.write(".baton/config.toml", "[worktree]\ndir = \"build/wt\"\n");
    let out = bench
        .baton_command(&common::fix_args(FIX_ADD, &[]))
        .env_remove("BATON_WORKTREES_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(baton::exit::USAGE), "{stderr}");
    assert!(stderr.contains("inside the repository"), "{stderr}");
    assert!(stderr.contains("build/wt"), "{stderr}");
    std::fs::remove_dir_all(bench.repo.join(".baton")).unwrap();
    assert_eq!(
        bench.files(),
        before,
        "no directory was made in the user's tree"
    );
    assert!(bench.run_ids().is_empty(), "no run was started");
}

#[test]
fn a_relative_worktrees_directory_outside_is_stored_absolute_and_found_from_a_subdirectory() {
    let bench = Bench::with_fixture("python-calc");
    let out = bench
        .baton_command(&common::fix_args(FIX_ADD, &["--on-pass", "keep", "--json"]))
        .env("BATON_WORKTREES_DIR", "../elsewhere")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let worktree = std::path::PathBuf::from(report["worktree"].as_str().unwrap());
    assert!(worktree.is_absolute(), "{}", worktree.display());
    assert!(
        worktree.starts_with(bench.root.join("elsewhere")),
        "{}",
        worktree.display()
    );

    let ran = bench.baton_in(&bench.repo.join("docs"), &["merge", "last"]);
    ran.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn baton_started_inside_a_kept_runs_worktree_refuses_and_names_the_run() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--on-pass", "keep"]);
    ran.expect(0);
    let run = ran.json()["run_id"].as_str().unwrap().to_string();
    let worktree = std::path::PathBuf::from(ran.json()["worktree"].as_str().unwrap());
    let branch_before = bench.git(&["rev-parse", &format!("baton/{run}")]);

    let nested = bench.baton_in(
        &worktree,
        &[
            "run",
            "--task",
            "nested",
            "--agent",
            "cmd:echo nested > n.txt",
        ],
    );
    nested.expect(baton::exit::USAGE);
    assert!(nested.stderr.contains(&run), "{}", nested.stderr);
    assert!(nested.stderr.contains("cd back to"), "{}", nested.stderr);
    assert_eq!(nested.stderr.trim().lines().count(), 1, "{}", nested.stderr);
    assert_eq!(
        bench.git(&["rev-parse", &format!("baton/{run}")]),
        branch_before,
        "nothing was committed onto the kept run's branch"
    );
    assert!(!worktree.join("n.txt").exists());
    assert_eq!(bench.run_ids().len(), 1, "no second run was started");
    // Reading the journal from there is fine.
    bench.baton_in(&worktree, &["status"]).expect(0);
}

#[test]
fn one_damaged_journal_is_shown_as_damaged_and_the_others_still_work() {
    let bench = Bench::with_fixture("python-calc");
    let ids = kept_edits(&bench, 2);
    let damaged = bench.runs_dir().join(&ids[0]).join("state.json");
    std::fs::write(&damaged, "{ not json").unwrap();

    let status = bench.baton(&["status"]);
    status.expect(0);
    assert!(status.stdout.contains(&ids[1]), "{}", status.stdout);
    assert!(status.stdout.contains("damaged"), "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains(&bench.runs_dir().join(&ids[0]).display().to_string()),
        "names where it is: {}",
        status.stdout
    );
    let json = bench.baton(&["status", "--json"]).expect(0).json();
    assert_eq!(json.as_array().unwrap().len(), 2);

    let shown = bench.baton(&["show", &ids[0]]);
    shown.expect(0);
    assert!(shown.stdout.contains("damaged"), "{}", shown.stdout);
    bench.baton(&["show", "last"]).expect(0);

    let cleaned = bench.baton(&["clean", "--force"]);
    cleaned.expect(0);
    assert!(cleaned.stderr.contains("damaged"), "{}", cleaned.stderr);
    assert!(
        !bench
            .baton_branches()
            .contains(&format!("baton/{}", ids[1])),
        "the healthy run was still cleaned: {:?}",
        bench.baton_branches()
    );
}

//! Stories of a delegation run with the `cmd:` agent, against real git repositories.
//! Each test is one user's run, and asserts what that user would check afterwards.

mod common;

use common::{Bench, FIX_ADD, PYTEST};

#[test]
fn an_in_scope_fix_is_merged_as_a_verified_commit() {
    let bench = Bench::with_fixture("python-calc");
    let before = bench.head();

    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add() so it adds",
        "--agent",
        FIX_ADD,
        "--scope",
        "calc.py",
        "--check",
        PYTEST,
        "--json",
    ]);
    ran.expect(0);

    assert!(bench.read("calc.py").contains("return a + b"));
    assert!(
        bench
            .read("calc.py")
            .contains("def sub(a, b):\n    return a - b")
    );
    assert_eq!(
        bench.git(&["rev-parse", "HEAD~1"]).trim(),
        before,
        "one commit on top of the old HEAD"
    );
    let message = bench.git(&["log", "-1", "--format=%B"]);
    let run = bench.only_run();
    assert!(message.starts_with("Fix add() so it adds\n"), "{message}");
    assert!(
        message.contains(&format!("Baton-Run: {run}\n")),
        "{message}"
    );
    assert!(message.contains("Baton-Agent: cmd:sed"), "{message}");
    assert!(
        message.contains("Baton-Checks: python3 -m pytest -q (passed)"),
        "{message}"
    );
    assert!(
        message.contains("Baton-Scope: calc.py (1 file changed"),
        "{message}"
    );
    assert_eq!(
        bench
            .git(&["show", "--name-only", "--format=", "HEAD"])
            .trim(),
        "calc.py"
    );
    assert_eq!(
        bench.git(&["status", "--porcelain"]),
        "",
        "the user's tree is clean"
    );
    bench.assert_clean();

    let report = ran.json();
    assert_eq!(report["verdict"], "passed");
    assert_eq!(report["outcome"]["action"], "merged");
    assert_eq!(report["checks"][0]["status"], "passed");
    assert_eq!(report["scope"]["paths"][0]["path"], "calc.py");
    assert_eq!(bench.report(&run)["verdict"], "passed");
    let events = bench.journal_file(&run, "events.jsonl");
    for event in [
        "run.started",
        "worktree.created",
        "agent.finished",
        "check.finished",
        "scope.judged",
        "outcome",
        "run.finished",
    ] {
        assert!(
            events.contains(&format!("\"event\":\"{event}\"")),
            "missing {event} in\n{events}"
        );
    }
    assert!(
        bench
            .journal_file(&run, "diff.patch")
            .contains("+    return a + b")
    );
    assert!(
        bench
            .journal_file(&run, "handoff.md")
            .starts_with("+++\ntask = \"Fix add() so it adds\"")
    );
    let log = bench.journal_file(&run, "checks/01.log");
    assert!(log.contains("[100%]") && !log.contains("FAILED"), "{log}");
}

#[test]
fn an_out_of_scope_edit_is_stashed_and_the_user_tree_is_untouched() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    let index = bench.index();
    let head = bench.head();

    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &format!("{FIX_ADD} && echo 'rewritten' > docs/notes.md"),
        "--scope",
        "calc.py",
        "--check",
        PYTEST,
    ]);
    ran.expect(3);
    assert!(
        ran.stderr.contains("docs/notes.md: outside the scope"),
        "{}",
        ran.stderr
    );

    assert_eq!(bench.files(), files, "the user's files are byte-identical");
    assert_eq!(bench.index(), index);
    assert_eq!(bench.head(), head);
    let run = bench.only_run();
    assert_eq!(bench.stash_list(), [format!("baton {run}: Fix add()")]);
    bench.assert_clean();

    // The stash holds the whole change, and `git stash apply` brings it back.
    bench.git(&["stash", "apply"]);
    assert_eq!(bench.read("docs/notes.md"), "rewritten\n");
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn a_denied_path_inside_the_scope_is_a_violation() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Tidy the notes",
        "--agent",
        "cmd:echo more >> docs/notes.md",
        "--scope",
        "**",
        "--deny",
        "docs/**",
        "--on-fail",
        "revert",
        "--json",
    ]);
    ran.expect(3);
    let report = ran.json();
    assert_eq!(report["scope"]["paths"][0]["verdict"], "denied");
    assert_eq!(report["scope"]["paths"][0]["by"], "docs/**");
    assert_eq!(report["outcome"]["action"], "reverted");
    assert!(!bench.read("docs/notes.md").contains("more"));
    assert!(bench.stash_list().is_empty());
    bench.assert_clean();
}

#[test]
fn a_failing_check_stashes_the_change_and_exits_1() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        "cmd:sed -i '0,/return a - b/s//return a * b/' calc.py",
        "--scope",
        "calc.py",
        "--check",
        PYTEST,
        "--check",
        "echo never runs",
        "--json",
    ]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(report["verdict"], "checks_failed");
    assert_eq!(report["checks"][0]["status"], "failed");
    assert_eq!(report["checks"][1]["status"], "skipped");
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing landed"
    );
    assert_eq!(bench.stash_list().len(), 1);
    bench.git(&["stash", "apply"]);
    assert!(bench.read("calc.py").contains("return a * b"));
    let run = bench.only_run();
    assert!(
        bench
            .journal_file(&run, "checks/01.log")
            .contains("FAILED test_calc.py::test_add")
    );
}

#[test]
fn an_agent_that_changes_nothing_leaves_nothing_behind() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    let ran = bench.baton(&[
        "run",
        "--task",
        "Do nothing",
        "--agent",
        "cmd:true",
        "--json",
    ]);
    ran.expect(4);
    assert_eq!(ran.json()["verdict"], "no_change");
    assert_eq!(ran.json()["outcome"]["action"], "discarded");
    assert_eq!(bench.files(), files);
    assert!(bench.stash_list().is_empty());
    bench.assert_clean();
}

#[test]
fn a_timed_out_agent_keeps_its_partial_work_in_a_stash() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &format!("{FIX_ADD} && sleep 60"),
        "--scope",
        "calc.py",
        "--timeout",
        "1s",
        "--json",
    ]);
    ran.expect(4);
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "timed_out");
    assert_eq!(report["verdict"], "agent_failed");
    assert_eq!(
        report["scope"]["paths"][0]["path"], "calc.py",
        "the partial change was judged"
    );
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing unverified landed"
    );
    assert_eq!(bench.stash_list().len(), 1);
    bench.git(&["stash", "apply"]);
    assert!(
        bench.read("calc.py").contains("return a + b"),
        "the partial work is kept"
    );
    bench.assert_clean();
}

#[test]
fn an_idle_agent_is_stopped_by_the_idle_timeout() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &format!("{FIX_ADD} && echo thinking && sleep 60"),
        "--idle-timeout",
        "1s",
        "--timeout",
        "5m",
        "--on-fail",
        "keep",
        "--json",
    ]);
    ran.expect(4);
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "idle");
    assert_eq!(report["outcome"]["action"], "kept");
    let run = bench.only_run();
    assert_eq!(bench.baton_branches(), [format!("baton/{run}")]);
    let worktree = report["worktree"].as_str().unwrap();
    assert!(
        std::fs::read_to_string(format!("{worktree}/calc.py"))
            .unwrap()
            .contains("a + b")
    );
    assert!(
        bench
            .journal_file(&run, "events.jsonl")
            .contains("\"line\":\"thinking\"")
    );
}

#[test]
fn uncommitted_changes_that_overlap_the_change_stop_the_merge_and_lose_nothing() {
    let bench = Bench::with_fixture("python-calc");
    bench.write("calc.py", "# my own work in progress\n");
    bench.git(&["add", "calc.py"]);
    bench.write("calc.py", "# my own work in progress, edited again\n");
    let files = bench.files();
    let index = bench.index();
    let head = bench.head();

    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        FIX_ADD,
        "--scope",
        "calc.py",
        "--check",
        PYTEST,
        "--json",
    ]);
    ran.expect(5);
    assert!(ran.stderr.contains("uncommitted changes"), "{}", ran.stderr);
    assert!(ran.stderr.contains("calc.py"), "{}", ran.stderr);
    assert_eq!(bench.files(), files, "the user's edits are intact");
    assert_eq!(bench.index(), index, "the user's staged change is intact");
    assert_eq!(bench.head(), head);
    let report = ran.json();
    assert_eq!(report["outcome"]["action"], "conflict");
    assert_eq!(report["outcome"]["paths"][0], "calc.py");

    // The run is kept; once the user commits their work elsewhere... here they drop it,
    // and the same run lands without running the agent again.
    let run = bench.only_run();
    assert_eq!(bench.baton_branches(), [format!("baton/{run}")]);
    bench.git(&["checkout", "-q", "HEAD", "--", "calc.py"]);
    bench.baton(&["merge", &run]).expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    bench.assert_clean();
}

#[test]
fn uncommitted_changes_elsewhere_survive_a_merge() {
    let bench = Bench::with_fixture("python-calc");
    bench.write("README.md", "my edit to the readme\n");
    bench.write("scratch.txt", "an untracked file of mine\n");
    bench.write("docs/notes.md", "staged notes\n");
    bench.git(&["add", "docs/notes.md"]);

    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--scope",
            "calc.py",
            "--check",
            PYTEST,
        ])
        .expect(0);

    assert!(bench.read("calc.py").contains("return a + b"));
    assert_eq!(bench.read("README.md"), "my edit to the readme\n");
    assert_eq!(bench.read("scratch.txt"), "an untracked file of mine\n");
    assert_eq!(bench.read("docs/notes.md"), "staged notes\n");
    let status = bench.git(&["status", "--porcelain"]);
    assert!(status.contains(" M README.md"), "{status}");
    assert!(
        status.contains("M  docs/notes.md"),
        "still staged: {status}"
    );
    assert!(status.contains("?? scratch.txt"), "{status}");
    assert_eq!(
        bench
            .git(&["show", "--name-only", "--format=", "HEAD"])
            .trim(),
        "calc.py"
    );
}

#[test]
fn include_dirty_starts_from_the_users_uncommitted_work() {
    let bench = Bench::with_fixture("python-calc");
    let head = bench.head();
    // Work in progress: a new function, not committed, and a new untracked test.
    let wip = bench.read("calc.py") + "\n\ndef mul(a, b):\n    return a * b\n";
    bench.write("calc.py", &wip);
    bench.write(
        "test_mul.py",
        "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    );

    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        // The agent only succeeds if it sees the user's uncommitted work.
        &format!(
            "cmd:grep -q 'def mul' calc.py && test -f test_mul.py && {}",
            &FIX_ADD[4..]
        ),
        "--scope",
        "calc.py",
        "--check",
        PYTEST,
        "--include-dirty",
        "--json",
    ]);
    ran.expect(0);
    assert_eq!(ran.json()["outcome"]["action"], "applied");
    let calc = bench.read("calc.py");
    assert!(calc.contains("return a + b"), "{calc}");
    assert!(calc.contains("def mul(a, b)"), "{calc}");
    assert!(bench.read("test_mul.py").contains("test_mul"));
    assert_eq!(
        bench.head(),
        head,
        "nothing was committed on top of the user's uncommitted work"
    );
    let run = bench.only_run();
    let patch = bench.journal_file(&run, "diff.patch");
    assert!(
        patch.contains("+    return a + b") && !patch.contains("mul"),
        "only the agent's change is judged:\n{patch}"
    );
    bench.assert_clean();
}

#[test]
fn apply_leaves_the_change_uncommitted() {
    let bench = Bench::with_fixture("python-calc");
    let head = bench.head();
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--check",
            PYTEST,
            "--apply",
        ])
        .expect(0);
    assert_eq!(bench.head(), head);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert_eq!(
        bench.git(&["diff", "--cached", "--name-only"]).trim(),
        "calc.py"
    );
    bench.assert_clean();
}

#[test]
fn revert_discards_the_change_but_the_journal_keeps_the_patch() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--check",
            PYTEST,
            "--on-pass",
            "revert",
        ])
        .expect(0);
    assert_eq!(bench.files(), files);
    assert!(bench.stash_list().is_empty());
    bench.assert_clean();
    let run = bench.only_run();
    assert!(
        bench
            .journal_file(&run, "diff.patch")
            .contains("+    return a + b")
    );
    assert_eq!(bench.report(&run)["outcome"]["action"], "reverted");
}

#[test]
fn a_kept_run_can_be_merged_later() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        FIX_ADD,
        "--check",
        PYTEST,
        "--on-pass",
        "keep",
        "--json",
    ]);
    ran.expect(0);
    let run = bench.only_run();
    assert_eq!(ran.json()["outcome"]["action"], "kept");
    assert_eq!(bench.baton_branches(), [format!("baton/{run}")]);
    assert_eq!(bench.worktree_count(), 2);
    assert!(bench.read("calc.py").contains("return a - b"));

    let status = bench.baton(&["status"]);
    status.expect(0);
    assert!(
        status.stdout.contains(&run) && status.stdout.contains("kept"),
        "{}",
        status.stdout
    );

    bench.baton(&["merge", &run[..12]]).expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert!(
        bench
            .git(&["log", "-1", "--format=%B"])
            .contains(&format!("Baton-Run: {run}"))
    );
    bench.assert_clean();
    assert_eq!(bench.report(&run)["outcome"]["action"], "merged");
}

#[test]
fn a_kept_run_edited_by_hand_is_verified_again_before_it_lands() {
    let bench = Bench::with_fixture("python-calc");
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--scope",
            "calc.py",
            "--check",
            PYTEST,
            "--on-pass",
            "keep",
        ])
        .expect(0);
    let run = bench.only_run();
    let worktree = bench.report(&run)["worktree"].as_str().unwrap().to_string();
    // Someone breaks it in the worktree; the merge must notice.
    std::fs::write(
        format!("{worktree}/calc.py"),
        "def add(a, b):\n    return 0\n",
    )
    .unwrap();
    let ran = bench.baton(&["merge", &run]);
    ran.expect(1);
    assert!(ran.stderr.contains("did not pass"), "{}", ran.stderr);
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing landed"
    );
    // It can still be parked.
    bench.baton(&["stash", &run]).expect(0);
    assert_eq!(bench.stash_list().len(), 1);
    bench.assert_clean();
}

#[test]
fn clean_removes_finished_runs_but_keeps_kept_work_unless_forced() {
    let bench = Bench::with_fixture("python-calc");
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--on-pass",
            "keep",
        ])
        .expect(0);
    bench.baton(&["clean"]).expect(0);
    assert_eq!(
        bench.baton_branches().len(),
        1,
        "a kept run is not cleaned without --force"
    );
    assert_eq!(bench.worktree_count(), 2);
    bench.baton(&["clean", "--force"]).expect(0);
    bench.assert_clean();
    assert!(bench.read("calc.py").contains("return a - b"));
}

#[test]
fn the_agent_gets_the_handoff_and_a_scrubbed_environment() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Report the environment",
        "--agent",
        "cmd:{ echo \"run=$BATON_RUN_ID\"; echo \"gitdir=${GIT_DIR:-unset}\"; echo \"wt=$BATON_WORKTREE\"; head -1 \"$BATON_HANDOFF\"; } > env.txt",
        "--on-pass",
        "keep",
        "--json",
    ]);
    ran.expect(0);
    let report = ran.json();
    let wt = report["worktree"].as_str().unwrap();
    let env = std::fs::read_to_string(format!("{wt}/env.txt")).unwrap();
    let run = bench.only_run();
    assert_eq!(env, format!("run={run}\ngitdir=unset\nwt={wt}\n+++\n"));
    assert!(
        !wt.starts_with(bench.repo.to_str().unwrap()),
        "the worktree lives outside the repository"
    );
    assert_eq!(report["scope"]["defaulted_to_everything"], true);
}

#[test]
fn an_agent_that_commits_renames_and_deletes_is_judged_on_the_whole_change() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Reorganise",
        "--agent",
        "cmd:git mv docs/notes.md docs/NOTES.md && git commit -qm 'agent commit' && git rm -q README.md && chmod +x calc.py && echo new > extra.txt",
        "--scope",
        "docs/**",
        "--scope",
        "calc.py",
        "--on-fail",
        "revert",
        "--json",
    ]);
    ran.expect(3);
    let report = ran.json();
    let paths = ran.judged();
    let expect = |path: &str, change: &str, verdict: &str| {
        assert!(
            paths.contains(&(path.into(), change.into(), verdict.into())),
            "{path} {change} {verdict} not in {paths:?}"
        )
    };
    expect("README.md", "deleted", "outside_scope");
    expect("calc.py", "modified", "allowed");
    expect("docs/NOTES.md", "renamed", "allowed");
    expect("extra.txt", "added", "outside_scope");
    let calc = report["scope"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "calc.py")
        .unwrap()
        .clone();
    assert_eq!(calc["mode"], "100644 -> 100755");
    bench.assert_clean();
}

#[test]
fn a_symlink_leaving_the_repository_is_a_violation_whatever_the_globs() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Link",
        "--agent",
        "cmd:ln -s ../../../etc/passwd docs/passwd && ln -s notes.md docs/inside",
        "--scope",
        "docs/**",
        "--on-fail",
        "revert",
        "--json",
    ]);
    ran.expect(3);
    let report = ran.json();
    let paths = report["scope"]["paths"].as_array().unwrap();
    let verdict = |name: &str| paths.iter().find(|p| p["path"] == name).unwrap()["verdict"].clone();
    assert_eq!(verdict("docs/passwd"), "symlink_escapes");
    assert_eq!(verdict("docs/inside"), "allowed");
    assert!(std::fs::symlink_metadata(bench.repo.join("docs/passwd")).is_err());
}

#[test]
fn a_rust_crate_fix_is_verified_with_cargo_and_merged() {
    let bench = Bench::with_fixture("rust-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add",
        "--agent",
        "cmd:sed -i 's/a - b/a + b/' src/lib.rs",
        "--scope",
        "src/**/*.rs",
        "--check",
        "cargo test --offline --quiet",
        "--json",
    ]);
    ran.expect(0);
    assert!(bench.read("src/lib.rs").contains("a + b"));
    assert!(
        !bench.repo.join("target").exists(),
        "the build ran in the worktree, not in the user's tree"
    );
    assert_eq!(ran.json()["checks"][0]["status"], "passed");
    bench.assert_clean();
}

#[test]
fn a_same_size_edit_is_seen_whenever_the_agent_makes_it() {
    // An in-place rewrite keeps the inode and the size. Made within the second of the
    // checkout, only a content check can see it; made later, the timestamps can. The
    // agent then works on for a while, so the change is judged seconds later.
    let bench = Bench::with_fixture("python-calc");
    for delay in ["0", "1.1"] {
        let agent = format!(
            "cmd:sleep {delay} && tr N M < docs/notes.md > n.tmp && cat n.tmp > docs/notes.md && rm n.tmp && sleep 2"
        );
        let ran = bench.baton(&[
            "run",
            "--task",
            "Rewrite the notes",
            "--agent",
            &agent,
            "--on-pass",
            "revert",
            "--json",
        ]);
        ran.expect(0);
        assert_eq!(
            ran.json()["scope"]["paths"][0]["path"],
            "docs/notes.md",
            "edit after {delay}s"
        );
    }
}

#[test]
fn ctrl_c_stops_the_agent_saves_its_work_and_exits_130() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    let mut child = bench
        .baton_command(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            &format!("{FIX_ADD} && echo edited && sleep 60 && echo never > late.txt"),
            "--scope",
            "calc.py",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the agent has made its edit, as the journal shows.
    let mut seen = false;
    for _ in 0..300 {
        if let Some(run) = bench.run_ids().first() {
            if bench
                .journal_file(run, "events.jsonl")
                .contains("\"line\":\"edited\"")
            {
                seen = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "the agent never reported its edit");
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(130));
    assert_eq!(bench.files(), files, "the user's tree is as it was");
    let run = bench.only_run();
    assert_eq!(bench.stash_list(), [format!("baton {run}: Fix add()")]);
    bench.git(&["stash", "apply"]);
    assert!(
        bench.read("calc.py").contains("return a + b"),
        "the partial work was saved"
    );
    assert!(!bench.repo.join("late.txt").exists());
    bench.assert_clean();
    let report = bench.report(&run);
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["agent_result"]["status"], "interrupted");
}

#[test]
fn a_kept_run_lands_on_a_branch_that_moved_on_with_a_three_way_merge() {
    let bench = Bench::with_fixture("python-calc");
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--check",
            PYTEST,
            "--on-pass",
            "keep",
        ])
        .expect(0);
    let run = bench.only_run();
    // Meanwhile the user commits elsewhere in the same file and in another file.
    let calc = bench
        .read("calc.py")
        .replace("def sub(a, b):", "def sub(a, b):  # subtract");
    bench.write("calc.py", &calc);
    bench.write("README.md", "a newer readme\n");
    bench.git(&["commit", "-qam", "user work"]);
    let user_commit = bench.head();

    bench.baton(&["merge", &run]).expect(0);
    assert_eq!(
        bench.git(&["rev-parse", "HEAD~1"]).trim(),
        user_commit,
        "landed on top of the user's commit"
    );
    let calc = bench.read("calc.py");
    assert!(
        calc.contains("return a + b") && calc.contains("# subtract"),
        "{calc}"
    );
    assert_eq!(bench.read("README.md"), "a newer readme\n");
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.contains(&format!("Baton-Run: {run}"))
            && message.contains("Baton-Verified-Commit: "),
        "{message}"
    );
    assert_eq!(bench.git(&["status", "--porcelain"]), "");
    bench.assert_clean();
}

#[test]
fn a_kept_run_that_conflicts_with_new_commits_writes_nothing_and_stays_kept() {
    let bench = Bench::with_fixture("python-calc");
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--on-pass",
            "keep",
        ])
        .expect(0);
    let run = bench.only_run();
    let calc = bench
        .read("calc.py")
        .replacen("return a - b", "return b + a", 1);
    bench.write("calc.py", &calc);
    bench.git(&["commit", "-qam", "the user fixed it their way"]);
    let head = bench.head();
    let files = bench.files();

    let ran = bench.baton(&["merge", &run, "--json"]);
    ran.expect(5);
    assert!(
        ran.stderr.contains("conflicts") && ran.stderr.contains("calc.py"),
        "{}",
        ran.stderr
    );
    assert_eq!(bench.head(), head);
    assert_eq!(bench.files(), files);
    assert_eq!(ran.json()["outcome"]["action"], "conflict");
    assert_eq!(
        bench.baton_branches(),
        [format!("baton/{run}")],
        "the run is kept for another decision"
    );
    // It can still be parked.
    bench.baton(&["stash", &run]).expect(0);
    bench.assert_clean();
}

#[test]
fn a_merge_onto_a_detached_head_moves_head_only() {
    let bench = Bench::with_fixture("python-calc");
    let head = bench.head();
    bench.git(&["checkout", "-q", "--detach"]);
    bench
        .baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            FIX_ADD,
            "--check",
            PYTEST,
        ])
        .expect(0);
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), head);
    assert_eq!(
        bench.git(&["rev-parse", "main"]).trim(),
        head,
        "the branch did not move"
    );
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn git_files_secrets_and_lock_files_are_denied_by_default_unless_the_scope_names_them() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Tidy",
        "--agent",
        "cmd:echo '*.tmp' >> .gitignore && echo KEY=1 > .env && mkdir -p .github && echo on > .github/ci.yml",
        "--on-fail",
        "revert",
        "--json",
    ]);
    ran.expect(3);
    let report = ran.json();
    for p in report["scope"]["paths"].as_array().unwrap() {
        assert_eq!(p["verdict"], "denied", "{p}");
    }
    assert_eq!(report["scope"]["paths"].as_array().unwrap().len(), 3);
    bench.assert_clean();

    // Named in the scope, the same edit is allowed.
    let ran = bench.baton(&[
        "run",
        "--task",
        "Ignore tmp files",
        "--agent",
        "cmd:echo '*.tmp' >> .gitignore",
        "--scope",
        ".gitignore",
    ]);
    ran.expect(0);
    assert!(bench.read(".gitignore").contains("*.tmp"));
}

#[test]
fn a_user_in_the_middle_of_a_merge_is_told_so_and_nothing_is_written() {
    let bench = Bench::with_fixture("python-calc");
    bench.git(&["checkout", "-q", "-b", "other"]);
    bench.write("README.md", "theirs\n");
    bench.git(&["commit", "-qam", "theirs"]);
    bench.git(&["checkout", "-q", "main"]);
    bench.write("README.md", "ours\n");
    bench.git(&["commit", "-qam", "ours"]);
    let mut merge = std::process::Command::new("git");
    merge
        .args(["merge", "-q", "other"])
        .current_dir(&bench.repo);
    bench.hermetic_env(&mut merge);
    assert!(!merge.status().unwrap().success(), "the merge conflicts");
    let files = bench.files();
    let index = bench.index();

    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        FIX_ADD,
        "--check",
        PYTEST,
    ]);
    ran.expect(5);
    assert!(
        ran.stderr.contains("in the middle of a merge"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        bench.files(),
        files,
        "the conflicted tree is as the user left it"
    );
    assert_eq!(bench.index(), index);
    assert!(bench.repo.join(".git/MERGE_HEAD").exists());
    assert_eq!(bench.baton_branches().len(), 1, "the run is kept for later");
}

#[test]
fn an_instant_same_size_edit_is_seen_every_time() {
    // A shell builtin rewrites the file in place a moment after the checkout: the file
    // time, from the kernel's coarse clock, can be earlier than the time baton read
    // when the agent started.
    let bench = Bench::with_fixture("python-calc");
    for _ in 0..8 {
        let ran = bench.baton(&[
            "run",
            "--task",
            "Shout",
            "--agent",
            "cmd:printf 'Motes: add and sub take two numbers and return a number.\\n' > docs/notes.md",
            "--on-pass",
            "revert",
            "--json",
        ]);
        ran.expect(0);
        assert_eq!(ran.json()["scope"]["paths"][0]["path"], "docs/notes.md");
    }
}

#[test]
fn ask_lets_the_user_choose_at_a_terminal() {
    use std::io::Write;
    let bench = Bench::with_fixture("python-calc");
    let baton = env!("CARGO_BIN_EXE_baton");
    // `script` gives baton a terminal; the answer is typed into it.
    let mut cmd = std::process::Command::new("script");
    cmd.args([
        "-qec",
        &format!("{baton} run --task 'Fix add()' --agent \"{FIX_ADD}\" --check '{PYTEST}' --ask"),
        "/dev/null",
    ])
    .current_dir(&bench.repo)
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped());
    bench.hermetic_env(&mut cmd);
    let mut child = cmd.spawn().expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"k\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("The run passed. [m]erge, [s]tash, [r]evert or [k]eep?"),
        "{screen}"
    );
    let run = bench.only_run();
    assert_eq!(bench.report(&run)["outcome"]["action"], "kept");
    assert_eq!(bench.baton_branches(), [format!("baton/{run}")]);
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing landed"
    );
}

#[test]
fn a_background_process_left_by_the_agent_is_killed_and_reported() {
    let bench = Bench::with_fixture("python-calc");
    let marker = bench.root.join("still-alive");
    let agent = format!(
        "cmd:{} && (sleep 3; touch {}) > /dev/null 2>&1 & echo started",
        &FIX_ADD[4..],
        marker.display()
    );
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &agent,
        "--check",
        PYTEST,
        "--json",
    ]);
    ran.expect(0);
    let warnings = ran.json()["warnings"].to_string();
    assert!(warnings.contains("background process"), "{warnings}");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "the agent's background process outlived the run"
    );
    assert!(bench.read("calc.py").contains("return a + b"));
}

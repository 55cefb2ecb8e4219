//! The fault matrix: baton killed at every point of a landing and at random points of
//! whole runs, runs racing each other, live runs next to `clean` and `recover`. After
//! every fault the same invariants are checked (see [`Before`]): the user's tree,
//! index and branches are byte-identical to before, or hold exactly the landed change;
//! the agent's change can be found (landed, stashed, kept, or in the journal's patch);
//! and after `baton clean` no worktree or `baton/*` branch is left.
//!
//! `BATON_CRASH_AT=<point>` makes baton SIGKILL itself at a named point, as a power cut
//! or the OOM killer would; the random loop kills it from outside.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Before, Bench, FIX_ADD, FIXED, PYTEST, fix_args};

/// `baton recover`, which must succeed.
#[track_caller]
fn recover(bench: &Bench) -> String {
    let ran = bench.baton(&["recover"]);
    ran.expect(0);
    ran.stderr
}

/// `baton clean`, then nothing of baton's is left.
#[track_caller]
fn clean(bench: &Bench) {
    bench.baton(&["clean"]).expect(0);
    bench.assert_clean();
}

/// A run of the fixture's fix that SIGKILLs itself at `point`.
fn crash_at(bench: &Bench, point: &str, extra: &[&str]) {
    let mut args = fix_args(FIX_ADD, &["--check", "grep -q 'a + b' calc.py"]);
    args.extend_from_slice(extra);
    let status = bench
        .baton_command(&args)
        .env("BATON_CRASH_AT", point)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), None, "baton was killed at {point}");
}

fn state(bench: &Bench, run: &str) -> serde_json::Value {
    let text = bench.journal_file(run, "state.json");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_merge_killed_before_it_touched_anything_is_rolled_back_and_can_land_later() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    crash_at(&bench, "landing.intent", &[]);
    let run = bench.only_run();

    let status = bench.baton(&["status"]);
    assert!(
        status.stdout.contains("interrupted (outcome)"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("baton recover"), "{}", status.stdout);
    let said = recover(&bench);
    assert!(said.contains("nothing of it is in your tree"), "{said}");
    before.assert_untouched(&bench);
    assert_eq!(state(&bench, &run)["outcome"]["action"], "kept");

    // The change was kept, so the user can still land it.
    bench.baton(&["merge", &run]).expect(0);
    before.assert_fix_landed(&bench);
    clean(&bench);
}

#[test]
fn a_merge_killed_after_its_tree_switch_is_finished_by_recover() {
    for point in ["landing.switched", "landing.ref", "landing.removed"] {
        let bench = Bench::with_fixture("python-calc");
        let before = Before::take(&bench);
        crash_at(&bench, point, &[]);
        let run = bench.only_run();

        let said = recover(&bench);
        assert!(said.contains("merged"), "{point}: {said}");
        before.assert_fix_landed(&bench);
        let report = bench.report(&run);
        assert_eq!(report["outcome"]["action"], "merged", "{point}");
        assert_eq!(report["exit_code"], 0, "{point}");
        // A second recover has nothing left to do.
        assert!(recover(&bench).contains("nothing to recover"), "{point}");
        clean(&bench);
    }
}

#[test]
fn files_half_written_by_a_killed_landing_are_put_back() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    crash_at(&bench, "landing.intent", &[]);
    // What `git read-tree -m -u` leaves when it dies after writing the files but
    // before writing the index: the landed content on disk, the old index.
    let run = bench.only_run();
    let worktree = state(&bench, &run)["worktree"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::copy(
        std::path::Path::new(&worktree).join("calc.py"),
        bench.repo.join("calc.py"),
    )
    .unwrap();

    recover(&bench);
    before.assert_untouched(&bench);
    assert_eq!(state(&bench, &run)["outcome"]["action"], "kept");
    clean_forced(&bench);
}

fn clean_forced(bench: &Bench) {
    bench.baton(&["clean", "--force"]).expect(0);
    bench.assert_clean();
}

#[test]
fn an_apply_killed_after_writing_the_tree_is_finished() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    crash_at(&bench, "landing.switched", &["--apply"]);
    recover(&bench);
    assert_eq!(bench.head(), before.head, "--apply commits nothing");
    assert!(bench.read("calc.py").contains(FIXED));
    assert_eq!(
        bench.git(&["diff", "--cached", "--name-only"]).trim(),
        "calc.py"
    );
    assert_eq!(
        bench.report(&bench.only_run())["outcome"]["action"],
        "applied"
    );
    clean(&bench);
}

#[test]
fn an_include_dirty_landing_killed_halfway_never_overwrites_an_edit_made_since() {
    let agent = "cmd:sed -i 's/return a - b/return a + b/' calc.py && echo '# notes' >> README.md";
    for user_edits_after_crash in [false, true] {
        let bench = Bench::with_fixture("python-calc");
        bench.write("test_calc.py", "# the user's uncommitted work\n");
        let before = Before::take(&bench);
        let status = bench
            .baton_command(&fix_args(
                agent,
                &["--include-dirty", "--scope", "README.md"],
            ))
            .env("BATON_CRASH_AT", "landing.switched")
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), None);
        if user_edits_after_crash {
            bench.write("README.md", "the user's own words\n");
        }
        recover(&bench);
        let run = bench.only_run();
        assert_eq!(bench.head(), before.head);
        assert_eq!(bench.index(), before.index);
        assert_eq!(
            bench.read("test_calc.py"),
            "# the user's uncommitted work\n"
        );
        if user_edits_after_crash {
            // All or nothing: the fix is taken back, the user's edit stays, the run
            // is kept for later.
            assert_eq!(bench.read("README.md"), "the user's own words\n");
            assert_eq!(bench.files()["calc.py"], before.files["calc.py"]);
            assert_eq!(bench.report(&run)["outcome"]["action"], "kept");
            clean_forced(&bench);
        } else {
            assert!(bench.read("calc.py").contains(FIXED));
            assert!(bench.read("README.md").ends_with("# notes\n"));
            assert_eq!(bench.report(&run)["outcome"]["action"], "applied");
            clean(&bench);
        }
    }
}

#[test]
fn a_stash_killed_halfway_is_recorded_exactly_once() {
    for point in ["stash.intent", "stash.recorded"] {
        let bench = Bench::with_fixture("python-calc");
        let before = Before::take(&bench);
        crash_at(&bench, point, &["--check", "false"]);
        recover(&bench);
        before.assert_untouched(&bench);
        before.assert_fix_stashed_once(&bench);
        assert_eq!(
            bench.report(&bench.only_run())["outcome"]["action"],
            "stashed",
            "{point}"
        );
        clean(&bench);
    }
}

/// Spawns a run whose agent makes the fix, says so, then works on for a minute
/// (writing a file at the end that must never appear anywhere).
fn spawn_slow_run(bench: &Bench, extra: &[&str]) -> std::process::Child {
    let agent = format!("{FIX_ADD} && echo edited && sleep 60 && echo late > late.txt");
    bench
        .baton_command(&fix_args(&agent, extra))
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for_edit(bench: &Bench) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(run) = bench.run_ids().first() {
            if bench
                .journal_file(run, "events.jsonl")
                .contains("\"line\":\"edited\"")
            {
                return run.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the agent never reported its edit");
}

#[test]
fn a_killed_run_shows_as_interrupted_its_lock_as_stale_and_recover_saves_its_work() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let mut child = spawn_slow_run(&bench, &[]);
    let run = wait_for_edit(&bench);
    child.kill().unwrap();
    child.wait().unwrap();

    let status = bench.baton(&["status"]);
    assert!(
        status.stdout.contains("interrupted (agent)"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("stale"), "{}", status.stdout);
    // clean leaves a stopped run to recover, and says why.
    let cleaned = bench.baton(&["clean"]);
    cleaned.expect(0);
    assert!(cleaned.stderr.contains("stale"), "{}", cleaned.stderr);
    assert_eq!(bench.worktree_count(), 2);

    let said = recover(&bench);
    assert!(said.contains("stashed"), "{said}");
    let report = bench.report(&run);
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["exit_code"], 130);
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("stopped 1 process group"), "{warnings}");
    assert!(warnings.contains("during the agent stage"), "{warnings}");
    before.assert_untouched(&bench);
    before.assert_fix_stashed_once(&bench);
    assert!(bench.journal_file(&run, "diff.patch").contains(FIXED));
    // The agent's process was stopped: its last write never happens.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !bench
            .git(&["stash", "show", "--include-untracked", "--name-only"])
            .contains("late")
    );
    clean(&bench);
}

#[test]
fn a_killed_run_kept_by_on_fail_keep_can_be_resumed_by_hand_after_recover() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let mut child = spawn_slow_run(&bench, &["--on-fail", "keep"]);
    let run = wait_for_edit(&bench);
    child.kill().unwrap();
    child.wait().unwrap();
    recover(&bench);
    before.assert_untouched(&bench);
    assert_eq!(bench.report(&run)["outcome"]["action"], "kept");
    assert_eq!(bench.worktree_count(), 2, "the kept worktree stays");
    bench.baton(&["stash", &run]).expect(0);
    before.assert_fix_stashed_once(&bench);
    clean(&bench);
}

#[test]
fn a_live_run_is_never_touched_by_clean_or_recover() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let agent = format!("{FIX_ADD} && echo edited && sleep 2");
    let child = bench
        .baton_command(&fix_args(&agent, &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = wait_for_edit(&bench);

    let cleaned = bench.baton(&["clean", "--force"]);
    cleaned.expect(0);
    assert!(
        cleaned.stderr.contains("still running, left alone"),
        "{}",
        cleaned.stderr
    );
    let said = recover(&bench);
    assert!(said.contains("still running"), "{said}");
    assert_eq!(bench.worktree_count(), 2, "the live run's worktree stays");

    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    before.assert_fix_landed(&bench);
    assert_eq!(bench.report(&run)["outcome"]["action"], "merged");
    clean(&bench);
}

/// A tiny deterministic generator, so a failing kill time can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// A whole run of the fixture's fix, with a check, for the random-fault loops.
fn whole_run_args(agent: &str) -> Vec<&str> {
    fix_args(agent, &["--check", PYTEST])
}

/// How long a whole run takes here, to spread the faults over all its stages.
fn time_whole_run(args: &[&str]) -> Duration {
    let probe = Bench::with_fixture("python-calc");
    let started = Instant::now();
    let status = probe
        .baton_command(args)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    started.elapsed()
}

#[test]
fn sigkill_at_random_points_then_recover_never_loses_or_half_lands_anything() {
    let agent = format!("{FIX_ADD} && sleep 0.1");
    let args = whole_run_args(&agent);
    let whole = time_whole_run(&args);
    let seed = 0x5eed_u64;
    let mut rng = Lcg(seed);
    let kills = 20;
    let mut outcomes = BTreeMap::<String, usize>::new();
    let mut stages = BTreeMap::<String, usize>::new();
    for i in 0..kills {
        let bench = Bench::with_fixture("python-calc");
        let before = Before::take(&bench);
        let jitter = rng.next() % 40;
        let at = whole.mul_f64(i as f64 / kills as f64) + Duration::from_millis(jitter);
        let mut child = bench
            .baton_command(&args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let code = child.wait().unwrap().code();
        let context = format!("kill {i} at {at:?} (seed {seed:#x}, whole run {whole:?})");

        let ran = bench.baton(&["recover"]);
        assert_eq!(ran.code, 0, "{context}: {}", ran.stderr);
        let status = bench.baton(&["status"]);
        assert!(
            !status.stdout.contains("running") && !status.stdout.contains("interrupted ("),
            "{context}: {}",
            status.stdout
        );
        // A run killed before its first state was written has only a directory.
        let started = bench
            .run_ids()
            .into_iter()
            .find(|run| !bench.journal_file(run, "state.json").is_empty());
        let outcome = match started {
            None => "never started".to_string(),
            Some(run) => {
                let report = bench.report(&run);
                let stage = report["warnings"]
                    .as_array()
                    .and_then(|w| {
                        w.iter()
                            .find_map(|w| w.as_str()?.split("during the ").nth(1))
                    })
                    .and_then(|w| w.split(' ').next())
                    .unwrap_or("none (it finished)")
                    .to_string();
                *stages.entry(stage).or_default() += 1;
                report["outcome"]["action"]
                    .as_str()
                    .unwrap_or("none")
                    .to_string()
            }
        };
        match outcome.as_str() {
            "merged" => before.assert_fix_landed(&bench),
            "stashed" => {
                before.assert_untouched(&bench);
                before.assert_fix_stashed_once(&bench);
            }
            "kept" => {
                before.assert_untouched(&bench);
                let run = bench.run_ids().pop().unwrap();
                bench.baton(&["merge", &run]).expect(0);
                before.assert_fix_landed(&bench);
            }
            "discarded" | "never started" => {
                // Killed before the agent made its edit: nothing was made to keep.
                before.assert_untouched(&bench);
                assert_eq!(bench.stash_list(), before.stashes, "{context}");
            }
            other => panic!("{context}: unexpected outcome {other} (exit {code:?})"),
        }
        clean(&bench);
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("over {kills} kills: stages {stages:?}, outcomes {outcomes:?}");
}

#[test]
fn parallel_runs_all_land_one_at_a_time_without_a_git_lock_error() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let n = 8;
    let children: Vec<_> = (0..n)
        .map(|i| {
            let file = format!("note-{i}.txt");
            let agent = format!("cmd:echo 'note {i}' > {file}");
            bench
                .baton_command(&[
                    "run",
                    "--task",
                    &format!("Write note {i}"),
                    "--agent",
                    &agent,
                    "--scope",
                    &file,
                    "--json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains(".lock"), "{stderr}");
    }
    let ids = bench.run_ids();
    assert_eq!(ids.len(), n, "unique run ids: {ids:?}");
    for id in &ids {
        assert_eq!(bench.report(id)["outcome"]["action"], "merged", "{id}");
    }
    for i in 0..n {
        assert_eq!(bench.read(&format!("note-{i}.txt")), format!("note {i}\n"));
    }
    assert_eq!(
        bench
            .git(&["rev-list", "--count", &format!("{}..HEAD", before.head)])
            .trim(),
        n.to_string()
    );
    assert_eq!(bench.git(&["status", "--porcelain"]).trim(), "");
    clean(&bench);
}

#[test]
fn a_run_from_a_linked_worktree_lands_on_its_branch_and_leaves_the_main_checkout_alone() {
    let bench = Bench::with_fixture("python-calc");
    let feature = bench.root.join("feature");
    bench.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "feature",
        feature.to_str().unwrap(),
    ]);
    let main_files = bench.files();
    let main_index = bench.index();
    let main_head = bench.head();

    let ran = bench.baton_in(&feature, &fix_args(FIX_ADD, &[]));
    ran.expect(0);

    assert!(
        std::fs::read_to_string(feature.join("calc.py"))
            .unwrap()
            .contains(FIXED)
    );
    assert_eq!(
        bench.git(&["rev-parse", "feature~1"]).trim(),
        main_head,
        "the commit landed on feature"
    );
    assert_eq!(bench.head(), main_head, "main did not move");
    assert_eq!(bench.files(), main_files);
    assert_eq!(bench.index(), main_index);
    bench.git(&["worktree", "remove", feature.to_str().unwrap()]);
    clean(&bench);
}

/// A run of the fixture's fix that pauses two seconds at `point` of its landing.
fn paused_landing(bench: &Bench, point: &str, stderr: Stdio) -> std::process::Child {
    bench
        .baton_command(&fix_args(FIX_ADD, &[]))
        .env("BATON_PAUSE_AT", point)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Waits until a landing is under way (its intent is in the journal); its run id.
fn wait_for_landing(bench: &Bench) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the landing never started");
        if let Some(run) = bench.run_ids().first() {
            if bench.runs_dir().join(run).join("landing.json").exists() {
                return run.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_during_a_merge_lets_it_finish_whole_and_exits_130() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let mut child = paused_landing(&bench, "landing.switched", Stdio::null());
    let run = wait_for_landing(&bench);
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    before.assert_fix_landed(&bench);
    assert_eq!(bench.report(&run)["outcome"]["action"], "merged");
    assert!(recover(&bench).contains("nothing to recover"));
    clean(&bench);
}

#[test]
fn a_git_command_holding_the_users_index_stops_the_landing_with_a_clear_message() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let lock = bench.repo.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let ran = bench.baton(&fix_args(FIX_ADD, &[]));
    ran.expect(5);
    assert!(
        ran.stderr.contains("another git command holds your index")
            && ran.stderr.contains("index.lock"),
        "{}",
        ran.stderr
    );
    std::fs::remove_file(&lock).unwrap();
    before.assert_untouched(&bench);
    let run = bench.only_run();
    bench.baton(&["merge", &run]).expect(0);
    before.assert_fix_landed(&bench);
    clean(&bench);
}

#[test]
fn a_damaged_journal_is_named_and_does_not_stop_the_recovery_of_other_runs() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let mut child = spawn_slow_run(&bench, &[]);
    wait_for_edit(&bench);
    child.kill().unwrap();
    child.wait().unwrap();
    let damaged = bench.runs_dir().join("20000101-000000-dead");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(damaged.join("state.json"), "{\"format_version\": 1,").unwrap();

    let ran = bench.baton(&["recover"]);
    ran.expect(5);
    assert!(
        ran.stderr.contains("20000101-000000-dead: stuck") && ran.stderr.contains("damaged"),
        "{}",
        ran.stderr
    );
    before.assert_untouched(&bench);
    before.assert_fix_stashed_once(&bench);
}

#[test]
fn a_second_ctrl_c_stops_an_agent_that_ignores_the_first_at_once() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    // A grace period far longer than the test may take: only the second Ctrl-C can
    // end the run before it.
    let config = bench.home.join(".config/baton");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[defaults]\nkill_grace = \"1h\"\n",
    )
    .unwrap();
    let agent = format!(
        "cmd:trap '' TERM INT; {} && echo edited && sleep 600",
        FIX_ADD.trim_start_matches("cmd:")
    );
    let mut child = bench
        .baton_command(&fix_args(&agent, &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = wait_for_edit(&bench);
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second Ctrl-C did not stop the agent");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    before.assert_untouched(&bench);
    before.assert_fix_stashed_once(&bench);
    assert_eq!(bench.report(&run)["agent_result"]["status"], "interrupted");
    clean(&bench);
}

#[test]
fn a_run_killed_in_its_fallback_attempt_keeps_every_attempts_work() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let first = "cmd:echo 'first try' >> README.md && exit 1";
    let second = format!("{FIX_ADD} && echo edited && sleep 60",);
    let mut child = bench
        .baton_command(&fix_args(first, &["--fallback", &second]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = wait_for_edit(&bench);
    child.kill().unwrap();
    child.wait().unwrap();

    recover(&bench);
    before.assert_untouched(&bench);
    // The first attempt was set aside as a stash before the second began; the second
    // is stashed by recovery.
    let stashes = bench.stash_list();
    assert_eq!(stashes.len(), 2, "{stashes:?}");
    assert!(bench.git(&["show", "stash@{0}:calc.py"]).contains(FIXED));
    assert!(
        bench
            .git(&["show", "stash@{1}:README.md"])
            .contains("first try")
    );
    assert_eq!(bench.report(&run)["branch"], format!("baton/{run}-a2"));
    clean(&bench);
}

#[test]
fn ctrl_c_at_random_points_saves_the_work_and_leaves_nothing_to_recover() {
    use std::os::unix::process::CommandExt;
    let agent = format!("{FIX_ADD} && sleep 0.1");
    let args = whole_run_args(&agent);
    let whole = time_whole_run(&args);
    let seed = 0xc7c_u64;
    let mut rng = Lcg(seed);
    let presses = 12;
    for i in 0..presses {
        let bench = Bench::with_fixture("python-calc");
        let before = Before::take(&bench);
        let at = whole.mul_f64(i as f64 / presses as f64) + Duration::from_millis(rng.next() % 40);
        // As at a terminal: baton and every child of its own group get the SIGINT.
        let mut child = bench
            .baton_command(&args)
            .process_group(0)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        // SAFETY: signalling the process group of a child we spawned.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
        let status = child.wait().unwrap();
        let code = status.code();
        let context = format!("Ctrl-C {i} at {at:?} (seed {seed:#x}, whole run {whole:?})");

        if code.is_none() {
            // Before baton took over Ctrl-C it dies of it (the shell says 130), and
            // it had started nothing.
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(libc::SIGINT), "{context}");
            assert!(bench.run_ids().is_empty(), "{context}");
        } else {
            assert!(
                matches!(code, Some(0) | Some(130)),
                "{context}: exit {code:?}"
            );
        }
        let said = recover(&bench);
        assert!(
            said.contains("nothing to recover"),
            "{context}: a Ctrl-C must leave every run finished, but recover said {said}\nstate: {}",
            bench
                .run_ids()
                .iter()
                .map(|r| bench.journal_file(r, "events.jsonl"))
                .collect::<String>()
        );
        let landed = bench.head() != before.head;
        if landed {
            before.assert_fix_landed(&bench);
        } else {
            before.assert_untouched(&bench);
            let run = bench.run_ids().pop();
            let patch = run
                .map(|r| bench.journal_file(&r, "diff.patch"))
                .unwrap_or_default();
            if patch.contains(FIXED) {
                let outcome = bench.report(&bench.run_ids().pop().unwrap())["outcome"].clone();
                assert_eq!(outcome["action"], "stashed", "{context}: {outcome}");
                before.assert_fix_stashed_once(&bench);
            }
        }
        clean(&bench);
    }
}

#[test]
fn an_untracked_file_of_the_users_in_the_way_stops_the_landing_untouched() {
    let bench = Bench::with_fixture("python-calc");
    bench.write("notes.txt", "my own notes, not committed\n");
    let before = Before::take(&bench);
    let ran = bench.baton(&[
        "run",
        "--task",
        "Write notes",
        "--agent",
        "cmd:echo 'the agent' > notes.txt",
        "--scope",
        "notes.txt",
    ]);
    ran.expect(5);
    assert!(ran.stderr.contains("notes.txt"), "{}", ran.stderr);
    before.assert_untouched(&bench);
    assert_eq!(bench.read("notes.txt"), "my own notes, not committed\n");
    let run = bench.only_run();
    assert_eq!(bench.report(&run)["outcome"]["action"], "conflict");
    bench.baton(&["revert", &run]).expect(0);
    clean(&bench);
}

#[test]
fn a_branch_that_moves_while_baton_lands_is_not_moved_and_the_tree_is_put_back() {
    let bench = Bench::with_fixture("python-calc");
    let child = paused_landing(&bench, "landing.intent", Stdio::piped());
    wait_for_landing(&bench);
    // The user commits meanwhile: baton computed its landing on the old HEAD.
    bench.write(
        "docs/notes.md",
        "Notes the user committed while baton landed.\n",
    );
    bench.git(&["commit", "-qam", "the user's own commit"]);
    let before = Before::take(&bench);

    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("main moved while baton was landing"),
        "{stderr}"
    );
    before.assert_untouched(&bench);
    // Kept, it lands on the new HEAD when asked.
    let run = bench.only_run();
    bench.baton(&["merge", &run]).expect(0);
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert!(bench.read("calc.py").contains(FIXED));
    assert!(
        bench
            .read("docs/notes.md")
            .starts_with("Notes the user committed")
    );
    clean(&bench);
}

/// Live (not zombie) processes of the process group `pgid`.
fn live_in_group(pgid: i32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p.path().join("stat")).ok())
        .filter(|stat| {
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
        })
        .count()
}

#[test]
fn codex_left_running_by_a_killed_baton_is_stopped_by_recover_and_its_edit_stashed() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("edit-then-hang");
    let before = Before::take(&bench);
    let mut child = bench
        .baton_command(&fix_args("codex", &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until codex has made its edit in the worktree (then the model hangs).
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        assert!(Instant::now() < deadline, "codex never made its edit");
        if let Some(run) = bench.run_ids().first() {
            let state = bench.journal_file(run, "state.json");
            if let Ok(state) = serde_json::from_str::<serde_json::Value>(&state) {
                let wt = std::path::Path::new(state["worktree"].as_str().unwrap_or("/"));
                if std::fs::read_to_string(wt.join("calc.py")).is_ok_and(|t| t.contains(FIXED)) {
                    break run.clone();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let group = bench.journal_file(&run, "agent.log.pgid");
    let pgid: i32 = group.split_whitespace().next().unwrap().parse().unwrap();
    assert!(live_in_group(pgid) > 0, "codex outlived the killed baton");

    let said = recover(&bench);
    assert!(said.contains("stashed"), "{said}");
    assert_eq!(live_in_group(pgid), 0, "recover stopped codex");
    assert!(
        bench.report(&run)["warnings"]
            .to_string()
            .contains("stopped 1 process group")
    );
    before.assert_untouched(&bench);
    before.assert_fix_stashed_once(&bench);
    clean(&bench);
}

#[test]
fn a_worktree_whose_checkout_never_finished_is_discarded_by_recover_not_stashed_as_deletions() {
    // What a baton killed during `git worktree add` leaves (git, in its own process
    // group, may still be checking out): files half there, no index yet. No agent
    // ever ran in it.
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let mut child = bench
        .baton_command(&fix_args("cmd:sleep 30", &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        if let Some(run) = bench.run_ids().first() {
            if bench
                .journal_file(run, "events.jsonl")
                .contains("agent.started")
            {
                break run.clone();
            }
        }
        assert!(Instant::now() < deadline, "the agent never started");
        std::thread::sleep(Duration::from_millis(25));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let worktree = std::path::PathBuf::from(state(&bench, &run)["worktree"].as_str().unwrap());
    let index = bench.git_in(
        &worktree,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    );
    std::fs::remove_file(index.trim()).unwrap();
    std::fs::remove_file(worktree.join("calc.py")).unwrap();

    recover(&bench);
    assert!(bench.stash_list().is_empty(), "{:?}", bench.stash_list());
    before.assert_untouched(&bench);
    assert_eq!(state(&bench, &run)["outcome"]["action"], "discarded");
    bench.assert_clean();
}

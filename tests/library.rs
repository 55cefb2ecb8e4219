//! Stories of the run as a library, seen from the command line: the event stream on
//! stdout (`--json --stream`), a finished run shown again from its journal (`baton
//! replay`), settings that are refused when they are read, and the exit status of
//! baton's own failure after a run started.

mod common;

use common::{Bench, FIX_ADD, PYTEST};

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_stream_prints_every_event_as_it_happens_then_the_report() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--check", PYTEST, "--stream"]);
    ran.expect(0);
    let events = lines(&ran.stdout);
    let run = bench.only_run();
    assert!(
        events.iter().all(|e| e["run_id"] == run.as_str()),
        "{}",
        ran.stdout
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run.started"), "{kinds:?}");
    for kind in [
        "stage",
        "worktree.created",
        "agent.started",
        "agent.finished",
        "check.finished",
        "scope.judged",
        "verdict",
        "outcome",
        "run.finished",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let last = events.last().unwrap();
    assert_eq!(last["event"], "report");
    assert_eq!(last["report"]["verdict"], "passed");
    assert_eq!(last["report"]["outcome"]["action"], "merged");
    // The times only go forward, and the journal holds the same events.
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["ts_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let journaled = bench.journal_file(&run, "events.jsonl");
    assert_eq!(journaled.lines().count(), events.len() - 1, "{journaled}");
    // Progress still goes to stderr for the person watching.
    assert!(
        ran.stderr.contains("outcome  committed onto main"),
        "{}",
        ran.stderr
    );
}

#[test]
fn stream_needs_json() {
    let bench = Bench::with_fixture("python-calc");
    let before = bench.files();
    let ran = bench.baton(&common::fix_args(FIX_ADD, &["--stream"]));
    ran.expect(baton::exit::USAGE);
    assert!(ran.stderr.contains("--json"), "{}", ran.stderr);
    assert_eq!(bench.files(), before);
}

#[test]
fn replay_shows_a_finished_run_as_it_was_shown_live() {
    let bench = Bench::with_fixture("python-calc");
    // A run with a failing check first, then its repair by a second agent: several
    // stages, a fallback, a stash.
    let live = bench.run_fix(
        "cmd:echo broken > calc.py",
        &["--check", PYTEST, "--fallback", FIX_ADD],
    );
    live.expect(0);
    let run = bench.only_run();
    let replayed = bench.baton(&["replay", &run]);
    replayed.expect(0);
    assert_eq!(replayed.stderr, live.stderr);
    assert!(replayed.stderr.contains("fallback"), "{}", replayed.stderr);

    let as_json = bench.baton(&["replay", "last", "--json"]);
    as_json.expect(0);
    let events = lines(&as_json.stdout);
    assert_eq!(events.last().unwrap()["event"], "report");
    assert_eq!(events.last().unwrap()["report"]["run_id"], run.as_str());
}

#[test]
fn an_unknown_fallback_trigger_or_policy_is_refused_when_read() {
    let bench = Bench::with_fixture("python-calc");
    let before = bench.files();
    bench.write(
        ".baton/config.toml",
        "[defaults]\nfallback_on = [\"timeout\", \"timout\"]\n",
    );
    let ran = bench.baton(&common::fix_args(FIX_ADD, &[]));
    ran.expect(baton::exit::USAGE);
    let line = ran.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    for word in [
        ".baton/config.toml",
        "timout",
        "line 2",
        "rate_limited",
        "checks_failed",
    ] {
        assert!(line.contains(word), "no {word} in: {line}");
    }

    bench.write(".baton/config.toml", "[defaults]\non_pass = \"mrege\"\n");
    let ran = bench.baton(&common::fix_args(FIX_ADD, &[]));
    ran.expect(baton::exit::USAGE);
    for word in ["on_pass", "mrege", "merge", "keep"] {
        assert!(ran.stderr.contains(word), "no {word} in: {}", ran.stderr);
    }
    std::fs::remove_dir_all(bench.repo.join(".baton")).unwrap();

    // The same in a handoff's front matter.
    let handoff = bench.root.join("task.md");
    std::fs::write(
        &handoff,
        "+++\ntask = \"Fix add()\"\nagent = \"cmd:true\"\non_fail = \"stsh\"\n+++\nFix it.\n",
    )
    .unwrap();
    let ran = bench.baton(&["run", handoff.to_str().unwrap()]);
    ran.expect(baton::exit::USAGE);
    let line = ran.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    for word in ["stsh", "line 4", "stash"] {
        assert!(line.contains(word), "no {word} in: {line}");
    }
    assert_eq!(bench.files(), before);
    assert!(bench.run_ids().is_empty());
}

#[test]
fn baton_failing_after_the_run_started_has_its_own_exit_status_and_says_where() {
    let bench = Bench::with_fixture("python-calc");
    // The agent removes the run's own journal from under baton.
    let agent = common::REMOVE_OWN_JOURNAL;
    let ran = bench.baton(&common::fix_args(agent, &[]));
    ran.expect(baton::exit::BATON_FAILED);
    assert!(ran.stderr.contains("error: "), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("stopped in its"),
        "the run and its stage are named: {}",
        ran.stderr
    );
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing landed"
    );
}

#[test]
fn a_kept_run_is_checked_again_merged_onto_a_branch_that_moved_and_lands_only_if_it_passes() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--check", PYTEST, "--on-pass", "keep"]);
    ran.expect(0);
    let run = bench.only_run();

    // The user commits a test that the fix breaks: each passes alone, not together.
    let mut tests = bench.read("test_calc.py");
    tests.push_str("\n\ndef test_add_keeps_the_old_behaviour():\n    assert add(5, 3) == 2\n");
    bench.write("test_calc.py", &tests);
    bench.git(&["commit", "-qam", "pin add()"]);
    let head = bench.head();
    let before = common::Before::take(&bench);

    let merged = bench.baton(&["merge", &run]);
    merged.expect(baton::exit::CHECKS_FAILED);
    assert!(
        merged.stderr.contains("merged onto main"),
        "{}",
        merged.stderr
    );
    assert!(merged.stderr.contains(PYTEST), "{}", merged.stderr);
    assert_eq!(bench.head(), head, "nothing landed");
    before.assert_untouched(&bench);
    assert!(
        bench.baton_branches().contains(&format!("baton/{run}")),
        "still kept"
    );
    assert!(
        bench
            .journal_file(&run, "events.jsonl")
            .contains("\"integrated\":true"),
        "the integrated check is journaled"
    );

    // Once the user takes the test back, the same run lands.
    bench.git(&["revert", "--no-edit", "HEAD"]);
    let merged = bench.baton(&["merge", &run]);
    merged.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert!(
        merged.stderr.contains("checking the change merged onto it"),
        "{}",
        merged.stderr
    );
}

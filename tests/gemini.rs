//! Delegation to the real Gemini CLI (`@google/gemini-cli`, pinned in tests/agents),
//! offline: gemini talks to baton's scripted model server on 127.0.0.1 (the Gemini
//! API), which plays the same scenarios as for codex and claude.

mod common;

use common::{Bench, PYTEST};

#[test]
fn gemini_fixes_the_bug_and_the_verified_commit_lands() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_gemini("fix-add");
    let ran = bench.run_fix("gemini", &["--check", PYTEST, "--timeout", "3m"]);
    ran.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert!(
        bench
            .git(&["log", "-1", "--format=%B"])
            .contains("Baton-Agent: gemini")
    );
    bench.assert_clean();
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "succeeded");
    assert!(
        report["agent_result"]["session"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let sent = model
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<String>();
    assert!(
        sent.contains(report["worktree"].as_str().unwrap()),
        "gemini worked in the worktree"
    );
}

#[test]
fn gemini_editing_outside_the_scope_is_stashed_with_exit_3() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    let _model = bench.scripted_gemini("out-of-scope");
    bench
        .run_fix("gemini", &["--check", PYTEST, "--timeout", "3m"])
        .expect(3);
    assert_eq!(bench.files(), files);
    bench.git(&["stash", "apply"]);
    assert_eq!(
        bench.read("docs/notes.md"),
        "Notes rewritten by the agent.\n"
    );
}

#[test]
fn a_rate_limited_model_fails_the_gemini_run_with_the_error_in_the_report() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_gemini("rate-limit");
    let ran = bench.run_fix("gemini", &["--timeout", "3m"]);
    ran.expect(4);
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "failed");
    assert!(
        report["agent_result"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{report}"
    );
}

#[test]
fn an_edit_made_before_the_model_hung_is_judged_and_kept_with_gemini() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_gemini("edit-then-hang");
    let ran = bench.run_fix("gemini", &["--timeout", "10s"]);
    ran.expect(4);
    assert_eq!(ran.json()["agent_result"]["status"], "timed_out");
    bench.git(&["stash", "apply"]);
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn resume_continues_the_same_gemini_session_and_lands_the_fix() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_gemini("resume");
    let first = bench.run_fix(
        "gemini",
        &["--check", PYTEST, "--on-fail", "keep", "--timeout", "3m"],
    );
    first.expect(1);
    let session = first.json()["agent_result"]["session"]
        .as_str()
        .unwrap()
        .to_string();
    let run = bench.only_run();
    let resumed = bench.baton(&["resume", &run, "--json"]);
    resumed.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert_eq!(resumed.json()["agent_result"]["session"], session.as_str());
    bench.assert_clean();
}

#[test]
fn gemini_model_faults_end_as_the_documented_classes() {
    // 500, a model that never answers, a stream that stalls.
    for (scenario, extra, status, class) in [
        (
            "server-error",
            vec!["--timeout", "2m"],
            "failed",
            "server_error",
        ),
        ("hang", vec!["--timeout", "5s"], "timed_out", "timeout"),
        (
            "stall",
            vec!["--idle-timeout", "4s", "--timeout", "2m"],
            "idle",
            "idle",
        ),
    ] {
        let bench = Bench::with_fixture("python-calc");
        let _model = bench.scripted_gemini(scenario);
        let ran = bench.run_fix("gemini", &extra);
        ran.expect(4);
        let agent = &ran.json()["agent_result"];
        assert_eq!(agent["status"], status, "{scenario}: {agent}");
        assert_eq!(agent["class"], class, "{scenario}: {agent}");
        bench.assert_clean();
    }
}

//! Delegation to the real Claude Code CLI (`@anthropic-ai/claude-code`, pinned in
//! tests/agents), offline: claude talks to baton's scripted model server on 127.0.0.1
//! (the Anthropic Messages API), which plays the same scenarios as for codex.

mod common;

use common::{Bench, PYTEST};

#[test]
fn claude_fixes_the_bug_and_the_verified_commit_lands() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_claude("fix-add");
    let ran = bench.run_fix("claude", &["--check", PYTEST]);
    ran.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert!(
        bench
            .git(&["log", "-1", "--format=%B"])
            .contains("Baton-Agent: claude")
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
        "claude worked in the worktree"
    );
    let run = bench.only_run();
    let events = bench.journal_file(&run, "events.jsonl");
    assert!(
        events.contains("\"event\":\"agent.file_change\""),
        "no file change event"
    );
}

#[test]
fn claude_editing_outside_the_scope_is_stashed_with_exit_3() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    let _model = bench.scripted_claude("out-of-scope");
    bench.run_fix("claude", &["--check", PYTEST]).expect(3);
    assert_eq!(bench.files(), files);
    bench.git(&["stash", "apply"]);
    assert_eq!(
        bench.read("docs/notes.md"),
        "Notes rewritten by the agent.\n"
    );
}

#[test]
fn a_rate_limited_model_fails_the_claude_run_with_the_error_in_the_report() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_claude("rate-limit");
    let ran = bench.run_fix("claude", &["--timeout", "2m"]);
    ran.expect(4);
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "failed");
    assert!(
        report["agent_result"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("429"),
        "{report}"
    );
}

#[test]
fn an_edit_made_before_the_model_hung_is_judged_and_kept_with_claude() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_claude("edit-then-hang");
    let ran = bench.run_fix("claude", &["--timeout", "8s"]);
    ran.expect(4);
    assert_eq!(ran.json()["agent_result"]["status"], "timed_out");
    bench.git(&["stash", "apply"]);
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn resume_continues_the_same_claude_session_and_lands_the_fix() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_claude("resume");
    let first = bench.run_fix("claude", &["--check", PYTEST, "--on-fail", "keep"]);
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
    // The resumed conversation carried the earlier turns and the failing check.
    let last = model
        .requests()
        .into_iter()
        .rfind(|r| r.position.is_some())
        .unwrap();
    assert!(last.position.unwrap() >= 3, "{:?}", last.position);
    assert!(last.body.to_string().contains("python3 -m pytest -q"));
}

#[test]
fn claude_model_faults_end_as_the_documented_classes() {
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
        let _model = bench.scripted_claude(scenario);
        let ran = bench.run_fix("claude", &extra);
        ran.expect(4);
        let agent = &ran.json()["agent_result"];
        assert_eq!(agent["status"], status, "{scenario}: {agent}");
        assert_eq!(agent["class"], class, "{scenario}: {agent}");
        bench.assert_clean();
    }
}

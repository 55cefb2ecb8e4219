//! Runs that survive a backend that is down, rate-limited, hung or wrong: retries of
//! transient failures on the same agent, and a fallback chain that hands the task to
//! the next agent in a fresh worktree. Real codex, claude and gemini CLIs, one
//! scripted model.

mod common;

use common::{Bench, PYTEST, fix_args};

fn attempts(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["agent"].as_str().unwrap().to_string(),
                a["class"].as_str().unwrap().to_string(),
                a["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn s(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[test]
fn a_rate_limited_codex_falls_back_to_claude_which_lands_the_fix() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_all("fallback-429");
    let ran = bench.baton(&fix_args(
        "codex",
        &["--fallback", "claude", "--check", PYTEST, "--json"],
    ));
    ran.expect(0);
    let report = ran.json();
    assert_eq!(
        attempts(&report),
        [
            s("codex", "rate_limited", "agent_failed"),
            s("claude", "ok", "passed")
        ]
    );
    assert!(bench.read("calc.py").contains("return a + b"));
    assert!(
        bench
            .git(&["log", "-1", "--format=%B"])
            .contains("Baton-Agent: claude")
    );
    assert!(
        bench.stash_list().is_empty(),
        "codex changed nothing, so nothing was set aside"
    );
    bench.assert_clean();
}

#[test]
fn a_hung_codex_times_out_and_claude_takes_over() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_all("fallback-hang");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        "codex",
        "--fallback",
        "claude",
        "--timeout",
        "5s",
        "--check",
        PYTEST,
        "--json",
    ]);
    ran.expect(0);
    assert_eq!(
        attempts(&ran.json()),
        [
            s("codex", "timeout", "agent_failed"),
            s("claude", "ok", "passed")
        ]
    );
    bench.assert_clean();
}

#[test]
fn a_transient_failure_is_retried_on_the_same_agent() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_all("retry-429");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        "codex",
        "--retries",
        "2",
        "--check",
        PYTEST,
        "--json",
    ]);
    ran.expect(0);
    assert_eq!(
        attempts(&ran.json()),
        [
            s("codex", "rate_limited", "agent_failed"),
            s("codex", "ok", "passed")
        ]
    );
    assert_eq!(
        model
            .requests()
            .iter()
            .filter(|r| r.served == "rate_limit")
            .count(),
        1
    );
    bench.assert_clean();
}

#[test]
fn an_auth_error_is_not_retried_and_every_agent_failing_exits_4() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_all("auth");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        "codex",
        "--retries",
        "3",
        "--json",
    ]);
    ran.expect(4);
    assert_eq!(attempts(&ran.json()), [s("codex", "auth", "agent_failed")]);
    bench.assert_clean();
}

#[test]
fn when_codex_fix_fails_the_checks_claude_gets_a_fresh_worktree_and_lands_its_own() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_all("fallback-checks");
    let ran = bench.baton(&fix_args(
        "codex",
        &["--fallback", "claude", "--check", PYTEST, "--json"],
    ));
    ran.expect(0);
    let report = ran.json();
    assert_eq!(
        attempts(&report),
        [
            s("codex", "ok", "checks_failed"),
            s("claude", "ok", "passed")
        ]
    );
    // Claude's change alone landed: codex's `a * b` was kept aside, never mixed in.
    let calc = bench.read("calc.py");
    assert!(
        calc.contains("return a + b") && !calc.contains("a * b"),
        "{calc}"
    );
    let stashes = bench.stash_list();
    assert_eq!(stashes.len(), 1, "{stashes:?}");
    assert!(stashes[0].contains("attempt 1, codex"), "{stashes:?}");
    assert!(
        report["attempts"][0]["kept"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    bench.assert_clean();
}

#[test]
fn the_repair_loop_tells_the_agent_what_failed_and_lands_the_repaired_change() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_all("repair");
    let ran = bench.baton(&fix_args(
        "codex",
        &["--repair", "2", "--check", PYTEST, "--json"],
    ));
    ran.expect(0);
    let report = ran.json();
    let rounds: Vec<(u64, String)> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["round"].as_u64().unwrap(),
                a["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rounds,
        [(0, "checks_failed".to_string()), (1, "passed".to_string())]
    );
    assert!(bench.read("calc.py").contains("return a + b"));
    bench.assert_clean();

    // The repair prompt named the failing check and its output, and went to the same
    // codex thread.
    let run = bench.only_run();
    let prompt = bench.journal_file(&run, "repair-1-1.md");
    assert!(
        prompt.contains("python3 -m pytest -q") && prompt.contains("FAILED test_calc.py::test_add"),
        "{prompt}"
    );
    let last = model
        .requests()
        .into_iter()
        .rfind(|r| r.position.is_some())
        .unwrap();
    assert!(last.body.to_string().contains("Repair: Fix add()"));
    assert_eq!(
        last.body["prompt_cache_key"],
        report["agent_result"]["session"]
    );
}

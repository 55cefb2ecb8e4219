//! Delegation to the real Codex CLI (`@openai/codex`, pinned in tests/agents), offline:
//! codex talks to baton's scripted model server on 127.0.0.1, which plays a scenario
//! from fixtures/scenarios/. Everything but the model is real.

mod common;

use common::{Bench, PYTEST};

#[test]
fn codex_fixes_the_bug_and_the_verified_commit_lands() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_codex("fix-add");
    let ran = bench.run_fix("codex", &["--check", PYTEST]);
    ran.expect(0);

    assert!(bench.read("calc.py").contains("return a + b"));
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("Baton-Agent: codex"), "{message}");
    assert!(
        message.contains("Baton-Checks: python3 -m pytest -q (passed)"),
        "{message}"
    );
    bench.assert_clean();

    let report = ran.json();
    let agent = &report["agent_result"];
    assert_eq!(agent["status"], "succeeded");
    assert!(
        agent["session"].as_str().is_some_and(|s| !s.is_empty()),
        "{agent}"
    );
    assert!(
        agent["last_message"]
            .as_str()
            .unwrap()
            .contains("now returns a + b")
    );
    assert!(agent["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // codex ran in the worktree, not in the user's tree, with the handoff as prompt.
    let first = &model.requests()[0];
    let sent = first.body.to_string();
    assert!(
        sent.contains(report["worktree"].as_str().unwrap()),
        "codex's cwd is the worktree"
    );
    assert!(
        sent.contains("# Task: Fix add() so it adds"),
        "the handoff body is the prompt"
    );
    assert!(!sent.contains(&format!("<cwd>{}</cwd>", bench.repo.display())));

    let run = bench.only_run();
    let events = bench.journal_file(&run, "events.jsonl");
    for kind in [
        "agent.session",
        "agent.file_change",
        "agent.command",
        "agent.message",
        "agent.usage",
    ] {
        assert!(
            events.contains(&format!("\"event\":\"{kind}\"")),
            "no {kind} in the journal"
        );
    }
}

#[test]
fn codex_editing_outside_the_scope_is_stashed_with_exit_3() {
    let bench = Bench::with_fixture("python-calc");
    let files = bench.files();
    let _model = bench.scripted_codex("out-of-scope");
    let ran = bench.run_fix("codex", &["--check", PYTEST]);
    ran.expect(3);
    assert_eq!(bench.files(), files);
    assert_eq!(bench.stash_list().len(), 1);
    bench.git(&["stash", "apply"]);
    assert_eq!(
        bench.read("docs/notes.md"),
        "Notes rewritten by the agent.\n"
    );
    bench.assert_clean();
}

#[test]
fn codex_claiming_a_fix_that_fails_the_checks_exits_1() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("wrong-fix");
    let ran = bench.run_fix("codex", &["--check", PYTEST]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(
        report["agent_result"]["status"], "succeeded",
        "codex itself says all is well"
    );
    assert_eq!(report["checks"][0]["status"], "failed");
    assert!(bench.read("calc.py").contains("return a - b"));
}

#[test]
fn codex_that_changes_nothing_is_a_failed_agent() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("say-only");
    let ran = bench.run_fix("codex", &[]);
    ran.expect(4);
    assert_eq!(ran.json()["verdict"], "no_change");
    bench.assert_clean();
}

#[test]
fn a_rate_limited_model_fails_the_run_with_the_error_in_the_report() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("rate-limit");
    let ran = bench.run_fix("codex", &[]);
    ran.expect(4);
    let error = ran.json()["agent_result"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("429"), "{error}");
    let run = bench.only_run();
    let show = bench.baton(&["show", &run]);
    assert!(show.stdout.contains("429"), "{}", show.stdout);
    bench.assert_clean();
}

#[test]
fn a_model_server_error_fails_the_run_with_the_error_in_the_report() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("server-error");
    let ran = bench.run_fix("codex", &[]);
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
fn a_model_that_never_answers_is_stopped_by_the_timeout() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_codex("hang");
    let ran = bench.run_fix("codex", &["--timeout", "4s"]);
    ran.expect(4);
    assert_eq!(ran.json()["agent_result"]["status"], "timed_out");
    assert!(!model.requests().is_empty(), "codex did reach the model");
    bench.assert_clean();
}

#[test]
fn a_stream_that_stalls_is_stopped_by_the_idle_timeout() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("stall");
    let ran = bench.run_fix("codex", &["--idle-timeout", "3s", "--timeout", "2m"]);
    ran.expect(4);
    assert_eq!(ran.json()["agent_result"]["status"], "idle");
}

#[test]
fn an_edit_made_before_the_model_hung_is_judged_and_kept() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("edit-then-hang");
    let ran = bench.run_fix("codex", &["--timeout", "5s"]);
    ran.expect(4);
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "timed_out");
    assert_eq!(report["scope"]["paths"][0]["path"], "calc.py");
    assert_eq!(report["scope"]["paths"][0]["verdict"], "allowed");
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing unverified landed"
    );
    bench.git(&["stash", "apply"]);
    assert!(
        bench.read("calc.py").contains("return a + b"),
        "the partial work is kept"
    );
}

#[test]
fn resume_continues_the_same_codex_thread_and_lands_the_fix() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted_codex("resume");
    let first = bench.run_fix("codex", &["--check", PYTEST, "--on-fail", "keep"]);
    first.expect(1);
    let session = first.json()["agent_result"]["session"]
        .as_str()
        .unwrap()
        .to_string();
    let run = bench.only_run();

    let resumed = bench.baton(&["resume", &run, "--json"]);
    resumed.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    let report = resumed.json();
    assert_eq!(report["agent_result"]["session"], session.as_str());
    assert_eq!(report["resumes"], 1);
    assert_eq!(report["outcome"]["action"], "merged");
    bench.assert_clean();

    // The resumed request carried the whole earlier conversation of the same thread,
    // and the follow-up told codex which check failed.
    let requests = model.requests();
    let last = requests.last().unwrap();
    assert_eq!(last.position, Some(3));
    assert_eq!(last.body["prompt_cache_key"], session.as_str());
    let sent = last.body.to_string();
    assert!(
        sent.contains("python3 -m pytest -q"),
        "the follow-up names the failing check"
    );
}

#[test]
fn doctor_checks_codex_for_real_and_catches_an_open_sandbox() {
    let bench = Bench::with_fixture("python-calc");
    common::require_codex();
    let ran = bench.baton(&["doctor"]);
    ran.expect(0);
    // The doctor checks claude and gemini too (tests/conventions.rs): codex's lines.
    let lines: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.contains(" codex: "))
        .collect();
    assert_eq!(lines.len(), 4, "{}", ran.stdout);
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{}", ran.stdout);
    assert!(lines[1].contains("codex-cli 0.169.0"), "{}", lines[1]);

    // With the sandbox opened up, the write outside the worktree gets through, and
    // the doctor says so.
    std::fs::create_dir_all(bench.home.join(".config/baton")).unwrap();
    std::fs::write(
        bench.home.join(".config/baton/config.toml"),
        "[agents.codex]\nsandbox = \"danger-full-access\"\n",
    )
    .unwrap();
    let ran = bench.baton(&["doctor"]);
    ran.expect(2);
    assert!(
        ran.stdout
            .contains("FAIL  codex: sandbox refuses writes outside"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_dropped_connection_fails_the_run_with_the_error_in_the_report() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("drop");
    let ran = bench.run_fix("codex", &["--timeout", "2m"]);
    ran.expect(4);
    let report = ran.json();
    assert_eq!(report["agent_result"]["status"], "failed");
    let error = report["agent_result"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("disconnected") || error.contains("stream"),
        "{error}"
    );
}

#[test]
fn an_isolated_codex_keeps_its_state_in_the_run_not_in_the_users_codex_home() {
    let bench = Bench::with_fixture("python-calc");
    let _model = bench.scripted_codex("fix-add");
    let config = bench.home.join(".config/baton/config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[agents.codex]\n", "[agents.codex]\nisolate = true\n");
    std::fs::write(&config, text).unwrap();
    bench.run_fix("codex", &["--check", PYTEST]).expect(0);
    let run = bench.only_run();
    assert!(
        bench
            .runs_dir()
            .join(&run)
            .join("agent-home/sessions")
            .is_dir(),
        "codex's session is in the run's journal"
    );
    assert!(
        !bench.home.join(".codex/sessions").exists(),
        "the user's CODEX_HOME is untouched"
    );
}

//! `baton pipeline`: stages in one worktree, a review that decides for real, and the
//! whole landing as one commit.

mod common;

use common::{Agent, Before, Bench, FIX_ADD, FIX_TASK, FIXED, PYTEST};

const PASS: &str = r#"cmd:echo '{"verdict": "pass", "findings": []}'"#;

/// The fix, and on a second call (a repair round) a comment saying what it does.
const FIX_THEN_COMMENT: &str = "cmd:if grep -q 'return a + b' calc.py; then sed -i 's/return a + b/return a + b  # adds/' calc.py; else sed -i '0,/return a - b/s//return a + b/' calc.py; fi";

/// Blocks until the fix says what it does.
const WANTS_COMMENT: &str = r#"cmd:if grep -q '# adds' calc.py; then echo '{"verdict": "pass", "findings": []}'; else echo '{"verdict": "block", "findings": [{"path": "calc.py", "line": 5, "severity": "minor", "blocking": true, "message": "say what add() does"}]}'; fi"#;

fn pipeline(bench: &Bench, stages: &[&str]) -> common::Ran {
    let mut args = vec![
        "pipeline", "--task", FIX_TASK, "--scope", "calc.py", "--check", PYTEST, "--json",
    ];
    for s in stages {
        args.extend(["--stage", s]);
    }
    bench.baton(&args)
}

#[test]
fn implement_then_review_lands_as_one_commit_naming_both_agents() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let implement = format!("{FIX_ADD}:implement");
    let review = format!("{PASS}:review");
    let ran = pipeline(&bench, &[&implement, &review]);
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["stages"][1]["review"], "pass", "{report:#}");
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert!(bench.read("calc.py").contains(FIXED));
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("(implement)"), "{message}");
    assert!(message.contains("(review)"), "{message}");
}

#[test]
fn a_blocking_finding_goes_back_to_the_implementer_then_the_review_passes() {
    let bench = Bench::with_fixture("python-calc");
    let implement = format!("{FIX_THEN_COMMENT}:implement");
    let review = format!("{WANTS_COMMENT}:review");
    let ran = pipeline(&bench, &[&implement, &review]);
    ran.expect(0);
    let report = ran.json();
    let stage = &report["stages"][1];
    assert_eq!(stage["rounds"], 1, "{report:#}");
    assert_eq!(stage["review"], "pass");
    assert!(bench.read("calc.py").contains("return a + b  # adds"));
}

#[test]
fn a_review_without_a_json_verdict_fails_the_stage_and_the_work_is_saved() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let implement = format!("{FIX_ADD}:implement");
    let ran = pipeline(&bench, &[&implement, "cmd:echo LGTM:review"]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(report["stopped"][0], 2, "{report:#}");
    assert!(
        report["stopped"][1]
            .as_str()
            .unwrap()
            .contains("no JSON verdict"),
        "{report:#}"
    );
    before.assert_untouched(&bench);
    // The work so far is in the user's stash.
    assert_eq!(bench.stash_list().len(), 1, "{:?}", bench.stash_list());
    assert!(bench.git(&["show", "stash@{0}:calc.py"]).contains(FIXED));
}

#[test]
fn a_stage_that_fails_its_checks_stops_the_pipeline_with_the_work_saved() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let implement = format!("{FIX_ADD}:implement");
    let breaks = "cmd:sed -i 's/return a + b/return a * b/' calc.py:tests";
    let review = format!("{PASS}:review");
    let ran = pipeline(&bench, &[&implement, breaks, &review]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(report["stopped"][0], 2, "{report:#}");
    assert_eq!(
        report["stages"].as_array().unwrap().len(),
        2,
        "the review never ran"
    );
    before.assert_untouched(&bench);
    assert!(bench.git(&["show", "stash@{0}:calc.py"]).contains("a * b"));
}

#[test]
fn claude_s_review_blocks_codex_repairs_in_its_session_and_the_whole_lands() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let model = bench.scripted(&[Agent::Codex, Agent::Claude], "pipeline-review");
    let ran = pipeline(&bench, &["codex:implement", "claude:review"]);
    ran.expect(0);
    let report = ran.json();
    let review = &report["stages"][1];
    assert_eq!(review["rounds"], 1, "{report:#}");
    assert_eq!(review["review"], "pass");
    // The finding that blocked it stays in the report.
    assert_eq!(review["findings"][0]["message"], "say what add() does");
    // One commit on the user's branch with both stages' work, naming both agents.
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert!(bench.read("calc.py").contains("return a + b  # adds"));
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.contains("codex (implement), claude (review)"),
        "{message}"
    );
    // The review was shown the change so far.
    let asked_claude = model
        .requests()
        .iter()
        .filter(|r| r.path.contains("/messages"))
        .any(|r| r.body.to_string().contains("return a + b"));
    assert!(asked_claude, "the reviewer never saw the diff");
}

#[test]
fn a_pipeline_file_gives_the_task_and_the_stages() {
    let bench = Bench::with_fixture("python-calc");
    let file = bench.root.join("fix.toml");
    let text = format!(
        "task = {task:?}\nscope = [\"calc.py\"]\nchecks = [{PYTEST:?}]\n\n[[stage]]\nagent = {FIX_ADD:?}\n\n[[stage]]\nagent = {PASS:?}\ntemplate = \"review\"\n",
        task = FIX_TASK
    );
    std::fs::write(&file, text).unwrap();
    let ran = bench.baton(&["pipeline", file.to_str().unwrap(), "--json"]);
    ran.expect(0);
    assert_eq!(ran.json()["stages"][0]["template"], "implement");
    assert!(bench.read("calc.py").contains(FIXED));
}

#[test]
fn a_first_stage_that_changes_nothing_stops_with_nothing_to_save() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let review = format!("{PASS}:review");
    let ran = pipeline(&bench, &["cmd:true:implement", &review]);
    ran.expect(4);
    assert_eq!(ran.json()["stopped"][0], 1);
    before.assert_untouched(&bench);
    assert!(bench.stash_list().is_empty());
}

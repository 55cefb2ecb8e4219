//! `baton compare`: one task, several candidates at once, the winner picked by
//! evidence and landed, every other change kept as a ref.

mod common;

use common::{Agent, Before, Bench, FIX_ADD, FIX_TASK, FIXED, PYTEST};

/// The fix plus a comment line: correct, and larger than [`FIX_ADD`].
const FIX_WITH_COMMENT: &str =
    "cmd:sed -i '0,/return a - b/s//# add, not subtract\\n    return a + b/' calc.py";
/// The same change with whitespace left at the end of the comment line.
const FIX_WITH_COMMENT_TRAILING: &str =
    "cmd:sed -i '0,/return a - b/s//# add, not subtract   \\n    return a + b/' calc.py";
const WRONG_FIX: &str = "cmd:sed -i '0,/return a - b/s//return a * b/' calc.py";

fn compare(bench: &Bench, agents: &[&str], extra: &[&str]) -> common::Ran {
    let mut args = vec![
        "compare", "--task", FIX_TASK, "--scope", "calc.py", "--check", PYTEST, "--json",
    ];
    for a in agents {
        args.extend(["--agent", a]);
    }
    args.extend_from_slice(extra);
    bench.baton(&args)
}

fn refs(bench: &Bench, id: &str) -> Vec<String> {
    bench
        .git(&[
            "for-each-ref",
            "--format=%(refname)",
            &format!("refs/baton/compare/{id}/"),
        ])
        .lines()
        .map(str::to_string)
        .collect()
}

fn column(report: &serde_json::Value, key: &str) -> Vec<serde_json::Value> {
    report["candidates"]
        .as_array()
        .expect("the report lists its candidates")
        .iter()
        .map(|c| c[key].clone())
        .collect()
}

#[test]
fn two_identical_changes_outvote_a_smaller_unique_one() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = compare(
        &bench,
        &[FIX_WITH_COMMENT, FIX_ADD, FIX_WITH_COMMENT_TRAILING],
        &[],
    );
    ran.expect(0);
    let report = ran.json();
    // One of the two identical changes wins (the first of them to finish).
    assert!(
        [1, 3].contains(&report["winner"].as_u64().unwrap_or(0)),
        "{report:#}"
    );
    assert_eq!(report["rule"], "votes");
    assert_eq!(column(&report, "votes"), [2, 1, 2]);
    // The winner landed as one verified commit on the user's branch.
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    let landed = bench.read("calc.py");
    // Either of the two: whitespace at the end of a line aside, they are one change.
    let lines: Vec<&str> = landed.lines().map(str::trim).collect();
    assert!(
        lines
            .windows(2)
            .any(|w| w == ["# add, not subtract", "return a + b"]),
        "{landed}"
    );
    // Every change is kept as a ref, the landed one too.
    let id = report["id"].as_str().unwrap();
    assert_eq!(refs(&bench, id).len(), 3);
    assert!(
        ran.stderr.contains("identical changes vote"),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_smallest_passing_change_wins_and_another_can_be_landed_instead() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = compare(
        &bench,
        &[WRONG_FIX, FIX_WITH_COMMENT, FIX_ADD],
        &["--on-pass", "keep"],
    );
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["winner"], 3, "{report:#}");
    assert_eq!(report["rule"], "smallest");
    assert_eq!(
        column(&report, "verdict"),
        ["checks_failed", "passed", "passed"]
    );
    // Kept, not landed: the user's branch is as it was, every change is a ref.
    before.assert_untouched(&bench);
    let id = report["id"].as_str().unwrap().to_string();
    assert_eq!(refs(&bench, &id).len(), 3);

    // The user prefers the commented fix after all.
    let shown = bench.baton(&["compare", "show", &id, "--diff"]);
    shown.expect(0);
    assert!(shown.stdout.contains("=== candidate 2"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("+    # add, not subtract"),
        "{}",
        shown.stdout
    );
    bench.baton(&["compare", "land", &id, "2"]).expect(0);
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert!(bench.read("calc.py").contains("# add, not subtract"));
    let after = bench.baton(&["compare", "show", &id, "--json"]);
    assert!(
        after.json()["landed"]
            .as_str()
            .unwrap_or_default()
            .starts_with("candidate 2"),
        "{}",
        after.stdout
    );
}

#[test]
fn losers_can_be_stashed_and_their_refs_stay() {
    let bench = Bench::with_fixture("python-calc");
    let ran = compare(
        &bench,
        &[WRONG_FIX, FIX_WITH_COMMENT, FIX_ADD],
        &["--losers", "stash"],
    );
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["winner"], 3, "{report:#}");
    assert!(bench.read("calc.py").contains(FIXED));
    // Both others are in the user's stash, and still kept as refs.
    assert_eq!(bench.stash_list().len(), 2, "{:?}", bench.stash_list());
    let id = report["id"].as_str().unwrap();
    assert_eq!(refs(&bench, id).len(), 3);
    assert_eq!(bench.worktree_count(), 1, "the losers' worktrees are gone");
}

#[test]
fn first_pass_stops_the_others_and_keeps_their_work() {
    let bench = Bench::with_fixture("python-calc");
    let slow = "cmd:sed -i 's/def sub/def sub_/' calc.py && sleep 30";
    let started = std::time::Instant::now();
    let ran = compare(&bench, &[slow, FIX_ADD], &["--first-pass"]);
    ran.expect(0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "the slow candidate was not stopped: {:?}",
        started.elapsed()
    );
    let report = ran.json();
    assert_eq!(report["winner"], 2, "{report:#}");
    assert_eq!(column(&report, "cancelled"), [true, false]);
    assert!(bench.read("calc.py").contains(FIXED));
    // The stopped candidate's half-done work is still kept.
    let id = report["id"].as_str().unwrap();
    let kept = bench.git(&["show", &format!("refs/baton/compare/{id}/1:calc.py")]);
    assert!(kept.contains("def sub_"), "{kept}");
}

#[test]
fn bad_input_is_refused_before_any_candidate_starts() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let cases: &[(&[&str], &str)] = &[
        (&["-n", "0", "--agent", FIX_ADD], "-n 0"),
        (&["--agents", "codx"], "codx"),
        (&["--agent", FIX_ADD, "--judge", "nobody"], "--judge"),
        (&["-n", "9", "--agent", FIX_ADD], "[compare] max"),
    ];
    for (extra, said) in cases {
        let mut args = vec!["compare", "--task", FIX_TASK];
        args.extend_from_slice(extra);
        let ran = bench.baton(&args);
        ran.expect(2);
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
        assert!(ran.stderr.contains(said), "{said}: {}", ran.stderr);
    }
    before.assert_nothing_started(&bench);
}

#[test]
fn codex_claude_and_gemini_compete_and_the_smallest_correct_change_wins() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let model = bench.scripted(
        &[Agent::Codex, Agent::Claude, Agent::Gemini],
        "compare-three",
    );
    let ran = bench.baton(&[
        "compare",
        "--task",
        FIX_TASK,
        "--agents",
        "codex@gpt-5.5-mini,claude,gemini",
        "--scope",
        "calc.py",
        "--check",
        PYTEST,
        "--on-pass",
        "keep",
        "--json",
    ]);
    ran.expect(0);
    let report = ran.json();
    assert_eq!(
        column(&report, "verdict"),
        ["checks_failed", "passed", "passed"],
        "{report:#}"
    );
    assert_eq!(report["winner"], 3, "gemini's smaller fix wins: {report:#}");
    assert_eq!(report["rule"], "smallest");
    assert_eq!(column(&report, "model")[0], "gpt-5.5-mini");
    // The model codex asked the server for is the one the candidate named.
    let asked: Vec<String> = model
        .requests()
        .iter()
        .filter(|r| r.path.contains("/responses"))
        .filter_map(|r| r.body["model"].as_str().map(str::to_string))
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|m| m == "gpt-5.5-mini"),
        "{asked:?}"
    );
    before.assert_untouched(&bench);
    let id = report["id"].as_str().unwrap().to_string();
    assert_eq!(refs(&bench, &id).len(), 3);
    // Claude's larger fix is landed instead of the winner.
    bench.baton(&["compare", "land", &id, "2"]).expect(0);
    let calc = bench.read("calc.py");
    assert!(calc.contains("\"\"\"Add two numbers.\"\"\""), "{calc}");
    assert!(calc.contains(FIXED));
}

#[test]
fn a_judge_breaks_a_tie_and_a_judge_that_cannot_answer_changes_nothing() {
    // Two correct changes of the same size, different: rules 1-3 leave a tie.
    let swapped = "cmd:sed -i '0,/return a - b/s//return b + a/' calc.py";
    let bench = Bench::with_fixture("python-calc");
    let ran = compare(
        &bench,
        &[FIX_ADD, swapped],
        &["--on-pass", "keep", "--judge", "cmd:echo 'candidate 2'"],
    );
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["winner"], 2, "{report:#}");
    assert_eq!(report["rule"], "judge");

    let ran = compare(
        &bench,
        &[FIX_ADD, swapped],
        &["--on-pass", "keep", "--judge", "cmd:exit 1"],
    );
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["rule"], "first_to_finish", "{report:#}");
    let first = column(&report, "finished")
        .iter()
        .position(|f| f == 1)
        .map(|i| i as u64 + 1);
    assert_eq!(report["winner"].as_u64(), first);
}

#[test]
fn run_model_sets_the_model_the_agent_asks_for() {
    let bench = Bench::with_fixture("python-calc");
    let model = bench.scripted(&[Agent::Codex], "fix-add");
    bench
        .run_fix("codex", &["--model", "gpt-5.5-mini", "--check", PYTEST])
        .expect(0);
    let asked: Vec<String> = model
        .requests()
        .iter()
        .filter(|r| r.path.contains("/responses"))
        .filter_map(|r| r.body["model"].as_str().map(str::to_string))
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|m| m == "gpt-5.5-mini"),
        "{asked:?}"
    );
}

//! `baton pipeline`: stages in one worktree, a review that decides for real, and the
//! whole landing as one commit.

mod common;

use common::{Agent, Before, Bench, FIX_ADD, FIX_TASK, FIXED, PYTEST};

const PASS: &str = r#"cmd:echo '{"verdict": "pass", "findings": []}'"#;

/// The fix, and on a second call (a repair round) a comment saying what it does.
const FIX_THEN_COMMENT: &str = "cmd:if grep -q 'return a + b' calc.py; then sed -i 's/return a + b/return a + b  # adds/' calc.py; else sed -i '0,/return a - b/s//return a + b/' calc.py; fi";

/// Blocks until the fix says what it does.
const WANTS_COMMENT: &str = r#"cmd:if grep -q '# adds' calc.py; then echo '{"verdict": "pass", "findings": []}'; else echo '{"verdict": "block", "findings": [{"path": "calc.py", "line": 5, "severity": "minor", "blocking": true, "message": "say what add() does"}]}'; fi"#;

/// The landed commit's `Baton-Stage` trailers, as git parses them.
fn stage_trailers(bench: &Bench) -> Vec<String> {
    bench
        .git(&[
            "log",
            "-1",
            "--format=%(trailers:key=Baton-Stage,valueonly)",
        ])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Writes the pipeline file `name` at the bench's root (outside the repository).
fn pipeline_file(bench: &Bench, name: &str, text: &str) -> String {
    let file = bench.root.join(name);
    std::fs::write(&file, text).unwrap();
    file.to_string_lossy().into_owned()
}

/// The stage numbers of the run's rounds, as its journal records them.
fn stage_rounds(bench: &Bench) -> Vec<u64> {
    let report = bench.report(&bench.only_run());
    report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["stage"]["number"].as_u64())
        .collect()
}

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
    // Each stage's agent is named in a trailer of its own, as git reads trailers.
    assert_eq!(
        stage_trailers(&bench),
        ["1 implement codex", "2 review claude"],
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

#[test]
fn claude_s_review_with_no_json_verdict_fails_the_stage_and_codex_s_fix_is_stashed() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let _model = bench.scripted(&[Agent::Codex, Agent::Claude], "pipeline-review-no-json");
    let ran = pipeline(&bench, &["codex:implement", "claude:review"]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(report["stopped"][0], 2, "{report:#}");
    assert_eq!(
        report["stages"][1]["review"],
        "the review gave no JSON verdict"
    );
    before.assert_untouched(&bench);
    before.assert_fix_stashed_once(&bench);
}

#[test]
fn a_stage_failing_its_own_check_stops_before_the_next_stage_and_the_work_is_stashed() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    // The docs stage's own check holds README.md to the truth; it is not run after
    // the fix (where it passes anyway), and it fails after the docs stage.
    let file = pipeline_file(
        &bench,
        "fix.toml",
        &format!(
            "task = {FIX_TASK:?}\nchecks = [{PYTEST:?}]\n\n[[stage]]\nagent = {FIX_ADD:?}\nscope = [\"calc.py\"]\n\n[[stage]]\nagent = \"cmd:echo 'add() subtracts' >> README.md\"\ntemplate = \"docs\"\nscope = [\"README.md\"]\nchecks = [\"! grep -q subtracts README.md\"]\n\n[[stage]]\nagent = {review:?}\ntemplate = \"review\"\n",
            review = format!("cmd:touch review-ran; {}", &PASS["cmd:".len()..])
        ),
    );
    let ran = bench.baton(&["pipeline", &file, "--json"]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(report["stopped"][0], 2, "{report:#}");
    assert_eq!(
        report["stages"][1]["verdict"], "checks_failed",
        "{report:#}"
    );
    // The review never ran: no round of stage 3 in the journal, nothing it wrote.
    assert_eq!(report["stages"].as_array().unwrap().len(), 2);
    assert_eq!(stage_rounds(&bench), [1, 2]);
    before.assert_untouched(&bench);
    // The work so far (the fix and the docs stage's line) is in the user's stash.
    assert_eq!(bench.stash_list().len(), 1, "{:?}", bench.stash_list());
    assert!(bench.git(&["show", "stash@{0}:calc.py"]).contains(FIXED));
    assert!(
        bench
            .git(&["show", "stash@{0}:README.md"])
            .contains("add() subtracts")
    );
    let stashed = bench.git(&["show", "--name-only", "--format=", "stash@{0}"]);
    assert!(!stashed.contains("review-ran"), "{stashed}");
}

#[test]
fn a_stage_failing_its_own_check_with_on_fail_keep_leaves_the_worktree_for_a_look() {
    let bench = Bench::with_fixture("python-calc");
    let file = pipeline_file(
        &bench,
        "fix.toml",
        &format!(
            "task = {FIX_TASK:?}\non_fail = \"keep\"\n\n[[stage]]\nagent = {FIX_ADD:?}\n\n[[stage]]\nagent = \"cmd:echo 'add() subtracts' >> README.md\"\ntemplate = \"docs\"\nchecks = [\"! grep -q subtracts README.md\"]\n"
        ),
    );
    let ran = bench.baton(&["pipeline", &file, "--json"]);
    ran.expect(1);
    assert_eq!(ran.json()["stopped"][0], 2);
    assert!(bench.stash_list().is_empty());
    // Kept: the run's branch and worktree hold the work, and `baton status` says so.
    let run = bench.only_run();
    let state = bench.report(&run);
    assert_eq!(state["outcome"]["action"], "kept", "{state:#}");
    assert_eq!(state["verdict"], "checks_failed");
    let worktree = std::path::PathBuf::from(state["worktree"].as_str().unwrap());
    let readme = std::fs::read_to_string(worktree.join("README.md")).unwrap();
    assert!(readme.contains("add() subtracts"));
    assert_eq!(bench.baton_branches(), [format!("baton/{run}")]);
}

#[test]
fn a_stage_writing_outside_its_own_scope_fails_though_another_stage_may_write_there() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    // calc.py is the fix stage's; the docs stage may only write README.md.
    let file = pipeline_file(
        &bench,
        "fix.toml",
        &format!(
            "task = {FIX_TASK:?}\nchecks = [{PYTEST:?}]\n\n[[stage]]\nagent = {FIX_ADD:?}\nscope = [\"calc.py\"]\n\n[[stage]]\nagent = \"cmd:echo '# add() adds' >> README.md; sed -i 's/return a + b/return b + a/' calc.py\"\ntemplate = \"docs\"\nscope = [\"README.md\"]\n"
        ),
    );
    let ran = bench.baton(&["pipeline", &file, "--json"]);
    ran.expect(3);
    let report = ran.json();
    assert_eq!(report["stopped"][0], 2, "{report:#}");
    let stage = &report["stages"][1];
    assert_eq!(stage["verdict"], "scope_violated", "{report:#}");
    assert_eq!(stage["outside_scope"].as_array().unwrap().len(), 1);
    assert!(
        stage["outside_scope"][0]
            .as_str()
            .unwrap()
            .starts_with("calc.py:"),
        "{report:#}"
    );
    before.assert_untouched(&bench);
    assert!(
        bench
            .git(&["show", "stash@{0}:calc.py"])
            .contains("return b + a")
    );
}

#[test]
fn the_landed_commit_has_a_trailer_per_stage_naming_its_agent() {
    let bench = Bench::with_fixture("python-calc");
    let implement = format!("{FIX_ADD}:implement");
    let docs = "cmd:echo '`add(a, b)` adds.' >> README.md:docs";
    let review = format!("{PASS}:review");
    let ran = bench.baton(&[
        "pipeline", "--task", FIX_TASK, "--check", PYTEST, "--stage", &implement, "--stage", docs,
        "--stage", &review,
    ]);
    ran.expect(0);
    assert_eq!(
        stage_trailers(&bench),
        [
            format!("1 implement {FIX_ADD}"),
            "2 docs cmd:echo '`add(a, b)` adds.' >> README.md".to_string(),
            format!("3 review {PASS}"),
        ]
    );
    // The whole was judged by every stage's checks and lands as one commit.
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("Baton-Run: "), "{message}");
    assert!(
        message.contains(&format!("Baton-Checks: {PYTEST} (passed)")),
        "{message}"
    );
    assert_eq!(
        bench.git(&["diff", "--name-only", "HEAD~1", "HEAD"]).trim(),
        "README.md\ncalc.py"
    );
}

#[test]
fn a_stage_s_own_check_runs_after_that_stage_not_before_it() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    // README.md says what add() does only once the docs stage wrote it: its check
    // would fail after the fix stage, and is not run there.
    let file = pipeline_file(
        &bench,
        "fix.toml",
        &format!(
            "task = {FIX_TASK:?}\nchecks = [{PYTEST:?}]\n\n[[stage]]\nagent = {FIX_ADD:?}\n\n[[stage]]\nagent = \"cmd:echo 'add() adds' >> README.md\"\ntemplate = \"docs\"\nchecks = [\"grep -q 'add() adds' README.md\"]\n"
        ),
    );
    let ran = bench.baton(&["pipeline", &file, "--json"]);
    ran.expect(0);
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert!(bench.read("README.md").contains("add() adds"));
    // The whole was judged by every stage's checks before it landed.
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.contains(
            "Baton-Checks: python3 -m pytest -q (passed); grep -q 'add() adds' README.md (passed)"
        ),
        "{message}"
    );
}

/// A sweep task file whose one task is the pipeline `review.toml` (written beside it):
/// the fix, then a review.
fn sweep_of_a_pipeline(bench: &Bench, review_toml: &str) -> String {
    pipeline_file(bench, "review.toml", review_toml);
    pipeline_file(
        bench,
        "tasks.toml",
        &format!(
            "[[task]]\nid = \"other\"\ntask = \"Say what sub() does\"\nagent = \"cmd:echo '# sub subtracts' >> calc.py\"\n\n[[task]]\nid = \"fix-add\"\ntask = {FIX_TASK:?}\npipeline = \"review.toml\"\n"
        ),
    )
}

#[test]
fn a_sweep_task_that_is_a_pipeline_lands_through_the_queue_as_one_commit() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let review = format!(
        "scope = [\"calc.py\"]\nchecks = [{PYTEST:?}]\n\n[[stage]]\nagent = {FIX_ADD:?}\n\n[[stage]]\nagent = {PASS:?}\ntemplate = \"review\"\n"
    );
    let tasks = sweep_of_a_pipeline(&bench, &review);
    let ran = bench.baton(&["sweep", &tasks, "-j", "1", "--json"]);
    ran.expect(0);
    let report = ran.json();
    let fix = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "fix-add")
        .unwrap();
    assert_eq!(fix["landed"], true, "{report:#}");
    // Both tasks landed on main, the pipeline's as one commit naming both stages.
    assert_eq!(
        bench
            .git(&["rev-list", "--count", &format!("{}..HEAD", before.head)])
            .trim(),
        "2"
    );
    assert!(bench.read("calc.py").contains(FIXED));
    assert!(bench.read("calc.py").contains("# sub subtracts"));
    let fix_commit = bench
        .git(&["log", "--format=%H %s"])
        .lines()
        .find(|l| l.ends_with(FIX_TASK))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .unwrap();
    let trailers = bench.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Baton-Stage,valueonly)",
        &fix_commit,
    ]);
    assert_eq!(
        trailers
            .lines()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>(),
        [format!("1 implement {FIX_ADD}"), format!("2 review {PASS}")]
    );
}

#[test]
fn a_bad_pipeline_file_in_a_sweep_is_refused_before_any_task_starts() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let review = format!("[[stage]]\nagent = {FIX_ADD:?}\n\n[[stage]]\nagnt = \"claude\"\n");
    let tasks = sweep_of_a_pipeline(&bench, &review);
    let ran = bench.baton(&["sweep", &tasks]);
    ran.expect(2);
    let errors: Vec<&str> = ran.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{}", ran.stderr);
    // The task file's line and field, then the pipeline file's line and what is wrong.
    assert!(
        errors[0].contains("tasks.toml:9: task `fix-add`, field `pipeline`"),
        "{}",
        ran.stderr
    );
    assert!(
        errors[0].contains("review.toml:5: unknown field `agnt`"),
        "{}",
        ran.stderr
    );
    // The first task, good as it is, never began.
    before.assert_nothing_started(&bench);
}

#[test]
fn a_sweep_stopped_before_its_pipeline_task_ran_resumes_it_from_the_same_pipeline_file() {
    let bench = Bench::with_fixture("python-calc");
    let review = format!(
        "scope = [\"calc.py\"]\nchecks = [{PYTEST:?}]\n\n[[stage]]\nagent = {FIX_ADD:?}\n\n[[stage]]\nagent = {PASS:?}\ntemplate = \"review\"\n"
    );
    pipeline_file(&bench, "review.toml", &review);
    let tasks = pipeline_file(
        &bench,
        "tasks.toml",
        &format!(
            "[[task]]\nid = \"other\"\ntask = \"Say what sub() does\"\nagent = \"cmd:sleep 2 && echo '# sub subtracts' >> calc.py\"\n\n[[task]]\nid = \"fix-add\"\ntask = {FIX_TASK:?}\npipeline = \"review.toml\"\n"
        ),
    );
    // Ctrl-C while the first task's agent works: the pipeline task never started.
    use std::os::unix::process::CommandExt;
    let mut child = bench
        .baton_command(&["sweep", &tasks, "-j", "1"])
        .process_group(0)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !bench.run_ids().iter().any(|r| {
        bench
            .journal_file(r, "events.jsonl")
            .contains("agent.started")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling the process group of a child we spawned.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));

    // Resumed from elsewhere: the journal's copy of the task file still finds
    // review.toml where the task file was.
    let sweeps = bench.repo.join(".git/baton/sweeps");
    let id = std::fs::read_dir(&sweeps)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .unwrap();
    let ran = bench.baton_in(
        &bench.root,
        &[
            "-C",
            bench.repo.to_str().unwrap(),
            "sweep",
            "resume",
            &id,
            "--json",
        ],
    );
    ran.expect(0);
    assert!(bench.read("calc.py").contains(FIXED));
    let stages = bench.git(&["log", "--format=%(trailers:key=Baton-Stage,valueonly)"]);
    assert!(stages.contains("review"), "{stages}");
}

#[test]
fn a_pipeline_shows_each_stage_as_it_goes_and_no_hand_off_as_an_outcome() {
    let bench = Bench::with_fixture("python-calc");
    let implement = format!("{FIX_ADD}:implement");
    let review = format!("{PASS}:review");
    let ran = bench.baton(&[
        "pipeline", "--task", FIX_TASK, "--stage", &implement, "--stage", &review, "--scope",
        "calc.py", "--check", PYTEST,
    ]);
    ran.expect(0);
    // Both stages' agents and checks, as a run shows them, while it goes.
    assert_eq!(
        ran.stderr.matches("agent  finished in").count(),
        2,
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("check  python3 -m pytest -q — passed"),
        "{}",
        ran.stderr
    );
    // A stage's run kept for the next stage is no decision for the user to make.
    assert!(!ran.stderr.contains("decide with"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("outcome  committed onto main"),
        "{}",
        ran.stderr
    );
}

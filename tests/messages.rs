//! Stories of the words baton uses: `status` as a person reads it (newest first,
//! filtered, cut to the terminal, words that agree), JSON a script can rely on (the
//! report's documented fields, live and interrupted runs told apart, errors as JSON),
//! and messages that point at where the work really is.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bench, FIX_ADD};

fn keep_edit(bench: &Bench, task: &str, agent: &str) -> String {
    let ran = bench.baton(&[
        "run",
        "--task",
        task,
        "--agent",
        agent,
        "--on-pass",
        "keep",
        "--json",
    ]);
    ran.json()["run_id"].as_str().unwrap().to_string()
}

#[test]
fn status_lists_newest_first_filters_limits_and_fits_the_terminal() {
    let bench = Bench::with_fixture("python-calc");
    let first = keep_edit(
        &bench,
        "a first task with a rather long description that goes on",
        "cmd:echo a > a.txt",
    );
    let wide = keep_edit(&bench, "日本語のタスク名", "cmd:echo b > b.txt");
    let merged = bench.run_fix(FIX_ADD, &[]);
    merged.expect(0);
    let last = merged.json()["run_id"].as_str().unwrap().to_string();

    let ran = bench.baton(&["status"]);
    ran.expect(0);
    let rows: Vec<&str> = ran
        .stdout
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        rows[0].starts_with(&last) && rows[2].starts_with(&first),
        "{}",
        ran.stdout
    );

    let ran = bench.baton(&["status", "--limit", "1"]);
    assert_eq!(ran.stdout.lines().count(), 2, "{}", ran.stdout);
    let ran = bench.baton(&["status", "--state", "kept"]);
    let rows: Vec<&str> = ran.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", ran.stdout);
    assert!(rows.iter().all(|r| !r.starts_with(&last)), "{}", ran.stdout);

    // At 80 columns every row fits, the long task cut with `…`; the wide task's
    // columns still line up with the others'.
    let mut cmd = bench.baton_command(&["status"]);
    let out = cmd
        .env("COLUMNS", "80")
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let width = |l: &str| unicode_width::UnicodeWidthStr::width(l);
    assert!(table.lines().all(|l| width(l) <= 80), "{table}");
    assert!(table.contains('…'), "{table}");
    let agent_col = |l: &str| {
        let at = l.find("cmd:").unwrap();
        width(&l[..at])
    };
    let wide_row = table.lines().find(|l| l.starts_with(&wide)).unwrap();
    let first_row = table.lines().find(|l| l.starts_with(&first)).unwrap();
    assert_eq!(agent_col(wide_row), agent_col(first_row), "{table}");
    // Words agree with numbers.
    assert!(table.contains("ok (1 file)"), "{table}");
    assert!(!table.contains("1 files"), "{table}");
}

#[test]
fn every_field_of_a_report_is_documented() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--check", "true"]);
    ran.expect(0);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.md"),
    )
    .unwrap();
    let report = ran.json();
    let mut fields: Vec<String> = report.as_object().unwrap().keys().cloned().collect();
    for nested in ["settings", "agent_result", "outcome", "scope"] {
        fields.extend(report[nested].as_object().unwrap().keys().cloned());
    }
    fields.extend(report["checks"][0].as_object().unwrap().keys().cloned());
    fields.extend(report["attempts"][0].as_object().unwrap().keys().cloned());
    for f in fields {
        assert!(
            doc.contains(&format!("`{f}`")),
            "`{f}` is not in docs/report.md"
        );
    }
}

#[test]
fn status_json_tells_a_live_run_from_an_interrupted_one() {
    let bench = Bench::with_fixture("python-calc");
    let mut child = bench
        .baton_command(&common::fix_args("cmd:sleep 30", &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = |bench: &Bench| {
        bench.baton(&["status", "--json"]).json()[0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&bench) != "running (agent)" {
        assert!(
            Instant::now() < deadline,
            "never running: {}",
            state(&bench)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(state(&bench), "interrupted (agent)");
    bench.baton(&["recover"]).expect(0);
}

#[test]
fn a_failed_command_given_json_prints_its_error_as_json() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&["show", "nope", "--json"]);
    ran.expect(baton::exit::USAGE);
    let error = &ran.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no run matches `nope`"),
        "{error}"
    );
    assert_eq!(error["exit_code"], baton::exit::USAGE);
    assert!(ran.stderr.starts_with("error: "), "{}", ran.stderr);
}

#[test]
fn deciding_on_a_run_that_is_still_running_says_so() {
    let bench = Bench::with_fixture("python-calc");
    let mut child = bench
        .baton_command(&common::fix_args("cmd:sleep 30", &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while bench.run_ids().is_empty()
        || !bench
            .journal_file(&bench.run_ids()[0], "events.jsonl")
            .contains("agent.started")
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let ran = bench.baton(&["merge", "last"]);
    child.kill().unwrap();
    child.wait().unwrap();
    ran.expect(baton::exit::USAGE);
    assert!(ran.stderr.contains("is still running"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("is agent"), "{}", ran.stderr);
    bench.baton(&["recover"]).expect(0);
}

#[test]
fn a_conflict_points_at_the_kept_worktree_when_the_branch_does_not_hold_the_change() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--on-pass", "keep"]);
    let worktree = ran.json()["worktree"].as_str().unwrap().to_string();
    bench.write(
        "calc.py",
        &bench
            .read("calc.py")
            .replace("return a - b", "return b + a"),
    );
    bench.git(&["commit", "-qam", "my own fix"]);
    let merged = bench.baton(&["merge", "last"]);
    merged.expect(baton::exit::CONFLICT);
    assert!(
        merged
            .stderr
            .contains(&format!("in the kept worktree {worktree}")),
        "{}",
        merged.stderr
    );
    assert!(merged.stderr.contains("diff.patch"), "{}", merged.stderr);
    assert!(!merged.stderr.contains("from branch"), "{}", merged.stderr);
}

#[test]
fn a_cause_is_not_said_twice() {
    let bench = Bench::with_fixture("python-calc");
    let agent = common::REMOVE_OWN_JOURNAL;
    let ran = bench.baton(&common::fix_args(agent, &[]));
    ran.expect(baton::exit::BATON_FAILED);
    assert_eq!(
        ran.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        ran.stderr
    );
}

//! Stories of what a person sees while work runs: a live status line on a terminal, a
//! line for a stage that runs long in a log, `-v` and `-q`, a wait for another baton,
//! and why an agent or a check failed, on screen.

mod common;

use std::process::Command;

use common::{Bench, FIX_ADD, PYTEST};

/// Runs baton under a pseudo-terminal (util-linux `script`), as a person at a
/// terminal would, and returns everything the terminal received.
/// `text` without its SGR colour codes (`ESC [ … m`).
fn uncoloured(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let code = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[code..].starts_with('m') {
            rest = &after[code + 1..];
        } else {
            out.push_str("\u{1b}[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn at_a_terminal(bench: &Bench, args: &[&str]) -> (i32, String) {
    let ran = bench.at_a_terminal(args, &[("TERM", "xterm")]);
    (ran.code, ran.stdout)
}

#[test]
fn at_a_terminal_a_live_status_line_shows_the_stage_the_time_and_the_agents_latest_action() {
    let bench = Bench::with_fixture("python-calc");
    let agent = format!("cmd:echo reading-calc-py; sleep 1.5; {}", &FIX_ADD[4..]);
    let (code, screen) = at_a_terminal(&bench, &common::fix_args(&agent, &["--check", PYTEST]));
    assert_eq!(code, 0, "{screen}");
    let screen = uncoloured(&screen);
    // The status line is redrawn in place (indicatif clears the line), and carries
    // the stage, the seconds so far and the agent's latest action.
    assert!(screen.contains("\u{1b}[2K"), "no live line: {screen:?}");
    let status = screen
        .split(['\r', '\n'])
        .find(|l| l.contains("reading-calc-py") && l.contains("agent") && l.contains("1s"))
        .unwrap_or_else(|| panic!("no status line with the agent's action: {screen:?}"));
    assert!(!status.contains("finished"), "{status}");
    // The stage's final line replaces it, and the run ends with its summary.
    assert!(screen.contains("agent  finished in"), "{screen}");
    assert!(
        screen.contains("check  python3 -m pytest -q — passed"),
        "{screen}"
    );
    assert!(screen.contains("passed — committed onto main"), "{screen}");
}

#[test]
fn not_at_a_terminal_a_stage_that_runs_past_30_seconds_is_told() {
    let bench = Bench::with_fixture("python-calc");
    let agent = format!("cmd:sleep 31; {}", &FIX_ADD[4..]);
    let ran = bench.baton(&common::fix_args(&agent, &[]));
    ran.expect(0);
    assert!(
        ran.stderr.contains("    agent  still running after 30s\n"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains('\u{1b}'),
        "no escape codes in a log: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("after 1m"), "{}", ran.stderr);
}

#[test]
fn verbose_streams_the_agents_and_the_checks_output_and_quiet_shows_only_the_result() {
    let bench = Bench::with_fixture("python-calc");
    let agent = format!("cmd:echo hello-from-the-agent; {}", &FIX_ADD[4..]);
    let ran = bench.baton(&common::fix_args(
        &agent,
        &[
            "-v",
            "--check",
            "echo the-check-speaks",
            "--on-pass",
            "keep",
        ],
    ));
    ran.expect(0);
    assert!(
        ran.stderr.contains("    agent  | hello-from-the-agent\n"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("    check  | the-check-speaks\n"),
        "{}",
        ran.stderr
    );

    let ran = bench.baton(&common::fix_args(FIX_ADD, &["-q"]));
    ran.expect(0);
    let shown: Vec<&str> = ran.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(shown.len(), 2, "only the result: {}", ran.stderr);
    assert!(
        shown[0].contains("passed — committed onto main"),
        "{}",
        ran.stderr
    );
    assert!(shown[1].starts_with("  journal: "), "{}", ran.stderr);
}

#[test]
fn waiting_for_another_baton_says_so() {
    let bench = Bench::with_fixture("python-calc");
    // Another baton (pid 4242, as its lock file says) holds the repository for 2 s.
    std::fs::create_dir_all(bench.repo.join(".git/baton")).unwrap();
    let lock = bench.repo.join(".git/baton/lock");
    std::fs::write(&lock, "4242").unwrap();
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ran = bench.baton(&common::fix_args(FIX_ADD, &[]));
    holder.wait().unwrap();
    ran.expect(0);
    assert!(
        ran.stderr
            .contains("waiting for another baton (pid 4242) to finish with this repository"),
        "{}",
        ran.stderr
    );
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn an_agent_that_fails_shows_the_last_lines_of_its_stderr() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&common::fix_args(
        "cmd:echo 'fatal: no credentials for the model' >&2; echo goodbye; exit 3",
        &[],
    ));
    ran.expect(baton::exit::AGENT_FAILED);
    assert!(
        ran.stderr
            .contains("    agent  | fatal: no credentials for the model\n"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_failing_check_shows_its_last_lines_during_the_run_and_in_show() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&common::fix_args(
        FIX_ADD,
        &["--check", "echo 'AssertionError: 5 != -1'; exit 1"],
    ));
    ran.expect(baton::exit::CHECKS_FAILED);
    assert!(
        ran.stderr
            .contains("    check  | AssertionError: 5 != -1\n"),
        "{}",
        ran.stderr
    );
    let shown = bench.baton(&["show", "last"]);
    assert!(
        shown.stdout.contains("| AssertionError: 5 != -1"),
        "{}",
        shown.stdout
    );
}

#[test]
fn a_kept_run_that_fails_verification_again_names_the_paths_and_the_rules_it_broke() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.run_fix(FIX_ADD, &["--on-pass", "keep"]);
    ran.expect(0);
    let worktree = std::path::PathBuf::from(ran.json()["worktree"].as_str().unwrap());
    // Someone edits the kept worktree outside its scope.
    std::fs::write(worktree.join("notes.txt"), "by hand\n").unwrap();
    let merged = bench.baton(&["merge", "last"]);
    merged.expect(baton::exit::SCOPE_VIOLATION);
    let error = merged
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", merged.stderr));
    assert!(error.contains("notes.txt: outside the scope"), "{error}");
    assert!(
        bench.read("calc.py").contains("return a - b"),
        "nothing landed"
    );
}

/// An SGR colour code (`ESC [ … m`) anywhere in `text`.
fn has_colour(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let code: String = r
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .collect();
            !code.is_empty() && r[code.len()..].starts_with('m')
        })
    })
}

#[test]
fn colour_on_a_terminal_none_with_no_color_or_when_piped_and_as_asked_with_color() {
    let bench = Bench::with_fixture("python-calc");
    let (code, screen) = at_a_terminal(&bench, &common::fix_args(FIX_ADD, &["--on-pass", "keep"]));
    assert_eq!(code, 0, "{screen}");
    assert!(
        has_colour(&screen),
        "stage names and the verdict are coloured: {screen:?}"
    );

    let piped = bench.baton(&common::fix_args(FIX_ADD, &["--on-pass", "keep"]));
    assert!(!has_colour(&piped.stderr), "{:?}", piped.stderr);

    let mut cmd = Command::new("script");
    let line = format!(
        "{} run --task t --agent 'cmd:true' --on-pass keep",
        env!("CARGO_BIN_EXE_baton")
    );
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(&bench.repo);
    bench.hermetic_env(&mut cmd);
    cmd.env("NO_COLOR", "1").env("TERM", "xterm");
    let out = cmd.output().unwrap();
    assert!(
        !has_colour(&String::from_utf8_lossy(&out.stdout)),
        "NO_COLOR is honoured"
    );

    let always = bench.baton(&common::fix_args(
        FIX_ADD,
        &["--color", "always", "--on-pass", "keep"],
    ));
    assert!(has_colour(&always.stderr), "{:?}", always.stderr);
    let (_, never) = at_a_terminal(&bench, &["--color", "never", "status"]);
    assert!(!has_colour(&never), "{never:?}");

    let diff = bench.baton(&["show", "last", "--diff", "--color", "always"]);
    diff.expect(0);
    assert!(
        diff.stdout.contains("\u{1b}[32m+    return a + b"),
        "{:?}",
        diff.stdout
    );
    let plain = bench.baton(&["show", "last", "--diff"]);
    assert!(!has_colour(&plain.stdout) && plain.stdout.contains("+    return a + b"));
}

#[test]
fn clap_errors_look_like_batons_own() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&["run", "--task", "x", "--timeout", "5 minutes"]);
    ran.expect(baton::exit::USAGE);
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", ran.stderr);
    assert!(
        lines[0].starts_with("error: invalid value '5 minutes'"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("see `baton run --help`"), "{}", lines[0]);
    let ran = bench.baton(&["frobnicate"]);
    ran.expect(baton::exit::USAGE);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
}

/// True when a board row of `task` at `stage` is on the screen: the task, its run id
/// and its stage, in that order. A row as wide as the terminal is followed by the next
/// one with no line break (the terminal wraps it), so a row may start mid-line.
fn shows_row(lines: &[&str], task: &str, stage: &str) -> bool {
    lines.iter().any(|l| {
        l.match_indices(task).any(|(i, _)| {
            let starts_row = l[..i].chars().next_back().is_none_or(|c| c == ' ');
            let mut words = l[i..].split_whitespace();
            starts_row
                && words.next() == Some(task)
                && words
                    .next()
                    .is_some_and(|id| id.len() == 20 && id.contains('-'))
                && words.next() == Some(stage)
        })
    })
}

#[test]
fn at_a_terminal_a_sweep_shows_a_line_per_active_run_and_one_of_totals() {
    let bench = Bench::with_fixture("python-calc");
    let tasks = bench.root.join("tasks.toml");
    std::fs::write(
        &tasks,
        "[[task]]\nid = \"one\"\ntask = \"Note one\"\nagent = \"cmd:sleep 1.2 && echo 1 >> docs/one.md\"\nscope = [\"docs/**\"]\n\n[[task]]\nid = \"two\"\ntask = \"Note two\"\nagent = \"cmd:sleep 1.2 && echo 2 >> docs/two.md\"\nscope = [\"docs/**\"]\n",
    )
    .unwrap();
    let (code, screen) = at_a_terminal(&bench, &["sweep", tasks.to_str().unwrap(), "-j", "2"]);
    assert_eq!(code, 0, "{screen}");
    // Every control sequence out (colours, cursor moves, line clears): what is left
    // is the text of each line the board drew.
    let mut text = String::new();
    let mut chars = screen.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    let screen = text;
    let lines: Vec<&str> = screen.split(['\r', '\n']).collect();
    // While both agents work: a line for each, with its stage, and the totals.
    assert!(
        shows_row(&lines, "one", "agent"),
        "no line for the run of `one`: {screen:?}"
    );
    assert!(
        shows_row(&lines, "two", "agent"),
        "no line for the run of `two`: {screen:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("2 running · 0/2 finished · 0 waiting to land · 0 landed")),
        "no line of totals: {screen:?}"
    );
    // Runs of one baton waiting a moment for each other's lock are no news.
    assert!(!screen.contains("waiting for another baton"), "{screen}");
    // The queue's news goes above the board, and the summary ends the sweep.
    assert!(screen.contains("landed"), "{screen}");
    assert!(bench.read("docs/one.md").contains('1') && bench.read("docs/two.md").contains('2'));
}

//! What a person sees, pinned: the progress lines and summary of typical runs, and the
//! one-line errors of bad input, each with its exit status. Snapshots (insta) are taken
//! after the parts that change from run to run — run ids, temporary paths, commit ids,
//! durations — are replaced by placeholders, so a change to any word shows in review.

mod common;

use common::{Bench, FIX_ADD, PYTEST, Ran};

/// `ran`'s exit status and stderr, with what differs between runs replaced.
fn screen(bench: &Bench, ran: &Ran) -> String {
    let mut text = format!("exit {}\n{}", ran.code, ran.stderr);
    for run in bench.run_ids() {
        text = text.replace(&run, "RUN");
    }
    text = text.replace(&bench.root.display().to_string(), "ROOT");
    let words: Vec<String> = text
        .split_inclusive(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .map(|w| {
            let core = w.trim_end_matches(|c: char| c.is_whitespace() || c == '(' || c == ')');
            let tail = &w[core.len()..];
            let is_hash = core.len() >= 7 && core.chars().all(|c| c.is_ascii_hexdigit());
            let is_secs = core.ends_with('s')
                && core[..core.len() - 1].parse::<f64>().is_ok()
                && core.contains('.');
            if is_hash {
                format!("HASH{tail}")
            } else if is_secs {
                format!("N.Ns{tail}")
            } else {
                w.to_string()
            }
        })
        .collect();
    let text = words.concat();
    // Worktree directories carry a hash of where the repository lives.
    text.split('\n')
        .map(|l| match l.find("/repo-") {
            Some(i) => {
                let end = l[i + 6..].find('/').map(|j| i + 6 + j).unwrap_or(l.len());
                format!("{}/repo-KEY{}", &l[..i], &l[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_run_that_lands() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&common::fix_args(FIX_ADD, &["--check", PYTEST]));
    insta::assert_snapshot!(screen(&bench, &ran));
}

#[test]
fn a_run_that_leaves_its_scope() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&common::fix_args(
        "cmd:echo oops > notes.txt && echo more > docs/extra.md",
        &["--check", PYTEST],
    ));
    insta::assert_snapshot!(screen(&bench, &ran));
}

#[test]
fn a_run_whose_check_fails_then_falls_back() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&common::fix_args(
        "cmd:echo broken > calc.py",
        &["--check", PYTEST, "--fallback", FIX_ADD],
    ));
    insta::assert_snapshot!(screen(&bench, &ran));
}

#[test]
fn the_error_lines_of_bad_input() {
    let bench = Bench::with_fixture("python-calc");
    let bad: &[&[&str]] = &[
        &["run", "--task", "x"],
        &["run", "--task", "x", "--agent", "foo"],
        &[
            "run",
            "--task",
            "x",
            "--agent",
            "cmd:true",
            "--on-pass",
            "bogus",
        ],
        &[
            "run",
            "--task",
            "x",
            "--agent",
            "cmd:true",
            "--on-fail",
            "merge",
        ],
        &[
            "run", "--task", "x", "--agent", "cmd:true", "--base", "nope",
        ],
        &[
            "run", "--task", "x", "--agent", "cmd:true", "--scope", "src/[a",
        ],
        &[
            "run",
            "--task",
            "x",
            "--agent",
            "cmd:true",
            "--timeout",
            "5 minutes",
        ],
        &["merge", "deadbeef"],
        &["handoff", "new", "--template", "nope", "--task", "x"],
    ];
    let mut text = String::new();
    for args in bad {
        let ran = bench.baton(args);
        text.push_str(&format!(
            "$ baton {}\n{}\n",
            args.join(" "),
            screen(&bench, &ran)
        ));
    }
    bench.write(
        ".baton/config.toml",
        "[defaults]\nfallback_on = [\"timout\"]\n",
    );
    let ran = bench.baton(&["run", "--task", "x", "--agent", "cmd:true"]);
    text.push_str(&format!(
        "$ baton run --task x --agent cmd:true   # with a bad [defaults] fallback_on\n{}\n",
        screen(&bench, &ran)
    ));
    insta::assert_snapshot!(text);
}

//! Stories of the command line itself: what a user sees when they give baton bad
//! input (one clear error line that names the problem and the fix, exit status 2, and
//! nothing of theirs touched), and what each of the everyday commands (`init`,
//! `handoff new|render`, `status`, `show`, `demo`, `run --json`) leaves behind.

mod common;

use common::{Before, Bench, FIX_ADD, PYTEST, Ran, tree};

/// The one error line of a refused command: exit 2, a single non-empty line on
/// stderr that starts with `error:` and contains every word of `words`.
#[track_caller]
fn refused<'a>(ran: &'a Ran, words: &[&str]) -> &'a str {
    ran.expect(2);
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line on stderr, got:\n{}",
        ran.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("error:"), "{line}");
    for word in words {
        assert!(line.contains(word), "`{word}` not in: {line}");
    }
    line
}

/// `baton run` of the fix for the python-calc bug, with `extra` options.
fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--task", "Fix add()", "--agent", FIX_ADD];
    args.extend_from_slice(extra);
    args
}

/// The body of a handoff: everything after the second `+++` line.
fn body_of(handoff: &str) -> &str {
    let mut fences = 0;
    let mut offset = 0;
    for line in handoff.split_inclusive('\n') {
        offset += line.len();
        if line.trim_end_matches('\n') == "+++" {
            fences += 1;
            if fences == 2 {
                return &handoff[offset..];
            }
        }
    }
    panic!("no front matter in\n{handoff}")
}

fn front_matter(handoff: &str) -> toml::Table {
    let body = body_of(handoff);
    let head = &handoff[..handoff.len() - body.len()];
    let inner = head
        .strip_prefix("+++\n")
        .and_then(|h| h.strip_suffix("+++\n"))
        .unwrap_or_else(|| panic!("front matter not fenced by +++ lines:\n{head}"));
    inner.parse().unwrap_or_else(|e| panic!("{e}\n{inner}"))
}

// A. Bad input.

#[test]
fn outside_a_git_repository_baton_says_so_and_writes_nothing() {
    let bench = Bench::empty();
    let dir = bench.root.join("plain");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine\n").unwrap();
    let tree_before = tree(&dir);

    let ran = bench.baton_in(&dir, &["run", "--task", "x", "--agent", "cmd:true"]);
    refused(&ran, &["not inside a git repository", "git init"]);
    assert_eq!(
        tree(&dir),
        tree_before,
        "nothing was written in the directory"
    );
}

#[test]
fn a_bare_repository_is_refused_because_there_is_no_tree_to_land_in() {
    let bench = Bench::empty();
    let bare = bench.root.join("bare.git");
    std::fs::create_dir_all(&bare).unwrap();
    bench.git_in(&bare, &["init", "-q", "--bare"]);
    let tree_before = tree(&bare);

    let ran = bench.baton_in(&bare, &["run", "--task", "x", "--agent", "cmd:true"]);
    refused(&ran, &["bare repository", "clone"]);
    assert_eq!(tree(&bare), tree_before, "the bare repository is untouched");
    assert!(!bench.worktrees.exists(), "no worktree was made");
}

#[test]
fn a_repository_without_commits_asks_for_a_first_commit() {
    let bench = Bench::empty();
    std::fs::create_dir_all(&bench.repo).unwrap();
    bench.git(&["init", "-q", "-b", "main"]);
    bench.write("calc.py", "def add(a, b):\n    return a - b\n");
    bench.git(&["add", "calc.py"]);
    let tree_before = tree(&bench.repo);

    let ran = bench.baton(&["run", "--task", "x", "--agent", "cmd:true"]);
    refused(&ran, &["no commits", "git commit"]);
    assert_eq!(
        tree(&bench.repo),
        tree_before,
        "the repository, .git included, is untouched"
    );
    assert!(bench.run_ids().is_empty());
    assert!(bench.baton_branches().is_empty());
    assert!(!bench.worktrees.exists(), "no worktree was made");
}

#[test]
fn an_unknown_template_is_refused_with_the_list_of_templates() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&run_args(&["--template", "nope"]));
    refused(
        &ran,
        &[
            "nope",
            "implement",
            "bugfix",
            "refactor",
            "tests",
            "docs",
            "review",
        ],
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn a_repository_template_field_nobody_gave_is_named_with_the_var_that_fills_it() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(
        ".baton/templates/ticket.md.hbs",
        "# Task: {{task}}\n\nThis closes ticket {{ticket}}.\n",
    );
    let before = Before::take(&bench);

    let ran = bench.baton(&run_args(&["--template", "ticket"]));
    refused(&ran, &["`ticket`", "--var ticket="]);
    before.assert_nothing_started(&bench);

    let ran = bench.baton(&[
        "handoff",
        "new",
        "--template",
        "ticket",
        "--task",
        "Fix add()",
    ]);
    refused(&ran, &["`ticket`", "--var ticket="]);
    before.assert_nothing_started(&bench);

    let ran = bench.baton(&[
        "handoff",
        "new",
        "--template",
        "ticket",
        "--task",
        "Fix add()",
        "--var",
        "ticket=ABC-1",
    ]);
    ran.expect(0);
    assert!(
        ran.stdout.contains("This closes ticket ABC-1."),
        "{}",
        ran.stdout
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn a_repository_layout_reshapes_every_built_in_template_and_a_broken_one_is_named() {
    let bench = Bench::with_fixture("python-calc");
    // The repository's layout keeps the kinds' own parts but drops the scope section.
    bench.write(
        ".baton/templates/layout.md.hbs",
        "# {{task}}\n\n{{> intro}} Ours.\n\n## Must\n\n{{> rules}}\n\n## Checks\n\n\
         {{#each checks}}\n- `{{this}}`\n{{else}}\n{{> no_checks}}\n{{/each}}\n\n{{> closing}}\n",
    );
    let new = |template: &str, out: &str| {
        bench.baton(&[
            "handoff",
            "new",
            "--template",
            template,
            "--task",
            "Fix add()",
            "--check",
            PYTEST,
            "-o",
            out,
        ])
    };
    new("bugfix", "task.md").expect(0);
    let handoff = bench.read("task.md");
    let body = body_of(&handoff);
    assert!(
        body.starts_with("# Fix add()\n\nThis is a **bugfix**: find the root cause"),
        "{body}"
    );
    assert!(
        body.contains("change. Ours.\n\n## Must\n\n- Reproduce the bug first"),
        "{body}"
    );
    assert!(
        body.contains("\n\n## Checks\n\n- `python3 -m pytest -q`\n\nIf the fix needs"),
        "{body}"
    );
    assert!(body.ends_with("how you verified it.\n"), "{body}");
    assert!(!body.contains("## Scope"), "{body}");
    let fm = front_matter(&handoff);
    assert_eq!(fm["template"].as_str(), Some("bugfix"));

    // The layout applies to every kind, each with its own parts.
    new("review", "review.md").expect(0);
    let review = bench.read("review.md");
    assert!(
        body_of(&review).contains("Make **no code changes**. Ours.\n"),
        "{review}"
    );

    // A whole template of the repository's own still wins over the layout.
    bench.write(".baton/templates/bugfix.md.hbs", "Our own: {{task}}\n");
    new("bugfix", "own.md").expect(0);
    assert_eq!(body_of(&bench.read("own.md")), "Our own: Fix add()\n");

    // The layout is not a template to choose, and a broken one is named by its file.
    let ran = new("layout", "layout.md");
    refused(&ran, &["unknown template `layout`", "bugfix"]);
    bench.write(
        ".baton/templates/layout.md.hbs",
        "# {{task}}\n{{#each checks}}\n",
    );
    let before = Before::take(&bench);
    let ran = new("docs", "docs.md");
    refused(
        &ran,
        &[".baton/templates/layout.md.hbs", "`docs`", "line 3"],
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn an_invalid_glob_is_named_in_the_error() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&run_args(&["--scope", "src/[a"]));
    refused(&ran, &["invalid glob", "src/[a"]);
    before.assert_nothing_started(&bench);

    let ran = bench.baton(&run_args(&["--deny", "docs/[x"]));
    refused(&ran, &["invalid glob", "docs/[x"]);
    before.assert_nothing_started(&bench);
}

#[test]
fn malformed_front_matter_is_refused_whatever_is_wrong_with_it() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(
        "bad-toml.md",
        "+++\ntask = \"Fix add()\"\nscope = 3\n+++\n# Task: Fix add()\n",
    );
    bench.write("no-fence.md", "# Task: Fix add()\n\nJust a prompt.\n");
    bench.write(
        "unknown-key.md",
        "+++\ntask = \"Fix add()\"\ncolour = \"red\"\n+++\n# Task: Fix add()\n",
    );
    let before = Before::take(&bench);

    for (file, word) in [
        ("bad-toml.md", "line 3"),
        ("no-fence.md", "+++"),
        ("unknown-key.md", "colour"),
    ] {
        let ran = bench.baton(&["run", file, "--agent", FIX_ADD]);
        refused(&ran, &["front matter", word]);
        before.assert_nothing_started(&bench);
    }
}

#[test]
fn an_unknown_agent_and_a_missing_codex_are_refused() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);

    let ran = bench.baton(&["run", "--task", "Fix add()", "--agent", "foo"]);
    refused(&ran, &["unknown agent", "foo", "cmd:"]);
    before.assert_nothing_started(&bench);

    // codex configured at a path where it is not: the fix is named.
    std::fs::create_dir_all(bench.home.join(".config/baton")).unwrap();
    std::fs::write(
        bench.home.join(".config/baton/config.toml"),
        "[agents.codex]\npath = \"/nonexistent/codex\"\n",
    )
    .unwrap();
    let ran = bench.baton(&["run", "--task", "Fix add()", "--agent", "codex"]);
    refused(
        &ran,
        &[
            "codex is not installed",
            "/nonexistent/codex",
            "npm install -g @openai/codex@",
        ],
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn a_base_that_does_not_resolve_is_refused() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&run_args(&["--base", "no-such-branch"]));
    refused(&ran, &["no-such-branch", "--base"]);
    before.assert_nothing_started(&bench);
}

#[test]
fn a_worktree_directory_that_cannot_be_made_is_refused_before_the_run_starts() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let afile = bench.root.join("afile");
    std::fs::write(&afile, "a regular file\n").unwrap();
    let wt = afile.join("wt");

    // The bench sets BATON_WORKTREES_DIR to its own directory; this run needs another.
    let out = bench
        .baton_command(&run_args(&[]))
        .env("BATON_WORKTREES_DIR", &wt)
        .output()
        .expect("baton runs");
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    refused(&ran, &[wt.to_str().unwrap(), "BATON_WORKTREES_DIR"]);
    before.assert_nothing_started(&bench);
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "a regular file\n");
}

#[test]
fn merge_on_failure_and_an_unknown_policy_are_refused() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);

    let ran = bench.baton(&run_args(&["--on-fail", "merge"]));
    refused(&ran, &["--on-fail", "merge", "stash", "revert", "keep"]);
    before.assert_nothing_started(&bench);

    let ran = bench.baton(&run_args(&["--on-pass", "bogus"]));
    refused(
        &ran,
        &["--on-pass", "bogus", "merge", "revert", "stash", "keep"],
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn a_run_with_neither_a_handoff_nor_a_task_says_how_to_give_one() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&["run", "--agent", FIX_ADD]);
    refused(&ran, &["nothing to run", "--task", "baton run task.md"]);
    before.assert_nothing_started(&bench);
}

#[test]
fn merging_a_run_that_does_not_exist_points_at_status() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&["merge", "deadbeef"]);
    refused(&ran, &["no run matches", "deadbeef", "baton status"]);
    before.assert_nothing_started(&bench);
}

#[test]
fn merging_a_run_that_already_merged_is_refused_and_lands_nothing_twice() {
    let bench = Bench::with_fixture("python-calc");
    bench
        .baton(&run_args(&["--scope", "calc.py", "--check", PYTEST]))
        .expect(0);
    let run = bench.only_run();
    let after_first = Before::take(&bench);
    let report = bench.report(&run);

    let ran = bench.baton(&["merge", &run]);
    refused(&ran, &[&run, "merged", "kept"]);
    assert_eq!(bench.files(), after_first.files);
    assert_eq!(bench.index(), after_first.index);
    assert_eq!(bench.head(), after_first.head, "no second commit");
    assert_eq!(bench.run_ids(), [run.as_str()]);
    assert_eq!(bench.report(&run), report, "the run's report is unchanged");
    assert!(bench.stash_list().is_empty());
    bench.assert_clean();
}

#[test]
fn an_invalid_config_file_is_named_in_the_error() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", "checks = [\"pytest -q\"\n[defaults\n");
    let before = Before::take(&bench);
    let ran = bench.baton(&run_args(&[]));
    refused(&ran, &[".baton/config.toml"]);
    before.assert_nothing_started(&bench);
}

// B. Commands.

#[test]
fn init_writes_the_detected_checks_refuses_to_overwrite_and_run_uses_them() {
    let bench = Bench::with_fixture("python-calc");

    let ran = bench.baton(&["init"]);
    ran.expect(0);
    let config = bench.read(".baton/config.toml");
    assert!(config.contains(&format!("\"{PYTEST}\"")), "{config}");
    assert!(
        ran.stderr.contains(PYTEST) && ran.stderr.contains("pytest.ini"),
        "init says what it found and why:\n{}",
        ran.stderr
    );

    // The user edits it; a second init must not throw that away.
    let edited = format!("{config}# my own note\n");
    bench.write(".baton/config.toml", &edited);
    let ran = bench.baton(&["init"]);
    refused(&ran, &[".baton/config.toml", "already exists", "--force"]);
    assert_eq!(bench.read(".baton/config.toml"), edited);

    bench.baton(&["init", "--force"]).expect(0);
    assert_eq!(bench.read(".baton/config.toml"), config, "rewritten");

    // A run with no --check uses the configured checks.
    let ran = bench.baton(&["run", "--task", "Fix add()", "--agent", FIX_ADD, "--json"]);
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["checks"][0]["command"], PYTEST);
    assert_eq!(report["checks"][0]["status"], "passed");
    assert_eq!(report["outcome"]["action"], "merged");
    assert!(bench.read("calc.py").contains("return a + b"));
    bench.assert_clean();
}

#[test]
fn init_on_a_rust_crate_detects_cargo_test() {
    let bench = Bench::with_fixture("rust-calc");
    let ran = bench.baton(&["init"]);
    ran.expect(0);
    let config = bench.read(".baton/config.toml");
    assert!(config.contains("\"cargo test"), "{config}");
    assert!(!config.contains("pytest"), "{config}");
    assert!(ran.stderr.contains("Cargo.toml"), "{}", ran.stderr);
}

#[test]
fn a_handoff_written_by_handoff_new_renders_and_runs_as_written() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&[
        "handoff",
        "new",
        "--template",
        "bugfix",
        "--task",
        "Fix add() so it adds",
        "--scope",
        "calc.py",
        "--deny",
        "docs/**",
        "--check",
        PYTEST,
        "--context",
        "add(2, 3) returns -1",
        "--requirement",
        "Keep sub() as it is",
        "-o",
        "task.md",
    ]);
    ran.expect(0);
    let handoff = bench.read("task.md");
    assert!(handoff.starts_with("+++\n"), "{handoff}");

    let fm = front_matter(&handoff);
    assert_eq!(fm["task"].as_str(), Some("Fix add() so it adds"));
    let list = |key: &str| -> Vec<String> {
        fm[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not a list: {fm:?}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("scope"), ["calc.py"]);
    assert_eq!(list("deny"), ["docs/**"]);
    assert_eq!(list("checks"), [PYTEST]);

    let body = body_of(&handoff);
    assert!(body.starts_with("# Task: Fix add() so it adds\n"), "{body}");
    let mut last = 0;
    for section in [
        "## Context",
        "## Scope",
        "## Requirements",
        "## Patterns to follow",
        "## Verification",
        "## Notes",
    ] {
        let at = body
            .find(&format!("\n{section}\n"))
            .unwrap_or_else(|| panic!("no {section} in\n{body}"));
        assert!(at > last, "{section} is out of order in\n{body}");
        last = at;
    }
    assert!(body.contains("add(2, 3) returns -1"), "{body}");
    assert!(body.contains("Keep sub() as it is"), "{body}");

    // -o never overwrites.
    let ran = bench.baton(&[
        "handoff",
        "new",
        "--task",
        "Something else",
        "-o",
        "task.md",
    ]);
    refused(&ran, &["task.md", "already exists"]);
    assert_eq!(bench.read("task.md"), handoff);

    // render prints the prompt exactly: the body, without the contract.
    let ran = bench.baton(&["handoff", "render", "task.md"]);
    ran.expect(0);
    assert_eq!(ran.stdout, body);

    let ran = bench.baton(&["run", "task.md", "--agent", FIX_ADD, "--json"]);
    ran.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
    assert_eq!(ran.json()["checks"][0]["command"], PYTEST);
    let run = bench.only_run();
    assert_eq!(
        bench.journal_file(&run, "handoff.md"),
        handoff,
        "the journal keeps the handoff as it was sent"
    );
    bench.assert_clean();
}

#[test]
fn every_built_in_template_renders_from_a_task_alone() {
    let bench = Bench::with_fixture("python-calc");
    for template in ["implement", "bugfix", "refactor", "tests", "docs", "review"] {
        let ran = bench.baton(&[
            "handoff",
            "new",
            "--template",
            template,
            "--task",
            "Fix add()",
        ]);
        ran.expect(0);
        assert!(
            ran.stdout.contains("\n# Task: Fix add()\n"),
            "{template}:\n{}",
            ran.stdout
        );
        assert!(
            !ran.stdout.contains("{{") && !ran.stdout.contains("}}"),
            "{template} left a placeholder:\n{}",
            ran.stdout
        );
        let fm = front_matter(&ran.stdout);
        assert_eq!(fm["task"].as_str(), Some("Fix add()"), "{template}");
    }
}

#[test]
fn status_and_show_tell_what_each_run_did() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&["status"]);
    ran.expect(0);
    assert!(
        format!("{}{}", ran.stdout, ran.stderr).contains("no runs"),
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    let ran = bench.baton(&["status", "--json"]);
    ran.expect(0);
    assert_eq!(ran.json(), serde_json::json!([]));

    bench
        .baton(&run_args(&["--check", PYTEST, "--on-pass", "keep"]))
        .expect(0);
    let kept = bench.only_run();
    bench
        .baton(&[
            "run",
            "--task",
            "Make add() add",
            "--agent",
            FIX_ADD,
            "--check",
            PYTEST,
        ])
        .expect(0);
    let merged = bench
        .run_ids()
        .into_iter()
        .find(|id| *id != kept)
        .expect("a second run");

    let ran = bench.baton(&["status"]);
    ran.expect(0);
    let line = |id: &str| {
        ran.stdout
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", ran.stdout))
            .to_string()
    };
    assert!(line(&kept).contains("kept"), "{}", ran.stdout);
    assert!(line(&merged).contains("merged"), "{}", ran.stdout);

    let ran = bench.baton(&["status", "--json"]);
    ran.expect(0);
    let runs = ran.json();
    let runs = runs.as_array().expect("a JSON array");
    assert_eq!(runs.len(), 2, "{runs:?}");
    let ids: Vec<&str> = runs.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert!(
        ids.contains(&kept.as_str()) && ids.contains(&merged.as_str()),
        "{ids:?}"
    );

    let ran = bench.baton(&["show", &merged]);
    ran.expect(0);
    let shown = &ran.stdout;
    for word in [
        merged.as_str(),
        "Make add() add",
        "passed",
        PYTEST,
        "merged",
    ] {
        assert!(shown.contains(word), "`{word}` not shown:\n{shown}");
    }

    let ran = bench.baton(&["show", &merged, "--json"]);
    ran.expect(0);
    let report = ran.json();
    assert_eq!(report["run_id"], merged.as_str());
    assert_eq!(report["verdict"], "passed");
    assert_eq!(report["outcome"]["action"], "merged");

    let ran = bench.baton(&["show", &kept, "--diff"]);
    ran.expect(0);
    assert!(ran.stdout.contains("+++ b/calc.py"), "{}", ran.stdout);
    assert!(ran.stdout.contains("+    return a + b"), "{}", ran.stdout);
}

#[test]
fn run_json_prints_one_report_on_stdout_and_progress_on_stderr() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&run_args(&["--check", PYTEST, "--json"]));
    ran.expect(0);
    let report = ran.json();
    assert!(report.is_object(), "{report}");
    let run = bench.only_run();
    assert_eq!(report["run_id"], run.as_str());
    assert!(
        ran.stderr.contains(&run) && ran.stderr.contains("worktree"),
        "progress goes to stderr:\n{}",
        ran.stderr
    );
}

#[test]
fn the_demo_fixes_a_scratch_repository_and_will_not_reuse_a_full_directory() {
    let bench = Bench::empty();
    let dir = bench.root.join("demo");
    let dir_arg = dir.to_str().unwrap();

    let ran = bench.baton_in(&bench.root, &["demo", "--dir", dir_arg]);
    ran.expect(0);
    let calc = dir.join("calc");
    let source = std::fs::read_to_string(calc.join("calc.py")).unwrap();
    assert!(source.contains("return a + b"), "{source}");
    let message = bench.git_in(&calc, &["log", "-1", "--format=%B"]);
    assert!(message.contains("Baton-Run: "), "{message}");
    assert_eq!(bench.git_in(&calc, &["status", "--porcelain"]), "");

    let tree_before = tree(&dir);
    let ran = bench.baton_in(&bench.root, &["demo", "--dir", dir_arg]);
    refused(&ran, &["not empty", "--dir"]);
    assert_eq!(tree(&dir), tree_before, "the old demo is left as it was");
}

#[test]
fn durations_are_checked_when_the_command_is_read() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&run_args(&["--timeout", "90x"]));
    ran.expect(2);
    assert!(ran.stderr.contains("invalid duration"), "{}", ran.stderr);
    assert!(ran.stderr.contains("90x"), "{}", ran.stderr);
    before.assert_nothing_started(&bench);

    let ran = bench.baton(&run_args(&[
        "--timeout",
        "1h30m",
        "--check-timeout",
        "1h30m",
        "--json",
    ]));
    ran.expect(0);
    assert_eq!(
        ran.json()["settings"]["check_timeout_ms"],
        90 * 60 * 1000,
        "1h30m is an hour and a half"
    );
}

#[test]
fn auto_routes_the_task_by_the_rules_and_route_says_which_rule_chose() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&["route", "Fix the README typo"]);
    ran.expect(0);
    assert!(ran.stdout.starts_with("claude\n"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("rule 1") && ran.stdout.contains("readme"),
        "{}",
        ran.stdout
    );
    let ran = bench.baton(&["route", "Fix add() so it adds"]);
    assert!(
        ran.stdout.starts_with("codex\n") && ran.stdout.contains("default"),
        "{}",
        ran.stdout
    );

    // A repository's own rules: arithmetic goes to a scripted fix.
    std::fs::create_dir_all(bench.repo.join(".baton")).unwrap();
    std::fs::write(
        bench.repo.join(".baton/config.toml"),
        format!(
            "[[route]]\nwhen = [\"add\"]\nagent = \"{FIX_ADD}\"\n\n[[route]]\nagent = \"codex\"\n"
        ),
    )
    .unwrap();
    let ran = bench.baton(&[
        "run",
        "--task",
        "Make add() add",
        "--agent",
        "auto",
        "--check",
        PYTEST,
        "--json",
    ]);
    ran.expect(0);
    assert!(
        ran.stderr.contains("route") && ran.stderr.contains("rule 1"),
        "{}",
        ran.stderr
    );
    assert!(ran.json()["agent"].as_str().unwrap().starts_with("cmd:sed"));
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn a_bad_size_limit_is_named_whether_given_as_a_flag_or_in_the_handoff() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(
        "big.md",
        "+++\ntask = \"Fix add()\"\nmax_file_size = \"ten megs\"\n+++\n# Task: Fix add()\n",
    );
    let before = Before::take(&bench);

    let ran = bench.baton(&run_args(&["--max-file-size", "12Q"]));
    ran.expect(2);
    assert!(ran.stderr.contains("invalid size `12Q`"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("10M"),
        "the fix is shown: {}",
        ran.stderr
    );
    before.assert_nothing_started(&bench);

    let ran = bench.baton(&["run", "big.md", "--agent", FIX_ADD]);
    refused(&ran, &["front matter", "invalid size `ten megs`", "line 3"]);
    before.assert_nothing_started(&bench);
}

#[test]
fn recovering_a_run_that_does_not_exist_points_at_status() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&["recover", "deadbeef"]);
    refused(&ran, &["no run matches", "deadbeef", "baton status"]);
    before.assert_nothing_started(&bench);
}

//! Stories of what a new user meets in their first hour, and the conventions of git
//! and Rust command-line tools they expect baton to keep: routing that reads whole
//! words, a pager for `show --diff` at a terminal, shell completions and a man page,
//! `--help` that tells where things are, config errors that name the file and the
//! field, a doctor that checks every agent, and an `init` that says what comes next.
//! Each story asserts the exit status, what was printed, and that the user's files
//! were not touched.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Before, Bench, FIX_ADD, Ran};

/// A refused command: exit 2 and one line on stderr, starting `error:`, holding every
/// one of `words`.
#[track_caller]
fn refused<'a>(ran: &'a Ran, words: &[&str]) -> &'a str {
    ran.expect(2);
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one error line, got:\n{}", ran.stderr);
    let line = lines[0];
    assert!(line.starts_with("error:"), "{line}");
    for word in words {
        assert!(line.contains(word), "`{word}` not in: {line}");
    }
    line
}

fn at_terminal(bench: &Bench, args: &[&str], env: &[(&str, &str)]) -> Ran {
    bench.at_a_terminal(args, env)
}

/// A pager that marks what it was given, so a test sees it was used.
fn marking_pager(bench: &Bench, name: &str) -> PathBuf {
    let dir = bench.root.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"[paged by $(basename \"$0\") $*]\"\ncat\necho \"[end of page]\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn write_config(bench: &Bench, text: &str) {
    bench.write(".baton/config.toml", text);
    bench.git(&["add", ".baton/config.toml"]);
    bench.git(&["commit", "-q", "-m", "baton config"]);
}

// 3. Routing matches whole words.

#[test]
fn routing_reads_whole_words_and_their_inflections_not_prefixes() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let first_line = |task: &str| {
        let ran = bench.baton(&["route", task]);
        ran.expect(0);
        let mut lines = ran.stdout.lines();
        let agent = lines.next().unwrap_or_default().to_string();
        (agent, lines.collect::<Vec<_>>().join("\n"))
    };

    // "docker" starts with "doc" but is not a word about docs.
    let (agent, why) = first_line("add docker support");
    assert_eq!(agent, "codex", "{why}");
    assert!(why.contains("default"), "{why}");

    for (task, agent) in [
        ("Update the docs for the parser", "claude"),
        ("Document the public API", "claude"),
        ("Fix typos in the README.md", "claude"),
        ("Summarise what the parser does", "gemini"),
        ("Summarize the design", "gemini"),
        ("Write a summary of the changes", "gemini"),
        ("Reviewing the lexer", "gemini"),
        ("Explained: the lexer", "gemini"),
        ("Add a doctor command", "codex"),
        ("Fix the commentary generator", "codex"),
    ] {
        let (got, why) = first_line(task);
        assert_eq!(got, agent, "{task}: {why}");
        assert!(why.starts_with("  rule "), "the reason follows: {why}");
    }
    before.assert_nothing_started(&bench);
}

#[test]
fn a_route_to_an_unknown_agent_is_a_config_error_when_the_config_is_read() {
    let bench = Bench::with_fixture("python-calc");
    write_config(
        &bench,
        "[[route]]\nwhen = [\"migration\"]\nagent = \"claude\"\n\n[[route]]\nwhen = [\"schema\"]\nagent = \"clade\"\n\n[[route]]\nagent = \"codex\"\n",
    );
    let before = Before::take(&bench);
    // Not only when a run is routed there: any command that reads the config says so.
    for args in [
        vec!["route", "Add a migration"],
        vec!["run", "--task", "Fix add()", "--agent", FIX_ADD],
    ] {
        let ran = bench.baton(&args);
        refused(
            &ran,
            &[
                ".baton/config.toml",
                "[[route]] 2",
                "line 7",
                "clade",
                "codex, claude, gemini, cmd:<shell command>",
            ],
        );
        before.assert_nothing_started(&bench);
        assert!(bench.run_ids().is_empty());
    }
}

#[test]
fn a_route_word_that_can_never_match_is_a_config_error() {
    let bench = Bench::with_fixture("python-calc");
    write_config(
        &bench,
        "[[route]]\nwhen = [\"pull request\"]\nagent = \"claude\"\n",
    );
    let before = Before::take(&bench);
    let ran = bench.baton(&["route", "Open a pull request"]);
    refused(
        &ran,
        &[
            ".baton/config.toml",
            "[[route]] 1",
            "line 2",
            "pull request",
            "one word",
        ],
    );
    before.assert_nothing_started(&bench);
}

// 12. `show --diff` goes through a pager at a terminal.

#[test]
fn show_diff_is_paged_at_a_terminal_as_git_does_and_never_when_piped() {
    let bench = Bench::with_fixture("python-calc");
    bench.baton(&common::fix_args(FIX_ADD, &[])).expect(0);
    let before = Before::take(&bench);
    let marker = marking_pager(&bench, "mark");
    let marker = marker.to_str().unwrap();
    let show = ["show", "last", "--diff"];

    // Piped: the patch as is, whatever the pager settings say.
    let ran = bench
        .baton_command(&show)
        .env("BATON_PAGER", marker)
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(ran.status.success());
    assert!(piped.contains("+    return a + b"), "{piped}");
    assert!(!piped.contains("[paged by"), "{piped}");

    // At a terminal: BATON_PAGER first.
    let ran = at_terminal(
        &bench,
        &show,
        &[("BATON_PAGER", marker), ("PAGER", "false")],
    );
    ran.expect(0);
    assert!(ran.stdout.contains("[paged by mark ]"), "{}", ran.stdout);
    assert!(ran.stdout.contains("+    return a + b"), "{}", ran.stdout);
    assert!(
        ran.stdout.trim_end().ends_with("[end of page]"),
        "baton waits for its pager: {}",
        ran.stdout
    );

    // The page is coloured as the terminal would have been, and not with NO_COLOR.
    assert!(
        ran.stdout.contains("\u{1b}[32m+"),
        "colours in the page: {}",
        ran.stdout
    );
    let ran = at_terminal(&bench, &show, &[("BATON_PAGER", marker), ("NO_COLOR", "1")]);
    assert!(ran.stdout.contains("[paged by mark ]"), "{}", ran.stdout);
    assert!(!ran.stdout.contains('\u{1b}'), "no colour: {}", ran.stdout);

    // Then PAGER.
    let ran = at_terminal(&bench, &show, &[("PAGER", marker)]);
    ran.expect(0);
    assert!(ran.stdout.contains("[paged by mark ]"), "{}", ran.stdout);

    // An empty BATON_PAGER, or `cat`, means no pager: PAGER is not consulted.
    for none in ["", "cat"] {
        let ran = at_terminal(&bench, &show, &[("BATON_PAGER", none), ("PAGER", marker)]);
        ran.expect(0);
        assert!(
            !ran.stdout.contains("[paged by"),
            "{none:?}: {}",
            ran.stdout
        );
        assert!(ran.stdout.contains("+    return a + b"), "{}", ran.stdout);
    }
    let ran = at_terminal(&bench, &show, &[("PAGER", "")]);
    assert!(!ran.stdout.contains("[paged by"), "{}", ran.stdout);

    // Neither set: `less -FRX`, found on PATH.
    let less = marking_pager(&bench, "less");
    let path = format!(
        "{}:{}",
        less.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = at_terminal(&bench, &show, &[("PATH", &path)]);
    ran.expect(0);
    assert!(
        ran.stdout.contains("[paged by less -FRX]"),
        "{}",
        ran.stdout
    );
    before.assert_untouched(&bench);
    bench.assert_clean();
}

// 13. Completions and a man page.

#[test]
fn completions_for_bash_zsh_and_fish_and_a_man_page_anywhere() {
    let bench = Bench::empty();
    let anywhere = &bench.root;
    let ran = bench.baton_in(anywhere, &["completions", "bash"]);
    ran.expect(0);
    for word in [
        "baton",
        "run",
        "status",
        "show",
        "route",
        "doctor",
        "completions",
        "man",
    ] {
        assert!(ran.stdout.contains(word), "bash completion lacks {word}");
    }
    assert!(
        ran.stdout.contains("complete -F"),
        "a bash completion script"
    );
    let ran = bench.baton_in(anywhere, &["completions", "zsh"]);
    ran.expect(0);
    assert!(ran.stdout.starts_with("#compdef baton"), "{}", ran.stdout);
    let ran = bench.baton_in(anywhere, &["completions", "fish"]);
    ran.expect(0);
    assert!(ran.stdout.contains("complete -c baton"), "{}", ran.stdout);
    let ran = bench.baton_in(anywhere, &["completions", "tcsh"]);
    ran.expect(2);
    assert!(ran.stderr.contains("bash"), "{}", ran.stderr);

    let ran = bench.baton_in(anywhere, &["man"]);
    ran.expect(0);
    assert!(ran.stdout.starts_with(".TH"), "{}", ran.stdout);
    assert!(ran.stdout.contains("baton\\-run"), "the man page names run");
    assert!(
        ran.stdout.contains("BATON_WORKTREES_DIR"),
        "and the environment"
    );
    assert!(ran.stderr.is_empty(), "{}", ran.stderr);
}

#[test]
fn a_mistyped_command_or_value_keeps_clap_s_hint_on_its_one_line() {
    let bench = Bench::empty();
    for (args, words) in [
        (
            &["completions", "tcsh"][..],
            &[
                "'tcsh'",
                "possible values: bash",
                "fish",
                "zsh",
                "see `baton completions --help`",
            ][..],
        ),
        (
            &["stauts"][..],
            &["'stauts'", "'status'", "see `baton --help`"][..],
        ),
        (
            &["run", "--on-pas", "keep"][..],
            &["'--on-pass'", "see `baton run --help`"][..],
        ),
    ] {
        let ran = bench.baton_in(&bench.root, args);
        ran.expect(2);
        let lines: Vec<&str> = ran
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{}", ran.stderr);
        for word in words {
            assert!(lines[0].contains(word), "`{word}` not in: {}", lines[0]);
        }
    }
}

// 14. `--help` and `--version`.

#[test]
fn help_shows_examples_environment_config_files_and_every_agent() {
    let bench = Bench::empty();
    let ran = bench.baton_in(&bench.root, &["--help"]);
    ran.expect(0);
    for word in [
        "BATON_WORKTREES_DIR",
        "BATON_PAGER",
        "PAGER",
        "NO_COLOR",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        ".baton/config.toml",
        "~/.config/baton/config.toml",
    ] {
        assert!(
            ran.stdout.contains(word),
            "`{word}` not in --help:\n{}",
            ran.stdout
        );
    }

    let ran = bench.baton_in(&bench.root, &["run", "--help"]);
    ran.expect(0);
    assert!(ran.stdout.contains("Examples:"), "{}", ran.stdout);
    let examples: Vec<&str> = ran
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("baton run "))
        .collect();
    assert!(
        examples.len() >= 4,
        "a handful of real invocations: {examples:?}"
    );
    let agent_help = ran
        .stdout
        .split("--agent <")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap_or_default()
        .to_string();
    for agent in ["codex", "claude", "gemini", "cmd:<shell command>", "auto"] {
        assert!(
            agent_help.contains(agent),
            "--agent's help lacks {agent}: {agent_help}"
        );
    }
}

#[test]
fn version_names_the_commit_baton_was_built_from() {
    let bench = Bench::empty();
    let built_from = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    for flag in ["--version", "-V"] {
        let ran = bench.baton_in(&bench.root, &[flag]);
        ran.expect(0);
        assert_eq!(
            ran.stdout.trim(),
            format!("baton {} ({built_from})", env!("CARGO_PKG_VERSION"))
        );
    }
}

// 15. Config errors name the file and the field; unknown agents; -C.

#[test]
fn a_bad_value_in_the_config_is_named_by_file_field_and_line() {
    let bench = Bench::with_fixture("python-calc");
    write_config(&bench, "checks = []\n");
    let before = Before::take(&bench);
    let config = bench.repo.join(".baton/config.toml");
    let cases: &[(&str, &[&str])] = &[
        (
            "[defaults]\nagent = \"foo\"\n",
            &[
                "[defaults] agent",
                "line 2",
                "foo",
                "codex, claude, gemini, cmd:<shell command>, auto",
            ],
        ),
        (
            "[defaults]\nfallback = [\"claude\", \"bar\"]\n",
            &[
                "[defaults] fallback",
                "line 2",
                "bar",
                "codex, claude, gemini",
            ],
        ),
        (
            "[defaults]\non_fail = \"merge\"\n",
            &[
                "[defaults] on_fail",
                "line 2",
                "not verified",
                "stash, revert or keep",
            ],
        ),
        (
            "[defaults]\ndeny = [\"ok/**\", \"a{b\"]\n",
            &["[defaults] deny", "line 2", "a{b"],
        ),
        (
            "[defaults]\n\n[agents.codx]\nmodel = \"gpt-5.5\"\n",
            &["[agents.codx]", "line 3", "codex, claude, gemini"],
        ),
        (
            "[defaults]\non_pass = \"mrg\"\n",
            &["on_pass", "line 2", "mrg", "merge"],
        ),
    ];
    for (text, words) in cases {
        std::fs::write(&config, text).unwrap();
        // Passed the flags it names a problem with, or not: the config is named.
        let ran = bench.baton(&["run", "--task", "Fix add()", "--agent", FIX_ADD]);
        let line = refused(&ran, words);
        assert!(line.contains(config.to_str().unwrap()), "the file: {line}");
        assert!(
            !line.contains("--on-"),
            "no flag the user did not pass: {line}"
        );
        assert!(bench.run_ids().is_empty());
    }
    std::fs::write(&config, "checks = []\n").unwrap();
    before.assert_nothing_started(&bench);
}

#[test]
fn a_bad_value_in_a_handoff_is_named_by_file_field_and_line() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let handoff = bench.root.join("task.md");
    let cases: &[(&str, &[&str])] = &[
        (
            "agent = \"foo\"\n",
            &[
                "front matter",
                "`agent`",
                "line 3",
                "foo",
                "codex, claude, gemini, cmd:<shell command>, auto",
            ],
        ),
        (
            "agent = \"cmd:true\"\nfallback = [\"gemnii\"]\n",
            &["`fallback`", "line 4", "gemnii", "codex, claude, gemini"],
        ),
        (
            "agent = \"cmd:true\"\non_fail = \"merge\"\n",
            &["`on_fail`", "line 4", "not verified"],
        ),
        (
            "agent = \"cmd:true\"\non_fail = \"stsh\"\n",
            &["front matter", "line 4", "stsh", "keep"],
        ),
        (
            "agent = \"cmd:true\"\nscope = [\"a{b\"]\n",
            &["`scope`", "line 4", "a{b"],
        ),
    ];
    for (fields, words) in cases {
        std::fs::write(
            &handoff,
            format!("+++\ntask = \"Fix add()\"\n{fields}+++\nFix it.\n"),
        )
        .unwrap();
        let ran = bench.baton(&["run", handoff.to_str().unwrap()]);
        let line = refused(&ran, words);
        assert!(line.contains(handoff.to_str().unwrap()), "the file: {line}");
        assert!(
            !line.contains("--on-"),
            "no flag the user did not pass: {line}"
        );
    }
    before.assert_nothing_started(&bench);
    assert!(bench.run_ids().is_empty());
}

#[test]
fn an_unknown_agent_on_the_command_line_lists_every_agent() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let ran = bench.baton(&["run", "--task", "Fix add()", "--agent", "claud"]);
    refused(
        &ran,
        &[
            "unknown agent `claud`",
            "codex, claude, gemini, cmd:<shell command>, auto",
        ],
    );
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        FIX_ADD,
        "--fallback",
        "auto",
    ]);
    refused(
        &ran,
        &[
            "auto",
            "fallback",
            "codex, claude, gemini, cmd:<shell command>",
        ],
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn dash_c_on_a_directory_that_is_not_there_says_so() {
    let bench = Bench::with_fixture("python-calc");
    let before = Before::take(&bench);
    let missing = bench.root.join("no-such-dir");
    for args in [
        vec!["status"],
        vec!["run", "--task", "x", "--agent", FIX_ADD],
        vec!["init"],
    ] {
        let mut all = vec!["-C", missing.to_str().unwrap()];
        all.extend(args);
        let ran = bench.baton(&all);
        refused(
            &ran,
            &["-C", missing.to_str().unwrap(), "no such directory"],
        );
    }
    let file = bench.repo.join("calc.py");
    let ran = bench.baton(&["-C", file.to_str().unwrap(), "status"]);
    refused(&ran, &["-C", "not a directory"]);
    assert!(!missing.exists());
    before.assert_nothing_started(&bench);
}

// 19. The doctor checks every agent.

/// The doctor's lines for `agent`, as (ok?, what).
fn doctor_lines<'a>(stdout: &'a str, agent: &str) -> Vec<(&'a str, &'a str)> {
    let prefix = format!("{agent}: ");
    stdout
        .lines()
        .filter_map(|l| {
            let (status, rest) = l.split_once("  ")?;
            let rest = rest.trim_start().strip_prefix(&prefix)?;
            Some((status.trim(), rest))
        })
        .collect()
}

#[test]
fn doctor_checks_codex_claude_and_gemini_for_real() {
    let bench = Bench::with_fixture("python-calc");
    for cli in ["codex", "claude", "gemini"] {
        common::require_cli(cli);
    }
    let before = Before::take(&bench);
    let ran = bench.baton(&["doctor"]);
    ran.expect(0);
    for (agent, version, outside) in [
        ("codex", "0.169.0", "sandbox refuses writes outside"),
        ("claude", "2.1.197", "refuses edits outside"),
        ("gemini", "0.61.0", "refuses edits outside"),
    ] {
        let lines = doctor_lines(&ran.stdout, agent);
        assert_eq!(lines.len(), 4, "{agent}:\n{}", ran.stdout);
        assert!(lines.iter().all(|(s, _)| *s == "ok"), "{}", ran.stdout);
        assert!(lines[0].1.starts_with("found"), "{}", ran.stdout);
        assert!(
            lines[1].1.starts_with("version") && lines[1].1.contains(version),
            "{}",
            ran.stdout
        );
        assert!(
            lines[2].1.starts_with("edit lands in a worktree"),
            "{}",
            ran.stdout
        );
        assert!(lines[3].1.starts_with(outside), "{}", ran.stdout);
    }
    before.assert_nothing_started(&bench);
}

/// A PATH with codex alone of the agent CLIs.
fn path_with_codex_only(bench: &Bench) -> String {
    let bin = bench.root.join("codex-only");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(common::require_codex(), bin.join("codex")).unwrap();
    let system: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|p| !p.join("claude").exists() && !p.join("gemini").exists())
        .collect();
    std::env::join_paths(std::iter::once(bin).chain(system))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn doctor_reports_an_agent_that_is_not_installed_and_fails_only_a_configured_one() {
    let bench = Bench::with_fixture("python-calc");
    let path = path_with_codex_only(&bench);
    let doctor = |bench: &Bench| {
        let out = bench
            .baton_command(&["doctor"])
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", bench.root.join("cache"))
            .output()
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // Nothing asks for claude or gemini: missing, they are reported, not failed.
    let ran = doctor(&bench);
    ran.expect(0);
    for agent in ["claude", "gemini"] {
        let lines = doctor_lines(&ran.stdout, agent);
        assert_eq!(lines.len(), 1, "{}", ran.stdout);
        assert_eq!(lines[0].0, "--", "{}", ran.stdout);
        assert!(lines[0].1.contains("not installed"), "{}", ran.stdout);
    }
    assert!(
        doctor_lines(&ran.stdout, "codex")
            .iter()
            .all(|(s, _)| *s == "ok")
    );

    // The config names gemini: now its absence fails the doctor.
    write_config(&bench, "[defaults]\nfallback = [\"gemini\"]\n");
    let ran = doctor(&bench);
    ran.expect(2);
    let lines = doctor_lines(&ran.stdout, "gemini");
    assert_eq!(lines.len(), 1, "{}", ran.stdout);
    assert_eq!(lines[0].0, "FAIL", "{}", ran.stdout);
    assert!(
        lines[0].1.contains("not installed")
            && lines[0].1.contains("npm install -g @google/gemini-cli@"),
        "{}",
        ran.stdout
    );
    assert_eq!(doctor_lines(&ran.stdout, "claude")[0].0, "--");
}

// 20. `init` says what comes next.

#[test]
fn init_says_where_the_user_config_is_to_commit_baton_and_what_to_run_next() {
    let bench = Bench::with_fixture("python-calc");
    let ran = bench.baton(&["init"]);
    ran.expect(0);
    let user = bench.home.join(".config/baton/config.toml");
    assert!(
        ran.stderr.contains(user.to_str().unwrap()),
        "where the user-level config is:\n{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("commit .baton/") || ran.stderr.contains("git add .baton"),
        "whether to commit .baton/:\n{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("git add .baton && git commit"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("baton run --task"),
        "the next command:\n{}",
        ran.stderr
    );
    assert!(!user.exists(), "init writes only the repository's config");
    let status = bench.git(&["status", "--porcelain"]);
    assert_eq!(status, "?? .baton/\n", "only .baton/ is new: {status}");
}

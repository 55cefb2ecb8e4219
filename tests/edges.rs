//! Stories at the edges a new user meets: a repository with submodules, and limits
//! set to zero. Real git repositories in temp dirs, the `cmd:` agent, and what the
//! user would check afterwards: exit status, files, branches, stash, the report.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Bench, FIX_ADD, PYTEST};

/// Every file under `dir` (a git directory included) with its bytes.
fn tree_bytes(dir: &Path) -> Files {
    fn walk(base: &Path, dir: &Path, out: &mut Files) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A repository of its own at `<bench>/lib`, added to the bench's repository as the
/// submodule `vendor/lib` (from the local path: no network) and committed.
fn with_submodule() -> Bench {
    let bench = Bench::with_fixture("python-calc");
    let lib = bench.root.join("lib");
    std::fs::create_dir_all(lib.join("src")).unwrap();
    std::fs::write(lib.join("lib.txt"), "lib v1\n").unwrap();
    std::fs::write(lib.join("src/f.c"), "int f(void) { return 1; }\n").unwrap();
    bench.git_in(&lib, &["init", "-q", "-b", "main"]);
    bench.git_in(&lib, &["add", "-A"]);
    bench.git_in(&lib, &["commit", "-q", "-m", "lib"]);
    bench.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        lib.to_str().unwrap(),
        "vendor/lib",
    ]);
    bench.git(&["commit", "-q", "-m", "vendor lib"]);
    bench
}

/// Files by path, with their bytes.
type Files = BTreeMap<String, Vec<u8>>;

/// What of the user's submodule a run must leave alone: its files (its `.git` link
/// included), its git directory under `.git/modules`, and the repository's config.
fn submodule_state(bench: &Bench) -> (Files, Files, Vec<u8>) {
    (
        tree_bytes(&bench.repo.join("vendor/lib")),
        tree_bytes(&bench.repo.join(".git/modules")),
        std::fs::read(bench.repo.join(".git/config")).unwrap(),
    )
}

#[test]
fn the_agent_sees_the_submodule_checked_out_from_the_local_copy_without_the_network() {
    let bench = with_submodule();
    // The submodule's URL leads nowhere now: only the user's own copy can serve it.
    std::fs::remove_dir_all(bench.root.join("lib")).unwrap();
    let before = submodule_state(&bench);

    let ran = bench.baton(&[
        "run",
        "--task",
        "Note what the library says",
        "--agent",
        "cmd:cat vendor/lib/lib.txt vendor/lib/src/f.c > seen.txt",
        "--scope",
        "seen.txt",
        "--json",
    ]);
    ran.expect(0);
    assert_eq!(
        bench.read("seen.txt"),
        "lib v1\nint f(void) { return 1; }\n"
    );
    assert_eq!(ran.json()["outcome"]["action"], "merged");
    assert_eq!(
        submodule_state(&bench),
        before,
        "the user's submodule is untouched"
    );
    bench.assert_clean();
}

#[test]
fn a_write_inside_a_submodule_is_judged_and_nothing_of_the_run_lands() {
    let bench = with_submodule();
    let before = submodule_state(&bench);
    let head = bench.head();

    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &format!(
            "{FIX_ADD} && echo patched >> vendor/lib/lib.txt && echo 'int g;' > vendor/lib/src/g.c"
        ),
        "--scope",
        "calc.py",
        "--json",
    ]);
    ran.expect(3);
    let report = ran.json();
    assert_eq!(report["verdict"], "scope_violated");
    let judged = ran.judged();
    for (path, change) in [
        ("vendor/lib/lib.txt", "modified"),
        ("vendor/lib/src/g.c", "added"),
    ] {
        assert!(
            judged.contains(&(path.into(), change.into(), "inside_submodule".into())),
            "{path} in {judged:?}"
        );
    }
    assert!(
        ran.stderr
            .contains("vendor/lib/lib.txt: inside submodule `vendor/lib`"),
        "{}",
        ran.stderr
    );
    // Nothing landed, not even the in-scope half; the user's submodule is as it was.
    assert_eq!(bench.head(), head);
    assert!(bench.read("calc.py").contains("return a - b"));
    assert_eq!(submodule_state(&bench), before);
    assert_eq!(bench.stash_list().len(), 1, "kept by --on-fail stash");
    bench.assert_clean();
    // The work inside the submodule is in the run's patch, path by path.
    let patch = bench.journal_file(&bench.only_run(), "diff.patch");
    assert!(patch.contains("+++ b/vendor/lib/lib.txt"), "{patch}");
    assert!(patch.contains("+patched"), "{patch}");
    assert!(patch.contains("+++ b/vendor/lib/src/g.c"), "{patch}");
}

#[test]
fn a_commit_the_agent_makes_inside_a_submodule_is_judged_too() {
    let bench = with_submodule();
    let ran = bench.baton(&[
        "run",
        "--task",
        "Bump the library",
        "--agent",
        "cmd:cd vendor/lib && echo two > two.txt && git add two.txt && git -c user.name=A -c user.email=a@example.com commit -q -m two",
        "--on-fail",
        "revert",
        "--json",
    ]);
    ran.expect(3);
    assert_eq!(
        ran.judged(),
        [(
            "vendor/lib/two.txt".to_string(),
            "added".to_string(),
            "inside_submodule".to_string()
        )]
    );
    assert_eq!(ran.json()["outcome"]["action"], "reverted");
    assert!(!bench.repo.join("vendor/lib/two.txt").exists());
    bench.assert_clean();
}

#[test]
fn a_scope_that_reaches_into_a_submodule_is_refused_before_anything_starts() {
    let bench = with_submodule();
    for scope in ["vendor/**", "vendor/lib/", "**/*.c"] {
        let ran = bench.baton(&[
            "run",
            "--task",
            "Patch the library",
            "--agent",
            "cmd:echo x >> vendor/lib/lib.txt",
            "--scope",
            scope,
        ]);
        ran.expect(baton::exit::USAGE);
        let err = ran.stderr.trim();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "--scope `{scope}` reaches into submodule `vendor/lib`"
            )),
            "{err}"
        );
        assert!(err.contains("--deny vendor/lib/"), "{err}");
    }
    assert!(bench.run_ids().is_empty(), "no run was started");
    bench.assert_clean();

    // Denying the submodule is the way to keep a wide scope.
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        FIX_ADD,
        "--scope",
        "**",
        "--deny",
        "vendor/lib/",
        "--check",
        PYTEST,
    ]);
    ran.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn a_submodule_that_is_not_checked_out_is_never_fetched() {
    let bench = with_submodule();
    // As in a clone made without --recurse-submodules: a gitlink, no local copy.
    bench.git(&["submodule", "deinit", "-q", "-f", "vendor/lib"]);
    std::fs::remove_dir_all(bench.repo.join(".git/modules")).unwrap();
    let config = std::fs::read(bench.repo.join(".git/config")).unwrap();

    let ran = bench.baton(&[
        "run",
        "--task",
        "Patch the library",
        "--agent",
        "cmd:echo x > vendor/lib/lib.txt",
        "--scope",
        "vendor/lib/lib.txt",
    ]);
    ran.expect(baton::exit::USAGE);
    let err = ran.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("submodule `vendor/lib`"), "{err}");
    assert!(err.contains("not checked out here"), "{err}");
    assert!(err.contains("does not fetch"), "{err}");

    // With a scope that stays out, a write into the empty directory is still judged.
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &format!("{FIX_ADD} && echo new > vendor/lib/new.c"),
        "--scope",
        "calc.py",
        "--on-fail",
        "revert",
        "--json",
    ]);
    ran.expect(3);
    assert!(
        ran.judged().contains(&(
            "vendor/lib/new.c".into(),
            "added".into(),
            "inside_submodule".into()
        )),
        "{:?}",
        ran.judged()
    );
    assert!(bench.read("calc.py").contains("return a - b"));
    assert!(
        !bench.repo.join(".git/modules").exists(),
        "nothing was fetched"
    );
    assert_eq!(
        std::fs::read(bench.repo.join(".git/config")).unwrap(),
        config
    );
    bench.assert_clean();
}

/// An agent and a check that both take a moment: a zero limit that meant "at once"
/// would stop them.
fn slow_fix() -> String {
    format!("cmd:sleep 0.5 && {}", FIX_ADD.trim_start_matches("cmd:"))
}
const SLOW_CHECK: &str = "sleep 0.5 && python3 -m pytest -q";

#[test]
fn zero_means_no_limit_for_every_limit_flag() {
    for flag in [
        "--timeout",
        "--idle-timeout",
        "--check-timeout",
        "--max-file-size",
        "--max-files",
        "--max-lines",
    ] {
        let bench = Bench::with_fixture("python-calc");
        let agent = slow_fix();
        let zero = if flag.ends_with("timeout") { "0s" } else { "0" };
        let ran = bench.baton(&[
            "run",
            "--task",
            "Fix add()",
            "--agent",
            &agent,
            "--scope",
            "calc.py",
            "--check",
            SLOW_CHECK,
            flag,
            zero,
            "--json",
        ]);
        ran.expect(0);
        assert_eq!(ran.json()["verdict"], "passed", "{flag} {zero}");
        assert!(bench.read("calc.py").contains("return a + b"), "{flag}");
    }
}

const ZEROS: &str = "timeout = \"0s\"\nidle_timeout = \"0s\"\ncheck_timeout = \"0s\"\nmax_file_size = 0\nmax_files = 0\nmax_lines = 0\n";

#[test]
fn zero_means_no_limit_in_the_handoff_front_matter() {
    let bench = Bench::with_fixture("python-calc");
    let handoff = bench.root.join("task.md");
    std::fs::write(
        &handoff,
        format!(
            "+++\ntask = \"Fix add()\"\nagent = \"{}\"\nscope = [\"calc.py\"]\nchecks = [\"{SLOW_CHECK}\"]\n{ZEROS}+++\n# Fix add()\n",
            slow_fix()
        ),
    )
    .unwrap();
    let ran = bench.baton(&["run", handoff.to_str().unwrap(), "--json"]);
    ran.expect(0);
    let settings = &ran.json()["settings"];
    assert_eq!(settings["timeout_ms"], 0, "{settings}");
    assert_eq!(settings["check_timeout_ms"], 0, "{settings}");
    assert!(bench.read("calc.py").contains("return a + b"));
}

#[test]
fn zero_means_no_limit_in_the_config_defaults_and_wins_over_a_lower_layer() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", &format!("[defaults]\n{ZEROS}"));
    bench.git(&["add", ".baton"]);
    bench.git(&["commit", "-q", "-m", "baton config"]);
    let agent = slow_fix();
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &agent,
        "--scope",
        "calc.py",
        "--check",
        SLOW_CHECK,
        "--json",
    ]);
    ran.expect(0);
    assert!(bench.read("calc.py").contains("return a + b"));

    // A zero on the command line lifts a limit the config sets.
    let bench = Bench::with_fixture("python-calc");
    bench.write(
        ".baton/config.toml",
        "[defaults]\nmax_files = 1\ntimeout = \"100ms\"\n",
    );
    bench.git(&["add", ".baton"]);
    bench.git(&["commit", "-q", "-m", "baton config"]);
    let agent = format!("{agent} && echo more >> docs/notes.md");
    let ran = bench.baton(&[
        "run",
        "--task",
        "Fix add()",
        "--agent",
        &agent,
        "--max-files",
        "0",
        "--timeout",
        "0",
        "--json",
    ]);
    ran.expect(0);
    assert_eq!(
        ran.json()["scope"]["paths"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn the_help_of_every_limit_says_what_zero_means() {
    let bench = Bench::empty();
    let ran = bench.baton_in(&bench.root, &["run", "--help"]);
    ran.expect(0);
    let help = ran.stdout.replace('\n', " ");
    let help: String = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for flag in [
        "--timeout",
        "--idle-timeout",
        "--check-timeout",
        "--max-file-size",
        "--max-files",
        "--max-lines",
    ] {
        let at = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{flag} in {help}"));
        let text = &help[at..];
        let end = text[2..].find(" --").map_or(text.len(), |i| i + 2);
        assert!(text[..end].contains("0 means no limit"), "{}", &text[..end]);
    }
}

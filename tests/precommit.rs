//! Pre-commit delegation and verified commits, through real `git commit` with real
//! hooks: `baton hook install` puts baton's hook where git looks (`core.hooksPath`
//! too), the python-calc fixture's staged change fails its test, and baton checks the
//! staged tree in a worktree, delegates the fix, and writes it back into the index —
//! and into the working tree only where that loses nothing. What is asserted is what
//! a user looks at: the index (`git ls-files --stage`), file contents byte for byte,
//! HEAD, the stash list, the exit status.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Before, Bench, FIX_ADD, FIXED, PYTEST};

/// The fixture's calc.py with its docstring changed: the change a user stages (the
/// bug in add() is still there, so the test fails on the staged tree).
const STAGED: &str = "\"\"\"A tiny calculator, now documented.\"\"\"\n\n\ndef add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n";
/// What the user has in the file beyond what is staged: a new function, unstaged.
const UNSTAGED_HUNK: &str = "\n\ndef mul(a, b):\n    return a * b\n";

/// `text` with add() fixed.
fn fixed(text: &str) -> String {
    text.replacen("return a - b", FIXED, 1)
}

/// A repository with checks (and `agent` for `[precommit]`, if any) committed in its
/// config, a `.gitignore` for `*.log`, and baton's hook installed.
fn repo(agent: Option<&str>) -> Bench {
    let bench = Bench::with_fixture("python-calc");
    let mut config = format!("checks = [\"{PYTEST}\"]\n");
    if let Some(agent) = agent {
        config.push_str(&format!("\n[precommit]\nagent = \"{agent}\"\n"));
    }
    bench.write(".baton/config.toml", &config);
    bench.write(".gitignore", "*.log\n");
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-q", "-m", "baton config"]);
    bench.baton(&["hook", "install"]).expect(0);
    bench
}

/// The partial staging of the stories: the docstring staged, a new function not, an
/// untracked file and an ignored one beside.
fn stage_partially(bench: &Bench) -> String {
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let working = format!("{STAGED}{UNSTAGED_HUNK}");
    bench.write("calc.py", &working);
    bench.write("notes.txt", "my untracked notes\n");
    bench.write("debug.log", "an ignored log\n");
    working
}

/// Runs a command with the bench's hermetic environment in `dir`.
fn run_in(bench: &Bench, dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    bench.hermetic_env(&mut cmd);
    // The pre-commit framework runs the `baton` of the PATH.
    let bin = Path::new(env!("CARGO_BIN_EXE_baton"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(
        [bin, common::agents_bin()]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    cmd.env("PATH", path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the command runs")
}

/// `git commit ARGS` in the repository: its exit status and what it (and the hooks)
/// printed.
fn git_commit(bench: &Bench, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    git_commit_in(bench, &bench.repo, args, env)
}

fn git_commit_in(bench: &Bench, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut all = vec!["commit", "-q"];
    all.extend_from_slice(args);
    let out = run_in(bench, dir, "git", &all, env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The blob the user's index holds at `path`.
fn staged_blob(bench: &Bench, path: &str) -> String {
    bench
        .git(&["rev-parse", &format!(":{path}")])
        .trim()
        .to_string()
}

/// A run's state as the journal has it now (while it runs, too).
fn state(bench: &Bench, run: &str) -> serde_json::Value {
    serde_json::from_str(&bench.journal_file(run, "state.json")).unwrap_or_default()
}

/// The runs of the journal whose agent is not `none` (the delegated fixes).
fn delegated_runs(bench: &Bench) -> Vec<String> {
    bench
        .run_ids()
        .into_iter()
        .filter(|id| state(bench, id)["agent"] != "none")
        .collect()
}

#[test]
fn partial_staging_a_delegated_fix_is_committed_and_the_unstaged_hunks_stay_byte_identical() {
    let bench = repo(Some(FIX_ADD));
    let working = stage_partially(&bench);
    let before = Before::take(&bench);

    let (code, said) = git_commit(&bench, &["-m", "Document the calculator"], &[]);
    assert_eq!(code, 0, "{said}");

    // The commit holds the staged change with the fix, on top of the old HEAD.
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
    // The index is the commit; the working tree is the user's file with the fix
    // merged in: the unstaged function still there, still unstaged, byte for byte.
    assert_eq!(
        staged_blob(&bench, "calc.py"),
        bench.git(&["rev-parse", "HEAD:calc.py"]).trim()
    );
    assert_eq!(bench.read("calc.py"), fixed(&working));
    assert_eq!(
        bench
            .git(&["diff", "--", "calc.py"])
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .collect::<Vec<_>>(),
        ["+", "+", "+def mul(a, b):", "+    return a * b"]
    );
    // Untracked and ignored files untouched; nothing stashed, ever.
    assert_eq!(bench.read("notes.txt"), "my untracked notes\n");
    assert_eq!(bench.read("debug.log"), "an ignored log\n");
    assert!(bench.stash_list().is_empty(), "{:?}", bench.stash_list());
    bench.assert_clean();
    assert!(said.contains("baton precommit --restore"), "{said}");

    // The backup restores everything the fix changed: index entry and file.
    let run = delegated_runs(&bench).pop().expect("a delegated run");
    assert!(
        bench
            .git(&["for-each-ref", "refs/baton/backup/"])
            .contains(&run)
    );
    bench.baton(&["precommit", "--restore", &run]).expect(0);
    assert_eq!(bench.read("calc.py"), working);
    bench.git(&["show", &format!(":{}", "calc.py")]);
    assert_eq!(bench.git(&["show", ":calc.py"]), STAGED);
}

#[test]
fn commit_all_checks_the_temporary_index_and_commits_the_fix() {
    let bench = repo(Some(FIX_ADD));
    bench.write("calc.py", STAGED);
    let (code, said) = git_commit(&bench, &["-a", "-m", "Document the calculator"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
    assert_eq!(bench.read("calc.py"), fixed(STAGED));
    assert_eq!(
        bench.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    assert!(bench.stash_list().is_empty());
    bench.assert_clean();
}

#[test]
fn a_fix_that_conflicts_with_unstaged_edits_changes_nothing_and_lands_later() {
    let bench = repo(Some(FIX_ADD));
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    // The user's unstaged edit is on the very line the fix changes.
    let edited = STAGED.replacen("return a - b", "return a - b  # why minus?", 1);
    bench.write("calc.py", &edited);
    let before = Before::take(&bench);

    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 1, "git commit stops: {said}");
    assert!(
        said.contains("conflicts with your unstaged changes in calc.py"),
        "{said}"
    );
    before.assert_untouched(&bench);
    assert!(bench.stash_list().is_empty());
    let run = delegated_runs(&bench)
        .pop()
        .expect("the fix is kept as a run");
    assert_eq!(bench.report(&run)["outcome"]["action"], "conflict");

    // The user drops the edit; the kept fix lands in the index later.
    bench.git(&["checkout", "--", "calc.py"]);
    bench.baton(&["merge", &run, "--apply"]).expect(0);
    assert_eq!(bench.git(&["show", ":calc.py"]), fixed(STAGED));
    assert_eq!(bench.read("calc.py"), fixed(STAGED));
    assert_eq!(bench.head(), before.head, "nothing committed by the merge");
    bench.assert_clean();
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
}

#[test]
fn an_index_changed_while_the_agent_worked_is_not_written() {
    let repo_dir = "REPO";
    let bench = repo(Some(&format!(
        "{FIX_ADD} && echo staged meanwhile > {repo_dir}/other.txt && git -C {repo_dir} add other.txt"
    )));
    // The agent's command names the repository by its path.
    let config = bench
        .read(".baton/config.toml")
        .replace(repo_dir, &bench.repo.display().to_string());
    bench.write(".baton/config.toml", &config);
    bench.git(&["commit", "-q", "--no-verify", "-am", "config"]);
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let calc_entry = staged_blob(&bench, "calc.py");

    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 1, "git commit stops: {said}");
    assert!(
        said.contains("the index changed while the fix was made"),
        "{said}"
    );
    assert_eq!(
        staged_blob(&bench, "calc.py"),
        calc_entry,
        "the fix was not staged"
    );
    assert_eq!(bench.read("calc.py"), STAGED, "nor written to the file");
    assert!(bench.stash_list().is_empty());
}

#[test]
fn sigkill_during_the_hook_then_the_backup_and_recover_put_everything_back() {
    let bench = repo(Some(FIX_ADD));
    let working = stage_partially(&bench);
    let before = Before::take(&bench);

    // Killed after the fix reached the working tree, before the index.
    let (code, said) = git_commit(
        &bench,
        &["-m", "Document"],
        &[("BATON_CRASH_AT", "precommit.worktree")],
    );
    assert_ne!(code, 0, "{said}");
    assert_eq!(
        bench.read("calc.py"),
        fixed(&working),
        "half landed: the file only"
    );
    let run = delegated_runs(&bench).pop().expect("the run");
    assert!(
        said.contains(&format!("baton precommit --restore {run}")),
        "{said}"
    );

    // The one command printed puts back everything.
    bench.baton(&["precommit", "--restore", &run]).expect(0);
    before.assert_untouched(&bench);
    // recover then finds nothing of baton's left to undo, and keeps the fix.
    let ran = bench.baton(&["recover"]);
    ran.expect(0);
    before.assert_untouched(&bench);
    assert_eq!(bench.report(&run)["outcome"]["action"], "kept");
    assert!(bench.stash_list().is_empty());

    // The same kill, recovered without the backup: undone the same way.
    let (code, _) = git_commit(
        &bench,
        &["-m", "Document"],
        &[("BATON_CRASH_AT", "precommit.worktree")],
    );
    assert_ne!(code, 0);
    bench.baton(&["recover"]).expect(0);
    before.assert_untouched(&bench);
    assert!(bench.stash_list().is_empty());
}

#[test]
fn ctrl_c_during_the_hook_stops_the_commit_and_leaves_everything_as_it_was() {
    let bench = repo(None);
    let started = bench.root.join("agent-started");
    bench.write(
        ".baton/config.toml",
        &format!(
            "checks = [\"{PYTEST}\"]\n[precommit]\nagent = \"cmd:touch {} && sleep 30\"\n",
            started.display()
        ),
    );
    bench.git(&["commit", "-q", "--no-verify", "-am", "config"]);
    stage_partially(&bench);
    let before = Before::take(&bench);

    let mut cmd = Command::new("git");
    cmd.args(["commit", "-q", "-m", "Document"])
        .current_dir(&bench.repo);
    bench.hermetic_env(&mut cmd);
    // Its own process group, as a terminal's foreground job: Ctrl-C reaches git, the
    // hook and baton at once.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut git = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the agent never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the process group the test made.
    unsafe { libc::kill(-(git.id() as i32), libc::SIGINT) };
    let status = git.wait().unwrap();
    assert!(!status.success());
    // baton outlives git a moment: it stops the agent and keeps the run.
    let run = loop {
        let done = delegated_runs(&bench)
            .into_iter()
            .find(|id| state(&bench, id)["stage"] == "finished");
        if let Some(run) = done {
            break run;
        }
        assert!(Instant::now() < deadline, "baton never finished");
        std::thread::sleep(Duration::from_millis(100));
    };
    before.assert_untouched(&bench);
    assert!(bench.stash_list().is_empty());
    assert_eq!(bench.report(&run)["outcome"]["action"], "kept");
    let ran = bench.baton(&["recover"]);
    ran.expect(0);
    assert!(ran.stderr.contains("nothing to recover"), "{}", ran.stderr);
}

#[test]
fn in_a_linked_worktree_the_fix_lands_in_that_worktrees_index() {
    let bench = repo(Some(FIX_ADD));
    let linked = bench.root.join("linked");
    bench.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "feature",
        linked.to_str().unwrap(),
    ]);
    let (main_files, main_index, main_head) = (bench.files(), bench.index(), bench.head());
    std::fs::write(linked.join("calc.py"), STAGED).unwrap();
    bench.git_in(&linked, &["add", "calc.py"]);

    let (code, said) = git_commit_in(&bench, &linked, &["-m", "Document"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(
        bench.git_in(&linked, &["show", "feature:calc.py"]),
        fixed(STAGED)
    );
    assert_eq!(
        std::fs::read_to_string(linked.join("calc.py")).unwrap(),
        fixed(STAGED)
    );
    assert_eq!(bench.git_in(&linked, &["status", "--porcelain"]), "");
    // The main checkout is not touched.
    assert_eq!(bench.files(), main_files);
    assert_eq!(bench.index(), main_index);
    assert_eq!(bench.head(), main_head);
    assert!(bench.stash_list().is_empty());
}

#[test]
fn with_core_hooks_path_an_existing_hook_is_chained_and_uninstall_puts_it_back() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", &format!("checks = [\"{PYTEST}\"]\n"));
    let theirs = "#!/bin/sh\necho ran >> \"$(git rev-parse --git-dir)/their-hook-ran\"\n";
    bench.write(".githooks/pre-commit", theirs);
    std::fs::set_permissions(
        bench.repo.join(".githooks/pre-commit"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-q", "-m", "hooks"]);
    bench.git(&["config", "core.hooksPath", ".githooks"]);
    let ran = bench.baton(&["hook", "install"]);
    ran.expect(0);
    assert!(
        ran.stderr.contains(".githooks/pre-commit.pre-baton"),
        "{}",
        ran.stderr
    );

    // A passing staged tree: their hook runs, then baton's checks pass.
    bench.write("calc.py", fixed(STAGED).as_str());
    bench.git(&["add", "calc.py"]);
    let (code, said) = git_commit(&bench, &["-m", "Fix add"], &[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("passed on the staged tree"), "{said}");
    assert_eq!(
        std::fs::read_to_string(bench.repo.join(".git/their-hook-ran")).unwrap(),
        "ran\n"
    );

    bench.baton(&["hook", "uninstall"]).expect(0);
    assert_eq!(bench.read(".githooks/pre-commit"), theirs);
    assert!(!bench.repo.join(".githooks/pre-commit.pre-baton").exists());
}

#[test]
fn no_checks_refuses_the_install_and_stops_the_commit_with_the_same_line() {
    let bench = Bench::with_fixture("python-calc");
    let install = bench.baton(&["hook", "install"]);
    install.expect(2);
    assert!(
        install.stderr.contains("no checks are configured"),
        "{}",
        install.stderr
    );
    assert!(!bench.repo.join(".git/hooks/pre-commit").exists());
    let hook = bench.baton(&["precommit"]);
    hook.expect(2);
    let line = |s: &str| {
        s.lines()
            .find(|l| l.contains("no checks"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line(&hook.stderr), line(&install.stderr));
}

#[test]
fn without_an_agent_the_hook_checks_reports_and_says_how_to_delegate() {
    let bench = repo(None);
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let before = Before::take(&bench);
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("assert -1 == 5"),
        "the failing check's tail: {said}"
    );
    assert!(said.contains("[precommit] agent"), "{said}");
    before.assert_untouched(&bench);

    // Fixed by hand: passes, and the same staged tree is answered from the cache.
    bench.write("calc.py", &fixed(STAGED));
    bench.git(&["add", "calc.py"]);
    let first = bench.baton(&["precommit"]);
    first.expect(0);
    let runs = bench.run_ids().len();
    let second = bench.baton(&["precommit"]);
    second.expect(0);
    assert!(
        second.stderr.contains("passed these checks before"),
        "{}",
        second.stderr
    );
    assert_eq!(bench.run_ids().len(), runs, "nothing ran the second time");
}

#[test]
fn a_hook_past_its_time_budget_stops_the_commit_and_keeps_the_run() {
    let bench = repo(None);
    bench.write(
        ".baton/config.toml",
        &format!(
            "checks = [\"{PYTEST}\"]\n[precommit]\nagent = \"cmd:sleep 60\"\ntimeout = \"3s\"\n"
        ),
    );
    bench.git(&["commit", "-q", "--no-verify", "-am", "config"]);
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let before = Before::take(&bench);
    let start = Instant::now();
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_ne!(code, 0, "{said}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(said.contains("time budget ran out"), "{said}");
    before.assert_untouched(&bench);
    let run = delegated_runs(&bench).pop().expect("kept");
    assert_eq!(bench.report(&run)["outcome"]["action"], "kept");
}

#[test]
fn stop_after_fix_stages_the_fix_and_stops_the_commit_once() {
    let bench = repo(Some(FIX_ADD));
    bench.write(
        ".baton/config.toml",
        &format!(
            "checks = [\"{PYTEST}\"]\n[precommit]\nagent = \"{FIX_ADD}\"\nstop_after_fix = true\n"
        ),
    );
    bench.git(&["commit", "-q", "--no-verify", "-am", "config"]);
    let head = bench.head();
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("stop_after_fix"), "{said}");
    assert_eq!(bench.head(), head);
    assert_eq!(bench.git(&["show", ":calc.py"]), fixed(STAGED));
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
}

#[test]
fn codex_fixes_the_staged_tree_through_the_scripted_model() {
    let bench = repo(Some("codex"));
    let _model = bench.scripted_codex("precommit-fix");
    let working = stage_partially(&bench);
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
    assert_eq!(bench.read("calc.py"), fixed(&working));
    assert!(bench.stash_list().is_empty());
    let run = delegated_runs(&bench).pop().expect("the codex run");
    assert_eq!(bench.report(&run)["agent"], "codex");
    let handoff = bench.journal_file(&run, "handoff.md");
    assert!(
        handoff.contains("assert -1 == 5"),
        "the failing output is in the handoff"
    );
    assert!(handoff.contains("- `calc.py`"), "scope: the staged path");
}

#[test]
fn baton_commit_commits_the_tested_tree_with_its_evidence_and_touches_nothing_else() {
    let bench = repo(None);
    // Another hook of the user's, chained behind baton's: it runs; baton's does not
    // check the tree again.
    bench.baton(&["hook", "uninstall"]).expect(0);
    let theirs = "#!/bin/sh\necho ran >> \"$(git rev-parse --git-dir)/their-hook-ran\"\n";
    bench.write(".git/hooks/pre-commit", theirs);
    std::fs::set_permissions(
        bench.repo.join(".git/hooks/pre-commit"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    bench.baton(&["hook", "install"]).expect(0);
    let staged = fixed(STAGED);
    bench.write("calc.py", &staged);
    bench.git(&["add", "calc.py"]);
    let working = format!("{staged}{UNSTAGED_HUNK}");
    bench.write("calc.py", &working);
    let tree = bench.git(&["write-tree"]).trim().to_string();
    let before = Before::take(&bench);

    let ran = bench.baton(&[
        "commit",
        "-m",
        "Document the calculator",
        "-m",
        "With a body.",
    ]);
    ran.expect(0);
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), before.head);
    assert_eq!(
        bench.git(&["rev-parse", "HEAD^{tree}"]).trim(),
        tree,
        "the tested tree"
    );
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Document the calculator\n\nWith a body.\n\n"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Baton-Checks: {PYTEST} (passed in ")),
        "{message}"
    );
    assert!(
        message.contains(&format!("Baton-Tested-Tree: {tree}")),
        "{message}"
    );
    assert_eq!(
        bench.git(&["log", "-1", "--format=%an <%ae>"]).trim(),
        "Ada User <ada@example.com>"
    );
    assert!(
        bench
            .git(&["reflog", "-1", "--format=%gs"])
            .starts_with("commit: Document the calculator")
    );
    // The user's files and index as they were; only HEAD moved.
    assert_eq!(bench.files(), before.files);
    assert_eq!(bench.index(), before.index);
    assert_eq!(
        std::fs::read_to_string(bench.repo.join(".git/their-hook-ran")).unwrap(),
        "ran\n"
    );
    let check_runs = bench.run_ids().len();
    assert_eq!(
        check_runs, 1,
        "one check run: baton's hook did not check again"
    );
}

#[test]
fn baton_commit_with_failing_checks_commits_nothing() {
    let bench = repo(None);
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let before = Before::take(&bench);
    let ran = bench.baton(&["commit", "-m", "Document"]);
    ran.expect(1);
    assert!(
        ran.stderr.contains("assert -1 == 5"),
        "the tail: {}",
        ran.stderr
    );
    before.assert_untouched(&bench);
    let run = bench.only_run();
    let log = bench.journal_file(&run, "checks/01.log");
    assert!(log.contains("assert -1 == 5"), "the log is in the journal");
}

#[test]
fn baton_commit_honours_git_index_file() {
    let bench = repo(None);
    let alt = bench.root.join("alt-index");
    let alt_s = alt.to_str().unwrap();
    let env = [("GIT_INDEX_FILE", alt_s)];
    let out = run_in(&bench, &bench.repo, "git", &["read-tree", "HEAD"], &env);
    assert!(out.status.success());
    bench.write("calc.py", &fixed(STAGED));
    let out = run_in(&bench, &bench.repo, "git", &["add", "calc.py"], &env);
    assert!(out.status.success());
    bench.git(&["checkout", "--", "calc.py"]);
    let before = Before::take(&bench);

    let out = run_in(
        &bench,
        &bench.repo,
        env!("CARGO_BIN_EXE_baton"),
        &["commit", "-m", "From another index"],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
    assert_eq!(
        bench.index(),
        before.index,
        "the default index is not the one committed"
    );
    assert_eq!(bench.files(), before.files);
}

#[test]
fn the_real_pre_commit_framework_runs_baton_from_its_hooks_file() {
    let bench = repo(None);
    bench.baton(&["hook", "uninstall"]).expect(0);
    // A repository holding baton's .pre-commit-hooks.yaml, as the framework clones it.
    let hooks_repo = bench.root.join("baton-hooks");
    std::fs::create_dir_all(&hooks_repo).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
        hooks_repo.join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    bench.git_in(&hooks_repo, &["init", "-q", "-b", "main"]);
    bench.git_in(&hooks_repo, &["add", "-A"]);
    bench.git_in(&hooks_repo, &["commit", "-q", "-m", "hooks"]);
    let rev = bench
        .git_in(&hooks_repo, &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    bench.write(
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: baton\n",
            hooks_repo.display()
        ),
    );
    bench.git(&["add", ".pre-commit-config.yaml"]);
    bench.git(&["commit", "-q", "--no-verify", "-m", "pre-commit config"]);
    let out = run_in(
        &bench,
        &bench.repo,
        "python3",
        &["-m", "pre_commit", "install"],
        &[],
    );
    assert!(
        out.status.success(),
        "the pre-commit framework (tests/requirements.txt) must be installed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A failing staged tree: the framework runs baton, which stops the commit.
    bench.write("calc.py", STAGED);
    bench.git(&["add", "calc.py"]);
    let head = bench.head();
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_ne!(code, 0, "{said}");
    assert!(
        said.contains("baton precommit"),
        "the framework names the hook: {said}"
    );
    assert!(said.contains("[precommit] agent"), "{said}");
    assert_eq!(bench.head(), head);

    // Fixed: the framework's baton passes and the commit is made.
    bench.write("calc.py", &fixed(STAGED));
    bench.git(&["add", "calc.py"]);
    let (code, said) = git_commit(&bench, &["-m", "Document"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));

    // With an agent: the framework sets the unstaged hunk aside in a patch of its own,
    // baton's fix goes into the index and the file, the hunk comes back.
    bench.write(
        ".baton/config.toml",
        &format!("checks = [\"{PYTEST}\"]\n[precommit]\nagent = \"{FIX_ADD}\"\n"),
    );
    bench.git(&["commit", "-q", "--no-verify", "-am", "an agent"]);
    let bug = fixed(STAGED)
        .replace(FIXED, "return a - b")
        .replace("now documented", "documented");
    bench.write("calc.py", &bug);
    bench.git(&["add", "calc.py"]);
    let working = format!("{bug}{UNSTAGED_HUNK}");
    bench.write("calc.py", &working);
    let (code, said) = git_commit(&bench, &["-m", "Document again"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(&bug));
    assert_eq!(bench.read("calc.py"), fixed(&working));
    assert!(bench.stash_list().is_empty());
}

#[test]
fn commit_with_paths_leaves_the_fix_in_the_index_git_keeps_too() {
    let bench = repo(Some(FIX_ADD));
    bench.write("calc.py", STAGED);
    bench.write("README.md", "not part of this commit\n");
    let (code, said) = git_commit(&bench, &["-m", "Document", "calc.py"], &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
    // Index, HEAD and file agree at calc.py; README.md stays an unstaged change.
    assert_eq!(
        bench.git(&["status", "--porcelain", "--untracked-files=no"]),
        " M README.md\n"
    );
    assert_eq!(bench.read("calc.py"), fixed(STAGED));
}

#[test]
fn checks_of_baton_commit_see_the_submodules_as_checked_out() {
    let bench = repo(None);
    // A library of the user's, added as a submodule from a local clone.
    let lib = bench.root.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("file.txt"), "a file of the library\n").unwrap();
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
        "sub",
    ]);
    bench.git(&[
        "commit",
        "-q",
        "--no-verify",
        "-m",
        "The library as a submodule",
    ]);

    // Twice: a new check worktree each time (the pool keeps none with submodules).
    for (i, text) in ["uses the library\n", "uses it more\n"].iter().enumerate() {
        bench.write("NOTES.md", text);
        bench.git(&["add", "NOTES.md"]);
        let head = bench.head();
        let ran = bench.baton(&[
            "commit",
            "--check",
            "test -f sub/file.txt",
            "-m",
            &format!("Notes {i}"),
        ]);
        ran.expect(0);
        assert_eq!(bench.git(&["rev-parse", "HEAD~1"]).trim(), head);
        assert_eq!(bench.git(&["show", "HEAD:NOTES.md"]), *text);
    }
    assert_eq!(
        bench
            .git(&["ls-tree", "HEAD", "sub"])
            .split_whitespace()
            .nth(1),
        Some("commit"),
        "the gitlink is committed as it was"
    );
    bench.assert_clean();
}

#[test]
fn checks_of_baton_commit_see_smudged_files_and_the_commit_holds_the_clean_blob() {
    let bench = repo(None);
    bench.git(&["config", "filter.upper.smudge", "tr a-z A-Z"]);
    bench.git(&["config", "filter.upper.clean", "tr A-Z a-z"]);
    bench.write(".gitattributes", "*.txt filter=upper\n");
    bench.git(&["add", ".gitattributes"]);
    bench.git(&["commit", "-q", "--no-verify", "-m", "Shout .txt files"]);

    // Twice: a new check worktree, then one leased from the pool.
    for text in ["hello\n", "Hello Again\n"] {
        bench.write("shout.txt", text);
        bench.git(&["add", "shout.txt"]);
        let staged = staged_blob(&bench, "shout.txt");
        let upper = text.to_uppercase();
        bench
            .baton(&[
                "commit",
                "--check",
                &format!("grep -qx '{}' shout.txt", upper.trim()),
                "-m",
                "Shout",
            ])
            .expect(0);
        assert_eq!(bench.git(&["rev-parse", "HEAD:shout.txt"]).trim(), staged);
        assert_eq!(
            bench.git(&["cat-file", "-p", "HEAD:shout.txt"]),
            text.to_lowercase(),
            "the clean content"
        );
    }
}

/// A signing key of the user's for git's SSH signing (no agent, no passphrase), and
/// the allowed-signers file that lets `git verify-commit` trust it; returns the
/// private key's path.
fn ssh_signing_key(bench: &Bench) -> String {
    common::require_tool("ssh-keygen");
    let key = bench.root.join("signing-key");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "ada@example.com",
            "-f",
        ])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = bench.root.join("allowed-signers");
    std::fs::write(
        &allowed,
        format!("ada@example.com namespaces=\"git\" {public}"),
    )
    .unwrap();
    bench.git(&["config", "gpg.format", "ssh"]);
    bench.git(&[
        "config",
        "gpg.ssh.allowedSignersFile",
        allowed.to_str().unwrap(),
    ]);
    key.to_str().unwrap().to_string()
}

/// Whether `git verify-commit` accepts `rev`'s signature.
fn verifies(bench: &Bench, rev: &str) -> bool {
    let out = run_in(bench, &bench.repo, "git", &["verify-commit", rev], &[]);
    out.status.success()
}

#[test]
fn baton_commit_signs_exactly_when_git_commit_would() {
    let bench = repo(None);
    let key = ssh_signing_key(&bench);
    bench.git(&["config", "user.signingKey", &key]);
    bench.git(&["config", "commit.gpgSign", "true"]);

    // commit.gpgSign: signed, and git trusts the signature.
    bench.write("calc.py", &fixed(STAGED));
    bench.git(&["add", "calc.py"]);
    bench.baton(&["commit", "-m", "Fix add"]).expect(0);
    assert!(
        bench
            .git(&["cat-file", "-p", "HEAD"])
            .contains("gpgsig -----BEGIN SSH SIGNATURE-----")
    );
    assert!(verifies(&bench, "HEAD"), "git verify-commit HEAD");
    let shown = bench.git(&["log", "-1", "--show-signature", "--format=%s"]);
    assert!(
        shown.contains("Good \"git\" signature for ada@example.com"),
        "{shown}"
    );

    // --no-gpg-sign countermands the setting.
    bench.write("NOTES.md", "unsigned notes\n");
    bench.git(&["add", "NOTES.md"]);
    bench
        .baton(&["commit", "--no-gpg-sign", "-m", "Notes"])
        .expect(0);
    assert!(!bench.git(&["cat-file", "-p", "HEAD"]).contains("gpgsig"));
    assert!(!verifies(&bench, "HEAD"), "an unsigned commit");

    // Without the setting nothing is signed, unless asked: -S, or -S with the key.
    bench.git(&["config", "commit.gpgSign", "false"]);
    bench.write("NOTES.md", "more notes\n");
    bench.git(&["add", "NOTES.md"]);
    bench.baton(&["commit", "-m", "More notes"]).expect(0);
    assert!(!verifies(&bench, "HEAD"), "commit.gpgSign false: unsigned");
    bench.write("NOTES.md", "signed notes\n");
    bench.git(&["add", "NOTES.md"]);
    bench
        .baton(&["commit", "-S", "-m", "Signed notes"])
        .expect(0);
    assert!(verifies(&bench, "HEAD"), "-S signs");
    bench.git(&["config", "--unset", "user.signingKey"]);
    bench.write("NOTES.md", "signed with the named key\n");
    bench.git(&["add", "NOTES.md"]);
    bench
        .baton(&["commit", &format!("--gpg-sign={key}"), "-m", "Keyed notes"])
        .expect(0);
    assert!(verifies(&bench, "HEAD"), "--gpg-sign=KEY signs with KEY");
    assert_eq!(
        bench
            .git(&["log", "--format=%s", "-5"])
            .lines()
            .collect::<Vec<_>>(),
        [
            "Keyed notes",
            "Signed notes",
            "More notes",
            "Notes",
            "Fix add"
        ]
    );
}

#[test]
fn baton_commit_amend_replaces_the_tip_and_keeps_its_author() {
    let bench = repo(None);
    bench.write("calc.py", &fixed(STAGED));
    bench.git(&["add", "calc.py"]);
    bench.git(&[
        "commit",
        "-q",
        "--no-verify",
        "--author",
        "Grace Hopper <grace@example.com>",
        "--date",
        "2025-06-01T09:00:00+02:00",
        "-m",
        "Fix add",
    ]);
    let parent = bench.git(&["rev-parse", "HEAD~1"]);
    let old_tip = bench.head();
    // Forgotten in the commit: notes, now staged; an unstaged edit stays out.
    bench.write("NOTES.md", "why add adds\n");
    bench.git(&["add", "NOTES.md"]);
    bench.write("NOTES.md", "why add adds\nand more, not staged\n");
    // Tools that follow rewritten commits (notes, git-branchless) hear of it as from git.
    bench.write(
        ".git/hooks/post-rewrite",
        "#!/bin/sh\n{ echo \"$1\"; cat; } > \"$(git rev-parse --git-dir)/rewritten\"\n",
    );
    std::fs::set_permissions(
        bench.repo.join(".git/hooks/post-rewrite"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let before = Before::take(&bench);

    bench
        .baton(&["commit", "--amend", "-m", "Fix add, with notes"])
        .expect(0);
    assert_eq!(
        bench.read(".git/rewritten"),
        format!("amend\n{old_tip} {}\n", bench.head())
    );
    assert_ne!(bench.head(), old_tip, "the tip is replaced");
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]), parent, "on its parent");
    assert_eq!(bench.git(&["show", "HEAD:NOTES.md"]), "why add adds\n");
    assert_eq!(bench.git(&["show", "HEAD:calc.py"]), fixed(STAGED));
    assert!(
        bench
            .git(&["log", "-1", "--format=%B"])
            .starts_with("Fix add, with notes\n\nBaton-Checks: ")
    );
    assert_eq!(
        bench.git(&["log", "-1", "--format=%an <%ae> %aI | %cn <%ce>"]),
        "Grace Hopper <grace@example.com> 2025-06-01T09:00:00+02:00 | Ada User <ada@example.com>\n",
        "the author is kept, the committer is you"
    );
    assert_eq!(
        bench.git(&["reflog", "-1", "--format=%gs"]),
        "commit (amend): Fix add, with notes\n"
    );
    assert_eq!(bench.files(), before.files, "the working tree untouched");
    assert_eq!(bench.index(), before.index, "the index untouched");

    // No message: HEAD's, in the editor (which the user has edit it); --no-edit: as it
    // is. Each time the evidence is this tree's, once.
    bench.git(&[
        "config",
        "core.editor",
        "sed -i 's/with notes/with its notes/'",
    ]);
    bench.baton(&["commit", "--amend"]).expect(0);
    bench.baton(&["commit", "--amend", "--no-edit"]).expect(0);
    let message = bench.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Fix add, with its notes\n\n"),
        "{message}"
    );
    assert_eq!(message.matches("Baton-Run: ").count(), 1, "{message}");
    assert!(
        !message.contains('#'),
        "the editor's help is gone: {message}"
    );
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]), parent);

    // --reset-author: the author is you, now.
    bench
        .baton(&["commit", "--amend", "--no-edit", "--reset-author"])
        .expect(0);
    assert_eq!(
        bench.git(&["log", "-1", "--format=%an <%ae> %aI"]),
        "Ada User <ada@example.com> 2026-01-01T12:00:00Z\n"
    );
    assert_eq!(bench.git(&["rev-parse", "HEAD~1"]), parent);
}

#[test]
fn baton_commit_author_and_date_set_the_author_and_the_committer_stays_you() {
    let bench = repo(None);
    bench.write("calc.py", &fixed(STAGED));
    bench.git(&["add", "calc.py"]);
    bench
        .baton(&[
            "commit",
            "--author",
            "Grace Hopper <grace@example.com>",
            "--date",
            "2025-06-01T09:00:00+02:00",
            "-m",
            "Fix add",
        ])
        .expect(0);
    assert_eq!(
        bench.git(&["log", "-1", "--format=%an <%ae> %aI | %cn <%ce> %cI"]),
        "Grace Hopper <grace@example.com> 2025-06-01T09:00:00+02:00 | Ada User <ada@example.com> 2026-01-01T12:00:00Z\n"
    );
}

#[test]
fn bad_input_to_baton_commit_is_one_line_exit_2_and_nothing_written() {
    let bench = repo(None);
    bench.write("calc.py", &fixed(STAGED));
    bench.git(&["add", "calc.py"]);
    let before = Before::take(&bench);
    for (args, says) in [
        (
            &["--author", "grace"][..],
            "is not in the form `Name <email>`",
        ),
        (
            &["--author", "Grace <grace@example.com"][..],
            "is not in the form `Name <email>`",
        ),
        (&["--date", "not a date"][..], "is not a date git reads"),
        (
            &["--reset-author"][..],
            "--reset-author only goes with --amend",
        ),
    ] {
        let mut all = vec!["commit", "-m", "Fix add"];
        all.extend_from_slice(args);
        let ran = bench.baton(&all);
        ran.expect(2);
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
        before.assert_nothing_started(&bench);
    }

    // --amend with nothing to amend.
    let empty = Bench::empty();
    std::fs::create_dir_all(&empty.repo).unwrap();
    empty.git(&["init", "-q", "-b", "main"]);
    empty.write("a.txt", "a\n");
    empty.git(&["add", "a.txt"]);
    let ran = empty.baton(&["commit", "--amend", "-m", "first", "--check", "true"]);
    ran.expect(2);
    assert!(
        ran.stderr.contains("there is no commit to amend"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    assert!(empty.run_ids().is_empty());
}

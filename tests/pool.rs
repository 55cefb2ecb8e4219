//! Stories of the worktree pool: a finished run's worktree is kept, detached and
//! clean, and the next run leases it — with exactly its base's files, every edit
//! seen, a hand-edited one never reused, and `baton clean` taking it all away.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::{Before, Bench, FIX_ADD, PYTEST, shell_quote};

/// A `cmd:` agent that records where it ran and every file it saw (the `.git` link
/// left out) into `name` in the bench's root, then runs `then`.
fn seeing(bench: &Bench, name: &str, then: &str) -> String {
    let out = shell_quote(&bench.root.join(name).to_string_lossy());
    format!(
        "cmd:{{ pwd; find . -path ./.git -prune -o -print | LC_ALL=C sort; }} > {out} && {then}"
    )
}

fn seen(bench: &Bench, name: &str) -> (PathBuf, Vec<String>) {
    let text = std::fs::read_to_string(bench.root.join(name)).unwrap();
    let mut lines = text.lines();
    let pwd = PathBuf::from(lines.next().unwrap());
    (pwd, lines.map(str::to_string).collect())
}

fn run_merge(bench: &Bench, agent: &str, scope: &str) -> common::Ran {
    bench.baton(&[
        "run", "--task", "a change", "--agent", agent, "--scope", scope, "--check", PYTEST,
        "--json",
    ])
}

#[test]
fn the_second_run_leases_the_first_runs_worktree_with_exactly_its_base_in_it() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(
        ".gitignore",
        "__pycache__/\n.pytest_cache/\nbuild/\n*.log\n",
    );
    bench.write(".baton/config.toml", "[worktree]\nwarm = [\"build\"]\n");
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-qm", "ignore build output"]);

    // The first agent fixes the bug and leaves litter of every kind behind: an
    // untracked file, an ignored one, a new directory, and build output.
    let litter = "echo x > scratch.txt && echo y > debug.log && mkdir -p tmpdir/deep && echo z > tmpdir/deep/f && mkdir -p build && echo obj > build/out.o";
    let first = run_merge(
        &bench,
        &seeing(
            &bench,
            "first.txt",
            &format!("{} && {litter}", &FIX_ADD[4..]),
        ),
        "calc.py",
    );
    // The litter is out of scope: the run stashes, and its worktree goes to the pool.
    first.expect(3);
    let (first_wt, _) = seen(&bench, "first.txt");
    let pooled = bench.pooled_worktrees_keeping(&["build"]);
    assert_eq!(
        pooled,
        vec![first_wt.clone()],
        "the worktree is pooled, clean"
    );
    assert_eq!(
        std::fs::read_to_string(first_wt.join("build/out.o")).unwrap(),
        "obj\n",
        "the declared build directory is kept"
    );

    // The user commits something; the second run starts from it in the pooled worktree.
    bench.write("README.md", "a new readme\n");
    bench.git(&["commit", "-qam", "readme"]);
    let second = run_merge(
        &bench,
        &seeing(&bench, "second.txt", &FIX_ADD[4..]),
        "calc.py",
    );
    second.expect(0);
    let (second_wt, files) = seen(&bench, "second.txt");
    assert_eq!(
        second_wt, first_wt,
        "the second run leased the pooled worktree"
    );
    let mut expected: Vec<String> = bench
        .git(&["ls-tree", "-r", "-t", "--name-only", "HEAD~1"])
        .lines()
        .map(|p| format!("./{p}"))
        .chain([
            "./build".to_string(),
            "./build/out.o".to_string(),
            ".".to_string(),
        ])
        .collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "the agent saw its base and the build directory, nothing else"
    );
    assert!(bench.read("calc.py").contains("return a + b"));
    assert_eq!(second.json()["outcome"]["action"], "merged");
    let events = bench.journal_file(second.json()["run_id"].as_str().unwrap(), "events.jsonl");
    assert!(events.contains("\"leased\":true"), "{events}");
    bench.assert_clean_keeping(&["build"]);
}

#[test]
fn a_same_size_edit_made_right_after_a_lease_is_seen() {
    let bench = Bench::with_fixture("python-calc");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    // calc.py changed between the pooled worktree's commit and the new base, so the
    // lease rewrote it a moment ago; README.md it did not touch. The agent changes
    // one byte of each, keeping their sizes, at once.
    let agent = "cmd:sed -i 's/return a + b/return b + a/' calc.py && sed -i 's/^#/%/' README.md";
    let ran = bench.baton(&[
        "run",
        "--task",
        "swap",
        "--agent",
        agent,
        "--scope",
        "calc.py",
        "--scope",
        "README.md",
        "--json",
    ]);
    ran.expect(0);
    let report = ran.json();
    let judged: Vec<String> = ran.judged().into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(judged, ["README.md", "calc.py"], "{report}");
    assert!(bench.read("calc.py").contains("return b + a"));
    assert!(bench.read("README.md").starts_with('%'));
    bench.assert_clean();
}

#[test]
fn a_pooled_worktree_edited_by_hand_is_not_reused_and_the_edit_survives() {
    let bench = Bench::with_fixture("python-calc");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    let pooled = bench.pooled_worktrees();
    assert_eq!(pooled.len(), 1);
    let wt = pooled[0].clone();
    // Someone edits the pooled worktree (same size: only its ctime tells).
    let readme = std::fs::read_to_string(wt.join("README.md")).unwrap();
    std::fs::write(wt.join("README.md"), readme.replacen('#', "%", 1)).unwrap();

    let ran = run_merge(&bench, &seeing(&bench, "seen.txt", "true"), "calc.py");
    ran.expect(4); // nothing changed: the agent failed
    let (used, _) = seen(&bench, "seen.txt");
    assert_ne!(used, wt, "the edited worktree was not leased");
    assert!(
        std::fs::read_to_string(wt.join("README.md"))
            .unwrap()
            .starts_with('%'),
        "the hand edit is still there"
    );
    let status = bench.baton(&["status"]);
    assert!(
        status
            .stdout
            .contains("is not reused: README.md was written after baton pooled it"),
        "{}",
        status.stdout
    );
    // `clean` leaves it alone unless forced.
    let cleaned = bench.baton(&["clean"]);
    cleaned.expect(0);
    assert!(cleaned.stderr.contains("left alone"), "{}", cleaned.stderr);
    assert!(wt.join("README.md").exists());
    bench.baton(&["clean", "--pool", "--force"]).expect(0);
    assert!(!wt.exists());
    assert_eq!(
        bench.worktree_list().len(),
        1,
        "{:?}",
        bench.worktree_list()
    );
}

#[test]
fn two_runs_started_at_once_never_get_the_same_worktree() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", "[worktree]\npool = 2\n");
    let start = |name: &str| {
        let agent = seeing(&bench, name, "sleep 1 && echo x >> docs/notes.md");
        bench
            .baton_command(&[
                "run",
                "--task",
                "note",
                "--agent",
                &agent,
                "--scope",
                "docs/**",
                "--on-pass",
                "stash",
            ])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Twice two runs at once: the second pair leases the first pair's worktrees.
    let mut used = vec![];
    for round in 0..2 {
        let mut a = start(&format!("a{round}.txt"));
        let mut b = start(&format!("b{round}.txt"));
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
        let (wa, _) = seen(&bench, &format!("a{round}.txt"));
        let (wb, _) = seen(&bench, &format!("b{round}.txt"));
        assert_ne!(wa, wb, "round {round}: two runs shared a worktree");
        used.push((wa, wb));
    }
    let mut first: Vec<_> = vec![used[0].0.clone(), used[0].1.clone()];
    let mut second: Vec<_> = vec![used[1].0.clone(), used[1].1.clone()];
    first.sort();
    second.sort();
    assert_eq!(first, second, "the second pair leased the pooled worktrees");
    assert_eq!(bench.stash_list().len(), 4, "every run's change is stashed");
    assert_eq!(bench.pooled_worktrees().len(), 2);
    bench.assert_clean();
}

#[test]
fn a_baton_killed_during_a_lease_is_recovered_and_the_worktree_goes_back_to_the_pool() {
    let bench = Bench::with_fixture("python-calc");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    let pooled = bench.pooled_worktrees();
    let before = Before::take(&bench);
    let status = bench
        .baton_command(&[
            "run",
            "--task",
            "x",
            "--agent",
            "cmd:echo x >> docs/notes.md",
            "--scope",
            "docs/**",
        ])
        .env("BATON_CRASH_AT", "pool.claimed")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), None, "baton was killed after claiming");
    bench.baton(&["recover"]).expect(0);
    before.assert_untouched(&bench);
    assert!(
        bench.stash_list().is_empty(),
        "nothing ran, so nothing was stashed"
    );
    assert_eq!(
        bench.pooled_worktrees(),
        pooled,
        "the worktree is back in the pool"
    );
    bench.assert_clean();
    // And the next run leases it.
    let ran = run_merge(
        &bench,
        &seeing(&bench, "seen.txt", "echo y >> docs/notes.md"),
        "docs/**",
    );
    ran.expect(0);
    assert_eq!(seen(&bench, "seen.txt").0, pooled[0]);
}

#[test]
fn clean_empties_the_pool_and_status_shows_it() {
    let bench = Bench::with_fixture("python-calc");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    let status = bench.baton(&["status"]);
    assert!(
        status.stdout.contains("pool: 1 free worktree(s),"),
        "{}",
        status.stdout
    );
    assert_eq!(
        bench.worktree_list().len(),
        2,
        "main and one pooled worktree"
    );
    bench.baton(&["clean"]).expect(0);
    assert_eq!(
        bench.worktree_list().len(),
        1,
        "only the main checkout: {:?}",
        bench.worktree_list()
    );
    assert!(!bench.baton(&["status"]).stdout.contains("pool:"));
}

#[test]
fn a_pool_of_zero_keeps_nothing_and_a_pool_of_one_keeps_one() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", "[worktree]\npool = 0\n");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    assert_eq!(bench.worktree_list().len(), 1, "no pool: nothing is kept");

    bench.write(".baton/config.toml", "[worktree]\npool = 1\n");
    let keep = |n: u32| -> String {
        let ran = bench.baton(&[
            "run",
            "--task",
            "k",
            "--agent",
            &format!("cmd:echo {n} >> docs/notes.md"),
            "--scope",
            "docs/**",
            "--on-pass",
            "keep",
            "--json",
        ]);
        ran.expect(0);
        ran.json()["run_id"].as_str().unwrap().to_string()
    };
    let one = keep(1);
    let two = keep(2);
    assert_eq!(
        bench.worktree_count(),
        3,
        "two kept runs hold two worktrees"
    );
    // Landing both returns two worktrees, and the pool keeps one.
    bench.baton(&["stash", &one]).expect(0);
    bench.baton(&["stash", &two]).expect(0);
    assert_eq!(bench.stash_list().len(), 2);
    assert_eq!(bench.pooled_worktrees().len(), 1);
    bench.assert_clean();
}

#[test]
fn a_pool_size_that_is_not_a_number_is_refused_before_anything_starts() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", "[worktree]\npool = \"four\"\n");
    let before = Before::take(&bench);
    let ran = run_merge(&bench, FIX_ADD, "calc.py");
    ran.expect(2);
    let line = ran.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains(".baton/config.toml") && line.contains("pool"),
        "{line}"
    );
    before.assert_nothing_started(&bench);
}

#[test]
fn a_leased_worktree_follows_deletions_type_changes_modes_and_symlinks_to_its_new_base() {
    let bench = Bench::with_fixture("python-calc");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    assert_eq!(bench.pooled_worktrees().len(), 1);
    // The next base differs from the pooled commit in every way a tree can: a file
    // deleted (emptying its directory), a file that becomes a directory, a new
    // symlink, an executable bit, a new file deep down.
    bench.git(&["rm", "-q", "docs/notes.md"]);
    bench.git(&["rm", "-q", "README.md"]);
    bench.write("README.md/index.md", "now a directory\n");
    std::os::unix::fs::symlink("calc.py", bench.repo.join("link.py")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let path = bench.repo.join("test_calc.py");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bench.write("a/b/c/deep.txt", "deep\n");
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-qm", "reshape"]);
    let out = shell_quote(&bench.root.join("status.txt").to_string_lossy());
    let agent = format!(
        "cmd:{{ pwd; git status --porcelain --untracked-files=all --ignored; git diff --cached --stat; ls -l test_calc.py | cut -c1-10; readlink link.py; test -e docs && echo docs-still-there; }} > {out}; echo n >> a/b/c/deep.txt"
    );
    run_merge(&bench, &agent, "a/**").expect(0);
    let text = std::fs::read_to_string(bench.root.join("status.txt")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        PathBuf::from(lines.next().unwrap()),
        bench.pooled_worktrees()[0],
        "the run leased the pooled worktree"
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["-rwxr-xr-x", "calc.py"],
        "nothing differs from the base but what the agent did: {text}"
    );
    bench.assert_clean();
}

#[test]
fn a_pooled_worktree_unused_past_its_age_is_removed_by_the_next_run() {
    let bench = Bench::with_fixture("python-calc");
    bench.write(".baton/config.toml", "[worktree]\npool_max_age = \"1s\"\n");
    run_merge(&bench, FIX_ADD, "calc.py").expect(0);
    let old = bench.pooled_worktrees();
    assert_eq!(old.len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let ran = run_merge(
        &bench,
        &seeing(&bench, "seen.txt", "echo n >> docs/notes.md"),
        "docs/**",
    );
    ran.expect(0);
    let (used, _) = seen(&bench, "seen.txt");
    assert_ne!(used, old[0], "the expired worktree was not leased");
    assert!(!old[0].exists(), "the expired worktree is removed");
    assert_eq!(
        bench.pooled_worktrees(),
        vec![used],
        "the new run's worktree is pooled"
    );
    bench.assert_clean();
}

#[test]
fn a_leased_worktree_runs_setup_again_only_when_a_file_it_names_changed() {
    let bench = Bench::with_fixture("python-calc");
    bench.write("deps.txt", "one\n");
    bench.write(
        ".baton/config.toml",
        "[worktree]\nsetup = [{ run = \"test \\\"$(cat deps.txt)\\\" != broken\", on_change = [\"deps.txt\"] }]\n",
    );
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-qm", "deps"]);
    let setups = |ran: &common::Ran| {
        let run = ran.json()["run_id"].as_str().unwrap().to_string();
        bench
            .journal_file(&run, "events.jsonl")
            .lines()
            .filter(|l| l.contains("\"worktree.setup\""))
            .count()
    };
    let note = |n: u32| {
        bench.baton(&[
            "run",
            "--task",
            "note",
            "--agent",
            &format!("cmd:echo {n} >> docs/notes.md"),
            "--scope",
            "docs/**",
            "--json",
        ])
    };
    // A new worktree runs its setup; a leased one whose deps.txt did not change does not.
    let ran = note(1);
    ran.expect(0);
    assert_eq!(setups(&ran), 1, "a new worktree runs its setup");
    let ran = note(2);
    ran.expect(0);
    assert_eq!(setups(&ran), 0, "nothing it names changed");
    bench.write("deps.txt", "two\n");
    bench.git(&["commit", "-qam", "deps two"]);
    let ran = note(3);
    ran.expect(0);
    assert_eq!(setups(&ran), 1, "deps.txt changed: the setup runs again");
    let pooled = bench.pooled_worktrees();
    assert_eq!(pooled.len(), 1);

    // A setup that fails on a leased worktree stops the run with its output, and the
    // worktree is removed, not returned to the pool.
    bench.write("deps.txt", "broken\n");
    bench.git(&["commit", "-qam", "deps broken"]);
    let before = Before::take(&bench);
    let ran = note(4);
    ran.expect(2);
    assert!(ran.stderr.contains("setup command"), "{}", ran.stderr);
    before.assert_untouched(&bench);
    assert!(
        !pooled[0].exists(),
        "the worktree whose setup failed is gone"
    );
    assert!(bench.pooled_worktrees().is_empty());
    bench.assert_clean();
}

#[test]
fn the_worktree_of_a_run_killed_while_its_agent_worked_is_removed_not_pooled() {
    let bench = Bench::with_fixture("python-calc");
    let mut child = bench
        .baton_command(&[
            "run",
            "--task",
            "slow",
            "--agent",
            "cmd:sleep 30",
            "--scope",
            "docs/**",
        ])
        .stderr(Stdio::null())
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
    child.kill().unwrap();
    child.wait().unwrap();
    bench.baton(&["recover"]).expect(0);
    // A process of that agent's nobody recorded could still write there: the
    // worktree is not handed to the next run.
    assert!(
        bench.pooled_worktrees().is_empty(),
        "{:?}",
        bench.worktree_list()
    );
    bench.assert_clean();
}

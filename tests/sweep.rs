//! Stories of `baton sweep`: many tasks over the python-shop fixture, each a full run
//! in its own worktree, landed through the merge queue. The user looks at what
//! landed on `main` (files, commits and their trailers), what did not and where its
//! work is (stash, kept branch), the exit status, the report, and whether their own
//! uncommitted work survived. Agents are scripted fixes (`cmd:`), and codex once.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Before, Bench, Ran};
use serde_json::Value;

/// The fixture's task file, or only the tasks `ids` of it (its `[defaults]` kept),
/// written into the bench; `slow` makes every agent sleep that long first.
fn tasks(bench: &Bench, ids: &[&str], slow: Option<f64>) -> PathBuf {
    let text = std::fs::read_to_string(common::fixture("sweeps/shop.toml")).unwrap();
    let mut parts = text.split("[[task]]");
    let mut out = parts.next().unwrap().to_string();
    for part in parts {
        let id = part
            .lines()
            .find_map(|l| l.strip_prefix("id = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap();
        if ids.is_empty() || ids.contains(&id) {
            out.push_str("[[task]]");
            out.push_str(part);
        }
    }
    if let Some(secs) = slow {
        out = out.replace("agent = 'cmd:", &format!("agent = 'cmd:sleep {secs} && "));
    }
    let path = bench.root.join("tasks.toml");
    std::fs::write(&path, out).unwrap();
    path
}

fn sweep(bench: &Bench, file: &std::path::Path, extra: &[&str]) -> Ran {
    let file = file.to_string_lossy().into_owned();
    let mut args = vec!["sweep", file.as_str()];
    args.extend_from_slice(extra);
    bench.baton(&args)
}

/// The report's entry for task `id`.
fn task<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {report:#}"))
}

fn landed_ids(report: &Value) -> Vec<String> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["landed"] == true)
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// The JSON lines of `--json --stream`.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The report at the end of `--json --stream`.
fn streamed_report(events: &[Value]) -> Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "sweep.report")
        .map(|e| e["report"].clone())
        .expect("the stream ends with the sweep's report")
}

/// Runs pytest on `tests` in the user's checkout: what the user would do to see that
/// `main` is green.
fn pytest(bench: &Bench, tests: &[&str]) -> bool {
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-m", "pytest", "-q"])
        .args(tests)
        .current_dir(&bench.repo);
    bench.hermetic_env(&mut cmd);
    cmd.output().unwrap().status.success()
}

/// Subjects of the commits on main after the fixture's first, oldest first.
fn landed_subjects(bench: &Bench) -> Vec<String> {
    bench
        .git(&["log", "--reverse", "--format=%s", "main"])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn a_sweep_lands_what_passes_merged_and_says_where_the_rest_is() {
    let bench = Bench::with_fixture("python-shop");
    let before = Before::take(&bench);
    let file = tasks(&bench, &[], None);
    let ran = sweep(&bench, &file, &["-j", "4", "--json"]);
    ran.expect(1);
    let report = ran.json();
    let id = report["sweep_id"].as_str().unwrap().to_string();

    // The independent fixes landed: their files on main, each as a verified commit
    // carrying the run's trailers and the sweep's.
    for t in ["round-cents", "count-quantities", "leap-centuries"] {
        assert_eq!(task(&report, t)["landed"], true, "{t}: {report:#}");
        assert_eq!(task(&report, t)["reason"], Value::Null);
    }
    assert!(bench.read("shop/money.py").contains("round(amount * 100)"));
    assert!(bench.read("shop/dates.py").contains("year % 400 == 0"));
    let log = bench.git(&["log", "--format=%B", &format!("{}..main", before.head)]);
    assert_eq!(
        log.matches(&format!("Baton-Sweep: {id}")).count(),
        5,
        "{log}"
    );
    assert_eq!(log.matches("Baton-Run: ").count(), 5, "{log}");

    // The wrong fix: its checks failed, nothing of it landed, its work is stashed.
    let wrong = task(&report, "reorder-at-threshold");
    assert_eq!(
        (wrong["landed"].clone(), wrong["reason"].clone()),
        (Value::Bool(false), "checks_failed".into())
    );
    assert!(wrong["where"].as_str().unwrap().starts_with("stash "));
    assert!(bench.read("shop/stock.py").contains("level < threshold"));
    // The edit outside its scope: stashed too.
    assert_eq!(task(&report, "miles")["reason"], "scope_violated");
    assert!(!bench.read("README.md").contains("Units fixed"));
    assert_eq!(bench.stash_list().len(), 2, "{:?}", bench.stash_list());

    // Each passes alone, together they take the discount off twice: exactly one
    // landed, the other failed integrated and is kept, and main is green.
    let pricing = task(&report, "discount-in-pricing");
    let cart = task(&report, "discount-in-cart");
    assert_ne!(pricing["landed"], cart["landed"], "{report:#}");
    let failed = if pricing["landed"] == true {
        cart
    } else {
        pricing
    };
    assert_eq!(failed["verdict"], "passed");
    assert_eq!(failed["reason"], "integration_failed");
    assert_eq!(
        failed["check"],
        "python3 -m pytest -q tests/test_discount.py"
    );
    assert!(
        failed["where"]
            .as_str()
            .unwrap()
            .starts_with("branch baton/")
    );
    assert!(
        pytest(
            &bench,
            &[
                "tests/test_money.py",
                "tests/test_cart.py",
                "tests/test_dates.py",
                "tests/test_discount.py"
            ]
        ),
        "main is green"
    );

    // The two edits of one line: one landed, the other conflicts and is kept.
    let (lower, strip) = (task(&report, "slug-lower"), task(&report, "slug-strip"));
    assert_ne!(lower["landed"], strip["landed"], "{report:#}");
    let conflicted = if lower["landed"] == true {
        strip
    } else {
        lower
    };
    assert_eq!(conflicted["reason"], "conflict");
    assert_eq!(conflicted["paths"], serde_json::json!(["shop/text.py"]));
    let branch = conflicted["branch"].as_str().unwrap();
    assert!(bench.baton_branches().contains(&branch.to_string()));

    // The report holds every task; the user's checkout is at the new tip, clean; the
    // runs name their sweep.
    assert_eq!(report["total"], 9);
    assert_eq!(report["landed"], 5);
    for t in report["tasks"].as_array().unwrap() {
        for field in [
            "id",
            "run_id",
            "verdict",
            "landed",
            "reason",
            "duration_ms",
            "where",
        ] {
            assert!(t.get(field).is_some(), "no {field} in {t}");
        }
        let run = t["run_id"].as_str().unwrap();
        assert_eq!(bench.report(run)["sweep"], id.as_str());
    }
    assert_eq!(bench.git(&["status", "--porcelain"]).trim(), "");
    // The table on stderr says the same, and `sweep status` shows it again.
    assert!(
        ran.stderr.contains("5 of 9 task(s) landed on main"),
        "{}",
        ran.stderr
    );
    let status = bench.baton(&["sweep", "status"]);
    status.expect(0);
    for word in [
        "integration_failed",
        "conflict",
        "checks_failed",
        "stash ",
        &id,
    ] {
        assert!(
            status.stdout.contains(word),
            "no {word} in\n{}",
            status.stdout
        );
    }
    let as_json = bench.baton(&["sweep", "status", &id[..12], "--json"]);
    assert_eq!(as_json.json()["tasks"], report["tasks"]);
}

#[test]
fn retry_conflicts_runs_the_conflicting_task_again_from_the_new_tip() {
    let bench = Bench::with_fixture("python-shop");
    let file = tasks(&bench, &["slug-lower", "slug-strip"], None);
    let ran = sweep(&bench, &file, &["--retry-conflicts", "--json"]);
    ran.expect(0);
    let report = ran.json();
    assert_eq!(landed_ids(&report).len(), 2, "{report:#}");
    // The second fix was made again on top of the first.
    let text = bench.read("shop/text.py");
    assert!(
        text.contains("lower()") && text.contains("strip()"),
        "{text}"
    );
    assert!(pytest(&bench, &["tests/test_text.py"]));
    // The task that conflicted ran twice; its first run, superseded, is gone.
    let runs: Vec<usize> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["runs"].as_array().unwrap().len())
        .collect();
    assert_eq!(runs.iter().sum::<usize>(), 3, "{report:#}");
    bench.assert_clean();
}

#[test]
fn every_task_is_resolved_before_any_starts_and_bad_input_is_one_line() {
    let bench = Bench::with_fixture("python-shop");
    let before = Before::take(&bench);
    let nine_as = |id9: &str, last: &str| {
        let mut text = String::from("[defaults]\nagent = \"cmd:true\"\n");
        for i in 1..9 {
            text.push_str(&format!("\n[[task]]\nid = \"t{i}\"\ntask = \"task {i}\"\n"));
        }
        text.push_str(&format!(
            "\n[[task]]\nid = \"{id9}\"\ntask = \"task 9\"\n{last}\n"
        ));
        text
    };
    let nine = |last: &str| nine_as("t9", last);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "tasks.toml",
            nine("scope = [\"shop/[a\"]"),
            vec!["tasks.toml:39", "t9", "`scope`", "shop/[a"],
        ),
        (
            "tasks.toml",
            nine("on_pass = \"mrege\""),
            vec!["tasks.toml:39", "t9", "`on_pass`", "mrege"],
        ),
        (
            "tasks.toml",
            nine_as("t3", ""),
            vec!["tasks.toml:37", "duplicate id `t3`", "line 12"],
        ),
        (
            "tasks.toml",
            nine("agent = \"codx\""),
            vec!["tasks.toml:39", "t9", "`agent`", "codx"],
        ),
        (
            "tasks.toml",
            nine("agnet = \"cmd:true\""),
            vec!["tasks.toml:39", "`agnet`", "unknown field"],
        ),
        (
            "tasks.toml",
            "[[task]]\nid = \"a\"\ntask = \"no agent anywhere\"\n".into(),
            vec!["tasks.toml:1", "`a`", "no agent given", "--agent"],
        ),
        (
            "tasks.toml",
            "[[task]\ntask = \"x\"\n".into(),
            vec!["tasks.toml:1", "not valid TOML"],
        ),
        (
            "tasks.md",
            "- [ ] Round cents\n- [ ] Count quantities\n".into(),
            vec!["tasks.md:1", "no agent given"],
        ),
    ];
    for (name, text, words) in cases {
        let path = bench.root.join(name);
        std::fs::write(&path, &text).unwrap();
        let ran = bench.baton_in(&bench.root, &["-C", "repo", "sweep", name]);
        ran.expect(2);
        let line = ran.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        for w in words {
            assert!(line.contains(w), "no {w} in: {line}");
        }
        before.assert_nothing_started(&bench);
        assert!(!bench.repo.join(".git/baton/sweeps").exists());
        // The task file is never written to.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}

#[test]
fn a_markdown_checklist_is_a_sweep_with_the_flags_giving_the_rest() {
    let bench = Bench::with_fixture("python-shop");
    let list = bench.root.join("bugs.md");
    std::fs::copy(common::fixture("sweeps/shop.md"), &list).unwrap();
    let agent = format!(
        "cmd:python3 {}",
        common::fixture("sweeps/agent.py").display()
    );
    let ran = bench.baton(&[
        "sweep",
        list.to_str().unwrap(),
        "--agent",
        &agent,
        "--scope",
        "shop/**",
        "--check",
        "python3 -m compileall -q shop",
        "--gate",
        "python3 -m pytest -q tests/test_cart.py::test_count",
        "--json",
    ]);
    ran.expect(0);
    let report = ran.json();
    // Three unchecked items, three tasks; the checked one is not a task.
    let ids: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "round-cents-in-shop-money",
            "count-quantities-in-cart",
            "centuries-are-leap-years-only"
        ]
    );
    assert!(pytest(
        &bench,
        &[
            "tests/test_money.py",
            "tests/test_cart.py",
            "tests/test_dates.py"
        ]
    ));
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        std::fs::read_to_string(common::fixture("sweeps/shop.md")).unwrap()
    );
    bench.assert_clean();
}

/// A task file of `n` tasks, each adding a file of its own, with `gate` as the
/// sweep's gate check.
fn many(bench: &Bench, n: usize, gate: &str) -> PathBuf {
    let mut text = format!("[sweep]\ngate = [{gate:?}]\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[task]]\nid = \"t{i:02}\"\ntask = \"Add notes/{i:02}.txt\"\nagent = \"cmd:mkdir -p notes && echo {i} > notes/{i:02}.txt\"\nscope = [\"notes/{i:02}.txt\"]\n"
        ));
    }
    let path = bench.root.join("many.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn gate_runs(events: &[Value], gate: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == "queue.check" && e["result"]["command"] == gate)
        .count()
}

#[test]
fn the_queue_lands_32_candidates_with_a_handful_of_gate_runs() {
    let bench = Bench::with_fixture("python-shop");
    let gate = "test -d notes";
    let file = many(&bench, 32, gate);
    let ran = sweep(&bench, &file, &["-j", "8", "--json", "--stream"]);
    ran.expect(0);
    let events = lines(&ran.stdout);
    let runs = gate_runs(&events, gate);
    assert!(
        runs <= 6,
        "a serial queue runs the gate 32 times; this one ran it {runs} times"
    );
    assert_eq!(streamed_report(&events)["landed"], 32);
    assert_eq!(landed_subjects(&bench).len(), 32);
    // Every run's events came through the stream too, each tagged with its task.
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "run.started")
            .all(|e| e["task"].as_str().is_some_and(|t| t.starts_with('t')))
    );

    // One candidate that passes alone but breaks the gate once merged.
    let bench = Bench::with_fixture("python-shop");
    let gate = "test ! -e notes/13.txt";
    let file = many(&bench, 32, gate);
    let ran = sweep(&bench, &file, &["-j", "8", "--json", "--stream"]);
    ran.expect(1);
    let events = lines(&ran.stdout);
    let runs = gate_runs(&events, gate);
    eprintln!("32 candidates, one bad: the gate ran {runs} times");
    assert!(runs <= 12, "the gate ran {runs} times");
    let report = streamed_report(&events);
    let mut not_landed: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["landed"] == false)
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    not_landed.sort();
    assert_eq!(not_landed, ["t13"]);
    assert_eq!(task(&report, "t13")["reason"], "integration_failed");
    assert!(!bench.repo.join("notes/13.txt").exists());
    assert_eq!(landed_subjects(&bench).len(), 31);
}

#[test]
fn the_repositorys_config_gives_every_sweep_its_gate_and_a_task_file_overrides_it() {
    let bench = Bench::with_fixture("python-shop");
    bench.write(
        ".baton/config.toml",
        "[sweep]\ngate = [\"test ! -e notes/02.txt\"]\nbatch = 1\n",
    );
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-qm", "the repository's gate"]);
    // No [sweep] in the task file: the config's gate keeps t02 out.
    let file = std::fs::read_to_string(many(&bench, 4, "true"))
        .unwrap()
        .replace("[sweep]\ngate = [\"true\"]\n", "");
    let path = bench.root.join("plain.toml");
    std::fs::write(&path, file).unwrap();
    let ran = sweep(&bench, &path, &["-j", "2", "--json"]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(task(&report, "t02")["reason"], "integration_failed");
    assert_eq!(
        landed_subjects(&bench).len(),
        1 + 3,
        "the config's commit and three tasks"
    );
    assert!(!bench.repo.join("notes/02.txt").exists());

    // A task file's own [sweep] gate wins over the config's.
    let bench = Bench::with_fixture("python-shop");
    bench.write(".baton/config.toml", "[sweep]\ngate = [\"false\"]\n");
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-qm", "a gate nothing passes"]);
    let file = many(&bench, 2, "test -d notes");
    sweep(&bench, &file, &["--json"]).expect(0);
    assert_eq!(
        landed_subjects(&bench).len(),
        1 + 2,
        "the config's commit and both tasks"
    );

    // An unknown [sweep] field in the config is one line naming it.
    bench.write(".baton/config.toml", "[sweep]\ngates = [\"x\"]\n");
    let ran = sweep(&bench, &file, &[]);
    ran.expect(2);
    assert!(
        ran.stderr.contains("config.toml") && ran.stderr.contains("gates"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_flaky_gate_check_is_run_again_before_it_counts() {
    let bench = Bench::with_fixture("python-shop");
    let flag = bench.root.join("flaked");
    // Fails the first time it runs, passes after.
    let gate = format!("test -e {0} || {{ touch {0}; exit 1; }}", flag.display());
    let text = format!(
        "[sweep]\ngate = [{gate:?}]\nflaky_retries = 1\n\n[[task]]\nid = \"cents\"\ntask = \"Round cents\"\nagent = 'cmd:sed -i \"s/int(amount \\* 100)/round(amount * 100)/\" shop/money.py'\nscope = [\"shop/money.py\"]\n"
    );
    let file = bench.root.join("flaky.toml");
    std::fs::write(&file, text).unwrap();
    let ran = sweep(&bench, &file, &["--json", "--stream"]);
    ran.expect(0);
    let events = lines(&ran.stdout);
    assert_eq!(gate_runs(&events, &gate), 2);
    assert!(events.iter().any(|e| e["event"] == "queue.flaky"));
    assert!(bench.read("shop/money.py").contains("round("));
}

/// Waits until `n` runs of the bench have an agent working.
fn wait_for_agents(bench: &Bench, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let working = bench
            .run_ids()
            .iter()
            .filter(|r| {
                bench
                    .journal_file(r, "events.jsonl")
                    .contains("agent.started")
            })
            .count();
        if working >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the agents never started");
}

const FOUR: &[&str] = &[
    "round-cents",
    "count-quantities",
    "leap-centuries",
    "slug-lower",
];

/// Every one of the four fixes is on main exactly once, and nothing of baton's is left.
#[track_caller]
fn assert_four_landed_once(bench: &Bench) {
    let subjects = landed_subjects(bench);
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    let mut unique = subjects.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "a task landed twice: {subjects:?}");
    assert!(pytest(
        bench,
        &[
            "tests/test_money.py",
            "tests/test_cart.py",
            "tests/test_dates.py",
            "tests/test_text.py::test_slugs_are_lower_case"
        ]
    ));
    assert_eq!(bench.git(&["status", "--porcelain"]).trim(), "");
    bench.assert_clean();
}

fn sweep_id(bench: &Bench) -> String {
    let dir = bench.repo.join(".git/baton/sweeps");
    let ids: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

#[test]
fn ctrl_c_stops_the_sweep_cleanly_and_resume_finishes_it() {
    let bench = Bench::with_fixture("python-shop");
    let file = tasks(&bench, FOUR, Some(1.5));
    // As at a terminal: baton and its children share a group, which gets the SIGINT.
    use std::os::unix::process::CommandExt;
    let mut child = bench
        .baton_command(&["sweep", file.to_str().unwrap(), "-j", "2"])
        .process_group(0)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_agents(&bench, 2);
    // SAFETY: signalling the process group of a child we spawned.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // Nothing half-landed: the tree is clean at whatever landed, every run finished.
    assert_eq!(bench.git(&["status", "--porcelain"]).trim(), "");
    let said = bench.baton(&["recover"]);
    assert!(
        said.stdout.contains("nothing to recover") || said.stderr.contains("nothing to recover"),
        "{}{}",
        said.stdout,
        said.stderr
    );
    let id = sweep_id(&bench);
    let status = bench.baton(&["sweep", "status", &id]);
    assert!(status.stdout.contains("interrupted"), "{}", status.stdout);

    let ran = bench.baton(&["sweep", "resume", &id, "--json"]);
    ran.expect(0);
    assert_eq!(ran.json()["landed"], 4);
    assert_four_landed_once(&bench);
}

#[test]
fn a_killed_sweep_is_recovered_and_resumed_with_nothing_lost_or_landed_twice() {
    // SIGKILL while the agents work: `baton recover` saves every run, `sweep resume`
    // runs again what was stopped and lands it all.
    let bench = Bench::with_fixture("python-shop");
    let file = tasks(&bench, FOUR, Some(1.0));
    let mut child = bench
        .baton_command(&["sweep", file.to_str().unwrap(), "-j", "4"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_agents(&bench, 4);
    child.kill().unwrap();
    child.wait().unwrap();
    let recovered = bench.baton(&["recover"]);
    recovered.expect(0);
    let id = sweep_id(&bench);
    let ran = bench.baton(&["sweep", "resume", &id, "--json"]);
    ran.expect(0);
    assert_four_landed_once(&bench);

    // SIGKILL after the branch moved but before the runs' reports said so: resume
    // (which recovers first) finishes that landing and lands the rest, none twice.
    for point in ["sweep.intent", "sweep.switched", "sweep.ref"] {
        let bench = Bench::with_fixture("python-shop");
        let file = tasks(&bench, FOUR, None);
        let mut cmd = bench.baton_command(&["sweep", file.to_str().unwrap(), "-j", "4"]);
        cmd.env("BATON_CRASH_AT", point).stderr(Stdio::null());
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), None, "{point}: baton was killed");
        let id = sweep_id(&bench);
        let ran = bench.baton(&["sweep", "resume", &id, "--json"]);
        ran.expect(0);
        assert_four_landed_once(&bench);
    }

    // Killed after a batch of four moved the branch: `recover` finishes each run's
    // landing and names each run's own commit, not the batch's last.
    let bench = Bench::with_fixture("python-shop");
    let file = tasks(&bench, FOUR, None);
    let mut cmd =
        bench.baton_command(&["sweep", file.to_str().unwrap(), "-j", "4", "--batch", "4"]);
    cmd.env("BATON_CRASH_AT", "sweep.ref").stderr(Stdio::null());
    assert_eq!(cmd.status().unwrap().code(), None, "baton was killed");
    bench.baton(&["recover"]).expect(0);
    let mut named = vec![];
    for run in bench.run_ids() {
        let report = bench.report(&run);
        let Some(commit) = report["outcome"]["commit"].as_str() else {
            continue;
        };
        let subject = bench.git(&["log", "-1", "--format=%s", commit]);
        let task = report["task"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(subject.trim(), task, "run {run} names its own commit");
        named.push(commit.to_string());
    }
    named.sort();
    named.dedup();
    assert_eq!(named.len(), 4, "four runs, four commits: {named:?}");
}

#[test]
fn the_users_edits_during_the_sweep_are_never_written_over() {
    let bench = Bench::with_fixture("python-shop");
    let file = tasks(&bench, &["round-cents", "count-quantities"], Some(1.0));
    let child = bench
        .baton_command(&["sweep", file.to_str().unwrap(), "-j", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_agents(&bench, 2);
    // While the agents work, the user edits a file one task fixes, and another.
    let mine = "\"\"\"Money, with my own notes.\"\"\"\n\n\ndef to_cents(amount):\n    return int(amount * 100)  # mine\n";
    bench.write("shop/money.py", mine);
    bench.write("README.md", "# my readme\n");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The other fix landed around the user's work; this one waits, naming the path.
    assert_eq!(task(&report, "count-quantities")["landed"], true);
    let waiting = task(&report, "round-cents");
    assert_eq!(waiting["reason"], "dirty_overlap");
    assert_eq!(waiting["paths"], serde_json::json!(["shop/money.py"]));
    assert_eq!(bench.read("shop/money.py"), mine);
    assert_eq!(bench.read("README.md"), "# my readme\n");
    assert!(bench.read("shop/cart.py").contains("price * quantity"));

    // The user puts their edit of that file away; resume lands the fix.
    bench.git(&["checkout", "shop/money.py"]);
    let id = report["sweep_id"].as_str().unwrap();
    let ran = bench.baton(&["sweep", "resume", id, "--json"]);
    ran.expect(0);
    assert!(bench.read("shop/money.py").contains("round(amount * 100)"));
    assert_eq!(bench.read("README.md"), "# my readme\n");
    assert_eq!(bench.git(&["status", "--porcelain"]).trim(), "M README.md");
}

#[test]
fn codex_fixes_a_task_of_the_sweep_beside_a_script() {
    let bench = Bench::with_fixture("python-shop");
    let _model = bench.scripted_codex("sweep-units");
    let text = std::fs::read_to_string(tasks(&bench, &["round-cents"], None)).unwrap()
        + "\n[[task]]\nid = \"miles\"\ntask = \"Convert kilometres to miles by dividing\"\nagent = \"codex\"\nscope = [\"shop/units.py\"]\nchecks = [\"python3 -m pytest -q tests/test_units.py\"]\n";
    let file = bench.root.join("tasks.toml");
    std::fs::write(&file, text).unwrap();
    let ran = sweep(&bench, &file, &["--json"]);
    ran.expect(0);
    let report = ran.json();
    assert_eq!(task(&report, "miles")["landed"], true, "{report:#}");
    let run = task(&report, "miles")["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(bench.report(&run)["agent"], "codex");
    assert!(bench.read("shop/units.py").contains("km / KM_PER_MILE"));
    assert!(pytest(
        &bench,
        &["tests/test_units.py", "tests/test_money.py"]
    ));
}

#[test]
fn a_kept_run_edited_by_hand_is_left_to_baton_merge_by_resume() {
    let bench = Bench::with_fixture("python-shop");
    let file = tasks(&bench, &["round-cents"], None);
    // The user's own uncommitted edit makes the fix wait.
    bench.write("shop/money.py", "# mine\n");
    let ran = sweep(&bench, &file, &["--json"]);
    ran.expect(1);
    let report = ran.json();
    assert_eq!(task(&report, "round-cents")["reason"], "dirty_overlap");
    // Then they change the kept worktree by hand, and put their own edit away.
    let run = task(&report, "round-cents")["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let worktree = PathBuf::from(bench.report(&run)["worktree"].as_str().unwrap());
    std::fs::write(worktree.join("shop/extra.py"), "# by hand\n").unwrap();
    bench.git(&["checkout", "shop/money.py"]);
    let id = report["sweep_id"].as_str().unwrap();
    let ran = bench.baton(&["sweep", "resume", id, "--json"]);
    ran.expect(1);
    // What lands would not be what was verified: the queue leaves it, untouched.
    assert_eq!(task(&ran.json(), "round-cents")["reason"], "edited");
    assert!(bench.read("shop/money.py").contains("int(amount * 100)"));
    assert!(worktree.join("shop/extra.py").exists());
    // `baton merge` judges it again (the extra file is out of scope): not landed.
    bench.baton(&["merge", &run]).expect(3);
}

#[test]
fn a_sweep_that_fails_stops_the_runs_still_going_and_keeps_their_work() {
    let bench = Bench::with_fixture("python-shop");
    // The first task's agent breaks the sweep's own journal (its directory becomes a
    // file), so the sweep cannot record that run's end; the second is still working.
    let file = bench.root.join("tasks.toml");
    std::fs::write(
        &file,
        r#"[defaults]
timeout = "2m"

[[task]]
id = "breaks-the-journal"
task = "Note a change, and take the sweep's journal away"
agent = 'cmd:echo fast >> shop/money.py && dir="$(git rev-parse --git-common-dir)/baton/sweeps" && sleep 1 && rm -rf "$dir" && echo gone > "$dir"'
scope = ["shop/money.py"]

[[task]]
id = "slow"
task = "Work for a long time, then edit the cart"
agent = 'cmd:echo started >> shop/cart.py && sleep 60 && echo late >> shop/cart.py'
scope = ["shop/cart.py"]
"#,
    )
    .unwrap();
    let ran = sweep(&bench, &file, &["-j", "2"]);
    assert_ne!(ran.code, 0, "{}", ran.stderr);
    assert_ne!(ran.code, 130, "{}", ran.stderr);
    assert!(ran.stderr.contains("baton/sweeps"), "{}", ran.stderr);
    // The slow run was stopped for the sweep's sake, not waited for: its agent never
    // got to its last line, and what it had written is kept.
    let runs = bench.repo.join(".git/baton/runs");
    let slow: Value = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("state.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .find(|r| {
            r["task"]
                .as_str()
                .is_some_and(|t| t.starts_with("Work for a long time"))
        })
        .expect("the slow task's run");
    assert_eq!(slow["agent_result"]["status"], "interrupted", "{slow:#}");
    assert_eq!(slow["stage"], "finished", "{slow:#}");
    let kept = bench.git(&["stash", "list"]);
    let worktree = std::path::PathBuf::from(slow["worktree"].as_str().unwrap());
    let cart = std::fs::read_to_string(worktree.join("shop/cart.py")).unwrap_or_default();
    let stashed = if kept.contains(slow["run_id"].as_str().unwrap()) {
        bench.git(&["stash", "show", "-p", "stash@{0}"])
    } else {
        String::new()
    };
    let work = format!("{cart}{stashed}");
    assert!(
        work.contains("started"),
        "the slow run's work is kept: {slow:#}\n{kept}"
    );
    assert!(
        !work.contains("late"),
        "the slow agent ran to its end: {work}"
    );
}

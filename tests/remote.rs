//! Stories of a sweep over machines, git the only coordination point: a bare
//! repository is the remote; every `baton worker` is a process of its own, in its own
//! directory with its own HOME (so its own clone), told only the task file and the
//! remote; `baton sweep land` lands what they pushed. The user looks at the remote:
//! its branch (files, commits and their trailers), its `refs/baton/*` refs, and at
//! the exit statuses and reports. Agents are shell commands (`cmd:`) on a tiny project.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Bench, Ran};
use serde_json::Value;

/// The project every story starts from: a README and the gate the task files use
/// (it fails when both halves of the pair are there: each passes alone, together not).
fn project(bench: &Bench) {
    bench.write("README.md", "A tiny project.\n");
    bench.write(
        "gate.sh",
        "#!/bin/sh\n# Both halves of the pair together break the build.\n! { [ -e pair-a.txt ] && [ -e pair-b.txt ]; }\n",
    );
    bench.git(&["init", "-q", "-b", "main"]);
    bench.git(&["add", "-A"]);
    bench.git(&["commit", "-q", "-m", "initial"]);
}

/// A bench with a bare remote cloned from the project, and a task file.
struct Fleet {
    bench: Bench,
    remote: PathBuf,
    tasks: PathBuf,
}

impl Fleet {
    fn new(tasks: &str) -> Fleet {
        let bench = Bench::empty();
        project(&bench);
        let remote = bench.root.join("remote.git");
        bench.git_in(
            &bench.root,
            &["clone", "-q", "--bare", "repo", "remote.git"],
        );
        let tasks_path = bench.root.join("tasks.toml");
        std::fs::write(
            &tasks_path,
            tasks.replace("ROOT", &bench.root.display().to_string()),
        )
        .unwrap();
        Fleet {
            bench,
            remote,
            tasks: tasks_path,
        }
    }

    fn url(&self) -> String {
        self.remote.display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.bench.root.join(name)
    }

    /// baton in a machine of its own: the directory `name` (made empty) and the HOME
    /// `name-home`, so its clone is its own.
    fn machine(&self, name: &str, args: &[&str]) -> Command {
        let dir = self.path(name);
        let home = self.path(&format!("{name}-home"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(args).current_dir(&dir);
        self.bench.hermetic_env(&mut cmd);
        cmd.env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn worker_args(&self, index: usize) -> Vec<String> {
        vec![
            "worker".into(),
            self.tasks.display().to_string(),
            "--index".into(),
            index.to_string(),
            "--remote".into(),
            self.url(),
            "--json".into(),
        ]
    }

    fn spawn_worker(&self, name: &str, index: usize) -> Child {
        let args = self.worker_args(index);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.machine(name, &args).spawn().unwrap()
    }

    fn worker(&self, name: &str, index: usize) -> Ran {
        ran(self.spawn_worker(name, index))
    }

    fn land(&self, name: &str, extra: &[&str], env: &[(&str, &str)]) -> Ran {
        ran(self.spawn_land(name, extra, env))
    }

    fn spawn_land(&self, name: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
        let tasks = self.tasks.display().to_string();
        let url = self.url();
        let mut args = vec!["sweep", "land", tasks.as_str(), "--remote", url.as_str()];
        args.extend_from_slice(extra);
        let mut cmd = self.machine(name, &args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    /// git on the remote itself.
    fn remote_git(&self, args: &[&str]) -> String {
        let git_dir = format!("--git-dir={}", self.remote.display());
        let mut all = vec![git_dir.as_str()];
        all.extend_from_slice(args);
        self.bench.git_in(&self.bench.root, &all)
    }

    /// The remote's refs under `prefix`, name to commit.
    fn refs(&self, prefix: &str) -> BTreeMap<String, String> {
        self.remote_git(&["for-each-ref", "--format=%(refname) %(objectname)", prefix])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, o)| (n.to_string(), o.to_string()))
            .collect()
    }

    /// How many commits of the remote's main land `task` of `sweep` (by their trailers).
    fn landings(&self, sweep: &str, task: &str) -> usize {
        self.remote_git(&["log", "--format=%B%x00", "main"])
            .split('\0')
            .filter(|m| {
                m.lines().any(|l| l == format!("Baton-Sweep: {sweep}"))
                    && m.lines().any(|l| l == format!("Baton-Task: {task}"))
            })
            .count()
    }

    /// True when `commit` is on the remote's main.
    fn on_branch(&self, commit: &str) -> bool {
        let mut cmd = Command::new("git");
        cmd.arg(format!("--git-dir={}", self.remote.display()))
            .args(["merge-base", "--is-ancestor", commit, "main"]);
        self.bench.hermetic_env(&mut cmd);
        cmd.status().unwrap().success()
    }

    /// A file on the remote's main, if it is there.
    fn on_main(&self, path: &str) -> Option<String> {
        let mut cmd = Command::new("git");
        cmd.arg(format!("--git-dir={}", self.remote.display()))
            .args(["show", &format!("main:{path}")]);
        self.bench.hermetic_env(&mut cmd);
        let out = cmd.output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn ran(child: Child) -> Ran {
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits (a minute at most) until `path` exists.
#[track_caller]
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn task<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {report:#}"))
}

/// Nine tasks that each write a file of their own (the ninth waits for a signal
/// first, so that its worker can be killed halfway), a pair that passes alone and
/// breaks the gate together, and a fix whose own check fails.
fn twelve_tasks() -> String {
    let mut text =
        String::from("[defaults]\ntimeout = \"1m\"\n\n[sweep]\ngate = [\"sh gate.sh\"]\n");
    for i in 1..=9 {
        let write = format!("echo {i} > notes-{i:02}.txt");
        let agent = if i == 9 {
            format!("touch ROOT/started && while [ ! -e ROOT/go ]; do sleep 0.05; done && {write}")
        } else {
            write
        };
        text.push_str(&format!(
            "\n[[task]]\nid = \"notes-{i:02}\"\ntask = \"Write notes {i:02}\"\nagent = 'cmd:{agent}'\nscope = [\"notes-{i:02}.txt\"]\nchecks = [\"test -s notes-{i:02}.txt\"]\n"
        ));
    }
    for half in ["a", "b"] {
        text.push_str(&format!(
            "\n[[task]]\nid = \"pair-{half}\"\ntask = \"Add pair {half}\"\nagent = 'cmd:echo {half} > pair-{half}.txt'\nscope = [\"pair-{half}.txt\"]\n"
        ));
    }
    text.push_str(
        "\n[[task]]\nid = \"broken\"\ntask = \"Fix the broken file\"\nagent = 'cmd:echo wrong > broken.txt'\nscope = [\"broken.txt\"]\nchecks = [\"grep -q right broken.txt\"]\n",
    );
    text
}

#[test]
fn twelve_workers_push_their_results_and_one_lander_lands_each_passing_one_exactly_once() {
    let fleet = Fleet::new(&twelve_tasks());
    let before = fleet.remote_git(&["rev-parse", "main"]).trim().to_string();

    // Twelve machines at once, each told only the task file, the remote and its index.
    let mut workers: Vec<(usize, Child)> = (0..12)
        .map(|i| (i, fleet.spawn_worker(&format!("w{i:02}"), i)))
        .collect();
    // The ninth is killed halfway, while its agent works.
    wait_for(&fleet.path("started"));
    let (_, mut slow) = workers.remove(8);
    slow.kill().unwrap();
    assert!(ran(slow).code != 0);
    let mut sweeps = vec![];
    for (i, w) in workers {
        let r = ran(w);
        // Pushed either way; the broken fix's worker says its checks failed.
        r.expect(if i == 11 { 1 } else { 0 });
        sweeps.push(r.json()["sweep_id"].as_str().unwrap().to_string());
        assert_eq!(r.json()["index"], i);
    }
    // They agreed on one sweep without talking.
    sweeps.dedup();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    let id = sweeps[0].clone();
    let results = format!("refs/baton/results/{id}/");
    assert_eq!(fleet.refs(&results).len(), 11);
    assert!(
        !fleet
            .refs(&results)
            .contains_key(&format!("{results}notes-09"))
    );

    // Its retry (same machine) runs it again and pushes it.
    std::fs::write(fleet.path("go"), "").unwrap();
    fleet.worker("w08", 8).expect(0);
    assert_eq!(fleet.refs(&results).len(), 12);

    // A worker run twice does nothing the second time: the first result stands.
    let first = fleet.refs(&results)[&format!("{results}notes-01")].clone();
    let again = fleet.worker("w00", 0);
    again.expect(0);
    assert!(
        again.stderr.contains("already has its result"),
        "{}",
        again.stderr
    );
    assert_eq!(fleet.refs(&results)[&format!("{results}notes-01")], first);
    // No worker touched the branch.
    assert_eq!(fleet.remote_git(&["rev-parse", "main"]).trim(), before);

    // The lander is killed right after its first push of the branch...
    let killed = fleet.land("lander", &[], &[("BATON_CRASH_AT", "land.pushed")]);
    assert_eq!(killed.code, -1, "{}", killed.stderr);
    let landed_first: usize = (1..=9)
        .map(|i| fleet.landings(&id, &format!("notes-{i:02}")))
        .sum();
    assert!(landed_first >= 1, "the first batch landed before the kill");
    assert_eq!(
        fleet.refs(&format!("refs/baton/sweeps/{id}/lander")).len(),
        1
    );

    // ...and run again where it was: it takes its lease back and lands the rest.
    let resumed = fleet.land("lander", &["--json"], &[]);
    resumed.expect(1);
    let report = resumed.json();
    assert_eq!(report["sweep_id"], id.as_str());
    for i in 1..=9 {
        let t = format!("notes-{i:02}");
        assert_eq!(fleet.landings(&id, &t), 1, "{t} lands exactly once");
        assert_eq!(task(&report, &t)["landed"], true, "{report:#}");
        assert_eq!(
            fleet.on_main(&format!("notes-{i:02}.txt")),
            Some(format!("{i}\n"))
        );
    }
    // The pair: exactly one of them landed, the other failed on the union.
    let (a, b) = (task(&report, "pair-a"), task(&report, "pair-b"));
    assert_ne!(a["landed"], b["landed"], "{report:#}");
    let failed = if a["landed"] == true { b } else { a };
    assert_eq!(failed["reason"], "integration_failed");
    assert_eq!(failed["check"], "sh gate.sh");
    assert_eq!(
        fleet.landings(&id, "pair-a") + fleet.landings(&id, "pair-b"),
        1
    );
    // The broken fix: reported with its verdict, and where its work is.
    let broken = task(&report, "broken");
    assert_eq!(broken["landed"], false);
    assert_eq!(broken["reason"], "checks_failed");
    assert_eq!(broken["result_ref"], format!("{results}broken"));
    assert!(fleet.on_main("broken.txt").is_none());
    assert_eq!(report["landed"], 10);
    // Every task decided: the sweep is closed and its lease given back.
    assert_eq!(report["closed"], true);
    assert!(fleet.refs("refs/baton/open/").is_empty());
    assert!(
        fleet
            .refs(&format!("refs/baton/sweeps/{id}/lander"))
            .is_empty()
    );
    // What the remote says now, as status tells it.
    let url = fleet.url();
    let args = [
        "sweep",
        "status",
        id.as_str(),
        "--remote",
        url.as_str(),
        "--json",
    ];
    let status = ran(fleet.machine("statuser", &args).spawn().unwrap());
    status.expect(0);
    assert_eq!(status.json()["landed"], 10);
    assert_eq!(task(&status.json(), "broken")["result"], "checks_failed");

    // The same file run again later is a new sweep, from the newer tip: there its
    // task has nothing left to change (the agent fails on no change, exit 4).
    let later = fleet.worker("w-later", 0);
    later.expect(4);
    assert_ne!(later.json()["sweep_id"], id.as_str());
    assert_eq!(later.json()["verdict"], "no_change");
}

#[test]
fn a_push_by_someone_else_while_the_lander_tests_is_kept_and_the_batch_is_tested_again_on_it() {
    // The gate pushes once, from someone else's clone, while the lander tests.
    let tasks = r#"
[sweep]
gate = ["sh gate.sh", "test -e ROOT/pushed || { touch ROOT/pushed && git -C ROOT/other push -q ROOT/remote.git HEAD:main; }"]

[[task]]
id = "a"
task = "Write a"
agent = 'cmd:echo a > a.txt'

[[task]]
id = "b"
task = "Write b"
agent = 'cmd:echo b > b.txt'
"#;
    let fleet = Fleet::new(tasks);
    for i in 0..2 {
        fleet.worker(&format!("w{i}"), i).expect(0);
    }
    let other = fleet.path("other");
    fleet
        .bench
        .git_in(&fleet.bench.root, &["clone", "-q", &fleet.url(), "other"]);
    std::fs::write(other.join("README.md"), "A tiny project, edited.\n").unwrap();
    fleet
        .bench
        .git_in(&other, &["commit", "-q", "-am", "Someone else's edit"]);
    let theirs = fleet
        .bench
        .git_in(&other, &["rev-parse", "HEAD"])
        .trim()
        .to_string();

    let ran = fleet.land("lander", &["--json"], &[]);
    ran.expect(0);
    let report = ran.json();
    let id = report["sweep_id"].as_str().unwrap().to_string();
    // Their commit is still on the branch, under both landings, which were tested
    // again on it (the lander never overwrites).
    assert!(fleet.on_branch(&theirs), "{}", ran.stderr);
    assert_eq!(fleet.remote_git(&["rev-parse", "main~2"]).trim(), theirs);
    assert_eq!(
        fleet.on_main("README.md").as_deref(),
        Some("A tiny project, edited.\n")
    );
    assert_eq!((fleet.landings(&id, "a"), fleet.landings(&id, "b")), (1, 1));
    assert!(ran.stderr.contains("testing again"), "{}", ran.stderr);
}

#[test]
fn a_second_lander_is_refused_while_the_first_holds_the_lease_and_a_lease_taken_over_fences_the_first()
 {
    // The first lander's gate holds it until the test lets go.
    let tasks = r#"
[sweep]
gate = ["touch ROOT/holding; while [ ! -e ROOT/release ]; do sleep 0.05; done"]

[[task]]
id = "a"
task = "Write a"
agent = 'cmd:echo a > a.txt'
"#;
    let fleet = Fleet::new(tasks);
    fleet.worker("w0", 0).expect(0);
    let before = fleet.remote_git(&["rev-parse", "main"]).trim().to_string();
    let first = fleet.spawn_land("lander-1", &[], &[]);
    wait_for(&fleet.path("holding"));

    let second = fleet.land("lander-2", &[], &[]);
    second.expect(7);
    assert!(
        second.stderr.contains("another lander holds its lease")
            && second.stderr.contains("--take-over"),
        "{}",
        second.stderr
    );
    assert_eq!(fleet.remote_git(&["rev-parse", "main"]).trim(), before);

    // Someone takes the lease from under it (as `--take-over` would): the first
    // lander's push of the branch is refused with its lease, and nothing lands.
    let lease = fleet.refs("refs/baton/sweeps/");
    let lease = lease
        .keys()
        .find(|r| r.ends_with("/lander"))
        .expect("the first lander holds a lease")
        .clone();
    let url = fleet.url();
    fleet
        .bench
        .git(&["push", "-q", "--force", &url, &format!("{before}:{lease}")]);
    std::fs::write(fleet.path("release"), "").unwrap();
    let first = ran(first);
    first.expect(7);
    assert!(first.stderr.contains("was taken over"), "{}", first.stderr);
    assert_eq!(fleet.remote_git(&["rev-parse", "main"]).trim(), before);

    // A lander told to take over lands it.
    fleet.land("lander-2", &["--take-over"], &[]).expect(0);
    assert_eq!(fleet.on_main("a.txt").as_deref(), Some("a\n"));
}

#[test]
fn bad_input_is_one_line_and_pushes_nothing_and_a_lost_remote_keeps_the_run_with_the_command_to_push_it()
 {
    let tasks = r#"
[[task]]
id = "a"
task = "Write a"
agent = 'cmd:echo a > a.txt'

[[task]]
id = "b"
task = "Write b while the network goes away"
agent = 'cmd:echo b > b.txt && mv ROOT/remote.git ROOT/remote.gone'
"#;
    let fleet = Fleet::new(tasks);

    // An index outside the task list.
    let out = fleet.worker("w-bad", 5);
    out.expect(2);
    assert!(
        out.stderr.contains("--index 5 is outside the task list") && out.stderr.contains("0 to 1"),
        "{}",
        out.stderr
    );
    assert!(fleet.refs("refs/baton/").is_empty(), "nothing pushed");

    // A remote that is not there.
    let mut cmd = fleet.machine(
        "w-nowhere",
        &[
            "worker",
            &fleet.tasks.display().to_string(),
            "--index",
            "0",
            "--remote",
            "/nowhere/remote.git",
        ],
    );
    let out = ran(cmd.spawn().unwrap());
    out.expect(2);
    assert!(
        out.stderr
            .contains("could not reach the remote /nowhere/remote.git"),
        "{}",
        out.stderr
    );

    // A task file that is not the sweep's.
    let ok = fleet.worker("w0", 0);
    ok.expect(0);
    let id = ok.json()["sweep_id"].as_str().unwrap().to_string();
    let other = fleet.path("other.toml");
    std::fs::write(
        &other,
        "[[task]]\nid = \"c\"\ntask = \"Write c\"\nagent = 'cmd:echo c > c.txt'\n",
    )
    .unwrap();
    let refs = fleet.refs("refs/baton/");
    let other = other.display().to_string();
    for args in [
        vec![
            "worker",
            other.as_str(),
            "--index",
            "0",
            "--remote",
            &fleet.url(),
            "--sweep",
            &id,
        ],
        vec![
            "sweep",
            "land",
            other.as_str(),
            "--remote",
            &fleet.url(),
            "--sweep",
            &id,
        ],
    ] {
        let out = ran(fleet.machine("mismatch", &args).spawn().unwrap());
        out.expect(2);
        assert!(
            out.stderr
                .contains(&format!("is not the task file of sweep {id}")),
            "{}",
            out.stderr
        );
        assert_eq!(fleet.refs("refs/baton/"), refs, "nothing pushed");
    }

    // The remote goes away while task b's agent works: its run is kept, nothing is
    // pushed, and the message says how to push it later.
    let lost = fleet.worker("w1", 1);
    lost.expect(6);
    std::fs::rename(fleet.path("remote.gone"), &fleet.remote).unwrap();
    let result = format!("refs/baton/results/{id}/b");
    assert!(
        !fleet.refs(&result).contains_key(&result),
        "nothing partial pushed"
    );
    let command = lost
        .stderr
        .split("push it later with `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no command in: {}", lost.stderr))
        .to_string();
    let mut sh = Command::new("sh");
    sh.args(["-c", &command]);
    fleet.bench.hermetic_env(&mut sh);
    assert!(sh.status().unwrap().success(), "{command}");
    assert!(fleet.refs(&result).contains_key(&result));
    // And the result pushed by hand is the lander's to land.
    let landed = fleet.land("lander", &["--json"], &[]);
    landed.expect(0);
    assert_eq!(fleet.on_main("b.txt").as_deref(), Some("b\n"));
}

#[test]
fn sweep_plan_opens_the_sweep_and_writes_a_manifest_whose_workers_name_it() {
    let tasks = r#"
[[task]]
id = "a"
task = "Write a"
agent = 'cmd:echo a > a.txt'
"#;
    let fleet = Fleet::new(tasks);
    let file = fleet.tasks.display().to_string();
    let url = fleet.url();

    // Bad input is refused before anything is pushed.
    let plan = [
        "sweep",
        "plan",
        file.as_str(),
        "--emit",
        "k8s",
        "--remote",
        url.as_str(),
    ];
    let mut bad = plan.to_vec();
    bad.extend(["--image", "ghcr.io/you/baton:1", "--parallelism", "0"]);
    let out = ran(fleet.machine("planner", &bad).spawn().unwrap());
    out.expect(2);
    assert!(out.stderr.contains("--parallelism 0"), "{}", out.stderr);
    assert!(fleet.refs("refs/baton/").is_empty(), "nothing pushed");

    let mut good = plan.to_vec();
    let manifest = fleet.path("sweep.yaml").display().to_string();
    good.extend(["--image", "ghcr.io/you/baton:1", "-o", manifest.as_str()]);
    let out = ran(fleet.machine("planner", &good).spawn().unwrap());
    out.expect(0);
    // The sweep is open on the remote, and the manifest's workers name it.
    let open = fleet.refs("refs/baton/open/");
    assert_eq!(open.len(), 1, "{open:?}");
    let status = ran(fleet
        .machine(
            "statuser",
            &["sweep", "status", &file, "--remote", &url, "--json"],
        )
        .spawn()
        .unwrap());
    status.expect(0);
    let id = status.json()["sweep_id"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.contains("kind: Job") || text.contains("kind: \"Job\""),
        "{text}"
    );
    assert!(text.contains(&id), "the manifest names sweep {id}:\n{text}");
    // A worker started as the manifest starts it joins that sweep.
    let w = ran(fleet
        .machine(
            "pod-0",
            &[
                "worker", &file, "--index", "0", "--remote", &url, "--sweep", &id, "--json",
            ],
        )
        .spawn()
        .unwrap());
    w.expect(0);
    assert_eq!(w.json()["sweep_id"], id.as_str());
}

#[test]
fn the_token_a_worker_pushes_with_is_not_handed_to_the_agent_or_its_checks() {
    let fleet = Fleet::new(
        r#"[[task]]
id = "leak"
task = "Write down what the environment holds"
agent = 'cmd:echo "token=$BATON_GIT_TOKEN user=$BATON_GIT_USER" > leak.txt'
checks = ['test -z "$BATON_GIT_TOKEN" && test -z "$BATON_GIT_USER"']
scope = ["leak.txt"]
"#,
    );
    // As the manifests give it: the push token in the worker's environment.
    let args = fleet.worker_args(0);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = fleet.machine("w0", &args);
    cmd.env("BATON_GIT_TOKEN", "s3cret")
        .env("BATON_GIT_USER", "pusher");
    let done = ran(cmd.spawn().unwrap());
    // The check saw no token either: the run passed.
    done.expect(0);
    let results = fleet.refs("refs/baton/results/");
    let (_, result) = results.iter().next().expect("the worker pushed its result");
    let leak = fleet.remote_git(&["show", &format!("{result}^:leak.txt")]);
    assert_eq!(leak.trim(), "token= user=");
}

#[test]
fn a_lander_told_to_wait_lands_each_result_as_it_comes_and_ends_when_none_is_missing() {
    let tasks = r#"
[[task]]
id = "a"
task = "Write a"
agent = 'cmd:echo a > a.txt'

[[task]]
id = "b"
task = "Write b"
agent = 'cmd:echo b > b.txt'
"#;
    let fleet = Fleet::new(tasks);
    fleet.worker("w0", 0).expect(0);
    // Started while task b has no result yet: it lands a, and waits.
    let lander = fleet.spawn_land("lander", &["--json", "--wait", "2m"], &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet.on_main("a.txt").is_none() {
        assert!(Instant::now() < deadline, "the lander landed nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fleet.on_main("b.txt"), None);
    // b's worker pushes later; the same lander lands it, and is done.
    fleet.worker("w1", 1).expect(0);
    let ran = ran(lander);
    ran.expect(0);
    let report = ran.json();
    let id = report["sweep_id"].as_str().unwrap().to_string();
    assert_eq!(report["landed"], 2, "{report:#}");
    assert_eq!(report["missing"], 0, "{report:#}");
    assert_eq!(report["closed"], true, "{report:#}");
    assert_eq!(fleet.on_main("b.txt").as_deref(), Some("b\n"));
    assert_eq!((fleet.landings(&id, "a"), fleet.landings(&id, "b")), (1, 1));
    // The lease went with it.
    assert!(
        fleet
            .refs(&format!("refs/baton/sweeps/{id}/lander"))
            .is_empty()
    );
}

#[test]
fn a_worker_and_a_lander_in_a_single_commit_checkout_land_the_task() {
    // As a CI job checks out by default: one commit of history.
    let fleet = Fleet::new(
        r#"[[task]]
id = "a"
task = "Write a"
agent = 'cmd:echo a > a.txt'
"#,
    );
    // A second commit, so that one commit of history hides the first.
    fleet.bench.write("README.md", "A tiny project, twice.\n");
    fleet.bench.git(&["commit", "-q", "-am", "second"]);
    fleet.bench.git(&["push", "-q", &fleet.url(), "main"]);
    let url = format!("file://{}", fleet.url());
    fleet.bench.git_in(
        &fleet.bench.root,
        &["clone", "-q", "--depth", "1", &url, "ci"],
    );
    let tasks = fleet.tasks.display().to_string();
    // The machine `ci` is that checkout (its baton runs in it).
    let in_ci = |args: &[&str]| ran(fleet.machine("ci", args).spawn().unwrap());
    assert_eq!(
        fleet
            .bench
            .git_in(&fleet.path("ci"), &["rev-parse", "--is-shallow-repository"])
            .trim(),
        "true"
    );
    in_ci(&["worker", &tasks, "--index", "0", "--remote", &url]).expect(0);
    let landed = in_ci(&["sweep", "land", &tasks, "--remote", &url, "--json"]);
    landed.expect(0);
    assert_eq!(landed.json()["landed"], 1);
    assert_eq!(fleet.on_main("a.txt").as_deref(), Some("a\n"));
    assert_eq!(
        fleet
            .remote_git(&["log", "--format=%s", "main~1", "-1"])
            .trim(),
        "second"
    );
}

//! Lander throughput: `baton sweep land` over 200 results already on a bare remote,
//! with a gate check of `sleep 1` on every integrated tree and the default batching
//! (a quarter of the sweep, at most 16 at once). It prints the lander's wall time,
//! results landed per minute, and how many times the gate ran (the cost batching
//! saves: a serial queue would run it once per result).
//!
//! The results are made with git, not with 200 agent runs: one real `baton worker`
//! opens the sweep and pushes task 0's result; its `report.json` is the template of
//! the other 199, each a commit adding one file of its own on the sweep's base, under
//! `refs/baton/results/<sweep>/<task>`, pushed in one push.
//!
//! ```text
//! TMPDIR=/dev/shm cargo bench --bench lander
//! BATON_BENCH_RESULTS=50 BATON_BENCH_BATCH=1 TMPDIR=/dev/shm cargo bench --bench lander
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let results: usize = env_number("BATON_BENCH_RESULTS").unwrap_or(200);
    let batch = env_number("BATON_BENCH_BATCH");
    let tmp = tempfile::Builder::new()
        .prefix("baton-bench-lander-")
        .tempdir()
        .expect("a scratch directory");
    let root = tmp.path().to_path_buf();
    println!(
        "baton sweep land: {results} results on a bare remote, gate `sleep 1`, batch {}; scratch under {}",
        batch.map_or("default".to_string(), |b| b.to_string()),
        root.display()
    );

    // The project and its remote.
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("README.md"), "bench\n").unwrap();
    git(&root, &seed, &["init", "-q", "-b", "main"]);
    git(&root, &seed, &["add", "-A"]);
    git(&root, &seed, &["commit", "-q", "-m", "initial"]);
    git(
        &root,
        &root,
        &["clone", "-q", "--bare", "seed", "remote.git"],
    );
    let url = root.join("remote.git").display().to_string();

    // The task file: one task per result, each writing a file of its own.
    let mut text = String::from("[sweep]\ngate = [\"sleep 1\"]\n");
    if let Some(b) = batch {
        text.push_str(&format!("batch = {b}\n"));
    }
    for i in 0..results {
        text.push_str(&format!(
            "\n[[task]]\nid = \"t{i:04}\"\ntask = \"Write f{i:04}\"\nagent = 'cmd:echo {i} > f{i:04}.txt'\nscope = [\"f{i:04}.txt\"]\n"
        ));
    }
    let tasks = root.join("tasks.toml");
    std::fs::write(&tasks, text).unwrap();

    // Task 0 for real: the sweep opened, its result the template.
    let worker = root.join("worker");
    std::fs::create_dir_all(&worker).unwrap();
    let out = baton(&root, &worker)
        .args(["worker", &tasks.display().to_string(), "--index", "0"])
        .args(["--remote", &url, "--json"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "the first worker ran");
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sweep = first["sweep_id"].as_str().unwrap().to_string();

    // The other results, by git alone, in a scratch clone.
    let maker = root.join("maker");
    git(&root, &root, &["clone", "-q", &url, "maker"]);
    git(
        &root,
        &maker,
        &["fetch", "-q", &url, "+refs/baton/*:refs/baton/*"],
    );
    let zero = format!("refs/baton/results/{sweep}/t0000");
    let template = git(
        &root,
        &maker,
        &["cat-file", "blob", &format!("{zero}:report.json")],
    );
    let report: serde_json::Value = serde_json::from_str(&template).unwrap();
    let base = report["base"].as_str().unwrap().to_string();
    let listing = git(&root, &maker, &["ls-tree", &base]);
    let started = Instant::now();
    let mut updates = vec![];
    for i in 1..results {
        let name = format!("f{i:04}.txt");
        let blob = git_in(
            &root,
            &maker,
            &["hash-object", "-w", "--stdin"],
            &format!("{i}\n"),
        );
        let tree = git_in(
            &root,
            &maker,
            &["mktree"],
            &format!("{listing}\n100644 blob {blob}\t{name}\n"),
        );
        let message = format!("Write f{i:04}\n");
        let candidate = git_in(
            &root,
            &maker,
            &["commit-tree", &tree, "-p", &base],
            &message,
        );
        let json = template
            .replace("f0000.txt", &name)
            .replace("t0000", &format!("t{i:04}"))
            .replace("Write f0000", &format!("Write f{i:04}"))
            .replace(
                report["run_id"].as_str().unwrap(),
                &format!("bench-run-{i:04}"),
            )
            .replace(report["tree"].as_str().unwrap(), &tree);
        let report_blob = git_in(&root, &maker, &["hash-object", "-w", "--stdin"], &json);
        let result_tree = git_in(
            &root,
            &maker,
            &["mktree"],
            &format!("100644 blob {report_blob}\treport.json\n"),
        );
        let result = git_in(
            &root,
            &maker,
            &["commit-tree", &result_tree, "-p", &candidate],
            &format!("baton result of t{i:04}\n"),
        );
        updates.push(format!("{result}:refs/baton/results/{sweep}/t{i:04}"));
    }
    let mut push = vec!["push", "-q", url.as_str()];
    push.extend(updates.iter().map(String::as_str));
    git(&root, &maker, &push);
    println!(
        "  {} synthetic results made and pushed in {:.1}s",
        results - 1,
        started.elapsed().as_secs_f64()
    );

    // The lander, timed.
    let lander = root.join("lander");
    std::fs::create_dir_all(&lander).unwrap();
    let started = Instant::now();
    let out = baton(&root, &lander)
        .args([
            "sweep",
            "land",
            &tasks.display().to_string(),
            "--remote",
            &url,
            "--json",
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the lander printed no report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let landed = report["landed"].as_u64().unwrap_or(0);
    let queue = &report["queue"];
    println!(
        "  lander: {landed}/{results} landed in {wall:.1}s = {:.0} results/min; gate runs {} (tested sets {}, pushes {}, bisections {}); exit {}",
        landed as f64 * 60.0 / wall,
        queue["checks_run"],
        queue["tests"],
        queue["landings"],
        queue["bisections"],
        out.status.code().unwrap_or(-1)
    );
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn hermetic(root: &Path, cmd: &mut Command) {
    cmd.env("HOME", root.join("home"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env("BATON_WORKTREES_DIR", root.join("worktrees"))
        .env("LC_ALL", "C");
}

fn baton(root: &Path, dir: &Path) -> Command {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let mut cmd = Command::new(exe);
    cmd.current_dir(dir);
    hermetic(root, &mut cmd);
    cmd
}

fn git(root: &Path, dir: &Path, args: &[&str]) -> String {
    git_in(root, dir, args, "")
}

fn git_in(root: &Path, dir: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    hermetic(root, &mut cmd);
    let mut child = cmd.spawn().expect("git runs");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

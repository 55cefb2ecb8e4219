//! `baton sweep plan --emit k8s|github`: the manifest that runs one sweep's tasks on
//! many machines, each machine running `baton worker` for one task.
//!
//! - **Kubernetes**: a `ConfigMap` holding the task file and an Indexed `Job` with one
//!   completion per task, in one YAML stream. Each pod runs
//!   `baton worker /tasks/<file> --remote URL --sweep ID` (the worker takes its task
//!   from `JOB_COMPLETION_INDEX`). `baton sweep land` is run afterwards, by hand or by
//!   whatever watches the Job.
//! - **GitHub Actions**: a `workflow_dispatch` workflow whose jobs `tasks-0`, `tasks-1`,
//!   … each hold a matrix of at most [`MATRIX_LIMIT`] task indices, and a last job
//!   `land` that needs them all and runs `baton sweep land`.
//!
//! This module owns the text of those manifests and the checks that what goes into
//! them can be put there (names Kubernetes accepts, strings GitHub will not evaluate,
//! sizes both engines take). It is pure: it reads no file, runs nothing, and knows
//! nothing of how the sweep id is computed or how a worker reports its result (the
//! caller passes the id; `baton worker` and `baton sweep land` own the protocol).
//!
//! The YAML is written by hand instead of through a serializer: every string is a
//! double-quoted scalar whose escapes YAML 1.1 and 1.2 parsers read alike (see
//! [`quoted`]), every number a plain integer, and the task file a literal block when
//! that round-trips exactly (else a quoted string). That is the whole of YAML this
//! needs, and it keeps the manifests readable, with comments that say what to do.

use std::fmt::{self, Write as _};
use std::str::FromStr;

/// The most jobs one GitHub Actions matrix may generate.
pub const MATRIX_LIMIT: usize = 256;

/// The Kubernetes Secret whose keys become the agent CLI's environment
/// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, …), by `envFrom`.
pub const AGENT_SECRET: &str = "baton-agent";

/// The Kubernetes Secret whose keys become the environment git pushes with: usually
/// `BATON_GIT_TOKEN` (and `BATON_GIT_USER` where the host wants another user name than
/// `x-access-token`), which the credential helper set in the manifest hands to git.
pub const GIT_SECRET: &str = "baton-git";

/// The repository secret a GitHub workflow pushes with when it is set; without it the
/// workflow's own `github.token` (enough when the remote is the repository itself).
pub const GITHUB_GIT_SECRET: &str = "BATON_GIT_TOKEN";

/// The secrets a GitHub workflow passes to the worker when the caller names none: the
/// API keys of the agent CLIs baton drives. A secret that is not set arrives empty.
pub const DEFAULT_AGENT_ENV: &[&str] = &["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"];

/// How many times a task's pod is started again after a failure that is not the
/// task's own verdict (a node lost, baton itself failing): one more try. A verdict
/// (checks failed, scope violated, the agent failing on every backend) is not retried:
/// it would fail again, at the price of a whole agent session.
pub const RETRIES_PER_TASK: usize = 1;

/// The most completions an Indexed Job can have with a failure budget per index
/// (`maxFailedIndexes` is capped at 10^5 and we set it to the number of tasks).
pub const K8S_MAX_TASKS: usize = 100_000;

/// The most bytes a ConfigMap holds.
const CONFIGMAP_LIMIT: usize = 1024 * 1024;

/// The largest workflow file GitHub starts runs of.
const WORKFLOW_LIMIT: usize = 500 * 1000;

/// Kubernetes names derived from a sweep id are at most this long: an Indexed Job's pod
/// host name is `<job>-<index>` and must stay within 63 characters.
const K8S_NAME_MAX: usize = 52;

/// The exit statuses of `baton worker` that are the task's verdict, not an accident:
/// the pod is not started again for them.
const VERDICT_EXITS: [i32; 5] = [
    crate::exit::CHECKS_FAILED,
    crate::exit::USAGE,
    crate::exit::SCOPE_VIOLATION,
    crate::exit::AGENT_FAILED,
    crate::exit::CONFLICT,
];

/// Why a manifest could not be written; each names the input and what to give instead.
/// The input is shown escaped (`\n`, `\u{1b}`), so the message stays one line that
/// cannot rewrite the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "`{}` is not an engine baton can plan for; choose one of: k8s (or kubernetes), github",
        given.escape_debug()
    )]
    UnknownEngine { given: String },
    #[error(
        "the task file {} has no tasks; add a task to it before planning a sweep",
        file.escape_debug()
    )]
    NoTasks { file: String },
    #[error("--parallelism 0 would run no task; give at least 1")]
    NoParallelism,
    #[error(
        "--image is required: the machines run every task in that container image, so name one that has git, baton and the agent CLI (e.g. --image ghcr.io/you/baton-worker:1)"
    )]
    NoImage,
    #[error(
        "--image `{}` is not a container image reference: {reason}",
        image.escape_debug()
    )]
    BadImage { image: String, reason: &'static str },
    #[error(
        "--remote `{}` cannot go in a manifest: {reason}; give the URL the machines clone from and push to (e.g. https://github.com/you/repo.git)",
        remote.escape_debug()
    )]
    BadRemote {
        remote: String,
        reason: &'static str,
    },
    #[error(
        "the sweep id `{}` cannot go in a manifest: {reason}",
        id.escape_debug()
    )]
    BadSweepId { id: String, reason: &'static str },
    #[error(
        "the target branch `{}` cannot go in a manifest: {reason}",
        branch.escape_debug()
    )]
    BadTarget {
        branch: String,
        reason: &'static str,
    },
    #[error(
        "the task file path `{}` cannot go in a manifest: {reason}; give it relative to the repository's root, with `/`",
        path.escape_debug()
    )]
    BadTaskFile { path: String, reason: &'static str },
    #[error(
        "`{}` is not a name for a secret: use letters, digits and `_`, not starting with a digit or `GITHUB_` (e.g. OPENAI_API_KEY)",
        name.escape_debug()
    )]
    BadSecretName { name: String },
    #[error(
        "{tasks} tasks is more than one Kubernetes Indexed Job with a failure budget per task holds ({max}); split the task file into several sweeps"
    )]
    TooManyTasks { tasks: usize, max: usize },
    #[error(
        "the task file is {size} bytes, more than a ConfigMap holds ({max}); split it into several sweeps"
    )]
    TaskFileTooLarge { size: usize, max: usize },
    #[error(
        "the workflow for {tasks} tasks would be {size} bytes, more than GitHub runs ({max}); split the task file into several sweeps"
    )]
    WorkflowTooLarge {
        tasks: usize,
        size: usize,
        max: usize,
    },
}

/// The engine a manifest is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An Indexed Job and its ConfigMap (`--emit k8s` or `--emit kubernetes`).
    Kubernetes,
    /// A GitHub Actions workflow (`--emit github`).
    Github,
}

impl FromStr for Engine {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "k8s" | "kubernetes" => Ok(Engine::Kubernetes),
            "github" => Ok(Engine::Github),
            _ => Err(ManifestError::UnknownEngine { given: s.into() }),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Kubernetes => "k8s",
            Engine::Github => "github",
        })
    }
}

/// What a manifest is written from: the sweep, where its machines clone from, and
/// what they run. Everything is borrowed; nothing is read from disk here.
#[derive(Debug, Clone, Copy)]
pub struct PlanSpec<'a> {
    /// The sweep's id, as `baton worker --sweep` and `baton sweep land --sweep` take it.
    pub sweep_id: &'a str,
    /// The repository URL every machine clones from and pushes its result to.
    pub remote: &'a str,
    /// The container image the tasks run in: git, baton and the agent CLI on its PATH.
    /// Required, for both engines (see [`ManifestError::NoImage`] for why there is no
    /// default).
    pub image: &'a str,
    /// How many tasks run at once at most.
    pub parallelism: usize,
    /// The task file's path relative to the repository's root, with `/`. GitHub's
    /// workers read it from their checkout; Kubernetes mounts the text under its base
    /// name at `/tasks/`.
    pub task_file: &'a str,
    /// The task file's text, which goes into the Kubernetes ConfigMap byte for byte.
    pub task_file_text: &'a str,
    /// How many tasks the task file holds (the worker's indices are `0..tasks`).
    pub tasks: usize,
    /// The branch the sweep lands on (for the comments that say how to start it, and
    /// the Job's annotations).
    pub target: &'a str,
    /// The repository secrets a GitHub workflow hands to the worker as environment
    /// variables of the same name (the agent CLI's credentials); usually
    /// [`DEFAULT_AGENT_ENV`]. Kubernetes takes all of [`AGENT_SECRET`]'s keys instead.
    pub agent_env: &'a [&'a str],
}

/// The manifest for `engine`: a multi-document YAML stream for Kubernetes, a workflow
/// file for GitHub Actions. Fails, writing nothing, when an input cannot be put in it.
///
/// ```no_run
/// use baton::workflow::manifest::{self, DEFAULT_AGENT_ENV, Engine, PlanSpec};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let text = std::fs::read_to_string("sweeps/fixes.toml")?;
/// let spec = PlanSpec {
///     sweep_id: "fixes-3f2a",
///     remote: "https://github.com/you/shop.git",
///     image: "ghcr.io/you/baton-worker:1",
///     parallelism: 20,
///     task_file: "sweeps/fixes.toml",
///     task_file_text: &text,
///     tasks: 12,
///     target: "main",
///     agent_env: DEFAULT_AGENT_ENV,
/// };
/// let engine: Engine = "k8s".parse()?;
/// print!("{}", manifest::emit(engine, &spec)?);
/// # Ok(())
/// # }
/// ```
pub fn emit(engine: Engine, spec: &PlanSpec) -> Result<String, ManifestError> {
    check(spec)?;
    match engine {
        Engine::Kubernetes => kubernetes(spec),
        Engine::Github => github(spec),
    }
}

/// The `baton worker` command line, after the program name, with the task file as the
/// machine sees it.
fn worker_args<'a>(spec: &PlanSpec<'a>, tasks: &'a str) -> Vec<&'a str> {
    vec![
        "worker",
        tasks,
        "--remote",
        spec.remote,
        "--sweep",
        spec.sweep_id,
    ]
}

/// The checks every engine shares.
fn check(spec: &PlanSpec) -> Result<(), ManifestError> {
    if spec.tasks == 0 {
        return Err(ManifestError::NoTasks {
            file: spec.task_file.into(),
        });
    }
    if spec.parallelism == 0 {
        return Err(ManifestError::NoParallelism);
    }
    check_image(spec.image)?;
    if let Some(reason) = word_problem(spec.remote) {
        return Err(ManifestError::BadRemote {
            remote: spec.remote.into(),
            reason,
        });
    }
    if let Some(reason) = word_problem(spec.sweep_id) {
        return Err(ManifestError::BadSweepId {
            id: spec.sweep_id.into(),
            reason,
        });
    }
    if let Some(reason) = word_problem(spec.target) {
        return Err(ManifestError::BadTarget {
            branch: spec.target.into(),
            reason,
        });
    }
    // A space is fine in a path: it reaches the worker as one argument either way.
    let task_file_problem = word_problem(&spec.task_file.replace(' ', "_")).or_else(|| {
        if spec.task_file.starts_with('/') {
            Some("it is absolute")
        } else if spec.task_file.split('/').any(|c| c == ".." || c.is_empty()) {
            Some("it has an empty or `..` component")
        } else {
            None
        }
    });
    if let Some(reason) = task_file_problem {
        return Err(ManifestError::BadTaskFile {
            path: spec.task_file.into(),
            reason,
        });
    }
    for name in spec.agent_env {
        if !secret_name(name) {
            return Err(ManifestError::BadSecretName {
                name: (*name).into(),
            });
        }
    }
    Ok(())
}

/// What makes `s` unfit as one argument of a worker's command line (a URL, an id, a
/// branch, a path), if anything. A leading `-` would be read as an option by baton
/// and by git; `${{` would be evaluated by GitHub Actions before anything runs.
fn word_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("it is empty")
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains a space or a control character")
    } else if s.starts_with('-') {
        Some("it starts with `-`, which would be read as an option")
    } else if s.contains("${{") {
        Some("it contains `${{`, which GitHub Actions would evaluate as an expression")
    } else {
        None
    }
}

/// An image reference as container runtimes take it: `[host[:port]/]path[:tag][@digest]`.
/// Only its alphabet and shape are checked; whether the image exists is the cluster's
/// to say.
fn check_image(image: &str) -> Result<(), ManifestError> {
    let bad = |reason| {
        Err(ManifestError::BadImage {
            image: image.into(),
            reason,
        })
    };
    if image.is_empty() {
        return Err(ManifestError::NoImage);
    }
    if !image
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
    {
        return bad("use letters, digits and `._-/:@` only (e.g. ghcr.io/you/baton-worker:1)");
    }
    if !image.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or a digit");
    }
    if image.ends_with([':', '/', '@']) {
        return bad("it ends with an empty tag, path or digest");
    }
    Ok(())
}

/// A name GitHub takes for a secret and a shell takes for a variable.
fn secret_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------
// Kubernetes

fn kubernetes(spec: &PlanSpec) -> Result<String, ManifestError> {
    if spec.tasks > K8S_MAX_TASKS {
        return Err(ManifestError::TooManyTasks {
            tasks: spec.tasks,
            max: K8S_MAX_TASKS,
        });
    }
    let key = configmap_key(spec.task_file);
    let size = key.len() + spec.task_file_text.len();
    // The whole object must fit too; leave room for its metadata.
    if size > CONFIGMAP_LIMIT - 4096 {
        return Err(ManifestError::TaskFileTooLarge {
            size: spec.task_file_text.len(),
            max: CONFIGMAP_LIMIT - 4096,
        });
    }
    let name = k8s_name(spec.sweep_id);
    let config_name = format!("{name}-tasks");
    let mount = format!("/tasks/{key}");
    let labels = format!(
        "    app.kubernetes.io/name: \"baton\"\n    app.kubernetes.io/component: \"sweep\"\n    app.kubernetes.io/instance: {}\n",
        quoted(&name)
    );
    let annotations = format!(
        "    baton-sweep: {}\n    baton-target: {}\n    baton-tasks: {}\n",
        quoted(spec.sweep_id),
        quoted(spec.target),
        quoted(spec.task_file)
    );
    let parallelism = spec.parallelism.min(spec.tasks);
    let mut out = String::new();
    let o = &mut out;
    // Comments hold user strings quoted too: a raw one could end the comment's line.
    line(
        o,
        0,
        "# A baton sweep as a Kubernetes Indexed Job: one pod per task, each running",
    );
    line(
        o,
        0,
        "# `baton worker` for the task of its completion index.",
    );
    line(o, 0, "# Written by `baton sweep plan --emit k8s`.");
    line(o, 0, &format!("#   sweep:  {}", quoted(spec.sweep_id)));
    line(
        o,
        0,
        &format!("#   tasks:  {} from {}", spec.tasks, quoted(spec.task_file)),
    );
    line(o, 0, &format!("#   remote: {}", quoted(spec.remote)));
    line(o, 0, &format!("#   lands on: {}", quoted(spec.target)));
    line(
        o,
        0,
        "# Before applying it, create the two Secrets the pods read their environment from:",
    );
    line(
        o,
        0,
        &format!(
            "#   kubectl create secret generic {AGENT_SECRET} --from-literal=OPENAI_API_KEY=...   # the agent CLI's credentials"
        ),
    );
    line(
        o,
        0,
        &format!(
            "#   kubectl create secret generic {GIT_SECRET} --from-literal=BATON_GIT_TOKEN=...    # push access to the remote"
        ),
    );
    line(
        o,
        0,
        "# Then `kubectl apply -f` this file, and when the Job has finished (complete or",
    );
    line(
        o,
        0,
        "# failed), land the results from a clone of the remote:",
    );
    line(
        o,
        0,
        &format!(
            "#   baton sweep land {} --remote {} --sweep {}",
            quoted(spec.task_file),
            quoted(spec.remote),
            quoted(spec.sweep_id)
        ),
    );
    line(o, 0, "apiVersion: \"v1\"");
    line(o, 0, "kind: \"ConfigMap\"");
    line(o, 0, "metadata:");
    line(o, 1, &format!("name: {}", quoted(&config_name)));
    line(o, 1, "labels:");
    o.push_str(&labels);
    line(o, 1, "annotations:");
    o.push_str(&annotations);
    line(o, 0, "data:");
    o.push_str(&format!(
        "  {}: {}",
        quoted(&key),
        block_or_quoted(spec.task_file_text, 2)
    ));
    line(o, 0, "---");
    line(o, 0, "apiVersion: \"batch/v1\"");
    line(o, 0, "kind: \"Job\"");
    line(o, 0, "metadata:");
    line(o, 1, &format!("name: {}", quoted(&name)));
    line(o, 1, "labels:");
    o.push_str(&labels);
    line(o, 1, "annotations:");
    o.push_str(&annotations);
    line(o, 0, "spec:");
    line(o, 1, "completionMode: \"Indexed\"");
    line(o, 1, &format!("completions: {}", spec.tasks));
    line(o, 1, &format!("parallelism: {parallelism}"));
    line(
        o,
        1,
        "# Retries are counted per task, so one task that keeps failing cannot use up",
    );
    line(
        o,
        1,
        "# the others' budget; and every task may fail without stopping the rest: a",
    );
    line(
        o,
        1,
        "# failed task is reported by `baton sweep land`, it is no reason to stop.",
    );
    line(o, 1, &format!("backoffLimitPerIndex: {RETRIES_PER_TASK}"));
    line(o, 1, &format!("maxFailedIndexes: {}", spec.tasks));
    line(
        o,
        1,
        "# The most pod failures the per-task limits allow, so it never stops the Job first.",
    );
    line(
        o,
        1,
        &format!("backoffLimit: {}", spec.tasks * (RETRIES_PER_TASK + 1)),
    );
    line(o, 1, "podFailurePolicy:");
    line(o, 2, "rules:");
    line(
        o,
        3,
        "# The task's own verdict (checks failed, scope violated, the agent failed on",
    );
    line(
        o,
        3,
        "# every backend, a conflict, bad input): trying again would only repeat it.",
    );
    line(o, 3, "- action: \"FailIndex\"");
    line(o, 4, "onExitCodes:");
    line(o, 5, "containerName: \"worker\"");
    line(o, 5, "operator: \"In\"");
    let codes: Vec<String> = VERDICT_EXITS.iter().map(i32::to_string).collect();
    line(o, 5, &format!("values: [{}]", codes.join(", ")));
    line(
        o,
        3,
        "# A pod evicted or preempted did not fail its task: run it again, uncounted.",
    );
    line(o, 3, "- action: \"Ignore\"");
    line(o, 4, "onPodConditions:");
    line(o, 5, "- type: \"DisruptionTarget\"");
    line(o, 5, "  status: \"True\"");
    line(o, 1, "template:");
    line(o, 2, "metadata:");
    line(o, 3, "labels:");
    for l in labels.lines() {
        line(o, 2, l);
    }
    line(o, 2, "spec:");
    line(o, 3, "restartPolicy: \"Never\"");
    line(o, 3, "containers:");
    line(o, 3, "- name: \"worker\"");
    line(o, 4, &format!("image: {}", quoted(spec.image)));
    line(o, 4, "command:");
    line(o, 5, "- \"baton\"");
    for arg in worker_args(spec, &mount) {
        line(o, 5, &format!("- {}", quoted(&k8s_literal(arg))));
    }
    line(o, 4, "envFrom:");
    line(
        o,
        5,
        &format!("- secretRef: {{name: {}}}", quoted(AGENT_SECRET)),
    );
    line(
        o,
        5,
        &format!("- secretRef: {{name: {}}}", quoted(GIT_SECRET)),
    );
    line(o, 4, "env:");
    for (var, value) in git_env(None) {
        line(o, 5, &format!("- name: {}", quoted(&var)));
        line(o, 5, &format!("  value: {}", quoted(&k8s_literal(&value))));
    }
    line(o, 4, "volumeMounts:");
    line(o, 5, "- name: \"tasks\"");
    line(o, 5, "  mountPath: \"/tasks\"");
    line(o, 5, "  readOnly: true");
    line(o, 3, "volumes:");
    line(o, 3, "- name: \"tasks\"");
    line(
        o,
        4,
        &format!("configMap: {{name: {}}}", quoted(&config_name)),
    );
    Ok(out)
}

/// A Kubernetes name for the sweep: `baton-` and the id, lower-case, with every run of
/// other characters than letters and digits made one `-` (a DNS-1123 label). When
/// that changed the id or had to shorten it, a hash of the whole id keeps two sweeps'
/// names apart.
fn k8s_name(sweep_id: &str) -> String {
    let mut base = String::new();
    for c in sweep_id.chars() {
        if c.is_ascii_alphanumeric() {
            base.push(c.to_ascii_lowercase());
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
    }
    let base = base.trim_end_matches('-');
    let name = format!("baton-{base}");
    if base == sweep_id && name.len() <= K8S_NAME_MAX {
        return name;
    }
    let hash = format!("{:08x}", fnv1a(sweep_id.as_bytes()) as u32);
    let keep = K8S_NAME_MAX - hash.len() - 1;
    let mut short: String = name.chars().take(keep).collect();
    while short.ends_with('-') {
        short.pop();
    }
    format!("{short}-{hash}")
}

/// The 64-bit FNV-1a hash: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The ConfigMap key (and file name under `/tasks/`) for the task file: its base name
/// with any character a key cannot hold made `_`. The extension stays, since it tells
/// the worker how to read the file.
fn configmap_key(task_file: &str) -> String {
    let base = task_file.rsplit('/').next().unwrap_or(task_file);
    let key: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Kubernetes refuses a key that is all dots or starts with `..` (its own names in
    // the mounted directory do).
    if key.chars().all(|c| c == '.') {
        "tasks".into()
    } else if key.starts_with("..") {
        format!("tasks{key}")
    } else {
        key
    }
}

/// `s` as Kubernetes passes it to the container: it expands `$(VAR)` in a command's
/// arguments and in env values, and reads `$$` as one `$`, so every `$` is doubled.
fn k8s_literal(s: &str) -> String {
    s.replace('$', "$$")
}

// ---------------------------------------------------------------------------------
// GitHub Actions

fn github(spec: &PlanSpec) -> Result<String, ManifestError> {
    let chunks: Vec<(usize, usize)> = (0..spec.tasks)
        .step_by(MATRIX_LIMIT)
        .map(|start| (start, (start + MATRIX_LIMIT).min(spec.tasks)))
        .collect();
    let job_ids: Vec<String> = (0..chunks.len()).map(|n| format!("tasks-{n}")).collect();
    let token = format!("${{{{ secrets.{GITHUB_GIT_SECRET} || github.token }}}}");
    let mut out = String::new();
    let o = &mut out;
    line(
        o,
        0,
        "# A baton sweep as a GitHub Actions workflow: one job per task, each running",
    );
    line(
        o,
        0,
        "# `baton worker` for its task, then one job running `baton sweep land`.",
    );
    line(o, 0, "# Written by `baton sweep plan --emit github`.");
    line(o, 0, &format!("#   sweep:  {}", quoted(spec.sweep_id)));
    line(
        o,
        0,
        &format!("#   tasks:  {} from {}", spec.tasks, quoted(spec.task_file)),
    );
    line(o, 0, &format!("#   remote: {}", quoted(spec.remote)));
    line(o, 0, &format!("#   lands on: {}", quoted(spec.target)));
    line(
        o,
        0,
        "# Commit it under .github/workflows/ with the task file, set the agent CLI's",
    );
    line(
        o,
        0,
        &format!(
            "# credentials as repository secrets ({}), and",
            spec.agent_env.join(", ")
        ),
    );
    line(
        o,
        0,
        &format!(
            "# {GITHUB_GIT_SECRET} too when the remote is not this repository; then start it on"
        ),
    );
    line(
        o,
        0,
        &format!(
            "# the branch it lands on: gh workflow run FILE --ref {}",
            quoted(spec.target)
        ),
    );
    line(
        o,
        0,
        &format!(
            "name: {}",
            quoted(&format!("baton sweep {}", spec.sweep_id))
        ),
    );
    // Quoted: YAML 1.1 readers (PyYAML, yamllint) take a bare `on` for `true`.
    line(o, 0, "\"on\":");
    line(o, 1, "workflow_dispatch: {}");
    line(o, 0, "permissions:");
    line(
        o,
        1,
        "# Workers push their results, and the last job the landed branch.",
    );
    line(o, 1, "contents: \"write\"");
    line(
        o,
        0,
        "# One run of a sweep at a time: two would land the same tasks twice.",
    );
    line(o, 0, "concurrency:");
    line(
        o,
        1,
        &format!(
            "group: {}",
            quoted(&format!("baton-sweep-{}", spec.sweep_id))
        ),
    );
    line(o, 1, "cancel-in-progress: false");
    line(o, 0, "env:");
    // User strings reach the shell through the environment, never spliced into a
    // script, so no quoting of theirs can turn into a command.
    line(o, 1, &format!("BATON_TASKS: {}", quoted(spec.task_file)));
    line(o, 1, &format!("BATON_REMOTE: {}", quoted(spec.remote)));
    line(o, 1, &format!("BATON_SWEEP: {}", quoted(spec.sweep_id)));
    for (var, value) in git_env(Some((
        "github-actions[bot]",
        "41898282+github-actions[bot]@users.noreply.github.com",
    ))) {
        line(o, 1, &format!("{var}: {}", quoted(&value)));
    }
    line(o, 0, "jobs:");
    for (n, &(start, end)) in chunks.iter().enumerate() {
        line(o, 1, &format!("{}:", job_ids[n]));
        line(
            o,
            2,
            &format!("name: {}", quoted(&format!("tasks {start}-{}", end - 1))),
        );
        if n > 0 {
            // One chunk after another, so --parallelism bounds the whole sweep, not
            // each chunk; a chunk with failed tasks does not stop the next one, a
            // cancelled run does.
            line(o, 2, &format!("needs: [{}]", quoted(&job_ids[n - 1])));
            line(o, 2, "if: ${{ !cancelled() }}");
        }
        machine(o, spec);
        line(o, 2, "strategy:");
        line(o, 3, "fail-fast: false");
        line(
            o,
            3,
            &format!("max-parallel: {}", spec.parallelism.min(end - start)),
        );
        line(o, 3, "matrix:");
        let indices: Vec<String> = (start..end).map(|i| i.to_string()).collect();
        line(o, 4, &format!("index: [{}]", indices.join(", ")));
        line(o, 2, "steps:");
        checkout(o);
        line(o, 3, "- name: \"Task ${{ matrix.index }}\"");
        let run = "baton worker \"$BATON_TASKS\" --index \"${{ matrix.index }}\" --remote \"$BATON_REMOTE\" --sweep \"$BATON_SWEEP\"";
        line(o, 4, &format!("run: {}", quoted(run)));
        line(o, 4, "env:");
        line(o, 5, &format!("BATON_GIT_TOKEN: {}", quoted(&token)));
        for name in spec.agent_env {
            line(
                o,
                5,
                &format!("{name}: {}", quoted(&format!("${{{{ secrets.{name} }}}}"))),
            );
        }
    }
    line(o, 1, "land:");
    line(o, 2, "name: \"land\"");
    let needs: Vec<String> = job_ids.iter().map(|id| quoted(id)).collect();
    line(o, 2, &format!("needs: [{}]", needs.join(", ")));
    line(
        o,
        2,
        "# Failed tasks are landed around and reported; only a cancelled run stops here.",
    );
    line(o, 2, "if: ${{ !cancelled() }}");
    machine(o, spec);
    line(o, 2, "steps:");
    checkout(o);
    line(o, 3, "- name: \"Land\"");
    let run =
        "baton sweep land \"$BATON_TASKS\" --remote \"$BATON_REMOTE\" --sweep \"$BATON_SWEEP\"";
    line(o, 4, &format!("run: {}", quoted(run)));
    line(o, 4, "env:");
    line(o, 5, &format!("BATON_GIT_TOKEN: {}", quoted(&token)));
    if out.len() > WORKFLOW_LIMIT {
        return Err(ManifestError::WorkflowTooLarge {
            tasks: spec.tasks,
            size: out.len(),
            max: WORKFLOW_LIMIT,
        });
    }
    Ok(out)
}

/// Where a GitHub job runs: in the sweep's image, so every task runs with the same
/// baton and agent CLI as on Kubernetes, and nothing is built on each of hundreds of
/// runners (`cargo install` would compile baton once per task).
fn machine(o: &mut String, spec: &PlanSpec) {
    line(o, 2, "runs-on: \"ubuntu-latest\"");
    line(o, 2, "container:");
    line(o, 3, &format!("image: {}", quoted(spec.image)));
}

/// The checkout of the commit the run was started on, for the task file: every job
/// reads the same one even if the branch moves meanwhile. Its credentials are not
/// kept; git gets them from the helper in the environment. It is the repository the
/// worker and the lander fetch into, so it is a whole clone (`fetch-depth: 0`), not
/// the action's default single commit: the sweep's base may be older than the commit
/// checked out, and the lander reads the branch's history for what already landed.
fn checkout(o: &mut String) {
    line(o, 3, "- uses: \"actions/checkout@v4\"");
    line(o, 4, "with:");
    line(o, 5, "persist-credentials: false");
    line(o, 5, "fetch-depth: 0");
}

/// The git configuration a machine needs, as environment variables (git reads
/// `GIT_CONFIG_COUNT`/`_KEY_n`/`_VALUE_n` like config entries, and baton's git children
/// inherit them): a credential helper answering with `$BATON_GIT_TOKEN` for https
/// remotes, and on GitHub, whose runners have none, an identity to commit with.
fn git_env(identity: Option<(&str, &str)>) -> Vec<(String, String)> {
    let helper = "!f() { test \"$1\" = get && test -n \"$BATON_GIT_TOKEN\" && printf 'username=%s\\npassword=%s\\n' \"${BATON_GIT_USER:-x-access-token}\" \"$BATON_GIT_TOKEN\"; }; f";
    let mut entries = vec![("credential.helper", helper)];
    if let Some((name, email)) = identity {
        entries.push(("user.name", name));
        entries.push(("user.email", email));
    }
    let mut env = vec![("GIT_CONFIG_COUNT".to_string(), entries.len().to_string())];
    for (n, (key, value)) in entries.into_iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{n}"), key.to_string()));
        env.push((format!("GIT_CONFIG_VALUE_{n}"), value.to_string()));
    }
    env
}

// ---------------------------------------------------------------------------------
// YAML

/// One line of YAML at `depth` levels of two spaces.
fn line(o: &mut String, depth: usize, text: &str) {
    for _ in 0..depth {
        o.push_str("  ");
    }
    o.push_str(text);
    o.push('\n');
}

/// `s` as a YAML double-quoted scalar (also a JSON string). Escaped: `"`, `\`, and
/// every character outside YAML's printable set, plus the three that YAML 1.1 reads
/// as line breaks (NEL, LS, PS) and the byte-order mark, which parsers may drop. What
/// is left reads back the same in YAML 1.1 (PyYAML, go-yaml v2) and 1.2.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            // Every character that is not printable is in the BMP.
            c => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// `text` as the value of a mapping key at `key_indent` spaces, with its line end: a
/// literal block (`|`), which keeps the task file readable in the cluster, when the
/// text can be one exactly; else a quoted string.
///
/// A literal block keeps every character of its lines and every line break; the
/// explicit indentation indicator keeps a first line that starts with spaces, and the
/// chomping indicator says how many line ends the text has at its end (none: `-`,
/// one: clip, more: `+`). What it cannot hold is a character that is not printable
/// (or a CR, a break of its own), and a text of nothing but line ends.
fn block_or_quoted(text: &str, key_indent: usize) -> String {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let fits = !body.is_empty() && body.chars().all(|c| c == '\n' || c == '\t' || printable(c));
    if !fits {
        return format!("{}\n", quoted(text));
    }
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let indent = " ".repeat(key_indent + 2);
    let mut out = format!("|2{chomp}\n");
    for l in body.split('\n') {
        if !l.is_empty() {
            out.push_str(&indent);
            out.push_str(l);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_distinct_sweeps_keep_distinct_names() {
        assert_eq!(k8s_name("fix-typos-2"), "baton-fix-typos-2");
        for id in [
            "Fix_Typos",
            "fix.typos",
            "ünïcode",
            "x".repeat(80).as_str(),
            "--",
        ] {
            let name = k8s_name(id);
            assert!(name.len() <= K8S_NAME_MAX, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-') && name.starts_with("baton-"), "{name}");
        }
        assert_ne!(k8s_name("Fix_Typos"), k8s_name("fix.typos"));
        assert_ne!(k8s_name(&"a".repeat(80)), k8s_name(&"a".repeat(81)));
    }

    #[test]
    fn a_task_file_s_base_name_is_a_configmap_key_with_its_extension() {
        assert_eq!(configmap_key("sweeps/fixes.toml"), "fixes.toml");
        assert_eq!(configmap_key("my tasks (2).md"), "my_tasks__2_.md");
        assert_eq!(configmap_key("a/..x.toml"), "tasks..x.toml");
        assert_eq!(configmap_key("a/.."), "tasks");
    }

    #[test]
    fn quoting_escapes_what_yaml_would_not_read_back() {
        assert_eq!(quoted("a \"b\" \\ c"), r#""a \"b\" \\ c""#);
        assert_eq!(
            quoted("x\ny\u{7f}\u{85}\u{2028}\u{feff}é😀"),
            "\"x\\ny\\u007F\\u0085\\u2028\\uFEFFé😀\""
        );
    }

    #[test]
    fn a_literal_block_says_how_many_line_ends_the_text_has() {
        assert_eq!(block_or_quoted("a\n", 2), "|2\n    a\n");
        assert_eq!(block_or_quoted("a", 2), "|2-\n    a\n");
        assert_eq!(
            block_or_quoted("  a\n\nb\n\n\n", 2),
            "|2+\n      a\n\n    b\n\n\n"
        );
        assert_eq!(block_or_quoted("a\r\n", 2), "\"a\\r\\n\"\n");
        assert_eq!(block_or_quoted("\n\n", 2), "\"\\n\\n\"\n");
        assert_eq!(block_or_quoted("", 2), "\"\"\n");
    }

    #[test]
    fn engines_by_name_and_a_wrong_one_lists_the_choices() {
        assert_eq!("k8s".parse::<Engine>().ok(), Some(Engine::Kubernetes));
        assert_eq!(
            "kubernetes".parse::<Engine>().ok(),
            Some(Engine::Kubernetes)
        );
        assert_eq!("github".parse::<Engine>().ok(), Some(Engine::Github));
        let err = "gitlab".parse::<Engine>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "`gitlab` is not an engine baton can plan for; choose one of: k8s (or kubernetes), github"
            )
        );
    }
}

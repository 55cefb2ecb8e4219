//! Reading a remote sweep: its results, the tasks landed on the branch (by their
//! trailers), the report `sweep land` and `sweep status --remote` give.

use super::*;

/// A result on the remote, read.
pub(super) struct Found {
    pub(super) oid: String,
    pub(super) report: RunReport,
    /// The candidate commit (the result's first parent), when the run made a tree.
    pub(super) candidate: Option<String>,
}

/// Fetches every result of the sweep; by task.
pub(super) fn fetch_results(
    repo: &Repo,
    remote: &Remote,
    sweep: &SweepRef,
) -> Result<BTreeMap<String, std::result::Result<Found, String>>> {
    // Into a namespace of their own, pruned: exactly what the remote has, never a
    // result this repository made and could not push (a worker's, under its own name).
    let theirs = format!("{RESULTS_PREFIX}/{}/", sweep.id);
    let mine = format!("{FETCHED_PREFIX}/{}/", sweep.id);
    repo.fetch(&remote.url, &[format!("+{theirs}*:{mine}*")], true)?;
    let mut out = BTreeMap::new();
    for (name, oid) in repo.refs()? {
        let Some(task) = name.strip_prefix(&mine) else {
            continue;
        };
        out.insert(task.to_string(), read_result(repo, &oid));
    }
    Ok(out)
}

pub(super) fn read_result(repo: &Repo, oid: &str) -> std::result::Result<Found, String> {
    let bytes = repo
        .file_at(oid, "report.json")
        .ok_or("its commit has no report.json")?;
    let report: RunReport =
        serde_json::from_slice(&bytes).map_err(|e| format!("its report.json: {e}"))?;
    let info = repo.commit_info(oid).map_err(|e| e.to_string())?;
    let parent = info.parents.first().cloned();
    let candidate = match (&report.tree, parent) {
        (Some(tree), Some(p)) => {
            // The candidate must hold the tree the report judged.
            if repo.tree_of(&p).ok().as_ref() != Some(tree) {
                return Err("its candidate commit's tree is not the one its report judged".into());
            }
            Some(p)
        }
        _ => None,
    };
    Ok(Found {
        oid: oid.to_string(),
        report,
        candidate,
    })
}

/// The tasks of the sweep on the branch: by the trailers of the commits since the
/// base, each task's landed commit.
pub(super) fn landed_on(
    repo: &Repo,
    sweep: &SweepRef,
    tip: &str,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (oid, message) in repo.messages_since(&sweep.base, tip)? {
        if trailer(&message, "Baton-Sweep") != Some(sweep.id.as_str()) {
            continue;
        }
        if let Some(task) = trailer(&message, "Baton-Task") {
            out.entry(task.to_string()).or_insert(oid);
        }
    }
    Ok(out)
}

/// What became of one task of a remote sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteTask {
    pub id: String,
    /// The result's verdict (`passed`, `checks_failed`, …), or `missing`.
    pub result: String,
    pub landed: bool,
    /// Why it did not land (`null` once landed): the result's verdict, `missing`,
    /// `conflict`, `integration_failed`, `queued` (passed, not landed yet), `error`.
    pub reason: Option<String>,
    /// Where the work is: the landed commit, or the result ref.
    #[serde(rename = "where")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A remote sweep's report (`sweep land`, `sweep status --remote`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteReport {
    pub sweep_id: String,
    pub remote: String,
    pub target: String,
    pub base: String,
    /// The branch's tip when the report was made.
    pub tip: String,
    pub landed: usize,
    pub total: usize,
    pub missing: usize,
    /// The sweep's open ref was removed: its task file opens a new sweep next time.
    pub closed: bool,
    pub interrupted: bool,
    pub tasks: Vec<RemoteTask>,
    pub queue: QueueStats,
    pub exit_code: i32,
}

pub(super) fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Each task as the results and the branch say, the queue's decisions over them.
pub(super) fn task_rows(
    file: &TaskFile,
    sweep: &SweepRef,
    results: &BTreeMap<String, std::result::Result<Found, String>>,
    landed: &BTreeMap<String, String>,
    decisions: &HashMap<String, Decision>,
    target: &str,
) -> Vec<RemoteTask> {
    file.tasks
        .iter()
        .map(|t| {
            let name = result_ref(&sweep.id, &t.id);
            let mut row = RemoteTask {
                id: t.id.clone(),
                result: "missing".into(),
                landed: false,
                reason: Some("missing".into()),
                location: None,
                commit: None,
                result_ref: None,
                run_id: None,
                paths: vec![],
                check: None,
                detail: None,
            };
            match results.get(&t.id) {
                None => {
                    row.detail = Some(format!("no worker pushed {name} yet"));
                }
                Some(Err(e)) => {
                    row.result = "damaged".into();
                    row.reason = Some("error".into());
                    row.result_ref = Some(name.clone());
                    row.location = Some(format!("result {name}"));
                    row.detail = Some(format!("{name}: {e}"));
                }
                Some(Ok(r)) => {
                    row.result = verdict_name(r.report.verdict);
                    row.run_id = Some(r.report.run_id.clone());
                    row.result_ref = Some(name.clone());
                    row.location = Some(format!("result {name} ({})", short(&r.oid)));
                    if !r.report.verdict.passed() {
                        row.reason = Some(row.result.clone());
                        row.check = r
                            .report
                            .checks
                            .iter()
                            .find(|c| !c.status.passed())
                            .map(|c| c.command.clone());
                    } else if let Some(e) = &r.report.error {
                        row.reason = Some("error".into());
                        row.detail = Some(e.clone());
                    } else {
                        row.reason = Some("queued".into());
                    }
                }
            }
            if let Some(commit) = landed.get(&t.id) {
                row.landed = true;
                row.reason = None;
                row.location = Some(format!("commit {} on {target}", short(commit)));
                row.commit = Some(commit.clone());
                return row;
            }
            match decisions.get(&t.id) {
                Some(Decision::Conflict { paths, .. }) => {
                    row.reason = Some("conflict".into());
                    row.paths = paths.clone();
                }
                Some(Decision::IntegrationFailed { check, status, .. }) => {
                    row.reason = Some("integration_failed".into());
                    row.check = Some(check.clone());
                    row.detail = Some(format!("`{check}` {status} merged onto {target}"));
                }
                Some(Decision::Landed { commit, .. }) => {
                    row.landed = true;
                    row.reason = None;
                    row.location = Some(format!("commit {} on {target}", short(commit)));
                    row.commit = Some(commit.clone());
                }
                _ => {}
            }
            row
        })
        .collect()
}

pub(super) fn summary(
    sweep: &SweepRef,
    remote: &Remote,
    tip: String,
    tasks: Vec<RemoteTask>,
    queue: QueueStats,
    closed: bool,
    interrupted: bool,
) -> RemoteReport {
    let landed = tasks.iter().filter(|t| t.landed).count();
    let missing = tasks.iter().filter(|t| t.result == "missing").count();
    let total = tasks.len();
    RemoteReport {
        sweep_id: sweep.id.clone(),
        remote: remote.url.clone(),
        target: remote.name().to_string(),
        base: sweep.base.clone(),
        tip,
        landed,
        total,
        missing,
        closed,
        interrupted,
        tasks,
        queue,
        exit_code: exit::for_sweep(landed == total, interrupted),
    }
}

/// What `sweep land` and `sweep status --remote` are asked.
pub struct RemoteOptions {
    pub source: Source,
    pub url: String,
    pub branch: Option<String>,
    pub cwd: PathBuf,
    /// The sweep the task file must be the file of (`--sweep`).
    pub sweep: Option<String>,
    /// Take the lease from a lander that holds it (`--take-over`).
    pub take_over: bool,
    /// Candidates tested together (`--batch`, over the file's `[sweep] batch`).
    pub batch: Option<usize>,
    /// How long the lander waits for results still missing (`--wait`), landing each
    /// as it comes; `None` lands what is there and ends.
    pub wait: Option<std::time::Duration>,
}

/// The remote and branch of a sweep named by `opts`: the branch the record names when
/// the sweep is given by id.
pub(super) fn remote_for(repo: &Repo, opts: &RemoteOptions) -> Result<Remote> {
    let id = match (&opts.source, &opts.sweep) {
        (Source::Id(id), _) | (_, Some(id)) => Some(id),
        _ => None,
    };
    match (id, &opts.branch) {
        (Some(id), None) => {
            // The record says which branch; the remote's HEAD may be another.
            let name = base_ref(id);
            if repo.ls_remote(&opts.url, &[&name])?.is_empty() {
                return Err(RemoteError::NoSuchSweep {
                    sweep: id.clone(),
                    url: opts.url.clone(),
                }
                .into());
            }
            repo.fetch(&opts.url, &[format!("+{name}:{name}")], false)?;
            let record = repo.ref_target(&name).unwrap_or_default();
            let sweep = read_record(repo, &opts.url, &record)?;
            Remote::resolve(repo, &opts.url, Some(&sweep.target))
        }
        (_, b) => Remote::resolve(repo, &opts.url, b.as_deref()),
    }
}

/// `baton sweep status TASKS|SWEEP --remote URL`: which tasks have results, which
/// landed, which are missing. Reads only; opens nothing.
pub fn status(opts: &RemoteOptions) -> Result<RemoteReport> {
    let (repo, _) = workspace(&opts.cwd, &opts.url)?;
    let remote = remote_for(&repo, opts)?;
    let (sweep, bytes) =
        resolve_source(&repo, &remote, &opts.source, opts.sweep.as_deref(), false)?;
    same_branch(&sweep, &remote)?;
    let path = PathBuf::from(&sweep.file_name);
    let file = load(&repo, &opts.cwd, &path, &bytes, &remote.branch)?;
    let tip = remote.fetch_tip(&repo)?;
    let results = fetch_results(&repo, &remote, &sweep)?;
    let landed = landed_on(&repo, &sweep, &tip)?;
    let open = !repo
        .ls_remote(&remote.url, &[&open_ref(&sweep.key)])?
        .is_empty();
    let rows = task_rows(
        &file,
        &sweep,
        &results,
        &landed,
        &HashMap::new(),
        remote.name(),
    );
    let mut report = summary(
        &sweep,
        &remote,
        tip,
        rows,
        QueueStats::default(),
        !open,
        false,
    );
    report.exit_code = exit::OK;
    Ok(report)
}

//! `baton worker`: one task run from the sweep's base, its result pushed, first
//! writer wins.

use super::*;

/// What `baton worker` is asked.
pub struct WorkerOptions {
    pub file: PathBuf,
    /// `None`: `JOB_COMPLETION_INDEX`.
    pub index: Option<usize>,
    pub url: String,
    pub branch: Option<String>,
    pub sweep: Option<String>,
    pub cwd: PathBuf,
}

/// What a worker did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    pub sweep_id: String,
    pub task: String,
    pub index: usize,
    /// `refs/baton/results/<sweep>/<task>`.
    pub result_ref: String,
    /// The result now on the remote (`None` when another worker's is there).
    pub result: Option<String>,
    /// True when the result was already there (this worker ran nothing, or its run
    /// lost the race to another worker's).
    pub already_there: bool,
    /// The run's verdict, when this worker ran it.
    pub verdict: Option<Verdict>,
    pub run_id: Option<String>,
    /// Where the work is in this machine's clone.
    pub clone: PathBuf,
    /// The run's own status, as `baton run` gives it (0 when this worker ran nothing).
    pub exit_code: i32,
}

/// The task index: `--index`, else `JOB_COMPLETION_INDEX`.
pub(super) fn task_index(index: Option<usize>, file: &str, count: usize) -> Result<usize> {
    let last = count.saturating_sub(1);
    let index = match index {
        Some(i) => i,
        None => match std::env::var("JOB_COMPLETION_INDEX") {
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| RemoteError::BadIndexEnv(v.clone()))?,
            Err(_) => {
                return Err(RemoteError::NoIndex {
                    file: file.into(),
                    last,
                }
                .into());
            }
        },
    };
    if index >= count {
        return Err(RemoteError::IndexOutOfRange {
            index,
            file: file.into(),
            count,
            last,
        }
        .into());
    }
    Ok(index)
}

/// `baton worker TASKS --index I --remote URL`: runs task I from the sweep's base, as
/// `baton sweep` runs a task (`--on-pass keep`), and pushes its result, first writer
/// wins. It never touches the target branch.
pub fn worker(opts: &WorkerOptions, observers: Vec<Box<dyn Observer>>) -> Result<WorkerReport> {
    let bytes = read_file(&opts.file)?;
    let (repo, own) = workspace(&opts.cwd, &opts.url)?;
    repo.check_identity()?;
    let remote = Remote::resolve(&repo, &opts.url, opts.branch.as_deref())?;
    // The file is resolved, and the index checked, before anything is pushed.
    let tip = remote.fetch_tip(&repo)?;
    if own {
        repo.checkout_detached(&tip)?;
    }
    let file = load(&repo, &opts.cwd, &opts.file, &bytes, &remote.branch)?;
    let shown = opts.file.display().to_string();
    let index = task_index(opts.index, &shown, file.tasks.len())?;
    let sweep = sweep_of(
        &repo,
        &remote,
        &opts.file,
        &bytes,
        opts.sweep.as_deref(),
        true,
    )?;
    let task = &file.tasks[index];
    let name = result_ref(&sweep.id, &task.id);
    let mut report = WorkerReport {
        sweep_id: sweep.id.clone(),
        task: task.id.clone(),
        index,
        result_ref: name.clone(),
        result: None,
        already_there: false,
        verdict: None,
        run_id: None,
        clone: repo.root.clone(),
        exit_code: exit::OK,
    };
    if let Some(oid) = repo.ls_remote(&remote.url, &[&name])?.get(&name) {
        report.already_there = true;
        report.result = Some(oid.clone());
        return Ok(report);
    }
    // A result made here before that could not be pushed: pushed now, not run again.
    let result = match repo.ref_target(&name) {
        Some(r) => r,
        None => {
            if own {
                repo.checkout_detached(&sweep.base)?;
            }
            let mut plan = task.plan.clone();
            plan.base = Base::Rev(sweep.base.clone());
            plan.sweep = Some(sweep.id.clone());
            let run = match &task.pipeline {
                None => run::run(&repo, &plan, observers, &mut |r| run::default_policy(r))?,
                Some(p) => {
                    let first = std::sync::Mutex::new(Some(observers));
                    let obs = || {
                        first
                            .lock()
                            .ok()
                            .and_then(|mut f| f.take())
                            .unwrap_or_default()
                    };
                    let done = crate::workflow::pipeline::pipeline(&repo, &plan, p, false, &obs)
                        .map_err(Error::from)?;
                    sweep::read_run(&repo.common_dir, &done.run_id).ok_or_else(|| {
                        Error::Usage(format!("run {}: its state cannot be read", done.run_id))
                    })?
                }
            };
            // A run stopped by Ctrl-C is no verdict: pushed, it would stand for the
            // task (first writer wins) and no retry could run it again.
            if run.interrupted {
                return Err(Error::Interrupted);
            }
            report.verdict = Some(run.verdict);
            report.run_id = Some(run.run_id.clone());
            report.exit_code = exit::for_report(&run);
            let result = result_commit(&repo, &sweep, &task.id, &run)?;
            repo.set_ref(&name, &result, "baton worker: result")?;
            result
        }
    };
    process::crash_point("worker.push");
    let pushed = repo.push(
        &remote.url,
        &[RefUpdate {
            src: Some(result.clone()),
            dst: name.clone(),
            expect: Expect::Absent,
        }],
    );
    match pushed {
        Ok(Pushed::Done) => {
            report.result = Some(result);
            Ok(report)
        }
        // First writer wins: another worker's result is the task's.
        Ok(Pushed::Refused(_)) => {
            report.already_there = true;
            report.exit_code = exit::OK;
            report.result = repo.ls_remote(&remote.url, &[&name])?.get(&name).cloned();
            Ok(report)
        }
        Err(e) => Err(RemoteError::PushFailed {
            task: task.id.clone(),
            url: remote.url.clone(),
            reason: match &e {
                crate::git::GitError::Remote { reason, .. } => reason.clone(),
                other => other.to_string(),
            },
            clone: repo.root.display().to_string(),
            run_id: report.run_id.clone().unwrap_or_else(|| "-".into()),
            command: format!(
                "git -C {} push --force-with-lease={name}: {} {name}:{name}",
                shell_word(&repo.root.display().to_string()),
                shell_word(&remote.url)
            ),
        }
        .into()),
    }
}

pub(super) fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The result of `run` as a commit: its tree holds the run's report and events, its
/// first parent is the candidate (the run's tree on the base, with the run's
/// trailers), or the base when the run left no tree.
pub(super) fn result_commit(
    repo: &Repo,
    sweep: &SweepRef,
    task: &str,
    run: &RunReport,
) -> Result<String> {
    let candidate = match &run.tree {
        Some(tree) => repo.commit_tree(tree, &[&run.base], &run::commit_message(run))?,
        None => run.base.clone(),
    };
    let report = serde_json::to_vec_pretty(run).map_err(|e| Error::Usage(e.to_string()))?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![("report.json", report)];
    for name in [journal::EVENTS_FILE, journal::PATCH_FILE] {
        if let Ok(bytes) = std::fs::read(run.journal.join(name)) {
            files.push((name, bytes));
        }
    }
    let contents: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
    let blobs = repo.write_blobs(&contents)?;
    let entries: Vec<(&str, &str)> = files
        .iter()
        .zip(&blobs)
        .map(|((n, _), b)| (*n, b.as_str()))
        .collect();
    let tree = repo.mktree(&entries)?;
    let verdict = serde_json::to_value(run.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let message = format!(
        "baton result of task {task} in sweep {}: {verdict}\n\nBaton-Sweep: {}\nBaton-Task: {task}\nBaton-Run: {}\nBaton-Verdict: {verdict}\n",
        sweep.id, sweep.id, run.run_id
    );
    Ok(repo.commit_tree(&tree, &[&candidate], &message)?)
}

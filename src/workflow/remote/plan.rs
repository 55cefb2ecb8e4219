//! `baton sweep plan`: the task file checked, then the sweep opened, for the manifest.

use super::*;

/// A task file ready to be planned: read, every task resolved, against the remote.
pub struct PlanInput {
    repo: Repo,
    remote: Remote,
    bytes: Vec<u8>,
    /// The task file's text.
    pub text: String,
    /// Its path relative to the repository's root (with `/`), where a machine's
    /// checkout has it; its name when it is not in the repository.
    pub task_file: String,
    pub tasks: usize,
    /// The branch the sweep lands on, by name.
    pub target: String,
}

/// `baton sweep plan`, first half: the task file read and resolved (every task), the
/// remote and its branch checked. Nothing is pushed yet.
pub fn plan_input(cwd: &Path, file: &Path, url: &str, branch: Option<&str>) -> Result<PlanInput> {
    let bytes = read_file(file)?;
    let (repo, own) = workspace(cwd, url)?;
    let remote = Remote::resolve(&repo, url, branch)?;
    let tip = remote.fetch_tip(&repo)?;
    if own {
        repo.checkout_detached(&tip)?;
    }
    let tasks = load(&repo, cwd, file, &bytes, &remote.branch)?.tasks.len();
    let root = repo
        .root
        .canonicalize()
        .unwrap_or_else(|_| repo.root.clone());
    let task_file = file
        .canonicalize()
        .ok()
        .and_then(|f| {
            f.strip_prefix(&root)
                .ok()
                .map(|r| r.to_string_lossy().replace('\\', "/"))
        })
        .filter(|_| !own)
        .unwrap_or_else(|| file_name_of(file));
    Ok(PlanInput {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        target: remote.name().to_string(),
        repo,
        remote,
        bytes,
        task_file,
        tasks,
    })
}

/// `baton sweep plan`, second half: the sweep opened (or the one the file has open),
/// so that the manifest can name it.
pub fn plan_open(input: &PlanInput, file: &Path) -> Result<SweepRef> {
    input.repo.check_identity()?;
    sweep_of(&input.repo, &input.remote, file, &input.bytes, None, true)
}

//! `baton sweep land`: the lander's lease, the queue's publisher for a remote, and
//! the landing itself.

use super::*;

/// The lander's lease on a sweep, as this lander holds it.
pub(super) struct Lease {
    url: String,
    sweep: String,
    holder: Holder,
    /// The lease commit on the remote now.
    current: String,
    beats: u64,
}

impl Lease {
    /// A new commit of the lease (each push of the branch moves it, so a lease that
    /// was taken over fails the push).
    fn beat(&mut self, repo: &Repo) -> Result<String> {
        self.beats += 1;
        let tree = repo.mktree(&[])?;
        let message = format!(
            "baton lander of sweep {}\n\nBaton-Sweep: {}\n{}Baton-Beat: {} {}\n",
            self.sweep,
            self.sweep,
            self.holder.trailers(),
            self.beats,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        Ok(repo.commit_tree(&tree, &[], &message)?)
    }

    /// Takes the lease of `sweep`: a new one if nobody holds it; the one a dead lander
    /// of this repository on this host left; anyone's with `take_over`.
    fn acquire(repo: &Repo, url: &str, sweep: &str, take_over: bool) -> Result<Lease> {
        let name = lease_ref(sweep);
        let mut lease = Lease {
            url: url.to_string(),
            sweep: sweep.to_string(),
            holder: Holder::me(repo),
            current: String::new(),
            beats: 0,
        };
        for _ in 0..5 {
            let held = repo.ls_remote(url, &[&name])?.get(&name).cloned();
            let expect = match held {
                None => Expect::Absent,
                Some(old) => {
                    repo.fetch(url, &[format!("+{name}:{name}")], false)?;
                    let message = repo
                        .commit_info(&old)
                        .map(|i| i.message)
                        .unwrap_or_default();
                    let holder = Holder::parse(&message);
                    let mine = holder.as_ref().is_some_and(|h| {
                        h.host == lease.holder.host
                            && h.repo == lease.holder.repo
                            && !process::running(h.pid, h.pid_start)
                    });
                    if !(mine || take_over) {
                        let (who, since) = match &holder {
                            Some(h) => (
                                h.describe(),
                                format!("{} s ago", journal::now().saturating_sub(h.since)),
                            ),
                            None => ("a lander baton cannot name".into(), "?".into()),
                        };
                        return Err(RemoteError::LeaseHeld {
                            sweep: sweep.to_string(),
                            holder: who,
                            since,
                        }
                        .into());
                    }
                    Expect::At(old)
                }
            };
            let new = lease.beat(repo)?;
            let pushed = repo.push(
                url,
                &[RefUpdate {
                    src: Some(new.clone()),
                    dst: name.clone(),
                    expect,
                }],
            )?;
            if pushed == Pushed::Done {
                lease.current = new;
                return Ok(lease);
            }
        }
        Err(RemoteError::Refused {
            url: url.into(),
            what: name,
            reason: "the lease could not be taken".into(),
        }
        .into())
    }

    /// Gives the lease back (only if it is still this lander's).
    fn release(&self, repo: &Repo) {
        let _ = repo.push(
            &self.url,
            &[RefUpdate {
                src: None,
                dst: lease_ref(&self.sweep),
                expect: Expect::At(self.current.clone()),
            }],
        );
    }

    /// Who holds the lease now, when it is not this lander.
    fn lost(&self, repo: &Repo) -> Option<String> {
        let name = lease_ref(&self.sweep);
        let now = repo
            .ls_remote(&self.url, &[&name])
            .ok()?
            .get(&name)
            .cloned();
        match now {
            Some(oid) if oid == self.current => None,
            Some(oid) => {
                repo.fetch(&self.url, &[format!("+{name}:{name}")], false)
                    .ok()?;
                let message = repo.commit_info(&oid).map(|i| i.message).ok()?;
                Some(
                    Holder::parse(&message)
                        .map(|h| h.describe())
                        .unwrap_or_else(|| short(&oid).to_string()),
                )
            }
            None => Some("nobody (it was removed)".into()),
        }
    }
}

/// The queue's publisher for a remote: the branch pushed with a lease on the tested
/// tip, atomically with a beat of the lander's lease.
pub(super) struct PushBranch<'a> {
    remote: &'a Remote,
    lease: &'a mut Lease,
    /// Each task's candidate commit on the remote (under its result ref).
    verified: HashMap<String, String>,
}

impl Publisher for PushBranch<'_> {
    fn target_name(&self) -> String {
        self.remote.name().to_string()
    }

    fn trailers(&self, task: &str) -> Vec<String> {
        vec![format!("Baton-Task: {task}")]
    }

    fn verified_commit(&self, task: &str) -> Option<String> {
        self.verified.get(task).cloned()
    }

    fn publish(&mut self, repo: &Repo, tip: &str, new: &str) -> Result<bool> {
        let beat = self.lease.beat(repo)?;
        let pushed = repo.push(
            &self.remote.url,
            &[
                RefUpdate {
                    src: Some(new.to_string()),
                    dst: self.remote.branch.clone(),
                    expect: Expect::At(tip.to_string()),
                },
                RefUpdate {
                    src: Some(beat.clone()),
                    dst: lease_ref(&self.lease.sweep),
                    expect: Expect::At(self.lease.current.clone()),
                },
            ],
        )?;
        match pushed {
            Pushed::Done => {
                self.lease.current = beat;
                repo.set_ref(&self.remote.upstream(), new, "baton sweep land: pushed")?;
                Ok(true)
            }
            Pushed::Refused(refused) => {
                if let Some(holder) = self.lease.lost(repo) {
                    return Err(RemoteError::LeaseLost {
                        sweep: self.lease.sweep.clone(),
                        holder,
                    }
                    .into());
                }
                // Someone else pushed the branch: its new tip is tested on next.
                let now = self.remote.fetch_tip(repo)?;
                if now != tip {
                    return Ok(false);
                }
                Err(RemoteError::Refused {
                    url: self.remote.url.clone(),
                    what: self.remote.name().to_string(),
                    reason: refused
                        .iter()
                        .map(|(r, why)| format!("{r} {why}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                }
                .into())
            }
        }
    }
}

/// How often a lander that waits (`--wait`) looks for new results.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// `baton sweep land TASKS|SWEEP --remote URL`: every passing result of the sweep
/// through the merge queue, the branch pushed with a lease; the sweep closed once
/// every task has a result. With `opts.wait`, results still missing are waited for
/// (looked for every [`POLL`], the lease held), each landed as it comes, until none
/// is missing or the wait is over. `observers` gives each round's.
pub fn land(
    opts: &RemoteOptions,
    observers: &dyn Fn() -> Vec<Box<dyn SweepObserver>>,
) -> Result<RemoteReport> {
    let (repo, _) = workspace(&opts.cwd, &opts.url)?;
    repo.check_identity()?;
    let remote = remote_for(&repo, opts)?;
    let (sweep, bytes) = resolve_source(&repo, &remote, &opts.source, opts.sweep.as_deref(), true)?;
    same_branch(&sweep, &remote)?;
    let dir = repo
        .common_dir
        .join("baton")
        .join("landers")
        .join(&sweep.id);
    let journal = Arc::new(SweepJournal::at(dir.clone())?);
    let path = dir.join(&sweep.file_name);
    std::fs::write(&path, &bytes).map_err(|source| Error::Io {
        context: format!("cannot write {}", path.display()),
        source,
    })?;
    let file = load(&repo, &opts.cwd, &path, &bytes, &remote.branch)?;
    let mut lease = Lease::acquire(&repo, &remote.url, &sweep.id, opts.take_over)?;
    // A killed lander's landing worktrees go first.
    crate::workflow::queue::remove_landing_worktrees(&repo, &sweep.id)?;
    let until = opts.wait.map(|w| std::time::Instant::now() + w);
    let result = loop {
        let round = land_with(
            &repo,
            &remote,
            &sweep,
            &file,
            journal.clone(),
            observers(),
            &mut lease,
        );
        let waiting = match &round {
            Ok(r) => r.missing > 0 && !r.interrupted,
            Err(_) => false,
        };
        let left = until.map(|u| u.saturating_duration_since(std::time::Instant::now()));
        match left {
            Some(left) if waiting && !left.is_zero() => {
                // What landed is on the remote; the next round fetches the branch and
                // the results again and lands only what is new.
                let nap = std::time::Instant::now() + left.min(POLL);
                while std::time::Instant::now() < nap && !crate::process::interrupted() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                if crate::process::interrupted() {
                    break round;
                }
            }
            _ => break round,
        }
    };
    lease.release(&repo);
    let report = result?;
    let _ = journal.write("report.json", &report);
    Ok(report)
}

pub(super) fn land_with(
    repo: &Repo,
    remote: &Remote,
    sweep: &SweepRef,
    file: &TaskFile,
    journal: Arc<SweepJournal>,
    observers: Vec<Box<dyn SweepObserver>>,
    lease: &mut Lease,
) -> Result<RemoteReport> {
    let tip = remote.fetch_tip(repo)?;
    let results = fetch_results(repo, remote, sweep)?;
    let landed = landed_on(repo, sweep, &tip)?;
    let events = SweepEvents::new(&sweep.id, journal.clone(), observers);
    let first = file.tasks.first().map(|t| &t.plan);
    let cfg = QueueConfig {
        sweep_id: sweep.id.clone(),
        target: remote.upstream(),
        gate: file.queue.gate.clone(),
        flaky_retries: file.queue.flaky_retries.unwrap_or(1),
        batch: file
            .queue
            .batch
            .unwrap_or_else(|| queue::default_batch(file.tasks.len())),
        on_fail: crate::report::Policy::Keep,
        worktrees_dir: first
            .map(|p| p.worktrees_dir.clone())
            .unwrap_or_else(std::env::temp_dir),
        logs: journal.dir.join("checks"),
        check_timeout: file
            .tasks
            .iter()
            .map(|t| t.plan.check_timeout)
            .max()
            .unwrap_or(crate::config::DEFAULT_CHECK_TIMEOUT),
        kill_grace: first
            .map(|p| p.kill_grace)
            .unwrap_or(crate::config::DEFAULT_KILL_GRACE),
    };
    events.emit(sweep::SweepEvent::Started {
        tasks: file.tasks.len(),
        jobs: 0,
        batch: cfg.batch,
        target: remote.name().to_string(),
        format_version: sweep::FORMAT_VERSION,
    })?;
    let mut verified = HashMap::new();
    let mut candidates = vec![];
    for t in &file.tasks {
        if landed.contains_key(&t.id) {
            continue;
        }
        if let Some(Ok(r)) = results.get(&t.id) {
            if r.report.verdict.passed() && r.report.error.is_none() && r.report.tree.is_some() {
                if let Some(c) = &r.candidate {
                    verified.insert(t.id.clone(), c.clone());
                }
                candidates.push(Candidate {
                    task: t.id.clone(),
                    report: r.report.clone(),
                });
            }
        }
    }
    let no_runs = |_: &str| -> Vec<Box<dyn Observer>> { vec![] };
    let mut decisions: HashMap<String, Decision> = HashMap::new();
    let stats = {
        let publisher = PushBranch {
            remote,
            lease,
            verified,
        };
        let mut queue = Queue::new(repo, cfg, &events, &no_runs).publish_with(Box::new(publisher));
        for c in candidates {
            queue.push(c)?;
        }
        while queue.waiting() > 0 && !process::interrupted() {
            for d in queue.round()? {
                decisions.insert(d.task, d.decision);
            }
        }
        queue.stats().clone()
    };
    let interrupted = process::interrupted();
    let tip = remote.fetch_tip(repo)?;
    let landed = landed_on(repo, sweep, &tip)?;
    let rows = task_rows(file, sweep, &results, &landed, &decisions, remote.name());
    let missing = rows.iter().any(|r| r.result == "missing");
    // Every task decided: the file's next run is a new sweep from the branch then.
    // (What landed is landed: a remote gone by now leaves the sweep open, no more.)
    let closed = !missing && !interrupted && close(repo, remote, sweep).unwrap_or(false);
    let report = summary(sweep, remote, tip, rows, stats, closed, interrupted);
    events.emit(sweep::SweepEvent::Finished {
        exit_code: report.exit_code,
        landed: report.landed,
        total: report.total,
    })?;
    Ok(report)
}

//! `baton status` and `baton show`

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::journal::{self, Journal};
use crate::report::{RunReport, Stage};
use crate::{exit, process};

/// List the runs of this repository, newest first: id, task, agent, state, checks,
/// scope, outcome, age.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the runs as a JSON array (oldest first, as created), each with its
    /// `state` (`running (agent)` for a live run, `interrupted (agent)` for one whose
    /// baton is gone).
    #[arg(long)]
    json: bool,
    /// Show at most N runs (the newest).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Only runs in this state: running, interrupted, failed, kept, merged, applied,
    /// stashed, reverted, discarded, conflict, passed, or a verdict such as
    /// "checks failed" (matched against the STATE and OUTCOME columns).
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
}

/// Show one run: what it did, what was judged, what became of it.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (a unique prefix is enough, or `last`).
    run: String,
    /// Print the run's report as JSON.
    #[arg(long)]
    json: bool,
    /// Print the change as a patch.
    #[arg(long)]
    diff: bool,
}

/// A person's word for where a run is: its verdict once judged, else its stage.
pub fn state_of(r: &RunReport) -> String {
    if r.stage == Stage::Finished {
        if r.verdict == crate::report::Verdict::Pending {
            return "interrupted".into();
        }
        return r.verdict.describe().to_string();
    }
    if r.error.is_some() {
        return format!("failed ({:?})", r.stage).to_lowercase();
    }
    if process::running(r.pid, r.pid_start) {
        format!("running ({:?})", r.stage).to_lowercase()
    } else {
        format!("interrupted ({:?})", r.stage).to_lowercase()
    }
}

/// Stopped halfway by something baton could not catch: its process is gone.
pub fn stopped_halfway(r: &RunReport) -> bool {
    r.stage != Stage::Finished && !process::running(r.pid, r.pid_start)
}

/// What became of a run, or `-` while it has no outcome.
pub fn outcome_of(r: &RunReport) -> String {
    r.outcome
        .as_ref()
        .map(|o| format!("{:?}", o.action).to_lowercase())
        .unwrap_or_else(|| "-".into())
}

fn age(since: u64) -> String {
    let secs = journal::now().saturating_sub(since);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn first_line(s: &str) -> String {
    crate::ui::printable(s.lines().next().unwrap_or("")).into_owned()
}

/// Columns a text takes on a terminal (wide characters take two).
fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` cut to `width` columns, with `…` where it was cut.
fn cut(s: &str, width: usize) -> String {
    if display_width(s) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out + "…"
}

pub fn cmd_status(dir: &Path, args: StatusArgs) -> Result<i32> {
    let repo = super::open_repo_to_read(dir)?;
    let listed = journal::list_runs(&repo.common_dir)?;
    let mut runs = vec![];
    let mut damaged = vec![];
    for (journal, state) in listed {
        match state {
            Ok(r) => runs.push(r),
            Err(e) => damaged.push((journal, e)),
        }
    }
    if let Some(wanted) = &args.state {
        let wanted = wanted.to_lowercase();
        runs.retain(|r| state_of(r).starts_with(&wanted) || outcome_of(r) == wanted);
        damaged.retain(|_| wanted == "damaged");
    }
    if let Some(limit) = args.limit {
        let skip = runs.len().saturating_sub(limit);
        runs.drain(..skip);
    }
    if args.json {
        let mut entries: Vec<serde_json::Value> = runs
            .iter()
            .filter_map(|r| {
                let mut v = serde_json::to_value(r).ok()?;
                if let Some(map) = v.as_object_mut() {
                    map.insert("state".into(), state_of(r).into());
                }
                Some(v)
            })
            .collect();
        entries.extend(damaged.iter().map(|(j, e)| {
            serde_json::json!({
                "run_id": j.id(),
                "journal": j.dir,
                "damaged": e.to_string(),
            })
        }));
        super::print_json(&entries);
        return Ok(exit::OK);
    }
    if runs.is_empty() && damaged.is_empty() {
        crate::out!("no runs yet; start one with `baton run --task \"...\" --agent cmd:...`");
        print_disk(&repo, &[]);
        return Ok(exit::OK);
    }
    runs.reverse();
    print_table(&runs);
    for (j, e) in &damaged {
        crate::out!("{:<20}  damaged: {}", j.id(), j.damage_hint(e));
    }
    // The disk summary is the repository's, not the listed runs': only in the full
    // listing.
    if args.state.is_none() && args.limit.is_none() {
        print_disk(&repo, &runs);
    }
    Ok(exit::OK)
}

/// The disk the runs' own worktrees and the worktree pool take.
fn print_disk(repo: &crate::git::Repo, runs: &[RunReport]) {
    let owned: Vec<&RunReport> = runs
        .iter()
        .filter(|r| crate::worktree::holds_run(&r.worktree, &r.branch))
        .collect();
    if !owned.is_empty() {
        let bytes: u64 = owned
            .iter()
            .map(|r| crate::worktree::pool::disk_use_of(&r.worktree))
            .sum();
        crate::out!(
            "worktrees: {} of runs ({})",
            owned.len(),
            crate::scope::human_size(bytes)
        );
    }
    let entries = crate::worktree::pool::entries(repo);
    if entries.is_empty() {
        return;
    }
    let free: Vec<_> = entries
        .iter()
        .filter(|e| e.lease.is_none() && e.untrusted.is_none())
        .collect();
    let bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let leased = entries.iter().filter(|e| e.lease.is_some()).count();
    let mut line = format!(
        "pool: {} free worktree(s), {} on disk",
        free.len(),
        crate::scope::human_size(bytes)
    );
    if leased > 0 {
        line.push_str(&format!(", {leased} being leased"));
    }
    line.push_str("; `baton clean --pool` empties it");
    crate::out!("{line}");
    for e in entries.iter().filter(|e| e.untrusted.is_some()) {
        crate::out!(
            "pool: {} is not reused: {}",
            crate::ui::quote_path(&e.path.to_string_lossy()),
            e.untrusted.as_deref().unwrap_or_default()
        );
    }
}

fn print_table(runs: &[RunReport]) {
    if runs.is_empty() {
        return;
    }
    let rows: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                first_line(&r.task),
                first_line(&r.agent),
                state_of(r),
                r.checks_summary(),
                r.scope_summary(),
                outcome_of(r),
                age(r.started_at),
            ]
        })
        .collect();
    let header = [
        "RUN", "TASK", "AGENT", "STATE", "CHECKS", "SCOPE", "OUTCOME", "AGE",
    ];
    // Every column as wide as its widest cell; the task and the agent give way (cut
    // with `…`) so that a row fits the terminal.
    let mut widths: Vec<usize> = (0..8)
        .map(|i| {
            rows.iter()
                .map(|row| display_width(&row[i]))
                .chain(std::iter::once(header[i].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * (w.len() - 1);
    // A pipe gets whole cells.
    let room = crate::ui::columns(libc::STDOUT_FILENO).unwrap_or(usize::MAX / 4);
    while total(&widths) > room {
        // Cut the wider of task and agent by one, down to a floor that stays legible.
        let floor = |i: usize| if i == 1 { 6 } else { 5 };
        let i = if widths[1] >= widths[2] { 1 } else { 2 };
        let i = if widths[i] > floor(i) { i } else { 3 - i };
        if widths[i] <= floor(i) {
            break;
        }
        widths[i] -= 1;
    }
    let print_row = |cells: &[String]| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                let cell = cut(cell, w);
                let pad = " ".repeat(w.saturating_sub(display_width(&cell)));
                if i == 7 {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        crate::out!("{}", line.join("  ").trim_end());
    };
    print_row(&header.map(String::from));
    for row in &rows {
        print_row(row);
    }
    let stopped = runs.iter().filter(|r| stopped_halfway(r)).count();
    if stopped > 0 {
        crate::out!(
            "\n{stopped} run(s) stopped halfway (their process is gone; their worktree locks are stale): `baton recover` finishes or rolls them back"
        );
    }
}

pub fn cmd_show(dir: &Path, args: ShowArgs) -> Result<i32> {
    let repo = super::open_repo_to_read(dir)?;
    let journal = Journal::open(&repo.common_dir, &args.run)?;
    let r = match journal.read_state() {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                super::print_json(&serde_json::json!({
                    "run_id": journal.id(),
                    "journal": journal.dir,
                    "damaged": e.to_string(),
                }));
            } else {
                crate::out!("run       {}", journal.id());
                crate::out!("state     damaged");
                crate::out!("          {}", journal.damage_hint(&e));
                crate::out!("journal   {}", journal.dir.display());
            }
            return Ok(exit::OK);
        }
    };
    if args.json {
        super::print_json(&r);
        return Ok(exit::OK);
    }
    if args.diff {
        let path: PathBuf = journal.path(journal::PATCH_FILE);
        let patch = std::fs::read(&path).map_err(|source| Error::Io {
            context: format!("no patch recorded at {}", path.display()),
            source,
        })?;
        crate::ui::out_raw(&crate::ui::color_patch(
            crate::ui::colored(true),
            &String::from_utf8_lossy(&patch),
        ));
        return Ok(exit::OK);
    }
    crate::out!("run       {}", r.run_id);
    crate::out!("task      {}", r.task.trim());
    crate::out!("agent     {}", r.agent);
    crate::out!("state     {}", state_of(&r));
    crate::out!("outcome   {}", outcome_of(&r));
    crate::out!(
        "base      {}{}",
        r.base,
        if r.include_dirty {
            " (with your uncommitted changes)"
        } else {
            ""
        }
    );
    crate::out!("branch    {}", r.branch);
    crate::out!("worktree  {}", r.worktree.display());
    if let Some(a) = &r.agent_result {
        crate::out!("agent run {} [{}]", a.describe(), a.class.name());
    }
    if r.attempts.len() > 1 {
        for a in &r.attempts {
            let round = if a.round > 0 {
                format!(" repair {}", a.round)
            } else {
                String::new()
            };
            let kept = a
                .kept
                .as_ref()
                .map(|k| format!(", set aside as stash {}", &k[..k.len().min(10)]))
                .unwrap_or_default();
            crate::out!(
                "attempt   {}{round}: {} — {}, {} in {:.1}s{kept}",
                a.number,
                a.agent,
                a.class.name(),
                a.verdict.describe(),
                a.duration_ms as f64 / 1000.0
            );
        }
    }
    if r.checks.is_empty() {
        crate::out!("checks    none");
    }
    for c in &r.checks {
        crate::out!(
            "check     {} — {:?} in {:.1}s{}",
            c.command,
            c.status,
            c.duration_ms as f64 / 1000.0,
            c.log
                .as_ref()
                .map(|l| format!(" (log {})", l.display()))
                .unwrap_or_default()
        );
        if !c.status.passed() {
            for line in &c.tail {
                crate::out!("          | {line}");
            }
        }
    }
    if let Some(s) = &r.scope {
        crate::out!(
            "scope     {} (allowed: {}; denied: {})",
            s.summary(),
            s.allowed.join(", "),
            if s.denied.is_empty() {
                "-".into()
            } else {
                s.denied.join(", ")
            }
        );
        for p in &s.paths {
            let from = p
                .old_path
                .as_ref()
                .map(|o| format!("{} -> ", crate::ui::quote_path(o)))
                .unwrap_or_default();
            let size = match (p.binary, p.size) {
                (true, Some(n)) => format!(" (binary, {})", crate::scope::human_size(n)),
                (false, Some(n)) if n >= 1024 * 1024 => {
                    format!(" ({})", crate::scope::human_size(n))
                }
                _ => String::new(),
            };
            crate::out!(
                "          {:?} {from}{}{size}: {}",
                p.change,
                crate::ui::quote_path(&p.path),
                p.verdict.describe()
            );
        }
        for limit in &s.over_limits {
            crate::out!("          over a limit: {limit}");
        }
    }
    if let Some(e) = &r.error {
        crate::out!("error     {e}");
    }
    for w in &r.warnings {
        crate::out!("warning   {w}");
    }
    if let Some(o) = &r.outcome {
        crate::out!("          {}", o.message);
    }
    crate::out!("journal   {}", r.journal.display());
    Ok(exit::OK)
}

//! `baton replay`

use std::path::Path;

use clap::Args;

use crate::error::Result;
use crate::events::{self, Events, JsonLines, Observer, Terminal};
use crate::journal::Journal;
use crate::{exit, ui};

/// Show a run again from its journal, the way it was shown while it ran: its progress
/// lines (from events.jsonl) and its summary. A run still going is shown up to now.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run id (a unique prefix is enough, or `last`).
    run: String,
    /// Print the events as JSON lines on stdout instead (the `--json --stream` format).
    #[arg(long)]
    json: bool,
}

pub fn cmd_replay(dir: &Path, args: ReplayArgs) -> Result<i32> {
    let repo = super::open_repo_to_read(dir)?;
    let journal = Journal::open(&repo.common_dir, &args.run)?;
    let recorded = events::read_journal(&journal)?;
    let observer: Box<dyn Observer> = if args.json {
        Box::new(JsonLines)
    } else {
        Box::new(Terminal::new(super::verbosity()))
    };
    let stream = Events::unrecorded(&journal.id(), vec![observer]);
    for (ts_ms, event) in recorded {
        stream.emit_at(ts_ms, event)?;
    }
    match journal.read_state() {
        Ok(report) => {
            if args.json {
                stream.report(&report);
            } else {
                ui::summary(&report);
            }
        }
        Err(e) => ui::warn(journal.damage_hint(&e)),
    }
    Ok(exit::OK)
}

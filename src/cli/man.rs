//! `baton man`

use clap::Args;
use clap_mangen::roff::{Roff, bold, roman};

use super::help;
use crate::error::{Error, Result};
use crate::{exit, ui};

/// Print baton's man page (roff) on stdout.
///
/// Read it with `baton man | man -l -`, or install it: `baton man >
/// ~/.local/share/man/man1/baton.1`. `baton man run` prints the page of `baton run`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command, for its own page.
    command: Option<String>,
}

pub fn cmd_man(args: ManArgs) -> Result<i32> {
    let mut top = help::command();
    // Building gives each command its display name, `baton-run`, for its own page.
    top.build();
    let mut page = Vec::new();
    let rendered = match &args.command {
        None => render(&top, &mut page, true),
        Some(name) => {
            let sub = top
                .find_subcommand(name)
                .ok_or_else(|| {
                    let names: Vec<&str> = top
                        .get_subcommands()
                        .map(|c| c.get_name())
                        .filter(|n| *n != "help")
                        .collect();
                    Error::Usage(format!(
                        "no command `{name}`; the commands are: {}",
                        names.join(", ")
                    ))
                })?
                .clone()
                .version(help::VERSION);
            render(&sub, &mut page, false)
        }
    };
    rendered.map_err(|source| Error::Io {
        context: "could not render the man page".into(),
        source,
    })?;
    ui::out_raw(&title_first(&String::from_utf8_lossy(&page)));
    Ok(exit::OK)
}

/// The lines roff writes before each rendered part, defining the `Aq` string that
/// its apostrophes use.
const APOSTROPHES: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];

/// The page with `.TH` as its first line, as man(7) has it, and the apostrophe
/// definition once, right after (before any use), instead of before every part.
fn title_first(page: &str) -> String {
    let mut lines = page.lines().filter(|l| !APOSTROPHES.contains(l));
    let mut out = String::new();
    for line in lines.next().into_iter().chain(APOSTROPHES).chain(lines) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The page of `cmd`: clap_mangen's sections, then, for the top page, the
/// environment and files of `--help` as sections of their own (and a command's
/// examples as EXAMPLES rather than clap_mangen's "EXTRA").
fn render(cmd: &clap::Command, w: &mut Vec<u8>, top: bool) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    let mut roff = Roff::new();
    if top {
        for (heading, rows) in [("ENVIRONMENT", help::ENVIRONMENT), ("FILES", help::FILES)] {
            roff.control("SH", [heading]);
            for (name, what) in rows {
                roff.control("TP", []);
                roff.text([bold(*name)]);
                roff.text([roman(*what)]);
            }
        }
    } else if let Some(extra) = cmd.get_after_help() {
        roff.control("SH", ["EXAMPLES"]);
        for line in extra.to_string().lines().skip(1) {
            roff.text([roman(line.trim())]);
            roff.control("br", []);
        }
    }
    roff.to_writer(w)?;
    man.render_version_section(w)
}

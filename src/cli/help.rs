//! What `--help` and the man page say beyond the flags: examples, the environment
//! variables baton reads, and where its configuration lives. Written once here, as
//! data, for both.

use clap::CommandFactory as _;

/// `baton --version`: the package's version and the commit it was built from
/// (`unknown` when built from a source without its git history).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BATON_COMMIT"), ")");

/// Real invocations of `baton run`, each with what it does.
pub const RUN_EXAMPLES: &[(&str, &str)] = &[
    (
        "Hand a fix to codex; only calc.py may change; merged if the tests pass",
        "baton run --task \"Fix add() so it adds\" --agent codex --scope calc.py --check 'python3 -m pytest -q'",
    ),
    (
        "Run a handoff written by `baton handoff new`",
        "baton run task.md",
    ),
    (
        "Let the task's words pick the agent, with gemini to fall back on",
        "baton run --task \"Update the README\" --agent auto --fallback gemini",
    ),
    (
        "A scripted change, kept for a look instead of merged",
        "baton run --task \"Format the code\" --agent 'cmd:cargo fmt' --on-pass keep",
    ),
    (
        "Start from your uncommitted work; print the report as JSON",
        "baton run --task \"Finish the parser\" --agent claude --include-dirty --json",
    ),
    (
        "Two repair rounds when the checks fail, two retries on a rate limit",
        "baton run task.md --repair 2 --retries 2",
    ),
];

/// The environment variables baton reads, and what each does.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "BATON_WORKTREES_DIR",
        "where run worktrees go (over `[worktree] dir`; default $XDG_DATA_HOME/baton/worktrees)",
    ),
    (
        "BATON_PAGER",
        "the pager for `baton show --diff` at a terminal; empty or `cat`: none",
    ),
    (
        "PAGER",
        "the pager when BATON_PAGER is not set (default `less -FRX`)",
    ),
    ("NO_COLOR", "set to anything: no colour"),
    (
        "XDG_CONFIG_HOME",
        "the user-level config is $XDG_CONFIG_HOME/baton/config.toml (default ~/.config)",
    ),
    (
        "XDG_DATA_HOME",
        "run worktrees go under $XDG_DATA_HOME/baton/worktrees (default ~/.local/share)",
    ),
    (
        "XDG_CACHE_HOME",
        "`baton demo` installs codex under $XDG_CACHE_HOME/baton/agents (default ~/.cache)",
    ),
    (
        "CODEX_HOME, HOME",
        "the agent CLIs' own configuration, honoured unless `[agents.NAME] isolate = true`",
    ),
];

/// Where baton's configuration lives, upper layer first.
pub const FILES: &[(&str, &str)] = &[
    (
        ".baton/config.toml",
        "the repository's config, shared with everyone who clones it: commit it",
    ),
    (
        ".baton/templates/",
        "the repository's own handoff templates (NAME.md.hbs, layout.md.hbs)",
    ),
    (
        "~/.config/baton/config.toml",
        "yours, under every repository's ($XDG_CONFIG_HOME/baton/config.toml)",
    ),
];

/// Rows as an aligned, indented block of text.
fn table(rows: &[(&str, &str)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("  {k:<width$}  {v}\n"))
        .collect()
}

fn top_after_help() -> String {
    format!(
        "Configuration (flags over a handoff over these):\n{}\nEnvironment:\n{}\nMore: `baton COMMAND --help`, `baton man`, README.md.",
        table(FILES),
        table(ENVIRONMENT)
    )
}

fn run_after_help() -> String {
    let mut text = String::from("Examples:\n");
    for (what, command) in RUN_EXAMPLES {
        text.push_str(&format!("  # {what}\n  {command}\n"));
    }
    text
}

/// baton's whole command line, with the text above attached where it belongs.
pub fn command() -> clap::Command {
    super::Cli::command()
        .after_help(top_after_help())
        .mut_subcommand("run", |run| run.after_help(run_after_help()))
}

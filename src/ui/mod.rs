//! The only place that prints for people: progress while a run is live, and the
//! final summary. Everything goes to stderr, so that `--json` output on stdout stays
//! machine-readable.

pub mod terminal;

use std::io::{IsTerminal, Write};

/// When to colour what baton prints: `--color=auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (or `TERM=dumb`).
    #[default]
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Sets the colour choice for the process (once, from the command line).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// Whether output to stderr (`stdout == false`) or stdout is coloured.
pub fn colored(stdout: bool) -> bool {
    match COLOR.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            let tty = if stdout {
                std::io::stdout().is_terminal()
            } else {
                std::io::stderr().is_terminal()
            };
            tty && !no_color && !dumb
        }
    }
}

/// What a piece of text is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    Stage,
    Good,
    Bad,
    Warn,
    Added,
    Removed,
    Hunk,
    Header,
}

/// `text` in the colour of `what`, when `on`.
pub fn paint(on: bool, what: Paint, text: &str) -> String {
    use anstyle::{AnsiColor, Style};
    if !on {
        return text.to_string();
    }
    let style = match what {
        Paint::Stage => Style::new().bold().fg_color(Some(AnsiColor::Cyan.into())),
        Paint::Good | Paint::Added => Style::new().fg_color(Some(AnsiColor::Green.into())),
        Paint::Bad | Paint::Removed => Style::new().fg_color(Some(AnsiColor::Red.into())),
        Paint::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Paint::Hunk => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        Paint::Header => Style::new().bold(),
    };
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// A verdict's words in its colour.
pub fn verdict(on: bool, verdict: crate::report::Verdict) -> String {
    use crate::report::Verdict;
    let what = match verdict {
        Verdict::Passed => Paint::Good,
        Verdict::Pending | Verdict::NoChange => Paint::Warn,
        _ => Paint::Bad,
    };
    paint(on, what, verdict.describe())
}

/// A patch coloured as `git diff` colours it.
pub fn color_patch(on: bool, patch: &str) -> String {
    if !on {
        return patch.to_string();
    }
    patch
        .split_inclusive('\n')
        .map(|line| {
            let (body, end) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            let what = if body.starts_with("+++")
                || body.starts_with("---")
                || body.starts_with("diff ")
            {
                Some(Paint::Header)
            } else if body.starts_with('+') {
                Some(Paint::Added)
            } else if body.starts_with('-') {
                Some(Paint::Removed)
            } else if body.starts_with("@@") {
                Some(Paint::Hunk)
            } else {
                None
            };
            match what {
                Some(w) => format!("{}{end}", paint(true, w, body)),
                None => line.to_string(),
            }
        })
        .collect()
}

/// How much a run shows while it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Only the result (`-q`).
    Quiet,
    /// A line per stage, and a live status line on a terminal.
    #[default]
    Normal,
    /// Also the agent's and the checks' output lines (`-v`).
    Verbose,
}

/// `println!` that does not panic when stdout is closed (`baton status | head`).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that does not panic when stderr is closed.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes `text` to stdout as is, ignoring a closed pipe.
pub fn out_raw(text: &str) {
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

use crate::report::RunReport;

/// A path as git prints it with `core.quotePath` on: as is when it is plain printable
/// ASCII, else in double quotes with C escapes (`\t`, `\"`, `\033`, octal bytes for
/// anything else). Paths come from the agent's work, so a name holding terminal escape
/// codes must never reach the terminal raw; JSON output keeps the exact bytes.
pub fn quote_path(path: &str) -> std::borrow::Cow<'_, str> {
    let needs = |b: u8| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\';
    if !path.bytes().any(needs) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    out.push('"');
    for b in path.bytes() {
        match b {
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b if needs(b) => out.push_str(&format!("\\{b:03o}")),
            b => out.push(char::from(b)),
        }
    }
    out.push('"');
    std::borrow::Cow::Owned(out)
}

/// Text an agent wrote (a message, an error), made safe for a terminal: control
/// characters other than tabs and newlines are shown as escapes instead of acting on
/// the screen.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\t' && c != '\n';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// One progress line: the stage name, then what happened.
pub fn progress(stage: &str, message: impl std::fmt::Display) {
    crate::say!("{}", progress_line(stage, &message.to_string()));
}

/// A progress line as [`progress`] prints it, for printing elsewhere (above a live
/// status line).
/// How many columns the terminal has: `COLUMNS`, else the width of the terminal
/// `fd` is on; `None` when it is not a terminal.
pub fn columns(fd: libc::c_int) -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(n);
    }
    // SAFETY: TIOCGWINSZ fills a winsize we own; a failure leaves it zeroed.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then(|| usize::from(size.ws_col))
}

pub fn progress_line(stage: &str, message: &str) -> String {
    let stage = format!("{stage:>9}");
    format!(
        "{}  {}",
        paint(colored(false), Paint::Stage, &stage),
        printable(message)
    )
}

pub fn warn(message: impl std::fmt::Display) {
    let message = message.to_string();
    crate::say!(
        "  {}  {}",
        paint(colored(false), Paint::Warn, "warning"),
        printable(&message)
    );
}

pub fn error(message: &str, causes: &[String]) {
    let mut text = format!("{} {message}", paint(colored(false), Paint::Bad, "error:"));
    for c in causes {
        text.push_str(&format!("\n  caused by: {c}"));
    }
    crate::say!("{text}");
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks at the terminal and returns the answer, trimmed and lower-cased.
pub fn ask(question: &str) -> Option<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok()?;
    Some(answer.trim().to_lowercase())
}

/// The end of a run, for a person.
pub fn summary(report: &RunReport) {
    let outcome = report
        .outcome
        .as_ref()
        .map(|o| o.message.clone())
        .unwrap_or_else(|| "no outcome".into());
    crate::say!(
        "\nrun {}: {} — {}\n  journal: {}",
        report.run_id,
        verdict(colored(false), report.verdict),
        outcome,
        report.journal.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        assert_eq!(quote_path("src/calc.py"), "src/calc.py");
        assert_eq!(
            quote_path("a\u{1b}[31mRED\u{1b}[0m.txt"),
            "\"a\\033[31mRED\\033[0m.txt\""
        );
        assert_eq!(quote_path("tab\there"), "\"tab\\there\"");
        assert_eq!(quote_path("q\"uote\\"), "\"q\\\"uote\\\\\"");
        assert_eq!(quote_path("café"), "\"caf\\303\\251\"");
        assert_eq!(printable("red \u{1b}[31m"), "red \\u{1b}[31m");
    }
}

//! The only place that prints for people: progress while a run is live, and the
//! final summary. Everything goes to stderr, so that `--json` output on stdout stays
//! machine-readable.

use std::io::{IsTerminal, Write};

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

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Silences progress lines (for commands that run pipelines as a means, like `doctor`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::SeqCst);
}

/// One progress line: the stage name, then what happened.
pub fn progress(stage: &str, message: impl std::fmt::Display) {
    if !QUIET.load(std::sync::atomic::Ordering::SeqCst) {
        crate::say!("{stage:>9}  {message}");
    }
}

pub fn warn(message: impl std::fmt::Display) {
    crate::say!("  warning  {message}");
}

pub fn error(message: &str, causes: &[String]) {
    let mut text = format!("error: {message}");
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
        report.verdict.describe(),
        outcome,
        report.journal.display()
    );
}

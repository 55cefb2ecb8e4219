//! The only place that prints for people: progress while a run is live, and the
//! final summary. Everything goes to stderr, so that `--json` output on stdout stays
//! machine-readable.

use std::io::{IsTerminal, Write};

use crate::report::RunReport;

/// One progress line: the stage name, then what happened.
pub fn progress(stage: &str, message: impl std::fmt::Display) {
    eprintln!("{stage:>9}  {message}");
}

pub fn warn(message: impl std::fmt::Display) {
    eprintln!("  warning  {message}");
}

pub fn error(message: &str, causes: &[String]) {
    let mut text = format!("error: {message}");
    for c in causes {
        text.push_str(&format!("\n  caused by: {c}"));
    }
    eprintln!("{text}");
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks at the terminal and returns the answer, trimmed and lower-cased.
pub fn ask(question: &str) -> Option<String> {
    eprint!("{question} ");
    let _ = std::io::stderr().flush();
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
    eprintln!(
        "\nrun {}: {} — {}\n  journal: {}",
        report.run_id,
        report.verdict.describe(),
        outcome,
        report.journal.display()
    );
}

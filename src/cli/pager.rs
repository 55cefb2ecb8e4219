//! The pager for long output at a terminal (`baton show --diff`), as git does it:
//! `BATON_PAGER`, else `PAGER`, else `less -FRX`; none when stdout is not a terminal,
//! or when the pager chosen is empty or `cat`. The pager is started before the
//! command prints, baton's stdout becomes the pager's stdin, and baton waits for the
//! pager before it exits, so the shell's prompt comes back after the page.

use std::ffi::OsString;
use std::io::{IsTerminal as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::process::{Child, Command, Stdio};

/// Which pager to start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    /// A user's pager command, run by the shell (it may carry arguments).
    Shell(String),
    /// `less -FRX`: quits when the text fits the screen, keeps colours, leaves the
    /// text on the screen.
    Less,
}

/// The pager for these values of `BATON_PAGER` and `PAGER`: the first one set wins,
/// even when it is empty (a way to say "none"), and `cat` means none too.
fn choose(baton_pager: Option<OsString>, pager: Option<OsString>) -> Option<Choice> {
    match baton_pager.or(pager) {
        None => Some(Choice::Less),
        Some(set) => {
            let command = set.to_string_lossy().trim().to_string();
            (!command.is_empty() && command != "cat").then_some(Choice::Shell(command))
        }
    }
}

/// A running pager that baton's stdout goes to.
pub struct Pager {
    child: Child,
}

/// Starts the pager when stdout is a terminal and one is wanted; from then on
/// everything printed on stdout goes to it. None (print directly) when no pager is
/// wanted or the default one is not installed.
pub fn start() -> Option<Pager> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut command = match choose(std::env::var_os("BATON_PAGER"), std::env::var_os("PAGER"))? {
        Choice::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        Choice::Less => {
            let mut c = Command::new("less");
            c.arg("-FRX");
            c
        }
    };
    // As git does: a `less` or `lv` named by the user gets the same behaviour.
    for (var, value) in [("LESS", "FRX"), ("LV", "-c")] {
        if std::env::var_os(var).is_none() {
            command.env(var, value);
        }
    }
    let mut child = command.stdin(Stdio::piped()).spawn().ok()?;
    let pipe = child.stdin.take()?;
    let _ = std::io::stdout().flush();
    // SAFETY: dup2 on two open descriptors; fd 1 now writes into the pager's stdin
    // (the pipe's own descriptor is closed when `pipe` drops).
    if unsafe { libc::dup2(pipe.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    drop(pipe);
    // A Ctrl-C at the page is the pager's (less reads it as "stop"); baton must not
    // die of it and hand the terminal back to the shell while the pager still has it.
    // Set after the spawn, so the pager does not inherit it.
    // SAFETY: setting a signal's disposition to "ignore" is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    Some(Pager { child })
}

impl Pager {
    /// Ends the input and waits until the user leaves the pager.
    pub fn finish(mut self) {
        let _ = std::io::stdout().flush();
        // Closing fd 1 is what tells the pager the text is complete; /dev/null takes
        // its place so a late write goes nowhere rather than to a reused descriptor.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 on two open descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pager_set_wins_and_empty_or_cat_means_none() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(choose(None, None), Some(Choice::Less));
        assert_eq!(
            choose(os("most"), os("more")),
            Some(Choice::Shell("most".into()))
        );
        assert_eq!(
            choose(None, os("less -S")),
            Some(Choice::Shell("less -S".into()))
        );
        assert_eq!(choose(os(""), os("more")), None);
        assert_eq!(choose(os(" cat "), None), None);
        assert_eq!(choose(None, os("")), None);
    }
}

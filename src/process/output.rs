//! A child's output, from its pipes to baton's side: a reader thread per pipe cuts the
//! bytes into lines and sends them through one bounded queue ([`Lines`]); the
//! runner hands each line to the [`Sink`], which writes the log file, keeps a short
//! tail for the report and calls the caller back. Both pipes are drained at once, so
//! a child blocked on a full stderr cannot stall its stdout (or the other way round).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::{ProcessError, Stream};

/// Lines read but not yet handled, at most (each up to [`MAX_LINE`]).
const LINE_QUEUE: usize = 64;
/// How many lines of output a result keeps for the report.
const TAIL_LINES: usize = 40;
/// A line longer than this is cut into pieces, so one endless line cannot fill memory.
const MAX_LINE: usize = 1024 * 1024;

enum Message {
    Line(Stream, Vec<u8>),
    Closed,
}

/// The lines of a child's stdout and stderr, interleaved as they come.
pub(super) struct Lines {
    rx: mpsc::Receiver<Message>,
    /// Pipes not yet closed.
    open: usize,
}

impl Lines {
    /// Takes the child's stdout and stderr and starts reading them.
    pub fn read(child: &mut Child) -> Lines {
        // Bounded: a child that writes faster than the journal takes its lines is
        // slowed down by its own pipe, instead of its output piling up in baton's
        // memory.
        let (tx, rx) = mpsc::sync_channel(LINE_QUEUE);
        let mut open = 0;
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, Stream::Stdout, tx.clone());
            open += 1;
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, Stream::Stderr, tx);
            open += 1;
        }
        Lines { rx, open }
    }

    /// How many of the pipes are still open (something still holds their write end).
    pub fn open(&self) -> usize {
        self.open
    }

    /// The next line, waiting at most `wait` for it. A line keeps its newline.
    pub fn next(&mut self, wait: Duration) -> Option<(Stream, Vec<u8>)> {
        match self.rx.recv_timeout(wait) {
            Ok(Message::Line(stream, bytes)) => Some((stream, bytes)),
            Ok(Message::Closed) => {
                self.open = self.open.saturating_sub(1);
                None
            }
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.open = 0;
                None
            }
        }
    }
}

fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    stream: Stream,
    tx: mpsc::SyncSender<Message>,
) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&chunk[..=pos]);
                if tx
                    .send(Message::Line(stream, std::mem::take(&mut line)))
                    .is_err()
                {
                    return;
                }
                chunk = &chunk[pos + 1..];
            }
            line.extend_from_slice(chunk);
            if line.len() >= MAX_LINE {
                let mut piece = std::mem::take(&mut line);
                piece.push(b'\n');
                if tx.send(Message::Line(stream, piece)).is_err() {
                    return;
                }
            }
        }
        if !line.is_empty() {
            line.push(b'\n');
            let _ = tx.send(Message::Line(stream, line));
        }
        let _ = tx.send(Message::Closed);
    });
}

/// Where each line goes: the log file verbatim, the tail (at most [`TAIL_LINES`]
/// lines, without their line ends) and the caller's callback.
pub(super) struct Sink<'a> {
    log: Option<(PathBuf, BufWriter<File>)>,
    tail: VecDeque<String>,
    on_line: &'a mut dyn FnMut(Stream, &str),
}

impl<'a> Sink<'a> {
    /// Creates (or truncates) the log file, when there is one.
    pub fn create(
        log: Option<&Path>,
        on_line: &'a mut dyn FnMut(Stream, &str),
    ) -> Result<Sink<'a>, ProcessError> {
        let log = match log {
            Some(path) => {
                let file = File::create(path).map_err(|source| ProcessError::Log {
                    path: path.to_path_buf(),
                    source,
                })?;
                Some((path.to_path_buf(), BufWriter::new(file)))
            }
            None => None,
        };
        Ok(Sink {
            log,
            tail: VecDeque::with_capacity(TAIL_LINES),
            on_line,
        })
    }

    pub fn line(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), ProcessError> {
        if let Some((path, log)) = self.log.as_mut() {
            log.write_all(bytes).map_err(|source| ProcessError::Log {
                path: path.clone(),
                source,
            })?;
        }
        let text = String::from_utf8_lossy(bytes);
        let line = text.trim_end_matches(['\n', '\r']);
        (self.on_line)(stream, line);
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        Ok(())
    }

    /// Flushes the log and gives back the tail, oldest line first.
    pub fn finish(mut self) -> Result<Vec<String>, ProcessError> {
        if let Some((path, log)) = self.log.as_mut() {
            log.flush().map_err(|source| ProcessError::Log {
                path: path.clone(),
                source,
            })?;
        }
        Ok(self.tail.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_logs_verbatim_calls_back_trimmed_and_keeps_a_short_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let mut heard = vec![];
        let mut on_line = |stream, line: &str| heard.push((stream, line.to_string()));
        let mut sink = Sink::create(Some(&log), &mut on_line).unwrap();
        sink.line(Stream::Stderr, b"first\r\n").unwrap();
        for i in 0..TAIL_LINES {
            sink.line(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let tail = sink.finish().unwrap();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.first().map(String::as_str), Some("line 0"));
        assert_eq!(heard[0], (Stream::Stderr, "first".to_string()));
        assert_eq!(heard.len(), TAIL_LINES + 1);
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.starts_with("first\r\nline 0\n"), "{logged}");
    }

    #[test]
    fn a_log_that_cannot_be_created_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("missing").join("out.log");
        let mut on_line = |_, _: &str| {};
        match Sink::create(Some(&log), &mut on_line) {
            Err(ProcessError::Log { path, .. }) => assert_eq!(path, log),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("created a log in a missing directory"),
        }
    }
}

//! A child's output, from its pipes to baton's side: [`Lines`] reads both pipes on
//! the runtime's I/O driver (no thread per pipe) and cuts the bytes into lines; the
//! runner hands each line to the [`Sink`], which writes the log file, keeps a short
//! tail for the report and calls the caller back. Both pipes are read at once, so a
//! child blocked on a full stderr cannot stall its stdout (or the other way round);
//! a pipe is read only when the runner asks for the next line, so a child that writes
//! faster than its lines are handled is slowed down by its own pipe instead of its
//! output piling up in baton's memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdout};

use super::{ProcessError, Stream};

/// How many lines of output a result keeps for the report.
const TAIL_LINES: usize = 40;
/// A line longer than this is cut into pieces, so one endless line cannot fill memory.
const MAX_LINE: usize = 1024 * 1024;
/// What one read takes from a pipe, at most.
const CHUNK: usize = 16 * 1024;

/// One pipe: what was read of its current line, and whether it is closed.
struct Pipe<R> {
    reader: Option<R>,
    partial: Vec<u8>,
}

impl<R: AsyncReadExt + Unpin> Pipe<R> {
    fn new(reader: Option<R>) -> Pipe<R> {
        Pipe {
            reader,
            partial: Vec::new(),
        }
    }

    /// Reads what is there (waiting for it); `None` once the pipe is closed.
    async fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        let reader = self.reader.as_mut()?;
        match reader.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        }
    }

    /// Cuts `bytes` (just read) into whole lines, each keeping its newline.
    fn take(&mut self, stream: Stream, bytes: &[u8], out: &mut VecDeque<(Stream, Vec<u8>)>) {
        let mut chunk = bytes;
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&chunk[..=pos]);
            out.push_back((stream, std::mem::take(&mut self.partial)));
            chunk = &chunk[pos + 1..];
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() >= MAX_LINE {
            let mut piece = std::mem::take(&mut self.partial);
            piece.push(b'\n');
            out.push_back((stream, piece));
        }
    }

    /// The pipe closed: what is left of its last line is a line of its own.
    fn close(&mut self, stream: Stream, out: &mut VecDeque<(Stream, Vec<u8>)>) {
        self.reader = None;
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            line.push(b'\n');
            out.push_back((stream, line));
        }
    }
}

/// The lines of a child's stdout and stderr, interleaved as they come.
pub(super) struct Lines {
    stdout: Pipe<ChildStdout>,
    stderr: Pipe<ChildStderr>,
    ready: VecDeque<(Stream, Vec<u8>)>,
    buf: Vec<u8>,
}

impl Lines {
    /// Takes the child's stdout and stderr.
    pub fn read(child: &mut Child) -> Lines {
        Lines {
            stdout: Pipe::new(child.stdout.take()),
            stderr: Pipe::new(child.stderr.take()),
            ready: VecDeque::new(),
            buf: vec![0u8; CHUNK],
        }
    }

    /// How many of the pipes are still open (something still holds their write end).
    pub fn open(&self) -> usize {
        usize::from(self.stdout.reader.is_some()) + usize::from(self.stderr.reader.is_some())
    }

    /// The next line, waiting at most `wait` for it. A line keeps its newline.
    pub async fn next(&mut self, wait: Duration) -> Option<(Stream, Vec<u8>)> {
        if let Some(line) = self.ready.pop_front() {
            return Some(line);
        }
        if self.open() == 0 {
            tokio::time::sleep(wait).await;
            return None;
        }
        let Lines {
            stdout,
            stderr,
            ready,
            buf,
        } = self;
        let half = buf.len() / 2;
        let (out_buf, err_buf) = buf.split_at_mut(half);
        // Both reads are cancel-safe: the one that loses the race has read nothing.
        tokio::select! {
            n = stdout.read(out_buf), if stdout.reader.is_some() => match n {
                Some(n) => stdout.take(Stream::Stdout, &out_buf[..n], ready),
                None => stdout.close(Stream::Stdout, ready),
            },
            n = stderr.read(err_buf), if stderr.reader.is_some() => match n {
                Some(n) => stderr.take(Stream::Stderr, &err_buf[..n], ready),
                None => stderr.close(Stream::Stderr, ready),
            },
            () = tokio::time::sleep(wait) => {}
        }
        self.ready.pop_front()
    }
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

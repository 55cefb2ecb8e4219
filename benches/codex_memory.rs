//! Peak memory of `baton run` while codex streams a very long session.
//!
//! The goal: baton's resident memory stays flat in the size of the agent's output
//! (target: at most 40 MB), because every line codex prints goes straight to the
//! journal (`agent.log`, `events.jsonl`) and only a short tail stays in memory.
//!
//! For each session size (default 1,000, 10,000 and 100,000 message items), the
//! benchmark:
//!
//! - starts baton's scripted model server ([`baton::model_server`]) on a scenario of
//!   two turns: a patch (codex adds `notes.txt`, so the run has a real change), then one
//!   response of `items` assistant messages of about 2 KB each (a message turn with
//!   `repeat`). codex prints one `item.completed` JSON line per message, so 100,000
//!   items are about 200 MB of codex output;
//! - puts a small pass-through proxy between codex and the server (see "The final
//!   event" below);
//! - builds a scratch repository (two files, one commit) with a hermetic environment
//!   (no global or system git config, a scratch `HOME`, `CODEX_HOME` and XDG
//!   directories, a fixed identity) and a user config that points baton's codex at the
//!   server, as `tests/common` does;
//! - runs the real codex CLI through baton once:
//!   `baton -C <repo> run --task "long session" --agent codex --timeout 30m
//!   --on-pass revert --json`;
//! - samples baton's own process (not codex) every 20 ms until it exits:
//!   `VmRSS`, `VmHWM` (the kernel's high-water mark of the resident set) and `RssAnon`
//!   from `/proc/<pid>/status`, keeping the maximum of each;
//! - reads the journal afterwards: the sizes of `agent.log` (codex's output as
//!   recorded) and `events.jsonl`, the number of events, which must be at least the
//!   number of messages (the journal keeps the events; baton does not), the time of the
//!   last message, and the agent's status in `report.json`.
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench codex_memory
//! BATON_MEM_SIZES=1000,10000 cargo bench --bench codex_memory
//! ```
//!
//! - `BATON_MEM_SIZES`: comma-separated message counts (default `1000,10000,100000`);
//! - `BATON_MEM_TIMEOUT`: baton's `--timeout` for codex (default `30m`);
//! - `BATON_MEM_TRIM=0`: no proxy, codex reads the server's final event as it is;
//! - `BATON_MEM_KEEP=1`: keep the scratch directories (repository, journal, codex home,
//!   baton's stdout and stderr) and print their paths.
//!
//! It needs the pinned codex CLI (`npm ci --prefix tests/agents`) and Linux (`/proc`).
//! The 100,000 size takes a few minutes (codex prints about one message per 1–3 ms) and
//! writes about 1.5 GB under `$TMPDIR` (the journal, codex's session rollout and its
//! history database), all removed afterwards.
//!
//! The final event: the server ends a response with `response.completed`, which repeats
//! every output item, as the Responses API does: for 100,000 messages, one server-sent
//! event of about 215 MB. codex 0.169.0 takes far more than linear time to read such
//! an event (measured without the proxy, from the last message to codex's exit:
//! 10,000 messages ~5 s, 20,000 ~75 s, 40,000 ~580 s; with 100,000 it was still
//! reading 25 minutes later, when baton's 30-minute timeout stopped it). The items
//! reach codex before, one event each, and codex needs only the response id and the
//! usage from that event, so the proxy forwards everything as it comes and only
//! empties that event's `output`; codex then ends the session in seconds, and the
//! benchmark shows it lost nothing (every message in the journal, the agent
//! `succeeded`). The messages cannot be spread over several responses instead: a
//! response made only of messages ends codex's turn (`codex exec` exits), and a
//! scenario turn is either messages or one tool call, never both. Without the proxy,
//! codex's stream idle timeout (5 minutes by default) would fail the turn before
//! baton's timeout, so the benchmark raises it for the scripted provider.
//!
//! Reading the result: the "peak RSS" column is baton's `VmHWM`, which the kernel keeps,
//! so no short peak between two samples is missed (as long as baton is sampled at least
//! once before it exits, which the 20 ms polling does for any real run). The final line
//! gives the spread across sizes; flat means the largest and smallest peaks are close
//! while the output grows by orders of magnitude. This is a measurement, not a test:
//! only the journal's event count and baton's start are asserted.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use baton::model_server::{ModelServer, Scenario};
use tempfile::TempDir;

/// The peak resident set the project aims to stay under, in MB.
const TARGET_MB: f64 = 40.0;
const DEFAULT_SIZES: &[usize] = &[1_000, 10_000, 100_000];
/// baton's `--timeout` for the agent, unless `BATON_MEM_TIMEOUT` says otherwise.
const DEFAULT_TIMEOUT: &str = "30m";
/// How often baton's `/proc/<pid>/status` is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// codex's stream idle timeout for the scripted provider (its default is 5 minutes).
/// Only matters with `BATON_MEM_TRIM=0`: the server's final `response.completed`
/// repeats every output item (about 215 MB for 100,000 messages), which codex takes
/// far longer than its default to read, so baton's `--timeout` decides instead.
const STREAM_IDLE_MS: u64 = 30 * 60 * 1000;
/// About how long each message is, in bytes.
const MESSAGE_BYTES: usize = 2048;

fn main() {
    let sizes = list_from_env("BATON_MEM_SIZES", DEFAULT_SIZES);
    let timeout = std::env::var("BATON_MEM_TIMEOUT")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TIMEOUT.into());
    let trim = std::env::var("BATON_MEM_TRIM").map_or(true, |v| v.trim() != "0");
    let codex = codex_bin_dir().join("codex");
    assert!(
        codex.is_file(),
        "the codex CLI is not installed at {}; run `npm ci --prefix tests/agents`",
        codex.display()
    );
    println!(
        "baton peak memory while codex streams a long session: {} B per message, all in one response, baton sampled every {} ms",
        message_text().len(),
        SAMPLE_EVERY.as_millis()
    );
    println!(
        "  baton -C <repo> run --task \"long session\" --agent codex --timeout {timeout} --on-pass revert --json"
    );
    println!(
        "  {}",
        if trim {
            "codex <-> proxy (empties response.completed's output) <-> scripted server"
        } else {
            "codex <-> scripted server (BATON_MEM_TRIM=0: the full response.completed)"
        }
    );
    println!();

    let mut results = vec![];
    for &items in &sizes {
        let r = measure(items, &timeout, trim);
        println!(
            "  {items} items: exit {} (agent {}), {:.1} s ({:.1} s to the last message), codex output {:.1} MB, {} events, peak RSS {:.1} MB",
            r.exit_code,
            r.agent_status,
            r.wall.as_secs_f64(),
            r.last_message.as_secs_f64(),
            mb(r.agent_log_bytes),
            r.event_lines,
            kb_to_mb(r.peak.hwm_kb)
        );
        results.push(r);
    }

    println!();
    print_table(&results);
    println!();
    let peaks: Vec<f64> = results.iter().map(|r| kb_to_mb(r.peak.hwm_kb)).collect();
    let min = peaks.iter().copied().fold(f64::INFINITY, f64::min);
    let max = peaks.iter().copied().fold(0.0, f64::max);
    println!("peak RSS flat: {min:.1}–{max:.1} MB across sizes (target <= {TARGET_MB:.0} MB)");
}

/// What one run showed.
struct Measured {
    items: usize,
    exit_code: i32,
    /// The agent's status in the run's report (`succeeded`, `timed_out`, ...).
    agent_status: String,
    wall: Duration,
    /// From the run's first event to the last message's, in the journal.
    last_message: Duration,
    agent_log_bytes: u64,
    events_bytes: u64,
    event_lines: usize,
    message_events: usize,
    peak: Peak,
    samples: usize,
}

/// The largest values seen in baton's `/proc/<pid>/status`, in kB.
#[derive(Default, Clone, Copy)]
struct Peak {
    rss_kb: u64,
    hwm_kb: u64,
    anon_kb: u64,
}

impl Peak {
    fn sample(&mut self, pid: u32) -> bool {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        let mut seen = false;
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let kb = || {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
            };
            match key {
                "VmRSS" => {
                    self.rss_kb = self.rss_kb.max(kb());
                    seen = true;
                }
                "VmHWM" => self.hwm_kb = self.hwm_kb.max(kb()),
                "RssAnon" => self.anon_kb = self.anon_kb.max(kb()),
                _ => {}
            }
        }
        // A zombie has no memory lines: it does not count as a sample.
        seen
    }
}

fn measure(items: usize, timeout: &str, trim: bool) -> Measured {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("baton-mem-{items}-"))
        .tempdir()
        .expect("could not create a temporary directory for the benchmark");
    let bench = Scratch::new(&tmp);
    bench.init_repo();

    let scenario = Scenario::parse(&scenario_toml(items)).expect("the scenario parses");
    let server = ModelServer::start(scenario, None).expect("the scripted model server starts");
    let base_url = if trim {
        format!("http://{}/v1", start_trimmer(server.port()))
    } else {
        server.base_url()
    };
    bench.write_config(&base_url);

    let stdout = fs::File::create(bench.root.join("baton.stdout")).expect("stdout file");
    let stderr = fs::File::create(bench.root.join("baton.stderr")).expect("stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("-C")
        .arg(&bench.repo)
        .args([
            "run",
            "--task",
            "long session",
            "--agent",
            "codex",
            "--timeout",
            timeout,
            "--on-pass",
            "revert",
            "--json",
        ])
        .current_dir(&bench.repo)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    bench.hermetic(&mut cmd);

    let start = Instant::now();
    let mut child = cmd.spawn().expect("baton starts");
    let pid = child.id();
    let mut peak = Peak::default();
    let mut samples = 0;
    let status = loop {
        if peak.sample(pid) {
            samples += 1;
        }
        match child.try_wait().expect("waiting for baton") {
            Some(status) => break status,
            None => thread::sleep(SAMPLE_EVERY),
        }
    };
    let wall = start.elapsed();
    drop(server);
    assert!(samples > 0, "baton exited before it could be sampled");

    let exit_code = status.code().unwrap_or(-1);
    let run = bench.only_run().unwrap_or_else(|| {
        panic!(
            "baton left no run in the journal (exit {exit_code}); stderr:\n{}",
            bench.stderr_tail()
        )
    });
    let agent_log_bytes = file_len(&run.join("agent.log"));
    let events = run.join("events.jsonl");
    let events_bytes = file_len(&events);
    let Events {
        lines: event_lines,
        messages: message_events,
        last_message,
    } = read_events(&events);
    let agent_status = fs::read_to_string(run.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|r| r["agent_result"]["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    assert!(
        event_lines >= items && message_events >= items,
        "the journal has {event_lines} events ({message_events} agent.message) for {items} messages (exit {exit_code}); stderr:\n{}",
        bench.stderr_tail()
    );
    if std::env::var_os("BATON_MEM_KEEP").is_some_and(|v| !v.is_empty()) {
        let kept = tmp.keep();
        println!("  kept the scratch directory {}", kept.display());
    }
    Measured {
        items,
        exit_code,
        agent_status,
        wall,
        last_message,
        agent_log_bytes,
        events_bytes,
        event_lines,
        message_events,
        peak,
        samples,
    }
}

/// About 2 KB of text: a short first line (baton prints the first line of each
/// message as progress), then lines of filler.
fn message_text() -> String {
    let mut text = String::from("Progress note from a very long session.\n");
    let filler = "The quick brown fox jumps over the lazy dog, again and again, for the record.";
    while text.len() + filler.len() < MESSAGE_BYTES {
        text.push_str(filler);
        text.push('\n');
    }
    text
}

/// One patch turn (codex adds `notes.txt`), then one response of `items` messages.
fn scenario_toml(items: usize) -> String {
    format!(
        "description = \"a very long codex session\"\n\n[[turn]]\npatch = '''\n*** Begin Patch\n*** Add File: notes.txt\n+Notes from a very long session.\n*** End Patch\n'''\n\n[[turn]]\nmessage = '''\n{}'''\nrepeat = {items}\n",
        message_text()
    )
}

/// The scratch places of one run, under one temporary directory.
struct Scratch {
    root: PathBuf,
    repo: PathBuf,
    home: PathBuf,
}

impl Scratch {
    fn new(tmp: &TempDir) -> Scratch {
        let root = tmp
            .path()
            .canonicalize()
            .expect("the temporary directory has a canonical path");
        let s = Scratch {
            repo: root.join("repo"),
            home: root.join("home"),
            root,
        };
        for dir in [
            s.repo.clone(),
            s.home.join(".codex"),
            s.home.join(".config/baton"),
            s.root.join("worktrees"),
        ] {
            fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
        }
        s
    }

    /// No inherited git location or config, a scratch `HOME`, the codex under test
    /// first on `PATH`, and the key the scripted provider expects.
    fn hermetic(&self, cmd: &mut Command) {
        let path = std::env::join_paths(std::iter::once(codex_bin_dir()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH can be joined");
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Ada User")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada User")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", "2026-01-01T12:00:00+00:00")
            .env("GIT_COMMITTER_DATE", "2026-01-01T12:00:00+00:00")
            .env("LC_ALL", "C")
            .env("BATON_WORKTREES_DIR", self.root.join("worktrees"))
            .env("CODEX_HOME", self.home.join(".codex"))
            .env("BATON_TEST_KEY", "scripted");
    }

    fn git(&self, args: &[&str]) {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(&self.repo);
        self.hermetic(&mut cmd);
        let out = cmd.output().expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn init_repo(&self) {
        let write = |name: &str, text: &str| {
            fs::write(self.repo.join(name), text)
                .unwrap_or_else(|e| panic!("could not write {name}: {e}"))
        };
        write(
            "README.md",
            "# scratch\n\nA repository for baton's memory benchmark.\n",
        );
        write("calc.py", "def add(a, b):\n    return a + b\n");
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "initial"]);
    }

    /// The user's baton config: codex on the scripted model, no retries, and a stream
    /// idle timeout long enough for the final event of the largest session.
    fn write_config(&self, base_url: &str) {
        let config = format!(
            "[agents.codex]\nmodel = \"gpt-5.5\"\nconfig = [\n  'model_provider=\"scripted\"',\n  'model_providers.scripted.name=\"scripted\"',\n  'model_providers.scripted.base_url=\"{base_url}\"',\n  'model_providers.scripted.wire_api=\"responses\"',\n  'model_providers.scripted.env_key=\"BATON_TEST_KEY\"',\n  'model_providers.scripted.request_max_retries=0',\n  'model_providers.scripted.stream_max_retries=0',\n  'model_providers.scripted.stream_idle_timeout_ms={STREAM_IDLE_MS}',\n]\n"
        );
        fs::write(self.home.join(".config/baton/config.toml"), config)
            .expect("could not write the baton config");
    }

    /// The run's journal directory, when baton made exactly one run.
    fn only_run(&self) -> Option<PathBuf> {
        let runs = self.repo.join(".git/baton/runs");
        let mut dirs: Vec<PathBuf> = fs::read_dir(&runs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        (dirs.len() == 1).then(|| dirs.remove(0))
    }

    fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(self.root.join("baton.stderr")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// What `events.jsonl` holds.
struct Events {
    lines: usize,
    /// `agent.message` events.
    messages: usize,
    /// From the first event to the last `agent.message`.
    last_message: Duration,
}

fn read_events(path: &Path) -> Events {
    let file =
        fs::File::open(path).unwrap_or_else(|e| panic!("could not open {}: {e}", path.display()));
    let mut events = Events {
        lines: 0,
        messages: 0,
        last_message: Duration::ZERO,
    };
    let mut first_ms = None;
    for line in BufReader::new(file).split(b'\n') {
        let line = line.expect("events.jsonl can be read");
        events.lines += 1;
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
            continue;
        };
        let ts = event["ts_ms"].as_u64().unwrap_or(0);
        let first = *first_ms.get_or_insert(ts);
        if event["event"] == "agent.message" {
            events.messages += 1;
            events.last_message = Duration::from_millis(ts.saturating_sub(first));
        }
    }
    events
}

fn print_table(results: &[Measured]) {
    println!(
        "{:>8}  {:>9}  {:>9}  {:>8}  {:>8}  {:>11}  {:>10}  {:>11}  {:>10}  {:>7}  {:>9}  {:>4}",
        "items",
        "codex MB",
        "events MB",
        "events",
        "messages",
        "peak RSS MB",
        "max RSS MB",
        "max anon MB",
        "streamed s",
        "wall s",
        "agent",
        "exit"
    );
    for r in results {
        println!(
            "{:>8}  {:>9.1}  {:>9.1}  {:>8}  {:>8}  {:>11.1}  {:>10.1}  {:>11.1}  {:>10.1}  {:>7.1}  {:>9}  {:>4}",
            r.items,
            mb(r.agent_log_bytes),
            mb(r.events_bytes),
            r.event_lines,
            r.message_events,
            kb_to_mb(r.peak.hwm_kb),
            kb_to_mb(r.peak.rss_kb),
            kb_to_mb(r.peak.anon_kb),
            r.last_message.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.agent_status,
            r.exit_code
        );
    }
    println!(
        "  codex MB: agent.log (codex's stdout and stderr as recorded); events: lines of events.jsonl, of which messages are agent.message"
    );
    println!(
        "  peak RSS: baton's VmHWM; max RSS/anon: largest VmRSS/RssAnon sampled ({} samples in the longest run)",
        results.iter().map(|r| r.samples).max().unwrap_or(0)
    );
    println!(
        "  streamed: from the run's first event to the last message in the journal; after it, codex reads the final response.completed and baton judges the change"
    );
}

/// Starts a pass-through between codex and the scripted server on `port` that empties
/// the `output` of every `response.completed` event and forwards everything else as it
/// comes; returns its address. It serves until the benchmark exits.
fn start_trimmer(port: u16) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the trimming proxy binds");
    let addr = listener
        .local_addr()
        .expect("the trimming proxy has an address");
    let upstream = SocketAddr::from(([127, 0, 0, 1], port));
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = relay(conn, upstream);
            });
        }
    });
    addr
}

/// One connection: the request goes up untouched; the response comes back line by
/// line, flushed at each blank line (the end of the headers and of each event).
fn relay(client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let mut from_server = BufReader::with_capacity(1 << 20, server);
    let mut to_client = BufWriter::with_capacity(1 << 20, client.try_clone()?);
    let mut line = Vec::new();
    let mut completed = false;
    loop {
        line.clear();
        if from_server.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if completed && line.starts_with(b"data: ") {
            let mut event: serde_json::Value = serde_json::from_slice(&line[6..])?;
            event["response"]["output"] = serde_json::json!([]);
            line = format!("data: {event}\n").into_bytes();
        }
        completed = line.starts_with(b"event: response.completed");
        to_client.write_all(&line)?;
        if line == b"\n" || line == b"\r\n" {
            to_client.flush()?;
        }
    }
    to_client.flush()?;
    client.shutdown(Shutdown::Both)
}

fn codex_bin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/node_modules/.bin")
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn parse_count(name: &str, s: &str) -> usize {
    s.trim()
        .replace('_', "")
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| panic!("{name}: `{s}` is not a positive number"))
}

fn list_from_env(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_count(name, s))
            .collect(),
        _ => default.to_vec(),
    }
}

//! The scripted model server: a stand-in for the model provider, on 127.0.0.1 at an
//! ephemeral port, so that the real agent CLIs can be driven offline and
//! deterministically (by the tests, `baton demo` and `baton doctor`). It speaks the
//! OpenAI Responses API (for `codex exec`), the Anthropic Messages API (for Claude
//! Code) and the Gemini API (for Gemini CLI), streaming as each client expects, answers
//! each request from a [`Scenario`], can fail on purpose (429, 500, a response that
//! never starts, a stream that stalls, a dropped connection), and logs every request.
//!
//! It is the network edge of baton's test bench: everything on this side of it — the
//! agent CLI, git, baton — is real.

mod anthropic;
mod gemini;
mod patch;
mod responses;
pub mod scenario;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde::Serialize;

pub use scenario::{Answer, Api, Fault, Scenario, ScenarioError};

/// One request the server received, and what it answered.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The turn position the request asked for, for model turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// What was served: `answer`, a fault's name, `extra`, or `not_found`.
    pub served: String,
    pub body: serde_json::Value,
}

struct State {
    scenario: Scenario,
    /// How many times each fault at each position has been served.
    faults_served: HashMap<(usize, usize), u32>,
    log: Vec<LoggedRequest>,
    log_file: Option<std::fs::File>,
}

/// A running server; stopped when dropped.
pub struct ModelServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    accept: Option<thread::JoinHandle<()>>,
}

impl ModelServer {
    /// Starts serving `scenario`; every request is also appended to `log_file` as a
    /// JSON line when one is given.
    pub fn start(scenario: Scenario, log_file: Option<PathBuf>) -> std::io::Result<ModelServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let log_file = match log_file {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => None,
        };
        let state = Arc::new(Mutex::new(State {
            scenario,
            faults_served: HashMap::new(),
            log: vec![],
            log_file,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (stop.clone(), state.clone());
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, st) = (s.clone(), st.clone());
                thread::spawn(move || {
                    let _ = serve(conn, &st, &s);
                });
            }
        });
        Ok(ModelServer {
            addr,
            stop,
            state,
            accept: Some(accept),
        })
    }

    /// The base URL an OpenAI-style client is pointed at (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(conn: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = vec![];
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        path,
        headers,
        body: vec![],
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            chunk.truncate(size);
            req.body.extend(chunk);
        }
    } else if let Some(len) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(req)
}

/// What one request gets.
enum Reply {
    Answer(Answer),
    Fault(Fault),
    /// A request that is not a model turn (a title, a summary): a short message.
    Extra,
    /// Anthropic's `count_tokens`.
    CountTokens,
    NotFound,
}

/// Model turns already in an OpenAI conversation: each tool call, and each run of
/// consecutive assistant messages, is one turn.
fn position(body: &serde_json::Value) -> usize {
    let mut turns = 0;
    let mut in_messages = false;
    for item in body["input"].as_array().into_iter().flatten() {
        let kind = item["type"].as_str().unwrap_or("");
        let assistant_message = kind == "message" && item["role"] == "assistant";
        if kind == "function_call"
            || kind == "custom_tool_call"
            || (assistant_message && !in_messages)
        {
            turns += 1;
        }
        in_messages = assistant_message;
    }
    turns
}

fn api_of(req: &Request) -> Option<Api> {
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("POST", p) if p.ends_with("/responses") => Some(Api::OpenAi),
        ("POST", p) if p.ends_with("/messages") => Some(Api::Anthropic),
        ("POST", p) if p.ends_with(":generateContent") || p.ends_with(":streamGenerateContent") => {
            Some(Api::Gemini)
        }
        _ => None,
    }
}

fn choose(
    state: &mut State,
    req: &Request,
    body: &serde_json::Value,
) -> (Option<Api>, Option<usize>, Reply) {
    let path = req.path.split('?').next().unwrap_or("");
    if req.method == "POST" && path.ends_with("/messages/count_tokens") {
        return (Some(Api::Anthropic), None, Reply::CountTokens);
    }
    if req.method == "POST" && path.ends_with(":countTokens") {
        return (Some(Api::Gemini), None, Reply::CountTokens);
    }
    let Some(api) = api_of(req) else {
        return (None, None, Reply::NotFound);
    };
    let extra = match api {
        // codex labels each request; only turns advance the script.
        Api::OpenAi => req
            .header("x-codex-turn-metadata")
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|m| m["request_kind"].as_str().map(str::to_string))
            .is_some_and(|k| k != "turn"),
        // Claude Code's and Gemini CLI's side requests (titles, summaries, model
        // routing) offer no tools.
        Api::Anthropic | Api::Gemini => body["tools"].as_array().is_none_or(|t| t.is_empty()),
    };
    if extra {
        return (Some(api), None, Reply::Extra);
    }
    let pos = match api {
        Api::OpenAi => position(body),
        Api::Anthropic => anthropic::position(body),
        Api::Gemini => gemini::position(body),
    };
    let (steps, trailing) = state.scenario.steps(api, gemini::offers_shell(body));
    let (faults, answer) = match steps.get(pos) {
        Some((f, a)) => (f.clone(), Some(a.clone())),
        None => (trailing, None),
    };
    for (i, f) in faults.iter().enumerate() {
        let served = state.faults_served.entry((pos, i)).or_insert(0);
        if f.times.is_none_or(|t| *served < t) {
            *served += 1;
            return (Some(api), Some(pos), Reply::Fault(f.fault));
        }
    }
    match answer {
        Some(a) => (Some(api), Some(pos), Reply::Answer(a)),
        // Past the end of the script: a model with nothing more to say.
        None => (
            Some(api),
            Some(pos),
            Reply::Answer(Answer::Message {
                text: "Nothing more to do.".into(),
                repeat: 1,
            }),
        ),
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) -> std::io::Result<()> {
    let req = read_request(&conn)?;
    if req.method == "HEAD" {
        // Claude Code probes the base URL before it starts.
        write!(
            conn,
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )?;
        return conn.flush();
    }
    let body: serde_json::Value =
        serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
    let (api, position, reply) = {
        let mut st = state
            .lock()
            .map_err(|_| std::io::Error::other("server state poisoned"))?;
        let (api, position, reply) = choose(&mut st, &req, &body);
        let served = match &reply {
            Reply::Answer(_) => "answer".to_string(),
            Reply::Fault(f) => f.name().to_string(),
            Reply::Extra => "extra".to_string(),
            Reply::CountTokens => "count_tokens".to_string(),
            Reply::NotFound => "not_found".to_string(),
        };
        let entry = LoggedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            position,
            served,
            body: body.clone(),
        };
        if let Some(f) = st.log_file.as_mut() {
            let _ = writeln!(f, "{}", serde_json::to_string(&entry).unwrap_or_default());
        }
        st.log.push(entry);
        (api, position, reply)
    };
    let wait_for_stop = || {
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(50));
        }
    };
    let pos = position.unwrap_or(0);
    let streaming = req.path.contains(":streamGenerateContent");
    let model = body["model"].as_str().unwrap_or("scripted").to_string();
    match (api, reply) {
        (_, Reply::NotFound) | (None, _) => {
            responses::error(&mut conn, 404, "not_found", "no such endpoint", None)
        }
        (Some(Api::Gemini), Reply::CountTokens) => gemini::count_tokens(&mut conn, &body),
        (_, Reply::CountTokens) => anthropic::count_tokens(&mut conn, &body),
        (
            Some(api),
            Reply::Fault(fault @ (Fault::RateLimit | Fault::ServerError | Fault::Auth)),
        ) => {
            let (status, retry, code, message) = match fault {
                Fault::RateLimit => (
                    429,
                    Some(1),
                    "rate_limit_exceeded",
                    "Rate limit reached for the scripted model. Please try again in 1s.",
                ),
                Fault::Auth => (
                    401,
                    None,
                    "invalid_api_key",
                    "Incorrect API key provided to the scripted model.",
                ),
                _ => (
                    500,
                    None,
                    "server_error",
                    "The scripted model had an internal error.",
                ),
            };
            match api {
                Api::OpenAi => responses::error(&mut conn, status, code, message, retry),
                Api::Anthropic => anthropic::error(&mut conn, status, message, retry),
                Api::Gemini => gemini::error(&mut conn, status, message),
            }
        }
        (_, Reply::Fault(Fault::Hang)) => {
            wait_for_stop();
            Ok(())
        }
        (Some(api), Reply::Fault(fault @ (Fault::Stall | Fault::Drop))) => {
            match api {
                Api::OpenAi => responses::Stream::start(&mut conn, pos)?.preamble()?,
                Api::Anthropic => anthropic::Stream::start(&mut conn, pos)?.preamble(&model)?,
                Api::Gemini => gemini::partial(&mut conn)?,
            }
            if fault == Fault::Stall {
                wait_for_stop();
                Ok(())
            } else {
                conn.shutdown(std::net::Shutdown::Both)
            }
        }
        (Some(api), Reply::Extra) => {
            let answer = Answer::Message {
                text: "ok".into(),
                repeat: 1,
            };
            match api {
                Api::OpenAi => responses::Stream::start(&mut conn, 0)?.respond(&body, &answer),
                Api::Anthropic => anthropic::Stream::start(&mut conn, 0)?.respond(&body, &answer),
                Api::Gemini => gemini::side_reply(&mut conn, &body, streaming),
            }
        }
        (Some(api), Reply::Answer(answer)) => match api {
            Api::OpenAi => responses::Stream::start(&mut conn, pos)?.respond(&body, &answer),
            Api::Anthropic => anthropic::Stream::start(&mut conn, pos)?.respond(&body, &answer),
            Api::Gemini => gemini::respond(&mut conn, &body, &answer, streaming),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(server: &ModelServer, body: &str) -> String {
        let mut conn = TcpStream::connect(server.addr).unwrap();
        write!(
            conn,
            "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn the_turn_follows_the_conversation_so_retries_get_the_same_answer() {
        let scenario = Scenario::parse(
            "[[turn]]\nfault = \"rate_limit\"\ntimes = 1\n[[turn]]\nshell = \"ls\"\n[[turn]]\nmessage = \"done\"\n",
        )
        .unwrap();
        let server = ModelServer::start(scenario, None).unwrap();
        let fresh = r#"{"input":[{"type":"message","role":"user","content":[]}],"tools":[{"type":"function","name":"exec_command"}]}"#;
        assert!(post(&server, fresh).starts_with("HTTP/1.1 429"));
        let first = post(&server, fresh);
        assert!(
            first.contains("\"name\":\"exec_command\"") && first.contains("ls"),
            "{first}"
        );
        // A retry of the same request is the same turn.
        assert!(post(&server, fresh).contains("\"name\":\"exec_command\""));
        let after_call = r#"{"input":[{"type":"function_call","name":"exec_command"},{"type":"function_call_output"}]}"#;
        let second = post(&server, after_call);
        assert!(
            second.contains("response.completed") && second.contains("done"),
            "{second}"
        );
        let log = server.requests();
        assert_eq!(log.len(), 4);
        assert_eq!(log[0].served, "rate_limit");
        assert_eq!(log[3].position, Some(1));
    }
}

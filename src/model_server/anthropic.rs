//! The Anthropic Messages API as Claude Code reads it: streamed messages
//! (`message_start`, content blocks with text and `tool_use` deltas, `message_delta`,
//! `message_stop`), `count_tokens`, and errors as `{"type":"error",...}`.

use std::io::Write;
use std::net::TcpStream;

use serde_json::{Value, json};

use super::Answer;
use super::patch::{self, EditOp};

pub fn error(
    conn: &mut TcpStream,
    status: u16,
    message: &str,
    retry_after: Option<u32>,
) -> std::io::Result<()> {
    let (reason, kind) = match status {
        429 => ("Too Many Requests", "rate_limit_error"),
        401 => ("Unauthorized", "authentication_error"),
        404 => ("Not Found", "not_found_error"),
        _ => ("Internal Server Error", "api_error"),
    };
    let body =
        json!({ "type": "error", "error": { "type": kind, "message": message } }).to_string();
    let retry = retry_after
        .map(|s| format!("retry-after: {s}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

pub fn count_tokens(conn: &mut TcpStream, request: &Value) -> std::io::Result<()> {
    let body = json!({ "input_tokens": request.to_string().len() / 4 }).to_string();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Model turns already in the conversation: its assistant messages.
pub fn position(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["role"] == "assistant").count())
        .unwrap_or(0)
}

/// Claude Code names its directory in the system prompt.
pub fn working_directory(body: &Value) -> Option<String> {
    let text = body.to_string();
    let marker = "Primary working directory: ";
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest.find(['\\', '"']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

pub struct Stream<'a> {
    conn: &'a mut TcpStream,
    position: usize,
}

impl<'a> Stream<'a> {
    pub fn start(conn: &'a mut TcpStream, position: usize) -> std::io::Result<Stream<'a>> {
        write!(
            conn,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
        )?;
        Ok(Stream { conn, position })
    }

    fn event(&mut self, kind: &str, mut data: Value) -> std::io::Result<()> {
        data["type"] = json!(kind);
        write!(self.conn, "event: {kind}\ndata: {data}\n\n")?;
        self.conn.flush()
    }

    /// `message_start`: a stream that has started.
    pub fn preamble(&mut self, model: &str) -> std::io::Result<()> {
        self.event(
            "message_start",
            json!({ "message": {
                "id": format!("msg_scripted_{}", self.position), "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 10, "output_tokens": 1 } } }),
        )
    }

    pub fn respond(&mut self, request: &Value, answer: &Answer) -> std::io::Result<()> {
        let model = request["model"].as_str().unwrap_or("scripted").to_string();
        self.preamble(&model)?;
        let cwd = working_directory(request).unwrap_or_default();
        let abs = |p: &str| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                format!("{cwd}/{p}")
            }
        };
        let tool = |name: &str, input: Value| (name.to_string(), input);
        let (text, tools): (Option<String>, Vec<(String, Value)>) = match answer {
            Answer::Message { text, repeat } => (Some(vec![text.as_str(); *repeat as usize].join("\n\n")), vec![]),
            Answer::Shell(command) => (None, vec![tool("Bash", json!({ "command": command, "description": "Run a command" }))]),
            Answer::Read(paths) => (None, paths.iter().map(|p| tool("Read", json!({ "file_path": abs(p) }))).collect()),
            Answer::Patch(p) => (
                None,
                patch::parse(p)
                    .into_iter()
                    .map(|op| match op {
                        EditOp::Update { path, old, new } => {
                            tool("Edit", json!({ "file_path": abs(&path), "old_string": old, "new_string": new }))
                        }
                        EditOp::Add { path, content } => tool("Write", json!({ "file_path": abs(&path), "content": content })),
                        EditOp::Delete { path } => tool("Bash", json!({ "command": format!("rm -f -- '{}'", abs(&path)), "description": "Delete a file" })),
                    })
                    .collect(),
            ),
        };
        let mut index = 0;
        if let Some(text) = &text {
            self.event(
                "content_block_start",
                json!({ "index": index, "content_block": { "type": "text", "text": "" } }),
            )?;
            self.event(
                "content_block_delta",
                json!({ "index": index, "delta": { "type": "text_delta", "text": text } }),
            )?;
            self.event("content_block_stop", json!({ "index": index }))?;
            index += 1;
        }
        for (i, (name, input)) in tools.iter().enumerate() {
            let id = format!("toolu_scripted_{}_{i}", self.position);
            self.event(
                "content_block_start",
                json!({ "index": index, "content_block": { "type": "tool_use", "id": id, "name": name, "input": {} } }),
            )?;
            self.event(
                "content_block_delta",
                json!({ "index": index, "delta": { "type": "input_json_delta", "partial_json": input.to_string() } }),
            )?;
            self.event("content_block_stop", json!({ "index": index }))?;
            index += 1;
        }
        let stop = if tools.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        };
        let out_tokens = text.as_ref().map(|t| t.len() / 4 + 1).unwrap_or(16);
        self.event(
            "message_delta",
            json!({ "delta": { "stop_reason": stop, "stop_sequence": null }, "usage": { "output_tokens": out_tokens } }),
        )?;
        self.event("message_stop", json!({}))
    }
}

//! The OpenAI Responses API as codex reads it: HTTP errors with a JSON body, and
//! streamed responses as server-sent events (`response.created`, output items,
//! `response.completed` with usage).

use std::io::Write;
use std::net::TcpStream;

use serde_json::{Value, json};

use super::Answer;

pub fn error(
    conn: &mut TcpStream,
    status: u16,
    code: &str,
    message: &str,
    retry_after: Option<u32>,
) -> std::io::Result<()> {
    let reason = match status {
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let kind = if status == 401 {
        "invalid_request_error"
    } else if status == 429 {
        "rate_limit_error"
    } else {
        "server_error"
    };
    let body = json!({ "error": { "message": message, "type": kind, "code": code } }).to_string();
    let retry = retry_after
        .map(|s| format!("Retry-After: {s}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{retry}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// One streamed response.
pub struct Stream<'a> {
    conn: &'a mut TcpStream,
    seq: u64,
    id: String,
    position: usize,
}

impl<'a> Stream<'a> {
    pub fn start(conn: &'a mut TcpStream, position: usize) -> std::io::Result<Stream<'a>> {
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )?;
        Ok(Stream {
            conn,
            seq: 0,
            id: format!("resp_{position}_{}", std::process::id()),
            position,
        })
    }

    fn event(&mut self, kind: &str, mut data: Value) -> std::io::Result<()> {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        write!(self.conn, "event: {kind}\ndata: {data}\n\n")?;
        self.conn.flush()
    }

    fn response(&self, status: &str, output: Vec<Value>, usage: Option<Value>) -> Value {
        let mut r = json!({
            "id": self.id, "object": "response", "created_at": 0, "status": status,
            "model": "scripted", "output": output,
        });
        if let Some(u) = usage {
            r["usage"] = u;
        }
        r
    }

    /// `response.created` and `response.in_progress`: a stream that has started.
    pub fn preamble(&mut self) -> std::io::Result<()> {
        let r = self.response("in_progress", vec![], None);
        self.event("response.created", json!({ "response": r }))?;
        self.event("response.in_progress", json!({ "response": r }))
    }

    /// A whole response carrying `answer`, shaped for the tools the client offered.
    pub fn respond(&mut self, request: &Value, answer: &Answer) -> std::io::Result<()> {
        self.preamble()?;
        let items = self.items(request, answer);
        let mut out_tokens = 0;
        for (i, item) in items.iter().enumerate() {
            let mut pending = item.clone();
            pending["status"] = json!("in_progress");
            if item["type"] == "message" {
                pending["content"] = json!([]);
            }
            self.event(
                "response.output_item.added",
                json!({ "output_index": i, "item": pending }),
            )?;
            if item["type"] == "message" {
                let text = item["content"][0]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                out_tokens += text.len() / 4 + 1;
                self.event(
                    "response.output_text.delta",
                    json!({ "item_id": item["id"], "output_index": i, "content_index": 0, "delta": text }),
                )?;
            } else {
                out_tokens += 16;
            }
            self.event(
                "response.output_item.done",
                json!({ "output_index": i, "item": item }),
            )?;
        }
        let in_tokens = request.to_string().len() / 4;
        let usage = json!({
            "input_tokens": in_tokens, "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": out_tokens, "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": in_tokens + out_tokens,
        });
        let r = self.response("completed", items, Some(usage));
        self.event("response.completed", json!({ "response": r }))
    }

    fn items(&self, request: &Value, answer: &Answer) -> Vec<Value> {
        let tools: Vec<(String, String)> = request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["type"].as_str().unwrap_or("").to_string(),
                    t["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let offers = |kind: &str, name: &str| tools.iter().any(|(k, n)| k == kind && n == name);
        let call_id = format!("call_{}_{}", self.position, std::process::id());
        let shell_call = |command: &str| {
            if offers("function", "shell") && !offers("function", "exec_command") {
                json!({ "type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
                        "name": "shell", "status": "completed",
                        "arguments": json!({ "command": ["bash", "-lc", command] }).to_string() })
            } else {
                json!({ "type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
                        "name": "exec_command", "status": "completed",
                        "arguments": json!({ "cmd": command }).to_string() })
            }
        };
        match answer {
            Answer::Message { text, repeat } => (0..*repeat)
                .map(|i| {
                    json!({ "type": "message", "id": format!("msg_{}_{i}", self.position), "status": "completed",
                            "role": "assistant",
                            "content": [{ "type": "output_text", "text": text, "annotations": [] }] })
                })
                .collect(),
            Answer::Shell(command) => vec![shell_call(command)],
            // codex reads files with its shell when it wants to; nothing to do here.
            Answer::Read(paths) => vec![shell_call(&format!("cat -- {}", paths.join(" ")))],
            Answer::Patch(patch) => {
                let patch = if patch.ends_with('\n') { patch.clone() } else { format!("{patch}\n") };
                if offers("custom", "apply_patch") {
                    vec![json!({ "type": "custom_tool_call", "id": format!("ctc_{call_id}"), "call_id": call_id,
                                 "name": "apply_patch", "status": "completed", "input": patch })]
                } else if offers("function", "apply_patch") {
                    vec![json!({ "type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
                                 "name": "apply_patch", "status": "completed",
                                 "arguments": json!({ "input": patch }).to_string() })]
                } else {
                    // No patch tool offered: the shell form codex also recognises.
                    vec![shell_call(&format!("apply_patch <<'PATCH'\n{patch}PATCH"))]
                }
            }
        }
    }
}

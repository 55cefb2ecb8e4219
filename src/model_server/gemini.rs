//! The Gemini API as Gemini CLI reads it: `generateContent` and
//! `streamGenerateContent?alt=sse` (candidates with text or `functionCall` parts),
//! `countTokens`, errors as `{"error":{"code","message","status"}}`, and the CLI's
//! tool-less side requests (model routing, next-speaker checks) answered with JSON
//! that fits the schema they ask for.

use std::io::Write;
use std::net::TcpStream;

use serde_json::{Value, json};

use super::Answer;
use super::patch::{self, EditOp};

pub fn error(conn: &mut TcpStream, status: u16, message: &str) -> std::io::Result<()> {
    let (reason, code) = match status {
        429 => ("Too Many Requests", "RESOURCE_EXHAUSTED"),
        401 => ("Unauthorized", "UNAUTHENTICATED"),
        404 => ("Not Found", "NOT_FOUND"),
        _ => ("Internal Server Error", "INTERNAL"),
    };
    let body =
        json!({ "error": { "code": status, "message": message, "status": code } }).to_string();
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn json_reply(conn: &mut TcpStream, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

pub fn count_tokens(conn: &mut TcpStream, request: &Value) -> std::io::Result<()> {
    json_reply(
        conn,
        &json!({ "totalTokens": request.to_string().len() / 4 }),
    )
}

/// Model turns already in the conversation: its `model` contents.
pub fn position(body: &Value) -> usize {
    body["contents"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["role"] == "model").count())
        .unwrap_or(0)
}

/// Whether the CLI offered a shell tool (only in its yolo mode).
pub fn offers_shell(body: &Value) -> bool {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .any(|f| f["name"] == "run_shell_command")
}

/// Gemini CLI names its directory under "Workspace Directories" in the first message.
pub fn working_directory(body: &Value) -> Option<String> {
    let text = body.to_string();
    let marker = "Workspace Directories:**\\n  - ";
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest.find(['\\', '"']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

/// A value that fits a (Gemini-style) JSON schema: the first enum value, 1, false,
/// "scripted", and every required property filled.
fn fit(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "object" => {
            let mut obj = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in props {
                    obj.insert(k.clone(), fit(v));
                }
            }
            Value::Object(obj)
        }
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "array" => json!([]),
        _ => json!("scripted"),
    }
}

fn candidate(parts: Vec<Value>, finish: bool) -> Value {
    let mut c = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
    if finish {
        c["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [c],
        "usageMetadata": { "promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15 },
        "modelVersion": "scripted",
    })
}

/// A side request (no tools): JSON for its schema, or a short text.
pub fn side_reply(conn: &mut TcpStream, request: &Value, streaming: bool) -> std::io::Result<()> {
    let schema = &request["generationConfig"]["responseJsonSchema"];
    let schema = if schema.is_null() {
        &request["generationConfig"]["responseSchema"]
    } else {
        schema
    };
    let text = if schema.is_null() {
        "ok".to_string()
    } else {
        fit(schema).to_string()
    };
    let body = candidate(vec![json!({ "text": text })], true);
    if streaming {
        start_stream(conn)?;
        chunk(conn, &body)
    } else {
        json_reply(conn, &body)
    }
}

pub fn start_stream(conn: &mut TcpStream) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
    )?;
    conn.flush()
}

pub fn chunk(conn: &mut TcpStream, body: &Value) -> std::io::Result<()> {
    write!(conn, "data: {body}\r\n\r\n")?;
    conn.flush()
}

/// The first part of a streamed answer, for a stream that then stalls or drops.
pub fn partial(conn: &mut TcpStream) -> std::io::Result<()> {
    start_stream(conn)?;
    chunk(
        conn,
        &candidate(vec![json!({ "text": "Working on it" })], false),
    )
}

pub fn respond(
    conn: &mut TcpStream,
    request: &Value,
    answer: &Answer,
    streaming: bool,
) -> std::io::Result<()> {
    let cwd = working_directory(request).unwrap_or_default();
    let abs = |p: &str| {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{cwd}/{p}")
        }
    };
    let call = |name: &str, args: Value| json!({ "functionCall": { "name": name, "args": args } });
    let parts: Vec<Value> = match answer {
        Answer::Message { text, repeat } => vec![json!({ "text": vec![text.as_str(); *repeat as usize].join("\n\n") })],
        Answer::Shell(command) => vec![call("run_shell_command", json!({ "command": command, "description": "Run a command" }))],
        Answer::Read(paths) => paths.iter().map(|p| call("read_file", json!({ "file_path": abs(p) }))).collect(),
        Answer::Patch(p) => patch::parse(p)
            .into_iter()
            .map(|op| match op {
                EditOp::Update { path, old, new } => call(
                    "replace",
                    json!({ "file_path": abs(&path), "instruction": "Apply the scripted change.", "old_string": old, "new_string": new }),
                ),
                EditOp::Add { path, content } => call("write_file", json!({ "file_path": abs(&path), "content": content })),
                EditOp::Delete { path } => call(
                    "run_shell_command",
                    json!({ "command": format!("rm -f -- '{}'", abs(&path)), "description": "Delete a file" }),
                ),
            })
            .collect(),
    };
    let body = candidate(parts, true);
    if streaming {
        start_stream(conn)?;
        chunk(conn, &body)
    } else {
        json_reply(conn, &body)
    }
}

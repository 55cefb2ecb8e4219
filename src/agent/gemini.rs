//! The `gemini` backend: Gemini CLI, `gemini -p "" --output-format stream-json`, with
//! the prompt on stdin, in the worktree, which is trusted for the run
//! (`GEMINI_CLI_TRUST_WORKSPACE`), and an approval mode that lets it edit
//! (`auto_edit` unless configured: its file tools, which refuse paths outside the
//! workspace; `yolo` adds an unsandboxed shell). The user's own configuration (their
//! `HOME`, `~/.gemini/settings.json`) is honoured, plus `[agents.gemini]`. Its stream
//! becomes baton's events; the session id is kept for `baton resume`.
//!
//! Gemini CLI exits with the HTTP status modulo 256 on an API error, and lingers
//! about 18 s after printing its `result`; baton acts on the `result` line.

use std::ffi::OsString;

use serde_json::Value;

use super::{
    AgentContext, AgentError, AgentEvent, Backend, Cli, Gathered, Running, find_executable, text,
};
use crate::config::AgentConfig;
use crate::process::Stream;
use crate::report::Usage;

/// The npm package and version baton is tested with.
pub const GEMINI_PACKAGE: &str = "@google/gemini-cli";
pub const GEMINI_VERSION: &str = "0.61.0";

pub struct GeminiBackend {
    cfg: AgentConfig,
    exe: std::path::PathBuf,
}

impl GeminiBackend {
    pub fn new(cfg: AgentConfig) -> Result<GeminiBackend, AgentError> {
        let exe = find_executable("gemini", cfg.path.as_deref())?;
        Ok(GeminiBackend { cfg, exe })
    }

    fn argv(&self, ctx: &AgentContext) -> Vec<OsString> {
        let mode = self
            .cfg
            .permission_mode
            .clone()
            .unwrap_or_else(|| "auto_edit".into());
        let mut argv: Vec<OsString> = vec![self.exe.clone().into()];
        // The prompt comes on stdin; `-p ""` makes the run headless.
        argv.extend(
            [
                "-p",
                "",
                "--output-format",
                "stream-json",
                "--approval-mode",
            ]
            .map(OsString::from),
        );
        argv.push(mode.into());
        if let Some(session) = &ctx.resume {
            argv.extend(["--resume".into(), session.into()]);
        }
        if let Some(m) = &self.cfg.model {
            argv.extend(["-m".into(), m.into()]);
        }
        argv.extend(self.cfg.args.iter().map(OsString::from));
        argv
    }
}

impl Backend for GeminiBackend {
    fn run_async<'a>(
        &'a self,
        ctx: &'a AgentContext,
        on_event: &'a mut dyn FnMut(AgentEvent<'_>),
    ) -> Running<'a> {
        let cli = Cli {
            name: "gemini",
            argv: self.argv(ctx),
            cfg: &self.cfg,
            home_var: "HOME",
            extra_env: vec![("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into())],
            stop_after_result: true,
            parse: parse_line,
        };
        Box::pin(cli.run(ctx, on_event))
    }
}

fn parse_line(line: &str, got: &mut Gathered, on_event: &mut dyn FnMut(AgentEvent<'_>)) {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        on_event(AgentEvent::Output {
            stream: Stream::Stdout,
            line,
        });
        return;
    };
    match v["type"].as_str().unwrap_or_default() {
        "init" => {
            let id = text(&v, "session_id");
            got.session = Some(id.clone());
            on_event(AgentEvent::Session { id });
            on_event(AgentEvent::TurnStarted);
        }
        "message" if v["role"] == "assistant" => {
            let t = text(&v, "content");
            // Deltas of one answer arrive as several lines; the last answer is kept.
            if v["delta"].as_bool() == Some(true) {
                got.last_message
                    .get_or_insert_with(String::new)
                    .push_str(&t);
            } else {
                got.last_message = Some(t.clone());
            }
            on_event(AgentEvent::Message { text: t });
        }
        "tool_use" => {
            let params = &v["parameters"];
            match v["tool_name"].as_str().unwrap_or_default() {
                "run_shell_command" => on_event(AgentEvent::Command {
                    command: text(params, "command"),
                    exit_code: None,
                    status: "requested".into(),
                }),
                name @ ("replace" | "write_file") => on_event(AgentEvent::FileChange {
                    path: text(params, "file_path"),
                    kind: name.into(),
                }),
                _ => on_event(AgentEvent::Other {
                    kind: "tool_use".into(),
                    data: v.clone(),
                }),
            }
            got.last_message = None;
        }
        "result" => {
            let stats = &v["stats"];
            let usage = Usage {
                input_tokens: stats["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: stats["output_tokens"].as_u64().unwrap_or(0),
            };
            got.usage = Some(usage);
            on_event(AgentEvent::Usage {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            });
            let ok = v["status"] == "success";
            if !ok {
                let message = match &v["error"] {
                    Value::Object(e) => e
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    Value::String(s) => s.clone(),
                    _ => format!("gemini ended with status {}", v["status"]),
                };
                got.error = Some(message.clone());
                on_event(AgentEvent::Error { message });
            }
            got.result_ok = Some(ok);
        }
        "error" => {
            let message = text(&v, "message");
            got.error = Some(message.clone());
            on_event(AgentEvent::Error { message });
        }
        kind => on_event(AgentEvent::Other {
            kind: kind.to_string(),
            data: v.clone(),
        }),
    }
}

//! The `claude` backend: Claude Code, `claude -p --output-format stream-json
//! --verbose`, in the worktree, with edits allowed inside the working directory only
//! (`--permission-mode acceptEdits` unless configured), the prompt on stdin, and the
//! user's own configuration honoured (its `HOME`, settings, `ANTHROPIC_*` variables)
//! plus `[agents.claude]`. Its stream becomes baton's events; the session id is kept
//! for `baton resume` (`--resume`). As with every agent, what it claims decides
//! nothing: the worktree's diff and the checks do.

use std::ffi::OsString;

use serde_json::Value;

use super::{
    AgentContext, AgentError, AgentEvent, Backend, Cli, Gathered, Running, find_executable, text,
};
use crate::config::AgentConfig;
use crate::process::Stream;
use crate::report::Usage;

/// The npm package and version baton is tested with.
pub const CLAUDE_PACKAGE: &str = "@anthropic-ai/claude-code";
pub const CLAUDE_VERSION: &str = "2.1.197";

pub struct ClaudeBackend {
    cfg: AgentConfig,
    exe: std::path::PathBuf,
}

impl ClaudeBackend {
    pub fn new(cfg: AgentConfig) -> Result<ClaudeBackend, AgentError> {
        let exe = find_executable("claude", cfg.path.as_deref())?;
        Ok(ClaudeBackend { cfg, exe })
    }

    fn argv(&self, ctx: &AgentContext) -> Vec<OsString> {
        let mode = self
            .cfg
            .permission_mode
            .clone()
            .unwrap_or_else(|| "acceptEdits".into());
        let mut argv: Vec<OsString> = vec![self.exe.clone().into()];
        argv.extend(
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
            ]
            .map(OsString::from),
        );
        argv.push(mode.into());
        if let Some(session) = &ctx.resume {
            argv.extend(["--resume".into(), session.into()]);
        }
        if let Some(m) = &self.cfg.model {
            argv.extend(["--model".into(), m.into()]);
        }
        // `config` entries are Claude Code settings (a JSON text or a file), one each.
        for c in &self.cfg.config {
            argv.extend(["--settings".into(), c.into()]);
        }
        argv.extend(self.cfg.args.iter().map(OsString::from));
        argv
    }
}

impl Backend for ClaudeBackend {
    fn run_async<'a>(
        &'a self,
        ctx: &'a AgentContext,
        on_event: &'a mut dyn FnMut(AgentEvent<'_>),
    ) -> Running<'a> {
        let cli = Cli {
            name: "claude",
            argv: self.argv(ctx),
            cfg: &self.cfg,
            home_var: "HOME",
            extra_env: vec![],
            stop_after_result: false,
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
    match (
        v["type"].as_str().unwrap_or_default(),
        v["subtype"].as_str().unwrap_or_default(),
    ) {
        ("system", "init") => {
            let id = text(&v, "session_id");
            got.session = Some(id.clone());
            on_event(AgentEvent::Session { id });
            on_event(AgentEvent::TurnStarted);
        }
        ("assistant", _) => {
            for block in v["message"]["content"].as_array().into_iter().flatten() {
                match block["type"].as_str().unwrap_or_default() {
                    "text" => {
                        let t = text(block, "text");
                        got.last_message = Some(t.clone());
                        on_event(AgentEvent::Message { text: t });
                    }
                    "tool_use" => {
                        let input = &block["input"];
                        match block["name"].as_str().unwrap_or_default() {
                            "Bash" => on_event(AgentEvent::Command {
                                command: text(input, "command"),
                                exit_code: None,
                                status: "requested".into(),
                            }),
                            name @ ("Edit" | "Write" | "MultiEdit" | "NotebookEdit") => {
                                on_event(AgentEvent::FileChange {
                                    path: text(input, "file_path"),
                                    kind: name.to_lowercase(),
                                })
                            }
                            _ => on_event(AgentEvent::Other {
                                kind: "tool_use".into(),
                                data: block.clone(),
                            }),
                        }
                    }
                    other => on_event(AgentEvent::Other {
                        kind: other.to_string(),
                        data: block.clone(),
                    }),
                }
            }
        }
        ("result", _) => {
            let u = &v["usage"];
            let usage = Usage {
                input_tokens: u["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: u["output_tokens"].as_u64().unwrap_or(0),
            };
            got.usage = Some(usage);
            got.cost_usd = v["total_cost_usd"].as_f64();
            on_event(AgentEvent::Usage {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            });
            if v["is_error"].as_bool() == Some(true) {
                let status = v["api_error_status"]
                    .as_u64()
                    .map(|s| format!("API error {s}: "))
                    .unwrap_or_default();
                let message = format!("{status}{}", text(&v, "result"));
                got.error = Some(message.clone());
                on_event(AgentEvent::Error { message });
            }
            if let Some(denials) = v["permission_denials"].as_array().filter(|d| !d.is_empty()) {
                on_event(AgentEvent::Other {
                    kind: "permission_denials".into(),
                    data: Value::Array(denials.clone()),
                });
            }
        }
        (kind, sub) => on_event(AgentEvent::Other {
            kind: if sub.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{sub}")
            },
            data: v.clone(),
        }),
    }
}

/// `cfg` pointed at an Anthropic-compatible server (baton's scripted model), with its
/// own `HOME` so the user's Claude Code state is not touched.
pub fn pointed_at(mut cfg: AgentConfig, base_url: &str, home: &std::path::Path) -> AgentConfig {
    for (k, v) in [
        ("ANTHROPIC_BASE_URL", base_url.to_string()),
        ("ANTHROPIC_API_KEY", "scripted".to_string()),
        ("HOME", home.display().to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_string()),
        ("CLAUDE_CODE_MAX_RETRIES", "0".to_string()),
    ] {
        cfg.env.insert(k.into(), v);
    }
    cfg
}

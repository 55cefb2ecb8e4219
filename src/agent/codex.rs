//! The `codex` backend: the OpenAI Codex CLI, `codex exec --json`, in the worktree,
//! with its sandbox (`workspace-write` unless configured), the prompt on stdin (codex
//! waits for ever on an open stdin), and its own configuration honoured: `CODEX_HOME`,
//! its `config.toml` and profiles, plus `[agents.codex]` from baton's config. Its JSON
//! lines become baton's events; lines baton does not know are kept verbatim.
//!
//! codex exits 0 even when its patches were rejected or its commands failed, so
//! nothing here decides whether the work was done: the worktree's diff and the checks
//! do. A model error (429, 5xx, a dropped stream) ends with `turn.failed` and exit 1;
//! its message becomes the report's error.

use std::ffi::OsString;

use serde_json::Value;

use super::{
    AgentContext, AgentError, AgentEvent, Backend, Cli, Gathered, Running, find_executable, text,
};
use crate::config::AgentConfig;
use crate::process::Stream;
use crate::report::Usage;

/// The npm package and version baton is tested with (and `baton demo` installs).
pub const CODEX_PACKAGE: &str = "@openai/codex";
pub const CODEX_VERSION: &str = "0.169.0";

pub struct CodexBackend {
    cfg: AgentConfig,
    exe: std::path::PathBuf,
}

impl CodexBackend {
    pub fn new(cfg: AgentConfig) -> Result<CodexBackend, AgentError> {
        let exe = find_executable("codex", cfg.path.as_deref())?;
        Ok(CodexBackend { cfg, exe })
    }

    fn argv(&self, ctx: &AgentContext) -> Vec<OsString> {
        let sandbox = self
            .cfg
            .sandbox
            .clone()
            .unwrap_or_else(|| "workspace-write".into());
        let mut argv: Vec<OsString> = vec![self.exe.clone().into(), "exec".into()];
        match &ctx.resume {
            // `exec resume` has no --sandbox and no --cd: it runs where it is started.
            Some(session) => {
                argv.extend(["resume".into(), session.into(), "--json".into()]);
                argv.extend(["-c".into(), format!("sandbox_mode=\"{sandbox}\"").into()]);
            }
            None => {
                argv.extend(["--json".into(), "--cd".into(), ctx.worktree.clone().into()]);
                argv.extend(["--sandbox".into(), sandbox.into()]);
            }
        }
        // codex's workspace-write sandbox also opens /tmp and $TMPDIR by default: a
        // write there escapes the worktree (and a worktree's neighbours may live
        // there). baton closes them; `[agents.codex] config` can reopen them.
        for setting in [
            "sandbox_workspace_write.exclude_slash_tmp=true",
            "sandbox_workspace_write.exclude_tmpdir_env_var=true",
        ] {
            argv.extend(["-c".into(), setting.into()]);
        }
        if let Some(m) = &self.cfg.model {
            argv.extend(["-m".into(), m.into()]);
        }
        if let Some(p) = &self.cfg.profile {
            argv.extend(["-p".into(), p.into()]);
        }
        for c in &self.cfg.config {
            argv.extend(["-c".into(), c.into()]);
        }
        argv.extend(self.cfg.args.iter().map(OsString::from));
        // The prompt comes on stdin.
        argv.push("-".into());
        argv
    }
}

/// `cfg` pointed at an OpenAI-compatible server (baton's scripted model, for `demo`
/// and `doctor`), with its own `CODEX_HOME` so the user's codex state is not touched.
pub fn pointed_at(
    mut cfg: AgentConfig,
    base_url: &str,
    codex_home: &std::path::Path,
) -> AgentConfig {
    let provider = "baton-scripted";
    cfg.model = Some("gpt-5.5".into());
    cfg.profile = None;
    cfg.config.extend([
        format!("model_provider=\"{provider}\""),
        format!("model_providers.{provider}.name=\"{provider}\""),
        format!("model_providers.{provider}.base_url=\"{base_url}\""),
        format!("model_providers.{provider}.wire_api=\"responses\""),
        format!("model_providers.{provider}.env_key=\"BATON_SCRIPTED_KEY\""),
        format!("model_providers.{provider}.request_max_retries=0"),
        format!("model_providers.{provider}.stream_max_retries=0"),
    ]);
    cfg.env
        .insert("CODEX_HOME".into(), codex_home.display().to_string());
    cfg.env
        .insert("BATON_SCRIPTED_KEY".into(), "scripted".into());
    cfg
}

impl Backend for CodexBackend {
    fn run_async<'a>(
        &'a self,
        ctx: &'a AgentContext,
        on_event: &'a mut dyn FnMut(AgentEvent<'_>),
    ) -> Running<'a> {
        let cli = Cli {
            name: "codex",
            argv: self.argv(ctx),
            cfg: &self.cfg,
            home_var: "CODEX_HOME",
            extra_env: vec![],
            stop_after_result: false,
            parse: parse_line,
        };
        Box::pin(cli.run(ctx, on_event))
    }
}

/// One line of `codex exec --json` into events.
fn parse_line(line: &str, got: &mut Gathered, on_event: &mut dyn FnMut(AgentEvent<'_>)) {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        on_event(AgentEvent::Output {
            stream: Stream::Stdout,
            line,
        });
        return;
    };
    let kind = v["type"].as_str().unwrap_or_default();
    match kind {
        "thread.started" => {
            let id = text(&v, "thread_id");
            got.session = Some(id.clone());
            on_event(AgentEvent::Session { id });
        }
        "turn.started" => on_event(AgentEvent::TurnStarted),
        "turn.completed" => {
            let u = &v["usage"];
            let add = Usage {
                input_tokens: u["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: u["output_tokens"].as_u64().unwrap_or(0),
            };
            let total = got.usage.get_or_insert_with(Usage::default);
            total.input_tokens += add.input_tokens;
            total.output_tokens += add.output_tokens;
            on_event(AgentEvent::Usage {
                input_tokens: add.input_tokens,
                output_tokens: add.output_tokens,
            });
        }
        "turn.failed" | "error" => {
            let message = match v.get("error") {
                Some(e) if e.is_object() => text(e, "message"),
                _ => text(&v, "message"),
            };
            got.error = Some(message.clone());
            on_event(AgentEvent::Error { message });
        }
        "item.completed" => {
            let item = &v["item"];
            match item["type"].as_str().unwrap_or_default() {
                "agent_message" => {
                    let t = text(item, "text");
                    got.last_message = Some(t.clone());
                    on_event(AgentEvent::Message { text: t });
                }
                "file_change" => {
                    for change in item["changes"].as_array().into_iter().flatten() {
                        on_event(AgentEvent::FileChange {
                            path: text(change, "path"),
                            kind: text(change, "kind"),
                        });
                    }
                }
                "command_execution" => on_event(AgentEvent::Command {
                    command: text(item, "command"),
                    exit_code: item["exit_code"].as_i64(),
                    status: text(item, "status"),
                }),
                other => on_event(AgentEvent::Other {
                    kind: other.to_string(),
                    data: item.clone(),
                }),
            }
        }
        // Starts and updates repeat what completion says; kept, not acted on.
        _ => on_event(AgentEvent::Other {
            kind: kind.to_string(),
            data: v,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codex_json_lines() {
        let lines = [
            r#"{"type":"thread.started","thread_id":"t-1"}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"file_change","changes":[{"path":"/w/calc.py","kind":"update"}],"status":"completed"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"done"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":10,"output_tokens":5}}"#,
            r#"{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429 Too Many Requests"}}"#,
            "not json at all",
        ];
        let mut got = Gathered::default();
        let mut kinds = vec![];
        for l in lines {
            parse_line(l, &mut got, &mut |e| kinds.push(e.journal_entry().0));
        }
        assert_eq!(
            kinds,
            [
                "agent.session",
                "agent.file_change",
                "agent.message",
                "agent.usage",
                "agent.error",
                "agent.output"
            ]
        );
        assert_eq!(got.session.as_deref(), Some("t-1"));
        assert_eq!(got.last_message.as_deref(), Some("done"));
        assert!(got.error.unwrap().contains("429"));
        assert_eq!(got.usage.unwrap().output_tokens, 5);
    }
}

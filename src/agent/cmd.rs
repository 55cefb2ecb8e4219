//! The `cmd:` backend: any shell command as the agent (codemods, formatters, scripted
//! fixes). It runs with `sh -c` in the worktree, stdin closed, and finds the handoff
//! through `BATON_HANDOFF` (the document), `BATON_PROMPT` (its body), `BATON_RUN_ID`
//! and `BATON_WORKTREE`.

use super::{AgentContext, AgentError, AgentEvent, Backend, Running, report_from};
use crate::process;
use crate::report::AgentReport;

pub struct CmdBackend {
    command: String,
}

impl CmdBackend {
    pub fn new(command: String) -> CmdBackend {
        CmdBackend { command }
    }
}

impl Backend for CmdBackend {
    fn run_async<'a>(
        &'a self,
        ctx: &'a AgentContext,
        on_event: &'a mut dyn FnMut(AgentEvent<'_>),
    ) -> Running<'a> {
        Box::pin(self.run_here(ctx, on_event))
    }
}

impl CmdBackend {
    async fn run_here(
        &self,
        ctx: &AgentContext,
        on_event: &mut dyn FnMut(AgentEvent<'_>),
    ) -> Result<AgentReport, AgentError> {
        if ctx.resume.is_some() {
            return Err(AgentError::NoResume(format!("cmd:{}", self.command)));
        }
        let spec = process::Spec {
            command: self.command.clone(),
            cwd: ctx.worktree.clone(),
            env: ctx.env(),
            timeout: ctx.timeout,
            idle_timeout: ctx.idle_timeout,
            grace: ctx.kill_grace,
            log: Some(ctx.log.clone()),
            cancel: ctx.cancel.clone(),
            ..process::Spec::default()
        };
        let done = process::supervise(&spec, &mut |stream, line| {
            on_event(AgentEvent::Output { stream, line })
        })
        .await?;
        Ok(report_from(format!("cmd:{}", self.command), &done))
    }
}

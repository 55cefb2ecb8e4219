//! `baton model-server`

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::model_server::{ModelServer, Scenario};
use crate::{exit, process, ui};

/// Serve a scenario as the scripted model on 127.0.0.1, for trying an agent CLI by
/// hand against it (the tests, `demo` and `doctor` start their own). Runs until
/// Ctrl-C.
#[derive(Debug, Args)]
pub struct ModelServerArgs {
    /// The scenario file (see fixtures/scenarios/).
    #[arg(long)]
    scenario: PathBuf,
    /// Append every request to this file as JSON lines.
    #[arg(long)]
    log: Option<PathBuf>,
}

pub fn cmd_model_server(args: ModelServerArgs) -> Result<i32> {
    let scenario = Scenario::load(&args.scenario).map_err(|e| Error::Usage(e.to_string()))?;
    let server = ModelServer::start(scenario, args.log).map_err(|source| Error::Io {
        context: "could not start the model server".into(),
        source,
    })?;
    process::install_interrupt_handler();
    ui::progress(
        "model",
        format!(
            "serving {} at {}",
            args.scenario.display(),
            server.base_url()
        ),
    );
    crate::out!("{}", server.base_url());
    while !process::interrupted() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(exit::OK)
}

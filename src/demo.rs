//! `baton demo`: a whole delegation on a scratch repository, offline. A small Python
//! project whose test fails; the real Codex CLI, driven by baton's scripted model
//! server on 127.0.0.1, fixes it in a worktree; the test runs there; the change is
//! judged against its scope and merged. If codex is missing, the pinned version is
//! installed into baton's cache first (the only step that needs the npm registry).

use std::path::{Path, PathBuf};

use crate::config::AgentConfig;
use crate::error::{Error, Result};
use crate::{agent, git, process, ui};

const CALC: &str = "\"\"\"A tiny calculator.\"\"\"\n\n\ndef add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a - b\n";
const TEST: &str = "import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n    def test_adds(self):\n        self.assertEqual(add(2, 3), 5)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n";
const GITIGNORE: &str = "__pycache__/\n";

/// What the scripted model does: patch calc.py, run the test, report.
pub const SCENARIO: &str = r#"
description = "baton demo: codex fixes add() in calc.py"

[[turn]]
patch = """
*** Begin Patch
*** Update File: calc.py
@@
     \"\"\"Return the sum of a and b.\"\"\"
-    return a - b
+    return a + b
*** End Patch
"""

[[turn]]
shell = "python3 -m unittest -q"

[[turn]]
message = "Fixed add(): it subtracted; it now returns a + b, and the test passes."
"#;
pub const CHECK: &str = "python3 -m unittest -q";
pub const SCOPE: &str = "calc.py";

/// A scratch place: the repository and, beside it, the worktrees directory and
/// codex's own home for the demo.
pub struct Scratch {
    pub repo: PathBuf,
    pub worktrees: PathBuf,
    pub codex_home: PathBuf,
}

/// Writes the demo project under `dir` (which must be empty or absent) and commits it.
pub fn make_scratch(dir: &Path) -> Result<Scratch> {
    let io = |context: String| move |source| Error::Io { context, source };
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::Usage(format!(
            "{} is not empty; give --dir a new or empty directory",
            dir.display()
        )));
    }
    let repo = dir.join("calc");
    std::fs::create_dir_all(&repo).map_err(io(format!("could not create {}", repo.display())))?;
    for (name, text) in [
        ("calc.py", CALC),
        ("test_calc.py", TEST),
        (".gitignore", GITIGNORE),
    ] {
        let path = repo.join(name);
        std::fs::write(&path, text).map_err(io(format!("could not write {}", path.display())))?;
    }
    git::init_with_commit(&repo, "A calculator whose add() subtracts")?;
    let codex_home = dir.join("codex-home");
    std::fs::create_dir_all(&codex_home)
        .map_err(io(format!("could not create {}", codex_home.display())))?;
    Ok(Scratch {
        repo,
        worktrees: dir.join("worktrees"),
        codex_home,
    })
}

/// Finds codex, or installs the pinned version into baton's cache after saying so.
pub fn ensure_codex(cfg: &AgentConfig) -> Result<PathBuf> {
    match agent::find_executable("codex", cfg.path.as_deref()) {
        Ok(p) => Ok(p),
        Err(missing) if cfg.path.is_some() => Err(missing.into()),
        Err(missing) => {
            let cache = agent::cache_dir();
            let package = format!("{}@{}", agent::CODEX_PACKAGE, agent::CODEX_VERSION);
            if agent::find_executable("npm", None).is_err() {
                return Err(missing.into());
            }
            ui::progress(
                "demo",
                format!(
                    "codex is not installed; installing {package} into {} with npm (the one step that needs the npm registry)",
                    cache.display()
                ),
            );
            std::fs::create_dir_all(&cache).map_err(|source| Error::Io {
                context: format!("could not create {}", cache.display()),
                source,
            })?;
            let spec = process::Spec {
                command: format!(
                    "npm install --prefix '{}' --no-audit --no-fund --loglevel=error {package}",
                    cache.display()
                ),
                cwd: cache.clone(),
                timeout: Some(std::time::Duration::from_secs(600)),
                grace: std::time::Duration::from_secs(5),
                ..process::Spec::default()
            };
            let done = process::run(&spec, &mut |_, line| crate::say!("      npm  {line}"))?;
            if !done.success() {
                return Err(Error::Usage(format!(
                    "installing {package} failed; install it yourself with `npm install -g {package}`"
                )));
            }
            Ok(agent::find_executable("codex", None)?)
        }
    }
}

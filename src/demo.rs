//! `baton demo`: a whole delegation on a scratch repository, offline. A small Python
//! project whose test fails; an agent (a scripted `cmd:` fix) repairs it in a
//! worktree; the test runs there; the change is judged against its scope and merged.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::git;

const CALC: &str = "\"\"\"A tiny calculator.\"\"\"\n\n\ndef add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a - b\n";
const TEST: &str = "import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n    def test_adds(self):\n        self.assertEqual(add(2, 3), 5)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n";
const GITIGNORE: &str = "__pycache__/\n";

/// The agent the demo delegates to: a scripted fix, as a codemod would be.
pub const AGENT: &str =
    "cmd:sed -i 's/return a - b/return a + b/' calc.py && echo 'fixed add() in calc.py'";
pub const CHECK: &str = "python3 -m unittest -q";
pub const SCOPE: &str = "calc.py";

/// A scratch place: the repository and, beside it, the worktrees directory.
pub struct Scratch {
    pub repo: PathBuf,
    pub worktrees: PathBuf,
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
    Ok(Scratch {
        repo,
        worktrees: dir.join("worktrees"),
    })
}

//! `baton init`: finds the checks a repository already has (Cargo, npm scripts,
//! pytest, a Makefile, Go) and the build directories a new worktree is seeded with
//! (Cargo's `target`, `node_modules`, a Python `.venv`), and writes them to
//! `.baton/config.toml`, saying why each was chosen. It never overwrites a config the
//! user has.

use std::path::Path;

/// One detected check and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub command: String,
    pub because: String,
}

fn found(command: &str, because: impl Into<String>) -> Detected {
    Detected {
        command: command.to_string(),
        because: because.into(),
    }
}

fn read(root: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(name)).ok()
}

/// The checks for the project at `root`, lint first, then build, then tests.
pub fn detect(root: &Path) -> Vec<Detected> {
    let mut checks = vec![];
    if root.join("Cargo.toml").is_file() {
        checks.push(found(
            "cargo build --all-targets",
            "Cargo.toml: a Rust package",
        ));
        checks.push(found("cargo test", "Cargo.toml: a Rust package"));
    }
    if let Some(text) = read(root, "package.json") {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            let scripts = json.get("scripts").and_then(|s| s.as_object());
            for (script, command) in [
                ("lint", "npm run lint"),
                ("build", "npm run build"),
                ("test", "npm test"),
            ] {
                let present = scripts.and_then(|s| s.get(script)).and_then(|v| v.as_str());
                // npm's placeholder test script always fails; it is not a check.
                if present.is_some_and(|v| !v.contains("no test specified")) {
                    checks.push(found(
                        command,
                        format!("package.json has a `{script}` script"),
                    ));
                }
            }
        }
    }
    let pytest_evidence = [
        ("pytest.ini", None),
        ("conftest.py", None),
        ("pyproject.toml", Some("[tool.pytest")),
        ("setup.cfg", Some("[tool:pytest]")),
        ("tox.ini", Some("[pytest]")),
    ]
    .into_iter()
    .find(|(file, marker)| match (read(root, file), marker) {
        (Some(_), None) => true,
        (Some(text), Some(m)) => text.contains(m),
        (None, _) => false,
    })
    .map(|(file, _)| file.to_string())
    .or_else(|| has_python_tests(root).then(|| "test_*.py files".to_string()));
    if let Some(evidence) = pytest_evidence {
        checks.push(found(
            "python3 -m pytest -q",
            format!("{evidence}: pytest tests"),
        ));
    }
    if let Some(text) = read(root, "Makefile").or_else(|| read(root, "makefile")) {
        for target in ["lint", "check", "test"] {
            let prefix = format!("{target}:");
            if text.lines().any(|l| l.starts_with(&prefix)) {
                checks.push(found(
                    &format!("make {target}"),
                    format!("Makefile has a `{target}` target"),
                ));
            }
        }
    }
    if root.join("go.mod").is_file() {
        checks.push(found("go vet ./...", "go.mod: a Go module"));
        checks.push(found("go test ./...", "go.mod: a Go module"));
    }
    checks
}

/// The build directories of the project at `root` (`[worktree] warm`): what its
/// build systems write and a new worktree is seeded with.
pub fn detect_warm(root: &Path) -> Vec<Detected> {
    let mut warm = vec![];
    if root.join("Cargo.toml").is_file() {
        warm.push(found("target", "Cargo.toml: cargo builds into target/"));
    }
    if root.join("package.json").is_file() {
        warm.push(found(
            "node_modules",
            "package.json: npm installs into node_modules/",
        ));
    }
    // A virtual environment that is there (pyvenv.cfg marks one), or uv's, which
    // makes `.venv` by default.
    for dir in [".venv", "venv"] {
        if root.join(dir).join("pyvenv.cfg").is_file() {
            warm.push(found(
                dir,
                format!("{dir}/pyvenv.cfg: a Python virtual environment"),
            ));
        }
    }
    if root.join("uv.lock").is_file() && !warm.iter().any(|d| d.command == ".venv") {
        warm.push(found(
            ".venv",
            "uv.lock: uv makes its environment in .venv/",
        ));
    }
    warm
}

fn has_python_tests(root: &Path) -> bool {
    let is_test = |name: &str| name.starts_with("test_") && name.ends_with(".py");
    let scan = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| is_test(&e.file_name().to_string_lossy()))
            })
            .unwrap_or(false)
    };
    scan(root) || scan(&root.join("tests"))
}

/// The text of a new `.baton/config.toml`, with `warm` the build directories.
pub fn config_text(checks: &[Detected], warm: &[Detected]) -> String {
    let mut text = String::from(
        "# baton's configuration for this repository (see README.md of baton).\n\
         # The checks run in the worktree, in order, when a handoff names none.\n",
    );
    if checks.is_empty() {
        text.push_str(
            "# No checks were detected; add your lint, build and test commands.\nchecks = []\n",
        );
    } else {
        text.push_str("checks = [\n");
        for c in checks {
            text.push_str(&format!(
                "    {},  # {}\n",
                toml_string(&c.command),
                c.because
            ));
        }
        text.push_str("]\n");
    }
    text.push_str(
        "\n[defaults]\n\
         # agent = \"cmd:./scripts/fix.sh\"\n\
         timeout = \"20m\"\n\
         check_timeout = \"10m\"\n\
         on_pass = \"merge\"\n\
         on_fail = \"stash\"\n\
         # deny = [\"**/*.lock\", \".github/**\"]\n",
    );
    if !warm.is_empty() {
        text.push_str(
            "\n[worktree]\n\
             # Build directories a new worktree gets a copy-on-write clone of (reflink),\n\
             # from this checkout, when its lock files match; warm_copy = true copies\n\
             # them where the filesystem cannot reflink.\n\
             warm = [\n",
        );
        for w in warm {
            text.push_str(&format!(
                "    {},  # {}\n",
                toml_string(&w.command),
                w.because
            ));
        }
        text.push_str("]\n");
    }
    text
}

/// What a user needs to know once the config is written: whether to commit it,
/// where their own settings go, and what to try next.
pub fn advice(user_file: Option<&Path>) -> Vec<String> {
    let user = user_file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.config/baton/config.toml".into());
    vec![
        "commit .baton/: it is this repository's shared baton config, the same for everyone who clones it (`git add .baton && git commit -m \"baton config\"`)".into(),
        format!("your own settings, for every repository (an agent's path, model or key), go in {user}; this repository's file wins over it"),
        "next: `baton doctor` checks the agents on this machine; then `baton run --task \"...\" --agent codex --scope 'src/**'` runs these checks on the agent's change".into(),
    ]
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_ecosystem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Cargo.toml"), "[package]\nname='x'\n").unwrap();
        std::fs::write(
            root.join("package.json"),
            r#"{"scripts":{"lint":"eslint .","test":"echo \"Error: no test specified\" && exit 1"}}"#,
        )
        .unwrap();
        std::fs::write(root.join("test_x.py"), "def test_x(): pass\n").unwrap();
        std::fs::write(root.join("Makefile"), "test:\n\ttrue\n").unwrap();
        std::fs::write(root.join("go.mod"), "module x\n").unwrap();
        let commands: Vec<String> = detect(root).into_iter().map(|d| d.command).collect();
        assert_eq!(
            commands,
            [
                "cargo build --all-targets",
                "cargo test",
                "npm run lint",
                "python3 -m pytest -q",
                "make test",
                "go vet ./...",
                "go test ./..."
            ]
        );
        let parsed: crate::config::Config =
            toml::from_str(&config_text(&detect(root), &detect_warm(root))).unwrap();
        assert_eq!(parsed.checks.len(), 7);
        assert_eq!(
            parsed.worktree.warm.as_deref(),
            Some(&["target".to_string(), "node_modules".to_string()][..])
        );
    }

    #[test]
    fn detects_the_build_directories_a_worktree_is_seeded_with() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(detect_warm(root).is_empty());
        assert!(!config_text(&[], &[]).contains("[worktree]"));
        std::fs::write(root.join("Cargo.toml"), "[package]\nname='x'\n").unwrap();
        std::fs::create_dir_all(root.join(".venv")).unwrap();
        std::fs::write(root.join(".venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::write(root.join("uv.lock"), "").unwrap();
        let warm = detect_warm(root);
        let dirs: Vec<&str> = warm.iter().map(|d| d.command.as_str()).collect();
        assert_eq!(dirs, ["target", ".venv"]);
        let text = config_text(&detect(root), &warm);
        assert!(
            text.contains("warm = [\n    \"target\",  # Cargo.toml: cargo builds into target/\n"),
            "{text}"
        );
        let parsed: crate::config::Config = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed.worktree.warm.as_deref(),
            Some(&["target".to_string(), ".venv".to_string()][..])
        );
    }
}

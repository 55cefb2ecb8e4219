//! A scenario's patch (codex's `*** Begin Patch` envelope) as plain edit operations,
//! so that the same scenario drives agents whose tools are exact-string edits and
//! whole-file writes (Claude Code's Edit/Write, Gemini CLI's replace/write_file).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOp {
    /// Replace `old` (whole lines) with `new` in an existing file.
    Update {
        path: String,
        old: String,
        new: String,
    },
    Add {
        path: String,
        content: String,
    },
    Delete {
        path: String,
    },
}

impl EditOp {
    pub fn path(&self) -> &str {
        match self {
            EditOp::Update { path, .. } | EditOp::Add { path, .. } | EditOp::Delete { path } => {
                path
            }
        }
    }
}

/// Parses the envelope; each `@@` chunk of an update becomes one [`EditOp::Update`].
pub fn parse(patch: &str) -> Vec<EditOp> {
    let mut ops = vec![];
    let mut current: Option<(String, String, String)> = None; // path, old, new
    let mut adding: Option<(String, String)> = None;
    let flush_update = |cur: &mut Option<(String, String, String)>, ops: &mut Vec<EditOp>| {
        if let Some((path, old, new)) = cur.take() {
            if !old.is_empty() || !new.is_empty() {
                ops.push(EditOp::Update { path, old, new });
            }
        }
    };
    let flush_add = |add: &mut Option<(String, String)>, ops: &mut Vec<EditOp>| {
        if let Some((path, content)) = add.take() {
            ops.push(EditOp::Add { path, content });
        }
    };
    for line in patch.lines() {
        if let Some(path) = line.strip_prefix("*** Update File: ") {
            flush_update(&mut current, &mut ops);
            flush_add(&mut adding, &mut ops);
            current = Some((path.trim().to_string(), String::new(), String::new()));
        } else if let Some(path) = line.strip_prefix("*** Add File: ") {
            flush_update(&mut current, &mut ops);
            flush_add(&mut adding, &mut ops);
            adding = Some((path.trim().to_string(), String::new()));
        } else if let Some(path) = line.strip_prefix("*** Delete File: ") {
            flush_update(&mut current, &mut ops);
            flush_add(&mut adding, &mut ops);
            ops.push(EditOp::Delete {
                path: path.trim().to_string(),
            });
        } else if line.starts_with("*** ") {
            flush_update(&mut current, &mut ops);
            flush_add(&mut adding, &mut ops);
        } else if line.starts_with("@@") {
            if let Some((path, _, _)) = &current {
                let path = path.clone();
                flush_update(&mut current, &mut ops);
                current = Some((path, String::new(), String::new()));
            }
        } else if let Some((_, content)) = adding.as_mut() {
            if let Some(text) = line.strip_prefix('+') {
                content.push_str(text);
                content.push('\n');
            }
        } else if let Some((_, old, new)) = current.as_mut() {
            let (sign, text) = line.split_at(line.len().min(1));
            match sign {
                "-" => {
                    old.push_str(text);
                    old.push('\n');
                }
                "+" => {
                    new.push_str(text);
                    new.push('\n');
                }
                _ => {
                    // Context: " line", or an empty line standing for an empty context line.
                    old.push_str(text);
                    old.push('\n');
                    new.push_str(text);
                    new.push('\n');
                }
            }
        }
    }
    flush_update(&mut current, &mut ops);
    flush_add(&mut adding, &mut ops);
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_adds_and_deletes() {
        let ops = parse(
            "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n-    return a - b\n+    return a + b\n*** Add File: new.txt\n+hello\n*** Delete File: old.txt\n*** End Patch\n",
        );
        assert_eq!(
            ops,
            [
                EditOp::Update {
                    path: "calc.py".into(),
                    old: "def add(a, b):\n    return a - b\n".into(),
                    new: "def add(a, b):\n    return a + b\n".into()
                },
                EditOp::Add {
                    path: "new.txt".into(),
                    content: "hello\n".into()
                },
                EditOp::Delete {
                    path: "old.txt".into()
                },
            ]
        );
    }
}

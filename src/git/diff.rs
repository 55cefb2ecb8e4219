//! Parsing `git diff-tree -z` output (raw and numstat) into owned changes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    TypeChanged,
}

/// One path's change between two trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
    /// The path before a rename or copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub old_mode: String,
    pub new_mode: String,
    /// The old object (the commit a submodule's gitlink recorded); all zeros when added.
    #[serde(default)]
    pub old_oid: String,
    /// The new blob (for reading a symlink's target); all zeros when deleted.
    pub new_oid: String,
    /// Lines added and removed; `None` for binary files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// For a submodule whose content changed (a gitlink to another commit): the
    /// changes inside it, relative to the submodule, when its objects can be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inside: Vec<Change>,
}

impl Change {
    pub const SYMLINK_MODE: &'static str = "120000";
    pub const GITLINK_MODE: &'static str = "160000";

    pub fn mode_changed(&self) -> bool {
        self.kind == ChangeKind::Modified && self.old_mode != self.new_mode
    }

    /// The blob this change writes, whose size the scope judges: none for a deletion
    /// or for a nested repository's commit.
    pub fn written_blob(&self) -> Option<&str> {
        (self.kind != ChangeKind::Deleted && self.new_mode != Self::GITLINK_MODE)
            .then_some(self.new_oid.as_str())
    }

    /// A change of a submodule that was there before: its gitlink moved, or it was
    /// removed or replaced. (A gitlink that is new is a nested repository.)
    pub fn of_submodule(&self) -> bool {
        self.old_mode == Change::GITLINK_MODE
    }
}

fn fields(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
}

/// `raw` is `diff-tree -r -z --raw` output, `numstat` the same diff with `--numstat`.
pub fn parse(raw: &[u8], numstat: &[u8]) -> Vec<Change> {
    let mut changes = parse_raw(raw);
    add_counts(&mut changes, numstat);
    changes
}

/// The changes of `diff-tree -r -z --raw` output, without line counts.
pub fn parse_raw(raw: &[u8]) -> Vec<Change> {
    let mut changes = vec![];
    let mut it = fields(raw);
    while let Some(meta) = it.next() {
        let Some(meta) = meta.strip_prefix(':') else {
            continue;
        };
        let parts: Vec<&str> = meta.split(' ').collect();
        if parts.len() < 5 {
            continue;
        }
        let status = parts[4];
        let kind = match status.chars().next() {
            Some('A') => ChangeKind::Added,
            Some('D') => ChangeKind::Deleted,
            Some('R') => ChangeKind::Renamed,
            Some('C') => ChangeKind::Copied,
            Some('T') => ChangeKind::TypeChanged,
            _ => ChangeKind::Modified,
        };
        let first = it.next().unwrap_or_default();
        let (old_path, path) = if matches!(kind, ChangeKind::Renamed | ChangeKind::Copied) {
            (Some(first), it.next().unwrap_or_default())
        } else {
            (None, first)
        };
        changes.push(Change {
            kind,
            path,
            old_path,
            old_mode: parts[0].to_string(),
            new_mode: parts[1].to_string(),
            old_oid: parts[2].to_string(),
            new_oid: parts[3].to_string(),
            added: None,
            removed: None,
            inside: vec![],
        });
    }
    changes
}

/// Sets the line counts of `changes` from `diff-tree -r -z --numstat` output of the
/// same diff.
pub fn add_counts(changes: &mut [Change], numstat: &[u8]) {
    // Each numstat record finds its change by path through an index: a linear search
    // per record made a change of 100,000 files cost 5·10⁹ string comparisons. The
    // first change of a path keeps it, as the search found the first.
    let mut by_path: HashMap<&str, usize> = HashMap::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        by_path.entry(c.path.as_str()).or_insert(i);
    }
    let mut counts: Vec<(usize, Option<u64>, Option<u64>)> = vec![];
    // numstat -z: "added\tremoved\tpath\0", or for renames "added\tremoved\t\0old\0new\0".
    let mut it = fields(numstat);
    while let Some(record) = it.next() {
        let mut cols = record.splitn(3, '\t');
        let (Some(a), Some(r), Some(p)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        let path = if p.is_empty() {
            let _old = it.next();
            it.next().unwrap_or_default()
        } else {
            p.to_string()
        };
        if let Some(&i) = by_path.get(path.as_str()) {
            counts.push((i, a.parse().ok(), r.parse().ok()));
        }
    }
    for (i, added, removed) in counts {
        changes[i].added = added;
        changes[i].removed = removed;
    }
}

/// The line counts of each of `changes` (a raw diff's records, in order), read off
/// `patch`, the same diff as a patch: its `diff --git` sections come in the raw diff's
/// order, one per change, and count what `--numstat` counts — lines added and removed
/// in the hunks, `None` for a binary change. `None` when the patch cannot say for sure:
/// a type change (git shows it as two sections) or sections that do not pair up.
pub fn counts_from_patch(
    changes: &[Change],
    patch: &[u8],
) -> Option<Vec<(Option<u64>, Option<u64>)>> {
    if changes.iter().any(|c| c.kind == ChangeKind::TypeChanged) {
        return None;
    }
    let mut counts = Vec::with_capacity(changes.len());
    let mut current: Option<(u64, u64, bool, bool)> = None; // added, removed, binary, in hunks
    for line in patch.split(|&b| b == b'\n') {
        if line.starts_with(b"diff --git ") {
            if let Some((a, r, binary, _)) = current.take() {
                counts.push(if binary {
                    (None, None)
                } else {
                    (Some(a), Some(r))
                });
            }
            current = Some((0, 0, false, false));
            continue;
        }
        let Some((added, removed, binary, hunks)) = current.as_mut() else {
            // Text before the first section: not a patch of these changes.
            if line.is_empty() {
                continue;
            }
            return None;
        };
        if *hunks {
            match line.first() {
                Some(b'+') => *added += 1,
                Some(b'-') => *removed += 1,
                _ => {}
            }
        } else if line.starts_with(b"@@ ") {
            *hunks = true;
        } else if line.starts_with(b"GIT binary patch") || line.starts_with(b"Binary files ") {
            *binary = true;
        }
    }
    if let Some((a, r, binary, _)) = current {
        counts.push(if binary {
            (None, None)
        } else {
            (Some(a), Some(r))
        });
    }
    (counts.len() == changes.len()).then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_renames_modes_and_binary_counts() {
        let raw = b":100644 100644 aaa bbb M\0src/a.py\0:100644 100755 ccc ccc M\0run.sh\0:100644 100644 ddd ddd R100\0old.txt\0new.txt\0:000000 120000 000 eee A\0link\0";
        let numstat = b"1\t2\tsrc/a.py\0-\t-\trun.sh\0" as &[u8];
        let numstat = [numstat, b"0\t0\t\0old.txt\0new.txt\0".as_slice()].concat();
        let changes = parse(raw, &numstat);
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0].added, Some(1));
        assert_eq!(changes[0].removed, Some(2));
        assert!(changes[1].mode_changed());
        assert_eq!(changes[1].added, None);
        assert_eq!(changes[2].kind, ChangeKind::Renamed);
        assert_eq!(changes[2].old_path.as_deref(), Some("old.txt"));
        assert_eq!(changes[2].path, "new.txt");
        assert_eq!(changes[3].new_mode, Change::SYMLINK_MODE);
    }
}

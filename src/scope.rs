//! The scope stage: judges every path of a run's change against the allowed and
//! denied globs, against the rules no glob can lift (nothing under `.git`, no
//! symlink that leaves the repository, no nested repository, nothing inside a
//! submodule), and against the size limits (bytes per file, files and lines per
//! change; a limit of 0 is no limit). Pure: it takes the change, the symlink targets
//! and the file sizes as data and returns a report; it never reads git.

use std::collections::BTreeMap;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::git::{Change, ChangeKind};

#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("invalid glob `{glob}`: {reason}; fix the pattern (e.g. `src/**/*.rs`, `tests/*.py`)")]
    InvalidGlob { glob: String, reason: String },
    #[error(
        "invalid size `{0}`: write a number of bytes, or one with k, M or G (e.g. `512k`, `10M`)"
    )]
    InvalidSize(String),
}

/// A file larger than this (10 MiB) is a violation unless the limit is raised: a
/// source edit is almost never that big, a build artefact or a dump often is.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// Parses a size: a number of bytes, or one with `k`, `M` or `G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, ScopeError> {
    let t = text.trim();
    let bad = || ScopeError::InvalidSize(text.to_string());
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().trim_end_matches(['b', 'B', 'i']) {
        "" => 1,
        "k" | "K" => 1024,
        "m" | "M" => 1024 * 1024,
        "g" | "G" => 1024 * 1024 * 1024,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// Limits on the size of a change. Each of them set to 0 is no limit, as a zero
/// timeout is: a limit of zero files or lines would refuse every change there is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u64>,
}

/// A size in bytes in a config or handoff file: a number, or a string such as `"10M"`.
pub mod size_serde {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Bytes(n)) => Ok(Some(n)),
            Some(Raw::Text(t)) => super::parse_size(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    pub fn serialize<S: serde::Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_none(),
        }
    }
}

/// Bytes for a person: `12.0 MiB`, `3.4 KiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Compiled allow and deny globs.
#[derive(Debug, Clone)]
pub struct Scope {
    allow: GlobSet,
    allow_globs: Vec<String>,
    deny: GlobSet,
    deny_globs: Vec<String>,
    everything: bool,
    limits: Limits,
}

/// Why a path is or is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum PathVerdict {
    Allowed {
        by: String,
    },
    OutsideScope,
    Denied {
        by: String,
    },
    GitInternal,
    SymlinkEscapes {
        target: String,
    },
    NestedRepository,
    /// Inside the submodule at `submodule` (or the submodule itself): another
    /// repository, which baton does not land changes in.
    InsideSubmodule {
        submodule: String,
    },
    /// Bigger than `max_file_size` (the path's own `size` says by how much).
    TooLarge {
        limit: u64,
    },
}

impl PathVerdict {
    pub fn is_violation(&self) -> bool {
        !matches!(self, PathVerdict::Allowed { .. })
    }

    /// Higher is worse; a rename is judged by the worse of its two paths.
    fn severity(&self) -> u8 {
        match self {
            PathVerdict::Allowed { .. } => 0,
            PathVerdict::OutsideScope => 1,
            PathVerdict::Denied { .. } => 2,
            PathVerdict::TooLarge { .. } => 2,
            PathVerdict::NestedRepository => 3,
            PathVerdict::InsideSubmodule { .. } => 3,
            PathVerdict::SymlinkEscapes { .. } => 4,
            PathVerdict::GitInternal => 5,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            PathVerdict::Allowed { by } => format!("allowed by `{by}`"),
            PathVerdict::OutsideScope => "outside the scope".into(),
            PathVerdict::Denied { by } => format!("denied by `{by}`"),
            PathVerdict::GitInternal => "inside .git".into(),
            PathVerdict::SymlinkEscapes { target } => {
                format!("symlink to `{target}` leaves the repository")
            }
            PathVerdict::NestedRepository => "a nested git repository".into(),
            PathVerdict::InsideSubmodule { submodule } => format!(
                "inside submodule `{submodule}`, which baton does not land changes in (make them in that repository)"
            ),
            PathVerdict::TooLarge { limit } => format!(
                "over the {} limit per file (max_file_size)",
                human_size(*limit)
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JudgedPath {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub change: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(flatten)]
    pub verdict: PathVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// The file's size after the change, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// git sees it as binary (no line counts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopeReport {
    pub allowed: Vec<String>,
    pub denied: Vec<String>,
    /// No scope was given, so everything (`**`) was allowed.
    pub defaulted_to_everything: bool,
    pub paths: Vec<JudgedPath>,
    pub violations: usize,
    pub lines_added: u64,
    pub lines_removed: u64,
    /// The change-wide limits it broke (files or lines changed); each is a violation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_limits: Vec<String>,
}

impl ScopeReport {
    pub fn clean(&self) -> bool {
        self.violations == 0
    }

    pub fn summary(&self) -> String {
        let n = self.paths.len();
        let files = if n == 1 {
            "1 file".to_string()
        } else {
            format!("{n} files")
        };
        if self.clean() {
            format!(
                "{files} changed (+{} -{}), all in scope",
                self.lines_added, self.lines_removed
            )
        } else if self.over_limits.is_empty() {
            format!("{files} changed, {} out of scope", self.violations)
        } else {
            let violations = if self.violations == 1 {
                "1 violation".to_string()
            } else {
                format!("{} violations", self.violations)
            };
            format!(
                "{files} changed, {violations} ({})",
                self.over_limits.join("; ")
            )
        }
    }
}

fn compile_set(globs: &[String]) -> Result<GlobSet, ScopeError> {
    let mut set = GlobSetBuilder::new();
    for g in globs {
        set.add(compile_glob(g)?);
    }
    set.build().map_err(|e| ScopeError::InvalidGlob {
        glob: globs.join(", "),
        reason: e.kind().to_string(),
    })
}

/// `*` never crosses `/`; a trailing `/` or a bare directory name means everything
/// under it, as people mean when they write `docs/`.
fn compile_glob(glob: &str) -> Result<Glob, ScopeError> {
    let bad = |reason: String| ScopeError::InvalidGlob {
        glob: glob.to_string(),
        reason,
    };
    if glob.trim().is_empty() {
        return Err(bad("the pattern is empty".into()));
    }
    if glob.starts_with('/') || glob.split('/').any(|c| c == "..") {
        return Err(bad(
            "patterns are relative to the repository root and cannot leave it".into(),
        ));
    }
    let pattern = match glob.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => glob.to_string(),
    };
    GlobBuilder::new(&pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| bad(e.kind().to_string()))
}

/// A path no glob names on purpose, standing for "any path under" a directory.
const ANY_PATH: &str = "baton-any-path";

/// Paths a change must not touch unless the handoff names them in its scope: git's
/// own files, CI configuration, secrets, lock files.
pub const DEFAULT_DENY: &[&str] = &[
    "**/.git*",
    ".github/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    ".buildkite/**",
    "Jenkinsfile",
    "azure-pipelines.yml",
    "**/.env",
    "**/.env.*",
    "**/*.lock",
    "**/package-lock.json",
    "**/pnpm-lock.yaml",
    "**/go.sum",
];

/// The default denials that still apply given the scope: a default is dropped when
/// the scope names it (the same glob), or names a path it would deny (a glob without
/// wildcards), so that `--scope Cargo.lock` really allows Cargo.lock.
pub fn default_deny_for(scope: &[String]) -> Vec<String> {
    let literal = |g: &str| !g.contains(['*', '?', '[', '{']);
    DEFAULT_DENY
        .iter()
        .filter(|d| {
            let Ok(glob) = compile_glob(d) else {
                return true;
            };
            let matcher = glob.compile_matcher();
            !scope
                .iter()
                .any(|g| g == *d || (literal(g) && matcher.is_match(g.trim_end_matches('/'))))
        })
        .map(|d| d.to_string())
        .collect()
}

impl Scope {
    /// Compiles the globs; an empty `allow` means everything is allowed.
    pub fn compile(allow: &[String], deny: &[String]) -> Result<Scope, ScopeError> {
        let everything = allow.is_empty();
        let allow_globs = if everything {
            vec!["**".to_string()]
        } else {
            allow.to_vec()
        };
        Ok(Scope {
            allow: compile_set(&allow_globs)?,
            allow_globs,
            deny: compile_set(deny)?,
            deny_globs: deny.to_vec(),
            everything,
            limits: Limits::default(),
        })
    }

    /// The same scope, judging sizes against `limits` too.
    pub fn with_limits(mut self, limits: Limits) -> Scope {
        self.limits = limits;
        self
    }

    pub fn allowed_globs(&self) -> &[String] {
        &self.allow_globs
    }

    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// Judges one path by the globs and the fixed rules.
    pub fn judge_path(&self, path: &str) -> PathVerdict {
        if path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
            return PathVerdict::GitInternal;
        }
        if let Some(i) = self.deny.matches(path).first() {
            return PathVerdict::Denied {
                by: self.deny_globs[*i].clone(),
            };
        }
        match self.allow.matches(path).first() {
            Some(i) => PathVerdict::Allowed {
                by: self.allow_globs[*i].clone(),
            },
            None => PathVerdict::OutsideScope,
        }
    }

    /// Judges a whole change. `symlink_targets` maps a symlink's path to its target,
    /// `sizes` a file's path to its size after the change.
    pub fn judge(
        &self,
        changes: &[Change],
        symlink_targets: &BTreeMap<String, String>,
        sizes: &BTreeMap<String, u64>,
    ) -> ScopeReport {
        let mut paths = vec![];
        for c in changes {
            if c.of_submodule() {
                paths.extend(inside_submodule(c));
                continue;
            }
            let mut verdict = self.judge_path(&c.path);
            if let Some(old) = &c.old_path {
                let old_verdict = self.judge_path(old);
                if old_verdict.severity() > verdict.severity() {
                    verdict = old_verdict;
                }
            }
            if c.kind != ChangeKind::Deleted {
                if c.new_mode == Change::GITLINK_MODE {
                    verdict = PathVerdict::NestedRepository;
                } else if let Some(target) = symlink_targets.get(&c.path) {
                    if !symlink_stays_inside(&c.path, target) {
                        verdict = PathVerdict::SymlinkEscapes {
                            target: target.clone(),
                        };
                    }
                }
            }
            let size = sizes.get(&c.path).copied();
            let limit = self.limits.max_file_size.unwrap_or(DEFAULT_MAX_FILE_SIZE);
            let too_large = PathVerdict::TooLarge { limit };
            if size.is_some_and(|s| limit > 0 && s > limit)
                && verdict.severity() <= too_large.severity()
            {
                verdict = too_large;
            }
            let mode = (c.mode_changed() || c.kind == ChangeKind::TypeChanged)
                .then(|| format!("{} -> {}", c.old_mode, c.new_mode));
            paths.push(JudgedPath {
                path: c.path.clone(),
                old_path: c.old_path.clone(),
                change: c.kind,
                mode,
                verdict,
                added: c.added,
                removed: c.removed,
                size,
                binary: c.kind != ChangeKind::Deleted
                    && c.added.is_none()
                    && c.new_mode != Change::GITLINK_MODE,
            });
        }
        let lines_added: u64 = paths.iter().filter_map(|p| p.added).sum();
        let lines_removed: u64 = paths.iter().filter_map(|p| p.removed).sum();
        let mut over_limits = vec![];
        let limit = |max: Option<u64>| max.filter(|m| *m > 0);
        if let Some(max) = limit(self.limits.max_files).filter(|m| paths.len() as u64 > *m) {
            over_limits.push(format!("{} files changed, max_files is {max}", paths.len()));
        }
        let lines = lines_added + lines_removed;
        if let Some(max) = limit(self.limits.max_lines).filter(|m| lines > *m) {
            over_limits.push(format!("{lines} lines changed, max_lines is {max}"));
        }
        ScopeReport {
            allowed: self.allow_globs.clone(),
            denied: self.deny_globs.clone(),
            defaulted_to_everything: self.everything,
            violations: paths.iter().filter(|p| p.verdict.is_violation()).count()
                + over_limits.len(),
            lines_added,
            lines_removed,
            paths,
            over_limits,
        }
    }

    /// The first allowed glob by which a change could reach into the submodule at
    /// `path`: one that names a path under it, or matches a path under it that the
    /// submodule has (`files`, relative to it, when its objects are here) or any
    /// path at all there (`dir/**`). `None` when the denials cover the whole
    /// submodule, and for the default scope: nobody asked for the submodule, and a
    /// change inside it is judged all the same.
    pub fn reaching_into(&self, path: &str, files: &[String]) -> Option<&str> {
        if self.everything {
            return None;
        }
        let any = format!("{path}/{ANY_PATH}");
        if self.deny.is_match(path) || self.deny.is_match(&any) {
            return None;
        }
        let under: Vec<String> = files
            .iter()
            .map(|f| format!("{path}/{f}"))
            .filter(|p| !self.deny.is_match(p))
            .collect();
        let dir: Vec<&str> = path.split('/').collect();
        self.allow_globs
            .iter()
            .find(|glob| {
                let literal: Vec<&str> = glob
                    .trim_end_matches('/')
                    .split('/')
                    .take_while(|c| !c.contains(['*', '?', '[', '{', '\\']))
                    .collect();
                if literal.starts_with(&dir) {
                    return true;
                }
                let Ok(matcher) = compile_glob(glob).map(|g| g.compile_matcher()) else {
                    return false;
                };
                matcher.is_match(&any) || under.iter().any(|p| matcher.is_match(p))
            })
            .map(String::as_str)
    }
}

/// A change of a submodule, judged path by path inside it when its content could be
/// read, else as the submodule's own path: a violation either way, since the
/// submodule is another repository, and the commit that holds the change is one the
/// user's copy of it does not have.
fn inside_submodule(c: &Change) -> Vec<JudgedPath> {
    let verdict = PathVerdict::InsideSubmodule {
        submodule: c.path.clone(),
    };
    let mode = |c: &Change| {
        (c.mode_changed() || c.kind == ChangeKind::TypeChanged)
            .then(|| format!("{} -> {}", c.old_mode, c.new_mode))
    };
    if c.inside.is_empty() {
        return vec![JudgedPath {
            path: c.path.clone(),
            old_path: None,
            change: c.kind,
            mode: mode(c),
            verdict,
            added: None,
            removed: None,
            size: None,
            binary: false,
        }];
    }
    c.inside
        .iter()
        .map(|i| JudgedPath {
            path: format!("{}/{}", c.path, i.path),
            old_path: i.old_path.as_ref().map(|o| format!("{}/{o}", c.path)),
            change: i.kind,
            mode: mode(i),
            verdict: verdict.clone(),
            added: i.added,
            removed: i.removed,
            size: None,
            binary: i.kind != ChangeKind::Deleted
                && i.added.is_none()
                && i.new_mode != Change::GITLINK_MODE,
        })
        .collect()
}

/// True when a symlink at `link` (relative to the root) with `target` resolves, by its
/// text alone, to a place inside the repository and outside `.git`.
fn symlink_stays_inside(link: &str, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return false;
                }
            }
            c => {
                if c.eq_ignore_ascii_case(".git") {
                    return false;
                }
                parts.push(c);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn star_does_not_cross_slash() {
        let scope = Scope::compile(&s(&["src/*.rs", "docs/"]), &[]).unwrap();
        assert!(!scope.judge_path("src/lib.rs").is_violation());
        assert_eq!(scope.judge_path("src/a/b.rs"), PathVerdict::OutsideScope);
        assert!(!scope.judge_path("docs/a/b.md").is_violation());
    }

    #[test]
    fn deny_wins_inside_scope_and_git_is_always_out() {
        let scope = Scope::compile(&s(&["**"]), &s(&["**/*.lock"])).unwrap();
        assert!(matches!(
            scope.judge_path("a/Cargo.lock"),
            PathVerdict::Denied { .. }
        ));
        assert_eq!(
            scope.judge_path("sub/.git/config"),
            PathVerdict::GitInternal
        );
    }

    #[test]
    fn default_denials_give_way_to_what_the_scope_names() {
        let deny = default_deny_for(&s(&["src/**"]));
        let scope = Scope::compile(&s(&["**"]), &deny).unwrap();
        for p in [
            ".gitignore",
            "sub/.gitmodules",
            ".github/workflows/ci.yml",
            "Cargo.lock",
            ".env",
            "a/.env.local",
        ] {
            assert!(
                matches!(scope.judge_path(p), PathVerdict::Denied { .. }),
                "{p}"
            );
        }
        assert!(!scope.judge_path("src/env.rs").is_violation());
        let named = default_deny_for(&s(&["Cargo.lock", ".github/**", "src/**"]));
        assert!(
            !named.contains(&"**/*.lock".to_string()) && !named.contains(&".github/**".to_string())
        );
        assert!(named.contains(&"**/.env".to_string()));
    }

    #[test]
    fn invalid_globs_are_named() {
        let err = Scope::compile(&s(&["src/[a"]), &[]).unwrap_err();
        assert!(err.to_string().contains("src/[a"));
        assert!(Scope::compile(&s(&["../x"]), &[]).is_err());
    }

    fn change(kind: ChangeKind, path: &str, old_mode: &str, new_mode: &str) -> Change {
        Change {
            kind,
            path: path.into(),
            old_path: None,
            old_mode: old_mode.into(),
            new_mode: new_mode.into(),
            old_oid: "1".repeat(40),
            new_oid: "2".repeat(40),
            added: Some(5),
            removed: Some(0),
            inside: vec![],
        }
    }

    #[test]
    fn zero_limits_are_no_limits() {
        let add = |p| change(ChangeKind::Added, p, "000000", "100644");
        let changes = [add("a.txt"), add("b.txt")];
        let sizes = BTreeMap::from([("a.txt".to_string(), 1u64 << 40)]);
        let zero = Limits {
            max_file_size: Some(0),
            max_files: Some(0),
            max_lines: Some(0),
        };
        let judge = |limits| {
            Scope::compile(&[], &[]).unwrap().with_limits(limits).judge(
                &changes,
                &BTreeMap::new(),
                &sizes,
            )
        };
        assert!(judge(zero).clean());
        let one = Limits {
            max_files: Some(1),
            ..zero
        };
        assert!(!judge(one).clean());
    }

    #[test]
    fn a_change_inside_a_submodule_is_a_violation_whatever_the_globs_say() {
        let gitlink = Change {
            added: None,
            removed: None,
            inside: vec![change(ChangeKind::Modified, "lib.txt", "100644", "100644")],
            ..change(
                ChangeKind::Modified,
                "vendor/lib",
                Change::GITLINK_MODE,
                Change::GITLINK_MODE,
            )
        };
        let scope = Scope::compile(&[], &[]).unwrap();
        let judge =
            |c: &Change| scope.judge(std::slice::from_ref(c), &BTreeMap::new(), &BTreeMap::new());
        let report = judge(&gitlink);
        assert_eq!(report.violations, 1);
        assert_eq!(report.paths[0].path, "vendor/lib/lib.txt");
        assert_eq!(
            report.paths[0].verdict,
            PathVerdict::InsideSubmodule {
                submodule: "vendor/lib".into()
            }
        );
        // Its content unknown, the submodule's own path stands for it.
        let bare = Change {
            inside: vec![],
            ..gitlink
        };
        let report = judge(&bare);
        assert_eq!(report.paths[0].path, "vendor/lib");
        assert!(report.paths[0].verdict.is_violation());
    }

    #[test]
    fn a_scope_reaches_into_a_submodule_by_name_by_wildcard_or_by_its_files() {
        let files = s(&["lib.txt", "src/f.c"]);
        let reach = |allow: &[&str], deny: &[&str]| {
            Scope::compile(&s(allow), &s(deny))
                .unwrap()
                .reaching_into("vendor/lib", &files)
                .map(str::to_string)
        };
        for glob in [
            "vendor/lib",
            "vendor/lib/",
            "vendor/lib/src/*.c",
            "vendor/**",
            "**",
            "**/*.c",
        ] {
            assert_eq!(
                reach(&["src/**", glob], &[]).as_deref(),
                Some(glob),
                "{glob}"
            );
        }
        for glob in [
            "vendor/*",
            "src/**",
            "*.c",
            "vendor/other/**",
            "vendor/libs/**",
        ] {
            assert_eq!(reach(&[glob], &[]), None, "{glob}");
        }
        assert_eq!(reach(&["**"], &["vendor/lib/"]), None);
        assert_eq!(reach(&["**/*.c"], &["**/*.c"]), None);
        assert_eq!(reach(&[], &[]), None, "the default scope asks for nothing");
        // Without the submodule's files, only names and wildcards can tell.
        let blind = Scope::compile(&s(&["**/*.c"]), &[]).unwrap();
        assert_eq!(blind.reaching_into("vendor/lib", &[]), None);
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(symlink_stays_inside("a/link", "../b.txt"));
        assert!(!symlink_stays_inside("a/link", "../../etc/passwd"));
        assert!(!symlink_stays_inside("link", "/etc/passwd"));
        assert!(!symlink_stays_inside("link", ".git/config"));
    }
}

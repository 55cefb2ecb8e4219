//! The handoff stage: the document that says what a run is to do. It owns the format
//! (TOML front matter between `+++` lines — the machine-readable contract — and a
//! Markdown body, the prompt the agent receives) and the templates that write new
//! handoffs: one layout the built-in kinds share, each kind's parts, the repair prompt,
//! and a repository's overrides of any of them. It knows nothing of agents, git or the
//! journal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use handlebars::{Handlebars, RenderErrorReason, TemplateErrorReason};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("could not read the handoff {}: {source}; check the path", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the handoff has no front matter; it must start with a `+++` line, the TOML contract, and another `+++` line (write one with `baton handoff new`)"
    )]
    NoFrontMatter,
    #[error("the handoff's front matter is not closed; add a `+++` line after the TOML contract")]
    UnclosedFrontMatter,
    #[error("malformed front matter: {message}; fix the TOML between the `+++` lines")]
    FrontMatter { message: String },
    /// A value that parses but that a run would refuse (see `config::check_settings`).
    #[error("front matter `{field}` at line {line}: {problem}")]
    Field {
        field: String,
        line: usize,
        problem: String,
    },
    /// Any of the above, in the handoff file it was found in.
    #[error("{}: {inner}", path.display())]
    InFile {
        path: PathBuf,
        inner: Box<HandoffError>,
    },
    #[error("the handoff has no task; set `task = \"...\"` in its front matter")]
    NoTask,
    #[error("unknown template `{name}`; choose one of: {available}")]
    UnknownTemplate { name: String, available: String },
    #[error(
        "template `{template}` needs the field `{field}`, which nobody gave; pass it with `--var {field}=VALUE`"
    )]
    MissingField { template: String, field: String },
    #[error("template `{template}` does not render: {message}; fix {file}")]
    Template {
        template: String,
        /// The file at fault: the template's own, or the layout it renders through.
        file: String,
        message: String,
    },
    #[error("invalid --var `{0}`; write it as KEY=VALUE")]
    BadVar(String),
}

/// The machine-readable contract of a run, as written in the front matter: the one
/// settings type every layer shares (a handoff must set its `task`).
pub type Contract = crate::settings::Settings;

#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    pub contract: Contract,
    /// The prompt, exactly as the agent receives it.
    pub body: String,
}

const FENCE: &str = "+++";

impl Handoff {
    pub fn load(path: &Path) -> Result<Handoff, HandoffError> {
        let text = std::fs::read_to_string(path).map_err(|source| HandoffError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Handoff::parse(&text).map_err(|e| HandoffError::InFile {
            path: path.to_path_buf(),
            inner: Box::new(e),
        })
    }

    pub fn parse(text: &str) -> Result<Handoff, HandoffError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.split_inclusive('\n');
        match lines.next() {
            Some(first) if first.trim_end() == FENCE => {}
            _ => return Err(HandoffError::NoFrontMatter),
        }
        let mut front = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line.trim_end() == FENCE {
                closed = true;
                break;
            }
            front.push_str(line);
        }
        if !closed {
            return Err(HandoffError::UnclosedFrontMatter);
        }
        let body: String = lines.collect();
        let contract: Contract = toml::from_str(&front).map_err(|e| {
            // Point at the line (its number in the whole file, counting the fence),
            // and quote it, so the key at fault is named.
            let place = e.span().map(|span| {
                let start = front[..span.start].rfind('\n').map_or(0, |i| i + 1);
                let end = front[span.start..]
                    .find('\n')
                    .map_or(front.len(), |i| span.start + i);
                let line = front[..span.start].matches('\n').count() + 2;
                format!(" at line {line}: `{}`", front[start..end].trim())
            });
            HandoffError::FrontMatter {
                message: e.message().trim().to_string() + &place.unwrap_or_default(),
            }
        })?;
        if let Some(bad) = crate::config::check_settings(&contract) {
            use crate::config::Key;
            let mut keys = vec![Key::Name(bad.field)];
            keys.extend(bad.index.map(Key::Index));
            return Err(HandoffError::Field {
                field: bad.field.to_string(),
                // The fence is the file's first line.
                line: crate::config::line_of(&front, &keys).map_or(1, |l| l + 1),
                problem: bad.problem,
            });
        }
        if contract.task_text().trim().is_empty() {
            return Err(HandoffError::NoTask);
        }
        Ok(Handoff {
            contract,
            body: body.trim_start_matches('\n').to_string(),
        })
    }

    /// The document as written to disk: front matter, then body.
    pub fn to_document(&self) -> String {
        // Serializing a plain struct of strings, lists and strings cannot fail.
        let front = toml::to_string(&self.contract).unwrap_or_default();
        format!("{FENCE}\n{front}{FENCE}\n{}", self.body)
    }
}

/// What a new handoff is made from.
#[derive(Debug, Clone, Default)]
pub struct NewHandoff {
    pub template: String,
    pub task: String,
    pub context: String,
    pub scope: Vec<String>,
    pub deny: Vec<String>,
    pub checks: Vec<String>,
    pub requirements: Vec<String>,
    pub patterns: Vec<String>,
    pub notes: String,
    pub agent: Option<String>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// Extra fields for a repository's own templates, from `--var KEY=VALUE`.
    pub vars: BTreeMap<String, String>,
}

pub fn parse_var(text: &str) -> Result<(String, String), HandoffError> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(HandoffError::BadVar(text.to_string())),
    }
}

/// The built-in kinds. Each file holds only what its kind says differently (its
/// parts, as inline partials) and renders them through [`LAYOUT`].
const BUILTIN: &[(&str, &str)] = &[
    (
        "implement",
        include_str!("../../templates/implement.md.hbs"),
    ),
    ("bugfix", include_str!("../../templates/bugfix.md.hbs")),
    ("refactor", include_str!("../../templates/refactor.md.hbs")),
    ("tests", include_str!("../../templates/tests.md.hbs")),
    ("docs", include_str!("../../templates/docs.md.hbs")),
    ("review", include_str!("../../templates/review.md.hbs")),
];

/// The structure every built-in kind shares: the sections, the lists of globs and
/// checks, and the sentences no kind changes.
const LAYOUT: &str = include_str!("../../templates/layout.md.hbs");

/// The partial name a kind calls the layout by (`{{#> layout}}`), and so the stem of
/// the file that overrides it. It is not a template of its own: rendered alone it has
/// no parts.
const LAYOUT_NAME: &str = "layout";

/// A template's text and the file it came from, which every error about it names:
/// the only thing a user can do about a template that does not render is fix its file.
struct Source {
    text: String,
    file: String,
}

impl Source {
    fn builtin(name: &str, text: &str) -> Source {
        Source {
            text: text.to_string(),
            file: format!("templates/{name}.md.hbs (built in)"),
        }
    }

    /// The repository's `NAME.md.hbs`, if it has one.
    fn repo(name: &str, repo_templates: Option<&Path>) -> Result<Option<Source>, HandoffError> {
        let Some(path) = repo_templates
            .map(|dir| dir.join(format!("{name}.md.hbs")))
            .filter(|path| path.is_file())
        else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| HandoffError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Some(Source {
            text,
            file: path.display().to_string(),
        }))
    }

    /// The error for this template's text that does not parse or render.
    fn error(&self, template: &str, message: String) -> HandoffError {
        HandoffError::Template {
            template: template.to_string(),
            file: self.file.clone(),
            message,
        }
    }
}

/// A registry as every baton template is rendered with: strict, so a field nobody gave
/// is an error rather than an empty string, and without HTML escaping, since handoffs
/// are Markdown.
fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb
}

/// Registers `source` under `name`, or says on one line where it does not parse
/// (handlebars' own message spans several, with a drawing of the line, and a syntax
/// error lists every token the parser would have taken, which helps nobody).
fn register(
    hb: &mut Handlebars<'static>,
    template: &str,
    name: &str,
    source: &Source,
) -> Result<(), HandoffError> {
    hb.register_template_string(name, &source.text)
        .map_err(|e| {
            let place = e
                .pos()
                .map(|(line, col)| format!(" at line {line}, column {col}"))
                .unwrap_or_default();
            let reason = match e.reason() {
                TemplateErrorReason::InvalidSyntax(_) => "invalid handlebars syntax".to_string(),
                other => other.to_string(),
            };
            source.error(template, format!("{reason}{place}"))
        })
}

/// A render error on one line, with the place when handlebars knows it.
fn render_message(e: &handlebars::RenderError) -> String {
    match (e.line_no, e.column_no) {
        (Some(line), Some(col)) => format!("{} at line {line}, column {col}", e.reason()),
        _ => e.reason().to_string(),
    }
}

/// What a repair round tells the agent: the failing checks and the paths out of scope.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repair {
    pub task: String,
    pub round: u32,
    pub rounds: u32,
    pub checks: Vec<FailedCheck>,
    pub violations: Vec<Violation>,
    pub allowed: Vec<String>,
    pub denied: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedCheck {
    pub command: String,
    pub status: String,
    pub exit_code: Option<i32>,
    pub tail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub path: String,
    pub reason: String,
}

const REPAIR: &str = include_str!("../../templates/repair.md.hbs");

/// The follow-up prompt of a repair round (`templates/repair.md.hbs`, or the
/// repository's own `repair.md.hbs`). It does not use the layout.
pub fn render_repair(
    repair: &Repair,
    repo_templates: Option<&Path>,
) -> Result<String, HandoffError> {
    let source = Source::repo("repair", repo_templates)?
        .unwrap_or_else(|| Source::builtin("repair", REPAIR));
    let mut hb = registry();
    register(&mut hb, "repair", "repair", &source)?;
    hb.render("repair", repair)
        .map_err(|e| source.error("repair", render_message(&e)))
}

/// The names of the templates available in a repository (built-in and its own). The
/// layout is not one: a repository's `layout.md.hbs` changes the built-in kinds.
pub fn template_names(repo_templates: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(dir) = repo_templates {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                if let Some(name) = file.strip_suffix(".md.hbs") {
                    if name != LAYOUT_NAME {
                        names.push(name.to_string());
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The text of the template `name`: the repository's own file first, then the
/// built-in one.
fn template_source(name: &str, repo_templates: Option<&Path>) -> Result<Source, HandoffError> {
    let unknown = || HandoffError::UnknownTemplate {
        name: name.to_string(),
        available: template_names(repo_templates).join(", "),
    };
    if name == LAYOUT_NAME {
        return Err(unknown());
    }
    if let Some(source) = Source::repo(name, repo_templates)? {
        return Ok(source);
    }
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Source::builtin(n, text))
        .ok_or_else(unknown)
}

/// Writes a new handoff from a template (the repository's `.baton/templates/NAME.md.hbs`
/// first, then the built-in one), with the layout available to it as `{{#> layout}}`
/// (the repository's `layout.md.hbs` first, then the built-in one). Rendering is
/// strict: a field the template uses and nobody gave is an error naming it.
pub fn render_new(
    new: &NewHandoff,
    repo_templates: Option<&Path>,
) -> Result<Handoff, HandoffError> {
    let source = template_source(&new.template, repo_templates)?;
    let layout = Source::repo(LAYOUT_NAME, repo_templates)?
        .unwrap_or_else(|| Source::builtin(LAYOUT_NAME, LAYOUT));
    let mut hb = registry();
    register(&mut hb, &new.template, &new.template, &source)?;
    // Registered even for a template that does not call it: a broken layout file is
    // named at once rather than the first time a kind happens to use it.
    register(&mut hb, &new.template, LAYOUT_NAME, &layout)?;

    let mut data = serde_json::Map::new();
    for (k, v) in &new.vars {
        data.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    let fixed = serde_json::json!({
        "task": new.task,
        "context": new.context.trim(),
        "scope": new.scope,
        "scope_all": new.scope.is_empty(),
        "deny": new.deny,
        "checks": new.checks,
        "requirements": new.requirements,
        "patterns": new.patterns,
        "notes": new.notes.trim(),
        "template": new.template,
    });
    if let serde_json::Value::Object(fixed) = fixed {
        data.extend(fixed);
    }
    let body = hb
        .render(&new.template, &serde_json::Value::Object(data))
        .map_err(|e| match e.reason() {
            RenderErrorReason::MissingVariable(Some(field)) => HandoffError::MissingField {
                template: new.template.clone(),
                field: field.clone(),
            },
            // handlebars names the template, or the partial, it was rendering.
            _ if e.template_name.as_deref() == Some(LAYOUT_NAME) => {
                layout.error(&new.template, render_message(&e))
            }
            _ => source.error(&new.template, render_message(&e)),
        })?;
    Ok(Handoff {
        contract: Contract {
            task: Some(new.task.clone()),
            template: Some(new.template.clone()),
            agent: new.agent.clone(),
            scope: (!new.scope.is_empty()).then(|| new.scope.clone()),
            deny: (!new.deny.is_empty()).then(|| new.deny.clone()),
            checks: (!new.checks.is_empty()).then(|| new.checks.clone()),
            timeout: new.timeout,
            idle_timeout: new.idle_timeout,
            ..Contract::default()
        },
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_round_trips() {
        let new = NewHandoff {
            template: "bugfix".into(),
            task: "Fix add() so it adds".into(),
            scope: vec!["calc.py".into()],
            checks: vec!["pytest -q".into()],
            timeout: Some(Duration::from_secs(1200)),
            ..Default::default()
        };
        let h = render_new(&new, None).unwrap();
        assert!(h.body.contains("Fix add() so it adds"));
        let again = Handoff::parse(&h.to_document()).unwrap();
        assert_eq!(again, h);
    }

    #[test]
    fn malformed_front_matter_is_named() {
        assert!(matches!(
            Handoff::parse("# no front"),
            Err(HandoffError::NoFrontMatter)
        ));
        assert!(matches!(
            Handoff::parse("+++\ntask = \"x\"\n"),
            Err(HandoffError::UnclosedFrontMatter)
        ));
        let err = Handoff::parse("+++\ntask = \"x\"\nscope = 3\n+++\nbody").unwrap_err();
        assert!(err.to_string().contains("malformed front matter"), "{err}");
        let err = Handoff::parse("+++\ntask = \"x\"\nscopes = []\n+++\nbody").unwrap_err();
        assert!(err.to_string().contains("scopes"), "{err}");
    }

    /// The built-in kinds, as `--template` names them.
    const KINDS: [&str; 6] = ["implement", "bugfix", "refactor", "tests", "docs", "review"];

    /// Every field a built-in template reads, each given, several of them lists of
    /// more than one; the text carries `<`, `&` and quotes to pin that nothing is
    /// HTML-escaped, and context and notes carry the blank lines that get trimmed.
    fn rich(template: &str) -> NewHandoff {
        NewHandoff {
            template: template.into(),
            task: "Make add() return a + b for \"big\" <ints> & floats".into(),
            context:
                "\n  add() in src/calc.py returns a - b.\n\nSee issue #12 <urgent> & \"soon\".\n\n"
                    .into(),
            scope: vec!["src/calc.py".into(), "tests/**".into(), "docs/".into()],
            deny: vec!["**/*.lock".into(), ".github/**".into()],
            checks: vec!["ruff check .".into(), "pytest -q tests/test_calc.py".into()],
            requirements: vec![
                "Keep the signature `add(a, b)`".into(),
                "Raise TypeError for strings & None".into(),
            ],
            patterns: vec![
                "Error handling as in src/parse.py".into(),
                "Tests as in tests/test_parse.py".into(),
            ],
            notes: "\nThe CI runs Python 3.12.\nAsk before adding <deps>.\n".into(),
            agent: Some("codex".into()),
            timeout: Some(Duration::from_secs(1200)),
            vars: BTreeMap::from([("ticket".into(), "ABC-1".into())]),
            ..Default::default()
        }
    }

    /// A task and nothing else: no scope (so `scope_all`), no deny, no checks.
    fn minimal(template: &str) -> NewHandoff {
        NewHandoff {
            template: template.into(),
            task: "Fix add()".into(),
            ..Default::default()
        }
    }

    /// A scope without a deny list, one check, and no prose fields.
    fn scoped(template: &str) -> NewHandoff {
        NewHandoff {
            template: template.into(),
            task: "Fix add()".into(),
            scope: vec!["src/calc.py".into()],
            checks: vec!["pytest -q".into()],
            ..Default::default()
        }
    }

    /// The body each built-in template writes, pinned byte for byte: moving text
    /// between the templates' files must not change a single rendered character.
    #[test]
    fn built_in_templates_render_as_pinned() {
        for kind in KINDS {
            for (inputs, new) in [
                ("rich", rich(kind)),
                ("scoped", scoped(kind)),
                ("minimal", minimal(kind)),
            ] {
                let body = render_new(&new, None).unwrap().body;
                // insta compares text with trailing whitespace trimmed and CRLF read
                // as LF; these two pin what it cannot see.
                assert_eq!(body, format!("{}\n", body.trim_end()), "{kind} {inputs}");
                assert!(!body.contains('\r'), "{kind} {inputs}");
                insta::assert_snapshot!(format!("{kind}_{inputs}"), body);
            }
        }
    }

    #[test]
    fn strict_templates_name_the_missing_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ticket.md.hbs"),
            "# {{task}}\nTicket {{ticket}}\n",
        )
        .unwrap();
        let new = NewHandoff {
            template: "ticket".into(),
            task: "t".into(),
            ..Default::default()
        };
        let err = render_new(&new, Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("`ticket`"), "{err}");
    }

    /// A repository's `layout.md.hbs` reshapes every built-in kind, each still with its
    /// own parts, and a kind a repository writes as parts renders through it too.
    #[test]
    fn a_repository_layout_applies_to_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("layout.md.hbs"),
            "# {{task}} ({{template}})\n\n{{> intro}} Mine.\n\n{{> rules}}\n{{> closing}}\n",
        )
        .unwrap();
        let bugfix = render_new(&minimal("bugfix"), Some(dir.path()))
            .unwrap()
            .body;
        assert!(
            bugfix.starts_with("# Fix add() (bugfix)\n\nThis is a **bugfix**: "),
            "{bugfix}"
        );
        assert!(bugfix.contains("\n- Reproduce the bug first"), "{bugfix}");
        assert!(!bugfix.contains("## Scope"), "{bugfix}");
        let review = render_new(&minimal("review"), Some(dir.path()))
            .unwrap()
            .body;
        assert!(
            review.contains("- Save the review as `REVIEW.md`."),
            "{review}"
        );

        std::fs::write(
            dir.path().join("ticket.md.hbs"),
            "{{#> layout}}{{#*inline \"intro\"}}Close {{ticket}}.{{/inline}}\
             {{#*inline \"rules\"}}- Say which.\n{{/inline}}\
             {{#*inline \"closing\"}}Thanks.\n{{/inline}}{{/layout}}",
        )
        .unwrap();
        let mut ticket = minimal("ticket");
        ticket.vars.insert("ticket".into(), "ABC-1".into());
        let body = render_new(&ticket, Some(dir.path())).unwrap().body;
        assert_eq!(
            body,
            "# Fix add() (ticket)\n\nClose ABC-1. Mine.\n\n- Say which.\nThanks.\n"
        );
    }

    /// The layout is what the kinds render through, not a kind of its own.
    #[test]
    fn the_layout_is_not_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("layout.md.hbs"), "# {{task}}\n").unwrap();
        assert!(!template_names(Some(dir.path())).contains(&"layout".to_string()));
        for repo in [None, Some(dir.path())] {
            let err = render_new(&minimal("layout"), repo).unwrap_err();
            assert!(matches!(err, HandoffError::UnknownTemplate { .. }), "{err}");
        }
    }

    /// A template that does not parse, or calls a part nobody defined, is an error
    /// that names the file to fix, on one line.
    #[test]
    fn a_broken_template_is_named_by_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout.md.hbs");
        let fails = |template: &str| {
            let err = render_new(&minimal(template), Some(dir.path())).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            text
        };

        std::fs::write(&layout, "# {{task}}\n{{#if scope_all}}\n").unwrap();
        let text = fails("bugfix");
        assert!(text.contains(&layout.display().to_string()), "{text}");
        assert!(text.contains("at line 3, column 1"), "{text}");

        std::fs::write(&layout, "# {{task}}\n{{> intro}} {{> ticket_link}}\n").unwrap();
        let text = fails("docs");
        assert!(text.contains(&layout.display().to_string()), "{text}");
        assert!(text.contains("ticket_link"), "{text}");
        std::fs::remove_file(&layout).unwrap();

        let own = dir.path().join("bugfix.md.hbs");
        std::fs::write(&own, "# {{task}}\n{{/each}}\n").unwrap();
        let text = fails("bugfix");
        assert!(text.contains(&own.display().to_string()), "{text}");
    }
}

//! Routing for `--agent auto`: the first rule one of whose words is a word of the
//! task picks the agent; a rule with no words is the default. Rules come from
//! `[[route]]` in the config, or the defaults below. Pure: task text in, choice out.
//!
//! A rule's word matches a word of the task, never a part of one ("add docker
//! support" is not about docs): see [`matches`] for the inflections it also covers,
//! and `*` for a stem.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Words that select this rule (see [`matches`]). Empty: always.
    #[serde(default)]
    pub when: Vec<String>,
    pub agent: String,
}

/// The defaults: prose to Claude Code, reading and judging large code to Gemini's
/// long context, everything else to Codex.
pub fn default_rules() -> Vec<Rule> {
    let rule = |when: &[&str], agent: &str| Rule {
        when: when.iter().map(|w| w.to_string()).collect(),
        agent: agent.to_string(),
    };
    vec![
        rule(
            &[
                "doc",
                "document",
                "documentation",
                "docstring",
                "readme",
                "comment",
                "typo",
                "changelog",
                "wording",
                "prose",
            ],
            "claude",
        ),
        rule(
            &[
                "review",
                "audit",
                "explain",
                "explanation",
                "summar*",
                "survey",
            ],
            "gemini",
        ),
        rule(&[], "codex"),
    ]
}

/// Whether the rule word `term` matches the task's word `word` (both compared
/// case-insensitively). A word matches itself and its regular inflections: `-s`,
/// `-es`, `-ed`, `-ing`; for a word ending in `e`, `-d` and `-ing` in place of the
/// `e` (`rename`: "renamed", "renaming"); for one ending in `y`, `-ies` and `-ied`
/// (`copy`: "copies"). A word ending in `*` is a stem and matches every word that
/// starts with it (`summar*`: "summary", "summarize", "summarise"). Anything else —
/// irregular forms, other words of the same family — is listed as a word of its own.
pub fn matches(term: &str, word: &str) -> bool {
    let term = term.to_lowercase();
    let word = word.to_lowercase();
    if let Some(stem) = term.strip_suffix('*') {
        return !stem.is_empty() && word.starts_with(stem);
    }
    if word == term {
        return true;
    }
    if let Some(rest) = word.strip_prefix(term.as_str()) {
        if ["s", "es", "ed", "ing"].contains(&rest) || (term.ends_with('e') && rest == "d") {
            return true;
        }
    }
    for (ending, forms) in [("e", &["ing"][..]), ("y", &["ies", "ied"][..])] {
        if let Some(base) = term.strip_suffix(ending) {
            if let Some(rest) = word.strip_prefix(base) {
                if !base.is_empty() && forms.contains(&rest) {
                    return true;
                }
            }
        }
    }
    false
}

/// Why a rule word can never match a task word, if it cannot: a task is split into
/// words at every character that is not a letter or a digit.
pub fn unmatchable(term: &str) -> Option<String> {
    let stem = term.strip_suffix('*').unwrap_or(term);
    if stem.is_empty() {
        return Some(format!(
            "the word `{term}` is empty; write a word, or a stem ending in `*`"
        ));
    }
    if !stem.chars().all(char::is_alphanumeric) {
        return Some(format!(
            "the word `{term}` can never match: a task is matched one word at a time (letters and digits), so write one word per entry, or a stem ending in `*`"
        ));
    }
    None
}

/// The chosen agent, the rule's number (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub agent: String,
    pub rule: usize,
    pub why: String,
}

pub fn choose(rules: &[Rule], task: &str) -> Option<Choice> {
    let words: Vec<String> = task
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    rules.iter().enumerate().find_map(|(i, r)| {
        if r.when.is_empty() {
            return Some(Choice {
                agent: r.agent.clone(),
                rule: i + 1,
                why: "the default rule".into(),
            });
        }
        let (term, word) = r
            .when
            .iter()
            .find_map(|term| words.iter().find(|w| matches(term, w)).map(|w| (term, w)))?;
        let how = if term.to_lowercase() == *word {
            String::new()
        } else {
            format!(", which matches `{term}`")
        };
        Some(Choice {
            agent: r.agent.clone(),
            rule: i + 1,
            why: format!(
                "the task says \"{word}\"{how} (rule words: {})",
                r.when.join(", ")
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_and_the_default_comes_last() {
        let rules = default_rules();
        assert_eq!(
            choose(&rules, "Fix the README typo").unwrap().agent,
            "claude"
        );
        assert_eq!(
            choose(&rules, "Review the parser for bugs").unwrap().agent,
            "gemini"
        );
        let c = choose(&rules, "Fix add() so it adds").unwrap();
        assert_eq!((c.agent.as_str(), c.rule), ("codex", 3));
        assert!(choose(&[], "anything").is_none());
    }

    #[test]
    fn words_match_whole_with_their_inflections_never_as_a_prefix() {
        for (term, word) in [
            ("doc", "docs"),
            ("doc", "DOC"),
            ("test", "tests"),
            ("test", "testing"),
            ("fix", "fixes"),
            ("review", "reviewed"),
            ("rename", "renamed"),
            ("rename", "renaming"),
            ("copy", "copies"),
            ("copy", "copied"),
            ("summar*", "summarise"),
            ("summar*", "summary"),
        ] {
            assert!(matches(term, word), "{term} should match {word}");
        }
        for (term, word) in [
            ("doc", "docker"),
            ("doc", "doctor"),
            ("comment", "commentary"),
            ("test", "attest"),
            ("e", "ing"),
            ("y", "ies"),
            ("summar*", "sum"),
        ] {
            assert!(!matches(term, word), "{term} should not match {word}");
        }
        let c = choose(&default_rules(), "add docker support").unwrap();
        assert_eq!((c.agent.as_str(), c.rule), ("codex", 3));
        let c = choose(&default_rules(), "Summarise the lexer").unwrap();
        assert_eq!(c.agent, "gemini");
        assert!(
            c.why.contains("\"summarise\", which matches `summar*`"),
            "{}",
            c.why
        );
    }

    #[test]
    fn a_word_that_cannot_match_is_named() {
        assert!(unmatchable("doc").is_none() && unmatchable("summar*").is_none());
        assert!(unmatchable("pull request").unwrap().contains("one word"));
        assert!(unmatchable("*").is_some() && unmatchable("").is_some());
    }
}

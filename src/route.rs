//! Routing for `--agent auto`: the first rule whose words appear in the task picks the
//! agent; a rule with no words is the default. Rules come from `[[route]]` in the
//! config, or the defaults below. Pure: task text in, choice out.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Words that select this rule; a task word matches when it starts with one
    /// (`test` matches "tests", "testing"), case-insensitively. Empty: always.
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
            &["review", "audit", "explain", "summar", "survey"],
            "gemini",
        ),
        rule(&[], "codex"),
    ]
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
        let hit = r.when.iter().find_map(|term| {
            let term = term.to_lowercase();
            words
                .iter()
                .find(|w| w.starts_with(&term))
                .map(|w| (term, w.clone()))
        })?;
        Some(Choice {
            agent: r.agent.clone(),
            rule: i + 1,
            why: format!(
                "the task says \"{}\" (rule words: {})",
                hit.1,
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
}

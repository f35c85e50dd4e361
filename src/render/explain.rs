//! `dnsdoc explain RULE`: a rule's documentation, offline. A node has the binary, not
//! the repository, so findings point here instead of at docs/RULES.md: the rule as
//! loaded (thresholds after any override) and, for a built-in, its section of
//! docs/RULES.md, compiled in.

use std::fmt::Write;

use crate::rules::{Rule, RuleSet};

/// docs/RULES.md, compiled in for the built-in rules' sections.
const RULES_MD: &str = include_str!("../../docs/RULES.md");

/// The `### id` section of docs/RULES.md, without its heading.
pub fn builtin_section(id: &str) -> Option<&'static str> {
    let heading = format!("\n### {id}\n");
    let start = RULES_MD.find(&heading)? + heading.len();
    let rest = &RULES_MD[start..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// The command that explains a rule, for findings to point at.
pub fn explain_command(id: &str) -> String {
    format!("dnsdoc explain {id}")
}

/// The text `dnsdoc explain` prints.
pub fn text(rule: &Rule) -> String {
    let mut o = String::new();
    let unit = rule.unit();
    let _ = writeln!(o, "{}: {}", rule.id, rule.title);
    if !rule.enabled {
        let _ = writeln!(o, "(disabled by a rule file)");
    }
    let _ = writeln!(o, "\n{}\n", rule.description.trim());
    let _ = writeln!(
        o,
        "judges      {} per {}: fires when {} is {} a threshold",
        rule.metric,
        rule.scope.as_str(),
        rule.metric,
        rule.direction.as_str()
    );
    let levels: Vec<String> = rule
        .thresholds()
        .into_iter()
        .map(|(s, t)| format!("{} {}", s.as_str(), unit.format(t)))
        .collect();
    let _ = writeln!(o, "thresholds  {}", levels.join(", "));
    let _ = writeln!(
        o,
        "needs       at least {} {} per subject",
        rule.min_samples, rule.samples
    );
    if !rule.when.is_empty() {
        let when: Vec<&str> = rule.when.iter().map(|g| g.source.as_str()).collect();
        let _ = writeln!(o, "and when    {}", when.join(" and "));
    }
    let _ = writeln!(o, "defined in  {}", rule.source);
    if let Some(section) = builtin_section(&rule.id) {
        let _ = writeln!(o, "\nWhy these numbers\n\n{section}");
    }
    if !rule.remediation.is_empty() {
        let _ = writeln!(o, "\nWhat to do");
        for r in &rule.remediation {
            let _ = writeln!(o, "  - {}", r.source);
        }
    }
    o
}

/// "no rule X; did you mean Y?" for a rule id that is not in the set.
pub fn unknown(id: &str, rules: &RuleSet) -> String {
    let best = rules
        .rules()
        .iter()
        .map(|r| (strsim::jaro_winkler(id, &r.id), r.id.as_str()))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, near)) if score > 0.8 => {
            format!("no rule {id}; did you mean {near}? (dnsdoc doctor --list-rules)")
        }
        _ => format!("no rule {id} (dnsdoc doctor --list-rules lists them)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_rule_is_explained_offline() {
        let set = RuleSet::builtin().unwrap();
        for rule in set.rules() {
            let section = builtin_section(&rule.id)
                .unwrap_or_else(|| panic!("docs/RULES.md has no section for {}", rule.id));
            assert!(section.len() > 40, "{}", rule.id);
            let t = text(rule);
            assert!(t.starts_with(&format!("{}: ", rule.id)), "{t}");
            assert!(t.contains("thresholds"), "{t}");
            assert!(t.contains(section), "{t}");
        }
        let e = unknown("dns_high_latenc", &set);
        assert!(e.contains("did you mean dns_high_latency?"), "{e}");
        assert!(!unknown("zzz", &set).contains("did you mean"));
    }
}

//! Doctor output for people: a header that says how far to trust the verdict, the
//! findings table, and per-finding evidence and remediation. Also the rule catalog
//! and the metric reference.
//!
//! Colour (severity only) when asked for by the caller, which decides from the TTY and
//! NO_COLOR ([`super::style::color_stdout`]); markdown never carries colour.

use std::collections::HashMap;
use std::fmt::Write;

use comfy_table::{Attribute, Cell, CellAlignment, Color};
use owo_colors::OwoColorize;

use super::style;
use crate::rules::metrics::{registry, Scope};
use crate::rules::report::{Report, Status};
use crate::rules::{CheckStatus, Direction, Finding, Rule, Severity, Unit};

/// Findings of one rule shown in the table and markdown; JSON always has them all.
pub const MAX_PER_RULE: usize = 5;

/// Paints a word by severity with owo-colors, or leaves it plain.
fn paint(text: &str, status: Status, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match status {
        Status::Critical => text.red().bold().to_string(),
        Status::Warning => text.yellow().bold().to_string(),
        Status::Info => text.cyan().to_string(),
        Status::Ok => text.green().bold().to_string(),
    }
}

fn cell_color(s: Severity) -> Color {
    match s {
        Severity::Critical => Color::Red,
        Severity::Warning => Color::Yellow,
        Severity::Info => Color::Cyan,
    }
}

/// "> 500 ms": the comparison and the threshold with its unit.
pub fn threshold_text(direction: Direction, unit: Unit, t: f64) -> String {
    let op = match direction {
        Direction::Above => ">",
        Direction::Below => "<",
    };
    format!("{op} {}", unit.format(t))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The findings shown (ranked, at most [`MAX_PER_RULE`] per rule) and, per rule, how
/// many more there are.
fn shown(findings: &[Finding]) -> (Vec<&Finding>, Vec<(String, usize)>) {
    let mut per_rule: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut hidden: Vec<(String, usize)> = Vec::new();
    for f in findings {
        let n = per_rule.entry(&f.rule).or_default();
        *n += 1;
        if *n <= MAX_PER_RULE {
            out.push(f);
        } else if let Some(h) = hidden.iter_mut().find(|(r, _)| *r == f.rule) {
            h.1 += 1;
        } else {
            hidden.push((f.rule.clone(), 1));
        }
    }
    (out, hidden)
}

fn headline(r: &Report) -> String {
    let c = &r.counts;
    if !r.saw_traffic() && c.critical + c.warning == 0 {
        return "NO TRAFFIC: nothing was observed, so nothing could be judged".into();
    }
    match r.status {
        Status::Ok => "OK".into(),
        Status::Info => format!("INFO ({})", plural(c.info, "notice", "notices")),
        _ => format!(
            "{} ({} critical, {} warning, {} info)",
            r.status.as_str(),
            c.critical,
            c.warning,
            c.info
        ),
    }
}

/// The context lines: (label, text).
fn context(r: &Report) -> Vec<(&'static str, String)> {
    let source = if r.source == "live" {
        "live capture".to_string()
    } else {
        format!("snapshot {}", r.source)
    };
    let t = &r.traffic;
    let c = &r.capture;
    let capture = if c.complete {
        format!("complete: {} packets, no events lost", c.packets)
    } else {
        format!(
            "PARTIAL: {} lost: counts are lower bounds and findings may be biased",
            plural(c.dropped, "event", "events")
        )
    };
    let n = |s| r.rules_with(s).len();
    let mut rules = format!(
        "{} enabled: {} passed, {} fired, {} too little data, {} no data",
        r.checks.len() - n(CheckStatus::Disabled),
        n(CheckStatus::Pass),
        n(CheckStatus::Fired),
        n(CheckStatus::InsufficientData),
        n(CheckStatus::NoData)
    );
    if n(CheckStatus::Disabled) > 0 {
        let _ = write!(
            rules,
            "; disabled: {}",
            r.rules_with(CheckStatus::Disabled).join(", ")
        );
    }
    vec![
        (
            "host",
            format!("{} (kernel {})", r.host.hostname, r.host.kernel),
        ),
        (
            "window",
            format!(
                "{} -> {} ({:.1} s), {source}",
                r.window.start, r.window.end, r.window.duration_s
            ),
        ),
        (
            "traffic",
            format!(
                "{} ({:.1}/s, {} completed), {} to local DNS servers",
                plural(t.client_queries, "client query", "client queries"),
                t.client_queries_per_s,
                t.client_completed,
                plural(t.server_queries, "query", "queries")
            ),
        ),
        ("capture", capture),
        ("rules", rules),
    ]
}

/// The one-line verdict when nothing is WARNING or CRITICAL; None when there is no
/// traffic at all (the INFO finding says so, and silence is not health).
fn all_clear(r: &Report) -> Option<String> {
    if r.counts.critical + r.counts.warning > 0 || !r.saw_traffic() {
        return None;
    }
    let passed = r.rules_with(CheckStatus::Pass).len();
    let thin = r.rules_with(CheckStatus::InsufficientData).len();
    let mut s = format!(
        "no problems found: {} passed over {} client and {} server-side queries",
        plural(passed as u64, "rule", "rules"),
        r.traffic.client_queries,
        r.traffic.server_queries
    );
    if thin > 0 {
        let _ = write!(
            s,
            "; {} had too little data to judge",
            plural(thin as u64, "rule", "rules")
        );
    }
    Some(s + ".")
}

/// The full table report.
pub fn table(r: &Report, color: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "dnsdoc doctor: {}", paint(&headline(r), r.status, color));
    for (label, text) in context(r) {
        let text = if label == "capture" && !r.capture.complete {
            paint(&text, Status::Warning, color)
        } else {
            text
        };
        let _ = writeln!(o, "  {label:<8} {text}");
    }
    let _ = writeln!(o);
    if let Some(line) = all_clear(r) {
        let _ = writeln!(o, "{} {line}", paint("OK:", Status::Ok, color));
    }
    let (list, hidden) = shown(&r.findings);
    if list.is_empty() {
        return o;
    }
    if r.counts.critical + r.counts.warning == 0 && r.saw_traffic() {
        let _ = writeln!(o);
    }

    let mut t = style::table(&[
        "#",
        "Severity",
        "Rule",
        "Subject",
        "Value",
        "Threshold",
        "Summary",
    ]);
    if color {
        t.enforce_styling();
    }
    for (i, f) in list.iter().enumerate() {
        let mut sev = Cell::new(f.severity.as_str());
        if color {
            sev = sev
                .fg(cell_color(f.severity))
                .add_attribute(Attribute::Bold);
        }
        t.add_row(vec![
            Cell::new(i + 1).set_alignment(CellAlignment::Right),
            sev,
            Cell::new(&f.rule),
            Cell::new(&f.subject),
            Cell::new(f.unit.format(f.value)).set_alignment(CellAlignment::Right),
            Cell::new(threshold_text(f.direction, f.unit, f.threshold)),
            Cell::new(&f.summary),
        ]);
    }
    let _ = writeln!(o, "{t}");
    for (rule, n) in &hidden {
        let _ = writeln!(
            o,
            "... and {} of {rule} not shown (--format json lists them all)",
            plural(*n as u64, "more finding", "more findings")
        );
    }

    for (i, f) in list.iter().enumerate() {
        let _ = writeln!(
            o,
            "\n{}. {} {}: {} ({})",
            i + 1,
            paint(f.severity.as_str(), Status::from(f.severity), color),
            f.rule,
            f.title,
            f.subject
        );
        let _ = writeln!(o, "   {}", f.summary);
        if !f.evidence.is_empty() {
            let _ = writeln!(o, "   evidence:");
            for e in &f.evidence {
                let _ = writeln!(o, "     - {}", e.text);
            }
        }
        if !f.remediation.is_empty() {
            let _ = writeln!(o, "   what to do:");
            for step in &f.remediation {
                let _ = writeln!(o, "     - {step}");
            }
        }
        let _ = writeln!(o, "   more: {}", super::explain::explain_command(&f.rule));
        if let Some(d) = f.docs.as_ref().filter(|d| !d.starts_with("docs/RULES.md")) {
            let _ = writeln!(o, "   docs: {d}");
        }
    }
    o
}

/// Escapes text for a markdown table cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as markdown, to paste into an incident ticket.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## dnsdoc doctor: {} on {}\n",
        headline(r),
        md_cell(&r.host.hostname)
    );
    let _ = writeln!(o, "| | |\n|---|---|");
    for (label, text) in context(r) {
        let _ = writeln!(o, "| **{label}** | {} |", md_cell(&text));
    }
    let _ = writeln!(o);
    if let Some(line) = all_clear(r) {
        let _ = writeln!(o, "**OK:** {line}\n");
    }
    let (list, hidden) = shown(&r.findings);
    if list.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "| # | Severity | Rule | Subject | Value | Threshold | Summary |\n|--:|---|---|---|--:|---|---|"
    );
    for (i, f) in list.iter().enumerate() {
        let _ = writeln!(
            o,
            "| {} | **{}** | `{}` | {} | {} | {} | {} |",
            i + 1,
            f.severity,
            f.rule,
            md_cell(&f.subject),
            md_cell(&f.unit.format(f.value)),
            md_cell(&threshold_text(f.direction, f.unit, f.threshold)),
            md_cell(&f.summary)
        );
    }
    for (rule, n) in &hidden {
        let _ = writeln!(
            o,
            "\n_... and {} of `{rule}` not shown (`--format json` lists them all)._",
            plural(*n as u64, "more finding", "more findings")
        );
    }
    for (i, f) in list.iter().enumerate() {
        let _ = writeln!(
            o,
            "\n### {}. {} `{}`: {} ({})\n\n{}",
            i + 1,
            f.severity,
            f.rule,
            f.title,
            f.subject,
            f.summary
        );
        if !f.evidence.is_empty() {
            let _ = writeln!(o, "\n**Evidence**\n");
            for e in &f.evidence {
                let _ = writeln!(o, "- {}", e.text);
            }
        }
        if !f.remediation.is_empty() {
            let _ = writeln!(o, "\n**What to do**\n");
            for (n, step) in f.remediation.iter().enumerate() {
                let _ = writeln!(o, "{}. {step}", n + 1);
            }
        }
        let _ = writeln!(o, "\nMore: `{}`", super::explain::explain_command(&f.rule));
        if let Some(d) = f.docs.as_ref().filter(|d| !d.starts_with("docs/RULES.md")) {
            let _ = writeln!(o, "\nDocs: {d}");
        }
    }
    o
}

fn short_source(rule: &Rule) -> String {
    match rule.source.strip_prefix("builtin:") {
        Some(rest) if rest.contains("overridden by") => format!(
            "built-in, overridden by {}",
            rest.split(", overridden by ")
                .skip(1)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(_) => "built-in".into(),
        None => rule.source.clone(),
    }
}

fn level(rule: &Rule, t: Option<f64>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| threshold_text(rule.direction, rule.unit(), t),
    )
}

fn catalog_rows(rules: &[Rule]) -> Vec<Vec<String>> {
    rules
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.scope.to_string(),
                r.metric.clone(),
                level(r, r.info),
                level(r, r.warning),
                level(r, r.critical),
                format!("{} {}", r.min_samples, r.samples),
                if r.enabled { "yes" } else { "no" }.into(),
                short_source(r),
                r.title.clone(),
            ]
        })
        .collect()
}

const CATALOG_HEADER: [&str; 10] = [
    "Rule",
    "Scope",
    "Metric",
    "Info",
    "Warning",
    "Critical",
    "Min samples",
    "Enabled",
    "Source",
    "Title",
];

/// `doctor --list-rules`.
pub fn catalog_table(rules: &[Rule]) -> String {
    let mut t = style::table(&CATALOG_HEADER);
    for row in catalog_rows(rules) {
        t.add_row(row);
    }
    format!(
        "{t}\n{} rules. Details and the file format: docs/RULES.md; `dnsdoc rules metrics` lists what rules can read.\n",
        rules.len()
    )
}

/// `doctor --list-rules --format markdown`.
pub fn catalog_markdown(rules: &[Rule]) -> String {
    let mut o = format!(
        "| {} |\n|{}\n",
        CATALOG_HEADER.join(" | "),
        "---|".repeat(CATALOG_HEADER.len())
    );
    for row in catalog_rows(rules) {
        let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    o
}

fn metric_rows(scope: Option<Scope>) -> Vec<[String; 5]> {
    registry()
        .all()
        .iter()
        .filter(|m| scope.is_none_or(|s| m.applies_to(s)))
        .map(|m| {
            let scopes = if m.scopes.len() == Scope::ALL.len() {
                "all".to_string()
            } else {
                m.scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            [
                m.name.clone(),
                m.unit.as_str().to_string(),
                scopes,
                m.samples.clone(),
                m.help.clone(),
            ]
        })
        .collect()
}

/// `rules metrics --format json`: the registry as data, for tools that write rules.
pub fn metrics_json(scope: Option<Scope>) -> serde_json::Value {
    registry()
        .all()
        .iter()
        .filter(|m| scope.is_none_or(|s| m.applies_to(s)))
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "unit": m.unit,
                "scopes": m.scopes,
                "samples": m.samples,
                "help": m.help,
            })
        })
        .collect()
}

const METRIC_HEADER: [&str; 5] = ["Metric", "Unit", "Scopes", "Default samples", "Meaning"];

/// `rules metrics`.
pub fn metrics_table(scope: Option<Scope>) -> String {
    let mut t = style::table(&METRIC_HEADER);
    for row in metric_rows(scope) {
        t.add_row(row.to_vec());
    }
    format!("{t}\n")
}

/// `rules metrics --format markdown` (the reference table in docs/RULES.md).
pub fn metrics_markdown(scope: Option<Scope>) -> String {
    let mut o = format!(
        "| {} |\n|{}\n",
        METRIC_HEADER.join(" | "),
        "---|".repeat(METRIC_HEADER.len())
    );
    for row in metric_rows(scope) {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | `{}` | {} |",
            row[0],
            row[1],
            row[2],
            row[3],
            md_cell(&row[4])
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_naturally() {
        assert_eq!(
            threshold_text(Direction::Above, Unit::Ms, 500.0),
            "> 500 ms"
        );
        assert_eq!(threshold_text(Direction::Below, Unit::Count, 1.0), "< 1");
        assert_eq!(
            threshold_text(Direction::Above, Unit::Ratio, 0.05),
            "> 5.0%"
        );
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }

    fn finding(rule: &str, n: usize) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::Warning,
            title: "t".into(),
            summary: "s".into(),
            scope: Scope::Process,
            subject: format!("process p{n} (pid {n})"),
            metric: "failure_ratio".into(),
            unit: Unit::Ratio,
            value: 0.5,
            threshold: 0.05,
            direction: Direction::Above,
            samples: 100,
            excess: 9.0,
            evidence: vec![],
            remediation: vec![],
            docs: None,
        }
    }

    #[test]
    fn at_most_five_findings_per_rule_are_shown() {
        let mut all: Vec<Finding> = (0..8).map(|n| finding("a", n)).collect();
        all.push(finding("b", 0));
        let (list, hidden) = shown(&all);
        assert_eq!(list.len(), MAX_PER_RULE + 1);
        assert_eq!(list.last().unwrap().rule, "b", "other rules still shown");
        assert_eq!(hidden, [("a".to_string(), 3)]);
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(paint("CRITICAL", Status::Critical, false), "CRITICAL");
        let c = paint("CRITICAL", Status::Critical, true);
        assert!(c.contains("\x1b[") && c.contains("CRITICAL"), "{c:?}");
    }
}

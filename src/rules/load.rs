//! Loading rule files: TOML with spans, overrides by id, and validation.
//!
//! Every value keeps the file, line and column it came from, so a problem found only
//! after merging an override into a built-in rule still points at the line to fix.
//! A layer (one file, or every `*.toml` of a directory) is applied all or nothing.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::metrics::{registry, Scope, Unit};
use super::template::{Template, BUILTIN_VARS};
use super::{Direction, EvidenceSpec, Guard, Op, Rule, Severity};
use crate::exit::{InputError, UsageError};

/// One problem in a rule (or rule test) file: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: String,
    /// 1-based; 0 when the problem is with the file as a whole (unreadable).
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
    /// The value is a one-line string without escapes, so an offset inside it maps
    /// exactly to a column.
    pub simple: bool,
}

impl Origin {
    pub(crate) fn whole(file: &Arc<str>) -> Origin {
        Origin {
            file: file.clone(),
            line: 0,
            col: 0,
            simple: false,
        }
    }

    pub(crate) fn diag(&self, message: impl Into<String>) -> Diag {
        Diag {
            file: self.file.to_string(),
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }

    /// The position `offset` bytes into the string value `s` this origin points at.
    fn inside(&self, s: &str, offset: usize) -> Origin {
        let mut o = self.clone();
        if self.simple {
            o.col += 1 + s[..offset.min(s.len())].chars().count();
        }
        o
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Val<T> {
    pub v: T,
    pub at: Origin,
}

/// A TOML document being read: maps byte spans to line and column.
pub(crate) struct Doc<'a> {
    pub name: Arc<str>,
    pub text: &'a str,
}

impl Doc<'_> {
    pub(crate) fn origin(&self, span: std::ops::Range<usize>) -> Origin {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Origin {
            file: self.name.clone(),
            line: before.matches('\n').count() + 1,
            col: self.text[line_start..start].chars().count() + 1,
            simple: false,
        }
    }

    pub(crate) fn val<T>(&self, s: Spanned<T>) -> Val<T> {
        let at = self.origin(s.span());
        Val {
            v: s.into_inner(),
            at,
        }
    }

    pub(crate) fn string(&self, s: Spanned<String>) -> Val<String> {
        let span = s.span();
        let mut at = self.origin(span.clone());
        let raw = self.text.get(span).unwrap_or("");
        let v = s.into_inner();
        at.simple = !v.contains('\n')
            && (raw == format!("\"{v}\"") || raw == format!("'{v}'"))
            && !v.contains('\\');
        Val { v, at }
    }

    pub(crate) fn strings(&self, s: Spanned<Vec<Spanned<String>>>) -> Val<Vec<Val<String>>> {
        let at = self.origin(s.span());
        Val {
            v: s.into_inner().into_iter().map(|x| self.string(x)).collect(),
            at,
        }
    }

    /// A TOML parse or type error as a diagnostic (one line).
    pub(crate) fn toml_error(&self, e: &toml::de::Error) -> Diag {
        let at = match e.span() {
            Some(span) => self.origin(span),
            None => Origin {
                line: 1,
                col: 1,
                ..Origin::whole(&self.name)
            },
        };
        // `scope = node` makes toml report "invalid float, expected `nan`" (it read
        // the `n`); say what was found and what was meant instead.
        if let Some(span) = e.span() {
            let word: String = self.text[span.start.min(self.text.len())..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let bare = word.starts_with(|c: char| c.is_ascii_alphabetic())
                && !["true", "false", "nan", "inf"].contains(&word.as_str());
            if bare && e.message().starts_with("invalid") {
                return at.diag(format!(
                    "invalid TOML: unquoted value `{word}`; expected a quoted string (\"{word}\"), a number, true or false"
                ));
            }
        }
        let msg = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        at.diag(format!("invalid TOML: {msg}"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    metrics: Option<Spanned<Vec<Spanned<String>>>>,
    top: Option<Spanned<Vec<Spanned<String>>>>,
    top_by: Option<Spanned<String>>,
}

/// A rule as written: every field optional, so an override can set just one, and
/// missing fields are reported by [`compile`] with a clear message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    scope: Option<Spanned<String>>,
    metric: Option<Spanned<String>>,
    direction: Option<Spanned<String>>,
    info: Option<Spanned<toml::Value>>,
    warning: Option<Spanned<toml::Value>>,
    critical: Option<Spanned<toml::Value>>,
    min_samples: Option<Spanned<i64>>,
    samples: Option<Spanned<String>>,
    when: Option<Spanned<Vec<Spanned<String>>>>,
    summary: Option<Spanned<String>>,
    remediation: Option<Spanned<Vec<Spanned<String>>>>,
    docs: Option<Spanned<String>>,
    evidence: Option<RawEvidence>,
    enabled: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMulti {
    rule: Vec<Spanned<RawRule>>,
}

type Strings = Val<Vec<Val<String>>>;

/// A rule's fields with their origins; overrides merge field by field.
#[derive(Debug, Clone)]
struct Draft {
    at: Origin,
    id: Option<Val<String>>,
    title: Option<Val<String>>,
    description: Option<Val<String>>,
    scope: Option<Val<String>>,
    metric: Option<Val<String>>,
    direction: Option<Val<String>>,
    info: Option<Val<toml::Value>>,
    warning: Option<Val<toml::Value>>,
    critical: Option<Val<toml::Value>>,
    min_samples: Option<Val<i64>>,
    samples: Option<Val<String>>,
    when: Option<Strings>,
    summary: Option<Val<String>>,
    remediation: Option<Strings>,
    docs: Option<Val<String>>,
    ev_metrics: Option<Strings>,
    ev_top: Option<Strings>,
    ev_top_by: Option<Val<String>>,
    enabled: Option<Val<bool>>,
    /// The files that defined and overrode this rule, in order.
    sources: Vec<String>,
}

impl Draft {
    fn from_raw(doc: &Doc, raw: RawRule, at: Origin) -> Draft {
        let (ev_metrics, ev_top, ev_top_by) = match raw.evidence {
            Some(e) => (
                e.metrics.map(|x| doc.strings(x)),
                e.top.map(|x| doc.strings(x)),
                e.top_by.map(|x| doc.string(x)),
            ),
            None => (None, None, None),
        };
        Draft {
            at,
            id: raw.id.map(|x| doc.string(x)),
            title: raw.title.map(|x| doc.string(x)),
            description: raw.description.map(|x| doc.string(x)),
            scope: raw.scope.map(|x| doc.string(x)),
            metric: raw.metric.map(|x| doc.string(x)),
            direction: raw.direction.map(|x| doc.string(x)),
            info: raw.info.map(|x| doc.val(x)),
            warning: raw.warning.map(|x| doc.val(x)),
            critical: raw.critical.map(|x| doc.val(x)),
            min_samples: raw.min_samples.map(|x| doc.val(x)),
            samples: raw.samples.map(|x| doc.string(x)),
            when: raw.when.map(|x| doc.strings(x)),
            summary: raw.summary.map(|x| doc.string(x)),
            remediation: raw.remediation.map(|x| doc.strings(x)),
            docs: raw.docs.map(|x| doc.string(x)),
            ev_metrics,
            ev_top,
            ev_top_by,
            enabled: raw.enabled.map(|x| doc.val(x)),
            sources: vec![doc.name.to_string()],
        }
    }

    /// This rule with the fields `over` sets replaced.
    fn merged(&self, over: Draft) -> Draft {
        macro_rules! pick {
            ($($f:ident),*) => { Draft { $($f: over.$f.or_else(|| self.$f.clone()),)* at: self.at.clone(), sources: {
                let mut s = self.sources.clone();
                s.extend(over.sources);
                s
            } } };
        }
        pick!(
            id,
            title,
            description,
            scope,
            metric,
            direction,
            info,
            warning,
            critical,
            min_samples,
            samples,
            when,
            summary,
            remediation,
            docs,
            ev_metrics,
            ev_top,
            ev_top_by,
            enabled
        )
    }
}

/// Parses one rule file: a single rule at top level, or `[[rule]]` tables.
fn parse_file(doc: &Doc) -> Result<Vec<Draft>, Vec<Diag>> {
    let table: toml::Table = toml::from_str(doc.text).map_err(|e| vec![doc.toml_error(&e)])?;
    if table.contains_key("rule") {
        let raw: RawMulti = toml::from_str(doc.text).map_err(|e| vec![doc.toml_error(&e)])?;
        Ok(raw
            .rule
            .into_iter()
            .map(|r| {
                let at = doc.origin(r.span());
                Draft::from_raw(doc, r.into_inner(), at)
            })
            .collect())
    } else {
        let raw: RawRule = toml::from_str(doc.text).map_err(|e| vec![doc.toml_error(&e)])?;
        let at = Origin {
            line: 1,
            col: 1,
            ..Origin::whole(&doc.name)
        };
        Ok(vec![Draft::from_raw(doc, raw, at)])
    }
}

/// Checks an id: stable, greppable, usable in `--disable` and URLs.
fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && id.len() <= 64
}

fn scope_list() -> String {
    Scope::ALL.map(Scope::as_str).join(", ")
}

/// Explains why `name` is not a metric of `scope`.
fn unknown_metric(scope: Scope, name: &str, what: &str) -> String {
    let reg = registry();
    let elsewhere: Vec<&str> = Scope::ALL
        .into_iter()
        .filter(|s| reg.find(*s, name).is_some())
        .map(Scope::as_str)
        .collect();
    if !elsewhere.is_empty() {
        return format!(
            "{what} \"{name}\" is not available for scope \"{scope}\" (only for: {})",
            elsewhere.join(", ")
        );
    }
    let hint = reg
        .suggest(scope, name)
        .map(|s| format!("did you mean \"{s}\"? "))
        .unwrap_or_default();
    format!(
        "unknown {what} \"{name}\" for scope \"{scope}\"; {hint}expected a metric name such as \"failure_ratio\" (`dnsdoc rules metrics --scope {scope}` lists them all)"
    )
}

/// Parses `"metric op number"`.
fn parse_guard(s: &str) -> Result<(String, Op, f64), String> {
    let bad = || {
        format!(
            "cannot read condition \"{s}\": expected METRIC OP NUMBER, e.g. \"failures >= 3\" (OP is one of >, >=, <, <=, ==, !=)"
        )
    };
    let pos = s.find(['<', '>', '=', '!']).ok_or_else(bad)?;
    let rest = &s[pos..];
    let (sym, op) = Op::ALL
        .into_iter()
        .find(|(sym, _)| rest.starts_with(sym))
        .ok_or_else(bad)?;
    let metric = s[..pos].trim();
    let number: f64 = rest[sym.len()..].trim().parse().map_err(|_| bad())?;
    if metric.is_empty() || !number.is_finite() {
        return Err(bad());
    }
    Ok((metric.to_string(), op, number))
}

/// Validates a template's syntax and placeholders.
fn check_template(
    t: &Val<String>,
    scope: Option<Scope>,
    field: &str,
    errs: &mut Vec<Diag>,
) -> Option<Template> {
    let tpl = match Template::parse(&t.v) {
        Ok(tpl) => tpl,
        Err(e) => {
            errs.push(
                t.at.inside(&t.v, e.offset)
                    .diag(format!("{field}: {}", e.message)),
            );
            return None;
        }
    };
    let scope = scope?;
    let reg = registry();
    for (offset, var) in tpl.vars() {
        if BUILTIN_VARS.iter().any(|(n, _)| *n == var) || reg.find(scope, var).is_some() {
            continue;
        }
        let candidates = BUILTIN_VARS
            .iter()
            .map(|(n, _)| *n)
            .chain(reg.for_scope(scope).map(|m| m.name.as_str()));
        let hint = candidates
            .map(|c| (super::metrics::edit_distance(c, var), c))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, c)| format!("did you mean {{{c}}}? "))
            .unwrap_or_default();
        errs.push(t.at.inside(&t.v, offset).diag(format!(
            "{field}: unknown placeholder {{{var}}}; {hint}expected {{value}}, {{threshold}}, {{samples}}, {{subject}}, another of the documented placeholders, or a metric of scope \"{scope}\""
        )));
    }
    Some(tpl)
}

/// A threshold value: a number, or "none" to remove an inherited one.
fn threshold(v: &Val<toml::Value>, name: &str, errs: &mut Vec<Diag>) -> Option<f64> {
    let t = match &v.v {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        toml::Value::String(s) if s == "none" => return None,
        other => {
            errs.push(v.at.diag(format!(
                "{name}: expected a number (or \"none\" to remove the level), found {} {other}",
                other.type_str()
            )));
            return None;
        }
    };
    if !t.is_finite() {
        errs.push(v.at.diag(format!("{name}: expected a finite number, found {t}")));
        return None;
    }
    Some(t)
}

/// Turns a merged draft into a rule, or explains everything wrong with it.
fn compile(d: &Draft) -> Result<Rule, Vec<Diag>> {
    let mut errs = Vec::new();
    let reg = registry();
    let Some(id) = &d.id else {
        return Err(vec![d.at.diag("missing required field `id`")]);
    };
    if !valid_id(&id.v) {
        errs.push(id.at.diag(format!(
            "invalid rule id \"{}\": expected lowercase letters, digits and `_`, starting with a letter (e.g. \"dns_high_latency\")",
            id.v
        )));
    }
    let missing = |name: &str| {
        d.at.diag(format!(
            "rule \"{}\": missing required field `{name}`",
            id.v
        ))
    };
    let text = |v: &Option<Val<String>>, name: &str, errs: &mut Vec<Diag>| -> String {
        match v {
            None => {
                errs.push(missing(name));
                String::new()
            }
            Some(s) if s.v.trim().is_empty() => {
                errs.push(s.at.diag(format!("{name}: must not be empty")));
                String::new()
            }
            Some(s) => s.v.clone(),
        }
    };
    let title = text(&d.title, "title", &mut errs);
    let description = text(&d.description, "description", &mut errs);

    let scope = match &d.scope {
        None => {
            errs.push(missing("scope"));
            None
        }
        Some(s) => match Scope::parse(&s.v) {
            Some(sc) => Some(sc),
            None => {
                errs.push(s.at.diag(format!(
                    "unknown scope \"{}\"; expected one of: {}",
                    s.v,
                    scope_list()
                )));
                None
            }
        },
    };
    let metric = match (&d.metric, scope) {
        (None, _) => {
            errs.push(missing("metric"));
            None
        }
        (Some(m), Some(sc)) => match reg.find(sc, &m.v) {
            Some(def) => Some(def),
            None => {
                errs.push(m.at.diag(unknown_metric(sc, &m.v, "metric")));
                None
            }
        },
        (Some(_), None) => None,
    };
    let direction = match &d.direction {
        None => Direction::Above,
        Some(v) if v.v == "above" => Direction::Above,
        Some(v) if v.v == "below" => Direction::Below,
        Some(v) => {
            errs.push(v.at.diag(format!(
                "unknown direction \"{}\"; expected \"above\" (higher is worse) or \"below\" (lower is worse)",
                v.v
            )));
            Direction::Above
        }
    };

    // Thresholds: at least one, in range for the metric's unit, ordered by severity.
    let levels = [
        (Severity::Info, "info", &d.info),
        (Severity::Warning, "warning", &d.warning),
        (Severity::Critical, "critical", &d.critical),
    ];
    let mut set: Vec<(Severity, &str, f64, &Origin)> = Vec::new();
    for (sev, name, v) in levels {
        if let Some(v) = v {
            if let Some(t) = threshold(v, name, &mut errs) {
                set.push((sev, name, t, &v.at));
            }
        }
    }
    let thresholds_given = levels.iter().any(|(_, _, v)| v.is_some());
    if set.is_empty() && !thresholds_given {
        errs.push(d.at.diag(format!(
            "rule \"{}\": no threshold; set at least one of `info`, `warning`, `critical`",
            id.v
        )));
    } else if set.is_empty() && errs.is_empty() {
        errs.push(d.at.diag(format!(
            "rule \"{}\": every threshold is \"none\"; keep at least one, or disable the rule with `enabled = false`",
            id.v
        )));
    }
    if let Some(def) = metric {
        let (lo, hi) = def.unit.range();
        for (_, name, t, at) in &set {
            if *t < lo || *t > hi {
                let why = match def.unit {
                    Unit::Ratio => "a ratio from 0 to 1: write 5% as 0.05",
                    Unit::Points => "a difference of ratios from -1 to 1: write 5 points as 0.05",
                    _ => "it cannot be negative",
                };
                errs.push(at.diag(format!(
                    "{name} = {t} is out of range for metric \"{}\" ({why})",
                    def.name
                )));
            }
        }
    }
    for pair in set.windows(2) {
        let ((_, lname, lt, lat), (_, hname, ht, _)) = (pair[0], pair[1]);
        let ok = match direction {
            Direction::Above => lt < ht,
            Direction::Below => lt > ht,
        };
        if !ok {
            let (rel, need) = match direction {
                Direction::Above if lt == ht => ("equal to", "lower than"),
                Direction::Above => ("above", "lower than"),
                Direction::Below if lt == ht => ("equal to", "higher than"),
                Direction::Below => ("below", "higher than"),
            };
            errs.push(lat.diag(format!(
                "{lname} threshold {lt} is {rel} the {hname} threshold {ht}: with direction = \"{}\", {} must be {need} {}",
                direction.as_str(),
                lname.to_uppercase(),
                hname.to_uppercase()
            )));
        }
    }

    let min_samples = match &d.min_samples {
        None => {
            errs.push(missing("min_samples"));
            0
        }
        Some(v) if v.v < 0 => {
            errs.push(v.at.diag(format!("min_samples must be 0 or more, found {}", v.v)));
            0
        }
        Some(v) => v.v as u64,
    };
    let samples = match (&d.samples, metric, scope) {
        (Some(s), _, Some(sc)) => {
            match reg.find(sc, &s.v) {
                None => errs.push(s.at.diag(unknown_metric(sc, &s.v, "samples metric"))),
                Some(m) if m.unit != Unit::Count => errs.push(s.at.diag(format!(
                    "samples metric \"{}\" is a {}, expected a count (e.g. \"queries\", \"completed\", \"latency.samples\")",
                    s.v,
                    m.unit.as_str()
                ))),
                Some(_) => {}
            }
            s.v.clone()
        }
        (None, Some(m), _) => m.samples.clone(),
        _ => String::new(),
    };

    let mut when = Vec::new();
    for g in d.when.iter().flat_map(|w| &w.v) {
        match parse_guard(&g.v) {
            Err(msg) => errs.push(g.at.diag(format!("when: {msg}"))),
            Ok((m, op, value)) => {
                if let Some(sc) = scope {
                    if reg.find(sc, &m).is_none() {
                        errs.push(g.at.diag(format!("when: {}", unknown_metric(sc, &m, "metric"))));
                    }
                }
                when.push(Guard {
                    metric: m,
                    op,
                    value,
                    source: g.v.trim().to_string(),
                });
            }
        }
    }

    let summary = match &d.summary {
        None => {
            errs.push(missing("summary"));
            None
        }
        Some(s) => check_template(s, scope, "summary", &mut errs),
    };
    let mut remediation = Vec::new();
    match &d.remediation {
        None => errs.push(missing("remediation")),
        Some(r) if r.v.is_empty() => {
            errs.push(r.at.diag("remediation: list at least one step an on-call engineer can take"))
        }
        Some(r) => {
            for step in &r.v {
                if step.v.trim().is_empty() {
                    errs.push(step.at.diag("remediation: a step must not be empty"));
                } else if let Some(t) = check_template(step, scope, "remediation", &mut errs) {
                    remediation.push(t);
                }
            }
        }
    }
    let docs = match &d.docs {
        Some(v) if v.v.trim().is_empty() => {
            errs.push(v.at.diag("docs: must not be empty (leave it out instead)"));
            None
        }
        v => v.as_ref().map(|v| v.v.clone()),
    };

    // Evidence.
    let mut evidence = EvidenceSpec {
        metrics: Vec::new(),
        top: Vec::new(),
        top_by: d.ev_top_by.as_ref().map_or_else(
            || d.metric.as_ref().map_or(String::new(), |m| m.v.clone()),
            |v| v.v.clone(),
        ),
    };
    if let Some(sc) = scope {
        for m in d.ev_metrics.iter().flat_map(|v| &v.v) {
            if reg.find(sc, &m.v).is_none() {
                errs.push(m.at.diag(format!(
                    "evidence.metrics: {}",
                    unknown_metric(sc, &m.v, "metric")
                )));
            }
            evidence.metrics.push(m.v.clone());
        }
        if let Some(top) = &d.ev_top {
            if sc != Scope::Node && !top.v.is_empty() {
                errs.push(top.at.diag(format!(
                    "evidence.top lists node-wide breakdowns, so it is only allowed with scope = \"node\" (this rule has scope \"{sc}\")"
                )));
            }
            for t in &top.v {
                match Scope::parse(&t.v) {
                    Some(Scope::Node) | None => errs.push(t.at.diag(format!(
                        "evidence.top: unknown breakdown \"{}\"; expected one of: process, server, qtype, name, listener",
                        t.v
                    ))),
                    Some(ts) => {
                        if reg.find(ts, &evidence.top_by).is_none() {
                            let at = d.ev_top_by.as_ref().map_or(&t.at, |v| &v.at);
                            errs.push(at.diag(format!(
                                "evidence.top_by: {}",
                                unknown_metric(ts, &evidence.top_by, "metric")
                            )));
                        }
                        evidence.top.push(ts);
                    }
                }
            }
        }
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    let get = |sev| set.iter().find(|(s, ..)| *s == sev).map(|(_, _, t, _)| *t);
    Ok(Rule {
        id: id.v.clone(),
        title,
        description: description.trim().to_string(),
        scope: scope.expect("checked"),
        metric: metric.expect("checked").name.clone(),
        direction,
        info: get(Severity::Info),
        warning: get(Severity::Warning),
        critical: get(Severity::Critical),
        min_samples,
        samples,
        when,
        summary: summary.expect("checked"),
        remediation,
        docs,
        evidence,
        enabled: d.enabled.as_ref().is_none_or(|e| e.v),
        source: d.sources.join(", overridden by "),
    })
}

/// What applying a layer of rule files did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub files: Vec<String>,
    /// Ids of rules the layer added.
    pub added: Vec<String>,
    /// Ids of rules the layer changed (overrides, disables).
    pub overridden: Vec<String>,
}

/// The rules in effect: built-ins plus any added, overridden or disabled.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    drafts: Vec<Draft>,
}

impl RuleSet {
    /// No rules at all (for `rules test` files that opt out of the built-ins).
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// The rules embedded from rules/*.toml.
    pub fn builtin() -> Result<RuleSet> {
        let mut set = RuleSet::empty();
        let files: Vec<(Arc<str>, String)> = super::builtin::FILES
            .iter()
            .map(|(name, text)| (Arc::from(format!("builtin:{name}")), (*text).to_string()))
            .collect();
        set.apply_layer(&files)
            .map_err(|d| InputError(summarize(&d)))?;
        Ok(set)
    }

    /// Adds/overrides from a file or directory (errors carry [`InputError`], exit code 4).
    pub fn load_path(&mut self, path: &Path) -> Result<()> {
        self.load_path_diags(path)
            .map(|_| ())
            .map_err(|d| InputError(summarize(&d)).into())
    }

    /// Like [`RuleSet::load_path`], with every problem found rather than the first.
    /// On error the set is unchanged.
    pub fn load_path_diags(&mut self, path: &Path) -> Result<LayerStats, Vec<Diag>> {
        let files = read_layer(path)?;
        self.apply_layer(&files)
    }

    /// Loads rules from text (for tests and tools); `name` is used in messages.
    pub fn load_str(&mut self, name: &str, text: &str) -> Result<LayerStats, Vec<Diag>> {
        self.apply_layer(&[(Arc::from(name), text.to_string())])
    }

    /// Disables a rule by id; an unknown id is a usage error.
    pub fn disable(&mut self, id: &str) -> Result<()> {
        let Some(i) = self.rules.iter().position(|r| r.id == id) else {
            let hint = self
                .rules
                .iter()
                .map(|r| (super::metrics::edit_distance(&r.id, id), r.id.as_str()))
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, r)| format!(" (did you mean \"{r}\"?)"))
                .unwrap_or_default();
            return Err(UsageError(format!(
                "--disable {id}: no rule with this id{hint}; `dnsdoc doctor --list-rules` shows them"
            ))
            .into());
        };
        self.rules[i].enabled = false;
        self.drafts[i].enabled = Some(Val {
            v: false,
            at: Origin::whole(&Arc::from("--disable")),
        });
        Ok(())
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Applies one layer: all of it, or nothing and every problem.
    fn apply_layer(&mut self, files: &[(Arc<str>, String)]) -> Result<LayerStats, Vec<Diag>> {
        let mut errs = Vec::new();
        let mut overlays = Vec::new();
        for (name, text) in files {
            match parse_file(&Doc {
                name: name.clone(),
                text,
            }) {
                Ok(d) => overlays.extend(d),
                Err(d) => errs.extend(d),
            }
        }
        let mut seen: HashMap<&str, &Origin> = HashMap::new();
        for o in &overlays {
            match &o.id {
                None => errs.push(o.at.diag("missing required field `id`")),
                Some(id) => {
                    if let Some(first) = seen.get(id.v.as_str()) {
                        errs.push(id.at.diag(format!(
                            "duplicate rule id \"{}\": already defined at {first}; within one file or directory each id appears once",
                            id.v
                        )));
                    } else {
                        seen.insert(&id.v, &id.at);
                    }
                }
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut next = self.clone();
        let mut stats = LayerStats {
            files: files.iter().map(|(n, _)| n.to_string()).collect(),
            ..LayerStats::default()
        };
        for o in overlays {
            let id = o.id.clone().expect("checked above").v;
            match next.rules.iter().position(|r| r.id == id) {
                Some(i) => {
                    let merged = next.drafts[i].merged(o);
                    match compile(&merged) {
                        Ok(rule) => {
                            next.rules[i] = rule;
                            next.drafts[i] = merged;
                            stats.overridden.push(id);
                        }
                        Err(d) => errs.extend(d),
                    }
                }
                None => match compile(&o) {
                    Ok(rule) => {
                        next.rules.push(rule);
                        next.drafts.push(o);
                        stats.added.push(id);
                    }
                    Err(d) => errs.extend(d),
                },
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        *self = next;
        Ok(stats)
    }
}

/// One line for an error chain: the first problem, and how many more there are.
pub fn summarize(diags: &[Diag]) -> String {
    match diags {
        [] => "invalid rules".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!(
            "{first} (and {} more problem{}; `dnsdoc rules check` lists them all)",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}

/// Rule files of a path: the file itself, or every `*.toml` of a directory except rule
/// tests (`*.test.toml`), in name order.
pub(crate) fn rule_files(path: &Path) -> Result<Vec<PathBuf>, Vec<Diag>> {
    files_of(
        path,
        |name| name.ends_with(".toml") && !name.ends_with(".test.toml"),
        "no rule files (*.toml, other than *.test.toml) in this directory",
    )
}

/// The file `path` itself, or the regular files of directory `path` whose names pass
/// `wanted`, in name order; `none` is the error when the directory has none.
pub(crate) fn files_of(
    path: &Path,
    wanted: impl Fn(&str) -> bool,
    none: &str,
) -> Result<Vec<PathBuf>, Vec<Diag>> {
    let whole = |msg: String| {
        vec![Diag {
            file: path.display().to_string(),
            line: 0,
            col: 0,
            message: msg,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| whole(format!("cannot list directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| wanted(&n.to_string_lossy())))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(whole(none.into()));
    }
    Ok(files)
}

fn read_layer(path: &Path) -> Result<Vec<(Arc<str>, String)>, Vec<Diag>> {
    rule_files(path)?
        .into_iter()
        .map(|p| {
            let name = p.display().to_string();
            std::fs::read_to_string(&p)
                .map(|text| (Arc::from(name.as_str()), text))
                .map_err(|e| {
                    vec![Diag {
                        file: name.clone(),
                        line: 0,
                        col: 0,
                        message: format!("cannot read rule file: {e}"),
                    }]
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "my_rule"
title = "Too many timeouts"
description = "Timeouts stall clients."
scope = "node"
metric = "timeouts"
warning = 5
critical = 50
min_samples = 10
summary = "{value} timeouts"
remediation = ["look at the servers"]
"#;

    fn errors(text: &str) -> Vec<String> {
        let mut set = RuleSet::builtin().unwrap();
        set.load_str("t.toml", text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn builtins_load_and_are_enabled() {
        let set = RuleSet::builtin().unwrap();
        assert!(set.rules().len() >= 12);
        assert!(set
            .rules()
            .iter()
            .all(|r| r.enabled && r.source.starts_with("builtin:rules/")));
        let lat = set.get("dns_high_latency").unwrap();
        assert_eq!((lat.warning, lat.critical), (Some(100.0), Some(500.0)));
        assert_eq!(lat.samples, "latency.samples");
    }

    #[test]
    fn a_new_rule_is_added_and_an_override_changes_one_field() {
        let mut set = RuleSet::builtin().unwrap();
        let n = set.rules().len();
        let st = set.load_str("t.toml", GOOD).unwrap();
        assert_eq!(st.added, ["my_rule"]);
        assert_eq!(set.rules().len(), n + 1);
        let st = set
            .load_str("o.toml", "id = \"dns_high_latency\"\nwarning = 200.0\n")
            .unwrap();
        assert_eq!(st.overridden, ["dns_high_latency"]);
        let r = set.get("dns_high_latency").unwrap();
        assert_eq!((r.warning, r.critical), (Some(200.0), Some(500.0)));
        assert!(r.source.ends_with("overridden by o.toml"), "{}", r.source);
        set.load_str("d.toml", "id = \"my_rule\"\nenabled = false\n")
            .unwrap();
        assert!(!set.get("my_rule").unwrap().enabled);
        set.load_str("n.toml", "id = \"dns_high_latency\"\ncritical = \"none\"\n")
            .unwrap();
        assert_eq!(set.get("dns_high_latency").unwrap().critical, None);
    }

    #[test]
    fn many_rules_in_one_file() {
        let text = format!(
            "[[rule]]\n{GOOD}\n[[rule]]\n{}",
            GOOD.replace("my_rule", "my_other")
        );
        let mut set = RuleSet::empty();
        let st = set.load_str("m.toml", &text).unwrap();
        assert_eq!(st.added, ["my_rule", "my_other"]);
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = errors("id = \"x\"\ntitle = \"unterminated\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t.toml:2:"), "{e:?}");
        assert!(e[0].contains("invalid TOML"), "{e:?}");
    }

    #[test]
    fn unknown_metric_and_scope_are_errors_with_hints() {
        let e = errors(&GOOD.replace("metric = \"timeouts\"", "metric = \"timeout\""));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:6:10: unknown metric \"timeout\""),
            "{e:?}"
        );
        assert!(e[0].contains("did you mean \"timeouts\"?"), "{e:?}");
        let e = errors(&GOOD.replace("scope = \"node\"", "scope = \"host\""));
        assert!(
            e[0].starts_with("t.toml:5:9: unknown scope \"host\"; expected one of: node, process"),
            "{e:?}"
        );
        let e = errors(
            &GOOD
                .replace("scope = \"node\"", "scope = \"name\"")
                .replace("\"timeouts\"", "\"latency.p99_ms\""),
        );
        assert!(
            e[0].contains("is not available for scope \"name\""),
            "{e:?}"
        );
    }

    #[test]
    fn warning_above_critical_is_an_error() {
        let e = errors(&GOOD.replace("warning = 5", "warning = 500"));
        assert_eq!(e, ["t.toml:7:11: warning threshold 500 is above the critical threshold 50: with direction = \"above\", WARNING must be lower than CRITICAL"]);
        let e = errors(&format!("{GOOD}direction = \"below\"\n"));
        assert!(e[0].contains("is below the critical threshold"), "{e:?}");
    }

    #[test]
    fn ratios_must_be_fractions() {
        let e = errors(
            &GOOD
                .replace("\"timeouts\"", "\"failure_ratio\"")
                .replace("critical = 50", "critical = 0.5"),
        );
        assert!(
            e[0].contains(
                "warning = 5 is out of range for metric \"failure_ratio\" (a ratio from 0 to 1"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn duplicate_ids_in_one_layer_are_errors() {
        let text = format!("[[rule]]\n{GOOD}\n[[rule]]\n{GOOD}");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("duplicate rule id \"my_rule\": already defined at t.toml:3:6"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_fields_unknown_fields_and_bad_placeholders() {
        let e = errors("id = \"new_rule\"\ntitle = \"t\"\n");
        for f in [
            "description",
            "scope",
            "metric",
            "min_samples",
            "summary",
            "remediation",
        ] {
            assert!(
                e.iter()
                    .any(|m| m.contains(&format!("missing required field `{f}`"))),
                "{f}: {e:?}"
            );
        }
        assert!(e.iter().any(|m| m.contains("no threshold")), "{e:?}");
        let e = errors(&format!("{GOOD}threshold = 3\n"));
        assert!(
            e[0].starts_with("t.toml:12:1: invalid TOML: unknown field `threshold`"),
            "{e:?}"
        );
        let e = errors(&GOOD.replace("{value} timeouts", "{vaule} timeouts"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "t.toml:10:12: summary: unknown placeholder {vaule}; did you mean {value}?"
            ),
            "{e:?}"
        );
        let e = errors(&format!(
            "{GOOD}when = [\"failures >> 3\", \"bogus > 1\"]\n"
        ));
        assert!(
            e[0].contains("when: cannot read condition \"failures >> 3\""),
            "{e:?}"
        );
        assert!(e[1].contains("when: unknown metric \"bogus\""), "{e:?}");
    }

    #[test]
    fn a_failed_layer_changes_nothing_and_errors_map_to_exit_4() {
        let mut set = RuleSet::builtin().unwrap();
        let before = set.rules().to_vec();
        let dir = std::env::temp_dir().join(format!("dnsdoc-rules-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), GOOD).unwrap();
        std::fs::write(
            dir.join("b.toml"),
            "id = \"dns_high_latency\"\nwarning = 900.0\n",
        )
        .unwrap();
        let err = set.load_path(&dir).unwrap_err();
        assert_eq!(crate::exit::code_for(&err), crate::exit::INPUT);
        assert!(
            err.to_string()
                .contains("b.toml:2:11: warning threshold 900"),
            "{err}"
        );
        assert_eq!(set.rules(), before.as_slice());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disable_unknown_is_a_usage_error() {
        let mut set = RuleSet::builtin().unwrap();
        set.disable("dns_servfail").unwrap();
        assert!(!set.get("dns_servfail").unwrap().enabled);
        let err = set.disable("dns_servfails").unwrap_err();
        assert_eq!(crate::exit::code_for(&err), crate::exit::USAGE);
        assert!(
            err.to_string().contains("did you mean \"dns_servfail\""),
            "{err}"
        );
    }

    #[test]
    fn guards_parse() {
        assert_eq!(
            parse_guard("failures >= 3").unwrap(),
            ("failures".into(), Op::Ge, 3.0)
        );
        assert_eq!(
            parse_guard("latency.p99_vs_peers>4").unwrap(),
            ("latency.p99_vs_peers".into(), Op::Gt, 4.0)
        );
        assert!(parse_guard("failures 3").is_err());
        assert!(parse_guard(">= 3").is_err());
    }
}

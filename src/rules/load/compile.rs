//! Validation: turns a merged [`Draft`] into a [`Rule`], or explains everything wrong
//! with it, one validator per field so each check is read in one place.

use super::diag::{Diag, Origin, Val};
use super::parse::Draft;
use crate::rules::metrics::{edit_distance, registry, Metric, Scope, Unit};
use crate::rules::template::{Template, BUILTIN_VARS};
use crate::rules::{Direction, EvidenceSpec, Guard, Op, Rule, Severity};

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
pub(super) fn parse_guard(s: &str) -> Result<(String, Op, f64), String> {
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
            .map(|c| (edit_distance(c, var), c))
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
pub(super) fn compile(d: &Draft) -> Result<Rule, Vec<Diag>> {
    let mut errs = Vec::new();
    let Some(id) = &d.id else {
        return Err(vec![d.at.diag("missing required field `id`")]);
    };
    if !valid_id(&id.v) {
        errs.push(id.at.diag(format!(
            "invalid rule id \"{}\": expected lowercase letters, digits and `_`, starting with a letter (e.g. \"dns_high_latency\")",
            id.v
        )));
    }
    let title = required_text(d, &id.v, &d.title, "title", &mut errs);
    let description = required_text(d, &id.v, &d.description, "description", &mut errs);
    let scope = scope_of(d, &id.v, &mut errs);
    let metric = metric_of(d, &id.v, scope, &mut errs);
    let direction = direction_of(d, &mut errs);
    let set = thresholds_of(d, &id.v, &mut errs);
    check_threshold_ranges(&set, metric, &mut errs);
    check_threshold_order(&set, direction, &mut errs);
    let min_samples = min_samples_of(d, &id.v, &mut errs);
    let samples = samples_of(d, metric, scope, &mut errs);
    let when = guards_of(d, scope, &mut errs);
    let summary = summary_of(d, &id.v, scope, &mut errs);
    let remediation = remediation_of(d, &id.v, scope, &mut errs);
    let docs = docs_of(d, &mut errs);
    let evidence = evidence_of(d, scope, &mut errs);
    let allow = allow_of(d, scope, &mut errs);

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
        allow,
        source: d.sources.join(", overridden by "),
    })
}

/// The error for a required field the rule (after overrides) does not set.
fn missing(d: &Draft, id: &str, name: &str) -> Diag {
    d.at.diag(format!("rule \"{id}\": missing required field `{name}`"))
}

/// A required, non-empty text field (`title`, `description`).
fn required_text(
    d: &Draft,
    id: &str,
    v: &Option<Val<String>>,
    name: &str,
    errs: &mut Vec<Diag>,
) -> String {
    match v {
        None => {
            errs.push(missing(d, id, name));
            String::new()
        }
        Some(s) if s.v.trim().is_empty() => {
            errs.push(s.at.diag(format!("{name}: must not be empty")));
            String::new()
        }
        Some(s) => s.v.clone(),
    }
}

/// `scope`: required, one of [`Scope::ALL`].
fn scope_of(d: &Draft, id: &str, errs: &mut Vec<Diag>) -> Option<Scope> {
    match &d.scope {
        None => {
            errs.push(missing(d, id, "scope"));
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
    }
}

/// `metric`: required, a metric of the rule's scope (checked only when the scope is
/// valid).
fn metric_of(
    d: &Draft,
    id: &str,
    scope: Option<Scope>,
    errs: &mut Vec<Diag>,
) -> Option<&'static Metric> {
    let reg = registry();
    match (&d.metric, scope) {
        (None, _) => {
            errs.push(missing(d, id, "metric"));
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
    }
}

/// `direction`: "above" (the default) or "below".
fn direction_of(d: &Draft, errs: &mut Vec<Diag>) -> Direction {
    match &d.direction {
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
    }
}

/// A threshold that is set: its severity, field name, value and where it was written.
type Level<'a> = (Severity, &'a str, f64, &'a Origin);

/// The thresholds that are set (`info`, `warning`, `critical`, in that order); at
/// least one is required.
fn thresholds_of<'a>(d: &'a Draft, id: &str, errs: &mut Vec<Diag>) -> Vec<Level<'a>> {
    // Thresholds: at least one, in range for the metric's unit, ordered by severity.
    let levels = [
        (Severity::Info, "info", &d.info),
        (Severity::Warning, "warning", &d.warning),
        (Severity::Critical, "critical", &d.critical),
    ];
    let mut set: Vec<Level<'a>> = Vec::new();
    for (sev, name, v) in levels {
        if let Some(v) = v {
            if let Some(t) = threshold(v, name, errs) {
                set.push((sev, name, t, &v.at));
            }
        }
    }
    let thresholds_given = levels.iter().any(|(_, _, v)| v.is_some());
    if set.is_empty() && !thresholds_given {
        errs.push(d.at.diag(format!(
            "rule \"{id}\": no threshold; set at least one of `info`, `warning`, `critical`"
        )));
    } else if set.is_empty() && errs.is_empty() {
        errs.push(d.at.diag(format!(
            "rule \"{id}\": every threshold is \"none\"; keep at least one, or disable the rule with `enabled = false`"
        )));
    }
    set
}

/// Every threshold within the values the metric's unit may take.
fn check_threshold_ranges(set: &[Level], metric: Option<&Metric>, errs: &mut Vec<Diag>) {
    if let Some(def) = metric {
        let (lo, hi) = def.unit.range();
        for (_, name, t, at) in set {
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
}

/// Thresholds ordered by severity in the rule's direction (WARNING below CRITICAL
/// when higher is worse).
fn check_threshold_order(set: &[Level], direction: Direction, errs: &mut Vec<Diag>) {
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
}

/// `min_samples`: required, 0 or more.
fn min_samples_of(d: &Draft, id: &str, errs: &mut Vec<Diag>) -> u64 {
    match &d.min_samples {
        None => {
            errs.push(missing(d, id, "min_samples"));
            0
        }
        Some(v) if v.v < 0 => {
            errs.push(v.at.diag(format!("min_samples must be 0 or more, found {}", v.v)));
            0
        }
        Some(v) => v.v as u64,
    }
}

/// `samples`: a count metric of the scope; by default the metric's own.
fn samples_of(
    d: &Draft,
    metric: Option<&Metric>,
    scope: Option<Scope>,
    errs: &mut Vec<Diag>,
) -> String {
    let reg = registry();
    match (&d.samples, metric, scope) {
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
    }
}

/// `when`: conditions `METRIC OP NUMBER` on metrics of the scope.
fn guards_of(d: &Draft, scope: Option<Scope>, errs: &mut Vec<Diag>) -> Vec<Guard> {
    let reg = registry();
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
    when
}

/// `summary`: a required template.
fn summary_of(d: &Draft, id: &str, scope: Option<Scope>, errs: &mut Vec<Diag>) -> Option<Template> {
    match &d.summary {
        None => {
            errs.push(missing(d, id, "summary"));
            None
        }
        Some(s) => check_template(s, scope, "summary", errs),
    }
}

/// `remediation`: at least one non-empty step, each a template.
fn remediation_of(
    d: &Draft,
    id: &str,
    scope: Option<Scope>,
    errs: &mut Vec<Diag>,
) -> Vec<Template> {
    let mut remediation = Vec::new();
    match &d.remediation {
        None => errs.push(missing(d, id, "remediation")),
        Some(r) if r.v.is_empty() => {
            errs.push(r.at.diag("remediation: list at least one step an on-call engineer can take"))
        }
        Some(r) => {
            for step in &r.v {
                if step.v.trim().is_empty() {
                    errs.push(step.at.diag("remediation: a step must not be empty"));
                } else if let Some(t) = check_template(step, scope, "remediation", errs) {
                    remediation.push(t);
                }
            }
        }
    }
    remediation
}

/// `docs`: optional, but not empty when given.
fn docs_of(d: &Draft, errs: &mut Vec<Diag>) -> Option<String> {
    match &d.docs {
        Some(v) if v.v.trim().is_empty() => {
            errs.push(v.at.diag("docs: must not be empty (leave it out instead)"));
            None
        }
        v => v.as_ref().map(|v| v.v.clone()),
    }
}

/// `allow`: domains the rule never judges, each with its subdomains; only for the
/// scopes whose subjects are domains. Lower case, no trailing dot, valid labels.
fn allow_of(d: &Draft, scope: Option<Scope>, errs: &mut Vec<Diag>) -> Vec<String> {
    let Some(list) = &d.allow else {
        return Vec::new();
    };
    if let Some(sc) = scope.filter(|s| !s.has_domains()) {
        errs.push(list.at.diag(format!(
            "allow lists domains, so it is only allowed with scope = \"domain\" or \"suffix\" (this rule has scope \"{sc}\")"
        )));
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in &list.v {
        let v = e.v.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !v.is_empty()
            && v.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if ok {
            out.push(v);
        } else {
            errs.push(e.at.diag(format!(
                "allow: \"{}\" is not a domain name; expected e.g. \"example.com\" (which also allows its subdomains)",
                e.v
            )));
        }
    }
    out
}

/// `evidence`: extra metrics of the scope, and node-wide breakdowns (`top`) ranked by
/// `top_by` (by default the rule's metric).
fn evidence_of(d: &Draft, scope: Option<Scope>, errs: &mut Vec<Diag>) -> EvidenceSpec {
    let reg = registry();
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
    evidence
}

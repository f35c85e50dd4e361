//! `dnsdoc rules export --format prometheus`: the effective rules (built-ins plus
//! overrides, minus disabled) as a Prometheus alerting-rules file over the series
//! `dnsdoc serve` exports, so the fleet alerts on the same thresholds as `doctor`.
//!
//! Each rule becomes one alert per severity it has a threshold for (same name, a
//! `severity` label; route or inhibit in Alertmanager as usual). The rule's metric is
//! measured over a range `[window]` (doctor's observation window), its `min_samples`
//! and `when` guards become `and` clauses, `for:` is the export's `--for`, and its
//! summary becomes the `summary` annotation, placeholders filled by Prometheus from
//! the same expressions. A rule whose metric, guard or scope the series cannot express
//! is skipped, with the reason.
//!
//! YAML is written by hand: every scalar is a JSON string, which is valid YAML, so no
//! quoting rule of YAML's can bite (and no YAML crate is needed for one shape).

pub mod promql;

use std::fmt::Write;
use std::time::Duration;

use crate::rules::{Direction, Op, Rule, RuleSet, Scope, Severity, Unit};
use promql::node_metric;

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The range each metric is measured over (doctor's window).
    pub window: Duration,
    /// How long a condition must hold before the alert fires.
    pub for_: Duration,
}

/// A rule that could not be exported, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub rule: String,
    pub reason: String,
}

/// One exported alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub name: String,
    pub rule: String,
    pub severity: Severity,
    pub expr: String,
    pub summary: String,
    pub description: String,
    pub docs: Option<String>,
}

/// The export: alerts, and the rules left out.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub alerts: Vec<Alert>,
    pub skipped: Vec<Skipped>,
}

/// Prometheus's duration syntax ("5m", "90s", "1h30m").
pub fn prom_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, n) in [("h", 3600), ("m", 60), ("s", 1)] {
        if s >= n {
            let _ = write!(out, "{}{unit}", s / n);
            s %= n;
        }
    }
    out
}

/// `dns_failure_rate` -> `DnsFailureRate`.
fn alert_name(id: &str) -> String {
    id.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn op_str(op: Op) -> &'static str {
    match op {
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Eq => "==",
        Op::Ne => "!=",
    }
}

/// A Go-template pipeline formatting a number of `unit` as doctor does.
fn go_format(unit: Unit) -> &'static str {
    match unit {
        Unit::Ratio => "humanizePercentage",
        Unit::Ms => "printf \"%.2f ms\"",
        Unit::PerSecond => "printf \"%.1f/s\"",
        Unit::Seconds => "humanizeDuration",
        _ => "humanize",
    }
}

/// The rule's metric unit of another placeholder metric.
fn unit_of(scope: Scope, metric: &str) -> Unit {
    crate::rules::metrics::registry()
        .find(scope, metric)
        .map_or(Unit::Count, |m| m.unit)
}

/// Translates every rule of `rules`.
pub fn export(rules: &RuleSet, opts: &ExportOptions) -> Export {
    let mut out = Export::default();
    let w = prom_duration(opts.window);
    for rule in rules.rules().iter().filter(|r| r.enabled) {
        match translate(rule, &w) {
            Ok(mut alerts) => out.alerts.append(&mut alerts),
            Err(reason) => out.skipped.push(Skipped {
                rule: rule.id.clone(),
                reason,
            }),
        }
    }
    out
}

fn translate(rule: &Rule, w: &str) -> Result<Vec<Alert>, String> {
    if rule.scope != Scope::Node {
        return Err(match rule.scope {
            Scope::Process => "scope `process`: it compares each process with the rest of \
                the traffic; the exported per-process series are two counters, with no latency"
                .to_string(),
            Scope::Server => "scope `server`: the exported per-server series count queries \
                but not their outcome or latency"
                .to_string(),
            Scope::Listener => "scope `listener`: local DNS servers' own view (server_side) \
                is not exported"
                .to_string(),
            Scope::LocalServer => "scope `local_server`: local servers' hops (client-facing \
                and upstream) and loop counts are not exported"
                .to_string(),
            Scope::CorednsZone => "scope `coredns_zone`: it reads CoreDNS's own /metrics \
                page; alert on coredns_dns_responses_total{rcode=\"SERVFAIL\"} where \
                Prometheus scrapes CoreDNS"
                .to_string(),
            Scope::Domain | Scope::Suffix => format!(
                "scope `{}`: the security features (per registered domain or suffix and \
                 process) are judged by `dnsdoc doctor` only; exporting them per domain \
                 would give Prometheus a series per name a tunnel or DGA invents",
                rule.scope.as_str()
            ),
            other => format!("scope `{}` is not exported per subject", other.as_str()),
        });
    }
    let value = node_metric(&rule.metric, w)?;
    let mut guards = Vec::new();
    if rule.min_samples > 0 {
        let samples = node_metric(&rule.samples, w)?;
        guards.push(format!("{samples} >= {}", rule.min_samples));
    }
    for g in &rule.when {
        let e = node_metric(&g.metric, w).map_err(|e| format!("condition `{}`: {e}", g.source))?;
        guards.push(format!("{e} {} {}", op_str(g.op), number(g.value)));
    }
    let cmp = match rule.direction {
        Direction::Above => ">",
        Direction::Below => "<",
    };
    let mut alerts = Vec::new();
    for (severity, threshold) in rule.thresholds() {
        let mut expr = format!("{value} {cmp} {}", number(threshold));
        for g in &guards {
            let _ = write!(expr, "\nand\n{g}");
        }
        let summary = rule
            .summary
            .render(&|var| placeholder(rule, var, w, severity, threshold));
        alerts.push(Alert {
            name: alert_name(&rule.id),
            rule: rule.id.clone(),
            severity,
            expr,
            summary,
            description: rule.title.clone(),
            docs: rule.docs.clone(),
        });
    }
    if alerts.is_empty() {
        return Err("no threshold set".into());
    }
    Ok(alerts)
}

/// A summary placeholder as Go-template text Prometheus fills when the alert fires.
fn placeholder(rule: &Rule, var: &str, w: &str, severity: Severity, threshold: f64) -> String {
    let unit = rule.unit();
    let level = |t: Option<f64>| t.map_or_else(|| "none".to_string(), |t| unit.format(t));
    match var {
        "value" => format!("{{{{ $value | {} }}}}", go_format(unit)),
        "threshold" => unit.format(threshold),
        "severity" => severity.as_str().to_string(),
        "info" => level(rule.info),
        "warning" => level(rule.warning),
        "critical" => level(rule.critical),
        "min_samples" => rule.min_samples.to_string(),
        "subject" => "{{ $labels.instance }}".to_string(),
        "metric" => rule.metric.clone(),
        "rule" => rule.id.clone(),
        "window" => w.to_string(),
        "coredns_period" => format!("in the last {w}"),
        "samples" => query_placeholder(&rule.samples, rule.scope, w),
        other => query_placeholder(other, rule.scope, w),
    }
}

/// `{{ with query ... }}` for a metric placeholder: the value of the alert's own
/// dnsdoc (`instance`), formatted in the metric's unit; "n/a" when not expressible, or
/// when that dnsdoc has no such series (a node counter it could not read), as doctor
/// writes a null metric.
fn query_placeholder(metric: &str, scope: Scope, w: &str) -> String {
    match node_metric(metric, w) {
        Ok(e) => format!(
            "{{{{ with printf `{e} and on ({by}) dnsdoc_windows_total{{{by}=\"%s\"}}` $labels.{by} | query }}}}{{{{ . | first | value | {} }}}}{{{{ else }}}}n/a{{{{ end }}}}",
            go_format(unit_of(scope, metric)),
            by = promql::BY,
        ),
        Err(_) => "n/a".to_string(),
    }
}

/// A threshold as PromQL writes it.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The alerting-rules file. `sources` names where the rules came from (a comment).
pub fn to_yaml(e: &Export, opts: &ExportOptions, sources: &str) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Prometheus alerting rules generated by `dnsdoc rules export` (dnsdoc {}).",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(y, "# Rules: {sources}.");
    let _ = writeln!(
        y,
        "# Each metric over [{}] per `{}`; for: {}. Over the series of `dnsdoc serve`.",
        prom_duration(opts.window),
        promql::BY,
        prom_duration(opts.for_)
    );
    for s in &e.skipped {
        let _ = writeln!(y, "# skipped {}: {}", s.rule, s.reason);
    }
    y.push_str("groups:\n  - name: dnsdoc\n    rules:\n");
    for a in &e.alerts {
        let _ = writeln!(y, "      - alert: {}", q(&a.name));
        let _ = writeln!(y, "        expr: {}", q(&a.expr));
        let _ = writeln!(y, "        for: {}", q(&prom_duration(opts.for_)));
        y.push_str("        labels:\n");
        let _ = writeln!(
            y,
            "          severity: {}",
            q(&a.severity.as_str().to_ascii_lowercase())
        );
        let _ = writeln!(y, "          rule: {}", q(&a.rule));
        y.push_str("        annotations:\n");
        let _ = writeln!(y, "          summary: {}", q(&a.summary));
        let _ = writeln!(y, "          description: {}", q(&a.description));
        if let Some(d) = &a.docs {
            let _ = writeln!(y, "          docs: {}", q(d));
        }
    }
    y
}

/// Writes `text` to `path` atomically (temporary file beside it, fsync, rename). A path
/// that exists and is not a regular file (`/dev/stdout`, a FIFO) is written in place:
/// renaming over it would replace the device with a file.
pub fn write_atomic(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write as _;
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::write(path, text).with_context(|| format!("writing {}", path.display()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "rules".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> anyhow::Result<()> {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ExportOptions {
        ExportOptions {
            window: Duration::from_secs(300),
            for_: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_device_is_written_in_place_not_replaced() {
        write_atomic(std::path::Path::new("/dev/null"), "x").unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(!m.is_file(), "/dev/null is still a device");
    }

    #[test]
    fn names_and_durations_read_as_prometheus_writes_them() {
        assert_eq!(alert_name("dns_failure_rate"), "DnsFailureRate");
        assert_eq!(prom_duration(Duration::from_secs(300)), "5m");
        assert_eq!(prom_duration(Duration::from_secs(5430)), "1h30m30s");
        assert_eq!(prom_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn a_rule_keeps_its_thresholds_severities_and_guards() {
        let mut set = RuleSet::empty();
        set.load_str(
            "t.toml",
            r#"
id = "t_fail"
remediation = ["r"]
title = "Failing"
description = "d"
scope = "node"
metric = "failure_ratio"
warning = 0.02
critical = 0.3
min_samples = 7
when = ["failures >= 4"]
summary = "{value} failed ({failures} of {completed}) over {window}"
"#,
        )
        .unwrap();
        let e = export(&set, &opts());
        assert!(e.skipped.is_empty(), "{:?}", e.skipped);
        assert_eq!(e.alerts.len(), 2);
        let (w, c) = (&e.alerts[0], &e.alerts[1]);
        assert_eq!(
            (w.severity, c.severity),
            (Severity::Warning, Severity::Critical)
        );
        assert!(w.expr.contains(" > 0.02\nand\n"), "{}", w.expr);
        assert!(c.expr.contains(" > 0.3\nand\n"), "{}", c.expr);
        assert!(
            w.expr.contains(">= 7") && w.expr.contains(">= 4"),
            "{}",
            w.expr
        );
        assert!(w
            .summary
            .starts_with("{{ $value | humanizePercentage }} failed ("));
        assert!(w.summary.ends_with(" over 5m"), "{}", w.summary);
        let expressible = w.summary.replace("{{ else }}n/a{{ end }}", "");
        assert!(!expressible.contains("n/a"), "{}", w.summary);
        let yaml = to_yaml(&e, &opts(), "test");
        assert!(yaml.contains("      - alert: \"TFail\"\n"), "{yaml}");
        assert!(yaml.contains("        for: \"1m\"\n"));
    }

    #[test]
    fn rules_the_series_cannot_express_are_skipped_with_a_reason() {
        let mut set = RuleSet::empty();
        set.load_str(
            "t.toml",
            r#"
id = "t_server"
remediation = ["r"]
min_samples = 1
title = "t"
description = "d"
scope = "server"
metric = "failure_ratio"
warning = 0.1
summary = "{value}"
"#,
        )
        .unwrap();
        let e = export(&set, &opts());
        assert!(e.alerts.is_empty());
        assert_eq!(e.skipped.len(), 1);
        assert!(
            e.skipped[0].reason.contains("scope `server`"),
            "{:?}",
            e.skipped
        );
    }
}

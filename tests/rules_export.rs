//! `dnsdoc rules export --format prometheus`, checked by Prometheus's own tools:
//! `promtool check rules` on the file, and `promtool test rules` evaluating the alerts
//! over series shaped like `dnsdoc serve`'s. Traffic is generated from the built-in
//! rules' thresholds (not repeated here), and the expected summaries are the rules' own
//! templates filled with the numbers Prometheus must compute.

use std::collections::BTreeMap;
use std::process::{Command, Output};

mod common;
use common::*;
use dnsdoc::rules::{Rule, RuleSet, Scope, Unit};

const INSTANCE: &str = "node-1";

fn export(dir: &TempDir, extra: &[&str]) -> (String, Output) {
    let path = dir.path().join("dnsdoc.yml");
    let mut args = vec!["rules", "export", "--format", "prometheus", "-o"];
    let p = path.to_str().unwrap().to_string();
    args.push(&p);
    args.extend_from_slice(extra);
    let out = run_dnsdoc(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (p, out)
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (apt-get install prometheus)")
}

/// Go's `%.4g` for the values these tests produce (no exponents).
fn g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Prometheus's `humanize` for values >= 1 (SI prefixes), and 0.
fn humanize(mut v: f64) -> String {
    let mut prefix = "";
    for p in ["k", "M", "G"] {
        if v.abs() < 1000.0 {
            break;
        }
        v /= 1000.0;
        prefix = p;
    }
    format!("{}{prefix}", g4(v))
}

/// A value as the exported template formats it for its unit.
fn formatted(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Ratio => format!("{}%", g4(v * 100.0)),
        Unit::Ms => format!("{v:.2} ms"),
        _ => humanize(v),
    }
}

/// Traffic per minute of one scenario, all client-side.
#[derive(Clone, Default)]
struct Traffic {
    noerror: u64,
    nxdomain: u64,
    servfail: u64,
    timeouts: u64,
    /// Queries local servers received.
    server: u64,
    /// Index into DURATION_BUCKETS of the bucket every answer falls in.
    bucket: usize,
}

impl Traffic {
    /// The node metrics over a 5m window of this traffic (Prometheus extrapolates the
    /// 4 minutes of samples in the window to 5).
    fn metrics(&self) -> BTreeMap<&'static str, f64> {
        let k = 5.0;
        let responses = (self.noerror + self.nxdomain + self.servfail) as f64 * k;
        let timeouts = self.timeouts as f64 * k;
        let servfail = self.servfail as f64 * k;
        let nx = self.nxdomain as f64 * k;
        let completed = responses + timeouts;
        let failures = timeouts + servfail;
        let b = dnsdoc::series::DURATION_BUCKETS;
        let lower = if self.bucket == 0 {
            0.0
        } else {
            b[self.bucket - 1]
        };
        let q = |p: f64| (lower + (b[self.bucket] - lower) * p) * 1000.0;
        BTreeMap::from([
            ("queries", completed),
            ("observed_queries", completed + self.server as f64 * k),
            ("responses", responses),
            ("timeouts", timeouts),
            ("completed", completed),
            ("failures", failures),
            ("rcodes.NOERROR", self.noerror as f64 * k),
            ("rcodes.NXDOMAIN", nx),
            ("rcodes.SERVFAIL", servfail),
            ("rcodes.REFUSED", 0.0),
            ("failure_ratio", failures / completed),
            ("timeout_ratio", timeouts / completed),
            ("servfail_ratio", servfail / completed),
            ("nxdomain_ratio", nx / responses),
            ("latency.samples", responses),
            ("latency.p50_ms", q(0.5)),
            ("latency.p95_ms", q(0.95)),
            ("latency.p99_ms", q(0.99)),
            ("capture.dropped.total", 0.0),
        ])
    }

    /// promtool input series: counters from 0, one sample a minute for 20 minutes.
    fn series(&self) -> String {
        let mut s = String::new();
        let mut add = |name: &str, labels: &str, per_min: f64| {
            let sep = if labels.is_empty() { "" } else { "," };
            s.push_str(&format!(
                "      - series: '{name}{{instance=\"{INSTANCE}\"{sep}{labels}}}'\n        values: '0+{per_min}x20'\n"
            ));
        };
        add("dnsdoc_windows_total", "", 6.0);
        add("dnsdoc_timeouts_total", "", self.timeouts as f64);
        add("dnsdoc_server_queries_total", "", self.server as f64);
        for (rcode, n) in [
            ("NOERROR", self.noerror),
            ("NXDOMAIN", self.nxdomain),
            ("SERVFAIL", self.servfail),
        ] {
            add(
                "dnsdoc_responses_total",
                &format!("rcode=\"{rcode}\""),
                n as f64,
            );
        }
        let answered = (self.noerror + self.nxdomain + self.servfail) as f64;
        add(
            "dnsdoc_queries_total",
            "server=\"10.0.0.53:53\",proto=\"udp\",qtype=\"A\"",
            answered + self.timeouts as f64,
        );
        for (i, upper) in dnsdoc::series::DURATION_BUCKETS.iter().enumerate() {
            let n = if i >= self.bucket { answered } else { 0.0 };
            add(
                "dnsdoc_query_duration_seconds_bucket",
                &format!("le=\"{upper}\""),
                n,
            );
        }
        add(
            "dnsdoc_query_duration_seconds_bucket",
            "le=\"+Inf\"",
            answered,
        );
        add("dnsdoc_query_duration_seconds_count", "", answered);
        add(
            "dnsdoc_capture_dropped_total",
            "reason=\"ringbuf_full\"",
            0.0,
        );
        add("dnsdoc_capture_packets_total", "", answered * 4.0);
        s
    }
}

/// The rule's summary as Prometheus must render it for `traffic` at `severity`.
fn expected_summary(
    rule: &Rule,
    severity: dnsdoc::rules::Severity,
    threshold: f64,
    m: &BTreeMap<&str, f64>,
) -> String {
    let reg = dnsdoc::rules::metrics::registry();
    let unit = |name: &str| reg.find(Scope::Node, name).map_or(Unit::Count, |x| x.unit);
    rule.summary.render(&|var| match var {
        "value" => formatted(rule.unit(), m[rule.metric.as_str()]),
        "samples" => formatted(Unit::Count, m[rule.samples.as_str()]),
        "threshold" => rule.unit().format(threshold),
        "severity" => severity.as_str().to_string(),
        "window" => "5m".to_string(),
        "subject" => INSTANCE.to_string(),
        other => formatted(
            unit(other),
            *m.get(other).unwrap_or_else(|| panic!("{other}?")),
        ),
    })
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One promtool test group: `traffic`, and the alerts `firing` (rule ids) expected to
/// fire at 10m with every severity whose threshold their value crosses.
fn group(name: &str, traffic: &Traffic, checked: &[&Rule], firing: &[&str]) -> String {
    let m = traffic.metrics();
    let mut g = format!(
        "  - name: {}\n    interval: 1m\n    input_series:\n{}    alert_rule_test:\n",
        q(name),
        traffic.series()
    );
    for rule in checked {
        let mut alerts = String::new();
        if firing.contains(&rule.id.as_str()) {
            let value = m[rule.metric.as_str()];
            for (severity, threshold) in rule.thresholds() {
                if !rule.direction.crossed(value, threshold) {
                    continue;
                }
                alerts.push_str(&format!(
                    "          - exp_labels: {{severity: {}, rule: {}, instance: {}}}\n            exp_annotations:\n              summary: {}\n              description: {}\n",
                    q(&severity.as_str().to_ascii_lowercase()),
                    q(&rule.id),
                    q(INSTANCE),
                    q(&expected_summary(rule, severity, threshold, &m)),
                    q(&rule.title),
                ));
                if let Some(d) = &rule.docs {
                    alerts.push_str(&format!("              docs: {}\n", q(d)));
                }
            }
            assert!(
                !alerts.is_empty(),
                "{name}: {} would not fire: {value}",
                rule.id
            );
        }
        let alertname: String = rule
            .id
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        if alerts.is_empty() {
            g.push_str(&format!(
                "      - eval_time: 10m\n        alertname: {alertname}\n        exp_alerts: []\n"
            ));
        } else {
            g.push_str(&format!("      - eval_time: 10m\n        alertname: {alertname}\n        exp_alerts:\n{alerts}"));
        }
    }
    g
}

/// Per minute, `n` queries of which a share `r` (0..1) is `bad`, the rest NOERROR.
fn with_share(r: f64) -> (u64, u64) {
    let bad = (r * 1000.0).round() as u64;
    (1000 - bad, bad)
}

#[test]
fn exported_rules_pass_promtool_check_and_list_what_they_skip() {
    let dir = TempDir::new("export");
    let (path, out) = export(&dir, &[]);
    let check = promtool(&["check", "rules", &path]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let yaml = std::fs::read_to_string(&path).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every enabled rule is either an alert or skipped with a reason, in both places.
    for rule in RuleSet::builtin()
        .unwrap()
        .rules()
        .iter()
        .filter(|r| r.enabled)
    {
        let exported = yaml.contains(&format!("rule: \"{}\"", rule.id));
        let skipped = format!("skipped {}: ", rule.id);
        assert!(
            exported != (yaml.contains(&skipped) && stderr.contains(&skipped)),
            "{} is neither exported nor skipped (or both)\n{stderr}",
            rule.id
        );
        if rule.scope != Scope::Node {
            assert!(!exported, "{} is per subject", rule.id);
        }
    }
    assert!(yaml.contains("rule: \"dns_failure_rate\""));
}

#[test]
fn overrides_and_disabled_rules_are_what_is_exported() {
    let dir = TempDir::new("export-override");
    let rules = dir.write(
        "override.toml",
        "id = \"dns_failure_rate\"\nwarning = 0.3\ncritical = 0.6\n",
    );
    let (path, _) = export(
        &dir,
        &[
            "--rules",
            &rules,
            "--disable",
            "dns_timeouts",
            "--window",
            "10m",
            "--for",
            "30s",
        ],
    );
    let yaml = std::fs::read_to_string(&path).unwrap();
    assert!(yaml.contains(") > 0.3\\nand"), "{yaml}");
    assert!(yaml.contains(") > 0.6\\nand"), "{yaml}");
    assert!(!yaml.contains("rule: \"dns_timeouts\""), "disabled");
    assert!(yaml.contains("[10m]") && yaml.contains("for: \"30s\""));
    assert!(promtool(&["check", "rules", &path]).status.success());
}

#[test]
fn exported_alerts_fire_at_doctors_thresholds_in_promtool() {
    let dir = TempDir::new("export-test");
    let (path, _) = export(&dir, &[]);
    let yaml = std::fs::read_to_string(&path).unwrap();
    let set = RuleSet::builtin().unwrap();
    let exported: Vec<&Rule> = set
        .rules()
        .iter()
        .filter(|r| yaml.contains(&format!("rule: \"{}\"", r.id)))
        .collect();
    let rule = |id: &str| {
        *exported
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} exported"))
    };
    let critical = |id: &str| rule(id).critical.unwrap();
    // Past the critical threshold, halfway to everything.
    let past = |c: f64| (c + 1.0) / 2.0;

    let healthy = Traffic {
        noerror: 1000,
        bucket: 0,
        ..Traffic::default()
    };
    let (ok, bad) = with_share(past(
        critical("dns_failure_rate").max(critical("dns_servfail")),
    ));
    let servfail = Traffic {
        noerror: ok,
        servfail: bad,
        ..healthy.clone()
    };
    let (ok, bad) = with_share(past(critical("dns_nxdomain_ratio")));
    let nxdomain = Traffic {
        noerror: ok,
        nxdomain: bad,
        ..healthy.clone()
    };
    // Every answer in the first bucket whose lower bound is past the critical p99.
    let crit_s = critical("dns_high_latency") / 1000.0;
    let b = dnsdoc::series::DURATION_BUCKETS;
    let bucket = (1..b.len())
        .find(|&i| b[i - 1] >= crit_s)
        .expect("a bucket past critical");
    let slow = Traffic {
        bucket,
        ..healthy.clone()
    };
    let silent = Traffic::default();

    let mut test = format!(
        "rule_files: [{}]\nevaluation_interval: 1m\ntests:\n",
        q(&path)
    );
    test.push_str(&group("healthy", &healthy, &exported, &[]));
    test.push_str(&group(
        "servfail",
        &servfail,
        &[
            rule("dns_failure_rate"),
            rule("dns_servfail"),
            rule("dns_nxdomain_ratio"),
        ],
        &["dns_failure_rate", "dns_servfail"],
    ));
    test.push_str(&group(
        "nxdomain",
        &nxdomain,
        &[rule("dns_nxdomain_ratio"), rule("dns_failure_rate")],
        &["dns_nxdomain_ratio"],
    ));
    test.push_str(&group(
        "slow",
        &slow,
        &[rule("dns_high_latency"), rule("dns_failure_rate")],
        &["dns_high_latency"],
    ));
    test.push_str(&group(
        "silent",
        &silent,
        &[rule("dns_no_traffic"), rule("dns_failure_rate")],
        &["dns_no_traffic"],
    ));
    let test_path = dir.write("dnsdoc.test.yml", &test);
    let out = promtool(&["test", "rules", &test_path]);
    assert!(
        out.status.success(),
        "{}{}\n{test}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

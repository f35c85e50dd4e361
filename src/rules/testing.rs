//! Rule tests (`dnsdoc rules test`): a snapshot and the findings it must produce, the
//! way promtool tests Prometheus rules. Format in docs/RULES.md ("Testing rules").
//!
//! A case may patch its snapshot (`patch = { "latency.p99_ms" = 250.0 }`) so one
//! realistic base snapshot serves many cases, each changing only what it is about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::load::{files_of, Diag, Doc, Origin};
use super::{evaluate, Finding, RuleSet, Severity};
use crate::snapshot::Snapshot;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    rule_files: Option<Vec<Spanned<String>>>,
    builtins: Option<bool>,
    test: Option<Vec<Spanned<RawCase>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Option<Spanned<String>>,
    snapshot: Option<Spanned<String>>,
    patch: Option<Spanned<toml::Table>>,
    rules: Option<Vec<Spanned<String>>>,
    findings: Option<Vec<Spanned<RawExpect>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    rule: Spanned<String>,
    severity: Spanned<String>,
    subject: Option<Spanned<String>>,
}

/// A finding a case expects. Without `subject`, any subject matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub rule: String,
    pub severity: Severity,
    pub subject: Option<String>,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.rule, self.severity)?;
        if let Some(s) = &self.subject {
            write!(f, " on {s}")?;
        }
        Ok(())
    }
}

/// One test case, ready to run.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// "file:line" of the case, for reports.
    pub location: String,
    pub snapshot: Snapshot,
    /// Only findings of these rules are compared (all rules when None).
    pub only: Option<Vec<String>>,
    pub expect: Vec<Expected>,
}

/// A test file: the rules under test and its cases.
#[derive(Debug, Clone)]
pub struct TestFile {
    pub path: PathBuf,
    pub rules: RuleSet,
    pub cases: Vec<TestCase>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub location: String,
    /// Expected findings that did not appear.
    pub missing: Vec<String>,
    /// Findings that appeared but were not expected.
    pub unexpected: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

/// Test files of a path: the file itself, or every `*.test.toml` of a directory.
pub fn test_files(path: &Path) -> Result<Vec<PathBuf>, Vec<Diag>> {
    files_of(
        path,
        |name| name.ends_with(".test.toml"),
        "no rule test files (*.test.toml) in this directory",
    )
}

/// Reads and validates a test file, its rule files and its snapshots.
pub fn load_test_file(path: &Path) -> Result<TestFile, Vec<Diag>> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Origin::whole(&name).diag(format!("cannot read rule test file: {e}"))])?;
    let doc = Doc {
        name: name.clone(),
        text: &text,
    };
    // A rule file given to `rules test` is a common slip: say so, not "unknown field".
    if let Ok(table) = toml::from_str::<toml::Table>(&text) {
        if (table.contains_key("rule") || table.contains_key("id")) && !table.contains_key("test") {
            return Err(vec![Origin::whole(&name).diag(format!(
                "this is a rule file, not a rule test file: check it with `dnsdoc rules check {}`; \
                 tests of rules live in *.test.toml files (docs/RULES.md, \"Testing rules\")",
                path.display()
            ))]);
        }
    }
    let raw: RawFile = toml::from_str(&text).map_err(|e| vec![doc.toml_error(&e)])?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut errs = Vec::new();

    let mut rules = if raw.builtins.unwrap_or(true) {
        RuleSet::builtin().map_err(|e| vec![Origin::whole(&name).diag(e.to_string())])?
    } else {
        RuleSet::empty()
    };
    for rf in raw.rule_files.unwrap_or_default() {
        let at = doc.origin(rf.span());
        let p = base.join(rf.get_ref());
        if let Err(d) = rules.load_path_diags(&p) {
            if d.iter().all(|d| d.line == 0) {
                errs.push(at.diag(format!("rule_files: {}", d[0])));
            } else {
                errs.extend(d);
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    let mut cases = Vec::new();
    let raw_cases = raw.test.unwrap_or_default();
    if raw_cases.is_empty() {
        errs.push(
            Origin {
                line: 1,
                col: 1,
                ..Origin::whole(&name)
            }
            .diag("no test cases: add [[test]] tables"),
        );
    }
    for rc in raw_cases {
        let at = doc.origin(rc.span());
        match load_case(&doc, base, &rules, rc.into_inner(), &at) {
            Ok(c) => cases.push(c),
            Err(d) => errs.extend(d),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(TestFile {
        path: path.to_path_buf(),
        rules,
        cases,
    })
}

fn load_case(
    doc: &Doc,
    base: &Path,
    rules: &RuleSet,
    rc: RawCase,
    at: &Origin,
) -> Result<TestCase, Vec<Diag>> {
    let mut errs = Vec::new();
    let name = match rc.name {
        Some(n) => n.into_inner(),
        None => {
            errs.push(at.diag("test case: missing required field `name`"));
            String::new()
        }
    };
    let known = |id: &Spanned<String>, errs: &mut Vec<Diag>| {
        if rules.get(id.get_ref()).is_none() {
            errs.push(doc.origin(id.span()).diag(format!(
                "no rule with id \"{}\" (rules in this test: the built-ins unless `builtins = false`, plus `rule_files`)",
                id.get_ref()
            )));
        }
    };
    let only = rc.rules.map(|ids| {
        ids.iter().for_each(|id| known(id, &mut errs));
        ids.into_iter().map(Spanned::into_inner).collect::<Vec<_>>()
    });
    let mut expect = Vec::new();
    match rc.findings {
        None => errs.push(at.diag(format!(
            "test case \"{name}\": missing required field `findings` (write `findings = []` for \"no finding\")"
        ))),
        Some(list) => {
            for e in list {
                let e = e.into_inner();
                known(&e.rule, &mut errs);
                let Some(severity) = Severity::parse(e.severity.get_ref()) else {
                    errs.push(doc.origin(e.severity.span()).diag(format!(
                        "unknown severity \"{}\"; expected INFO, WARNING or CRITICAL",
                        e.severity.get_ref()
                    )));
                    continue;
                };
                expect.push(Expected {
                    rule: e.rule.into_inner(),
                    severity,
                    subject: e.subject.map(Spanned::into_inner),
                });
            }
        }
    }
    let snapshot = match rc.snapshot {
        None => {
            errs.push(at.diag(format!(
                "test case \"{name}\": missing required field `snapshot`"
            )));
            None
        }
        Some(s) => {
            let sat = doc.origin(s.span());
            let patch = rc.patch.map(|p| (doc.origin(p.span()), p.into_inner()));
            match read_snapshot(&base.join(s.get_ref()), patch) {
                Ok(snap) => Some(snap),
                Err((msg, pat)) => {
                    errs.push(pat.unwrap_or(sat).diag(msg));
                    None
                }
            }
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(TestCase {
        name,
        location: format!("{}:{}", at.file, at.line),
        snapshot: snapshot.expect("checked"),
        only,
        expect,
    })
}

type PatchError = (String, Option<Origin>);

/// Reads a snapshot and applies a patch of dotted paths (`processes.0.latency.p99_ms`).
fn read_snapshot(
    path: &Path,
    patch: Option<(Origin, toml::Table)>,
) -> Result<Snapshot, PatchError> {
    let mut json = Snapshot::read_json(path).map_err(|m| (m, None))?;
    if let Some((at, table)) = patch {
        let mut sets = Vec::new();
        flatten(&mut Vec::new(), &table, &mut sets);
        for (segs, value) in sets {
            let value = serde_json::to_value(&value)
                .map_err(|e| (format!("patch: {e}"), Some(at.clone())))?;
            set_path(&mut json, &segs, value).map_err(|m| (m, Some(at.clone())))?;
        }
    }
    Snapshot::from_json(json, path).map_err(|m| (m, None))
}

/// Dotted keys and nested tables both become paths: `a.b = 1` and `"a.b" = 1` alike.
fn flatten(prefix: &mut Vec<String>, t: &toml::Table, out: &mut Vec<(Vec<String>, toml::Value)>) {
    for (k, v) in t {
        let n = prefix.len();
        prefix.extend(k.split('.').map(str::to_string));
        match v {
            toml::Value::Table(inner) => flatten(prefix, inner, out),
            other => out.push((prefix.clone(), other.clone())),
        }
        prefix.truncate(n);
    }
}

fn set_path(
    json: &mut serde_json::Value,
    segs: &[String],
    value: serde_json::Value,
) -> Result<(), String> {
    let path = segs.join(".");
    let mut cur = json;
    for seg in segs {
        cur = match cur {
            serde_json::Value::Object(m) => m.get_mut(seg),
            serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("patch: the snapshot has no field `{path}` (no `{seg}`)"))?;
    }
    *cur = value;
    Ok(())
}

/// Runs one case against a rule set.
pub fn run_case(rules: &RuleSet, case: &TestCase) -> CaseResult {
    let mut got: Vec<Finding> = evaluate(&case.snapshot, rules)
        .into_iter()
        .filter(|f| case.only.as_ref().is_none_or(|ids| ids.contains(&f.rule)))
        .collect();
    // Expectations naming a subject claim their finding first.
    let mut expect: Vec<&Expected> = case.expect.iter().collect();
    expect.sort_by_key(|e| e.subject.is_none());
    let mut missing = Vec::new();
    for e in expect {
        let hit = got.iter().position(|f| {
            f.rule == e.rule
                && f.severity == e.severity
                && e.subject.as_ref().is_none_or(|s| *s == f.subject)
        });
        match hit {
            Some(i) => {
                got.remove(i);
            }
            None => missing.push(e.to_string()),
        }
    }
    CaseResult {
        name: case.name.clone(),
        location: case.location.clone(),
        missing,
        unexpected: got
            .iter()
            .map(|f| format!("{} {} on {}: {}", f.rule, f.severity, f.subject, f.summary))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_follow_paths_and_reject_typos() {
        let mut j: serde_json::Value =
            serde_json::json!({"latency": {"p99_ms": 1.0}, "processes": [{"pid": 1}]});
        set_path(&mut j, &["latency".into(), "p99_ms".into()], 9.0.into()).unwrap();
        set_path(
            &mut j,
            &["processes".into(), "0".into(), "pid".into()],
            7.into(),
        )
        .unwrap();
        assert_eq!(j["latency"]["p99_ms"], 9.0);
        assert_eq!(j["processes"][0]["pid"], 7);
        let e = set_path(&mut j, &["latency".into(), "p98_ms".into()], 1.into()).unwrap_err();
        assert!(e.contains("no field `latency.p98_ms`"), "{e}");
        assert!(set_path(&mut j, &["processes".into(), "3".into()], 1.into()).is_err());

        let t: toml::Table = toml::from_str("a.b = 1\n\"c.d\" = 2\n").unwrap();
        let mut out = Vec::new();
        flatten(&mut Vec::new(), &t, &mut out);
        let paths: Vec<String> = out.iter().map(|(p, _)| p.join(".")).collect();
        assert_eq!(paths, ["a.b", "c.d"]);
    }
}

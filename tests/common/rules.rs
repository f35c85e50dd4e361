//! The built-in rules and the rule test fixtures, for tests whose numbers follow the
//! rules rather than repeat them.

use std::path::{Path, PathBuf};

/// The built-in rule `id` as dnsdoc loads it, for tests whose numbers follow its
/// thresholds (rules/*.toml) rather than repeat them.
pub fn builtin_rule(id: &str) -> dnsdoc::rules::Rule {
    dnsdoc::rules::RuleSet::builtin()
        .expect("built-in rules load")
        .get(id)
        .unwrap_or_else(|| panic!("no built-in rule {id}"))
        .clone()
}

/// The rule test files (`*.test.toml`) of tests/fixtures/rules, sorted.
pub fn rule_fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.toml"))
        .collect();
    files.sort();
    files
}

/// How many test cases (`[[test]]` tables) a rule test file has.
pub fn rule_test_cases(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    doc.get("test")
        .and_then(toml::Value::as_array)
        .map_or(0, Vec::len)
}

//! The rule loader's seeds (the built-in rules, the broken fixtures, snapshots to
//! evaluate on) and mutations of rule text.

use std::path::PathBuf;

use super::mutations::mutate;
use super::oracles::Rng;

/// The built-in rules, the broken ones of the fixtures, and the snapshots to evaluate on.
pub fn rule_seeds() -> (Vec<String>, Vec<dnsdoc::snapshot::Snapshot>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    for dir in ["rules", "tests/fixtures/bad_rules"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        texts.extend(
            files
                .iter()
                .map(|p| std::fs::read_to_string(p).expect("read rule")),
        );
    }
    assert!(texts.len() >= 10, "only {} rule files", texts.len());
    let snapshots = ["healthy", "incident", "low_traffic", "empty"]
        .iter()
        .map(|n| {
            let p = root.join(format!("tests/fixtures/snapshots/{n}.json"));
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    (texts, snapshots)
}

/// TOML values and fragments at the edges of what the loader validates.
const RULE_VALUES: [&str; 24] = [
    "nan",
    "inf",
    "-inf",
    "-0.0",
    "1e308",
    "-1",
    "0",
    "18446744073709551616",
    "9223372036854775807",
    "\"\"",
    "\"{\"",
    "\"{value\"",
    "\"}}{{\"",
    "\"{value}{value}{value}\"",
    "[]",
    "[[]]",
    "{}",
    "true",
    "\"\u{0}\"",
    "\"é名{value}\"",
    "\"process\"",
    "\"below\"",
    "[\"failures >= \"]",
    "[\"x >= nan\"]",
];

/// Mutates rule text: byte mutations (kept valid UTF-8), whole lines duplicated,
/// dropped or borrowed from another file, values replaced by edge values, deep nesting.
pub fn mutate_rule(rng: &mut Rng, text: &str, pool: &[String]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        let n = lines.len();
        match rng.below(7) {
            0 if n > 0 => {
                let l = lines[rng.index(n)].clone();
                lines.insert(rng.index(n + 1), l);
            }
            1 if n > 0 => {
                lines.remove(rng.index(n));
            }
            2 => {
                let other: Vec<&str> = pool[rng.index(pool.len())].lines().collect();
                if !other.is_empty() {
                    lines.insert(rng.index(n + 1), other[rng.index(other.len())].to_string());
                }
            }
            3 if n > 0 => {
                let i = rng.index(n);
                if let Some(eq) = lines[i].find('=') {
                    let v = RULE_VALUES[rng.index(RULE_VALUES.len())];
                    lines[i] = format!("{} {v}", &lines[i][..=eq]);
                }
            }
            4 => {
                let depth = 1 + rng.index(3000);
                let key = format!(
                    "x{} = {}{}",
                    rng.below(9),
                    "[".repeat(depth),
                    "]".repeat(depth)
                );
                lines.insert(rng.index(n + 1), key);
            }
            _ => {
                let mut bytes = lines.join("\n").into_bytes();
                mutate(rng, &mut bytes, &[]);
                lines = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
        }
    }
    lines.join("\n")
}

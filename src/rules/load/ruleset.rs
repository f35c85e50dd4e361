//! The rules in effect ([`RuleSet`]): built-ins plus layers of rule files, each
//! layer applied all or nothing, and what a layer changed ([`LayerStats`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::compile::compile;
use super::diag::{summarize, Diag, Doc, Origin, Val};
use super::files::{is_empty_rule_dir, read_layer};
use super::parse::{parse_file, Draft};
use crate::exit::{InputError, UsageError};
use crate::rules::metrics::edit_distance;
use crate::rules::Rule;

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
        let files: Vec<(Arc<str>, String)> = crate::rules::builtin::FILES
            .iter()
            .map(|(name, text)| (Arc::from(format!("builtin:{name}")), (*text).to_string()))
            .collect();
        set.apply_layer(&files)
            .map_err(|d| InputError(summarize(&d)))?;
        Ok(set)
    }

    /// Adds/overrides from a file or directory (errors carry [`InputError`], exit code 4).
    /// A directory without rule files adds nothing: an empty rules.d is normal.
    pub fn load_path(&mut self, path: &Path) -> Result<()> {
        if is_empty_rule_dir(path) {
            return Ok(());
        }
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
                .map(|r| (edit_distance(&r.id, id), r.id.as_str()))
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
                    let at = o.at.clone();
                    let merged = next.drafts[i].merged(o);
                    match compile(&merged) {
                        Ok(rule) => {
                            next.rules[i] = rule;
                            next.drafts[i] = merged;
                            stats.overridden.push(id);
                        }
                        Err(d) => errs.extend(blame_override(&id, &at, d)),
                    }
                }
                None => match compile(&o) {
                    Ok(rule) => {
                        next.rules.push(rule);
                        next.drafts.push(o);
                        stats.added.push(id);
                    }
                    Err(d) => match misspelt_override(&o, &next.rules) {
                        Some(one) => errs.push(one),
                        None => errs.extend(d),
                    },
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

/// Problems of a merged rule that lie in the rule it overrides (a built-in's warning
/// above the override's critical) are reported at the override, in the user's file,
/// saying where the other half is.
fn blame_override(id: &str, at: &Origin, diags: Vec<Diag>) -> Vec<Diag> {
    diags
        .into_iter()
        .map(|d| {
            if d.file == *at.file {
                return d;
            }
            at.diag(format!(
                "rule \"{id}\" overrides {}:{}:{}, and together they are invalid: {}; \
                 set the other field in this file too",
                d.file, d.line, d.col, d.message
            ))
        })
        .collect()
}

/// A new rule that sets none of what a new rule needs (no title, no metric) is an
/// override whose id matches nothing: one line, with the id meant when it is close.
fn misspelt_override(o: &Draft, rules: &[Rule]) -> Option<Diag> {
    if o.title.is_some() || o.metric.is_some() {
        return None;
    }
    let id = &o.id.as_ref()?.v;
    let near = rules
        .iter()
        .map(|r| (edit_distance(&r.id, id), r.id.as_str()))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, r)| format!("; did you mean \"{r}\"?"))
        .unwrap_or_default();
    Some(o.at.diag(format!(
        "no built-in rule \"{id}\" to override{near} (a new rule needs title, scope, \
         metric, thresholds, min_samples, samples and summary; `dnsdoc doctor --list-rules` \
         lists the ids)"
    )))
}

//! Reading rule files: the TOML shapes a rule may be written in ([`RawRule`], one
//! rule or `[[rule]]` tables) and [`Draft`], a rule's fields with their origins, which
//! overrides merge into field by field. Validation is in [`super::compile`].

use serde::Deserialize;
use toml::Spanned;

use super::diag::{Diag, Doc, Origin, Val};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    metrics: Option<Spanned<Vec<Spanned<String>>>>,
    top: Option<Spanned<Vec<Spanned<String>>>>,
    top_by: Option<Spanned<String>>,
}

/// A rule as written: every field optional, so an override can set just one, and
/// missing fields are reported by [`compile`](super::compile::compile) with a clear message.
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
    allow: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMulti {
    rule: Vec<Spanned<RawRule>>,
}

type Strings = Val<Vec<Val<String>>>;

/// A rule's fields with their origins; overrides merge field by field.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub(super) at: Origin,
    pub(super) id: Option<Val<String>>,
    pub(super) title: Option<Val<String>>,
    pub(super) description: Option<Val<String>>,
    pub(super) scope: Option<Val<String>>,
    pub(super) metric: Option<Val<String>>,
    pub(super) direction: Option<Val<String>>,
    pub(super) info: Option<Val<toml::Value>>,
    pub(super) warning: Option<Val<toml::Value>>,
    pub(super) critical: Option<Val<toml::Value>>,
    pub(super) min_samples: Option<Val<i64>>,
    pub(super) samples: Option<Val<String>>,
    pub(super) when: Option<Strings>,
    pub(super) summary: Option<Val<String>>,
    pub(super) remediation: Option<Strings>,
    pub(super) docs: Option<Val<String>>,
    pub(super) ev_metrics: Option<Strings>,
    pub(super) ev_top: Option<Strings>,
    pub(super) ev_top_by: Option<Val<String>>,
    pub(super) enabled: Option<Val<bool>>,
    /// Domains (and their subdomains) the rule never judges (scopes domain, suffix).
    pub(super) allow: Option<Strings>,
    /// The files that defined and overrode this rule, in order.
    pub(super) sources: Vec<String>,
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
            allow: raw.allow.map(|x| doc.strings(x)),
            sources: vec![doc.name.to_string()],
        }
    }

    /// This rule with the fields `over` sets replaced.
    pub(super) fn merged(&self, over: Draft) -> Draft {
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
            enabled,
            allow
        )
    }
}

/// Parses one rule file: a single rule at top level, or `[[rule]]` tables.
pub(super) fn parse_file(doc: &Doc) -> Result<Vec<Draft>, Vec<Diag>> {
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

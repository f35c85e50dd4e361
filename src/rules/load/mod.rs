//! Loading rule files: TOML with spans, overrides by id, and validation.
//!
//! Every value keeps the file, line and column it came from, so a problem found only
//! after merging an override into a built-in rule still points at the line to fix.
//! A layer (one file, or every `*.toml` of a directory) is applied all or nothing.
//!
//! - [`diag`]: diagnostics and positions ([`Diag`], [`summarize`]).
//! - [`files`]: which files of a path are rule files, and reading them.
//! - [`parse`]: TOML into drafts, and merging an override into a draft.
//! - [`compile`]: validating a draft into a [`Rule`](super::Rule).
//! - [`ruleset`]: the rules in effect ([`RuleSet`]) and applying a layer.

mod compile;
mod diag;
mod files;
mod parse;
mod ruleset;
#[cfg(test)]
mod tests;

pub use diag::{summarize, Diag};
pub(crate) use diag::{Doc, Origin};
pub(crate) use files::{files_of, rule_files};
pub use ruleset::{LayerStats, RuleSet};

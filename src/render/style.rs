//! Colour policy: colour only on a terminal, never under NO_COLOR (https://no-color.org).

use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};

// Number formatting lives in the leaf module crate::units (the rule engine uses it
// too); re-exported so tables keep formatting through `style`.
pub use crate::units::{ms, pct};

/// Whether stdout output may carry ANSI colours.
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A table in dnsdoc's one style: condensed UTF-8 borders, wrapped to the terminal.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().map(Cell::new));
    t
}

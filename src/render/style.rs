//! Colour policy, from the `supports-color` crate (the one owo-colors uses): colour
//! only on a terminal that has it, never under NO_COLOR (https://no-color.org) or
//! TERM=dumb, always under FORCE_COLOR.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};

// Number formatting lives in the leaf module crate::units (the rule engine uses it
// too); re-exported so tables keep formatting through `style`.
pub use crate::units::{ms, pct};

/// Whether stdout output may carry ANSI colours.
pub fn color_stdout() -> bool {
    supports_color::on(supports_color::Stream::Stdout).is_some()
}

/// Narrower than this, a terminal's reported width is not believed: a serial console
/// (the kernel matrix's guests, many BMC consoles) reports 0 columns, and wrapping to it
/// put one character per line.
const MIN_TERMINAL_WIDTH: u16 = 40;

/// A table in dnsdoc's one style: condensed UTF-8 borders, wrapped to the terminal
/// when it reports a believable width, else laid out at its natural width.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(headers.iter().map(Cell::new));
    if t.width().is_some_and(|w| w >= MIN_TERMINAL_WIDTH) {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    }
    t
}

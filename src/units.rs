//! Number formatting for people (milliseconds, percentages), shared by rules, render
//! and chaos.
//!
//! A leaf module so that the rule engine can format a metric's value without
//! depending on the renderer; [`crate::render::style`] re-exports these for tables.

/// Formats a value in milliseconds for tables: "-" when absent, µs precision below 1 ms.
pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 1.0 => format!("{v:.3}"),
        Some(v) if v < 100.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.0}"),
    }
}

/// Formats a ratio as a percentage.
pub fn pct(r: f64) -> String {
    if r == 0.0 {
        "0%".into()
    } else if r < 0.001 {
        format!("{:.3}%", r * 100.0)
    } else {
        format!("{:.1}%", r * 100.0)
    }
}

/// `n` per second over `duration_s` (0 for an empty window).
pub fn rate(n: u64, duration_s: f64) -> f64 {
    if duration_s > 0.0 {
        n as f64 / duration_s
    } else {
        0.0
    }
}

/// Rounded to 3 decimals (rates and milliseconds in the snapshot).
pub fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Rounded to 6 decimals (ratios in the snapshot).
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(ms(None), "-");
        assert_eq!(ms(Some(0.0523)), "0.052");
        assert_eq!(ms(Some(12.345)), "12.35");
        assert_eq!(ms(Some(1234.5)), "1234");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(0.0523), "5.2%");
        assert_eq!(pct(0.00001), "0.001%");
    }
}

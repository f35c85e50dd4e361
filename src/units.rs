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

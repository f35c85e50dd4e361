//! A latency chart for the terminal summary: the snapshot's percentiles as bars on a
//! log scale, so the shape of the tail (a flat line, or p99 a hundred times p50) is
//! seen at a glance. Drawn from the percentiles a snapshot keeps, so a saved snapshot
//! draws the same chart as the live window.

use std::fmt::Write;

use super::style::ms;
use crate::snapshot::Latency;

/// Widest bar, in characters.
const WIDTH: usize = 40;

/// The chart, or `None` without latency samples.
pub fn render(title: &str, l: &Latency) -> Option<String> {
    let rows: Vec<(&str, f64)> = [
        ("p50", l.p50_ms),
        ("p90", l.p90_ms),
        ("p95", l.p95_ms),
        ("p99", l.p99_ms),
        ("p99.9", l.p999_ms),
        ("max", l.max_ms),
    ]
    .into_iter()
    .filter_map(|(label, v)| Some((label, v?)))
    .collect();
    if l.samples == 0 || rows.is_empty() {
        return None;
    }
    // Log scale from a tenth of the smallest value (at least 1 us) to the largest.
    let lo = (rows.iter().map(|r| r.1).fold(f64::INFINITY, f64::min) / 10.0).max(1e-3);
    let hi = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(lo * 10.0);
    let span = (hi / lo).log10();
    let mut o = String::new();
    let _ = writeln!(o, "\n{title} ({} samples; bars on a log scale)", l.samples);
    for (label, v) in rows {
        let frac = ((v.max(lo) / lo).log10() / span).clamp(0.0, 1.0);
        let len = ((frac * WIDTH as f64).round() as usize).max(1);
        let _ = writeln!(o, "  {label:<6}{:>10} ms  {}", ms(Some(v)), "█".repeat(len));
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_grow_with_the_percentile_on_a_log_scale() {
        let l = Latency {
            samples: 1000,
            p50_ms: Some(0.2),
            p90_ms: Some(0.4),
            p95_ms: Some(1.0),
            p99_ms: Some(200.0),
            p999_ms: Some(700.0),
            max_ms: Some(1400.0),
            mean_ms: Some(3.0),
        };
        let text = render("Latency", &l).unwrap();
        let bars: Vec<usize> = text
            .lines()
            .skip(2)
            .map(|line| line.chars().filter(|c| *c == '█').count())
            .collect();
        assert_eq!(bars.len(), 6, "{text}");
        assert!(bars.windows(2).all(|w| w[0] <= w[1]), "{bars:?}\n{text}");
        assert_eq!(bars[5], WIDTH);
        // p99 is 1000 x p50: on a log scale it is most of the way, not 1/7000 of it.
        assert!(bars[3] > WIDTH / 2, "{bars:?}");
        assert!(render("Latency", &Latency::default()).is_none());
    }
}

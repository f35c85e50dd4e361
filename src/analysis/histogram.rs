//! Latency histogram with bounded relative error and small, fixed memory.
//!
//! Bucketing is log-linear (HDR-histogram style): values below 1024 ns get a
//! bucket each, and every power of two above is split into 128 equal
//! sub-buckets. A bucket is then never wider than 1/128 of the values in it,
//! so reporting its midpoint is within 1/256 (≈0.4%) of any value it holds.
//! That keeps percentiles honest across nine orders of magnitude (µs cache
//! hits to multi-second timeouts) with ~40 KiB per histogram, allocated only
//! once the first value is recorded so that idle histograms cost nothing.

/// Values below this are counted exactly, one bucket per nanosecond.
const LINEAR_LIMIT: u64 = 1024;
/// log2 of [`LINEAR_LIMIT`]: the first log-linear octave.
const FIRST_OCTAVE: u32 = 10;
/// log2 of the sub-buckets per octave (128).
const SUB_BITS: u32 = 7;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Highest octave kept: values up to 2^41 - 1 ns (~36 minutes) are bucketed,
/// larger ones are clamped into the last bucket. Nothing DNS-related should
/// take that long; the exact max is still tracked separately.
const LAST_OCTAVE: u32 = 40;
/// The largest value that is bucketed without clamping.
const MAX_TRACKABLE: u64 = (1 << (LAST_OCTAVE + 1)) - 1;
/// Total buckets: 1024 + 31 * 128 = 4992 (39,936 bytes of counts).
const BUCKETS: usize =
    LINEAR_LIMIT as usize + (LAST_OCTAVE - FIRST_OCTAVE + 1) as usize * SUB_BUCKETS;

// The promises in the module docs, checked at compile time.
const _: () = assert!(BUCKETS * std::mem::size_of::<u64>() <= 64 * 1024);
const _: () = assert!(MAX_TRACKABLE >= 1 << 40);

/// A latency histogram over u64 nanoseconds.
///
/// Quantiles are within 1% relative error (0.4% in practice) for values up
/// to ~2^41 ns; count, min, max and mean are exact.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Per-bucket counts; empty until the first record.
    counts: Vec<u64>,
    count: u64,
    /// Sum of all recorded values; u128 cannot overflow with u64 counts of u64 values.
    sum: u128,
    min: u64,
    max: u64,
}

impl Histogram {
    /// Creates an empty histogram (no allocation until the first value).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value in nanoseconds.
    pub fn record(&mut self, value_ns: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        if let Some(c) = self.counts.get_mut(bucket_index(value_ns)) {
            *c = c.saturating_add(1);
        }
        if self.count == 0 {
            self.min = value_ns;
            self.max = value_ns;
        } else {
            self.min = self.min.min(value_ns);
            self.max = self.max.max(value_ns);
        }
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(u128::from(value_ns));
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest recorded value, exact.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest recorded value, exact (even above the bucketing range).
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// Arithmetic mean of the recorded values, exact up to f64 rounding.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// Value at quantile q in [0,1] using the nearest-rank definition (rank =
    /// ceil(q*n), 1-based; q=0 → min), within 1% relative error; exact for
    /// min/max. None when empty or when q is NaN; q outside [0,1] is clamped.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // `as` saturates, and the clamp keeps the rank within 1..=n.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == 1 {
            return Some(self.min);
        }
        if rank == self.count {
            return Some(self.max);
        }
        let mut seen = 0u64;
        for (index, &c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen >= rank {
                // The midpoint is the best single guess for the bucket; it
                // can never lie outside what was actually recorded.
                return Some(bucket_midpoint(index).clamp(self.min, self.max));
            }
        }
        // Only reachable if bucket counts saturated; max is the honest answer.
        Some(self.max)
    }

    /// Adds all of `other`'s values to `self`, as if they had been recorded here.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
    }
}

/// Bucket holding `value`; values beyond [`MAX_TRACKABLE`] share the last bucket.
fn bucket_index(value: u64) -> usize {
    if value < LINEAR_LIMIT {
        return value as usize;
    }
    let value = value.min(MAX_TRACKABLE);
    // Octave k holds [2^k, 2^(k+1)); its 128 sub-buckets are 2^(k-7) wide.
    let octave = u64::BITS - 1 - value.leading_zeros();
    let sub = (value >> (octave - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    LINEAR_LIMIT as usize + (octave - FIRST_OCTAVE) as usize * SUB_BUCKETS + sub
}

/// The value reported for a bucket: its midpoint (exact for linear buckets).
fn bucket_midpoint(index: usize) -> u64 {
    let Some(log_index) = index.checked_sub(LINEAR_LIMIT as usize) else {
        return index as u64;
    };
    let octave = FIRST_OCTAVE + (log_index / SUB_BUCKETS) as u32;
    let sub = (log_index % SUB_BUCKETS) as u64;
    let width_bits = octave - SUB_BITS;
    let lower = (SUB_BUCKETS as u64 + sub) << width_bits;
    lower + (1 << (width_bits - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64 generator so tests need no `rand` crate.
    struct XorShift(u64);

    impl XorShift {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Uniform in [0, 1).
        fn next_f64(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Log-uniform between `lo` and `hi`.
        fn log_uniform(&mut self, lo: f64, hi: f64) -> u64 {
            (lo.ln() + self.next_f64() * (hi.ln() - lo.ln())).exp() as u64
        }
    }

    const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

    /// Exact nearest-rank quantile of sorted values.
    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let n = sorted.len() as u64;
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        sorted[(rank - 1) as usize]
    }

    /// Records `values` and checks every summary against the exact answer.
    fn check_against_exact(mut values: Vec<u64>) {
        let mut h = Histogram::new();
        for &v in &values {
            h.record(v);
        }
        values.sort_unstable();
        assert_eq!(h.count(), values.len() as u64);
        assert_eq!(h.min(), values.first().copied());
        assert_eq!(h.max(), values.last().copied());
        assert_eq!(h.quantile(0.0), values.first().copied());
        assert_eq!(h.quantile(1.0), values.last().copied());
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        assert_eq!(h.mean(), Some(sum as f64 / values.len() as f64));
        for q in QUANTILES {
            let exact = exact_quantile(&values, q) as f64;
            let got = h.quantile(q).unwrap() as f64;
            let err = (got - exact).abs() / exact;
            assert!(err <= 0.01, "q={q}: got {got}, exact {exact}, err {err}");
        }
    }

    #[test]
    fn empty_histogram_reports_nothing() {
        let h = Histogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.min(), None);
        assert_eq!(h.max(), None);
        assert_eq!(h.mean(), None);
        assert_eq!(h.quantile(0.5), None);
        assert!(h.counts.is_empty(), "empty histograms must not allocate");
    }

    #[test]
    fn single_value_is_exact_everywhere() {
        let mut h = Histogram::new();
        h.record(123_456_789);
        assert_eq!(h.count(), 1);
        assert_eq!(h.min(), Some(123_456_789));
        assert_eq!(h.max(), Some(123_456_789));
        assert_eq!(h.mean(), Some(123_456_789.0));
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(h.quantile(q), Some(123_456_789));
        }
    }

    #[test]
    fn log_uniform_10us_to_10s() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let values = (0..100_000)
            .map(|_| rng.log_uniform(10_000.0, 10_000_000_000.0))
            .collect();
        check_against_exact(values);
    }

    #[test]
    fn bimodal_cache_hits_and_upstream_misses() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let values = (0..100_000)
            .map(|_| {
                if rng.next_u64() % 10 < 8 {
                    rng.log_uniform(50_000.0, 200_000.0) // 50-200 µs: cache hits
                } else {
                    rng.log_uniform(20_000_000.0, 300_000_000.0) // 20-300 ms: misses
                }
            })
            .collect();
        check_against_exact(values);
    }

    #[test]
    fn all_equal_values() {
        check_against_exact(vec![5_000_003; 10_000]);
        let mut h = Histogram::new();
        for _ in 0..1000 {
            h.record(777);
        }
        assert_eq!(h.quantile(0.5), Some(777));
    }

    #[test]
    fn small_values_are_exact() {
        let values: Vec<u64> = (0..1024).rev().collect();
        let mut h = Histogram::new();
        for &v in &values {
            h.record(v);
        }
        for q in QUANTILES {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            assert_eq!(h.quantile(q), Some(exact_quantile(&sorted, q)));
        }
    }

    #[test]
    fn every_bucket_midpoint_is_within_half_percent() {
        // Check bucket edges across the whole trackable range.
        for octave in FIRST_OCTAVE..=LAST_OCTAVE {
            for sub in 0..SUB_BUCKETS as u64 {
                let lower = (SUB_BUCKETS as u64 + sub) << (octave - SUB_BITS);
                let upper = lower + (1 << (octave - SUB_BITS)) - 1;
                let i = bucket_index(lower);
                assert_eq!(i, bucket_index(upper));
                assert!(i < BUCKETS);
                let mid = bucket_midpoint(i) as f64;
                for edge in [lower as f64, upper as f64] {
                    assert!((mid - edge).abs() / edge <= 0.005, "bucket {i}");
                }
            }
        }
        assert_eq!(bucket_index(MAX_TRACKABLE), BUCKETS - 1);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut rng = XorShift(42);
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for i in 0..20_000 {
            let v = rng.log_uniform(1_000.0, 1e9);
            if i % 3 == 0 {
                a.record(v);
            } else {
                b.record(v);
            }
            all.record(v);
        }
        let mut merged = Histogram::new();
        merged.merge(&a);
        merged.merge(&Histogram::new());
        merged.merge(&b);
        assert_eq!(merged.counts, all.counts);
        assert_eq!(merged.count(), all.count());
        assert_eq!(merged.min(), all.min());
        assert_eq!(merged.max(), all.max());
        assert_eq!(merged.mean(), all.mean());
        for q in QUANTILES {
            assert_eq!(merged.quantile(q), all.quantile(q));
        }
    }

    #[test]
    fn values_above_cap_clamp_but_max_stays_exact() {
        let mut h = Histogram::new();
        h.record(1_000);
        h.record(u64::MAX);
        h.record(1 << 50);
        assert_eq!(h.max(), Some(u64::MAX));
        assert_eq!(h.quantile(1.0), Some(u64::MAX));
        assert_eq!(h.counts[BUCKETS - 1], 2);
        let expected_mean = (1_000u128 + u128::from(u64::MAX) + (1u128 << 50)) as f64 / 3.0;
        assert_eq!(h.mean(), Some(expected_mean));
        // The middle value is reported from the clamped bucket, within the data range.
        let p50 = h.quantile(0.5).unwrap();
        assert!(p50 > MAX_TRACKABLE / 2 && p50 <= MAX_TRACKABLE);
    }

    #[test]
    fn odd_quantile_arguments_do_not_panic() {
        let mut h = Histogram::new();
        h.record(10);
        h.record(20);
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(h.quantile(-1.0), Some(10));
        assert_eq!(h.quantile(7.0), Some(20));
        assert_eq!(h.quantile(f64::INFINITY), Some(20));
    }

    #[test]
    fn memory_is_small() {
        let mut h = Histogram::new();
        h.record(1);
        h.merge(&h.clone());
        let bytes = h.counts.capacity() * std::mem::size_of::<u64>();
        assert!(bytes <= 64 * 1024, "{bytes} bytes of buckets");
        assert_eq!(h.quantile(1.0), Some(1));
    }
}

//! Exact-where-it-matters statistics over many trials.
//!
//! Percentiles come from an HdrHistogram (Gil Tene's, via the `hdrhistogram` crate) at 3
//! significant digits (within 0.1%), auto-resizing to the largest value seen, so memory is fixed
//! however many trials run and small (a few tens of kilobytes) for a batch of short latencies. Count, min, max and mean are
//! kept exactly in integer nanoseconds alongside: min and max are what users check against closed
//! forms, and integer sums make the mean identical whatever order the trials were merged in, so
//! `--jobs` never changes the output.
//!
//! Every percentile comes with a 95% confidence interval, and rare-event counts with an upper
//! bound even when they are zero: see [`crate::experiment::ci`] for the methods and sources.

use super::ci::{self, Interval, QUANTILES};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in the histogram in microseconds; the exact fields use nanoseconds.
const HIST_UNIT_NS: u64 = 1_000;
/// Significant digits kept by the histograms.
const SIGFIG: u8 = 3;

/// One latency distribution.
#[derive(Debug, Clone)]
pub struct LatencyStats {
    hist: Histogram<u64>,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            // A constant precision within the crate's limits (0..=5), so this cannot fail.
            hist: Histogram::new(SIGFIG).expect("valid histogram precision"),
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

/// What trials print for one distribution (seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// 95% distribution-free confidence intervals of p50, p90, p99 and p99.9: `[lo, hi]`, a
    /// side `null` when `count` is too small for that side to exist (see `experiment::ci`).
    pub p50_ci: Interval,
    pub p90_ci: Interval,
    pub p99_ci: Interval,
    pub p999_ci: Interval,
}

impl Summary {
    /// The confidence interval of the percentile with this JSON key (`p50`, ..., `p999`).
    pub fn ci(&self, key: &str) -> Option<Interval> {
        match key {
            "p50" => Some(self.p50_ci),
            "p90" => Some(self.p90_ci),
            "p99" => Some(self.p99_ci),
            "p999" => Some(self.p999_ci),
            _ => None,
        }
    }

    /// The point estimate of the percentile with this JSON key.
    pub fn percentile(&self, key: &str) -> Option<f64> {
        match key {
            "p50" => self.p50,
            "p90" => self.p90,
            "p99" => self.p99,
            "p999" => self.p999,
            _ => None,
        }
    }
}

impl LatencyStats {
    pub fn record_ns(&mut self, ns: u64) {
        self.count += 1;
        self.sum_ns += ns as u128;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        // Auto-resizing, so any value fits; a failure would mean u64 overflow, impossible here.
        let _ = self.hist.record((ns / HIST_UNIT_NS).max(1));
    }

    pub fn merge(&mut self, other: &LatencyStats) {
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        // Both auto-resize, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` in seconds, clamped into the exact [min, max].
    pub fn quantile_s(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let v = self.hist.value_at_quantile(q) * HIST_UNIT_NS;
        Some(v.clamp(self.min_ns, self.max_ns) as f64 / 1e9)
    }

    /// The range of values (ns) the `rank`-th smallest sample (1-based) can have: the bounds of
    /// its histogram bucket, clamped into the exact [min, max]. Widening to the bucket keeps an
    /// interval built from these at least as wide as the one from the exact samples.
    fn rank_bounds_ns(&self, rank: u64) -> Option<(u64, u64)> {
        if rank == 0 || rank > self.count {
            return None;
        }
        let mut seen = 0u64;
        for v in self.hist.iter_recorded() {
            seen += v.count_at_value();
            if seen >= rank {
                let top = v.value_iterated_to();
                let lo = self.hist.lowest_equivalent(top) * HIST_UNIT_NS;
                // Samples are recorded as ns / 1000: a bucket's top µs holds up to 999 ns more.
                let hi = self.hist.highest_equivalent(top) * HIST_UNIT_NS + (HIST_UNIT_NS - 1);
                return Some((
                    lo.clamp(self.min_ns, self.max_ns),
                    hi.clamp(self.min_ns, self.max_ns),
                ));
            }
        }
        None
    }

    /// The 95% confidence interval (seconds) of quantile `q`, from the order statistics whose
    /// ranks [`ci::quantile_ranks`] gives.
    pub fn quantile_ci(&self, q: f64) -> Interval {
        let ranks = ci::quantile_ranks(self.count, q, ci::LEVEL);
        let lo = ranks
            .lower
            .and_then(|r| self.rank_bounds_ns(r))
            .map(|b| b.0 as f64 / 1e9);
        let hi = ranks
            .upper
            .and_then(|r| self.rank_bounds_ns(r))
            .map(|b| b.1 as f64 / 1e9);
        [lo, hi]
    }

    /// The value (seconds) at or below which a share `p` of the samples lie, for CDF plots.
    pub fn value_at_percentile(&self, p: f64) -> Option<f64> {
        self.quantile_s(p / 100.0)
    }

    /// The histogram behind the percentiles (values in microseconds), for exports.
    pub fn histogram_us(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Exact sum of the samples in nanoseconds.
    pub fn sum_ns(&self) -> u128 {
        self.sum_ns
    }

    /// Exact mean in nanoseconds, none without samples.
    pub fn mean_ns(&self) -> Option<u64> {
        (self.count > 0).then(|| (self.sum_ns / self.count as u128) as u64)
    }

    pub fn summary(&self) -> Summary {
        let some = |ns: u64| (self.count > 0).then(|| ns as f64 / 1e9);
        let [p50_ci, p90_ci, p99_ci, p999_ci] = QUANTILES.map(|(_, q)| self.quantile_ci(q));
        Summary {
            count: self.count,
            min: some(self.min_ns),
            p50: self.quantile_s(0.5),
            p90: self.quantile_s(0.9),
            p99: self.quantile_s(0.99),
            p999: self.quantile_s(0.999),
            max: some(self.max_ns),
            mean: (self.count > 0).then(|| (self.sum_ns / self.count as u128) as f64 / 1e9),
            p50_ci,
            p90_ci,
            p99_ci,
            p999_ci,
        }
    }
}

/// One counter per trial (connections refused, ...): its mean and 99th percentile over trials.
#[derive(Debug, Clone)]
pub struct CounterStats {
    hist: Histogram<u64>,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for CounterStats {
    fn default() -> Self {
        CounterStats {
            hist: Histogram::new(SIGFIG).expect("valid histogram precision"),
            count: 0,
            sum: 0,
            max: 0,
        }
    }
}

/// Mean and p99 of a per-trial counter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterSummary {
    pub mean: f64,
    pub p99: u64,
    pub max: u64,
}

impl CounterStats {
    pub fn record(&mut self, v: u64) {
        self.count += 1;
        self.sum += v as u128;
        self.max = self.max.max(v);
        let _ = self.hist.record(v);
    }

    pub fn merge(&mut self, other: &CounterStats) {
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
        let _ = self.hist.add(&other.hist);
    }

    pub fn summary(&self) -> CounterSummary {
        CounterSummary {
            mean: if self.count == 0 {
                0.0
            } else {
                // Four decimals, computed from the exact integer sum.
                ((self.sum * 10_000 / self.count as u128) as f64) / 10_000.0
            },
            p99: self.hist.value_at_quantile(0.99).min(self.max),
            max: self.max,
        }
    }
}

/// A histogram with its exact fields, as a shard file stores it: the histogram in HdrHistogram's
/// V2 encoding (base64), integer sums as decimal strings (a `u128` does not fit a JSON number
/// exactly), so that merging shards gives the same figures as one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistState {
    pub hdr_v2: String,
    pub count: u64,
    pub sum: String,
    pub min: u64,
    pub max: u64,
}

fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine;
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail, and every histogram here fits the V2 format.
    let _ = V2Serializer::new().serialize(h, &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn decode(text: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram: not base64: {e}"))?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram: not an HdrHistogram V2 encoding: {e:?}"))?;
    h.auto(true);
    Ok(h)
}

fn sum_of(text: &str) -> Result<u128, String> {
    text.parse()
        .map_err(|_| format!("sum {text:?} is not a whole number"))
}

impl LatencyStats {
    pub fn to_state(&self) -> HistState {
        HistState {
            hdr_v2: encode(&self.hist),
            count: self.count,
            sum: self.sum_ns.to_string(),
            min: self.min_ns,
            max: self.max_ns,
        }
    }

    pub fn from_state(s: &HistState) -> Result<Self, String> {
        let hist = decode(&s.hdr_v2)?;
        if hist.len() != s.count {
            return Err(format!(
                "histogram holds {} values, count says {}",
                hist.len(),
                s.count
            ));
        }
        Ok(LatencyStats {
            hist,
            count: s.count,
            sum_ns: sum_of(&s.sum)?,
            min_ns: s.min,
            max_ns: s.max,
        })
    }
}

impl CounterStats {
    pub fn to_state(&self) -> HistState {
        HistState {
            hdr_v2: encode(&self.hist),
            count: self.count,
            sum: self.sum.to_string(),
            min: 0,
            max: self.max,
        }
    }

    pub fn from_state(s: &HistState) -> Result<Self, String> {
        let hist = decode(&s.hdr_v2)?;
        if hist.len() != s.count {
            return Err(format!(
                "histogram holds {} values, count says {}",
                hist.len(),
                s.count
            ));
        }
        Ok(CounterStats {
            hist,
            count: s.count,
            sum: sum_of(&s.sum)?,
            max: s.max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_extremes_and_mean_hdr_percentiles() {
        let mut a = LatencyStats::default();
        for ns in [2_000_000_000u64, 3_000_000_000, 4_000_000_001] {
            a.record_ns(ns);
        }
        let s = a.summary();
        assert_eq!(s.count, 3);
        assert_eq!(s.min, Some(2.0));
        assert_eq!(s.max, Some(4.000000001));
        assert_eq!(s.mean, Some(3.0));
        assert!((s.p50.unwrap() - 3.0).abs() < 0.003);
        assert_eq!(LatencyStats::default().summary().p50, None);
    }

    #[test]
    fn counters_keep_large_values_across_merges() {
        let (mut a, mut b) = (CounterStats::default(), CounterStats::default());
        for v in 2990..3010 {
            a.record(v);
            b.record(v + 100);
        }
        a.merge(&b);
        let s = a.summary();
        assert!(s.p99 >= 3100 && s.p99 <= 3110, "{s:?}");
        assert_eq!(s.max, 3109);
    }

    #[test]
    fn states_round_trip_and_merge_like_the_originals() {
        let mut a = LatencyStats::default();
        let mut c = CounterStats::default();
        for i in 1..5000u64 {
            a.record_ns(i * 1_234_567);
            c.record(i % 97);
        }
        let a2 = LatencyStats::from_state(&a.to_state()).unwrap();
        assert_eq!(a.summary(), a2.summary());
        let c2 = CounterStats::from_state(&c.to_state()).unwrap();
        assert_eq!(c.summary(), c2.summary());
        let mut m = LatencyStats::default();
        m.merge(&a2);
        m.record_ns(u64::MAX / 4);
        let mut n = a.clone();
        n.record_ns(u64::MAX / 4);
        assert_eq!(m.summary(), n.summary());
        assert!(LatencyStats::from_state(&HistState {
            hdr_v2: "!!".into(),
            count: 0,
            sum: "0".into(),
            min: 0,
            max: 0
        })
        .is_err());
    }

    #[test]
    fn merging_in_any_order_gives_the_same_summary() {
        let vals: Vec<u64> = (1..1000).map(|i| i * 7_919_000 % 10_000_000_000).collect();
        let mut one = LatencyStats::default();
        vals.iter().for_each(|&v| one.record_ns(v));
        let (mut x, mut y) = (LatencyStats::default(), LatencyStats::default());
        for (i, &v) in vals.iter().enumerate() {
            if i % 3 == 0 {
                x.record_ns(v)
            } else {
                y.record_ns(v)
            }
        }
        y.merge(&x);
        assert_eq!(one.summary(), y.summary());
    }
}

//! Exports of `elbsim trials` for other tools: `--csv` (one row per trial and (fault, LB node)
//! pair) and `--histogram` (a latency distribution in HdrHistogram's percentile text format).
//!
//! Both are fed by [`crate::experiment::trials::run_trials_observed`], which shows every finished
//! trial to an observer from whichever worker thread ran it. Rows are kept by trial index and
//! written in index order, so the file is byte-identical for any `--jobs`. Rows are held in
//! memory until the batch ends, because the output goes through [`crate::output`]'s
//! all-or-nothing writer (a temporary file renamed into place, after the report is known): that
//! is at most [`MAX_CSV_TRIALS`] trials, about 100 bytes a row, checked before any work.

use crate::experiment::stats::LatencyStats;
use crate::experiment::trials::visible_fault_windows;
use crate::report::run::Measured;
use crate::sim::config::SimConfig;
use crate::sim::engine::{Counter, TrafficLog};
use crate::time::SimTime;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Most trials `--csv` accepts: its rows are held in memory (about 100 MB at this size).
pub const MAX_CSV_TRIALS: u64 = 1_000_000;

/// Seconds with nanosecond precision: the engine's exact integer time, losslessly.
fn secs(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// One (fault, node) pair's row: outcome, detection ns, failover ns.
type PairRow = (&'static str, Option<u64>, Option<u64>);

/// Collects the CSV rows of a batch, one string per trial, keyed by trial index.
pub struct CsvRows<'a> {
    cfg: &'a SimConfig,
    windows: Vec<(SimTime, SimTime)>,
    rows: Mutex<BTreeMap<u64, String>>,
}

impl<'a> CsvRows<'a> {
    pub fn new(cfg: &'a SimConfig) -> Self {
        CsvRows {
            cfg,
            windows: visible_fault_windows(cfg),
            rows: Mutex::new(BTreeMap::new()),
        }
    }

    /// The header line (columns documented in the README's "Exports" section).
    pub fn header(&self) -> String {
        let mut h = String::from(
            "trial,fault_index,fault,fault_start_s,lb_node,outcome,detection_s,failover_s,failback_s,false_failovers",
        );
        if self.cfg.traffic.is_some() {
            for c in Counter::ALL {
                h.push(',');
                h.push_str(c.name());
            }
        }
        h.push('\n');
        h
    }

    /// Whether `t` is inside a fault the master's check can see (false failovers there are not
    /// counted, as in the report).
    fn inside(&self, t: SimTime) -> bool {
        let k = self.windows.partition_point(|&(a, _)| a <= t);
        k > 0 && t < self.windows[k - 1].1
    }

    /// Adds trial `i`'s rows: one per (fault, LB node) pair that failed over, had an outage,
    /// was missed or censored, or one empty-pair row when the trial had none. The trial-level
    /// columns (false failovers, traffic counters) are on the trial's first row only, so that
    /// summing a column over the file gives the batch's total.
    pub fn observe(&self, i: u64, m: &Measured, traffic: Option<&TrafficLog>) {
        let cfg = self.cfg;
        let mut pairs: BTreeMap<(u32, u32), PairRow> = BTreeMap::new();
        for f in &m.failovers {
            let start = cfg.faults[f.detection.fault as usize].at;
            pairs.insert(
                (f.detection.fault, f.detection.lb_node),
                (
                    "failover",
                    Some(f.detection.detected.since(start).0),
                    f.switched.map(|s| s.since(start).0),
                ),
            );
        }
        for o in &m.outages {
            let start = cfg.faults[o.detection.fault as usize].at;
            pairs
                .entry((o.detection.fault, o.detection.lb_node))
                .or_insert(("outage", Some(o.detection.detected.since(start).0), None));
        }
        for p in &m.missed {
            pairs
                .entry((p.fault, p.lb_node))
                .or_insert(("missed", None, None));
        }
        for p in &m.censored {
            pairs
                .entry((p.fault, p.lb_node))
                .or_insert(("censored", None, None));
        }
        let false_failovers = m
            .false_failovers
            .iter()
            .filter(|x| !self.inside(x.at))
            .count();
        let mut trial_cols = format!(",{false_failovers}");
        if let Some(t) = traffic {
            for (_, v) in t.counters.iter() {
                let _ = write!(trial_cols, ",{v}");
            }
        } else if cfg.traffic.is_some() {
            trial_cols.push_str(&",".repeat(Counter::ALL.len()));
        }
        let empty_trial_cols = ",".repeat(trial_cols.matches(',').count());
        let opt = |x: Option<u64>| x.map_or(String::new(), secs);
        let mut out = String::new();
        if pairs.is_empty() {
            let _ = writeln!(out, "{i},,,,,,,,{trial_cols}");
        }
        for (n, ((fault, node), (outcome, det, fo))) in pairs.iter().enumerate() {
            let f = &cfg.faults[*fault as usize];
            let back = m
                .failbacks
                .iter()
                .find(|b| b.fault == *fault && b.lb_node == *node)
                .map(|b| b.switched_back.since(b.healthy).0);
            let _ = writeln!(
                out,
                "{i},{fault},{},{},{node},{outcome},{},{},{}{}",
                f.kind.name(),
                secs(f.at.0),
                opt(*det),
                opt(*fo),
                opt(back),
                if n == 0 {
                    &trial_cols
                } else {
                    &empty_trial_cols
                }
            );
        }
        // A poisoned lock means a worker panicked; the scope re-raises that panic.
        if let Ok(mut rows) = self.rows.lock() {
            rows.insert(i, out);
        }
    }

    /// The whole file: header, then the rows in trial order.
    pub fn finish(self) -> String {
        let mut s = self.header();
        if let Ok(rows) = self.rows.into_inner() {
            for r in rows.values() {
                s.push_str(r);
            }
        }
        s
    }
}

/// Which latency `--histogram` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistogramOf {
    Detection,
    #[default]
    Failover,
    Failback,
}

impl HistogramOf {
    pub fn name(self) -> &'static str {
        match self {
            HistogramOf::Detection => "detection",
            HistogramOf::Failover => "failover",
            HistogramOf::Failback => "failback",
        }
    }
}

/// Collects one latency distribution over a batch, with the same samples as the report's.
pub struct HistogramCollector<'a> {
    cfg: &'a SimConfig,
    of: HistogramOf,
    stats: Mutex<LatencyStats>,
}

impl<'a> HistogramCollector<'a> {
    pub fn new(cfg: &'a SimConfig, of: HistogramOf) -> Self {
        HistogramCollector {
            cfg,
            of,
            stats: Mutex::new(LatencyStats::default()),
        }
    }

    /// Records trial samples exactly as `experiment::trials` does for the report.
    pub fn observe(&self, m: &Measured) {
        let Ok(mut st) = self.stats.lock() else {
            return;
        };
        let start = |fault: u32| self.cfg.faults[fault as usize].at;
        match self.of {
            HistogramOf::Detection => {
                for f in &m.failovers {
                    st.record_ns(f.detection.detected.since(start(f.detection.fault)).0);
                }
            }
            HistogramOf::Failover => {
                for f in &m.failovers {
                    if let Some(sw) = f.switched {
                        st.record_ns(sw.since(start(f.detection.fault)).0);
                    }
                }
            }
            HistogramOf::Failback => {
                for b in &m.failbacks {
                    st.record_ns(b.switched_back.since(b.healthy).0);
                }
            }
        }
    }

    pub fn finish(self) -> LatencyStats {
        self.stats.into_inner().unwrap_or_default()
    }
}

/// A distribution as HdrHistogram's `outputPercentileDistribution` prints it (the text that
/// `HistogramLogProcessor` writes and HdrHistogram's plotter reads), values in milliseconds:
/// a header `Value Percentile TotalCount 1/(1-Percentile)`, one row per percentile step (5
/// ticks per half distance, as HdrHistogram's default), and the `#[Mean = ...]`,
/// `#[Max = ...]`, `#[Buckets = ...]` footer. Without samples: the header and a zero footer.
pub fn hdr_percentiles(stats: &LatencyStats) -> String {
    /// The histogram is in microseconds; the file is in milliseconds, like wrk's and the
    /// plotter's default axis.
    const SCALE: f64 = 1000.0;
    const TICKS_PER_HALF_DISTANCE: u32 = 5;
    let h = stats.histogram_us();
    let mut o = String::new();
    let _ = write!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if stats.count() > 0 {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(o, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, sd, max) = if stats.count() > 0 {
        (
            h.mean() / SCALE,
            h.stdev() / SCALE,
            h.highest_equivalent(h.max()) as f64 / SCALE,
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    // HdrHistogram's sub-bucket count: 2^ceil(log2(2 * 10^significant digits)).
    let sub_buckets = (2.0 * 10f64.powi(i32::from(h.sigfig())))
        .log2()
        .ceil()
        .exp2() as u64;
    let _ = writeln!(o, "#[Mean    = {mean:12.3}, StdDeviation   = {sd:12.3}]");
    let _ = writeln!(
        o,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_text_has_hdrhistogram_layout() {
        let mut st = LatencyStats::default();
        for i in 1..=1000u64 {
            st.record_ns(i * 1_000_000); // 1..1000 ms
        }
        let t = hdr_percentiles(&st);
        let mut lines = t.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines.next(), Some(""));
        let rows: Vec<Vec<f64>> = t
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p) column");
        assert_eq!(last[1], 1.0);
        assert_eq!(last[2], 1000.0);
        assert!((last[0] - 1000.0).abs() <= 1.0, "{last:?}");
        assert!(t.contains("#[Mean    ="), "{t}");
        assert!(t.contains("Total count    =         1000]"), "{t}");
        assert!(t.contains("SubBuckets     =         2048]"), "{t}");
    }

    #[test]
    fn secs_are_exact() {
        assert_eq!(secs(12_000_000_001), "12.000000001");
        assert_eq!(secs(5), "0.000000005");
    }
}

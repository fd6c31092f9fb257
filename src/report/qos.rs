//! Failure-detector quality of service, after Chen, Toueg and Aguilera, "On the Quality of
//! Service of Failure Detectors" (IEEE Transactions on Computers 51(5), 2002): detection time
//! T_D, mistake recurrence time T_MR, mistake duration T_M and query accuracy probability P_A.
//!
//! **Mapping.** The paper's failure detector is one process q monitoring one process p. Here
//! every LB node monitors every member on its own, so a detector is a **(member, LB node)
//! pair**; a run has `2 × lb_nodes` of them. Its output is the member's status in that node's
//! view: ONLINE is the paper's *trust*, OFFLINE its *suspect*.
//!
//! - The member is **healthy** outside the spans of the faults its check can see (the same
//!   visible-fault windows the false-failover rate uses), except that after such a fault ends,
//!   and at the start of a run with `initial_state = "initial"`, the time until the node sees
//!   the member ONLINE again is the detector catching up (failback), not a mistake: it is left
//!   out. What remains is the pair's **healthy time** H; at its start the pair always trusts.
//! - A **mistake** (the paper's S-transition while p is up) is an OFFLINE verdict in healthy
//!   time that no fault explains (`docs/metrics.md`, attribution by cause). On the master these
//!   are exactly the false failovers outside fault windows that `trials` counts.
//! - **T_M** of a mistake runs from its OFFLINE verdict to the pair's next ONLINE verdict. It is
//!   *censored* (counted as a mistake, kept out of the T_M sample) when a visible fault begins
//!   or the run ends first.
//! - **T_MR** is estimated as H / mistakes (the paper's E[T_MR] = 1/λ_M, λ_M the mistake rate),
//!   per pair; with no mistake it is censored: only `T_MR >= H` is known.
//! - **P_A** = 1 − (healthy time seen OFFLINE) / H, over all pairs; the OFFLINE time in healthy
//!   time is exactly the mistakes' durations (clipped at a fault's start or the end).
//!
//! Cost: one pass over the log's status changes with a little state per pair, plus the window
//! edges per pair: `O(T + P × W)`; nothing is allocated unless a mistake happens.
//!
//! **Closed forms** (independent probe failures of probability q = 1 − p, as in
//! [`crate::experiment::rare`]): E_F and E_R are the expected probes until F failures, resp. R
//! successes, in a row; a probe cycle lasts `c = D + p·E[rtt | ok] + q·T` (after_completion) or
//! D (fixed_rate). Then E[T_MR] = c (E_F + E_R); by Wald's identity E[T_M] = c E_R
//! (after_completion), or E_R D + E[rtt | ok] − T (fixed_rate: the mistake's verdict comes at
//! its probe's timeout; exact when `timeout <= delay`); and P_A = 1 − E[T_M] / E[T_MR] (the
//! paper's Theorem 1). Every mistake lasts at least R (D + s) (after_completion) or
//! R D − T + s (fixed_rate), s the shortest successful verdict (the fixed RTT, 0 for a
//! log-normal one, T under UDP_CONNECT whose success is silence until the timeout).

use crate::experiment::rare;
use crate::experiment::stats::{LatencyStats, Summary};
use crate::model::health::{Health, ProbeSchedule};
use crate::model::probe::{ProbeKind, Reason};
use crate::model::router::Role;
use crate::sim::config::{Rtt, SimConfig};
use crate::sim::engine::RunLog;
use crate::time::{SimDuration, SimTime};
use serde::Serialize;

/// The spans of one run in which `member` has a fault its check can see, clipped to the run,
/// merged and sorted.
pub fn visible_windows(cfg: &SimConfig, member: Role) -> Vec<(SimTime, SimTime)> {
    let end = SimTime::ZERO + cfg.duration;
    let rtt = super::run::typical_rtt(cfg);
    let judging = cfg.judging();
    let mut windows: Vec<(SimTime, SimTime)> = cfg
        .faults
        .iter()
        .filter(|f| f.member == member)
        // A separate monitor process does not see the service's own faults.
        .filter(|f| crate::sim::paths::check_meets(cfg, &f.kind))
        .filter(|f| crate::sim::world::reason_of(&f.kind, cfg.check.kind, &judging, rtt).is_some())
        .map(|f| (f.at.min(end), f.until.unwrap_or(end).min(end)))
        .collect();
    windows.sort();
    let mut merged: Vec<(SimTime, SimTime)> = Vec::new();
    for (a, b) in windows {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ if b > a => merged.push((a, b)),
            _ => {}
        }
    }
    merged
}

/// The visible-fault windows of master and slave, indexed by [`Role::index`].
pub fn member_windows(cfg: &SimConfig) -> [Vec<(SimTime, SimTime)>; 2] {
    Role::BOTH.map(|r| visible_windows(cfg, r))
}

/// One mistake: an OFFLINE verdict on a healthy member that no fault explains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MistakeM {
    pub lb_node: u32,
    pub member: Role,
    pub at: SimTime,
    /// The pair's next ONLINE verdict; `None` when a visible fault began or the run ended first.
    pub back: Option<SimTime>,
    /// Healthy time the pair spent OFFLINE because of it (`back - at` when not censored).
    pub offline: SimDuration,
    pub reason: Option<Reason>,
}

/// The QoS of one run, in integer time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QosM {
    /// Healthy time, summed over the (member, LB node) pairs (ns).
    pub healthy_ns: u128,
    /// Healthy time in which the pair saw the member OFFLINE (ns): the mistakes' durations.
    pub offline_ns: u128,
    pub mistakes: Vec<MistakeM>,
}

/// One pair's state in the sweep.
#[derive(Clone, Copy)]
struct Pair {
    status: Health,
    /// OFFLINE for a reason that is not a mistake (a fault, or catching up after one).
    excused: bool,
    /// Accounted up to here.
    at: SimTime,
    /// Index of the next window that has not ended by `at`.
    win: usize,
    in_window: bool,
    /// The index in `QosM::mistakes` of the mistake this OFFLINE span is.
    open: Option<usize>,
}

impl Pair {
    fn account(&mut self, to: SimTime, q: &mut QosM) {
        let dt = to.0.saturating_sub(self.at.0);
        if !self.in_window && dt > 0 {
            match self.status {
                Health::Online => q.healthy_ns += dt as u128,
                Health::Offline if !self.excused => {
                    q.healthy_ns += dt as u128;
                    q.offline_ns += dt as u128;
                    if let Some(i) = self.open {
                        q.mistakes[i].offline.0 += dt;
                    }
                }
                Health::Offline => {}
            }
        }
        self.at = self.at.max(to);
    }

    /// Accounts up to `to`, crossing window edges on the way (an edge at `to` included, so that
    /// a verdict at a window's start counts as inside it, as `a <= t < b` says).
    fn advance(&mut self, to: SimTime, windows: &[(SimTime, SimTime)], q: &mut QosM) {
        while let Some(&(a, b)) = windows.get(self.win) {
            let edge = if self.in_window { b } else { a };
            if edge > to {
                break;
            }
            self.account(edge, q);
            if self.in_window {
                self.in_window = false;
                self.win += 1;
            } else {
                self.in_window = true;
                // A fault began: an open mistake is censored, and whatever OFFLINE time follows
                // is the fault's.
                self.open = None;
                self.excused = true;
            }
        }
        self.account(to, q);
    }
}

/// The QoS figures of one run. `unexplained` holds the indices (into `log.transitions`, sorted)
/// of the OFFLINE verdicts no fault explains ([`super::run::Measured::unexplained`]); `windows`
/// comes from [`member_windows`].
pub fn measure(
    cfg: &SimConfig,
    log: &RunLog,
    unexplained: &[u32],
    windows: &[Vec<(SimTime, SimTime)>; 2],
) -> QosM {
    let nodes = cfg.lb_nodes.max(1) as usize;
    let end = super::run::covered_end(cfg, log);
    let initial = super::run::initial_health(cfg);
    let start = Pair {
        status: initial,
        excused: initial == Health::Offline,
        at: SimTime::ZERO,
        win: 0,
        in_window: false,
        open: None,
    };
    // Pairs on the stack for the usual few nodes: `trials` calls this once per trial.
    let mut small = [start; 16];
    let mut big = Vec::new();
    let pairs: &mut [Pair] = if nodes * 2 <= small.len() {
        &mut small[..nodes * 2]
    } else {
        big.resize(nodes * 2, start);
        &mut big
    };
    let mut q = QosM::default();
    let mut next_unexplained = 0;
    for (i, x) in log.transitions.iter().enumerate() {
        let m = x.member.index();
        let p = &mut pairs[x.lb_node as usize * 2 + m];
        let at = x.at.min(end);
        p.advance(at, &windows[m], &mut q);
        while next_unexplained < unexplained.len() && (unexplained[next_unexplained] as usize) < i {
            next_unexplained += 1;
        }
        let is_unexplained = unexplained.get(next_unexplained) == Some(&(i as u32));
        match x.to {
            Health::Offline => {
                p.status = Health::Offline;
                if is_unexplained && !p.in_window {
                    p.excused = false;
                    p.open = Some(q.mistakes.len());
                    q.mistakes.push(MistakeM {
                        lb_node: x.lb_node,
                        member: x.member,
                        at,
                        back: None,
                        offline: SimDuration::ZERO,
                        reason: x.reason,
                    });
                } else {
                    p.excused = true;
                }
            }
            Health::Online => {
                if let Some(k) = p.open.take() {
                    q.mistakes[k].back = Some(at);
                }
                p.status = Health::Online;
                p.excused = false;
            }
        }
    }
    for (k, p) in pairs.iter_mut().enumerate() {
        p.advance(end, &windows[k % 2], &mut q);
    }
    q
}

// ---------------------------------------------------------------------------------------------
// Closed forms
// ---------------------------------------------------------------------------------------------

/// The closed forms of one configuration (seconds; per pair).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClosedForms {
    /// E[T_MR]: null when probes never fail (no mistake ever).
    pub t_mr_s: Option<f64>,
    /// E[T_M].
    pub t_m_mean_s: f64,
    /// The shortest a mistake can last.
    pub t_m_min_s: f64,
    /// 1 − E[T_M] / E[T_MR] (1 when probes never fail).
    pub p_a: f64,
}

/// The shortest successful verdict, in seconds: see the module docs.
fn shortest_success_s(cfg: &SimConfig) -> f64 {
    if cfg.check.kind == ProbeKind::UdpConnect {
        return cfg.check.timeout.as_secs_f64();
    }
    match cfg.network.rtt {
        Rtt::Fixed(r) => r.as_secs_f64().min(cfg.check.timeout.as_secs_f64()),
        Rtt::LogNormal { .. } => 0.0,
    }
}

impl ClosedForms {
    pub fn of(cfg: &SimConfig) -> ClosedForms {
        let q = rare::probe_failure_probability(cfg);
        let p = 1.0 - q;
        let d = cfg.check.delay.as_secs_f64();
        let t = cfg.check.timeout.as_secs_f64();
        let r = cfg.check.rise;
        let ok_after = if cfg.check.kind == ProbeKind::UdpConnect {
            t
        } else {
            rare::mean_rtt_within_timeout_s(cfg)
        };
        let e_f = rare::trials_until_run(q, cfg.check.fall);
        let e_r = rare::trials_until_run(p, r);
        let s = shortest_success_s(cfg);
        let (cycle, t_m_mean, t_m_min) = match cfg.model.probe_schedule {
            ProbeSchedule::AfterCompletion => {
                let c = d + p * ok_after + q * t;
                (c, c * e_r, r as f64 * (d + s))
            }
            ProbeSchedule::FixedRate => (
                d,
                (e_r * d + ok_after - t).max(0.0),
                (r as f64 * d - t + s).max(0.0),
            ),
        };
        let t_mr = (e_f.is_finite() && e_r.is_finite()).then_some(cycle * (e_f + e_r));
        ClosedForms {
            t_mr_s: t_mr,
            t_m_mean_s: t_m_mean,
            t_m_min_s: t_m_min,
            p_a: t_mr.map_or(1.0, |mr| {
                if mr > 0.0 {
                    (1.0 - t_m_mean / mr).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Totals over runs, and the report
// ---------------------------------------------------------------------------------------------

/// Exact totals over one or many runs: what a report is computed from (and what shards carry).
#[derive(Debug, Clone, Default)]
pub struct QosTotals {
    /// Mistakes on the master and on the slave.
    pub mistakes: [u64; 2],
    /// Mistakes whose duration was cut by a fault or the end of the run.
    pub censored: u64,
    /// Durations of the other mistakes.
    pub durations: LatencyStats,
    /// Sum of their squares (ns²), for the interval of the mean.
    pub durations_sq: u128,
    pub healthy_ns: u128,
    pub offline_ns: u128,
    /// Sum over mistakes of the squared healthy time each kept the pair OFFLINE (ns²), for the
    /// interval of P_A.
    pub offline_sq: u128,
}

impl QosTotals {
    pub fn add(&mut self, q: &QosM) {
        self.healthy_ns += q.healthy_ns;
        self.offline_ns += q.offline_ns;
        for m in &q.mistakes {
            self.mistakes[m.member.index()] += 1;
            let off = m.offline.0 as u128;
            self.offline_sq = self.offline_sq.saturating_add(off * off);
            match m.back {
                Some(b) => {
                    let d = b.since(m.at).0;
                    self.durations.record_ns(d);
                    self.durations_sq = self.durations_sq.saturating_add(d as u128 * d as u128);
                }
                None => self.censored += 1,
            }
        }
    }

    pub fn merge(&mut self, o: &QosTotals) {
        self.mistakes[0] += o.mistakes[0];
        self.mistakes[1] += o.mistakes[1];
        self.censored += o.censored;
        self.durations.merge(&o.durations);
        self.durations_sq = self.durations_sq.saturating_add(o.durations_sq);
        self.healthy_ns += o.healthy_ns;
        self.offline_ns += o.offline_ns;
        self.offline_sq = self.offline_sq.saturating_add(o.offline_sq);
    }
}

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Detection time T_D, as the failover figures measure it (seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionQos {
    /// Samples: one per failover.
    pub count: u64,
    pub mean_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub p99_ci_s: crate::experiment::ci::Interval,
    pub max_s: Option<f64>,
}

/// Mistake recurrence time T_MR, per (member, LB node) pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecurrenceQos {
    /// Healthy time / mistakes; null when there was no mistake (censored: see `at_least_s`).
    pub mean_s: Option<f64>,
    /// 95% interval (from Garwood's interval of the mistake count); the upper side null when
    /// there was no mistake; the whole null without healthy time.
    pub ci95_s: Option<[Option<f64>; 2]>,
    /// With no mistake: T_MR is at least the healthy time observed (censored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least_s: Option<f64>,
    /// The closed form E[T_MR]; null when probes never fail.
    pub closed_form_s: Option<f64>,
    /// The closed form lies in the interval; null when either is missing.
    pub consistent: Option<bool>,
}

/// Mistake duration T_M.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationQos {
    /// Mistakes whose duration was seen whole.
    pub count: u64,
    /// Mistakes cut by a fault's start or the end of the run (not in the figures below).
    pub censored: u64,
    pub mean_s: Option<f64>,
    /// 95% interval of the mean (normal approximation; null below 2 samples).
    pub mean_ci95_s: Option<[f64; 2]>,
    pub min_s: Option<f64>,
    pub p50_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub max_s: Option<f64>,
    pub closed_form_mean_s: f64,
    /// No mistake can be shorter than this.
    pub closed_form_min_s: f64,
    /// The closed-form mean lies in the interval; null without one.
    pub consistent: Option<bool>,
    /// Every mistake lasted at least the closed-form minimum (null without samples).
    pub min_respected: Option<bool>,
}

/// Query accuracy probability P_A.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccuracyQos {
    /// 1 − (healthy time seen OFFLINE) / (healthy time); null without healthy time.
    pub value: Option<f64>,
    /// 95% interval (compound-Poisson approximation); null with no mistake.
    pub ci95: Option<[f64; 2]>,
    pub closed_form: f64,
    pub consistent: Option<bool>,
}

/// The `qos` object of run, trials and tune reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QosReport {
    /// (member, LB node) pairs per run: `2 × lb_nodes`.
    pub pairs: u32,
    /// Healthy time summed over pairs (and trials), in seconds.
    pub healthy_s: f64,
    /// Mistakes (OFFLINE verdicts on a healthy member that no fault explains), both members.
    pub mistakes: u64,
    pub mistakes_master: u64,
    pub mistakes_slave: u64,
    /// Mistakes per hour per pair, with its 95% interval (null without healthy time).
    pub mistake_rate_per_hour: Option<f64>,
    pub mistake_rate_per_hour_ci: Option<[f64; 2]>,
    pub detection: DetectionQos,
    pub recurrence: RecurrenceQos,
    pub duration: DurationQos,
    pub accuracy: AccuracyQos,
}

fn within(x: f64, lo: f64, hi: f64) -> bool {
    x >= lo * 0.999 && x <= hi * 1.001
}

impl QosReport {
    /// The report from exact totals and the detection-latency figures.
    pub fn new(cfg: &SimConfig, t: &QosTotals, detection: &Summary) -> QosReport {
        let closed = ClosedForms::of(cfg);
        let mistakes = t.mistakes[0] + t.mistakes[1];
        let h_s = t.healthy_ns as f64 / 1e9;
        let h_h = h_s / 3600.0;
        let rate_ci = (h_h > 0.0).then(|| {
            let (lo, hi) = rare::poisson_ci95(mistakes, h_h);
            [lo, hi]
        });
        // T_MR = 1 / rate: the rate's interval, inverted.
        let t_mr_ci = rate_ci.map(|[lo, hi]| {
            [
                (hi > 0.0).then(|| 3600.0 / hi),
                (lo > 0.0).then(|| 3600.0 / lo),
            ]
        });
        let recurrence = RecurrenceQos {
            mean_s: (mistakes > 0).then(|| h_s / mistakes as f64),
            ci95_s: t_mr_ci,
            at_least_s: (mistakes == 0).then_some(h_s),
            closed_form_s: closed.t_mr_s,
            consistent: match (t_mr_ci, closed.t_mr_s) {
                (Some([lo, hi]), Some(c)) => {
                    Some(lo.is_none_or(|lo| c >= lo * 0.999) && hi.is_none_or(|hi| c <= hi * 1.001))
                }
                // Probes never fail: consistent exactly when nothing was seen.
                (Some(_), None) => Some(mistakes == 0),
                _ => None,
            },
        };
        let n = t.durations.count();
        let s = t.durations.summary();
        let mean_ci = mean_interval(n, &t.durations, t.durations_sq);
        let duration = DurationQos {
            count: n,
            censored: t.censored,
            mean_s: s.mean,
            mean_ci95_s: mean_ci,
            min_s: s.min,
            p50_s: s.p50,
            p99_s: s.p99,
            max_s: s.max,
            closed_form_mean_s: closed.t_m_mean_s,
            closed_form_min_s: closed.t_m_min_s,
            consistent: mean_ci.map(|[lo, hi]| within(closed.t_m_mean_s, lo, hi)),
            // A nanosecond of slack: the minimum is computed in floating point.
            min_respected: s.min.map(|m| m + 1e-9 >= closed.t_m_min_s),
        };
        let value = (t.healthy_ns > 0).then(|| 1.0 - t.offline_ns as f64 / t.healthy_ns as f64);
        let pa_ci = (mistakes > 0 && t.healthy_ns > 0).then(|| {
            let h = t.healthy_ns as f64;
            let u = t.offline_ns as f64 / h;
            let se = (t.offline_sq as f64).sqrt() / h;
            [
                (1.0 - (u + Z95 * se)).clamp(0.0, 1.0),
                (1.0 - (u - Z95 * se).max(0.0)).clamp(0.0, 1.0),
            ]
        });
        let accuracy = AccuracyQos {
            value,
            ci95: pa_ci,
            closed_form: closed.p_a,
            // Compared on 1 − P_A, where the relative slack means something.
            consistent: pa_ci.map(|[lo, hi]| within(1.0 - closed.p_a, 1.0 - hi, 1.0 - lo)),
        };
        QosReport {
            pairs: cfg.lb_nodes.max(1) * 2,
            healthy_s: h_s,
            mistakes,
            mistakes_master: t.mistakes[0],
            mistakes_slave: t.mistakes[1],
            mistake_rate_per_hour: (h_h > 0.0).then(|| mistakes as f64 / h_h),
            mistake_rate_per_hour_ci: rate_ci,
            detection: DetectionQos {
                count: detection.count,
                mean_s: detection.mean,
                p99_s: detection.p99,
                p99_ci_s: detection.p99_ci,
                max_s: detection.max,
            },
            recurrence,
            duration,
            accuracy,
        }
    }
}

/// The 95% interval of the mean of `n` samples with these statistics (normal approximation with
/// the sample variance, computed from exact integer sums so that any merge order gives the same
/// bits); `None` below 2 samples.
fn mean_interval(n: u64, d: &LatencyStats, sum_sq: u128) -> Option<[f64; 2]> {
    if n < 2 {
        return None;
    }
    let mean_ns = d.mean_ns()? as f64;
    let sum = d.sum_ns();
    let n128 = n as u128;
    // n Σx² − (Σx)², exactly when it fits, else in floating point.
    let spread = n128
        .checked_mul(sum_sq)
        .zip(sum.checked_mul(sum))
        .map(|(a, b)| a.saturating_sub(b) as f64)
        .unwrap_or_else(|| {
            let (s, s2) = (sum as f64, sum_sq as f64);
            (n as f64 * s2 - s * s).max(0.0)
        });
    let var = spread / (n as f64 * (n as f64 - 1.0));
    let half = Z95 * (var / n as f64).sqrt();
    Some([(mean_ns - half).max(0.0) / 1e9, (mean_ns + half) / 1e9])
}

/// Seconds for people: `12.345s` below an hour, `3.210h` from an hour up.
pub fn span(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.3}h", s / 3600.0)
    } else {
        format!("{s:.3}s")
    }
}

/// A probability near 1 for people: six decimals, or `1 - 2.3e-9` when that would read 1.
pub fn prob(p: f64) -> String {
    if p >= 1.0 {
        "1".to_string()
    } else if 1.0 - p < 5e-7 {
        format!("1 - {:.1e}", 1.0 - p)
    } else {
        format!("{p:.6}")
    }
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The text section shared by run and trials.
pub fn text(q: &QosReport) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if q.healthy_s > 0.0 {
        let _ = writeln!(
            o,
            "failure-detector QoS (per member and LB node: {} pairs, {} healthy; {} mistake{}: {} master, {} slave)",
            q.pairs,
            span(q.healthy_s),
            q.mistakes,
            if q.mistakes == 1 { "" } else { "s" },
            q.mistakes_master,
            q.mistakes_slave
        );
    } else {
        // Exact mode derives no mistakes, and a run can have no healthy time at all.
        let _ = writeln!(
            o,
            "failure-detector QoS (per member and LB node: {} pairs; no healthy time observed, so mistakes n/a)",
            q.pairs
        );
    }
    let d = &q.detection;
    let r = &q.recurrence;
    let m = &q.duration;
    let a = &q.accuracy;
    let opt_span = |x: Option<f64>| x.map_or_else(|| "-".to_string(), span);
    let rows = vec![
        vec![
            "T_D detection".to_string(),
            match d.mean_s {
                Some(mean) => format!(
                    "mean {} p99 {} ({} sample{})",
                    span(mean),
                    opt_span(d.p99_s),
                    d.count,
                    if d.count == 1 { "" } else { "s" }
                ),
                None => "n/a: no failover".to_string(),
            },
            match d.p99_ci_s {
                [None, None] => "-".to_string(),
                [lo, hi] => format!("p99 [{}, {}]", opt_span(lo), opt_span(hi)),
            },
            "-".to_string(),
            "-".to_string(),
        ],
        vec![
            "T_MR recurrence".to_string(),
            match (r.mean_s, r.at_least_s) {
                (Some(x), _) => span(x),
                (None, Some(h)) => format!("n/a: no mistake (>= {})", span(h)),
                (None, None) => "n/a".to_string(),
            },
            r.ci95_s.map_or_else(
                || "-".to_string(),
                |[lo, hi]| format!("[{}, {}]", opt_span(lo), opt_span(hi)),
            ),
            r.closed_form_s
                .map_or_else(|| "never (no probe fails)".to_string(), span),
            yes_no(r.consistent).to_string(),
        ],
        vec![
            "T_M duration".to_string(),
            match m.mean_s {
                Some(x) => format!(
                    "mean {}, min {}, max {}{}",
                    span(x),
                    opt_span(m.min_s),
                    opt_span(m.max_s),
                    if m.censored > 0 {
                        format!(" ({} censored)", m.censored)
                    } else {
                        String::new()
                    }
                ),
                None if m.censored > 0 => format!("n/a: {} censored", m.censored),
                None => "n/a: no mistake".to_string(),
            },
            m.mean_ci95_s.map_or_else(
                || "-".to_string(),
                |[lo, hi]| format!("[{}, {}]", span(lo), span(hi)),
            ),
            format!(
                "mean {}, min {}",
                span(m.closed_form_mean_s),
                span(m.closed_form_min_s)
            ),
            match (m.consistent, m.min_respected) {
                (_, Some(false)) => "NO (below the minimum)".to_string(),
                (c, _) => yes_no(c).to_string(),
            },
        ],
        vec![
            "P_A accuracy".to_string(),
            a.value.map_or_else(|| "n/a".to_string(), prob),
            a.ci95.map_or_else(
                || "-".to_string(),
                |[lo, hi]| format!("[{}, {}]", prob(lo), prob(hi)),
            ),
            prob(a.closed_form),
            yes_no(a.consistent).to_string(),
        ],
    ];
    o.push_str(&super::text::table(
        &["figure", "simulated", "95% CI", "closed form", "consistent"],
        &rows,
    ));
    o
}

/// One mistake of a run, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MistakeEvent {
    pub lb_node: u32,
    pub member: Role,
    /// The OFFLINE verdict (s).
    pub at_s: f64,
    /// The pair's next ONLINE verdict (s); null when censored.
    pub back_s: Option<f64>,
    /// `back_s - at_s`: the mistake's duration T_M; null when censored.
    pub duration_s: Option<f64>,
    pub reason: Option<&'static str>,
}

impl MistakeEvent {
    pub fn of(m: &MistakeM) -> MistakeEvent {
        MistakeEvent {
            lb_node: m.lb_node,
            member: m.member,
            at_s: m.at.as_secs_f64(),
            back_s: m.back.map(SimTime::as_secs_f64),
            duration_s: m.back.map(|b| b.since(m.at).as_secs_f64()),
            reason: m.reason.map(|r| r.as_str()),
        }
    }
}

/// The `qos` object of a run report: the figures, and every mistake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunQos {
    #[serde(flatten)]
    pub figures: QosReport,
    pub mistake_events: Vec<MistakeEvent>,
}

impl RunQos {
    pub fn new(cfg: &SimConfig, q: &QosM, detections_ns: impl Iterator<Item = u64>) -> RunQos {
        let mut totals = QosTotals::default();
        totals.add(q);
        let mut det = LatencyStats::default();
        detections_ns.for_each(|ns| det.record_ns(ns));
        RunQos {
            figures: QosReport::new(cfg, &totals, &det.summary()),
            mistake_events: q.mistakes.iter().map(MistakeEvent::of).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_hours_and_probabilities_near_one() {
        assert_eq!(span(12.3456), "12.346s");
        assert_eq!(span(7200.0), "2.000h");
        assert_eq!(prob(1.0), "1");
        assert_eq!(prob(0.991_140_1), "0.991140");
        assert_eq!(prob(1.0 - 2.3e-9), "1 - 2.3e-9");
    }

    #[test]
    fn the_mean_interval_needs_two_samples_and_brackets_the_mean() {
        let mut d = LatencyStats::default();
        d.record_ns(6_000_000_000);
        assert_eq!(mean_interval(1, &d, 36 * 10u128.pow(18)), None);
        d.record_ns(8_000_000_000);
        let sq = 36 * 10u128.pow(18) + 64 * 10u128.pow(18);
        let [lo, hi] = mean_interval(2, &d, sq).unwrap();
        // Sample sd sqrt(2) s, so the half-width is 1.96 * sqrt(2) / sqrt(2) = 1.96 s.
        assert!((lo - (7.0 - Z95)).abs() < 1e-9 && (hi - (7.0 + Z95)).abs() < 1e-9);
    }
}

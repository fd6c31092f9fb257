//! False failovers are rare events: a closed form for independent probe failures, a Poisson
//! confidence interval for what simulation saw, and the two side by side.
//!
//! With no fault, each probe of a member fails independently with probability
//! `q = 1 - (1 - loss) * P(rtt <= timeout)` (the network loses it, or its round trip exceeds the
//! timeout). The member alternates between ONLINE, left after `F` consecutive failures
//! (`max_retries_down`), and OFFLINE, left after `R` consecutive successes (`max_retries`).
//! The expected number of Bernoulli trials until `k` consecutive events of probability `s` is
//! `(1 - s^k) / ((1 - s) s^k)` (Feller, *An Introduction to Probability Theory*, vol. 1, XIII.7),
//! so a renewal cycle takes `E_F + E_R` probes and false failovers happen at
//! `1 / (E_F + E_R)` per probe. Probes go out every `delay` (fixed_rate) or every `delay` plus the
//! mean time to a verdict (after_completion): `p * E[rtt | rtt <= timeout] + q * timeout`
//! (`timeout` for a success too under UDP_CONNECT, whose success is silence until the timeout).
//! Summed over LB nodes, per hour.
//!
//! The form **assumes independent losses**. With `[network.burst]` the losses come in bursts
//! (a Gilbert-Elliott channel per path), and consecutive probes fail together far more often
//! than their mean loss says: the form then uses the channel's long-run mean loss as if it were
//! independent, says so ([`FalseFailoverEstimate::assumption`]), and the simulated interval
//! beside it shows how far off that is (`consistent: false` when the form lies outside it).
//!
//! Under a data-plane profile (`crate::model::profile`) the timeout is the profile's connect
//! bound, `F` and `R` its fall and rise (keepalived rises on one success), and the cycle its
//! healthy interval (HAProxy's `inter`, keepalived's `delay_loop`); the intervals a profile uses
//! between failures (fastinter, delay_before_retry) are not in the cycle, so for those profiles
//! the form is an approximation, which `consistent` then checks against simulation.

use crate::model::health::ProbeSchedule;
use crate::model::probe::ProbeKind;
use crate::model::profile::Intervals;
use crate::sim::config::{Rtt, SimConfig};
use crate::sim::network::{erfc, RttSampler};
use serde::Serialize;

/// Expected trials until `k` consecutive events of probability `s` (infinite when `s` is 0).
pub(crate) fn trials_until_run(s: f64, k: u32) -> f64 {
    if s <= 0.0 {
        return f64::INFINITY;
    }
    if s >= 1.0 {
        return k as f64;
    }
    let sk = s.powi(k as i32);
    (1.0 - sk) / ((1.0 - s) * sk)
}

/// Standard normal CDF.
fn phi(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Probability that one fault-free probe fails.
pub fn probe_failure_probability(cfg: &SimConfig) -> f64 {
    let slow = RttSampler::new(cfg.network.rtt).prob_exceeds(cfg.judging().connect);
    // A bursty channel enters with its long-run mean loss, as if independent (module docs).
    let burst = cfg.network.burst.map_or(0.0, |b| b.mean_loss());
    1.0 - (1.0 - cfg.network.loss) * (1.0 - burst) * (1.0 - slow)
}

/// Mean round trip of a probe that made it within the timeout, in seconds.
pub(crate) fn mean_rtt_within_timeout_s(cfg: &SimConfig) -> f64 {
    let t = cfg.judging().connect.as_secs_f64();
    match cfg.network.rtt {
        Rtt::Fixed(r) => r.as_secs_f64().min(t),
        Rtt::LogNormal { .. } => match RttSampler::new(cfg.network.rtt) {
            RttSampler::LogNormal { mu, sigma } if sigma > 0.0 => {
                let z = (t.ln() - mu) / sigma;
                let within = phi(z);
                if within <= 0.0 {
                    return t;
                }
                (mu + sigma * sigma / 2.0).exp() * phi(z - sigma) / within
            }
            RttSampler::LogNormal { mu, .. } => mu.exp().min(t),
            RttSampler::Fixed(r) => r.as_secs_f64().min(t),
        },
    }
}

/// The closed-form rate of false failovers per hour, summed over LB nodes.
pub fn closed_form_per_hour(cfg: &SimConfig) -> f64 {
    let q = probe_failure_probability(cfg);
    if q <= 0.0 {
        return 0.0;
    }
    let p = 1.0 - q;
    let rules = cfg.rules();
    let t = rules.judging.connect.as_secs_f64();
    let healthy = match rules.intervals {
        Intervals::Fixed(d) => d,
        Intervals::ByHealth { inter, .. } => inter,
        Intervals::Retry { delay_loop, .. } => delay_loop,
        // Envoy's healthy interval (in steady state, with traffic; its jitter is left out as
        // haproxy's is).
        Intervals::Envoy(e) => e.interval,
    }
    .as_secs_f64();
    let cycle_s = match cfg.model.probe_schedule {
        ProbeSchedule::FixedRate => healthy,
        ProbeSchedule::AfterCompletion => {
            let ok_after = match cfg.check.kind {
                ProbeKind::UdpConnect => rules.judging.udp_silence.as_secs_f64(),
                _ => mean_rtt_within_timeout_s(cfg),
            };
            healthy + p * ok_after + q * t
        }
    };
    let probes_per_failover = trials_until_run(q, rules.fall) + trials_until_run(p, rules.rise);
    if !probes_per_failover.is_finite() || cycle_s <= 0.0 {
        return 0.0;
    }
    cfg.lb_nodes as f64 * 3600.0 / cycle_s / probes_per_failover
}

/// Quantile of the chi-square distribution (Wilson-Hilferty; within 1% for the counts here).
fn chi2_quantile(p: f64, dof: f64) -> f64 {
    // Only the two normal quantiles of a 95% interval are ever needed: constants.
    let z = if p < 0.5 {
        -1.959_963_984_540_054
    } else {
        1.959_963_984_540_054
    };
    let a = 2.0 / (9.0 * dof);
    (dof * (1.0 - a + z * a.sqrt()).powi(3)).max(0.0)
}

/// Exact-style 95% interval for a Poisson count `k` (Garwood), as a rate over `exposure`.
pub fn poisson_ci95(k: u64, exposure: f64) -> (f64, f64) {
    if exposure <= 0.0 {
        return (0.0, f64::INFINITY);
    }
    let lo = if k == 0 {
        0.0
    } else {
        chi2_quantile(0.025, 2.0 * k as f64) / 2.0
    };
    // For k = 0 the upper bound is -ln(0.025) = 3.689 exactly.
    let hi = if k == 0 {
        -(0.025f64).ln()
    } else {
        chi2_quantile(0.975, 2.0 * (k as f64 + 1.0)) / 2.0
    };
    (lo / exposure, hi / exposure)
}

/// The false-failover estimate reported by `tune` (per day, summed over LB nodes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseFailoverEstimate {
    /// The figure used for constraints: the closed form, exact for independent probe failures.
    pub per_day: f64,
    /// The closed form (per day).
    pub closed_form_per_day: f64,
    /// False failovers simulation saw, over `simulated_hours` of fault-free time.
    pub simulated_count: u64,
    pub simulated_hours: f64,
    /// Simulation's 95% interval (per day).
    pub simulated_ci95_per_day: (f64, f64),
    /// Whether the closed form lies in simulation's interval (a cross-check of independence).
    pub consistent: bool,
    /// Set when the closed form's assumption of independent losses is known not to hold
    /// (`[network.burst]`): trust the simulated interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumption: Option<&'static str>,
}

impl FalseFailoverEstimate {
    pub fn new(cfg: &SimConfig, simulated_count: u64, simulated_hours: f64) -> Self {
        let closed = closed_form_per_hour(cfg) * 24.0;
        let (lo, hi) = poisson_ci95(simulated_count, simulated_hours / 24.0);
        FalseFailoverEstimate {
            per_day: closed,
            closed_form_per_day: closed,
            simulated_count,
            simulated_hours,
            simulated_ci95_per_day: (lo, hi),
            consistent: closed >= lo * 0.999 && closed <= hi * 1.001,
            assumption: cfg.network.burst.map(|_| {
                "the closed form assumes independent probe losses; [network.burst] makes them bursty, so it uses the burst channel's mean loss as if independent: compare with the simulated interval"
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lengths_match_known_values() {
        // Fair coin, two heads in a row: 6 tosses on average.
        assert!((trials_until_run(0.5, 2) - 6.0).abs() < 1e-12);
        assert_eq!(trials_until_run(1.0, 3), 3.0);
        assert!(trials_until_run(0.0, 1).is_infinite());
    }

    #[test]
    fn a_burst_channel_enters_the_form_with_its_mean_loss_and_a_warning() {
        use crate::model::probe::ProbeKind;
        use crate::sim::config::{Burst, CheckConfig};
        use crate::time::SimDuration;
        let mut cfg = SimConfig::with_check(CheckConfig {
            kind: ProbeKind::Tcp,
            delay: SimDuration::from_secs(5),
            timeout: SimDuration::from_secs(3),
            rise: 3,
            fall: 3,
        });
        cfg.network.loss = 0.01;
        let independent = closed_form_per_hour(&cfg);
        assert!(FalseFailoverEstimate::new(&cfg, 0, 1.0)
            .assumption
            .is_none());
        cfg.network.loss = 0.0;
        cfg.network.burst = Some(Burst {
            mean_good: SimDuration::from_secs(90),
            mean_bad: SimDuration::from_secs(10),
            loss_good: 0.0,
            loss_bad: 0.1,
        });
        assert!((probe_failure_probability(&cfg) - 0.01).abs() < 1e-12);
        assert!((closed_form_per_hour(&cfg) - independent).abs() < 1e-12);
        assert!(FalseFailoverEstimate::new(&cfg, 0, 1.0)
            .assumption
            .is_some());
    }

    #[test]
    fn poisson_interval_brackets_known_values() {
        // Garwood 95% for k = 10: [4.795, 18.39].
        let (lo, hi) = poisson_ci95(10, 1.0);
        assert!((lo - 4.795).abs() < 0.05, "{lo}");
        assert!((hi - 18.39).abs() < 0.15, "{hi}");
        let (lo, hi) = poisson_ci95(0, 2.0);
        assert_eq!(lo, 0.0);
        assert!((hi - 1.8444).abs() < 1e-3);
    }
}

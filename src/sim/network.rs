//! Drawing a probe's round trip and loss from the `[network]` settings.

use super::config::{NetworkConfig, Rtt};
use super::rng;
use crate::time::SimDuration;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// z of the standard normal at the 99th percentile, to turn (median, p99) into sigma.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A ready-to-draw RTT distribution.
#[derive(Debug, Clone, Copy)]
pub enum RttSampler {
    Fixed(SimDuration),
    /// ln(rtt) ~ Normal(mu, sigma), in seconds.
    LogNormal {
        mu: f64,
        sigma: f64,
    },
}

impl RttSampler {
    pub fn new(rtt: Rtt) -> Self {
        match rtt {
            Rtt::Fixed(d) => RttSampler::Fixed(d),
            Rtt::LogNormal { median, p99 } => {
                let mu = median.as_secs_f64().max(1e-9).ln();
                let sigma = ((p99.as_secs_f64().max(1e-9)).ln() - mu).max(0.0) / Z_P99;
                RttSampler::LogNormal { mu, sigma }
            }
        }
    }

    /// One round trip. The fixed case draws nothing, so noise-free runs use no randomness.
    #[inline]
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> SimDuration {
        match *self {
            RttSampler::Fixed(d) => d,
            RttSampler::LogNormal { mu, sigma } => log_normal(mu, sigma, rng),
        }
    }

    /// Probability that a round trip exceeds `timeout` (used by the rare-event estimate).
    pub fn prob_exceeds(&self, timeout: SimDuration) -> f64 {
        match *self {
            RttSampler::Fixed(d) => {
                if d > timeout {
                    1.0
                } else {
                    0.0
                }
            }
            RttSampler::LogNormal { mu, sigma } => {
                if sigma == 0.0 {
                    return if mu.exp() > timeout.as_secs_f64() {
                        1.0
                    } else {
                        0.0
                    };
                }
                let z = (timeout.as_secs_f64().max(1e-12).ln() - mu) / sigma;
                0.5 * erfc(z / std::f64::consts::SQRT_2)
            }
        }
    }
}

/// Whether the network loses this probe.
#[inline(always)]
pub fn lost(net: &NetworkConfig, extra_loss: f64, rng: &mut ChaCha8Rng) -> bool {
    // Two draws kept separate so that turning a loss fault on does not shift the network's draws.
    let a = rng::chance(rng, net.loss);
    let b = rng::chance(rng, extra_loss);
    a || b
}

/// One log-normal round trip (out of line: the sampler is large, and the fixed case, inlined
/// at every probe, should stay a load).
#[inline(never)]
fn log_normal(mu: f64, sigma: f64, rng: &mut ChaCha8Rng) -> SimDuration {
    let z: f64 = StandardNormal.sample(rng);
    SimDuration::from_secs_f64((mu + sigma * z).exp())
}

/// Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::{stream, Purpose};

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let s = RttSampler::new(Rtt::LogNormal {
            median: SimDuration::from_millis(1),
            p99: SimDuration::from_millis(20),
        });
        let mut rng = stream(1, 0, Purpose::Probes);
        let mut v: Vec<u64> = (0..200_000).map(|_| s.draw(&mut rng).0).collect();
        v.sort_unstable();
        let med = v[v.len() / 2] as f64 / 1e6;
        let p99 = v[v.len() * 99 / 100] as f64 / 1e6;
        assert!((med - 1.0).abs() < 0.03, "median {med}");
        assert!((p99 - 20.0).abs() < 1.0, "p99 {p99}");
        let p = s.prob_exceeds(SimDuration::from_millis(20));
        assert!((p - 0.01).abs() < 1e-4, "{p}");
    }

    #[test]
    fn erfc_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
    }
}

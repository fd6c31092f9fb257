//! Seeded randomness: one seed drives everything (spec/model.md section 1).
//!
//! Each trial and each purpose (probe phases and noise, client traffic, ...) gets its own ChaCha8
//! stream derived from `(seed, trial, purpose)`. Separate streams mean that adding traffic to a
//! scenario does not change its probe phases, and that trial `i` is the same whichever thread runs
//! it, so results do not depend on `--jobs`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; each gets an independent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// First-probe phases, probe RTT and probe loss.
    Probes = 1,
    // 2 was a stream for fault-level randomness; loss faults draw from the probes' stream.
    /// Client connection lifetimes, requests, QUIC CIDs.
    Traffic = 3,
    /// Client connection arrival times and addresses.
    Arrivals = 4,
    /// Probe-interval jitter of a profile that has one (HAProxy `spread-checks`): a stream of
    /// its own, so jitter moves no other draw.
    Jitter = 5,
    /// envoy's data plane: each connection's priority draw, outlier enforcement and ejection
    /// jitter, and the requests clients send to a failing member; apart, so that the same seed
    /// gives envoy the same clients as other profiles.
    Passive = 6,
    /// `tune`'s noise-only probe stream that checks the false-failover closed form
    /// (`crate::experiment::stream`): apart from the trial's own probes.
    NoiseCheck = 7,
    /// The good and bad states of `[network.burst]` on every path.
    Burst = 8,
}

/// SplitMix64 finaliser: spreads nearby seeds over the whole key space.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for one `(seed, trial, purpose)`.
pub fn stream(seed: u64, trial: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(purpose as u64)));
    rng.set_stream(trial);
    rng
}

/// A uniform draw in `[0, 1)`.
#[inline]
pub fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.gen::<f64>()
}

/// `true` with probability `p` (no draw when `p` is 0, so fault-free runs stay cheap).
#[inline]
pub fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.gen::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(7, 0, Purpose::Probes).gen();
        let b: u64 = stream(7, 0, Purpose::Probes).gen();
        let c: u64 = stream(7, 1, Purpose::Probes).gen();
        let d: u64 = stream(7, 0, Purpose::Traffic).gen();
        let e: u64 = stream(8, 0, Purpose::Probes).gen();
        assert_eq!(a, b);
        assert!(a != c && a != d && a != e && c != d);
    }
}

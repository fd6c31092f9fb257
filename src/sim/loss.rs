//! Losses that are not independent coin flips: bursty loss on each path (a Gilbert-Elliott
//! channel) and the member kernels' rate limits on ICMP errors.
//!
//! **Bursty loss** (`[network.burst]`). Each (LB node, member) path is a two-state channel in
//! continuous time (Gilbert 1960, Elliott 1963: a good and a bad state with their own loss
//! probabilities). Each state lasts an exponential time with its mean (`mean_good`,
//! `mean_bad`), so a burst's length is a duration, not a packet count, and the probes and the
//! client packets that cross a path at the same moment see the same state. A path starts in its
//! stationary distribution (bad with probability `mean_bad / (mean_good + mean_bad)`; the
//! exponential's lack of memory makes the first state's rest exact). The states are drawn from a
//! random stream of their own ([`crate::sim::rng::Purpose::Burst`]), lazily, as far ahead as
//! anyone asks; the losses themselves are drawn by whoever sends (the probes' or the traffic's
//! stream), so a scenario without `[network.burst]` draws exactly what it drew before.
//!
//! **ICMP rate limits** (`[network.icmp_ratelimit]`). A crashed UDP member answers a UDP probe
//! with an ICMP port-unreachable, which Linux sends only if two token buckets allow it
//! (`net/ipv4/icmp.c`, `__icmp_send`): first the host-wide one (`icmp_global_allow`:
//! `icmp_msgs_per_sec` = 1000 credits per second, at most `icmp_msgs_burst` = 50), then the one
//! of the destination (`icmpv4_xrlim_allow` -> `inet_peer_xrlim_allow` in
//! `net/ipv4/inetpeer.c`: one message per `icmp_ratelimit` = 1000 ms, at most
//! `XRLIM_BURST_FACTOR` = 6 saved up; a new destination starts full). A message the global
//! bucket allows spends its credit even when the destination's bucket then refuses it, as in the
//! kernel. Two simplifications, both [choice]: time is continuous (the kernel counts jiffies
//! and refills the global bucket only after 20 ms), and the global bucket spends exactly one
//! credit per message (the kernel spends 0, 1 or 2 at random, one on average).

use super::config::{Burst, IcmpRateLimit};
use super::rng;
use crate::time::{SimDuration, SimTime};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// The Gilbert-Elliott state of every path of a run.
#[derive(Debug, Clone)]
pub struct BurstChannels {
    burst: Burst,
    rng: ChaCha8Rng,
    /// Per path: the states drawn so far, as (end of the state, bad), oldest first.
    paths: Vec<VecDeque<(SimTime, bool)>>,
}

impl BurstChannels {
    /// `paths` channels, all started at time zero.
    pub fn new(burst: Burst, paths: usize, mut rng: ChaCha8Rng) -> Self {
        let mut channels: Vec<VecDeque<(SimTime, bool)>> = Vec::with_capacity(paths);
        for _ in 0..paths {
            let bad = rng::unit(&mut rng) < burst.bad_fraction();
            let first = exp(&burst, bad, &mut rng);
            channels.push(VecDeque::from([(SimTime::ZERO + first, bad)]));
        }
        BurstChannels {
            burst,
            rng,
            paths: channels,
        }
    }

    /// Loss probability on `path` at `t`. States that ended before `forget_before` are dropped:
    /// the caller never asks about the past again (the engine passes its clock).
    pub fn loss_at(&mut self, path: usize, t: SimTime, forget_before: SimTime) -> f64 {
        let states = &mut self.paths[path];
        while states.len() > 1 && states.front().is_some_and(|&(end, _)| end <= forget_before) {
            states.pop_front();
        }
        loop {
            let &(end, bad) = states.back().expect("a path always has a state");
            if end > t {
                break;
            }
            let next = !bad;
            let span = exp(&self.burst, next, &mut self.rng);
            states.push_back((end + span, next));
        }
        let bad = states
            .iter()
            .find(|&&(end, _)| end > t)
            .is_some_and(|&(_, bad)| bad);
        if bad {
            self.burst.loss_bad
        } else {
            self.burst.loss_good
        }
    }
}

/// A state's length: exponential with the state's mean, at least one nanosecond.
fn exp(b: &Burst, bad: bool, rng: &mut ChaCha8Rng) -> SimDuration {
    let mean = if bad { b.mean_bad } else { b.mean_good };
    let u = rng::unit(rng);
    SimDuration((-(1.0 - u).ln() * mean.0 as f64) as u64).max(SimDuration(1))
}

/// One member kernel's ICMP error budget.
#[derive(Debug, Clone)]
pub struct IcmpBudget {
    cfg: IcmpRateLimit,
    /// Global credits and when they were last topped up.
    global: f64,
    global_at: SimTime,
    /// Per destination: saved time (the kernel's `rate_tokens`, in nanoseconds) and its stamp.
    peers: Vec<(u64, SimTime)>,
}

impl IcmpBudget {
    /// A budget for `peers` destinations, every bucket full.
    pub fn new(cfg: IcmpRateLimit, peers: usize) -> Self {
        let cap = cfg
            .peer_interval
            .0
            .saturating_mul(u64::from(cfg.peer_burst));
        IcmpBudget {
            cfg,
            global: f64::from(cfg.global_burst),
            global_at: SimTime::ZERO,
            peers: vec![(cap, SimTime::ZERO); peers.max(1)],
        }
    }

    /// Whether the kernel sends an ICMP error to destination `peer` (`None`: a destination with
    /// a fresh, full bucket, such as a client seen once) at `t`. Calls come in time order.
    pub fn allow(&mut self, peer: Option<usize>, t: SimTime) -> bool {
        // Host-wide bucket first (icmp_global_allow).
        let elapsed = t.since(self.global_at).as_secs_f64();
        self.global_at = self.global_at.max(t);
        self.global = (self.global + elapsed * f64::from(self.cfg.global_per_s))
            .min(f64::from(self.cfg.global_burst));
        if self.global < 1.0 {
            return false;
        }
        self.global -= 1.0;
        // Then the destination's (inet_peer_xrlim_allow).
        let Some(p) = peer else {
            return true;
        };
        let interval = self.cfg.peer_interval.0;
        let cap = interval.saturating_mul(u64::from(self.cfg.peer_burst));
        let (tokens, last) = &mut self.peers[p];
        let mut token = tokens.saturating_add(t.since(*last).0).min(cap);
        *last = (*last).max(t);
        let ok = token >= interval;
        if ok {
            token -= interval;
        }
        *tokens = token;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::{stream, Purpose};

    fn at_ms(ms: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_millis(ms)
    }

    #[test]
    fn bursts_spend_their_share_of_time_bad_and_last_their_mean() {
        let b = Burst {
            mean_good: SimDuration::from_secs(20),
            mean_bad: SimDuration::from_secs(5),
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        assert!((b.bad_fraction() - 0.2).abs() < 1e-12);
        let mut ch = BurstChannels::new(b, 1, stream(3, 0, Purpose::Burst));
        let (mut bad, mut runs, mut was_bad) = (0u64, 0u64, false);
        let n = 2_000_000u64;
        for i in 0..n {
            let t = SimTime::ZERO + SimDuration::from_millis(i * 100);
            let is_bad = ch.loss_at(0, t, t) == 1.0;
            bad += u64::from(is_bad);
            runs += u64::from(is_bad && !was_bad);
            was_bad = is_bad;
        }
        let frac = bad as f64 / n as f64;
        assert!((frac - 0.2).abs() < 0.01, "bad fraction {frac}");
        let mean_bad_s = bad as f64 * 0.1 / runs as f64;
        assert!((mean_bad_s - 5.0).abs() < 0.3, "mean burst {mean_bad_s} s");
        assert!((b.mean_loss() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn a_path_answers_the_past_until_it_is_forgotten_and_paths_differ() {
        let b = Burst {
            mean_good: SimDuration::from_secs(1),
            mean_bad: SimDuration::from_secs(1),
            loss_good: 0.1,
            loss_bad: 0.9,
        };
        let mut ch = BurstChannels::new(b, 2, stream(1, 0, Purpose::Burst));
        let ahead: Vec<f64> = (0..200)
            .map(|i| ch.loss_at(0, at_ms(i * 50), SimTime::ZERO))
            .collect();
        let again: Vec<f64> = (0..200)
            .map(|i| ch.loss_at(0, at_ms(i * 50), SimTime::ZERO))
            .collect();
        assert_eq!(ahead, again, "a state once drawn stays");
        let other: Vec<f64> = (0..200)
            .map(|i| ch.loss_at(1, at_ms(i * 50), SimTime::ZERO))
            .collect();
        assert_ne!(ahead, other);
    }

    #[test]
    fn the_peer_bucket_allows_a_burst_of_six_then_one_per_second() {
        let mut b = IcmpBudget::new(IcmpRateLimit::default(), 1);
        // Ten messages at once: the six saved up pass.
        let passed = (0..10).filter(|_| b.allow(Some(0), at_ms(0))).count();
        assert_eq!(passed, 6);
        // Then one per second.
        assert!(!b.allow(Some(0), at_ms(999)));
        assert!(b.allow(Some(0), at_ms(1000)));
        assert!(!b.allow(Some(0), at_ms(1500)));
        assert!(b.allow(Some(0), at_ms(2000)));
    }

    #[test]
    fn the_global_bucket_allows_fifty_then_a_thousand_per_second() {
        let mut b = IcmpBudget::new(IcmpRateLimit::default(), 1);
        let passed = (0..100).filter(|_| b.allow(None, at_ms(0))).count();
        assert_eq!(passed, 50);
        // 10 ms later: 10 more credits.
        let passed = (0..100).filter(|_| b.allow(None, at_ms(10))).count();
        assert_eq!(passed, 10);
        // A refused global check leaves the destination's bucket alone; an allowed one spends
        // the global credit even if the destination then refuses.
        let mut b = IcmpBudget::new(
            IcmpRateLimit {
                peer_burst: 1,
                ..IcmpRateLimit::default()
            },
            1,
        );
        assert!(b.allow(Some(0), at_ms(0)));
        let before = b.global;
        assert!(!b.allow(Some(0), at_ms(0)));
        assert!((before - b.global - 1.0).abs() < 1e-9);
    }
}

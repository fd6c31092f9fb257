//! One noise-only probe stream scored by every (fall, rise) pair at once.
//!
//! Under either probe schedule a probe's send time and verdict do not depend on the rise/fall
//! counters (`max_retries`, `max_retries_down`): after_completion sends `delay` after the
//! previous verdict, whatever it was; fixed_rate every `delay`. Nothing else reacts to the
//! member's status on the probe path either (client traffic, drains and routes draw from other
//! random streams and feed nothing back into the probes). So one stream of verdicts per
//! (delay, timeout) can be replayed through the counters of every (fall, rise) pair: `tune`'s
//! 15 pairs per (delay, timeout) cost one stream instead of fifteen runs.
//!
//! This module runs that stream for the master of each LB node over the fault-free time of a
//! run and counts, per pair, the false failovers (ONLINE -> OFFLINE on noise alone: the
//! *mistakes* of the failure-detector literature). It is the simulated check of the false-failover closed form
//! (`super::rare`) in windowed `tune`, drawn from its own random stream
//! (`Purpose::NoiseCheck`), so it does not share draws with the trial's windowed run.
//!
//! Each verdict is a draw of the network's round trip and losses judged by the engine's own
//! rule (`crate::sim::world::judge`, no fault), and a verdict only touches the pairs whose
//! threshold its streak reaches, so the cost is one verdict's draws plus O(1) per probe, for any
//! number of pairs.
//!
//! What it leaves out against a full run: the few cycles after each fault in which the master
//! is still OFFLINE from the fault (a full run cannot count a false failover there; this stream
//! can), a difference of about `max_retries` cycles per fault against hours of fault-free time.

use crate::model::health::ProbeSchedule;
use crate::model::probe::ProbeKind;
use crate::sim::config::SimConfig;
use crate::sim::network::{self, RttSampler};
use crate::sim::rng::{self, Purpose};
use crate::sim::world::{self, Condition, Lost};
use crate::time::SimDuration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One (max_retries_down, max_retries) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterPair {
    pub fall: u32,
    pub rise: u32,
}

/// The counters of every pair over one stream of verdicts.
struct Counters {
    /// `by_fall[k]`: the pairs whose `fall` is k.
    by_fall: Vec<Vec<usize>>,
    by_rise: Vec<Vec<usize>>,
    ok_run: u32,
    fail_run: u32,
    online: Vec<bool>,
    /// Per pair: false failovers (ONLINE -> OFFLINE) so far.
    mistakes: Vec<u64>,
}

impl Counters {
    fn new(pairs: &[CounterPair]) -> Self {
        let max_fall = pairs.iter().map(|p| p.fall.max(1)).max().unwrap_or(1) as usize;
        let max_rise = pairs.iter().map(|p| p.rise.max(1)).max().unwrap_or(1) as usize;
        let mut by_fall = vec![Vec::new(); max_fall + 1];
        let mut by_rise = vec![Vec::new(); max_rise + 1];
        for (k, p) in pairs.iter().enumerate() {
            by_fall[p.fall.max(1) as usize].push(k);
            by_rise[p.rise.max(1) as usize].push(k);
        }
        Counters {
            by_fall,
            by_rise,
            ok_run: 0,
            fail_run: 0,
            online: vec![true; pairs.len()],
            mistakes: vec![0; pairs.len()],
        }
    }

    /// A new LB node's master: ONLINE, empty streaks (as a run starts).
    fn reset(&mut self) {
        self.ok_run = 0;
        self.fail_run = 0;
        self.online.iter_mut().for_each(|o| *o = true);
    }

    /// One verdict at `t` ns. A streak crosses a pair's threshold exactly once: a member ONLINE
    /// has a failure streak below its `fall` (it would have gone OFFLINE), and OFFLINE a success
    /// streak below its `rise`, so `==` is the model's `>=` (`crate::model::health`).
    #[inline]
    fn verdict(&mut self, ok: bool) {
        if ok {
            self.fail_run = 0;
            self.ok_run = self.ok_run.saturating_add(1);
            if let Some(ks) = self.by_rise.get(self.ok_run as usize) {
                for &k in ks {
                    self.online[k] = true;
                }
            }
        } else {
            self.ok_run = 0;
            self.fail_run = self.fail_run.saturating_add(1);
            if let Some(ks) = self.by_fall.get(self.fail_run as usize) {
                for &k in ks {
                    if self.online[k] {
                        self.online[k] = false;
                        self.mistakes[k] += 1;
                    }
                }
            }
        }
    }
}

/// Runs trial `trial`'s noise-only stream of `cfg`'s check (its `delay`, `timeout`, network and
/// schedule; its own counters are ignored) for `span` on the master of every LB node, and
/// scores it with every pair of `pairs`. Deterministic in `(seed, trial)`; each pair's figures
/// do not depend on which other pairs are scored.
pub fn noise_check(
    cfg: &SimConfig,
    pairs: &[CounterPair],
    seed: u64,
    trial: u64,
    span: SimDuration,
) -> Vec<u64> {
    let mut rng = rng::stream(seed, trial, Purpose::NoiseCheck);
    let sampler = RttSampler::new(cfg.network.rtt);
    let kind = cfg.check.kind;
    let judging = cfg.judging();
    let delay = cfg.check.delay.0.max(1);
    let end = span.0;
    let quiet = Condition::default();
    let mut counters = Counters::new(pairs);
    let draw = |rng: &mut rand_chacha::ChaCha8Rng| {
        let rtt = sampler.draw(rng);
        let lost = Lost {
            first: network::lost(&cfg.network, 0.0, rng),
            udp_probe: kind == ProbeKind::UdpConnect && network::lost(&cfg.network, 0.0, rng),
        };
        let (after, v) = world::judge(kind, &judging, &quiet, rtt, lost);
        (after.0, v.ok)
    };
    for _ in 0..cfg.lb_nodes.max(1) {
        counters.reset();
        // The first probe uniformly within the first delay, as a run starts.
        let mut t = ((delay as f64) * rng::unit(&mut rng)) as u64 % delay;
        match cfg.model.probe_schedule {
            ProbeSchedule::AfterCompletion => {
                while t < end {
                    let (after, ok) = draw(&mut rng);
                    let v = t + after;
                    if v >= end {
                        break;
                    }
                    counters.verdict(ok);
                    t = v + delay;
                }
            }
            ProbeSchedule::FixedRate => {
                // Overlapping probes: verdicts are counted in the order they arrive.
                let mut pending: BinaryHeap<Reverse<(u64, u64, bool)>> = BinaryHeap::new();
                let mut seq = 0u64;
                while t < end {
                    let (after, ok) = draw(&mut rng);
                    pending.push(Reverse((t + after, seq, ok)));
                    seq += 1;
                    t += delay;
                    while let Some(&Reverse((v, _, ok))) = pending.peek() {
                        if v > t || v >= end {
                            break;
                        }
                        pending.pop();
                        counters.verdict(ok);
                    }
                }
                while let Some(Reverse((v, _, ok))) = pending.pop() {
                    if v < end {
                        counters.verdict(ok);
                    }
                }
            }
        }
    }
    counters.mistakes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::health::{Health, HealthChecker};

    /// The shared counters agree with the model's own checker on any verdict sequence.
    #[test]
    fn counters_match_the_health_checker() {
        let pairs: Vec<CounterPair> = (1..=4)
            .flat_map(|fall| (1..=3).map(move |rise| CounterPair { fall, rise }))
            .collect();
        let mut c = Counters::new(&pairs);
        let mut checkers: Vec<HealthChecker> = pairs
            .iter()
            .map(|p| HealthChecker::new(p.rise, p.fall, Health::Online))
            .collect();
        let mut mistakes = vec![0u64; pairs.len()];
        // A fixed pseudo-random sequence with long and short runs of both kinds.
        let mut x = 12345u64;
        for t in 0..5000u64 {
            x = crate::sim::rng::mix(x);
            let ok = x % 7 > 2;
            c.verdict(ok);
            for (k, h) in checkers.iter_mut().enumerate() {
                if h.on_verdict(ok) == Some(Health::Offline) {
                    mistakes[k] += 1;
                }
                assert_eq!(h.status() == Health::Online, c.online[k], "pair {k} at {t}");
            }
        }
        for (k, m) in mistakes.iter().enumerate() {
            assert_eq!(c.mistakes[k], *m);
        }
        assert!(mistakes.iter().any(|&m| m > 10));
    }
}

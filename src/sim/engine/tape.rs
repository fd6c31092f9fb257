//! A run's probe stream on tape: record every probe's verdict once, replay it under other
//! counter settings.
//!
//! Why it is exact: the probes' random stream (`Purpose::Probes`) is drawn only when a probe is
//! sent (its round trip and losses) and at the start (phases); a probe's send time depends on the
//! previous verdict's time and `delay` (after_completion) or on `delay` alone (fixed_rate), never
//! on `max_retries` or `max_retries_down`, and nothing else draws from that stream (client
//! traffic has streams of its own, and routes, drains and connections feed nothing back into
//! the probes). So two runs that differ only in the rise/fall counters send the same probes at
//! the same instants, in the same order, with the same verdicts. A tape recorded under one
//! (fall, rise) replays under any other and gives exactly the run that drawing would have given,
//! without the draws.
//!
//! The tape is checked as it is read: every entry names the prober and the send instant, and a
//! replay whose probe does not match the tape (a feature that made probe timing depend on the
//! counters) is flagged ([`ProbeOptions`] callers then run that trial the ordinary way).

use crate::model::probe::Verdict;
use crate::time::{SimDuration, SimTime};

/// One probe as the engine judged it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TapeEntry {
    /// Prober slot (`node * 2 + role`).
    pub slot: u32,
    pub sent_at: SimTime,
    /// From send to verdict.
    pub after: SimDuration,
    pub verdict: Verdict,
}

/// Every probe of one run, in the order the engine sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeTape {
    pub entries: Vec<TapeEntry>,
}

impl ProbeTape {
    /// Empties the tape, keeping its memory for the next recording.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Record the probes, replay them, or neither.
#[derive(Debug, Default)]
pub enum TapeMode<'a> {
    #[default]
    Off,
    Record(&'a mut ProbeTape),
    Replay(&'a ProbeTape),
}

/// Where each prober's first probe goes out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartPhase {
    /// Uniformly within the first `delay` (Huawei elb_faq_0002): a pool whose checks start at 0.
    #[default]
    Uniform,
    /// As if the checks had been running forever (a stationary renewal process): the first send
    /// comes after the residual of a length-biased probe cycle. Under after_completion a cycle
    /// is `delay` plus the verdict's time, so a failing probe (verdict at the timeout) makes a
    /// longer cycle, and an instant picked at random is more likely to fall in one; the residual
    /// is uniform over the cycle it falls in (renewal theory: the equilibrium delay
    /// distribution). Under fixed_rate every cycle is `delay`, and this is [`StartPhase::Uniform`].
    /// Used by windowed trials, whose window starts in the middle of a long-running pool.
    Equilibrium,
}

/// How one run's probes are started and judged (see [`super::run_with`]).
#[derive(Debug, Default)]
pub struct ProbeOptions<'a> {
    pub start: StartPhase,
    pub tape: TapeMode<'a>,
}

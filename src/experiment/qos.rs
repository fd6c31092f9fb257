//! The failure-detector QoS totals of a batch as a shard file carries them: every figure exact
//! (the duration histogram in HdrHistogram's V2 encoding, integer sums as decimal strings), so
//! that merged shards report what one process would have, byte for byte. The figures themselves
//! are defined in [`crate::report::qos`].

use super::stats::{HistState, LatencyStats};
use crate::report::qos::QosTotals;
use serde::{Deserialize, Serialize};

/// [`QosTotals`] in a shard file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QosState {
    /// Mistakes on the master and on the slave.
    pub mistakes: [u64; 2],
    pub censored: u64,
    pub durations: HistState,
    /// Integer sums (ns and ns²) as decimal strings: a `u128` does not fit a JSON number.
    pub durations_sq: String,
    pub healthy_ns: String,
    pub offline_ns: String,
    pub offline_sq: String,
}

fn whole(text: &str, what: &str) -> Result<u128, String> {
    text.parse()
        .map_err(|_| format!("qos.{what}: {text:?} is not a whole number"))
}

impl QosState {
    pub fn of(t: &QosTotals) -> QosState {
        QosState {
            mistakes: t.mistakes,
            censored: t.censored,
            durations: t.durations.to_state(),
            durations_sq: t.durations_sq.to_string(),
            healthy_ns: t.healthy_ns.to_string(),
            offline_ns: t.offline_ns.to_string(),
            offline_sq: t.offline_sq.to_string(),
        }
    }

    pub fn totals(&self) -> Result<QosTotals, String> {
        let durations = LatencyStats::from_state(&self.durations)?;
        if durations.count() + self.censored != self.mistakes[0] + self.mistakes[1] {
            return Err(format!(
                "qos: {} mistakes, but {} durations and {} censored",
                self.mistakes[0] + self.mistakes[1],
                durations.count(),
                self.censored
            ));
        }
        Ok(QosTotals {
            mistakes: self.mistakes,
            censored: self.censored,
            durations,
            durations_sq: whole(&self.durations_sq, "durations_sq")?,
            healthy_ns: whole(&self.healthy_ns, "healthy_ns")?,
            offline_ns: whole(&self.offline_ns, "offline_ns")?,
            offline_sq: whole(&self.offline_sq, "offline_sq")?,
        })
    }
}

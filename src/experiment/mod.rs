//! Experiments over many runs: `trials` (Monte Carlo over seeds) and `tune` (parameter sweeps).
pub mod ci;
pub mod exact;
pub mod rare;
pub mod shard;
pub mod stats;
pub mod trials;
pub mod tune;

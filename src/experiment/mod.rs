//! Experiments over many runs: `trials` (Monte Carlo over seeds) and `tune` (parameter sweeps).
pub mod ci;
pub mod exact;
pub mod qos;
pub mod rare;
pub mod shard;
pub mod stats;
pub mod stream;
pub mod trials;
pub mod tune;
pub mod windowed;

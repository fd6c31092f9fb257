//! The discrete-event engine: integer-nanosecond clock, `(time, seq)` event queue, seeded
//! randomness, and the run loop that drives the sans-IO machines of `crate::model`.
pub mod config;
pub mod engine;
pub mod loss;
pub mod network;
pub mod paths;
pub mod queue;
pub mod rng;
pub mod world;
pub use crate::time;

//! elbsim: a deterministic simulator of a Huawei Cloud ELB master/slave backend pool.
//!
//! Layers, from the outside in: `api` (the CreateMasterSlavePool body: read, validate, respond),
//! `scenario` (a scenario file into a `sim::config::SimConfig`), `sim` (the discrete-event engine),
//! `model` (sans-IO state machines of the data plane), `report` (what a run measured, as text and
//! JSON).
pub mod api;
pub mod commands;
pub mod experiment;
pub mod live;
pub mod model;
pub mod output;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod time;

//! Profiles: the pool's health monitor under another data plane's rules.
pub mod envoy;

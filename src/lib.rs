//! elbsim: a deterministic simulator of a Huawei Cloud ELB master/slave backend pool.
pub mod api;

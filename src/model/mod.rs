//! Sans-IO state machines of the load balancer's data plane.
//!
//! Nothing here knows the engine, the clock or a random generator: each machine is handed `now`
//! and any random draw, and answers with what it wants done next. The discrete-event engine
//! (`crate::sim`) drives them in simulated time; a real-time driver could drive the same code.
//! Which data plane's health-check rules they follow (Huawei ELB, HAProxy, keepalived) is a
//! [`profile`].
pub mod connections;
pub mod health;
pub mod lb_node;
pub mod persistence;
pub mod probe;
pub mod profile;
pub mod quic;
pub mod router;

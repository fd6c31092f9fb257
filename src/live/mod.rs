//! The live world: real sockets on loopback, driven by tokio, where the DES has its simulated
//! world.
//!
//! * [`backend`]: one real server per member (TCP echo, HTTP, HTTPS, UDP echo, plus a separate
//!   check port), whose behaviour follows the member's fault layer.
//! * [`fault`]: that fault layer: the active faults of one member, shared between the fault
//!   injector and the server tasks.
//! * [`prober`]: the real health check (TCP, HTTP, HTTPS, UDP_CONNECT) with the model's reason
//!   codes; its verdicts feed `model::health::HealthChecker` unchanged.
//! * [`icmp`]: the ICMP echo of the UDP_CONNECT check against real hosts.
//! * [`http`], [`tls`]: the small HTTP/1.1 and TLS pieces both ends need.
//! * [`timer`]: deadlines kept to a fraction of a millisecond (tokio's wheel ticks in whole
//!   ones), for the driver's timers and the probes' timeouts.
//! * [`driver`]: `elbsim live`: one `model::LbNode` per LB node fed by real probes of the
//!   backends, faults applied at their scaled times, the DES's own log type as output.
//! * [`traffic`]: the clients and the front proxies of `[traffic]`; [`udp_flows`]: the relay
//!   and the flows of a UDP pool's clients.
//! * [`compare`]: `elbsim live --compare N`: N live trials against the DES's distributions,
//!   measured in fractions of the closed-form detection window.
//!
//! Nothing in `crate::model` knows about this module or tokio: the live world only feeds the
//! same sans-IO state machines that the DES drives. Every task here stops through one
//! `tokio_util::sync::CancellationToken`, and every wait has a deadline.
pub mod backend;
pub mod compare;
pub mod driver;
pub mod fault;
pub mod http;
pub mod icmp;
pub mod prober;
pub mod timer;
pub mod tls;
pub mod traffic;
pub mod udp_flows;

pub use backend::{Backend, BackendSpec, HttpSite, Service};
pub use fault::{FaultHandle, FaultId, LiveFault};
pub use prober::{CheckSpec, EchoStep, ProbeResult, Prober};

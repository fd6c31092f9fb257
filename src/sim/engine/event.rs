//! The engine's events, and their packed form in the queue.
//!
//! [`Event`] is what the engine matches on; [`Packed`] is what the queue stores: two `u64` words,
//! written with two full-word stores at push and read with two full-word loads at pop. Why: an
//! enum with byte-sized fields (`ok`, a reason, a status) is stored field by field and copied
//! back out with wide loads; when the event pops soon after its push (a verdict one RTT after its
//! probe) the wide load cannot be forwarded from the narrow stores still in flight and stalls for
//! the whole store drain. A profile put a fifth of the engine's time on that one load. With whole
//! words in and whole words out, every load is forwarded from exactly one store.

use crate::model::connections::ConnId;
use crate::model::health::Health;
use crate::model::lb_node::Timer;
use crate::model::probe::Reason;
use crate::model::router::Role;
use crate::time::SimTime;

/// Everything that can happen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Event {
    /// Prober `slot` sends a probe.
    ProbeSend {
        slot: u32,
    },
    /// The verdict of a probe sent at `sent_at` reaches prober `slot`.
    ProbeVerdict {
        slot: u32,
        sent_at: SimTime,
        ok: bool,
        reason: Option<Reason>,
        status: Option<u16>,
    },
    /// A timer `node` asked for; `cause` is the transition (index in the log) that led to it, or
    /// `NO_CAUSE`.
    NodeTimer {
        node: u32,
        timer: Timer,
        cause: u32,
    },
    FaultStart {
        fault: u32,
    },
    FaultEnd {
        fault: u32,
    },
    /// A flap fault enters its down (`down = true`) or up phase.
    FlapEdge {
        fault: u32,
        down: bool,
    },
    /// The arrival rate changes to step `step` of the schedule.
    RateStep {
        step: u32,
    },
    /// A new client connection (stale when `generation` is not the current one).
    Arrival {
        generation: u32,
    },
    /// A connection's lifetime is over.
    ConnEnd {
        node: u32,
        id: ConnId,
    },
    /// A QUIC connection switches `path` to a new CID.
    QuicRotate {
        node: u32,
        id: ConnId,
        path: u8,
    },
    /// A QUIC client migrates `path` to a new address (and CID).
    QuicMigrate {
        node: u32,
        id: ConnId,
        path: u8,
    },
    /// An LB-node stall (index in `SimConfig::stalls`) begins (`end = false`) or ends.
    Stall {
        stall: u32,
        end: bool,
    },
    /// envoy: the next request that `node`'s clients send on their open connections to
    /// `member` while its requests fail (stale when `generation` is not the stream's current).
    ClientRequest {
        node: u32,
        member: Role,
        generation: u32,
    },
    /// haproxy `observe layer4`: a client connection `node` sent to `member` at `attempted_at`
    /// that met silence fails now, `timeout connect` later: a layer-4 error.
    ObservedTimeout {
        node: u32,
        member: Role,
        attempted_at: SimTime,
    },
    /// A cancelled event, rewritten in place in the queue (`EventQueue::replace_first`): haproxy's
    /// `on-error` moved a check.
    Cancelled,
}

/// An [`Event`] as two words. Word `a`: tag in bits 0..4, small flags in bits 4..32, the main
/// `u32` (slot, node, fault, step, generation) in bits 32..64. Word `b`: a time or a second
/// `u32` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Packed {
    a: u64,
    b: u64,
}

impl crate::sim::queue::Words for Packed {
    #[inline(always)]
    fn to_words(self) -> [u64; 2] {
        [self.a, self.b]
    }
    #[inline(always)]
    fn from_words(w: [u64; 2]) -> Self {
        Packed { a: w[0], b: w[1] }
    }
}

const PROBE_SEND: u64 = 0;
const PROBE_VERDICT: u64 = 1;
const NODE_TIMER: u64 = 2;
const FAULT_START: u64 = 3;
const FAULT_END: u64 = 4;
const FLAP_EDGE: u64 = 5;
const RATE_STEP: u64 = 6;
const ARRIVAL: u64 = 7;
const CONN_END: u64 = 8;
const QUIC_ROTATE: u64 = 9;
const QUIC_MIGRATE: u64 = 10;
const STALL: u64 = 11;
const CLIENT_REQUEST: u64 = 12;
const CANCELLED: u64 = 13;
const OBSERVED_TIMEOUT: u64 = 14;

/// Every reason, by code - 1 (code 0 is "no reason").
const REASONS: [Reason; 11] = [
    Reason::ConnectTimeout,
    Reason::ConnectRefused,
    Reason::ConnectFailed,
    Reason::ConnectInterrupt,
    Reason::SslHandshakeError,
    Reason::RecvResponseFailed,
    Reason::RecvResponseTimeout,
    Reason::SendRequestFailed,
    Reason::SendRequestTimeout,
    Reason::ResponseFormatError,
    Reason::ResponseMismatch,
];

#[inline(always)]
fn reason_code(r: Option<Reason>) -> u64 {
    match r {
        None => 0,
        Some(r) => match r {
            Reason::ConnectTimeout => 1,
            Reason::ConnectRefused => 2,
            Reason::ConnectFailed => 3,
            Reason::ConnectInterrupt => 4,
            Reason::SslHandshakeError => 5,
            Reason::RecvResponseFailed => 6,
            Reason::RecvResponseTimeout => 7,
            Reason::SendRequestFailed => 8,
            Reason::SendRequestTimeout => 9,
            Reason::ResponseFormatError => 10,
            Reason::ResponseMismatch => 11,
        },
    }
}

#[inline(always)]
fn reason_of_code(c: u64) -> Option<Reason> {
    (c != 0).then(|| REASONS[(c as usize - 1) % REASONS.len()])
}

#[inline(always)]
fn id_word(id: ConnId) -> u64 {
    u64::from(id.slot) | (u64::from(id.generation) << 32)
}

#[inline(always)]
fn id_of(b: u64) -> ConnId {
    ConnId {
        slot: b as u32,
        generation: (b >> 32) as u32,
    }
}

#[inline(always)]
fn role_of(bit: u64) -> Role {
    if bit & 1 == 0 {
        Role::Master
    } else {
        Role::Slave
    }
}

impl From<Event> for Packed {
    #[inline(always)]
    fn from(e: Event) -> Packed {
        let hi = |x: u32| u64::from(x) << 32;
        match e {
            Event::ProbeSend { slot } => Packed {
                a: PROBE_SEND | hi(slot),
                b: 0,
            },
            Event::ProbeVerdict {
                slot,
                sent_at,
                ok,
                reason,
                status,
            } => Packed {
                a: PROBE_VERDICT
                    | (u64::from(ok) << 4)
                    | (u64::from(status.is_some()) << 5)
                    | (reason_code(reason) << 8)
                    | (u64::from(status.unwrap_or(0)) << 16)
                    | hi(slot),
                b: sent_at.0,
            },
            Event::NodeTimer { node, timer, cause } => {
                let (flags, epoch) = match timer {
                    Timer::ApplyHealth { role, health } => (
                        (role.index() as u64) << 5 | u64::from(health == Health::Offline) << 6,
                        0,
                    ),
                    Timer::DrainDeadline { role, epoch } => {
                        (1 << 4 | (role.index() as u64) << 5, epoch)
                    }
                    Timer::FailbackHold { epoch } => (1 << 7, epoch),
                    Timer::OutlierSweep => (1 << 7 | 1 << 4, 0),
                };
                Packed {
                    a: NODE_TIMER | flags | hi(node),
                    b: u64::from(cause) | (u64::from(epoch) << 32),
                }
            }
            Event::FaultStart { fault } => Packed {
                a: FAULT_START | hi(fault),
                b: 0,
            },
            Event::FaultEnd { fault } => Packed {
                a: FAULT_END | hi(fault),
                b: 0,
            },
            Event::FlapEdge { fault, down } => Packed {
                a: FLAP_EDGE | u64::from(down) << 4 | hi(fault),
                b: 0,
            },
            Event::RateStep { step } => Packed {
                a: RATE_STEP | hi(step),
                b: 0,
            },
            Event::Arrival { generation } => Packed {
                a: ARRIVAL | hi(generation),
                b: 0,
            },
            Event::ConnEnd { node, id } => Packed {
                a: CONN_END | hi(node),
                b: id_word(id),
            },
            Event::QuicRotate { node, id, path } => Packed {
                a: QUIC_ROTATE | u64::from(path) << 8 | hi(node),
                b: id_word(id),
            },
            Event::QuicMigrate { node, id, path } => Packed {
                a: QUIC_MIGRATE | u64::from(path) << 8 | hi(node),
                b: id_word(id),
            },
            Event::Stall { stall, end } => Packed {
                a: STALL | u64::from(end) << 4 | hi(stall),
                b: 0,
            },
            Event::ClientRequest {
                node,
                member,
                generation,
            } => Packed {
                a: CLIENT_REQUEST | (member.index() as u64) << 4 | hi(node),
                b: u64::from(generation),
            },
            Event::Cancelled => Packed { a: CANCELLED, b: 0 },
            Event::ObservedTimeout {
                node,
                member,
                attempted_at,
            } => Packed {
                a: OBSERVED_TIMEOUT | (member.index() as u64) << 4 | hi(node),
                b: attempted_at.0,
            },
        }
    }
}

impl From<Packed> for Event {
    #[inline(always)]
    fn from(p: Packed) -> Event {
        let Packed { a, b } = p;
        let main = (a >> 32) as u32;
        match a & 0xf {
            PROBE_SEND => Event::ProbeSend { slot: main },
            PROBE_VERDICT => Event::ProbeVerdict {
                slot: main,
                sent_at: SimTime(b),
                ok: a >> 4 & 1 == 1,
                reason: reason_of_code(a >> 8 & 0xff),
                status: (a >> 5 & 1 == 1).then_some((a >> 16) as u16),
            },
            NODE_TIMER => {
                let role = role_of(a >> 5);
                let timer = if a >> 7 & 1 == 1 && a >> 4 & 1 == 1 {
                    Timer::OutlierSweep
                } else if a >> 7 & 1 == 1 {
                    Timer::FailbackHold {
                        epoch: (b >> 32) as u32,
                    }
                } else if a >> 4 & 1 == 0 {
                    Timer::ApplyHealth {
                        role,
                        health: if a >> 6 & 1 == 1 {
                            Health::Offline
                        } else {
                            Health::Online
                        },
                    }
                } else {
                    Timer::DrainDeadline {
                        role,
                        epoch: (b >> 32) as u32,
                    }
                };
                Event::NodeTimer {
                    node: main,
                    timer,
                    cause: b as u32,
                }
            }
            FAULT_START => Event::FaultStart { fault: main },
            FAULT_END => Event::FaultEnd { fault: main },
            FLAP_EDGE => Event::FlapEdge {
                fault: main,
                down: a >> 4 & 1 == 1,
            },
            RATE_STEP => Event::RateStep { step: main },
            ARRIVAL => Event::Arrival { generation: main },
            CONN_END => Event::ConnEnd {
                node: main,
                id: id_of(b),
            },
            QUIC_ROTATE => Event::QuicRotate {
                node: main,
                id: id_of(b),
                path: (a >> 8) as u8,
            },
            STALL => Event::Stall {
                stall: main,
                end: a >> 4 & 1 == 1,
            },
            CLIENT_REQUEST => Event::ClientRequest {
                node: main,
                member: role_of(a >> 4),
                generation: b as u32,
            },
            CANCELLED => Event::Cancelled,
            OBSERVED_TIMEOUT => Event::ObservedTimeout {
                node: main,
                member: role_of(a >> 4),
                attempted_at: SimTime(b),
            },
            // Only QUIC_MIGRATE is left: every packed word came from `From<Event>`.
            _ => Event::QuicMigrate {
                node: main,
                id: id_of(b),
                path: (a >> 8) as u8,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips() {
        let id = ConnId {
            slot: 0xdead_beef,
            generation: u32::MAX,
        };
        let mut events = vec![
            Event::ProbeSend { slot: u32::MAX },
            Event::NodeTimer {
                node: 7,
                timer: Timer::DrainDeadline {
                    role: Role::Slave,
                    epoch: u32::MAX,
                },
                cause: u32::MAX,
            },
            Event::FaultStart { fault: 3 },
            Event::FaultEnd { fault: 4 },
            Event::FlapEdge {
                fault: 5,
                down: true,
            },
            Event::FlapEdge {
                fault: 5,
                down: false,
            },
            Event::RateStep { step: 9 },
            Event::Arrival { generation: 11 },
            Event::ConnEnd { node: 2, id },
            Event::QuicRotate {
                node: 1,
                id,
                path: 3,
            },
            Event::QuicMigrate {
                node: u32::MAX,
                id,
                path: 255,
            },
            Event::NodeTimer {
                node: 3,
                timer: Timer::FailbackHold { epoch: u32::MAX },
                cause: 17,
            },
            Event::Stall {
                stall: 9,
                end: false,
            },
            Event::Stall {
                stall: u32::MAX,
                end: true,
            },
            Event::NodeTimer {
                node: 3,
                timer: Timer::OutlierSweep,
                cause: 17,
            },
            Event::ClientRequest {
                node: u32::MAX,
                member: Role::Slave,
                generation: u32::MAX,
            },
            Event::ClientRequest {
                node: 0,
                member: Role::Master,
                generation: 0,
            },
            Event::Cancelled,
            Event::ObservedTimeout {
                node: u32::MAX,
                member: Role::Slave,
                attempted_at: SimTime(u64::MAX),
            },
            Event::ObservedTimeout {
                node: 3,
                member: Role::Master,
                attempted_at: SimTime(0),
            },
        ];
        for role in Role::BOTH {
            for health in [Health::Online, Health::Offline] {
                events.push(Event::NodeTimer {
                    node: 1,
                    timer: Timer::ApplyHealth { role, health },
                    cause: 0,
                });
            }
        }
        for reason in std::iter::once(None).chain(REASONS.map(Some)) {
            for status in [None, Some(0), Some(503), Some(u16::MAX)] {
                for ok in [false, true] {
                    events.push(Event::ProbeVerdict {
                        slot: 12345,
                        sent_at: SimTime(u64::MAX - 1),
                        ok,
                        reason,
                        status,
                    });
                }
            }
        }
        for e in events {
            assert_eq!(Event::from(Packed::from(e)), e);
        }
    }
}

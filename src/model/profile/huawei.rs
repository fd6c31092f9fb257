//! The `huawei` profile (the default): Huawei Cloud ELB's documented semantics, exactly the model
//! elbsim had before profiles existed (`docs/model.md`).
//!
//! - The next probe goes out `delay` after a verdict (after_completion), or every `delay`
//!   (fixed_rate, a choice of ours).
//! - One `timeout` from the send bounds the whole probe: connect, TLS, request and answer.
//! - UDP_CONNECT: an ICMP echo first (no reply = unhealthy), then the UDP probe; silence until
//!   the timeout is a success (elb_faq_0024).
//! - `max_retries_down` consecutive failures → OFFLINE, `max_retries` consecutive successes →
//!   ONLINE; members start ONLINE, or OFFLINE with `initial_state = "initial"`.
//! - The first probe of each (node, member) goes out uniformly within the first `delay`
//!   (elb_faq_0002).

use super::{FirstProbes, Intervals, Jitter, Judging, Monitor, ProfileName, Read, Rules};
use crate::model::health::{Health, ProbeSchedule};

/// Huawei's rules for `m`.
pub fn rules(m: &Monitor, schedule: ProbeSchedule, fresh: bool) -> Rules {
    Rules {
        profile: ProfileName::Huawei,
        schedule,
        rise: m.rise.max(1),
        fall: m.fall.max(1),
        initial: if fresh {
            Health::Offline
        } else {
            Health::Online
        },
        initial_fail_streak: 0,
        intervals: Intervals::Fixed(m.delay),
        jitter: Jitter::None,
        judging: Judging {
            connect: m.timeout,
            read: Read::FromSend(m.timeout),
            udp_echo: true,
            udp_silence: m.timeout,
            clients_seen: false,
        },
        first: FirstProbes::Uniform(m.delay),
        initial_probe_state: super::ProbeState::default(),
        close_on_down: false,
    }
}

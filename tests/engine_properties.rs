//! Invariants of the engine over random scenarios (proptest): no panic, determinism, time order,
//! sane latencies, and every client connection accounted for.

use elbsim::model::health::ProbeSchedule;
use elbsim::model::probe::ProbeKind;
use elbsim::model::router::{AllDown, Failback, Role};
use elbsim::report::run::measure;
use elbsim::sim::config::{
    CheckConfig, FailbackSessions, Fault, FaultKind, Lifetime, Rtt, SimConfig, TrafficConfig,
};
use elbsim::sim::engine::{run, RunOptions};
use elbsim::sim::time::{SimDuration, SimTime};
use proptest::prelude::*;

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}

fn fault_kind() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        Just(FaultKind::Crash),
        Just(FaultKind::HostDown),
        Just(FaultKind::Hang),
        (400u16..600, any::<bool>())
            .prop_map(|(status, expected)| FaultKind::HttpStatus { status, expected }),
        (0u64..8000).prop_map(|ms| FaultKind::Slow {
            latency: SimDuration::from_millis(ms)
        }),
        (0.05f64..1.0).prop_map(|probability| FaultKind::Loss { probability }),
        Just(FaultKind::MonitorPortDown),
        Just(FaultKind::TlsError),
        (1u64..60, 0.0f64..=1.0).prop_map(|(p, down)| FaultKind::Flap {
            period: secs(p),
            down
        }),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    (
        any::<bool>(),
        fault_kind(),
        0u64..300,
        proptest::option::of(1u64..300),
    )
        .prop_map(|(master, kind, at, len)| Fault {
            member: if master { Role::Master } else { Role::Slave },
            kind,
            at: SimTime::ZERO + secs(at),
            until: len.map(|l| SimTime::ZERO + secs(at + l)),
        })
}

prop_compose! {
    fn config()(
        kind in prop_oneof![Just(ProbeKind::Tcp), Just(ProbeKind::UdpConnect), Just(ProbeKind::Http), Just(ProbeKind::Https)],
        delay in 1u64..10, timeout in 1u64..10, rise in 1u32..5, fall in 1u32..5,
        fixed_rate in any::<bool>(), sticky in any::<bool>(), fail_open in any::<bool>(),
        reset in any::<bool>(), delay_ms in 0u64..2000, nodes in 1u32..4,
        loss in 0.0f64..0.3, noisy in any::<bool>(),
        faults in proptest::collection::vec(fault(), 0..4),
        rate in proptest::option::of(1.0f64..40.0), drain in proptest::option::of(10u64..60),
        persistence in proptest::option::of(1u64..3),
    ) -> SimConfig {
        let mut c = SimConfig::with_check(CheckConfig {
            kind, delay: secs(delay), timeout: secs(timeout), rise, fall,
        });
        c.duration = secs(400);
        c.lb_nodes = nodes;
        c.model.probe_schedule = if fixed_rate { ProbeSchedule::FixedRate } else { ProbeSchedule::AfterCompletion };
        c.model.failback = if sticky { Failback::Sticky } else { Failback::Preemptive };
        c.model.all_down = if fail_open { AllDown::Master } else { AllDown::Drop };
        c.model.failback_sessions = if reset { FailbackSessions::Reset } else { FailbackSessions::Keep };
        c.model.route_update_delay = SimDuration::from_millis(delay_ms);
        c.network.loss = loss;
        if noisy {
            c.network.rtt = Rtt::LogNormal { median: SimDuration::from_millis(2), p99: SimDuration::from_millis(900) };
        }
        c.faults = faults;
        c.traffic = rate.map(|rate| TrafficConfig {
            rate_steps: vec![(SimTime::ZERO, rate)],
            lifetime: Lifetime::Exponential(secs(20)),
            clients: 50,
            connect_timeout: secs(3),
            requests_per_s: 1.0,
            udp_idle_timeout: None,
            persistence: persistence.map(|m| secs(m * 60)),
            drain: drain.map(secs),
            tls: false,
            any_port: false,
            quic: None,
        });
        c
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn runs_are_deterministic_ordered_and_consistent(cfg in config(), seed in any::<u64>()) {
        let opts = RunOptions { seed, record_verdicts: true, ..Default::default() };
        let a = run(&cfg, opts);
        let b = run(&cfg, opts);
        prop_assert_eq!(&a, &b);
        // Stopping early when quiet changes nothing that is measured.
        let quick = run(&cfg, RunOptions { stop_when_quiet: true, ..opts });
        prop_assert_eq!(&quick.transitions, &a.transitions);
        prop_assert_eq!(&quick.routes, &a.routes);

        let end = SimTime::ZERO + cfg.duration;
        prop_assert!(a.transitions.windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert!(a.routes.windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert!(a.verdicts.windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert!(a.transitions.iter().all(|t| t.at <= end && t.probe_sent_at <= t.at));

        let m = measure(&cfg, &a);
        for f in &m.failovers {
            let d = &f.detection;
            let start = cfg.faults[d.fault as usize].at;
            // Detection never before the fault starts.
            prop_assert!(d.detected >= start);
            if let Some(sw) = f.switched {
                prop_assert!(sw >= d.detected);
                prop_assert!(sw <= d.detected + cfg.model.route_update_delay);
            }
        }
        for o in &m.outages {
            prop_assert!(o.at >= o.detection.detected);
        }
        prop_assert!(m.failbacks.iter().all(|b| b.switched_back >= b.healthy));
        prop_assert_eq!(
            m.missed.len() as u64 + m.failovers.len() as u64
                + m.outages.iter().filter(|o| o.member == Role::Master).count() as u64,
            m.fault_node_pairs
        );

        if let Some(t) = &a.traffic {
            use elbsim::sim::engine::Counter::*;
            let k = |c| t.counters.get(c);
            prop_assert_eq!(
                k(Established) + k(Refused) + k(TimedOut) + k(NoBackend) + k(TlsFailed),
                k(Connections)
            );
            prop_assert_eq!(k(ToMaster) + k(ToSlave), k(Established));
            prop_assert_eq!(
                k(Completed) + k(Broken) + k(Drained) + k(ResetOnFailback) + k(QuicCidBroken) + k(OpenAtEnd),
                k(Established)
            );
            // Every failure is charged somewhere, and each window covers its failures.
            let charged: u64 = t.unavailability.iter().filter_map(|u| u.all.map(|s| s.failures())).sum::<u64>()
                + t.unattributed.map_or(0, |s| s.failures());
            prop_assert_eq!(
                charged,
                k(Refused) + k(TimedOut) + k(NoBackend) + k(TlsFailed) + k(Broken)
                    + k(ResetOnFailback) + k(QuicCidBroken) + k(RequestsFailed)
            );
            for u in &t.unavailability {
                if let Some(s) = u.all {
                    prop_assert!(s.first <= s.last);
                    for n in u.nodes.values() {
                        prop_assert!(s.first <= n.first && n.last <= s.last);
                    }
                }
            }
            prop_assert!(k(RequestsFailed) <= k(Requests));
            prop_assert!(k(OpenAtEnd) <= k(PeakOpen));
            let drained: u64 = t.drains.iter().map(|d| d.connections).sum();
            prop_assert_eq!(drained, k(Drained));
            if let Some(timeout) = cfg.traffic.as_ref().and_then(|t| t.drain) {
                for d in &t.drains {
                    if let Some(closed) = d.closed {
                        prop_assert_eq!(closed.since(d.started), timeout);
                    }
                }
            }
        }
    }
}

/// A huawei or haproxy profile (fresh starts: every node's checks in lockstep, HAProxy's
/// staggering by position; `fastinter`/`downinter` apart from `inter`) over random faults.
fn profiled(cfg: SimConfig, haproxy: bool, fast_ms: u64, down_ms: u64) -> SimConfig {
    use elbsim::model::profile::{haproxy::Options, Profile};
    let mut cfg = cfg;
    // HAProxy has no UDP check (the scenario loader refuses one).
    if haproxy && cfg.check.kind != ProbeKind::UdpConnect {
        cfg.model.probe_schedule = ProbeSchedule::AfterCompletion;
        cfg.model.profile = Profile::Haproxy(Options {
            fastinter: Some(SimDuration::from_millis(fast_ms)),
            downinter: Some(SimDuration::from_millis(down_ms)),
            ..Options::default()
        });
    }
    cfg
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// Coasting (settled probers counted at once instead of simulated probe by probe) changes
    /// nothing: the same log, event count included, with and without quiescence, and under an
    /// event budget that stops the run.
    #[test]
    fn coasting_changes_nothing(
        cfg in config(), seed in any::<u64>(), haproxy in any::<bool>(),
        fast_ms in 100u64..3000, down_ms in 100u64..9000, budget in 50u64..3000,
        quiet_network in any::<bool>(), no_traffic in any::<bool>(),
    ) {
        let mut cfg = profiled(cfg, haproxy, fast_ms, down_ms);
        // Coasting needs probes that draw nothing (fixed RTT, no loss) and no client traffic:
        // half the cases have that, so that it happens.
        if quiet_network {
            cfg.network.loss = 0.0;
            cfg.network.rtt = Rtt::Fixed(SimDuration::from_millis(1));
        }
        if no_traffic {
            cfg.traffic = None;
        }
        for quiet in [false, true] {
            let opts = RunOptions { seed, stop_when_quiet: quiet, ..Default::default() };
            let stepped = run(&SimConfig { step_every_probe: true, ..cfg.clone() }, opts);
            let coasted = run(&cfg, opts);
            prop_assert_eq!(&coasted, &stepped);
        }
        cfg.limits.max_events = budget;
        let opts = RunOptions { seed, ..Default::default() };
        let stepped = run(&SimConfig { step_every_probe: true, ..cfg.clone() }, opts);
        let coasted = run(&cfg, opts);
        prop_assert_eq!(&coasted.events, &stepped.events);
        prop_assert_eq!(&coasted.stopped.is_some(), &stepped.stopped.is_some());
    }
}

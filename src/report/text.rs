//! Plain-text rendering of reports, for people at a terminal.

use super::run::RunReport;
use std::fmt::Write;

/// Seconds with millisecond precision, the unit people read latencies in.
pub fn s3(x: f64) -> String {
    format!("{x:.3}s")
}

fn opt_s3(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), s3)
}

/// Left-aligned table with a header row; columns as wide as their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, "{:<w$}  ", c, w = width[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The `elbsim run` report as text. `context` holds lines describing the scenario (pool, faults).
pub fn run_report(r: &RunReport, context: &[String], reproduce: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "elbsim run: {}", r.name);
    let _ = writeln!(
        o,
        "seed {} | {} simulated | {} LB node{} | {} events",
        r.seed,
        s3(r.duration_s),
        r.lb_nodes,
        if r.lb_nodes == 1 { "" } else { "s" },
        r.events
    );
    for c in context {
        let _ = writeln!(o, "{c}");
    }
    if r.partial {
        let _ = writeln!(
            o,
            "PARTIAL: interrupted; the figures cover the first {} of simulated time",
            s3(r.covered_s)
        );
    }
    o.push('\n');
    if r.failovers.is_empty() {
        o.push_str("failovers: none\n");
    } else {
        o.push_str("failovers\n");
        let rows: Vec<Vec<String>> = r
            .failovers
            .iter()
            .map(|f| {
                vec![
                    f.lb_node.to_string(),
                    format!("{}{}", f.fault, if f.needless { " (needless)" } else { "" }),
                    s3(f.fault_start_s),
                    s3(f.detected_s),
                    s3(f.detection_latency_s),
                    opt_s3(f.switched_s),
                    opt_s3(f.failover_latency_s),
                    f.switched_to.map_or("-", |t| t.as_str()).to_string(),
                    f.reason.unwrap_or("-").to_string(),
                ]
            })
            .collect();
        o.push_str(&table(
            &[
                "node",
                "fault",
                "start",
                "detected",
                "detection",
                "switched",
                "failover",
                "to",
                "reason",
            ],
            &rows,
        ));
    }
    if r.failbacks.is_empty() {
        o.push_str("failbacks: none\n");
    } else {
        o.push_str("failbacks\n");
        let persistence = r
            .failbacks
            .iter()
            .any(|f| f.persisted_connections.is_some());
        let rows: Vec<Vec<String>> = r
            .failbacks
            .iter()
            .map(|f| {
                let mut row = vec![
                    f.lb_node.to_string(),
                    f.fault.to_string(),
                    s3(f.fault_end_s),
                    s3(f.switched_back_s),
                    s3(f.failback_latency_s),
                ];
                if persistence {
                    row.push(opt_s3(f.persisted_failback_latency_s));
                    row.push(f.persisted_connections.unwrap_or(0).to_string());
                }
                row
            })
            .collect();
        let mut header = vec!["node", "fault", "fault end", "switched back", "failback"];
        if persistence {
            header.extend(["persisted back", "persisted conns"]);
        }
        o.push_str(&table(&header, &rows));
    }
    if !r.outages.is_empty() {
        o.push_str("outages (no ONLINE member to send to; not failovers)\n");
        let rows: Vec<Vec<String>> = r
            .outages
            .iter()
            .map(|x| {
                vec![
                    x.lb_node.to_string(),
                    format!("{} {}", x.member.as_str(), x.fault),
                    s3(x.fault_start_s),
                    s3(x.detected_s),
                    s3(x.at_s),
                    s3(x.outage_latency_s),
                    match x.kind {
                        super::run::OutageKind::Drop => "drop",
                        super::run::OutageKind::FailOpen => "fail-open",
                    }
                    .to_string(),
                ]
            })
            .collect();
        o.push_str(&table(
            &["node", "fault", "start", "detected", "at", "latency", "to"],
            &rows,
        ));
    }
    for f in r.failovers.iter().filter(|f| f.needless) {
        let _ = writeln!(
            o,
            "needless: node {} {} failover: {}",
            f.lb_node,
            f.fault,
            f.needless_rule.unwrap_or("-")
        );
    }
    let _ = writeln!(o, "false failovers: {}", r.false_failovers);
    for f in r.false_failover_events.iter().take(10) {
        let _ = writeln!(
            o,
            "  node {} at {} ({})",
            f.lb_node,
            s3(f.at_s),
            f.reason.unwrap_or("-")
        );
    }
    if r.false_failover_events.len() > 10 {
        let _ = writeln!(o, "  ... {} more", r.false_failover_events.len() - 10);
    }
    if let Some(n) = r.stall_failovers {
        let _ = writeln!(o, "failovers caused by LB-node stalls: {n}");
        for e in &r.stall_events {
            let _ = writeln!(
                o,
                "  node {} {} OFFLINE at {} (stall {}..{}), new connections to {}",
                e.lb_node,
                e.member.as_str(),
                s3(e.at_s),
                s3(e.stall_start_s),
                s3(e.stall_end_s),
                e.route_to.map_or("(unchanged)", |t| t.as_str())
            );
        }
    }
    let _ = writeln!(o, "missed faults: {}", r.missed_faults);
    for m in &r.missed {
        let _ = writeln!(
            o,
            "  node {}: {} from {} never led to a failover",
            m.lb_node,
            m.fault,
            s3(m.fault_start_s)
        );
        if let Some(why) = m.why {
            let _ = writeln!(o, "    because {why}");
        }
    }
    if r.censored_faults > 0 {
        let _ = writeln!(
            o,
            "censored faults: {} (undetected, and their detection window did not fit before the end)",
            r.censored_faults
        );
        for m in &r.censored {
            let _ = writeln!(
                o,
                "  node {}: {} from {}",
                m.lb_node,
                m.fault,
                s3(m.fault_start_s)
            );
        }
    }
    o.push('\n');
    o.push_str(&super::qos::text(&r.qos.figures));
    o.push_str("\nmembers\n");
    for m in &r.members {
        let port = m.protocol_port.map_or(String::new(), |p| format!(":{p}"));
        let finals: Vec<&str> = m.final_status.iter().map(|h| h.as_str()).collect();
        let _ = writeln!(
            o,
            "  {} {}{}  {} status change{}, final {}",
            m.role.as_str(),
            m.address,
            port,
            m.transitions.len(),
            if m.transitions.len() == 1 { "" } else { "s" },
            finals.join("/")
        );
        for t in m.transitions.iter().take(20) {
            let mut why = t.reason_code.map_or(String::new(), |c| format!(" ({c})"));
            if let (Some(e), Some(h)) = (&t.expected_response, &t.healthcheck_response) {
                let _ = write!(why, " expected {e}, got {h}");
            }
            let _ = writeln!(
                o,
                "    node {} {} at {}{}",
                t.lb_node,
                t.operating_status.as_str(),
                s3(t.at_s),
                why
            );
        }
        if m.transitions.len() > 20 {
            let _ = writeln!(o, "    ... {} more", m.transitions.len() - 20);
        }
    }
    if let Some(t) = &r.traffic {
        traffic_section(&mut o, t);
    }
    if let Some(tl) = &r.timeline {
        o.push_str("\ntimeline\n");
        for e in tl {
            let node = e.lb_node.map_or(String::new(), |n| format!("node {n} "));
            let member = e
                .member
                .map_or(String::new(), |m| format!("{} ", m.as_str()));
            let _ = writeln!(
                o,
                "  {:>12}  {:<11} {}{}{}",
                s3(e.at_s),
                e.event,
                node,
                member,
                e.detail
            );
        }
    }
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}

fn traffic_section(o: &mut String, t: &super::run::TrafficReport) {
    use crate::sim::engine::Counter::*;
    let k = |c| t.counters.get(c);
    o.push_str("\ntraffic\n");
    let _ = writeln!(
        o,
        "  connections {}: established {} (master {}, slave {}), completed {}",
        k(Connections),
        k(Established),
        k(ToMaster),
        k(ToSlave),
        k(Completed)
    );
    let _ = writeln!(
        o,
        "  failed at connect: refused {}, timed out {}, no backend {}, TLS failed {}",
        k(Refused),
        k(TimedOut),
        k(NoBackend),
        k(TlsFailed)
    );
    let _ = writeln!(
        o,
        "  closed early: broken {}, drained {}, reset on failback {}, QUIC CID broken {}",
        k(Broken),
        k(Drained),
        k(ResetOnFailback),
        k(QuicCidBroken)
    );
    let _ = writeln!(
        o,
        "  requests {}, failed {}; persisted elsewhere {}; peak open {}, open at the end {}",
        k(Requests),
        k(RequestsFailed),
        k(PersistedElsewhere),
        k(PeakOpen),
        k(OpenAtEnd)
    );
    let _ = writeln!(o, "  backend port: {}", t.backend_port);
    for u in &t.unavailability {
        let what = format!(
            "{} {} at {}",
            u.member.as_str(),
            u.fault,
            s3(u.fault_start_s)
        );
        match (u.first_failure_s, u.last_failure_s) {
            (Some(f), Some(l)) => {
                let _ = writeln!(
                    o,
                    "  {what}: clients failing for {} ({} to {}; {} failures: {} connections, {} requests)",
                    s3(l - f),
                    s3(f),
                    s3(l),
                    u.failures,
                    u.failed_connections,
                    u.failed_requests
                );
                if u.nodes.len() > 1 {
                    for n in &u.nodes {
                        let _ = writeln!(
                            o,
                            "    node {}: {} ({} to {}; {} failures)",
                            n.lb_node,
                            s3(n.window_s),
                            s3(n.first_failure_s),
                            s3(n.last_failure_s),
                            n.failures
                        );
                    }
                }
            }
            _ => {
                let _ = writeln!(o, "  {what}: no client connection or request failed");
            }
        }
    }
    if let Some(n) = t.unattributed_failures {
        let _ = writeln!(o, "  failures before any fault: {n}");
    }
    for d in &t.drains {
        let _ = writeln!(
            o,
            "  drain: node {} {} from {}: {}",
            d.lb_node,
            d.member.as_str(),
            s3(d.started_s),
            match d.closed_s {
                Some(c) => format!("closed {} connection(s) at {}", d.connections, s3(c)),
                None => "cancelled (member back ONLINE)".to_string(),
            }
        );
    }
}

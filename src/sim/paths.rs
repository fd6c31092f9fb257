//! What each LB node sees of the faults: per-path faults and a separate monitor process.
//!
//! A per-path fault (`[[faults]] lb_node = ...`, [`SimConfig::fault_paths`]) is on the path
//! between some LB nodes and the member: only those nodes' probes and clients meet it. Nodes that
//! see the same set of per-path faults share a **view**; without per-path faults every node is in
//! view 0, so the engine keeps one condition per member, as before. The engine keeps a member's
//! condition per view: for its probes (the faults the check can see) and for its clients (every
//! fault on the view's paths).
//!
//! With `[model] monitor_process = "separate"` the check port is served by another process, so a
//! fault of the service process ([`is_process_fault`]) never reaches the probes; the clients
//! still meet it.

use super::config::{Fault, FaultKind, MonitorProcess, SimConfig};
use std::collections::BTreeMap;

/// A fault of the service process itself, which a separate monitor process does not share:
/// `crash`, `hang`, `http_status`, `tls_error` and `flap` (a crashing process). Host and network
/// faults (`host_down`, `slow`, `loss`) and the monitor's own `monitor_port_down` still reach the
/// check.
pub fn is_process_fault(kind: &FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Crash
            | FaultKind::Hang
            | FaultKind::HttpStatus { .. }
            | FaultKind::TlsError
            | FaultKind::Flap { .. }
    )
}

/// Whether the health check can meet fault `kind` at all under the run's monitor process.
pub fn check_meets(cfg: &SimConfig, kind: &FaultKind) -> bool {
    cfg.model.monitor_process == MonitorProcess::Same || !is_process_fault(kind)
}

/// The LB nodes grouped by the faults they see.
#[derive(Debug, Clone)]
pub struct Views {
    /// Per LB node: its view.
    pub node_view: Vec<u32>,
    /// Per view: its LB nodes, in order.
    pub nodes: Vec<Vec<u32>>,
    /// Per view, master then slave: the faults the view's probes meet, in scenario order.
    pub probe_faults: Vec<[Vec<Fault>; 2]>,
    /// Per view, master then slave: the faults the view's clients meet.
    pub client_faults: Vec<[Vec<Fault>; 2]>,
    /// Per view: which faults (scenario index) it sees.
    pub sees: Vec<Vec<bool>>,
}

impl Views {
    pub fn new(cfg: &SimConfig) -> Self {
        let n = cfg.lb_nodes.max(1);
        // Group nodes by the per-path faults they see (BTreeMap: views numbered in node order
        // of first appearance would need a second map; this order is as deterministic).
        let mut by_key: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
        let mut node_view = Vec::with_capacity(n as usize);
        let mut nodes: Vec<Vec<u32>> = Vec::new();
        for node in 0..n {
            let key: Vec<u32> = cfg
                .fault_paths
                .keys()
                .copied()
                .filter(|&f| cfg.fault_visible(f, node))
                .collect();
            let next = nodes.len() as u32;
            let v = *by_key.entry(key).or_insert(next);
            if v == next {
                nodes.push(Vec::new());
            }
            nodes[v as usize].push(node);
            node_view.push(v);
        }
        let mut probe_faults = Vec::with_capacity(nodes.len());
        let mut client_faults = Vec::with_capacity(nodes.len());
        let mut sees = Vec::with_capacity(nodes.len());
        for members in &nodes {
            let node = members[0];
            let seen: Vec<bool> = (0..cfg.faults.len() as u32)
                .map(|i| cfg.fault_visible(i, node))
                .collect();
            let of = |role: crate::model::router::Role, probes: bool| -> Vec<Fault> {
                cfg.faults
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| {
                        f.member == role && seen[*i] && (!probes || check_meets(cfg, &f.kind))
                    })
                    .map(|(_, f)| *f)
                    .collect()
            };
            use crate::model::router::Role;
            probe_faults.push([of(Role::Master, true), of(Role::Slave, true)]);
            client_faults.push([of(Role::Master, false), of(Role::Slave, false)]);
            sees.push(seen);
        }
        Views {
            node_view,
            nodes,
            probe_faults,
            client_faults,
            sees,
        }
    }

    pub fn count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::probe::ProbeKind;
    use crate::model::router::Role;
    use crate::sim::config::CheckConfig;
    use crate::time::{SimDuration, SimTime};

    fn cfg(nodes: u32) -> SimConfig {
        let mut c = SimConfig::with_check(CheckConfig {
            kind: ProbeKind::Tcp,
            delay: SimDuration::from_secs(5),
            timeout: SimDuration::from_secs(3),
            rise: 3,
            fall: 3,
        });
        c.lb_nodes = nodes;
        c
    }

    fn fault(kind: FaultKind) -> Fault {
        Fault {
            member: Role::Master,
            kind,
            at: SimTime::ZERO,
            until: None,
        }
    }

    #[test]
    fn without_path_faults_every_node_shares_one_view() {
        let mut c = cfg(4);
        c.faults.push(fault(FaultKind::Crash));
        let v = Views::new(&c);
        assert_eq!(v.count(), 1);
        assert_eq!(v.node_view, vec![0; 4]);
        assert_eq!(v.probe_faults[0][0].len(), 1);
    }

    #[test]
    fn path_faults_split_the_nodes_by_what_they_see() {
        let mut c = cfg(4);
        c.faults.push(fault(FaultKind::HostDown));
        c.faults.push(fault(FaultKind::Crash));
        c.fault_paths.insert(0, vec![0, 2]);
        let v = Views::new(&c);
        assert_eq!(v.count(), 2);
        assert_eq!(v.node_view, vec![0, 1, 0, 1]);
        assert_eq!(v.probe_faults[0][0].len(), 2);
        assert_eq!(v.probe_faults[1][0].len(), 1);
        assert_eq!(v.probe_faults[1][0][0].kind, FaultKind::Crash);
        assert!(v.sees[0][0] && !v.sees[1][0]);
    }

    #[test]
    fn a_separate_monitor_process_hides_process_faults_from_probes_only() {
        let mut c = cfg(1);
        c.model.monitor_process = MonitorProcess::Separate;
        c.faults.push(fault(FaultKind::Crash));
        c.faults.push(fault(FaultKind::HostDown));
        let v = Views::new(&c);
        assert_eq!(v.probe_faults[0][0].len(), 1);
        assert_eq!(v.probe_faults[0][0][0].kind, FaultKind::HostDown);
        assert_eq!(v.client_faults[0][0].len(), 2);
    }
}

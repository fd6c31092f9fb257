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
use crate::model::router::Role;
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

/// The LB nodes grouped by the faults they see. Built once per run: without per-path faults
/// (the common case) it is one view and allocates only the probes' fault lists.
#[derive(Debug, Clone)]
pub struct Views {
    /// Per LB node: its view; empty when every node is in view 0.
    node_view: Vec<u32>,
    /// Per view: its first LB node; empty when there is one view.
    first_node: Vec<u32>,
    count: usize,
    /// Per view, master then slave: the faults the view's probes meet, in scenario order.
    probe_faults: Vec<[Vec<Fault>; 2]>,
    /// The same for the view's clients; empty when they are the probes' (same monitor process).
    client_faults: Vec<[Vec<Fault>; 2]>,
}

impl Views {
    pub fn new(cfg: &SimConfig) -> Self {
        let n = cfg.lb_nodes.max(1);
        let (node_view, first_node) = if cfg.fault_paths.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            // Group nodes by the per-path faults they see, views numbered by first node.
            let mut by_key: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
            let mut node_view = Vec::with_capacity(n as usize);
            let mut first_node: Vec<u32> = Vec::new();
            for node in 0..n {
                let key: Vec<u32> = cfg
                    .fault_paths
                    .keys()
                    .copied()
                    .filter(|&f| cfg.fault_visible(f, node))
                    .collect();
                let next = first_node.len() as u32;
                let v = *by_key.entry(key).or_insert(next);
                if v == next {
                    first_node.push(node);
                }
                node_view.push(v);
            }
            (node_view, first_node)
        };
        let count = first_node.len().max(1);
        let same_monitor = cfg.model.monitor_process == MonitorProcess::Same;
        let mut probe_faults = Vec::with_capacity(count);
        let mut client_faults = Vec::new();
        for v in 0..count {
            let node = first_node.get(v).copied().unwrap_or(0);
            let of = |role: Role, probes: bool| -> Vec<Fault> {
                cfg.faults
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| {
                        f.member == role
                            && cfg.fault_visible(*i as u32, node)
                            && (!probes || check_meets(cfg, &f.kind))
                    })
                    .map(|(_, f)| *f)
                    .collect()
            };
            probe_faults.push([of(Role::Master, true), of(Role::Slave, true)]);
            if !same_monitor {
                client_faults.push([of(Role::Master, false), of(Role::Slave, false)]);
            }
        }
        Views {
            node_view,
            first_node,
            count,
            probe_faults,
            client_faults,
        }
    }

    /// How many views.
    pub fn count(&self) -> usize {
        self.count
    }

    /// LB node `node`'s view.
    #[inline]
    pub fn view_of(&self, node: u32) -> usize {
        self.node_view.get(node as usize).map_or(0, |&v| v as usize)
    }

    /// The faults view `view`'s probes of `member` meet.
    pub fn probe_faults(&self, view: usize, member: usize) -> &[Fault] {
        &self.probe_faults[view][member]
    }

    /// The faults view `view`'s clients of `member` meet.
    pub fn client_faults(&self, view: usize, member: usize) -> &[Fault] {
        match self.client_faults.get(view) {
            Some(f) => &f[member],
            None => &self.probe_faults[view][member],
        }
    }

    /// Per view: which faults (scenario index) it sees.
    pub fn sees(&self, cfg: &SimConfig) -> Vec<Vec<bool>> {
        (0..self.count)
            .map(|v| {
                let node = self.first_node.get(v).copied().unwrap_or(0);
                (0..cfg.faults.len() as u32)
                    .map(|i| cfg.fault_visible(i, node))
                    .collect()
            })
            .collect()
    }

    /// Per LB node: its view (for `FaultCharging`).
    pub fn node_views(&self, nodes: u32) -> Vec<u32> {
        (0..nodes.max(1)).map(|n| self.view_of(n) as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::probe::ProbeKind;
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
        assert_eq!((0..4).map(|n| v.view_of(n)).collect::<Vec<_>>(), vec![0; 4]);
        assert_eq!(v.probe_faults(0, 0).len(), 1);
    }

    #[test]
    fn path_faults_split_the_nodes_by_what_they_see() {
        let mut c = cfg(4);
        c.faults.push(fault(FaultKind::HostDown));
        c.faults.push(fault(FaultKind::Crash));
        c.fault_paths.insert(0, vec![0, 2]);
        let v = Views::new(&c);
        assert_eq!(v.count(), 2);
        assert_eq!(v.node_views(4), vec![0, 1, 0, 1]);
        assert_eq!(v.probe_faults(0, 0).len(), 2);
        assert_eq!(v.probe_faults(1, 0).len(), 1);
        assert_eq!(v.probe_faults(1, 0)[0].kind, FaultKind::Crash);
        let sees = v.sees(&c);
        assert!(sees[0][0] && !sees[1][0]);
    }

    #[test]
    fn a_separate_monitor_process_hides_process_faults_from_probes_only() {
        let mut c = cfg(1);
        c.model.monitor_process = MonitorProcess::Separate;
        c.faults.push(fault(FaultKind::Crash));
        c.faults.push(fault(FaultKind::HostDown));
        let v = Views::new(&c);
        assert_eq!(v.probe_faults(0, 0).len(), 1);
        assert_eq!(v.probe_faults(0, 0)[0].kind, FaultKind::HostDown);
        assert_eq!(v.client_faults(0, 0).len(), 2);
    }
}

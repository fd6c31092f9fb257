//! SOURCE_IP session persistence of one LB node (spec/model.md section 4).
//!
//! A client's new connection goes to the member it last used, if that use was within
//! `persistence_timeout` and the member is ONLINE in this node's view; otherwise normal routing
//! decides, and the entry is refreshed with the new choice. TCP, UDP and QUIC pools treat every
//! persistence type as SOURCE_IP (seed page). One entry per client address: memory is bounded by
//! the scenario's `clients`.

use crate::model::router::Role;
use crate::sim::time::{SimDuration, SimTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    member: Role,
    expires: SimTime,
}

/// Client -> member, with expiry.
#[derive(Debug, Clone)]
pub struct PersistenceTable {
    timeout: SimDuration,
    entries: Vec<Option<Entry>>,
}

impl PersistenceTable {
    pub fn new(clients: usize, timeout: SimDuration) -> Self {
        PersistenceTable {
            timeout,
            entries: vec![None; clients],
        }
    }

    /// The member `client` is bound to at `now`, if the binding has not expired.
    pub fn lookup(&self, client: u32, now: SimTime) -> Option<Role> {
        match self.entries.get(client as usize)? {
            Some(e) if now < e.expires => Some(e.member),
            _ => None,
        }
    }

    /// Records that `client` used `member` at `now`.
    pub fn touch(&mut self, client: u32, member: Role, now: SimTime) {
        if let Some(slot) = self.entries.get_mut(client as usize) {
            *slot = Some(Entry {
                member,
                expires: now + self.timeout,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_timeout_since_last_use() {
        let mut t = PersistenceTable::new(2, SimDuration::from_secs(60));
        assert_eq!(t.lookup(0, SimTime(0)), None);
        t.touch(0, Role::Slave, SimTime(0));
        assert_eq!(
            t.lookup(0, SimTime(0) + SimDuration::from_secs(59)),
            Some(Role::Slave)
        );
        assert_eq!(t.lookup(0, SimTime(0) + SimDuration::from_secs(60)), None);
        t.touch(0, Role::Master, SimTime(0) + SimDuration::from_secs(30));
        assert_eq!(
            t.lookup(0, SimTime(0) + SimDuration::from_secs(89)),
            Some(Role::Master)
        );
        assert_eq!(t.lookup(1, SimTime(0)), None);
        assert_eq!(t.lookup(7, SimTime(0)), None, "unknown client");
    }
}

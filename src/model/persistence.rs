//! SOURCE_IP session persistence of one LB node (`docs/model.md`, "Routing").
//!
//! A client's new connection goes to the member it last used, if that use was within
//! `persistence_timeout` and the member is ONLINE in this node's view; otherwise normal routing
//! decides, and the entry is refreshed with the new choice. TCP, UDP and QUIC pools treat every
//! persistence type as SOURCE_IP (seed page).
//!
//! Entries are created on first use, so memory follows the clients this node has actually seen,
//! not the scenario's `clients`; expired entries can be purged ([`PersistenceTable::purge`]),
//! which the driver does when the total over all nodes nears its cap.

use crate::model::router::Role;
use crate::time::{SimDuration, SimTime};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    member: Role,
    expires: SimTime,
}

/// Client -> member, with expiry.
#[derive(Debug, Clone)]
pub struct PersistenceTable {
    timeout: SimDuration,
    entries: HashMap<u32, Entry>,
}

impl PersistenceTable {
    pub fn new(timeout: SimDuration) -> Self {
        PersistenceTable {
            timeout,
            entries: HashMap::new(),
        }
    }

    /// The member `client` is bound to at `now`, if the binding has not expired.
    pub fn lookup(&self, client: u32, now: SimTime) -> Option<Role> {
        match self.entries.get(&client) {
            Some(e) if now < e.expires => Some(e.member),
            _ => None,
        }
    }

    /// Records that `client` used `member` at `now`; returns whether the entry is new.
    pub fn touch(&mut self, client: u32, member: Role, now: SimTime) -> bool {
        let e = Entry {
            member,
            expires: now + self.timeout,
        };
        self.entries.insert(client, e).is_none()
    }

    /// Entries held, expired or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the entries expired at `now`; returns how many went.
    pub fn purge(&mut self, now: SimTime) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| now < e.expires);
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_timeout_since_last_use() {
        let mut t = PersistenceTable::new(SimDuration::from_secs(60));
        assert_eq!(t.lookup(0, SimTime(0)), None);
        assert!(t.touch(0, Role::Slave, SimTime(0)));
        assert_eq!(
            t.lookup(0, SimTime(0) + SimDuration::from_secs(59)),
            Some(Role::Slave)
        );
        assert_eq!(t.lookup(0, SimTime(0) + SimDuration::from_secs(60)), None);
        assert!(!t.touch(0, Role::Master, SimTime(0) + SimDuration::from_secs(30)));
        assert_eq!(
            t.lookup(0, SimTime(0) + SimDuration::from_secs(89)),
            Some(Role::Master)
        );
        assert_eq!(t.lookup(1, SimTime(0)), None);
        assert_eq!(t.lookup(4_000_000_000, SimTime(0)), None, "unknown client");
    }

    #[test]
    fn memory_follows_the_clients_seen_and_purge_drops_expired_entries() {
        let mut t = PersistenceTable::new(SimDuration::from_secs(10));
        for c in [5, 4_000_000_000, 17] {
            t.touch(c, Role::Master, SimTime(0));
        }
        assert_eq!(t.len(), 3);
        t.touch(17, Role::Master, SimTime::ZERO + SimDuration::from_secs(5));
        assert_eq!(t.purge(SimTime::ZERO + SimDuration::from_secs(12)), 2);
        assert_eq!(t.len(), 1);
    }
}

//! Open client connections of one LB node: a slab with a group per member.
//!
//! Drain, a member failure and `failback_sessions = "reset"` act on *all* open connections of one
//! member as one node sees them, so each connection sits in the group of its member and
//! can be found there in O(1) and removed in O(1) (swap-remove with the moved entry's position
//! fixed up). Slots are reused; each reuse bumps the slot's generation, so timer events of a
//! closed connection are recognised as stale when they pop. Memory therefore grows with the
//! number of connections open at once, not with the total over the run.

use crate::model::router::Role;
use crate::time::SimTime;

/// Handle of an open connection: slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId {
    pub slot: u32,
    pub generation: u32,
}

/// One open connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conn {
    pub member: Role,
    pub client: u32,
    pub opened_at: SimTime,
    /// When the client stops using it (its lifetime).
    pub active_until: SimTime,
    /// When it ends by itself: `active_until`, plus the UDP idle timeout for UDP flows.
    pub ends_at: SimTime,
    /// Unique per connection over the run (for 4-tuples).
    pub serial: u64,
    /// QUIC: the routing keys its paths currently use (see `crate::model::quic`).
    pub quic_keys: [u64; crate::model::quic::MAX_PATHS],
    pub quic_paths: u8,
    /// QUIC: times the client migrated (changes the 4-tuple).
    pub migrations: u32,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    generation: u32,
    /// Position in its group, while open.
    pos: u32,
    open: bool,
    conn: Conn,
}

/// All open connections.
#[derive(Debug, Clone, Default)]
pub struct ConnTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// `groups[member]`: slots open on that member.
    groups: [Vec<u32>; 2],
    open: usize,
    peak_open: usize,
}

impl ConnTable {
    pub fn new() -> Self {
        ConnTable::default()
    }

    /// Opens a connection and returns its handle.
    pub fn open(&mut self, conn: Conn) -> ConnId {
        let g = conn.member.index();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    pos: 0,
                    open: false,
                    conn,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let pos = self.groups[g].len() as u32;
        self.groups[g].push(slot);
        let s = &mut self.slots[slot as usize];
        debug_assert!(!s.open, "a free slot that is still open");
        s.generation = s.generation.wrapping_add(1);
        s.pos = pos;
        s.open = true;
        s.conn = conn;
        self.open += 1;
        self.peak_open = self.peak_open.max(self.open);
        ConnId {
            slot,
            generation: s.generation,
        }
    }

    /// The connection, if `id` is still open.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        let s = self.slots.get(id.slot as usize)?;
        (s.open && s.generation == id.generation).then_some(&s.conn)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let s = self.slots.get_mut(id.slot as usize)?;
        (s.open && s.generation == id.generation).then_some(&mut s.conn)
    }

    /// Closes `id`; returns the connection if it was open.
    pub fn close(&mut self, id: ConnId) -> Option<Conn> {
        let s = *self.slots.get(id.slot as usize)?;
        if !s.open || s.generation != id.generation {
            return None;
        }
        let g = s.conn.member.index();
        let group = &mut self.groups[g];
        debug_assert_eq!(
            group.get(s.pos as usize),
            Some(&id.slot),
            "slot not at its position"
        );
        group.swap_remove(s.pos as usize);
        if let Some(&moved) = group.get(s.pos as usize) {
            self.slots[moved as usize].pos = s.pos;
        }
        self.slots[id.slot as usize].open = false;
        self.free.push(id.slot);
        self.open -= 1;
        Some(s.conn)
    }

    /// Handles of every connection open on `member` (a snapshot, so the caller may close them
    /// while iterating).
    pub fn group(&self, member: Role) -> Vec<ConnId> {
        self.groups[member.index()]
            .iter()
            .map(|&slot| ConnId {
                slot,
                generation: self.slots[slot as usize].generation,
            })
            .collect()
    }

    pub fn open_count(&self) -> usize {
        self.open
    }

    /// Connections open on `member`.
    pub fn open_on(&self, member: Role) -> usize {
        self.groups[member.index()].len()
    }

    /// Most connections open at once.
    pub fn peak_open(&self) -> usize {
        self.peak_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(member: Role) -> Conn {
        Conn {
            member,
            client: 0,
            opened_at: SimTime(0),
            active_until: SimTime(10),
            ends_at: SimTime(10),
            serial: 0,
            quic_keys: [0; crate::model::quic::MAX_PATHS],
            quic_paths: 0,
            migrations: 0,
        }
    }

    #[test]
    fn groups_track_opens_and_closes() {
        let mut t = ConnTable::new();
        let a = t.open(conn(Role::Master));
        let b = t.open(conn(Role::Master));
        let d = t.open(conn(Role::Slave));
        assert_eq!(t.group(Role::Master), vec![a, b]);
        assert!(t.close(a).is_some());
        assert!(t.close(a).is_none(), "double close");
        assert_eq!(t.group(Role::Master), vec![b]);
        assert_eq!(t.group(Role::Slave), vec![d]);
        // The freed slot is reused with a new generation: the old handle stays dead.
        let e = t.open(conn(Role::Slave));
        assert_eq!(e.slot, a.slot);
        assert!(t.get(a).is_none() && t.get(e).is_some());
        assert_eq!(t.open_count(), 3);
        assert_eq!(t.peak_open(), 3);
    }
}

//! Open client connections of one LB node: a slab with a group per member, and a side table of
//! QUIC path state that only QUIC pools fill.
//!
//! Drain, a member failure and `failback_sessions = "reset"` act on *all* open connections of one
//! member as one node sees them, so each connection sits in the group of its member and
//! can be found there in O(1) and removed in O(1) (swap-remove with the moved entry's position
//! fixed up). Slots are reused; each reuse bumps the slot's generation, so timer events of a
//! closed connection are recognised as stale when they pop. Memory therefore grows with the
//! number of connections open at once, not with the total over the run.
//!
//! Layout, for millions of connections open at once (100,000 new ones a second, 30 s each):
//! - a slot is 40 bytes ([`ConnTable::SLOT_BYTES`]; asserted at compile time to stay within a
//!   64-byte cache line): the member, the client, three words (opened, active until, serial),
//!   its generation and its position in its group. What only some pools need stays out: the
//!   end of a UDP flow's idle timeout is `active_until` plus a per-run constant the engine adds,
//!   and QUIC's routing keys (up to [`MAX_PATHS`] words) and migration count live in a side
//!   table indexed by slot, which stays empty, and costs nothing, for TCP, UDP and HTTP pools;
//! - the slab, the member groups and the free list grow by an eighth when full, not twofold, so
//!   capacity never exceeds the peak of open connections by more than about 12 % (with
//!   doubling, up to 100 %, and a slot is most of a connection's memory);
//! - closing every connection of a member ([`ConnTable::next_of`]) walks its group in place, in
//!   the order a snapshot of the group would give, without copying the group first.

use crate::model::quic::MAX_PATHS;
use crate::model::router::Role;
use crate::time::SimTime;

/// Handle of an open connection: slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId {
    pub slot: u32,
    pub generation: u32,
}

/// One open connection, as the table hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub member: Role,
    pub client: u32,
    pub opened_at: SimTime,
    /// When the client stops using it (its lifetime). A UDP flow ends by itself later, after
    /// the pool's idle timeout.
    pub active_until: SimTime,
    /// Unique per connection over the run (for 4-tuples).
    pub serial: u64,
}

/// A QUIC connection's path state: kept beside the slot, only by tables of QUIC pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuicPaths {
    /// The routing keys its paths currently use (see `crate::model::quic`); the first `paths`.
    pub keys: [u64; MAX_PATHS],
    pub paths: u8,
    /// Times the client migrated (changes the 4-tuple).
    pub migrations: u32,
}

impl QuicPaths {
    /// The keys in use.
    pub fn keys(&self) -> &[u64] {
        &self.keys[..self.paths as usize]
    }
}

/// One slot of the slab: a [`Conn`] flattened with the table's own fields, so that the three
/// words and four small fields pack into 40 bytes (a nested `Conn` would pad to 32 and the slot
/// to 48).
#[derive(Debug, Clone, Copy)]
struct Slot {
    opened_at: SimTime,
    active_until: SimTime,
    serial: u64,
    client: u32,
    generation: u32,
    /// Position in its group, while open.
    pos: u32,
    member: Role,
    open: bool,
}

// A TCP connection's slot fits one cache line (issue 12: at most 64 bytes).
const _: () = assert!(std::mem::size_of::<Slot>() <= 64);

impl Slot {
    fn conn(&self) -> Conn {
        Conn {
            member: self.member,
            client: self.client,
            opened_at: self.opened_at,
            active_until: self.active_until,
            serial: self.serial,
        }
    }
}

/// Pushes `x`, growing a full `v` by an eighth (at least 64 entries) instead of doubling it: the
/// tables here are sized by the peak of open connections, and doubling would leave up to as
/// much again unused. Growth stays geometric, so a push is still amortised O(1).
#[inline]
fn push_frugal<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 8).max(64));
    }
    v.push(x);
}

/// All open connections.
#[derive(Debug, Clone, Default)]
pub struct ConnTable {
    slots: Vec<Slot>,
    /// Per slot, for QUIC connections: their paths. Grown on the first QUIC connection in a
    /// slot; empty when the pool is not QUIC.
    quic: Vec<QuicPaths>,
    free: Vec<u32>,
    /// `groups[member]`: slots open on that member.
    groups: [Vec<u32>; 2],
    open: usize,
    peak_open: usize,
}

impl ConnTable {
    /// Bytes of one connection slot.
    pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

    pub fn new() -> Self {
        ConnTable::default()
    }

    /// Opens a connection and returns its handle.
    pub fn open(&mut self, conn: Conn) -> ConnId {
        let g = conn.member.index();
        let pos = self.groups[g].len() as u32;
        let fresh = Slot {
            opened_at: conn.opened_at,
            active_until: conn.active_until,
            serial: conn.serial,
            client: conn.client,
            generation: 0,
            pos,
            member: conn.member,
            open: true,
        };
        let (slot, generation) = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                debug_assert!(!s.open, "a free slot that is still open");
                let generation = s.generation.wrapping_add(1);
                *s = Slot {
                    generation,
                    ..fresh
                };
                // A slot's QUIC paths start afresh with each connection in it.
                if let Some(q) = self.quic.get_mut(slot as usize) {
                    *q = QuicPaths::default();
                }
                (slot, generation)
            }
            None => {
                let generation = 1;
                push_frugal(
                    &mut self.slots,
                    Slot {
                        generation,
                        ..fresh
                    },
                );
                ((self.slots.len() - 1) as u32, generation)
            }
        };
        push_frugal(&mut self.groups[g], slot);
        self.open += 1;
        self.peak_open = self.peak_open.max(self.open);
        ConnId { slot, generation }
    }

    #[inline]
    fn slot(&self, id: ConnId) -> Option<&Slot> {
        let s = self.slots.get(id.slot as usize)?;
        (s.open && s.generation == id.generation).then_some(s)
    }

    /// The connection, if `id` is still open.
    pub fn get(&self, id: ConnId) -> Option<Conn> {
        self.slot(id).map(Slot::conn)
    }

    /// The QUIC paths of `id`, if it is still open and its slot has them (a QUIC pool's
    /// connection, once set through [`ConnTable::quic_mut`]).
    pub fn quic(&self, id: ConnId) -> Option<&QuicPaths> {
        self.slot(id)?;
        self.quic.get(id.slot as usize)
    }

    /// The QUIC paths of `id` to change, if it is still open. The first call for a slot grows
    /// the side table to the slab: only QUIC pools call this.
    pub fn quic_mut(&mut self, id: ConnId) -> Option<&mut QuicPaths> {
        self.slot(id)?;
        let i = id.slot as usize;
        if self.quic.len() <= i {
            // Every slot up to `i` exists, so the side table never outgrows the slab; it grows
            // by an eighth at least, as the slab does.
            let (have, want) = (self.quic.len(), self.slots.len());
            if self.quic.capacity() < want {
                self.quic.reserve_exact((want - have).max(have / 8).max(64));
            }
            self.quic.resize(want, QuicPaths::default());
        }
        Some(&mut self.quic[i])
    }

    /// Closes `id`; returns the connection if it was open. Its QUIC paths, if any, stay
    /// readable only until then: read them first.
    pub fn close(&mut self, id: ConnId) -> Option<Conn> {
        let s = *self.slot(id)?;
        let group = &mut self.groups[s.member.index()];
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
        push_frugal(&mut self.free, id.slot);
        self.open -= 1;
        Some(s.conn())
    }

    /// Handles of every connection open on `member` (a snapshot, so the caller may close them
    /// while iterating).
    pub fn group(&self, member: Role) -> Vec<ConnId> {
        self.groups[member.index()]
            .iter()
            .map(|&slot| self.handle(slot))
            .collect()
    }

    fn handle(&self, slot: u32) -> ConnId {
        ConnId {
            slot,
            generation: self.slots[slot as usize].generation,
        }
    }

    /// For closing every connection open on `member` without a snapshot of its group: the
    /// connection a snapshot taken before the first close would give at index `closed`, when
    /// the caller has closed each of the `closed` handles this returned before (and nothing
    /// else on `member` opened or closed in between). `None` once the group is empty.
    ///
    /// Why this is the snapshot's order: closing the snapshot's `i`-th entry swap-removes it,
    /// so after `i` closes the group reads `[g[n-1], .., g[n-i], g[i], .., g[n-i-1]]` (length
    /// `n - i`). While `i < n - i`, the snapshot's next entry `g[i]` is at position `i`; after
    /// that it is `g[n-1-p]` for `p = n-1-i`, at position `n-1-i`, the last one.
    pub fn next_of(&self, member: Role, closed: usize) -> Option<ConnId> {
        let group = &self.groups[member.index()];
        let at = if closed < group.len() {
            closed
        } else {
            group.len().checked_sub(1)?
        };
        Some(self.handle(group[at]))
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
            serial: 0,
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

    #[test]
    fn a_tcp_slot_fits_a_cache_line_and_quic_state_stays_out_of_it() {
        let mut t = ConnTable::new();
        let ids: Vec<ConnId> = (0..1000).map(|_| t.open(conn(Role::Master))).collect();
        let slot = std::mem::size_of_val(&t.slots[0]);
        assert_eq!(slot, ConnTable::SLOT_BYTES);
        assert!(slot <= 64, "{slot}-byte slots");
        // The layout the module documents: three words and four small fields.
        assert_eq!(slot, 40);
        // No QUIC connection: no side table.
        assert_eq!(t.quic.capacity(), 0);
        assert_eq!(t.quic(ids[3]), None);
        // A QUIC connection in a slot: the side table grows to the slab, and a new connection
        // in a reused slot starts with fresh paths.
        let q = t.quic_mut(ids[7]).expect("open");
        q.keys[0] = 42;
        q.paths = 1;
        assert_eq!(t.quic.len(), 1000);
        assert_eq!(t.quic(ids[7]).map(QuicPaths::keys), Some(&[42][..]));
        assert!(t.close(ids[7]).is_some());
        let again = t.open(conn(Role::Slave));
        assert_eq!(again.slot, ids[7].slot);
        assert_eq!(t.quic(again), Some(&QuicPaths::default()));
        assert!(t.quic_mut(ids[7]).is_none(), "a stale handle");
    }

    #[test]
    fn capacity_grows_by_an_eighth_not_twofold() {
        let mut t = ConnTable::new();
        for _ in 0..100_000 {
            t.open(conn(Role::Master));
        }
        assert!(t.slots.capacity() <= 100_000 + 100_000 / 8 + 64);
        assert!(t.groups[0].capacity() <= 100_000 + 100_000 / 8 + 64);
    }

    #[test]
    fn next_of_walks_a_group_in_snapshot_order_while_closing() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for n in [0usize, 1, 2, 3, 4, 7, 8, 50] {
            let mut t = ConnTable::new();
            // Interleave members and close some, so the group's order is not the open order.
            let mut ids = Vec::new();
            for _ in 0..2 * n + 5 {
                let m = if rng.gen_bool(0.7) {
                    Role::Master
                } else {
                    Role::Slave
                };
                ids.push(t.open(conn(m)));
            }
            for id in ids.iter().filter(|_| rng.gen_bool(0.3)) {
                t.close(*id);
            }
            let snapshot = t.group(Role::Master);
            let mut walked = Vec::new();
            while let Some(id) = t.next_of(Role::Master, walked.len()) {
                assert!(t.close(id).is_some());
                walked.push(id);
            }
            assert_eq!(walked, snapshot);
            assert!(t.group(Role::Master).is_empty());
        }
    }
}

//! QUIC routing by a slice of the destination connection ID (spec/model.md section 6).
//!
//! With `lb_algorithm = QUIC_CID` an LB node hashes bytes `[offset, offset+len)` of a packet's
//! destination CID and remembers which member each slice value went to; a packet whose value it
//! has not seen goes to the member active *now*. A DCID shorter than `offset + len` falls back to
//! the 4-tuple (as QUIC-LB, Katran, nginx and quiche do), which changes when the client migrates.
//!
//! CIDs are real byte strings: the client's first DCID is random; a member's CIDs are a config
//! octet, the member's server id (`server_id_len` bytes from offset 1, QUIC-LB/Katran layout) and a
//! random nonce. So a slice inside the server id is the same in every CID of a member, while a
//! slice touching the nonce changes with each CID, and collisions happen as often as they would
//! (len 1 gives 256 values). Entries are reference-counted by the open connections using them, so
//! the table holds at most a few entries per open connection.

use crate::model::router::{Role, Target};
use std::collections::HashMap;

/// Most paths per connection (multipath), a bound on per-connection state.
pub const MAX_PATHS: usize = 8;
/// Longest CID in QUIC v1 (RFC 9000 section 17.2).
pub const MAX_CID_LEN: usize = 20;

/// The CID layout and the pool's slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidShape {
    pub client_dcid_len: u8,
    pub server_cid_len: u8,
    pub server_id_len: u8,
    /// `quic_cid_hash_strategy.offset`.
    pub offset: u8,
    /// `quic_cid_hash_strategy.len`.
    pub len: u8,
}

impl CidShape {
    /// Whether the slice lies wholly inside the server-id bytes, so that it is stable for the
    /// life of a connection.
    pub fn slice_in_server_id(&self) -> bool {
        self.offset >= 1 && self.offset + self.len <= 1 + self.server_id_len
    }
}

/// FNV-1a over the bytes, tagged by `domain` so slice keys and 4-tuple keys never collide.
fn fnv(domain: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ domain.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The routing key of a packet: its DCID slice, or the 4-tuple when the DCID is too short.
pub fn routing_key(dcid: &[u8], shape: &CidShape, tuple: u64) -> u64 {
    let (o, l) = (shape.offset as usize, shape.len as usize);
    match dcid.get(o..o + l) {
        Some(slice) => fnv(1, slice.iter().copied()),
        None => fnv(2, tuple.to_le_bytes()),
    }
}

/// The 4-tuple of a path: stable until the client migrates.
pub fn tuple(conn_serial: u64, path: u8, migrations: u32) -> u64 {
    fnv(
        3,
        conn_serial
            .to_le_bytes()
            .into_iter()
            .chain([path])
            .chain(migrations.to_le_bytes()),
    )
}

/// Byte `i` of a member's server id (`server_id_len` bytes). The two members' ids differ in
/// *every* byte (the slave's is the master's with every bit of 0xa5 flipped), so a slice of any
/// offset and width inside the server id tells them apart.
fn server_id(member: Role, i: usize) -> u8 {
    let base = 0x5a ^ (i as u8).wrapping_mul(0x3b);
    match member {
        Role::Master => base,
        Role::Slave => base ^ 0xa5,
    }
}

/// Writes a CID the member issues into `out`; `random` supplies config and nonce bytes.
pub fn server_cid(
    shape: &CidShape,
    member: Role,
    random: &[u8; MAX_CID_LEN],
    out: &mut [u8; MAX_CID_LEN],
) -> usize {
    let n = (shape.server_cid_len as usize).min(MAX_CID_LEN);
    let sid = shape.server_id_len as usize;
    for (i, b) in out.iter_mut().enumerate().take(n) {
        *b = if i == 0 {
            random[0] & 0x3f // config rotation bits and length self-encoding left random
        } else if i <= sid {
            server_id(member, i - 1)
        } else {
            random[i]
        };
    }
    n
}

/// One node's memory of where each routing key was sent.
#[derive(Debug, Clone, Default)]
pub struct CidTable {
    map: HashMap<u64, (Role, u32)>,
}

impl CidTable {
    /// Routes a packet with `key`: the remembered member, or the node's current `target` (which
    /// is then remembered). `None` when the key is unknown and the node has no member to send to.
    /// Each successful call holds a reference on `key` until [`CidTable::release`].
    pub fn route(&mut self, key: u64, target: Target) -> Option<Role> {
        if let Some(e) = self.map.get_mut(&key) {
            e.1 += 1;
            return Some(e.0);
        }
        let m = target.member()?;
        self.map.insert(key, (m, 1));
        Some(m)
    }

    /// Binds `key` to `member` for a new connection (routing already chose the member).
    pub fn bind(&mut self, key: u64, member: Role) {
        let e = self.map.entry(key).or_insert((member, 0));
        e.1 += 1;
    }

    /// Drops one reference on `key`; the entry goes when nothing uses it.
    pub fn release(&mut self, key: u64) {
        let e = self.map.get_mut(&key);
        // Every release matches a route or bind of an open connection's key.
        debug_assert!(e.is_some(), "release of a CID key nobody holds");
        if let Some(e) = e {
            debug_assert!(e.1 > 0, "CID reference count underflow");
            e.1 -= 1;
            if e.1 == 0 {
                self.map.remove(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(offset: u8, len: u8) -> CidShape {
        CidShape {
            client_dcid_len: 8,
            server_cid_len: 8,
            server_id_len: 3,
            offset,
            len,
        }
    }

    fn cid(s: &CidShape, m: Role, fill: u8) -> Vec<u8> {
        let mut out = [0; MAX_CID_LEN];
        let n = server_cid(s, m, &[fill; MAX_CID_LEN], &mut out);
        out[..n].to_vec()
    }

    #[test]
    fn a_server_id_slice_is_stable_and_a_nonce_slice_is_not() {
        let s = shape(1, 3);
        assert!(s.slice_in_server_id());
        let (a, b) = (cid(&s, Role::Master, 7), cid(&s, Role::Master, 9));
        assert_eq!(routing_key(&a, &s, 0), routing_key(&b, &s, 0));
        assert_ne!(
            routing_key(&a, &s, 0),
            routing_key(&cid(&s, Role::Slave, 7), &s, 0)
        );
        let n = shape(4, 3);
        assert!(!n.slice_in_server_id());
        let (a, b) = (cid(&n, Role::Master, 7), cid(&n, Role::Master, 9));
        assert_ne!(routing_key(&a, &n, 0), routing_key(&b, &n, 0));
    }

    #[test]
    fn a_short_dcid_falls_back_to_the_tuple() {
        let s = shape(6, 3);
        let a = cid(&s, Role::Master, 7);
        assert_eq!(routing_key(&a, &s, 42), routing_key(&[1, 2], &s, 42));
        assert_ne!(routing_key(&a, &s, 42), routing_key(&a, &s, 43));
    }

    #[test]
    fn the_table_remembers_and_forgets_with_the_last_user() {
        let mut t = CidTable::default();
        assert_eq!(t.route(1, Target::Slave), Some(Role::Slave));
        assert_eq!(t.route(1, Target::Master), Some(Role::Slave), "remembered");
        assert_eq!(t.route(2, Target::Drop), None);
        t.release(1);
        assert_eq!(t.len(), 1);
        t.release(1);
        assert!(t.is_empty());
        t.bind(3, Role::Master);
        assert_eq!(t.route(3, Target::Slave), Some(Role::Master));
    }
}

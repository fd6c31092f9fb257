//! One ICMP echo (ping), for the first step of the UDP_CONNECT health check against real hosts.
//!
//! Huawei's UDP_CONNECT check (elb_faq_0024) first sends an ICMP echo request; no reply means
//! the member is unhealthy. `elbsim probe` does the same against real targets: it opens a
//! Linux "ping socket" (`SOCK_DGRAM`/`IPPROTO_ICMP`, allowed when the caller's group is in
//! `net.ipv4.ping_group_range`) or, failing that, a raw ICMP socket (root or CAP_NET_RAW).
//! When neither can be opened the echo step is reported as unavailable and the caller decides
//! (the prober then skips the step and says so in the verdict's note).
//!
//! IPv4 only; an IPv6 target reports unavailable. A reply is matched by a random token in the
//! payload, so concurrent probes (or other pings on the machine, which a raw socket also sees)
//! cannot be mistaken for ours.

use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// What one echo gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    /// A reply came back after this long.
    Reply(Duration),
    /// No reply before the deadline.
    NoReply,
    /// No ICMP socket could be opened (not root, ping sockets disabled) or the target is IPv6.
    Unavailable(String),
}

/// The RFC 1071 Internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(word as u32);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request carrying `token`.
fn request(id: u16, seq: u16, token: &[u8; 16]) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(token);
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// True when `packet` (with its IPv4 header on a raw socket) is an echo reply with `token`.
fn is_our_reply(packet: &[u8], raw: bool, token: &[u8; 16]) -> bool {
    let icmp = if raw {
        let Some(&first) = packet.first() else {
            return false;
        };
        let ihl = ((first & 0x0f) as usize) * 4;
        match packet.get(ihl..) {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        packet
    };
    icmp.len() >= 8 + token.len() && icmp[0] == 0 && icmp[8..8 + token.len()] == token[..]
}

fn open() -> Result<(Socket, bool), String> {
    let ping = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4));
    match ping {
        Ok(s) => Ok((s, false)),
        Err(e1) => Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
            .map(|s| (s, true))
            .map_err(|e2| {
                format!("no ICMP socket (ping socket: {e1}; raw socket: {e2}); run as root or add the group to net.ipv4.ping_group_range")
            }),
    }
}

/// Sends one echo request to `ip` and waits for its reply until `deadline`.
pub async fn echo(ip: IpAddr, deadline: Instant) -> Echo {
    let IpAddr::V4(v4) = ip else {
        return Echo::Unavailable("the ICMP echo step supports IPv4 targets only".into());
    };
    let (sock, raw) = match open() {
        Ok(s) => s,
        Err(e) => return Echo::Unavailable(e),
    };
    if let Err(e) = sock.set_nonblocking(true) {
        return Echo::Unavailable(format!("ICMP socket: {e}"));
    }
    let sock: std::net::UdpSocket = sock.into();
    let sock = match UdpSocket::from_std(sock) {
        Ok(s) => s,
        Err(e) => return Echo::Unavailable(format!("ICMP socket: {e}")),
    };
    let mut token = [0u8; 16];
    rand::thread_rng().fill(&mut token);
    let id = u16::from_be_bytes([token[0], token[1]]);
    let packet = request(id, 1, &token);
    let start = Instant::now();
    let to = SocketAddr::new(IpAddr::V4(v4), 0);
    if sock.send_to(&packet, to).await.is_err() {
        // An unreachable network or a refused send: no echo reply will come.
        tokio::time::sleep_until(deadline).await;
        return Echo::NoReply;
    }
    let mut buf = [0u8; 1500];
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        match got {
            Err(_) => return Echo::NoReply,
            Ok(Ok((n, from))) if from.ip() == IpAddr::V4(v4) => {
                if is_our_reply(&buf[..n], raw, &token) {
                    return Echo::Reply(start.elapsed());
                }
            }
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_echo_request() {
        // type 8, code 0, id 1, seq 1, no payload: checksum 0xf7fd.
        let p = request(1, 1, &[0; 16]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        let bare = [8u8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(checksum(&bare), 0xf7fd);
    }

    #[test]
    fn replies_match_by_token() {
        let token = [7u8; 16];
        let mut reply = request(1, 1, &token);
        reply[0] = 0;
        assert!(is_our_reply(&reply, false, &token));
        assert!(!is_our_reply(&reply, false, &[8u8; 16]));
        let mut with_ip = vec![0x45u8; 20];
        with_ip.extend_from_slice(&reply);
        assert!(is_our_reply(&with_ip, true, &token));
        assert!(!is_our_reply(&request(1, 1, &token), false, &token));
        assert!(!is_our_reply(&[], true, &token));
    }
}

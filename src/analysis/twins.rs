//! The same datagram seen twice. On loopback (and to the node's own address) a DNS
//! packet passes the sender's egress hook and, microseconds later, the receiver's
//! ingress hook: the same bytes, parsed twice. At saturation that second parse was a
//! sixth of the analysis. Each parsed egress datagram between two local addresses is
//! remembered briefly; the ingress copy with the same ends and the same bytes reuses
//! its parse. Matching compares every byte, so a miss only costs the parse it saves.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::dns::DnsMessage;

/// Egress datagrams remembered: the receiver's ingress follows within one softirq,
/// usually the very next record on that CPU, so a short memory suffices.
const CAPACITY: usize = 32;

#[derive(Debug)]
struct Twin {
    src: SocketAddr,
    dst: SocketAddr,
    bytes: Vec<u8>,
    dns: DnsMessage,
}

/// Recently parsed egress datagrams between local addresses.
#[derive(Debug, Default)]
pub struct Twins {
    recent: VecDeque<Twin>,
    /// Buffers of taken twins, reused so remembering allocates nothing.
    spare: Vec<Vec<u8>>,
}

/// Whether a datagram from `src` to `dst` can be seen leaving and arriving on this
/// node: loopback, or a node talking to its own address.
pub fn both_local(src: &SocketAddr, dst: &SocketAddr) -> bool {
    dst.ip().is_loopback() || src.ip() == dst.ip()
}

impl Twins {
    /// Remembers a parsed egress datagram.
    pub fn remember(&mut self, src: SocketAddr, dst: SocketAddr, bytes: &[u8], dns: &DnsMessage) {
        let mut buf = match self.recent.len() {
            CAPACITY => self.recent.pop_front().map(|t| t.bytes),
            _ => self.spare.pop(),
        }
        .unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        self.recent.push_back(Twin {
            src,
            dst,
            bytes: buf,
            dns: dns.clone(),
        });
    }

    /// The parse of the egress twin of an ingress datagram, if remembered.
    pub fn take(&mut self, src: SocketAddr, dst: SocketAddr, bytes: &[u8]) -> Option<DnsMessage> {
        let i = self
            .recent
            .iter()
            .rposition(|t| t.src == src && t.dst == dst && t.bytes == bytes)?;
        let twin = self.recent.remove(i)?;
        self.spare.push(twin.bytes);
        Some(twin.dns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dns::parse_message;
    use crate::analysis::testutil::wire;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ingress_copy_reuses_its_egress_parse_once() {
        let mut t = Twins::default();
        let (c, s) = (addr("127.0.0.1:40000"), addr("127.0.0.1:53"));
        let q = wire(7, false, 0, false, "a.test.", 1);
        t.remember(c, s, &q, &parse_message(&q).unwrap());
        // Other ends or other bytes: no twin.
        assert!(t.take(s, c, &q).is_none());
        let other = wire(8, false, 0, false, "a.test.", 1);
        assert!(t.take(c, s, &other).is_none());
        assert_eq!(t.take(c, s, &q), Some(parse_message(&q).unwrap()));
        // Taken: a second ingress copy (a retransmission) is parsed again.
        assert!(t.take(c, s, &q).is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Twins::default();
        let (c, s) = (addr("127.0.0.1:40000"), addr("127.0.0.1:53"));
        for id in 0..(CAPACITY as u16 * 3) {
            let q = wire(id, false, 0, false, "a.test.", 1);
            t.remember(c, s, &q, &parse_message(&q).unwrap());
        }
        assert_eq!(t.recent.len(), CAPACITY);
        // The oldest were forgotten, the newest kept.
        let old = wire(0, false, 0, false, "a.test.", 1);
        assert!(t.take(c, s, &old).is_none());
        let new = wire(CAPACITY as u16 * 3 - 1, false, 0, false, "a.test.", 1);
        assert!(t.take(c, s, &new).is_some());
    }

    #[test]
    fn only_node_local_datagrams_can_have_twins() {
        assert!(both_local(&addr("127.0.0.1:4000"), &addr("127.0.0.53:53")));
        assert!(both_local(&addr("[::1]:4000"), &addr("[::1]:53")));
        assert!(both_local(&addr("10.0.0.5:4000"), &addr("10.0.0.5:53")));
        assert!(!both_local(&addr("10.0.0.5:4000"), &addr("10.0.0.10:53")));
    }
}

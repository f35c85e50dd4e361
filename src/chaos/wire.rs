//! The chaos load's DNS wire format: queries built with hickory-proto, and the few
//! response header fields a stub resolver needs, read by hand (one per packet, no
//! allocation). Apart from `load.rs` so that file keeps to the workers and their pacing.

use anyhow::{Context, Result};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use super::names::Rng;

/// The wire form of a query for `name`/`rtype` (recursion desired, no EDNS: answers
/// over 512 bytes come back truncated, as to any classic stub resolver).
pub fn encode_query(name: &str, rtype: RecordType) -> Result<Vec<u8>> {
    let name = Name::from_ascii(name).with_context(|| format!("{name}: not a DNS name"))?;
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    msg.to_vec().context("encoding a query")
}

/// The header fields of a response the client needs: id, TC, RCODE (4 bits: the
/// client sends no EDNS, so no extended RCODE). `None` when it is not a response to
/// `query` (too short, QR clear, another question).
pub fn read_response(resp: &[u8], query: &[u8]) -> Option<(u16, bool, u16)> {
    if resp.len() < 12 || query.len() < 12 || resp[2] & 0x80 == 0 {
        return None;
    }
    // The question is the first thing after the header and cannot be compressed.
    let question = &query[12..];
    if resp.len() < 12 + question.len()
        || !resp[12..12 + question.len()].eq_ignore_ascii_case(question)
    {
        return None;
    }
    let id = u16::from_be_bytes([resp[0], resp[1]]);
    Some((id, resp[2] & 0x02 != 0, u16::from(resp[3] & 0x0f)))
}

/// Encoded queries of the names a worker asked for recently. Mixes repeat a few dozen
/// names; random names are encoded each time once the cache is full.
#[derive(Default)]
pub(super) struct QueryCache(std::collections::HashMap<(String, RecordType), Vec<u8>>);

impl QueryCache {
    const MAX: usize = 64;

    pub(super) fn get(&mut self, name: &str, rtype: RecordType) -> Result<Vec<u8>, String> {
        if let Some(q) = self.0.get(&(name.to_string(), rtype)) {
            return Ok(q.clone());
        }
        let q = encode_query(name, rtype).map_err(|e| format!("{e:#}"))?;
        if self.0.len() < Self::MAX {
            self.0.insert((name.to_string(), rtype), q.clone());
        }
        Ok(q)
    }
}

/// A random id none of this lookup's earlier sends used.
pub(super) fn new_id(rng: &mut Rng, used: &[u16]) -> u16 {
    loop {
        let id = rng.next_u64() as u16;
        if !used.contains(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::load::SENDS_PER_LOOKUP;

    #[test]
    fn queries_are_well_formed_and_answers_are_matched_by_question() {
        let q = encode_query("kubernetes.default.svc.cluster.local.", RecordType::AAAA).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        assert!(m.edns.is_none(), "no EDNS: large answers truncate");

        let mut resp = q.clone();
        resp[0..2].copy_from_slice(&0xbeefu16.to_be_bytes());
        resp[2] |= 0x80 | 0x02; // QR, TC
        resp[3] = 0x03; // NXDOMAIN
        assert_eq!(read_response(&resp, &q), Some((0xbeef, true, 3)));
        // Not a response, or another question: not ours.
        assert_eq!(read_response(&q, &q), None);
        let other =
            encode_query("kube-dns.kube-system.svc.cluster.local.", RecordType::AAAA).unwrap();
        let mut other_resp = other.clone();
        other_resp[2] |= 0x80;
        assert_eq!(read_response(&other_resp, &q), None);
        assert_eq!(read_response(&resp[..11], &q), None);
        assert!(encode_query("a..b.", RecordType::A).is_err());
    }

    #[test]
    fn resend_ids_never_repeat_within_a_lookup() {
        let mut rng = Rng::new(7);
        let mut used = Vec::new();
        for _ in 0..SENDS_PER_LOOKUP {
            let id = new_id(&mut rng, &used);
            assert!(!used.contains(&id));
            used.push(id);
        }
    }
}

//! DNS message parsing: the header, the first question, and the EDNS OPT record's
//! extended RCODE.
//!
//! dnsdoc only needs enough of a message to match a response to its query and to say
//! what went wrong. Capture may cut a long packet, so everything after the question is
//! optional: the records are walked only to find OPT (RFC 6891 §6.1.3: the upper 8 bits
//! of a 12-bit RCODE, e.g. BADVERS = 16), and a cut anywhere in them just leaves the
//! header RCODE.
//!
//! Hand-written, not hickory-proto's decoder: this runs for every packet on the node
//! (four times per query when client and server are both local), and hickory's
//! `Header::read` plus `Name::read` with their allocations were a quarter of dnsdoc's
//! CPU at saturation. Behaviour is pinned to hickory's by a differential test (tests.rs)
//! and by the fuzz oracles in tests/fuzz/oracles/dns.rs.
//!
//! The bytes come straight off the wire from arbitrary peers, so every input, however
//! malformed, must produce a value or an error, never a panic or hang.

use std::rc::Rc;

pub use crate::codes::{qtype_name, rcode_name};

/// Size of the fixed DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// Longest name on the wire, length octets and root label included (RFC 1035 §3.1).
const MAX_NAME_WIRE: usize = 255;
/// RR type of the EDNS pseudo-record.
const TYPE_OPT: u16 = 41;

/// The parts of a DNS message dnsdoc needs: enough to match a response to its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    /// Transaction ID, copied from query to response.
    pub id: u16,
    /// QR bit: `true` for responses.
    pub is_response: bool,
    /// 4-bit OPCODE (0 = QUERY).
    pub opcode: u8,
    /// RCODE: the header's 4 bits, extended to 12 by an OPT record when the message
    /// carries one within the captured bytes (BADVERS = 16, BADCOOKIE = 23).
    pub rcode: u16,
    /// TC bit: the server cut the answer to fit (usually UDP) and expects a TCP retry.
    pub truncated: bool,
    /// The first question; `None` when QDCOUNT == 0 (e.g. some FORMERR replies).
    pub question: Option<Question>,
    /// ANCOUNT as announced in the header (the records themselves are not decoded).
    pub answer_count: u16,
}

/// A DNS question: the key a response is matched on, together with the ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// Lower-case, fully qualified with a trailing dot, e.g. `"example.com."`;
    /// the root is `"."`. Bytes that are not plain printable ASCII are escaped
    /// in master-file style (`\.`, `\\`, `\DDD` decimal) so that the string is
    /// unambiguous and safe to print. Shared: one allocation per distinct name
    /// ([`NameCache`]), not one per message.
    pub name: Rc<str>,
    /// QTYPE, raw (see [`qtype_name`]).
    pub qtype: u16,
    /// QCLASS, raw (1 = IN).
    pub qclass: u16,
}

/// Why a message could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ParseError {
    /// Not even the fixed header is present.
    #[error("message is {len} bytes, shorter than the 12-byte DNS header")]
    TooShort {
        /// Number of bytes we got.
        len: usize,
    },
    /// QDCOUNT > 0 but the bytes end inside the first question. Kept apart
    /// from [`ParseError::BadQuestion`] because a cut capture is not a broken peer.
    #[error("question section is cut short")]
    QuestionCut,
    /// The first question is malformed (bad label, name too long, bad compression pointer...).
    #[error("malformed question: {0}")]
    BadQuestion(&'static str),
}

/// Parses the header, the first question and (when visible) the OPT record.
///
/// Further questions are ignored; records are only walked to find OPT, so bytes that
/// capture cut from them never turn a good message into an error.
pub fn parse_message(bytes: &[u8]) -> Result<DnsMessage, ParseError> {
    parse_message_with(bytes, &mut NameCache::default())
}

/// Names seen recently, so that the same name in a query, its answer and every later
/// lookup is one shared string: an allocation and a free per message were a tenth of
/// dnsdoc's CPU at saturation. Bounded: cleared when it holds [`NameCache::MAX`] names.
#[derive(Debug, Default)]
pub struct NameCache {
    names: foldhash::HashMap<Rc<str>, ()>,
    scratch: Vec<u8>,
}

impl NameCache {
    /// Most names kept before the cache starts over.
    pub const MAX: usize = 65_536;

    /// Names held now.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn intern(&mut self) -> Rc<str> {
        // Only printable ASCII was written (push_escaped).
        let text = std::str::from_utf8(&self.scratch).expect("escaped names are ASCII");
        if let Some((name, ())) = self.names.get_key_value(text) {
            return Rc::clone(name);
        }
        if self.names.len() >= Self::MAX {
            self.names.clear();
        }
        let name: Rc<str> = text.into();
        self.names.insert(Rc::clone(&name), ());
        name
    }
}

/// [`parse_message`] with names shared through `cache`.
pub fn parse_message_with(bytes: &[u8], cache: &mut NameCache) -> Result<DnsMessage, ParseError> {
    if bytes.len() < HEADER_LEN {
        return Err(ParseError::TooShort { len: bytes.len() });
    }
    let be16 = |off: usize| u16::from_be_bytes([bytes[off], bytes[off + 1]]);
    let (flags_hi, flags_lo) = (bytes[2], bytes[3]);
    let (qdcount, ancount, nscount, arcount) = (be16(4), be16(6), be16(8), be16(10));

    let mut pos = HEADER_LEN;
    let question = if qdcount > 0 {
        cache.scratch.clear();
        pos = read_name(bytes, pos, Some(&mut cache.scratch))?;
        let fixed = bytes.get(pos..pos + 4).ok_or(ParseError::QuestionCut)?;
        pos += 4;
        Some(Question {
            name: cache.intern(),
            qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        })
    } else {
        None
    };

    let mut rcode = u16::from(flags_lo & 0x0f);
    if arcount > 0 && qdcount <= 1 {
        if let Some(ext) = opt_extended_rcode(bytes, pos, ancount, nscount, arcount) {
            rcode |= u16::from(ext) << 4;
        }
    }
    Ok(DnsMessage {
        id: be16(0),
        is_response: flags_hi & 0x80 != 0,
        opcode: (flags_hi >> 3) & 0x0f,
        rcode,
        truncated: flags_hi & 0x02 != 0,
        question,
        answer_count: ancount,
    })
}

/// Walks the answer, authority and additional records from `pos` and returns the
/// extended-RCODE byte of the first OPT in the additional section; `None` when there is
/// none or the bytes end (cut by capture) or turn malformed first.
fn opt_extended_rcode(bytes: &[u8], mut pos: usize, an: u16, ns: u16, ar: u16) -> Option<u8> {
    let before_additional = u32::from(an) + u32::from(ns);
    for i in 0..before_additional + u32::from(ar) {
        pos = read_name(bytes, pos, None).ok()?;
        let fixed = bytes.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        if rtype == TYPE_OPT && i >= before_additional {
            // TTL field of OPT: extended RCODE, version, flags.
            return Some(fixed[4]);
        }
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        pos += 10 + rdlen;
        if pos > bytes.len() {
            return None;
        }
    }
    None
}

/// Reads the name at `start`, appending its presentation form to `out` when given, and
/// returns the offset just past it (past the first compression pointer, if any).
///
/// Labels are at most 63 bytes and names at most 255 on the wire. A compression pointer
/// must point backwards and the name it leads to must end before it, so a loop cannot
/// be followed and every name is read in O(message) steps. Running out of bytes is
/// `QuestionCut`.
fn read_name(msg: &[u8], start: usize, mut out: Option<&mut Vec<u8>>) -> Result<usize, ParseError> {
    let mut pos = start;
    // Offset after the name in the message: set at the first pointer.
    let mut end = None;
    // After a jump the name must end before the pointer that led there (as hickory's
    // decoder requires), so each jump lowers this bound and no byte is read twice.
    let mut bound = msg.len();
    let mut wire_len = 1; // the root label
    let mut labels = 0;
    // Bytes [from, to) of the name: cut by capture past the message, malformed past a
    // pointer's bound.
    let take = |from: usize, to: usize, bound: usize| {
        if to <= bound {
            Ok(&msg[from..to])
        } else if bound < msg.len() {
            Err(ParseError::BadQuestion(
                "name runs past its compression pointer",
            ))
        } else {
            Err(ParseError::QuestionCut)
        }
    };
    loop {
        let len = take(pos, pos + 1, bound)?[0];
        match len & 0xc0 {
            0x00 if len == 0 => {
                if labels == 0 {
                    if let Some(out) = out.as_deref_mut() {
                        out.push(b'.');
                    }
                }
                return Ok(end.unwrap_or(pos + 1));
            }
            0x00 => {
                let len = usize::from(len);
                wire_len += len + 1;
                if wire_len > MAX_NAME_WIRE {
                    return Err(ParseError::BadQuestion("name longer than 255 bytes"));
                }
                let label = take(pos + 1, pos + 1 + len, bound)?;
                if let Some(out) = out.as_deref_mut() {
                    // Hostname labels (letters, digits, '-', '_') need no escaping: copy
                    // them whole; only the odd label goes byte by byte.
                    if label
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                    {
                        let at = out.len();
                        out.extend_from_slice(label);
                        out[at..].make_ascii_lowercase();
                    } else {
                        for &byte in label {
                            push_escaped(out, byte.to_ascii_lowercase());
                        }
                    }
                    out.push(b'.');
                }
                labels += 1;
                pos += 1 + len;
            }
            0xc0 => {
                let low = take(pos + 1, pos + 2, bound)?[0];
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                if target >= pos {
                    return Err(ParseError::BadQuestion(
                        "compression pointer does not point backwards",
                    ));
                }
                end.get_or_insert(pos + 2);
                bound = pos;
                pos = target;
            }
            _ => return Err(ParseError::BadQuestion("unsupported label type")),
        }
    }
}

/// Appends one label byte in master-file presentation form (printable ASCII only).
fn push_escaped(out: &mut Vec<u8>, byte: u8) {
    match byte {
        b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
            out.extend_from_slice(&[b'\\', byte])
        }
        0x21..=0x7e => out.push(byte),
        _ => out.extend_from_slice(&[
            b'\\',
            b'0' + byte / 100,
            b'0' + byte / 10 % 10,
            b'0' + byte % 10,
        ]),
    }
}

#[cfg(test)]
mod tests;

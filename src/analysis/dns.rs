//! DNS message header and question parsing.
//!
//! dnsdoc only needs enough of a message to match a response to its query and
//! to say what went wrong, so we decode the fixed 12-byte header and the first
//! question, and ignore everything after it. That matters because capture may
//! cut a packet (after ~1024 bytes), so answer, authority and additional
//! sections are often incomplete; insisting on them would reject good data.
//!
//! The bytes come straight off the wire from arbitrary peers, so every input,
//! however malformed, must produce a value or an error, never a panic or hang.

use std::fmt::Write as _;

use hickory_proto::op::{Header, MessageType};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};

/// Size of the fixed DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;

/// The parts of a DNS message dnsdoc needs: enough to match a response to its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    /// Transaction ID, copied from query to response.
    pub id: u16,
    /// QR bit: `true` for responses.
    pub is_response: bool,
    /// 4-bit OPCODE (0 = QUERY).
    pub opcode: u8,
    /// 4-bit header RCODE (EDNS extended bits are not included).
    pub rcode: u8,
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
    /// unambiguous and safe to print.
    pub name: String,
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
    BadQuestion(String),
}

/// Parses the header and first question of a DNS message.
///
/// Everything after the first question is ignored, including further
/// questions, because it may be cut by capture and dnsdoc does not need it.
pub fn parse_message(bytes: &[u8]) -> Result<DnsMessage, ParseError> {
    let too_short = ParseError::TooShort { len: bytes.len() };
    if bytes.len() < HEADER_LEN {
        return Err(too_short);
    }

    // The decoder must see the whole buffer (not just the question) because
    // compression pointers are offsets from the start of the message.
    let mut decoder = BinDecoder::new(bytes);
    // Header decoding can only fail on missing bytes, which we ruled out above.
    let header = Header::read(&mut decoder).map_err(|_| too_short)?;

    let question = if header.counts.queries > 0 {
        Some(read_question(&mut decoder)?)
    } else {
        None
    };

    Ok(DnsMessage {
        id: header.id,
        is_response: header.message_type == MessageType::Response,
        opcode: u8::from(header.op_code),
        rcode: header.response_code.low(),
        truncated: header.truncation,
        question,
        answer_count: header.counts.answers,
    })
}

/// Reads one question entry at the decoder's position.
///
/// hickory enforces labels ≤ 63 bytes and names ≤ 255 bytes, and only follows
/// compression pointers that point strictly backwards, so pointer loops are
/// rejected rather than followed forever.
fn read_question(decoder: &mut BinDecoder<'_>) -> Result<Question, ParseError> {
    let name = Name::read(decoder).map_err(question_error)?;
    // QTYPE and QCLASS are read raw: hickory's enums are lossless for known
    // values, but the raw numbers are what we report and key on anyway.
    let qtype = decoder.read_u16().map_err(question_error)?.unverified();
    let qclass = decoder.read_u16().map_err(question_error)?.unverified();
    Ok(Question {
        name: presentation_name(&name),
        qtype,
        qclass,
    })
}

/// Maps a hickory decode error to ours, separating "ran out of bytes" from "malformed".
fn question_error(err: DecodeError) -> ParseError {
    match err {
        DecodeError::InsufficientBytes => ParseError::QuestionCut,
        other => ParseError::BadQuestion(other.to_string()),
    }
}

/// Formats a name as lower-case, fully qualified presentation text.
///
/// We format the raw labels ourselves rather than use hickory's `Display` or
/// `to_ascii`: those convert each label through `Label::from_raw_bytes(..).unwrap()`
/// and (for ASCII) escape with octal `\ooo`, whereas RFC 1035 and dig use
/// decimal `\DDD`. Doing it here keeps the output dig-compatible and the code
/// free of library panics.
fn presentation_name(name: &Name) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for label in name.iter() {
        for &byte in label {
            push_escaped(&mut out, byte.to_ascii_lowercase());
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Appends one label byte in master-file presentation form.
fn push_escaped(out: &mut String, byte: u8) {
    match byte {
        b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
            out.push('\\');
            out.push(char::from(byte));
        }
        0x21..=0x7e => out.push(char::from(byte)),
        _ => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\{byte:03}");
        }
    }
}

/// RCODE name as dnsdoc reports it: NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, else "other".
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "other",
    }
}

/// QTYPE mnemonic (A, AAAA, CNAME, MX, ...), else `"TYPE<n>"` as in RFC 3597.
///
/// Kept as our own table rather than hickory's `RecordType` names so the
/// strings dnsdoc prints do not change with a library upgrade.
pub fn qtype_name(qtype: u16) -> String {
    let name = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return format!("TYPE{qtype}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header: id, flags, qd, an, ns, ar.
    fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
        [id, flags, qd, an, ns, ar]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect()
    }

    /// Encodes labels as an uncompressed wire-format name.
    fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for label in labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
        out
    }

    /// `dig +nocookie www.example.com A` as it goes on the wire: RD and AD set,
    /// plus an EDNS OPT record advertising a 1232-byte UDP payload.
    #[rustfmt::skip]
    const DIG_QUERY: &[u8] = &[
        0xab, 0xcd,                         // id
        0x01, 0x20,                         // flags: RD, AD
        0x00, 0x01, 0x00, 0x00,             // qd=1 an=0
        0x00, 0x00, 0x00, 0x01,             // ns=0 ar=1
        0x03, b'w', b'w', b'w',             // www.example.com.
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e',
        0x03, b'c', b'o', b'm', 0x00,
        0x00, 0x01,                         // A
        0x00, 0x01,                         // IN
        0x00,                               // OPT owner: root
        0x00, 0x29,                         // type OPT
        0x04, 0xd0,                         // UDP payload 1232
        0x00, 0x00, 0x00, 0x00,             // ext-rcode, version, flags
        0x00, 0x00,                         // rdlen 0
    ];

    /// Response to `example.com A` with two answers whose owner names are
    /// compression pointers to the question name at offset 12.
    #[rustfmt::skip]
    const COMPRESSED_RESPONSE: &[u8] = &[
        0x12, 0x34,                         // id
        0x81, 0x80,                         // flags: QR, RD, RA, NOERROR
        0x00, 0x01, 0x00, 0x02,             // qd=1 an=2
        0x00, 0x00, 0x00, 0x00,             // ns=0 ar=0
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', // example.com.
        0x03, b'c', b'o', b'm', 0x00,
        0x00, 0x01, 0x00, 0x01,             // A IN
        0xc0, 0x0c,                         // answer 1: owner -> offset 12
        0x00, 0x01, 0x00, 0x01,             // A IN
        0x00, 0x00, 0x0e, 0x10,             // TTL 3600
        0x00, 0x04, 93, 184, 215, 14,       // rdlen 4, address
        0xc0, 0x0c,                         // answer 2: owner -> offset 12
        0x00, 0x01, 0x00, 0x01,
        0x00, 0x00, 0x0e, 0x10,
        0x00, 0x04, 96, 7, 128, 198,
    ];

    #[test]
    fn parses_dig_query_with_edns() {
        let msg = parse_message(DIG_QUERY).unwrap();
        assert_eq!(
            msg,
            DnsMessage {
                id: 0xabcd,
                is_response: false,
                opcode: 0,
                rcode: 0,
                truncated: false,
                question: Some(Question {
                    name: "www.example.com.".into(),
                    qtype: 1,
                    qclass: 1,
                }),
                answer_count: 0,
            }
        );
    }

    #[test]
    fn parses_response_ignoring_compressed_answers() {
        let msg = parse_message(COMPRESSED_RESPONSE).unwrap();
        assert!(msg.is_response);
        assert_eq!(msg.id, 0x1234);
        assert_eq!(msg.answer_count, 2);
        assert_eq!(msg.question.unwrap().name, "example.com.");
    }

    #[test]
    fn answers_cut_by_capture_are_ignored() {
        // Cut in the middle of the first answer's RDATA.
        let msg = parse_message(&COMPRESSED_RESPONSE[..COMPRESSED_RESPONSE.len() - 20]).unwrap();
        assert_eq!(msg.answer_count, 2);
        assert_eq!(msg.question.unwrap().qtype, 1);
    }

    #[test]
    fn header_only_message_has_no_question() {
        // FORMERR reply without a question section.
        let msg = parse_message(&header(7, 0x8001, 0, 0, 0, 0)).unwrap();
        assert_eq!(msg.question, None);
        assert_eq!(msg.rcode, 1);
        assert_eq!(rcode_name(msg.rcode), "FORMERR");
    }

    #[test]
    fn truncated_header_is_too_short() {
        assert_eq!(
            parse_message(&DIG_QUERY[..5]),
            Err(ParseError::TooShort { len: 5 })
        );
        assert_eq!(parse_message(&[]), Err(ParseError::TooShort { len: 0 }));
    }

    #[test]
    fn question_cut_mid_label_is_question_cut() {
        // Header + "\x03www\x07exa": cut inside the second label.
        assert_eq!(
            parse_message(&DIG_QUERY[..12 + 4 + 4]),
            Err(ParseError::QuestionCut)
        );
        // Cut right after the name, before QTYPE/QCLASS.
        assert_eq!(
            parse_message(&DIG_QUERY[..12 + 17 + 2]),
            Err(ParseError::QuestionCut)
        );
        // QDCOUNT says 1 but nothing follows the header.
        assert_eq!(
            parse_message(&DIG_QUERY[..12]),
            Err(ParseError::QuestionCut)
        );
    }

    #[test]
    fn self_pointer_in_question_is_an_error() {
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]);
        assert!(matches!(
            parse_message(&msg),
            Err(ParseError::BadQuestion(_))
        ));
    }

    #[test]
    fn two_pointer_loop_is_an_error() {
        // The ID bytes double as a pointer back to offset 12, which points to offset 0.
        let mut msg = header(0xc00c, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&[0xc0, 0x00, 0x00, 0x01, 0x00, 0x01]);
        assert!(matches!(
            parse_message(&msg),
            Err(ParseError::BadQuestion(_))
        ));
    }

    #[test]
    fn label_of_64_bytes_is_rejected() {
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&wire_name(&[&[b'a'; 64], b"com"]));
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        assert!(matches!(
            parse_message(&msg),
            Err(ParseError::BadQuestion(_))
        ));
    }

    #[test]
    fn label_of_63_bytes_is_accepted() {
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&wire_name(&[&[b'a'; 63], b"com"]));
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        let name = parse_message(&msg).unwrap().question.unwrap().name;
        assert_eq!(name, format!("{}.com.", "a".repeat(63)));
    }

    #[test]
    fn name_of_255_bytes_is_accepted_but_256_is_not() {
        let max: &[&[u8]] = &[&[b'a'; 63], &[b'b'; 63], &[b'c'; 63], &[b'd'; 61]];
        let wire = wire_name(max);
        assert_eq!(wire.len(), 255);
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&wire);
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        let name = parse_message(&msg).unwrap().question.unwrap().name;
        assert_eq!(name.len(), 254);

        let over: &[&[u8]] = &[&[b'a'; 63], &[b'b'; 63], &[b'c'; 63], &[b'd'; 62]];
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&wire_name(over));
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        assert!(matches!(
            parse_message(&msg),
            Err(ParseError::BadQuestion(_))
        ));
    }

    #[test]
    fn very_long_name_is_rejected() {
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        let labels: Vec<&[u8]> = vec![&[b'x'; 63]; 5];
        msg.extend_from_slice(&wire_name(&labels));
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        assert!(matches!(
            parse_message(&msg),
            Err(ParseError::BadQuestion(_))
        ));
    }

    #[test]
    fn mixed_case_name_is_lowercased() {
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&wire_name(&[b"WwW", b"ExAmPlE", b"CoM"]));
        msg.extend_from_slice(&[0x00, 0x1c, 0x00, 0x01]);
        let q = parse_message(&msg).unwrap().question.unwrap();
        assert_eq!(q.name, "www.example.com.");
        assert_eq!(qtype_name(q.qtype), "AAAA");
    }

    #[test]
    fn root_name_is_a_single_dot() {
        let mut msg = header(1, 0x0000, 1, 0, 0, 0);
        msg.extend_from_slice(&[0x00, 0x00, 0x02, 0x00, 0x01]);
        let q = parse_message(&msg).unwrap().question.unwrap();
        assert_eq!(q.name, ".");
        assert_eq!(qtype_name(q.qtype), "NS");
    }

    #[test]
    fn odd_label_bytes_are_escaped() {
        let mut msg = header(1, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&wire_name(&[b"a.B", b"\\ \x00\xff"]));
        msg.extend_from_slice(&[0x00, 0x10, 0x00, 0x03]);
        let q = parse_message(&msg).unwrap().question.unwrap();
        assert_eq!(q.name, "a\\.b.\\\\\\032\\000\\255.");
        assert_eq!((q.qtype, q.qclass), (16, 3));
    }

    #[test]
    fn flags_tc_rcode_and_qr_are_read() {
        // QR, TC, RD, RA, NXDOMAIN.
        let mut msg = header(0xbeef, 0x8383, 1, 0, 0, 0);
        msg.extend_from_slice(&wire_name(&[b"nx", b"example"]));
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        let parsed = parse_message(&msg).unwrap();
        assert!(parsed.is_response);
        assert!(parsed.truncated);
        assert_eq!(parsed.rcode, 3);
        assert_eq!(rcode_name(parsed.rcode), "NXDOMAIN");

        // Same bits but a query, no TC, rcode REFUSED, opcode UPDATE (5).
        let mut msg = header(0xbeef, 0x2805, 0, 0, 0, 0);
        msg.truncate(12);
        let parsed = parse_message(&msg).unwrap();
        assert!(!parsed.is_response);
        assert!(!parsed.truncated);
        assert_eq!(parsed.opcode, 5);
        assert_eq!(rcode_name(parsed.rcode), "REFUSED");

        for rcode in 0..16u16 {
            let parsed = parse_message(&header(1, 0x8000 | rcode, 0, 0, 0, 0)).unwrap();
            assert_eq!(u16::from(parsed.rcode), rcode);
        }
    }

    #[test]
    fn only_first_of_several_questions_is_decoded() {
        let mut msg = header(9, 0x0100, 2, 0, 0, 0);
        msg.extend_from_slice(&wire_name(&[b"first", b"test"]));
        msg.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]);
        // Second question is garbage: a forward pointer.
        msg.extend_from_slice(&[0xc0, 0xff, 0x00]);
        let q = parse_message(&msg).unwrap().question.unwrap();
        assert_eq!(q.name, "first.test.");
    }

    #[test]
    fn names_of_codes() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(4), "NOTIMP");
        assert_eq!(rcode_name(9), "other");
        assert_eq!(qtype_name(65), "HTTPS");
        assert_eq!(qtype_name(64), "SVCB");
        assert_eq!(qtype_name(257), "CAA");
        assert_eq!(qtype_name(48), "DNSKEY");
        assert_eq!(qtype_name(65280), "TYPE65280");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap in-test smoke fuzz; the real fuzzing pass goes further.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..600 {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.push(state as u8);
            }
            if buf.len() >= 6 {
                buf[4] = 0; // QDCOUNT = 1 so the name path is exercised
                buf[5] = 1;
            }
            let _ = parse_message(&buf);
        }
        // Reaching here is the assertion; make it explicit.
        assert!(parse_message(&[0u8; 11]).is_err());
    }
}

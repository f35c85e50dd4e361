//! The DNS message parser's oracle: what `parse_message` returns agrees with the bytes.

use dnsdoc::analysis::dns::{parse_message, DnsMessage, ParseError};

/// `parse_message` on arbitrary bytes: never panics, and what it returns is consistent
/// with the bytes.
///
/// - Errors: `TooShort` exactly when there is no 12-byte header.
/// - Header fields are the raw header bits (nothing is lost or reinterpreted).
/// - The question name is canonical presentation text: lower case, fully qualified,
///   printable ASCII only (everything else escaped), and it decodes back to a legal
///   wire name (labels 1..=63 bytes, at most 255 bytes in all).
/// - Re-encoding the header and question without compression parses to the same
///   message; every cut of that encoding inside the question is `QuestionCut`, never
///   `BadQuestion` (a capture cut is not a broken peer), and bytes after the question
///   never change the result.
pub fn check_dns(bytes: &[u8]) {
    let parsed = parse_message(bytes);
    let msg = match parsed {
        Err(ParseError::TooShort { len }) => {
            assert!(
                bytes.len() < 12,
                "TooShort for a {}-byte message",
                bytes.len()
            );
            assert_eq!(len, bytes.len());
            return;
        }
        Err(_) => {
            assert!(bytes.len() >= 12, "a short message must be TooShort");
            assert_ne!(qdcount(bytes), 0, "no question, yet a question error");
            return;
        }
        Ok(msg) => msg,
    };
    assert!(bytes.len() >= 12, "parsed a message without a full header");
    check_header_fields(bytes, &msg);

    // Whatever follows a parsed message never changes how it parses (trailing garbage,
    // or a record section that capture cut short), but for the OPT record's upper RCODE
    // bits, which only records after the question carry.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xc0, 0x0c, 0xff, 0x00, 0x3f]);
    assert_eq!(
        parse_message(&longer).map(header_rcode).as_ref(),
        Ok(&header_rcode(msg.clone())),
        "trailing bytes changed the parse"
    );
    let msg = header_rcode(msg);

    let Some(q) = &msg.question else {
        return;
    };
    let wire = presentation_to_wire(&q.name);
    let mut canon = bytes[..12].to_vec();
    canon.extend_from_slice(&wire);
    canon.extend_from_slice(&q.qtype.to_be_bytes());
    canon.extend_from_slice(&q.qclass.to_be_bytes());
    assert_eq!(
        parse_message(&canon).as_ref(),
        Ok(&msg),
        "the uncompressed re-encoding {canon:02x?} parses differently"
    );

    for cut in 12..canon.len() {
        assert_eq!(
            parse_message(&canon[..cut]),
            Err(ParseError::QuestionCut),
            "{cut}-byte cut of {canon:02x?}"
        );
    }
}

/// The message with only the header's 4 RCODE bits (no OPT extension).
fn header_rcode(mut msg: DnsMessage) -> DnsMessage {
    msg.rcode &= 0x0f;
    msg
}

fn qdcount(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[4], bytes[5]])
}

/// The parsed header fields are exactly the header bits.
fn check_header_fields(bytes: &[u8], msg: &DnsMessage) {
    assert_eq!(msg.id, u16::from_be_bytes([bytes[0], bytes[1]]), "id");
    assert_eq!(msg.is_response, bytes[2] & 0x80 != 0, "QR");
    assert_eq!(msg.opcode, (bytes[2] >> 3) & 0x0f, "OPCODE");
    assert_eq!(msg.truncated, bytes[2] & 0x02 != 0, "TC");
    assert_eq!(msg.rcode & 0x0f, u16::from(bytes[3] & 0x0f), "RCODE");
    assert!(
        msg.rcode >> 4 == 0 || u16::from_be_bytes([bytes[10], bytes[11]]) > 0,
        "an extended RCODE without an additional record to carry OPT"
    );
    assert!(msg.rcode < 1 << 12, "RCODE wider than 12 bits");
    assert_eq!(
        msg.answer_count,
        u16::from_be_bytes([bytes[6], bytes[7]]),
        "ANCOUNT"
    );
    assert_eq!(
        msg.question.is_some(),
        qdcount(bytes) > 0,
        "question iff QDCOUNT > 0"
    );
}

/// Decodes canonical presentation text back to wire format, asserting it is canonical:
/// the form `dns::parse_message` documents (lower case, trailing dot, `\.`-style and
/// `\DDD` escapes only where needed, legal label and name lengths).
pub fn presentation_to_wire(name: &str) -> Vec<u8> {
    assert!(name.ends_with('.'), "{name:?} is not fully qualified");
    assert!(
        name.bytes().all(|c| (0x21..=0x7e).contains(&c)),
        "{name:?} has unescaped non-printable bytes"
    );
    assert!(
        !name.bytes().any(|c| c.is_ascii_uppercase()),
        "{name:?} is not lower case"
    );
    if name == "." {
        return vec![0];
    }
    let mut wire = Vec::new();
    let mut label = Vec::new();
    let mut chars = name.bytes().peekable();
    while let Some(c) = chars.next() {
        match c {
            b'\\' => {
                let e = chars
                    .next()
                    .unwrap_or_else(|| panic!("{name:?}: dangling escape"));
                if e.is_ascii_digit() {
                    let d: Vec<u8> = [Some(e), chars.next(), chars.next()]
                        .into_iter()
                        .map(|d| d.filter(u8::is_ascii_digit).expect("\\DDD needs 3 digits"))
                        .collect();
                    let v = u32::from(d[0] - b'0') * 100
                        + u32::from(d[1] - b'0') * 10
                        + u32::from(d[2] - b'0');
                    let v = u8::try_from(v).unwrap_or_else(|_| panic!("{name:?}: \\DDD > 255"));
                    assert!(
                        !(0x21..=0x7e).contains(&v),
                        "{name:?}: printable byte {v} escaped as \\DDD"
                    );
                    label.push(v);
                } else {
                    assert!(
                        b".\\\"();@$".contains(&e),
                        "{name:?}: needless escape of {:?}",
                        char::from(e)
                    );
                    label.push(e);
                }
            }
            b'.' => {
                assert!(!label.is_empty(), "{name:?} has an empty label");
                assert!(
                    label.len() <= 63,
                    "{name:?} has a label of {} bytes",
                    label.len()
                );
                wire.push(label.len() as u8);
                wire.append(&mut label);
            }
            b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                panic!("{name:?}: special character {:?} unescaped", char::from(c))
            }
            _ => label.push(c),
        }
    }
    assert!(label.is_empty(), "{name:?} does not end with a dot");
    wire.push(0);
    assert!(
        wire.len() <= 255,
        "{name:?} is {} bytes on the wire",
        wire.len()
    );
    wire
}

//! Messages of any size, against a real unbound: EDNS answers larger than 1232 bytes
//! over UDP, answers of 10 KB and 59 KB over one TCP connection, a truncated UDP answer
//! that dig retries over TCP, and an extended RCODE (BADVERS) carried in OPT. Every one
//! must be parsed and matched, with nothing cut and no TCP stream losing its framing.

mod common;

use std::time::Duration;

use common::*;

/// `n` TXT records for `name`, each of `strings` 250-byte strings of a distinct letter
/// (unbound drops duplicate records): about `n * strings * 251` bytes of answer.
fn txt_records(name: &str, n: usize, strings: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let s = format!(
                "\\\"{}\\\"",
                char::from(b'a' + (i % 26) as u8).to_string().repeat(250)
            );
            let data = vec![s; strings].join(" ");
            // Records past 26 differ in their first string's last letter.
            let data = if i >= 26 {
                format!("{data} \\\"{i}\\\"")
            } else {
                data
            };
            format!("local-data: \"{name} 300 IN TXT {data}\"")
        })
        .collect()
}

#[test]
fn large_answers_truncation_and_extended_rcodes_are_counted_whole() {
    if !require_bpf("large_answers_truncation_and_extended_rcodes_are_counted_whole") {
        return;
    }
    let cg = TestCgroup::new("large");
    let dir = TempDir::new("large");
    let port = free_port();
    let p = port.to_string();
    let mut extra = vec![
        "max-udp-size: 4096".to_string(),
        "edns-buffer-size: 4096".to_string(),
        "local-zone: \"big.test.\" static".to_string(),
    ];
    extra.extend(txt_records("t2k.big.test.", 1, 8)); // ~2 KB
    extra.extend(txt_records("t10k.big.test.", 5, 8)); // ~10 KB
    extra.extend(txt_records("t58k.big.test.", 29, 8)); // ~59 KB
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let _unbound = start_unbound(&cg, port, &dir, &extra);

    let watch = start_watch(&cg, &[port], &["--timeout", "2s"]);
    let dig = |args: &[&str]| {
        let mut all = vec!["@127.0.0.1", "-p", &p, "+tries=1", "+timeout=2"];
        all.extend_from_slice(args);
        let (_, out) = cg.run("dig", &all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // 1. A 2 KB answer over UDP (EDNS buffer 4096): no truncation.
    let out = dig(&["+bufsize=4096", "t2k.big.test", "TXT"]);
    assert!(
        out.contains("status: NOERROR") && !out.contains("Truncated"),
        "{out}"
    );
    assert!(
        out.contains("MSG SIZE  rcvd: 2"),
        "not a ~2 KB answer: {out}"
    );
    // 2. 10 KB and 59 KB answers, one after the other on one TCP connection.
    let out = dig(&[
        "+tcp",
        "+keepopen",
        "t10k.big.test",
        "TXT",
        "t58k.big.test",
        "TXT",
    ]);
    assert_eq!(out.matches("status: NOERROR").count(), 2, "{out}");
    assert!(
        out.contains("MSG SIZE  rcvd: 59"),
        "not a ~59 KB answer: {out}"
    );
    // 3. The 2 KB answer with a 1232-byte buffer: TC over UDP, then dig retries over TCP.
    let out = dig(&["+bufsize=1232", "t2k.big.test", "TXT"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    // 4. EDNS version 1: unbound answers BADVERS (16: header RCODE 0, OPT's upper bits 1).
    let out = dig(&["+edns=1", "+noednsnegotiation", "good.test", "A"]);
    assert!(out.contains("BADVERS"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    let s = watch.stop().snapshot;

    let c = &s.capture;
    assert_eq!(c.dropped.total, 0, "{c:#?}");
    assert_eq!(c.payload_cut, 0, "a message was not captured whole: {c:#?}");
    assert_eq!(c.parse_errors, 0, "{c:#?}");
    assert_eq!(c.tcp_desyncs, 0, "{c:#?}");
    assert_eq!(c.unmatched_responses, 0, "{c:#?}");
    assert_eq!(c.pending_at_end, 0, "{c:#?}");

    let t = &s.totals;
    assert_eq!(t.counts.queries, 6, "{t:#?}");
    assert_eq!(t.counts.responses, 6, "{t:#?}");
    assert_eq!((t.udp_queries, t.tcp_queries), (3, 3), "{t:#?}");
    assert_eq!(t.truncated, 1, "{t:#?}");
    assert_eq!(t.truncated_retried_tcp, 1, "{t:#?}");
    assert_eq!(t.counts.rcodes.NOERROR, 5, "{t:#?}");
    assert_eq!(t.counts.rcodes.other, 1, "{t:#?}");
    assert_eq!(
        t.counts.rcodes.other_by_name.get("BADVERS"),
        Some(&1),
        "{t:#?}"
    );
    // The server's view of the same messages agrees.
    let ss = &s.server_side;
    assert_eq!(ss.counts.queries, 6, "{ss:#?}");
    assert_eq!(ss.counts.rcodes.other_by_name.get("BADVERS"), Some(&1));
    for name in ["t2k.big.test.", "t10k.big.test.", "t58k.big.test."] {
        assert!(
            s.names.by_volume.iter().any(|n| n.name == name),
            "{name} not among the names: {:#?}",
            s.names.by_volume
        );
    }
}

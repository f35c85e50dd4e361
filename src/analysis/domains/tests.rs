//! Unit tests of the domain features: hand-built queries, pure logic.

use super::*;

fn answered(rcode: u16) -> Outcome {
    Outcome::Answered {
        rcode,
        truncated: false,
        latency_ns: 1_000_000,
    }
}

fn add(t: &mut DomainTracker, pid: u32, name: &str, qtype: u16, rcode: u16) {
    let name: Rc<str> = name.into();
    t.add(pid, &name, qtype, &answered(rcode), 0, 100);
}

fn summary(t: &DomainTracker) -> DomainSummary {
    t.summary(10.0, |pid| (format!("p{pid}"), None))
}

#[test]
fn features_are_per_domain_and_process() {
    let mut t = DomainTracker::new();
    for i in 0..50 {
        add(&mut t, 7, &format!("chunk{i:02}.exfil.test."), TXT, 0);
    }
    add(&mut t, 7, "chunk00.exfil.test.", TXT, 0); // a repeat is not a new subdomain
    add(&mut t, 8, "www.exfil.test.", 1, 3);
    let s = summary(&t);
    assert_eq!(s.by_domain.len(), 2);
    let r = &s.by_domain[0];
    assert_eq!(
        (r.domain.as_str(), r.pid, r.comm.as_str()),
        ("exfil.test", 7, "p7")
    );
    assert_eq!(r.counts.queries, 51);
    assert_eq!(r.unique_subdomains, 50);
    assert!(!r.unique_subdomains_capped);
    assert_eq!(r.unique_subdomain_bytes, 50 * 7);
    assert_eq!(r.txt_queries, 51);
    assert_eq!(r.txt_null_ratio, 1.0);
    assert_eq!(r.label_len_max, 7);
    assert_eq!(r.name_len_max, "chunk00.exfil.test".len() as u64);
    assert_eq!(r.name_bytes_out, 51 * 18);
    assert_eq!(r.answer_bytes_in, 51 * 100);
    let other = &s.by_domain[1];
    assert_eq!((other.pid, other.counts.rcodes.NXDOMAIN), (8, 1));
    assert_eq!(other.counts.nxdomain_ratio, 1.0);
}

#[test]
fn suffix_rows_count_distinct_registered_domains_and_their_nxdomains() {
    let mut t = DomainTracker::new();
    for i in 0..30 {
        add(&mut t, 9, &format!("rnd{i}.test."), 1, 3);
        add(&mut t, 9, &format!("www.rnd{i}.test."), 1, 3);
    }
    add(&mut t, 9, "ok.test.", 1, 0);
    let s = summary(&t);
    let r = &s.by_suffix[0];
    assert_eq!(
        (r.suffix.as_str(), r.domains, r.nxdomain_domains),
        ("test", 31, 30)
    );
    assert!((r.nxdomain_domain_ratio - 30.0 / 31.0).abs() < 1e-6);
    assert_eq!(r.counts.queries, 61);
}

#[test]
fn sets_are_capped_and_say_so() {
    let mut t = DomainTracker::new();
    for i in 0..(SET_CAP + 10) {
        add(&mut t, 1, &format!("s{i}.big.example."), 1, 0);
    }
    let s = summary(&t);
    let r = &s.by_domain[0];
    assert_eq!(r.unique_subdomains, SET_CAP as u64);
    assert!(r.unique_subdomains_capped);
    assert_eq!(r.counts.queries, SET_CAP as u64 + 10);
}

#[test]
fn only_the_top_rows_are_kept_and_the_rest_counted() {
    let mut t = DomainTracker::new();
    for d in 0..(TOP_ROWS + 5) {
        add(&mut t, 1, &format!("www.d{d}.example."), 1, 0);
    }
    let s = summary(&t);
    assert_eq!(s.by_domain.len(), TOP_ROWS);
    assert_eq!((s.other_rows, s.other_queries), (5, 5));
}

#[test]
fn entropy_separates_base32_from_hex_and_words() {
    let mut t = DomainTracker::new();
    add(
        &mut t,
        1,
        "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe3dfnzsxg5dj.x.b32.example.",
        TXT,
        0,
    );
    add(
        &mut t,
        2,
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0.hex.example.",
        1,
        0,
    );
    add(&mut t, 3, "mail.words.example.", 1, 0);
    let s = summary(&t);
    let e = |pid: u32| {
        s.by_domain
            .iter()
            .find(|r| r.pid == pid)
            .unwrap()
            .subdomain_entropy
            .unwrap()
    };
    assert!(e(1) > 4.0, "{}", e(1));
    assert!(e(2) <= 4.0, "{}", e(2));
    assert!(e(3) < 2.5, "{}", e(3));
}

#[test]
fn a_domain_keeps_its_row_when_the_string_cache_starts_over() {
    let mut t = DomainTracker::new();
    add(&mut t, 7, "a.kept.test.", 1, 0);
    // Enough other domains (one row each until the rows run out) to fill the cache.
    for i in 0..MAX_NAMES {
        add(&mut t, 8, &format!("x.d{i}.test."), 1, 0);
    }
    add(&mut t, 7, "b.kept.test.", 1, 0);
    let s = t.summary(10.0, |pid| (format!("p{pid}"), None));
    let kept: Vec<_> = s
        .by_domain
        .iter()
        .filter(|r| r.domain == "kept.test")
        .collect();
    assert_eq!(kept.len(), 1, "one row, not one per allocation: {kept:#?}");
    assert_eq!(kept[0].counts.queries, 2);
    assert_eq!(kept[0].unique_subdomains, 2);
}

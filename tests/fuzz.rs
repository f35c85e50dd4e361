//! Mutation fuzzing of everything that reads untrusted bytes, under `cargo test`.
//!
//! dnsdoc runs as root on production nodes, often during an incident, and parses bytes
//! from arbitrary peers (DNS messages, TCP streams) and from the kernel (ring-buffer
//! records). It must never panic, hang, or grow memory without bound on any input. This
//! file mutates real packets captured from dig and dnsmasq (tests/fuzz-corpus/, see its
//! README) and checks the properties in `fuzz/oracles.rs`, which the libFuzzer targets in
//! fuzz/ share. The tests are here; what drives them is in fuzz/: the runner, the
//! counting allocator, the corpus and its mutations, the analyzer's conversations and
//! the rule files' mutations.
//!
//! Deterministic and bounded, so it runs in CI with the other tests (a few seconds in a
//! debug build). For a long local run:
//!
//! ```text
//! DNSDOC_FUZZ_ITERS=2000000 DNSDOC_FUZZ_SEED=random cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! - `DNSDOC_FUZZ_ITERS`: cases per target (default: each target's own, see `fuzz()` calls);
//! - `DNSDOC_FUZZ_SEED`: decimal, `0x` hex, or `random`; the default is fixed;
//! - `DNSDOC_FUZZ_HANG_SECS`: a case running longer than this is a hang (default 60):
//!   the input is printed and the process aborts.
//!
//! Every run prints its cases, time and seed (`--nocapture` shows them when it passes);
//! a failing case prints its target, seed and case number and saves its input under
//! target/fuzz-failures/.

mod fuzz {
    pub mod conversations;
    pub mod memory;
    pub mod mutations;
    pub mod oracles;
    pub mod rule_mutations;
    pub mod runner;
}

use std::time::{Duration, Instant};

use dnsdoc::analysis::matcher::{Outcome, Role};
use dnsdoc::analysis::tcp::StreamReassembler;
use dnsdoc::analysis::{AnalysisConfig, Analyzer};
use dnsdoc::capture::event::{decode, encode, HEADER_LEN, TCP_FIN, TCP_RST};
use dnsdoc::capture::{Direction, PacketEvent, Protocol};
use fuzz::conversations::*;
use fuzz::memory::live_bytes;
use fuzz::mutations::*;
use fuzz::oracles::*;
use fuzz::rule_mutations::*;
use fuzz::runner::{env_seed, env_u64, fuzz};

// ---------------------------------------------------------------------------------------
// DNS message parser
// ---------------------------------------------------------------------------------------

/// Every real captured message parses, and the properties hold on it as captured.
#[test]
fn dns_real_messages_parse() {
    for (name, msg) in corpus("dns") {
        let parsed = dnsdoc::analysis::dns::parse_message(&msg);
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
        check_dns(&msg);
    }
}

/// Mutated real messages: never a panic; the properties of `check_dns` hold. The
/// mutations must reach every outcome of the parser, or the run proves little.
#[test]
fn dns_parser_mutations() {
    use dnsdoc::analysis::dns::{parse_message, ParseError};
    let pool = seeds("dns");
    let mut outcomes = [0u64; 5];
    let n = fuzz("dns_parser_mutations", 40_000, |rng, case| {
        let mut msg = pool[rng.index(pool.len())].clone();
        mutate(rng, &mut msg, &pool);
        case.input(&msg);
        check_dns(&msg);
        outcomes[match parse_message(&msg) {
            Ok(m) if m.question.is_some() => 0,
            Ok(_) => 1,
            Err(ParseError::TooShort { .. }) => 2,
            Err(ParseError::QuestionCut) => 3,
            Err(ParseError::BadQuestion(_)) => 4,
        }] += 1;
    });
    eprintln!("fuzz dns_parser_mutations: outcomes (question, none, short, cut, bad) {outcomes:?}");
    if n >= 10_000 {
        assert!(
            outcomes.iter().all(|&c| c > n / 1000),
            "outcomes (question, none, short, cut, bad): {outcomes:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// TCP stream reassembler
// ---------------------------------------------------------------------------------------

#[test]
fn tcp_in_order_is_exact() {
    let (dns, tcp) = (seeds("dns"), seeds("tcp"));
    fuzz("tcp_in_order_is_exact", 20_000, |rng, case| {
        let stream = random_stream(rng, &dns, &tcp);
        case.input(&stream);
        check_tcp_in_order(&stream, rng);
    });
}

#[test]
fn tcp_reordered_is_exact() {
    let (dns, tcp) = (seeds("dns"), seeds("tcp"));
    fuzz("tcp_reordered_is_exact", 20_000, |rng, case| {
        let stream = random_stream(rng, &dns, &tcp);
        case.input(&stream);
        check_tcp_reordered(&stream, rng);
    });
}

#[test]
fn tcp_capture_cuts() {
    let (dns, tcp) = (seeds("dns"), seeds("tcp"));
    fuzz("tcp_capture_cuts", 20_000, |rng, case| {
        let stream = random_stream(rng, &dns, &tcp);
        case.input(&stream);
        check_tcp_cut(&stream, rng);
    });
}

#[test]
fn tcp_lost_segments() {
    let (dns, tcp) = (seeds("dns"), seeds("tcp"));
    fuzz("tcp_lost_segments", 20_000, |rng, case| {
        let stream = random_stream(rng, &dns, &tcp);
        case.input(&stream);
        check_tcp_lost_segments(&stream, rng);
    });
}

/// Garbage pushes: no panic, and the reassembler's heap stays within what its design
/// allows — 16 held segments, one message body under construction (at most 64 KiB,
/// doubled by Vec growth) — however long the garbage goes on.
#[test]
fn tcp_garbage_memory_is_bounded() {
    let (dns, tcp) = (seeds("dns"), seeds("tcp"));
    let data: Vec<u8> = tcp.concat();
    fuzz("tcp_garbage_memory_is_bounded", 300, |rng, case| {
        let n = 1 + rng.index(400);
        let pushes = random_pushes(rng, &data, n);
        case.input(
            &pushes
                .iter()
                .flat_map(|p| p.2.iter().copied())
                .collect::<Vec<u8>>(),
        );
        check_tcp_garbage(&pushes);
        let max_captured = pushes
            .iter()
            .map(|p| p.2.len().min(p.1 as usize))
            .max()
            .unwrap_or(0);
        let bound = 17 * (max_captured as i64 + 64) + 2 * 65_536 + 4096;
        let base = live_bytes();
        let mut r = StreamReassembler::new();
        for (seq, wire, cap) in &pushes {
            let mut out = Vec::new();
            r.push(*seq, *wire, cap, &mut out);
            drop(out);
            let held = live_bytes() - base;
            assert!(
                held <= bound,
                "reassembler holds {held} bytes, bound {bound}"
            );
        }
        drop(r);
        assert_eq!(
            live_bytes(),
            base,
            "memory not returned when the stream ends"
        );
        let _ = &dns;
    });
}

// ---------------------------------------------------------------------------------------
// Ring-buffer record decoder
// ---------------------------------------------------------------------------------------

/// Every real record decodes, and re-encodes to the same bytes (up to padding and the
/// unused tails of IPv4 addresses and the comm).
#[test]
fn event_real_records_decode() {
    for (name, rec) in corpus("event") {
        let ev = decode(&rec).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(ev.payload.len() <= dnsdoc::capture::MAX_PAYLOAD, "{name}");
        assert_eq!(encode(&ev), rec, "{name}");
        check_event_record(&rec);
    }
}

/// Mutated real records (header fields, lengths, truncation) and random bytes.
#[test]
fn event_decoder_mutations() {
    let pool = seeds("event");
    fuzz("event_decoder_mutations", 100_000, |rng, case| {
        let mut rec = if rng.chance(1, 10) {
            let n = rng.size(HEADER_LEN + 64);
            rng.bytes(n)
        } else {
            pool[rng.index(pool.len())].clone()
        };
        if rng.chance(1, 2) {
            // Header fields that steer decoding: family, protocol, direction, lengths.
            let at = [84, 85, 86, 87, 92, 96, 97, 98, 99][rng.index(9)];
            if at < rec.len() {
                rec[at] = INTERESTING_U8[rng.index(INTERESTING_U8.len())];
            }
        }
        mutate(rng, &mut rec, &pool);
        case.input(&rec);
        check_event_record(&rec);
    });
}

/// `decode(encode(ev)) == ev` for random valid events, with any padding.
#[test]
fn event_roundtrip() {
    fuzz("event_roundtrip", 40_000, |rng, case| {
        let ev = random_event(rng);
        let padding = rng.index(8);
        case.input(&encode(&ev));
        check_event_roundtrip(&ev, padding);
    });
}

// ---------------------------------------------------------------------------------------
// The whole analysis pipeline
// ---------------------------------------------------------------------------------------

/// Every real session (dig against dnsmasq, both ends seen on loopback) replays
/// cleanly: no parse error, no desync, nothing unmatched, every query answered once at
/// each end.
#[test]
fn analyzer_real_sessions_replay_cleanly() {
    for (name, evs) in sessions() {
        let cfg = AnalysisConfig {
            timeout_ns: 5_000_000_000,
            max_pending: 1000,
        };
        let last = evs.last().map_or(0, |e| e.ts_ns);
        let steps: Vec<Step> = evs.iter().cloned().map(Step::Event).collect();
        let r = check_analyzer(&steps, &cfg, last, non_decreasing(&evs));
        assert_eq!(
            (r.stats.parse_errors, r.stats.tcp_desyncs),
            (0, 0),
            "{name}"
        );
        assert_eq!(r.matcher.unmatched_responses, 0, "{name}");
        assert!(!r.out.is_empty(), "{name}");
        assert!(
            r.out
                .iter()
                .all(|t| matches!(t.tx.outcome, Outcome::Answered { .. })),
            "{name}: {:?}",
            r.out
        );
        let clients = r.out.iter().filter(|t| t.tx.role == Role::Client).count();
        assert_eq!(
            clients * 2,
            r.out.len(),
            "{name}: one client and one server each"
        );
    }
}

/// Real sessions, damaged: events dropped, duplicated, swapped, payloads mutated,
/// cookies and directions changed, timestamps shifted.
#[test]
fn analyzer_mutated_sessions() {
    let sessions = sessions();
    let pool = seeds("dns");
    fuzz("analyzer_mutated_sessions", 4_000, |rng, case| {
        let mut evs = sessions[rng.index(sessions.len())].1.clone();
        for _ in 0..1 + rng.below(6) {
            if evs.is_empty() {
                break;
            }
            let i = rng.index(evs.len());
            match rng.below(7) {
                0 => {
                    evs.remove(i);
                }
                1 => {
                    let e = evs[i].clone();
                    evs.insert(rng.index(evs.len() + 1), e);
                }
                2 => {
                    let j = rng.index(evs.len());
                    evs.swap(i, j);
                }
                3 => mutate(rng, &mut evs[i].payload, &pool),
                4 => evs[i].cookie = rng.below(3),
                5 => {
                    evs[i].direction = match evs[i].direction {
                        Direction::Egress => Direction::Ingress,
                        Direction::Ingress => Direction::Egress,
                    }
                }
                _ => {
                    evs[i].tcp_seq = evs[i]
                        .tcp_seq
                        .wrapping_add(rng.below(5) as u32)
                        .wrapping_sub(2);
                    evs[i].tcp_flags ^= [TCP_FIN, TCP_RST, 0x10][rng.index(3)];
                }
            }
        }
        case.input(&evs.iter().flat_map(encode).collect::<Vec<u8>>());
        let cfg = config(rng);
        let finish = evs.iter().map(|e| e.ts_ns).max().unwrap_or(0) + rng.below(3) * cfg.timeout_ns;
        let steps: Vec<Step> = evs.iter().cloned().map(Step::Event).collect();
        check_analyzer(&steps, &cfg, finish, non_decreasing(&evs));
    });
}

/// Random conversations with time that never goes backwards: every property of
/// `check_analyzer`, including latency and timeout timing.
#[test]
fn analyzer_random_conversations() {
    let dns = corpus("dns");
    let pairs = pairs(&dns);
    let pool: Vec<Vec<u8>> = dns.into_iter().map(|(_, b)| b).collect();
    let mut answered = 0u64;
    fuzz("analyzer_random_conversations", 1_500, |rng, case| {
        let cfg = config(rng);
        let (steps, finish) = random_steps(rng, &pairs, &pool, cfg.timeout_ns, false);
        case.input(&steps_bytes(&steps));
        let r = check_analyzer(&steps, &cfg, finish, true);
        answered += r
            .out
            .iter()
            .filter(|t| matches!(t.tx.outcome, Outcome::Answered { .. }))
            .count() as u64;
    });
    // The generator must exercise matching, not only errors.
    if env_u64("DNSDOC_FUZZ_ITERS").is_none_or(|n| n >= 100) {
        assert!(
            answered > 100,
            "only {answered} answered transactions generated"
        );
    }
}

/// Time going backwards (records from different CPUs interleave in the ring buffer):
/// no panic, and the accounting still holds.
#[test]
fn analyzer_time_jitter() {
    let dns = corpus("dns");
    let pairs = pairs(&dns);
    let pool: Vec<Vec<u8>> = dns.into_iter().map(|(_, b)| b).collect();
    fuzz("analyzer_time_jitter", 800, |rng, case| {
        let cfg = config(rng);
        let (steps, finish) = random_steps(rng, &pairs, &pool, cfg.timeout_ns, true);
        case.input(&steps_bytes(&steps));
        check_analyzer(&steps, &cfg, finish, false);
    });
}

/// A long run over a fixed set of sockets: the analyzer's heap stays within its design
/// bounds (in-flight table, 16 held segments and one body per stream), and once every
/// stream is closed and the window finished, it gives the memory back.
#[test]
fn analyzer_memory_is_bounded() {
    let dns = corpus("dns");
    let pairs = pairs(&dns);
    let pool: Vec<Vec<u8>> = dns.into_iter().map(|(_, b)| b).collect();
    let rounds = env_u64("DNSDOC_FUZZ_ITERS").map_or(150, |n| n.max(1));
    let mut rng = Rng::new(env_seed() ^ hash(b"analyzer_memory_is_bounded"));
    let cfg = AnalysisConfig {
        timeout_ns: 1_000_000_000,
        max_pending: 256,
    };
    let base = live_bytes();
    let mut a = Analyzer::new(&cfg);
    let (mut tgids, mut out) = (Vec::new(), Vec::new());
    // 8 cookies x 2 directions of streams; 256 queries in flight of ~1 KiB each at most.
    let bound: i64 = 16 * (17 * 1200 + 2 * 65_536) + 256 * 1024 + (1 << 20);
    let mut peak = 0;
    let mut last_ts = 0;
    for _ in 0..rounds {
        let (steps, _) = random_steps(&mut rng, &pairs, &pool, cfg.timeout_ns, false);
        for step in steps {
            match step {
                Step::Event(mut ev) => {
                    // One timeline for the whole run.
                    ev.ts_ns = last_ts.max(ev.ts_ns % (1 << 50));
                    last_ts = ev.ts_ns;
                    a.on_event(&ev, &mut tgids, &mut out);
                }
                Step::Tick(_) => a.tick(last_ts, &mut out),
            }
            out.clear();
            tgids.clear();
            peak = peak.max(live_bytes() - base);
        }
        assert!(peak <= bound, "analyzer holds {peak} bytes, bound {bound}");
    }
    // Close every stream the generator can have opened, then end the window.
    for cookie in 0..8 {
        for direction in [Direction::Egress, Direction::Ingress] {
            let ev = PacketEvent {
                ts_ns: last_ts,
                cookie,
                cgroup_id: 0,
                owner_tgid: 0,
                task_tgid: 0,
                owner_comm: String::new(),
                src: "127.0.0.1".parse().unwrap(),
                dst: "127.0.0.1".parse().unwrap(),
                sport: 53,
                dport: 40000,
                protocol: Protocol::Tcp,
                direction,
                tcp_flags: TCP_RST,
                tcp_seq: 0,
                payload_len: 0,
                payload: Vec::new(),
            };
            a.on_event(&ev, &mut tgids, &mut out);
        }
    }
    a.finish(last_ts + cfg.timeout_ns, &mut out);
    drop(out);
    drop(tgids);
    assert_eq!(a.in_flight(), 0);
    let left = live_bytes() - base;
    assert!(
        left < 256 * 1024,
        "{left} bytes held after every stream closed (peak {peak})"
    );
    eprintln!("fuzz analyzer_memory_is_bounded: {rounds} rounds, peak heap {peak} bytes, {left} after the window");
}

/// One peer floods one socket with unanswered queries under one id, each for another
/// name (spoofable over UDP: a random-subdomain attack against a local server). Work
/// per query must not grow with the number in flight: the last queries of the flood may
/// cost at most a few times the first ones. (Before the per-key bound in matcher.rs,
/// 80 000 pending made each query cost 219 us in a release build.)
#[test]
fn analyzer_same_key_flood_stays_linear() {
    let query = |id: u16, i: u32| -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        let label = format!("r{i}");
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
        b.extend_from_slice(b"\x06victim\x04test\x00\x00\x01\x00\x01");
        b
    };
    let n: u32 = 12_000;
    let batch = 400;
    let mut a = Analyzer::new(&AnalysisConfig {
        timeout_ns: u64::MAX / 4,
        max_pending: 200_000,
    });
    let (mut tgids, mut out) = (Vec::new(), Vec::new());
    let mut batch_times = Vec::new();
    let mut t = Instant::now();
    for i in 0..n {
        let payload = query(7, i);
        let ev = PacketEvent {
            ts_ns: u64::from(i) * 1000,
            cookie: 1,
            cgroup_id: 0,
            owner_tgid: 0,
            task_tgid: 0,
            owner_comm: String::new(),
            src: "192.0.2.1".parse().unwrap(),
            dst: "127.0.0.1".parse().unwrap(),
            sport: 4444,
            dport: 53,
            protocol: Protocol::Udp,
            direction: Direction::Ingress,
            tcp_flags: 0,
            tcp_seq: 0,
            payload_len: payload.len() as u32,
            payload,
        };
        a.on_event(&ev, &mut tgids, &mut out);
        if (i + 1) % batch == 0 {
            batch_times.push(t.elapsed());
            t = Instant::now();
        }
    }
    assert_eq!(a.decode_stats().messages, u64::from(n));
    // The fastest of the first and of the last five batches: noise only slows a batch.
    let first = batch_times[..5].iter().min().unwrap();
    let last = batch_times[batch_times.len() - 5..].iter().min().unwrap();
    assert!(
        *last < *first * 4 + Duration::from_millis(5),
        "{batch} queries took {first:?} with few in flight, {last:?} with {} in flight",
        a.in_flight()
    );
    eprintln!("fuzz analyzer_same_key_flood_stays_linear: first batch {first:?}, last {last:?}");
}

// ---------------------------------------------------------------------------------------
// Rule loader
// ---------------------------------------------------------------------------------------

/// The real rule files load (or, for the broken fixtures, fail with diagnostics) and
/// satisfy `check_rules` as they are.
#[test]
fn rules_real_files() {
    let (texts, snapshots) = rule_seeds();
    let builtin = dnsdoc::rules::RuleSet::builtin().expect("built-in rules load");
    for text in &texts {
        check_rules(text, &builtin, &snapshots);
    }
}

/// Mutated rule files: never a panic, errors are diagnostics, layers all or nothing.
#[test]
fn rules_loader_mutations() {
    let (texts, snapshots) = rule_seeds();
    let builtin = dnsdoc::rules::RuleSet::builtin().expect("built-in rules load");
    let mut loaded = 0u64;
    let n = fuzz("rules_loader_mutations", 1_500, |rng, case| {
        let seed = rng.index(texts.len());
        let text = mutate_rule(rng, &texts[seed], &texts);
        case.input(text.as_bytes());
        check_rules(&text, &builtin, &snapshots);
        let mut set = dnsdoc::rules::RuleSet::empty();
        loaded += u64::from(set.load_str("t.toml", &text).is_ok());
    });
    // Some mutants must still load, or evaluation is never reached.
    assert!(n < 100 || loaded > n / 50, "{loaded} of {n} mutants loaded");
}

use super::*;

fn sample() -> PacketEvent {
    PacketEvent {
        ts_ns: 123_456_789,
        cookie: 42,
        cgroup_id: 7,
        owner_tgid: 1000,
        task_tgid: 1001,
        owner_comm: "dig".into(),
        src: "::1".parse().unwrap(),
        dst: "2001:db8::53".parse().unwrap(),
        sport: 40000,
        dport: 53,
        protocol: Protocol::Tcp,
        direction: Direction::Ingress,
        tcp_flags: 0x18,
        tcp_seq: u32::MAX - 1,
        payload_len: 300,
        payload: vec![1, 2, 3, 4, 5],
    }
}

#[test]
fn round_trips_every_field() {
    let ev = sample();
    assert_eq!(decode(&encode(&ev)).unwrap(), ev);
    let mut v4 = sample();
    v4.src = "127.0.0.1".parse().unwrap();
    v4.dst = "127.0.0.53".parse().unwrap();
    v4.protocol = Protocol::Udp;
    v4.direction = Direction::Egress;
    assert_eq!(decode(&encode(&v4)).unwrap(), v4);
}

#[test]
fn trailing_padding_is_ignored() {
    let mut rec = encode(&sample());
    rec.extend_from_slice(&[0, 0, 0]);
    assert_eq!(decode(&rec).unwrap().payload, vec![1, 2, 3, 4, 5]);
}

#[test]
fn rejects_short_and_lying_records() {
    let rec = encode(&sample());
    assert_eq!(decode(&rec[..10]), Err(DecodeError::Short(10)));
    assert_eq!(
        decode(&rec[..HEADER_LEN + 2]),
        Err(DecodeError::PayloadLength {
            claimed: 5,
            present: 2
        })
    );
    let mut bad = rec.clone();
    bad[84] = 9;
    assert_eq!(decode(&bad), Err(DecodeError::Family(9)));
    let mut bad = rec.clone();
    bad[85] = 1;
    assert_eq!(decode(&bad), Err(DecodeError::Protocol(1)));
    let mut bad = rec;
    bad[86] = 2;
    assert_eq!(decode(&bad), Err(DecodeError::Direction(2)));
}

#[test]
fn batch_reuses_slots_and_forgets_on_clear() {
    let mut batch = EventBatch::default();
    let long = PacketEvent {
        payload: vec![9; 300],
        ..sample()
    };
    batch.push_record(&encode(&long)).unwrap();
    batch.push_record(&encode(&sample())).unwrap();
    assert_eq!(batch.events(), &[long, sample()]);
    batch.clear();
    assert!(batch.is_empty());
    // A shorter record in a used slot leaves nothing of the longer one behind.
    let mut short = sample();
    short.payload = vec![7];
    short.owner_comm = "x".into();
    batch.push_record(&encode(&short)).unwrap();
    assert_eq!(batch.events(), &[short]);
    assert!(batch.push_record(&[0; 3]).is_err());
    assert_eq!(batch.len(), 1);
}

#[test]
fn batch_joins_continuations_even_interleaved() {
    let big = |cookie, fill| PacketEvent {
        cookie,
        payload: vec![fill; 2500],
        payload_len: 2500,
        ..sample()
    };
    let (a, b) = (big(1, 0xaa), big(2, 0xbb));
    let (ra, rb) = (encode_chunks(&a, 1024), encode_chunks(&b, 1024));
    assert_eq!(ra.len(), 3);
    let mut batch = EventBatch::default();
    // Two CPUs' records interleave in the ring; each packet's stay in order.
    for rec in [&ra[0], &rb[0], &ra[1], &rb[1], &rb[2], &ra[2]] {
        batch.push_record(rec).unwrap();
    }
    assert_eq!(batch.events(), &[a.clone(), b]);
    assert_eq!(batch.late_chunks(), 0);
    // A continuation whose first record went out with an earlier batch.
    batch.clear();
    batch.push_record(&ra[1]).unwrap();
    assert!(batch.is_empty());
    assert_eq!(batch.late_chunks(), 1);
    // A missing middle chunk leaves the event short, and the rest unjoined.
    batch.clear();
    batch.push_record(&ra[0]).unwrap();
    batch.push_record(&ra[2]).unwrap();
    assert_eq!(batch.events()[0].payload.len(), 1024);
    assert_eq!(batch.late_chunks(), 2);
}

#[test]
fn an_event_caught_before_its_continuations_is_held_back_once() {
    let big = PacketEvent {
        cookie: 9,
        payload: vec![0xcc; 2000],
        payload_len: 2000,
        ..sample()
    };
    let recs = encode_chunks(&big, 1024);
    let (mut ring, mut out) = (EventBatch::default(), EventBatch::default());
    ring.push_record(&encode(&sample())).unwrap();
    ring.push_record(&recs[0]).unwrap();
    ring.push_record(&encode(&sample())).unwrap();
    // A poll now: the first event goes; the open one and the one after it stay.
    std::mem::swap(&mut out, &mut ring);
    out.hold_back_open(&mut ring);
    assert_eq!(out.events(), &[sample()]);
    assert_eq!(ring.len(), 2);
    // Its continuation arrives before the next poll and joins it.
    ring.push_record(&recs[1]).unwrap();
    assert_eq!(ring.events(), &[big, sample()]);
    assert_eq!(ring.late_chunks(), 0);
    // A continuation that never comes: held back once, then handed over short.
    let (mut ring2, mut out2) = (EventBatch::default(), EventBatch::default());
    ring2.push_record(&recs[0]).unwrap();
    std::mem::swap(&mut out2, &mut ring2);
    out2.hold_back_open(&mut ring2);
    assert!(out2.is_empty());
    let mut out3 = EventBatch::default();
    std::mem::swap(&mut out3, &mut ring2);
    out3.hold_back_open(&mut ring2);
    assert_eq!(out3.events()[0].payload.len(), 1024);
    assert!(ring2.is_empty());
}

#[test]
fn local_and_peer_follow_direction() {
    let mut ev = sample();
    assert_eq!(ev.local(), (ev.dst, 53));
    assert_eq!(ev.peer(), (ev.src, 40000));
    ev.direction = Direction::Egress;
    assert_eq!(ev.local(), (ev.src, 40000));
}

#[test]
fn a_poll_has_seen_up_to_its_clock_its_last_record_or_its_first_held_packet() {
    let at = |ts_ns| PacketEvent { ts_ns, ..sample() };
    let batch = |ts: &[u64]| {
        let mut b = EventBatch::default();
        ts.iter().for_each(|&t| b.push(at(t)));
        b
    };
    let none = EventBatch::default();
    // The ring was emptied: everything stamped before the clock was read is handed over.
    assert_eq!(seen_until(1_000, false, &batch(&[10, 20]), &none), 1_000);
    assert_eq!(seen_until(1_000, false, &none, &none), 1_000);
    // A full batch left later records in the ring: only up to the last one handed over.
    assert_eq!(seen_until(1_000, true, &batch(&[10, 20]), &none), 20);
    // A packet held back for its continuations is not seen yet.
    assert_eq!(
        seen_until(1_000, false, &batch(&[10]), &batch(&[30, 25])),
        24
    );
}

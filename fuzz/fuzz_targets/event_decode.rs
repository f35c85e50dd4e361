//! `capture::event::decode` on an arbitrary ring-buffer record (the input), and the
//! `decode(encode(ev)) == ev` round trip of a random valid event derived from it.
//! Seeds: tests/fuzz-corpus/event.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz/oracles.rs"]
mod oracles;

fuzz_target!(|data: &[u8]| {
    oracles::check_event_record(data);
    let mut rng = oracles::Rng::new(oracles::hash(data));
    let ev = oracles::random_event(&mut rng);
    oracles::check_event_roundtrip(&ev, data.len() % 8);
});

//! `StreamReassembler` on an arbitrary DNS-over-TCP byte stream (the input), delivered
//! in order, reordered, cut by capture, with whole segments lost, and as garbage
//! pushes; segmentation and the other choices come from a PRNG seeded with the input's
//! hash, so a crash reproduces from the input alone. Seeds: tests/fuzz-corpus/tcp.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz/oracles.rs"]
mod oracles;

fuzz_target!(|data: &[u8]| {
    let mut rng = oracles::Rng::new(oracles::hash(data));
    oracles::check_tcp_in_order(data, &mut rng);
    oracles::check_tcp_reordered(data, &mut rng);
    oracles::check_tcp_cut(data, &mut rng);
    oracles::check_tcp_lost_segments(data, &mut rng);
    let pushes = oracles::random_pushes(&mut rng, data, 1 + data.len() % 64);
    oracles::check_tcp_garbage(&pushes);
});

//! The properties every fuzz input must satisfy, shared by the `cargo test` mutation
//! fuzzer (tests/fuzz.rs) and the libFuzzer targets (fuzz/fuzz_targets/*.rs), so both
//! check exactly the same things. Every check panics on a violation: a panic is a bug,
//! whether it comes from dnsdoc itself or from an assertion here.
//!
//! Only `std` and `dnsdoc`: the libFuzzer crate includes this file by path.
#![allow(dead_code)]

// One file per target in oracles/. Explicit paths: the libFuzzer crate includes this
// file by #[path], and then a plain `mod dns;` would be looked for next to it.
#[path = "oracles/analyzer.rs"]
mod analyzer;
#[path = "oracles/dns.rs"]
mod dns;
#[path = "oracles/event.rs"]
mod event;
#[path = "oracles/rng.rs"]
mod rng;
#[path = "oracles/rules.rs"]
mod rules;
#[path = "oracles/tcp.rs"]
mod tcp;

// Each libFuzzer target uses only some of them.
#[allow(unused_imports)]
pub use {analyzer::*, dns::*, event::*, rng::*, rules::*, tcp::*};

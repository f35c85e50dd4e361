//! `dns::parse_message` on arbitrary bytes. Seeds: tests/fuzz-corpus/dns.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz/oracles.rs"]
mod oracles;

fuzz_target!(|data: &[u8]| oracles::check_dns(data));

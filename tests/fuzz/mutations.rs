//! Seeds and mutations: the real packets of tests/fuzz-corpus/, byte-level mutations
//! (some DNS-aware), and DNS-over-TCP streams built from them.

use std::path::PathBuf;

use super::oracles::Rng;

/// The seed files of one corpus (tests/fuzz-corpus/<dir>/*.bin), sorted by name.
pub fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(dir);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read seed"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", path.display());
    files
}

pub fn seeds(dir: &str) -> Vec<Vec<u8>> {
    corpus(dir).into_iter().map(|(_, b)| b).collect()
}

/// Values that sit on boundaries of DNS and TCP framing.
pub const INTERESTING_U8: [u8; 12] = [
    0, 1, 2, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xfe, 0xff,
];
const INTERESTING_U16: [u16; 10] = [0, 1, 2, 12, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xc00c, 0xffff];

/// Applies 1 to 4 random mutations, libFuzzer style, some of them DNS-aware
/// (compression pointers, label lengths, 16-bit counts).
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.index(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.index(len);
                data[i] = INTERESTING_U8[rng.index(INTERESTING_U8.len())];
            }
            2 if len > 0 => {
                let i = rng.index(len);
                data[i] = rng.byte();
            }
            3 => {
                let at = rng.index(len + 1);
                let n = 1 + rng.index(8);
                let bytes = rng.bytes(n);
                data.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let a = rng.index(len);
                let b = a + 1 + rng.index((len - a).min(16));
                data.drain(a..b);
            }
            5 if len > 0 => {
                let a = rng.index(len);
                let b = a + 1 + rng.index((len - a).min(64));
                let copy = data[a..b].to_vec();
                let at = rng.index(len + 1);
                data.splice(at..at, copy);
            }
            6 if len > 0 => data.truncate(rng.index(len)),
            7 if len >= 2 => {
                let i = rng.index(len - 1);
                let v = if rng.chance(1, 2) {
                    INTERESTING_U16[rng.index(INTERESTING_U16.len())]
                } else {
                    // A length near what is really there.
                    (len as u16)
                        .wrapping_add(rng.below(5) as u16)
                        .wrapping_sub(2)
                };
                data[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            8 if !pool.is_empty() => {
                let other = &pool[rng.index(pool.len())];
                let at = rng.index(len + 1);
                let from = rng.index(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            9 => {
                // A compression pointer, usually backwards, sometimes to itself or ahead.
                let at = rng.index(len + 1);
                let target = rng.below(len as u64 + 3) as u16;
                data.splice(at..at, (0xc000 | target).to_be_bytes());
            }
            10 if len > 0 => {
                let i = rng.index(len);
                data[i] = [0, 1, 63, 64, 0x80, 0xc0][rng.index(6)];
            }
            _ => {
                let at = rng.index(len + 1);
                let label_len = rng.index(70);
                let mut label = vec![label_len as u8];
                label.extend((0..label_len).map(|_| b"aZ.\\ \x00-9"[rng.index(8)]));
                data.splice(at..at, label);
            }
        }
    }
    data.truncate(4096);
}

/// A DNS-over-TCP byte stream: real streams, framed real messages, edge cases.
pub fn random_stream(rng: &mut Rng, dns: &[Vec<u8>], tcp: &[Vec<u8>]) -> Vec<u8> {
    let mut stream = Vec::new();
    match rng.below(4) {
        0 => stream = tcp[rng.index(tcp.len())].clone(),
        _ => {
            for _ in 0..rng.below(9) {
                let body = match rng.below(8) {
                    0 => Vec::new(),
                    1 => {
                        let n = rng.size(3000);
                        rng.bytes(n)
                    }
                    _ => {
                        let mut m = dns[rng.index(dns.len())].clone();
                        if rng.chance(1, 4) {
                            mutate(rng, &mut m, dns);
                        }
                        m
                    }
                };
                stream.extend_from_slice(&(body.len() as u16).to_be_bytes());
                stream.extend_from_slice(&body);
            }
        }
    }
    match rng.below(6) {
        // A partial message at the end.
        0 => {
            let n = rng.size(50);
            let body = rng.bytes(n);
            stream
                .extend_from_slice(&(body.len() as u16 + 1 + rng.below(100) as u16).to_be_bytes());
            stream.extend_from_slice(&body);
        }
        // Any byte stream frames into something: mutate the framing itself.
        1 => mutate(rng, &mut stream, tcp),
        _ => {}
    }
    stream
}

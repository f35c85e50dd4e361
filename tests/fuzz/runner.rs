//! The runner: cases of one target, each with its own PRNG from the run seed, a hang
//! watchdog, and a failing case's report (seed, case number, input saved).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::oracles::{hash, splitmix, Rng};

const DEFAULT_SEED: u64 = 0xd45d_0c00_f022_0001;

pub fn env_seed() -> u64 {
    match std::env::var("DNSDOC_FUZZ_SEED") {
        Err(_) => DEFAULT_SEED,
        Ok(s) if s == "random" => splitmix(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        ),
        Ok(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        }
        .unwrap_or_else(|e| panic!("DNSDOC_FUZZ_SEED={s:?}: {e}")),
    }
}

pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

/// What the case being run works on, for the failure report and the hang watchdog.
pub struct Case {
    input: Mutex<Vec<u8>>,
}

impl Case {
    /// Records the input of the current case (kept until the next call).
    pub fn input(&self, bytes: &[u8]) {
        let mut i = self.input.lock().unwrap_or_else(|e| e.into_inner());
        i.clear();
        i.extend_from_slice(bytes);
    }
}

/// Runs `cases` cases of one target (`DNSDOC_FUZZ_ITERS` overrides `default_cases`),
/// each with its own PRNG derived from the run seed, the target and the case number.
/// Returns the number of cases run.
pub fn fuzz(target: &str, default_cases: u64, mut f: impl FnMut(&mut Rng, &Case)) -> u64 {
    let seed = env_seed();
    let cases = env_u64("DNSDOC_FUZZ_ITERS").unwrap_or(default_cases);
    let hang = Duration::from_secs(env_u64("DNSDOC_FUZZ_HANG_SECS").unwrap_or(60));
    let case = Arc::new(Case {
        input: Mutex::new(Vec::new()),
    });
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (case, progress, done, target) = (
            case.clone(),
            progress.clone(),
            done.clone(),
            target.to_string(),
        );
        std::thread::spawn(move || {
            let (mut last, mut since) = (u64::MAX, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let now = progress.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > hang {
                    let input = case.input.lock().unwrap_or_else(|e| e.into_inner());
                    eprintln!(
                        "fuzz {target}: case {now} of seed {seed:#x} has run for over {hang:?}: \
                         a hang. Input ({} bytes): {:02x?}",
                        input.len(),
                        &input[..input.len().min(256)]
                    );
                    std::process::abort();
                }
            }
        })
    };
    let start = Instant::now();
    let target_seed = seed ^ hash(target.as_bytes());
    for i in 0..cases {
        progress.store(i, Ordering::Relaxed);
        let mut rng = Rng::new(target_seed ^ splitmix(i));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(&mut rng, &case))) {
            done.store(true, Ordering::Relaxed);
            let input = case.input.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            let file = dir.join(format!("{target}-{seed:x}-{i}.bin"));
            let saved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&file, &input));
            eprintln!(
                "fuzz {target}: case {i} failed (seed {seed:#x}); reproduce with \
                 DNSDOC_FUZZ_SEED={seed:#x} DNSDOC_FUZZ_ITERS={} cargo test --test fuzz {target}\n\
                 input ({} bytes{}): {:02x?}",
                i + 1,
                input.len(),
                match saved {
                    Ok(()) => format!(", saved to {}", file.display()),
                    Err(e) => format!(", not saved: {e}"),
                },
                &input[..input.len().min(256)]
            );
            resume_unwind(panic);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {target}: {cases} cases in {secs:.2} s ({:.0}/s), seed {seed:#x}",
        cases as f64 / secs.max(1e-9)
    );
    cases
}

//! Exit codes (documented in the README) and the errors that choose them.
//!
//! CI jobs branch on these, so they are part of dnsdoc's interface: never renumber.

/// Success; for `doctor`, no finding at or above `--fail-on`.
pub const OK: i32 = 0;
/// `doctor`: WARNING findings and `--fail-on warning`.
pub const WARNING: i32 = 1;
/// `doctor`: CRITICAL findings.
pub const CRITICAL: i32 = 2;
/// Could not collect: no privileges, no BPF support, no cgroup v2.
pub const COLLECT: i32 = 3;
/// Invalid input: unreadable or corrupt snapshot or capture file, invalid rule files.
pub const INPUT: i32 = 4;
/// Any other runtime failure (for example the output file cannot be written).
pub const RUNTIME: i32 = 5;
/// `--require-traffic N`: fewer than N DNS queries were seen, so a quiet node (a
/// capture scoped wrong, DNS going elsewhere) does not pass a CI smoke check silently.
pub const NO_TRAFFIC: i32 = 6;
/// Bad command-line usage (unknown flag, bad value), as in sysexits.h EX_USAGE.
pub const USAGE: i32 = 64;

/// Why the kernel capture could not start. Each maps to exit code [`COLLECT`].
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("insufficient privileges: {0}")]
    NoPrivileges(String),
    #[error("cgroup v2 unavailable: {0}")]
    NoCgroup2(String),
    #[error("this kernel cannot run dnsdoc's probes: {0}")]
    Unsupported(String),
    /// `doctor --coredns-metrics`: the page could not be read or is not CoreDNS's.
    #[error("cannot read CoreDNS metrics from {0}")]
    Metrics(String),
}

/// Bad input data (a snapshot or rule file). Maps to exit code [`INPUT`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Bad usage detected after argument parsing. Maps to exit code [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Picks the exit code for an error by looking for a known kind in its chain.
pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<CollectError>() {
            return COLLECT;
        }
        if cause.is::<InputError>() {
            return INPUT;
        }
        if cause.is::<UsageError>() {
            return USAGE;
        }
    }
    RUNTIME
}

/// The `--require-traffic` check: `None` when at least `required` queries were seen,
/// else the line to print and [`NO_TRAFFIC`].
pub fn require_traffic(seen: u64, required: Option<u64>) -> Option<(String, i32)> {
    let n = required?;
    (seen < n).then(|| {
        (
            format!(
                "dnsdoc: only {seen} DNS quer{} seen, fewer than --require-traffic {n} (exit {NO_TRAFFIC})",
                if seen == 1 { "y" } else { "ies" }
            ),
            NO_TRAFFIC,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn finds_the_kind_under_context() {
        let e = Err::<(), _>(CollectError::NoPrivileges("x".into()))
            .context("starting capture")
            .unwrap_err();
        assert_eq!(code_for(&e), COLLECT);
        let e = anyhow::Error::new(InputError("bad".into())).context("reading snapshot");
        assert_eq!(code_for(&e), INPUT);
        assert_eq!(code_for(&anyhow::anyhow!("disk full")), RUNTIME);
        assert_eq!(code_for(&UsageError("x".into()).into()), USAGE);
    }

    #[test]
    fn require_traffic_fails_below_the_count_only() {
        assert_eq!(require_traffic(0, None), None);
        assert_eq!(require_traffic(10, Some(10)), None);
        let (line, code) = require_traffic(9, Some(10)).unwrap();
        assert_eq!(code, NO_TRAFFIC);
        assert!(line.contains("only 9 DNS queries") && line.contains("--require-traffic 10"));
        assert_ne!(NO_TRAFFIC, RUNTIME);
    }
}

//! Guard rails: chaos only ever aims at an explicit target, loopback unless told
//! otherwise, never at this machine's resolver, within bounded time and rate, and asks
//! before it starts when a person is at the terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::exit::UsageError;

/// Limits for a loopback target.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
pub const MAX_QPS: u32 = 100_000;
pub const MAX_CONCURRENCY: u32 = 4_096;
/// Lower limits when the target is another machine (`--allow-remote`).
pub const REMOTE_MAX_DURATION: Duration = Duration::from_secs(300);
pub const REMOTE_MAX_QPS: u32 = 1_000;
pub const REMOTE_MAX_CONCURRENCY: u32 = 64;

/// The limits that apply to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub duration: Duration,
    pub qps: u32,
    pub concurrency: u32,
}

impl Limits {
    pub fn for_target(loopback: bool) -> Limits {
        if loopback {
            Limits {
                duration: MAX_DURATION,
                qps: MAX_QPS,
                concurrency: MAX_CONCURRENCY,
            }
        } else {
            Limits {
                duration: REMOTE_MAX_DURATION,
                qps: REMOTE_MAX_QPS,
                concurrency: REMOTE_MAX_CONCURRENCY,
            }
        }
    }
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// Parses and vets `--target`. `resolv_conf` is the text of /etc/resolv.conf (or empty).
pub fn check_target(
    arg: Option<&str>,
    allow_remote: bool,
    allow_system_resolver: bool,
    resolv_conf: &str,
) -> anyhow::Result<SocketAddr> {
    let Some(arg) = arg else {
        return Err(usage(
            "--target ADDR:PORT is required: the DNS server to test, e.g. --target \
             127.0.0.1:5353 (chaos never falls back to the system resolver)"
                .into(),
        ));
    };
    let addr: SocketAddr = arg.trim().parse().map_err(|_| {
        usage(format!(
            "--target {arg}: expected an IP address and port such as 127.0.0.1:5353 or \
             [::1]:53 (names are not resolved: that would ask the system resolver)"
        ))
    })?;
    let ip = addr.ip().to_canonical();
    let addr = SocketAddr::new(ip, addr.port());
    if addr.port() == 0 {
        return Err(usage(format!("--target {arg}: port 0 is not a DNS server")));
    }
    let odd = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if odd {
        return Err(usage(format!(
            "--target {arg}: not a unicast address; name the server's address"
        )));
    }
    if !ip.is_loopback() && !allow_remote {
        return Err(usage(format!(
            "--target {arg} is not a loopback address: pass --allow-remote to aim load at \
             another machine (then at most {} qps, {} workers, {})",
            REMOTE_MAX_QPS,
            REMOTE_MAX_CONCURRENCY,
            humantime::format_duration(REMOTE_MAX_DURATION)
        )));
    }
    if !allow_system_resolver && addr.port() == 53 && system_resolvers(resolv_conf).contains(&ip) {
        return Err(usage(format!(
            "--target {arg} is this machine's resolver (in /etc/resolv.conf): every \
             process here depends on it; pass --allow-system-resolver if that is the point"
        )));
    }
    Ok(addr)
}

/// The nameserver addresses listed in a resolv.conf text.
pub fn system_resolvers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        // Strip an IPv6 zone ("fe80::1%eth0").
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect()
}

/// Checks duration, rate and concurrency against the limits.
pub fn check_bounds(
    duration: Duration,
    qps: u32,
    concurrency: u32,
    limits: Limits,
) -> anyhow::Result<()> {
    if duration.is_zero() || duration > limits.duration {
        return Err(usage(format!(
            "--duration {}: must be more than 0 and at most {} for this target",
            humantime::format_duration(duration),
            humantime::format_duration(limits.duration)
        )));
    }
    if qps == 0 || qps > limits.qps {
        return Err(usage(format!(
            "--qps {qps}: must be between 1 and {} for this target",
            limits.qps
        )));
    }
    if concurrency == 0 || concurrency > limits.concurrency {
        return Err(usage(format!(
            "--concurrency {concurrency}: must be between 1 and {} for this target",
            limits.concurrency
        )));
    }
    Ok(())
}

/// Asks on the terminal before starting, unless `yes` or nobody is at a terminal.
/// Returns false when the person said no.
pub fn confirm(question: &str, yes: bool) -> bool {
    if yes || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return true;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Parses `--loss`: a fraction in (0, 1], or a percentage such as "20%".
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| "expected a fraction such as 0.2 or a percentage such as 20%".to_string())?;
    if !(v > 0.0 && v <= 1.0) {
        return Err("must be more than 0 and at most 1 (100%)".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: anyhow::Result<SocketAddr>) -> String {
        let e = r.unwrap_err();
        assert_eq!(crate::exit::code_for(&e), crate::exit::USAGE);
        e.to_string()
    }

    #[test]
    fn target_is_required_and_loopback_by_default() {
        assert!(err(check_target(None, false, false, "")).contains("required"));
        assert_eq!(
            check_target(Some("127.0.0.1:5353"), false, false, "").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            check_target(Some("[::1]:53"), false, false, "").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        // IPv4-mapped loopback is loopback, and is reported as plain IPv4.
        assert_eq!(
            check_target(Some("[::ffff:127.0.0.2]:53"), false, false, "").unwrap(),
            "127.0.0.2:53".parse().unwrap()
        );
        assert!(err(check_target(Some("10.1.2.3:53"), false, false, "")).contains("--allow-remote"));
        assert!(check_target(Some("10.1.2.3:53"), true, false, "").is_ok());
        assert!(err(check_target(Some("localhost:53"), false, false, "")).contains("not resolved"));
        assert!(err(check_target(Some("127.0.0.1"), false, false, "")).contains("port"));
        assert!(err(check_target(Some("127.0.0.1:0"), false, false, "")).contains("port 0"));
        assert!(err(check_target(Some("0.0.0.0:53"), true, false, "")).contains("unicast"));
        assert!(err(check_target(Some("[ff02::1]:53"), true, false, "")).contains("unicast"));
    }

    #[test]
    fn the_system_resolver_is_refused() {
        let conf = "# generated\nsearch example\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\n";
        assert_eq!(
            system_resolvers(conf),
            vec![
                "127.0.0.53".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert!(
            err(check_target(Some("127.0.0.53:53"), false, false, conf)).contains("resolv.conf")
        );
        // Another port on the same address is another server.
        assert!(check_target(Some("127.0.0.53:5353"), false, false, conf).is_ok());
        assert!(check_target(Some("127.0.0.53:53"), false, true, conf).is_ok());
    }

    #[test]
    fn bounds_are_enforced() {
        let local = Limits::for_target(true);
        let remote = Limits::for_target(false);
        let s = Duration::from_secs;
        assert!(check_bounds(s(30), 20_000, 256, local).is_ok());
        assert!(check_bounds(s(601), 1, 1, local).is_err());
        assert!(check_bounds(s(0), 1, 1, local).is_err());
        assert!(check_bounds(s(30), 100_001, 1, local).is_err());
        assert!(check_bounds(s(30), 0, 1, local).is_err());
        assert!(check_bounds(s(30), 1, 0, local).is_err());
        assert!(check_bounds(s(30), 1, 4_097, local).is_err());
        assert!(check_bounds(s(30), 1_001, 1, remote)
            .unwrap_err()
            .to_string()
            .contains("1000"));
        assert!(check_bounds(s(301), 1, 1, remote).is_err());
    }

    #[test]
    fn loss_fractions_parse() {
        assert_eq!(parse_fraction("0.2"), Ok(0.2));
        assert_eq!(parse_fraction("20%"), Ok(0.2));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        assert!(parse_fraction("0").is_err());
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("NaN").is_err());
        assert!(parse_fraction("lots").is_err());
    }
}

//! The node's UDP and IP reassembly error counters (`/proc/net/snmp` and
//! `/proc/net/snmp6`, through `procfs`), read at the start and end of a window so the
//! snapshot holds what was dropped during it. They are the counters of dnsdoc's own
//! network namespace: the node's when dnsdoc runs on the host (or with hostNetwork).

use procfs::FromBufRead;

/// UDP drops and reassembly failures, IPv4 and IPv6 summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpCounters {
    /// Datagrams dropped because a socket's receive buffer was full (`RcvbufErrors`).
    pub rcvbuf_errors: u64,
    /// Datagrams that could not be delivered (`InErrors`: includes `RcvbufErrors`, bad
    /// checksums, ...).
    pub in_errors: u64,
    /// Sends that failed for a full send buffer (`SndbufErrors`).
    pub sndbuf_errors: u64,
    /// IP fragments that could not be reassembled (`Ip:ReasmFails`, `Ip6ReasmFails`):
    /// a large DNS answer over UDP lost.
    pub reasm_fails: u64,
}

impl UdpCounters {
    /// This network namespace's counters; None when /proc/net/snmp cannot be read.
    pub fn read() -> Option<UdpCounters> {
        Self::read_from(
            std::path::Path::new("/proc/net/snmp"),
            std::path::Path::new("/proc/net/snmp6"),
        )
    }

    /// The counters of an snmp and an snmp6 file (the second may be missing: no IPv6).
    pub fn read_from(snmp: &std::path::Path, snmp6: &std::path::Path) -> Option<UdpCounters> {
        let open = |p: &std::path::Path| std::fs::File::open(p).ok().map(std::io::BufReader::new);
        let v4 = procfs::net::Snmp::from_buf_read(open(snmp)?).ok()?;
        let mut c = UdpCounters {
            rcvbuf_errors: v4.udp_rcvbuf_errors,
            in_errors: v4.udp_in_errors,
            sndbuf_errors: v4.udp_sndbuf_errors,
            reasm_fails: v4.ip_reasm_fails,
        };
        if let Some(v6) = open(snmp6).and_then(|r| procfs::net::Snmp6::from_buf_read(r).ok()) {
            c.rcvbuf_errors += v6.udp_rcvbuf_errors;
            c.in_errors += v6.udp_in_errors;
            c.sndbuf_errors += v6.udp_sndbuf_errors;
            c.reasm_fails += v6.ip_reasm_fails;
        }
        Some(c)
    }

    /// What grew from `self` to `later` (a counter that went back counts 0).
    pub fn delta(&self, later: &UdpCounters) -> UdpCounters {
        UdpCounters {
            rcvbuf_errors: later.rcvbuf_errors.saturating_sub(self.rcvbuf_errors),
            in_errors: later.in_errors.saturating_sub(self.in_errors),
            sndbuf_errors: later.sndbuf_errors.saturating_sub(self.sndbuf_errors),
            reasm_fails: later.reasm_fails.saturating_sub(self.reasm_fails),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_live_counters_and_a_fixture() {
        assert!(UdpCounters::read().is_some(), "/proc/net/snmp is readable");
        let dir = tempfile::tempdir().unwrap();
        let live = std::fs::read_to_string("/proc/net/snmp").unwrap();
        // The live file with the Udp and Ip counters this test cares about replaced.
        let mut lines: Vec<String> = live.lines().map(str::to_string).collect();
        for i in (0..lines.len()).step_by(2) {
            let names: Vec<&str> = lines[i].split_whitespace().collect();
            let values: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(j, n)| match *n {
                    "RcvbufErrors" => "7".into(),
                    "InErrors" if names[0] == "Udp:" => "9".into(),
                    "SndbufErrors" => "2".into(),
                    "ReasmFails" => "3".into(),
                    _ if j == 0 => n.to_string(),
                    _ => lines[i + 1].split_whitespace().nth(j).unwrap().to_string(),
                })
                .collect();
            lines[i + 1] = values.join(" ");
        }
        let snmp = dir.path().join("snmp");
        std::fs::write(&snmp, lines.join("\n") + "\n").unwrap();
        let c = UdpCounters::read_from(&snmp, &dir.path().join("no-snmp6")).unwrap();
        assert_eq!(
            c,
            UdpCounters {
                rcvbuf_errors: 7,
                in_errors: 9,
                sndbuf_errors: 2,
                reasm_fails: 3,
            }
        );
        let later = UdpCounters {
            rcvbuf_errors: 10,
            ..c
        };
        assert_eq!(c.delta(&later).rcvbuf_errors, 3);
        assert_eq!(later.delta(&c).rcvbuf_errors, 0, "a reset counts nothing");
    }
}

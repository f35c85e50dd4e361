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
    /// conntrack's `insert_failed` and `drop`, summed over CPUs; None without conntrack
    /// (no /proc/net/stat/nf_conntrack).
    pub conntrack: Option<Conntrack>,
}

/// conntrack statistics that explain lost UDP queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conntrack {
    /// Entries that could not be inserted: two packets of one new UDP flow raced (A and
    /// AAAA sent together), and the loser was dropped.
    pub insert_failed: u64,
    pub drop: u64,
}

impl Conntrack {
    /// Parses /proc/net/stat/nf_conntrack: a header of names, then one row of hex
    /// numbers per CPU.
    pub fn parse(text: &str) -> Option<Conntrack> {
        let mut lines = text.lines();
        let names: Vec<&str> = lines.next()?.split_whitespace().collect();
        let col = |n: &str| names.iter().position(|x| *x == n);
        let (fi, di) = (col("insert_failed")?, col("drop")?);
        let mut c = Conntrack::default();
        for line in lines {
            let v: Vec<&str> = line.split_whitespace().collect();
            let hex = |i: usize| v.get(i).and_then(|x| u64::from_str_radix(x, 16).ok());
            c.insert_failed += hex(fi)?;
            c.drop += hex(di)?;
        }
        Some(c)
    }
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
        let conntrack = snmp
            .parent()
            .map(|net| net.join("stat/nf_conntrack"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| Conntrack::parse(&t));
        let mut c = UdpCounters {
            rcvbuf_errors: v4.udp_rcvbuf_errors,
            in_errors: v4.udp_in_errors,
            sndbuf_errors: v4.udp_sndbuf_errors,
            reasm_fails: v4.ip_reasm_fails,
            conntrack,
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
            conntrack: match (self.conntrack, later.conntrack) {
                (Some(a), Some(b)) => Some(Conntrack {
                    insert_failed: b.insert_failed.saturating_sub(a.insert_failed),
                    drop: b.drop.saturating_sub(a.drop),
                }),
                _ => None,
            },
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
                conntrack: None,
            }
        );
        let later = UdpCounters {
            rcvbuf_errors: 10,
            ..c
        };
        assert_eq!(c.delta(&later).rcvbuf_errors, 3);
        assert_eq!(later.delta(&c).rcvbuf_errors, 0, "a reset counts nothing");
    }

    #[test]
    fn conntrack_stats_sum_every_cpu() {
        let text = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
            00000001  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000a 00000002 00000000 00000000  00000000 00000000 00000000 00000000\n\
            00000001  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n";
        assert_eq!(
            Conntrack::parse(text),
            Some(Conntrack {
                insert_failed: 11,
                drop: 2
            })
        );
        assert_eq!(Conntrack::parse("entries found\n1 2\n"), None);
    }
}

//! Lookups, not queries: real glibc (getent) in a pod's cgroup and a private mount
//! namespace with a bind-mounted resolv.conf (search default.svc.cluster.local
//! svc.cluster.local cluster.local, ndots:5) against a loopback dnsmasq serving the
//! cluster zone. The machine's /etc/resolv.conf is never touched.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::kube::*;
use common::*;
use dnsdoc::snapshot::ProcessStats;

/// A loopback address of its own for a DNS server on port 53 (glibc's resolv.conf
/// has no port), from the test's pid.
fn own_loopback(salt: u32) -> String {
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        100 + salt,
        (pid >> 8) & 0xff,
        (pid & 0xff).max(2)
    )
}

/// dnsmasq on ADDR:53 serving the cluster zone (kubernetes.default.svc.cluster.local)
/// and `api.example.test`, both with A and AAAA; every other name under cluster.local and test is NXDOMAIN.
fn start_cluster_dns(cg: &Path, addr: &str) -> Guard {
    let listen = format!("--listen-address={addr}");
    let child = command_in_cgroup(
        cg,
        "dnsmasq",
        &[
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            &listen,
            "--port=53",
            "--local=/cluster.local/",
            "--local=/test/",
            "--address=/kubernetes.default.svc.cluster.local/10.96.0.1",
            "--address=/kubernetes.default.svc.cluster.local/fd00::96:1",
            "--address=/api.example.test/10.0.0.9",
            "--address=/api.example.test/fd00::9",
            "--pid-file=",
            "--user=root",
            "--log-facility=/dev/null",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn dnsmasq");
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((addr, 53)).is_err() {
        assert!(
            Instant::now() < deadline,
            "dnsmasq did not listen on {addr}:53"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    guard
}

/// Runs `script` with sh in cgroup `dir`, in a private mount namespace where
/// /etc/resolv.conf is `resolv` (bind mount; the machine's file is not touched).
fn in_private_resolv(dir: &Path, resolv: &str, script: &str) {
    let inner = format!("mount --bind {resolv} /etc/resolv.conf && {script}");
    let out = command_in_cgroup(
        dir,
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &inner],
    )
    .output()
    .expect("unshare");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ndots_search_chains_are_lookups_per_process_and_pod() {
    if !require_bpf("ndots_search_chains_are_lookups_per_process_and_pod") {
        return;
    }
    let node = node("kube-ndots", 3);
    let uid_web = &node.uids[0];
    let addr = own_loopback(0);
    let _dns = start_cluster_dns(&node.cg.path, &addr);
    let conf = node.root.write(
        "resolv.conf",
        &format!(
            "nameserver {addr}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n"
        ),
    );
    let rule = builtin_rule("dns_search_path_amplification");
    let n = rule.min_samples.max(1);
    let watch = watch_node(&node, 53, &[]);
    // The web pod resolves an outside name n times: three NXDOMAIN expansions (A and
    // AAAA each) before the name itself answers. Then one in-cluster name.
    in_private_resolv(
        &node.pods.web,
        &conf,
        &format!(
            "for i in $(seq {n}); do getent ahosts api.example.test > /dev/null || exit 1; done; getent ahosts kubernetes.default > /dev/null"
        ),
    );
    let s = watch.stop().snapshot;

    let pod = s
        .pods
        .iter()
        .find(|p| p.uid == *uid_web)
        .expect("web pod row");
    let l = &pod.lookups;
    assert_eq!(l.lookups, n + 1, "{l:#?}");
    assert_eq!(
        l.queries, pod.counts.queries,
        "every query belongs to a lookup"
    );
    assert_eq!(l.expanded, n + 1);
    assert_eq!(l.expansion_nxdomain, 6 * n + 2, "{l:#?}");
    assert_eq!(l.unanswered, 0);
    assert!(l.queries_per_lookup > 6.0, "{l:#?}");
    let tried: Vec<&str> = l.suffixes.iter().map(|s| s.suffix.as_str()).collect();
    for suffix in [
        "default.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ] {
        assert!(tried.contains(&suffix), "{tried:?}");
    }
    assert!(l.time_lost_mean_ms > 0.0 && l.time_lost_max_ms >= l.time_lost_mean_ms);

    // Each getent is a process of its own: 8 queries for its one lookup.
    let getents: Vec<&ProcessStats> = s
        .processes
        .iter()
        .filter(|p| p.comm == "getent" && p.lookups.queries == 8)
        .collect();
    assert_eq!(getents.len() as u64, n, "{:#?}", s.processes);
    for g in getents {
        assert_eq!(g.lookups.lookups, 1);
        assert_eq!(g.lookups.queries_per_lookup, 8.0);
        assert_eq!(g.pod.as_ref().unwrap().uid, *uid_web);
    }

    let top = &s.lookups.by_name[0];
    assert_eq!(top.name, "api.example.test.");
    assert_eq!(top.lookups.lookups, n);
    assert_eq!(top.by, [format!("shop/web-{}", node.tag)]);
    assert!(s
        .lookups
        .by_name
        .iter()
        .any(|r| r.name == "kubernetes.default." && r.lookups.queries_per_lookup >= 2.0));
    assert_eq!(s.lookups.stats.lookups, n + 1);

    // The summary shows the pods and the lookups.
    let text = dnsdoc::render::summary::render(&s);
    assert!(text.contains("\nBy pod\n"), "{text}");
    assert!(text.contains(&format!("shop/web-{}", node.tag)), "{text}");
    assert!(text.contains("queries per lookup"), "{text}");

    // The doctor names the pod, the name and the amplification.
    let f = doctor_finding(&s, "dns_search_path_amplification");
    let expected = rule.classify(s.lookups.stats.queries_per_lookup).unwrap().0;
    assert_eq!(f["severity"], serde_json::to_value(expected).unwrap());
    let evidence = f["evidence"].to_string();
    assert!(
        evidence.contains(&format!("shop/web-{}", node.tag)),
        "{evidence}"
    );
    assert!(evidence.contains("api.example.test."), "{evidence}");
    let fix = f["remediation"].to_string();
    for hint in ["trailing dot", "ndots", "NodeLocal DNSCache"] {
        assert!(fix.contains(hint), "{fix}");
    }
}

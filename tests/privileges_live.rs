//! The least privileges that work, tried as a new user would: `nobody` with exactly
//! CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (ambient, via setpriv) watches real traffic;
//! with any one of them missing, one line names it and the exit code is 3.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// What this kernel needs (before 5.11 also sys_resource: see
/// `dnsdoc::host::MEMLOCK_CAPABILITY`), as setpriv spells it.
fn caps() -> Vec<String> {
    dnsdoc::host::probe_capabilities()
        .iter()
        .map(|(_, n)| n.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect()
}

/// `setpriv` to nobody with exactly `caps` (inheritable and ambient), running dnsdoc.
fn as_nobody(caps: &[&str], args: &[String]) -> Command {
    let set = caps
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if !caps.is_empty() {
        c.arg(format!("--inh-caps={set}"))
            .arg(format!("--ambient-caps={set}"));
    }
    c.arg(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(args)
        .env("NO_COLOR", "1");
    c
}

#[test]
fn nobody_with_exactly_bpf_net_admin_and_perfmon_watches_real_traffic() {
    if !require_bpf("nobody_with_exactly_bpf_net_admin_and_perfmon_watches_real_traffic") {
        return;
    }
    let cg = TestCgroup::new("caps");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let args: Vec<String> = [
        "watch",
        "--duration",
        "30s",
        "--format",
        "json",
        "--no-progress",
        "--port",
        &port.to_string(),
        "--cgroup",
        cg.path.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let all = caps();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let watch = spawn_attached(as_nobody(&all, &args));
    // It really runs as nobody, with no capability beyond those.
    let status = std::fs::read_to_string(format!("/proc/{}/status", watch.pid())).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    assert!(field("Uid:").starts_with("65534"), "{status}");
    let eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    // CAP_NET_ADMIN 12, CAP_PERFMON 38, CAP_BPF 39; CAP_SYS_RESOURCE 24 before 5.11.
    let memlock = if dnsdoc::host::kernel_charges_memlock() {
        1 << 24
    } else {
        0
    };
    assert_eq!(eff, 1 << 12 | 1 << 38 | 1 << 39 | memlock, "{status}");

    let port_s = port.to_string();
    for name in ["a.good.test", "b.good.test", "missing.test"] {
        let (_, out) = cg.run(
            "dig",
            &["@127.0.0.1", "-p", &port_s, name, "+tries=1", "+timeout=2"],
        );
        assert!(dig_status(&out).is_some(), "dig {name}");
    }
    let (code, stdout, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    let snap: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(snap["totals"]["queries"], 3, "{stdout}");
    assert_eq!(snap["totals"]["rcodes"]["NXDOMAIN"], 1);
    assert_eq!(snap["server_side"]["queries"], 3);
    assert_eq!(snap["capture"]["dropped"]["total"], 0);
    let procs: Vec<&str> = snap["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["comm"].as_str().unwrap())
        .collect();
    assert!(procs.iter().all(|&c| c == "dig"), "attributed: {procs:?}");
    let degraded = snap["capture"]["degraded"].to_string();
    assert!(degraded.contains("CAP_SYS_PTRACE"), "{degraded}");
    assert_eq!(cg.attached_programs(), 0);
}

#[test]
fn each_missing_capability_is_named_in_one_line() {
    if !require_root("each_missing_capability_is_named_in_one_line") {
        return;
    }
    let all = caps();
    for missing in all.iter().map(String::as_str) {
        let caps: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|&c| c != missing)
            .collect();
        let out = as_nobody(&caps, &["watch".into(), "--duration".into(), "1s".into()])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let name = format!("needs CAP_{}", missing.to_ascii_uppercase());
        assert!(err.contains(&name), "without {missing}: {err}");
    }
}

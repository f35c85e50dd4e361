//! What dnsdoc says about the kernel it runs on. Runs natively and on every kernel of
//! the matrix (scripts/test-kernels.sh), where the answers differ.

mod common;

use std::process::Command;

use common::*;

fn dnsdoc(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run dnsdoc");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn probed_features() -> serde_json::Value {
    let (code, out, err) = dnsdoc(&["version", "--format", "json"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("version JSON");
    assert_eq!(v["probed"], true, "{v}");
    v
}

#[test]
fn version_reports_the_probed_kernel() {
    if !require_bpf("version_reports_the_probed_kernel") {
        return;
    }
    let v = probed_features();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["kernel"], release.trim());
    let f = &v["features"];
    assert_eq!(
        f["ringbuf"], true,
        "every supported kernel has ring buffers: {v}"
    );
    assert_eq!(f["sock_addr_storage"], true, "{v}");
    // Whatever the kernel lacks is said, in the same words the snapshot uses.
    let degraded = v["degraded"].as_array().unwrap();
    assert_eq!(f["skb_current_task"] == false, !degraded.is_empty(), "{v}");
    let (_, table, _) = dnsdoc(&["version"], &[]);
    assert!(table.contains(release.trim()), "{table}");
    assert!(table.contains("current task in cgroup_skb"), "{table}");
}

/// A verifier rejection is one line naming the kernel, the program and the verifier's
/// reason, with the full log in a file, exit 3; never "insufficient privileges". Forced
/// by claiming a helper the kernel lacks; where the kernel has it, the claim is true
/// and the window must run.
#[test]
fn verifier_rejection_is_one_honest_line() {
    if !require_bpf("verifier_rejection_is_one_honest_line") {
        return;
    }
    let has_task = probed_features()["features"]["skb_current_task"] == true;
    let cg = TestCgroup::new("verifier");
    let cg_path = cg.path.to_str().unwrap();
    let (code, _, err) = dnsdoc(
        &[
            "watch",
            "--duration",
            "200ms",
            "--no-progress",
            "--cgroup",
            cg_path,
        ],
        &[("DNSDOC_ASSUME_SKB_CURRENT_TASK", "1")],
    );
    if has_task {
        assert_eq!(
            code,
            Some(0),
            "the kernel has the helper, the window runs: {err}"
        );
        return;
    }
    assert_eq!(code, Some(3), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("dnsdoc: error"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    let line = lines[0];
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(line.contains(release.trim()), "{line}");
    assert!(line.contains("dns_egress"), "{line}");
    // 5.10 and 6.1 refuse pid_tgid first; 6.12 allows it but refuses comm.
    assert!(line.contains("bpf_get_current_"), "{line}");
    assert!(!line.contains("privilege"), "{line}");
    assert!(
        !err.contains("BEGIN PROG LOAD LOG"),
        "no raw verifier log on stderr: {err}"
    );
    let log = line
        .split("full verifier log in ")
        .nth(1)
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no log path in: {line}"));
    let text = std::fs::read_to_string(log).expect("verifier log file");
    assert!(text.contains("BEGIN PROG LOAD LOG"), "{text}");
    let _ = std::fs::remove_file(log);
}

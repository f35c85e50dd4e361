//! Kubernetes pods on a node without the API server: real cgroups in kubelet's exact
//! layouts (systemd and cgroupfs drivers) under a test cgroup, real dig moved into
//! them, names from a fixture `/var/log/pods` and containerd tree (`--node-root`).

mod common;

use std::process::Command;

use common::kube::*;
use common::*;
use dnsdoc::snapshot::Snapshot;

#[test]
fn pods_of_both_cgroup_drivers_are_attributed_and_named() {
    if !require_bpf("pods_of_both_cgroup_drivers_are_attributed_and_named") {
        return;
    }
    let node = node("kube-attr", 1);
    let [uid_web, uid_dns, uid_batch] = &node.uids;
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&node.cg, port, &[]);
    let watch = watch_node(&node, port, &[]);
    let web = dig_in(&node.pods.web, port);
    let dns = dig_in(&node.pods.dns, port);
    let batch = dig_in(&node.pods.batch, port);
    let conmon = dig_in(&node.pods.conmon, port);
    let host = dig_in(&node.cg.path, port);
    let s = watch.stop().snapshot;

    let p = row(&s, web).pod.as_ref().expect("web pod");
    assert_eq!(
        (p.namespace.as_str(), p.uid.as_str()),
        ("shop", uid_web.as_str())
    );
    assert_eq!(p.pod, format!("web-{}", node.tag));
    assert_eq!(
        p.container.as_deref(),
        Some("app"),
        "from the containerd bundle"
    );
    assert_eq!(p.container_id, Some(hex_id('a')));
    assert_eq!(p.runtime.as_deref(), Some("containerd"));

    let p = row(&s, dns).pod.as_ref().expect("dns pod");
    assert_eq!(
        (p.namespace.as_str(), p.pod.clone()),
        ("kube-system", format!("dns-{}", node.tag))
    );
    assert_eq!(p.runtime.as_deref(), Some("crio"));
    assert_eq!(p.container, None, "CRI-O: no bundle names the container");

    let p = row(&s, batch).pod.as_ref().expect("batch pod");
    assert_eq!(
        (p.uid.as_str(), p.pod.as_str()),
        (uid_batch.as_str(), ""),
        "unnamed pod"
    );
    assert_eq!(p.runtime.as_deref(), Some("docker"));

    assert_eq!(row(&s, conmon).pod, None, "a conmon scope is no container");
    assert_eq!(row(&s, host).pod, None, "a host process");

    assert_eq!(s.pods.len(), 3, "{:#?}", s.pods);
    for (uid, qos) in [
        (uid_web, "burstable"),
        (uid_dns, "guaranteed"),
        (uid_batch, "guaranteed"),
    ] {
        let pod = s.pods.iter().find(|p| p.uid == *uid).expect("pod row");
        assert_eq!(pod.qos, qos, "{uid}");
        assert_eq!(pod.counts.queries, 3, "{uid}: one dig, three names");
        assert_eq!(pod.counts.rcodes.NOERROR, 3);
        assert_eq!(pod.latency.samples, 3);
        assert_eq!(pod.processes, 1);
    }
    let web_row = s.pods.iter().find(|p| p.uid == *uid_web).unwrap();
    assert_eq!(web_row.containers, ["app"]);
    assert_eq!(s.totals.counts.queries, 15, "pods and host processes alike");
}

#[test]
fn namespace_and_pod_scope_the_window() {
    if !require_bpf("namespace_and_pod_scope_the_window") {
        return;
    }
    let node = node("kube-scope", 2);
    let uid_web = &node.uids[0];
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&node.cg, port, &[]);
    let pod_name = format!("web-{}", node.tag);
    let root = node.root.path().to_str().unwrap();
    let dir = TempDir::new("kube-scope");
    let out = dir.path().join("s.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    cmd.args([
        "watch",
        "--namespace",
        "shop",
        "--pod",
        &pod_name,
        "--node-root",
        root,
        "--port",
        &port.to_string(),
        "--duration",
        "60s",
        "--no-progress",
        "--format",
        "json",
        "-o",
    ])
    .arg(&out);
    let watch = spawn_attached(cmd);
    let web = dig_in(&node.pods.web, port);
    dig_in(&node.pods.dns, port);
    dig_in(&node.cg.path, port);
    let (code, _, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    let s = Snapshot::read(&out).unwrap();
    assert!(
        s.capture.cgroup.ends_with(&format!(
            "kubepods-burstable-pod{}.slice",
            uid_web.replace('-', "_")
        )),
        "attached to the pod's cgroup: {}",
        s.capture.cgroup
    );
    assert_eq!(
        s.totals.counts.queries, 3,
        "only the web pod's dig: {:#?}",
        s.processes
    );
    assert_eq!(s.processes.len(), 1);
    assert_eq!(s.processes[0].pid, web);
    assert_eq!(s.pods.len(), 1);
    assert_eq!(s.pods[0].pod, pod_name);

    // No pod matches: one line, usage exit code, and what is there.
    let o = run_dnsdoc(&[
        "watch",
        "--namespace",
        "no-such-namespace",
        "--node-root",
        root,
        "--duration",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(64));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--namespace no-such-namespace: no pod on this node matches")
            && err.contains(&format!("shop/{pod_name}")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

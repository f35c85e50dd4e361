//! deploy/: the DaemonSet validates against the Kubernetes schema (kubernetes-validate,
//! from PyPI, installed by scripts/install-deps.sh), its privileges are exactly what
//! dnsdoc needs and they suffice (dnsdoc serve run as root with only the manifest's
//! capabilities, no new privileges, watching real traffic), and the scrape config plus
//! the exported alerts pass `promtool check config`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn tools_venv() -> PathBuf {
    PathBuf::from(
        std::env::var_os("DNSDOC_TOOLS_VENV").unwrap_or_else(|| "/opt/dnsdoc-tools".into()),
    )
}

/// The manifest's documents as JSON (PyYAML from the tools venv reads the YAML).
fn manifest() -> Vec<serde_json::Value> {
    let py = tools_venv().join("bin/python");
    let out = Command::new(&py)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(repo("deploy/daemonset.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): run scripts/install-deps.sh", py.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn daemonset() -> serde_json::Value {
    manifest()
        .into_iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet")
}

#[test]
fn the_daemonset_validates_against_the_kubernetes_schema() {
    let tool = tools_venv().join("bin/kubernetes-validate");
    let out = Command::new(&tool)
        .arg("--strict")
        .arg(repo("deploy/daemonset.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): run scripts/install-deps.sh", tool.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("daemonset/dnsdoc"), "{text}");
}

#[test]
fn the_daemonset_asks_for_least_privileges() {
    let ds = daemonset();
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"], true, "process names need the node's /proc");
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let mut added: Vec<String> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("CAP_{}", v.as_str().unwrap()))
        .collect();
    added.sort();
    // What the probes need on any kernel (CAP_SYS_RESOURCE for those before 5.11, which
    // charge BPF maps to RLIMIT_MEMLOCK), plus CAP_SYS_PTRACE for naming silent
    // sockets: no more.
    let mut expected: Vec<String> = dnsdoc::host::PROBE_CAPABILITIES
        .iter()
        .chain([&dnsdoc::host::MEMLOCK_CAPABILITY])
        .map(|(_, n)| n.to_string())
        .chain(["CAP_SYS_PTRACE".to_string()])
        .collect();
    expected.sort();
    assert_eq!(added, expected);
    let mounts = c["volumeMounts"].to_string();
    assert!(mounts.contains("/sys/fs/cgroup"), "{mounts}");
    // The args are a valid `dnsdoc serve` command line.
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().replace("$(NODE_IP)", "10.0.0.7"))
        .collect();
    let mut argv = vec!["dnsdoc".to_string()];
    argv.extend(args);
    assert!(
        matches!(
            <dnsdoc::cli::Cli as clap::Parser>::try_parse_from(&argv).map(|c| c.command),
            Ok(dnsdoc::cli::Command::Serve(_))
        ),
        "{argv:?}"
    );
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

#[test]
fn dnsdoc_serve_runs_with_only_the_daemonsets_capabilities() {
    if !require_bpf("dnsdoc_serve_runs_with_only_the_daemonsets_capabilities") {
        return;
    }
    let ds = daemonset();
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    let caps: Vec<String> = c["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("+{}", v.as_str().unwrap().to_ascii_lowercase()))
        .collect();
    let cg = TestCgroup::new("deploy");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let http = free_port();
    // The pod's view: the node's cgroup2 hierarchy mounted a second time (here in a
    // mount namespace of dnsdoc's own, at a temporary directory standing for
    // /host/sys/fs/cgroup), and the manifest's --cgroup below it: the test's cgroup.
    let host = TempDir::new("deploy-host-cgroup");
    let mount = dnsdoc::host::cgroup2_mount().unwrap();
    let relative = cg.path.strip_prefix(&mount).unwrap();
    let mut args: Vec<String> = Vec::new();
    for a in c["args"].as_array().unwrap() {
        let a = a.as_str().unwrap();
        if let Some(dir) = a.strip_prefix("--cgroup=") {
            assert_eq!(dir, "/host/sys/fs/cgroup", "the manifest's mount");
            args.push(format!("--cgroup={}", host.path().join(relative).display()));
        } else if !a.starts_with("--listen") && !a.starts_with("--interval") {
            args.push(a.to_string());
        }
    }
    args.extend([
        format!("--listen=127.0.0.1:{http}"),
        "--interval=1s".into(),
        format!("--port={port}"),
    ]);
    // Root (as the manifest's runAsUser: 0) with every capability dropped but the
    // manifest's, and no new privileges (allowPrivilegeEscalation: false).
    let script = format!(
        "mount -t cgroup2 none \"$0\" && exec setpriv --bounding-set=-all,{} --inh-caps=-all --no-new-privs \"$@\"",
        caps.join(",")
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(host.path())
        .arg(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(&args);
    let serve = spawn_attached(cmd);
    assert!(
        cg.attached_programs() > 0,
        "attached through the second mount"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.pid())).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string();
    // Exactly the manifest's capabilities, by number.
    let bit = |name: &str| match name {
        "+net_admin" => 12,
        "+sys_ptrace" => 19,
        "+sys_resource" => 24,
        "+perfmon" => 38,
        "+bpf" => 39,
        other => panic!("the test does not know {other}'s number"),
    };
    // What the test's own bounding set allows of them (some sandboxes run root
    // without CAP_SYS_RESOURCE; the kernel matrix's guests have it).
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own_bnd = own
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let mask = caps.iter().fold(0u64, |m, c| m | 1 << bit(c)) & own_bnd;
    assert_eq!(u64::from_str_radix(&eff, 16).unwrap(), mask, "{status}");
    let port_s = port.to_string();
    for name in ["a.good.test", "missing.test"] {
        let (_, out) = cg.run(
            "dig",
            &["@127.0.0.1", "-p", &port_s, name, "+tries=1", "+timeout=2"],
        );
        assert!(dig_status(&out).is_some());
    }
    let want = "dnsdoc_responses_total{rcode=\"NXDOMAIN\"} 1";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(http, "/metrics").unwrap_or_default();
        if metrics.contains(want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{want} never appeared:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http_get(http, "/healthz").unwrap().starts_with("ok"));
    serve.signal("-TERM");
    let (code, _, stderr) = serve.wait();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(cg.attached_programs(), 0);
}

#[test]
fn the_scrape_config_and_the_exported_alerts_pass_promtool_check_config() {
    let dir = TempDir::new("deploy-prom");
    let alerts = dir.path().join("dnsdoc-alerts.yml");
    let out = run_dnsdoc(&["rules", "export", "-o", alerts.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scrape = std::fs::read_to_string(repo("deploy/prometheus-scrape.yaml")).unwrap();
    // It keeps the DaemonSet's pods by their label and port name.
    let ds = daemonset();
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "dnsdoc");
    assert!(
        scrape.contains("__meta_kubernetes_pod_label_app_kubernetes_io_name]\n      regex: dnsdoc")
    );
    let port = &ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"];
    assert!(scrape.contains(&format!(
        "__meta_kubernetes_pod_container_port_name]\n      regex: {}",
        port.as_str().unwrap()
    )));
    // Debian's Prometheus is built without Kubernetes service discovery: promtool
    // checks everything else, with the discovery block swapped for a static target.
    let sd =
        "  kubernetes_sd_configs:\n    - role: pod\n      namespaces:\n        names: [dnsdoc]\n";
    assert!(scrape.contains(sd), "{scrape}");
    let scrape = scrape.replace(sd, "  static_configs:\n    - targets: ['127.0.0.1:9953']\n");
    let indented: String = scrape.lines().map(|l| format!("  {l}\n")).collect();
    let config = dir.write(
        "prometheus.yml",
        &format!(
            "rule_files: [{:?}]\nscrape_configs:\n{indented}",
            alerts.to_str().unwrap()
        ),
    );
    let out = Command::new("promtool")
        .args(["check", "config", &config])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("promtool (apt-get install prometheus)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

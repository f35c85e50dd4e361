//! Kubernetes fixtures for the live tests: pod cgroups in kubelet's exact layouts
//! (systemd and cgroupfs drivers) below a test cgroup, and a node root with kubelet's
//! log directories and a containerd bundle, for `--node-root`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::*;
use dnsdoc::snapshot::{ProcessStats, Snapshot};

/// Pod UIDs unique to this test process and `test` (tests run in parallel and each
/// sees every pod cgroup on the machine).
pub fn uids(test: u32) -> [String; 3] {
    let tail = format!("{:08x}{test:04x}", std::process::id());
    [
        "3c1a7b52-8d2e-4f8e-9a51-",
        "7f00e1c2-1111-4a4a-8b8b-",
        "0d9e8f7a-2222-4b4b-9c9c-",
    ]
    .map(|head| format!("{head}{tail}"))
}

pub fn hex_id(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

/// A node's pods under `root` (a test cgroup): one per layout the issue lists.
pub struct Pods {
    /// systemd driver, Burstable, containerd: named by logs and a containerd bundle.
    pub web: PathBuf,
    /// cgroupfs driver, Guaranteed, CRI-O: named by its log directory.
    pub dns: PathBuf,
    /// systemd driver, Guaranteed, Docker, nested `/container`: no names on the node.
    pub batch: PathBuf,
    /// CRI-O's conmon scope inside the batch pod: not a container.
    pub conmon: PathBuf,
}

fn make_pods(root: &Path, [web, dns, batch]: &[String; 3]) -> Pods {
    let u = |uid: &str| uid.replace('-', "_");
    let p = Pods {
        web: root.join(format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
            u(web),
            hex_id('a')
        )),
        dns: root.join(format!("kubepods/pod{dns}/crio-{}", hex_id('b'))),
        batch: root.join(format!(
            "kubepods.slice/kubepods-pod{}.slice/docker-{}.scope/container",
            u(batch),
            hex_id('c')
        )),
        conmon: root.join(format!(
            "kubepods.slice/kubepods-pod{}.slice/crio-conmon-{}.scope",
            u(batch),
            hex_id('d')
        )),
    };
    for d in [&p.web, &p.dns, &p.batch, &p.conmon] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
    }
    p
}

/// Removes the nested cgroups (TestCgroup removes only its own directory).
fn remove_tree(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The test cgroup with the pods below it, all removed on drop.
pub struct Node {
    pub uids: [String; 3],
    pub cg: TestCgroup,
    pub pods: Pods,
    pub root: TempDir,
    pub tag: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        for top in ["kubepods.slice", "kubepods"] {
            remove_tree(&self.cg.path.join(top));
        }
    }
}

/// The node: cgroups, and the node root with kubelet's log directories and a
/// containerd bundle. Pod names carry `tag` so parallel tests never match each other.
pub fn node(tag: &str, test: u32) -> Node {
    let cg = TestCgroup::new(tag);
    let uids = uids(test);
    let pods = make_pods(&cg.path, &uids);
    let [uid_web, uid_dns, _] = &uids;
    let root = TempDir::new("node-root");
    let tag = format!("{tag}{}", std::process::id());
    let logs = root.path().join("var/log/pods");
    std::fs::create_dir_all(logs.join(format!("shop_web-{tag}_{uid_web}/app"))).unwrap();
    std::fs::create_dir_all(logs.join(format!("kube-system_dns-{tag}_{uid_dns}/coredns"))).unwrap();
    let bundle = root
        .path()
        .join("run/containerd/io.containerd.runtime.v2.task/k8s.io")
        .join(hex_id('a'));
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        format!(
            r#"{{"ociVersion":"1.1.0","annotations":{{
              "io.kubernetes.cri.container-type":"container",
              "io.kubernetes.cri.sandbox-name":"web-{tag}",
              "io.kubernetes.cri.sandbox-namespace":"shop",
              "io.kubernetes.cri.container-name":"app"}}}}"#
        ),
    )
    .unwrap();
    Node {
        uids,
        cg,
        pods,
        root,
        tag,
    }
}

/// Runs dig for three names inside cgroup `dir`; returns its pid.
pub fn dig_in(dir: &Path, port: u16) -> u32 {
    let port = port.to_string();
    let child = command_in_cgroup(
        dir,
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &port,
            "+tries=1",
            "+timeout=2",
            "a.good.test",
            "b.good.test",
            "c.good.test",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn dig");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dig failed");
    pid
}

pub fn row(s: &Snapshot, pid: u32) -> &ProcessStats {
    s.processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("no process row for pid {pid}: {:#?}", s.processes))
}

pub fn watch_node(node: &Node, port: u16, extra: &[&str]) -> Watch {
    let mut args = vec!["--node-root", node.root.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    start_watch(&node.cg, &[port], &args)
}

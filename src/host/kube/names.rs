//! Pod and container names from the node's own files, when present (no API server):
//!
//! - `/var/log/pods/<namespace>_<pod>_<uid>/<container>/`: kubelet's log directories
//!   name every pod on the node by UID, and its containers;
//! - containerd's task bundles, `/run/containerd/io.containerd.runtime.v2.task/k8s.io/
//!   <container id>/config.json`, whose annotations `io.kubernetes.cri.sandbox-name`,
//!   `io.kubernetes.cri.sandbox-namespace` and `io.kubernetes.cri.container-name` name
//!   a container by its id.
//!
//! Both are read under a node root (`/` on the node, `/host` in a DaemonSet that mounts
//! the node's root there, a fixture tree in tests). Unreadable entries are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where kubelet writes pod logs, under the node root.
pub const POD_LOGS: &str = "var/log/pods";
/// containerd's CRI task bundles, under the node root.
pub const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task/k8s.io";

/// A pod's names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodNames {
    pub namespace: String,
    pub pod: String,
    /// Container names kubelet has log directories for, sorted.
    pub containers: Vec<String>,
}

/// A container's names, from its task bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerNames {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Everything the node says about its pods' names.
#[derive(Debug, Clone, Default)]
pub struct NodeNames {
    /// Pod UID -> names.
    pub pods: HashMap<String, PodNames>,
    /// Container id -> names.
    pub containers: HashMap<String, ContainerNames>,
    /// Container ids that have a containerd task bundle (so their runtime is containerd).
    pub containerd_ids: std::collections::HashSet<String>,
}

impl NodeNames {
    /// Reads the node's pod log directories and containerd bundles under `root`.
    pub fn read(root: &Path) -> NodeNames {
        let mut n = NodeNames::default();
        for (dir, name) in entries(&root.join(POD_LOGS)) {
            // <namespace>_<pod>_<uid>: namespaces and pod names never contain '_'.
            let mut it = name.splitn(3, '_');
            let (Some(ns), Some(pod), Some(uid)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let mut containers: Vec<String> = entries(&dir).into_iter().map(|(_, c)| c).collect();
            containers.sort();
            n.pods.insert(
                uid.to_ascii_lowercase(),
                PodNames {
                    namespace: ns.into(),
                    pod: pod.into(),
                    containers,
                },
            );
        }
        for (dir, id) in entries(&root.join(CONTAINERD_TASKS)) {
            let id = id.to_ascii_lowercase();
            if let Some(c) = bundle_names(&dir.join("config.json")) {
                n.containers.insert(id.clone(), c);
            }
            n.containerd_ids.insert(id);
        }
        n
    }
}

/// The names a containerd bundle's OCI config carries in its annotations.
fn bundle_names(config: &Path) -> Option<ContainerNames> {
    let text = std::fs::read_to_string(config).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let a = json.get("annotations")?;
    let get = |k: &str| a.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Some(ContainerNames {
        namespace: get("io.kubernetes.cri.sandbox-namespace")?,
        pod: get("io.kubernetes.cri.sandbox-name")?,
        // A sandbox (pause) bundle has no container name.
        container: get("io.kubernetes.cri.container-name")?,
    })
}

/// The subdirectories of `dir` with their names; none when it cannot be read.
fn entries(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.path(), e.file_name().into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pod_logs_and_containerd_bundles() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let uid = "3c1a7b52-8d2e-4f8e-9a51-0f6c2b1d9e44";
        for c in ["app", "istio-proxy"] {
            std::fs::create_dir_all(r.join(POD_LOGS).join(format!("shop_web-7d9f_{uid}/{c}")))
                .unwrap();
        }
        std::fs::create_dir_all(r.join(POD_LOGS).join("not-a-pod-dir")).unwrap();
        let id = "ab".repeat(32);
        let bundle = r.join(CONTAINERD_TASKS).join(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            r#"{"ociVersion":"1.1.0","annotations":{
                "io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.sandbox-name":"web-7d9f",
                "io.kubernetes.cri.sandbox-namespace":"shop",
                "io.kubernetes.cri.container-name":"app"}}"#,
        )
        .unwrap();
        let sandbox = r.join(CONTAINERD_TASKS).join("cd".repeat(32));
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::write(
            sandbox.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-name":"web-7d9f",
                "io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
        )
        .unwrap();

        let n = NodeNames::read(r);
        assert_eq!(
            n.pods[uid],
            PodNames {
                namespace: "shop".into(),
                pod: "web-7d9f".into(),
                containers: vec!["app".into(), "istio-proxy".into()],
            }
        );
        assert_eq!(
            n.pods.len(),
            1,
            "a directory without namespace_pod_uid is skipped"
        );
        assert_eq!(n.containers[&id].container, "app");
        assert_eq!(n.containers[&id].namespace, "shop");
        assert_eq!(n.containers.len(), 1, "a sandbox names no container");
        assert_eq!(n.containerd_ids.len(), 2);
    }

    #[test]
    fn a_node_without_kubernetes_has_no_names() {
        let root = tempfile::tempdir().unwrap();
        let n = NodeNames::read(root.path());
        assert!(n.pods.is_empty() && n.containers.is_empty());
    }
}

//! Kubernetes pods as the node sees them, without the API server: which pod and
//! container a process runs in (its cgroup path, [`cgroup`]), their names (kubelet's
//! log directories and containerd's bundles, [`names`]), and the cgroups of the pods a
//! `--namespace`/`--pod` filter selects.

pub mod cgroup;
pub mod names;

use std::path::{Path, PathBuf};

pub use cgroup::{PodCgroup, Qos, Runtime};
pub use names::NodeNames;

/// A process's pod, with every name the node knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodInfo {
    pub uid: String,
    /// Empty when the node has no record of the pod's names.
    pub namespace: String,
    pub pod: String,
    pub qos: Qos,
    /// The pod's cgroup, as in /proc/PID/cgroup.
    pub cgroup: String,
    pub container: Option<String>,
    pub container_id: Option<String>,
    pub runtime: Option<Runtime>,
}

impl PodInfo {
    /// The pod of a cgroup v2 path, named from `names`; None for host processes.
    pub fn of(cgroup_path: &str, names: &NodeNames) -> Option<PodInfo> {
        let c = cgroup::parse(cgroup_path)?;
        let by_id = c
            .container_id
            .as_ref()
            .and_then(|id| names.containers.get(id));
        let by_uid = names.pods.get(&c.uid);
        let (namespace, pod) = match (by_uid, by_id) {
            (Some(p), _) => (p.namespace.clone(), p.pod.clone()),
            (None, Some(b)) => (b.namespace.clone(), b.pod.clone()),
            (None, None) => (String::new(), String::new()),
        };
        // A bare id (cgroupfs driver) is containerd's when containerd has its bundle.
        let runtime = match (c.runtime, &c.container_id) {
            (Some(Runtime::Unknown), Some(id)) if names.containerd_ids.contains(id) => {
                Some(Runtime::Containerd)
            }
            (rt, _) => rt,
        };
        Some(PodInfo {
            uid: c.uid,
            namespace,
            pod,
            qos: c.qos,
            cgroup: c.pod_path,
            container: by_id.map(|b| b.container.clone()),
            container_id: c.container_id,
            runtime,
        })
    }
}

/// Which pods to observe: `--namespace` and `--pod` (each repeatable; a pod must match
/// both lists when both are given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFilter {
    pub namespaces: Vec<String>,
    pub pods: Vec<String>,
}

impl PodFilter {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.pods.is_empty()
    }

    fn matches(&self, p: &PodInfo) -> bool {
        let ns = self.namespaces.is_empty() || self.namespaces.contains(&p.namespace);
        let pod = self.pods.is_empty() || self.pods.contains(&p.pod) || self.pods.contains(&p.uid);
        ns && pod
    }
}

/// A pod's cgroup found on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPod {
    pub info: PodInfo,
    /// The directory under the cgroup2 mount.
    pub dir: PathBuf,
}

/// Deepest cgroup directory searched for pods (kubelet's own cgroup root plus
/// `kubepods/<qos>/pod<uid>` fits well within).
const MAX_DEPTH: usize = 8;

/// Every pod cgroup under the cgroup2 mount `mount`, named from `names`.
pub fn pods_on_node(mount: &Path, names: &NodeNames) -> Vec<FoundPod> {
    let mut out = Vec::new();
    walk(mount, mount, 0, names, &mut out);
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

fn walk(mount: &Path, dir: &Path, depth: usize, names: &NodeNames, out: &mut Vec<FoundPod>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        let rel = format!(
            "/{}",
            path.strip_prefix(mount).unwrap_or(&path).to_string_lossy()
        );
        match PodInfo::of(&rel, names) {
            // The pod level itself: its containers are below it.
            Some(info) if info.container_id.is_none() && info.cgroup == rel => {
                out.push(FoundPod { info, dir: path })
            }
            Some(_) => {}
            None => walk(mount, &path, depth + 1, names, out),
        }
    }
}

/// The pods `filter` selects on this node; a usage error when none does, listing what
/// is there.
pub fn select(
    mount: &Path,
    names: &NodeNames,
    filter: &PodFilter,
) -> Result<Vec<FoundPod>, String> {
    let all = pods_on_node(mount, names);
    let chosen: Vec<FoundPod> = all
        .iter()
        .filter(|p| filter.matches(&p.info))
        .cloned()
        .collect();
    if !chosen.is_empty() {
        return Ok(chosen);
    }
    let mut known: Vec<String> = all
        .iter()
        .map(|p| match p.info.pod.as_str() {
            "" => format!("(unnamed pod {})", p.info.uid),
            _ => format!("{}/{}", p.info.namespace, p.info.pod),
        })
        .collect();
    known.sort();
    known.dedup();
    let what = [
        (!filter.namespaces.is_empty())
            .then(|| format!("--namespace {}", filter.namespaces.join(","))),
        (!filter.pods.is_empty()).then(|| format!("--pod {}", filter.pods.join(","))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    Err(if known.is_empty() {
        format!(
            "{what}: no Kubernetes pod cgroups on this node (looked for kubepods under {})",
            mount.display()
        )
    } else {
        format!(
            "{what}: no pod on this node matches (pods here: {}{})",
            known
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if known.len() > 10 { ", ..." } else { "" }
        )
    })
}

/// The deepest directory containing every path (the cgroup to attach to for several
/// pods).
pub fn common_ancestor(dirs: &[PathBuf]) -> Option<PathBuf> {
    let first = dirs.first()?;
    let mut common: Vec<_> = first.components().collect();
    for d in &dirs[1..] {
        let n = common
            .iter()
            .zip(d.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(n);
    }
    Some(common.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn names_come_from_logs_then_bundles() {
        let mut names = NodeNames::default();
        names.pods.insert(
            "aa-bb".into(),
            names::PodNames {
                namespace: "shop".into(),
                pod: "web".into(),
                containers: vec!["app".into()],
            },
        );
        names.containers.insert(
            ID.into(),
            names::ContainerNames {
                namespace: "kube-system".into(),
                pod: "coredns-1".into(),
                container: "coredns".into(),
            },
        );
        names.containerd_ids.insert(ID.into());
        let p = PodInfo::of(&format!("/kubepods/burstable/podaa-bb/{ID}"), &names).unwrap();
        assert_eq!((p.namespace.as_str(), p.pod.as_str()), ("shop", "web"));
        assert_eq!(p.container.as_deref(), Some("coredns"));
        assert_eq!(
            p.runtime,
            Some(Runtime::Containerd),
            "bare id with a bundle"
        );
        let p = PodInfo::of(&format!("/kubepods/podcc/{ID}"), &names).unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.pod.as_str()),
            ("kube-system", "coredns-1")
        );
        let p = PodInfo::of("/kubepods/poddd", &names).unwrap();
        assert_eq!((p.pod.as_str(), p.container), ("", None));
        assert_eq!(PodInfo::of("/system.slice/x.service", &names), None);
    }

    #[test]
    fn finds_pod_cgroups_and_explains_a_miss() {
        let mount = tempfile::tempdir().unwrap();
        let m = mount.path();
        let a = m.join("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podaa_bb.slice");
        std::fs::create_dir_all(a.join(format!("cri-containerd-{ID}.scope"))).unwrap();
        let b = m.join("kubepods/podcc");
        std::fs::create_dir_all(b.join(ID)).unwrap();
        std::fs::create_dir_all(m.join("system.slice/cron.service")).unwrap();
        let mut names = NodeNames::default();
        names.pods.insert(
            "aa-bb".into(),
            names::PodNames {
                namespace: "shop".into(),
                pod: "web".into(),
                containers: vec![],
            },
        );
        let all = pods_on_node(m, &names);
        assert_eq!(all.len(), 2, "{all:?}");
        let web = select(
            m,
            &names,
            &PodFilter {
                namespaces: vec!["shop".into()],
                pods: vec![],
            },
        )
        .unwrap();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].dir, a);
        let by_uid = select(
            m,
            &names,
            &PodFilter {
                namespaces: vec![],
                pods: vec!["cc".into()],
            },
        )
        .unwrap();
        assert_eq!(by_uid[0].dir, b);
        let err = select(
            m,
            &names,
            &PodFilter {
                namespaces: vec!["nope".into()],
                pods: vec![],
            },
        )
        .unwrap_err();
        assert!(
            err.contains("--namespace nope") && err.contains("shop/web"),
            "{err}"
        );
        assert_eq!(common_ancestor(&[a.clone(), b.clone()]).unwrap(), m);
        assert_eq!(common_ancestor(std::slice::from_ref(&a)).unwrap(), a);
    }
}

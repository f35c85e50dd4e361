//! A process's cgroup v2 path -> the Kubernetes pod and container it runs in, read
//! from the names kubelet gives the cgroups it creates (no API server needed).
//!
//! The layouts, by kubelet's cgroup driver (a cgroup root prefix such as `/kubelet` or
//! a test's own directory may come first; a trailing `/container` is accepted):
//!
//! - systemd: `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid, _ for
//!   ->.slice/<cri-containerd|crio|docker>-<64 hex>.scope`; Guaranteed pods have no QoS
//!   level: `/kubepods.slice/kubepods-pod<uid>.slice/...`. `crio-conmon-*` scopes are
//!   CRI-O's monitor, not a container: not attributed.
//! - cgroupfs: `/kubepods/<qos>/pod<uid>/<64 hex>` or `.../pod<uid>/crio-<64 hex>`;
//!   Guaranteed pods omit `<qos>`.

use serde::Serialize;

/// The QoS class kubelet put the pod in (its cgroup level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "guaranteed",
            Qos::Burstable => "burstable",
            Qos::BestEffort => "besteffort",
        }
    }

    fn parse(s: &str) -> Option<Qos> {
        match s {
            "burstable" => Some(Qos::Burstable),
            "besteffort" => Some(Qos::BestEffort),
            _ => None,
        }
    }
}

/// Which container runtime created the container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Containerd,
    Crio,
    Docker,
    /// The cgroupfs driver names a containerd or Docker container by its bare id.
    Unknown,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Crio => "crio",
            Runtime::Docker => "docker",
            Runtime::Unknown => "unknown",
        }
    }
}

/// What a cgroup path says about its pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodCgroup {
    /// The pod UID as the API server writes it (with `-`).
    pub uid: String,
    pub qos: Qos,
    /// The container's 64-hex id; None for a process in the pod's own cgroup.
    pub container_id: Option<String>,
    pub runtime: Option<Runtime>,
    /// The pod's cgroup: the path up to and including the pod level.
    pub pod_path: String,
}

/// Parses a cgroup v2 path (`/kubepods.slice/...` as in /proc/PID/cgroup, or any path
/// ending in one). None when it is not a pod's (host processes, conmon scopes).
pub fn parse(path: &str) -> Option<PodCgroup> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let start = parts
        .iter()
        .position(|p| *p == "kubepods.slice" || *p == "kubepods")?;
    let (pod, rest) = if parts[start] == "kubepods.slice" {
        systemd(&parts[start + 1..])?
    } else {
        cgroupfs(&parts[start + 1..])?
    };
    let pod_len = start + 1 + pod.levels;
    let mut rest = rest;
    if rest.last() == Some(&"container") {
        rest = &rest[..rest.len() - 1];
    }
    let (container_id, runtime) = match rest {
        [] => (None, None),
        [c] => {
            let (id, rt) = if parts[start] == "kubepods.slice" {
                systemd_scope(c)?
            } else {
                cgroupfs_container(c)?
            };
            (Some(id), Some(rt))
        }
        _ => return None,
    };
    Some(PodCgroup {
        uid: pod.uid,
        qos: pod.qos,
        container_id,
        runtime,
        pod_path: format!("/{}", parts[..pod_len].join("/")),
    })
}

struct PodLevel {
    uid: String,
    qos: Qos,
    /// Path components from below `kubepods` down to the pod, inclusive.
    levels: usize,
}

/// `kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice` or `kubepods-pod<uid>.slice`.
fn systemd<'a>(parts: &'a [&'a str]) -> Option<(PodLevel, &'a [&'a str])> {
    let slice = |p: &str| -> Option<(Option<Qos>, String)> {
        let body = p.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
        match body.split_once("-pod") {
            Some((qos, uid)) => Some((Some(Qos::parse(qos)?), uid_of(uid, '_')?)),
            None => Some((None, uid_of(body.strip_prefix("pod")?, '_')?)),
        }
    };
    let first = parts.first()?;
    if let Some(qos) = first
        .strip_prefix("kubepods-")
        .and_then(|s| s.strip_suffix(".slice"))
        .and_then(Qos::parse)
    {
        let (q, uid) = slice(parts.get(1)?)?;
        (q == Some(qos)).then_some(())?;
        let pod = PodLevel {
            uid,
            qos,
            levels: 2,
        };
        return Some((pod, &parts[2..]));
    }
    match slice(first)? {
        (None, uid) => Some((
            PodLevel {
                uid,
                qos: Qos::Guaranteed,
                levels: 1,
            },
            &parts[1..],
        )),
        _ => None,
    }
}

/// `<qos>/pod<uid>` or `pod<uid>`.
fn cgroupfs<'a>(parts: &'a [&'a str]) -> Option<(PodLevel, &'a [&'a str])> {
    let first = parts.first()?;
    if let Some(qos) = Qos::parse(first) {
        let uid = uid_of(parts.get(1)?.strip_prefix("pod")?, '-')?;
        return Some((
            PodLevel {
                uid,
                qos,
                levels: 2,
            },
            &parts[2..],
        ));
    }
    let uid = uid_of(first.strip_prefix("pod")?, '-')?;
    Some((
        PodLevel {
            uid,
            qos: Qos::Guaranteed,
            levels: 1,
        },
        &parts[1..],
    ))
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`; conmon refused.
fn systemd_scope(s: &str) -> Option<(String, Runtime)> {
    let body = s.strip_suffix(".scope")?;
    if body.starts_with("crio-conmon-") {
        return None;
    }
    let (rt, id) = if let Some(id) = body.strip_prefix("cri-containerd-") {
        (Runtime::Containerd, id)
    } else if let Some(id) = body.strip_prefix("crio-") {
        (Runtime::Crio, id)
    } else if let Some(id) = body.strip_prefix("docker-") {
        (Runtime::Docker, id)
    } else {
        return None;
    };
    Some((container_id(id)?, rt))
}

/// `<id>` or `crio-<id>`.
fn cgroupfs_container(s: &str) -> Option<(String, Runtime)> {
    match s.strip_prefix("crio-") {
        Some(id) => Some((container_id(id)?, Runtime::Crio)),
        None => Some((container_id(s)?, Runtime::Unknown)),
    }
}

fn container_id(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// A pod UID: hex digits and dashes (static pods have a 32-hex hash), with `sep` where
/// the API server writes `-` (systemd slices use `_`: `-` is its hierarchy separator).
fn uid_of(s: &str, sep: char) -> Option<String> {
    let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit() || c == sep);
    ok.then(|| s.replace(sep, "-").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "3c1a7b52-8d2e-4f8e-9a51-0f6c2b1d9e44";

    fn uid_(u: &str) -> String {
        u.replace('-', "_")
    }

    #[test]
    fn systemd_driver_every_qos_and_runtime() {
        let u = uid_(UID);
        let cases = [
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"),
                Qos::Burstable,
                Runtime::Containerd,
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice"),
            ),
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/crio-{ID}.scope"),
                Qos::BestEffort,
                Runtime::Crio,
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice"),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{u}.slice/docker-{ID}.scope"),
                Qos::Guaranteed,
                Runtime::Docker,
                format!("/kubepods.slice/kubepods-pod{u}.slice"),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{u}.slice/crio-{ID}.scope/container"),
                Qos::Guaranteed,
                Runtime::Crio,
                format!("/kubepods.slice/kubepods-pod{u}.slice"),
            ),
        ];
        for (path, qos, rt, pod_path) in cases {
            let p = parse(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(p.uid, UID, "{path}");
            assert_eq!(p.qos, qos, "{path}");
            assert_eq!(p.runtime, Some(rt), "{path}");
            assert_eq!(p.container_id.as_deref(), Some(ID), "{path}");
            assert_eq!(p.pod_path, pod_path);
        }
    }

    #[test]
    fn cgroupfs_driver_every_qos() {
        for (path, qos, rt) in [
            (
                format!("/kubepods/burstable/pod{UID}/{ID}"),
                Qos::Burstable,
                Runtime::Unknown,
            ),
            (
                format!("/kubepods/besteffort/pod{UID}/crio-{ID}"),
                Qos::BestEffort,
                Runtime::Crio,
            ),
            (
                format!("/kubepods/pod{UID}/{ID}"),
                Qos::Guaranteed,
                Runtime::Unknown,
            ),
            (
                format!("/kubepods/pod{UID}/crio-{ID}/container"),
                Qos::Guaranteed,
                Runtime::Crio,
            ),
        ] {
            let p = parse(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!((p.uid.as_str(), p.qos, p.runtime), (UID, qos, Some(rt)));
            assert_eq!(p.container_id.as_deref(), Some(ID));
        }
    }

    #[test]
    fn a_cgroup_root_prefix_and_the_pod_level_itself() {
        let u = uid_(UID);
        let p = parse(&format!(
            "/dnsdoc-test-1/kubepods.slice/kubepods-pod{u}.slice"
        ))
        .unwrap();
        assert_eq!(
            (p.qos, p.container_id, p.runtime),
            (Qos::Guaranteed, None, None)
        );
        assert_eq!(
            p.pod_path,
            format!("/dnsdoc-test-1/kubepods.slice/kubepods-pod{u}.slice")
        );
        let static_pod = "0f8b3c7e9d1a2b4c5d6e7f8091a2b3c4";
        assert_eq!(
            parse(&format!("/kubelet/kubepods/pod{static_pod}/{ID}"))
                .unwrap()
                .uid,
            static_pod
        );
    }

    #[test]
    fn not_a_pod() {
        let u = uid_(UID);
        for path in [
            "/".to_string(),
            "/system.slice/containerd.service".into(),
            "/kubepods.slice".into(),
            "/kubepods.slice/kubepods-burstable.slice".into(),
            "/kubepods/burstable".into(),
            // CRI-O's monitor process sits in the pod but is no container.
            format!("/kubepods.slice/kubepods-pod{u}.slice/crio-conmon-{ID}.scope"),
            // QoS of the slice and of the pod disagree.
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod{u}.slice"),
            format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-abc.scope"),
            format!("/kubepods.slice/kubepods-pod{u}.slice/session-1.scope"),
            format!("/kubepods/guaranteed/pod{UID}/{ID}"),
            format!("/kubepods/pod{UID}/{ID}/extra/deeper"),
            "/kubepods/podnot-a-uid!/x".into(),
        ] {
            assert_eq!(parse(&path), None, "{path}");
        }
    }
}

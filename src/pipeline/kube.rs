//! The Kubernetes and lookup parts of a snapshot: which pod each process runs in (its
//! cgroup, named from the node's files under `--node-root`), the `pods` table, and the
//! lookups of every process, pod, looked-up name and of the node.

use std::collections::{BTreeSet, HashMap as StdHashMap};
use std::path::Path;

use foldhash::{HashMap, HashMapExt};
use std::rc::Rc;

use crate::analysis::aggregate::Aggregator;
use crate::analysis::lookup_stats::{LookupTallies, LookupTally};
use crate::host::kube::{NodeNames, PodInfo};
use crate::host::ProcessInfo;
use crate::snapshot::{LookupNameStats, LookupSummary, PodRef, PodStats, ProcessStats};

/// Rows of `lookups.by_name`.
const TOP_LOOKUP_NAMES: usize = 20;

/// A looked-up name's lookups, and (some of) the processes that looked it up.
type NameTally = (LookupTally, Vec<u32>);

/// What the pods and lookups add to a snapshot.
pub struct KubeParts {
    pub pods: Vec<PodStats>,
    pub lookups: LookupSummary,
}

/// Fills `processes[].pod` and `processes[].lookups`, and builds the pods table and
/// the node's lookups. `procs` holds what /proc said of each process.
pub fn assemble<S: std::hash::BuildHasher>(
    agg: &Aggregator,
    duration_s: f64,
    procs: &StdHashMap<u32, ProcessInfo, S>,
    processes: &mut [ProcessStats],
    lookups: &LookupTallies,
    node_root: &Path,
) -> KubeParts {
    let names = NodeNames::read(node_root);
    let pod_of: HashMap<u32, PodInfo> = procs
        .iter()
        .filter_map(|(&pid, i)| Some((pid, PodInfo::of(i.cgroup.as_deref()?, &names)?)))
        .collect();

    let comm_of = |pid: u32| {
        procs.get(&pid).filter(|i| !i.comm.is_empty()).map_or_else(
            || format!("pid {pid}"),
            |i| format!("{} (pid {pid})", i.comm),
        )
    };
    let mut by_pod: HashMap<&str, LookupTally> = HashMap::new();
    for (tgid, t) in &lookups.by_tgid {
        if let Some(p) = pod_of.get(tgid) {
            by_pod.entry(p.uid.as_str()).or_default().merge(t);
        }
    }
    let by_tgid = &lookups.by_tgid;

    for row in processes.iter_mut() {
        row.pod = pod_of.get(&row.pid).map(pod_ref);
        if let Some(t) = by_tgid.get(&row.pid) {
            row.lookups = t.stats();
        }
    }

    let mut pods: Vec<PodStats> = agg
        .process_groups(duration_s, |pid| pod_of.get(&pid).map(|p| p.uid.clone()))
        .into_iter()
        .filter_map(|(uid, counts, latency, n)| {
            let any = pod_of.values().find(|p| p.uid == uid)?;
            let containers: BTreeSet<String> = processes
                .iter()
                .filter_map(|r| r.pod.as_ref())
                .filter(|p| p.uid == uid)
                .filter_map(|p| p.container.clone().or_else(|| p.container_id.clone()))
                .collect();
            Some(PodStats {
                namespace: any.namespace.clone(),
                pod: any.pod.clone(),
                qos: any.qos.as_str().into(),
                containers: containers.into_iter().collect(),
                cgroup: any.cgroup.clone(),
                processes: n,
                counts,
                latency,
                lookups: by_pod
                    .get(uid.as_str())
                    .map(LookupTally::stats)
                    .unwrap_or_default(),
                uid,
            })
        })
        .collect();
    pods.sort_by(|a, b| {
        b.counts
            .queries
            .cmp(&a.counts.queries)
            .then(a.namespace.cmp(&b.namespace))
            .then(a.pod.cmp(&b.pod))
            .then(a.uid.cmp(&b.uid))
    });

    let mut names_rows: Vec<(&Rc<str>, &NameTally)> = lookups.by_name.iter().collect();
    names_rows.sort_by(|a, b| b.1 .0.queries().cmp(&a.1 .0.queries()).then(a.0.cmp(b.0)));
    let by_name = names_rows
        .into_iter()
        .take(TOP_LOOKUP_NAMES)
        .map(|(name, (t, who))| LookupNameStats {
            name: name.to_string(),
            by: who
                .iter()
                .map(|tgid| {
                    pod_of
                        .get(tgid)
                        .map_or_else(|| comm_of(*tgid), |p| pod_ref(p).label())
                })
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect(),
            lookups: t.stats(),
            answers: t.answers(duration_s),
        })
        .collect();
    KubeParts {
        pods,
        lookups: LookupSummary {
            stats: lookups.node.stats(),
            by_name,
        },
    }
}

fn pod_ref(p: &PodInfo) -> PodRef {
    PodRef {
        namespace: p.namespace.clone(),
        pod: p.pod.clone(),
        uid: p.uid.clone(),
        container: p.container.clone(),
        container_id: p.container_id.clone(),
        runtime: p.runtime.map(|r| r.as_str().to_string()),
    }
}

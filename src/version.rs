//! `dnsdoc version`: the build, and what this kernel lets the probes do.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::capture::KernelFeatures;
use crate::host;
use crate::render::Format;

/// "0.1.0 (commit 0123456789ab)": what `dnsdoc -V` and `dnsdoc version` print first.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DNSDOC_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Serialize)]
struct VersionReport {
    dnsdoc_version: &'static str,
    /// The git commit built ("-dirty" with local changes; "unknown" outside git).
    git_commit: &'static str,
    kernel: String,
    cgroup2_mount: Option<String>,
    /// False without the privileges to load BPF; `features` is then all false.
    probed: bool,
    features: KernelFeatures,
    degraded: Vec<String>,
}

/// Runs `dnsdoc version`. Never fails for lack of privileges: it says what it could not
/// probe instead.
pub fn run(format: Format) -> Result<()> {
    let probed = host::check_privileges().is_ok();
    let features = if probed {
        KernelFeatures::probe()
    } else {
        KernelFeatures {
            release: host::kernel_release(),
            ..KernelFeatures::default()
        }
    };
    let report = VersionReport {
        dnsdoc_version: env!("CARGO_PKG_VERSION"),
        git_commit: env!("DNSDOC_GIT_COMMIT"),
        kernel: features.release.clone(),
        cgroup2_mount: host::cgroup2_mount().ok().map(|p| p.display().to_string()),
        probed,
        degraded: if probed {
            features.degraded()
        } else {
            Vec::new()
        },
        features,
    };
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Table => write!(out, "{}", render(&report))?,
    }
    Ok(())
}

fn render(r: &VersionReport) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut s = format!("dnsdoc {VERSION}\nkernel {}\n", r.kernel);
    s += &format!(
        "cgroup v2: {}\n",
        r.cgroup2_mount.as_deref().unwrap_or("not mounted")
    );
    if !r.probed {
        s += "BPF features: not probed (needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)\n";
        return s;
    }
    let f = &r.features;
    s += &format!("BPF ring buffer:                      {}\n", yes(f.ringbuf));
    s += &format!(
        "sock_addr hooks with socket storage:  {}\n",
        yes(f.sock_addr_storage)
    );
    s += &format!(
        "current task in cgroup_skb:           {}\n",
        yes(f.skb_current_task)
    );
    if r.degraded.is_empty() {
        s += "degraded: nothing\n";
    }
    for d in &r.degraded {
        s += &format!("degraded: {d}\n");
    }
    s
}

//! The two load drivers behind one face: the lean wire client ([`super::load`]) for
//! most scenarios, real glibc behind a relay ([`super::glibc`], [`super::relay`]) for
//! those whose fault is the stub resolver's own behaviour. `mod.rs` drives either.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::glibc::{GlibcLoad, GlibcPlan};
use super::load::{Load, LoadStats, Prepared};
use super::relay::{relay_ip, Relay};

/// A load about to start (the wire client binds its sockets before the capture).
pub enum PreparedDriver {
    Wire(Prepared),
    Glibc {
        plan: GlibcPlan,
        relay: Relay,
        workers: u32,
        qps: u32,
        duration: Duration,
        cgroup: Option<ClientCgroup>,
    },
}

/// A running load.
pub enum Driver {
    Wire(Load),
    Glibc {
        load: GlibcLoad,
        relay: Relay,
        cgroup: Option<ClientCgroup>,
    },
}

/// The cgroup of this run's glibc clients, below `--cgroup`: the capture watches it,
/// so only the clients' own queries count. Removed on drop (once the clients are gone).
pub struct ClientCgroup(PathBuf);

impl ClientCgroup {
    pub fn create(parent: &Path) -> Result<ClientCgroup> {
        let dir = parent.join(format!("dnsdoc-chaos-{}", std::process::id()));
        std::fs::create_dir(&dir)
            .with_context(|| format!("creating the clients' cgroup {}", dir.display()))?;
        Ok(ClientCgroup(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ClientCgroup {
    fn drop(&mut self) {
        // The clients' last getent may still be exiting: try for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl PreparedDriver {
    /// Starts the relay for a glibc plan (clients start with [`Self::start`]).
    pub fn glibc(
        plan: GlibcPlan,
        target: std::net::SocketAddr,
        workers: u32,
        qps: u32,
        duration: Duration,
        cgroup: Option<ClientCgroup>,
    ) -> Result<PreparedDriver> {
        super::glibc::check_tools()?;
        let relay = Relay::start(relay_ip(target), target, plan.drop_pair_sibling)?;
        Ok(PreparedDriver::Glibc {
            plan,
            relay,
            workers,
            qps,
            duration,
            cgroup,
        })
    }

    /// The address the clients send to, which the capture watches.
    pub fn client_target(&self, target: std::net::SocketAddr) -> std::net::SocketAddr {
        match self {
            PreparedDriver::Wire(_) => target,
            PreparedDriver::Glibc { relay, .. } => relay.addr(),
        }
    }

    /// The cgroup the capture watches instead of `--cgroup`, if any.
    pub fn client_cgroup(&self) -> Option<&Path> {
        match self {
            PreparedDriver::Glibc {
                cgroup: Some(c), ..
            } => Some(c.path()),
            _ => None,
        }
    }

    pub fn start(self) -> Result<Driver> {
        Ok(match self {
            PreparedDriver::Wire(p) => Driver::Wire(p.start()),
            PreparedDriver::Glibc {
                plan,
                relay,
                workers,
                qps,
                duration,
                cgroup,
            } => {
                let load = GlibcLoad::start(
                    &plan,
                    relay.addr(),
                    workers,
                    qps,
                    duration,
                    cgroup.as_ref().map(ClientCgroup::path),
                )?;
                Driver::Glibc {
                    load,
                    relay,
                    cgroup,
                }
            }
        })
    }
}

impl Driver {
    pub fn started(&self) -> Instant {
        match self {
            Driver::Wire(l) => l.started(),
            Driver::Glibc { load, .. } => load.started(),
        }
    }

    pub fn sending_done(&self) -> bool {
        match self {
            Driver::Wire(l) => l.sending_done(),
            Driver::Glibc { load, .. } => load.sending_done(),
        }
    }

    pub fn finished(&self) -> bool {
        match self {
            Driver::Wire(l) => l.finished(),
            Driver::Glibc { load, .. } => load.finished(),
        }
    }

    pub fn in_flight(&self) -> u64 {
        match self {
            Driver::Wire(l) => l.in_flight(),
            Driver::Glibc { load, .. } => load.in_flight(),
        }
    }

    pub fn counts(&self) -> (u64, u64, u64, u64) {
        match self {
            Driver::Wire(l) => l.counts(),
            Driver::Glibc { load, .. } => load.counts(),
        }
    }

    pub fn stop(&self) {
        match self {
            Driver::Wire(l) => l.stop(),
            Driver::Glibc { load, .. } => load.stop(),
        }
    }

    /// The client-side results, and the pids of the glibc clients (none for the wire
    /// client: its queries are dnsdoc's own).
    pub fn finish(self, deadline: Duration) -> (LoadStats, Vec<u32>) {
        match self {
            Driver::Wire(l) => (l.finish(deadline), Vec::new()),
            Driver::Glibc {
                load,
                relay,
                cgroup,
            } => {
                // The relay stays up until the clients are done, so none waits on it.
                let (mut s, pids) = load.finish(deadline);
                super::glibc::wire_from_relay(&mut s, relay.stats());
                drop(relay);
                drop(cgroup);
                (s, pids)
            }
        }
    }
}

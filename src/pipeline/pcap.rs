//! The offline event source: a pcap or pcapng file ([`crate::offline`]) replayed as
//! the events the kernel hooks would have produced, so the analysis is the live one.
//!
//! A file has no processes and no sockets, so roles come from ports and addresses: the
//! side on a DNS port is the server. Each packet becomes the events of its *local*
//! ends: a query from a local client is that client socket's egress, a query to a local
//! server that server socket's ingress (both, for loopback, as live capture sees it).
//! Local addresses are `--local`, else loopback plus the address most packets have at
//! one end (the node the capture was taken on). Sockets are named by their addresses
//! (UDP: the local address and port; TCP: the connection), hashed into a cookie.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::source::{EventSource, SourceHealth};
use crate::capture::{Direction, EventBatch, PacketEvent, Protocol};
use crate::exit::InputError;
use crate::offline::decode::{decode, Packet, Skip};
use crate::offline::{PcapFile, SUPPORTED_LINKTYPES};

/// Events handed over per poll.
const BATCH: usize = 4096;

/// A capture file being replayed.
pub struct PcapSource {
    path: PathBuf,
    file: PcapFile,
    ports: Vec<u16>,
    local: Vec<IpAddr>,
    first_ns: u64,
    now_ns: u64,
    done: bool,
    /// DNS packets read (on the watched ports).
    packets: u64,
    skipped: HashMap<&'static str, u64>,
}

impl PcapSource {
    /// Opens `path`; `local` empty means "infer" (a first pass over the file).
    pub fn open(path: &Path, ports: &[u16], local: &[IpAddr]) -> Result<PcapSource> {
        let (first_ns, inferred) = survey(path, ports)?;
        let local = if local.is_empty() {
            inferred
        } else {
            local.to_vec()
        };
        Ok(PcapSource {
            path: path.to_path_buf(),
            file: PcapFile::open(path)?,
            ports: ports.to_vec(),
            local,
            first_ns,
            now_ns: first_ns,
            done: false,
            packets: 0,
            skipped: HashMap::new(),
        })
    }

    /// The addresses treated as this node's.
    pub fn local(&self) -> &[IpAddr] {
        &self.local
    }

    fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || self.local.contains(&a)
    }

    /// The events of one packet's local ends.
    fn expand(&self, ts_ns: u64, p: &Packet<'_>, out: &mut EventBatch) {
        let is_dns = |port| self.ports.contains(&port);
        // The query's direction: to a DNS port is client -> server.
        let to_server = is_dns(p.dport);
        let (client, server) = if to_server {
            ((p.src, p.sport), (p.dst, p.dport))
        } else {
            ((p.dst, p.dport), (p.src, p.sport))
        };
        let mut emit = |cookie: u64, direction: Direction| {
            out.push(PacketEvent {
                ts_ns,
                cookie,
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                protocol: p.protocol,
                direction,
                tcp_flags: p.tcp_flags,
                tcp_seq: p.tcp_seq,
                payload_len: p.payload_len,
                payload: p.payload.to_vec(),
                ..PacketEvent::default()
            });
        };
        let client_socket = cookie(("client", p.protocol.as_str(), client, server));
        let server_socket = match p.protocol {
            Protocol::Udp => cookie(("server", "udp", server)),
            Protocol::Tcp => cookie(("server", "tcp", server, client)),
        };
        // Leaving first, then arriving: the order live capture sees on loopback.
        let (sender, receiver) = if to_server {
            ((client.0, client_socket), (server.0, server_socket))
        } else {
            ((server.0, server_socket), (client.0, client_socket))
        };
        if self.is_local(sender.0) {
            emit(sender.1, Direction::Egress);
        }
        if self.is_local(receiver.0) {
            emit(receiver.1, Direction::Ingress);
        }
    }

    fn skip(&mut self, why: Skip) {
        let key = match why {
            Skip::NotIp => "frames that are not IPv4/IPv6",
            Skip::OtherProtocol => "IP packets that are neither UDP nor TCP",
            Skip::Fragment => "IP fragments (not reassembled)",
            Skip::Cut => "packets cut by the snap length inside their UDP/TCP header",
        };
        *self.skipped.entry(key).or_default() += 1;
    }
}

/// A socket's stand-in cookie: a fixed-seed foldhash (the same socket gets the same
/// cookie in every packet of a run; SipHash here was a tenth of reading a file).
fn cookie(key: impl Hash) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x646e_7364_6f63).hash_one(key)
}

/// First pass: the first DNS packet's time (errors for a file without one), and the
/// inferred local address: the non-loopback address at one end of the most packets.
fn survey(path: &Path, ports: &[u16]) -> Result<(u64, Vec<IpAddr>)> {
    let mut file = PcapFile::open(path)?;
    let mut first = None;
    let mut seen: HashMap<IpAddr, u64> = HashMap::new();
    while let Some(frame) = file.next_frame()? {
        let Ok(p) = decode(frame.linktype, &frame.data) else {
            continue;
        };
        if !ports.contains(&p.sport) && !ports.contains(&p.dport) {
            continue;
        }
        first.get_or_insert(frame.ts_ns);
        for a in [p.src, p.dst] {
            if !a.is_loopback() {
                *seen.entry(a).or_default() += 1;
            }
        }
    }
    if file.frames == 0 {
        return Err(InputError(format!("--pcap {}: no packets", path.display())).into());
    }
    let Some(first) = first else {
        return Err(InputError(format!(
            "--pcap {}: {} packets, none to or from DNS port {}",
            path.display(),
            file.frames,
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ))
        .into());
    };
    let local = seen
        .into_iter()
        .max_by_key(|&(a, n)| (n, a))
        .map(|(a, _)| a);
    Ok((first, local.into_iter().collect()))
}

impl EventSource for PcapSource {
    fn poll(&mut self, _wait: Duration, out: &mut EventBatch) -> Result<()> {
        while !self.done && out.len() < BATCH {
            let Some(frame) = self.file.next_frame()? else {
                self.done = true;
                break;
            };
            match decode(frame.linktype, &frame.data) {
                Ok(p) if self.ports.contains(&p.sport) || self.ports.contains(&p.dport) => {
                    self.packets += 1;
                    // Timestamps never go back (a file may be slightly out of order).
                    self.now_ns = self.now_ns.max(frame.ts_ns);
                    self.expand(self.now_ns, &p, out);
                }
                Ok(_) => {}
                Err(why) => self.skip(why),
            }
        }
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn exhausted(&self) -> bool {
        self.done
    }

    fn stop(&mut self) {
        self.done = true;
    }

    fn has_processes(&self) -> bool {
        false
    }

    fn wall_clock(&self, ns: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns))
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self
            .file
            .linktypes()
            .iter()
            .map(|lt| {
                SUPPORTED_LINKTYPES
                    .iter()
                    .find(|(v, _)| v == lt)
                    .map_or_else(|| lt.to_string(), |(_, n)| n.to_string())
            })
            .collect();
        let ts = |ns| {
            humantime::format_rfc3339_micros(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns))
        };
        format!(
            "pcap {}, {} packets, link type {}, {} .. {}; local addresses {}",
            self.path.display(),
            self.file.frames,
            names.join("+"),
            ts(self.first_ns),
            ts(self.now_ns),
            std::iter::once("loopback".to_string())
                .chain(self.local.iter().map(IpAddr::to_string))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn health(&self) -> Result<SourceHealth> {
        let mut degraded: Vec<String> = self
            .skipped
            .iter()
            .map(|(what, n)| format!("{n} {what} skipped"))
            .collect();
        degraded.sort();
        Ok(SourceHealth {
            packets: self.packets,
            degraded,
            ..SourceHealth::default()
        })
    }
}

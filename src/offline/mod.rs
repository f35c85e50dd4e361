//! Capture files (pcap and pcapng) read as a stream of frames, for the offline doctor.
//! File formats come from `pcap-parser` (no libpcap), packet layers from `etherparse`
//! ([`decode`]). Memory stays bounded whatever the file's size: one block at a time.

pub mod decode;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, Block, Linktype, PcapBlockOwned, PcapError};

use crate::exit::InputError;

/// Link types dnsdoc reads (pcap LINKTYPE_* values).
pub const SUPPORTED_LINKTYPES: &[(i32, &str)] = &[
    (0, "NULL (BSD loopback)"),
    (1, "ETHERNET"),
    (101, "RAW (IP)"),
    (108, "LOOP (OpenBSD loopback)"),
    (113, "LINUX_SLL (tcpdump -i any)"),
    (228, "IPV4"),
    (229, "IPV6"),
    (276, "LINUX_SLL2 (tcpdump -i any)"),
];

/// The fewest bytes a frame must keep for its DNS header to be read: Ethernet, IPv4
/// and UDP headers plus the 12-byte DNS header.
pub const MIN_SNAPLEN: u32 = 14 + 20 + 8 + 12;

/// Bytes buffered while reading: more than any record (a 64 KiB snap length, or pcapng
/// blocks with options), and all the memory a file of any size takes.
const READ_BUFFER: usize = 1 << 20;

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Capture time, nanoseconds since the epoch.
    pub ts_ns: u64,
    pub linktype: i32,
    /// The bytes captured (at most the snap length).
    pub data: Vec<u8>,
}

/// An interface of a pcapng section: its link type and timestamp unit.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second.
    resolution: u64,
    offset: i64,
}

/// A pcap or pcapng file being read.
pub struct PcapFile {
    reader: Box<dyn PcapReaderIterator + Send>,
    format: Format,
    /// Frames returned so far.
    pub frames: u64,
}

/// What the file's headers said so far.
struct Format {
    path: PathBuf,
    /// Legacy pcap: its one link type and whether timestamps are in nanoseconds.
    legacy: Option<(i32, bool)>,
    interfaces: Vec<Interface>,
    /// The link types seen, for the snapshot's source line.
    linktypes: Vec<i32>,
}

fn input_error(path: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    InputError(format!("--pcap {}: {what}", path.display())).into()
}

impl PcapFile {
    /// Opens `path` and reads its header. Errors are [`InputError`]s with one line.
    pub fn open(path: &Path) -> Result<PcapFile> {
        let mut file = File::open(path).map_err(|e| input_error(path, e))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(|e| input_error(path, e))?;
        if n == 0 {
            return Err(input_error(path, "empty file, no packets"));
        }
        if magic[..2] == [0x1f, 0x8b] {
            return Err(input_error(
                path,
                "gzip-compressed; decompress it first (gunzip -k FILE)",
            ));
        }
        let file = File::open(path).map_err(|e| input_error(path, e))?;
        let reader = create_reader(READ_BUFFER, file).map_err(|e| match e {
            PcapError::HeaderNotRecognized => input_error(
                path,
                format!(
                    "not a pcap or pcapng file (magic {:02x}{:02x}{:02x}{:02x})",
                    magic[0], magic[1], magic[2], magic[3]
                ),
            ),
            PcapError::Eof | PcapError::Incomplete(_) => {
                input_error(path, "truncated inside the file header")
            }
            other => input_error(path, format!("unreadable header: {other:?}")),
        })?;
        Ok(PcapFile {
            reader,
            format: Format {
                path: path.to_path_buf(),
                legacy: None,
                interfaces: Vec::new(),
                linktypes: Vec::new(),
            },
            frames: 0,
        })
    }

    /// The link types seen so far.
    pub fn linktypes(&self) -> &[i32] {
        &self.format.linktypes
    }

    /// The next frame; `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            let (consumed, frame) = match self.reader.next() {
                Ok((consumed, block)) => (consumed, self.format.block(block)?),
                Err(PcapError::Eof) => return Ok(None),
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.reader_exhausted() {
                        return Err(input_error(
                            &self.format.path,
                            format!(
                                "truncated: the file ends inside a packet record, after {} packets",
                                self.frames
                            ),
                        ));
                    }
                    let buffered = self.reader.data().len();
                    self.reader.refill().map_err(|e| {
                        input_error(&self.format.path, format!("read error: {e:?}"))
                    })?;
                    // A full buffer that cannot take more: one record claims more than
                    // the buffer holds (a corrupt length; dnsdoc never loads a file whole).
                    if self.reader.data().len() == buffered && !self.reader.reader_exhausted() {
                        return Err(input_error(
                            &self.format.path,
                            format!(
                                "corrupt after {} packets: a record longer than {} bytes",
                                self.frames, READ_BUFFER
                            ),
                        ));
                    }
                    continue;
                }
                Err(PcapError::BufferTooSmall) => {
                    return Err(input_error(
                        &self.format.path,
                        format!(
                            "corrupt after {} packets: a record longer than {} bytes",
                            self.frames, READ_BUFFER
                        ),
                    ))
                }
                Err(e) => {
                    return Err(input_error(
                        &self.format.path,
                        format!("malformed after {} packets: {e:?}", self.frames),
                    ))
                }
            };
            self.reader.consume(consumed);
            if let Some(f) = frame {
                self.frames += 1;
                return Ok(Some(f));
            }
        }
    }
}

impl Format {
    fn note_linktype(&mut self, lt: Linktype, snaplen: u32) -> Result<i32> {
        let lt = lt.0;
        if !SUPPORTED_LINKTYPES.iter().any(|(v, _)| *v == lt) {
            let names: Vec<String> = SUPPORTED_LINKTYPES
                .iter()
                .map(|(v, n)| format!("{v} {n}"))
                .collect();
            return Err(input_error(
                &self.path,
                format!(
                    "unsupported link type {lt} (supported: {})",
                    names.join(", ")
                ),
            ));
        }
        if snaplen != 0 && snaplen < MIN_SNAPLEN {
            return Err(input_error(
                &self.path,
                format!(
                    "snap length {snaplen} is shorter than a DNS header behind its link, IP and UDP headers ({MIN_SNAPLEN} bytes); capture with tcpdump -s 0"
                ),
            ));
        }
        if !self.linktypes.contains(&lt) {
            self.linktypes.push(lt);
        }
        Ok(lt)
    }

    /// Interprets one block: headers update the state, packets become frames.
    fn block(&mut self, block: PcapBlockOwned<'_>) -> Result<Option<Frame>> {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                let lt = self.note_linktype(h.network, h.snaplen)?;
                self.legacy = Some((lt, h.is_nanosecond_precision()));
                Ok(None)
            }
            PcapBlockOwned::Legacy(p) => {
                let (linktype, nanos) = self.legacy.unwrap_or((1, false));
                let frac = u64::from(p.ts_usec) * if nanos { 1 } else { 1000 };
                Ok(Some(Frame {
                    ts_ns: u64::from(p.ts_sec) * 1_000_000_000 + frac,
                    linktype,
                    data: p.data[..(p.caplen as usize).min(p.data.len())].to_vec(),
                }))
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                self.interfaces.clear();
                Ok(None)
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                let linktype = self.note_linktype(idb.linktype, idb.snaplen)?;
                self.interfaces.push(Interface {
                    linktype,
                    resolution: idb.ts_resolution().unwrap_or(1_000_000),
                    offset: idb.ts_offset(),
                });
                Ok(None)
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(i) = self.interfaces.get(epb.if_id as usize).copied() else {
                    return Err(input_error(
                        &self.path,
                        format!("packet on undeclared interface {}", epb.if_id),
                    ));
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ns = u128::from(units) * 1_000_000_000 / u128::from(i.resolution.max(1));
                let ts_ns = (ns as i128 + i128::from(i.offset) * 1_000_000_000) as u64;
                let len = (epb.caplen as usize).min(epb.data.len());
                Ok(Some(Frame {
                    ts_ns,
                    linktype: i.linktype,
                    data: epb.data[..len].to_vec(),
                }))
            }
            // Simple packets carry no timestamp: they cannot be timed, so they are skipped.
            PcapBlockOwned::NG(_) => Ok(None),
        }
    }
}

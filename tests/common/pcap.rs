//! Capture files written byte by byte, for the `--pcap` tests and the analysis bench: a
//! legacy pcap (microsecond timestamps, little-endian), as tcpdump writes it.

/// The file header of a legacy pcap of `linktype` (1: Ethernet) and `snaplen`.
pub fn pcap_header(linktype: u32, snaplen: u32) -> Vec<u8> {
    let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&snaplen.to_le_bytes());
    f.extend_from_slice(&linktype.to_le_bytes());
    f
}

/// Appends one whole frame captured at `ts_us` (microseconds since the epoch).
pub fn pcap_record(out: &mut Vec<u8>, ts_us: u64, frame: &[u8]) {
    out.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(frame);
}

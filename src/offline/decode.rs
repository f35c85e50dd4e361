//! One captured frame → the transport facts of its DNS packet: link layer (Ethernet
//! with VLAN tags, Linux cooked SLL and SLL2, raw IP, BSD/OpenBSD loopback), IPv4 or
//! IPv6 with extension headers (`etherparse`, lax so a snap-length cut still yields the
//! headers), then the UDP or TCP header (8 and 20+ bytes, read here). What is not DNS
//! over UDP/TCP is skipped and counted by reason.

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket};

use crate::capture::event::{TCP_FIN, TCP_RST};
use crate::capture::Protocol;

/// A UDP or TCP packet's facts, before roles are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub protocol: Protocol,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    /// L4 payload length on the wire.
    pub payload_len: u32,
    /// The payload bytes captured (a prefix when the snap length cut it).
    pub payload: &'a [u8],
}

/// Why a frame is not a DNS-capable packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not IPv4/IPv6, or an unreadable link or IP header.
    NotIp,
    /// IP, but neither UDP nor TCP.
    OtherProtocol,
    /// An IPv4/IPv6 fragment: its transport header is in another frame.
    Fragment,
    /// The transport header is cut by the snap length.
    Cut,
}

/// Decodes a frame of link type `linktype` (a value of [`super::SUPPORTED_LINKTYPES`]).
pub fn decode(linktype: i32, data: &[u8]) -> Result<Packet<'_>, Skip> {
    let sliced = match linktype {
        1 => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::NotIp)?,
        113 => {
            // Linux cooked v1: 16 bytes, the protocol (an EtherType) in the last two.
            let proto = data.get(14..16).ok_or(Skip::NotIp)?;
            let et = EtherType(u16::from_be_bytes([proto[0], proto[1]]));
            LaxSlicedPacket::from_ether_type(et, &data[16..])
        }
        276 => {
            // Linux cooked v2: 20 bytes, the protocol first.
            let proto = data.get(0..2).ok_or(Skip::NotIp)?;
            let rest = data.get(20..).ok_or(Skip::NotIp)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                rest,
            )
        }
        // BSD loopback: a 4-byte address family (host order in NULL, network in LOOP).
        0 | 108 => {
            LaxSlicedPacket::from_ip(data.get(4..).ok_or(Skip::NotIp)?).map_err(|_| Skip::NotIp)?
        }
        _ => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::NotIp)?,
    };
    let net = sliced.net.as_ref().ok_or(Skip::NotIp)?;
    let (src, dst, wire_ip_payload) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let hdr = h.slice().len() + v4.extensions().auth.map_or(0, |a| a.slice().len());
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                usize::from(h.total_len()).saturating_sub(hdr),
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len()),
            )
        }
        LaxNetSlice::Arp(_) => return Err(Skip::NotIp),
    };
    let ip = net.ip_payload_ref().ok_or(Skip::NotIp)?;
    if ip.fragmented {
        return Err(Skip::Fragment);
    }
    let bytes = ip.payload;
    // A jumbo or lying length field: trust what was captured when it is larger.
    let wire = wire_ip_payload.max(if ip.incomplete { 0 } else { bytes.len() });
    let be16 = |b: &[u8], o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    match ip.ip_number {
        etherparse::IpNumber::UDP => {
            let h = bytes.get(..8).ok_or(Skip::Cut)?;
            let payload = &bytes[8..];
            let udp_len = usize::from(be16(h, 4)).saturating_sub(8);
            Ok(Packet {
                src,
                dst,
                sport: be16(h, 0),
                dport: be16(h, 2),
                protocol: Protocol::Udp,
                tcp_flags: 0,
                tcp_seq: 0,
                payload_len: udp_len.max(payload.len()) as u32,
                payload: &payload[..payload.len().min(udp_len.max(payload.len()))],
            })
        }
        etherparse::IpNumber::TCP => {
            let fixed = bytes.get(..20).ok_or(Skip::Cut)?;
            let doff = usize::from(fixed[12] >> 4) * 4;
            if doff < 20 {
                return Err(Skip::NotIp);
            }
            let payload = bytes.get(doff..).ok_or(Skip::Cut)?;
            Ok(Packet {
                src,
                dst,
                sport: be16(fixed, 0),
                dport: be16(fixed, 2),
                protocol: Protocol::Tcp,
                tcp_flags: fixed[13] & (TCP_FIN | TCP_RST | 0x02 | 0x10 | 0x08),
                tcp_seq: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
                payload_len: wire.saturating_sub(doff).max(payload.len()) as u32,
                payload,
            })
        }
        _ => Err(Skip::OtherProtocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};

    fn udp_frame(builder: PacketBuilderStep<IpHeaders>, payload: &[u8]) -> Vec<u8> {
        let b = builder.udp(40000, 53);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn ethernet_vlan_ipv4_udp() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(10).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        let f = udp_frame(b, b"dnsdnsdnsdns");
        let p = decode(1, &f).unwrap();
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((p.sport, p.dport, p.protocol), (40000, 53, Protocol::Udp));
        assert_eq!((p.payload, p.payload_len), (&b"dnsdnsdnsdns"[..], 12));
        // Cut by the snap length inside the payload: the wire length survives.
        let p = decode(1, &f[..f.len() - 4]).unwrap();
        assert_eq!((p.payload.len(), p.payload_len), (8, 12));
        // Ethernet 14 + VLAN 4 + IPv4 20, then half a UDP header.
        assert_eq!(decode(1, &f[..42]), Err(Skip::Cut));
    }

    #[test]
    fn raw_ipv6_and_cooked_headers() {
        let b = PacketBuilder::ipv6([0; 16], [1; 16], 64);
        let f = udp_frame(b, b"0123456789ab");
        assert_eq!(decode(101, &f).unwrap().payload_len, 12);
        assert_eq!(decode(229, &f).unwrap().dport, 53);
        // SLL: 14 bytes of header, the EtherType, then the IP packet.
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x86ddu16.to_be_bytes());
        sll.extend_from_slice(&f);
        assert_eq!(decode(113, &sll).unwrap().sport, 40000);
        // SLL2: the EtherType first, 20 bytes in all.
        let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&f);
        assert_eq!(decode(276, &sll2).unwrap().sport, 40000);
        // BSD loopback: a 4-byte family.
        let mut null = vec![30, 0, 0, 0];
        null.extend_from_slice(&f);
        assert_eq!(decode(0, &null).unwrap().dport, 53);
        assert_eq!(decode(1, &[0; 10]), Err(Skip::NotIp));
    }

    #[test]
    fn ipv4_fragments_are_skipped_as_fragments() {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        let mut f = udp_frame(b, b"0123456789ab");
        // More-fragments flag set (byte 6 of the IPv4 header), then a non-first offset.
        f[6] = 0x20;
        let fix = |f: &mut Vec<u8>| {
            f[10] = 0;
            f[11] = 0;
            let sum = etherparse::Ipv4HeaderSlice::from_slice(f)
                .unwrap()
                .to_header()
                .calc_header_checksum();
            f[10..12].copy_from_slice(&sum.to_be_bytes());
        };
        fix(&mut f);
        assert_eq!(decode(228, &f), Err(Skip::Fragment));
        f[6] = 0x00;
        f[7] = 0x10;
        fix(&mut f);
        assert_eq!(decode(228, &f), Err(Skip::Fragment));
    }

    #[test]
    fn tcp_segment_keeps_seq_and_flags() {
        let b = PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(40000, 53, 1234, 100)
            .fin();
        let mut f = Vec::new();
        b.write(&mut f, b"\x00\x0cDNSMESSAGE!").unwrap();
        let p = decode(228, &f).unwrap();
        assert_eq!(p.protocol, Protocol::Tcp);
        assert_eq!(p.tcp_seq, 1234);
        assert_ne!(p.tcp_flags & TCP_FIN, 0);
        assert_eq!(p.payload_len, 13);
    }
}

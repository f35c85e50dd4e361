/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BPF-side helpers shared by the .bpf.c programs: finding the L4 header of a packet
 * seen by a cgroup_skb hook (data starts at the IP header), and the DNS port filter.
 * Each object includes its own copy; nothing here is seen by user space.
 */
#ifndef DNSDOC_PACKET_BPF_H
#define DNSDOC_PACKET_BPF_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "dnsdoc.h"

#define IPV6_MAX_EXT_HEADERS 6
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#define IP_OFFSET_MASK 0x1fff

/* The network layer of one packet. */
struct l3 {
	__u32 saddr[4];		/* network byte order; IPv4 uses saddr[0] */
	__u32 daddr[4];
	__u32 l4off;		/* offset of the TCP/UDP header */
	__u8 family;		/* 4 or 6 */
	__u8 protocol;		/* IPPROTO_UDP or IPPROTO_TCP */
};

/*
 * Parses the IP header (IPv6: walking hop-by-hop, routing, fragment, auth and
 * destination-options headers) down to a UDP or TCP header. Returns 0 on success, -1
 * for anything else: other protocols, non-first fragments (egress runs before
 * fragmentation and ingress after reassembly, so local sockets never produce them).
 */
static __always_inline int parse_l3_slow(struct __sk_buff *skb, struct l3 *p);

/*
 * Parses the IP header. Fast path: an IPv4 header, or an IPv6 header without extension
 * headers, in the skb's linear area, read in place (direct packet access, allowed to
 * cgroup_skb since 4.20): three bpf_skb_load_bytes calls per packet were a fifth of the
 * program's cost. Anything else takes parse_l3_slow.
 */
static __always_inline int parse_l3(struct __sk_buff *skb, struct l3 *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6h = data;
	struct iphdr *iph = data;

	if ((void *)(iph + 1) > data_end)
		return parse_l3_slow(skb, p);
	if ((*(__u8 *)data >> 4) == 4) {
		if (bpf_ntohs(iph->frag_off) & IP_OFFSET_MASK)
			return -1;
		p->family = 4;
		p->saddr[0] = iph->saddr;
		p->daddr[0] = iph->daddr;
		p->protocol = iph->protocol;
		p->l4off = (*(__u8 *)data & 0x0f) * 4;
	} else if ((*(__u8 *)data >> 4) == 6 && (void *)(ip6h + 1) <= data_end &&
		   (ip6h->nexthdr == IPPROTO_UDP || ip6h->nexthdr == IPPROTO_TCP)) {
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6h->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6h->daddr, 16);
		p->protocol = ip6h->nexthdr;
		p->l4off = sizeof(*ip6h);
	} else {
		return parse_l3_slow(skb, p);
	}
	return (p->protocol == IPPROTO_UDP || p->protocol == IPPROTO_TCP) ? 0 : -1;
}

/* The same with bpf_skb_load_bytes, for headers outside the linear area and IPv6
 * extension headers. */
static __always_inline int parse_l3_slow(struct __sk_buff *skb, struct l3 *p)
{
	__u8 version;

	if (bpf_skb_load_bytes(skb, 0, &version, 1) < 0)
		return -1;
	version >>= 4;

	if (version == 4) {
		struct iphdr iph;

		if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) < 0)
			return -1;
		if (bpf_ntohs(iph.frag_off) & IP_OFFSET_MASK)
			return -1;
		p->family = 4;
		p->saddr[0] = iph.saddr;
		p->daddr[0] = iph.daddr;
		p->protocol = iph.protocol;
		p->l4off = iph.ihl * 4;
	} else if (version == 6) {
		struct ipv6hdr ip6h;
		__u32 off = sizeof(ip6h);
		__u8 nexthdr;

		if (bpf_skb_load_bytes(skb, 0, &ip6h, sizeof(ip6h)) < 0)
			return -1;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6h.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6h.daddr, 16);
		nexthdr = ip6h.nexthdr;
		for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
			__u8 ext[2];

			if (nexthdr == IPPROTO_UDP || nexthdr == IPPROTO_TCP)
				break;
			if (nexthdr != NEXTHDR_HOP && nexthdr != NEXTHDR_ROUTING &&
			    nexthdr != NEXTHDR_FRAGMENT && nexthdr != NEXTHDR_AUTH &&
			    nexthdr != NEXTHDR_DEST)
				return -1;
			if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)) < 0)
				return -1;
			if (nexthdr == NEXTHDR_FRAGMENT) {
				__u16 frag;

				if (bpf_skb_load_bytes(skb, off + 2, &frag, sizeof(frag)) < 0)
					return -1;
				if (bpf_ntohs(frag) & 0xfff8)	/* not the first fragment */
					return -1;
				off += 8;
			} else if (nexthdr == NEXTHDR_AUTH) {
				off += ((__u32)ext[1] + 2) * 4;
			} else {
				off += ((__u32)ext[1] + 1) * 8;
			}
			nexthdr = ext[0];
		}
		p->protocol = nexthdr;
		p->l4off = off;
	} else {
		return -1;
	}
	return (p->protocol == IPPROTO_UDP || p->protocol == IPPROTO_TCP) ? 0 : -1;
}

/* Copies `len` bytes at `off` into `dst`: in place when they are in the linear area
 * (off is at most a few hundred bytes: the IP headers), else with bpf_skb_load_bytes. */
#define LOAD_HEADER(skb, off, dst)                                                      \
	({                                                                              \
		void *_data = (void *)(long)(skb)->data;                                \
		void *_end = (void *)(long)(skb)->data_end;                             \
		__u32 _off = (off);                                                     \
		int _rc = 0;                                                            \
		if (_off <= 512 && _data + _off + sizeof(*(dst)) <= _end)               \
			__builtin_memcpy((dst), _data + _off, sizeof(*(dst)));          \
		else                                                                    \
			_rc = bpf_skb_load_bytes((skb), _off, (dst), sizeof(*(dst)));   \
		_rc;                                                                    \
	})

/* The transport layer of one packet. */
struct l4 {
	__u32 tcp_seq;		/* TCP sequence number of the first payload byte */
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 tcp_flags;		/* TCP flags byte */
};

/* Fills the ports (and for TCP, sequence number and flags) of `ev` from the transport
 * header at p->l4off and sets *payload_off. Returns 0, or -1 if the header is cut. */
static __always_inline int parse_l4(struct __sk_buff *skb, const struct l3 *p,
				    struct l4 *ev, __u32 *payload_off)
{
	if (p->protocol == IPPROTO_UDP) {
		struct udphdr uh;

		if (LOAD_HEADER(skb, p->l4off, &uh) < 0)
			return -1;
		ev->sport = bpf_ntohs(uh.source);
		ev->dport = bpf_ntohs(uh.dest);
		*payload_off = p->l4off + sizeof(uh);
		return 0;
	}
	if (p->protocol == IPPROTO_TCP) {
		struct tcphdr th;

		if (LOAD_HEADER(skb, p->l4off, &th) < 0)
			return -1;
		ev->sport = bpf_ntohs(th.source);
		ev->dport = bpf_ntohs(th.dest);
		ev->tcp_seq = bpf_ntohl(th.seq);
		/* Byte 13 of the TCP header holds the flags. */
		ev->tcp_flags = ((__u8 *)&th)[13];
		*payload_off = p->l4off + th.doff * 4;
		return 0;
	}
	return -1;
}

#endif /* DNSDOC_PACKET_BPF_H */

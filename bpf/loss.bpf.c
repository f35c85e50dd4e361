// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fault injection for `dnsdoc chaos --induce dns-loss`: drops a random fraction of the
 * DNS packets to or from one target (address and port, UDP and TCP, IPv4 and IPv6).
 *
 * cgroup_skb programs drop a packet by returning 0; everything that does not match the
 * target returns 1 untouched. On egress a plain 0 would make the sender's sendmsg() fail
 * with EPERM, which no real network does: there we return 2 ("drop, congestion
 * notified"), which the kernel turns into NET_XMIT_DROP, and UDP reports that as
 * success unless the socket asked for IP_RECVERR. The loss is then as silent as on a
 * wire, and TCP sees it as local congestion and retransmits. User space attaches these programs with BPF links, which
 * the kernel removes when the last file descriptor closes: a crash or kill -9 of dnsdoc
 * cannot leave the fault behind.
 *
 * Each packet is judged once. On egress every matching packet is judged where it is
 * sent (queries at the client, answers at the server when the server is in the cgroup).
 * On ingress only packets that came from another machine are judged: a loopback packet
 * was already judged on its way out if its sender is in the cgroup, and judging it
 * twice would square the loss rate.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "packet.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The target, set by user space before load. */
const volatile __u32 target_family = 0;		/* 4 or 6 */
const volatile __u32 target_addr[4] = {};	/* network byte order; IPv4 uses [0] */
const volatile __u32 target_port = 0;		/* host byte order */
/* A matching packet is dropped when bpf_get_prandom_u32() < drop_threshold; drop_all
 * covers a fraction of 1 (the threshold cannot express 2^32). */
const volatile __u32 drop_threshold = 0;
const volatile __u32 drop_all = 0;

/* Indexes of the per-CPU `counters` array (mirrored in src/chaos/loss.rs). */
enum loss_counter {
	LOSS_EGRESS_MATCHED = 0,
	LOSS_EGRESS_DROPPED = 1,
	LOSS_INGRESS_MATCHED = 2,
	LOSS_INGRESS_DROPPED = 3,
	LOSS_CTR_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Loopback is ifindex 1 in every network namespace. */
#define LOOPBACK_IFINDEX 1

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

struct ports {
	__be16 source;
	__be16 dest;
};

/* 1 when the packet is TCP or UDP to or from the target. */
static __always_inline int matches(struct __sk_buff *skb)
{
	int to_target = 1, from_target = 1;
	struct l3 l3 = {};
	struct ports p;

	if (parse_l3(skb, &l3) < 0 || l3.family != target_family)
		return 0;
	for (int i = 0; i < 4; i++) {
		if (i > 0 && l3.family == 4)
			break;
		if (l3.daddr[i] != target_addr[i])
			to_target = 0;
		if (l3.saddr[i] != target_addr[i])
			from_target = 0;
	}
	if (!to_target && !from_target)
		return 0;
	/* UDP and TCP both start with source and destination port. */
	if (bpf_skb_load_bytes(skb, l3.l4off, &p, sizeof(p)) < 0)
		return 0;
	if (to_target && bpf_ntohs(p.dest) == target_port)
		return 1;
	if (from_target && bpf_ntohs(p.source) == target_port)
		return 1;
	return 0;
}

/* Verdicts. Egress programs may return 0-3: bit 0 keeps the packet, bit 1 notifies
 * congestion. Ingress programs return 0 or 1. */
#define VERDICT_PASS 1
#define VERDICT_DROP 0
#define VERDICT_DROP_CN 2

/* 1 when this packet is to be dropped. */
static __always_inline int judge(__u32 matched_idx, __u32 dropped_idx)
{
	count(matched_idx);
	if (drop_all || bpf_get_prandom_u32() < drop_threshold) {
		count(dropped_idx);
		return 1;
	}
	return 0;
}

SEC("cgroup_skb/egress")
int loss_egress(struct __sk_buff *skb)
{
	if (!matches(skb))
		return VERDICT_PASS;
	if (judge(LOSS_EGRESS_MATCHED, LOSS_EGRESS_DROPPED))
		return VERDICT_DROP_CN;
	return VERDICT_PASS;
}

SEC("cgroup_skb/ingress")
int loss_ingress(struct __sk_buff *skb)
{
	if (skb->ifindex == LOOPBACK_IFINDEX)
		return VERDICT_PASS;
	if (!matches(skb))
		return VERDICT_PASS;
	if (judge(LOSS_INGRESS_MATCHED, LOSS_INGRESS_DROPPED))
		return VERDICT_DROP;
	return VERDICT_PASS;
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packet capture. cgroup_skb programs see every L3 packet of every socket in the
 * attached cgroup subtree, in all network namespaces, for UDP and TCP alike. For each
 * packet to or from a DNS port we emit one ring-buffer record: a `struct dns_event`
 * header plus up to DNSDOC_MAX_PAYLOAD bytes of payload, and continuation records for
 * the rest of a longer payload (large EDNS answers, TCP segments up to 64 KiB). Parsing, TCP reassembly and
 * query/response matching happen in user space. Every lost record is counted.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "dnsdoc.h"
#include "dns_ports.bpf.h"
#include "packet.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Wake user space only once this much data waits; it also drains on a short timer.
 * Waking it per record cost a context switch per packet (a quarter of its CPU). */
const volatile __u64 wakeup_bytes = 0;
/* Records that land in [wakeup_bytes, wakeup_bytes + WAKEUP_WINDOW) of waiting data wake
 * user space: a few per crossing (records are at most 1128 bytes). */
#define WAKEUP_WINDOW 4096
/* Set by user space when this kernel lets cgroup_skb programs call
 * bpf_get_current_pid_tgid/comm (6.18 does; 5.10-6.12 reject them). When 0 the verifier
 * prunes those calls and owners come only from the sock_addr hooks, socket storage
 * cloned to accepted sockets, and user space (sock_diag). See src/capture/probe.rs. */
const volatile __u32 skb_has_task = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);	/* user space may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNSDOC_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* A record is assembled here, then copied into the ring buffer with its real size. */
struct event_buf {
	struct dns_event hdr;
	__u8 payload[DNSDOC_MAX_PAYLOAD];
};

/*
 * One scratch slot per nesting level. Egress runs in process context with softirqs
 * enabled, so an ingress (or softirq egress) program can interrupt it on the same CPU;
 * a single per-CPU buffer would then be overwritten mid-record. Interrupts nest like a
 * stack, so a per-CPU depth counter hands each level its own slot.
 */
#define SCRATCH_SLOTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct event_buf);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} depth SEC(".maps");

/* Processes whose first socket already woke user space (see fill_owner). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} announced_tgids SEC(".maps");

/* Make the record and the counter indices visible in the generated skeleton's `types`
 * module, so user space reads them from there instead of restating them. */
struct dns_event _event = {};
enum dnsdoc_counter _counter = DNSDOC_CTR_PACKETS;

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

/* Who owns this socket: from storage, else (egress, where the kernel allows it) the
 * current task. Returns 1 the first time a known owner is reported for this socket and
 * that owner is a process not announced before: user space is then woken at once to
 * read /proc/PID while a short-lived client still exists. Once per process, not per
 * socket: a client that opens a socket per query (glibc, dig's worker) would otherwise
 * pay a wakeup of dnsdoc in every lookup. */
static __always_inline int fill_owner(struct __sk_buff *skb, struct dns_event *ev, int egress)
{
	struct bpf_sock *sk = skb->sk;
	struct sock_owner *owner;

	if (egress && skb_has_task)
		ev->task_tgid = bpf_get_current_pid_tgid() >> 32;
	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 0;
	/* Storage is created here only to record the current task below. */
	owner = bpf_sk_storage_get(&sock_owners, sk, 0,
				   egress && skb_has_task ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!owner) {
		if (egress && skb_has_task)
			count(DNSDOC_CTR_DROP_STORAGE);
		return 0;
	}
	/* A socket that existed before dnsdoc started has no owner yet. On egress a UDP
	 * send runs in the sending task, and a TCP write in the writing task. */
	if (skb_has_task && owner->tgid == 0 && egress && ev->task_tgid != 0) {
		owner->tgid = ev->task_tgid;
		owner->cgroup_id = bpf_sk_cgroup_id(sk);
		bpf_get_current_comm(owner->comm, sizeof(owner->comm));
	}
	ev->owner_tgid = owner->tgid;
	ev->cgroup_id = owner->cgroup_id;
	__builtin_memcpy(ev->owner_comm, owner->comm, sizeof(ev->owner_comm));
	if (owner->tgid && !owner->announced) {
		__u8 one = 1;

		owner->announced = 1;
		if (bpf_map_lookup_elem(&announced_tgids, &owner->tgid))
			return 0;
		bpf_map_update_elem(&announced_tgids, &owner->tgid, &one, BPF_ANY);
		return 1;
	}
	return 0;
}

static __always_inline void emit(struct __sk_buff *skb, int egress, struct event_buf *buf);

static __always_inline int handle(struct __sk_buff *skb, int egress)
{
	__u32 zero = 0, slot;
	struct event_buf *buf;
	__u32 *level;

	level = bpf_map_lookup_elem(&depth, &zero);
	if (!level)
		return 1;
	slot = *level;
	if (slot >= SCRATCH_SLOTS) {
		count(DNSDOC_CTR_DROP_NESTED);
		return 1;
	}
	buf = bpf_map_lookup_elem(&scratch, &slot);
	if (!buf)
		return 1;
	*level = slot + 1;
	emit(skb, egress, buf);
	*level = slot;
	return 1;
}

/*
 * Emits the payload bytes past the first record of the packet whose record the current
 * scratch slot holds, DNSDOC_MAX_PAYLOAD per record (chunk_off = their offset), up to
 * DNSDOC_MAX_CHUNKS records in all. A global function, so the verifier checks its loop
 * once on its own: inlined, the loop was re-verified on every path through the IP and
 * transport parsing, and loading took 13 times longer (0.4 s; seconds under qemu).
 * Stops at the first record that cannot be read or queued; user space sees the rest
 * missing and counts the message as cut. The last record carries `last_flags` (the
 * wakeup the first would have had), so user space is not woken mid-packet.
 */
__noinline int emit_continuations(struct __sk_buff *skb, __u32 payload_off, __u32 len,
				  __u64 last_flags)
{
	__u32 zero = 0, slot;
	struct event_buf *buf;
	__u32 *level;

	if (!skb)
		return 0;
	level = bpf_map_lookup_elem(&depth, &zero);
	if (!level || *level == 0)
		return 0;
	slot = *level - 1;
	if (slot >= SCRATCH_SLOTS)
		return 0;
	buf = bpf_map_lookup_elem(&scratch, &slot);
	if (!buf)
		return 0;
	for (__u32 i = 1; i < DNSDOC_MAX_CHUNKS; i++) {
		__u32 off = i * DNSDOC_MAX_PAYLOAD;
		__u32 n;

		if (off >= len)
			break;
		n = len - off;
		if (n > DNSDOC_MAX_PAYLOAD)
			n = DNSDOC_MAX_PAYLOAD;
		/* 1..=MAX for the verifier (see emit). */
		n = ((n - 1) & (DNSDOC_MAX_PAYLOAD - 1)) + 1;
		if (bpf_skb_load_bytes(skb, payload_off + off, buf->payload, n) < 0)
			return i;
		buf->hdr.captured_len = n;
		buf->hdr.chunk_off = off;
		if (bpf_ringbuf_output(&events, buf, sizeof(struct dns_event) + n,
				       off + n >= len ? last_flags : BPF_RB_NO_WAKEUP) < 0)
			return i;
	}
	return 0;
}

/* Builds the record for one packet in `buf` and copies it into the ring buffer. */
static __always_inline void emit(struct __sk_buff *skb, int egress, struct event_buf *buf)
{
	__u32 l4off, payload_off;
	struct dns_event *ev;
	struct l3 l3 = {};
	int new_owner;
	__u64 len, n;
	int proto;

	ev = &buf->hdr;
	__builtin_memset(ev, 0, sizeof(*ev));

	if (parse_l3(skb, &l3) < 0)
		return;
	ev->family = l3.family;
	__builtin_memcpy(ev->saddr, l3.saddr, 16);
	__builtin_memcpy(ev->daddr, l3.daddr, 16);
	proto = l3.protocol;
	l4off = l3.l4off;
	if (proto == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, l4off, &uh, sizeof(uh)) < 0)
			return;
		ev->sport = bpf_ntohs(uh.source);
		ev->dport = bpf_ntohs(uh.dest);
		payload_off = l4off + sizeof(uh);
	} else if (proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, l4off, &th, sizeof(th)) < 0)
			return;
		ev->sport = bpf_ntohs(th.source);
		ev->dport = bpf_ntohs(th.dest);
		ev->tcp_seq = bpf_ntohl(th.seq);
		/* Byte 13 of the TCP header holds the flags. */
		ev->tcp_flags = ((__u8 *)&th)[13];
		payload_off = l4off + th.doff * 4;
	} else {
		return;
	}
	if (!is_dns_port(ev->sport) && !is_dns_port(ev->dport))
		return;
	if (payload_off >= skb->len) {
		/* No payload: only FIN and RST matter (they end a TCP stream). */
		if (proto != IPPROTO_TCP || !(ev->tcp_flags & 0x05))
			return;
		len = 0;
	} else {
		len = skb->len - payload_off;
	}

	count(DNSDOC_CTR_PACKETS);
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cookie = bpf_get_socket_cookie(skb);
	ev->protocol = proto;
	ev->direction = egress ? DNSDOC_EGRESS : DNSDOC_INGRESS;
	ev->payload_len = len;
	new_owner = fill_owner(skb, ev, egress);

	/* Wake user space at once for a socket's first record with a known owner, so it
	 * reads /proc/PID while a short-lived client (dig) still waits for its answer.
	 * Past the threshold, wake it once, as the data crosses it, not for every record
	 * after: a consumer that lags is already awake, and a wakeup per record cost more
	 * than the program itself (4-6 us per packet with a slow consumer). If two CPUs
	 * race past the window, user space's 10 ms drain timer still picks the data up. */
	__u64 flags = BPF_RB_NO_WAKEUP;
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	if (new_owner || (avail >= wakeup_bytes && avail < wakeup_bytes + WAKEUP_WINDOW))
		flags = BPF_RB_FORCE_WAKEUP;

	/* The first record here; the rest of a longer payload in continuation records,
	 * which user space joins by (cookie, ts_ns) and counts as cut when it does not get
	 * them all (past 64 KiB, or a continuation lost to a full ring). */
	n = len > DNSDOC_MAX_PAYLOAD ? DNSDOC_MAX_PAYLOAD : len;
	barrier_var(n);
	if (n > 0 && n <= DNSDOC_MAX_PAYLOAD) {
		/* 5.10-6.1 verifiers lose `n >= 1` across the checks above and reject a
		 * possibly-zero size; the mask keeps 1..=MAX (MAX is a power of two). */
		n = ((n - 1) & (DNSDOC_MAX_PAYLOAD - 1)) + 1;
		if (bpf_skb_load_bytes(skb, payload_off, buf->payload, n) < 0) {
			count(DNSDOC_CTR_DROP_LOAD);
			return;
		}
	} else {
		n = 0;
	}
	ev->captured_len = n;
	barrier_var(n);
	if (n > DNSDOC_MAX_PAYLOAD)
		return;
	if (bpf_ringbuf_output(&events, buf, sizeof(struct dns_event) + n,
			       len > DNSDOC_MAX_PAYLOAD ? BPF_RB_NO_WAKEUP : flags) < 0) {
		count(DNSDOC_CTR_DROP_RINGBUF);
		return;
	}
	if (len > DNSDOC_MAX_PAYLOAD)
		emit_continuations(skb, payload_off, len, flags);
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb) { return handle(skb, 1); }

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb) { return handle(skb, 0); }

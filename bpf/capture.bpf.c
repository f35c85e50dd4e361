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

/* Wake user space only about once this much data waits (each of the n_cpus CPUs after
 * its share); it also drains on a short timer. Waking it per record cost a context
 * switch per packet (a quarter of its CPU). */
const volatile __u64 wakeup_bytes = 0;
const volatile __u32 n_cpus = 1;
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

/* Bytes queued on this CPU since it last woke user space (see wake_flags). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unannounced_bytes SEC(".maps");

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

/* Fills the owner fields of `ev` (a record in the ring): from socket storage, else (on
 * egress, where the kernel allows it) the current task, which also becomes the owner of
 * a socket that existed before dnsdoc started. Otherwise the task is read only on UDP
 * egress (see below): a TCP or ingress packet of an owned socket skips the helper.
 * Returns 1 the first time a known owner is reported for this socket and that owner is
 * a process not announced before: user space is then woken at once to read /proc/PID
 * while a short-lived client still exists. Once per process, not per socket: a client
 * that opens a socket per query (glibc, dig's worker) would otherwise pay a wakeup of
 * dnsdoc in every lookup. */
static __always_inline int fill_owner(struct __sk_buff *skb, struct dns_event *ev, int egress,
				      int udp)
{
	struct bpf_sock *sk = skb->sk;
	int task = egress && skb_has_task;
	struct sock_owner *owner;

	ev->cgroup_id = 0;
	ev->owner_tgid = 0;
	ev->task_tgid = 0;
	if (!sk)
		goto unowned;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		goto unowned;
	/* Storage is created here only to record the current task below. */
	owner = bpf_sk_storage_get(&sock_owners, sk, 0, task ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!owner) {
		if (task)
			count(DNSDOC_CTR_DROP_STORAGE);
		goto unowned;
	}
	/* On egress (where the kernel allows it) the sending task is at hand. It names a
	 * socket that existed before dnsdoc started. For UDP, always sent from the sender's
	 * own sendmsg, it also follows a socket shared by several processes (a pre-forked
	 * server) to the one sending now: what the sendmsg and recvmsg hooks do elsewhere,
	 * which on such kernels are not attached (they were two program runs per query on
	 * a server's own path; see owner.bpf.c). TCP may transmit from a softirq (segments
	 * released by an ACK), where the current task is anyone: there only a socket
	 * without an owner takes it. */
	if (task && (udp || owner->tgid == 0)) {
		__u32 cur = bpf_get_current_pid_tgid() >> 32;

		ev->task_tgid = cur;
		if (cur != 0 && cur != owner->tgid) {
			owner->tgid = cur;
			owner->cgroup_id = bpf_sk_cgroup_id(sk);
			owner->announced = 0;
			bpf_get_current_comm(owner->comm, sizeof(owner->comm));
		}
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
unowned:
	/* User space takes the sending task as the owner of an egress packet. */
	if (task)
		ev->task_tgid = bpf_get_current_pid_tgid() >> 32;
	__builtin_memset(ev->owner_comm, 0, sizeof(ev->owner_comm));
	return 0;
}

/* Wake user space once this CPU has queued its share of wakeup_bytes since it last
 * did; user space also drains on a short timer. A per-CPU count, not the ring's fill
 * level: reading the ring's consumer position pulled a cache line user space writes on
 * every poll. */
static __always_inline __u64 wake_flags(__u64 bytes)
{
	__u32 zero = 0;
	__u64 *queued = bpf_map_lookup_elem(&unannounced_bytes, &zero);

	if (!queued)
		return 0;
	*queued += bytes;
	if (*queued < wakeup_bytes / n_cpus)
		return BPF_RB_NO_WAKEUP;
	*queued = 0;
	return BPF_RB_FORCE_WAKEUP;
}

/*
 * A continuation record: reserves room for `room` payload bytes (a constant: the
 * verifier wants one per reserve call), copies the short header `hdr` and `n` <= room
 * payload bytes from the packet straight into it and submits it. Returns 0, or -1 when
 * the ring is full or the payload cannot be read.
 */
static __always_inline int submit(struct __sk_buff *skb, const struct dns_event *hdr,
				  __u32 payload_off, __u32 n, const __u32 room, __u64 flags)
{
	struct dns_event *rec;

	rec = bpf_ringbuf_reserve(&events, sizeof(struct dns_event) + room, 0);
	if (!rec)
		return -1;
	__builtin_memcpy(rec, hdr, sizeof(*rec));
	if (n > room)
		n = room;
	/* 1..=room for the verifier (room is a power of two); n == 0 reads nothing. The
	 * barrier keeps clang from proving the mask redundant and dropping it: 5.10-6.18
	 * verifiers lose the bounds across the clamp above. */
	barrier_var(n);
	if (n > 0 && bpf_skb_load_bytes(skb, payload_off, rec + 1, ((n - 1) & (room - 1)) + 1) < 0) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		return -2;
	}
	bpf_ringbuf_submit(rec, flags);
	return 0;
}

/*
 * Emits the payload bytes past the first record, DNSDOC_MAX_PAYLOAD per record
 * (chunk_off = their offset), up to DNSDOC_MAX_CHUNKS records in all. Continuations
 * carry only what user space joins them by: the first record's cookie and ts_ns.
 * A global function, so the verifier checks its loop once on its own: inlined, the loop
 * was re-verified on every path through the IP and transport parsing, and loading took
 * 13 times longer (0.4 s; seconds under qemu). Stops at the first record that cannot be
 * read or queued; user space sees the rest missing and counts the message as cut. The
 * last record carries `last_flags`, so user space is not woken mid-packet.
 * `off_len`: payload offset in the upper 32 bits, payload length in the lower.
 */
__noinline int emit_continuations(struct __sk_buff *skb, __u64 off_len, __u64 cookie,
				  __u64 ts_ns, __u64 last_flags)
{
	__u32 payload_off = off_len >> 32, len = (__u32)off_len;
	struct dns_event hdr = {};

	if (!skb)
		return 0;
	hdr.ts_ns = ts_ns;
	hdr.cookie = cookie;
	hdr.payload_len = len;
	for (__u32 i = 1; i < DNSDOC_MAX_CHUNKS; i++) {
		__u32 off = i * DNSDOC_MAX_PAYLOAD;
		__u32 n;

		if (off >= len)
			break;
		n = len - off;
		if (n > DNSDOC_MAX_PAYLOAD)
			n = DNSDOC_MAX_PAYLOAD;
		hdr.captured_len = n;
		hdr.chunk_off = off;
		if (submit(skb, &hdr, payload_off + off, n, DNSDOC_MAX_PAYLOAD,
			   off + n >= len ? last_flags : BPF_RB_NO_WAKEUP) < 0)
			return i;
	}
	return 0;
}

/*
 * Reserves the record of one packet with room for `room` payload bytes (a constant: the
 * verifier wants one per reserve call, and the 5.10 verifier one per path through the
 * payload load below; so each size class inlines its own copy), writes the header
 * straight into it (assembling it on the stack and copying it in cost a zeroing and a
 * copy of 104 bytes per packet), loads `n` <= room payload bytes and submits it, then
 * any continuation records. Returns 0, -1 when the ring is full, -2 when the payload
 * cannot be read.
 */
static __always_inline int emit(struct __sk_buff *skb, const struct l3 *l3, const struct l4 *l4,
				__u32 payload_off, __u32 len, __u32 n, int egress, const __u32 room)
{
	struct dns_event *rec;
	__u64 flags, ts_ns, cookie;

	rec = bpf_ringbuf_reserve(&events, sizeof(struct dns_event) + room, 0);
	if (!rec)
		return -1;
	ts_ns = bpf_ktime_get_ns();
	cookie = bpf_get_socket_cookie(skb);
	rec->ts_ns = ts_ns;
	rec->cookie = cookie;
	__builtin_memcpy(rec->saddr, l3->saddr, 16);
	__builtin_memcpy(rec->daddr, l3->daddr, 16);
	rec->sport = l4->sport;
	rec->dport = l4->dport;
	rec->family = l3->family;
	rec->protocol = l3->protocol;
	rec->direction = egress ? DNSDOC_EGRESS : DNSDOC_INGRESS;
	rec->tcp_flags = l4->tcp_flags;
	rec->tcp_seq = l4->tcp_seq;
	rec->payload_len = len;
	rec->captured_len = n;
	rec->chunk_off = 0;

	/* Wake user space at once for a socket's first record with a known owner, so it
	 * reads /proc/PID while a short-lived client (dig) still waits for its answer. */
	flags = wake_flags(sizeof(*rec) + n);
	if (fill_owner(skb, rec, egress, l3->protocol == IPPROTO_UDP))
		flags = BPF_RB_FORCE_WAKEUP;

	/* 1..=room for the verifier (room is a power of two); n == 0 reads nothing. The
	 * barrier keeps clang from proving the mask redundant and dropping it: 5.10-6.18
	 * verifiers lose the bounds across the clamp in handle(). */
	barrier_var(n);
	if (n > 0 && bpf_skb_load_bytes(skb, payload_off, rec + 1, ((n - 1) & (room - 1)) + 1) < 0) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		return -2;
	}
	/* The first record here; the rest of a longer payload in continuation records,
	 * which user space joins by (cookie, ts_ns) and counts as cut when it does not get
	 * them all (past 64 KiB, or a continuation lost to a full ring). */
	bpf_ringbuf_submit(rec, len > DNSDOC_MAX_PAYLOAD ? BPF_RB_NO_WAKEUP : flags);
	if (len > DNSDOC_MAX_PAYLOAD)
		emit_continuations(skb, ((__u64)payload_off << 32) | len, cookie, ts_ns, flags);
	return 0;
}

/* One record per packet, in the smallest size class that holds its payload: most DNS
 * messages are far shorter than DNSDOC_MAX_PAYLOAD, and the ring fills with what is
 * reserved, not with what is used. */
static __always_inline int handle(struct __sk_buff *skb, int egress)
{
	__u32 payload_off;
	struct l3 l3 = {};
	struct l4 l4 = {};
	__u32 len, n;
	int rc;

	if (parse_l3(skb, &l3) < 0)
		return 1;
	if (parse_l4(skb, &l3, &l4, &payload_off) < 0)
		return 1;
	if (!is_dns_port(l4.sport) && !is_dns_port(l4.dport))
		return 1;
	if (payload_off >= skb->len) {
		/* No payload: only FIN and RST matter (they end a TCP stream). */
		if (l3.protocol != IPPROTO_TCP || !(l4.tcp_flags & 0x05))
			return 1;
		len = 0;
	} else {
		len = skb->len - payload_off;
	}

	count(DNSDOC_CTR_PACKETS);
	n = len > DNSDOC_MAX_PAYLOAD ? DNSDOC_MAX_PAYLOAD : len;
	if (n <= 64)
		rc = emit(skb, &l3, &l4, payload_off, len, n, egress, 64);
	else if (n <= 128)
		rc = emit(skb, &l3, &l4, payload_off, len, n, egress, 128);
	else if (n <= 256)
		rc = emit(skb, &l3, &l4, payload_off, len, n, egress, 256);
	else if (n <= 512)
		rc = emit(skb, &l3, &l4, payload_off, len, n, egress, 512);
	else
		rc = emit(skb, &l3, &l4, payload_off, len, n, egress, DNSDOC_MAX_PAYLOAD);
	if (rc < 0)
		count(rc == -1 ? DNSDOC_CTR_DROP_RINGBUF : DNSDOC_CTR_DROP_LOAD);
	return 1;
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb) { return handle(skb, 1); }

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb) { return handle(skb, 0); }

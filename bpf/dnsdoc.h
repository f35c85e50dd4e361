/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structs and constants shared by the BPF programs and dnsdoc's user space.
 * User space decodes `struct dns_event` byte by byte (src/capture/event.rs), so every
 * field has a fixed size and offset: change one side, change the other and its test.
 */
#ifndef DNSDOC_H
#define DNSDOC_H

/* Bytes of DNS payload per ring record. A longer payload follows in continuation
 * records (chunk_off > 0) of the same packet, up to DNSDOC_MAX_CHUNKS of them: 64 KiB,
 * the largest DNS message and the largest TCP segment on loopback. Only what is beyond
 * that is cut; `payload_len` still says the real length. */
#define DNSDOC_MAX_PAYLOAD 1024
#define DNSDOC_MAX_CHUNKS 64
/* How many DNS ports one instance watches (`--port`, repeatable). */
#define DNSDOC_MAX_PORTS 8
#define DNSDOC_COMM_LEN 16

enum dnsdoc_direction {
	DNSDOC_EGRESS = 0,	/* leaving a local socket */
	DNSDOC_INGRESS = 1,	/* arriving at a local socket */
};

/* Indexes of the per-CPU `counters` array. */
enum dnsdoc_counter {
	DNSDOC_CTR_PACKETS = 0,		/* DNS packets seen (before any drop) */
	DNSDOC_CTR_DROP_RINGBUF = 1,	/* event lost: ring buffer full */
	DNSDOC_CTR_DROP_LOAD = 2,	/* event lost: payload could not be read */
	DNSDOC_CTR_DROP_STORAGE = 3,	/* owner not recorded: socket storage full */
	DNSDOC_CTR_UNUSED_4 = 4,	/* was: payloads cut (now counted per message in user space) */
	DNSDOC_CTR_UNUSED_5 = 5,	/* was: nested deeper than scratch slots (records are now reserved in place) */
	DNSDOC_CTR_MAX = 8,
};

/* Who uses a socket: filled in process context (sock_addr hooks, UDP egress). */
struct sock_owner {
	__u64 cgroup_id;
	__u32 tgid;
	__u32 announced;		/* capture already woke user space for this owner */
	char comm[DNSDOC_COMM_LEN];	/* thread name of the user; user space prefers /proc */
};

/* One DNS packet. `captured_len` bytes of L4 payload follow the header in the record. */
struct dns_event {
	__u64 ts_ns;		/* bpf_ktime_get_ns() at the hook: CLOCK_MONOTONIC */
	__u64 cookie;		/* socket cookie: the same socket has the same on both paths */
	__u64 cgroup_id;	/* owner's cgroup (0 = unknown) */
	__u32 owner_tgid;	/* from socket storage (0 = not yet known) */
	__u32 task_tgid;	/* current task; only meaningful on egress */
	char owner_comm[DNSDOC_COMM_LEN];
	__u8 saddr[16];		/* IPv4 uses the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 family;		/* 4 or 6 */
	__u8 protocol;		/* IPPROTO_UDP or IPPROTO_TCP */
	__u8 direction;		/* enum dnsdoc_direction */
	__u8 tcp_flags;		/* TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ...) */
	__u32 tcp_seq;		/* TCP sequence number of the first payload byte */
	__u32 payload_len;	/* L4 payload length in the packet */
	__u32 captured_len;	/* payload bytes that follow this header */
	__u32 chunk_off;	/* offset of those bytes in the payload; > 0: a continuation */
};

#endif /* DNSDOC_H */

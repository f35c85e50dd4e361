/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by capture.bpf.c and owner.bpf.c: the `--port` filter (set in .rodata by user
 * space before load) and the socket-owner storage. Both objects declare `sock_owners`
 * from this one definition; user space makes them use a single map (reuse_fd).
 */
#ifndef DNSDOC_PORTS_BPF_H
#define DNSDOC_PORTS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "dnsdoc.h"

const volatile __u16 dns_ports[DNSDOC_MAX_PORTS] = {};
const volatile __u32 n_ports = 0;

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	/* CLONE: a TCP listener's owner is copied to the sockets it accepts. */
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

static __always_inline int is_dns_port(__u16 port)
{
	for (int i = 0; i < DNSDOC_MAX_PORTS; i++) {
		if (i >= n_ports)
			break;
		if (dns_ports[i] == port)
			return 1;
	}
	return 0;
}

#endif /* DNSDOC_PORTS_BPF_H */

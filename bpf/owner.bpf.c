// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket attribution. The sock_addr hooks run in the process that binds, connects,
 * sends or receives on a DNS socket, so the current task there is the socket's real
 * user. We record it in socket storage, which capture.bpf.c reads for every packet --
 * including ingress packets, where the current task is whoever ran the softirq.
 *
 * Every kernel from 5.10 on allows these helpers here (unlike cgroup_skb, see
 * capture.bpf.c). A TCP server's accepted sockets never pass through these hooks: the
 * storage map is BPF_F_CLONE, so they inherit the owner recorded on the listener at
 * bind(). Sockets created before dnsdoc started are resolved by user space.
 *
 * Where cgroup_skb programs can read the current task (6.18 on), UDP egress names the
 * sender itself and the sendmsg/recvmsg hooks are not loaded (src/capture/mod.rs): on
 * a saturated server they were two program runs per query on its own path.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "dnsdoc.h"
#include "dns_ports.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void record_owner(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_owner *owner;
	__u32 tgid;

	if (!sk)
		return;
	/* user_port: the peer (connect, sendmsg), source (recvmsg) or requested local
	 * (bind) port, network order; src_port: our bound port, host order -- 53 on a
	 * server socket. */
	if (!is_dns_port(bpf_ntohs(ctx->user_port)) && !is_dns_port(sk->src_port))
		return;
	owner = bpf_sk_storage_get(&sock_owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!owner)
		return;
	tgid = bpf_get_current_pid_tgid() >> 32;
	/* Most calls come from the owner we already know (every recvmsg of a server). */
	if (owner->tgid == tgid)
		return;
	owner->tgid = tgid;
	owner->cgroup_id = bpf_get_current_cgroup_id();
	owner->announced = 0;
	bpf_get_current_comm(owner->comm, sizeof(owner->comm));
}

/* Every hook returns 1: dnsdoc observes, it never refuses an operation. */
SEC("cgroup/bind4")
int owner_bind4(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/bind6")
int owner_bind6(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/connect4")
int owner_connect4(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/connect6")
int owner_connect6(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/sendmsg4")
int owner_sendmsg4(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/sendmsg6")
int owner_sendmsg6(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/recvmsg4")
int owner_recvmsg4(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

SEC("cgroup/recvmsg6")
int owner_recvmsg6(struct bpf_sock_addr *ctx) { record_owner(ctx); return 1; }

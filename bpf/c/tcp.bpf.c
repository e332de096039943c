// SPDX-License-Identifier: GPL-2.0
/*
 * TCP connections per process and peer: connect latency and failures,
 * lifetimes with bytes each way, and retransmits, from the socket state
 * machine (sock:inet_sock_set_state) and tcp:tcp_retransmit_skb.
 *
 * An active open moves to SYN_SENT inside connect(2), so the current task
 * there is the process that connects. A passive open completes in softirq
 * context, where the current task is unrelated: those are kept with tgid 0
 * and the passive flag, by the peer's address and our local port (the
 * peer's port is ephemeral: one bucket per connection would fill the map).
 * With a pid filter they are not kept; with a cgroup filter, the socket's
 * cgroup decides.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

enum {
	TCP_EVENTS,     /* state changes handled */
	TCP_SOCK_FULL,  /* sockets not tracked: map full */
	TCP_MAP_FULL,   /* events dropped: stats map full */
	TCP_COUNTERS,
};

DEFINE_COUNTERS(TCP_COUNTERS);

struct conn_info {
	__u64 open_ts;        /* SYN_SENT or SYN_RECV */
	__u64 established_ts; /* 0 until established */
	__u32 tgid;
	__u16 passive;
	__u16 lport; /* our port, for passive opens: cleared before close */
	char comm[TASK_COMM_LEN];
};

struct conn_key {
	__u32 tgid;
	__u16 family;
	__u16 port;    /* host order: the peer's (active), ours (passive) */
	__u8 daddr[16]; /* IPv4 in the first 4 bytes */
	__u32 passive;
	__u32 pad;
};

struct conn_stats {
	struct hist connect_lat; /* ns, active opens */
	struct hist lifetime;    /* ns, established to close */
	__u64 failures;          /* opens that never got established */
	__u64 retransmits;
	__u64 bytes_sent;        /* acked bytes of closed connections */
	__u64 bytes_received;
	char comm[TASK_COMM_LEN];
};

static const struct conn_stats zero_stats;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct sock * */
	__type(value, struct conn_info);
} tcp_socks SEC(".maps");

/* Drained at every window; see runqlat.bpf.c for why not preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct conn_key);
	__type(value, struct conn_stats);
} tcp_stats SEC(".maps");

static __always_inline void peer_key(const struct sock *sk, struct conn_key *k, const struct conn_info *info)
{
	k->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (info && info->passive)
		k->port = info->lport;
	else
		k->port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (k->family == AF_INET6)
		BPF_CORE_READ_INTO(&k->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	else {
		__u32 v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(k->daddr, &v4, sizeof(v4));
	}
}

/* wanted_sock decides for a socket of no known process. */
static __always_inline bool wanted_sock(const struct sock *sk)
{
	if (filter_cgroups) {
		__u64 cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);

		if (bpf_map_lookup_elem(&target_cgroups, &cg))
			return true;
	}
	return wanted_unattributed();
}

static __always_inline struct conn_stats *stats_for(struct conn_key *k, const char *comm)
{
	struct conn_stats *v = bpf_map_lookup_elem(&tcp_stats, k);

	if (v)
		return v;
	/* Too big for the stack: start from a zeroed global. */
	bpf_map_update_elem(&tcp_stats, k, &zero_stats, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&tcp_stats, k);
	if (!v) {
		count(TCP_MAP_FULL);
		return NULL;
	}
	if (comm)
		__builtin_memcpy(v->comm, comm, sizeof(v->comm));
	return v;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns();
	struct conn_info *info;
	struct conn_stats *v;
	struct conn_key k = {};

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	count(TCP_EVENTS);

	if (newstate == TCP_SYN_SENT || (newstate == TCP_SYN_RECV && oldstate == TCP_LISTEN)) {
		struct conn_info n = { .open_ts = now };

		if (newstate == TCP_SYN_SENT) {
			n.tgid = bpf_get_current_pid_tgid() >> 32;
			if (!wanted_current(n.tgid))
				return 0;
			bpf_get_current_comm(&n.comm, sizeof(n.comm));
		} else {
			if (!wanted_sock(sk))
				return 0;
			n.passive = 1;
			n.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		}
		if (bpf_map_update_elem(&tcp_socks, &key, &n, BPF_ANY) != 0)
			count(TCP_SOCK_FULL);
		return 0;
	}

	info = bpf_map_lookup_elem(&tcp_socks, &key);
	if (!info)
		return 0;
	k.tgid = info->tgid;
	k.passive = info->passive;
	peer_key(sk, &k, info);

	if (newstate == TCP_ESTABLISHED && info->established_ts == 0) {
		info->established_ts = now;
		if (!info->passive) {
			v = stats_for(&k, info->comm);
			if (v)
				hist_add(&v->connect_lat, now - info->open_ts);
		}
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	v = stats_for(&k, info->comm);
	if (v) {
		if (info->established_ts == 0) {
			__sync_fetch_and_add(&v->failures, 1);
		} else {
			const struct tcp_sock *tp = (const struct tcp_sock *)sk;

			hist_add(&v->lifetime, now - info->established_ts);
			__sync_fetch_and_add(&v->bytes_sent, BPF_CORE_READ(tp, bytes_acked));
			__sync_fetch_and_add(&v->bytes_received, BPF_CORE_READ(tp, bytes_received));
		}
	}
	bpf_map_delete_elem(&tcp_socks, &key);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	__u64 key = (__u64)sk;
	struct conn_info *info = bpf_map_lookup_elem(&tcp_socks, &key);
	struct conn_key k = {};
	struct conn_stats *v;

	if (info) {
		k.tgid = info->tgid;
		k.passive = info->passive;
	} else if (!wanted_sock(sk)) {
		return 0;
	}
	peer_key(sk, &k, info);
	v = stats_for(&k, info ? info->comm : NULL);
	if (v)
		__sync_fetch_and_add(&v->retransmits, 1);
	return 0;
}

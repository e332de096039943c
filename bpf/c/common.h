/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by every perfhound collector: target filtering, per-CPU counters
 * of what was dropped, and log2 histogram slots.
 *
 * Every map is bounded. When one is full the event is counted in
 * `counters`, never silently lost.
 */
#ifndef PERFHOUND_COMMON_H
#define PERFHOUND_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define HIST_SLOTS 48 /* 2^48 ns is 78 hours; 2^48 bytes, 256 TiB */
#define MAX_TARGET_PIDS 1024
#define MAX_TARGET_CGROUPS 256

/* Set by the loader before the programs are verified. */
const volatile bool filter_pids = false;
const volatile bool filter_cgroups = false;

/*
 * The processes (tgids) and cgroup v2 ids to watch when filtering. Shared
 * across collectors through map replacement, so one update reaches all.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGET_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} target_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGET_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} target_cgroups SEC(".maps");

/* wanted_current reports whether the current task is being watched. */
static __always_inline bool wanted_current(__u32 tgid)
{
	if (filter_pids && bpf_map_lookup_elem(&target_pids, &tgid))
		return true;
	if (filter_cgroups) {
		__u64 cg = bpf_get_current_cgroup_id();
		if (bpf_map_lookup_elem(&target_cgroups, &cg))
			return true;
	}
	return !filter_pids && !filter_cgroups;
}

/*
 * wanted_task is for events about a task other than the current one (a
 * wakeup): the same filters, read from the task itself.
 */
static __always_inline bool wanted_task(struct task_struct *p)
{
	if (filter_pids) {
		__u32 tgid = BPF_CORE_READ(p, tgid);

		if (bpf_map_lookup_elem(&target_pids, &tgid))
			return true;
	}
	if (filter_cgroups) {
		__u64 cg = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn, id);

		if (bpf_map_lookup_elem(&target_cgroups, &cg))
			return true;
	}
	return !filter_pids && !filter_cgroups;
}

/*
 * wanted_unattributed is for events that belong to no known process (a
 * passive TCP connection): kept only when nothing is filtered.
 */
static __always_inline bool wanted_unattributed(void)
{
	return !filter_pids && !filter_cgroups;
}

/* Per-CPU event counters; the index constants are per collector. */
#define DEFINE_COUNTERS(n)                                 \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);   \
		__uint(max_entries, n);                    \
		__type(key, __u32);                        \
		__type(value, __u64);                      \
	} counters SEC(".maps");                           \
	static __always_inline void count(__u32 i)         \
	{                                                  \
		__u64 *v = bpf_map_lookup_elem(&counters, &i); \
		if (v)                                     \
			(*v)++;                            \
	}

/* log2 histogram slot of v: 0 for 0 and 1, 1 for 2..3, ... */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;
	__u32 shift;

	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	if (r >= HIST_SLOTS)
		r = HIST_SLOTS - 1;
	return r;
}

/* A log2 histogram of durations or sizes, with their sum. */
struct hist {
	__u64 slots[HIST_SLOTS];
	__u64 count;
	__u64 sum;
};

static __always_inline void hist_add(struct hist *h, __u64 v)
{
	__u32 s = log2_slot(v);
	__sync_fetch_and_add(&h->slots[s], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum, v);
}

#endif

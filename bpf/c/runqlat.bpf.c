// SPDX-License-Identifier: GPL-2.0
/*
 * Run-queue latency, the way runqlat measures it: the time from a thread
 * becoming runnable (woken, created, or preempted while still runnable) to
 * it running on a CPU, as a log2 histogram in nanoseconds per process.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0

enum {
	RUNQ_EVENTS,     /* latencies recorded */
	RUNQ_START_FULL, /* runnable threads not tracked: map full */
	RUNQ_MAP_FULL,   /* latencies dropped: histogram map full */
	RUNQ_COUNTERS,
};

DEFINE_COUNTERS(RUNQ_COUNTERS);

struct runq_hist {
	struct hist lat;
	char comm[TASK_COMM_LEN];
};

/* When each runnable thread was queued, by tid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} runq_start SEC(".maps");

/*
 * Per process (tgid). Drained by the reader at every window. Not
 * preallocated: a drained element is freed after an RCU grace period, so a
 * program still holding it adds to a dead element (lost) rather than to a
 * reused one (misfiled).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct runq_hist);
} runq_hists SEC(".maps");

static __always_inline void enqueued(struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	__u64 now;

	if (tid == 0 || !wanted_task(p))
		return;
	now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&runq_start, &tid, &now, BPF_ANY) != 0)
		count(RUNQ_START_FULL);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(runq_wakeup, struct task_struct *p)
{
	enqueued(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(runq_wakeup_new, struct task_struct *p)
{
	enqueued(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runq_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct runq_hist *h;
	__u32 tid, tgid;
	__u64 *ts, delta;

	/* Preempted while runnable: it is back in the queue. */
	if (preempt || prev_state == TASK_RUNNING)
		enqueued(prev);

	tid = BPF_CORE_READ(next, pid);
	if (tid == 0)
		return 0;
	ts = bpf_map_lookup_elem(&runq_start, &tid);
	if (!ts)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&runq_start, &tid);

	tgid = BPF_CORE_READ(next, tgid);
	h = bpf_map_lookup_elem(&runq_hists, &tgid);
	if (!h) {
		struct runq_hist zero = {};

		bpf_probe_read_kernel_str(&zero.comm, sizeof(zero.comm), next->group_leader->comm);
		bpf_map_update_elem(&runq_hists, &tgid, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&runq_hists, &tgid);
		if (!h) {
			count(RUNQ_MAP_FULL);
			return 0;
		}
	}
	count(RUNQ_EVENTS);
	hist_add(&h->lat, delta);
	return 0;
}

SEC("tp_btf/sched_process_free")
int BPF_PROG(runq_free, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&runq_start, &tid);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Off-CPU time: at sched_switch the outgoing thread's stacks and state are
 * remembered; when it is switched back in, the time it spent off CPU is
 * added to its (stacks, state) bucket. Waits shorter than min_offcpu_ns
 * are not recorded.
 *
 * Taking the stacks is what costs (about 4 µs a switch, the kernel walk
 * most of it), so a session may sample: with sample_every N > 1 a
 * switch-out is followed with probability 1/N, chosen at random, and the
 * wait it leads to counts N times. That keeps the expected time per
 * (stacks, state) exact (a Horvitz-Thompson estimate) at about 1/N of
 * the cost; rare waits become noisier, never biased.
 *
 * The state says why the thread left the CPU: 0 is preempted while
 * runnable; TASK_INTERRUPTIBLE (S) is a voluntary sleep (sockets, futexes,
 * timers, poll); TASK_UNINTERRUPTIBLE (D) is mostly disk and page faults.
 */
#include "stacks.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 min_offcpu_ns = 0;
const volatile __u32 sample_every = 1;

enum {
	OFFCPU_SWITCHES,     /* switch-outs of watched threads */
	OFFCPU_RECORDED,     /* waits added to a bucket */
	OFFCPU_SHORT,        /* waits under min_offcpu_ns */
	OFFCPU_START_FULL,   /* switch-outs not tracked: start map full */
	OFFCPU_MAP_FULL,     /* waits dropped: counts map full */
	OFFCPU_USER_STACK_LOST,
	OFFCPU_KERNEL_STACK_LOST,
	OFFCPU_UNSAMPLED,    /* switch-outs left out by sampling */
	OFFCPU_NATIVE_WALKS, /* user stacks walked by tables */
	OFFCPU_NATIVE_CUT,   /* of those, cut before the outermost frame */
	OFFCPU_COUNTERS,
};

DEFINE_COUNTERS(OFFCPU_COUNTERS);

struct offcpu_value {
	__u64 total_ns;
	__u64 count;
};

DEFINE_COUNTS(offcpu_counts, struct offcpu_value, 16384);

/* Threads now off CPU, by tid. */
struct start {
	__u64 ts;
	struct stack_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct start);
} offcpu_start SEC(".maps");

static __always_inline void add_wait(__u32 g, struct stack_key *key, __u64 delta, __u64 n)
{
	struct offcpu_value init = { .total_ns = delta, .count = n }, *v;
	void *counts = COUNTS_FOR(offcpu_counts, g);

	v = bpf_map_lookup_elem(counts, key);
	if (!v) {
		if (bpf_map_update_elem(counts, key, &init, BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(counts, key);
		if (!v) {
			count(OFFCPU_MAP_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->total_ns, delta);
	__sync_fetch_and_add(&v->count, n);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(off_cpu, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 prev_tid = BPF_CORE_READ(prev, pid);
	__u32 prev_tgid = BPF_CORE_READ(prev, tgid);
	__u32 next_tid = BPF_CORE_READ(next, pid);
	__u32 g = current_epoch();
	struct start *s;

	/* prev is still current here, so its stacks can be taken. */
	if (prev_tid != 0 && wanted_current(prev_tgid)) {
		struct start st = { .ts = now };
		enum user_walk walk;

		count(OFFCPU_SWITCHES);
		if (sample_every > 1 && bpf_get_prandom_u32() % sample_every != 0) {
			count(OFFCPU_UNSAMPLED);
			goto in;
		}
		st.key.tgid = prev_tgid;
		st.key.tid = prev_tid;
		st.key.stack_epoch = g;
		/* Preempted means runnable, whatever the state word says. */
		st.key.kind = preempt ? 0 : prev_state;
		/* prev is current: its user registers are the ones it entered
		 * the kernel with, where the tables' walk starts. */
		st.key.user_stack = STACK_ID(get_user_stack(ctx, g, prev_tgid, &walk), OFFCPU_USER_STACK_LOST);
		COUNT_WALK(walk, OFFCPU_NATIVE_WALKS, OFFCPU_NATIVE_CUT);
		/*
		 * A preempted thread waits for a CPU whatever its kernel stack
		 * says (the interrupt path that preempted it): skip that walk,
		 * the costliest part of this program.
		 */
		st.key.kernel_stack = preempt ? -1 : STACK_ID(get_stack(ctx, g, 0), OFFCPU_KERNEL_STACK_LOST);
		set_names(&st.key, prev);
		if (bpf_map_update_elem(&offcpu_start, &prev_tid, &st, BPF_ANY) != 0)
			count(OFFCPU_START_FULL);
	}

in:
	if (next_tid == 0)
		return 0;
	s = bpf_map_lookup_elem(&offcpu_start, &next_tid);
	if (!s)
		return 0;
	if (now - s->ts < min_offcpu_ns) {
		count(OFFCPU_SHORT);
	} else {
		count(OFFCPU_RECORDED);
		add_wait(g, &s->key, (now - s->ts) * sample_every, sample_every);
	}
	bpf_map_delete_elem(&offcpu_start, &next_tid);
	return 0;
}

/* A thread that exits while off CPU never comes back: forget it. */
SEC("tp_btf/sched_process_free")
int BPF_PROG(off_cpu_free, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&offcpu_start, &tid);
	return 0;
}

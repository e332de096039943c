// SPDX-License-Identifier: GPL-2.0
/*
 * On-CPU sampling: a perf_event program on a software cpu-clock event on
 * every CPU, counting samples per thread and user+kernel stack.
 */
#include "stacks.h"

char LICENSE[] SEC("license") = "GPL";

enum {
	ONCPU_SAMPLES,      /* samples of watched tasks */
	ONCPU_IDLE,         /* samples that found the CPU idle */
	ONCPU_MAP_FULL,     /* samples dropped: the counts map was full */
	ONCPU_USER_STACK_LOST,
	ONCPU_KERNEL_STACK_LOST,
	ONCPU_NATIVE_WALKS,    /* user stacks walked by tables */
	ONCPU_NATIVE_CUT,      /* of those, cut before the outermost frame */
	ONCPU_COUNTERS,
};

DEFINE_COUNTERS(ONCPU_COUNTERS);

DEFINE_COUNTS(oncpu_counts, __u64, 16384);

static __always_inline void add_sample(__u32 g, struct stack_key *key)
{
	__u64 one = 1, *v;
	void *counts = COUNTS_FOR(oncpu_counts, g);

	v = bpf_map_lookup_elem(counts, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(counts, key, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU may have inserted it meanwhile. */
	v = bpf_map_lookup_elem(counts, key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		count(ONCPU_MAP_FULL);
}

SEC("perf_event")
int on_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct stack_key key = {};
	enum user_walk walk;
	__u32 g;

	if (tid == 0) {
		count(ONCPU_IDLE);
		return 0;
	}
	if (!wanted_current(tgid))
		return 0;
	count(ONCPU_SAMPLES);

	g = current_epoch();
	key.tgid = tgid;
	key.tid = tid;
	key.stack_epoch = g;
	key.user_stack = STACK_ID(get_user_stack(ctx, g, tgid, &walk), ONCPU_USER_STACK_LOST);
	COUNT_WALK(walk, ONCPU_NATIVE_WALKS, ONCPU_NATIVE_CUT);
	key.kernel_stack = STACK_ID(get_stack(ctx, g, 0), ONCPU_KERNEL_STACK_LOST);
	set_names(&key, (struct task_struct *)bpf_get_current_task());
	add_sample(g, &key);
	return 0;
}

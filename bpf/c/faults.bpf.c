// SPDX-License-Identifier: GPL-2.0
/*
 * User page faults per thread (exceptions:page_fault_user), with the user
 * stack that faulted when with_stacks is set. Counted on entry to the
 * fault handler: minor and major faults alike.
 */
#include "stacks.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool with_stacks = false;

enum {
	FAULTS_SEEN,       /* faults of watched tasks */
	FAULTS_MAP_FULL,   /* faults dropped: counts map full */
	FAULTS_USER_STACK_LOST,
	FAULTS_NATIVE_WALKS, /* user stacks walked by tables */
	FAULTS_NATIVE_CUT,   /* of those, cut before the outermost frame */
	FAULTS_COUNTERS,
};

DEFINE_COUNTERS(FAULTS_COUNTERS);
DEFINE_COUNTS(fault_counts, __u64, 16384);

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	__u64 id = bpf_get_current_pid_tgid(), one = 1, *v;
	struct stack_key key = { .tgid = id >> 32, .tid = (__u32)id };
	enum user_walk walk;
	__u32 g;
	void *counts;

	if (!wanted_current(key.tgid))
		return 0;
	count(FAULTS_SEEN);
	g = current_epoch();
	key.stack_epoch = g;
	key.kernel_stack = -1;
	key.user_stack = -1;
	if (with_stacks) {
		key.user_stack = STACK_ID(get_user_stack(ctx, g, key.tgid, &walk), FAULTS_USER_STACK_LOST);
		COUNT_WALK(walk, FAULTS_NATIVE_WALKS, FAULTS_NATIVE_CUT);
	}
	set_names(&key, (struct task_struct *)bpf_get_current_task());

	counts = COUNTS_FOR(fault_counts, g);
	v = bpf_map_lookup_elem(counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return 0;
	}
	if (bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	v = bpf_map_lookup_elem(counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		count(FAULTS_MAP_FULL);
	return 0;
}

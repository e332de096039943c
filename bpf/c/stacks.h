/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stack traces, shared by the on-CPU, off-CPU and page-fault collectors.
 *
 * Stacks and the counts that refer to them rotate through three
 * generations. The reader switches `generation` to the next one, waits for
 * programs in flight, then drains the counts of the previous generation.
 * Their stack ids point into that generation's stack map or, for an
 * off-CPU wait that began before the last switch, into the one before it;
 * both are still intact. A stack map is cleared just before it is used
 * again, two windows later, so only waits longer than a whole window lose
 * their stack (counted as such by the reader).
 */
#ifndef PERFHOUND_STACKS_H
#define PERFHOUND_STACKS_H

#include "common.h"

#define MAX_STACK_DEPTH 127
#define STACK_MAP_ENTRIES 8192
#define GENERATIONS 3

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

#define DEFINE_STACK_MAP(name)                                    \
	struct {                                                  \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);           \
		__uint(max_entries, STACK_MAP_ENTRIES);           \
		__uint(key_size, sizeof(__u32));                  \
		__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64)); \
	} name SEC(".maps")

DEFINE_STACK_MAP(stacks0);
DEFINE_STACK_MAP(stacks1);
DEFINE_STACK_MAP(stacks2);

static __always_inline __u32 current_generation(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&generation, &zero);
	return g && *g < GENERATIONS ? *g : 0;
}

/*
 * get_stack records the current stack (user when flags has
 * BPF_F_USER_STACK) in generation g's map and returns its id, or a
 * negative errno: -EFAULT when there is no such stack (a kernel thread has
 * no user stack), -EEXIST on a hash collision, which callers count.
 */
static __always_inline long get_stack(void *ctx, __u32 g, __u64 flags)
{
	if (g == 1)
		return bpf_get_stackid(ctx, &stacks1, flags);
	if (g == 2)
		return bpf_get_stackid(ctx, &stacks2, flags);
	return bpf_get_stackid(ctx, &stacks0, flags);
}

#define EFAULT 14
#define EEXIST 17

/*
 * The stack id as kept in a key: a non-negative id, or -1 for no stack. A
 * failure other than "no stack" bumps the given counter.
 */
#define STACK_ID(id, counter)                                   \
	({                                                      \
		long __id = (id);                               \
		if (__id < 0 && __id != -EFAULT)                \
			count(counter);                         \
		__id < 0 ? -1 : (__s32)__id;                    \
	})

/*
 * One bucket of stack-keyed counts: the thread, its two stacks and the
 * generation their ids belong to.
 */
struct stack_key {
	__u32 tgid;
	__u32 tid;
	__s32 user_stack;
	__s32 kernel_stack;
	__u32 stack_gen;
	__u32 kind; /* collector-specific: the off-CPU state */
	char comm[TASK_COMM_LEN];   /* the process's (its group leader's) */
	char thread[TASK_COMM_LEN]; /* the thread's own name */
};

/* set_names fills a key's process and thread names from a task. */
static __always_inline void set_names(struct stack_key *key, struct task_struct *task)
{
	BPF_CORE_READ_STR_INTO(&key->comm, task, group_leader, comm);
	BPF_CORE_READ_STR_INTO(&key->thread, task, comm);
}

#define DEFINE_COUNTS(name, value_type, entries)         \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_HASH);         \
		__uint(max_entries, entries);            \
		__type(key, struct stack_key);           \
		__type(value, value_type);               \
	} name##0 SEC(".maps"), name##1 SEC(".maps"), name##2 SEC(".maps")

#define COUNTS_FOR(name, g) ((g) == 1 ? (void *)&name##1 : (g) == 2 ? (void *)&name##2 : (void *)&name##0)

#endif

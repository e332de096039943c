/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stack traces, shared by the on-CPU, off-CPU and page-fault collectors.
 *
 * Stacks, and the counts that refer to them, rotate through three maps
 * indexed by the epoch modulo 3; the epoch goes up by one at every read.
 * Keys carry the epoch their stack ids were taken in. At a read the reader
 * (bpf/read.go) first copies the stacks that pending and finished off-CPU
 * waits still need from the map about to be reused, clears that map,
 * moves the epoch on, waits for programs in flight, and drains the counts
 * of the epoch that ended. Their stack ids point into that epoch's map,
 * into the previous epoch's (an off-CPU wait that began before the last
 * read: still intact), or, for older waits, into the reader's copies. So a
 * thread asleep for hours still has its stack when it wakes.
 */
#ifndef PERFHOUND_STACKS_H
#define PERFHOUND_STACKS_H

#include "common.h"
#include "unwind.h"

#define MAX_STACK_DEPTH 127
#define STACK_MAP_ENTRIES 8192
#define GENERATIONS 3

/* The current epoch, moved on by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} epoch SEC(".maps");

#define DEFINE_STACK_MAP(name, entries)                           \
	struct {                                                  \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);           \
		__uint(max_entries, entries);                     \
		__uint(key_size, sizeof(__u32));                  \
		__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64)); \
	} name SEC(".maps")

DEFINE_STACK_MAP(stacks0, STACK_MAP_ENTRIES);
DEFINE_STACK_MAP(stacks1, STACK_MAP_ENTRIES);
DEFINE_STACK_MAP(stacks2, STACK_MAP_ENTRIES);

/*
 * A stack-trace map keeps one stack per hash bucket: a stack whose bucket
 * another stack of the epoch holds cannot be stored there. It goes to the
 * overflow map instead, where (being half the size) the same hash falls in
 * another bucket; its id is marked with OVERFLOW_ID. Only a stack that
 * collides in both is lost.
 */
#define OVERFLOW_ENTRIES (STACK_MAP_ENTRIES / 2)
#define OVERFLOW_ID 0x40000000

DEFINE_STACK_MAP(overflow0, OVERFLOW_ENTRIES);
DEFINE_STACK_MAP(overflow1, OVERFLOW_ENTRIES);
DEFINE_STACK_MAP(overflow2, OVERFLOW_ENTRIES);

static __always_inline __u32 current_epoch(void)
{
	__u32 zero = 0;
	__u32 *e = bpf_map_lookup_elem(&epoch, &zero);
	return e ? *e : 0;
}

#define EFAULT 14
#define EEXIST 17

/*
 * get_stack records the current stack (user when flags has
 * BPF_F_USER_STACK) in epoch e's map, or its overflow map, and returns its
 * id, or a negative errno: -EFAULT when there is no such stack (a kernel
 * thread has no user stack), -EEXIST when its bucket is taken in both
 * maps, which callers count.
 */
static __always_inline long get_stack(void *ctx, __u32 e, __u64 flags)
{
	__u32 g = e % GENERATIONS;
	long id;

	if (g == 1)
		id = bpf_get_stackid(ctx, &stacks1, flags);
	else if (g == 2)
		id = bpf_get_stackid(ctx, &stacks2, flags);
	else
		id = bpf_get_stackid(ctx, &stacks0, flags);
	if (id != -EEXIST)
		return id;
	if (g == 1)
		id = bpf_get_stackid(ctx, &overflow1, flags);
	else if (g == 2)
		id = bpf_get_stackid(ctx, &overflow2, flags);
	else
		id = bpf_get_stackid(ctx, &overflow0, flags);
	return id < 0 ? id : id | OVERFLOW_ID;
}

/* Walk user stacks by .eh_frame tables where the process has them
 * (unwind.h), by frame pointers elsewhere. Set by the loader. */
const volatile bool native_unwind = false;

/* How get_user_stack took a stack, for the collector's counters. */
enum user_walk {
	WALK_FRAME_POINTERS,
	WALK_TABLES,     /* walked by tables to the outermost frame */
	WALK_TABLES_CUT, /* walked by tables, cut short (unwind_cut) */
};

/*
 * get_user_stack records the current task's user stack in epoch e, as
 * get_stack does: walked by tables when native_unwind is set and the
 * process tgid has them (its id marked NATIVE_ID), by frame pointers
 * otherwise. *walk says which.
 */
static __always_inline long get_user_stack(void *ctx, __u32 e, __u32 tgid, enum user_walk *walk)
{
	struct ehw_state *st;

	*walk = WALK_FRAME_POINTERS;
	if (!native_unwind || !bpf_map_lookup_elem(&unwind_procs, &tgid))
		return get_stack(ctx, e, BPF_F_USER_STACK);
	st = unwind_user(tgid);
	if (!st || st->len == 0)
		return -EFAULT; /* a kernel thread: no user stack */
	*walk = st->cut == UNWIND_COMPLETE ? WALK_TABLES : WALK_TABLES_CUT;
	return native_store(e, st);
}

/* COUNT_WALK counts a table walk in a collector's two counters. */
#define COUNT_WALK(walk, walks, cut)                    \
	do {                                            \
		if ((walk) != WALK_FRAME_POINTERS)      \
			count(walks);                   \
		if ((walk) == WALK_TABLES_CUT)          \
			count(cut);                     \
	} while (0)

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
 * epoch their ids belong to.
 */
struct stack_key {
	__u32 tgid;
	__u32 tid;
	__s32 user_stack;
	__s32 kernel_stack;
	__u32 stack_epoch;
	__u32 kind; /* collector-specific: the off-CPU state */
	char comm[TASK_COMM_LEN];   /* the process's (its group leader's) */
	char thread[TASK_COMM_LEN]; /* the thread's own name */
};

/*
 * set_names fills a key's process and thread names, for the current task
 * (the thread's own name through the cheaper helper).
 */
static __always_inline void set_names(struct stack_key *key, struct task_struct *task)
{
	BPF_CORE_READ_STR_INTO(&key->comm, task, group_leader, comm);
	bpf_get_current_comm(&key->thread, sizeof(key->thread));
}

#define DEFINE_COUNTS(name, value_type, entries)         \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_HASH);         \
		__uint(max_entries, entries);            \
		__type(key, struct stack_key);           \
		__type(value, value_type);               \
	} name##0 SEC(".maps"), name##1 SEC(".maps"), name##2 SEC(".maps")

#define COUNTS_FOR(name, e)                                   \
	((e) % GENERATIONS == 1 ? (void *)&name##1 :          \
	 (e) % GENERATIONS == 2 ? (void *)&name##2 : (void *)&name##0)

#endif

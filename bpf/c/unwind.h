/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Native unwinding from .eh_frame: walks a task's user stack through the
 * tables bpf/ehframe compiles in user space (one sorted array of 8-byte
 * entries per object, keyed by a table id), for code built without frame
 * pointers. The walk is bpf/ehframe.Walk's, step for step; that Go
 * function is its reference and its tests' oracle.
 *
 * Maps, filled by user space:
 *   unwind_tables  table id -> the object's entries (an ARRAY per object,
 *                  sized exactly: BPF_F_INNER_MAP)
 *   unwind_procs   tgid -> its executable mappings: start, end, load
 *                  bias, table id, entry count (struct ehw_mapping)
 * A walk never guesses: where it cannot go on it stops and says why
 * (unwind_cut).
 */
#ifndef PERFHOUND_UNWIND_H
#define PERFHOUND_UNWIND_H

#include "common.h"

#ifndef PF_KTHREAD
#define PF_KTHREAD 0x00200000 /* include/linux/sched.h: not in BTF */
#endif

#define UNWIND_MAX_FRAMES 127
#define UNWIND_MAX_MAPPINGS 64
#define UNWIND_MAX_TABLES 1024
#define UNWIND_MAX_PROCS 4096
/* Binary search steps: up to 2^22 entries in one object's table. */
#define UNWIND_SEARCH_STEPS 22

/* Entry kinds and rbp rules (bpf/ehframe.Kind, RBPRule). */
enum {
	UNWIND_END,
	UNWIND_CFA_RSP,
	UNWIND_CFA_RBP,
	UNWIND_PLT,
	UNWIND_SIGNAL,
	UNWIND_STOP,
	UNWIND_INVALID,
};
enum {
	UNWIND_RBP_UNCHANGED,
	UNWIND_RBP_AT_CFA,
	UNWIND_RBP_LOST,
};

/* Why a walk ended (bpf/ehframe.Cut). */
enum ehw_cut {
	UNWIND_COMPLETE,
	UNWIND_CUT_NO_OBJECT,
	UNWIND_CUT_NOT_IN_CODE,
	UNWIND_CUT_INVALID,
	UNWIND_CUT_READ_FAULT,
	UNWIND_CUT_RBP_LOST,
	UNWIND_CUT_BAD_STACK,
	UNWIND_CUT_DEPTH,
	UNWIND_CUT_NO_TABLE, /* the mapping's table is not (or no longer) loaded */
};

struct ehw_entry {
	__u32 pc;
	__u16 cfa_offset;
	__u8 kind; /* kind | rbp rule << 4 */
	__s8 rbp;  /* rbp's offset from the CFA / 8; a PLT's threshold */
};

/* A mapping of code: its object's table (id and entry count). With
 * UNWIND_FP_GAPS in len, the code its table does not cover keeps frame
 * pointers and is walked by them (a Go binary's: its .eh_frame, if any,
 * covers its cgo parts alone); table 0 has no table at all. */
#define UNWIND_FP_GAPS 0x80000000u

struct ehw_mapping {
	__u64 start, end, bias;
	__u32 table, len;
};

struct ehw_proc {
	__u32 n;
	__u32 _pad;
	struct ehw_mapping m[UNWIND_MAX_MAPPINGS];
};

/* Each object's table: an array sized to it (BPF_F_INNER_MAP lets the
 * inner maps differ in size). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, UNWIND_MAX_TABLES);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_INNER_MAP);
		__uint(max_entries, 1);
		__type(key, __u32);
		__type(value, __u64); /* a struct ehw_entry: clang leaves a struct only a
				       * nested map names undefined in BTF */
	});
} unwind_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, UNWIND_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct ehw_proc);
} unwind_procs SEC(".maps");

/*
 * Walks cut because their pc is in none of the mappings their process was
 * described with (UNWIND_CUT_NO_OBJECT): code mapped since user space
 * looked (a library loaded by dlopen, the loader's own just after exec,
 * fresh JIT code). Each sends the process's tgid and the pc to user
 * space, which describes the process again, that pc's object first; at
 * most one a process every UNWIND_MISS_GAP_NS, so that code that stays
 * undescribed costs little.
 */
#define UNWIND_MISS_GAP_NS 50000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} unwind_misses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, UNWIND_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u64);
} unwind_miss_last SEC(".maps");

/* A miss: the process, and the pc its walk found in no mapping. */
struct unwind_miss {
	__u32 tgid;
	__u32 _pad;
	__u64 pc;
};

static __always_inline void unwind_report_miss(__u32 tgid, __u64 pc)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&unwind_miss_last, &tgid);
	struct unwind_miss miss = {.tgid = tgid, .pc = pc};

	if (last && now - *last < UNWIND_MISS_GAP_NS)
		return;
	bpf_map_update_elem(&unwind_miss_last, &tgid, &now, BPF_ANY);
	bpf_ringbuf_output(&unwind_misses, &miss, sizeof(miss), 0);
}

/* A walk's state and result: too big for the BPF stack. */
struct ehw_state {
	__u64 pc, sp, bp;
	__u32 tgid;
	__u32 len;
	__u8 cut;
	__u8 exact;    /* pc is where the thread is, not a return address */
	__u8 bp_known; /* rbp holds the caller's value */
	__u8 fp_before; /* the frame before was left by its frame pointer */
	__u8 _pad[4];
	__u64 pcs[UNWIND_MAX_FRAMES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ehw_state);
} unwind_scratch SEC(".maps");

/*
 * A collector's walked stacks, by epoch as its frame-pointer stacks are
 * (stacks.h): an id (NATIVE_ID with a hash of the frames) to the walk.
 */
#define NATIVE_ID 0x20000000
#define NATIVE_STACK_ENTRIES 2048

#define DEFINE_NATIVE_MAP(name)                               \
	struct {                                              \
		__uint(type, BPF_MAP_TYPE_HASH);              \
		__uint(max_entries, NATIVE_STACK_ENTRIES);    \
		__type(key, __u32);                           \
		__type(value, struct ehw_state);              \
	} name SEC(".maps")

/* Signal frame: the ucontext's general registers (struct sigcontext_64). */
#define SIG_MCONTEXT 40
#define SIG_RBP (10 * 8)
#define SIG_RSP (15 * 8)
#define SIG_RIP (16 * 8)

static __always_inline bool read_user_u64(__u64 addr, __u64 *v)
{
	return bpf_probe_read_user(v, sizeof(*v), (void *)addr) == 0;
}

/* unwind_find is the index of the last entry at or before v, or -1. */
static __always_inline long unwind_find(void *tab, __u32 len, __u32 v, struct ehw_entry *out)
{
	__u32 lo = 0, hi = len;
	struct ehw_entry *e;

	if (len == 0)
		return -1;
	for (int s = 0; s < UNWIND_SEARCH_STEPS; s++) {
		if (hi - lo <= 1)
			break;
		__u32 mid = lo + (hi - lo) / 2;
		e = bpf_map_lookup_elem(tab, &mid);
		if (!e)
			return -1;
		if (e->pc <= v)
			lo = mid;
		else
			hi = mid;
	}
	if (hi - lo > 1)
		return -1; /* a table bigger than the search reaches */
	e = bpf_map_lookup_elem(tab, &lo);
	if (!e || e->pc > v)
		return -1;
	*out = *e;
	return lo;
}

static long unwind_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct ehw_state *st = bpf_map_lookup_elem(&unwind_scratch, &zero);
	struct ehw_proc *p;
	struct ehw_entry e = {};
	__u64 at, cfa, ra, v;
	__u32 n, table, len;
	bool fp, in_table = false;
	void *tab;
	int mi = -1;

	if (!st)
		return 1;
	n = st->len;
	if (n >= UNWIND_MAX_FRAMES) {
		st->cut = UNWIND_CUT_DEPTH;
		return 1;
	}
	st->pcs[n] = st->pc;
	st->len = n + 1;

	p = bpf_map_lookup_elem(&unwind_procs, &st->tgid);
	if (!p) {
		st->cut = UNWIND_CUT_NO_OBJECT;
		return 1;
	}
	at = st->exact ? st->pc : st->pc - 1;
	for (int j = 0; j < UNWIND_MAX_MAPPINGS; j++) {
		if (j >= p->n)
			break;
		if (at >= p->m[j].start && at < p->m[j].end) {
			mi = j;
			break;
		}
	}
	if (mi < 0 || mi >= UNWIND_MAX_MAPPINGS) {
		st->cut = UNWIND_CUT_NO_OBJECT;
		return 1;
	}
	table = p->m[mi].table;
	len = p->m[mi].len & ~UNWIND_FP_GAPS;
	fp = p->m[mi].len & UNWIND_FP_GAPS;
	if (table != 0) {
		v = at - p->m[mi].bias;
		tab = bpf_map_lookup_elem(&unwind_tables, &table);
		if (!tab) {
			st->cut = UNWIND_CUT_NO_TABLE;
			return 1;
		}
		in_table = v <= 0xffffffffULL && unwind_find(tab, len, (__u32)v, &e) >= 0 &&
			   (e.kind & 0x0f) != UNWIND_END;
	}
	if (!in_table && !fp) {
		st->cut = UNWIND_CUT_NOT_IN_CODE;
		return 1;
	}
	if (!in_table) {
		/* By frame pointer: the caller's rbp at [rbp], the return
		 * address above it. Only from one such frame to the next must
		 * the stack go up: a cgo call runs C on the thread's system
		 * stack, its Go callers on the goroutine's. */
		if (!st->bp_known) {
			st->cut = UNWIND_CUT_RBP_LOST;
			return 1;
		}
		if (st->bp == 0) {
			st->cut = UNWIND_COMPLETE;
			return 1;
		}
		if (st->fp_before && st->bp + 16 <= st->sp) {
			st->cut = UNWIND_CUT_BAD_STACK;
			return 1;
		}
		if (!read_user_u64(st->bp + 8, &ra) || !read_user_u64(st->bp, &v)) {
			st->cut = UNWIND_CUT_READ_FAULT;
			return 1;
		}
		if (ra == 0) {
			st->cut = UNWIND_COMPLETE;
			return 1;
		}
		st->pc = ra;
		st->sp = st->bp + 16;
		st->bp = v;
		st->exact = 0;
		st->fp_before = 1;
		return 0;
	}
	st->fp_before = 0;

	switch (e.kind & 0x0f) {
	case UNWIND_STOP:
		st->cut = UNWIND_COMPLETE;
		return 1;
	case UNWIND_END:
		st->cut = UNWIND_CUT_NOT_IN_CODE;
		return 1;
	case UNWIND_SIGNAL: {
		__u64 mc = st->sp + SIG_MCONTEXT;
		if (!read_user_u64(mc + SIG_RBP, &st->bp) || !read_user_u64(mc + SIG_RSP, &st->sp) ||
		    !read_user_u64(mc + SIG_RIP, &st->pc)) {
			st->cut = UNWIND_CUT_READ_FAULT;
			return 1;
		}
		st->exact = 1;
		st->bp_known = 1;
		if (st->pc == 0) {
			st->cut = UNWIND_COMPLETE;
			return 1;
		}
		return 0;
	}
	case UNWIND_CFA_RSP:
		cfa = st->sp + e.cfa_offset;
		break;
	case UNWIND_CFA_RBP:
		if (!st->bp_known) {
			st->cut = UNWIND_CUT_RBP_LOST;
			return 1;
		}
		cfa = st->bp + e.cfa_offset;
		break;
	case UNWIND_PLT:
		cfa = st->sp + e.cfa_offset;
		if ((st->pc & 15) >= (__u8)e.rbp)
			cfa += 8;
		break;
	default:
		st->cut = UNWIND_CUT_INVALID;
		return 1;
	}
	if (cfa <= st->sp) {
		st->cut = UNWIND_CUT_BAD_STACK;
		return 1;
	}
	if (!read_user_u64(cfa - 8, &ra)) {
		st->cut = UNWIND_CUT_READ_FAULT;
		return 1;
	}
	switch (e.kind >> 4) {
	case UNWIND_RBP_AT_CFA:
		if (!read_user_u64(cfa + (__s64)e.rbp * 8, &st->bp)) {
			st->cut = UNWIND_CUT_READ_FAULT;
			return 1;
		}
		st->bp_known = 1;
		break;
	case UNWIND_RBP_LOST:
		st->bp_known = 0;
		break;
	}
	if (ra == 0) {
		st->cut = UNWIND_COMPLETE;
		return 1;
	}
	st->pc = ra;
	st->sp = cfa;
	st->exact = 0;
	return 0;
}

/*
 * unwind_user walks the current task's user stack from the registers it
 * had when it entered the kernel (or was interrupted in user mode) into
 * the per-CPU scratch, and returns it, or NULL for a task without a user
 * stack (a kernel thread).
 */
static __always_inline struct ehw_state *unwind_user(__u32 tgid)
{
	__u32 zero = 0;
	struct ehw_state *st = bpf_map_lookup_elem(&unwind_scratch, &zero);
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs;

	if (!st || (task->flags & PF_KTHREAD))
		return NULL;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
		return NULL;
	st->pc = BPF_CORE_READ(regs, ip);
	st->sp = BPF_CORE_READ(regs, sp);
	st->bp = BPF_CORE_READ(regs, bp);
	st->tgid = tgid;
	st->len = 0;
	st->cut = UNWIND_CUT_DEPTH;
	st->exact = 1;
	st->bp_known = 1;
	st->fp_before = 0;
	bpf_loop(UNWIND_MAX_FRAMES + 1, unwind_step, NULL, 0);
	if (st->cut == UNWIND_CUT_NO_OBJECT) /* the pc looked up: a return address's call */
		unwind_report_miss(tgid, st->exact ? st->pc : st->pc - 1);
	return st;
}

DEFINE_NATIVE_MAP(natstacks0);
DEFINE_NATIVE_MAP(natstacks1);
DEFINE_NATIVE_MAP(natstacks2);

/*
 * native_store keeps a walk in epoch e's map and returns its id, or
 * -EEXIST when another walk holds its id (a hash collision) or the map is
 * full: callers count it lost, never give it another stack's frames.
 */
static __always_inline long native_store(__u32 e, struct ehw_state *st)
{
	__u32 g = e % 3, h = 2166136261u, id;
	struct ehw_state *old;
	void *m;

	for (int i = 0; i < UNWIND_MAX_FRAMES; i++) {
		if (i >= st->len)
			break;
		__u64 pc = st->pcs[i];
		h = (h ^ (__u32)pc) * 16777619u;
		h = (h ^ (__u32)(pc >> 32)) * 16777619u;
	}
	id = NATIVE_ID | (h & (NATIVE_ID - 1));
	m = g == 0 ? (void *)&natstacks0 : g == 1 ? (void *)&natstacks1 : (void *)&natstacks2;
	if (bpf_map_update_elem(m, &id, st, BPF_NOEXIST) == 0)
		return id;
	old = bpf_map_lookup_elem(m, &id);
	if (!old || old->len != st->len)
		return -17; /* EEXIST */
	for (int i = 0; i < UNWIND_MAX_FRAMES; i++) {
		if (i >= st->len)
			break;
		if (old->pcs[i] != st->pcs[i])
			return -17;
	}
	return id;
}

#endif

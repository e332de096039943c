// SPDX-License-Identifier: GPL-2.0
/*
 * Process lifecycle: tells the reader about every exec of a watched
 * process, and every fork of a followed one, at once, so its memory
 * mappings can be read while it is still alive (a short-lived process may
 * be gone by the end of the window; a pre-forked worker, which never
 * execs, too), follows the children of watched processes when
 * follow_children is set, and drops exited processes from the pid filter.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool follow_children = false;

enum {
	PROCS_EXECS,       /* exec events sent */
	PROCS_RING_FULL,   /* exec events dropped: ring buffer full */
	PROCS_FOLLOWED,    /* children added to the pid filter */
	PROCS_FOLLOW_FULL, /* children not followed: filter map full */
	PROCS_COUNTERS,
};

DEFINE_COUNTERS(PROCS_COUNTERS);

struct lifecycle_event {
	__u32 tgid;
	__u32 kind; /* 0 exec, 1 exit, 2 fork (the child's tgid) */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} lifecycle_events SEC(".maps");

static __always_inline void send(__u32 tgid, __u32 kind)
{
	struct lifecycle_event *e = bpf_ringbuf_reserve(&lifecycle_events, sizeof(*e), 0);

	if (!e) {
		count(PROCS_RING_FULL);
		return;
	}
	e->tgid = tgid;
	e->kind = kind;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (!wanted_current(tgid))
		return 0;
	count(PROCS_EXECS);
	send(tgid, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	/* Threads share their process's tgid: only new processes matter. */
	if (!follow_children || !filter_pids || child_tgid == parent_tgid)
		return 0;
	if (!bpf_map_lookup_elem(&target_pids, &parent_tgid))
		return 0;
	if (bpf_map_update_elem(&target_pids, &child_tgid, &one, BPF_ANY) != 0) {
		count(PROCS_FOLLOW_FULL);
		return 0;
	}
	count(PROCS_FOLLOWED);
	/*
	 * Told, so that a child that never execs is read while it lives.
	 * Only children followed (a diagnosed command's): host-wide, every
	 * fork of a fork storm cost the agent about 0.3 ms of CPU.
	 */
	send(child_tgid, 2);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	/*
	 * Only the last thread's exit ends the process: signal->live has
	 * dropped to zero by then. (Newer kernels also pass group_dead; this
	 * works on older ones too.)
	 */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (!wanted_task(p))
		return 0;
	send(tgid, 1);
	/* A pid is reused sooner or later: stop watching this one. */
	if (filter_pids)
		bpf_map_delete_elem(&target_pids, &tgid);
	return 0;
}

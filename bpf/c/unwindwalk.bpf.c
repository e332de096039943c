// SPDX-License-Identifier: GPL-2.0
/*
 * unwind_walk: the .eh_frame walker of unwind.h on its own, for its live
 * test and for measuring it before the collectors take it up: on every
 * cpu-clock sample of the target process, the walked user stack goes to a
 * ring buffer whole.
 */
#include "unwind.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} unwind_walks SEC(".maps");

SEC("perf_event")
int unwind_walk(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ehw_state *st;

	if ((id >> 32) != target_tgid)
		return 0;
	st = unwind_user(id >> 32);
	if (st)
		bpf_ringbuf_output(&unwind_walks, st, sizeof(*st), 0);
	return 0;
}

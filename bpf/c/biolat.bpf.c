// SPDX-License-Identifier: GPL-2.0
/*
 * Block I/O latency from issue to completion, per device, issuing process
 * and operation, as log2 histograms of nanoseconds and of request bytes.
 *
 * The issuing process is taken at block_io_start, which runs in the
 * submitter's context when the request is allocated; block_rq_issue may
 * run from a kworker or another task's plug flush, so it names the issuer
 * only for requests that carry no bio (flushes, passthrough), which never
 * go through block_io_start. The device is the partition when the request
 * has one. A request completed in parts is recorded once, at its last
 * part, with its size at issue.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
#define MINORBITS 20

enum {
	BIO_COMPLETED,   /* completions recorded */
	BIO_ERRORS,      /* completions with an error status */
	BIO_START_FULL,  /* requests not tracked: map full */
	BIO_MAP_FULL,    /* completions dropped: histogram map full */
	BIO_NO_ISSUE,    /* completions of requests seen starting but not issued */
	BIO_COUNTERS,
};

DEFINE_COUNTERS(BIO_COUNTERS);

struct bio_start {
	__u64 ts;    /* 0 until issued */
	__u32 tgid;
	__u32 bytes; /* at issue */
	char comm[TASK_COMM_LEN];
};

struct bio_key {
	__u32 dev; /* major << 20 | minor, as the kernel's dev_t */
	__u32 tgid;
	__u32 op;  /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, ... */
	__u32 pad;
};

struct bio_value {
	struct hist lat;   /* issue to completion, ns */
	struct hist bytes; /* request size */
	__u64 errors;
	char comm[TASK_COMM_LEN];
};

static const struct bio_value zero_value;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct request * */
	__type(value, struct bio_start);
} bio_starts SEC(".maps");

/* Drained at every window; see runqlat.bpf.c for why not preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct bio_key);
	__type(value, struct bio_value);
} bio_hists SEC(".maps");

static __always_inline __u32 request_dev(struct request *rq)
{
	struct block_device *part = BPF_CORE_READ(rq, part);
	struct gendisk *disk;

	/* The kernel's dev_t is major << 20 | minor, as in the key. */
	if (part)
		return BPF_CORE_READ(part, bd_dev);
	disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return BPF_CORE_READ(disk, major) << MINORBITS | BPF_CORE_READ(disk, first_minor);
}

SEC("tp_btf/block_io_start")
int BPF_PROG(bio_start, struct request *rq)
{
	__u64 key = (__u64)rq;
	__u64 id = bpf_get_current_pid_tgid();
	struct bio_start s = { .tgid = id >> 32 };

	if (!wanted_current(s.tgid))
		return 0;
	bpf_get_current_comm(&s.comm, sizeof(s.comm));
	if (bpf_map_update_elem(&bio_starts, &key, &s, BPF_ANY) != 0)
		count(BIO_START_FULL);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(bio_issue, struct request *rq)
{
	__u64 key = (__u64)rq;
	struct bio_start *s = bpf_map_lookup_elem(&bio_starts, &key);

	if (s) {
		s->ts = bpf_ktime_get_ns();
		s->bytes = BPF_CORE_READ(rq, __data_len);
		return 0;
	}
	/*
	 * A request with a bio went through block_io_start: no entry means
	 * its submitter is not watched. Only bio-less requests (flushes,
	 * passthrough) are credited to the task issuing them.
	 */
	if (BPF_CORE_READ(rq, bio))
		return 0;
	{
		__u64 id = bpf_get_current_pid_tgid();
		struct bio_start n = { .ts = bpf_ktime_get_ns(), .tgid = id >> 32 };

		if (!wanted_current(n.tgid))
			return 0;
		n.bytes = BPF_CORE_READ(rq, __data_len);
		bpf_get_current_comm(&n.comm, sizeof(n.comm));
		if (bpf_map_update_elem(&bio_starts, &key, &n, BPF_ANY) != 0)
			count(BIO_START_FULL);
	}
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(bio_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();
	struct bio_start *s = bpf_map_lookup_elem(&bio_starts, &key);
	struct bio_key k = {};
	struct bio_value *v;

	if (!s)
		return 0;
	/* Not the last part: wait for it. */
	if (nr_bytes < BPF_CORE_READ(rq, __data_len))
		return 0;
	if (s->ts == 0) {
		count(BIO_NO_ISSUE);
		bpf_map_delete_elem(&bio_starts, &key);
		return 0;
	}
	k.dev = request_dev(rq);
	k.tgid = s->tgid;
	k.op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	v = bpf_map_lookup_elem(&bio_hists, &k);
	if (!v) {
		/* Too big for the stack: start from a zeroed global. */
		bpf_map_update_elem(&bio_hists, &k, &zero_value, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&bio_hists, &k);
		if (!v) {
			count(BIO_MAP_FULL);
			bpf_map_delete_elem(&bio_starts, &key);
			return 0;
		}
		__builtin_memcpy(v->comm, s->comm, sizeof(v->comm));
	}
	count(BIO_COMPLETED);
	hist_add(&v->lat, now - s->ts);
	hist_add(&v->bytes, s->bytes);
	if (error) {
		count(BIO_ERRORS);
		__sync_fetch_and_add(&v->errors, 1);
	}
	bpf_map_delete_elem(&bio_starts, &key);
	return 0;
}

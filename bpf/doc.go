// Package bpf is perfhound's kernel side: host-wide on-CPU sampling,
// off-CPU time by stack and reason, run-queue latency, block I/O latency,
// TCP connections and user page faults, collected with eBPF and returned
// as pprof profiles and log2 histograms.
//
// Only perf events, BTF tracepoints (tp_btf) and ring buffers are used: no
// kprobes, which many production kernels lack. The programs live in c/ and
// are compiled by bpf2go into objects committed beside this file.
//
// A Session is started with Start, read window by window with Read, and
// released with Close. Probe says beforehand what this host allows and
// why not, so that callers can fall back to /proc and say so. There is no
// global state: sessions can be started, stopped and restarted freely.
//
// Symbolization (kernel, ELF, Go pclntab, vdso) is in bpf/symbolize.
package bpf

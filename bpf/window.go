package bpf

import (
	"net/netip"
	"time"

	"github.com/google/pprof/profile"
)

// Window is what the collectors gathered between two reads. Profiles are
// nil, and slices empty, for collectors that were not running.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`

	// OnCPU has sample types samples/count and cpu/nanoseconds (the
	// default), one sample per thread and stack, labelled pid and tid
	// (numbers), comm (the process's name) and thread (the thread's).
	OnCPU *profile.Profile `json:"-"`
	// Frequency is the rate OnCPU was sampled at, in Hz (its period is
	// one over it); FrequencyError says why a change of rate asked for
	// by SetFrequency did not happen (sampling went on at this rate).
	Frequency      int    `json:"frequency,omitempty"`
	FrequencyError string `json:"frequency_error,omitempty"`
	// OffCPU has off_cpu/nanoseconds (the default) and waits/count, with
	// the same labels and state: R preempted while runnable, S interruptible
	// sleep, D uninterruptible (disk, page faults), I idle kernel thread,
	// T stopped or traced, P parked, X other. With Options.OffCPUSampling
	// N > 1 both values are estimates, each followed wait counting N times,
	// and a comment says so.
	OffCPU *profile.Profile `json:"-"`
	// PageFaults has faults/count per thread (and user stack with
	// Options.FaultStacks).
	PageFaults *profile.Profile `json:"-"`

	RunQueue []RunQueueLatency `json:"run_queue,omitempty"`
	BlockIO  []BlockIOLatency  `json:"block_io,omitempty"`
	TCP      []TCPConnections  `json:"tcp,omitempty"`

	// Counters are the collectors' event and loss counts during the window,
	// named collector.event (oncpu.samples, offcpu.map_full, ...). Every
	// loss has a counter; stacks.missing counts samples whose stack was no
	// longer in the kernel's stack map when read.
	Counters map[string]uint64 `json:"counters"`
	// Symbolization is the symbolizer's account of this window's frames.
	Symbolization SymbolizationStats `json:"symbolization"`
}

// RunQueueLatency is one process's wait for a CPU after becoming runnable.
type RunQueueLatency struct {
	PID     uint32    `json:"pid"`
	Comm    string    `json:"comm"`
	Latency Histogram `json:"latency_ns"`
}

// BlockIOLatency is the block requests of one process to one device, of one
// operation, from issue to completion.
type BlockIOLatency struct {
	Device  string    `json:"device"` // "major:minor"
	Name    string    `json:"name"`   // e.g. "vda", from /sys/dev/block
	PID     uint32    `json:"pid"`    // 0 when issued outside any process context
	Comm    string    `json:"comm"`
	Op      string    `json:"op"` // read, write, flush, discard, ...
	Latency Histogram `json:"latency_ns"`
	Bytes   Histogram `json:"bytes"`
	Errors  uint64    `json:"errors"`
}

// TCPConnections are one process's TCP connections with one peer.
// Passive (accepted) connections complete in softirq context, so their
// process is not known: PID 0 and Passive set, and Peer is the client's
// address with our local port (the client's port differs for every
// connection).
type TCPConnections struct {
	PID     uint32         `json:"pid"`
	Comm    string         `json:"comm"`
	Passive bool           `json:"passive"`
	Peer    netip.AddrPort `json:"peer"`
	// Connect is the SYN_SENT to ESTABLISHED latency of active opens.
	Connect Histogram `json:"connect_ns"`
	// Failures are opens that closed before being established.
	Failures uint64 `json:"failures"`
	// Lifetime is ESTABLISHED to CLOSE of connections that closed in the
	// window, with the bytes they moved.
	Lifetime      Histogram `json:"lifetime_ns"`
	BytesSent     uint64    `json:"bytes_sent"`
	BytesReceived uint64    `json:"bytes_received"`
	Retransmits   uint64    `json:"retransmits"`
}

// SymbolizationStats summarise how well this window's stacks resolved.
// Frames without a function had no mapping, no readable object or no
// symbol; samples of unknown processes are of processes that exited before
// their mappings could be read.
type SymbolizationStats struct {
	Samples             uint64 `json:"samples"`
	UnknownPIDSamples   uint64 `json:"unknown_pid_samples"`
	UserFrames          uint64 `json:"user_frames"`
	UnknownUserFrames   uint64 `json:"unknown_user_frames"`
	KernelFrames        uint64 `json:"kernel_frames"`
	UnknownKernelFrames uint64 `json:"unknown_kernel_frames"`
	// Processes and ObjectBytes are what the symbolizer holds at the end
	// of the window: process snapshots, and the approximate heap of the
	// parsed binaries it caches.
	Processes   int   `json:"processes"`
	ObjectBytes int64 `json:"object_bytes"`
}

// ProgramStats is the kernel's account of one BPF program's running time,
// kept only while statistics are enabled (ebpf.EnableStats, or the
// kernel.bpf_stats_enabled sysctl): the collectors' in-kernel cost, which
// the profiled tasks pay.
type ProgramStats struct {
	Name     string        `json:"name"` // object/program
	Runtime  time.Duration `json:"runtime_ns"`
	RunCount uint64        `json:"run_count"`
	Misses   uint64        `json:"recursion_misses"`
}

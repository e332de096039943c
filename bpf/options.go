package bpf

import (
	"fmt"
	"time"
)

// Collector names one kind of collection.
type Collector string

const (
	OnCPU      Collector = "oncpu"   // perf_event cpu-clock samples, user+kernel stacks
	OffCPU     Collector = "offcpu"  // sched_switch: time off CPU by stack and state
	RunQueue   Collector = "runqlat" // wakeup to run latency per process
	BlockIO    Collector = "biolat"  // block request latency per device, process, op
	TCP        Collector = "tcp"     // connects, lifetimes, bytes, retransmits
	PageFaults Collector = "faults"  // user page faults per thread
)

// AllCollectors lists every collector, in the order they are loaded.
var AllCollectors = []Collector{OnCPU, OffCPU, RunQueue, BlockIO, TCP, PageFaults}

// Default sampling frequencies. Odd and prime, so that sampling does not
// run in lockstep with periodic work (timers at 100 Hz, 10 ms ticks).
const (
	DiagnoseFrequency = 99
	AgentFrequency    = 19
)

// maxFrequency bounds the on-CPU sampling rate: past a few kHz the
// sampling itself becomes the load it measures.
const maxFrequency = 10000

// AgentOffCPUSampling is the agent's Options.OffCPUSampling. Off-CPU
// stacks cost about 4 µs a context switch, most of the collectors' cost on
// a busy host; following 1 in 4 keeps the agent under 0.3% of the CPUs
// (docs/benchmarks.md) while a minute's window still sees a wait that
// recurs every second about 15 times.
const AgentOffCPUSampling = 4

// DefaultUnwindTableBytes bounds the .eh_frame tables in the kernel: about
// 300 objects of libc's size (187 KB).
const DefaultUnwindTableBytes = 64 << 20

// Options choose what a Session collects and from whom.
type Options struct {
	// Collectors to run; empty means all of them.
	Collectors []Collector
	// Frequency of on-CPU sampling per CPU, in Hz; 0 means DiagnoseFrequency.
	Frequency int
	// PIDs restricts collection to these processes (all their threads).
	// Empty, together with Cgroups, means every process on the host.
	PIDs []int
	// FollowChildren adds processes forked by a watched PID to the watch
	// list, as `perfhound diagnose -- CMD` needs for shell pipelines.
	FollowChildren bool
	// Cgroups restricts collection to tasks in these cgroup v2 directories
	// (paths such as /sys/fs/cgroup/system.slice/foo.service).
	Cgroups []string
	// MinOffCPU drops off-CPU waits shorter than this; 0 means 1µs, as
	// BCC's offcputime. Raising it saves little: the stacks are taken at
	// every switch-out whatever the wait turns out to be, and fast devices
	// complete I/O in tens of microseconds, so a higher bar hides disk
	// waits that add up.
	MinOffCPU time.Duration
	// OffCPUSampling follows one switch-out in this many, at random, and
	// counts each wait it sees that many times: an unbiased estimate of
	// the off-CPU time per stack at about 1/N of the cost, noisier for
	// rare waits. 0 or 1 follows every switch-out (diagnose); the agent,
	// which runs all the time, uses AgentOffCPUSampling.
	OffCPUSampling int
	// FaultStacks records the user stack of every page fault.
	FaultStacks bool
	// NativeUnwind walks user stacks (on-CPU samples, off-CPU waits and,
	// with FaultStacks, page faults) by the .eh_frame tables of the
	// objects each watched process maps (c/unwind.h), for code built
	// without frame pointers; frame pointers elsewhere. The tables are
	// built when a process is first met and after it execs.
	NativeUnwind bool
	// UnwindTableBytes bounds the tables held in the kernel; 0 means
	// DefaultUnwindTableBytes.
	UnwindTableBytes int64
	// ProcFS is where procfs is mounted; "" means /proc.
	ProcFS string
}

func (o Options) withDefaults() Options {
	if len(o.Collectors) == 0 {
		o.Collectors = AllCollectors
	}
	if o.Frequency == 0 {
		o.Frequency = DiagnoseFrequency
	}
	if o.MinOffCPU == 0 {
		o.MinOffCPU = time.Microsecond
	}
	if o.ProcFS == "" {
		o.ProcFS = "/proc"
	}
	if o.OffCPUSampling == 0 {
		o.OffCPUSampling = 1
	}
	if o.UnwindTableBytes == 0 {
		o.UnwindTableBytes = DefaultUnwindTableBytes
	}
	return o
}

func (o Options) validate() error {
	if o.Frequency < 1 || o.Frequency > maxFrequency {
		return fmt.Errorf("bpf: sampling frequency %d Hz out of range 1..%d", o.Frequency, maxFrequency)
	}
	seen := map[Collector]bool{}
	for _, c := range o.Collectors {
		known := false
		for _, k := range AllCollectors {
			known = known || c == k
		}
		if !known {
			return fmt.Errorf("bpf: unknown collector %q", c)
		}
		if seen[c] {
			return fmt.Errorf("bpf: collector %q listed twice", c)
		}
		seen[c] = true
	}
	if o.OffCPUSampling < 1 || o.OffCPUSampling > 1<<16 {
		return fmt.Errorf("bpf: off-CPU sampling 1 in %d out of range 1..65536", o.OffCPUSampling)
	}
	for _, pid := range o.PIDs {
		if pid <= 0 {
			return fmt.Errorf("bpf: invalid pid %d", pid)
		}
	}
	if len(o.PIDs) > maxTargetPIDs {
		return fmt.Errorf("bpf: %d pids to watch, at most %d", len(o.PIDs), maxTargetPIDs)
	}
	if len(o.Cgroups) > maxTargetCgroups {
		return fmt.Errorf("bpf: %d cgroups to watch, at most %d", len(o.Cgroups), maxTargetCgroups)
	}
	return nil
}

func (o Options) has(c Collector) bool {
	for _, x := range o.Collectors {
		if x == c {
			return true
		}
	}
	return false
}

// Must match MAX_TARGET_PIDS and MAX_TARGET_CGROUPS in c/common.h.
const (
	maxTargetPIDs    = 1024
	maxTargetCgroups = 256
)

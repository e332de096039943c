package verdict

import (
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Class is what a target is bound by.
type Class string

// The classes, in the order reports list them.
const (
	ClassCPU        Class = "cpu"        // running, or waiting for a CPU
	ClassMemory     Class = "memory"     // GC, allocation, page faults, reclaim, swap
	ClassIO         Class = "io"         // block I/O: waiting on disks and the kernel's storage stack
	ClassNetwork    Class = "network"    // sockets: waiting on peers and the kernel's network stack
	ClassContention Class = "contention" // locks: futexes, Go mutexes
	ClassNone       Class = "none"       // nothing saturated: idle, sleeping, or waiting on something else
)

// Classes lists every class but none, in report order.
var Classes = []Class{ClassCPU, ClassMemory, ClassIO, ClassNetwork, ClassContention}

// Verdict is the analyzer's answer for one observation.
type Verdict struct {
	Target   observation.Target `json:"target"`
	Start    time.Time          `json:"start"`
	Duration time.Duration      `json:"duration_ns"`

	// Class is where the target's time goes; Confidence (0..1) says how
	// clearly, and how complete the evidence was. Secondary is a second
	// class close enough to matter, "" when there is none.
	Class      Class   `json:"class"`
	Confidence float64 `json:"confidence"`
	Secondary  Class   `json:"secondary,omitempty"`
	// Summary is the verdict in one sentence.
	Summary string `json:"summary"`
	// Load is the time per second of wall time that the target's threads
	// (or, where only the Go runtime can tell, its goroutines, at most one
	// per CPU) spent bound by each class: 1.0 is one thread all the time.
	Load map[Class]float64 `json:"load"`

	Evidence  []Evidence `json:"evidence"`
	Breakdown Breakdown  `json:"breakdown"`
	USE       []Resource `json:"use"`
	// Latency gives percentiles of the waits eBPF timed: the run queue,
	// each disk's requests, TCP connects.
	Latency    []Latency  `json:"latency,omitempty"`
	Findings   []Finding  `json:"findings,omitempty"`
	Priorities []Priority `json:"priorities"`
	// Missing is what the observation lacked, with what that costs this
	// verdict.
	Missing    []Gap      `json:"missing,omitempty"`
	Thresholds Thresholds `json:"thresholds"`

	// runQueue is the part of the cpu load spent waiting for a CPU, as
	// Judge chose the class by (choose): Summarize keeps it.
	runQueue float64
}

// Evidence is one number behind the verdict.
type Evidence struct {
	// Class is the class the number speaks for, "" when it is context.
	Class Class `json:"class,omitempty"`
	// Signal names where the number came from: "ebpf.oncpu",
	// "process.schedstat.run_delay", "pprof.mutex"...
	Signal string  `json:"signal"`
	Text   string  `json:"text"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
}

// Resource is one row of the USE table (Brendan Gregg's utilization,
// saturation, errors) for a CPU set, memory, a disk or an interface.
type Resource struct {
	Resource    string  `json:"resource"` // "cpu", "memory", "disk vda", "net eth0"
	Utilization *Metric `json:"utilization,omitempty"`
	Saturation  *Metric `json:"saturation,omitempty"`
	Errors      *Metric `json:"errors,omitempty"`
	// Status is "ok", "busy" (utilization over its threshold),
	// "saturated" (saturation over its threshold), "errors", or "unknown"
	// when no series said anything about the resource.
	Status string `json:"status"`
}

// Metric is one cell of the USE table: a value, the signal it came from,
// and the threshold it was judged against (0 when none applies).
type Metric struct {
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Signal    string  `json:"signal"`
	Text      string  `json:"text"`
	Threshold float64 `json:"threshold,omitempty"`
}

// Finding is something worth knowing that is not a bottleneck of the
// window, such as memory growing through it.
type Finding struct {
	Kind   string  `json:"kind"` // "leak", ...
	Signal string  `json:"signal"`
	Text   string  `json:"text"`
	Rate   float64 `json:"rate"`
	Unit   string  `json:"unit"`
}

// Priority is one thing to optimize, with what it would save.
type Priority struct {
	Rank  int   `json:"rank"`
	Class Class `json:"class"`
	// Kind of item: "function", "syscall", "peer", "lock", "gc",
	// "allocation", "page faults", "runtime" (the Go runtime's own work).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Saving is the thread time per second of wall time that would be
	// saved if the item cost nothing (the upper bound the data supports);
	// Share is that as a part of the target's busy time.
	Saving float64 `json:"saving"`
	Share  float64 `json:"share"`
	// Remedy is the family of fix the evidence points to ("algorithm",
	// "fewer allocations", "GC tuning", "batching", ...); Why says which
	// evidence.
	Remedy string `json:"remedy"`
	Why    string `json:"why"`

	// runtimeWork marks an item charged to the Go runtime's own work (its
	// functions, or a stack with no frame of the program's): foldRuntime
	// makes them one item.
	runtimeWork bool
}

// Gap is a signal the observation lacks and what that costs the verdict.
type Gap struct {
	Signal string `json:"signal"`
	Reason string `json:"reason"`
	Cost   string `json:"cost,omitempty"`
}

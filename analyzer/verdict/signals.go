package verdict

import "github.com/perfhound/perfhound/analyzer/observation"

// The verdict's output vocabulary: the signals it names as the source of a
// number (Evidence, Metric, Latency, Finding and Gap's Signal) and the
// kinds of its priorities and findings. They are the strings of the JSON
// report (perfhound.diagnosis/v1) and never change. A signal is an
// observation's series name (observation's catalogue), an eBPF collector
// ("ebpf." and its name, as the observation's missing entries name it),
// or a profile ("pprof.mutex": its source and kind).
const (
	SignalEBPF    = string(observation.SourceEBPF) // the eBPF collectors as a whole
	SignalOnCPU   = "ebpf.oncpu"                   // eBPF on-CPU stacks: the breakdown's on-CPU side
	SignalOffCPU  = "ebpf.offcpu"                  // eBPF off-CPU stacks and thread states: its waits
	SignalRunQLat = "ebpf.runqlat"                 // eBPF run-queue latency (histogram runq.latency)
	SignalBioLat  = "ebpf.biolat"                  // eBPF block I/O latency (histogram block.latency)
	SignalTCP     = "ebpf.tcp"                     // eBPF TCP connections (histograms tcp.connect, tcp.lifetime)
	SignalFaults  = "ebpf.faults"                  // eBPF page-fault stacks
	SignalSymbols = "ebpf.symbols"                 // eBPF stack symbolization

	SignalPprof      = string(observation.SourcePprof)                                       // a Go service's pprof endpoint
	SignalPprofCPU   = string(observation.SourcePprof) + "." + string(observation.KindCPU)   // its CPU profile
	SignalPprofMutex = string(observation.SourcePprof) + "." + string(observation.KindMutex) // its mutex profile
	SignalPprofBlock = string(observation.SourcePprof) + "." + string(observation.KindBlock) // its block profile
	SignalGoExpvar   = "go.expvar"                                                           // its runtime series (expvar)

	SignalProcess          = "process"                                       // the watched process (its exit)
	SignalProcessCPU       = string(observation.ProcessCPU)                  // its CPU time series
	SignalProcessSchedstat = "process.schedstat"                             // its scheduler statistics
	SignalProcessTCP       = "process.tcp"                                   // its TCP connections' tcp_info
	SignalProcessPSI       = string(observation.ProcessPSI)                  // its cgroup's pressure stalls
	SignalRunDelay         = string(observation.ProcessRunDelay)             // its run-queue delay
	SignalHostPSI          = string(observation.HostPSI)                     // the host's pressure stalls
	SignalGCCPUFraction    = string(observation.GoGCCPUFraction)             // the Go runtime's GC CPU fraction
	SignalProcFallback     = "process.schedstat, psi"                        // the /proc breakdown's off-CPU side
	SignalMetaCPUs         = "meta.cpus"                                     // the observation's CPU count, without host.cpu.count
	SignalMemoryUsed       = string(observation.HostMemAvailable) + "/total" // the host's memory in use
)

// profileSignal names a profile of a source and kind as a signal:
// "pprof.mutex", "ingest.goroutine".
func profileSignal(source observation.ProfileSource, kind observation.ProfileKind) string {
	return string(source) + "." + string(kind)
}

// seriesSignal names a series, with the label values that select it:
// "host.psi{cpu,some}", "host.disk.queue{vda}".
func seriesSignal(name observation.SeriesName, labelValues string) string {
	if labelValues == "" {
		return string(name)
	}
	return string(name) + "{" + labelValues + "}"
}

// Where a breakdown came from (Breakdown.Source).
const (
	BreakdownEBPF = string(observation.SourceEBPF) // eBPF thread states and stacks
	BreakdownProc = "proc"                         // /proc CPU times, schedstat and PSI
)

// Kinds of priorities (Priority.Kind).
const (
	PriorityFunction   = "function"    // the code's own work, by function
	PrioritySyscall    = "syscall"     // kernel work or a wait, by syscall and caller
	PriorityLock       = "lock"        // a lock, by the code that takes it
	PriorityPeer       = "peer"        // a TCP peer waited on
	PriorityGC         = "gc"          // the Go collector
	PriorityAllocation = "allocation"  // an allocation site
	PriorityPageFaults = "page faults" // a page-fault site
	PriorityRuntime    = "runtime"     // the Go runtime's own work, folded into one item
)

// PriorityKinds lists every kind of priority.
func PriorityKinds() []string {
	return []string{PriorityFunction, PrioritySyscall, PriorityLock, PriorityPeer, PriorityGC, PriorityAllocation, PriorityPageFaults, PriorityRuntime}
}

// Kinds of findings (Finding.Kind).
const (
	FindingLeak = "leak" // memory growing steadily through the window
)

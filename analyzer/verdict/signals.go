package verdict

import "github.com/perfhound/perfhound/analyzer/observation"

// The verdict's output vocabulary: the signals it names as the source of a
// number (Evidence, Metric, Latency, Finding and Gap's Signal) and the
// kinds of its priorities and findings. They are the strings of the JSON
// report (perfhound.diagnosis/v1) and never change; docs/analysis.md lists
// them (TestVocabularyDocumented). A signal is what the observation's
// catalogue names: a collector or a part of one, as the observation's
// missing entries name it (observation.Signal), a series
// (observation.SeriesName, with label values: seriesSignal), or a profile
// of a source and kind ("pprof.mutex": profileSignal).
const (
	SignalEBPF    = string(observation.SignalEBPF)        // the eBPF collectors as a whole
	SignalOnCPU   = string(observation.SignalEBPFOnCPU)   // eBPF on-CPU stacks: the breakdown's on-CPU side
	SignalOffCPU  = string(observation.SignalEBPFOffCPU)  // eBPF off-CPU stacks and thread states: its waits
	SignalRunQLat = string(observation.SignalEBPFRunQLat) // eBPF run-queue latency (histogram runq.latency)
	SignalBioLat  = string(observation.SignalEBPFBioLat)  // eBPF block I/O latency (histogram block.latency)
	SignalTCP     = string(observation.SignalEBPFTCP)     // eBPF TCP connections (histograms tcp.connect, tcp.lifetime)
	SignalFaults  = string(observation.SignalEBPFFaults)  // eBPF page-fault stacks
	SignalSymbols = string(observation.SignalEBPFSymbols) // eBPF stack symbolization

	SignalPprof      = string(observation.SignalPprof)      // a Go service's pprof endpoint
	SignalPprofCPU   = string(observation.SignalPprofCPU)   // its CPU profile
	SignalPprofMutex = string(observation.SignalPprofMutex) // its mutex profile
	SignalPprofBlock = string(observation.SignalPprofBlock) // its block profile
	SignalGoExpvar   = string(observation.SignalGoExpvar)   // its runtime series (expvar)

	SignalProcess          = string(observation.SignalProcess)               // the watched process (its exit)
	SignalProcessCPU       = string(observation.ProcessCPU)                  // its CPU time series
	SignalProcessSchedstat = string(observation.SignalProcessSchedstat)      // its scheduler statistics
	SignalProcessTCP       = string(observation.SignalProcessTCP)            // its TCP connections' tcp_info
	SignalProcessPSI       = string(observation.ProcessPSI)                  // its cgroup's pressure stalls
	SignalRunDelay         = string(observation.ProcessRunDelay)             // its run-queue delay
	SignalHostPSI          = string(observation.HostPSI)                     // the host's pressure stalls
	SignalGCCPUFraction    = string(observation.GoGCCPUFraction)             // the Go runtime's GC CPU fraction
	SignalProcFallback     = SignalProcessSchedstat + ", psi"                // the /proc breakdown's off-CPU side
	SignalThreadStates     = string(observation.SignalThreadStates)          // its off-CPU side from sampled thread states
	SignalMetaCPUs         = "meta.cpus"                                     // the observation's CPU count, without host.cpu.count
	SignalMemoryUsed       = string(observation.HostMemAvailable) + "/total" // the host's memory in use
)

// Signals lists every signal constant above.
func Signals() []string {
	return []string{
		SignalEBPF, SignalOnCPU, SignalOffCPU, SignalRunQLat, SignalBioLat, SignalTCP, SignalFaults, SignalSymbols,
		SignalPprof, SignalPprofCPU, SignalPprofMutex, SignalPprofBlock, SignalGoExpvar,
		SignalProcess, SignalProcessCPU, SignalProcessSchedstat, SignalProcessTCP, SignalProcessPSI, SignalRunDelay,
		SignalHostPSI, SignalGCCPUFraction, SignalProcFallback, SignalThreadStates, SignalMetaCPUs, SignalMemoryUsed,
	}
}

// profileSignal names a profile of a source and kind as a signal:
// "pprof.mutex", "ingest.goroutine".
func profileSignal(source observation.ProfileSource, kind observation.ProfileKind) string {
	return string(observation.ProfileSignal(source, kind))
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

// BreakdownSources lists every source of a breakdown.
func BreakdownSources() []string { return []string{BreakdownEBPF, BreakdownProc} }

// PriorityKinds lists every kind of priority.
func PriorityKinds() []string {
	return []string{PriorityFunction, PrioritySyscall, PriorityLock, PriorityPeer, PriorityGC, PriorityAllocation, PriorityPageFaults, PriorityRuntime}
}

// Kinds of findings (Finding.Kind).
const (
	FindingLeak = "leak" // memory growing steadily through the window
)

// FindingKinds lists every kind of finding.
func FindingKinds() []string { return []string{FindingLeak} }

package verdict

import (
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// gapCosts says what a missing signal costs the verdict, by signal
// prefix: the first that matches, specific before general.
var gapCosts = []struct{ prefix, cost string }{
	{SignalOnCPU, "on-CPU time is not split into user code, GC, allocation and syscalls by stack; priorities come from pprof or are missing"},
	{SignalOffCPU, "waits are not told apart (disk, network, locks, sleep): the I/O, network and contention classes rest on PSI and Go profiles only"},
	{SignalRunQLat, "no run-queue latency distribution; schedstat's mean stands in"},
	{SignalBioLat, "no per-device block I/O latency"},
	{SignalTCP, "no per-peer TCP latency, bytes or retransmits; a Go program's network waits cannot be told from idleness"},
	{SignalFaults, "no page-fault stacks"},
	{SignalSymbols, "some stacks are unnamed"},
	{SignalEBPF, "thread states and stacks are partial or absent: the breakdown falls back to /proc, PSI and pprof, and the confidence drops"},
	{SignalPprofMutex, "Go lock contention is invisible: goroutines waiting on a sync.Mutex look idle"},
	{SignalPprofBlock, "Go goroutines blocked on channels and locks are not timed"},
	{SignalPprofCPU, "Go CPU time is not split into GC, allocation and user code from the runtime's own profile"},
	{SignalPprof, "part of the Go runtime's own view is missing"},
	{SignalGoExpvar, "no Go runtime series (heap, GC)"},
	{SignalProcessSchedstat, "no run-queue delay for the process"},
	{SignalProcessPSI, "no pressure stall information for the process's cgroup"},
	{SignalHostPSI, "no pressure stall information: CPU, memory and I/O saturation are judged from counters only"},
	{SignalProcess, "the process's series end early"},
}

// gaps lists what the observation lacked, with its cost, adding what it
// lacks without saying so: eBPF profiles, and a Go program's own profiles.
func gaps(o *observation.Observation, b Breakdown, goProgram bool) []Gap {
	var out []Gap
	seen := map[string]bool{}
	for _, m := range o.Missing {
		cost := costOf(string(m.Signal))
		if m.LostEvents() {
			cost = "a few stacks are partial or events uncounted; the breakdown is still eBPF's"
		}
		out = append(out, Gap{Signal: string(m.Signal), Reason: m.Reason, Cost: cost})
		seen[string(m.Signal)] = true
	}
	mentioned := func(prefix string) bool {
		for s := range seen {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		}
		return false
	}
	if b.Source != BreakdownEBPF && !mentioned(SignalEBPF) {
		reason := "the observation has no eBPF profiles"
		if hasEBPFProfile(o) {
			reason = "the eBPF profiles hold no sample of the target"
		}
		out = append(out, Gap{Signal: SignalEBPF, Reason: reason, Cost: costOf(SignalEBPF)})
	}
	if b.Source == "" {
		out = append(out, Gap{Signal: SignalProcessCPU, Reason: "the observation has no CPU time series either", Cost: "no breakdown of the target's time: the verdict is none by default"})
	}
	if goProgram && len(o.ProfilesOf(observation.KindMutex))+len(o.ProfilesOf(observation.KindBlock))+len(o.ProfilesOf(observation.KindContention)) == 0 && !mentioned(SignalPprof) {
		out = append(out, Gap{Signal: SignalPprof, Reason: "a Go program watched without its net/http/pprof endpoint (watch it with --url as well)",
			Cost: "goroutines waiting on locks, channels or sockets park in the runtime and look idle in thread stacks"})
	}
	return out
}

// hasEBPFProfile tells an observation with eBPF profiles.
func hasEBPFProfile(o *observation.Observation) bool {
	for _, p := range o.Profiles {
		if p.Source == observation.SourceEBPF {
			return true
		}
	}
	return false
}

func costOf(signal string) string {
	for _, g := range gapCosts {
		if strings.HasPrefix(signal, g.prefix) {
			return g.cost
		}
	}
	return ""
}

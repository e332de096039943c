package verdict

import (
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// gapCosts says what a missing signal costs the verdict, by signal
// prefix: the first that matches, specific before general.
var gapCosts = []struct{ prefix, cost string }{
	{"ebpf.oncpu", "on-CPU time is not split into user code, GC, allocation and syscalls by stack; priorities come from pprof or are missing"},
	{"ebpf.offcpu", "waits are not told apart (disk, network, locks, sleep): the I/O, network and contention classes rest on PSI and Go profiles only"},
	{"ebpf.runqlat", "no run-queue latency distribution; schedstat's mean stands in"},
	{"ebpf.biolat", "no per-device block I/O latency"},
	{"ebpf.tcp", "no per-peer TCP latency, bytes or retransmits; a Go program's network waits cannot be told from idleness"},
	{"ebpf.faults", "no page-fault stacks"},
	{"ebpf.symbols", "some stacks are unnamed"},
	{"ebpf", "thread states and stacks are partial or absent: the breakdown falls back to /proc, PSI and pprof, and the confidence drops"},
	{"pprof.mutex", "Go lock contention is invisible: goroutines waiting on a sync.Mutex look idle"},
	{"pprof.block", "Go goroutines blocked on channels and locks are not timed"},
	{"pprof.cpu", "Go CPU time is not split into GC, allocation and user code from the runtime's own profile"},
	{"pprof", "part of the Go runtime's own view is missing"},
	{"go.expvar", "no Go runtime series (heap, GC)"},
	{"process.schedstat", "no run-queue delay for the process"},
	{"process.psi", "no pressure stall information for the process's cgroup"},
	{"host.psi", "no pressure stall information: CPU, memory and I/O saturation are judged from counters only"},
	{"process", "the process's series end early"},
}

// gaps lists what the observation lacked, with its cost, adding what it
// lacks without saying so: eBPF profiles, and a Go program's own profiles.
func gaps(o *observation.Observation, b Breakdown, goProgram bool) []Gap {
	var out []Gap
	seen := map[string]bool{}
	for _, m := range o.Missing {
		cost := costOf(m.Signal)
		if m.Signal == "ebpf" && strings.HasPrefix(m.Reason, "events lost") {
			cost = "a few stacks are partial or events uncounted; the breakdown is still eBPF's"
		}
		out = append(out, Gap{Signal: m.Signal, Reason: m.Reason, Cost: cost})
		seen[m.Signal] = true
	}
	mentioned := func(prefix string) bool {
		for s := range seen {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		}
		return false
	}
	if b.Source != "ebpf" && !mentioned("ebpf") {
		out = append(out, Gap{Signal: "ebpf", Reason: "the observation has no eBPF profiles", Cost: costOf("ebpf")})
	}
	if b.Source == "" {
		out = append(out, Gap{Signal: "process.cpu", Reason: "the observation has no CPU time series either", Cost: "no breakdown of the target's time: the verdict is none by default"})
	}
	if goProgram && len(o.ProfilesOf(observation.KindMutex))+len(o.ProfilesOf(observation.KindBlock))+len(o.ProfilesOf(observation.KindContention)) == 0 && !mentioned("pprof") {
		out = append(out, Gap{Signal: "pprof", Reason: "a Go program watched without its net/http/pprof endpoint (watch it with --url as well)",
			Cost: "goroutines waiting on locks, channels or sockets park in the runtime and look idle in thread stacks"})
	}
	return out
}

func costOf(signal string) string {
	for _, g := range gapCosts {
		if strings.HasPrefix(signal, g.prefix) {
			return g.cost
		}
	}
	return ""
}

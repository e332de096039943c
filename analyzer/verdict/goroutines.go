package verdict

import (
	"fmt"
	"math"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// goroutineLoad adds what threads cannot show. A Go program's goroutines
// park in the runtime when they wait on a lock or a socket, and the
// threads that ran them go idle in the scheduler: in thread states and
// stacks the wait looks like idleness. Two views see through it:
//   - Go's mutex and block profiles, which time goroutines' waits on locks;
//   - the target's outgoing TCP connections (eBPF), whose open time is
//     time some goroutine was waiting on a peer, at most the idle thread
//     time it can hide in.
//
// Goroutine waits are counted at most once per CPU: beyond that, more
// waiting goroutines do not make the program slower. It returns what it
// inferred rather than measured.
func goroutineLoad(o *observation.Observation, v *Verdict, window float64) inference {
	inferred := inference{classes: map[Class]bool{}}
	cpus := cpuCount(o)
	if delay, signal := lockDelay(o); delay > 0 {
		perSec := delay / window
		v.Evidence = append(v.Evidence, Evidence{
			Class: ClassContention, Signal: signal, Value: perSec, Unit: "seconds/s",
			Text: fmt.Sprintf("goroutines waited %.2f s per second on locks; counted as at most %.0f, one per CPU", perSec, cpus),
		})
		v.Load[ClassContention] = math.Max(v.Load[ClassContention], math.Min(perSec, cpus))
	}
	v.Evidence = append(v.Evidence, goroutineStates(o)...)
	if f, ok := meanOf(o, observation.GoGCCPUFraction, nil); ok && f >= 0.01 {
		v.Evidence = append(v.Evidence, Evidence{Class: ClassMemory, Signal: SignalGCCPUFraction, Value: f, Unit: "ratio",
			Text: fmt.Sprintf("the Go runtime reports %.1f%% of the CPU time since start in GC", 100*f)})
	}
	idle := v.Breakdown.Seconds[WaitIdle] / window
	if open := activeConnSeconds(o) / window; open > 0 && idle > 0 {
		l := math.Min(open, math.Min(idle, cpus))
		v.Evidence = append(v.Evidence, Evidence{
			Class: ClassNetwork, Signal: SignalTCP, Value: open, Unit: "seconds/s",
			Text: fmt.Sprintf("outgoing TCP connections open %.2f s per second while %.2f threads sat idle: goroutines waiting on peers", open, idle),
		})
		if l > v.Load[ClassNetwork] {
			v.Load[ClassNetwork] = l
			inferred.classes[ClassNetwork] = true
		}
	}
	if l, e := socketWaitLoad(o, v, window, cpus); l > v.Load[ClassNetwork] {
		v.Evidence = append(v.Evidence, e)
		v.Load[ClassNetwork] = l
		inferred.classes[ClassNetwork] = true
		inferred.pollPeers = true
	}
	return inferred
}

// inference is what goroutineLoad inferred rather than measured, for the
// confidence and the priorities.
type inference struct {
	// classes are those whose load was inferred.
	classes map[Class]bool
	// pollPeers is set when the network load is an event loop's waits in
	// epoll or poll while its outgoing connections were busy
	// (socketWaitLoad): the peers it connected to are what it waited on.
	pollPeers bool
}

// socketWaitLoad is the network load of waits on sockets that no stack
// can name: an event loop waits in epoll or poll (wait.poll) on all its
// sockets at once. For a client, those waits were on its peers for as
// long as its active connections (the ones it opened) were busy: the
// summed lifetimes of those that closed in the window (eBPF), or, for
// those still open, the share of the window's readings in which they
// carried data (process.tcp), at most one waiter per open connection and
// per CPU. Two cases are left to the stacks alone, where the loop's waits
// cannot be told apart: a server (it also has connections it accepted:
// its loop waits for clients too), and a program busy on a CPU for half
// as long or more (a loop beside busy threads is a helper, not the
// bottleneck).
func socketWaitLoad(o *observation.Observation, v *Verdict, window, cpus float64) (float64, Evidence) {
	// Only epoll and poll: a Go program's netpoller waits look like its
	// idle threads, which a program busy elsewhere has too; its network
	// waits come from its closed connections' lifetimes (goroutineLoad).
	waits := v.Breakdown.Seconds[WaitPoll] / window
	if waits == 0 || servesClients(o) {
		return 0, Evidence{}
	}
	closed := activeConnSeconds(o) / window
	share, conns := activeTraffic(o)
	open := share * math.Max(conns, 1)
	busy := math.Min(math.Max(closed, open), cpus)
	l := math.Min(waits, busy)
	if l == 0 || v.Load[ClassCPU] >= l/2 {
		return 0, Evidence{}
	}
	var why, signal string
	if closed >= open {
		why, signal = fmt.Sprintf("its outgoing TCP connections were open %.2f s per second (eBPF)", closed), SignalTCP
	} else {
		why, signal = fmt.Sprintf("its outgoing TCP connections (%.1f open) carried data in %.0f%% of the readings", conns, 100*share), SignalProcessTCP
	}
	return l, Evidence{
		Class: ClassNetwork, Signal: signal, Value: l, Unit: "seconds/s",
		Text: fmt.Sprintf("%s while its threads waited %.2f s per second in epoll or poll: waiting on peers", why, waits),
	}
}

// servesClients tells a target that accepted connections in the window:
// eBPF saw it accept, or process.tcp saw passive connections open.
func servesClients(o *observation.Observation) bool {
	for _, h := range histogramsOf(o, observation.HistTCPLifetime) {
		if h.Labels["passive"] != "" {
			return true
		}
	}
	for _, h := range histogramsOf(o, observation.HistTCPConnect) {
		if h.Labels["passive"] != "" {
			return true
		}
	}
	n, ok := meanOf(o, observation.ProcessTCPConns, map[string]string{"role": "passive"})
	return ok && n > 0
}

// activeTraffic is the share of the window's readings in which the
// target's active TCP connections carried data either way, and how many
// were open on average.
func activeTraffic(o *observation.Observation) (share, conns float64) {
	var rates [][]observation.Point
	for _, s := range o.SeriesNamed(observation.ProcessTCPBytes, map[string]string{"role": "active"}) {
		rates = append(rates, s.Points)
	}
	n, busy := 0, 0
	for i := 0; ; i++ {
		any, moved := false, false
		for _, pts := range rates {
			if i < len(pts) {
				any = true
				moved = moved || pts[i].Value > 0
			}
		}
		if !any {
			break
		}
		n++
		if moved {
			busy++
		}
	}
	if n == 0 {
		return 0, 0
	}
	conns, _ = meanOf(o, observation.ProcessTCPConns, map[string]string{"role": "active"})
	return float64(busy) / float64(n), conns
}

// lockDelay is the goroutine time spent waiting on locks in the window,
// from Go's mutex profile (delay at unlock), else from the lock waits of
// its block profile; with both, the larger, since they see the same
// waits from two ends.
func lockDelay(o *observation.Observation) (seconds float64, signal string) {
	for _, p := range o.ProfilesOf(observation.KindMutex) {
		if d := delaySeconds(p.Profile, nil); d > seconds {
			seconds, signal = d, profileSignal(p.Source, observation.KindMutex)
		}
	}
	for _, kind := range []observation.ProfileKind{observation.KindBlock, observation.KindContention} {
		for _, p := range o.ProfilesOf(kind) {
			if d := delaySeconds(p.Profile, isLockWait); d > seconds {
				seconds, signal = d, profileSignal(p.Source, kind)
			}
		}
	}
	return seconds, signal
}

// delaySeconds sums a contention profile's delay/nanoseconds over the
// samples keep accepts (all when nil).
func delaySeconds(p *profile.Profile, keep func([]string) bool) float64 {
	if p == nil {
		return 0
	}
	idx := sampleIndex(p, "delay")
	if idx < 0 {
		return 0
	}
	var sum float64
	for _, s := range p.Sample {
		if keep == nil || keep(frames(s)) {
			sum += nanos(s, idx)
		}
	}
	return sum
}

// activeConnSeconds is the summed lifetime of the target's outgoing TCP
// connections that closed in the window.
func activeConnSeconds(o *observation.Observation) float64 {
	var ns float64
	for _, h := range histogramsOf(o, observation.HistTCPLifetime) {
		if h.Labels["passive"] == "" {
			ns += float64(h.Sum)
		}
	}
	return ns / 1e9
}

// isGo tells whether the target is a Go program: it has Go profiles or
// runtime series, its executable says so (a threadstate profile's label),
// or its eBPF stacks run through the Go runtime.
func isGo(o *observation.Observation) bool {
	for _, p := range o.Profiles {
		switch p.Source {
		case observation.SourceEBPF:
		case observation.SourceProcFS:
			if p.Labels[observation.ProfileLabelGo] != "" {
				return true
			}
		default:
			return true
		}
	}
	for _, s := range o.Series {
		if s.Name.In(observation.FamilyGo) {
			return true
		}
	}
	for _, p := range o.Profiles {
		if p.Profile == nil {
			continue
		}
		for _, f := range p.Profile.Function {
			if isGoStart(f.Name) {
				return true
			}
		}
	}
	return false
}

// goroutineStates counts a goroutine profile's goroutines by what their
// stacks wait on: a snapshot, but one that shows the waits threads hide.
func goroutineStates(o *observation.Observation) []Evidence {
	var out []Evidence
	for _, p := range o.ProfilesOf(observation.KindGoroutine) {
		if p.Profile == nil {
			continue
		}
		counts := map[string]int64{}
		var total int64
		for _, s := range p.Profile.Sample {
			if len(s.Value) == 0 {
				continue
			}
			n := s.Value[0]
			total += n
			switch GoroutineState(frames(s)) {
			case GoroutineLock:
				counts["a lock"] += n
			case GoroutineNetpoll:
				counts["a socket or file (netpoll)"] += n
			case GoroutineSleep:
				counts["a timer"] += n
			case GoroutineChannel:
				counts["a channel or select"] += n
			}
		}
		if total == 0 {
			continue
		}
		var parts []string
		for _, k := range []string{"a lock", "a socket or file (netpoll)", "a channel or select", "a timer"} {
			if counts[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d on %s", counts[k], k))
			}
		}
		if len(parts) == 0 {
			continue
		}
		class := Class("")
		if counts["a lock"]*2 > total {
			class = ClassContention
		}
		out = append(out, Evidence{Class: class, Signal: profileSignal(p.Source, observation.KindGoroutine), Value: float64(total), Unit: "count",
			Text: fmt.Sprintf("%d goroutines at the window's end: %s", total, strings.Join(parts, ", "))})
	}
	return out
}

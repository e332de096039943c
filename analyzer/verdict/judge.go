package verdict

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// noTime is the summary of a verdict on no time at all.
const noTime = "The observation covers no time: nothing to judge."

// Judge tells what the observed target was bound by. It never fails: with
// little evidence the verdict says so, in its confidence and its Missing.
func Judge(o *observation.Observation, th Thresholds) *Verdict {
	v := &Verdict{
		Target:     o.Meta.Target,
		Start:      o.Meta.Start,
		Duration:   o.Meta.Duration,
		Load:       map[Class]float64{},
		Thresholds: th,
	}
	window := o.WindowSeconds()
	if window <= 0 {
		v.Class, v.Summary = ClassNone, noTime
		v.Missing = gaps(o, Breakdown{}, false)
		return v
	}
	if !o.HasTargetData() {
		// The host's series around the target are no evidence about it:
		// its CPU time includes perfhound's own fetching.
		v.Class, v.Summary = ClassNone, "Nothing of the target was collected (see what is missing): no verdict, whatever the host around it did."
		v.Missing = gaps(o, Breakdown{}, false)
		return v
	}

	pk := parkingOf(o)
	cl := newClassifier(pk)
	sites := callSitesOf(o, cl)
	v.Breakdown = breakdownOf(o, pk, sites, cl)
	if v.Breakdown.Source == "" || v.Breakdown.Source == BreakdownEBPF && v.Breakdown.Total() == 0 {
		// No eBPF profile, or one with no sample of the target (its
		// processes were not followed): /proc's view, if it has one.
		if proc := procBreakdown(o, window, th); proc.Source != "" || v.Breakdown.Source == "" {
			v.Breakdown = proc
		}
	}
	for c, s := range v.Breakdown.ByClass {
		if c != ClassNone {
			v.Load[c] = s / window
		}
	}
	inferred := goroutineLoad(o, v, window)

	v.runQueue = v.Breakdown.RunQueueCPU / window
	v.Class, v.Secondary = choose(v.Load, v.runQueue, th)
	v.Confidence = confidence(v, inferred.classes, th, goCPUProfile(o) != nil)
	v.Evidence = append(breakdownEvidence(v.Breakdown, window), v.Evidence...)
	v.Evidence = append(v.Evidence, resourceEvidence(o)...)
	v.USE = useTable(o, th)
	v.Latency = latencies(o)
	v.Findings = leakFindings(o, th)
	v.Priorities = priorities(o, v, pk, sites, cl, inferred.pollPeers, window, th)
	v.Missing = gaps(o, v.Breakdown, isGo(o))
	v.Summary = summary(v)
	return v
}

// choose picks the class with the most load, with two rules: nothing
// under MinLoad is a bottleneck, and memory management taking a large
// part of the CPU time is the bottleneck rather than the CPU it runs on.
// CPU time is time on a CPU: runQueue, the part of the cpu load spent
// waiting for one, is left out, or a busy machine would hide the share.
func choose(load map[Class]float64, runQueue float64, th Thresholds) (primary, secondary Class) {
	ranked := rank(load)
	if len(ranked) == 0 || load[ranked[0]] < th.MinLoad {
		return ClassNone, ""
	}
	primary = ranked[0]
	mem, onCPU := load[ClassMemory], max(0, load[ClassCPU]-runQueue)
	if primary == ClassCPU && mem >= th.MinLoad && mem >= th.MemoryShareOfCPU*(onCPU+mem) {
		primary = ClassMemory
	}
	for _, c := range ranked {
		if c != primary && load[c] >= th.MinLoad && load[c] >= th.SecondaryRatio*load[primary] {
			return primary, c
		}
	}
	return primary, ""
}

// rank lists the classes with load, most first (ties in report order).
func rank(load map[Class]float64) []Class {
	var out []Class
	for _, c := range Classes {
		if load[c] > 0 {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return load[out[i]] > load[out[j]] })
	return out
}

// confidence is how clearly the primary class leads, discounted for
// evidence that was inferred or coarse: 0.5 for a tie, 1 for an
// unopposed class from eBPF thread states. From /proc alone, CPU time
// that no profile splits may hide GC and lock handoffs: less again.
func confidence(v *Verdict, inferred map[Class]bool, th Thresholds, cpuProfiled bool) float64 {
	var c float64
	if v.Class == ClassNone {
		var top float64
		for _, l := range v.Load {
			top = math.Max(top, l)
		}
		c = 1 - 0.5*top/th.MinLoad
	} else {
		runnerUp := 0.0
		for k, l := range v.Load {
			if k != v.Class {
				runnerUp = math.Max(runnerUp, l)
			}
		}
		c = 0.5 + 0.5*math.Max(0, 1-runnerUp/v.Load[v.Class])
	}
	switch {
	case v.Breakdown.Source == "":
		c *= 0.4
	case v.Breakdown.Source != BreakdownEBPF:
		c *= 0.7
		if v.Class == ClassCPU && !cpuProfiled {
			c *= 0.85
		}
	}
	if inferred[v.Class] {
		c *= 0.85
	}
	return math.Round(math.Max(0, math.Min(1, c))*100) / 100
}

// summary says the verdict in one sentence.
func summary(v *Verdict) string {
	what := map[Class]string{
		ClassCPU:        "CPU-bound",
		ClassMemory:     "memory-bound (time lost to memory management)",
		ClassIO:         "I/O-bound (block I/O)",
		ClassNetwork:    "network-bound",
		ClassContention: "bound by lock contention",
	}
	if v.Class == ClassNone {
		s := "Nothing saturated: the target was mostly idle or waiting on something other than CPU, memory, disk, network or locks"
		if len(v.Findings) > 0 {
			s += "; but see the findings"
		}
		return s + "."
	}
	s := fmt.Sprintf("%s: %.2f threads' worth of time per second", capitalize(what[v.Class]), v.Load[v.Class])
	if mem, cpu := v.Load[ClassMemory], v.Load[ClassCPU]; v.Class == ClassMemory && mem < cpu {
		// Chosen over a larger cpu load by choose's rule: say why.
		onCPU := max(0, cpu-v.runQueue)
		s += fmt.Sprintf(", %.0f%% of its time on a CPU", 100*mem/(onCPU+mem))
	}
	if v.Secondary != "" {
		s += fmt.Sprintf(", then %s (%.2f)", strings.SplitN(what[v.Secondary], " (", 2)[0], v.Load[v.Secondary])
	}
	if len(v.Priorities) > 0 {
		p := v.Priorities[0]
		s += fmt.Sprintf("; first to optimize: %s (%.0f%% of the busy time)", p.Name, 100*p.Share)
	}
	return s + "."
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

package verdict

import (
	"fmt"
	"sort"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// categoryNames say each breakdown category for a person.
var categoryNames = map[string]string{
	OnCPUUser:      "user code",
	OnCPUGC:        "garbage collection",
	OnCPUAlloc:     "allocation",
	OnCPUPageFault: "page faults",
	OnCPUSyscall:   "syscalls",
	OnCPUKernel:    "other kernel work",
	WaitRunQueue:   "waiting for a CPU",
	WaitDisk:       "block I/O",
	WaitFault:      "page faults waiting on I/O or reclaim",
	WaitNetwork:    "sockets",
	WaitLock:       "locks",
	WaitPoll:       "poll and epoll",
	WaitSleep:      "sleeping",
	WaitIdle:       "idle runtime or kernel threads",
	WaitOther:      "other waits",
}

// breakdownEvidence says where the threads' time went, on CPU and off it,
// as time per second of wall time with each part's share.
func breakdownEvidence(b Breakdown, window float64) []Evidence {
	if b.Source == "" {
		return nil
	}
	var out []Evidence
	for _, g := range b.Groups() {
		if g.Seconds/window < 0.005 {
			continue
		}
		var parts []string
		for _, c := range g.Categories {
			if share := b.Seconds[c] / g.Seconds; share >= 0.01 {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", categoryNames[c], 100*share))
			}
		}
		signal := SignalOffCPU
		switch {
		case g.OnCPU && b.Source == BreakdownEBPF:
			signal = SignalOnCPU
		case g.OnCPU:
			signal = SignalProcessCPU
		case b.ThreadStates:
			signal = SignalThreadStates
		case b.Source != BreakdownEBPF:
			signal = SignalProcFallback
		}
		out = append(out, Evidence{
			Signal: signal, Value: g.Seconds / window, Unit: "seconds/s",
			Text: fmt.Sprintf("%s %.2f s per second: %s", g.Label, g.Seconds/window, strings.Join(parts, ", ")),
		})
	}
	return out
}

// resourceEvidence gives the latencies and rates that say how the
// target's waits were served: run-queue, disk and TCP latencies from eBPF,
// and the kernel's own counters.
func resourceEvidence(o *observation.Observation) []Evidence {
	var out []Evidence
	if hs := histogramsOf(o, observation.HistRunQueue); len(hs) > 0 {
		if p99, ok := quantile(hs, 0.99); ok {
			out = append(out, Evidence{Class: ClassCPU, Signal: SignalRunQLat, Value: p99 / 1e9, Unit: "seconds",
				Text: fmt.Sprintf("run-queue latency p99 ≤ %s", textfmt.Bound(p99))})
		}
	}
	if d, ok := meanOf(o, observation.ProcessRunDelay, nil); ok && d > 0.01 {
		out = append(out, Evidence{Class: ClassCPU, Signal: SignalRunDelay, Value: d, Unit: "seconds/s",
			Text: fmt.Sprintf("threads runnable but waiting for a CPU %.2f s per second", d)})
	}
	for _, dev := range devices(histogramsOf(o, observation.HistBlockIO)) {
		hs := dev.hists
		p50, _ := quantile(hs, 0.5)
		p99, _ := quantile(hs, 0.99)
		var n uint64
		for _, h := range hs {
			n += h.Count
		}
		out = append(out, Evidence{Class: ClassIO, Signal: SignalBioLat, Value: p99 / 1e9, Unit: "seconds",
			Text: fmt.Sprintf("%s: %d requests, latency p50 ≤ %s, p99 ≤ %s", dev.name, n, textfmt.Bound(p50), textfmt.Bound(p99))})
	}
	for _, c := range connections(o) {
		out = append(out, Evidence{Class: ClassNetwork, Signal: SignalTCP, Value: float64(c.conns), Unit: "count", Text: c.String()})
	}
	for _, r := range []string{"io", "memory", "cpu"} {
		if some, ok := meanOf(o, observation.ProcessPSI, map[string]string{"resource": r, "kind": "some"}); ok && some >= 0.05 {
			out = append(out, Evidence{Class: psiClass[r], Signal: SignalProcessPSI, Value: some, Unit: "ratio",
				Text: fmt.Sprintf("some task of the target's cgroup stalled on %s %.0f%% of the time (PSI)", r, 100*some)})
		}
	}
	return out
}

var psiClass = map[string]Class{"io": ClassIO, "memory": ClassMemory, "cpu": ClassCPU}

type device struct {
	name  string
	hists []observation.Histogram
}

// devices groups block I/O histograms by device, busiest first.
func devices(hs []observation.Histogram) []device {
	byName := map[string][]observation.Histogram{}
	count := map[string]uint64{}
	for _, h := range hs {
		name := h.Labels["name"]
		if name == "" {
			name = h.Labels["device"]
		}
		byName[name] = append(byName[name], h)
		count[name] += h.Count
	}
	var out []device
	for n, hs := range byName {
		out = append(out, device{n, hs})
	}
	sort.Slice(out, func(i, j int) bool {
		return count[out[i].name] > count[out[j].name] || count[out[i].name] == count[out[j].name] && out[i].name < out[j].name
	})
	return out
}

// peer is what eBPF saw of the target's connections to one peer.
type peer struct {
	addr           string
	passive        bool
	conns          uint64
	connectP50     float64
	connectP99     float64
	open           float64 // seconds, summed lifetimes
	sent, received uint64
	retransmits    uint64
	failures       uint64
}

func (p peer) String() string {
	dir := "to"
	if p.passive {
		dir = "from"
	}
	s := fmt.Sprintf("%d connections %s %s", p.conns, dir, p.addr)
	if p.connectP50 > 0 {
		s += fmt.Sprintf(", connect p50 ≤ %s, p99 ≤ %s", textfmt.Bound(p.connectP50), textfmt.Bound(p.connectP99))
	}
	if p.open == 0 && p.sent == 0 && p.received == 0 {
		s += ", none closed in the window" // lifetimes and bytes are counted at close
	} else {
		s += fmt.Sprintf(", open %.1f s in all, %s sent, %s received", p.open, textfmt.Bytes(float64(p.sent)), textfmt.Bytes(float64(p.received)))
	}
	if p.retransmits > 0 {
		s += fmt.Sprintf(", %d retransmits", p.retransmits)
	}
	if p.failures > 0 {
		s += fmt.Sprintf(", %d failed", p.failures)
	}
	return s
}

// connections lists the target's TCP peers, longest open first.
func connections(o *observation.Observation) []peer {
	byKey := map[string]*peer{}
	var order []string
	get := func(h observation.Histogram) *peer {
		k := h.Labels["peer"] + "|" + h.Labels["passive"]
		if byKey[k] == nil {
			byKey[k] = &peer{addr: h.Labels["peer"], passive: h.Labels["passive"] != ""}
			order = append(order, k)
		}
		return byKey[k]
	}
	num := func(h observation.Histogram, key string) uint64 {
		var n uint64
		fmt.Sscan(h.Labels[key], &n)
		return n
	}
	for _, h := range histogramsOf(o, observation.HistTCPConnect) {
		p := get(h)
		p.conns += h.Count
		p.connectP50, _ = quantile([]observation.Histogram{h}, 0.5)
		p.connectP99, _ = quantile([]observation.Histogram{h}, 0.99)
		p.sent, p.received = num(h, "bytes_sent"), num(h, "bytes_received")
		p.retransmits, p.failures = num(h, "retransmits"), num(h, "failures")
	}
	for _, h := range histogramsOf(o, observation.HistTCPLifetime) {
		p := get(h)
		p.open += float64(h.Sum) / 1e9
		if p.conns < h.Count {
			p.conns = h.Count
		}
		p.sent, p.received = num(h, "bytes_sent"), num(h, "bytes_received")
		p.retransmits, p.failures = num(h, "retransmits"), num(h, "failures")
	}
	out := make([]peer, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].open > out[j].open })
	return out
}

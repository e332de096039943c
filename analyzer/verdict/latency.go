package verdict

import (
	"fmt"
	"sort"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Latency is one latency distribution's percentiles. The eBPF collectors
// keep log2 histograms, so each percentile is an upper bound: the top of
// the power-of-two slot it falls in.
type Latency struct {
	// Name says what waited: "run queue", "block I/O vda", "TCP connect
	// to 127.0.0.1:80".
	Name   string  `json:"name"`
	Signal string  `json:"signal"`
	Count  uint64  `json:"count"`
	P50    float64 `json:"p50_seconds"`
	P95    float64 `json:"p95_seconds"`
	P99    float64 `json:"p99_seconds"`
}

// maxConnectLatencies bounds the TCP connect rows: a service talking to
// hundreds of peers would otherwise fill the report with them.
const maxConnectLatencies = 5

// latencies gives the p50/p95/p99 of the run queue, each disk and the
// busiest peers' TCP connects, where eBPF collected them.
func latencies(o *observation.Observation) []Latency {
	var out []Latency
	add := func(name, signal string, hs []observation.Histogram) {
		var n uint64
		for _, h := range hs {
			n += h.Count
		}
		p50, ok := quantile(hs, 0.5)
		if !ok {
			return
		}
		p95, _ := quantile(hs, 0.95)
		p99, _ := quantile(hs, 0.99)
		out = append(out, Latency{Name: name, Signal: signal, Count: n, P50: p50 / 1e9, P95: p95 / 1e9, P99: p99 / 1e9})
	}
	add("run queue", SignalRunQLat, histogramsOf(o, observation.HistRunQueue))
	for _, dev := range devices(histogramsOf(o, observation.HistBlockIO)) {
		add("block I/O "+dev.name, SignalBioLat, dev.hists)
	}
	conns := histogramsOf(o, observation.HistTCPConnect)
	sort.SliceStable(conns, func(i, j int) bool { return conns[i].Count > conns[j].Count })
	n := 0
	for _, h := range conns {
		if n == maxConnectLatencies {
			break
		}
		dir := "to"
		if h.Labels["passive"] != "" {
			dir = "from"
		}
		before := len(out)
		add(fmt.Sprintf("TCP connect %s %s", dir, h.Labels["peer"]), SignalTCP, []observation.Histogram{h})
		if len(out) > before {
			n++
		}
	}
	return out
}

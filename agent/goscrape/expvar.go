package goscrape

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// memStats is the part of runtime.MemStats that goscrape reads, as expvar
// publishes it under "memstats" (the field names are the JSON keys).
type memStats struct {
	TotalAlloc    uint64
	HeapAlloc     uint64
	HeapSys       uint64
	HeapInuse     uint64
	HeapObjects   uint64
	NextGC        uint64
	PauseNs       [256]uint64
	PauseEnd      [256]uint64
	NumGC         uint32
	GCCPUFraction float64
}

// goroutineVars are the names under which services commonly publish their
// goroutine count; expvar itself does not.
var goroutineVars = []string{"goroutines", "num_goroutine", "numgoroutine", "goroutine_count"}

// fetchExpvar reads /debug/vars.
func (c *client) fetchExpvar(ctx context.Context) (*vars, error) {
	r, err := c.get(ctx, c.url("/debug/vars"), 0)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && se.code == http.StatusNotFound {
			return nil, fmt.Errorf(`%w (the service does not serve expvar: import _ "expvar" and serve http.DefaultServeMux, or mount expvar.Handler())`, err)
		}
		return nil, err
	}
	if r.contentType == "text/html" {
		return nil, fmt.Errorf("not expvar JSON: got text/html from %s", r.url)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &top); err != nil {
		return nil, fmt.Errorf("not expvar JSON at %s: %v", r.url, err)
	}
	raw, ok := top["memstats"]
	if !ok {
		return nil, fmt.Errorf("no memstats in %s", r.url)
	}
	var m memStats
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("reading memstats in %s: %v", r.url, err)
	}
	v := &vars{
		at: r.at,
		gauges: map[observation.SeriesName]float64{
			observation.GoHeapAlloc:     float64(m.HeapAlloc),
			observation.GoHeapSys:       float64(m.HeapSys),
			observation.GoHeapInuse:     float64(m.HeapInuse),
			observation.GoHeapObjects:   float64(m.HeapObjects),
			observation.GoHeapGoal:      float64(m.NextGC),
			observation.GoGCCPUFraction: m.GCCPUFraction,
		},
		counters: map[observation.SeriesName]float64{
			observation.GoGCCount:   float64(m.NumGC),
			observation.GoAllocRate: float64(m.TotalAlloc),
		},
		gc: &gcRing{numGC: m.NumGC, pauseNs: m.PauseNs, pauseEnd: m.PauseEnd},
	}
	for k, raw := range top {
		var n float64
		if slices.Contains(goroutineVars, strings.ToLower(k)) && json.Unmarshal(raw, &n) == nil {
			v.gauges[observation.GoGoroutines] = n
			break // services publish one of them, not several
		}
	}
	return v, nil
}

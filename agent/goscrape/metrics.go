package goscrape

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Prometheus text is read by hand, a line at a time, for the few go_*
// samples below, none of which has labels: prometheus/common's parser
// would bring a dependency tree for what these lines need.
var promGauges = map[string]observation.SeriesName{
	"go_memstats_heap_alloc_bytes": observation.GoHeapAlloc,
	"go_memstats_heap_sys_bytes":   observation.GoHeapSys,
	"go_memstats_heap_inuse_bytes": observation.GoHeapInuse,
	"go_memstats_heap_objects":     observation.GoHeapObjects,
	"go_memstats_next_gc_bytes":    observation.GoHeapGoal,
	"go_memstats_gc_cpu_fraction":  observation.GoGCCPUFraction,
	"go_goroutines":                observation.GoGoroutines,
}

var promCounters = map[string]observation.SeriesName{
	"go_gc_duration_seconds_count":  observation.GoGCCount,
	"go_memstats_alloc_bytes_total": observation.GoAllocRate,
}

// fetchMetrics reads the go_* metrics of the Prometheus text at /metrics,
// as the Prometheus Go client exports them.
func (c *client) fetchMetrics(ctx context.Context) (*vars, error) {
	r, err := c.get(ctx, c.url("/metrics"), 0)
	if err != nil {
		return nil, err
	}
	if r.contentType != "text/plain" {
		return nil, fmt.Errorf("not Prometheus text: got %s from %s", r.contentType, r.url)
	}
	v := &vars{at: r.at, gauges: map[observation.SeriesName]float64{}, counters: map[observation.SeriesName]float64{}}
	for line := range bytes.Lines(r.body) {
		name, value, ok := parsePromLine(string(line))
		if !ok {
			continue
		}
		if s, ok := promGauges[name]; ok {
			v.gauges[s] = value
		} else if s, ok := promCounters[name]; ok {
			v.counters[s] = value
		}
	}
	if len(v.gauges)+len(v.counters) == 0 {
		return nil, fmt.Errorf("no go_* runtime metrics in %s", r.url)
	}
	return v, nil
}

// parsePromLine reads "name value [timestamp]"; comments, blank lines and
// samples with labels come back not ok.
func parsePromLine(line string) (name string, value float64, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || strings.ContainsRune(fields[0], '{') {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(fields[1], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		// NaN and ±Inf are valid in the text format, but not a
		// measurement a series can hold.
		return "", 0, false
	}
	return fields[0], v, true
}

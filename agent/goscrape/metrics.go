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
// samples below, none of which has labels, and the one counter a config
// names as the service's requests (summed over its label sets):
// prometheus/common's parser would bring a dependency tree for what these
// lines need.
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
// as the Prometheus Go client exports them, and the requests counter.
func (c *client) fetchMetrics(ctx context.Context) (*vars, error) {
	v, url, err := c.readMetrics(ctx)
	if err != nil {
		return nil, err
	}
	if len(v.gauges)+len(v.counters) == 0 {
		return nil, fmt.Errorf("no go_* runtime metrics in %s", url)
	}
	return v, nil
}

// fetchRequests reads the requests counter alone from /metrics, for a
// service whose runtime statistics come from expvar: its sum over its
// label sets, or false when /metrics does not have it.
func (c *client) fetchRequests(ctx context.Context) (float64, bool, error) {
	v, _, err := c.readMetrics(ctx)
	if err != nil {
		return 0, false, err
	}
	x, ok := v.counters[observation.ServiceRequests]
	return x, ok, nil
}

// readMetrics reads the Prometheus text at /metrics: the go_* samples
// above, and the requests counter summed over its label sets. It returns
// the URL read, for errors.
func (c *client) readMetrics(ctx context.Context) (*vars, string, error) {
	r, err := c.get(ctx, c.url("/metrics"), 0)
	if err != nil {
		return nil, "", err
	}
	if r.contentType != "text/plain" {
		return nil, r.url, fmt.Errorf("not Prometheus text: got %s from %s", r.contentType, r.url)
	}
	v := &vars{at: r.at, gauges: map[observation.SeriesName]float64{}, counters: map[observation.SeriesName]float64{}}
	requests, found := 0.0, false
	for line := range bytes.Lines(r.body) {
		name, labeled, value, ok := parsePromLine(string(line))
		switch {
		case !ok:
		case c.requests != "" && name == c.requests:
			requests, found = requests+value, true
		case labeled:
		default:
			if s, ok := promGauges[name]; ok {
				v.gauges[s] = value
			} else if s, ok := promCounters[name]; ok {
				v.counters[s] = value
			}
		}
	}
	if found {
		v.counters[observation.ServiceRequests] = requests
	}
	return v, r.url, nil
}

// parsePromLine reads "name[{labels}] value [timestamp]": labeled says
// whether the sample had labels. Comments, blank lines and malformed
// samples come back not ok.
func parsePromLine(line string) (name string, labeled bool, value float64, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", false, 0, false
	}
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return "", false, 0, false
	}
	// Blanks may separate the name from its label set.
	name, rest := line[:end], strings.TrimLeft(line[end:], " \t")
	if strings.HasPrefix(rest, "{") {
		n := labelsEnd(rest)
		if n < 0 {
			return "", false, 0, false
		}
		rest, labeled = rest[n:], true
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 {
		return "", false, 0, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		// NaN and ±Inf are valid in the text format, but not a
		// measurement a series can hold.
		return "", false, 0, false
	}
	return name, labeled, v, true
}

// labelsEnd returns the length of the label set that s starts with, up to
// and including its closing brace, or -1: label values are quoted, and may
// hold braces and escaped quotes.
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i + 1
		}
	}
	return -1
}

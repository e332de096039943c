package diagnosis

import (
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// syntheticHost builds the observation of a host running n processes from
// the recorded fixture observations: each fixture's eBPF samples and
// histograms are copied under new PIDs, round robin, so the host has n
// processes with real stacks, states and latencies.
func syntheticHost(tb testing.TB, n int) *observation.Observation {
	tb.Helper()
	entries, err := os.ReadDir("../../fixtures/observations")
	if err != nil {
		tb.Fatal(err)
	}
	var recorded []*observation.Observation
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		o, err := observation.Load("../../fixtures/observations/" + e.Name())
		if err != nil {
			tb.Fatal(err)
		}
		recorded = append(recorded, o)
	}
	host := &observation.Observation{Meta: recorded[0].Meta}
	host.Meta.Target = observation.Target{Kind: observation.TargetHost}
	merged := map[observation.ProfileKind]*profile.Profile{}
	var order []observation.ProfileKind
	for i := range n {
		o := recorded[i%len(recorded)]
		pid := int64(100000 + i)
		for _, p := range o.Profiles {
			if p.Source != observation.SourceEBPF {
				continue
			}
			m := merged[p.Kind]
			if m == nil {
				m = &profile.Profile{SampleType: p.Profile.SampleType, PeriodType: p.Profile.PeriodType, Period: p.Profile.Period,
					TimeNanos: p.Profile.TimeNanos, DurationNanos: p.Profile.DurationNanos}
				merged[p.Kind] = m
				order = append(order, p.Kind)
			}
			for _, s := range p.Profile.Sample {
				c := *s
				// Each process keeps its threads apart: the verdict's
				// rules count a process's threads (a yield's, parking).
				tid := pid
				if t := s.NumLabel["tid"]; len(t) == 1 {
					tid = pid*100000 + t[0]%100000
				}
				c.NumLabel = map[string][]int64{"pid": {pid}, "tid": {tid}}
				m.Sample = append(m.Sample, &c)
			}
		}
		for _, h := range o.Histograms {
			c := h
			c.Labels = map[string]string{}
			for k, v := range h.Labels {
				c.Labels[k] = v
			}
			c.Labels["pid"] = strconv.FormatInt(pid, 10)
			host.Histograms = append(host.Histograms, c)
		}
	}
	for _, k := range order {
		host.Profiles = append(host.Profiles, observation.Profile{Kind: k, Source: observation.SourceEBPF, Profile: merged[k]})
	}
	for _, s := range recorded[0].Series {
		if s.Name.In(observation.FamilyHost) {
			host.Series = append(host.Series, s)
		}
	}
	return host
}

// BenchmarkHost500 is the report of a host of 500 processes: the verdict
// of the host, the ranking, the verdicts of the busiest, and the text,
// JSON and HTML renderings. The goal is under a second.
func BenchmarkHost500(b *testing.B) {
	o := syntheticHost(b, 500)
	samples := 0
	for _, p := range o.Profiles {
		samples += len(p.Profile.Sample)
	}
	for b.Loop() {
		r := Analyze(o, DefaultOptions())
		if len(r.Processes) == 0 {
			b.Fatal("no processes ranked")
		}
		if err := r.WriteText(io.Discard, verdictText); err != nil {
			b.Fatal(err)
		}
		if err := r.WriteJSON(io.Discard); err != nil {
			b.Fatal(err)
		}
		if err := r.WriteHTML(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(samples), "samples")
}

var verdictText = verdict.TextOptions{}

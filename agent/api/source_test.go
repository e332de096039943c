package api

import (
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// fixtureSource is a Source over recorded observations
// (fixtures/observations): each stored window is a fixture loaded afresh
// on every Range, within the query's budget, as the store decodes its
// records, with its times shifted to the window's start. The lead swaps
// it for agent/store filled with the same windows.
type fixtureSource struct {
	healthy atomic.Bool
	mu      sync.Mutex
	windows []window
	loads   atomic.Int64 // observations decoded by Range, for tests
	// findings are the regressions it holds.
	findings []regress.Finding
}

// window is one stored record: which fixture, when.
type window struct {
	service, version, fixture string
	start                     time.Time
	duration                  time.Duration
	summary                   Summary
}

func fixtureDir(name string) string {
	return filepath.Join("..", "..", "fixtures", "observations", name)
}

var judged sync.Map // fixture → Summary

// add stores n windows of fixture as service's version, back to back from
// start; it returns the end of the last.
func (s *fixtureSource) add(t *testing.T, service, version, fixture string, start time.Time, n int) time.Time {
	t.Helper()
	o, err := observation.Load(fixtureDir(fixture))
	if err != nil {
		t.Fatal(err)
	}
	sum, ok := judged.Load(fixture)
	if !ok {
		v := verdict.Judge(o, verdict.DefaultThresholds())
		sum = Summary{Class: v.Class, Secondary: v.Secondary, Confidence: v.Confidence, Load: v.Load, Summary: v.Summary}
		judged.Store(fixture, sum)
	}
	d := o.Meta.Duration
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		s.windows = append(s.windows, window{service, version, fixture, start.Add(time.Duration(i) * d), d, sum.(Summary)})
	}
	slices.SortStableFunc(s.windows, func(a, b window) int { return a.start.Compare(b.start) })
	return start.Add(time.Duration(n) * d)
}

func (s *fixtureSource) Healthy() bool { return s.healthy.Load() }

func (s *fixtureSource) Services() ([]Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Service
	for _, w := range s.windows {
		i := slices.IndexFunc(out, func(svc Service) bool { return svc.Name == w.service })
		if i < 0 {
			out = append(out, Service{Name: w.service, First: w.start})
			i = len(out) - 1
		}
		svc := &out[i]
		end := w.start.Add(w.duration)
		if end.After(svc.Last) {
			svc.Last = end
		}
		svc.Verdict = w.summary
		j := slices.IndexFunc(svc.Versions, func(v Version) bool { return v.Version == w.version })
		if j < 0 {
			svc.Versions = append(svc.Versions, Version{Version: w.version, First: w.start, Labels: map[string]string{"fixture": w.fixture}})
			j = len(svc.Versions) - 1
		}
		if end.After(svc.Versions[j].Last) {
			svc.Versions[j].Last = end
		}
	}
	return out, nil
}

func (s *fixtureSource) match(service, version string, from, to time.Time) []window {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []window
	for _, w := range s.windows {
		if w.service == service && (version == "" || w.version == version) && !w.start.Before(from) && w.start.Before(to) {
			out = append(out, w)
		}
	}
	return out
}

func (s *fixtureSource) Range(q Query) ([]Record, error) {
	var out []Record
	for _, w := range s.match(q.Service, q.Version, q.From, q.To) {
		o, err := observation.LoadWith(fixtureDir(w.fixture), observation.LoadOptions{Budget: q.Budget})
		if err != nil {
			return nil, err
		}
		s.loads.Add(1)
		shift(o, w.start)
		if q.Kinds != nil {
			o.Profiles = slices.DeleteFunc(o.Profiles, func(p observation.Profile) bool { return !slices.Contains(q.Kinds, p.Kind) })
		}
		out = append(out, Record{Service: w.service, Version: w.version, Start: w.start, Duration: w.duration, Obs: o, Verdict: w.summary})
	}
	return out, nil
}

func (s *fixtureSource) Verdicts(service string, from, to time.Time) ([]VerdictPoint, error) {
	var out []VerdictPoint
	for _, w := range s.match(service, "", from, to) {
		out = append(out, VerdictPoint{Start: w.start, Duration: w.duration, Version: w.version, Verdict: w.summary})
	}
	return out, nil
}

// shift moves an observation's times so that it starts at start.
func shift(o *observation.Observation, start time.Time) {
	d := start.Sub(o.Meta.Start)
	o.Meta.Start = start
	for i := range o.Series {
		for j := range o.Series[i].Points {
			o.Series[i].Points[j].Time = o.Series[i].Points[j].Time.Add(d)
		}
	}
	for _, p := range o.Profiles {
		if p.Profile != nil && p.Profile.TimeNanos != 0 {
			p.Profile.TimeNanos += int64(d)
		}
	}
}

// The test store: service shop, version v1 (the cpu-hash workload) two
// hours ago, then v2 (mixed-cpu-io) half an hour ago; service locks (a Go
// service contending on a mutex, scraped and seen by eBPF).
var testNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

const windowsPerVersion = 6

func newTestSource(t *testing.T) *fixtureSource {
	src := &fixtureSource{}
	src.add(t, "shop", "v1", "cpu-hash", testNow.Add(-2*time.Hour), windowsPerVersion)
	src.add(t, "shop", "v2", "mixed-cpu-io", testNow.Add(-30*time.Minute), windowsPerVersion)
	src.add(t, "locks", "g1", "contention-go-mutex", testNow.Add(-20*time.Minute), 3)
	src.healthy.Store(true)
	return src
}

func (*fixtureSource) HostSeries(time.Time, time.Time) ([]observation.Series, error) { return nil, nil }

func (s *fixtureSource) Regressions() ([]regress.Finding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.findings), nil
}

package api

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// benchHour is a store holding one hour of one service: 360 windows of
// the mixed-cpu-io recording (eBPF on-CPU and off-CPU stacks, series,
// histograms). With decode, each window is decoded from its files on
// every query, as a store decodes its records (here from JSON and every
// profile, whatever the query's kinds); without, every window is the
// same observation decoded once, so that what is measured is the API's
// own work: merging and writing.
func benchHour(b *testing.B, decode bool) *Server {
	src := &fixtureSource{}
	t := &testing.T{}
	for i := range 360 {
		src.add(t, "shop", "v1", "mixed-cpu-io", testNow.Add(-time.Hour+time.Duration(i)*10*time.Second), 1)
	}
	if t.Failed() {
		b.Fatal("loading the fixture failed")
	}
	var s Source = src
	if !decode {
		o, err := observation.Load(fixtureDir("mixed-cpu-io"))
		if err != nil {
			b.Fatal(err)
		}
		s = decodedSource{src, o}
	}
	api, err := New(s, Options{Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { api.Close() })
	return api
}

// decodedSource answers every window with one observation decoded
// before: merge reads its inputs and never changes them.
type decodedSource struct {
	*fixtureSource
	o *observation.Observation
}

func (s decodedSource) Range(q Query) ([]Record, error) {
	o := *s.o
	if q.Kinds != nil {
		o.Profiles = slices.DeleteFunc(slices.Clone(o.Profiles), func(p observation.Profile) bool { return !slices.Contains(q.Kinds, p.Kind) })
	}
	var out []Record
	for _, w := range s.match(q.Service, q.Version, q.From, q.To) {
		out = append(out, Record{Service: w.service, Version: w.version, Start: w.start, Duration: w.duration, Obs: &o, Verdict: w.summary})
	}
	return out, nil
}

func benchGet(b *testing.B, s *Server, path string) {
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkProfileHour is the query: one service's merged CPU
// profile over one hour (goal: under 1 s, the store's decoding included).
func BenchmarkProfileHour(b *testing.B) {
	path := "/api/v1/profile" + q("service", "shop", "type", "cpu")
	b.Run("merge", func(b *testing.B) { benchGet(b, benchHour(b, false), path) })
	b.Run("decode+merge", func(b *testing.B) { benchGet(b, benchHour(b, true), path) })
}

// BenchmarkDiagnosisHour is diagnose's report (JSON) over one hour of
// one service.
func BenchmarkDiagnosisHour(b *testing.B) {
	path := "/api/v1/diagnosis" + q("service", "shop")
	b.Run("merge", func(b *testing.B) { benchGet(b, benchHour(b, false), path) })
	b.Run("decode+merge", func(b *testing.B) { benchGet(b, benchHour(b, true), path) })
}

func (decodedSource) HostSeries(time.Time, time.Time) ([]observation.Series, error) { return nil, nil }

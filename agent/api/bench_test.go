package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/observation/obstest"
)

// goserviceWindows are real 10 s windows of fixtures/goservice (a core
// of SHA-256, allocation churn, a contended mutex) as the agent stored
// them at its defaults (19 Hz, off-CPU 1 in 4).
func goserviceWindows(tb testing.TB) []*observation.Observation {
	return obstest.Windows(tb, "../../"+obstest.GoserviceWindows, 1)
}

// hourStore is a store holding one hour of the service's windows: 360
// windows of 10 s, the recorded ones in turn.
func hourStore(tb testing.TB, start time.Time) *store.Store {
	tb.Helper()
	windows := goserviceWindows(tb)
	end := start.Add(time.Hour)
	st, err := store.Open(tb.TempDir(), store.Options{Now: func() time.Time { return end }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	for i := range 360 {
		o := *windows[i%len(windows)]
		o.Meta.Start = start.Add(time.Duration(i) * 10 * time.Second)
		o.Meta.Duration = 10 * time.Second
		err := st.Put(store.Batch{Records: []store.Record{{Service: "goservice", Version: "v1", Obs: &o,
			Verdict: []byte(`{"class":"cpu","load":{"cpu":1}}`)}}})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

// BenchmarkProfileHour is issue 14's query goal (under 1 s): GET
// /api/v1/profile of one service, one hour, merged, over loopback HTTP,
// from a store of 360 real windows; each op reads the whole answer.
func BenchmarkProfileHour(b *testing.B) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	st := hourStore(b, start)
	s, err := New(StoreSource(st, func() bool { return true }), Options{Now: func() time.Time { return start.Add(time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	for _, kind := range []string{"cpu", "offcpu"} {
		b.Run(kind, func(b *testing.B) {
			url := fmt.Sprintf("%s/api/v1/profile?service=goservice&type=%s&from=%s&to=%s", ts.URL, kind,
				start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))
			var body []byte
			for b.Loop() {
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%d %s %v", resp.StatusCode, body, err)
				}
			}
			p, err := profile.ParseData(body)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(body)), "body-B")
			b.ReportMetric(float64(len(p.Sample)), "samples")
		})
	}
}

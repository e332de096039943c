package goscrape

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// requestsService serves /metrics with the Prometheus Go client, as a
// service does: the Go collector's go_* metrics and an
// http_requests_total counter in two label sets, which together grow by
// 300 at each scrape of /metrics (200 answered 200, 100 answered 500).
func requestsService(t *testing.T, expvar bool) *fakeService {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	var scrapes atomic.Int64
	for code, per := range map[string]float64{"200": 200, "500": 100} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "Requests answered.", ConstLabels: prometheus.Labels{"code": code},
		}, func() float64 { return per * float64(scrapes.Load()) }))
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	handlers := map[string]http.HandlerFunc{
		"/metrics": func(w http.ResponseWriter, r *http.Request) {
			scrapes.Add(1)
			metrics.ServeHTTP(w, r)
		},
	}
	if !expvar {
		handlers["/debug/vars"] = http.NotFound
	}
	return newFake(t, handlers)
}

// TestScraperRequests: the rate of a service's requests counter, summed
// over its label sets, is the series service.requests, whether the
// runtime statistics come from expvar (the counter then read from
// /metrics beside them) or from /metrics itself; a counter /metrics lacks
// is said.
func TestScraperRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		expvar bool
	}{{"expvar", true}, {"metrics", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := requestsService(t, tc.expvar)
			s, err := NewScraper(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"goroutine"}, RequestsMetric: "http_requests_total"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range 2 {
				r, err := s.Window(context.Background(), time.Second)
				if err != nil {
					t.Fatalf("window %d: %v", i+1, err)
				}
				var rate, span float64
				for _, sr := range r.Series {
					switch sr.Name {
					case observation.ServiceRequests:
						if len(sr.Points) != 1 || sr.Unit != "1/s" {
							t.Fatalf("window %d: %s %+v, want one point in 1/s", i+1, sr.Name, sr)
						}
						rate = sr.Points[0].Value
					case observation.GoHeapAlloc:
						span = sr.Points[len(sr.Points)-1].Time.Sub(sr.Points[0].Time).Seconds()
					}
				}
				// 300 requests between the window's two readings,
				// whose times the gauges' points carry (to the ms).
				if got := rate * span; got < 297 || got > 303 {
					t.Errorf("window %d: %.3f/s over %.3f s = %.1f requests, want 300 (missing: %v)", i+1, rate, span, got, r.Missing)
				}
			}
		})
	}
	t.Run("absent", func(t *testing.T) {
		t.Parallel()
		f := requestsService(t, true)
		s, err := NewScraper(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"goroutine"}, RequestsMetric: "rpc_served_total"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		r, err := s.Window(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		said := false
		for _, m := range r.Missing {
			said = said || strings.Contains(m.Reason, "no rpc_served_total in the Prometheus text")
		}
		for _, sr := range r.Series {
			if sr.Name == observation.ServiceRequests {
				t.Errorf("a series %+v from a counter /metrics lacks", sr)
			}
		}
		if !said {
			t.Errorf("missing %v: want the absent counter said", r.Missing)
		}
	})
	if _, err := NewScraper(context.Background(), Options{BaseURL: "http://127.0.0.1:1", RequestsMetric: "http-requests"}); err == nil || !strings.Contains(err.Error(), "not a Prometheus metric name") {
		t.Errorf("a malformed metric name: %v", err)
	}
}

// TestVarsSeriesRequestsFell: a requests counter that fell (a label set
// deleted, a restart) loses its own rate and says so; the runtime's rates
// stand.
func TestVarsSeriesRequestsFell(t *testing.T) {
	at := time.Unix(1700000000, 0)
	a := &vars{at: at, gauges: map[observation.SeriesName]float64{}, counters: map[observation.SeriesName]float64{
		observation.GoAllocRate: 1000, observation.ServiceRequests: 500}}
	b := &vars{at: at.Add(2 * time.Second), gauges: map[observation.SeriesName]float64{}, counters: map[observation.SeriesName]float64{
		observation.GoAllocRate: 3000, observation.ServiceRequests: 300}}
	out, err := varsSeries(a, b, nil)
	if err == nil || !strings.Contains(err.Error(), "requests counter went from 500 to 300") {
		t.Errorf("err %v, want the requests counter's fall said", err)
	}
	got := map[observation.SeriesName]float64{}
	for _, s := range out {
		got[s.Name] = s.Points[0].Value
	}
	if _, ok := got[observation.ServiceRequests]; ok || got[observation.GoAllocRate] != 1000 {
		t.Errorf("series %v: want go.alloc.rate 1000/s and no service.requests", got)
	}
}

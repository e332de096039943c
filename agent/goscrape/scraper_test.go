package goscrape

import (
	"context"
	"expvar"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestScraperWindowsCarryOver: a Scraper's second window starts from the
// first one's end readings, not from readings of its own: the allocs
// endpoint is asked three times for two windows (100, 400, 900: deltas of
// 300 and 500), the second delta begins when the first ended, and so do
// the go.* series; the time between the two calls is in the second
// window.
func TestScraperWindowsCarryOver(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		served []int64 // TimeNanos of each allocs profile served
		vars   atomic.Int64
	)
	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/pprof/allocs": func(w http.ResponseWriter, r *http.Request) {
			if r.FormValue("seconds") != "" {
				http.Error(w, "a delta asked of the server", http.StatusBadRequest)
				return
			}
			mu.Lock()
			n := int64(len(served) + 1)
			p := cannedProfile("allocs", 100*n*n, 0)
			served = append(served, p.TimeNanos)
			mu.Unlock()
			p.Write(w)
		},
		"/debug/vars": func(w http.ResponseWriter, r *http.Request) {
			vars.Add(1)
			expvar.Handler().ServeHTTP(w, r)
		},
	})
	s, err := NewScraper(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"allocs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var res []*Result
	for i := range 2 {
		r, err := s.Window(context.Background(), time.Second)
		if err != nil {
			t.Fatalf("window %d: %v", i+1, err)
		}
		for _, m := range r.Missing {
			t.Errorf("window %d: missing %s: %s", i+1, m.Signal, m.Reason)
		}
		res = append(res, r)
		if i == 0 {
			time.Sleep(100 * time.Millisecond) // the time between two calls, the second window's
		}
	}
	if len(served) != 3 || vars.Load() != 3 {
		t.Fatalf("allocs served %d times, expvar %d times, for two windows: want 3 each (a window's end is the next one's start)", len(served), vars.Load())
	}
	var prof [2]*profile.Profile
	for i, r := range res {
		p := profilesByKind(r)[observation.KindAllocs].Profile
		if p == nil || len(p.Sample) != 1 {
			t.Fatalf("window %d: allocs profile %v, want one sample", i+1, p)
		}
		prof[i] = p
	}
	if a, b := prof[0].Sample[0].Value[0], prof[1].Sample[0].Value[0]; a != 300 || b != 500 {
		t.Errorf("allocs deltas %d and %d, want 300 and 500", a, b)
	}
	for i, p := range prof {
		if from, to := p.TimeNanos-p.DurationNanos, p.TimeNanos; from != served[i] || to != served[i+1] {
			t.Errorf("window %d's delta runs from %d to %d, want from %d to %d (the profiles served)", i+1, from, to, served[i], served[i+1])
		}
	}
	if end := res[0].Start.Add(res[0].Duration); !res[1].Start.Equal(end) {
		t.Errorf("window 2 starts at %v, want where window 1 ended, %v", res[1].Start, end)
	}
	heap := func(r *Result) []observation.Point {
		for _, s := range r.Series {
			if s.Name == observation.GoHeapAlloc {
				return s.Points
			}
		}
		return nil
	}
	p1, p2 := heap(res[0]), heap(res[1])
	if len(p1) != 2 || len(p2) != 2 || !p2[0].Time.Equal(p1[1].Time) {
		t.Errorf("go.heap.alloc points %v then %v: want two each, the second window's first the first's last", p1, p2)
	}
}

// TestScraperWindowsGoService scrapes fixtures/goservice, which allocates
// all the time, for two one-second windows with a pause between them in
// which it allocates at least twice what it did in the first: the two
// windows' allocs deltas add up to what the service's cumulative profile
// grew by from just before the first to just after the second, within
// sampling noise, and so do the go.alloc.rate series to expvar's
// TotalAlloc (exact). Windows that each began at their call would lose
// the pause, two thirds of it or more.
func TestScraperWindowsGoService(t *testing.T) {
	t.Parallel()
	base, _ := startFixture(t)
	ctx := context.Background()
	c, err := newClient(base, nil, scrapeTimeout, defaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	// allocated is what the service allocated since it started: its
	// allocs profile's alloc_space (sampled), and expvar's TotalAlloc.
	allocated := func() (sampled, total float64) {
		t.Helper()
		p, err := c.fetchProfile(ctx, c.pprofURL("allocs"), 0)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.fetchExpvar(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return sum(t, p, "alloc_space"), v.counters[observation.GoAllocRate]
	}
	s, err := NewScraper(ctx, Options{BaseURL: base, Timeout: scrapeTimeout, Profiles: []string{"allocs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	sampled0, total0 := allocated()
	var sampled, total float64
	for i := range 2 {
		r, err := s.Window(ctx, time.Second)
		if err != nil {
			t.Fatalf("window %d: %v", i+1, err)
		}
		if m := missing(r)["pprof.allocs"]; m != "" {
			t.Fatalf("window %d: missing pprof.allocs: %s", i+1, m)
		}
		w := sum(t, profilesByKind(r)[observation.KindAllocs].Profile, "alloc_space")
		sampled += w
		var rate observation.Point
		var span time.Duration
		for _, s := range r.Series {
			switch s.Name {
			case observation.GoAllocRate:
				rate = s.Points[0]
			case observation.GoHeapAlloc:
				span = s.Points[len(s.Points)-1].Time.Sub(s.Points[0].Time)
			}
		}
		total += rate.Value * span.Seconds()
		if i == 0 {
			// The pause: until the service has allocated twice the
			// first window's, by its own cumulative profile.
			from, _ := allocated()
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
				if now, _ := allocated(); now-from >= 2*w {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the service did not allocate twice the first window's in two minutes")
				}
			}
		}
	}
	sampled1, total1 := allocated()
	t.Logf("two windows: %.0f bytes sampled, %.0f by go.alloc.rate; over their span: %.0f sampled, %.0f by TotalAlloc",
		sampled, total, sampled1-sampled0, total1-total0)
	// The readings around the windows are taken a request before and after
	// them: the windows hold all but what the service allocated then.
	for _, c := range []struct {
		what        string
		got, within float64
		slack       float64
	}{
		{"alloc_space", sampled, sampled1 - sampled0, 0.05},
		{"go.alloc.rate", total, total1 - total0, 0.01},
	} {
		if c.got < 0.85*c.within || c.got > (1+c.slack)*c.within {
			t.Errorf("%s: the two windows count %.0f bytes, the span %.0f: want between 85%% and %.0f%% of it", c.what, c.got, c.within, 100*(1+c.slack))
		}
	}
}

// sum is the total of a profile's values of type typ.
func sum(t *testing.T, p *profile.Profile, typ string) float64 {
	t.Helper()
	if p == nil {
		t.Fatal("no profile")
	}
	for i, st := range p.SampleType {
		if st.Type == typ {
			var n int64
			for _, s := range p.Sample {
				n += s.Value[i]
			}
			return float64(n)
		}
	}
	t.Fatalf("profile has no sample type %s", typ)
	return 0
}

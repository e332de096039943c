package goscrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"expvar"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// fakeService is a net/http/pprof look-alike: the real index, cmdline and
// expvar handlers of the test process, and canned profiles that answer at
// once (a delta says it lasted the seconds asked for). Tests replace
// endpoints by pattern.
type fakeService struct {
	*httptest.Server
	mu     sync.Mutex
	agents map[string]bool // User-Agent headers seen
}

func newFake(t *testing.T, override map[string]http.HandlerFunc) *fakeService {
	t.Helper()
	f := &fakeService{agents: map[string]bool{}}
	mux := http.NewServeMux()
	handlers := map[string]http.HandlerFunc{
		"/debug/pprof/{$}":       pprof.Index,
		"/debug/pprof/cmdline":   pprof.Cmdline,
		"/debug/pprof/{profile}": servePprof(func(*http.Request) int64 { return 3 }),
		"/debug/vars":            expvar.Handler().ServeHTTP,
	}
	for pattern, h := range override {
		handlers[pattern] = h
	}
	for pattern, h := range handlers {
		mux.HandleFunc(pattern, h)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.agents[r.UserAgent()] = true
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// servePprof serves a canned profile named by the path's last element, with
// value(r) in its one sample (none when 0). With ?seconds=N it is a delta:
// DurationNanos is N seconds.
func servePprof(value func(*http.Request) int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		var dur time.Duration
		if s, err := strconv.Atoi(r.FormValue("seconds")); err == nil {
			dur = time.Duration(s) * time.Second
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		cannedProfile(name, value(r), dur).Write(w)
	}
}

func cannedProfile(name string, value int64, dur time.Duration) *profile.Profile {
	fn := &profile.Function{ID: 1, Name: "main.fake_" + name}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "count", Unit: "count"}},
		PeriodType:    &profile.ValueType{Type: "count", Unit: "count"},
		Period:        1,
		TimeNanos:     time.Now().UnixNano(),
		DurationNanos: dur.Nanoseconds(),
		Function:      []*profile.Function{fn},
		Location:      []*profile.Location{loc},
	}
	if value != 0 {
		p.Sample = []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{value}}}
	}
	return p
}

func missing(res *Result) map[string]string {
	m := map[string]string{}
	for _, x := range res.Missing {
		m[string(x.Signal)] = x.Reason
	}
	return m
}

func profilesByKind(res *Result) map[observation.ProfileKind]observation.Profile {
	m := map[observation.ProfileKind]observation.Profile{}
	for _, p := range res.Profiles {
		m[p.Kind] = p
	}
	return m
}

func TestScrapeFake(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL}, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) > 0 {
		t.Errorf("missing: %v", res.Missing)
	}
	if len(res.Profiles) != len(kinds) {
		t.Errorf("%d profiles, want %d", len(res.Profiles), len(kinds))
	}
	for i, p := range res.Profiles {
		if p.Kind != kinds[i].kind {
			t.Errorf("profile %d is %s, want %s", i, p.Kind, kinds[i].kind)
		}
		if err := p.Profile.CheckValid(); err != nil {
			t.Errorf("%s: %v", p.Kind, err)
		}
	}
	if res.Duration < time.Second {
		t.Errorf("window lasted %v: Duration 10ms rounds up to 1s", res.Duration)
	}
	if len(f.agents) != 1 || !f.agents[userAgent] {
		t.Errorf("User-Agent headers seen: %v, want %q only", f.agents, userAgent)
	}
}

func TestScrapeUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	_, err = Scrape(context.Background(), Options{BaseURL: base}, time.Second)
	t.Log(err)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Scrape of a closed port: %v, want ErrUnreachable saying connection refused", err)
	}
	if err := Probe(context.Background(), base); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Probe of a closed port: %v, want ErrUnreachable", err)
	}
}

func TestScrapeNotPprof(t *testing.T) {
	t.Parallel()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html><body>Welcome</body></html>"))
	}))
	defer html.Close()
	_, err := Scrape(context.Background(), Options{BaseURL: html.URL}, time.Second)
	t.Log(err)
	if !errors.Is(err, ErrNotPprof) || !strings.Contains(err.Error(), "not a Go pprof endpoint") ||
		!strings.Contains(err.Error(), "got text/html from "+html.URL+"/debug/pprof/") {
		t.Errorf("Scrape of an HTML site: %v, want ErrNotPprof saying it got text/html from where", err)
	}

	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	err = Probe(context.Background(), empty.URL)
	t.Log(err)
	if !errors.Is(err, ErrNotPprof) || !strings.Contains(err.Error(), "404 Not Found at "+empty.URL+"/debug/pprof/cmdline") ||
		!strings.Contains(err.Error(), `import _ "net/http/pprof"`) {
		t.Errorf("Probe of a 404 site: %v, want ErrNotPprof naming the 404 and the fix", err)
	}

	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/login", http.StatusFound)
	}))
	defer login.Close()
	if err := Probe(context.Background(), login.URL); !errors.Is(err, ErrNotPprof) || !strings.Contains(err.Error(), "another host refused") {
		t.Errorf("Probe of a site redirecting to a login page: %v, want ErrNotPprof saying the redirect was refused", err)
	}
}

func TestScrapeEndpointFailures(t *testing.T) {
	t.Parallel()
	const maxBytes = 64 << 10
	big := bytes.Repeat([]byte{'x'}, maxBytes+1)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 10*maxBytes))
	zw.Close()
	elsewhere := httptest.NewServer(servePprof(func(*http.Request) int64 { return 1 }))
	defer elsewhere.Close()

	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/pprof/mutex": http.NotFound,
		"/debug/pprof/heap":  func(w http.ResponseWriter, r *http.Request) { w.Write(big) },
		"/debug/pprof/allocs": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bomb.Bytes())
		},
		"/debug/pprof/goroutine": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("hello, world\n"))
		},
		"/debug/pprof/block": func(w http.ResponseWriter, r *http.Request) {
			u := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1) + r.URL.RequestURI()
			http.Redirect(w, r, u, http.StatusFound)
		},
		"/debug/pprof/profile": func(w http.ResponseWriter, r *http.Request) {
			// What net/http/pprof says when another CPU profile is running.
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Go-Pprof", "1")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("Could not enable CPU profiling: cpu profiling already in use\n"))
		},
		"/debug/vars": http.NotFound,
	})
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL, MaxBytes: maxBytes}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Profiles) != 0 {
		t.Errorf("%d profiles, want none", len(res.Profiles))
	}
	if len(res.Series) != 0 {
		t.Errorf("%d series, want none", len(res.Series))
	}
	m := missing(res)
	for _, x := range res.Missing {
		t.Logf("%s: %s", x.Signal, x.Reason)
	}
	for signal, want := range map[string]string{
		"pprof.mutex":     "404 Not Found at " + f.URL + "/debug/pprof/mutex",
		"pprof.heap":      "body over the 65536-byte cap (MaxBytes) at " + f.URL + "/debug/pprof/heap",
		"pprof.allocs":    "decompressed body over the 65536-byte cap (MaxBytes) at " + f.URL + "/debug/pprof/allocs",
		"pprof.goroutine": "not a profile at " + f.URL + "/debug/pprof/goroutine",
		"pprof.block":     "to another host refused",
		"pprof.cpu":       "500 Internal Server Error at " + f.URL + "/debug/pprof/profile?seconds=1: Could not enable CPU profiling: cpu profiling already in use",
		"go.expvar":       "404 Not Found at " + f.URL + `/debug/vars (the service does not serve expvar: import _ "expvar"`,
	} {
		if !strings.Contains(m[signal], want) {
			t.Errorf("missing %s: %q, want it to say %q", signal, m[signal], want)
		}
	}
}

// hang is a server that accepts connections and never answers.
func hang(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestScrapeTimeouts: a silent server, a silent endpoint and a canceled
// context each end the scrape, at their time: the bounds on how long it
// took are generous (a busy machine is slow to answer and to wake), but
// below what the default 10 s timeout, or a window run to its end, would
// take.
func TestScrapeTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	t.Run("silent server", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, err := Scrape(context.Background(), Options{BaseURL: hang(t), Timeout: timeout}, time.Second)
		t.Log(err)
		if took := time.Since(start); took > defaultTimeout/2 {
			t.Errorf("Scrape took %v with Timeout %v", took, timeout)
		}
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "does not answer: timed out after") {
			t.Errorf("Scrape of a silent server: %v, want a timeout", err)
		}
	})
	t.Run("silent endpoint", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, map[string]http.HandlerFunc{
			"/debug/pprof/heap": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		})
		// The endpoints that answer must do so within the timeout, on
		// a busy machine too: 2 s, a fifth of the default.
		const timeout = 2 * time.Second
		start := time.Now()
		res, err := Scrape(context.Background(), Options{BaseURL: f.URL, Timeout: timeout}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > time.Second+2*timeout+3*time.Second {
			t.Errorf("Scrape took %v with a 1s window and Timeout %v", took, timeout)
		}
		if r := missing(res)["pprof.heap"]; !strings.HasPrefix(r, "timed out after") || !strings.HasSuffix(r, f.URL+"/debug/pprof/heap") {
			t.Errorf("missing pprof.heap: %q, want a timeout at the endpoint", r)
		}
		if len(res.Profiles) != len(kinds)-1 {
			t.Errorf("%d profiles, want all but heap", len(res.Profiles))
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Scrape(ctx, Options{BaseURL: f.URL}, time.Minute)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 30*time.Second {
			t.Errorf("Scrape with a context ending after 200ms: %v after %v", err, time.Since(start))
		}
	})
}

func TestScrapeBlockMutexOff(t *testing.T) {
	t.Parallel()
	// block: empty now and since the start, profiling off; mutex: empty in
	// the window but not since the start, a quiet window.
	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/pprof/block": servePprof(func(*http.Request) int64 { return 0 }),
		"/debug/pprof/mutex": servePprof(func(r *http.Request) int64 {
			if r.FormValue("seconds") != "" {
				return 0
			}
			return 5
		}),
	})
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"block", "mutex"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := missing(res)
	if r := m["pprof.block"]; !strings.HasPrefix(r, "endpoint serves an empty profile: runtime.SetBlockProfileRate is 0 in the service") {
		t.Errorf("missing pprof.block: %q, want it to say block profiling is off", r)
	}
	if r, ok := m["pprof.mutex"]; ok {
		t.Errorf("missing pprof.mutex: %q, but it was on and quiet", r)
	}
	p, ok := profilesByKind(res)[observation.KindMutex]
	if !ok || len(p.Profile.Sample) != 0 || p.Labels["mode"] != ModeDelta {
		t.Errorf("mutex profile %+v, want the empty delta", p)
	}
}

func TestScrapeDeltaFromSnapshots(t *testing.T) {
	t.Parallel()
	// A delta is the difference of the cumulative profiles served at the
	// window's start and end, without ?seconds (which a service before
	// Go 1.16 ignored, and which a profile without deltas answers with
	// 400, as block does here). Each endpoint's profiles carry the time
	// they were served: the delta covers the time between the two, which
	// on a busy machine may be less than the window (the first comes late).
	var allocs, block atomic.Int64
	var mu sync.Mutex
	served := map[observation.ProfileKind][]int64{}
	serve := func(w http.ResponseWriter, p *profile.Profile, kind observation.ProfileKind) {
		mu.Lock()
		served[kind] = append(served[kind], p.TimeNanos)
		mu.Unlock()
		p.Write(w)
	}
	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/pprof/allocs": func(w http.ResponseWriter, r *http.Request) {
			n := allocs.Add(1)
			serve(w, cannedProfile("allocs", 100*n*n, 0), observation.KindAllocs) // 100 at the start, 400 at the end
		},
		"/debug/pprof/block": func(w http.ResponseWriter, r *http.Request) {
			if r.FormValue("seconds") != "" {
				http.Error(w, `"seconds" parameter is not supported for this profile type`, http.StatusBadRequest)
				return
			}
			serve(w, cannedProfile("block", 7*block.Add(1), 0), observation.KindBlock) // 7, then 14
		},
	})
	start := time.Now()
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"allocs", "block"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) > 0 {
		t.Errorf("missing: %v", res.Missing)
	}
	got := profilesByKind(res)
	for kind, want := range map[observation.ProfileKind]int64{observation.KindAllocs: 300, observation.KindBlock: 7} {
		p := got[kind]
		if p.Profile == nil {
			t.Errorf("no %s profile", kind)
			continue
		}
		if len(p.Profile.Sample) != 1 || p.Profile.Sample[0].Value[0] != want || p.Labels["mode"] != ModeDelta {
			t.Errorf("%s: %v, want one sample of %d, a delta", kind, p.Profile, want)
		}
		// The second at the window's end or after.
		if times := served[kind]; len(times) != 2 || p.Profile.DurationNanos != times[1]-times[0] || times[1] < start.Add(time.Second).UnixNano() {
			t.Errorf("%s: duration %v, want the time between the two profiles served at %v, the second after the 1 s window from %v",
				kind, time.Duration(p.Profile.DurationNanos), times, start.UnixNano())
		}
	}
}

func TestScrapeRedirects(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/pprof/heap": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/debug/pprof/heap2", http.StatusMovedPermanently)
		},
	})
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"heap"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Profiles) != 1 || res.Profiles[0].Profile.Function[0].Name != "main.fake_heap2" {
		t.Errorf("profiles %v, missing %v: want the heap profile through a redirect on the same host", res.Profiles, res.Missing)
	}
}

func TestScrapeBadOptions(t *testing.T) {
	for _, o := range []Options{
		{BaseURL: "http://127.0.0.1:1", Profiles: []string{"cpu", "threadcreate"}},
		{BaseURL: ""},
		{BaseURL: "ftp://example.com"},
	} {
		if _, err := Scrape(context.Background(), o, time.Second); err == nil || errors.Is(err, ErrUnreachable) {
			t.Errorf("Scrape(%+v): %v, want an options error", o, err)
		}
	}
}

func TestParseBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:6060":                             "http://127.0.0.1:6060",
		"http://127.0.0.1:6060/":                            "http://127.0.0.1:6060",
		"127.0.0.1:6060":                                    "http://127.0.0.1:6060",
		"http://h:6060/debug/pprof/":                        "http://h:6060",
		"http://h:6060/debug/pprof":                         "http://h:6060",
		"https://h/admin/debug/pprof/profile?seconds=30#x":  "https://h/admin",
		"http://user:secret@h:6060/debug/pprof/heap?gc=1":   "http://user:xxxxx@h:6060",
		"  http://[::1]:6060/debug/pprof/goroutine?debug=2": "http://[::1]:6060",
	} {
		c, err := newClient(in, nil, time.Second, 1)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := c.String(); got != want {
			t.Errorf("%q: base %q, want %q", in, got, want)
		}
	}
}

func TestScrapeMetricsFallback(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/vars": http.NotFound,
		"/metrics": func(w http.ResponseWriter, r *http.Request) {
			n := calls.Add(1) // 1 at the start, 2 at the end
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			fmt.Fprintf(w, `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 3.1e-05
go_gc_duration_seconds_sum 0.5
go_gc_duration_seconds_count %d
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_alloc_bytes_total %d
go_memstats_heap_alloc_bytes 4.194304e+06
go_memstats_next_gc_bytes 8.388608e+06
process_cpu_seconds_total 12.5
`, 10*n, 1<<20*n)
		},
	})
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"heap"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := missing(res)["go.expvar"]; !strings.Contains(r, "404 Not Found at "+f.URL+"/debug/vars") || !strings.Contains(r, "from the Prometheus text at /metrics instead") {
		t.Errorf("missing go.expvar: %q, want the 404 and the fallback", r)
	}
	got := map[observation.SeriesName][]observation.Point{}
	for _, s := range res.Series {
		got[s.Name] = s.Points
	}
	if len(got) != 5 {
		t.Errorf("series %v, want go.goroutines, go.heap.alloc, go.heap.goal, go.gc.count and go.alloc.rate", got)
	}
	if p := got["go.goroutines"]; len(p) != 2 || p[0].Value != 42 {
		t.Errorf("go.goroutines %v, want 42 twice", p)
	}
	if p := got["go.heap.goal"]; len(p) != 2 || p[0].Value != 8<<20 {
		t.Errorf("go.heap.goal %v, want 8 MiB twice", p)
	}
	if p := got["go.gc.count"]; len(p) != 1 || p[0].Value < 5 || p[0].Value > 10.5 {
		t.Errorf("go.gc.count %v, want about 10 GCs over the 1s window", p)
	}
	if p := got["go.alloc.rate"]; len(p) != 1 || p[0].Value < 1<<19 || p[0].Value > 1<<20+1<<16 {
		t.Errorf("go.alloc.rate %v, want about 1 MiB/s", p)
	}
}

func TestParsePromLine(t *testing.T) {
	for line, want := range map[string]struct {
		name    string
		labeled bool
		value   float64
		ok      bool
	}{
		"go_goroutines 42\n":                                     {"go_goroutines", false, 42, true},
		"go_memstats_heap_alloc_bytes 4.2e+06 1700000":           {"go_memstats_heap_alloc_bytes", false, 4.2e6, true},
		`go_gc_duration_seconds{quantile="0.5"} 3e-05`:           {"go_gc_duration_seconds", true, 3e-5, true},
		`http_requests_total{code="200",path="/a b}"} 7 1700000`: {"http_requests_total", true, 7, true},
		`http_requests_total{path="say \"}\" twice"} 5`:          {"http_requests_total", true, 5, true},
		`http_requests_total{path="/"`:                           {},
		`http_requests_total{path="/"}`:                          {},
		"http_requests_total\t12":                                {"http_requests_total", false, 12, true},
		`http_requests_total {code="200"} 9`:                     {"http_requests_total", true, 9, true},
		"# TYPE go_goroutines gauge":                             {},
		"":                                                       {},
		"go_goroutines":                                          {},
		"go_goroutines many":                                     {},
		"go_goroutines NaN":                                      {},
		"{} 1":                                                   {},
	} {
		name, labeled, value, ok := parsePromLine(line)
		if name != want.name || labeled != want.labeled || value != want.value || ok != want.ok {
			t.Errorf("%q: %q %v %v %v, want %q %v %v %v", line, name, labeled, value, ok, want.name, want.labeled, want.value, want.ok)
		}
	}
}

// TestScrapeCutShort: a profile whose answer stops mid-body (the service
// crashed or was killed) is missing, saying so, not that it never
// answered.
func TestScrapeCutShort(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[string]http.HandlerFunc{
		"/debug/pprof/heap": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "4096")
			w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		},
	})
	res, err := Scrape(context.Background(), Options{BaseURL: f.URL, Profiles: []string{"heap", "goroutine"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "connection closed by the server after 100 bytes of the body at " + f.URL + "/debug/pprof/heap"
	if got := missing(res)["pprof.heap"]; got != want {
		t.Errorf("missing pprof.heap: %q, want %q", got, want)
	}
	if len(res.Profiles) != 1 || res.Profiles[0].Kind != observation.KindGoroutine {
		t.Errorf("profiles %v, want the goroutine one", res.Profiles)
	}
}

// TestKindSignals: the signal a profile is missing under is catalogued.
func TestKindSignals(t *testing.T) {
	catalogued := map[observation.Signal]bool{}
	for _, s := range observation.Signals() {
		catalogued[s] = true
	}
	for _, k := range kinds {
		if s := observation.ProfileSignal(observation.SourcePprof, k.kind); !catalogued[s] {
			t.Errorf("profile %s is missing as %s, not a catalogued signal", k.kind, s)
		}
	}
	if !catalogued[observation.SignalGoExpvar] {
		t.Errorf("%s is not catalogued", observation.SignalGoExpvar)
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perfhound/perfhound/agent/ingest"
	"github.com/perfhound/perfhound/analyzer/diagnosis"
	"github.com/perfhound/perfhound/analyzer/obsdiff"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// newTestServer serves the API over the test store.
func newTestServer(t *testing.T, src Source, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	s, err := New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	// The ingest handler refuses to work under a server without these.
	ts.Config.ReadHeaderTimeout, ts.Config.ReadTimeout = 10*time.Second, time.Minute
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, ts
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, ts *httptest.Server, path string) answer {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("%v in %s", err, a.body)
	}
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

func TestHealthz(t *testing.T) {
	src := newTestSource(t)
	src.healthy.Store(false)
	_, ts := newTestServer(t, src, Options{})
	if a := get(t, ts, "/healthz"); a.status != 503 {
		t.Errorf("before collecting: %d %s, want 503", a.status, a.body)
	}
	src.healthy.Store(true)
	if a := get(t, ts, "/healthz"); a.status != 200 {
		t.Errorf("collecting: %d %s, want 200", a.status, a.body)
	}
}

// TestRegressions: nothing found, nothing listed (regressions_test.go
// has the rest).
func TestRegressions(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	a := get(t, ts, "/api/v1/regressions")
	var got map[string][]any
	a.json(t, &got)
	if a.status != 200 || got["regressions"] == nil || len(got["regressions"]) != 0 || len(got) != 1 {
		t.Errorf("%d %s, want 200 {\"regressions\": []}", a.status, a.body)
	}
}

func TestServices(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	a := get(t, ts, "/api/v1/services")
	var got struct {
		Services []serviceJSON `json:"services"`
	}
	a.json(t, &got)
	if a.status != 200 || len(got.Services) != 2 {
		t.Fatalf("%d %s, want the two services", a.status, a.body)
	}
	shop := got.Services[0]
	if shop.Name != "shop" || len(shop.Versions) != 2 || shop.Versions[0].Version != "v1" || shop.Versions[1].Version != "v2" {
		t.Errorf("shop: %+v", shop)
	}
	if !shop.First.Equal(testNow.Add(-2*time.Hour)) || shop.Last.Before(testNow.Add(-30*time.Minute)) {
		t.Errorf("shop seen %v to %v", shop.First, shop.Last)
	}
	// The latest window is mixed-cpu-io's: cpu, with io second.
	if shop.Verdict == nil || shop.Verdict.Class != "cpu" || shop.Verdict.Secondary != "io" || shop.Verdict.Load["io"] <= 0 {
		t.Errorf("shop's verdict %+v, want the mixed workload's cpu, secondary io", shop.Verdict)
	}
}

// profileTotal is the sum of a profile's default sample values.
func profileTotal(p *profile.Profile) int64 {
	i := len(p.SampleType) - 1
	if p.DefaultSampleType != "" {
		for j, st := range p.SampleType {
			if st.Type == p.DefaultSampleType {
				i = j
			}
		}
	}
	var sum int64
	for _, s := range p.Sample {
		sum += s.Value[i]
	}
	return sum
}

// fixtureTotal is the total of a fixture's profile of kind from source.
func fixtureTotal(t *testing.T, fixture string, kind observation.ProfileKind, source observation.ProfileSource) int64 {
	t.Helper()
	o, err := observation.Load(fixtureDir(fixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range o.ProfilesOf(kind) {
		if p.Source == source {
			return profileTotal(p.Profile)
		}
	}
	t.Fatalf("%s has no %s profile from %s", fixture, kind, source)
	return 0
}

// TestProfile checks that the merged profile of a range holds every
// window's samples: its total is the windows' totals summed.
func TestProfile(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	hash := fixtureTotal(t, "cpu-hash", observation.KindCPU, observation.SourceEBPF)
	mixed := fixtureTotal(t, "mixed-cpu-io", observation.KindCPU, observation.SourceEBPF)
	for _, tc := range []struct {
		name  string
		query string
		want  int64
	}{
		{"both versions", q("service", "shop", "type", "cpu", "from", "-3h", "to", "now"), windowsPerVersion * (hash + mixed)},
		{"version v1", q("service", "shop", "type", "cpu", "from", "-3h", "version", "v1"), windowsPerVersion * hash},
		{"the last hour (default)", q("service", "shop", "type", "cpu"), windowsPerVersion * mixed},
		{"RFC3339", q("service", "shop", "type", "cpu", "from", "2026-12-04T09:59:59Z", "to", "2026-12-04T10:01:00Z"), windowsPerVersion * hash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, ts, "/api/v1/profile"+tc.query)
			if a.status != 200 {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if !bytes.HasPrefix(a.body, []byte{0x1f, 0x8b}) {
				t.Errorf("body is not gzip")
			}
			p, err := profile.ParseData(a.body)
			if err != nil {
				t.Fatal(err)
			}
			if got := profileTotal(p); got != tc.want {
				t.Errorf("merged total %d, want %d (the windows' sum)", got, tc.want)
			}
			if a.header.Get("X-Perfhound-Profile-Source") != "ebpf" || !strings.Contains(a.header.Get("Content-Disposition"), "shop-cpu-ebpf-") {
				t.Errorf("headers %v", a.header)
			}
		})
	}
}

// TestProfileSource checks the choice among sources: a Go service's CPU
// is seen by eBPF and by its own endpoint, never summed.
func TestProfileSource(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	for _, tc := range []struct {
		query  string
		source observation.ProfileSource
		kind   observation.ProfileKind
	}{
		{q("service", "locks", "type", "cpu"), observation.SourceEBPF, observation.KindCPU},
		{q("service", "locks", "type", "cpu", "source", "pprof"), observation.SourcePprof, observation.KindCPU},
		{q("service", "locks", "type", "mutex"), observation.SourcePprof, observation.KindMutex},
		{q("service", "locks", "type", "alloc"), observation.SourcePprof, observation.KindAllocs},
	} {
		a := get(t, ts, "/api/v1/profile"+tc.query)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", tc.query, a.status, a.body)
		}
		p, err := profile.ParseData(a.body)
		if err != nil {
			t.Fatal(err)
		}
		want := 3 * fixtureTotal(t, "contention-go-mutex", tc.kind, tc.source)
		if got := a.header.Get("X-Perfhound-Profile-Source"); got != string(tc.source) || profileTotal(p) != want {
			t.Errorf("%s: source %s total %d, want %s %d", tc.query, got, profileTotal(p), tc.source, want)
		}
	}
	a := get(t, ts, "/api/v1/profile"+q("service", "locks", "type", "mutex", "source", "ebpf"))
	if a.status != 404 || !strings.Contains(string(a.body), "there are from pprof") {
		t.Errorf("mutex from eBPF: %d %s, want 404 saying where there are", a.status, a.body)
	}
}

// TestProfileOpensInPprof checks that go tool pprof opens the API's
// profile, as users will.
func TestProfileOpensInPprof(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH: cannot run go tool pprof")
	}
	_, ts := newTestServer(t, newTestSource(t), Options{})
	a := get(t, ts, "/api/v1/profile"+q("service", "shop", "type", "cpu", "from", "-3h"))
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	file := filepath.Join(t.TempDir(), "cpu.pb.gz")
	if err := os.WriteFile(file, a.body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-nodecount=5", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	// cpu-hash spends its time hashing.
	if !strings.Contains(string(out), "sha256") {
		t.Errorf("go tool pprof -top shows no sha256:\n%s", out)
	}
}

// TestDiagnosis checks that a range of one window gives diagnose's report
// of that window, and that the formats render.
func TestDiagnosis(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	start := testNow.Add(-2 * time.Hour)
	o, err := observation.Load(fixtureDir("cpu-hash"))
	if err != nil {
		t.Fatal(err)
	}
	shift(o, start)
	var want bytes.Buffer
	if err := diagnosis.Analyze(o, diagnosis.DefaultOptions()).WriteJSON(&want); err != nil {
		t.Fatal(err)
	}
	one := q("service", "shop", "from", stamp(start), "to", stamp(start.Add(time.Second)))
	a := get(t, ts, "/api/v1/diagnosis"+one)
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", a.status, a.header)
	}
	if !bytes.Equal(a.body, want.Bytes()) {
		t.Errorf("the diagnosis of one window differs from diagnose's report of it:\n%s\nwant\n%s", a.body, want.Bytes())
	}

	// The whole of v1: still cpu, over six windows' time.
	var doc struct {
		Schema  string
		Verdict struct {
			Class    string
			Duration int64 `json:"duration_ns"`
		}
	}
	a = get(t, ts, "/api/v1/diagnosis"+q("service", "shop", "version", "v1", "from", "-3h"))
	a.json(t, &doc)
	if doc.Schema != diagnosis.Schema || doc.Verdict.Class != "cpu" || doc.Verdict.Duration != windowsPerVersion*int64(o.Meta.Duration) {
		t.Errorf("v1: %+v, want cpu over %d windows", doc, windowsPerVersion)
	}

	for format, want := range map[string]string{
		"text":     "CPU",
		"markdown": "# ",
		"md":       "# ",
		"html":     "<!DOCTYPE html>",
	} {
		a := get(t, ts, "/api/v1/diagnosis"+q("service", "shop", "from", "-3h", "format", format))
		if a.status != 200 || !strings.Contains(string(a.body), want) {
			t.Errorf("format %s: %d %.200s, want %q", format, a.status, a.body, want)
		}
	}
}

// TestDiff checks the comparison of two versions, and of two ranges, in
// compare's schema.
func TestDiff(t *testing.T) {
	src := newTestSource(t)
	_, ts := newTestServer(t, src, Options{})
	a := get(t, ts, "/api/v1/diff"+q("service", "shop", "base", "v1", "head", "v2"))
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var d diffDoc
	a.json(t, &d)
	if d.Schema != obsdiff.Schema || d.Base.Name != "shop version v1" || d.Head.Name != "shop version v2" {
		t.Errorf("diff %s: base %q head %q", d.Schema, d.Base.Name, d.Head.Name)
	}
	// v2 adds I/O to v1's hashing.
	if d.Class.Base != "cpu" || d.Class.Head != "cpu" {
		t.Errorf("classes %+v", d.Class)
	}
	var ioGrew bool
	for _, l := range d.Load {
		if l.Class == "io" && l.Head > l.Base+0.5 {
			ioGrew = true
		}
	}
	if !ioGrew {
		t.Errorf("io load did not grow from v1 to v2: %+v", d.Load)
	}

	// The same windows named as ranges give the same comparison.
	r := get(t, ts, "/api/v1/diff"+q("service", "shop", "base", "-2h/-1h", "head", "2026-12-04T11:30:00Z/now"))
	if r.status != 200 {
		t.Fatalf("%d %.300s", r.status, r.body)
	}
	var dr diffDoc
	r.json(t, &dr)
	if !strings.HasPrefix(dr.Base.Name, "shop 2026-12-04T10:00:00Z to ") {
		t.Errorf("base named %q", dr.Base.Name)
	}
	names := strings.NewReplacer(dr.Base.Name, d.Base.Name, dr.Head.Name, d.Head.Name)
	if got := names.Replace(string(r.body)); got != string(a.body) {
		t.Errorf("the diff of the versions' ranges differs from the diff of the versions:\n%s\nwant\n%s", got, a.body)
	}

	for format, want := range map[string]string{"text": "cpu", "markdown": "|"} {
		a := get(t, ts, "/api/v1/diff"+q("service", "shop", "base", "v1", "head", "v2", "format", format))
		if a.status != 200 || !strings.Contains(string(a.body), want) {
			t.Errorf("format %s: %d %.200s", format, a.status, a.body)
		}
	}
}

// diffDoc is the part of obsdiff's JSON the tests read.
type diffDoc struct {
	Schema     string
	Base, Head struct{ Name string }
	Class      struct{ Base, Head string }
	Load       []struct {
		Class      string
		Base, Head float64
	}
}

// TestRefusals checks that each bad request is refused with its status
// and an error naming what is wrong, and that a query too large for its
// memory is refused, not run.
func TestRefusals(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{MaxRange: 24 * time.Hour})
	for _, tc := range []struct {
		path   string
		status int
		param  string
		reason string
	}{
		{"/api/v1/profile" + q("type", "cpu"), 400, "service", "required"},
		{"/api/v1/profile" + q("service", "shop"), 400, "type", "required"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu;rm"), 400, "type", "not a profile kind"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "from", "yesterday"), 400, "from", "RFC3339"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "to", "-1x"), 400, "to", "duration"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "from", "-1h", "to", "-2h"), 400, "from", "not before"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "from", "-48h"), 400, "from", "at most 24h0m0s"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "source", "perf"), 400, "source", "ebpf, pprof or ingest"},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "servce", "x"), 400, `"servce"`, "unknown parameter"},
		{"/api/v1/profile?service=shop&service=x&type=cpu", 400, "service", "2 times"},
		{"/api/v1/profile?service=%zz", 400, "query", "malformed"},
		{"/api/v1/profile" + q("service", "nope", "type", "cpu"), 404, "", `no service "nope"`},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "version", "v9"), 404, "", `no version "v9"`},
		{"/api/v1/profile" + q("service", "shop", "type", "cpu", "from", "-10h", "to", "-9h"), 404, "", "nothing stored"},
		{"/api/v1/profile" + q("service", "shop", "type", "goroutine", "from", "-3h"), 404, "", "no goroutine profiles"},
		{"/api/v1/diagnosis" + q("service", "shop", "format", "pdf"), 400, "format", "json, text, markdown, html"},
		{"/api/v1/diff" + q("service", "shop", "base", "v1"), 400, "head", "required"},
		{"/api/v1/diff" + q("service", "shop", "base", "v1", "head", "v3"), 404, "", `head: service "shop" has no version "v3"`},
		{"/api/v1/diff" + q("service", "shop", "base", "-3h/-4h", "head", "v2"), 400, "base", "not before"},
		{"/api/v1/diff" + q("service", "shop", "base", "v1", "head", "v2", "format", "html"), 400, "format", "json, text, markdown"},
		{"/api/v1/services" + q("x", "1"), 400, `"x"`, "unknown parameter"},
		{"/api/v1/nothing", 404, "", "no such endpoint"},
		{"/ui/shop/yesterday/2026-12-04T12:00:00Z/", 400, "from", "RFC3339"},
		{"/ui/shop/2026-12-01T12:00:00Z/2026-12-04T12:00:00Z/", 400, "from", "at most 24h0m0s"},
		{"/ui/nope/2026-12-04T11:00:00Z/2026-12-04T12:00:00Z/", 404, "", `no service "nope"`},
		{"/flame" + q("from", "-1h"), 400, "service", "required"},
	} {
		a := get(t, ts, tc.path)
		var e struct{ Error, Parameter string }
		a.json(t, &e)
		if a.status != tc.status || e.Parameter != tc.param || !strings.Contains(e.Error, tc.reason) || !strings.HasPrefix(e.Error, tc.param) {
			t.Errorf("%s: %d %s, want %d naming %q with %q", tc.path, a.status, a.body, tc.status, tc.param, tc.reason)
		}
	}
}

// TestQueryMemory checks that a query's memory is bounded by a chunk of
// its range, not by the range: shop's twelve windows decode to about 8
// MiB, six of them (v2's, 30 s) to 7 MiB. With 4 MiB a query, the range
// read 10 s at a time is answered; read 5 minutes at a time, v2's windows
// do not fit and the query is refused, naming the range, without
// decoding past them.
func TestQueryMemory(t *testing.T) {
	path := "/api/v1/diagnosis" + q("service", "shop", "from", "-3h")
	_, ts := newTestServer(t, newTestSource(t), Options{QueryMemory: 4 << 20, ChunkSpan: 10 * time.Second})
	if a := get(t, ts, path); a.status != 200 {
		t.Fatalf("4 MiB, 10 s chunks: %d %s", a.status, a.body)
	}
	src := newTestSource(t)
	_, ts = newTestServer(t, src, Options{QueryMemory: 4 << 20, ChunkSpan: 5 * time.Minute})
	a := get(t, ts, path)
	var e struct{ Error, Parameter string }
	a.json(t, &e)
	if a.status != 400 || e.Parameter != "from" || !strings.Contains(e.Error, "more profile data than one query may decode at once (4 MiB)") {
		t.Errorf("4 MiB, 5 min chunks: %d %s, want 400 naming the range", a.status, a.body)
	}
	// v1's six windows, and v2's until the budget ran out.
	if n := src.loads.Load(); n >= 2*windowsPerVersion {
		t.Errorf("%d windows decoded before the refusal, want it to stop early", n)
	}
}

// TestBusy checks that queries past MaxQueries are refused with 503 and
// Retry-After, and answered again once a slot is free.
func TestBusy(t *testing.T) {
	s, ts := newTestServer(t, newTestSource(t), Options{MaxQueries: 1})
	release, err := s.acquire()
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/profile" + q("service", "shop", "type", "cpu")
	a := get(t, ts, path)
	if a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Errorf("with every slot taken: %d %s %v, want 503 with Retry-After", a.status, a.body, a.header)
	}
	release()
	if a := get(t, ts, path); a.status != 200 {
		t.Errorf("with the slot free: %d %s", a.status, a.body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	daemon := prometheus.NewCounter(prometheus.CounterOpts{Name: "perfhound_agent_windows_total", Help: "windows"})
	reg.MustRegister(daemon)
	daemon.Add(7)
	_, ts := newTestServer(t, newTestSource(t), Options{Registry: reg})
	get(t, ts, "/api/v1/services")
	get(t, ts, "/api/v1/services")
	get(t, ts, "/api/v1/profile"+q("service", "nope", "type", "cpu"))
	// A second API on the same registry (a reload) shares the metrics.
	if _, err := New(newTestSource(t), Options{Registry: reg}); err != nil {
		t.Fatalf("a second API on the registry: %v", err)
	}
	a := get(t, ts, "/metrics")
	for _, want := range []string{
		"perfhound_agent_windows_total 7",
		`perfhound_agent_http_requests_total{code="200",handler="services"} 2`,
		`perfhound_agent_http_requests_total{code="404",handler="profile"} 1`,
		`perfhound_agent_query_duration_seconds_count{handler="services"} 2`,
	} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, a.body)
		}
	}
}

// TestIngest checks that /ingest is the handler given: a real profile
// pushed the way pyroscope-go pushes arrives in the receiver.
func TestIngest(t *testing.T) {
	var recv ingest.Receiver
	_, ts := newTestServer(t, newTestSource(t), Options{Ingest: recv.Handler(ingest.Options{})})
	body, err := os.ReadFile(filepath.Join(fixtureDir("cpu-hash"), "profiles", "000-ebpf-cpu.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Post(ts.URL+"/ingest?name=pushed{env=test}&from=1700000000&until=1700000010&format=pprof", "binary/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, msg)
	}
	obs := recv.Drain()
	if len(obs) != 1 || obs[0].Meta.Target.App != "pushed" || len(obs[0].Profiles) != 1 {
		t.Errorf("the push did not arrive: %+v", obs)
	}
}

// TestCrossOrigin checks that another site cannot make a browser write
// through the API.
func TestCrossOrigin(t *testing.T) {
	var recv ingest.Receiver
	_, ts := newTestServer(t, newTestSource(t), Options{Ingest: recv.Handler(ingest.Options{})})
	req, _ := http.NewRequest("POST", ts.URL+"/ingest?name=x", strings.NewReader("x"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site POST got %d, want 403", resp.StatusCode)
	}
}

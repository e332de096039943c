package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// serve starts the ingest server on loopback and returns its base URL.
func serve(t *testing.T, h *Handler, tweak func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Server("")
	if tweak != nil {
		tweak(srv)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

var (
	pyroappOnce sync.Once
	pyroappBin  string
	pyroappDir  string // built here, removed by TestMain
	pyroappErr  error
)

// buildPyroapp builds fixtures/pyroapp once, or takes it from
// PERFHOUND_TEST_SUBJECTS (scripts/test-busy.sh builds it there at normal
// priority before it runs the tests niced).
func buildPyroapp(t *testing.T) string {
	t.Helper()
	pyroappOnce.Do(func() {
		if dir := os.Getenv("PERFHOUND_TEST_SUBJECTS"); dir != "" {
			pyroappBin = filepath.Join(dir, "pyroapp")
			_, pyroappErr = os.Stat(pyroappBin)
			return
		}
		dir, err := os.MkdirTemp("", "perfhound-pyroapp-")
		if err != nil {
			pyroappErr = err
			return
		}
		pyroappDir, pyroappBin = dir, filepath.Join(dir, "pyroapp")
		out, err := exec.Command("go", "build", "-buildvcs=false", "-o", pyroappBin, "../../fixtures/pyroapp").CombinedOutput()
		if err != nil {
			pyroappErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if pyroappErr != nil {
		t.Fatal(pyroappErr)
	}
	return pyroappBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pyroappDir != "" {
		os.RemoveAll(pyroappDir)
	}
	os.Exit(code)
}

// share is the fraction of a profile's sample type that has fn on its
// stack (cumulative share).
func share(p *profile.Profile, sampleType, fn string) float64 {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == sampleType {
			idx = i
		}
	}
	if idx < 0 {
		return 0
	}
	var total, in int64
	for _, s := range p.Sample {
		total += s.Value[idx]
		found := false
		for _, l := range s.Location {
			for _, ln := range l.Line {
				found = found || ln.Function.Name == fn
			}
		}
		if found {
			in += s.Value[idx]
		}
	}
	if total == 0 {
		return 0
	}
	return float64(in) / float64(total)
}

// TestPyroscopeSDK runs a program instrumented with the real
// pyroscope-go SDK against the ingest server and checks what arrives.
func TestPyroscopeSDK(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain missing: cannot build the fixture")
	}
	bin := buildPyroapp(t)
	var recv Receiver
	url := serve(t, recv.Handler(Options{}), nil)

	// 3 s, and 300 ms of CPU time at least (about 30 samples at 100 Hz),
	// however little of a CPU a busy machine gives it.
	cmd := exec.Command(bin, "-server", url, "-duration", "3s", "-cpu", "300ms")
	started := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pyroapp: %v\n%s", err, out)
	}
	ran := time.Since(started)
	obs := recv.Drain()
	if len(obs) != 1 {
		t.Fatalf("%d applications, want 1", len(obs))
	}
	o := obs[0]
	if o.Meta.Target.App != "perfhound.pyroapp" || o.Meta.Target.Labels["fixture"] != "pyroapp" {
		t.Errorf("target %+v, want app perfhound.pyroapp with label fixture=pyroapp", o.Meta.Target)
	}
	// Pushes say their times in whole seconds: up to a second more at
	// each end.
	if o.Meta.Duration < 2*time.Second || o.Meta.Duration > ran+2*time.Second {
		t.Errorf("window %v, want about the %v the app ran (3 s at least)", o.Meta.Duration, ran)
	}
	cpu := o.ProfilesOf(observation.KindCPU)
	heap := o.ProfilesOf(observation.KindHeap)
	if len(cpu) == 0 || len(heap) == 0 {
		t.Fatalf("%d CPU and %d heap profiles, want some of each; kinds: %v", len(cpu), len(heap), kinds(o))
	}
	merged := func(ps []observation.Profile) *profile.Profile {
		var all []*profile.Profile
		for _, p := range ps {
			if err := p.Profile.CheckValid(); err != nil {
				t.Fatalf("invalid profile: %v", err)
			}
			all = append(all, p.Profile)
		}
		m, err := profile.Merge(all)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Of the app's own work (under main.main: not the SDK's uploads,
	// whose share grows as the app gets less of a CPU), burning is most.
	cpuProf := merged(cpu)
	if s, app := share(cpuProf, "cpu", "main.burnCPU"), share(cpuProf, "cpu", "main.main"); s < 0.5*app || app == 0 {
		t.Errorf("main.burnCPU in %.0f%% of CPU time, main.main in %.0f%%: want most of the app's own", 100*s, 100*app)
	}
	if s := share(merged(heap), "alloc_space", "main.churnAllocs"); s < 0.5 {
		t.Errorf("main.churnAllocs in %.0f%% of allocated bytes, want most", 100*s)
	}
}

func kinds(o *observation.Observation) []observation.ProfileKind {
	var out []observation.ProfileKind
	for _, p := range o.Profiles {
		out = append(out, p.Kind)
	}
	return out
}

func cpuProfileBytes(t *testing.T, gz bool) []byte {
	t.Helper()
	f := &profile.Function{ID: 1, Name: "main.hot"}
	l := &profile.Location{ID: 1, Line: []profile.Line{{Function: f}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Location: []*profile.Location{l}, Value: []int64{1, 10000000}}},
		Location:   []*profile.Location{l},
		Function:   []*profile.Function{f},
	}
	var b bytes.Buffer
	var err error
	if gz {
		err = p.Write(&b)
	} else {
		err = p.WriteUncompressed(&b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func multipartBody(t *testing.T, parts map[string][]byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for name, data := range parts {
		fw, err := w.CreateFormFile(name, name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func TestRequests(t *testing.T) {
	var recv Receiver
	url := serve(t, recv.Handler(Options{MaxBodyBytes: 1 << 20, Limits: profdecode.Limits{MaxBytes: 1 << 20}}), nil)
	good := cpuProfileBytes(t, true)
	ct, body := multipartBody(t, map[string][]byte{"profile": good})
	ctNoProfile, bodyNoProfile := multipartBody(t, map[string][]byte{"other": good})
	ctBadConfig, bodyBadConfig := multipartBody(t, map[string][]byte{"profile": good, "sample_type_config": []byte("{")})
	var bomb, nested bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 8<<20))
	zw.Close()
	zw = gzip.NewWriter(&nested)
	zw.Write(bomb.Bytes())
	zw.Close()
	const q = "/ingest?name=app{env=test}&from=1700000000&until=1700000010&spyName=gospy&sampleRate=100"
	for _, tc := range []struct {
		name, method, path, ct string
		body                   []byte
		status                 int
		reason                 string
	}{
		{"multipart", "POST", q, ct, body, 200, ""},
		{"raw gzip", "POST", q + "&format=pprof", "binary/octet-stream", good, 200, ""},
		{"raw uncompressed", "POST", q, "", cpuProfileBytes(t, false), 200, ""},
		{"GET", "GET", q, "", nil, 405, "only POST"},
		{"no name", "POST", "/ingest?from=1", ct, body, 400, "name: missing"},
		{"bad labels", "POST", "/ingest?name=app{env", ct, body, 400, "not closed"},
		{"bad from", "POST", "/ingest?name=app&from=yesterday", ct, body, 400, "from"},
		{"until before from", "POST", "/ingest?name=app&from=1700000010&until=1700000000", ct, body, 400, "before"},
		{"other format", "POST", "/ingest?name=app&format=jfr", ct, body, 415, "only pprof"},
		{"no profile part", "POST", q, ctNoProfile, bodyNoProfile, 400, "unexpected part"},
		{"bad config", "POST", q, ctBadConfig, bodyBadConfig, 400, "sample_type_config"},
		{"garbage profile", "POST", q, "", []byte("not a profile at all"), 400, "profile"},
		{"empty body", "POST", q, "", nil, 400, "empty body"},
		{"gzip bomb", "POST", q, "", bomb.Bytes(), 413, "decompresses past"},
		{"gzip in gzip", "POST", q, "", nested.Bytes(), 400, "gzip inside gzip"},
		{"too large", "POST", q, "", make([]byte, 2<<20), 413, "body over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+tc.path, bytes.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(msg), tc.reason) {
				t.Errorf("%d %q; want %d with %q", resp.StatusCode, msg, tc.status, tc.reason)
			}
		})
	}
	obs := recv.Drain()
	if len(obs) != 1 || len(obs[0].Profiles) != 3 || obs[0].Meta.Target.Labels["env"] != "test" {
		t.Fatalf("accepted pushes did not arrive as one observation of 3 profiles: %+v", obs)
	}
	if got := obs[0].Meta.Start; !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("window starts %v", got)
	}
}

// TestSlowHeaders checks that a client sending its headers slowly is cut
// off by the server's header timeout (the handler sees a request only
// once its headers are in).
func TestSlowHeaders(t *testing.T) {
	url := serve(t, NewHandler(Options{}), func(s *http.Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /ingest?name=slow HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err = io.ReadAll(conn); err != nil {
		t.Errorf("a client stalled in its headers still connected after 30 s (%v), want it closed after the 300 ms header timeout", err)
	}
}

// TestServerWithoutTimeouts checks that the handler refuses to work under
// a server that lets slow clients hold connections.
func TestServerWithoutTimeouts(t *testing.T) {
	url := serve(t, NewHandler(Options{}), func(s *http.Server) { s.ReadHeaderTimeout, s.ReadTimeout = 0, 0 })
	resp, err := http.Post(url+"/ingest?name=app", "", bytes.NewReader(cpuProfileBytes(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(msg), "ReadHeaderTimeout") {
		t.Errorf("%d %q, want 500 naming the missing timeout", resp.StatusCode, msg)
	}
}

func TestParseName(t *testing.T) {
	for in, want := range map[string]string{
		"app":                    "app[]",
		"app{}":                  "app[]",
		"app{a=1, b = 2}":        "app[a=1 b=2]",
		"my.app.cpu{a=1}":        "my.app.cpu[a=1]",
		"app{service_name=x,a=}": "app[a= service_name=x]",
	} {
		app, labels, err := ParseName(in)
		if err != nil {
			t.Errorf("ParseName(%q): %v", in, err)
			continue
		}
		var kv []string
		for k, v := range labels {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		if got := app + "[" + strings.Join(kv, " ") + "]"; got != want {
			t.Errorf("ParseName(%q) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "{a=1}", "app{a=1", "app{a}", "app}"} {
		if _, _, err := ParseName(bad); err == nil {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Unix(1700000000, 0)
	for _, in := range []string{"1700000000", "1700000000000", "1700000000000000", "1700000000000000000"} {
		got, err := parseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%s) = %v, %v", in, got, err)
		}
	}
}

// TestBusy checks the slots: a request that finds them all taken waits
// SlotWait and gets 503 with Retry-After; one from a client that already
// has as many requests pending as the handler takes gets 429 at once.
func TestBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := NewHandler(Options{MaxConcurrent: 1, SlotWait: 50 * time.Millisecond, Sink: func(Push) error {
		entered <- struct{}{}
		<-release
		return nil
	}})
	url := serve(t, h, nil)
	post := func(app string) *http.Response {
		resp, err := http.Post(url+"/ingest?name="+app, "", bytes.NewReader(cpuProfileBytes(t, true)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	done := make(chan *http.Response)
	go func() { done <- post("a") }()
	<-entered
	if resp := post("b"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("another client's request while the slot is taken: %d, want 503 with Retry-After", resp.StatusCode)
	}
	if resp := post("a"); resp.StatusCode != 429 {
		t.Errorf("the same client's second request: %d, want 429", resp.StatusCode)
	}
	close(release)
	if resp := <-done; resp.StatusCode != 200 {
		t.Errorf("first request: %d", resp.StatusCode)
	}
}

func TestKindSuffix(t *testing.T) {
	for _, tc := range []struct {
		app  string
		kind observation.ProfileKind
		want string
	}{
		{"shop.cpu", observation.KindCPU, "shop"},
		{"shop.alloc_space", observation.KindHeap, "shop"},
		{"billing.cpu", observation.KindHeap, "billing.cpu"},
		{"plain", observation.KindCPU, "plain"},
	} {
		if got := trimKindSuffix(tc.app, tc.kind); got != tc.want {
			t.Errorf("trimKindSuffix(%q, %s) = %q, want %q", tc.app, tc.kind, got, tc.want)
		}
	}
}

package pyroscope_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/agent/forward/pyroscope"
	"github.com/perfhound/perfhound/agent/forward/relabel"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
)

// hostWindow is a real 10 s window of a VM (the store's test window:
// perfhound diagnose --frequency 19 --save, eBPF at the agent's rate).
var hostWindow = sync.OnceValues(func() (*observation.Observation, error) {
	return observation.Load("../../store/testdata/host-window")
})

// fixture makes windows of the n busiest processes of the host window,
// each a service of its own, as the daemon stores them.
type fixture struct {
	host  *observation.Observation
	procs []*observation.Observation
	names []string
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	host, err := hostWindow()
	if err != nil {
		t.Fatal(err)
	}
	h := procrank.NewHost(host)
	f := &fixture{host: host}
	for _, p := range h.Rank() {
		if len(f.procs) == n {
			break
		}
		o := h.Split(p.PID)
		if len(o.Profiles) == 0 {
			continue
		}
		f.procs = append(f.procs, o)
		f.names = append(f.names, fmt.Sprintf("svc%d-%s", len(f.names), p.Comm))
	}
	if len(f.procs) < n {
		t.Fatalf("%d processes with profiles, want %d", len(f.procs), n)
	}
	return f
}

func at(o *observation.Observation, start time.Time) *observation.Observation {
	c := *o
	c.Meta.Start = start
	return &c
}

// putBefore stores n windows, every apart, the last one every before end.
func (f *fixture) putBefore(t *testing.T, st *store.Store, end time.Time, n int, every time.Duration) {
	t.Helper()
	for i := range n {
		f.put(t, st, end.Add(-time.Duration(n-i)*every))
	}
}

// put stores a window at start: the host's record and every service's.
func (f *fixture) put(t *testing.T, st *store.Store, start time.Time) {
	t.Helper()
	host := at(f.host, start)
	host.Profiles = nil
	b := store.Batch{Host: &store.Record{Obs: host}}
	for i, o := range f.procs {
		b.Records = append(b.Records, store.Record{Service: f.names[i], Version: "v1", Obs: at(o, start),
			Labels: map[string]string{"service_name": f.names[i], "version": "v1", "env": "test", "build.id": "abc123", "cmdline": strings.Repeat("x", 100)}})
	}
	if err := st.Put(b); err != nil {
		t.Fatal(err)
	}
}

// receiver is the server side of push.v1 (the API module's handler)
// with a PusherServiceHandler that records what it acknowledged.
type receiver struct {
	mu      sync.Mutex
	calls   int
	acked   []got
	headers []http.Header
	body    int64 // request bytes on the wire
	// answer decides each call's fate (nil: acknowledge).
	answer  func(call int, req *connect.Request[pushv1.PushRequest]) error
	changed chan struct{}
}

type got struct {
	labels map[string]string
	p      *profile.Profile
	raw    int // compressed bytes
	id     string
	call   int
}

func newReceiver() *receiver { return &receiver{changed: make(chan struct{}, 1)} }

func (r *receiver) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	r.mu.Lock()
	call := r.calls
	r.calls++
	answer := r.answer
	r.headers = append(r.headers, req.Header().Clone())
	r.mu.Unlock()
	defer r.signal()
	if answer != nil {
		if err := answer(call, req); err != nil {
			return nil, err
		}
	}
	var gs []got
	for _, s := range req.Msg.Series {
		labels := map[string]string{}
		for _, l := range s.Labels {
			if _, dup := labels[l.Name]; dup {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("duplicate label %s", l.Name))
			}
			labels[l.Name] = l.Value
		}
		for _, smp := range s.Samples {
			p, err := profile.ParseData(smp.RawProfile)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, err)
			}
			gs = append(gs, got{labels: labels, p: p, raw: len(smp.RawProfile), id: smp.ID, call: call})
		}
	}
	r.mu.Lock()
	r.acked = append(r.acked, gs...)
	r.mu.Unlock()
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func (r *receiver) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) setAnswer(f func(int, *connect.Request[pushv1.PushRequest]) error) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) snapshot() (calls int, acked []got) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, slices.Clone(r.acked)
}

// handler is the Pyroscope API's push.v1 handler around r, counting the
// bytes of the requests.
func (r *receiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(r))
	return countBytes(mux, r)
}

// countBytes counts the request bodies' bytes as they are read.
func countBytes(h http.Handler, r *receiver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Body = &countingBody{ReadCloser: req.Body, r: r}
		h.ServeHTTP(w, req)
	})
}

type countingBody struct {
	io.ReadCloser
	r *receiver
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.r.mu.Lock()
	c.r.body += int64(n)
	c.r.mu.Unlock()
	return n, err
}

func protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true) // gRPC over http://
	return &p
}

// serve serves r until the test ends.
func serve(t *testing.T, r *receiver) string {
	srv := httptest.NewUnstartedServer(r.handler())
	srv.Config.Protocols = protocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// switchable is a server that can be down (connections refused) and up
// again on the same address.
type switchable struct {
	addr string
	h    http.Handler
	srv  *http.Server
}

func newSwitchable(t *testing.T, h http.Handler) *switchable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &switchable{addr: ln.Addr().String(), h: h}
	ln.Close() // down: nothing listens there
	t.Cleanup(func() {
		if s.srv != nil {
			s.srv.Close()
		}
	})
	return s
}

func (s *switchable) up(t *testing.T) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &http.Server{Handler: s.h, Protocols: protocols()}
	go s.srv.Serve(ln)
}

// waitFor waits until cond holds, on the receiver's pushes or every few
// milliseconds (the forwarder's counts change without one), for at most
// a minute.
func waitFor(t *testing.T, r *receiver, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("waited a minute for %s", what)
		case <-r.changed:
		case <-tick.C:
		}
	}
}

type env struct {
	st   *store.Store
	reg  *prometheus.Registry
	m    *forward.Metrics
	logs *syncBuffer
}

func newEnv(t *testing.T) *env {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	return &env{st: st, reg: reg, m: forward.NewMetrics(reg), logs: &syncBuffer{}}
}

func (e *env) start(t *testing.T, sink forward.Sink) *forward.Forwarder {
	t.Helper()
	f, err := forward.Start(forward.Options{
		Name: "pyro", Sink: sink, Store: e.st, Metrics: e.m,
		Log:        slog.New(slog.NewTextHandler(e.logs, nil)),
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func (e *env) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSink(t *testing.T, url string, c forward.SinkConfig, o pyroscope.Options) *pyroscope.Sink {
	t.Helper()
	c.Name, c.Type, c.URL = "pyro", "pyroscope", url
	s, err := pyroscope.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// windowID names a received profile's window and kind.
type windowID struct {
	service string
	start   int64
	name    string
}

// stacks is a profile's samples by stack (addresses and functions) and
// labels, their values summed.
func stacks(p *profile.Profile) map[string][]int64 {
	m := map[string][]int64{}
	for _, s := range p.Sample {
		var b strings.Builder
		for _, l := range s.Location {
			fmt.Fprintf(&b, "%x", l.Address)
			for _, ln := range l.Line {
				b.WriteString(";" + ln.Function.Name)
			}
			b.WriteString("|")
		}
		for _, k := range slices.Sorted(maps.Keys(s.Label)) {
			fmt.Fprintf(&b, "%s=%v,", k, s.Label[k])
		}
		k := b.String()
		if old, ok := m[k]; ok {
			for i := range old {
				old[i] += s.Value[i]
			}
			continue
		}
		m[k] = slices.Clone(s.Value)
	}
	return m
}

func merge(into, from map[string][]int64) {
	for k, v := range from {
		if old, ok := into[k]; ok {
			for i := range old {
				old[i] += v[i]
			}
			continue
		}
		into[k] = slices.Clone(v)
	}
}

// expected is what the store holds of the records starting in [from,
// to): per window and kind, the samples by stack.
func expected(t *testing.T, st *store.Store, from, to time.Time) map[windowID]map[string][]int64 {
	t.Helper()
	keys, err := st.Keys(from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[windowID]map[string][]int64{}
	for _, k := range keys {
		rec, err := st.Get(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rec.Obs.Profiles {
			if p.Profile == nil || len(p.Profile.Sample) == 0 {
				continue
			}
			id := windowID{k.Service, k.Start.UnixNano(), pyroscope.Names[p.Kind]}
			if out[id] == nil {
				out[id] = map[string][]int64{}
			}
			merge(out[id], stacks(p.Profile))
		}
	}
	return out
}

// receivedWindows groups what was acknowledged per window and kind.
func receivedWindows(gs []got) map[windowID]map[string][]int64 {
	out := map[windowID]map[string][]int64{}
	for _, g := range gs {
		id := windowID{g.labels["service_name"], g.p.TimeNanos, g.labels["__name__"]}
		if out[id] == nil {
			out[id] = map[string][]int64{}
		}
		merge(out[id], stacks(g.p))
	}
	return out
}

func sameWindows(t *testing.T, got, want map[windowID]map[string][]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("received %d profiles (window and kind), stored %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%v was not received", id)
			continue
		}
		if len(g) != len(w) {
			t.Errorf("%v: %d stacks received, %d stored", id, len(g), len(w))
			continue
		}
		for k, v := range w {
			if !slices.Equal(g[k], v) {
				t.Errorf("%v: stack %q: received %v, stored %v", id, k, g[k], v)
				break
			}
		}
	}
}

// TestPushLabelsAndValues forwards real stored windows through the
// Pyroscope API's own handler: every profile arrives, decoded equal to
// the stored one, with Pyroscope's labels; and says what a window costs
// on the wire.
func TestPushLabelsAndValues(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 5)
	now := time.Now().UTC().Truncate(10 * time.Second)
	const windows = 12
	fx.putBefore(t, e.st, now, windows, 10*time.Second)
	r := newReceiver()
	sink := newSink(t, serve(t, r), forward.SinkConfig{}, pyroscope.Options{})
	f := e.start(t, sink)
	want := expected(t, e.st, now.Add(-time.Hour), now.Add(time.Hour))
	waitFor(t, r, "every window", func() bool { _, acked := r.snapshot(); return len(receivedWindows(acked)) >= len(want) })
	_, acked := r.snapshot()
	sameWindows(t, receivedWindows(acked), want)

	kinds := map[string]bool{}
	for _, g := range acked {
		l := g.labels
		kinds[l["__name__"]] = true
		if l["__delta__"] != "false" || l["service_version"] != "v1" || l["env"] != "test" || l["build_id"] != "abc123" || l["host"] == "" {
			t.Fatalf("labels %v: want __delta__=false, service_version=v1, env=test, build_id=abc123 (sanitized from build.id), a host", l)
		}
		if _, ok := l["version"]; ok {
			t.Errorf("labels %v: version repeated beside service_version", l)
		}
		if !slices.Contains(fx.names, l["service_name"]) {
			t.Errorf("service_name %q is none of the services stored", l["service_name"])
		}
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(g.id) {
			t.Errorf("sample ID %q is not a UUID", g.id)
		}
	}
	for _, k := range []string{"process_cpu", "off_cpu"} {
		if !kinds[k] {
			t.Errorf("no %s profile received (got %v)", k, kinds)
		}
	}
	st := f.Stats()
	if st.Sent != int64(windows*len(fx.names)) || st.Dropped != 0 || st.MaxHeld != 1 {
		t.Errorf("stats %+v: want %d sent, none dropped, one window held at a time", st, windows*len(fx.names))
	}
	if got := e.metric(t, "perfhound_agent_forward_windows_sent_total", map[string]string{"sink": "pyro"}); got != float64(windows*len(fx.names)) {
		t.Errorf("sent metric %v, want %d", got, windows*len(fx.names))
	}
	r.mu.Lock()
	body := r.body
	r.mu.Unlock()
	t.Logf("%d windows of %d services: %d bytes of profiles (%d a service's window), %d bytes of requests (%d a host's window of %d services)",
		windows, len(fx.names), sink.BytesSent(), sink.BytesSent()/int64(windows*len(fx.names)), body, body/windows, len(fx.names))
}

// TestOutage: the receiver refusing connections, then answering
// unavailable, then back. Every window inside the ingestion window
// arrives once, the newest first; those older stay local, counted and
// logged once; one window is held at a time.
func TestOutage(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 5)
	now := time.Now().UTC().Truncate(10 * time.Second)
	const old, recent = 3, 30
	for i := range old {
		fx.put(t, e.st, now.Add(-2*time.Hour+time.Duration(i)*10*time.Second))
	}
	for i := range recent {
		fx.put(t, e.st, now.Add(-40*time.Minute+time.Duration(i)*40*time.Second))
	}
	r := newReceiver()
	srv := newSwitchable(t, r.handler())
	sink := newSink(t, "http://"+srv.addr, forward.SinkConfig{}, pyroscope.Options{})
	f := e.start(t, sink)

	// Down: connections refused, retried with backoff.
	waitFor(t, r, "failed attempts", func() bool { return f.Stats().Failures >= 3 })
	if got := e.metric(t, "perfhound_agent_forward_oldest_unsent_seconds", nil); got < 30*60 {
		t.Errorf("oldest unsent %v s during the outage, want the oldest recent window's age (about 40 min)", got)
	}
	// Up, answering unavailable to the first five pushes.
	const refused = 5
	r.setAnswer(func(call int, _ *connect.Request[pushv1.PushRequest]) error {
		if call < refused {
			return connect.NewError(connect.CodeUnavailable, errors.New("ingester ring not ready"))
		}
		return nil
	})
	srv.up(t)
	want := expected(t, e.st, now.Add(-time.Hour), now.Add(time.Hour))
	waitFor(t, r, "every recent window", func() bool { _, acked := r.snapshot(); return len(receivedWindows(acked)) >= len(want) })

	// One more window, stored after the backlog: once it arrives the
	// forwarder has nothing queued, and nothing was sent twice.
	fx.put(t, e.st, now)
	f.Notify()
	want = expected(t, e.st, now.Add(-time.Hour), now.Add(time.Hour))
	waitFor(t, r, "the new window", func() bool { _, acked := r.snapshot(); return len(receivedWindows(acked)) >= len(want) })
	calls, acked := r.snapshot()
	sameWindows(t, receivedWindows(acked), want)
	seen := map[windowID]int{}
	for _, g := range acked {
		seen[windowID{g.labels["service_name"], g.p.TimeNanos, g.labels["__name__"]}]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%v received %d times", id, n)
		}
	}
	// Newest first: after the outage the backlog arrived newest to oldest.
	backlog := slices.DeleteFunc(slices.Clone(acked), func(g got) bool { return g.p.TimeNanos == now.UnixNano() })
	for i := 1; i < len(backlog); i++ {
		if backlog[i].p.TimeNanos > backlog[i-1].p.TimeNanos {
			t.Fatalf("push %d (%s) is newer than push %d (%s): not newest first",
				i, time.Unix(0, backlog[i].p.TimeNanos).Format(time.TimeOnly), i-1, time.Unix(0, backlog[i-1].p.TimeNanos).Format(time.TimeOnly))
		}
	}
	if first := time.Unix(0, backlog[0].p.TimeNanos).UTC(); !first.Equal(now.Add(-40*time.Minute + (recent-1)*40*time.Second)) {
		t.Errorf("the first window sent after the outage started at %s, want the newest then", first)
	}
	st := f.Stats()
	if st.TooOld != int64(old*len(fx.names)) || st.Dropped != st.TooOld {
		t.Errorf("stats %+v: want %d too old, nothing else dropped", st, old*len(fx.names))
	}
	if got := e.metric(t, "perfhound_agent_forward_windows_dropped_total", map[string]string{"reason": "too_old"}); got != float64(old*len(fx.names)) {
		t.Errorf("dropped too_old %v, want %d", got, old*len(fx.names))
	}
	if n := strings.Count(e.logs.String(), "older than the ingestion window"); n != 1 {
		t.Errorf("the windows too old were logged %d times, want once:\n%s", n, e.logs)
	}
	if st.MaxHeld != 1 {
		t.Errorf("%d windows held at once, want 1", st.MaxHeld)
	}
	// A step lists the keys of one slice (1 min): at most 6 windows here.
	if st.MaxKeys > int64(6*len(fx.names)) {
		t.Errorf("a step listed %d keys, more than a slice's %d", st.MaxKeys, 6*len(fx.names))
	}
	pushes := map[int]bool{}
	for _, g := range acked {
		pushes[g.call] = true
	}
	if calls != len(pushes)+refused {
		t.Errorf("%d calls for %d pushes acknowledged and %d refused", calls, len(pushes), refused)
	}
	waitFor(t, r, "the gauge back to 0", func() bool {
		return e.metric(t, "perfhound_agent_forward_oldest_unsent_seconds", nil) == 0
	})
}

// TestInvalidNotRetried: a window the server refuses as invalid is
// dropped and counted with the reason, not tried again; the others go.
func TestInvalidNotRetried(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 3)
	now := time.Now().UTC().Truncate(10 * time.Second)
	const windows = 10
	fx.putBefore(t, e.st, now, windows, 10*time.Second)
	bad := fx.names[0]
	r := newReceiver()
	var badCalls atomic.Int64
	r.setAnswer(func(_ int, req *connect.Request[pushv1.PushRequest]) error {
		for _, l := range req.Msg.Series[0].Labels {
			if l.Name == "service_name" && l.Value == bad {
				badCalls.Add(1)
				return connect.NewError(connect.CodeInvalidArgument, errors.New("profile too old: not_in_ingestion_window"))
			}
		}
		return nil
	})
	f := e.start(t, newSink(t, serve(t, r), forward.SinkConfig{}, pyroscope.Options{}))
	waitFor(t, r, "every window settled", func() bool { st := f.Stats(); return st.Sent+st.Dropped >= windows*int64(len(fx.names)) })
	st := f.Stats()
	if st.Dropped != windows || st.Sent != windows*int64(len(fx.names)-1) || st.Failures != 0 {
		t.Errorf("stats %+v: want %d dropped, %d sent, no retries", st, windows, windows*(len(fx.names)-1))
	}
	if n := badCalls.Load(); n != windows {
		t.Errorf("the refused service's windows were pushed %d times, want once each (%d)", n, windows)
	}
	if got := e.metric(t, "perfhound_agent_forward_windows_dropped_total", map[string]string{"reason": "invalid_argument"}); got != windows {
		t.Errorf("dropped invalid_argument %v, want %d", got, windows)
	}
}

// TestRestartResumes: a new forwarder of the same sink on the same store
// sends what the first did not, and nothing the server acknowledged.
func TestRestartResumes(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 4)
	now := time.Now().UTC().Truncate(10 * time.Second)
	const windows = 20
	fx.putBefore(t, e.st, now, windows, 30*time.Second)
	// The server takes the first forwarder's first pushes and refuses
	// the rest of its pushes, told apart by their tenant, not by when
	// they arrive: a push the first forwarder gave up on when closed may
	// reach the server after the second has started.
	const first = 30
	var firstCalls atomic.Int64
	r := newReceiver()
	r.setAnswer(func(_ int, req *connect.Request[pushv1.PushRequest]) error {
		if req.Header().Get("X-Scope-OrgID") == "first" && firstCalls.Add(1) > first {
			return connect.NewError(connect.CodeUnavailable, errors.New("shutting down"))
		}
		return nil
	})
	url := serve(t, r)
	f1 := e.start(t, newSink(t, url, forward.SinkConfig{Tenant: "first"}, pyroscope.Options{}))
	waitFor(t, r, "the first forwarder stuck", func() bool { return f1.Stats().Failures >= 2 })
	f1.Close()
	if got := f1.Stats().Sent; got != first {
		t.Fatalf("the first forwarder sent %d, want %d", got, first)
	}
	f2 := e.start(t, newSink(t, url, forward.SinkConfig{Tenant: "second"}, pyroscope.Options{}))
	want := expected(t, e.st, now.Add(-time.Hour), now.Add(time.Hour))
	waitFor(t, r, "every window", func() bool { _, acked := r.snapshot(); return len(receivedWindows(acked)) >= len(want) })
	_, acked := r.snapshot()
	sameWindows(t, receivedWindows(acked), want)
	if got := f2.Stats().Sent; got != windows*int64(len(fx.names))-first {
		t.Errorf("the second forwarder sent %d, want the %d the first did not", got, windows*len(fx.names)-first)
	}
}

// storedWindow stores one window of the fixture a minute before now (the
// time returned, on a 10-s boundary) and reads it back as the forwarder
// sends it.
func storedWindow(t *testing.T, host string) (*env, time.Time, forward.Window) {
	t.Helper()
	e := newEnv(t)
	now := time.Now().UTC().Truncate(10 * time.Second)
	newFixture(t, 1).put(t, e.st, now.Add(-time.Minute))
	keys, err := e.st.Keys(now.Add(-time.Hour), now)
	if err != nil || len(keys) != 1 {
		t.Fatal(keys, err)
	}
	rec, err := e.st.Get(keys[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, now, forward.WindowOf(rec, host)
}

// TestProtocolsAndAuth pushes over each protocol (gRPC over h2c), with
// the tenant and each kind of auth.
func TestProtocolsAndAuth(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cr3t-t0ken-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, now, w := storedWindow(t, "h1")
	for _, tc := range []struct {
		protocol string
		auth     forward.Auth
		want     string
	}{
		{"connect", forward.Auth{BearerTokenFile: secret}, "Bearer s3cr3t-t0ken-0123456789"},
		{"grpc", forward.Auth{Username: "123", PasswordFile: secret}, "Basic " + base64.StdEncoding.EncodeToString([]byte("123:s3cr3t-t0ken-0123456789"))},
		{"grpcweb", forward.Auth{}, ""},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			r := newReceiver()
			s := newSink(t, serve(t, r), forward.SinkConfig{Protocol: tc.protocol, Tenant: "team-a", Auth: tc.auth}, pyroscope.Options{})
			if err := s.Send(context.Background(), w); err != nil {
				t.Fatal(err)
			}
			_, acked := r.snapshot()
			sameWindows(t, receivedWindows(acked), expected(t, e.st, now.Add(-time.Hour), now))
			h := r.headers[0]
			if h.Get("X-Scope-OrgID") != "team-a" || h.Get("Authorization") != tc.want {
				t.Errorf("headers %v: want X-Scope-OrgID team-a, Authorization %q", h, tc.want)
			}
			ct := h.Get("Content-Type")
			if wantCT := map[string]string{"connect": "application/proto", "grpc": "application/grpc", "grpcweb": "application/grpc-web"}[tc.protocol]; !strings.HasPrefix(ct, wantCT) {
				t.Errorf("content type %q, want %s", ct, wantCT)
			}
		})
	}
}

// TestSplitOverLimits: a profile over the server's limits arrives in
// several, each within them, together the stored one; a window over the
// request size in several pushes; labels within their limits.
func TestSplitOverLimits(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 1)
	now := time.Now().UTC().Truncate(10 * time.Second)
	fx.put(t, e.st, now.Add(-time.Minute))
	lim := pyroscope.Limits{MaxLabels: 7, MaxNameLength: 1024, MaxValueLength: 32, MaxProfileBytes: 6 << 10, MaxSamples: 20, MaxRequestBytes: 8 << 10}
	r := newReceiver()
	f := e.start(t, newSink(t, serve(t, r), forward.SinkConfig{}, pyroscope.Options{Limits: lim}))
	want := expected(t, e.st, now.Add(-time.Hour), now)
	waitFor(t, r, "the window", func() bool { return f.Stats().Sent == 1 })
	calls, acked := r.snapshot()
	sameWindows(t, receivedWindows(acked), want)
	ids := map[string]bool{}
	for _, g := range acked {
		var buf bytes.Buffer
		if err := g.p.WriteUncompressed(&buf); err != nil {
			t.Fatal(err)
		}
		if len(g.p.Sample) > lim.MaxSamples || buf.Len() > lim.MaxProfileBytes {
			t.Errorf("a profile of %d samples, %d bytes: over the limits", len(g.p.Sample), buf.Len())
		}
		if len(g.labels) != lim.MaxLabels || g.labels["cmdline"] != strings.Repeat("x", 32) || g.labels["env"] != "" {
			t.Errorf("labels %v: want 7, cmdline cut to 32 bytes, env left out (past the 7 in name order)", g.labels)
		}
		for k, v := range g.labels {
			if len(v) > lim.MaxValueLength {
				t.Errorf("label %s=%q over %d bytes", k, v, lim.MaxValueLength)
			}
		}
		if ids[g.id] {
			t.Errorf("sample ID %s twice", g.id)
		}
		ids[g.id] = true
	}
	if len(acked) < 4 || calls < 2 {
		t.Errorf("%d profiles in %d pushes: the limits split nothing", len(acked), calls)
	}
	t.Logf("one window: %d profiles in %d pushes", len(acked), calls)
}

// TestSlowReceiver: a receiver that does not answer does not slow
// collection: storing windows and telling the forwarder never waits on it.
func TestSlowReceiver(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 2)
	release := make(chan struct{})
	r := newReceiver()
	r.setAnswer(func(int, *connect.Request[pushv1.PushRequest]) error { <-release; return nil })
	f := e.start(t, newSink(t, serve(t, r), forward.SinkConfig{}, pyroscope.Options{}))
	now := time.Now().UTC().Truncate(10 * time.Second)
	fx.put(t, e.st, now.Add(-time.Hour/2))
	f.Notify()
	waitFor(t, r, "a push in flight", func() bool { calls, _ := r.snapshot(); return calls >= 1 })
	for i := range 50 {
		fx.put(t, e.st, now.Add(-time.Hour/2+time.Duration(i+1)*10*time.Second))
		f.Notify()
	}
	calls, _ := r.snapshot()
	if calls != 1 {
		t.Errorf("%d pushes while the first was unanswered", calls)
	}
	close(release)
	want := expected(t, e.st, now.Add(-time.Hour), now)
	waitFor(t, r, "every window once it answers", func() bool { _, acked := r.snapshot(); return len(receivedWindows(acked)) >= len(want) })
}

// TestMTLS pushes over https to a server that demands a client
// certificate signed by its CA: with the sink's certificate the push is
// acknowledged; without one it is unavailable (retried, not dropped).
func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "perfhound test CA", true)
	srvCert, srvKey := newCert(t, ca, caKey, "127.0.0.1", false)
	cliCert, cliKey := newCert(t, ca, caKey, "agent", false)
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	certFile := write("client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: cliCert.Raw})
	keyFile := write("client.key", keyBlock(t, cliKey))

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	r := newReceiver()
	srv := httptest.NewUnstartedServer(r.handler())
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}
	srv.EnableHTTP2 = true // gRPC
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	e, now, w := storedWindow(t, "")
	for _, protocol := range []string{"connect", "grpc"} {
		noCert := newSink(t, srv.URL, forward.SinkConfig{Protocol: protocol, TLS: forward.TLS{CAFile: caFile}}, pyroscope.Options{})
		if err := noCert.Send(context.Background(), w); !errors.Is(err, forward.ErrUnavailable) {
			t.Errorf("%s without a client certificate: %v, want unavailable", protocol, err)
		}
		s := newSink(t, srv.URL, forward.SinkConfig{Protocol: protocol, TLS: forward.TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}}, pyroscope.Options{})
		if err := s.Send(context.Background(), w); err != nil {
			t.Fatalf("%s with the client certificate: %v", protocol, err)
		}
	}
	_, acked := r.snapshot()
	want := expected(t, e.st, now.Add(-time.Hour), now)
	got := receivedWindows(acked[:len(acked)/2])
	sameWindows(t, got, want)
	if len(acked) != 2*len(w.Profiles) {
		t.Errorf("%d profiles acknowledged, want %d (two pushes with the certificate)", len(acked), 2*len(w.Profiles))
	}
}

// newCert makes a certificate for name signed by parent (self-signed
// when nil), an ECDSA key with it.
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func keyBlock(t *testing.T, k *ecdsa.PrivateKey) *pem.Block {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}

// TestMeasureStore forwards the last hour of a real agent's store (a
// copy of PERFHOUND_FORWARD_STORE, a perfhound.db) to the API's handler
// and says what it cost on the wire: the sizing of docs/fleet.md.
//
//	PERFHOUND_FORWARD_STORE=/var/lib/perfhound/perfhound.db go test -run TestMeasureStore -v ./agent/forward/pyroscope
func TestMeasureStore(t *testing.T) {
	src := os.Getenv("PERFHOUND_FORWARD_STORE")
	if src == "" {
		t.Skip("set PERFHOUND_FORWARD_STORE to a perfhound.db to measure")
	}
	dir := t.TempDir()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, store.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.Options{Rollups: []store.Rollup{}, MaxAge: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newest, _, err := st.Newest()
	if err != nil || newest.IsZero() {
		t.Fatalf("an empty store: %v", err)
	}
	from := newest.Add(-time.Hour)
	keys, err := st.Keys(from, newest.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	starts := map[int64]bool{}
	var span time.Duration
	for _, k := range keys {
		starts[k.Start.UnixNano()] = true
	}
	r := newReceiver()
	sink := newSink(t, serve(t, r), forward.SinkConfig{}, pyroscope.Options{})
	clock := func() time.Time { return newest.Add(time.Second) }
	f, err := forward.Start(forward.Options{Name: "measure", Sink: sink, Store: st, Now: clock, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitFor(t, r, "the last hour sent", func() bool { s := f.Stats(); return s.Sent+s.Dropped+s.Skipped >= int64(len(keys)) || s.Failures > 0 })
	s := f.Stats()
	if s.Failures > 0 || s.Dropped > 0 {
		t.Fatalf("stats %+v", s)
	}
	// The windows' spacing: the last one may have been cut short.
	if len(starts) > 1 {
		span = keys[len(keys)-1].Start.Sub(keys[0].Start) / time.Duration(len(starts)-1)
	}
	r.mu.Lock()
	body := r.body
	r.mu.Unlock()
	perHostWindow := float64(body) / float64(len(starts))
	t.Logf("%s: %d service windows in %d windows of %s over the last hour (%d sent with profiles); profiles %d bytes, requests %d bytes: %.0f bytes a window, %.0f a service window, %.1f MB a day at this rate",
		src, len(keys), len(starts), span, s.Sent, sink.BytesSent(), body, perHostWindow, float64(body)/float64(s.Sent),
		float64(body)/float64(len(starts))*float64(24*time.Hour/max(span, time.Second))/1e6)
}

// TestRelabel: a sink's relabel_configs (agent/forward/relabel) run on
// every window before it is sent: a service dropped by a rule never
// reaches the server and is counted under the rule's reason, and a
// label a rule writes is on what the others send.
func TestRelabel(t *testing.T) {
	e := newEnv(t)
	fx := newFixture(t, 3)
	now := time.Now().UTC().Truncate(10 * time.Second)
	const windows = 5
	fx.putBefore(t, e.st, now, windows, 10*time.Second)
	dropped := fx.names[0]
	regex, team := dropped, "payments"
	r, err := relabel.New(relabel.Config{RelabelConfigs: []relabel.Rule{
		{SourceLabels: []string{"service_name"}, Regex: &regex, Action: "drop"},
		{TargetLabel: "team", Replacement: &team},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newReceiver()
	f, err := forward.Start(forward.Options{
		Name: "pyro", Sink: newSink(t, serve(t, rec), forward.SinkConfig{}, pyroscope.Options{}), Store: e.st, Metrics: e.m,
		Relabel: r.Apply, Log: slog.New(slog.NewTextHandler(e.logs, nil)),
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	waitFor(t, rec, "every window settled", func() bool { st := f.Stats(); return st.Sent+st.Dropped >= windows*int64(len(fx.names)) })
	_, acked := rec.snapshot()
	for _, g := range acked {
		if g.labels["service_name"] == dropped || g.labels["team"] != team {
			t.Fatalf("sent %v: want no %s, and team=%s on the rest", g.labels, dropped, team)
		}
	}
	if len(acked) == 0 {
		t.Fatal("nothing sent")
	}
	if got := e.metric(t, "perfhound_agent_forward_windows_dropped_total", map[string]string{"reason": relabel.ReasonDropped}); got != windows {
		t.Errorf("dropped %s %v, want %d", relabel.ReasonDropped, got, windows)
	}
}

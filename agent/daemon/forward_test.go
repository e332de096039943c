package daemon

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/agent/forward/otlp"
	"github.com/perfhound/perfhound/agent/forward/relabel"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
)

// pushCounter is Pyroscope's push.v1 handler counting the on-CPU
// series it acknowledged.
type pushCounter struct {
	mu sync.Mutex
	n  int
}

func (p *pushCounter) Push(_ context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range req.Msg.Series {
		for _, l := range s.Labels {
			if l.Name == "__name__" && l.Value == "process_cpu" {
				p.n++
			}
		}
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func (p *pushCounter) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func servePushes(t *testing.T) (*pushCounter, string) {
	p := &pushCounter{}
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(p))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// TestSinksReload: a reload that moves a sink to another URL keeps its
// forwarder and cursor (the windows stored before and after arrive, each
// once, where the sink pointed when it sent them); one that removes it
// stops it; a sink of an unknown type is refused before anything changes.
func TestSinksReload(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	host, err := observation.Load("../store/testdata/host-window")
	if err != nil {
		t.Fatal(err)
	}
	h := procrank.NewHost(host)
	var svc *observation.Observation
	for _, p := range h.Rank() {
		if o := h.Split(p.PID); len(o.ProfilesOf(observation.KindCPU)) > 0 {
			svc = o
			break
		}
	}
	now := time.Now().UTC().Truncate(10 * time.Second)
	put := func(start time.Time) {
		o := *svc
		o.Meta.Start = start
		if err := st.Put(store.Batch{Records: []store.Record{{Service: "api", Version: "v1", Obs: &o}}}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Daemon{store: st, log: slog.New(slog.DiscardHandler), fwdMetrics: forward.NewMetrics(prometheus.NewRegistry())}
	defer d.closeSinks()

	a, urlA := servePushes(t)
	b, urlB := servePushes(t)
	for i := range 3 {
		put(now.Add(-time.Duration(10-i) * time.Minute))
	}
	sinks, err := buildSinks([]forward.SinkConfig{{Name: "p", Type: "pyroscope", URL: urlA}})
	if err != nil {
		t.Fatal(err)
	}
	d.applySinks(sinks)
	f := d.fwd["p"]
	wait(t, "3 windows sent to A", func() bool { return f.Stats().Sent == 3 })
	atA := a.count()
	if atA < 3 {
		t.Fatalf("A received %d on-CPU profiles of 3 windows", atA)
	}

	if _, err := buildSinks([]forward.SinkConfig{{Name: "p", Type: "parca", URL: urlB}}); err == nil {
		t.Fatal("a sink of an unknown type was built")
	}
	sinks, err = buildSinks([]forward.SinkConfig{{Name: "p", Type: "pyroscope", URL: urlB}})
	if err != nil {
		t.Fatal(err)
	}
	d.applySinks(sinks)
	if d.fwd["p"] != f {
		t.Fatal("a reload replaced the sink's forwarder")
	}
	for i := range 2 {
		put(now.Add(-time.Duration(5-i) * time.Minute))
	}
	d.notifySinks()
	wait(t, "2 more windows sent", func() bool { return f.Stats().Sent == 5 })
	if a.count() != atA || b.count() != atA*2/3 {
		t.Errorf("A has %d profiles, B %d: want A's %d unchanged, B 2 windows' worth", a.count(), b.count(), atA)
	}

	d.applySinks(nil)
	if len(d.fwd) != 0 || len(*d.fwdList.Load()) != 0 {
		t.Errorf("a removed sink still runs: %v", d.fwd)
	}
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		<-tick.C
	}
}

// TestBuildSinks makes a sink of each type from its config, with its
// relabeling: a rule that drops a label's value drops the window, with
// the relabeling's reason; the rest pass with their labels.
func TestBuildSinks(t *testing.T) {
	drop := "staging"
	sinks, err := buildSinks([]forward.SinkConfig{
		{Name: "p", Type: forward.TypePyroscope, URL: "http://127.0.0.1:4040"},
		{Name: "o", Type: forward.TypeOTLP, URL: "http://127.0.0.1:4317", Protocol: "grpc",
			Relabel: relabel.Config{RelabelConfigs: []relabel.Rule{{SourceLabels: []string{"env"}, Regex: &drop, Action: "drop"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sinks) != 2 {
		t.Fatalf("%d sinks", len(sinks))
	}
	o, ok := sinks[1].sink.(*otlp.Sink)
	if !ok {
		t.Fatalf("the otlp sink is a %T", sinks[1].sink)
	}
	defer o.Close()
	at := time.Now()
	if _, keep, reason := sinks[1].relabel(map[string]string{"service_name": "shop", "env": "staging"}, at); keep || reason != relabel.ReasonDropped {
		t.Errorf("env=staging: keep %v (%s), want dropped", keep, reason)
	}
	if out, keep, _ := sinks[1].relabel(map[string]string{"service_name": "shop", "env": "prod"}, at); !keep || out["env"] != "prod" {
		t.Errorf("env=prod: %v keep %v", out, keep)
	}
	if _, err := buildSinks([]forward.SinkConfig{{Name: "x", Type: "kafka", URL: "http://h"}}); err == nil {
		t.Error("a sink of an unknown type was made")
	}
}

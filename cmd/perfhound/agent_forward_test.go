package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

// pushed is what a Pyroscope push.v1 handler received: each series's
// labels and profiles.
type pushed struct {
	mu     sync.Mutex
	series []pushedSeries
}

type pushedSeries struct {
	labels   map[string]string
	profiles []*profile.Profile
}

func (p *pushed) Push(_ context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	var got []pushedSeries
	for _, s := range req.Msg.Series {
		ps := pushedSeries{labels: map[string]string{}}
		for _, l := range s.Labels {
			ps.labels[l.Name] = l.Value
		}
		for _, r := range s.Samples {
			pr, err := profile.ParseData(r.RawProfile)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, err)
			}
			ps.profiles = append(ps.profiles, pr)
		}
		got = append(got, ps)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.series = append(p.series, got...)
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// find is the first series received whose labels hold want, and whose
// profiles have a sample in fn.
func (p *pushed) find(want map[string]string, fn string) (pushedSeries, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.series {
		ok := true
		for k, v := range want {
			ok = ok && s.labels[k] == v
		}
		if !ok {
			continue
		}
		for _, pr := range s.profiles {
			if hasFunction(pr, fn) {
				return s, true
			}
		}
	}
	return pushedSeries{}, false
}

// TestAgentForwardsSDK is the path through the agent: an
// application instrumented with the real pyroscope-go SDK pushes to the
// agent's /ingest, and the agent forwards its windows to a Pyroscope
// server (the API module's own push.v1 handler, here in the test): the
// application arrives under its name, with the SDK's tags, as Pyroscope's
// process_cpu and memory profiles with its functions in them.
func TestAgentForwardsSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	rec := &pushed{}
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(rec))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeFile(t, filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf(
		"forward:\n  sinks:\n    - name: pyroscope\n      type: pyroscope\n      url: %s\n", srv.URL)))

	app := buildPyroapp(t)
	a := startAgent(t, "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
		"--window", "1s", "--interval", "1s", "--no-ebpf")
	const name = "perfhound.forwardtest"
	p := startSubject(t, app, "-server", a.url, "-app", name, "-duration", "3s", "-cpu", "500ms")
	defer p.Process.Kill()
	for _, c := range []struct{ kind, fn string }{{"process_cpu", "main.burnCPU"}, {"memory", "main.churnAllocs"}} {
		want := map[string]string{"__name__": c.kind, "service_name": name, "fixture": "pyroapp"}
		a.waitFor(t, fmt.Sprintf("a %s profile of %s with %s at the Pyroscope server", c.kind, name, c.fn), func() (bool, string) {
			_, ok := rec.find(want, c.fn)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return ok, fmt.Sprintf("%d series received", len(rec.series))
		})
	}
	if v := a.metric(t, `perfhound_agent_forward_windows_sent_total{sink="pyroscope"}`); v < 1 {
		t.Errorf("perfhound_agent_forward_windows_sent_total %v", v)
	}
}

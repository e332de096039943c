package diagnose

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// failing answers 500, as a service whose handler errors does.
func failing(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// cutShort promises a body, sends part of it and drops the connection, as
// a service that crashes or is killed mid-answer does.
func cutShort(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", "4096")
	w.WriteHeader(http.StatusOK)
	w.Write(make([]byte, 100))
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// pprofServer is a real HTTP server on loopback serving net/http/pprof's
// index and command line, and the given handlers for the rest (/debug/vars
// and /metrics included); anything else is 404.
func pprofServer(t *testing.T, handlers map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/{$}", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	for path, h := range handlers {
		mux.HandleFunc(path, h)
	}
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// TestWatchURLWithoutData watches a service whose pprof index answers but
// whose every profile and statistic fails: the window yields nothing of
// the target, and that is an error naming each endpoint and why, not a
// verdict on the host.
func TestWatchURLWithoutData(t *testing.T) {
	s := pprofServer(t, map[string]http.HandlerFunc{
		"/debug/pprof/profile":   failing,
		"/debug/pprof/heap":      cutShort,
		"/debug/pprof/allocs":    failing,
		"/debug/pprof/goroutine": cutShort,
		"/debug/pprof/block":     failing,
		"/debug/pprof/mutex":     failing,
		"/debug/vars":            failing,
		"/metrics":               failing,
	})
	o, err := Watch(context.Background(), Options{URL: s.URL, Duration: time.Second, Interval: MinProcessInterval})
	if !errors.Is(err, ErrNoData) {
		t.Fatalf("Watch: %v, want ErrNoData", err)
	}
	t.Logf("%v", err)
	for _, want := range []string{
		"was collected from " + s.URL + " in the window",
		"500 Internal Server Error at " + s.URL + "/debug/pprof/profile?seconds=1",
		"at " + s.URL + "/debug/pprof/heap",
		"500 Internal Server Error at " + s.URL + "/debug/pprof/allocs",
		"at " + s.URL + "/debug/pprof/goroutine",
		"500 Internal Server Error at " + s.URL + "/debug/pprof/block",
		"500 Internal Server Error at " + s.URL + "/debug/pprof/mutex",
		"500 Internal Server Error at " + s.URL + "/debug/vars",
		"connection closed by the server after 100 bytes of the body",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if o == nil || o.HasTargetData() {
		t.Errorf("the observation: %v, want one without the target's data", o)
	}
}

// TestWatchURLPartialData watches a service of which only the CPU and
// goroutine profiles arrive: the verdict stands on them, and each failure
// is in the observation's Missing.
func TestWatchURLPartialData(t *testing.T) {
	s := pprofServer(t, map[string]http.HandlerFunc{
		"/debug/pprof/profile":   pprof.Profile,
		"/debug/pprof/goroutine": pprof.Handler("goroutine").ServeHTTP,
		"/debug/pprof/heap":      cutShort,
		"/debug/pprof/allocs":    failing,
		"/debug/pprof/block":     failing,
		"/debug/pprof/mutex":     failing,
		"/debug/vars":            failing,
	})
	// eBPF asked for, as the CLI does by default: a service not on this
	// host (the test process's own listener counts as not) is not watched
	// by it, and Missing says why, not that it was not requested.
	o, err := Watch(context.Background(), Options{URL: s.URL, Duration: time.Second, Interval: MinProcessInterval, EBPF: true})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	var ebpf []string
	for _, m := range o.Missing {
		if m.Signal == observation.SignalEBPF {
			ebpf = append(ebpf, m.Reason)
		}
	}
	if len(ebpf) != 1 || !strings.Contains(ebpf[0], "does not listen on this host") {
		t.Errorf("missing ebpf: %q, want the one reason it did not watch the service", ebpf)
	}
	if len(o.ProfilesOf(observation.KindCPU)) != 1 || len(o.ProfilesOf(observation.KindGoroutine)) != 1 {
		t.Errorf("profiles %v, want the CPU and goroutine ones", o.Profiles)
	}
	missing := map[string]string{}
	for _, m := range o.Missing {
		missing[string(m.Signal)] = m.Reason
	}
	for signal, want := range map[string]string{
		"pprof.heap":   "connection closed by the server after 100 bytes of the body at " + s.URL + "/debug/pprof/heap",
		"pprof.allocs": "500 Internal Server Error at " + s.URL + "/debug/pprof/allocs",
		"pprof.block":  "500 Internal Server Error at " + s.URL + "/debug/pprof/block",
		"pprof.mutex":  "500 Internal Server Error at " + s.URL + "/debug/pprof/mutex",
		"go.expvar":    s.URL + "/debug/vars",
	} {
		if !strings.Contains(missing[signal], want) {
			t.Errorf("missing %s: %q, want it to say %q", signal, missing[signal], want)
		}
	}
	v := verdict.Judge(o, verdict.DefaultThresholds())
	if strings.Contains(v.Summary, "Nothing of the target") {
		t.Errorf("a verdict on the profiles that arrived says %q", v.Summary)
	}
}

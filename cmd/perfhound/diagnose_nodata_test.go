package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"strings"
	"testing"
)

// brokenPprof is a real HTTP server on loopback whose net/http/pprof index
// answers and whose other endpoints are the given handlers, or else fail:
// 500, or a body cut short by a dropped connection.
func brokenPprof(t *testing.T, working map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	fail := func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
	cut := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		w.Write(make([]byte, 100))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	handlers := map[string]http.HandlerFunc{
		"/debug/pprof/profile": fail, "/debug/pprof/heap": cut, "/debug/pprof/allocs": fail,
		"/debug/pprof/goroutine": cut, "/debug/pprof/block": fail, "/debug/pprof/mutex": fail,
		"/debug/vars": fail, "/metrics": fail,
	}
	for p, h := range working {
		handlers[p] = h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/{$}", pprof.Index)
	for p, h := range handlers {
		mux.HandleFunc(p, h)
	}
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// TestDiagnoseURLWithoutData: every fetch of the service failing is a
// target that could not be watched (exit 2, each endpoint and why), not a
// verdict on the host; a service of which some profiles arrived gets its
// verdict, with the failures in Missing.
func TestDiagnoseURLWithoutData(t *testing.T) {
	s := brokenPprof(t, nil)
	code, out, errb := runCLI(t, "diagnose", "--url", s.URL, "-d", "1s", "--interval", "750ms", "-f", "json")
	if code != exitBadInput {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitBadInput, out, errb)
	}
	if out != "" {
		t.Errorf("a diagnosis without data printed a report:\n%s", out)
	}
	for _, want := range []string{"nothing of the target was collected from " + s.URL,
		"pprof.cpu: 500 Internal Server Error at " + s.URL + "/debug/pprof/profile",
		"pprof.heap: connection closed by the server after 100 bytes of the body at " + s.URL + "/debug/pprof/heap",
		"/debug/pprof/allocs", "/debug/pprof/goroutine", "/debug/pprof/block", "/debug/pprof/mutex", "/debug/vars"} {
		if !strings.Contains(errb, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errb)
		}
	}

	partial := brokenPprof(t, map[string]http.HandlerFunc{"/debug/pprof/profile": pprof.Profile})
	code, out, errb = runCLI(t, "diagnose", "--url", partial.URL, "-d", "1s", "--interval", "750ms", "-f", "json")
	if code != exitOK {
		t.Fatalf("exit %d with a CPU profile, want %d\nstderr: %s", code, exitOK, errb)
	}
	d := parseDiagnosis(t, out)
	signals := map[string]bool{}
	for _, m := range d.Verdict.Missing {
		signals[m.Signal] = true
	}
	for _, s := range []string{"pprof.heap", "pprof.allocs", "pprof.goroutine", "pprof.block", "pprof.mutex", "go.expvar"} {
		if !signals[s] {
			t.Errorf("the verdict's missing %v lacks %s", signals, s)
		}
	}
}

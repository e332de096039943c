package api

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUI checks pprof's UI over a service's range: the index lists the
// merged profiles, and the flame graph of one renders.
func TestUI(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	base := "/" + uiPath("locks", testNow.Add(-time.Hour), testNow)
	a := get(t, ts, base)
	if a.status != 200 || !strings.Contains(string(a.body), `href="profile/0/flamegraph"`) {
		t.Fatalf("index: %d %.500s", a.status, a.body)
	}
	// contention-go-mutex has 9 profiles (pprof's six, eBPF's three):
	// merged over the windows, still nine.
	if n := strings.Count(string(a.body), "/flamegraph"); n != 9 {
		t.Errorf("index links %d flame graphs, want 9", n)
	}
	a = get(t, ts, base+"profile/0/flamegraph")
	if a.status != 200 || !strings.Contains(string(a.body), "<html") {
		t.Errorf("flame graph: %d %.300s", a.status, a.body)
	}
	// pprof's config menu reaches pprofui, which checks the method.
	resp, err := ts.Client().Post(ts.URL+base+"profile/0/deleteconfig", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "DELETE" {
		t.Errorf("POST deleteconfig: %d (Allow %q), want pprofui's 405 asking for DELETE", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// Without the slash, to the index (its links are relative).
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(ts.URL + strings.TrimSuffix(base, "/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "./"+stamp(testNow)+"/" {
		t.Errorf("without the slash: %d to %q", resp.StatusCode, loc)
	}
}

// TestUIServiceName checks that a service name with a slash or a space
// reaches its UI.
func TestUIServiceName(t *testing.T) {
	src := &fixtureSource{}
	src.add(t, "a/b c@x.service", "1", "cpu-hash", testNow.Add(-time.Minute), 2)
	_, ts := newTestServer(t, src, Options{})
	a := get(t, ts, "/"+uiPath("a/b c@x.service", testNow.Add(-time.Hour), testNow))
	if a.status != 200 || !strings.Contains(string(a.body), "flamegraph") {
		t.Errorf("%d %.300s", a.status, a.body)
	}
}

// TestUICache checks that the UIs kept are bounded, that an evicted one
// is closed and built again when asked for, and that concurrent requests
// for one range build it once.
func TestUICache(t *testing.T) {
	src := newTestSource(t)
	s, ts := newTestServer(t, src, Options{UICache: 1})
	first := "/" + uiPath("shop", testNow.Add(-time.Hour), testNow)
	second := "/" + uiPath("shop", testNow.Add(-3*time.Hour), testNow)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if a := get(t, ts, first); a.status != 200 {
				t.Errorf("first: %d %s", a.status, a.body)
			}
		})
	}
	wg.Wait()
	if n := src.loads.Load(); n != windowsPerVersion {
		t.Errorf("4 concurrent requests decoded %d windows, want one build's %d", n, windowsPerVersion)
	}
	if a := get(t, ts, second); a.status != 200 {
		t.Fatalf("second: %d %s", a.status, a.body)
	}
	if n := s.uis.open(); n != 1 {
		t.Errorf("%d UIs open with a cache of 1", n)
	}
	before := src.loads.Load()
	if a := get(t, ts, first); a.status != 200 {
		t.Fatalf("first again: %d %s", a.status, a.body)
	}
	if src.loads.Load() == before {
		t.Errorf("the evicted UI was not built again")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if a := get(t, ts, first); a.status != 503 {
		t.Errorf("after Close: %d, want 503", a.status)
	}
}

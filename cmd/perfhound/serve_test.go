package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const serveFixture = "../../fixtures/observations/contention-go-mutex"

// syncBuffer is a bytes.Buffer that the server's goroutines and the test
// can share.
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

func httpGet(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	// pprof must write nothing under HOME; keep it away from the real one.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveFixture, nil, "127.0.0.1:0", &stderr, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve returned before serving: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start in 10s")
	}
	base := "http://" + addr

	want := "serving 9 profiles of /tmp/tmp.XF8Le6kNb6/workloads -mode mutex -pprof 127.0.0.1:16060 -duration 8s at " + base + "/ (Ctrl-C to stop)\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr:\n%q\nwant\n%q", got, want)
	}
	if code, body := httpGet(t, base+"/", ""); code != http.StatusOK || !strings.Contains(body, `href="profile/6/flamegraph"`) {
		t.Errorf("GET /: %d\n%s", code, body)
	}
	if code, body := httpGet(t, base+"/profile/6/top", ""); code != http.StatusOK || !strings.Contains(body, "main.contend.func1") {
		t.Errorf("GET /profile/6/top: %d, or it lacks main.contend.func1", code)
	}
	if code, _ := httpGet(t, base+"/profile/6/top", "localhost"+addr[strings.LastIndex(addr, ":"):]); code != http.StatusOK {
		t.Errorf("GET with Host localhost: %d, want 200", code)
	}
	// A page whose domain was rebound to 127.0.0.1 sends its own name.
	if code, _ := httpGet(t, base+"/", "evil.example"); code != http.StatusForbidden {
		t.Errorf("GET with Host evil.example: %d, want 403", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop in 10s after cancel")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("still listening on %s after shutdown", addr)
	}
}

func TestServeBadInput(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	if c, _, err := root.Find([]string{"serve"}); err != nil || c.Name() != "serve" {
		t.Fatal("serve is not a command yet: add root.AddCommand(newServe()) in newRoot (run.go)")
	}
	notObs := t.TempDir()
	file := writeFile(t, filepath.Join(t.TempDir(), "cpu.pb.gz"), []byte("x"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "/nonexistent"}, "/nonexistent: no such directory"},
		{[]string{"serve", notObs}, notObs + ": not a perfhound observation"},
		{[]string{"serve", file}, file + " is a file"},
		{[]string{"serve"}, "Run 'perfhound --help'"},
		{[]string{"serve", "--listen", "127.0.0.1:bogus", serveFixture}, "listening"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != exitBadInput || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: code %d (want %d), stderr %q (want %q in it)", c.args, code, exitBadInput, errb.String(), c.want)
		}
	}
}

func TestLoopbackHosts(t *testing.T) {
	h := loopbackHostsOnly(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for host, want := range map[string]int{
		"127.0.0.1:8080":         http.StatusOK,
		"[::1]:8080":             http.StatusOK,
		"localhost:8080":         http.StatusOK,
		"LocalHost":              http.StatusOK,
		"127.1.2.3":              http.StatusOK,
		"evil.example:8080":      http.StatusForbidden,
		"192.168.1.5:8080":       http.StatusForbidden,
		"localhost.evil.example": http.StatusForbidden,
		"":                       http.StatusForbidden,
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "0.0.0.0:80": false, "[::]:80": false, "10.0.0.1:80": false} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := isLoopback(a); got != want {
			t.Errorf("isLoopback(%s) = %v", addr, got)
		}
	}
}

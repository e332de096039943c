package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// deadline bounds every wait of these tests: generous, for a busy runner.
const deadline = 30 * time.Second

// outcomes counts what became of the events, and says when.
type outcomes struct {
	mu     sync.Mutex
	counts map[Outcome]int
	ch     chan Outcome
}

func newOutcomes() *outcomes {
	return &outcomes{counts: map[Outcome]int{}, ch: make(chan Outcome, 10000)}
}

func (o *outcomes) record(x Outcome) {
	o.mu.Lock()
	o.counts[x]++
	o.mu.Unlock()
	o.ch <- x
}

func (o *outcomes) get(x Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[x]
}

// wait waits for n outcomes.
func (o *outcomes) wait(t *testing.T, n int) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for range n {
		select {
		case <-o.ch:
		case <-timer.C:
			t.Fatalf("waited %s for %d outcomes: %v", deadline, n, o.counts)
		}
	}
}

func testFinding(id string) regress.Finding {
	return regress.Finding{ID: id, Service: "shop", Kind: regress.KindVersion, Function: "main.parse",
		BaseVersion: "v1", HeadVersion: "v2", ChangePct: 11, PValue: 3e-6,
		DetectedAt: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
}

// tokenFile writes a token file of mode 0600.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRetries: a webhook that fails its first two tries gets the event on
// the third, with the token and the payload; one that always fails gets
// MaxAttempts tries; one that refuses (400) gets one; a redirect is not
// followed. The token and the URL's path are never in the log.
func TestRetries(t *testing.T) {
	const token = "s3cret-token-0123456789"
	const secretPath = "/hooks/T000-B000-secretpath"
	var (
		mu     sync.Mutex
		tries  = map[string]int{}
		bodies []Payload
		auth   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("a %s request of %s: %v", r.Method, r.Header.Get("Content-Type"), err)
		}
		mu.Lock()
		tries[p.Regression.ID]++
		n := tries[p.Regression.ID]
		bodies = append(bodies, p)
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case p.Regression.ID == "flaky" && n <= 2:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case p.Regression.ID == "down":
			http.Error(w, "down", http.StatusBadGateway)
		case p.Regression.ID == "refused":
			http.Error(w, "bad", http.StatusBadRequest)
		case p.Regression.ID == "moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	out := newOutcomes()
	w, err := New(Options{
		Target:  Target{URL: srv.URL + secretPath, TokenFile: tokenFile(t, token), MaxAttempts: 4},
		Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Log:     slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil)),
		Outcome: out.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, id := range []string{"flaky", "down", "refused", "moved"} {
		w.Send(Raised, testFinding(id))
	}
	w.Send(Resolved, testFinding("flaky"))
	out.wait(t, 5)

	mu.Lock()
	defer mu.Unlock()
	// flaky: 3 tries raised, then 1 resolved (its count goes on).
	if tries["flaky"] != 4 || tries["down"] != 4 || tries["refused"] != 1 || tries["moved"] != 1 {
		t.Errorf("tries %v, want flaky 3+1, down 4 (MaxAttempts), refused 1, moved 1", tries)
	}
	if out.get(Delivered) != 2 || out.get(Failed) != 3 {
		t.Errorf("outcomes %v, want 2 delivered, 3 failed", out.counts)
	}
	for i, a := range auth {
		if a != "Bearer "+token {
			t.Fatalf("request %d: Authorization %q", i, a)
		}
	}
	// In order: the events of one finding as they happened.
	last := bodies[len(bodies)-1]
	if last.Event != Resolved || last.Regression.ID != "flaky" || bodies[0].Event != Raised || bodies[0].Regression.PValue != 3e-6 {
		t.Errorf("first %+v, last %+v", bodies[0], last)
	}
	logMu.Lock()
	defer logMu.Unlock()
	text := logs.String()
	if strings.Contains(text, token) || strings.Contains(text, "secretpath") {
		t.Errorf("the log holds the token or the URL's path:\n%s", text)
	}
	if !strings.Contains(text, "status 502") || !strings.Contains(text, "attempt 4 of 4") || !strings.Contains(text, "not retried") {
		t.Errorf("the log does not say why events failed:\n%s", text)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// hangingServer answers nothing until the test ends; it says when a
// request arrived, and when one was given up by its client.
func hangingServer(t *testing.T) (srv *httptest.Server, arrived, abandoned chan struct{}) {
	arrived, abandoned = make(chan struct{}, 1000), make(chan struct{}, 1000)
	stop := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body: the server notices a client gone (and cancels
		// the request's context) only once it has.
		io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			abandoned <- struct{}{}
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv, arrived, abandoned
}

func waitFor(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("waited %s for %s", deadline, what)
	}
}

// TestHangingWebhook: a webhook that never answers holds one event at a
// time for Timeout per attempt; Send never waits for it, the queue stays
// at its bound by dropping its oldest events (counted), and each attempt
// is given up at the timeout.
func TestHangingWebhook(t *testing.T) {
	srv, arrived, abandoned := hangingServer(t)
	out := newOutcomes()
	w, err := New(Options{
		Target: Target{URL: srv.URL, Timeout: 50 * time.Millisecond, MaxAttempts: 2},
		Queue:  10, Backoff: time.Millisecond, Outcome: out.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Send(Raised, testFinding("first"))
	waitFor(t, arrived, "the first request") // the goroutine holds "first"
	// 1,000 events while it is stuck: Send returns at once (were it to
	// wait for the webhook, this would take 1,000 timeouts), 10 are
	// queued, 990 dropped.
	for i := range 1000 {
		w.Send(Raised, testFinding(fmt.Sprintf("e%d", i)))
	}
	if got := out.get(Dropped); got != 990 {
		t.Errorf("%d dropped of 1,000 sent into a queue of 10, want 990", got)
	}
	waitFor(t, abandoned, "the first attempt's timeout")
	waitFor(t, abandoned, "the second attempt's timeout")
	out.wait(t, 991) // the drops and "first" failed
	if out.get(Failed) != 1 {
		t.Errorf("outcomes %v, want first failed after its 2 attempts", out.counts)
	}
}

// TestClose: Close gives the queue CloseTimeout, then abandons the
// request in flight and drops what is left; it returns, and events sent
// after it are dropped.
func TestClose(t *testing.T) {
	srv, arrived, abandoned := hangingServer(t)
	out := newOutcomes()
	w, err := New(Options{
		Target: Target{URL: srv.URL, Timeout: time.Hour, MaxAttempts: 3},
		Queue:  10, CloseTimeout: 50 * time.Millisecond, Outcome: out.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Send(Raised, testFinding(fmt.Sprintf("e%d", i)))
	}
	waitFor(t, arrived, "the first request")
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	waitFor(t, closed, "Close")
	waitFor(t, abandoned, "the request in flight to be abandoned")
	w.Send(Raised, testFinding("late"))
	if got := out.get(Dropped); got != 6 {
		t.Errorf("%d dropped, want the 5 never delivered and the late one (outcomes %v)", got, out.counts)
	}
	w.Close() // twice is fine
}

// TestReconfigure: a reload points the next attempts elsewhere, keeping
// the queue; a bad target leaves the webhook as it was.
func TestReconfigure(t *testing.T) {
	var a, b atomic.Int64
	sa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.Add(1) }))
	defer sa.Close()
	sb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.Add(1) }))
	defer sb.Close()
	out := newOutcomes()
	w, err := New(Options{Target: Target{URL: sa.URL}, Outcome: out.record})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Send(Raised, testFinding("1"))
	out.wait(t, 1)
	if err := w.Reconfigure(Target{URL: "ftp://x"}); err == nil {
		t.Error("an ftp:// URL was taken")
	}
	if err := w.Reconfigure(Target{URL: sb.URL, TokenFile: filepath.Join(t.TempDir(), "none")}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("a missing token file: %v", err)
	}
	if err := w.Reconfigure(Target{URL: sb.URL}); err != nil {
		t.Fatal(err)
	}
	w.Send(Raised, testFinding("2"))
	out.wait(t, 1)
	if a.Load() != 1 || b.Load() != 1 {
		t.Errorf("requests: %d to the first URL, %d to the second; want 1 each", a.Load(), b.Load())
	}
}

func TestNewRefuses(t *testing.T) {
	loose := tokenFile(t, "s3cret-token-0123456789")
	os.Chmod(loose, 0o644)
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{URL: ""}, "http:// or https://"},
		{Target{URL: "127.0.0.1:9093/hook"}, "http:// or https://"},
		{Target{URL: "http:///hook"}, "http:// or https://"},
		{Target{URL: "http://127.0.0.1:9093/hook", TokenFile: loose}, "chmod 600"},
	} {
		w, err := New(Options{Target: c.t})
		if err == nil {
			w.Close()
			t.Errorf("%+v: taken", c.t)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%+v: %v, want %q", c.t, err, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	base, max := time.Second, time.Minute
	for i, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60} {
		want *= time.Second
		for range 100 {
			if got := Backoff(i+1, base, max); got > want || got < want/2 {
				t.Fatalf("after attempt %d: %s, want %s less at most half", i+1, got, want)
			}
		}
	}
}

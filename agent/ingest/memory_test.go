package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// postBody pushes body as app and returns the status and reason.
func postBody(t *testing.T, base, app string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/ingest?name="+app, "", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// TestHostileProfileRefused pushes profiles a few KB gzipped that parse
// into tens of MB: each is refused with 413 naming the cap it passes,
// before it is parsed.
func TestHostileProfileRefused(t *testing.T) {
	var recv Receiver
	base := serve(t, recv.Handler(Options{}), nil)
	for _, tc := range []struct {
		name string
		body []byte
		cap  string
	}{
		{"samples", testprof.GzipBest(testprof.ManySamples(300_000)), "samples"},
		{"locations", testprof.ManyLocations(100_000), "locations"},
	} {
		code, msg := postBody(t, base, "bomb", tc.body)
		if code != 413 || !strings.Contains(msg, tc.cap) {
			t.Errorf("%s: a %d-byte push of a hostile profile: %d %q, want 413 naming the %s cap", tc.name, len(tc.body), code, msg, tc.cap)
		}
	}
	if used := recv.Budget().Used(); used != 0 {
		t.Errorf("%d bytes still charged after refusing every push", used)
	}
}

// heldMemory is what the drained profiles cost, measured afresh from
// their encoding: a check of the receiver's accounting that does not
// trust it.
func heldMemory(t *testing.T, ps []*profile.Profile) int64 {
	var sum int64
	for _, p := range ps {
		var b bytes.Buffer
		if err := p.WriteUncompressed(&b); err != nil {
			t.Fatal(err)
		}
		sum += profdecode.Measure(b.Bytes()).Memory()
	}
	return sum
}

// TestReceiverMemoryBound pushes three times what the receiver may hold,
// profiles of about 1 MB parsed that are 3 KB gzipped: what it holds,
// measured from the profiles themselves, stays within its budget, its
// budget is never overdrawn, the application that pushed most lost its
// oldest profiles and says so while the other kept its share, and once
// drained nothing stays charged.
func TestReceiverMemoryBound(t *testing.T) {
	const max = 8 << 20
	recv := Receiver{MaxMemory: max}
	base := serve(t, recv.Handler(Options{}), nil)
	body := testprof.GzipBest(testprof.ManySamples(5000))
	for i := range 24 {
		app := "big"
		if i%4 == 3 {
			app = "small"
		}
		if code, msg := postBody(t, base, app, body); code != 200 {
			t.Fatalf("push %d of %s: %d %s", i, app, code, msg)
		}
		if used := recv.Budget().Used(); used > max {
			t.Fatalf("after push %d: %d bytes charged, budget %d", i, used, max)
		}
	}
	obs := recv.Drain()
	var all []*profile.Profile
	var missing []string
	for _, o := range obs {
		for _, p := range o.Profiles {
			all = append(all, p.Profile)
		}
		for _, m := range o.Missing {
			missing = append(missing, o.Meta.Target.App+": "+m.Reason)
		}
	}
	if held := heldMemory(t, all); held > max || len(all) == 24 {
		t.Errorf("held %d profiles of %d bytes in all, want fewer than the 24 pushed within %d", len(all), held, max)
	}
	// Max-min fairness: the application that pushed a quarter of the
	// profiles keeps (within one) half of what the budget holds.
	if len(obs) != 2 || len(obs[1].Profiles) < len(all)/2 || len(missing) == 0 || !strings.HasPrefix(missing[0], "big: dropped the oldest") {
		t.Errorf("%d targets, small holding %d of %d profiles, missing %q; want small to keep half and big's drops noted", len(obs), len(obs[len(obs)-1].Profiles), len(all), missing)
	}
	if used := recv.Budget().Used(); used != 0 {
		t.Errorf("%d bytes still charged after Drain", used)
	}
}

// TestFairEviction fills the budget from one application, then pushes
// from another: the newcomer is accepted at the expense of the biggest
// holder's oldest profiles, not refused after losing anything.
func TestFairEviction(t *testing.T) {
	recv := Receiver{MaxMemory: 4 << 20}
	base := serve(t, recv.Handler(Options{}), nil)
	body := testprof.GzipBest(testprof.ManySamples(5000))
	for i := range 8 {
		if code, msg := postBody(t, base, "hog", body); code != 200 {
			t.Fatalf("hog push %d: %d %s", i, code, msg)
		}
	}
	for i := range 2 {
		if code, msg := postBody(t, base, fmt.Sprintf("newcomer%d", i), body); code != 200 {
			t.Errorf("newcomer %d pushed while the hog held the budget: %d %s, want 200", i, code, msg)
		}
	}
	obs := recv.Drain()
	if len(obs) != 3 || obs[0].Meta.Target.App != "hog" || len(obs[0].Missing) != 1 {
		t.Fatalf("observations: %d, want the hog's with its drops noted and both newcomers'", len(obs))
	}
}

// TestConcurrentPushesAccounting pushes from four applications at once
// into a budget that holds about four of their profiles: every accepted
// push is held or counted as dropped, refusals are 503s that dropped
// nothing of their own, and once drained nothing stays charged.
func TestConcurrentPushesAccounting(t *testing.T) {
	recv := Receiver{MaxMemory: 6 << 20}
	base := serve(t, recv.Handler(Options{}), nil)
	body := testprof.GzipBest(testprof.ManySamples(5000))
	codes := make(chan int, 40)
	done := make(chan struct{})
	for a := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 10 {
				code, msg := postBody(t, base, fmt.Sprintf("app%d", a), body)
				if code != 200 && code != 503 {
					t.Errorf("%d %s", code, msg)
				}
				codes <- code
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(codes)
	accepted := 0
	for c := range codes {
		if c == 200 {
			accepted++
		}
	}
	held, dropped := 0, 0
	for _, o := range recv.Drain() {
		held += len(o.Profiles)
		for _, m := range o.Missing {
			var n int
			fmt.Sscanf(m.Reason, "dropped the oldest %d", &n)
			dropped += n
		}
	}
	t.Logf("%d of 40 pushes accepted, %d held, %d dropped", accepted, held, dropped)
	if held+dropped != accepted || held == 0 {
		t.Errorf("%d pushes accepted, %d held and %d dropped", accepted, held, dropped)
	}
	if used := recv.Budget().Used(); used != 0 {
		t.Errorf("%d bytes still charged after Drain", used)
	}
}

package ingest

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestActiveTargetsKeepPushing checks the target policy: past MaxTargets
// a new application is refused with 429, while every application that
// pushed in this window or the last keeps pushing, even when newcomers
// come first after a drain; one idle for a whole window gives its place.
func TestActiveTargetsKeepPushing(t *testing.T) {
	recv := Receiver{MaxTargets: 2}
	base := serve(t, recv.Handler(Options{}), nil)
	good := cpuProfileBytes(t, true)
	expect := func(window, app string, want int) {
		t.Helper()
		if code, msg := postBody(t, base, app, good); code != want {
			t.Errorf("%s: push of %s: %d %s, want %d", window, app, code, msg, want)
		}
	}
	expect("window 1", "a", 200)
	expect("window 1", "b", 200)
	expect("window 1", "c", 429)
	expect("window 1", "a", 200)
	recv.Drain()
	expect("window 2", "c", 429)
	expect("window 2", "d", 429)
	expect("window 2", "a", 200)
	recv.Drain() // b was idle for all of window 2
	expect("window 3", "c", 200)
	expect("window 3", "b", 429)
	expect("window 3", "a", 200)
}

// TestTargetsPerClient checks that one remote address cannot take every
// target's place, while this host's applications (loopback) are not
// held to a per-address share.
func TestTargetsPerClient(t *testing.T) {
	recv := Receiver{MaxTargets: 8, MaxTargetsPerClient: 2}
	push := func(client, app string) error {
		return recv.Receive(Push{App: app, Client: client, Profile: observation.Profile{Kind: observation.KindCPU}})
	}
	for _, app := range []string{"a", "b"} {
		if err := push("192.0.2.1", app); err != nil {
			t.Fatal(err)
		}
	}
	if err := push("192.0.2.1", "c"); err == nil {
		t.Error("a third application from one address was accepted past MaxTargetsPerClient 2")
	}
	if err := push("192.0.2.1", "a"); err != nil {
		t.Errorf("an application the address already pushes for: %v", err)
	}
	if err := push("192.0.2.2", "c"); err != nil {
		t.Errorf("another address: %v", err)
	}
	for _, app := range []string{"d", "e", "f"} {
		if err := push("127.0.0.1", app); err != nil {
			t.Errorf("loopback application %s: %v", app, err)
		}
	}
}

// TestOneClientCannotTakeAllSlots has one application hold a slot with a
// push its Sink blocks, and push again: the second waits for its
// client's share instead of taking the last slot, and another
// application's push goes through meanwhile.
func TestOneClientCannotTakeAllSlots(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan string, 4)
	h := NewHandler(Options{MaxConcurrent: 2, Sink: func(p Push) error {
		entered <- p.App
		if p.App == "hog" {
			<-release
		}
		return nil
	}})
	base := serve(t, h, nil)
	post := func(app string) int {
		resp, err := http.Post(base+"/ingest?name="+app, "", bytes.NewReader(cpuProfileBytes(t, true)))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	hog := make(chan int, 2)
	go func() { hog <- post("hog") }()
	if app := <-entered; app != "hog" {
		t.Fatalf("entered: %s", app)
	}
	go func() { hog <- post("hog") }()
	waitFor(t, "the hog's second push to wait for a slot", func() bool { return h.gate.waiting() == 1 })
	if code := post("other"); code != 200 {
		t.Errorf("another application while the hog held a slot and wanted the other: %d, want 200", code)
	}
	close(release)
	for range 2 {
		if code := <-hog; code != 200 {
			t.Errorf("hog: %d, want 200 once its first push was through", code)
		}
	}
}

// TestReceiverProfilesPerTarget checks MaxProfiles and what makes a
// target: past 3 profiles the oldest goes, noted; the library's scope
// label does not split a target, another label does.
func TestReceiverProfilesPerTarget(t *testing.T) {
	recv := Receiver{MaxProfiles: 3}
	push := func(labels map[string]string) {
		t.Helper()
		if err := recv.Receive(Push{App: "a", Labels: labels, Profile: observation.Profile{Kind: observation.KindCPU}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		push(map[string]string{"otel.scope.name": string(rune('0' + i))})
	}
	push(map[string]string{"region": "eu"})
	obs := recv.Drain()
	if len(obs) != 2 {
		t.Fatalf("%d targets, want 2: the scope label does not split a target, region does", len(obs))
	}
	if n := len(obs[0].Profiles); n != 3 || len(obs[0].Missing) != 1 {
		t.Errorf("target a: %d profiles and %v, want the newest 3 and a note of the 2 dropped", n, obs[0].Missing)
	}
	if _, ok := obs[0].Meta.Target.Labels["otel.scope.name"]; ok {
		t.Error("the scope label ended up on the target")
	}
	if len(recv.Drain()) != 0 {
		t.Error("a second Drain returned the same pushes")
	}
}

// TestGateOrder checks that a freed slot goes to the longest waiter that
// may take it, past one whose client is at its share.
func TestGateOrder(t *testing.T) {
	g := newGate(2, 1)
	ctx := context.Background()
	relA, err := g.acquire(ctx, "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	relB, err := g.acquire(ctx, "b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	wait := func(client string, n int) {
		go func() {
			if rel, err := g.acquire(ctx, client, time.Minute); err == nil {
				got <- client
				rel()
			}
		}()
		waitFor(t, client+" to queue", func() bool { return g.waiting() == n })
	}
	wait("a", 1) // a's second: its client is at its share until relA
	wait("c", 2)
	wait("d", 3)
	relB() // one slot frees: a may not take it, c came before d
	if first := <-got; first != "c" {
		t.Errorf("the freed slot went to %s, want c", first)
	}
	relA()
	for range 2 {
		<-got
	}
	if _, err := g.acquire(ctx, "e", time.Minute); err != nil {
		t.Errorf("after every release: %v", err)
	}
}

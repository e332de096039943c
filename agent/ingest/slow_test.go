package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing after a generous deadline:
// the wait ends on the event, never on a guess of how long it takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// trickle opens a connection that sends app's push headers, then its body
// one byte every 200 ms until the server hangs up. It returns what the
// server answered, once it has closed the connection.
func trickle(t *testing.T, addr, app string) <-chan string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /ingest?name=%s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", app)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{'x'}); err != nil {
				return
			}
		}
	}()
	answer := make(chan string, 1)
	go func() {
		defer close(done)
		b, _ := io.ReadAll(bufio.NewReader(conn)) // ends when the server closes
		line, _, _ := strings.Cut(string(b), "\r\n")
		answer <- line
	}()
	return answer
}

// TestTrickleLosesSlot fills every slot with connections that trickle
// their body at 5 bytes a second, far under the minimum rate: each is cut
// off with 408 and a closed connection, and a normal push sent meanwhile
// succeeds instead of being turned away.
func TestTrickleLosesSlot(t *testing.T) {
	var recv Receiver
	h := NewHandler(Options{
		MaxConcurrent: 2,
		MinRate:       1000, // bytes a second: the trickle sends 5
		ReadGrace:     300 * time.Millisecond,
		SlotWait:      30 * time.Second,
		Sink:          recv.Receive,
	})
	base := serve(t, h, nil)
	addr := strings.TrimPrefix(base, "http://")
	slow := []<-chan string{trickle(t, addr, "slow1"), trickle(t, addr, "slow2")}
	waitFor(t, "the trickling connections to hold both slots", func() bool { return h.active() == 2 })

	resp, err := http.Post(base+"/ingest?name=fast", "", bytes.NewReader(cpuProfileBytes(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a normal push while slow clients held the slots: %d %s, want 200", resp.StatusCode, msg)
	}
	for i, answer := range slow {
		select {
		case line := <-answer:
			if !strings.Contains(line, "408") {
				t.Errorf("slow connection %d: answered %q, want 408 Request Timeout", i, line)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("slow connection %d still open after 30 s", i)
		}
	}
	if obs := recv.Drain(); len(obs) != 1 || obs[0].Meta.Target.App != "fast" {
		t.Errorf("observations %+v, want the fast push's alone", obs)
	}
}

package ingest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// gate hands out the handler's slots: at most max requests at once, at
// most perClient of them from one client, so that one application
// pushing big profiles, or a client holding connections open, cannot
// take them all. A request that finds no slot waits for one, in order of
// arrival, up to a bound: the Pyroscope SDKs push every profile type of
// a tick at once and do not retry a refused push, so a short wait loses
// nothing where a 503 loses a profile; and a freed slot goes to the
// longest waiter that may take it, so that clients opening new
// connections cannot starve one already waiting.
type gate struct {
	max, perClient, maxWaiting int

	mu      sync.Mutex
	active  int
	clients map[string]*clientSlots
	queue   []*waiter
}

type clientSlots struct{ active, pending int } // pending counts active and waiting

type waiter struct {
	client  string
	c       *clientSlots
	granted chan struct{} // closed when the slot is handed over
}

func newGate(max, perClient int) *gate {
	return &gate{max: max, perClient: perClient, maxWaiting: 4 * max, clients: map[string]*clientSlots{}}
}

var (
	errBusy       = &StatusError{http.StatusServiceUnavailable, "busy: every slot taken"}
	errClientBusy = &StatusError{http.StatusTooManyRequests, "this client already has as many pushes pending as the handler takes at once"}
)

// acquire takes a slot for client, waiting at most wait, and returns the
// function that gives it back.
func (g *gate) acquire(ctx context.Context, client string, wait time.Duration) (func(), error) {
	g.mu.Lock()
	c := g.clients[client]
	if c == nil {
		c = &clientSlots{}
		g.clients[client] = c
	}
	switch {
	case c.pending >= g.max:
		// One client may have no more requests pending than the
		// handler takes at once.
		g.mu.Unlock()
		return nil, errClientBusy
	case g.active < g.max && c.active < g.perClient:
		g.take(c)
		g.mu.Unlock()
		return g.releaser(client, c), nil
	case len(g.queue) >= g.maxWaiting:
		g.mu.Unlock()
		return nil, errBusy
	}
	w := &waiter{client: client, c: c, granted: make(chan struct{})}
	g.queue = append(g.queue, w)
	c.pending++
	g.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	var err error
	select {
	case <-w.granted:
		return g.releaser(client, c), nil
	case <-t.C:
		err = fmt.Errorf("%w for %v", errBusy, wait)
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-w.granted: // handed over as the wait ended: keep it
		return g.releaser(client, c), nil
	default:
	}
	for i, q := range g.queue {
		if q == w {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			break
		}
	}
	c.pending--
	g.forget(client, c)
	return nil, err
}

// take gives a slot to c. Called with mu held.
func (g *gate) take(c *clientSlots) {
	g.active++
	c.active++
	c.pending++
}

// releaser returns the function that gives client's slot back and hands
// freed slots to the longest waiters that may take them.
func (g *gate) releaser(client string, c *clientSlots) func() {
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.active--
		c.active--
		c.pending--
		g.forget(client, c)
		for i := 0; i < len(g.queue) && g.active < g.max; {
			w := g.queue[i]
			if w.c.active >= g.perClient {
				i++
				continue
			}
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			g.active++
			w.c.active++ // already counted in pending
			close(w.granted)
		}
	}
}

// forget drops a client with nothing active or waiting. Called with mu held.
func (g *gate) forget(client string, c *clientSlots) {
	if c.pending == 0 {
		delete(g.clients, client)
	}
}

func (g *gate) inUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active
}

func (g *gate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// clientOf names the client behind a request for the gate: its IP
// address and the application it pushes for. The address alone would
// make every application of the host one client when they push to a
// local agent over loopback.
func clientOf(r *http.Request, app string) string {
	return remoteIP(r) + " " + app
}

// remoteIP is the peer's IP address, or the whole RemoteAddr when it has
// no port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isLoopback tells a client on this host.
func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}

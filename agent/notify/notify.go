// Package notify posts the agent's regression events to a webhook: one
// JSON POST per event, {"event": "raised"|"resolved", "regression":
// FINDING}, in the order they happened, retried with exponential backoff.
//
// It never holds up the daemon's loop: Send queues the event and returns;
// one goroutine delivers. The queue is bounded (the oldest event is
// dropped when it is full, and counted), every request has a timeout, and
// Close returns within a bounded time, abandoning what it could not send.
// The bearer token is read from a file and never logged; nor is the URL,
// whose path is the secret of many webhooks (Slack's): logs name its host.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/perfhound/perfhound/agent/webauth"
	"github.com/perfhound/perfhound/analyzer/regress"
)

// The events' names in the payload.
const (
	Raised   = "raised"
	Resolved = "resolved"
)

// Payload is what one POST carries.
type Payload struct {
	Event      string          `json:"event"`
	Regression regress.Finding `json:"regression"`
}

// Outcome is what became of one event.
type Outcome string

const (
	// Delivered: the webhook answered 2xx.
	Delivered Outcome = "delivered"
	// Failed: every attempt failed, or the webhook refused the event with
	// a status retrying cannot change (a 4xx other than 408, 425 and 429,
	// or a redirect).
	Failed Outcome = "failed"
	// Dropped: never sent: the queue was full (the oldest event goes), or
	// Close came first.
	Dropped Outcome = "dropped"
)

// Target is where and how events are posted: what a reload may change.
type Target struct {
	// URL is the webhook, http:// or https://.
	URL string
	// TokenFile, when set, holds the bearer token (its first line; mode
	// 0600, as the API's token_file): sent as Authorization: Bearer.
	TokenFile string
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	// MaxAttempts bounds the tries of one event (default 5).
	MaxAttempts int
}

// Defaults of a Target's and Options' zero fields.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxAttempts  = 5
	DefaultQueue        = 256
	DefaultBackoff      = time.Second
	DefaultMaxBackoff   = time.Minute
	DefaultCloseTimeout = 2 * time.Second
)

// Options configure a Webhook.
type Options struct {
	Target
	// Queue bounds the events waiting (default 256).
	Queue int
	// Backoff is the wait after a first failed attempt, doubled after
	// each further one up to MaxBackoff (defaults 1 s and 1 min); each
	// wait is jittered down by up to half, so that agents that failed
	// together do not retry together.
	Backoff, MaxBackoff time.Duration
	// CloseTimeout is how long Close lets the queue drain, each event
	// tried once, before it abandons the rest (default 2 s).
	CloseTimeout time.Duration
	// Client sends the requests (default: a client of its own).
	Client *http.Client
	// Log receives a line per event that failed or was dropped.
	Log *slog.Logger
	// Outcome, when set, is told what became of each event (the
	// daemon's metrics). It is called from the delivering goroutine, or
	// from Send for a drop.
	Outcome func(Outcome)
}

// target is a Target ready to use: the token read.
type target struct {
	url, host   string
	token       string
	timeout     time.Duration
	maxAttempts int
}

// Check tells whether t would be taken by New or Reconfigure: its URL,
// and its token file read. A reload checks first, applies after.
func (t Target) Check() error {
	_, err := t.check()
	return err
}

// check reads t's token and fills its defaults.
func (t Target) check() (target, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return target{}, errors.New("webhook: the URL is not an http:// or https:// URL with a host")
	}
	out := target{url: t.URL, host: u.Host, timeout: t.Timeout, maxAttempts: t.MaxAttempts}
	if out.timeout <= 0 {
		out.timeout = DefaultTimeout
	}
	if out.maxAttempts <= 0 {
		out.maxAttempts = DefaultMaxAttempts
	}
	if t.TokenFile != "" {
		if out.token, err = webauth.ReadTokenFile(t.TokenFile); err != nil {
			return target{}, fmt.Errorf("webhook: %w", err)
		}
	}
	return out, nil
}

// Webhook delivers events to one URL. Its methods are safe for
// concurrent use.
type Webhook struct {
	opts   Options
	client *http.Client
	log    *slog.Logger

	ctx    context.Context // canceled when Close gives up waiting
	cancel context.CancelFunc
	wake   chan struct{} // an event was queued, or Close was called
	done   chan struct{} // the delivering goroutine returned

	mu      sync.Mutex
	t       target
	queue   []Payload
	closing bool
	closed  chan struct{} // closed by Close: backoffs end
}

// New starts a webhook: it reads the token file and checks the URL (an
// error names what is wrong, never the token or the URL's path).
func New(o Options) (*Webhook, error) {
	t, err := o.Target.check()
	if err != nil {
		return nil, err
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	client := o.Client
	if client == nil {
		client = &http.Client{}
	}
	// A redirect is an answer, not a place to post the event again: a
	// POST redirected with 302 would become a GET, and the token would
	// follow it.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{opts: o, client: &c, log: o.Log, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), done: make(chan struct{}), t: t, closed: make(chan struct{})}
	go w.run()
	return w, nil
}

// Reconfigure points the webhook at t from the next attempt on (a
// reload): the queue and what is in flight are kept. A t that does not
// check leaves the webhook as it was.
func (w *Webhook) Reconfigure(t Target) error {
	nt, err := t.check()
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.t = nt
	w.mu.Unlock()
	return nil
}

// Send queues an event and returns at once. When the queue is full the
// oldest event waiting is dropped; after Close the event is.
func (w *Webhook) Send(event string, f regress.Finding) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		w.outcome(Dropped, Payload{Event: event, Regression: f}, "the webhook is closed")
		return
	}
	var dropped *Payload
	if len(w.queue) >= w.opts.Queue {
		p := w.queue[0]
		dropped = &p
		w.queue = w.queue[1:]
	}
	w.queue = append(w.queue, Payload{Event: event, Regression: f})
	w.mu.Unlock()
	if dropped != nil {
		w.outcome(Dropped, *dropped, "the queue is full")
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close stops the webhook: the events queued get CloseTimeout to be sent,
// one attempt each; then the request in flight is abandoned and what is
// left dropped. It returns when the delivering goroutine has.
func (w *Webhook) Close() {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closing = true
	close(w.closed)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	timer := time.NewTimer(w.opts.CloseTimeout)
	defer timer.Stop()
	select {
	case <-w.done:
	case <-timer.C:
		w.cancel()
		<-w.done
	}
	w.cancel()
}

// run delivers the queue's events one at a time, in order.
func (w *Webhook) run() {
	defer close(w.done)
	for {
		p, ok := w.next()
		if !ok {
			return
		}
		w.deliver(p)
	}
}

// next waits for an event; false once closing with nothing left, or
// canceled (what is left is dropped).
func (w *Webhook) next() (Payload, bool) {
	for {
		w.mu.Lock()
		if w.ctx.Err() != nil {
			left := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, p := range left {
				w.outcome(Dropped, p, "the agent stopped before it was sent")
			}
			return Payload{}, false
		}
		if len(w.queue) > 0 {
			p := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return p, true
		}
		closing := w.closing
		w.mu.Unlock()
		if closing {
			return Payload{}, false
		}
		select {
		case <-w.wake:
		case <-w.ctx.Done():
		}
	}
}

// deliver posts p until it is delivered, refused, out of attempts, or the
// webhook closes (closing: one attempt, no backoff).
func (w *Webhook) deliver(p Payload) {
	body, err := json.Marshal(p)
	if err != nil {
		w.outcome(Failed, p, "encoding the event: "+err.Error())
		return
	}
	for attempt := 1; ; attempt++ {
		w.mu.Lock()
		t := w.t
		w.mu.Unlock()
		retry, err := w.post(t, body)
		if err == nil {
			w.outcome(Delivered, p, "")
			return
		}
		if w.ctx.Err() != nil {
			w.outcome(Dropped, p, "the agent stopped while it was being sent")
			return
		}
		if !retry || attempt >= t.maxAttempts {
			w.outcome(Failed, p, fmt.Sprintf("%v (attempt %d of %d, host %s)", err, attempt, t.maxAttempts, t.host))
			return
		}
		timer := time.NewTimer(Backoff(attempt, w.opts.Backoff, w.opts.MaxBackoff))
		select {
		case <-timer.C:
		case <-w.closed:
			timer.Stop()
			w.outcome(Failed, p, fmt.Sprintf("%v (attempt %d of %d, host %s; the agent is stopping)", err, attempt, t.maxAttempts, t.host))
			return
		}
	}
}

// post makes one attempt; retry says whether another may succeed.
func (w *Webhook) post(t target, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("making the request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "perfhound-agent")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error quotes the URL, whose path may be the secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return true, fmt.Errorf("no answer within %s", t.timeout)
		}
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout, c == http.StatusTooEarly, c == http.StatusTooManyRequests, c >= 500:
		return true, fmt.Errorf("status %d", c)
	default:
		return false, fmt.Errorf("status %d (not retried)", c)
	}
}

// Backoff is the wait after the attempt-th failed attempt: base doubled
// attempt-1 times, at most max, less a random part of up to half.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}

func (w *Webhook) outcome(o Outcome, p Payload, why string) {
	if o != Delivered {
		w.log.Warn("webhook: regression event "+string(o), "event", p.Event, "id", p.Regression.ID,
			"service", p.Regression.Service, "reason", why)
	}
	if w.opts.Outcome != nil {
		w.opts.Outcome(o)
	}
}

package forward

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// Relabel is a sink's relabeling of a window's labels, at the window's
// end: the labels to send, or keep false to drop the window, with the
// reason to count it under. agent/forward/relabel makes it from the
// sink's relabel_configs.
type Relabel func(labels map[string]string, at time.Time) (out map[string]string, keep bool, reason string)

// Options configure a Forwarder. Zero fields take the defaults.
type Options struct {
	// Name is the sink's: its cursor's key in the store, its metrics'
	// sink label.
	Name  string
	Sink  Sink
	Store *store.Store
	// IngestionWindow: windows that started longer ago than this are not
	// sent (the backend would refuse them); they stay in the store and
	// are counted and logged once (default DefaultIngestionWindow).
	IngestionWindow time.Duration
	// Relabel is the sink's relabeling step (nil: none).
	Relabel Relabel
	Metrics *Metrics // nil: none
	Log     *slog.Logger
	// Host names the host where a record does not (its observation's
	// Meta.Host).
	Host string
	// After an unavailable answer the forwarder waits MinBackoff, then
	// twice as long each time up to MaxBackoff, each wait drawn in its
	// upper half (jitter: a fleet that lost its backend at once does not
	// come back in step). Defaults 1 s and 1 min.
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often an idle forwarder looks at the store without
	// being told of a new window (Notify) (default 10 s).
	Poll time.Duration
	// Slice is the span of windows read and sent at a time (default
	// 1 min): what one step holds the keys of, and how long the newest
	// windows wait behind the fill-back of an outage.
	Slice time.Duration
	// WindowMemory bounds what decoding one stored record may take
	// (default 256 MiB); a record over it is dropped as unreadable.
	WindowMemory int64
	// SaveEvery is how often the cursor is saved while windows are sent
	// (default 1 s), and at the end of each step and on Close: a crash
	// sends again what was acknowledged since (at least once).
	SaveEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	o.IngestionWindow = cmp.Or(o.IngestionWindow, DefaultIngestionWindow)
	o.MinBackoff = cmp.Or(o.MinBackoff, time.Second)
	o.MaxBackoff = max(cmp.Or(o.MaxBackoff, time.Minute), o.MinBackoff)
	o.Poll = cmp.Or(o.Poll, 10*time.Second)
	o.Slice = cmp.Or(o.Slice, time.Minute)
	o.WindowMemory = cmp.Or(o.WindowMemory, 256<<20)
	o.SaveEvery = cmp.Or(o.SaveEvery, time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Forwarder delivers one sink's windows from the store, beside the
// daemon's window loop, which it never waits on: the loop only calls
// Notify, which does not block. Delivery is at least once: a window the
// backend acknowledged is recorded in the store's cursor before the next
// is read, so a crash between the two sends that one window again, and
// nothing else.
type Forwarder struct {
	opts    Options
	name    string
	store   *store.Store
	log     *slog.Logger
	m       *Metrics
	cur     *cursor // the loop's alone, as are dirty and savedAt
	dirty   bool    // cur has changes not saved
	savedAt time.Time
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex // guards sink, window, relabel (Reconfigure)
	sink    Sink
	window  time.Duration
	relabel Relabel

	// Counts, for Stats.
	sent, dropped, failures, tooOld, skipped atomic.Int64
	held, maxHeld                            atomic.Int64
	maxKeys                                  atomic.Int64
}

// Stats counts what a Forwarder did since Start.
type Stats struct {
	// Sent windows were acknowledged; Dropped were not sent and will not
	// be (TooOld of them for their age); Failures are sends answered
	// unavailable (retried).
	Sent, Dropped, TooOld, Failures int64
	// Skipped were settled with nothing to send: no profile (a service
	// seen only in metrics), or gone from the store since listed.
	Skipped int64
	// MaxHeld is the most stored windows decoded in memory at once (one
	// by design); MaxKeys the most keys one step listed.
	MaxHeld, MaxKeys int64
}

// Start reads the sink's cursor from the store and starts delivering.
// A cursor that does not read is logged, and delivery starts over from
// the ingestion window (at least once).
func Start(o Options) (*Forwarder, error) {
	if o.Name == "" || o.Sink == nil || o.Store == nil {
		return nil, errors.New("forwarder: a name, a sink and a store are needed")
	}
	o = o.withDefaults()
	f := &Forwarder{
		opts: o, name: o.Name, store: o.Store, log: o.Log.With("sink", o.Name), m: o.Metrics,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		sink: o.Sink, window: o.IngestionWindow, relabel: o.Relabel,
	}
	b, err := o.Store.Cursor(o.Name)
	if err != nil {
		return nil, err
	}
	if f.cur, err = unmarshalCursor(b); err != nil {
		f.log.Warn("the sink's cursor does not read: starting over within the ingestion window", "err", err)
		f.cur = newCursor()
	}
	if f.m != nil {
		f.m.sent.WithLabelValues(f.name)
		f.m.retries.WithLabelValues(f.name)
		f.m.oldest.WithLabelValues(f.name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(ctx)
	return f, nil
}

// Notify tells the forwarder a window was stored. It never blocks.
func (f *Forwarder) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Reconfigure swaps the sink, its ingestion window and its relabeling
// (a reload) from the next window sent on; the cursor stays, so nothing
// queued is lost.
func (f *Forwarder) Reconfigure(sink Sink, window time.Duration, relabel Relabel) {
	f.mu.Lock()
	old := f.sink
	f.sink, f.window, f.relabel = sink, cmp.Or(window, DefaultIngestionWindow), relabel
	f.mu.Unlock()
	if old != sink {
		closeSink(old) // a send in flight on it fails, and is sent again on the new one
	}
}

// Close stops the forwarder, and its sink: a send in flight is canceled
// (and sent again by the next forwarder of the sink). The cursor stays in
// the store.
func (f *Forwarder) Close() {
	f.cancel()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	closeSink(f.sink)
}

// closeSink closes a sink that holds connections (an OTLP sink's gRPC
// client).
func closeSink(s Sink) {
	if c, ok := s.(io.Closer); ok {
		c.Close()
	}
}

// Forget removes the sink's metrics (a sink a reload removed).
func (f *Forwarder) Forget() { f.m.forget(f.name) }

// Stats returns what the forwarder did.
func (f *Forwarder) Stats() Stats {
	return Stats{Sent: f.sent.Load(), Dropped: f.dropped.Load(), TooOld: f.tooOld.Load(), Failures: f.failures.Load(), Skipped: f.skipped.Load(),
		MaxHeld: f.maxHeld.Load(), MaxKeys: f.maxKeys.Load()}
}

func (f *Forwarder) config() (Sink, time.Duration, Relabel) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sink, f.window, f.relabel
}

// run steps until ctx ends: at once while there is work, after a
// backoff when the backend is unavailable, else on Notify or Poll.
func (f *Forwarder) run(ctx context.Context) {
	defer close(f.done)
	defer func() {
		if f.dirty {
			f.save() // a stop (Close) loses nothing acknowledged
		}
	}()
	attempt := 0
	for {
		busy, err := f.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if f.dirty {
			f.save()
		}
		if err != nil {
			f.failures.Add(1)
			if f.m != nil {
				f.m.retries.WithLabelValues(f.name).Inc()
			}
			if attempt == 0 {
				f.log.Warn("forwarding: retrying with backoff", "err", err)
			}
			if !sleep(ctx, f.backoff(attempt)) {
				return
			}
			attempt++
			continue
		}
		if attempt > 0 {
			f.log.Info("forwarding again", "failed_attempts", attempt)
			attempt = 0
		}
		if busy {
			continue
		}
		t := time.NewTimer(f.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// backoff is the wait before attempt+1: MinBackoff doubling up to
// MaxBackoff, drawn in its upper half.
func (f *Forwarder) backoff(attempt int) time.Duration {
	d := f.opts.MaxBackoff
	if attempt < 30 {
		d = min(f.opts.MinBackoff<<attempt, f.opts.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// step gives up what aged past the ingestion window, then delivers the
// newest slice of windows not yet done: the records above the store's
// frontier first, then one Slice below it, newest first, after which
// the slice is a done span. It tells whether it did anything; an error
// is a send that failed as unavailable (or a store that does not read).
func (f *Forwarder) step(ctx context.Context) (busy bool, err error) {
	sink, window, relabel := f.config()
	cutoff := f.opts.Now().Add(-window).UnixNano()
	if err := f.expire(cutoff); err != nil {
		return false, err
	}
	newest, host, err := f.store.Newest()
	if err != nil {
		return false, err
	}
	defer func() { f.setOldest(cutoff, newest) }()
	if newest.IsZero() {
		return false, nil
	}
	top := newest.UnixNano() + 1
	frontier := top
	if !host.IsZero() {
		frontier = min(top, host.UnixNano()+1)
	}
	gaps := f.cur.gaps(cutoff, top)
	for i := len(gaps) - 1; i >= 0; i-- {
		g := gaps[i]
		hi := g.hi
		if hi > frontier {
			// The newest window's records that start after its host
			// record: sent one by one, their span closed by a later step.
			above := max(g.lo, frontier)
			n, _, err := f.deliverRange(ctx, sink, relabel, window, above, hi)
			if err != nil || n > 0 {
				return n > 0, err
			}
			if hi = above; hi <= g.lo {
				continue
			}
		}
		lo := max(g.lo, hi-int64(f.opts.Slice))
		n, complete, err := f.deliverRange(ctx, sink, relabel, window, lo, hi)
		if err != nil {
			return n > 0, err
		}
		if !complete {
			return true, nil // a record aged past the window while queued: expire counts it
		}
		f.cur.markRange(lo, hi)
		f.dirty = true
		return true, nil
	}
	return false, nil
}

// deliverRange sends the records starting in [lo, hi) that are not done,
// newest first, and returns how many it settled (sent or dropped) and
// whether that was all of them. It stops at a record older than the
// ingestion window (the next step's expire counts it) and at the first
// unavailable answer.
func (f *Forwarder) deliverRange(ctx context.Context, sink Sink, relabel Relabel, window time.Duration, lo, hi int64) (settled int, complete bool, err error) {
	keys, err := f.store.Keys(unixTime(lo), unixTime(hi))
	if err != nil {
		return 0, false, err
	}
	if n := int64(len(keys)); n > f.maxKeys.Load() {
		f.maxKeys.Store(n)
	}
	for _, k := range slices.Backward(keys) {
		if f.cur.isDone(k) {
			continue
		}
		if k.Start.Before(f.opts.Now().Add(-window)) {
			return settled, false, nil
		}
		if err := f.deliver(ctx, sink, relabel, k); err != nil {
			return settled, false, err
		}
		settled++
		f.cur.markKey(k)
		f.dirty = true
		f.saveEvery()
	}
	return settled, true, nil
}

// deliver reads one record and sends it as a Window: nil once it is
// settled (acknowledged, or dropped and counted), an error when it is to
// be sent again.
func (f *Forwarder) deliver(ctx context.Context, sink Sink, relabel Relabel, k store.Key) error {
	rec, err := f.store.Get(k, profdecode.NewBudget(f.opts.WindowMemory))
	if errors.Is(err, store.ErrNoData) {
		f.skipped.Add(1)
		return nil // gone since it was listed: retention, or merged by a rollup
	}
	if err != nil {
		f.drop(ReasonUnreadable, k, err)
		return nil
	}
	f.hold(1)
	defer f.hold(-1)
	w := WindowOf(rec, f.opts.Host)
	if relabel != nil {
		labels, keep, reason := relabel(w.Labels, w.End)
		if !keep {
			f.drop(cmp.Or(reason, ReasonRelabel), k, nil)
			return nil
		}
		w.Labels = labels
	}
	if len(w.Profiles) == 0 {
		f.skipped.Add(1)
		return nil // a service's metrics only: nothing a profile backend takes
	}
	err = sink.Send(ctx, w)
	switch {
	case err == nil:
		f.sent.Add(1)
		if f.m != nil {
			f.m.sent.WithLabelValues(f.name).Inc()
		}
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnavailable):
		reason := ReasonInvalid
		if r := (*RefusedError)(nil); errors.As(err, &r) && r.Reason != "" {
			reason = r.Reason
		}
		f.drop(reason, k, err)
		return nil
	}
	return fmt.Errorf("sending %s %s at %s: %w", k.Service, k.Version, k.Start.Format(time.RFC3339), err)
}

// WindowOf is a stored record as a sink is sent it; host names the host
// when the record's observation does not.
func WindowOf(r store.Record, host string) Window {
	w := Window{
		Service: r.Service, Version: r.Version, Host: cmp.Or(r.Obs.Meta.Host, host),
		Labels: maps.Clone(r.Labels), Start: r.Start, End: r.Start.Add(r.Duration),
	}
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	for _, p := range r.Obs.Profiles {
		if p.Profile != nil && len(p.Profile.Sample) > 0 {
			w.Profiles = append(w.Profiles, Profile{Kind: p.Kind, Profile: p.Profile})
		}
	}
	return w
}

func (f *Forwarder) hold(n int64) {
	h := f.held.Add(n)
	if h > f.maxHeld.Load() {
		f.maxHeld.Store(h)
	}
}

func (f *Forwarder) drop(reason string, k store.Key, err error) {
	f.dropped.Add(1)
	if f.m != nil {
		f.m.dropped.WithLabelValues(f.name, reason).Inc()
	}
	f.log.Warn("window not forwarded", "reason", reason, "service", k.Service, "version", k.Version,
		"start", k.Start.Format(time.RFC3339), "err", err)
}

// expire gives up the records that started before cutoff and are not
// done: they stay in the store; they are counted and logged once, here,
// as the cursor then covers them.
func (f *Forwarder) expire(cutoff int64) error {
	var n int64
	var first, last time.Time
	for _, g := range f.cur.gaps(0, cutoff) {
		err := f.store.EachKey(unixTime(g.lo), unixTime(g.hi), func(k store.Key) bool {
			if f.cur.sent[keyOf(k)] {
				return true
			}
			n++
			if first.IsZero() || k.Start.Before(first) {
				first = k.Start
			}
			if k.Start.After(last) {
				last = k.Start
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	f.cur.markRange(0, cutoff)
	if n == 0 {
		return nil
	}
	f.tooOld.Add(n)
	f.dropped.Add(n)
	if f.m != nil {
		f.m.dropped.WithLabelValues(f.name, ReasonTooOld).Add(float64(n))
	}
	f.log.Warn("windows older than the ingestion window are not forwarded: they stay in the local store",
		"windows", n, "from", first.Format(time.RFC3339), "to", last.Format(time.RFC3339),
		"ingestion_window", time.Duration(f.opts.Now().UnixNano()-cutoff).Round(time.Second))
	f.save()
	return nil
}

// setOldest sets the oldest-unsent gauge: the age of the oldest record
// within the ingestion window that is not done.
func (f *Forwarder) setOldest(cutoff int64, newest time.Time) {
	if f.m == nil {
		return
	}
	age := 0.0
	if oldest, ok := f.oldestUnsent(cutoff, newest); ok {
		age = max(f.opts.Now().Sub(oldest).Seconds(), 0)
	}
	f.m.oldest.WithLabelValues(f.name).Set(age)
}

// oldestUnsent finds the oldest record not done after cutoff. The keys
// stream hour by hour (store.EachKey), none held: it stops at the end of
// the first hour that has one.
func (f *Forwarder) oldestUnsent(cutoff int64, newest time.Time) (time.Time, bool) {
	if newest.IsZero() {
		return time.Time{}, false
	}
	var oldest time.Time
	for _, g := range f.cur.gaps(cutoff, newest.UnixNano()+1) {
		err := f.store.EachKey(unixTime(g.lo), unixTime(g.hi), func(k store.Key) bool {
			if !oldest.IsZero() && !k.Start.Truncate(time.Hour).Equal(oldest.Truncate(time.Hour)) {
				return false // the next hour: the first one's oldest is the oldest
			}
			if !f.cur.isDone(k) && (oldest.IsZero() || k.Start.Before(oldest)) {
				oldest = k.Start
			}
			return true
		})
		if err != nil || !oldest.IsZero() {
			return oldest, err == nil && !oldest.IsZero()
		}
	}
	return time.Time{}, false
}

// saveEvery saves the cursor when SaveEvery has passed since it was
// last saved: one write a second at most while a backlog drains, not one
// a window (each is an fsync, and takes the store's one write lock).
func (f *Forwarder) saveEvery() {
	if time.Since(f.savedAt) >= f.opts.SaveEvery {
		f.save()
	}
}

// save stores the cursor; a failure is logged (the cursor in memory is
// right: a restart would send again what it lost, at least once).
func (f *Forwarder) save() {
	f.savedAt, f.dirty = time.Now(), false
	b, err := f.cur.marshal()
	if err == nil {
		err = f.store.SetCursor(f.name, b)
	}
	if err != nil {
		f.log.Warn("the sink's cursor was not saved", "err", err)
	}
}

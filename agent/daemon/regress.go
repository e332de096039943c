package daemon

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/notify"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// Regressions configures regression detection (analyzer/regress) over
// the stored windows: what a reload may change of it.
type Regressions struct {
	// Enabled feeds every stored window to a detector.
	Enabled bool
	// Detector configures the detector; its zero value means
	// regress.DefaultOptions(). A change rebuilds the detector (replaying
	// the store's recent windows into it).
	Detector regress.Options
	// Webhook receives each regression raised or resolved, when its URL
	// is set.
	Webhook notify.Target
	// Boost samples a fresh deploy faster (boost.go).
	Boost Boost
}

// defaultLookback is how much of the store a new detector replays when
// the detector does not say (a Lookback method): the version
// comparison's base (the previous version's last 30 minutes) and the
// new version's head up to its last look (30 minutes), with room for a
// deploy that took a while.
const defaultLookback = 90 * time.Minute

// replayChunk is how much of the store a replay reads at a time: it
// holds one chunk's windows (counts by function), not the lookback's.
const replayChunk = 5 * time.Minute

// replayKinds are the profiles a replay decodes: what WindowOf reads.
var replayKinds = []observation.ProfileKind{observation.KindCPU}

// detector is what the daemon needs of a regress.Detector: tests wrap
// one to see what it is fed.
type detector interface {
	Observe(regress.Window) []regress.Event
}

// detection is the loop's detector and what it was made with; only the
// loop's goroutine touches it.
type detection struct {
	det  detector
	opts regress.Options
}

// lookback is what det says it needs replayed after a restart, or
// defaultLookback.
func lookback(det detector) time.Duration {
	if l, ok := det.(interface{ Lookback() time.Duration }); ok {
		if d := l.Lookback(); d > 0 {
			return d
		}
	}
	return defaultLookback
}

// VersionOptions are the version comparison's options the detector runs
// with now (a reload may change them): the API's diff compares with
// them, to give what the detector gave.
func (d *Daemon) VersionOptions() regress.VersionOptions {
	d.mu.Lock()
	defer d.mu.Unlock()
	return detectorOptions(d.live.Regressions).Version
}

func detectorOptions(r Regressions) regress.Options {
	if reflect.ValueOf(r.Detector).IsZero() {
		return regress.DefaultOptions()
	}
	return r.Detector
}

// detect feeds the window just stored (b) to the detector and handles
// what it found. A detector not made yet (the first window after
// detection was turned on, or its options changed) is made by replaying
// the store up to b's end, b included.
func (d *Daemon) detect(b store.Batch, live Live) {
	if !live.Regressions.Enabled {
		if d.det.det != nil {
			d.det = detection{}
			d.metrics.setRegressions(nil)
		}
		return
	}
	opts := detectorOptions(live.Regressions)
	if d.det.det == nil || !reflect.DeepEqual(d.det.opts, opts) {
		d.startDetection(opts, batchEnd(b))
		return
	}
	d.handle(feed(d.det.det, windowsOf(nil, b.Records)))
}

// startDetection makes a detector, tells it the stored findings
// (restore), and feeds it the store's windows that start in
// [end - lookback, end) (end: the end of the last window stored), in
// time order, as they were fed when
// stored: what it finds then depends on the stored windows only, so a
// restart (or kill -9) changes no answer. What the replay finds that the
// store did not hold yet (the agent was killed between storing a window
// and its findings) is handled as new; the rest is known.
func (d *Daemon) startDetection(opts regress.Options, end time.Time) {
	det := d.newDetector(opts)
	d.det = detection{det: det, opts: opts}
	began := time.Now()
	d.restore(det)
	events, windows := d.replay(det, end.Add(-lookback(det)), end)
	d.handle(events)
	d.syncRegressions()
	d.log.Info("regression detection started", "replayed_windows", windows, "events", len(events), "took", time.Since(began).Round(time.Millisecond))
}

// restore tells det the findings stored before its replay (Restore):
// the unresolved ones a version deployed after the replay's span began
// may resolve, though the windows that raised them are older than it.
func (d *Daemon) restore(det detector) {
	r, ok := det.(interface{ Restore([]regress.Finding) })
	if !ok {
		return
	}
	fs, err := d.store.Findings()
	if err != nil {
		d.metrics.errors.WithLabelValues("regressions").Inc()
		d.log.Warn("regressions: the stored findings do not read: none restored", "err", err)
		return
	}
	r.Restore(fs)
}

// replay feeds det the stored windows that start in [from, to), a chunk
// at a time, every service's in time order. Each service's records of a
// chunk are read and made windows before the next service's are read:
// what a replay holds is a chunk's windows and one service's records of
// it. A chunk of a service that does not read is logged and skipped.
func (d *Daemon) replay(det detector, from, to time.Time) (events []regress.Event, windows int) {
	svcs, err := d.store.Services()
	if err != nil {
		d.metrics.errors.WithLabelValues("regressions").Inc()
		d.log.Warn("regressions: the store's services do not read: nothing replayed", "err", err)
		return nil, 0
	}
	if len(svcs) == 0 {
		return nil, 0
	}
	for start := from; start.Before(to); start = start.Add(replayChunk) {
		stop := start.Add(replayChunk)
		if stop.After(to) {
			stop = to
		}
		var ws []window
		for _, sv := range svcs {
			if sv.Last.Before(start) || !sv.First.Before(stop) {
				continue
			}
			rs, err := d.store.Range(store.Query{Service: sv.Name, From: start, To: stop, Kinds: replayKinds})
			if err != nil {
				d.metrics.errors.WithLabelValues("regressions").Inc()
				d.log.Warn("regressions: windows not replayed", "service", sv.Name, "from", start, "err", err)
				continue
			}
			ws = windowsOf(ws, rs)
		}
		events = append(events, feed(det, ws)...)
		windows += len(ws)
		// Progress, for the watchdog: a replay of many services takes
		// seconds of a start.
		d.lastStored.Store(time.Now().UnixNano())
	}
	return events, windows
}

// window is a record as the detector reads it, and when it started.
type window struct {
	start time.Time
	w     regress.Window
}

// windowsOf appends the windows of recs' services (not the host's) to
// ws. The detector reads the verdict as stored, so that a window read
// live and read back give it the same numbers.
func windowsOf(ws []window, recs []store.Record) []window {
	for i := range recs {
		r := &recs[i]
		if r.Service == "" || r.Obs == nil {
			continue
		}
		var s verdict.Summary
		if len(r.Verdict) > 0 {
			_ = json.Unmarshal(r.Verdict, &s) // unreadable: no class, as the API reads it
		}
		w := regress.WindowOf(r.Obs, r.Service, r.Version, s)
		// No version read (a process gone first, a push without one):
		// not a deploy between windows of the service's real version.
		w.Unversioned = r.Version == identity.UnknownVersion
		ws = append(ws, window{start: r.Obs.Meta.Start, w: w})
	}
	return ws
}

// feed gives det the windows in the order they are fed live and in a
// replay alike: by start, then service and version.
func feed(det detector, ws []window) []regress.Event {
	slices.SortStableFunc(ws, func(a, b window) int {
		return cmp.Or(a.start.Compare(b.start), cmp.Compare(a.w.Service, b.w.Service), cmp.Compare(a.w.Version, b.w.Version))
	})
	var events []regress.Event
	for _, w := range ws {
		events = append(events, det.Observe(w.w)...)
	}
	return events
}

// storeEnd is the end of the store's last window of a service (zero:
// none). A replay at start reads the lookback before it, not before the
// clock: after the agent was stopped for hours, the windows before the
// stop are what a detector that never stopped would hold.
func (d *Daemon) storeEnd() time.Time {
	var end time.Time
	svcs, err := d.store.Services()
	if err != nil {
		return time.Now() // replay says what does not read
	}
	for _, sv := range svcs {
		if sv.Last.After(end) {
			end = sv.Last
		}
	}
	return end
}

// batchEnd is the end of b's latest record: a replay up to it holds b.
func batchEnd(b store.Batch) time.Time {
	var end time.Time
	for _, r := range b.Records {
		if r.Obs == nil {
			continue
		}
		if e := r.Obs.Meta.Start.Add(max(r.Obs.Meta.Duration, time.Nanosecond)); e.After(end) {
			end = e
		}
	}
	if b.Host != nil && b.Host.Obs != nil {
		if e := b.Host.Obs.Meta.Start.Add(max(b.Host.Obs.Meta.Duration, time.Nanosecond)); e.After(end) {
			end = e
		}
	}
	return end
}

// handle stores events' findings and says what changed: a log line, the
// webhook, the metrics. The store tells what changed (PutFindings): a
// finding found again after a restart is not news.
func (d *Daemon) handle(events []regress.Event) {
	if len(events) == 0 {
		return
	}
	fs := make([]regress.Finding, len(events))
	for i, ev := range events {
		fs[i] = ev.Finding
		if ev.Resolved {
			fs[i].Resolved = true
		}
	}
	changed, err := d.store.PutFindings(fs)
	var full *store.DiskFullError
	if errors.As(err, &full) && full.Stored {
		d.metrics.errors.WithLabelValues("disk_full").Inc()
		d.log.Warn("disk full: the oldest data was dropped to store the regressions", "dropped_hours", full.Dropped)
		err = nil
	}
	if err != nil {
		// Not stored: said anyway, as they came; the API lists them once
		// a replay finds them again.
		d.metrics.errors.WithLabelValues("regressions").Inc()
		d.log.Error("regressions not stored", "findings", len(fs), "err", err)
		changed = fs
	}
	d.mu.Lock()
	hook := d.hook
	d.mu.Unlock()
	for _, f := range changed {
		event := notify.Raised
		if f.Resolved {
			event = notify.Resolved
		}
		d.logFinding(event, f)
		d.metrics.regressionEvent(event, f)
		if hook != nil {
			hook.Send(event, f)
		}
	}
	d.syncRegressions()
}

func (d *Daemon) logFinding(event string, f regress.Finding) {
	what, name := "function", f.Function
	if name == "" {
		what, name = "resource", f.Resource
	}
	args := []any{"service", f.Service, what, name, "kind", f.Kind, "change_pct", fmt.Sprintf("%+.1f", f.ChangePct),
		"base_version", f.BaseVersion, "head_version", f.HeadVersion, "id", f.ID}
	if event == notify.Resolved {
		d.log.Info("regression resolved", append(args, "resolved_by", f.ResolvedBy)...)
		return
	}
	d.log.Warn("regression", args...)
}

// syncRegressions exports the store's active findings as gauges.
func (d *Daemon) syncRegressions() {
	fs, err := d.store.Findings()
	if err != nil {
		d.metrics.errors.WithLabelValues("regressions").Inc()
		d.log.Warn("regressions: the stored findings do not read", "err", err)
		return
	}
	d.metrics.setRegressions(fs)
}

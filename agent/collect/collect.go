// Package collect gathers the metric series of an observation from /proc,
// /sys and PSI: host-wide and per process, one sampler per file, sampled
// at an interval (1 s for diagnose, 10 s for the agent).
//
// A Sampler reads the current values; the Recorder turns cumulative
// counters into rates over each interval, so every point of a series
// reads on its own. What a sampler cannot read on this machine is
// recorded as missing with the reason, never invented.
package collect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Env says where the host's pseudo-filesystems are, so that tests can run
// samplers on fixture trees and the agent can run in a container with the
// host's /proc mounted elsewhere.
type Env struct {
	ProcFS   string // default /proc
	SysFS    string // default /sys
	CgroupFS string // cgroup v2 mount; default: found in ProcFS/self/mountinfo, else /sys/fs/cgroup
}

// ProcDir is where /proc is: ProcFS, or /proc when it is unset. Every
// part of the agent that reads /proc finds it here.
func (e Env) ProcDir() string {
	if e.ProcFS == "" {
		return "/proc"
	}
	return e.ProcFS
}

func (e Env) withDefaults() Env {
	e.ProcFS = e.ProcDir()
	if e.SysFS == "" {
		e.SysFS = "/sys"
	}
	return e
}

// Target is what to sample beyond the host: a process (PID > 0), with
// its descendants.
type Target struct {
	PID int

	tree *processTree // its descendants, listed once for all its samplers' readings (set by Samplers)
}

// Sampler takes one reading of some signals.
type Sampler interface {
	// Name is the sampler's signal (observation's catalogue), e.g.
	// "host.cpu", used in Missing entries.
	Name() observation.Signal
	// Sample reads the current values into rec. An error means this
	// reading failed (it is recorded as missing once, with the reason);
	// partial readings should record what they have and mark the rest
	// with rec.Missing.
	Sample(ctx context.Context, rec *Recorder) error
}

// Factory makes a sampler for a target, or says why it cannot run here
// (the reason is recorded as missing).
type Factory func(env Env, t Target) (Sampler, error)

var (
	registryMu sync.Mutex
	registry   = map[observation.Signal]Factory{}
)

// Register adds a sampler factory under a name; samplers register
// themselves from init in their own files.
func Register(name observation.Signal, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("collect: sampler registered twice: " + string(name))
	}
	registry[name] = f
}

// Samplers makes every registered sampler that applies to the target, in
// name order, and lists those that cannot run with the reason.
func Samplers(env Env, t Target) ([]Sampler, []observation.Missing) {
	env = env.withDefaults()
	if t.PID > 0 && t.tree == nil {
		t.tree = &processTree{}
	}
	registryMu.Lock()
	names := make([]observation.Signal, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	registryMu.Unlock()
	slices.Sort(names)
	var (
		out     []Sampler
		missing []observation.Missing
	)
	for _, n := range names {
		registryMu.Lock()
		f := registry[n]
		registryMu.Unlock()
		s, err := f(env, t)
		if err != nil {
			missing = append(missing, observation.Missing{Signal: n, Reason: err.Error()})
			continue
		}
		if s != nil {
			out = append(out, s)
		}
	}
	return out, missing
}

// Window samples every interval from start until end (zero: until ctx is
// done) and returns the window's series and what was missing in it; the
// last reading is taken exactly at end. The recorder's first window
// takes a reading at once, whose counters give their first rate at the
// second. A later window takes none at its start: the previous window's
// last reading is its counters' baseline, so consecutive windows tile
// time, each rate lying in exactly one window (see NextWindow).
func (r *Recorder) Window(ctx context.Context, samplers []Sampler, interval time.Duration, start, end time.Time) ([]observation.Series, []observation.Missing) {
	defer r.NextWindow()
	if r.windows == 0 {
		r.Sample(ctx, samplers, time.Now())
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 1; end.IsZero() || time.Now().Before(end); k++ {
		next := start.Add(time.Duration(k) * interval)
		last := !end.IsZero() && !next.Before(end)
		if last {
			next = end
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			// Ended early (the command exited, the user interrupted):
			// one last reading, so that the rates cover the window up
			// to now.
			r.Sample(context.WithoutCancel(ctx), samplers, time.Now())
			r.noteUnrated()
			return r.Series(), r.MissingList()
		case <-timer.C:
		}
		r.Sample(ctx, samplers, time.Now())
		if last {
			break
		}
	}
	r.noteUnrated()
	return r.Series(), r.MissingList()
}

// Recorder accumulates readings into series. Not safe for concurrent use.
type Recorder struct {
	now     time.Time // the reading's stamp: UTC, to the millisecond
	at      time.Time // the reading's time with its monotonic clock, for rates
	series  map[string]*observation.Series
	order   []string
	last    map[string]counterReading // kept from one window to the next
	missing map[observation.Signal]string
	mOrder  []observation.Signal
	windows int // windows ended (NextWindow)
}

type counterReading struct {
	t      time.Time
	v      float64
	name   observation.SeriesName
	window int // the window it was read in
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{series: map[string]*observation.Series{}, last: map[string]counterReading{}, missing: map[observation.Signal]string{}}
}

// Sample takes one reading of every sampler, stamped t.
func (r *Recorder) Sample(ctx context.Context, samplers []Sampler, t time.Time) {
	r.at = t
	r.now = t.UTC().Truncate(time.Millisecond)
	for _, s := range samplers {
		err := s.Sample(ctx, r)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, ErrProcessGone):
			// Every process sampler says so; one entry says it all.
			r.Missing(observation.SignalProcess, "the process exited at "+r.now.Format(time.RFC3339)+"; its series end there")
		default:
			r.Missing(s.Name(), err.Error())
		}
	}
}

func seriesKey(name observation.SeriesName, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(string(name))
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\x00%s=%s", k, labels[k])
	}
	return b.String()
}

func (r *Recorder) add(key string, name observation.SeriesName, labels map[string]string, v float64) {
	s := r.series[key]
	if s == nil {
		s = &observation.Series{Name: name, Unit: name.Unit(), Labels: labels}
		r.series[key] = s
		r.order = append(r.order, key)
	}
	s.Points = append(s.Points, observation.Point{Time: r.now, Value: v})
}

// Gauge records a value as it is now (memory in use, load average), in
// the unit the catalogue gives its name.
func (r *Recorder) Gauge(name observation.SeriesName, labels map[string]string, v float64) {
	r.add(seriesKey(name, labels), name, labels, v)
}

// Counter records a cumulative counter as its rate per second over the
// last interval, in the unit the catalogue gives its name (a byte counter
// as "bytes/s", a CPU-seconds counter as "cores"). The first reading only sets the baseline; a counter
// that went backwards (reset, wrap) restarts it.
func (r *Recorder) Counter(name observation.SeriesName, labels map[string]string, v float64) {
	key := seriesKey(name, labels)
	prev, ok := r.last[key]
	r.last[key] = counterReading{r.at, v, name, r.windows}
	if !ok || v < prev.v {
		return
	}
	// The monotonic clock: a wall-clock step (NTP) must not bend a rate.
	dt := r.at.Sub(prev.t).Seconds()
	if dt <= 0 {
		return
	}
	r.add(key, name, labels, (v-prev.v)/dt)
}

// noteUnrated records as missing the counters read only once: a window
// shorter than the interval, or a signal that appeared at the last
// reading, gives no rate.
func (r *Recorder) noteUnrated() {
	keys := make([]string, 0, len(r.last))
	for key, c := range r.last {
		if c.window == r.windows && r.series[key] == nil {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		r.Missing(observation.Signal(r.last[key].name), "read once in the window (shorter than the sampling interval?): no rate")
	}
}

// NextWindow ends the recorder's window: the series and missing entries
// recorded so far are dropped (read them first), and each counter's last
// reading stays as the baseline of the next window's first rate. A
// counter not read in the window (its process, device or interface gone)
// loses its baseline, so that what the recorder keeps stays bounded.
func (r *Recorder) NextWindow() {
	for key, c := range r.last {
		if c.window != r.windows {
			delete(r.last, key)
		}
	}
	r.series, r.order = map[string]*observation.Series{}, nil
	r.missing, r.mOrder = map[observation.Signal]string{}, nil
	r.windows++
}

// Missing records that a signal could not be read, once per signal.
func (r *Recorder) Missing(signal observation.Signal, reason string) {
	if _, seen := r.missing[signal]; seen {
		return
	}
	r.missing[signal] = reason
	r.mOrder = append(r.mOrder, signal)
}

// Series returns the series recorded so far, in first-seen order.
func (r *Recorder) Series() []observation.Series {
	out := make([]observation.Series, 0, len(r.order))
	for _, k := range r.order {
		out = append(out, *r.series[k])
	}
	return out
}

// MissingList returns what was missing, in first-seen order.
func (r *Recorder) MissingList() []observation.Missing {
	out := make([]observation.Missing, 0, len(r.mOrder))
	for _, s := range r.mOrder {
		out = append(out, observation.Missing{Signal: s, Reason: r.missing[s]})
	}
	return out
}

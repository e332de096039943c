package goscrape

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// vars is one reading of the service's runtime statistics, from expvar or,
// failing that, from Prometheus text.
type vars struct {
	at       time.Time
	gauges   map[observation.SeriesName]float64 // by series name; absent when the source lacks it
	counters map[observation.SeriesName]float64 // cumulative, by the name of their rate series
	gc       *gcRing                            // expvar only: the last 256 GC pauses
}

// gcRing is runtime.MemStats' record of recent GCs: the i-th GC (counting
// from 1) is at index (i+255)%256.
type gcRing struct {
	numGC    uint32
	pauseNs  [256]uint64
	pauseEnd [256]uint64 // unix nanoseconds
}

// The series made from vars, in output order; their units are the
// catalogue's.
var (
	gaugeSeries = []observation.SeriesName{
		observation.GoHeapAlloc,
		observation.GoHeapSys,
		observation.GoHeapInuse,
		observation.GoHeapObjects,
		observation.GoHeapGoal,
		observation.GoGCCPUFraction,
		observation.GoGoroutines,
	}
	rateSeries = []observation.SeriesName{
		observation.GoGCCount,
		observation.GoAllocRate,
		observation.ServiceRequests,
	}
)

// varsReader reads the runtime statistics at each window's start and
// end, from the same source: expvar, or the Prometheus text at /metrics
// when the service has no usable expvar. A window's end reading is the
// next window's start.
type varsReader struct {
	c        *client
	metrics  bool  // read from /metrics
	fallback error // why, said in every window's Missing
	last     *vars // the previous window's end reading, nil when none

	start, end *vars   // the window's
	errs       []error // why expvar, or a reading, is missing in the window
	reqFailed  bool    // reading the requests counter failed in the window
}

// readStart takes the window's start: the previous window's end reading,
// or a reading now when there is none.
func (r *varsReader) readStart(ctx context.Context) {
	r.start, r.end, r.errs, r.reqFailed = r.last, nil, nil, false
	r.last = nil
	if r.start != nil {
		return
	}
	if r.metrics {
		v, err := r.c.fetchMetrics(ctx)
		if err != nil {
			r.errs = append(r.errs, err)
		}
		r.start = v
		return
	}
	v, err := r.c.fetchExpvar(ctx)
	if err == nil {
		r.start = r.withRequests(ctx, v)
		return
	}
	var te *transportError
	if errors.As(err, &te) {
		r.errs = append(r.errs, err)
		return
	}
	v, merr := r.c.fetchMetrics(ctx)
	if merr != nil {
		r.errs = append(r.errs, fmt.Errorf("%w; no fallback at /metrics: %v", err, merr))
		return
	}
	r.start, r.metrics = v, true
	r.fallback = fmt.Errorf("%w; the go.* series come from the Prometheus text at /metrics instead, without per-GC pauses", err)
}

// readEnd takes the window's end reading, kept for the next window.
func (r *varsReader) readEnd(ctx context.Context) {
	var err error
	if r.metrics {
		r.end, err = r.c.fetchMetrics(ctx)
	} else if r.end, err = r.c.fetchExpvar(ctx); err == nil {
		r.end = r.withRequests(ctx, r.end)
	}
	if err != nil {
		r.end = nil
		if r.start != nil {
			r.errs = append(r.errs, fmt.Errorf("at the window's end: %w (the series have their first point only)", err))
		}
		return
	}
	r.last = r.end
}

// withRequests adds the requests counter, read from /metrics, to an
// expvar reading; a failure to read it is the window's to report.
func (r *varsReader) withRequests(ctx context.Context, v *vars) *vars {
	if r.c == nil || r.c.requests == "" {
		return v
	}
	if x, ok, err := r.c.fetchRequests(ctx); err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %w", observation.ServiceRequests, err))
		r.reqFailed = true
	} else if ok {
		v.counters[observation.ServiceRequests] = x
	}
	return v
}

// series returns the series, and why some or all are missing ("" when
// nothing is).
func (r *varsReader) series(labels map[string]string) ([]observation.Series, string) {
	out, err := varsSeries(r.start, r.end, labels)
	var why []string
	if r.metrics {
		why = append(why, r.fallback.Error())
	}
	for _, e := range append(r.errs, err) {
		if e != nil {
			why = append(why, e.Error())
		}
	}
	if a, b := r.start, r.end; a != nil && b != nil && a.gc != nil && b.gc != nil && b.gc.numGC > a.gc.numGC+256 {
		why = append(why, fmt.Sprintf("%s: %d collections in the window and the runtime keeps the last 256 pauses: the older %d are not in the series",
			observation.GoGCPause, b.gc.numGC-a.gc.numGC, b.gc.numGC-a.gc.numGC-256))
	}
	if b := r.end; r.c != nil && r.c.requests != "" && b != nil && !r.reqFailed {
		if _, ok := b.counters[observation.ServiceRequests]; !ok {
			why = append(why, fmt.Sprintf("%s: no %s in the Prometheus text at /metrics", observation.ServiceRequests, r.c.requests))
		}
	}
	return out, strings.Join(why, "; ")
}

// varsSeries turns the readings at the window's start (a) and end (b) into
// series: gauges as a point per reading, counters as one rate over the
// window, and a point per GC that ended in the window. Either reading may
// be nil; rates and pauses need both, and need the counters not to have
// gone backwards (a restarted service).
func varsSeries(a, b *vars, labels map[string]string) ([]observation.Series, error) {
	var out []observation.Series
	for _, g := range gaugeSeries {
		s := observation.Series{Name: g, Unit: g.Unit(), Labels: labels}
		for _, v := range []*vars{a, b} {
			if x, ok := v.gauge(g); ok {
				s.Points = append(s.Points, observation.Point{Time: stamp(v.at), Value: x})
			}
		}
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	if a == nil || b == nil {
		return out, nil
	}
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return out, nil
	}
	// The requests counter is the service's own: it can fall without a
	// restart (a label set deleted), and then only its rate is lost.
	var reqErr error
	if x0, ok := a.counters[observation.ServiceRequests]; ok {
		if x1, ok := b.counters[observation.ServiceRequests]; ok && x1 < x0 {
			reqErr = fmt.Errorf("%s: the requests counter went from %g to %g in the window (a restart, or label sets deleted): no rate", observation.ServiceRequests, x0, x1)
		}
	}
	for name, x0 := range a.counters {
		if x1, ok := b.counters[name]; ok && x1 < x0 && name != observation.ServiceRequests {
			return out, errors.Join(errors.New("runtime counters went backwards during the window (the service restarted?): no rates"), reqErr)
		}
	}
	for _, r := range rateSeries {
		x0, ok0 := a.counters[r]
		x1, ok1 := b.counters[r]
		if ok0 && ok1 && !(r == observation.ServiceRequests && reqErr != nil) {
			out = append(out, observation.Series{Name: r, Unit: r.Unit(), Labels: labels,
				Points: []observation.Point{{Time: stamp(b.at), Value: (x1 - x0) / dt}}})
		}
	}
	if a.gc != nil && b.gc != nil && b.gc.numGC >= a.gc.numGC {
		pauses := observation.Series{Name: observation.GoGCPause, Unit: observation.GoGCPause.Unit(), Labels: labels}
		n := b.gc.numGC
		for i := max(a.gc.numGC+1, n-min(n, 255)); i <= n; i++ {
			slot := (i + 255) % 256
			pauses.Points = append(pauses.Points, observation.Point{
				Time:  stamp(time.Unix(0, int64(b.gc.pauseEnd[slot]))),
				Value: float64(b.gc.pauseNs[slot]) / 1e9,
			})
		}
		if len(pauses.Points) > 0 {
			out = append(out, pauses)
		}
	}
	return out, reqErr
}

func (v *vars) gauge(name observation.SeriesName) (float64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.gauges[name]
	return x, ok
}

// stamp is a point's time as agent/collect stamps them: UTC, to the millisecond.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

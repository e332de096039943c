package regress

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// VersionOptions configure the comparison of a version with its
// predecessor. A zero field takes its default (DefaultVersionOptions),
// so a caller sets only what it changes. doc.go says why each default is
// what it is.
type VersionOptions struct {
	// Looks are the ages of a deployment (from its first window) at
	// which its head is tested; after the last, the version is settled:
	// no more version findings, and it is the next version's base.
	Looks []time.Duration
	// BaseWindow is how much of the previous version's last windows the
	// base holds (at least; blocks make it up to a BlockLength more).
	BaseWindow time.Duration
	// BlockLength is the granularity of a version's recent windows,
	// aligned to absolute time.
	BlockLength time.Duration
	// MaxBaseAge: a previous version whose last window ended longer ago
	// than this before the new version's first is no base (the service
	// was down: nothing recent to compare with).
	MaxBaseAge time.Duration
	// Warmup is left out of the head at its start: a process's first
	// seconds (start-up, cold caches) are not its steady cost.
	Warmup time.Duration
	// MinSamples and MinWindows a side for a look to test anything:
	// below them it waits for more rather than guess.
	MinSamples float64
	MinWindows int
	// MinShare: functions with a cumulative share of the service's CPU
	// below it on both sides are not tested.
	MinShare float64
	// FDR is the false discovery rate over a deployment's looks: each
	// look tests at FDR/len(Looks) (Benjamini–Hochberg over its
	// functions), so that a deployment with no regression raises a
	// finding with probability at most about FDR.
	FDR float64
	// MinRelChange and MinAbsChange: the least rise that is a finding,
	// relative to the expected cost and as a share of the service's CPU.
	MinRelChange float64
	MinAbsChange float64
	// Confidence is the level of a finding's confidence interval.
	Confidence float64
	// MaxFunctions bounds the functions a service's aggregates count;
	// past it the least costly are forgotten.
	MaxFunctions int
	// MaxVersions bounds the versions of a service kept at once (a
	// rollout runs two); MaxActive the unresolved findings a service's
	// later versions are checked against.
	MaxVersions int
	MaxActive   int
	// Thresholds judge the sides' combined verdicts.
	Thresholds verdict.Thresholds
}

// DefaultVersionOptions are the agent's.
func DefaultVersionOptions() VersionOptions {
	return VersionOptions{
		Looks: []time.Duration{1 * time.Minute, 2 * time.Minute, 3 * time.Minute, 5 * time.Minute,
			10 * time.Minute, 20 * time.Minute, 30 * time.Minute},
		BaseWindow:   30 * time.Minute,
		BlockLength:  5 * time.Minute,
		MaxBaseAge:   30 * time.Minute,
		Warmup:       20 * time.Second,
		MinSamples:   200,
		MinWindows:   3,
		MinShare:     0.01,
		FDR:          0.01,
		MinRelChange: 0.05,
		MinAbsChange: 0.001,
		Confidence:   0.95,
		MaxFunctions: 4000,
		MaxVersions:  4,
		MaxActive:    64,
		Thresholds:   verdict.DefaultThresholds(),
	}
}

// withDefaults fills the zero fields.
func (o VersionOptions) withDefaults() VersionOptions {
	d := DefaultVersionOptions()
	if len(o.Looks) == 0 {
		o.Looks = d.Looks
	} else {
		o.Looks = slices.Clone(o.Looks)
		slices.Sort(o.Looks)
	}
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&o.BaseWindow, d.BaseWindow)
	set(&o.BlockLength, d.BlockLength)
	set(&o.MaxBaseAge, d.MaxBaseAge)
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	setF := func(v *float64, def float64) {
		if !(*v > 0) {
			*v = def
		}
	}
	setF(&o.MinSamples, d.MinSamples)
	setF(&o.MinShare, d.MinShare)
	setF(&o.FDR, d.FDR)
	setF(&o.MinRelChange, d.MinRelChange)
	setF(&o.MinAbsChange, d.MinAbsChange)
	if !(o.Confidence > 0 && o.Confidence < 1) {
		o.Confidence = d.Confidence
	}
	setI := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setI(&o.MinWindows, d.MinWindows)
	setI(&o.MaxFunctions, d.MaxFunctions)
	setI(&o.MaxVersions, d.MaxVersions)
	setI(&o.MaxActive, d.MaxActive)
	if o.Thresholds == (verdict.Thresholds{}) {
		o.Thresholds = d.Thresholds
	}
	return o
}

// baseBlocks is how many blocks the base holds besides the newest,
// partial one.
func (o *VersionOptions) baseBlocks() int {
	return int((o.BaseWindow + o.BlockLength - 1) / o.BlockLength)
}

// lookQ is one look's share of the false discovery rate.
func (o *VersionOptions) lookQ() float64 { return o.FDR / float64(len(o.Looks)) }

// lookback is how far back a replay must start for a new detector to
// find what this one finds: a finding comes at most Warmup + the last
// look after its version's first window, from a base whose last window
// ended at most MaxBaseAge before that, and whose blocks reach back
// baseBlocks+1 block lengths from there (one more for the alignment).
func (o *VersionOptions) lookback() time.Duration {
	return o.Looks[len(o.Looks)-1] + o.Warmup + o.MaxBaseAge + time.Duration(o.baseBlocks()+2)*o.BlockLength
}

// service is what the detector keeps of one service's versions.
type service struct {
	name   string
	table  *table
	tracks []*track
	// active are the service's unresolved version findings by ID, which
	// a later version's looks may resolve; order is their IDs, oldest
	// first, for the MaxActive bound.
	active map[string]Finding
	order  []string
	ix     windowIDs
}

// track is one run of one version: from its first window, or from its
// return after another version ran.
type track struct {
	version string
	source  string
	first   time.Time // its first window's start
	lastEnd time.Time
	ring    *ring // its recent windows: the base of the version after it
	dep     *deployment
}

// deployment is a track's looks until it settles: its comparison with
// its predecessor when it has one (base), and the check of the service's
// unresolved findings against it.
type deployment struct {
	pred   string
	source string
	base   *agg // nil: no predecessor to compare with
	head   *agg // the track's windows after Warmup, in order
	next   int  // the next look
	raised map[string]bool
}

func newService(name string) *service {
	return &service{name: name, table: newTable(), active: map[string]Finding{}}
}

// observe reads one window of the service.
func (s *service) observe(w *Window, o *VersionOptions) []Event {
	tr := s.track(w.Version)
	if tr == nil || s.returned(tr, w.Start) {
		tr = s.start(w, o)
	}
	if tr.source == "" && w.CPU.Samples > 0 {
		tr.source = w.CPU.Source
	}
	if end := w.Start.Add(w.Duration); end.After(tr.lastEnd) {
		tr.lastEnd = end
	}
	cpu := countsCPU(w, tr.source)
	s.table.index(w, &s.ix)
	tr.ring.add(w, &s.ix, o.BlockLength, s.table, cpu)
	var evs []Event
	if d := tr.dep; d != nil {
		if !w.Start.Before(tr.first.Add(o.Warmup)) {
			d.head.add(w, &s.ix, s.table, cpu)
		}
		evs = s.look(tr, w, o)
	}
	// A version that stopped longer ago than MaxBaseAge can be no base:
	// its blocks go (should it come back, it is a new deployment anyway).
	s.tracks = slices.DeleteFunc(s.tracks, func(u *track) bool { return u != tr && u.lastEnd.Before(w.Start.Add(-o.MaxBaseAge)) })
	s.bound(o)
	return evs
}

func (s *service) track(version string) *track {
	for _, t := range s.tracks {
		if t.version == version {
			return t
		}
	}
	return nil
}

// returned tells whether a version comes back after another one started
// once it had stopped (a rollback, or a redeploy of an older build): that
// is a new deployment. The same version after a gap (a restart, an idle
// spell) is the same run, and so is a window of it that starts with the
// other's first (two versions running at once, fed in name order).
func (s *service) returned(tr *track, at time.Time) bool {
	for _, u := range s.tracks {
		if u != tr && !u.first.Before(tr.lastEnd) && u.first.Before(at) {
			return true
		}
	}
	return false
}

// start begins a new run of w's version, compared with the version that
// ran last if it is recent and has a base.
func (s *service) start(w *Window, o *VersionOptions) *track {
	tr := &track{version: w.Version, first: w.Start, ring: newRing(o.baseBlocks() + 1),
		dep: &deployment{head: &agg{}, raised: map[string]bool{}}}
	var pred *track
	for _, u := range s.tracks {
		if u.version == w.Version || !u.ring.any {
			continue
		}
		if pred == nil || u.lastEnd.After(pred.lastEnd) {
			pred = u
		}
	}
	if pred != nil && !pred.lastEnd.Before(w.Start.Add(-o.MaxBaseAge)) {
		base := pred.ring.merged(pred.ring.top - int64(o.baseBlocks()))
		if base.k > 0 {
			tr.dep.pred, tr.dep.source, tr.dep.base = pred.version, pred.source, base
		}
	}
	s.tracks = slices.DeleteFunc(s.tracks, func(u *track) bool { return u.version == w.Version })
	s.tracks = append(s.tracks, tr)
	if len(s.tracks) > o.MaxVersions {
		// Forget the version seen least recently.
		oldest := 0
		for i, u := range s.tracks {
			if u.lastEnd.Before(s.tracks[oldest].lastEnd) {
				oldest = i
			}
		}
		s.tracks = slices.Delete(s.tracks, oldest, oldest+1)
	}
	return tr
}

// look tests the deployment's head at the looks its age has reached
// (once, however many it passed), and checks the service's unresolved
// findings against it.
func (s *service) look(tr *track, w *Window, o *VersionOptions) []Event {
	d := tr.dep
	end := w.Start.Add(w.Duration)
	age := end.Sub(tr.first)
	if age < o.Looks[d.next] {
		return nil
	}
	for d.next < len(o.Looks) && age >= o.Looks[d.next] {
		d.next++
	}
	if d.next == len(o.Looks) {
		tr.dep = nil // settled
	}
	evs := s.resolve(tr, d.head, end, o)
	if d.base == nil || d.source != tr.source {
		return evs // nothing to compare with: windows of different sources never pool
	}
	c, err := evaluate(s.table, d.base, d.head, s.name, d.pred, tr.version, o, o.lookQ(), d.raised)
	if err != nil {
		return evs // too few samples: wait for a later look
	}
	for _, f := range c.Findings {
		if d.raised[f.Function] {
			continue
		}
		d.raised[f.Function] = true
		if _, ok := s.active[f.ID]; ok {
			continue // found before a restart, restored: not news
		}
		s.remember(f, o)
		evs = append(evs, Event{Finding: f})
	}
	return evs
}

// remember keeps a raised finding for later versions to resolve.
func (s *service) remember(f Finding, o *VersionOptions) {
	s.active[f.ID] = f
	s.order = append(s.order, f.ID)
	for len(s.order) > o.MaxActive {
		delete(s.active, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *service) forget(id string) {
	delete(s.active, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
}

// resolve checks the service's unresolved findings of other versions
// against the head of tr: a finding is resolved when the head's cost of
// its function is significantly below half-way between its base and its
// regressed cost (z ≥ the one-sided 95% point), so that noise at an
// early look does not resolve a regression that is still there.
func (s *service) resolve(tr *track, head *agg, end time.Time, o *VersionOptions) []Event {
	if head.n < o.MinSamples || head.k < o.MinWindows {
		return nil
	}
	var evs []Event
	for _, id := range slices.Clone(s.order) {
		f := s.active[id]
		// Only a version deployed after the finding's head can resolve it
		// (a replay also shows the base version, before the head).
		if f.Kind != KindVersion || f.HeadVersion == tr.version || f.Cum.Base <= 0 || !tr.first.After(f.Head.From) {
			continue
		}
		x, exposure, scale, ok := headCounts(s.table, head, f)
		if !ok {
			continue
		}
		// In the head's own terms (a share, or samples per request): the
		// cost half-way back, and the head's against it.
		p0 := f.Cum.Base * (1 + f.ChangePct/200) / scale
		v := p0 / exposure
		if f.Unit == UnitShare {
			v = p0 * (1 - p0) / exposure
		}
		if !(v > 0) || (p0-x/exposure)/math.Sqrt(v) < normalQuantile(0.95) {
			continue
		}
		cost := x / exposure * scale
		f.Resolved, f.ResolvedAt, f.ResolvedBy = true, end, tr.version
		f.Evidence = append(slices.Clip(f.Evidence), fmt.Sprintf("Resolved by %s: %s's cumulative cost is %s over %s samples since %s, back from %s (base %s).",
			tr.version, f.Function, costText(f.Unit, cost), count(head.n), head.from.UTC().Format(time.RFC3339), costText(f.Unit, f.Cum.Head), costText(f.Unit, f.Cum.Base)))
		s.forget(id)
		evs = append(evs, Event{Finding: f, Resolved: true})
	}
	return evs
}

// headCounts is the head's inclusive samples of a finding's function,
// the exposure they are per (samples, or requests) and the scale from a
// count per exposure to the finding's unit; ok is false when the head
// cannot say the cost in that unit.
func headCounts(t *table, head *agg, f Finding) (x, exposure, scale float64, ok bool) {
	if id, found := t.ids[f.Function]; found {
		x = at(head.incl, int(id))
	}
	switch f.Unit {
	case UnitShare:
		return x, head.n, 1, true
	case UnitPerRequest:
		if !head.perRequest() || head.noPeriod {
			return 0, 0, 0, false
		}
		return x, head.req, head.cpu / head.n, true
	case UnitSamplesPerRequest:
		if !head.perRequest() {
			return 0, 0, 0, false
		}
		return x, head.req, 1, true
	}
	return 0, 0, 0, false
}

// bound keeps the service's table within MaxFunctions.
func (s *service) bound(o *VersionOptions) {
	if len(s.table.names) <= o.MaxFunctions && len(s.table.edges) <= 4*o.MaxFunctions {
		return
	}
	var aggs []*agg
	for _, t := range s.tracks {
		aggs = append(aggs, t.ring.aggs()...)
		if t.dep != nil {
			aggs = append(aggs, t.dep.head)
			if t.dep.base != nil {
				aggs = append(aggs, t.dep.base)
			}
		}
	}
	s.table.compact(aggs, o.MaxFunctions*3/4)
}

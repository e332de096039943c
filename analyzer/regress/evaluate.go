package regress

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Constants of the tests that are not worth a knob; doc.go says why
// each is what it is.
const (
	// commonMinShare: functions whose base self share is at least this
	// estimate the common factor.
	commonMinShare = 0.005
	// shiftFraction: falls elsewhere that explain this part of a rise
	// make it a cost shift.
	shiftFraction = 0.5
	// dedupFraction: an ancestor whose rise its regressed descendants
	// explain to this part is not reported on its own.
	dedupFraction = 0.8
	// restZ: the part of an ancestor's rise its regressed descendants do
	// not explain must reach this z for the ancestor to be reported too.
	restZ = 2
	// loadZ: the load changed when the log of the CPU rate's ratio is
	// this many standard errors from 0.
	loadZ = 2
	// minCommonWeight: the least share of the base's CPU, outside a
	// function's subtree, to measure its cost against.
	minCommonWeight = 0.05
	// medianEfficiency: the variance of a median over that of a mean,
	// π/2 for normal data.
	medianEfficiency = math.Pi / 2
	// maxPath bounds a finding's path.
	maxPath = 64
)

// nearFallZ: a fall of a function next to the risen one (a sibling, a
// callee, an ancestor's own code) counts toward a cost shift from this
// z; heldFallZ: from this one, it holds the rise for a later look.
const nearFallZ, heldFallZ = 2.0, 1.0

// nearAlpha bounds the chance that noise alone makes one of a risen
// function's neighbours fall far enough to explain it away.
const nearAlpha = 0.05

// heldLogLR: a neighbour's fall holds a rise when it is e^heldLogLR times
// likelier as the rise's source than as noise.
const heldLogLR = 1

// test is one test of one function's cost.
type test struct {
	measure   Measure
	pb, ph    float64 // the cost per exposure (a share, or samples per request)
	ceff      float64 // the factor the base cost is scaled by
	gated     bool    // ceff is the load floor
	floored   bool    // ceff is the request floor, 1
	delta, sd float64
	z, p      float64
	sig       bool
	outcome   Outcome
	related   []string
	below     []string // the tested callees a cumulative rise sits in (locate)
	f         *fnStat
	fi        int
}

// fnStat is one function in an evaluation: its counts on both sides, its
// tests, its place in the call graph.
type fnStat struct {
	name   string
	sb, sh float64 // self counts
	ib, ih float64 // inclusive counts
	// phi and phiHead are the dispersion φ of its base's and its head's
	// pooled cost: the variance of the estimate over sampling's. They
	// come from one excess variance per window (excess, κ): larger
	// windows (a boosted deploy's, at five times the samples) carry the
	// same jitter of the share as smaller ones, which is more variance
	// over sampling's. The head's excess is its own, shrunk toward the
	// pooled one.
	phi        float64
	phiHead    float64
	cum, own   *test
	fresh      *test  // its new callees' rise (blameCallers)
	anc, desc  []bool // computed for the functions that need them
	callers    []int
	callees    []int
	callerHead []float64
	callerBase []float64
}

// evaluation is one comparison in progress.
type evaluation struct {
	o          *VersionOptions
	base, head *agg
	perRequest bool
	binomial   bool
	eb, eh     float64 // exposures: samples, or requests
	fs         []fnStat
	tests      []*test
	c, varC    float64 // over the whole common set
	set        []ratio // the common set, by ratio
	g, sdLog   float64
	fell, rose bool
	strong     float64
	// raised are the functions found at an earlier look of the same
	// deploy: a rise they explain is theirs (dedup), not news.
	raised map[string]bool
}

// evaluate tests head against base (aggregates numbered by t) at false
// discovery rate q.
func evaluate(t *table, base, head *agg, service, bv, hv string, o *VersionOptions, q float64, raised map[string]bool) (*Comparison, error) {
	if base.n < o.MinSamples || head.n < o.MinSamples || base.k < o.MinWindows || head.k < o.MinWindows {
		return nil, fmt.Errorf("comparing %s %s with %s: %w: %.0f and %.0f samples in %d and %d windows (want %.0f and %d a side)",
			service, hv, bv, ErrTooFewSamples, base.n, head.n, base.k, head.k, o.MinSamples, o.MinWindows)
	}
	e := &evaluation{o: o, base: base, head: head, raised: raised}
	e.perRequest = base.perRequest() && head.perRequest() && base.period == head.period
	e.binomial = !e.perRequest
	e.eb, e.eh = base.n, head.n
	if e.perRequest {
		e.eb, e.eh = base.req, head.req
	}
	e.functions(t)
	e.graph(t)
	e.common()
	e.load()
	e.test()
	e.discover(q)

	out := &Comparison{
		Service: service, BaseVersion: bv, HeadVersion: hv,
		Base: rangeOf(bv, base), Head: rangeOf(hv, head),
		Unit: e.unit(), Common: e.c, Load: e.g, LoadFell: e.fell, Q: q,
		BaseVerdict: base.verdict.summary(o.Thresholds), HeadVerdict: head.verdict.summary(o.Thresholds),
	}
	candidates := e.judge()
	kept := e.holdUnlocated(e.dedup(candidates))
	for _, ts := range e.tests {
		out.Functions = append(out.Functions, e.report(ts))
	}
	for _, fi := range kept {
		out.Findings = append(out.Findings, e.finding(fi, out, q))
	}
	return out, nil
}

func at(s []float64, i int) float64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// functions gathers every function either side ran, in name order (so
// that an evaluation does not depend on how a table numbered them), with
// its dispersion φ from both sides' windows.
func (e *evaluation) functions(t *table) {
	n := max(len(e.base.incl), len(e.head.incl))
	e.fs = make([]fnStat, 0, n)
	eb2, eh2 := e.base.exposure2(e.perRequest), e.head.exposure2(e.perRequest)
	for id := 0; id < n; id++ {
		ib, ih := at(e.base.incl, id), at(e.head.incl, id)
		if ib <= 0 && ih <= 0 {
			continue
		}
		f := fnStat{name: t.names[id], ib: ib, ih: ih, sb: at(e.base.self, id), sh: at(e.head.self, id)}
		x2b, x2h := at(e.base.x2n, id), at(e.head.x2n, id)
		if e.perRequest {
			x2b, x2h = at(e.base.x2r, id), at(e.head.x2r, id)
		}
		var b, h excess
		if ib > 0 && e.base.k > 1 {
			b = excessOf(pearson(ib, x2b, e.eb, e.binomial), e.base.k-1, e.eb, eb2)
		}
		if ih > 0 && e.head.k > 1 {
			h = excessOf(pearson(ih, x2h, e.eh, e.binomial), e.head.k-1, e.eh, eh2)
		}
		kappa := b.plus(h).kappa()
		// The head's own, with the pooled as a prior worth phiPriorDF
		// windows; never below the pooled.
		hdf := float64(h.df)
		kappaHead := max(kappa, (hdf*h.kappa()+phiPriorDF*kappa)/(hdf+phiPriorDF))
		f.phi = 1 + kappa*eb2/e.eb
		f.phiHead = 1 + kappaHead*eh2/e.eh
		e.fs = append(e.fs, f)
	}
	slices.SortFunc(e.fs, func(a, b fnStat) int { return strings.Compare(a.name, b.name) })
}

// ratio is a function of the common set: its head self cost over its
// base's, weighted by the base's.
type ratio struct {
	x, w float64
	i    int
}

// common gathers the common set, the functions with a base self share
// of commonMinShare or more (every function the base ran, for a flat
// profile where fewer than 3 reach it), and c over all of it.
func (e *evaluation) common() {
	pick := func(min float64) {
		e.set = e.set[:0]
		for i := range e.fs {
			f := &e.fs[i]
			if f.sb > 0 && f.sb/e.base.n >= min {
				e.set = append(e.set, ratio{(f.sh / e.eh) / (f.sb / e.eb), f.sb / e.eb, i})
			}
		}
	}
	pick(commonMinShare)
	if len(e.set) < 3 {
		pick(0)
	}
	slices.SortFunc(e.set, func(a, b ratio) int { return cmp.Or(cmp.Compare(a.x, b.x), cmp.Compare(a.i, b.i)) })
	var ok bool
	if e.c, e.varC, ok = e.commonFor(nil, -1); !ok {
		e.c, e.varC = 1, 0
	}
}

// commonFor is c, the weighted median of the common set's ratios
// without function one and those skip says (a tested function and, for
// its cumulative cost, everything it calls: what it is measured against
// is the rest of the service), and c's variance: π/2 times that of the
// weighted mean of the same ratios, from their counts' sampling noise or
// from their scatter about c, whichever is larger (the scatter holds
// what sampling does not: work whose cost follows the load and work that
// does not, moving apart). ok is false when what is left holds less than
// minCommonWeight of the base's CPU.
func (e *evaluation) commonFor(skip []bool, one int) (c, v float64, ok bool) {
	in := make([]ratio, 0, len(e.set))
	xs := make([]float64, 0, len(e.set))
	ws := make([]float64, 0, len(e.set))
	var share float64
	for _, r := range e.set {
		if r.i != one && (skip == nil || !skip[r.i]) {
			in = append(in, r)
			xs = append(xs, r.x)
			ws = append(ws, r.w)
			share += e.fs[r.i].sb / e.base.n
		}
	}
	if len(in) == 0 || share < minCommonWeight {
		return 1, 0, false
	}
	c = weightedMedian(xs, ws)
	var model, scatter, sw float64
	for _, r := range in {
		f := &e.fs[r.i]
		// The ratio's relative variance from its counts, with the
		// function's dispersion, at the ratio c it has under the null.
		rel := 1/math.Max(c*f.sb*e.eh/e.eb, 1) + 1/f.sb
		model += r.w * r.w * c * c * f.phi * rel
		scatter += r.w * r.w * (r.x - c) * (r.x - c)
		sw += r.w
	}
	if n := float64(len(in)); n > 1 {
		scatter *= n / (n - 1)
	}
	return c, medianEfficiency * math.Max(model, scatter) / (sw * sw), true
}

// without is the skip set of function i's cost: its descendants for its
// cumulative cost (it and everything it calls), none for its own code
// (it alone, commonFor's one).
func (e *evaluation) without(i int, m Measure) []bool {
	if m == MeasureCum {
		return e.relatives(i).desc
	}
	return nil
}

// load compares the head's CPU rate (request rate, per request) with
// the base's: g, and whether it fell or rose beyond the sampling and
// load noise of the windows' sample counts (their Poisson dispersion
// about the rate). When the load fell, a rise must also be a rise of
// CPU per second (fixed-cost work's share grows when the load falls);
// when it rose, a fall must also be a fall of CPU per second.
func (e *evaluation) load() {
	e.g = 1
	if e.perRequest {
		e.g = (e.head.req / e.head.secs) / (e.base.req / e.base.secs)
	} else {
		rb, rh := e.base.cpuRate(), e.head.cpuRate()
		if e.base.noPeriod || e.head.noPeriod {
			rb, rh = e.base.n/e.base.secs, e.head.n/e.head.secs
		}
		e.g = rh / rb
		e.sdLog = math.Sqrt(rateDispersion(e.base)/e.base.n + rateDispersion(e.head)/e.head.n)
	}
	if !(e.g > 0) || math.IsInf(e.g, 0) {
		e.g = 1
		return
	}
	e.fell = math.Log(e.g) < -loadZ*e.sdLog
	e.rose = math.Log(e.g) > loadZ*e.sdLog
}

// rateDispersion is the Poisson dispersion of a span's per-window sample
// counts about its sample rate: Pearson's χ² of N_w against λ·e_w, with
// λ = ΣN/Σe, is Σ N_w²/e_w / λ − ΣN.
func rateDispersion(a *agg) float64 {
	if a.expo <= 0 || a.n <= 0 {
		return 1
	}
	chi2 := math.Max(0, a.n2e-a.n*a.n/a.expo) / (a.n / a.expo)
	return dispersion(chi2, a.k-1)
}

// variance is V(p)/E: the sampling variance of a cost p over exposure E.
func (e *evaluation) variance(p, exposure float64) float64 {
	if e.binomial {
		return p * (1 - p) / exposure
	}
	return p / exposure
}

// test makes every function's tests: its cumulative cost when its
// cumulative share reaches MinShare on a side (and the rest of the
// service holds minCommonWeight to measure it against), and its own
// code's when that does too and it has callees (for a leaf the two are
// one).
func (e *evaluation) test() {
	for i := range e.fs {
		f := &e.fs[i]
		if math.Max(f.ib/e.base.n, f.ih/e.head.n) < e.o.MinShare {
			continue
		}
		c, v, ok := e.commonFor(e.without(i, MeasureCum), i)
		if !ok {
			// Its callees are shared (a hash, an encoder, the allocator
			// that every handler calls): by name they are all under it,
			// and too little is left outside. The rest but itself is
			// the reference; its callees' rise, if they rose with it,
			// lowers the test's power, never raises a false finding.
			c, v, ok = e.commonFor(nil, i)
		}
		if ok {
			f.cum = e.rise(MeasureCum, f.ib/e.eb, f.ih/e.eh, c, v, f.phi, f.phiHead)
			f.cum.f, f.cum.fi = f, i
			e.tests = append(e.tests, f.cum)
		}
		hasCallees := f.ib > f.sb || f.ih > f.sh
		if hasCallees && math.Max(f.sb/e.base.n, f.sh/e.head.n) >= e.o.MinShare {
			// Own code's dispersion is taken as the cumulative's: the
			// windows keep no squares of self counts.
			c, v, _ := e.commonFor(nil, i)
			f.own = e.rise(MeasureOwn, f.sb/e.eb, f.sh/e.eh, c, v, f.phi, f.phiHead)
			f.own.f, f.own.fi = f, i
			e.tests = append(e.tests, f.own)
		}
	}
}

// rise tests a cost pb → ph for a rise against c·pb, or against the
// load floor 1/g when the load fell and that is more: then the cost's
// CPU per second must have risen. Per request, against pb when c is
// less (the request floor): a cost per request is not diluted by a rise
// elsewhere, and the others' falling (fixed costs spread over more
// requests when the load rose) does not make a function whose cost per
// request held a regression. The variance adds c's (varC), or g's, to
// the sampling's times φ.
func (e *evaluation) rise(m Measure, pb, ph, c, varC, phi, phiHead float64) *test {
	ts := &test{measure: m, pb: pb, ph: ph, ceff: c}
	extra := pb * pb * varC
	if e.fell && 1/e.g > c {
		ts.ceff, ts.gated = 1/e.g, true
		extra = pb * pb * ts.ceff * ts.ceff * e.sdLog * e.sdLog
	}
	if e.perRequest && ts.ceff < 1 {
		ts.ceff, ts.gated, ts.floored, extra = 1, false, true, 0
	}
	ts.delta = ph - ts.ceff*pb
	v := phiHead*e.variance(ph, e.eh) + phi*ts.ceff*ts.ceff*e.variance(pb, e.eb) + extra
	ts.sd = math.Sqrt(v)
	ts.z, ts.p = 0, 1
	if ts.sd > 0 {
		ts.z = ts.delta / ts.sd
		ts.p = upperTail(ts.z)
	}
	return ts
}

// fall is the z and size of a cost's fall against c·pb (c and its
// variance varC measured without the function, as for a rise), or
// against the load ceiling 1/g when the load rose and that is less: then
// the cost's CPU per second must have fallen (fixed-cost work's share
// shrinks when the load grows). z is negative for a fall.
func (e *evaluation) fall(pb, ph, c, varC, phi float64) (z, amount float64) {
	extra := pb * pb * varC
	if e.rose && 1/e.g < c {
		c = 1 / e.g
		extra = pb * pb * c * c * e.sdLog * e.sdLog
	}
	amount = c*pb - ph
	v := phi*(e.variance(ph, e.eh)+c*c*e.variance(pb, e.eb)) + extra
	if v <= 0 {
		return 0, amount
	}
	return -amount / math.Sqrt(v), amount
}

// fallOf is fall of function j's cumulative cost or own code's.
func (e *evaluation) fallOf(j int, m Measure) (z, amount float64) {
	g := &e.fs[j]
	c, v, ok := e.commonFor(e.without(j, m), j)
	if !ok {
		return 0, 0
	}
	if m == MeasureOwn {
		return e.fall(g.sb/e.eb, g.sh/e.eh, c, v, g.phi)
	}
	return e.fall(g.ib/e.eb, g.ih/e.eh, c, v, g.phi)
}

// discover runs Benjamini–Hochberg over every test at q; strong is the
// Bonferroni bound of the same tests, for falls that need no neighbour.
func (e *evaluation) discover(q float64) {
	slices.SortFunc(e.tests, func(a, b *test) int {
		return cmp.Or(cmp.Compare(a.p, b.p), strings.Compare(a.f.name, b.f.name), strings.Compare(string(a.measure), string(b.measure)))
	})
	ps := make([]float64, len(e.tests))
	for i, ts := range e.tests {
		ps[i] = ts.p
	}
	for _, ts := range e.tests[:bhCount(ps, q)] {
		ts.sig = true
	}
	e.strong = normalQuantile(1 - q/float64(max(1, len(e.tests))))
}

// shareOf is a change of cost as a change of share of the head's CPU.
func (e *evaluation) shareOf(delta float64) float64 {
	return delta * e.eh / e.head.n
}

// judge gives every test its outcome, and returns the functions with a
// regression, in name order.
func (e *evaluation) judge() []int {
	var out []int
	for _, ts := range e.tests {
		f := ts.f
		switch {
		case !ts.sig || ts.delta <= 0:
			ts.outcome = OutcomeNotSignificant
		case ts.pb > 0 && ts.delta/(ts.ceff*ts.pb) < e.o.MinRelChange || e.shareOf(ts.delta) < e.o.MinAbsChange:
			ts.outcome = OutcomeSmall
		default:
			if o, from := e.shiftedFrom(ts); o != "" {
				ts.outcome, ts.related = o, from
			} else if o, below := e.locate(ts); o != "" {
				ts.outcome = o
			} else if f.ib == 0 {
				ts.outcome = OutcomeNew
			} else {
				ts.outcome, ts.below = OutcomeRegression, below
				out = append(out, ts.fi)
			}
		}
	}
	out = append(out, e.blameCallers()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// blameCallers gives the new functions' rise to their callers, as
// compare blames new call sites: a function the base never ran has no
// cost to have grown, but its caller, which now calls it, has. Each new
// function goes to the first caller up its heaviest path that the base
// ran, whose test of its new callees (Measure new) sums their rises,
// adds their variances and takes their smallest p (each is a discovery
// already). It returns the callers.
func (e *evaluation) blameCallers() []int {
	var out []int
	for _, ts := range e.tests {
		if ts.outcome != OutcomeNew || ts.measure != MeasureCum {
			continue
		}
		ci := e.existingCaller(ts.fi)
		if ci < 0 {
			continue
		}
		c := &e.fs[ci]
		nt := c.fresh
		if nt == nil {
			nt = &test{measure: MeasureNew, pb: c.ib / e.eb, ceff: e.c, p: 1, sig: true, outcome: OutcomeRegression, f: c, fi: ci}
			c.fresh = nt
			e.tests = append(e.tests, nt)
			out = append(out, ci)
		}
		nt.delta += ts.delta
		nt.sd = math.Sqrt(nt.sd*nt.sd + ts.sd*ts.sd)
		nt.p = math.Min(nt.p, ts.p)
		nt.ph = nt.ceff*nt.pb + nt.delta
		nt.z = nt.delta / nt.sd
		nt.related = append(nt.related, ts.f.name)
	}
	return out
}

// existingCaller is the first function up i's heaviest path of callers
// that the base ran, or -1.
func (e *evaluation) existingCaller(i int) int {
	seen := map[int]bool{i: true}
	for cur := i; ; {
		f := &e.fs[cur]
		best, bw := -1, 0.0
		for k, c := range f.callers {
			if !seen[c] && (best < 0 || f.callerHead[k] > bw) {
				best, bw = c, f.callerHead[k]
			}
		}
		if best < 0 {
			return -1
		}
		if e.fs[best].ib > 0 {
			return best
		}
		seen[best] = true
		cur = best
	}
}

// rise is the function's cumulative rise: what it explains of its
// callers'.
func (f *fnStat) rise() float64 {
	for _, ts := range []*test{f.cum, f.fresh, f.own} {
		if ts != nil {
			return ts.delta
		}
	}
	return 0
}

// regressed is the function's regression test with the smallest p, or
// nil.
func (f *fnStat) regressed() *test {
	var best *test
	for _, ts := range []*test{f.cum, f.own, f.fresh} {
		if ts != nil && ts.outcome == OutcomeRegression && (best == nil || ts.p < best.p) {
			best = ts
		}
	}
	return best
}

// report is a test as the comparison lists it.
func (e *evaluation) report(ts *test) FunctionTest {
	ft := FunctionTest{
		Function: ts.f.name, Measure: ts.measure,
		Base: e.cost(ts.pb, e.base), Head: e.cost(ts.ph, e.head), Expected: e.cost(ts.ceff*ts.pb, e.head),
		Z: ts.z, PValue: ts.p, Dispersion: ts.f.phi, Outcome: ts.outcome, Related: ts.related,
	}
	ft.ChangePct, ft.CILow, ft.CIHigh = e.change(ts)
	return ft
}

// change is a test's relative change with its interval, in percent; 0
// for a cost the base did not have.
func (e *evaluation) change(ts *test) (pct, lo, hi float64) {
	if ts.pb <= 0 {
		return 0, 0, 0
	}
	base := ts.ceff * ts.pb
	zc := normalQuantile((1 + e.o.Confidence) / 2)
	return 100 * ts.delta / base, 100 * (ts.delta - zc*ts.sd) / base, 100 * (ts.delta + zc*ts.sd) / base
}

// unit is what costs are per.
func (e *evaluation) unit() string {
	switch {
	case !e.perRequest:
		return UnitShare
	case e.base.noPeriod || e.head.noPeriod:
		return UnitSamplesPerRequest
	}
	return UnitPerRequest
}

// cost turns a cost per exposure into the unit's: a share as it is,
// samples per request into CPU seconds per request with the side's mean
// period.
func (e *evaluation) cost(x float64, a *agg) float64 {
	if e.unit() == UnitPerRequest && a.n > 0 {
		return x * a.cpu / a.n
	}
	return x
}

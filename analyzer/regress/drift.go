package regress

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/perfhound/perfhound/internal/textfmt"
)

// Drift of a function within a version: its inclusive share of the
// service's CPU, block by block, against the version's reference.
//
//   - The screen is a one-sided CUSUM of each block's standardized
//     residual z = (p − p_ref)/SE against the sliding reference, SE
//     binomial and inflated by the dispersion the reference showed (φ,
//     from its windows and from its blocks, the latter shrunk towards
//     the former). Never against a reference
//     held since the rise began: a rise begins more often where the
//     reference is low by chance, and a reference held there makes S
//     climb for ever.
//   - An alarm (S ≥ h) is tested: the blocks since the rise began,
//     pooled, against c times the confirmation reference: every block
//     still kept from before the rise began (the reference and its
//     gap), twice the screen's, and not only the blocks whose chance
//     lows made the screen fire. With Benjamini–Hochberg
//     across the functions tested at that block, and a least effect. c
//     is the factor the other functions' self shares moved by over the
//     same blocks (a weighted median against a snapshot of the same
//     reference): a load whose mix moves shifts fixed-cost work against
//     per-request work, and that is not the function's drift. c is
//     estimated over pooled blocks, never one: a block's c varies by
//     a few percent, as much as a big function's share does.
//   - A confirmed alarm is a finding only if the next PersistBlocks
//     blocks, on their own, are still above c times the reference
//     (one-sided, PersistAlpha) by the least effect, and are without
//     the highest of them (one-sided, 0.05: a rise carried by one
//     block is a spike), and so is the last of them alone (a rise gone
//     by then was a transient: a warm-up), and the function
//     spent more CPU a second than in the reference (a fixed-cost
//     function's share rises when the load falls; it did not get
//     slower): a spike, or a transient, is not.
//   - Of a function and its descendants, which rise by the same samples,
//     the finding goes to the deepest whose rise explains the others'.
//   - A finding went away when the last RefBlocks blocks are closer to
//     the reference than to the drifted level and significantly under
//     the latter.

// zPersistRest is the one-sided z (p = 0.05) the persistence blocks without
// their highest must still reach: the persistence's own test controls
// false alarms; this one only asks that the rise not be one block's.
var zPersistRest = quantileZ(0.95)

// driftCSelfShare is the least self share of the service's CPU in the
// reference for a function to count in c; minCFunctions the least such
// functions (besides the one tested) for c to be estimated at all.
const (
	driftCSelfShare    = 0.005
	driftMinCFunctions = 3
)

// fnTrends is the drift of a version's functions.
type fnTrends struct {
	// idx and curs pool the current block's counts of every function
	// seen. They outlive the block (clearing a map of thousands of
	// names and filling it again every block was a third of the cost):
	// a name not seen in a block is dropped at its end, and its slot,
	// listed in free, taken by the next new name. So they hold the
	// names of two blocks at most.
	idx  map[string]int32
	curs []fnCur
	free []int32
	// fns are the functions tracked block by block: those with at
	// least a quarter of MinShare in a block still in the ring; order
	// is fns sorted by name.
	fns   map[string]*fnTrend
	order []*fnTrend
	// edges are the calls between tracked functions, gathered while a
	// candidate waits: they tell a function's ancestors and its path.
	edges   map[Call]float64
	pending int

	slide []fnRef // scratch: the sliding reference of order[i]
	// capped is the last block at whose end MaxFunctions dropped a
	// function that was not negligible.
	capped int64

	// alarms, confirmed and held count the screen's alarms, those
	// confirmed across functions, and those that held: what the stages
	// filtered.
	alarms, confirmed, held int
}

type fnCur struct {
	name              string
	self, incl, incl2 float64
}

// fnBlock is a tracked function's counts in one block: self, incl, and
// Σ incl²/N over its windows (for the dispersion).
type fnBlock struct{ self, incl, incl2 float64 }

// fnTrend is one tracked function.
type fnTrend struct {
	name string
	ring []fnBlock // by the block's ring slot; zero where it was not tracked
	// since is the first block tracked. Before it the function was
	// under a quarter of MinShare, and its zeros stand, unless known
	// is false: MaxFunctions may have dropped it, and the blocks before
	// since are unknown.
	since int64
	known bool
	cs    cusum
	ref   fnRef    // the reference when the rise began, while cs.frozen
	snap  *refSnap // the others' self shares in ref, for c
	run   fnSpan   // the blocks since the rise began
	// persist pools the blocks after a confirmed alarm, head the run
	// and them: the finding's head while it holds, with its c.
	persist, head fnSpan
	headC         float64
	found         *Finding
}

// cusum is the screen's state of one series.
type cusum struct {
	s        float64
	runStart int64 // the block the rise began in
	frozen   bool  // the reference when the rise began is kept
	cand     bool  // a confirmed alarm, waiting for its persistence
}

// fnRef is a function's reference: its counts in the reference blocks,
// with the service's (span: windows, samples, verdict), and the
// dispersion φ ≥ 1 of its share across them.
type fnRef struct {
	span       trendSpan
	cpuWindows int
	blocks     int
	ok         bool
	self, incl float64
	phi        float64
}

func (r *fnRef) share() float64 { return r.incl / r.span.samples }

// refSnap is the self shares, in a reference, of the functions that
// count in c, sorted by name.
type refSnap struct {
	names  []string
	shares []float64
}

// fnSpan pools a function's blocks first..last.
type fnSpan struct {
	span        trendSpan
	blocks      int
	self, incl  float64
	first, last int64
}

func (a *fnSpan) addBlock(seq int64, b *trendBlock, fb fnBlock) {
	if a.blocks == 0 {
		a.first = seq
	}
	a.last = seq
	a.span.add(b.span)
	a.blocks++
	a.self += fb.self
	a.incl += fb.incl
}

func (a *fnSpan) join(o fnSpan) {
	if o.blocks == 0 {
		return
	}
	if a.blocks == 0 {
		a.first = o.first
	}
	a.last = o.last
	a.span.add(o.span)
	a.blocks += o.blocks
	a.self += o.self
	a.incl += o.incl
}

func (a *fnSpan) share() float64 { return a.incl / a.span.samples }

func (f *fnTrends) init() {
	f.capped = math.MinInt64
	f.idx = map[string]int32{}
	f.fns = map[string]*fnTrend{}
	f.edges = map[Call]float64{}
}

// addWindow pools w's counts of every function into the current block:
// one map access a function, nothing allocated once the block's
// functions have been seen.
func (f *fnTrends) addWindow(w Window) {
	n := w.CPU.Samples
	for name, c := range w.CPU.Funcs {
		i, ok := f.idx[name]
		if !ok {
			if k := len(f.free); k > 0 {
				i, f.free = f.free[k-1], f.free[:k-1]
				f.curs[i] = fnCur{name: name}
			} else {
				i = int32(len(f.curs))
				f.curs = append(f.curs, fnCur{name: name})
			}
			f.idx[name] = i
		}
		e := &f.curs[i]
		e.self += c.Self
		e.incl += c.Incl
		e.incl2 += c.Incl * c.Incl / n
	}
	if f.pending > 0 {
		for call, n := range w.CPU.Calls {
			if f.fns[call.Caller] != nil && f.fns[call.Callee] != nil {
				f.edges[call] += n
			}
		}
	}
}

// push moves the current block's counts into the tracked functions'
// rings, admitting the functions that reached a quarter of MinShare.
func (f *fnTrends) push(v *verTrend, seq int64) {
	n := v.block(seq).span.samples
	s := v.slot(seq)
	for _, fn := range f.order {
		fn.ring[s] = fnBlock{}
	}
	admitted := false
	for i := range f.curs {
		e := &f.curs[i]
		if e.name == "" {
			continue
		}
		if e.incl == 0 && e.self == 0 {
			delete(f.idx, e.name)
			e.name = ""
			f.free = append(f.free, int32(i))
			continue
		}
		fn := f.fns[e.name]
		if fn == nil {
			if !(n > 0) || e.incl/n < v.t.o.MinShare/4 {
				continue
			}
			fn = &fnTrend{name: strings.Clone(e.name), ring: make([]fnBlock, len(v.ring)), since: seq,
				known: f.capped == math.MinInt64 || seq-f.capped > int64(len(v.ring))}
			f.fns[fn.name] = fn
			admitted = true
		}
		fn.ring[s] = fnBlock{self: e.self, incl: e.incl, incl2: e.incl2}
	}
	if admitted {
		f.sortOrder()
	}
	for i := range f.curs {
		f.curs[i].self, f.curs[i].incl, f.curs[i].incl2 = 0, 0, 0
	}
	f.prune(v, seq)
}

func (f *fnTrends) sortOrder() {
	f.order = f.order[:0]
	for _, fn := range f.fns {
		f.order = append(f.order, fn)
	}
	slices.SortFunc(f.order, func(a, b *fnTrend) int { return strings.Compare(a.name, b.name) })
}

// close tests block seq (closed, not the warm-up) for every tracked
// function.
func (f *fnTrends) close(v *verTrend, seq int64, ev []Event) []Event {
	o := v.t.o
	blk := v.block(seq)
	s := v.slot(seq)
	n := blk.span.samples
	refFrom, refTo, refOK := v.refRange(seq)
	if n < o.MinBlockSamples {
		return ev // too few samples: wait
	}

	// Every tracked function's sliding reference.
	f.slide = slices.Grow(f.slide[:0], len(f.order))[:len(f.order)]
	if refOK {
		for i, fn := range f.order {
			f.slide[i] = v.fnRef(fn, refFrom, refTo)
		}
	}
	var snap *refSnap // the confirmation reference's, made when a rise begins

	type nomination struct {
		fn *fnTrend
		c  float64
	}
	var noms []nomination
	var ps []float64
	tested := 0
	for i, fn := range f.order {
		fb := fn.ring[s]
		if fn.found != nil {
			ev = f.wentAway(v, fn, seq, ev)
			continue
		}
		if fn.cs.cand {
			tested++
			fn.persist.addBlock(seq, blk, fb)
			continue
		}
		if !refOK || !f.slide[i].ok {
			continue
		}
		ref := &f.slide[i]
		p := fb.incl / n
		if max(p, ref.share()) < o.MinShare && fn.cs.s == 0 {
			continue
		}
		tested++
		z, _, _ := driftZ(fb.incl, n, ref.incl, ref.span.samples, 1, ref.phi)
		fn.cs.s = max(0, fn.cs.s+z-o.CUSUMK)
		if fn.cs.s == 0 {
			fn.cs.frozen, fn.snap = false, nil
			fn.run = fnSpan{}
			continue
		}
		if !fn.cs.frozen {
			if snap == nil {
				snap = f.snapshot(v, seq)
			}
			fn.cs.frozen, fn.cs.runStart, fn.snap = true, seq, snap
			if fn.ref = v.fnRef(fn, v.confirmFrom(seq), seq); !fn.ref.ok {
				fn.ref = *ref
			}
		}
		fn.run.addBlock(seq, blk, fb)
		if fn.cs.s >= o.CUSUMH {
			f.alarms++
			c := f.cOf(v, fn, fn.run.first, fn.run.last)
			zr, _, _ := driftZ(fn.run.incl, fn.run.span.samples, fn.ref.incl, fn.ref.span.samples, c, fn.ref.phi)
			noms = append(noms, nomination{fn, c})
			ps = append(ps, tailP(zr))
		}
	}

	// Alarms confirmed across the functions tested become candidates.
	for i, pass := range bhPass(ps, tested, o.FDR) {
		fn := noms[i].fn
		if pass && f.bigEnough(o, &fn.run, &fn.ref, noms[i].c) {
			f.confirmed++
			fn.cs.cand = true
			fn.persist = fnSpan{}
			f.pending++
		}
	}

	// Candidates whose persistence is complete: deepest first, so that
	// an ancestor meets the descendant that explains it.
	var done []*fnTrend
	for _, fn := range f.order {
		if fn.cs.cand && fn.persist.blocks >= o.PersistBlocks {
			done = append(done, fn)
		}
	}
	slices.SortStableFunc(done, func(a, b *fnTrend) int { return cmp.Compare(a.persist.share(), b.persist.share()) })
	for _, fn := range done {
		ev = f.decide(v, fn, blk, ev)
	}
	if f.pending == 0 {
		clear(f.edges)
	}
	return ev
}

// fnRef pools fn's counts over the reference blocks [from, to) with
// enough samples (and known for fn); ok is false with fewer than half of
// RefBlocks.
func (v *verTrend) fnRef(fn *fnTrend, from, to int64) fnRef {
	o := v.t.o
	var r fnRef
	var incl2, blockSq float64
	for s := from; s < to; s++ {
		b := v.block(s)
		if b == nil || b.span.samples < o.MinBlockSamples || (!fn.known && s < fn.since) {
			continue
		}
		fb := fn.ring[v.slot(s)]
		r.span.add(b.span)
		r.cpuWindows += b.cpuWindows
		r.blocks++
		r.self += fb.self
		r.incl += fb.incl
		incl2 += fb.incl2
		blockSq += fb.incl * fb.incl / b.span.samples
	}
	r.ok = r.blocks >= (o.RefBlocks+1)/2
	r.phi = 1
	p := r.incl / r.span.samples
	if r.ok && p > 0 && p < 1 {
		var phiW, phiB float64
		if r.cpuWindows > 1 {
			phiW = (incl2 - p*r.incl) / (p * (1 - p) * float64(r.cpuWindows-1))
		}
		if r.blocks > 1 {
			phiB = (blockSq - p*r.incl) / (p * (1 - p) * float64(r.blocks-1))
		}
		r.phi = phiOf(phiW, phiB, r.blocks-1)
	}
	return r
}

// phiPriorDF is the weight, in degrees of freedom, of the windows'
// dispersion in the blocks' estimate: from half a dozen blocks, a
// dispersion of 1 is estimated over 1.76 one time in ten (χ²₅/5).
const phiPriorDF = 10

// phiOf is φ ≥ 1 from the windows' estimate phiW and the blocks'
// phiB (with df degrees of freedom): the blocks' catches what varies
// slower than a window, shrunk towards the windows' for its noise.
func phiOf(phiW, phiB float64, df int) float64 {
	phiW = max(1, phiW)
	if df < 1 {
		return phiW
	}
	return max(phiW, (float64(df)*phiB+phiPriorDF*phiW)/float64(df+phiPriorDF))
}

// snapshot is the self shares, in the confirmation reference of a rise
// beginning at block seq, of the functions that count in c.
func (f *fnTrends) snapshot(v *verTrend, seq int64) *refSnap {
	snap := &refSnap{}
	from := v.confirmFrom(seq)
	for _, fn := range f.order {
		r := v.fnRef(fn, from, seq)
		if sh := r.self / r.span.samples; r.ok && sh >= driftCSelfShare {
			snap.names = append(snap.names, fn.name)
			snap.shares = append(snap.shares, sh)
		}
	}
	return snap
}

// cOf is the factor the self shares of the functions of fn's snapshot
// other than fn moved by from its reference to the blocks first..last
// still in the ring (pooled), a weighted median; 1 when too few
// functions tell.
func (f *fnTrends) cOf(v *verTrend, fn *fnTrend, first, last int64) float64 {
	return f.cOfSnap(v, fn.snap, fn.name, first, last)
}

// cOfSnap is cOf against snap, leaving out the function called name.
func (f *fnTrends) cOfSnap(v *verTrend, snap *refSnap, name string, first, last int64) float64 {
	if snap == nil {
		return 1
	}
	o := v.t.o
	first = max(first, last-int64(len(v.ring))+1)
	var n float64
	for s := first; s <= last; s++ {
		if b := v.block(s); b != nil && b.span.samples >= o.MinBlockSamples {
			n += b.span.samples
		}
	}
	if n == 0 {
		return 1
	}
	xs := make([]weightedValue, 0, len(snap.names))
	for k, other := range snap.names {
		if other == name {
			continue
		}
		var self float64
		other := f.fns[other]
		if other != nil && !other.known && other.since > first {
			continue // not known over the span
		}
		if other != nil {
			for s := first; s <= last; s++ {
				if b := v.block(s); b != nil && b.span.samples >= o.MinBlockSamples {
					self += other.ring[v.slot(s)].self
				}
			}
		}
		xs = append(xs, weightedValue{self / n / snap.shares[k], snap.shares[k]})
	}
	if len(xs) < driftMinCFunctions {
		return 1
	}
	slices.SortStableFunc(xs, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
	c := weightedMedianSkip(xs, -1)
	if !(c > 0) {
		return 1
	}
	return c
}

// driftZ compares a share (x of n) with c times a reference share (xr
// of nr) under dispersion phi: the standardized difference, the
// difference and its standard error. The head's term takes the larger
// of the variance under no change and the one observed, so that a share
// rising from nothing is not infinitely significant.
func driftZ(x, n, xr, nr, c, phi float64) (z, d, se float64) {
	p, pr := x/n, xr/nr
	p0 := min(c*pr, 1)
	v := phi * (max(p0*(1-p0), p*(1-p))/n + c*c*pr*(1-pr)/nr)
	d = p - p0
	se = math.Sqrt(v)
	if se == 0 {
		return 0, d, 0
	}
	return d / se, d, se
}

// bigEnough is the least effect: the head's share beyond c times the
// reference's by MinRelChange and MinAbsChange, one of them at least
// MinShare, and the function's CPU a second up by MinRelChange too.
func (f *fnTrends) bigEnough(o TrendOptions, head *fnSpan, ref *fnRef, c float64) bool {
	p, pr := head.share(), ref.share()
	base := c * pr
	if max(p, pr) < o.MinShare || p-base < o.MinAbsChange || (base > 0 && p/base-1 < o.MinRelChange) {
		return false
	}
	rh, rr := head.incl/head.span.cpuSeconds, ref.incl/ref.span.cpuSeconds
	return rr == 0 || rh/rr-1 >= o.MinRelChange
}

// decide raises fn's candidate as a finding if the blocks after its
// alarm held the rise and no descendant's rise explains it; otherwise
// the screen starts over. Blocks not yet significant but nearer the rise
// than the reference are looked at again, block by block, up to twice
// PersistBlocks: a rise of a few standard errors a block needs them.
func (f *fnTrends) decide(v *verTrend, fn *fnTrend, blk *trendBlock, ev []Event) []Event {
	o := v.t.o
	c := f.cOf(v, fn, fn.persist.first, fn.persist.last)
	holds := func(sp *fnSpan, zMin float64) bool {
		z, _, _ := driftZ(sp.incl, sp.span.samples, fn.ref.incl, fn.ref.span.samples, c, fn.ref.phi)
		return sp.blocks > 0 && z >= zMin && f.bigEnough(o, sp, &fn.ref, c)
	}
	rest, last := f.lessTop(v, fn, &fn.persist)
	held := holds(&fn.persist, v.t.zPersist) && holds(&rest, zPersistRest) && holds(&last, zPersistRest)
	if !held && fn.persist.blocks < 2*o.PersistBlocks && fn.persist.share() > (c*fn.ref.share()+fn.run.share())/2 {
		return ev // not yet significant, but nearer the rise than the reference: look again
	}
	fn.cs.cand = false
	f.pending--
	head := fn.run
	head.join(fn.persist)
	headC := f.cOf(v, fn, head.first, head.last)
	runStart := fn.cs.runStart
	var b blamed
	var deeper bool
	if held {
		b, deeper = f.blame(v, fn, c)
	}
	if !held || deeper {
		fn.cs = cusum{}
		fn.run, fn.persist, fn.snap = fnSpan{}, fnSpan{}, nil
	}
	switch {
	case !held:
		return ev
	case deeper && (b.fn.found != nil || b.fn.cs.cand):
		return ev // the rise is the descendant's, which has it in hand
	case deeper:
		return f.raiseBlamed(v, fn.name, b, head, runStart, blk, ev)
	}
	f.held++
	fn.head, fn.headC = head, headC
	fn.found = f.finding(v, fn, blk, c)
	return append(ev, Event{Finding: *fn.found})
}

// blamed is a descendant that explains a function's rise, with what it
// is measured by: its reference, the snapshot for c, its counts over the
// function's persistence blocks and their c.
type blamed struct {
	fn   *fnTrend
	ref  fnRef
	snap *refSnap
	per  fnSpan
	c    float64
}

// blame finds the deepest tracked descendant of fn whose rise over fn's
// persistence blocks explains fn's: it rose significantly by the least
// effect (one-sided, PersistAlpha) or has a finding already, and what fn
// rose beyond it is not significant. One slowdown raises a
// function and all its callers by the same samples; the finding belongs
// to the function where the growth sits, as compare's attribution says.
// A descendant is measured against its own confirmation reference if
// its rise began, else against one from where fn's began.
func (f *fnTrends) blame(v *verTrend, fn *fnTrend, c float64) (blamed, bool) {
	o := v.t.o
	per := &fn.persist
	dA := per.share() - c*fn.ref.share()
	callees := map[string][]string{}
	for e := range f.edges {
		callees[e.Caller] = append(callees[e.Caller], e.Callee)
	}
	for _, cs := range callees {
		slices.Sort(cs)
	}
	var best blamed
	found := false
	seen := map[string]bool{fn.name: true}
	queue := []string{fn.name}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, callee := range callees[name] {
			if seen[callee] {
				continue
			}
			seen[callee] = true
			queue = append(queue, callee)
			d := f.fns[callee]
			if d == nil {
				continue
			}
			ref, snap := d.ref, d.snap
			if d.found == nil && !d.cs.frozen {
				ref, snap = v.fnRef(d, v.confirmFrom(fn.cs.runStart), fn.cs.runStart), fn.snap
			}
			if !ref.ok {
				continue
			}
			var sp fnSpan
			for s := per.first; s <= per.last; s++ {
				if b := v.block(s); b != nil && b.span.samples >= o.MinBlockSamples {
					sp.addBlock(s, b, d.ring[v.slot(s)])
				}
			}
			if sp.blocks == 0 {
				continue
			}
			cd := f.cOfSnap(v, snap, d.name, per.first, per.last)
			if z, _, _ := driftZ(sp.incl, sp.span.samples, ref.incl, ref.span.samples, cd, ref.phi); d.found == nil && (z < v.t.zPersist || !f.bigEnough(o, &sp, &ref, cd)) {
				continue // it did not rise on its own (a finding's rise is known)
			}
			dD := sp.share() - cd*ref.share()
			q := min(max(fn.ref.share()-ref.share(), 1/fn.ref.span.samples), 1)
			se := math.Sqrt(fn.ref.phi * q * (1 - q) * (1/sp.span.samples + 1/fn.ref.span.samples))
			if dA-dD > v.t.zPersist*se {
				continue // fn rose beyond it
			}
			if !found || ref.share() < best.ref.share() {
				best, found = blamed{fn: d, ref: ref, snap: snap, per: sp, c: cd}, true
			}
		}
	}
	return best, found
}

// raiseBlamed raises the finding of b.fn, which explains its caller's
// rise (caller's head, from block runStart).
func (f *fnTrends) raiseBlamed(v *verTrend, caller string, b blamed, callerHead fnSpan, runStart int64, blk *trendBlock, ev []Event) []Event {
	o := v.t.o
	d := b.fn
	var head fnSpan
	for s := max(callerHead.first, blk.seq-int64(len(v.ring))+1); s <= callerHead.last; s++ {
		if bb := v.block(s); bb != nil && bb.span.samples >= o.MinBlockSamples {
			head.addBlock(s, bb, d.ring[v.slot(s)])
		}
	}
	d.cs = cusum{s: 0, runStart: runStart, frozen: true}
	d.ref, d.snap, d.run, d.persist = b.ref, b.snap, fnSpan{}, b.per
	d.head, d.headC = head, f.cOfSnap(v, b.snap, d.name, head.first, head.last)
	f.held++
	d.found = f.finding(v, d, blk, b.c)
	d.found.Evidence = append(d.found.Evidence, fmt.Sprintf("Its caller %s rose as much, and was flagged first; the rise is %s's.", caller, d.name))
	return append(ev, Event{Finding: *d.found})
}

// lessTop is sp's blocks without the one where fn's share was highest,
// and its last block alone: a rise that holds must not be carried by one
// block (a spike that lasted two blocks would be, through the first of
// the persistence), nor be gone by its end (a warm-up after a restart).
func (f *fnTrends) lessTop(v *verTrend, fn *fnTrend, sp *fnSpan) (rest, last fnSpan) {
	o := v.t.o
	top, most := int64(math.MinInt64), -1.0
	for s := sp.first; s <= sp.last; s++ {
		if b := v.block(s); b != nil && b.span.samples >= o.MinBlockSamples {
			if sh := fn.ring[v.slot(s)].incl / b.span.samples; sh > most {
				top, most = s, sh
			}
		}
	}
	for s := sp.first; s <= sp.last; s++ {
		if b := v.block(s); s != top && b != nil && b.span.samples >= o.MinBlockSamples {
			rest.addBlock(s, b, fn.ring[v.slot(s)])
		}
	}
	if b := v.block(sp.last); b != nil {
		last.addBlock(sp.last, b, fn.ring[v.slot(sp.last)])
	}
	return rest, last
}

// path is the heaviest chain of callers up from fn, root first, along
// the gathered edges (at most 64 frames, no frame twice).
func (f *fnTrends) path(fn string) []string {
	callers := map[string]Call{}
	for c, n := range f.edges {
		best, ok := callers[c.Callee]
		if !ok || n > f.edges[best] || n == f.edges[best] && c.Caller < best.Caller {
			callers[c.Callee] = c
		}
	}
	out := []string{fn}
	seen := map[string]bool{fn: true}
	for len(out) < 64 {
		c, ok := callers[out[len(out)-1]]
		if !ok || seen[c.Caller] {
			break
		}
		seen[c.Caller] = true
		out = append(out, c.Caller)
	}
	slices.Reverse(out)
	return out
}

// finding describes fn's drift; cp is the c of its persistence. The
// change is the one the persistence blocks hold (for a drift that
// climbed, where it got to); its p-value is the whole head's, from when
// the rise began.
func (f *fnTrends) finding(v *verTrend, fn *fnTrend, blk *trendBlock, cp float64) *Finding {
	t, o := v.t, v.t.o
	head, per, ref := &fn.head, &fn.persist, &fn.ref
	x := v.finding(KindDrift, fn.name, "", t.blockStart(fn.cs.runStart), blk.span.to)
	z, _, _ := driftZ(head.incl, head.span.samples, ref.incl, ref.span.samples, fn.headC, ref.phi)
	zp, d, _ := driftZ(per.incl, per.span.samples, ref.incl, ref.span.samples, cp, ref.phi)
	p, pr := per.share(), ref.share()
	// From nothing (a function under a quarter of MinShare, not tracked
	// then), the change is measured from that quarter.
	base := max(cp*pr, o.MinShare/4)
	seCI := math.Sqrt(ref.phi * (p*(1-p)/per.span.samples + cp*cp*pr*(1-pr)/ref.span.samples))
	x.Path = f.path(fn.name)
	x.Base = ref.span.rangeOf(v.version)
	x.Head = head.span.rangeOf(v.version)
	x.ChangePct = 100 * d / base
	x.CILow = 100 * (d - t.zCI*seCI) / base
	x.CIHigh = 100 * (d + t.zCI*seCI) / base
	x.PValue = tailP(z)
	x.Own = Change{Base: ref.self / ref.span.samples, Head: per.self / per.span.samples}
	x.Cum = Change{Base: pr, Head: p}
	x.Unit = "share of the service's CPU"
	x.BaseVerdict = ref.span.verdict.summary(o.Thresholds)
	x.HeadVerdict = head.span.verdict.summary(o.Thresholds)
	x.Evidence = []string{
		fmt.Sprintf("%s's share of the service's CPU rose from %s (%s) to %s since %s, and holds at %s (%s): %+.0f%% (%.0f%% CI %+.0f..%+.0f%%).",
			fn.name, textfmt.Pct(pr), clockSpan(ref.span), textfmt.Pct(head.share()), head.span.from.UTC().Format("15:04 UTC"),
			textfmt.Pct(p), clockSpan(per.span), x.ChangePct, 100*o.Confidence, x.CILow, x.CIHigh),
		fmt.Sprintf("p %s over %s and %s samples since the rise began; the %s after it was flagged alone give p %s. %s",
			pText(x.PValue), textfmt.Num(ref.span.samples), textfmt.Num(head.span.samples), blocksText(o, per.blocks), pText(tailP(zp)),
			cpuRate(per.incl/per.span.cpuSeconds, ref.incl/ref.span.cpuSeconds)),
	}
	if math.Abs(cp-1) >= 0.01 {
		x.Evidence = append(x.Evidence, fmt.Sprintf("The other functions' shares moved by a factor of %.3f meanwhile (dilution, or the load's mix); the rise is measured against the reference's share times that.", cp))
	}
	if ref.phi > 1.05 {
		x.Evidence = append(x.Evidence, fmt.Sprintf("The share varied %.1f times as much as sampling alone explains in the reference; the test allows for it.", ref.phi))
	}
	return x
}

// cpuRate says how much more CPU a second a function spent (samples a
// second, head and reference).
func cpuRate(head, ref float64) string {
	if ref == 0 {
		return "It spent CPU where it spent none in the reference."
	}
	return "It spent " + textfmt.Pct(head/ref-1) + " more CPU a second than in the reference."
}

// wentAway resolves fn's finding when its last RefBlocks blocks are back:
// closer to the reference than to the drifted level, and significantly
// under the latter.
func (f *fnTrends) wentAway(v *verTrend, fn *fnTrend, seq int64, ev []Event) []Event {
	o := v.t.o
	var rec fnSpan
	for s := seq - int64(o.RefBlocks) + 1; s <= seq; s++ {
		if b := v.block(s); b != nil && b.span.samples >= o.MinBlockSamples {
			rec.addBlock(s, b, fn.ring[v.slot(s)])
		}
	}
	if rec.blocks < (o.RefBlocks+1)/2 || rec.first <= fn.head.last {
		return ev
	}
	c := f.cOf(v, fn, rec.first, rec.last)
	refNow := c * fn.ref.share()
	level := fn.head.share() * c / fn.headC
	p := rec.share()
	se := math.Sqrt(fn.ref.phi * (p*(1-p)/rec.span.samples + level*(1-level)/fn.head.span.samples))
	if p >= (refNow+level)/2 || se == 0 || (level-p)/se < v.t.zPersist {
		return ev
	}
	x := *fn.found
	x.Resolved, x.ResolvedAt = true, rec.span.to
	x.Evidence = append(slices.Clip(x.Evidence), fmt.Sprintf("It went away: %s in the last %s, against %s before it rose and %s after.",
		textfmt.Pct(p), blocksText(o, rec.blocks), textfmt.Pct(fn.ref.share()), textfmt.Pct(fn.head.share())))
	fn.found, fn.snap = nil, nil
	fn.cs = cusum{}
	fn.run, fn.persist, fn.head = fnSpan{}, fnSpan{}, fnSpan{}
	return append(ev, Event{Finding: x, Resolved: true})
}

// prune forgets the tracked functions with no state under a quarter of
// MinShare in every block of the ring, and past MaxFunctions the ones
// with the least share.
func (f *fnTrends) prune(v *verTrend, seq int64) {
	o := v.t.o
	type kept struct {
		fn   *fnTrend
		peak float64
	}
	var keep []kept
	for _, fn := range f.order {
		peak := 0.0
		for s := range v.ring {
			if b := &v.ring[s]; b.seq != math.MinInt64 && b.span.samples > 0 {
				peak = max(peak, fn.ring[s].incl/b.span.samples)
			}
		}
		busy := fn.cs.s > 0 || fn.cs.cand || fn.found != nil
		if !busy && peak < o.MinShare/4 {
			delete(f.fns, fn.name)
			continue
		}
		keep = append(keep, kept{fn, peak})
	}
	if len(keep) > o.MaxFunctions {
		slices.SortStableFunc(keep, func(a, b kept) int { return cmp.Compare(b.peak, a.peak) })
		for _, k := range keep[o.MaxFunctions:] {
			if k.fn.found == nil && !k.fn.cs.cand {
				delete(f.fns, k.fn.name)
				f.capped = seq
			}
		}
	}
	if len(f.fns) != len(f.order) {
		f.sortOrder()
	}
}

// clockSpan is a span's times of day, "11:00–11:30 UTC".
func clockSpan(s trendSpan) string {
	return s.from.UTC().Format("15:04") + "–" + s.to.UTC().Format("15:04") + " UTC"
}

// blocksText says n blocks in words: "3 blocks of 5 min".
func blocksText(o TrendOptions, n int) string {
	return textfmt.Plural(n, "block") + " of " + durText(o.BlockLength)
}

// durText is a duration in words: "5 min", "1 h", else as Go prints it.
func durText(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}

package regress

import (
	"fmt"
	"math"
	"slices"

	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Drift of a resource within a version: the time the service's threads
// spend bound by each class per unit of its work, block by block, with
// the screen, confirmation, persistence and went-away of drift.go.
//
// Per unit of work, because a load that grows moves every resource's
// time with it: the unit is a request where every window of both sides
// knows the requests served, else a second on a CPU (then the CPU's own
// series is the time spent waiting for one, the run queue: a noisy
// neighbour). A block's value is the ratio of its sums, ΣX/ΣW, and its
// standard error is the ratio estimator's, from the reference windows'
// residuals, inflated by the dispersion of the reference blocks.

// The resource series.
const (
	resCPU = iota // time on a CPU
	resRunQueue
	resMemory
	resIO
	resNetwork
	resContention
	nRes
)

var resNames = [nRes]string{"cpu", "run_queue", "memory", "io", "network", "contention"}

// resWhat says what a resource's series is, for the evidence.
var resWhat = [nRes]string{"time on a CPU", "time waiting for a CPU", "time in memory management", "time blocked on disk I/O", "time blocked on the network", "time blocked on locks"}

// resMinRelFloor is the least standard error of a block's ratio, as a
// part of the reference's: verdict loads derived from counters can be
// exactly constant, and a change of 10⁻¹² is not infinitely significant.
const resMinRelFloor = 0.01

// resBlock sums what the resource series need of a block's windows (those
// with time on a CPU): per window, W is the work (c: seconds on a CPU;
// r: requests), X each resource's thread-seconds.
type resBlock struct {
	n, nReq          float64
	wc, wc2, wr, wr2 float64
	x                [nRes]resX
}

type resX struct{ x, x2, xwc, xwr float64 }

func (r *resBlock) addWindow(w Window) {
	d := w.Duration.Seconds()
	if !(d > 0) {
		return
	}
	l := w.Verdict.Load
	rq := w.Verdict.RunQueue
	on := max(0, l[verdict.ClassCPU]-rq) * d
	if !(on > 0) {
		return
	}
	vals := [nRes]float64{on, rq * d, l[verdict.ClassMemory] * d, l[verdict.ClassIO] * d, l[verdict.ClassNetwork] * d, l[verdict.ClassContention] * d}
	req := max(w.Requests, 0)
	r.n++
	if req > 0 {
		r.nReq++
	}
	r.wc += on
	r.wc2 += on * on
	r.wr += req
	r.wr2 += req * req
	for i, x := range vals {
		e := &r.x[i]
		e.x += x
		e.x2 += x * x
		e.xwc += x * on
		e.xwr += x * req
	}
}

func (r *resBlock) add(o resBlock) {
	r.n += o.n
	r.nReq += o.nReq
	r.wc += o.wc
	r.wc2 += o.wc2
	r.wr += o.wr
	r.wr2 += o.wr2
	for i := range r.x {
		r.x[i].x += o.x[i].x
		r.x[i].x2 += o.x[i].x2
		r.x[i].xwc += o.x[i].xwc
		r.x[i].xwr += o.x[i].xwr
	}
}

// perRequest says whether the block's every window knows its requests.
func (r *resBlock) perRequest() bool { return r.n > 0 && r.nReq == r.n }

// ratio is series i's time per unit of work, and the work.
func (r *resBlock) ratio(i int, perReq bool) (value, work float64) {
	work = r.wc
	if perReq {
		work = r.wr
	}
	if work <= 0 {
		return 0, 0
	}
	return r.x[i].x / work, work
}

// residual is the windows' variance around the ratio rt of series i:
// Σ(X − rt·W)²/(n − 1).
func (r *resBlock) residual(i int, perReq bool, rt float64) float64 {
	if r.n < 2 {
		return 0
	}
	w2, xw := r.wc2, r.x[i].xwc
	if perReq {
		w2, xw = r.wr2, r.x[i].xwr
	}
	return max(0, r.x[i].x2-2*rt*xw+rt*rt*w2) / (r.n - 1)
}

// resSpan pools a resource's blocks.
type resSpan struct {
	span   trendSpan
	sums   resBlock
	blocks int
	first  int64
	last   int64
}

func (a *resSpan) addBlock(seq int64, b *trendBlock) {
	if a.blocks == 0 {
		a.first = seq
	}
	a.last = seq
	a.span.add(b.span)
	a.sums.add(b.res)
	a.blocks++
}

func (a *resSpan) join(o resSpan) {
	if o.blocks == 0 {
		return
	}
	if a.blocks == 0 {
		a.first = o.first
	}
	a.last = o.last
	a.span.add(o.span)
	a.sums.add(o.sums)
	a.blocks += o.blocks
}

// resRef is a resource's reference: its pooled blocks, the windows'
// residual variance s2 around its ratio, and φ ≥ 1, how much more its
// blocks varied than s2 says.
type resRef struct {
	resSpan
	perReq bool
	s2     float64
	phi    float64
}

// resSeries is one resource's state.
type resSeries struct {
	cs           cusum
	ref          resRef
	run, persist resSpan
	head         resSpan
	found        *Finding
}

// resTrends is the drift of a version's resources.
type resTrends struct{ series [nRes]resSeries }

// resRefOf pools the reference blocks [from, to) of series i, in the
// unit all of them allow.
func (v *verTrend) resRefOf(i int, from, to int64) (resRef, bool) {
	var r resRef
	for s := from; s < to; s++ {
		if b := v.block(s); b != nil && b.res.n > 0 {
			r.addBlock(s, b)
		}
	}
	if r.blocks < (v.t.o.RefBlocks+1)/2 {
		return r, false
	}
	r.perReq = r.sums.perRequest()
	rt, _ := r.sums.ratio(i, r.perReq)
	r.s2 = r.sums.residual(i, r.perReq, rt)
	r.phi = 1
	if r.blocks > 1 && r.s2 > 0 {
		var dev float64
		for s := from; s < to; s++ {
			b := v.block(s)
			if b == nil || b.res.n == 0 {
				continue
			}
			bv, bw := b.res.ratio(i, r.perReq)
			if bw > 0 {
				dev += (bv - rt) * (bv - rt) / (b.res.n * r.s2 / (bw * bw))
			}
		}
		r.phi = phiOf(1, dev/float64(r.blocks-1), r.blocks-1)
	}
	return r, true
}

// resZ compares series i over head with the reference: z, the difference
// of ratios and its standard error.
func resZ(i int, head *resBlock, ref *resRef) (z, d, se float64) {
	hv, hw := head.ratio(i, ref.perReq)
	rv, rw := ref.sums.ratio(i, ref.perReq)
	if hw <= 0 || rw <= 0 {
		return 0, 0, 0
	}
	se = math.Sqrt(ref.phi * ref.s2 * (head.n/(hw*hw) + ref.sums.n/(rw*rw)))
	se = max(se, resMinRelFloor*rv)
	d = hv - rv
	if se == 0 {
		return 0, d, 0
	}
	return d / se, d, se
}

// resBigEnough is the least effect of a resource's change: relative, and
// in threads at the head's rate of work.
func (r *resTrends) resBigEnough(o TrendOptions, i int, head *resSpan, ref *resRef) bool {
	hv, hw := head.sums.ratio(i, ref.perReq)
	rv, _ := ref.sums.ratio(i, ref.perReq)
	secs := head.span.verdict.w
	if hw <= 0 || secs <= 0 {
		return false
	}
	extra := (hv - rv) * hw / secs
	return extra >= o.ResourceMinLoad && (rv == 0 || hv/rv-1 >= o.ResourceMinRelChange)
}

// usable says whether series i can be read in this block with ref's
// unit: the block has work in it, and per request only if it knows every
// window's requests; the CPU's own time per CPU second is 1.
func (ref *resRef) usable(i int, b *resBlock) bool {
	if b.n == 0 || (ref.perReq && !b.perRequest()) {
		return false
	}
	return ref.perReq || i != resCPU
}

// close tests block seq for every resource.
func (r *resTrends) close(v *verTrend, seq int64, ev []Event) []Event {
	o := v.t.o
	blk := v.block(seq)
	from, to, refOK := v.refRange(seq)
	var noms []int
	var ps []float64
	tested := 0
	for i := range r.series {
		x := &r.series[i]
		if x.found != nil {
			if x.ref.usable(i, &blk.res) {
				ev = r.wentAway(v, i, seq, ev)
			}
			continue
		}
		if x.cs.cand {
			if x.ref.usable(i, &blk.res) {
				tested++
				x.persist.addBlock(seq, blk)
			}
			continue
		}
		if !refOK {
			continue
		}
		ref, ok := v.resRefOf(i, from, to)
		if !ok || !ref.usable(i, &blk.res) || (x.cs.frozen && ref.perReq != x.ref.perReq) {
			continue
		}
		tested++
		z, _, _ := resZ(i, &blk.res, &ref)
		x.cs.s = max(0, x.cs.s+z-o.CUSUMK)
		if x.cs.s == 0 {
			x.cs.frozen = false
			x.run = resSpan{}
			continue
		}
		if !x.cs.frozen {
			x.cs.frozen, x.cs.runStart, x.ref = true, seq, ref
			if wide, ok := v.resRefOf(i, v.confirmFrom(seq), seq); ok && wide.perReq == ref.perReq {
				x.ref = wide // the confirmation reference, as drift.go's
			}
		}
		x.run.addBlock(seq, blk)
		if x.cs.s >= o.CUSUMH {
			zr, _, _ := resZ(i, &x.run.sums, &x.ref)
			noms = append(noms, i)
			ps = append(ps, tailP(zr))
		}
	}
	for k, pass := range bhPass(ps, tested, o.FDR) {
		x := &r.series[noms[k]]
		if pass && r.resBigEnough(o, noms[k], &x.run, &x.ref) {
			x.cs.cand = true
			x.persist = resSpan{}
		}
	}
	for i := range r.series {
		x := &r.series[i]
		if !x.cs.cand || x.persist.blocks < o.PersistBlocks {
			continue
		}
		holds := func(sp *resSpan, zMin float64) bool {
			z, _, _ := resZ(i, &sp.sums, &x.ref)
			return sp.blocks > 0 && z >= zMin && r.resBigEnough(o, i, sp, &x.ref)
		}
		rest, last := r.lessTop(v, i, &x.persist)
		held := holds(&x.persist, v.t.zPersist) && holds(&rest, zPersistRest) && holds(&last, zPersistRest)
		if !held && x.persist.blocks < 2*o.PersistBlocks {
			pv, _ := x.persist.sums.ratio(i, x.ref.perReq)
			rv, _ := x.ref.sums.ratio(i, x.ref.perReq)
			if lv, _ := x.run.sums.ratio(i, x.ref.perReq); pv > (rv+lv)/2 {
				continue // look again
			}
		}
		x.cs.cand = false
		if !held || v.cls.covers(resNames[i]) {
			x.cs = cusum{}
			x.run, x.persist = resSpan{}, resSpan{}
			continue
		}
		x.head = x.run
		x.head.join(x.persist)
		x.found = r.finding(v, i, blk)
		ev = append(ev, Event{Finding: *x.found})
	}
	return ev
}

// lessTop is sp's blocks without the one where series i was highest,
// and its last block alone (see fnTrends.lessTop).
func (r *resTrends) lessTop(v *verTrend, i int, sp *resSpan) (rest, last resSpan) {
	ref := &r.series[i].ref
	top, most := int64(math.MinInt64), math.Inf(-1)
	for s := sp.first; s <= sp.last; s++ {
		if b := v.block(s); b != nil && ref.usable(i, &b.res) {
			if val, _ := b.res.ratio(i, ref.perReq); val > most {
				top, most = s, val
			}
		}
	}
	for s := sp.first; s <= sp.last; s++ {
		if b := v.block(s); s != top && b != nil && ref.usable(i, &b.res) {
			rest.addBlock(s, b)
		}
	}
	if b := v.block(sp.last); b != nil {
		last.addBlock(sp.last, b)
	}
	return rest, last
}

// resUnit names a series' unit.
func resUnit(perReq bool) string {
	if perReq {
		return "seconds per request"
	}
	return "seconds per second on a CPU"
}

// resValue is a value of a series in its unit: "4.2ms a request", "0.063
// s per second on a CPU".
func resValue(v float64, perReq bool) string {
	if perReq {
		return textfmt.Dur(v*1e9) + " a request"
	}
	return textfmt.NumPrecise(v) + " s per second on a CPU"
}

// finding describes resource i's drift.
func (r *resTrends) finding(v *verTrend, i int, blk *trendBlock) *Finding {
	t, o := v.t, v.t.o
	x := &r.series[i]
	head, ref := &x.head, &x.ref
	f := v.finding(KindDrift, "", resNames[i], t.blockStart(x.cs.runStart), blk.span.to)
	z, d, se := resZ(i, &head.sums, ref)
	hv, hw := head.sums.ratio(i, ref.perReq)
	rv, rw := ref.sums.ratio(i, ref.perReq)
	// From (almost) nothing, the change is measured from a quarter of
	// the least load worth a finding.
	base := max(rv, o.ResourceMinLoad/4*ref.span.verdict.w/rw)
	f.Base = ref.span.rangeOf(v.version)
	f.Head = head.span.rangeOf(v.version)
	f.ChangePct = 100 * d / base
	f.CILow = 100 * (d - t.zCI*se) / base
	f.CIHigh = 100 * (d + t.zCI*se) / base
	f.PValue = tailP(z)
	f.Cum = Change{Base: rv, Head: hv}
	f.Unit = resUnit(ref.perReq)
	f.BaseVerdict = ref.span.verdict.summary(o.Thresholds)
	f.HeadVerdict = head.span.verdict.summary(o.Thresholds)
	zp, _, _ := resZ(i, &x.persist.sums, ref)
	f.Evidence = []string{
		fmt.Sprintf("The service's %s rose from %s to %s (%s to %s): %+.0f%% (%.0f%% CI %+.0f..%+.0f%%), p %s.",
			resWhat[i], resValue(rv, ref.perReq), resValue(hv, ref.perReq), clockSpan(ref.span), clockSpan(head.span),
			f.ChangePct, 100*o.Confidence, f.CILow, f.CIHigh, pText(f.PValue)),
		fmt.Sprintf("At the work it did since, that is %s threads more; it stayed up for the %s after the change was flagged (p %s).",
			textfmt.Num(d*hw/head.span.verdict.w), blocksText(o, x.persist.blocks), pText(tailP(zp))),
	}
	return f
}

// wentAway resolves resource i's finding when its last RefBlocks blocks
// are closer to the reference than to the drifted level and
// significantly under the latter.
func (r *resTrends) wentAway(v *verTrend, i int, seq int64, ev []Event) []Event {
	o := v.t.o
	x := &r.series[i]
	var rec resSpan
	for s := seq - int64(o.RefBlocks) + 1; s <= seq; s++ {
		if b := v.block(s); b != nil && x.ref.usable(i, &b.res) {
			rec.addBlock(s, b)
		}
	}
	if rec.blocks < (o.RefBlocks+1)/2 || rec.first <= x.head.last {
		return ev
	}
	rv, _ := x.ref.sums.ratio(i, x.ref.perReq)
	lv, lw := x.head.sums.ratio(i, x.ref.perReq)
	pv, pw := rec.sums.ratio(i, x.ref.perReq)
	se := math.Sqrt(x.ref.phi * x.ref.s2 * (rec.sums.n/(pw*pw) + x.head.sums.n/(lw*lw)))
	se = max(se, resMinRelFloor*lv)
	if pv >= (rv+lv)/2 || se == 0 || (lv-pv)/se < v.t.zPersist {
		return ev
	}
	f := *x.found
	f.Resolved, f.ResolvedAt = true, rec.span.to
	f.Evidence = append(slices.Clip(f.Evidence), fmt.Sprintf("It went away: %s in the last %s, against %s before it rose and %s after.",
		resValue(pv, x.ref.perReq), blocksText(o, rec.blocks), resValue(rv, x.ref.perReq), resValue(lv, x.ref.perReq)))
	x.found = nil
	x.cs = cusum{}
	x.run, x.persist, x.head = resSpan{}, resSpan{}, resSpan{}
	return append(ev, Event{Finding: f, Resolved: true})
}

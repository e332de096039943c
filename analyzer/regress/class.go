package regress

import (
	"fmt"
	"math"
	"slices"

	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Bottleneck changes within a version, judged by the verdict's own rule
// (verdict.Combine over a block's windows) and thresholds:
//
//   - the class: a block whose class is another than the reference's
//     (not none: a service nothing binds any more has not regressed),
//     even with a ClassMargin in favour of the reference's, for
//     1 + PersistBlocks blocks in a row, is a finding; it is resolved
//     when PersistBlocks blocks in a row are clearly not that class;
//   - a class's load that was under the verdict's MinLoad in the
//     reference and is past it by ClassMargin for 1 + PersistBlocks
//     blocks in a row: the resource now binds the service, though
//     perhaps not first. Resolved when it stays under MinLoad less the
//     margin for PersistBlocks blocks.
//
// A load that grows (more requests) moves every class's load with it and
// changes neither the class nor a threshold unless it takes a load past
// one, which is then what the service is bound by: a bottleneck change.

// classMinLoadBase is the least load a class's change is measured from, in
// threads, so that a change from nothing is finite.
const classMinLoadBase = 0.01

// loadRef is a reference for the class rules: its pooled blocks, its
// class, and the mean and variance of each class's block loads.
type loadRef struct {
	span     trendSpan
	class    verdict.Class
	blocks   int
	mean, vr [nTrendClasses]float64
}

// loadSpan pools the blocks of a run.
type loadSpan struct {
	span      trendSpan
	blocks    int
	sum, sum2 [nTrendClasses]float64
}

func (a *loadSpan) addBlock(b *trendBlock) {
	a.span.add(b.span)
	a.blocks++
	for i := range a.sum {
		l := b.span.verdict.loadOf(i)
		a.sum[i] += l
		a.sum2[i] += l * l
	}
}

// classRun is a run of blocks past a reference: another class, or a
// class's load past the threshold.
type classRun struct {
	class verdict.Class
	start int64
	ref   loadRef
	head  loadSpan
}

// classTrend is the class rules' state of a version.
type classTrend struct {
	run        classRun
	found      *Finding
	foundClass verdict.Class
	away       int // blocks in a row clearly not the found class

	cross [nTrendClasses]crossing
}

type crossing struct {
	run   classRun
	found *Finding
	under int // blocks in a row under the threshold less the margin
}

// covers says whether a class finding holds on resource r (a class
// name): a drift of r's time per unit of work says the same.
func (c *classTrend) covers(r string) bool {
	if c.found != nil && string(c.foundClass) == r {
		return true
	}
	i := trendClassIndex(verdict.Class(r))
	return i >= 0 && c.cross[i].found != nil
}

func (c *classTrend) active() []*Finding {
	var out []*Finding
	if c.found != nil {
		out = append(out, c.found)
	}
	for i := range c.cross {
		if f := c.cross[i].found; f != nil {
			out = append(out, f)
		}
	}
	return out
}

// loadRefOf pools the reference blocks [from, to) that have verdicts,
// but those under a class finding: when the service comes back from
// another class, its coming back is no change.
func (v *verTrend) loadRefOf(from, to int64) (loadRef, bool) {
	var r loadRef
	var sum, sum2 [nTrendClasses]float64
	for s := from; s < to; s++ {
		b := v.block(s)
		if b == nil || b.span.verdict.w == 0 || b.classAway {
			continue
		}
		r.span.add(b.span)
		r.blocks++
		for i := range sum {
			l := b.span.verdict.loadOf(i)
			sum[i] += l
			sum2[i] += l * l
		}
	}
	if r.blocks < (v.t.o.RefBlocks+1)/2 {
		return r, false
	}
	n := float64(r.blocks)
	for i := range sum {
		r.mean[i] = sum[i] / n
		if r.blocks > 1 {
			r.vr[i] = max(0, sum2[i]-sum[i]*sum[i]/n) / (n - 1)
		}
	}
	r.class = r.span.verdict.summary(v.t.o.Thresholds).Class
	return r, true
}

// classFavouring is the class of s by the verdict's rule with the
// thresholds and loads moved by margin in favour of class fav: a block
// that is another class even so clearly is.
func classFavouring(s trendVerdicts, fav verdict.Class, margin float64, th verdict.Thresholds) verdict.Class {
	if s.w == 0 {
		return verdict.ClassNone
	}
	if fav == verdict.ClassNone {
		th.MinLoad *= 1 + margin
	} else {
		th.MinLoad *= 1 - margin
	}
	if fav == verdict.ClassMemory {
		th.MemoryShareOfCPU *= 1 - margin
	} else {
		th.MemoryShareOfCPU *= 1 + margin
	}
	one := verdict.Summary{Load: map[verdict.Class]float64{}, RunQueue: s.runQueue / s.w}
	for i, c := range verdict.Classes {
		l := s.load[i] / s.w
		if c == fav {
			l *= 1 + margin
		}
		if l != 0 {
			one.Load[c] = l
		}
	}
	if fav == verdict.ClassCPU {
		one.RunQueue *= 1 + margin
	}
	return verdict.Combine([]verdict.Summary{one}, []float64{1}, th).Class
}

// close tests block seq with the class rules.
func (c *classTrend) close(v *verTrend, seq int64, ev []Event) []Event {
	blk := v.block(seq)
	if blk.span.verdict.w == 0 {
		return ev
	}
	var slide loadRef
	from, to, ok := v.refRange(seq)
	if ok {
		slide, ok = v.loadRefOf(from, to)
	}
	ev = c.closeClass(v, seq, blk, slide, ok, ev)
	for i := range c.cross {
		ev = c.closeCrossing(v, i, seq, blk, slide, ok, ev)
	}
	return ev
}

func (c *classTrend) closeClass(v *verTrend, seq int64, blk *trendBlock, slide loadRef, ok bool, ev []Event) []Event {
	o := v.t.o
	if c.found != nil {
		if classFavouring(blk.span.verdict, c.foundClass, o.ClassMargin, o.Thresholds) != c.foundClass {
			c.away++
		} else {
			c.away = 0
		}
		if c.away == 0 {
			blk.classAway = true
		}
		if c.away < o.PersistBlocks {
			return ev
		}
		f := *c.found
		now := blk.span.verdict.summary(o.Thresholds)
		f.Resolved, f.ResolvedAt = true, blk.span.to
		f.Evidence = append(slices.Clip(f.Evidence), fmt.Sprintf("It went away: the service has not been bound by %s for %s; it is %s now.",
			c.foundClass, blocksText(o, c.away), now.Class))
		c.found, c.away = nil, 0
		return append(ev, Event{Finding: f, Resolved: true})
	}
	ref := slide
	if c.run.head.blocks > 0 {
		ref, ok = c.run.ref, true
	}
	if !ok {
		return ev
	}
	bc := classFavouring(blk.span.verdict, ref.class, o.ClassMargin, o.Thresholds)
	switch {
	case bc == ref.class || bc == verdict.ClassNone:
		c.run = classRun{}
		return ev
	case c.run.head.blocks == 0 || bc != c.run.class:
		c.run = classRun{class: bc, start: seq, ref: ref}
	}
	c.run.head.addBlock(blk)
	if c.run.head.blocks < 1+o.PersistBlocks {
		return ev
	}
	f := c.loadFinding(v, &c.run, "class:", trendClassIndex(bc), blk)
	f.Evidence = append([]string{fmt.Sprintf("The service was bound by %s (%s, %s) and has been bound by %s since %s (%s), for %s in a row.",
		ref.class, textfmt.OrDash(textfmt.Loads(f.BaseVerdict.Load, verdict.ClassNone)), clockSpan(ref.span),
		bc, c.run.head.span.from.UTC().Format("15:04 UTC"), textfmt.OrDash(textfmt.Loads(f.HeadVerdict.Load, verdict.ClassNone)),
		blocksText(o, c.run.head.blocks))}, f.Evidence...)
	c.found, c.foundClass, c.away = f, bc, 0
	for s := c.run.start; s <= seq; s++ {
		if b := v.block(s); b != nil {
			b.classAway = true
		}
	}
	c.run = classRun{}
	return append(ev, Event{Finding: *f})
}

func (c *classTrend) closeCrossing(v *verTrend, i int, seq int64, blk *trendBlock, slide loadRef, ok bool, ev []Event) []Event {
	o := v.t.o
	x := &c.cross[i]
	cl := verdict.Classes[i]
	l := blk.span.verdict.loadOf(i)
	th := o.Thresholds.MinLoad
	if x.found != nil {
		if l < th*(1-o.ClassMargin) {
			x.under++
		} else {
			x.under = 0
		}
		if x.under < o.PersistBlocks {
			return ev
		}
		f := *x.found
		f.Resolved, f.ResolvedAt = true, blk.span.to
		f.Evidence = append(slices.Clip(f.Evidence), fmt.Sprintf("It went away: %s's load has been under %s threads for %s (%s now).",
			cl, textfmt.Num(th*(1-o.ClassMargin)), blocksText(o, x.under), textfmt.Num(l)))
		x.found, x.under = nil, 0
		return append(ev, Event{Finding: f, Resolved: true})
	}
	ref := slide
	if x.run.head.blocks > 0 {
		ref, ok = x.run.ref, true
	}
	if !ok || ref.mean[i] >= th || l < th*(1+o.ClassMargin) {
		x.run = classRun{}
		return ev
	}
	if x.run.head.blocks == 0 {
		x.run = classRun{class: cl, start: seq, ref: ref}
	}
	x.run.head.addBlock(blk)
	if x.run.head.blocks < 1+o.PersistBlocks {
		return ev
	}
	if c.found != nil && c.foundClass == cl {
		// The class change to cl says it already.
		x.run = classRun{}
		return ev
	}
	f := c.loadFinding(v, &x.run, "load:", i, blk)
	f.Evidence = append([]string{fmt.Sprintf("The %s load rose past the verdict's threshold of %s threads bound per second (by %.0f%%, %s) and stayed past it for %s in a row.",
		cl, textfmt.Num(th), 100*o.ClassMargin, textfmt.Num(th*(1+o.ClassMargin)), blocksText(o, x.run.head.blocks))}, f.Evidence...)
	x.found, x.under = f, 0
	x.run = classRun{}
	return append(ev, Event{Finding: *f})
}

// loadFinding is a class finding on class i's load over run.
func (c *classTrend) loadFinding(v *verTrend, run *classRun, what string, i int, blk *trendBlock) *Finding {
	t, o := v.t, v.t.o
	cl := verdict.Classes[i]
	f := v.finding(KindClass, "", string(cl), t.blockStart(run.start), blk.span.to)
	f.ID = trendID(KindClass, v.service, v.version, what+string(cl), t.blockStart(run.start))
	h := &run.head
	kh := float64(h.blocks)
	mh := h.sum[i] / kh
	vh := 0.0
	if h.blocks > 1 {
		vh = max(0, h.sum2[i]-h.sum[i]*h.sum[i]/kh) / (kh - 1)
	}
	mr := run.ref.mean[i]
	base := max(mr, classMinLoadBase)
	se := math.Sqrt(vh/kh + run.ref.vr[i]/float64(run.ref.blocks))
	se = max(se, resMinRelFloor*base)
	d := mh - mr
	f.Base = run.ref.span.rangeOf(v.version)
	f.Head = h.span.rangeOf(v.version)
	f.ChangePct = 100 * d / base
	f.CILow = 100 * (d - t.zCI*se) / base
	f.CIHigh = 100 * (d + t.zCI*se) / base
	f.PValue = tailP(d / se)
	f.Cum = Change{Base: mr, Head: mh}
	f.Unit = "threads bound per second"
	f.BaseVerdict = run.ref.span.verdict.summary(o.Thresholds)
	f.HeadVerdict = h.span.verdict.summary(o.Thresholds)
	f.Evidence = []string{
		fmt.Sprintf("The %s load went from %s to %s threads bound per second: %+.0f%% (%.0f%% CI %+.0f..%+.0f%%, over %s against %s).",
			cl, textfmt.Num(mr), textfmt.Num(mh), f.ChangePct, 100*o.Confidence, f.CILow, f.CIHigh,
			textfmt.Plural(h.blocks, "block"), textfmt.Plural(run.ref.blocks, "block")),
		"Before: " + f.BaseVerdict.Summary,
		"Since: " + f.HeadVerdict.Summary,
	}
	return f
}

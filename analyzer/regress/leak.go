package regress

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Leaks: memory that climbs steadily within a version.
//
// The series is each minute's low-water mark of the windows' memory: a
// leak raises the floor, a garbage collector's sawtooth does not, and a
// minute's point is far less correlated with the next than a window's.
// Over the version's last LeakSpan (at least LeakMinSpan) of points, a
// leak is
//   - a Theil–Sen slope (the median of the pairwise slopes: a spike or a
//     collection moves it little) of at least LeakMinBytesPerHour and
//     LeakMinGrowth of the memory at the span's start an hour,
//   - with a Mann–Kendall test of the upward trend at LeakAlpha,
//   - still growing in the span's later half (its own slope at least
//     half the span's, its own Mann–Kendall test at leakLateAlpha): a
//     warm-up, a cache filling to its size, levels off and is not a
//     leak, however its plateau's noise tilts the later half's slope;
//   - with memory per unit of load growing too (at least half as fast),
//     when every point's load is known (requests a second where every
//     window counts them, else the busy threads on CPU): a heap is a
//     fixed part (runtime, code, caches) plus a part in proportion to
//     the work in flight, so memory per unit of load never rises with
//     the load alone; a step of traffic to a new plateau, or a ramp of
//     it, is not a leak, and a leak under a flat load raises both;
//   - and, after a restart (memory under LeakRestartDrop of its last ten
//     minutes' floor: the fit starts over), past the level it had before
//     the restart: climbing back to its plateau is recovery, and the fit
//     starts over again from the point that passed it (or, not back a
//     LeakSpan later, from the fall).
//
// It is resolved when the growth, over a span long enough, is no longer
// significant (p ≥ 0.05) or under half of either least growth. A restart
// alone does not resolve it: a leaking process restarted by the OOM
// killer still leaks.

// leakResolveP is the Mann–Kendall p-value above which a leak's growth
// is gone; leakLateAlpha is the level at which the span's later half
// must grow on its own.
const leakResolveP, leakLateAlpha = 0.05, 0.05

// leakPt is one minute's low-water mark, and its load: requests a
// second (0 when a window did not count them) and busy threads on CPU.
type leakPt struct {
	minute   int64
	mem      float64
	req, cpu float64
}

type leakTrend struct {
	minute    int64 // the minute being filled
	low       float64
	filling   bool
	pts       []leakPt // oldest first, at most LeakSpan of minutes
	recoverTo float64  // after a restart, the level before it; 0 once passed or a LeakSpan after it
	restarted int64    // the minute of the restart
	found     *Finding
	ts, ys    []float64
	rs        []float64 // memory per unit of load

	// the minute's load so far
	reqs, secs, cpu float64
	windows         int
	reqMissing      bool
}

// observe reads w's memory.
func (l *leakTrend) observe(v *verTrend, w Window, ev []Event) []Event {
	if !(w.Memory > 0) || math.IsInf(w.Memory, 0) || v.t.blockOf(w.Start) == v.first {
		return ev // unknown, or the version's warm-up
	}
	m := floorDiv64(w.Start.UnixNano(), int64(time.Minute))
	if l.filling && m > l.minute {
		ev = l.closeMinute(v, ev)
	}
	if l.filling && m < l.minute {
		return ev
	}
	if !l.filling {
		l.minute, l.low, l.filling = m, w.Memory, true
		l.reqs, l.secs, l.cpu, l.windows, l.reqMissing = 0, 0, 0, 0, false
	}
	l.low = min(l.low, w.Memory)
	l.reqs += w.Requests
	l.secs += w.Duration.Seconds()
	l.reqMissing = l.reqMissing || !(w.Requests > 0)
	l.cpu += w.Verdict.Load[verdict.ClassCPU] + w.Verdict.Load[verdict.ClassMemory]
	l.windows++
	if end := w.Start.Add(w.Duration); !end.Before(time.Unix(0, (m+1)*int64(time.Minute))) {
		ev = l.closeMinute(v, ev)
	}
	return ev
}

// closeMinute adds the minute's point and tests the span.
func (l *leakTrend) closeMinute(v *verTrend, ev []Event) []Event {
	o := v.t.o
	p := leakPt{minute: l.minute, mem: l.low, cpu: l.cpu / float64(l.windows)}
	if !l.reqMissing && l.secs > 0 {
		p.req = l.reqs / l.secs
	}
	l.filling = false
	floor, top := math.Inf(1), 0.0
	for _, q := range l.pts {
		if q.minute > p.minute-10 {
			floor, top = min(floor, q.mem), max(top, q.mem)
		}
	}
	if !math.IsInf(floor, 1) && p.mem < o.LeakRestartDrop*floor {
		l.pts = l.pts[:0]
		l.recoverTo = max(l.recoverTo, top)
		l.restarted = p.minute
	}
	l.pts = append(l.pts, p)
	spanMin := int64(o.LeakSpan / time.Minute)
	k := 0
	for k < len(l.pts) && l.pts[k].minute <= p.minute-spanMin {
		k++
	}
	if k > 0 {
		l.pts = append(l.pts[:0], l.pts[k:]...)
	}
	switch {
	case l.recoverTo > 0 && p.mem > l.recoverTo:
		// Back past the old level: the climb was recovery, no evidence
		// of a leak (a warm-up's ramp before a plateau is a trend to
		// Mann–Kendall). The fit starts over here.
		l.recoverTo = 0
		l.pts = append(l.pts[:0], p)
	case l.recoverTo > 0 && p.minute-l.restarted >= spanMin:
		// A span since the fall and not back: a process killed at the
		// same limit each time never passes it, and a heap that shrank
		// for good (a cache dropped) has a new level.
		l.recoverTo = 0
	}
	return l.test(v, ev)
}

// leakFit is the fit of the span and of its later half.
type leakFit struct {
	all, late trendFit
	level     float64 // the fitted memory at the span's start
	hours     float64 // the span's length
	growth    float64 // all.Slope / level
	// perLoad is the growth of memory per unit of load (its slope over
	// its level); known says whether every point's load was.
	perLoad float64
	known   bool
}

func (l *leakTrend) fit(v *verTrend) (leakFit, bool) {
	o := v.t.o
	first, last := l.pts[0].minute, l.pts[len(l.pts)-1].minute
	minMin := int64(o.LeakMinSpan / time.Minute)
	if last-first+1 < minMin || int64(len(l.pts)) < minMin/2 {
		return leakFit{}, false
	}
	l.ts, l.ys = l.ts[:0], l.ys[:0]
	for _, q := range l.pts {
		l.ts = append(l.ts, float64(q.minute-first)/60)
		l.ys = append(l.ys, q.mem)
	}
	var f leakFit
	f.all = fitTrend(l.ts, l.ys, o.Confidence, &v.t.fitBuf)
	half := float64(last-first) / 60 / 2
	k, _ := slices.BinarySearch(l.ts, half)
	if len(l.ts)-k < 3 {
		return leakFit{}, false
	}
	f.late = fitTrend(l.ts[k:], l.ys[k:], o.Confidence, &v.t.fitBuf)
	f.level = f.all.Intercept
	f.hours = float64(last-first+1) / 60
	if f.level > 0 {
		f.growth = f.all.Slope / f.level
	}
	f.perLoad, f.known = l.perLoad(v)
	return f, true
}

// perLoad is the relative growth an hour of memory per unit of load over
// the points (l.ts must be theirs): per request a second where every
// point has requests, else per busy thread on CPU where every point has
// some; false when neither.
func (l *leakTrend) perLoad(v *verTrend) (float64, bool) {
	load := func(q leakPt) float64 { return q.req }
	if slices.ContainsFunc(l.pts, func(q leakPt) bool { return !(q.req > 0) }) {
		load = func(q leakPt) float64 { return q.cpu }
		if slices.ContainsFunc(l.pts, func(q leakPt) bool { return !(q.cpu > 0) }) {
			return 0, false
		}
	}
	l.rs = l.rs[:0]
	for _, q := range l.pts {
		l.rs = append(l.rs, q.mem/load(q))
	}
	f := fitTrend(l.ts, l.rs, v.t.o.Confidence, &v.t.fitBuf)
	if !(f.Intercept > 0) {
		return 0, false
	}
	return f.Slope / f.Intercept, true
}

func (l *leakTrend) test(v *verTrend, ev []Event) []Event {
	o := v.t.o
	f, ok := l.fit(v)
	if !ok {
		return ev
	}
	if l.found != nil {
		if f.all.P < leakResolveP && f.all.Slope >= o.LeakMinBytesPerHour/2 && f.growth >= o.LeakMinGrowth/2 {
			return ev
		}
		x := *l.found
		x.Resolved, x.ResolvedAt = true, l.end()
		x.Evidence = append(slices.Clip(x.Evidence), fmt.Sprintf("It went away: over the last %s memory grew %s an hour (p %s).",
			durText(time.Duration(f.hours*float64(time.Hour))), textfmt.Bytes(f.all.Slope), pText(f.all.P)))
		l.found = nil
		return append(ev, Event{Finding: x, Resolved: true})
	}
	leak := f.all.P < o.LeakAlpha && f.all.Slope >= o.LeakMinBytesPerHour && f.growth >= o.LeakMinGrowth &&
		f.late.Slope >= f.all.Slope/2 && f.late.P < leakLateAlpha && (!f.known || f.perLoad >= f.growth/2) && l.recoverTo == 0
	if !leak {
		return ev
	}
	l.found = l.finding(v, f)
	return append(ev, Event{Finding: *l.found})
}

// end is the end of the last point's minute.
func (l *leakTrend) end() time.Time {
	return time.Unix(0, (l.pts[len(l.pts)-1].minute+1)*int64(time.Minute)).UTC()
}

func (l *leakTrend) finding(v *verTrend, f leakFit) *Finding {
	t, o := v.t, v.t.o
	start := time.Unix(0, l.pts[0].minute*int64(time.Minute)).UTC()
	x := v.finding(KindLeak, "", "memory", start, l.end())
	// The ranges: the span's first block, and the span, from the blocks
	// still kept.
	var base, head trendSpan
	for s := t.blockOf(start); s <= v.cur.seq || s <= t.blockOf(l.end().Add(-time.Nanosecond)); s++ {
		var b *trendBlock
		if s == v.cur.seq {
			b = &v.cur
		} else {
			b = v.block(s)
		}
		if b == nil {
			continue
		}
		if base.windows == 0 {
			base = b.span
		}
		head.add(b.span)
	}
	x.Base = base.rangeOf(v.version)
	x.Head = head.rangeOf(v.version)
	// The rate is the later half's: the span may begin before the leak
	// did. The decision and the p-value are the whole span's.
	x.ChangePct = 100 * f.late.Slope / f.level
	x.CILow = 100 * f.late.Lo / f.level
	x.CIHigh = 100 * f.late.Hi / f.level
	x.PValue = f.all.P
	end := f.level + f.all.Slope*f.hours
	x.Cum = Change{Base: f.level, Head: end}
	x.Unit = "bytes of memory; change_pct an hour"
	x.BaseVerdict = base.verdict.summary(o.Thresholds)
	x.HeadVerdict = head.verdict.summary(o.Thresholds)
	x.Evidence = []string{
		fmt.Sprintf("Memory grows %s an hour, %+.0f%% of the %s it started from an hour (%.0f%% CI %+.0f..%+.0f%%), over the last %s; %s an hour over the last %s: Theil–Sen slopes of each minute's low-water mark.",
			textfmt.Bytes(f.late.Slope), x.ChangePct, textfmt.Bytes(f.level), 100*o.Confidence, x.CILow, x.CIHigh,
			durText(time.Duration(f.hours*float64(time.Hour)/2).Round(time.Minute)), textfmt.Bytes(f.all.Slope),
			durText(time.Duration(f.hours*float64(time.Hour)).Round(time.Minute))),
		fmt.Sprintf("Mann–Kendall p %s over %d minutes; a warm-up levels off, and this did not.", pText(f.all.P), len(l.pts)),
	}
	return x
}

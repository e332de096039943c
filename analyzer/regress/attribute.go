package regress

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// graph links the functions by the calls of both sides.
func (e *evaluation) graph(t *table) {
	pos := make(map[string]int, len(e.fs))
	for i := range e.fs {
		pos[e.fs[i].name] = i
	}
	n := max(len(e.base.calls), len(e.head.calls))
	for id := 0; id < n && id < len(t.edges); id++ {
		hb, hh := at(e.base.calls, id), at(e.head.calls, id)
		if hb <= 0 && hh <= 0 {
			continue
		}
		ed := t.edges[id]
		ci, ok1 := pos[t.names[ed.caller]]
		ce, ok2 := pos[t.names[ed.callee]]
		if !ok1 || !ok2 {
			continue
		}
		callee := &e.fs[ce]
		callee.callers = append(callee.callers, ci)
		callee.callerHead = append(callee.callerHead, hh)
		callee.callerBase = append(callee.callerBase, hb)
		e.fs[ci].callees = append(e.fs[ci].callees, ce)
	}
}

// relatives computes function i's ancestors and descendants (graph
// reachability through the calls of either side), once.
func (e *evaluation) relatives(i int) *fnStat {
	f := &e.fs[i]
	if f.anc == nil {
		f.anc = e.reach(i, func(j int) []int { return e.fs[j].callers })
		f.desc = e.reach(i, func(j int) []int { return e.fs[j].callees })
	}
	return f
}

func (e *evaluation) reach(i int, next func(int) []int) []bool {
	seen := make([]bool, len(e.fs))
	stack := []int{i}
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, k := range next(j) {
			if !seen[k] {
				seen[k] = true
				stack = append(stack, k)
			}
		}
	}
	seen[i] = false // a function on a cycle is not its own relative
	return seen
}

// shiftedFrom tells whether a rise is a cost shift: cost that left
// other functions rather than new cost (a rename, an extracted helper,
// work moved between callees). It sums the falls that could have fed
// the rise, each beyond the common factor:
//   - the own code of the function's ancestors (a helper extracted from
//     a caller);
//   - the cumulative cost of its kin, what its callers call (a rename,
//     work moved between callees, or further down their subtrees), and
//     for a rise of its own code, of its direct callees (a callee's work
//     moved into it);
//   - the cumulative cost of any other function whose fall is strong
//     (z ≤ −strong, the Bonferroni bound of the look's tests).
//
// Functions whose cumulative cost holds the risen cost (its ancestors,
// and for a cumulative rise its descendants) cannot be where it came
// from. When the neighbours' falls from z ≤ −nearFallZ (further out
// when there are many neighbours: their Bonferroni bound at nearAlpha),
// with the strong ones, explain shiftFraction of the rise, it is a
// shift. When they do
// not, but one neighbour's fall (from z ≤ −heldFallZ) is likelier if it
// fed the rise than if it is noise (shiftLogLR), it cannot be told yet
// (a small function that took work from a big one rises significantly
// before the big one's fall does): held, for a later look to decide. It returns the outcome and the
// functions behind it.
func (e *evaluation) shiftedFrom(ts *test) (Outcome, []string) {
	f := e.relatives(ts.fi)
	own := ts.measure == MeasureOwn
	type fall struct {
		j          int
		amount, sd float64
		sure       bool // not just held
	}
	near := make([]bool, len(e.fs))
	for _, c := range f.callers {
		for j, below := range e.relatives(c).desc {
			near[j] = near[j] || below
		}
	}
	if own {
		for _, c := range f.callees {
			near[c] = true
		}
	}
	// A neighbour's fall is sure from z ≤ −nearFallZ, or further out when
	// there are many neighbours: noise alone makes one of them fall that
	// far with probability nearAlpha at most (Bonferroni).
	n := 0
	for j := range e.fs {
		if f.anc[j] || near[j] && j != ts.fi && (own || !f.desc[j]) {
			n++
		}
	}
	sureZ := math.Max(nearFallZ, normalQuantile(1-nearAlpha/float64(max(n, 1))))
	var falls []fall
	for j, isAnc := range f.anc {
		if !isAnc {
			continue
		}
		if z, amount := e.fallOf(j, MeasureOwn); z <= -heldFallZ && amount > 0 {
			falls = append(falls, fall{j, amount, -amount / z, z <= -sureZ})
		}
	}
	var incl []fall
	for j := range e.fs {
		if j == ts.fi || f.anc[j] || !own && f.desc[j] {
			continue
		}
		// A first sift against the whole set's c: a function whose cost
		// is not even a little below it (nor far below, away from the
		// risen one) is not worth its own c.
		g := &e.fs[j]
		if z, amount := e.fall(g.ib/e.eb, g.ih/e.eh, e.c, e.varC, g.phi); amount <= 0 || z > -heldFallZ/2 || !near[j] && z > 1-e.strong {
			continue
		}
		z, amount := e.fallOf(j, MeasureCum)
		if amount > 0 && (z <= -e.strong || near[j] && z <= -heldFallZ) {
			incl = append(incl, fall{j, amount, -amount / z, z <= -e.strong || z <= -sureZ})
		}
	}
	// A function's fall and its callers' are one fall: count one of each
	// family, a sure one first, then the largest.
	slices.SortFunc(incl, func(a, b fall) int {
		return cmp.Or(-cmp.Compare(boolInt(a.sure), boolInt(b.sure)), cmp.Compare(b.amount, a.amount), cmp.Compare(a.j, b.j))
	})
	var counted []int
	for _, fl := range incl {
		if len(counted) == 16 {
			break
		}
		related := false
		for _, c := range counted {
			if e.fs[c].anc[fl.j] || e.fs[c].desc[fl.j] {
				related = true
				break
			}
		}
		if !related {
			e.relatives(fl.j)
			counted = append(counted, fl.j)
			falls = append(falls, fl)
		}
	}
	var sure float64
	var from []string
	held := -1
	for i, fl := range falls {
		if fl.sure {
			sure += fl.amount
			from = append(from, e.fs[fl.j].name)
		}
		if shiftLogLR(fl.amount, fl.sd, ts.delta, ts.sd) >= heldLogLR && (held < 0 || fl.amount > falls[held].amount) {
			held = i
		}
	}
	switch {
	case sure >= shiftFraction*ts.delta:
		return OutcomeShift, from
	case held >= 0:
		return OutcomeHeld, []string{e.fs[falls[held].j].name}
	}
	return "", nil
}

// dedup keeps the deepest of the regressed functions: one slowdown
// raises the cumulative cost of every caller above it by as much. A
// function regressed in its cumulative cost only is dropped when its
// regressed descendants explain dedupFraction of its rise, or when what
// they leave of it is not a rise (z < restZ); one whose own code rose,
// or that calls new functions, is kept. Descendants found at an earlier
// look of the deploy count as regressed, with their rise at this one: a
// caller whose rise crosses the threshold a look after its callee's did
// is the same rise found twice. Functions go deepest first: fewest
// descendants (a callee has fewer than any caller of it, whatever their
// costs: a callee shared with other callers can cost more than one of
// them, and a caller whose samples are all in one callee costs as much
// as it; on a recursive cycle they tie), then smallest cumulative cost;
// the kept ones are returned by p-value.
func (e *evaluation) dedup(candidates []int) []int {
	order := slices.Clone(candidates)
	descendants := make(map[int]int, len(order))
	for _, a := range order {
		for _, d := range e.relatives(a).desc {
			descendants[a] += boolInt(d)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(descendants[a], descendants[b]), cmp.Compare(e.fs[a].ih, e.fs[b].ih), strings.Compare(e.fs[a].name, e.fs[b].name))
	})
	var kept []int
	for _, a := range order {
		A := e.relatives(a)
		if A.cum != nil && A.cum.outcome == OutcomeRegression && A.regressed() == A.cum && A.fresh == nil &&
			(A.own == nil || A.own.outcome != OutcomeRegression) {
			var below []int
			for _, k := range kept {
				if A.desc[k] {
					below = append(below, k)
				}
			}
			for k := range e.fs {
				if A.desc[k] && e.raised[e.fs[k].name] && !slices.Contains(below, k) {
					e.relatives(k) // its descendants, for the outermost below
					below = append(below, k)
				}
			}
			// The outermost of them: a kept function inside another's
			// subtree is counted in that one's rise.
			var explain float64
			var names []string
			for _, k := range below {
				inner := false
				for _, o := range below {
					if o != k && e.fs[o].desc[k] {
						inner = true
						break
					}
				}
				if !inner {
					explain += e.fs[k].rise()
					names = append(names, e.fs[k].name)
				}
			}
			if len(below) > 0 && (explain >= dedupFraction*A.cum.delta || (A.cum.delta-explain)/A.cum.sd < restZ) {
				A.cum.outcome, A.cum.related = OutcomeExplained, names
				continue
			}
		}
		kept = append(kept, a)
	}
	slices.SortFunc(kept, func(a, b int) int {
		return cmp.Or(cmp.Compare(e.fs[a].regressed().p, e.fs[b].regressed().p), strings.Compare(e.fs[a].name, e.fs[b].name))
	})
	return kept
}

// path is the heaviest chain of callers from a root down to function i:
// at each step up, the caller with the most head samples on its call
// (base samples when the head has none).
func (e *evaluation) path(i int) []string {
	path := []string{e.fs[i].name}
	seen := map[int]bool{i: true}
	for cur := i; len(path) < maxPath; {
		f := &e.fs[cur]
		best, bh, bb := -1, 0.0, 0.0
		for k, c := range f.callers {
			if seen[c] {
				continue
			}
			h, b := f.callerHead[k], f.callerBase[k]
			if best < 0 || h > bh || h == bh && (b > bb || b == bb && e.fs[c].name < e.fs[best].name) {
				best, bh, bb = c, h, b
			}
		}
		if best < 0 {
			break
		}
		seen[best] = true
		path = append(path, e.fs[best].name)
		cur = best
	}
	slices.Reverse(path)
	return path
}

// shiftLogLR is the log of the likelihood ratio of a fall a (standard
// error sa) and a rise d (sd) under "the one fed the other" (both are one
// amount s, fitted by weighted least squares) over "the fall is noise"
// (a is 0, d is what it is), both normal: half the difference of their
// residual sums of squares. A big function's fall, noisy in absolute
// terms, says little about a small rise (the ratio stays near 1); a fall
// the size of the rise, however noisy, says much.
func shiftLogLR(a, sa, d, sd float64) float64 {
	if !(sa > 0) || !(sd > 0) {
		return 0
	}
	wa, wd := 1/(sa*sa), 1/(sd*sd)
	s := (a*wa + d*wd) / (wa + wd)
	shift := (a-s)*(a-s)*wa + (d-s)*(d-s)*wd
	noise := a * a * wa
	return (noise - shift) / 2
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// locateAlpha bounds the chance that noise alone makes one part of a
// function's samples (its own code, or its calls to one callee) grow
// against the others far enough to locate a rise; locateFraction is
// the least part of the rise that part must hold.
const locateAlpha, locateFraction = 0.05, 0.5

// locate asks where a significant rise of a cumulative share sits, as
// compare's blame walk does: in the function's own code (a leaf's
// cumulative cost is its own code's), or in one of its callees, and
// there again in its own code or a callee. A part (own code, or the
// calls to one callee) holds the rise when the proportion of the
// function's samples in it grew (z ≥ the parts' Bonferroni bound at
// locateAlpha, from nearFallZ) by enough to be locateFraction of the
// rise: a rise d put into a part that held q of the function's samples
// grows that part's share of the service by d(1−q) beyond the
// function's own growth.
//
// A subtree that grew uniformly, every part alike, does more of its
// work: its code runs its loop more times, or it serves more requests
// against the service's fixed costs (at a load change every per-request
// function's share rises together, and a function that holds most of
// the service is measured against the fixed costs that fell). Shares
// tell the two apart only by the rest of the service: when the rest
// moved alike (mixed), the subtree did more of its work, a regression;
// when the rest moved apart, the fixed costs' shares falling while the
// per-request work outside rose too, it is the load (Outcome uniform).
// So is a rest that did more work itself, in CPU per second (restRose):
// a subtree's own regression adds CPU inside it and leaves the rest's
// where it was, more requests add it on both sides.
// Per request the question does not arise, and is not asked.
// A rise located only in callees that are tested themselves is theirs:
// it returns "" and those callees, for dedup to explain this one by
// them, or holdUnlocated to hold it until their own tests find it. It
// returns "" and none for a rise located here, or in a callee too small
// to be tested (this is the nearest function tested).
func (e *evaluation) locate(ts *test) (Outcome, []string) {
	if ts.measure != MeasureCum || e.perRequest || ts.f.ib <= 0 || ts.delta <= 0 {
		return "", nil
	}
	seen := map[int]bool{}
	here, below := e.parts(ts.fi, e.shareOf(ts.delta), seen)
	if here {
		return "", nil
	}
	var names []string
	for _, c := range below {
		if e.fs[c].cum == nil {
			return "", nil
		}
		names = append(names, e.fs[c].name)
	}
	if len(names) > 0 {
		return "", names
	}
	if !e.mixed(ts.fi) && !e.restRose(ts.fi) {
		return "", nil // the rest moved alike: it does more of its work
	}
	return OutcomeUniform, nil
}

// restRose tells whether the samples outside function i's subtree (the
// stacks without it) rose in CPU per second beyond the noise of the
// service's CPU rate (load's sdLog) and of the split (φ times the
// binomial variance of log(1−s), s its inclusive share), z > loadZ, and
// by restLoadPart of the subtree's own rise or more: more requests raise
// the per-request work outside as much as the subtree, a busier host
// raises everything's CPU per unit of work a few percent.
func (e *evaluation) restRose(i int) bool {
	f := &e.fs[i]
	sb, sh := f.ib/e.base.n, f.ih/e.head.n
	if !(sb > 0 && sh > 0 && sb < 1 && sh < 1) || e.g == 1 {
		return false
	}
	d := math.Log(e.g) + math.Log1p(-sh) - math.Log1p(-sb)
	subtree := math.Log(e.g) + math.Log(sh/sb)
	v := e.sdLog*e.sdLog + f.phi*sb/((1-sb)*e.base.n) + f.phiHead*sh/((1-sh)*e.head.n)
	return d > loadZ*math.Sqrt(v) && d >= restLoadPart*subtree
}

// restLoadPart: the least part of a subtree's rise in CPU per second that
// the rest's must reach to be the load's (a quarter: the rest may be
// mostly fixed costs, whose CPU per second more requests leave alone).
const restLoadPart = 0.25

// mixedAlpha is the level of the test that the rest of the service did
// not move alike.
const mixedAlpha = 0.01

// mixed tells whether the rest of the service, outside function i's
// subtree, moved apart: its functions' ratios (head self share over
// base's, the common set's) scatter about their c beyond their sampling
// noise with its dispersion (a χ² test at mixedAlpha, Wilson–Hilferty).
// That is a load's mark: the fixed costs' shares fall while the
// per-request work outside rises with the subtree. When the rest moved
// alike, a subtree that grew uniformly did more of its own work (a loop
// run more times), which is a regression of it.
func (e *evaluation) mixed(i int) bool {
	skip := e.relatives(i).desc
	c, _, ok := e.commonFor(skip, i)
	if !ok {
		return true // nothing to tell by
	}
	var q float64
	k := 0
	for _, r := range e.set {
		if r.i == i || skip[r.i] {
			continue
		}
		f := &e.fs[r.i]
		v := c * c * f.phi * (1/math.Max(c*f.sb*e.eh/e.eb, 1) + 1/f.sb)
		if !(v > 0) {
			continue
		}
		q += (r.x - c) * (r.x - c) / v
		k++
	}
	if k < 2 {
		return true
	}
	df := float64(k - 1)
	a := 2 / (9 * df)
	crit := df * math.Pow(1-a+normalQuantile(1-mixedAlpha)*math.Sqrt(a), 3)
	return q > crit
}

// holdUnlocated holds the kept functions whose only regression is a
// cumulative rise located in callees tested themselves (locate) that
// did not find it yet: the rise is theirs, for a later look to find.
func (e *evaluation) holdUnlocated(kept []int) []int {
	out := kept[:0]
	for _, i := range kept {
		f := &e.fs[i]
		if f.cum != nil && f.cum.outcome == OutcomeRegression && len(f.cum.below) > 0 && f.fresh == nil &&
			(f.own == nil || f.own.outcome != OutcomeRegression) {
			f.cum.outcome, f.cum.related = OutcomeHeld, f.cum.below
			continue
		}
		out = append(out, i)
	}
	return out
}

// parts tells whether a rise d (a share of the service's CPU) of
// function i's cumulative share is in its own code (or it is a leaf),
// and which callees' parts hold it, located in them in turn. seen
// holds the functions visited: each is asked once.
func (e *evaluation) parts(i int, d float64, seen map[int]bool) (here bool, below []int) {
	seen[i] = true
	f := &e.fs[i]
	if f.ib <= f.sb && f.ih <= f.sh {
		return true, nil // a leaf
	}
	thr := math.Max(nearFallZ, normalQuantile(1-locateAlpha/float64(1+len(f.callees))))
	if z, held := e.part(f, f.sb, f.sh, f.phi); z >= thr && held >= locateFraction*d {
		return true, nil
	}
	for _, c := range f.callees {
		g := &e.fs[c]
		k := slices.Index(g.callers, i)
		if k < 0 || seen[c] {
			continue
		}
		z, held := e.part(f, g.callerBase[k], g.callerHead[k], math.Max(f.phi, g.phi))
		if z < thr || held < locateFraction*d {
			continue
		}
		if h, b := e.parts(c, held, seen); h || len(b) > 0 {
			below = append(below, c)
		}
	}
	return false, below
}

// part tests the rise of a part of f's samples (pb of its base samples,
// ph of its head's) as a proportion of them: z, a two-proportion test
// with the pooled proportion times the dispersion phi, and the rise it
// holds, as a share of the service's CPU: its growth beyond f's, over
// the part of f's samples it did not hold (d(1−q) for a rise d).
func (e *evaluation) part(f *fnStat, pb, ph, phi float64) (z, held float64) {
	if f.ib <= 0 || f.ih <= 0 {
		return 0, 0
	}
	qb, qh := pb/f.ib, ph/f.ih
	q := (pb + ph) / (f.ib + f.ih)
	v := phi * q * (1 - q) * (1/f.ib + 1/f.ih)
	if !(v > 0) || qh >= 1 {
		return 0, 0
	}
	return (qh - qb) / math.Sqrt(v), (qh - qb) * (f.ih / e.head.n) / (1 - qb)
}

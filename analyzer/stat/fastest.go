package stat

import (
	"math"
	"math/rand/v2"
	"slices"
)

// FastestShift compares two samples of a time per operation by their
// fastest runs: the mean log of each side's fastest eighth (at least 3
// runs), head's over base's. On a machine other work shares, that work
// only ever adds time to a run, and how much comes and goes over seconds,
// so most runs carry some of it and a few escape it; the fastest runs are
// the ones least touched, and a change in the code moves them as much as
// any. The U test, which ranks all the runs, loses such a change in the
// noise the slow ones add (docs/compare.md, "On a busy machine").
//
// P is a two-sided permutation test of the statistic: under no change the
// runs are exchangeable between the sides, whatever the load did, as long
// as the sides met it alike (interleaved rounds). [Lo, Hi] is the interval
// that belongs to it: the shifts of head that the same test, at the first
// half of the same splits, does not reject at 1 - confidence (found by
// bisection at each end). ok is false with fewer than minFastestRuns runs a side,
// more than maxFastestRuns, or values that are not positive and finite.
//
// Why so few runs: the permutation distribution of a mean of the fastest
// k is wide whenever a random split can leave a side with fewer than k
// runs that escaped the load (its mean then takes in slowed ones), so the
// fewer taken, the more power; the fewer, too, the more each run's own
// noise shows. With 7 runs in 10 slowed 1.3 to 2.5×, 1% noise and 30 runs
// a side, a 5% change was found in 141 to 143 of 150 pairs by the fastest
// 3 or 4, 90 by the fastest quarter, 143 by the fastest run alone, 39 by
// the U test; with 3% noise, 97 to 98, 62, 75 and 30.
//
// No library perfhound uses has a permutation test; this one is written
// here. Its splits are drawn from a fixed seed, so the same runs give the
// same answer.
func FastestShift(base, head []float64, confidence float64) (s Shift, ok bool) {
	b, h := sortedLogs(base), sortedLogs(head)
	if b == nil || h == nil {
		return Shift{}, false
	}
	few, many := min(len(b), len(h)), max(len(b), len(h))
	if few < minFastestRuns || many > maxFastestRuns || float64(many) > maxSideRatio*float64(few) {
		return Shift{}, false
	}
	t := newShiftTest(b, h)
	mb, mh := t.lb.mean(b), t.lh.mean(h)
	obs := mh - mb
	lo, hi := t.interval(obs, 1-confidence)
	ratio := func(x float64) float64 {
		if math.IsInf(x, 0) {
			return x // unbounded, not -100%
		}
		return math.Expm1(x)
	}
	return Shift{
		Base: math.Exp(mb), Head: math.Exp(mh),
		P:     t.p(0, obs, t.splits),
		Delta: math.Expm1(obs), Lo: ratio(lo), Hi: ratio(hi),
	}, true
}

// maxSideRatio: sides whose numbers of runs differ more keep the U test
// alone. The same share of each side's runs is taken (lowest), but the
// mean of a side's fastest few still drifts with how many runs it drew
// from (12 runs against 18: -0.6% under no change, -1.8% taking 3 of
// each), so the shift is near zero under no change only for sides of
// about one size. (The test's level holds whatever the sizes: it is a
// permutation test.)
const maxSideRatio = 1.25

// Shift is what FastestShift found.
type Shift struct {
	// Base and Head are the geometric means of each side's fastest runs.
	Base, Head float64
	P          float64
	// Delta is Head/Base - 1, and [Lo, Hi] its interval at the
	// confidence asked (infinite where the test cannot reject).
	Delta, Lo, Hi float64
}

// minFastestRuns: with fewer runs a side, the three fastest are most of
// a side and say little the U test does not.
const minFastestRuns = 8

// The splits a test draws: 2,000 for its p-value (the p-value's own
// standard error at p = 0.025 is then 0.0035), the first 1,000 of them
// for its interval, which evaluates p some 30 times (at p = 0.05, 0.007).
const (
	fastestSplits   = 2000
	fastestCISplits = 1000
)

// maxFastestRuns bounds the runs a side the test takes, so that a row
// costs milliseconds: past a thousand runs the U test has the power to
// see what the fastest runs would.
const maxFastestRuns = 1000

// fastestCount is how many of n runs count as the fastest: an eighth, at
// least 3 and at most 50 (enough to average the runs' own noise, few
// enough to be runs the load missed).
func fastestCount(n int) int {
	return min(50, max(3, int(math.Round(float64(n)/8))))
}

// lowest is how many of a side's fastest runs its mean takes: whole runs
// and a share of the next one, so that sides of different sizes take the
// same share of their runs.
type lowest struct {
	whole int
	frac  float64 // the next run's weight, in [0, 1)
}

func lowestShare(share float64, n int) lowest {
	m := share * float64(n)
	l := lowest{whole: int(m), frac: m - math.Floor(m)}
	if l.frac < 1e-9 || l.whole >= n {
		l.frac = 0
	}
	return l
}

func (l lowest) size() float64 { return float64(l.whole) + l.frac }

// mean is the weighted mean of the first runs of sorted, taken as a
// split's walk takes them.
func (l lowest) mean(sorted []float64) float64 {
	k := taker{l: l}
	for _, x := range sorted {
		if k.take(x); k.done {
			break
		}
	}
	return k.sum / l.size()
}

// taker sums a side's fastest runs as a split deals them, fastest first.
type taker struct {
	l     lowest
	n     int
	sum   float64
	done  bool
	share bool // the fractional run was taken
}

func (k *taker) take(x float64) {
	switch {
	case k.done:
	case k.n < k.l.whole:
		k.sum += x
		k.n++
	case k.l.frac > 0 && !k.share:
		k.sum += k.l.frac * x
		k.share = true
	}
	k.done = k.n == k.l.whole && (k.l.frac == 0 || k.share)
}

// sortedLogs returns the logs of xs, ascending, or nil if any is not
// positive and finite.
func sortedLogs(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		if !(x > 0) || math.IsInf(x, 0) {
			return nil
		}
		out[i] = math.Log(x)
	}
	slices.Sort(out)
	return out
}

// shiftTest holds two sorted samples of logs and a fixed set of random
// splits of their runs: the same splits at every shift tried, so that p
// moves smoothly with the shift and the interval's bisection converges.
type shiftTest struct {
	b, h   []float64
	lb, lh lowest // how many of each side's fastest runs the statistic takes
	// splits[s] has a bit per run (base runs first, then head's): set
	// when split s deals that run to the head's side.
	splits [][]uint64
	pool   []run // b and h shifted, merged in order; reused
}

type run struct {
	log float64
	id  int
}

func newShiftTest(b, h []float64) *shiftTest {
	few := min(len(b), len(h))
	share := float64(fastestCount(few)) / float64(few)
	t := &shiftTest{b: b, h: h, lb: lowestShare(share, len(b)), lh: lowestShare(share, len(h))}
	n := len(b) + len(h)
	count := fastestSplits
	rng := rand.New(rand.NewPCG(1, 2))
	words := (n + 63) / 64
	bits := make([]uint64, count*words)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	t.splits = make([][]uint64, count)
	for s := range t.splits {
		t.splits[s] = bits[s*words : (s+1)*words]
		rng.Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		for _, id := range ids[len(b):] {
			t.splits[s][id/64] |= 1 << (id % 64)
		}
	}
	t.pool = make([]run, n)
	return t
}

// p is the two-sided permutation p-value of head shifted by -delta
// against base: the share of the splits whose statistic is at least as
// far from zero as obs - delta, the shifted samples' own.
func (t *shiftTest) p(delta, obs float64, splits [][]uint64) float64 {
	// Merge b and h - delta, keeping each run's identity.
	i, j := 0, 0
	for k := range t.pool {
		if j == len(t.h) || i < len(t.b) && t.b[i] <= t.h[j]-delta {
			t.pool[k] = run{t.b[i], i}
			i++
		} else {
			t.pool[k] = run{t.h[j] - delta, len(t.b) + j}
			j++
		}
	}
	want := math.Abs(obs - delta)
	tol := 1e-12 * math.Max(1, want)
	extreme := 0
	for _, split := range splits {
		kb, kh := taker{l: t.lb}, taker{l: t.lh}
		for _, r := range t.pool {
			if split[r.id/64]&(1<<(r.id%64)) != 0 {
				kh.take(r.log)
			} else {
				kb.take(r.log)
			}
			if kb.done && kh.done {
				break
			}
		}
		if math.Abs(kh.sum/t.lh.size()-kb.sum/t.lb.size()) >= want-tol {
			extreme++
		}
	}
	return float64(extreme+1) / float64(len(splits)+1)
}

// interval is the set of shifts the test does not reject at alpha, as its
// two ends: from obs (p = 1) outwards, bracketed by doubling and then
// bisected to 1e-4 in log (0.01%). An end the splits cannot reach (alpha
// under 1/(splits+1)) is infinite.
func (t *shiftTest) interval(obs, alpha float64) (lo, hi float64) {
	splits := t.splits[:fastestCISplits]
	if alpha*float64(len(splits)+1) <= 1 {
		return math.Inf(-1), math.Inf(1)
	}
	width := math.Max(t.b[len(t.b)-1], t.h[len(t.h)-1]) - math.Min(t.b[0], t.h[0])
	end := func(dir float64) float64 {
		in, out := 0.0, math.Max(width, 1e-3)
		for t.p(obs+dir*out, obs, splits) > alpha {
			if in, out = out, 2*out; out > 1e3 {
				return dir * math.Inf(1)
			}
		}
		for out-in > 1e-4 {
			mid := (in + out) / 2
			if t.p(obs+dir*mid, obs, splits) > alpha {
				in = mid
			} else {
				out = mid
			}
		}
		return obs + dir*(in+out)/2
	}
	return end(-1), end(1)
}

package regress

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/aclements/go-moremath/stats"
)

// The statistics of the trends (drift.go, class.go, leak.go) that no
// library here has: Benjamini–Hochberg, a weighted median, Theil–Sen's
// slope with Sen's interval and the Mann–Kendall trend test. The normal
// distribution is go-moremath's.

// tailP is P(Z ≥ z) for a standard normal Z.
func tailP(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// quantileZ is the standard normal's p-quantile.
func quantileZ(p float64) float64 { return stats.StdNormal.InvCDF(p) }

// bhPass says which of ps pass Benjamini–Hochberg at false discovery rate
// q among m hypotheses (m ≥ len(ps): the hypotheses not listed are taken
// to have p-values above every listed one, as a screen that did not
// nominate them says). It is the step-up rule: the largest rank i with
// p_(i) ≤ q·i/m, and every p-value at or below p_(i).
func bhPass(ps []float64, m int, q float64) []bool {
	pass := make([]bool, len(ps))
	if len(ps) == 0 {
		return pass
	}
	m = max(m, len(ps))
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ps[a], ps[b]) })
	cut := -1
	for rank, i := range order {
		if ps[i] <= q*float64(rank+1)/float64(m) {
			cut = rank
		}
	}
	for rank := 0; rank <= cut; rank++ {
		pass[order[rank]] = true
	}
	return pass
}

// weightedValue is a value with its weight, for weightedMedianSkip.
type weightedValue struct{ v, w float64 }

// weightedMedianSkip is the value at which half of the weight of xs lies on
// either side (the lower one on a tie), leaving out xs[skip] (skip < 0
// leaves out nothing). xs must be sorted by value. It is NaN when no
// weight is left.
func weightedMedianSkip(xs []weightedValue, skip int) float64 {
	var total float64
	for i, x := range xs {
		if i != skip {
			total += x.w
		}
	}
	if !(total > 0) {
		return math.NaN()
	}
	var acc float64
	for i, x := range xs {
		if i == skip {
			continue
		}
		acc += x.w
		if acc >= total/2 {
			return x.v
		}
	}
	return xs[len(xs)-1].v
}

// trendFit is a Theil–Sen line through points with a Mann–Kendall test of
// its trend.
type trendFit struct {
	// Slope is the median of the pairwise slopes; Lo and Hi are Sen's
	// confidence interval for it.
	Slope, Lo, Hi float64
	// Intercept is the median of y − Slope·t, so the line is
	// Intercept + Slope·t.
	Intercept float64
	// S is Kendall's S (concordant minus discordant pairs), Z its
	// standardized value (tie- and continuity-corrected) and P the
	// one-sided p-value of an upward trend.
	S, Z, P float64
}

// fitTrend fits ts, ys (at least 3 points, ts increasing) with the
// Theil–Sen estimator, tests the upward trend with Mann–Kendall, and
// gives Sen's interval at confidence conf. buf is scratch space for the
// n(n−1)/2 slopes, reused across calls.
//
// Mann–Kendall assumes independent points; memory is not, which makes
// its p-value optimistic: the leak rule also asks for a size of growth
// and for the growth to go on in the span's later half.
func fitTrend(ts, ys []float64, conf float64, buf *[]float64) trendFit {
	n := len(ts)
	slopes := slices.Grow((*buf)[:0], n*(n-1)/2+n)
	var s float64
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			d := ys[j] - ys[i]
			switch {
			case d > 0:
				s++
			case d < 0:
				s--
			}
			if dt := ts[j] - ts[i]; dt > 0 {
				slopes = append(slopes, d/dt)
			}
		}
	}
	*buf = slopes
	var f trendFit
	if len(slopes) == 0 {
		f.P = 1
		return f
	}
	slices.Sort(slopes)
	f.Slope = sortedMedian(slopes)

	// Var(S) with the correction for tied ys.
	sorted := append(slopes[len(slopes):], ys...) // past the slopes, in the same buffer
	slices.Sort(sorted)
	nf := float64(n)
	v := nf * (nf - 1) * (2*nf + 5)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		if t := float64(j - i); t > 1 {
			v -= t * (t - 1) * (2*t + 5)
		}
		i = j
	}
	v /= 18
	f.S = s
	switch {
	case v <= 0:
		f.P = 1
	case s > 0:
		f.Z = (s - 1) / math.Sqrt(v)
	case s < 0:
		f.Z = (s + 1) / math.Sqrt(v)
	}
	if v > 0 {
		f.P = tailP(f.Z)
	}

	// Sen's interval: the slopes of ranks (N−C)/2 and (N+C)/2+1, C the
	// two-sided normal quantile of S's spread.
	c := quantileZ(1-(1-conf)/2) * math.Sqrt(max(v, 0))
	nn := float64(len(slopes))
	lo := int(math.Round((nn-c)/2)) - 1
	hi := int(math.Round((nn + c) / 2))
	f.Lo = slopes[min(max(lo, 0), len(slopes)-1)]
	f.Hi = slopes[min(max(hi, 0), len(slopes)-1)]

	res := sorted[:0]
	for i := range ys {
		res = append(res, ys[i]-f.Slope*ts[i])
	}
	slices.Sort(res)
	f.Intercept = sortedMedian(res)
	return f
}

// pText is a p-value for the evidence: "3e-06", or "< 1e-300" where it
// underflowed.
func pText(p float64) string {
	if p < 1e-300 {
		return "< 1e-300"
	}
	return "= " + strconv.FormatFloat(p, 'g', 1, 64)
}

// sortedMedian is the median of sorted xs (not empty).
func sortedMedian(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

package regress

import (
	"math"

	"github.com/aclements/go-moremath/stats"
)

// The few statistics of the version comparison that benchmath does not
// have (it compares samples of runs, not counts of profile samples). The
// normal distribution is go-moremath's, on which benchmath is built;
// Benjamini–Hochberg, the interpolated weighted median and the Pearson
// dispersion are a few lines each, written here.

// upperTail is P(Z ≥ z) for a standard normal Z: the one-sided p-value
// of a rise. go-moremath's CDF goes through math.Erfc, so a p-value far
// in the tail (z = 9: 1e-19) does not round to 0 as 1 − CDF(z) would.
func upperTail(z float64) float64 { return stats.StdNormal.CDF(-z) }

// normalQuantile is the z with P(Z ≤ z) = p.
func normalQuantile(p float64) float64 { return stats.StdNormal.InvCDF(p) }

// bhCount is how many of the p-values, sorted ascending, the
// Benjamini–Hochberg procedure at false discovery rate q rejects: the
// largest k with p₍ₖ₎ ≤ k·q/m (Benjamini & Hochberg, 1995). The first k
// are the discoveries. It controls the expected share of false ones
// among them at q for independent or positively dependent tests, which
// shares of one profile are closely enough (a rise of one function
// lowers the others a little, which only makes the test conservative).
func bhCount(sorted []float64, q float64) int {
	m := float64(len(sorted))
	k := 0
	for i, p := range sorted {
		if p <= float64(i+1)*q/m {
			k = i + 1
		}
	}
	return k
}

// weightedMedian is the weighted median of xs, sorted ascending, with
// weights ws: each value stands at the middle of its weight's span of
// the cumulative weight, and the median is interpolated between the two
// values whose middles straddle half the total (the lower weighted
// median, which go-moremath's weighted Quantile is, jumps from one value
// to the next and, with two values, is always the smaller: a common
// factor of two functions would be biased low). NaN when xs is empty.
func weightedMedian(xs, ws []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var total float64
	for _, w := range ws {
		total += w
	}
	half := total / 2
	var cum, prevMid float64
	for i, w := range ws {
		mid := cum + w/2
		if mid >= half {
			if i == 0 || mid == prevMid {
				return xs[i]
			}
			return xs[i-1] + (xs[i]-xs[i-1])*(half-prevMid)/(mid-prevMid)
		}
		cum += w
		prevMid = mid
	}
	return xs[len(xs)-1]
}

// pearson is one side's part of the Pearson χ² of a function's
// per-window counts about its pooled rate: Σ_w (x_w − e_w·p)² / (e_w·V(p))
// with p = X/E, where V(p) = p(1−p) for a share of samples (binomial)
// and p for a count per request (Poisson). It needs no per-window
// storage: Σ (x_w − e_w p)²/e_w = Σ x_w²/e_w − X²/E, so the windows leave
// only X, E and Σ x_w²/e_w (x2e). 0 when the variance function is 0.
func pearson(x, x2e, e float64, binomial bool) float64 {
	if x <= 0 || e <= 0 {
		return 0
	}
	p := x / e
	v := p
	if binomial {
		v = p * (1 - p)
	}
	if v < 1e-12 {
		return 0
	}
	return math.Max(0, x2e-x*x/e) / v
}

// excess is the method-of-moments estimate of κ, a cost's variance from
// window to window beyond sampling, from one or more sides' Pearson χ².
// A window of e_w samples (or requests) whose share p varies by τ²
// between windows counts x_w with variance e_w·V(p) + e_w²·τ²; with
// κ = τ²/V(p), a side's χ² has the mean df + κ·(E − Σe_w²/E), and the
// side's pooled cost X/E the variance V(p)/E · (1 + κ·Σe_w²/E): its φ.
// With windows of one size that φ is χ²/df, the usual estimate; with
// windows of several sizes (a boosted deploy sampled five times faster
// than its base) the one κ gives each side the φ of its own windows,
// where a pooled χ²/df would take the base's small windows' φ for the
// head's large ones.
type excess struct {
	over, room float64 // Σ (χ² − df) and Σ (E − Σe_w²/E)
	df         int
}

func excessOf(chi2 float64, df int, e, e2 float64) excess {
	if df <= 0 || e <= 0 {
		return excess{}
	}
	return excess{over: chi2 - float64(df), room: e - e2/e, df: df}
}

func (x excess) plus(y excess) excess {
	return excess{over: x.over + y.over, room: x.room + y.room, df: x.df + y.df}
}

// kappa is κ ≥ 0: a cost is never taken as less noisy than sampling
// makes it.
func (x excess) kappa() float64 {
	if x.room <= 0 || x.over <= 0 {
		return 0
	}
	return x.over / x.room
}

// dispersion is φ: the Pearson χ² over its degrees of freedom, at least
// 1 (a count is never taken as less noisy than sampling makes it), and 1
// without degrees of freedom.
func dispersion(chi2 float64, df int) float64 {
	if df <= 0 {
		return 1
	}
	return math.Max(1, chi2/float64(df))
}

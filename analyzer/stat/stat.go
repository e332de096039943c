// Package stat holds the statistics perfhound's comparisons share: the
// thresholds, the change classes, and the tests. Every test comes from
// golang.org/x/perf/benchmath, the go-moremath distributions it is built
// on, or gonum's (where go-moremath's fail); this package only chooses
// between them and states why. The one exception is FastestShift's
// permutation test, which none of them has.
package stat

import (
	"fmt"
	"math"
	"sort"

	"github.com/aclements/go-moremath/stats"
	"golang.org/x/perf/benchmath"
	"gonum.org/v1/gonum/stat/distuv"
)

// Thresholds are the tunables of a comparison, in one place.
type Thresholds struct {
	// Alpha is the significance level: a difference with p < Alpha is
	// taken as real.
	Alpha float64
	// Confidence is the level of confidence intervals.
	Confidence float64
	// MinChange is the smallest relative change that counts (0.05 = 5%).
	// A real change whose confidence interval lies wholly below it is
	// reported but not flagged.
	MinChange float64
}

// DefaultThresholds are benchstat's alpha and confidence and a 5% floor.
var DefaultThresholds = Thresholds{Alpha: 0.05, Confidence: 0.95, MinChange: 0.05}

// Change classifies a compared quantity.
type Change int

const (
	Unchanged   Change = iota // not significant, or too small to count
	Regression                // significantly worse, possibly by MinChange or more
	Improvement               // significantly better, possibly by MinChange or more
	Changed                   // significant and large, direction of "better" unknown
)

func (c Change) String() string {
	switch c {
	case Regression:
		return "regression"
	case Improvement:
		return "improvement"
	case Changed:
		return "changed"
	}
	return "unchanged"
}

// MarshalText makes a Change a JSON string.
func (c Change) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Classify applies the policy: significant (p < Alpha), the end of the
// relative change's interval [lo, hi] on the side of the change reaches
// MinChange, and the estimate itself is at least half of MinChange, so
// that the wide interval of noisy runs cannot flag a small change on its
// own. A delta that is not a number is no change. better is +1 when
// higher is better, -1 when lower is, 0 if unknown.
func Classify(p, delta, lo, hi float64, better int, th Thresholds) Change {
	if !(p < th.Alpha) || delta == 0 || !(math.Abs(delta) >= th.MinChange/2) {
		return Unchanged
	}
	up := delta > 0
	if up && !(hi >= th.MinChange) || !up && !(lo <= -th.MinChange) {
		return Unchanged
	}
	switch {
	case better == 0:
		return Changed
	case (better < 0) == up:
		return Regression
	}
	return Improvement
}

// RatioCI is the Hodges-Lehmann/Moses confidence interval of head/base - 1
// for two samples of positive values: order statistics of all pairwise
// log-ratios, at ranks given by the Mann-Whitney U distribution (Hollander
// & Wolfe, Nonparametric Statistical Methods, 3rd ed., §4.3). It is the
// interval that belongs to the U test benchmath runs. With too few samples
// for the confidence, or values that are not positive and finite, the
// interval is infinite.
//
// The n1×n2 ratios are never stored: the order statistics are selected
// from the sorted samples (kthRatio), so time is O((n1+n2)·log) and memory
// O(n1+n2). 10,000 runs a side take milliseconds, not 800 MB.
func RatioCI(base, head []float64, confidence float64) (lo, hi float64) {
	inf := func() (float64, float64) { return math.Inf(-1), math.Inf(1) }
	b, h := sortedPositive(base), sortedPositive(head)
	if b == nil || h == nil {
		return inf()
	}
	k := mosesRank(len(b), len(h), confidence)
	if k == 0 {
		return inf()
	}
	n := len(b) * len(h)
	// log is monotone, so the k-th smallest log-ratio is the log of the
	// k-th smallest ratio: the same number as sorting all log(h/b).
	return math.Expm1(math.Log(kthRatio(b, h, k))), math.Expm1(math.Log(kthRatio(b, h, n-k+1)))
}

// sortedPositive is a sorted copy of xs, or nil when xs is empty or holds
// a value that is not positive and finite.
func sortedPositive(xs []float64) []float64 {
	if len(xs) == 0 {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		if !(x > 0) || math.IsInf(x, 1) {
			return nil
		}
		out[i] = x
	}
	sort.Float64s(out)
	return out
}

// kthRatio is the k-th smallest (from 1) of the n1×n2 ratios h[j]/b[i]
// of two sorted samples of positive numbers, as float64 division computes
// them. It bisects over the float64 values between 0 and +Inf, whose
// order is that of their bits, for the least t with at least k ratios ≤ t:
// at most 64 counts of O(n1+n2) each, and t is then one of the ratios.
func kthRatio(b, h []float64, k int) float64 {
	lo, hi := math.Float64bits(0), math.Float64bits(math.Inf(1))
	for lo < hi {
		mid := lo + (hi-lo)/2
		if ratiosAtMost(b, h, math.Float64frombits(mid)) >= k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return math.Float64frombits(lo)
}

// ratiosAtMost counts the pairs with h[j]/b[i] <= t. Rounded division is
// monotone, so for each i the j that qualify are a prefix of h, and that
// prefix only grows as b[i] does: one walk of each sample.
func ratiosAtMost(b, h []float64, t float64) int {
	n, j := 0, 0
	for _, bi := range b {
		for j < len(h) && h[j]/bi <= t {
			j++
		}
		n += j
	}
	return n
}

// mosesRank is the largest k with P(U <= k-1) <= (1-confidence)/2: the
// critical value of the two-sided U test plus one, or 0 when the samples
// are too small for the confidence. Up to go-moremath's
// MannWhitneyExactLimit a side, where its U test is exact too, k comes
// from the exact U distribution; above, from its normal approximation, as
// the U test's p-value does there.
func mosesRank(n1, n2 int, confidence float64) int {
	tail := (1 - confidence) / 2
	if !(tail > 0) {
		return 0
	}
	if n1 > stats.MannWhitneyExactLimit || n2 > stats.MannWhitneyExactLimit {
		return mosesRankNormal(n1, n2, tail)
	}
	return mosesRankExact(n1, n2, tail)
}

// mosesRankExact finds k by bisection over the exact U distribution (its
// CDF is monotone; an evaluation costs O(n1·n2·k)), not k evaluations.
func mosesRankExact(n1, n2 int, tail float64) int {
	u := stats.UDist{N1: n1, N2: n2}
	lo, hi := 0, n1*n2/2
	for lo < hi {
		mid := lo + (hi-lo)/2
		if u.CDF(float64(mid)) <= tail {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// mosesRankNormal is k from U's normal approximation with continuity
// correction: P(U <= k-1) ≈ Φ((k - 1/2 - μ)/σ) with μ = n1·n2/2 and
// σ² = n1·n2·(n1+n2+1)/12, so k = ⌊μ + 1/2 + σ·Φ⁻¹(tail)⌋.
func mosesRankNormal(n1, n2 int, tail float64) int {
	mu := float64(n1) * float64(n2) / 2
	sigma := math.Sqrt(float64(n1) * float64(n2) * float64(n1+n2+1) / 12)
	k := math.Floor(mu + 0.5 + sigma*stats.StdNormal.InvCDF(tail))
	return int(max(0, min(k, float64(n1*n2/2))))
}

// Welch runs Welch's two-sample t-test (benchmath.AssumeNormal). It is the
// test for quantities that are each a sum of many profile samples, where
// the central limit theorem makes normality a fair assumption and where
// the U test cannot reach p < 0.05 with three values a side.
func Welch(base, head []float64) (p float64, warning error) {
	th := benchmath.DefaultThresholds
	c := benchmath.AssumeNormal.Compare(
		benchmath.NewSample(append([]float64(nil), base...), &th),
		benchmath.NewSample(append([]float64(nil), head...), &th))
	if len(c.Warnings) > 0 {
		return c.P, c.Warnings[0]
	}
	return c.P, nil
}

// PoissonRates is the exact conditional test of two Poisson rates
// (Przyborowski & Wilenski, 1940): k1 events over exposure e1 against k2
// over e2. Given k1+k2, k2 is binomial with p = e2/(e1+e2) when the rates
// are equal. It decides sampling noise when only one profile a side
// exists: the events are profile samples, the exposure the number of
// operations (or the total samples, when comparing shares). The two-sided
// p-value doubles the smaller tail.
//
// The binomial is gonum's: go-moremath's regularized incomplete beta
// gives up (panics) past a few hundred thousand events, which a merged
// hour of a busy service's samples reaches.
func PoissonRates(k1, e1, k2, e2 float64) float64 {
	n := math.Round(k1 + k2)
	if n == 0 || e1 <= 0 || e2 <= 0 {
		return 1
	}
	b := distuv.Binomial{N: n, P: e2 / (e1 + e2)}
	k := math.Round(k2)
	lower := b.CDF(k)
	upper := 1 - b.CDF(k-1)
	return math.Min(1, 2*math.Min(lower, upper))
}

// Policy says what fails a comparison, and with it the build in CI.
type Policy string

const (
	FailOnRegression Policy = "regression" // a regression beyond the thresholds
	FailOnChange     Policy = "change"     // any change beyond the thresholds, better or worse
	FailNever        Policy = "never"      // report only
)

// ParsePolicy checks a --fail-on value.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case FailOnRegression, FailOnChange, FailNever:
		return p, nil
	}
	return "", fmt.Errorf("unknown policy %q (want regression, change or never)", s)
}

// Fails applies p to what a comparison found beyond its thresholds:
// regressions, and the other changes (improvements, and changes with no
// known better direction). The empty policy is FailOnRegression.
func (p Policy) Fails(regressions, otherChanges int) bool {
	switch p {
	case FailNever:
		return false
	case FailOnChange:
		return regressions+otherChanges > 0
	}
	return regressions > 0
}

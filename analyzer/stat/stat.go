// Package stat holds the statistics perfhound's comparisons share: the
// thresholds, the change classes, and the tests. Every test comes from
// golang.org/x/perf/benchmath or the go-moremath distributions it is built
// on; this package only chooses between them and states why.
package stat

import (
	"math"
	"sort"

	"github.com/aclements/go-moremath/stats"
	"golang.org/x/perf/benchmath"
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
// own. better is +1 when higher is better, -1 when lower is, 0 if unknown.
func Classify(p, delta, lo, hi float64, better int, th Thresholds) Change {
	if !(p < th.Alpha) || delta == 0 || math.Abs(delta) < th.MinChange/2 {
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
// for the confidence, or non-positive values, the interval is infinite.
func RatioCI(base, head []float64, confidence float64) (lo, hi float64) {
	n1, n2 := len(base), len(head)
	inf := func() (float64, float64) { return math.Inf(-1), math.Inf(1) }
	if n1 == 0 || n2 == 0 {
		return inf()
	}
	d := make([]float64, 0, n1*n2)
	for _, h := range head {
		for _, b := range base {
			if h <= 0 || b <= 0 {
				return inf()
			}
			d = append(d, math.Log(h/b))
		}
	}
	sort.Float64s(d)
	k := mosesRank(n1, n2, confidence)
	if k == 0 {
		return inf()
	}
	return math.Expm1(d[k-1]), math.Expm1(d[len(d)-k])
}

// mosesRank is the largest k with P(U <= k-1) <= (1-confidence)/2: the
// critical value of the two-sided U test plus one, or 0 when the samples
// are too small for the confidence.
func mosesRank(n1, n2 int, confidence float64) int {
	u := stats.UDist{N1: n1, N2: n2}
	tail := (1 - confidence) / 2
	k := 0
	for k < n1*n2/2 && u.CDF(float64(k)) <= tail {
		k++
	}
	return k
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
func PoissonRates(k1, e1, k2, e2 float64) float64 {
	n := int(math.Round(k1 + k2))
	if n == 0 || e1 <= 0 || e2 <= 0 {
		return 1
	}
	b := stats.BinomialDist{N: n, P: e2 / (e1 + e2)}
	k := math.Round(k2)
	lower := b.CDF(k)
	upper := 1 - b.CDF(k-1)
	return math.Min(1, 2*math.Min(lower, upper))
}

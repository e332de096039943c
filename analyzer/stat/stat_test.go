package stat

import (
	"math"
	"testing"
)

// The ranks are the published two-sided critical values of the
// Mann-Whitney U test at alpha 0.05, plus one (e.g. U = 23 for 10 and 10).
func TestMosesRankMatchesUTables(t *testing.T) {
	for _, tc := range []struct{ n1, n2, want int }{
		{3, 3, 0}, {4, 4, 1}, {5, 5, 3}, {6, 6, 6}, {8, 8, 14}, {10, 10, 24}, {10, 20, 56},
	} {
		if got := mosesRank(tc.n1, tc.n2, 0.95); got != tc.want {
			t.Errorf("mosesRank(%d, %d) = %d, want %d", tc.n1, tc.n2, got, tc.want)
		}
	}
}

func TestRatioCI(t *testing.T) {
	base := []float64{100.0, 100.4, 99.7, 100.9, 100.2, 99.5, 100.6, 100.1, 99.9, 100.3}
	head := make([]float64, len(base))
	for i, b := range base {
		head[i] = b * 1.10
	}
	lo, hi := RatioCI(base, head, 0.95)
	if !(lo > 0.08 && lo < 0.10 && hi > 0.10 && hi < 0.12) {
		t.Errorf("RatioCI of a 10%% shift = [%.4f, %.4f], want around 0.10", lo, hi)
	}
	lo, hi = RatioCI(base, base, 0.95)
	if !(lo < 0 && hi > 0) {
		t.Errorf("RatioCI of equal samples = [%.4f, %.4f], want it to contain 0", lo, hi)
	}
	lo, hi = RatioCI(base[:3], head[:3], 0.95)
	if !math.IsInf(lo, -1) || !math.IsInf(hi, 1) {
		t.Errorf("RatioCI with 3 a side = [%v, %v], want unbounded", lo, hi)
	}
	lo, _ = RatioCI([]float64{0, 1, 2, 3, 4}, []float64{1, 2, 3, 4, 5}, 0.95)
	if !math.IsInf(lo, -1) {
		t.Errorf("RatioCI with a zero value = %v, want unbounded", lo)
	}
}

func TestPoissonRates(t *testing.T) {
	if p := PoissonRates(100, 1, 100, 1); p < 0.9 {
		t.Errorf("equal counts: p = %v, want ~1", p)
	}
	// 150 of 250 events on one side at equal exposure: the exact binomial
	// two-sided p-value is 0.0021.
	if p := PoissonRates(100, 1, 150, 1); math.Abs(p-0.0021) > 0.0003 {
		t.Errorf("100 vs 150: p = %.5f, want 0.0021", p)
	}
	// The same counts are no surprise when the head saw 1.5 times the exposure.
	if p := PoissonRates(100, 1, 150, 1.5); p < 0.9 {
		t.Errorf("exposure-adjusted: p = %v, want ~1", p)
	}
	if p := PoissonRates(0, 1, 0, 1); p != 1 {
		t.Errorf("no events: p = %v, want 1", p)
	}
}

func TestClassify(t *testing.T) {
	th := DefaultThresholds
	for _, tc := range []struct {
		name             string
		p, delta, lo, hi float64
		better           int
		want             Change
	}{
		{"not significant", 0.2, 0.10, -0.01, 0.2, -1, Unchanged},
		{"slower, interval reaches 5%", 0.001, 0.045, 0.03, 0.06, -1, Regression},
		{"slower, interval below 5%", 0.001, 0.02, 0.01, 0.03, -1, Unchanged},
		{"small estimate, wide noisy interval", 0.01, 0.02, 0.001, 0.09, -1, Unchanged},
		{"faster", 0.001, -0.10, -0.12, -0.08, -1, Improvement},
		{"throughput down", 0.001, -0.10, -0.12, -0.08, 1, Regression},
		{"unknown direction", 0.001, 0.10, 0.08, 0.12, 0, Changed},
	} {
		if got := Classify(tc.p, tc.delta, tc.lo, tc.hi, tc.better, th); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
}

package regress

import (
	"math"
	"reflect"
	"testing"
)

func TestBHPass(t *testing.T) {
	ps := []float64{0.01, 0.04, 0.03, 0.005}
	// m = 4, q = 0.05: the thresholds are 0.0125, 0.025, 0.0375, 0.05
	// and the largest p-value, 0.04, is under its own: all pass.
	if got := bhPass(ps, 4, 0.05); !reflect.DeepEqual(got, []bool{true, true, true, true}) {
		t.Errorf("m=4: %v", got)
	}
	// m = 10 (six not nominated): 0.005, 0.01, 0.015, 0.02: the two
	// smallest pass.
	if got := bhPass(ps, 10, 0.05); !reflect.DeepEqual(got, []bool{true, false, false, true}) {
		t.Errorf("m=10: %v", got)
	}
	// Step-up: p-values over their own thresholds (0.03 > 0.05/3,
	// 0.034 > 0.05·2/3) pass when a larger rank passes (0.035 ≤ 0.05).
	if got := bhPass([]float64{0.03, 0.035, 0.034}, 3, 0.05); !reflect.DeepEqual(got, []bool{true, true, true}) {
		t.Errorf("step-up: %v", got)
	}
	if got := bhPass(nil, 5, 0.05); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestWeightedMedian(t *testing.T) {
	xs := []weightedValue{{1, 1}, {2, 1}, {3, 5}}
	if got := weightedMedianSkip(xs, -1); got != 3 {
		t.Errorf("all: %v", got)
	}
	if got := weightedMedianSkip(xs, 2); got != 1 {
		t.Errorf("without the heaviest: %v, want the lower of a tie", got)
	}
	if got := weightedMedianSkip([]weightedValue{{1, 0}}, -1); !math.IsNaN(got) {
		t.Errorf("no weight: %v", got)
	}
}

func TestFitTrend(t *testing.T) {
	var buf []float64
	// A line: every slope is 2, S = 45 of 45 pairs, Var(S) = 10·9·25/18.
	var ts, ys []float64
	for i := range 10 {
		ts = append(ts, float64(i))
		ys = append(ys, 2*float64(i)+1)
	}
	f := fitTrend(ts, ys, 0.95, &buf)
	z := 44 / math.Sqrt(125)
	if f.Slope != 2 || f.Lo != 2 || f.Hi != 2 || f.Intercept != 1 || f.S != 45 || math.Abs(f.Z-z) > 1e-12 || math.Abs(f.P-tailP(z)) > 1e-15 {
		t.Errorf("line: %+v, want Z %v", f, z)
	}
	// Ties: 1 1 2 2 3. S = 8; Var(S) = (5·4·15 − 2·2·1·9)/18; the ten
	// slopes 0 0 1/3 .5 .5 .5 .5 2/3 1 1 have the median .5.
	f = fitTrend([]float64{0, 1, 2, 3, 4}, []float64{1, 1, 2, 2, 3}, 0.95, &buf)
	z = 7 / math.Sqrt(264.0/18)
	if f.Slope != 0.5 || f.S != 8 || math.Abs(f.Z-z) > 1e-12 {
		t.Errorf("ties: %+v, want Z %v", f, z)
	}
	// A fall is no upward trend.
	f = fitTrend([]float64{0, 1, 2, 3}, []float64{4, 3, 2, 1}, 0.95, &buf)
	if f.Slope != -1 || f.P < 0.9 {
		t.Errorf("fall: %+v", f)
	}
	// Flat: no trend, p = 1 (every pair tied).
	f = fitTrend([]float64{0, 1, 2}, []float64{5, 5, 5}, 0.95, &buf)
	if f.Slope != 0 || f.P != 1 {
		t.Errorf("flat: %+v", f)
	}
}

package stat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/perf/benchmath"
)

// busyRuns draws n runs of a benchmark whose clean time is t on a machine
// where other work comes and goes: each run has a clean time with 1%
// noise, and with probability 0.7 other work adds to it, up to 2.5×: the
// shape of fixtures/corpus-busy's runs (interference only adds time; some
// runs escape it), more loaded.
func busyRuns(rng *rand.Rand, n int, t float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		x := t * math.Exp(0.01*rng.NormFloat64())
		if rng.Float64() < 0.7 {
			x *= 1 + 1.5*rng.Float64()
		}
		out[i] = x
	}
	return out
}

// Under no change, the test's false alarms stay at its level: of 200
// pairs of busy runs with the same clean time, about 5% have p < 0.05.
func TestFastestShiftNullLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const pairs = 200
	alarms := 0
	for range pairs {
		s, ok := FastestShift(busyRuns(rng, 20, 1000), busyRuns(rng, 20, 1000), 0.95)
		if !ok {
			t.Fatal("20 runs a side refused")
		}
		if s.P < 0.05 {
			alarms++
		}
	}
	// Binomial(200, 0.05): mean 10, sd 3.1; 20 is more than 3 sd above.
	if alarms > 20 {
		t.Errorf("%d of %d null pairs at p < 0.05, want about 10", alarms, pairs)
	}
}

// A 5% slowdown under that load, 30 runs a side: the fastest runs find it
// in most pairs, several times as often as the U test, and the shift's
// interval covers the truth about as often as its confidence says.
func TestFastestShiftFindsWhatTheUTestMisses(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const pairs = 100
	found, foundU, covered := 0, 0, 0
	for range pairs {
		b, h := busyRuns(rng, 30, 1000), busyRuns(rng, 30, 1050)
		s, ok := FastestShift(b, h, 0.95)
		if !ok {
			t.Fatal("30 runs a side refused")
		}
		if s.P < 0.05 && s.Delta > 0 {
			found++
		}
		if s.Lo <= 0.05 && 0.05 <= s.Hi {
			covered++
		}
		th := benchmath.DefaultThresholds
		if u := benchmath.AssumeNothing.Compare(benchmath.NewSample(b, &th), benchmath.NewSample(h, &th)); u.P < 0.05 {
			foundU++
		}
	}
	t.Logf("5%% slowdowns found in %d of %d pairs by the fastest runs, %d by the U test; interval covered 5%% in %d", found, pairs, foundU, covered)
	if found < 80 || found < 2*foundU {
		t.Errorf("fastest runs found %d of %d, the U test %d: want at least 80 and twice the U test's", found, pairs, foundU)
	}
	if covered < 90 {
		t.Errorf("the interval covered the 5%% shift in %d of %d pairs, want about 95", covered, pairs)
	}
}

// Sides of different sizes take the same share of their runs, so that
// under no change the shift is near zero (taking 3 of each, the 20-run
// side's fastest sit lower than the 16-run side's: -0.49% on average over
// 4,000 pairs of this model, against -0.13%), and the level holds.
func TestFastestShiftUnequalSides(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const pairs = 400
	var sum float64
	alarms := 0
	for range pairs {
		s, ok := FastestShift(busyRuns(rng, 16, 1000), busyRuns(rng, 20, 1000), 0.95)
		if !ok {
			t.Fatal("16 and 20 runs refused")
		}
		sum += s.Delta
		if s.P < 0.05 {
			alarms++
		}
	}
	mean := sum / pairs
	t.Logf("mean shift under no change %+.2f%%, %d of %d null pairs at p < 0.05", 100*mean, alarms, pairs)
	if math.Abs(mean) > 0.003 {
		t.Errorf("mean shift under no change %+.2f%%, want within 0.3%% of zero", 100*mean)
	}
	// Binomial(400, 0.05): mean 20, sd 4.4.
	if alarms > 34 {
		t.Errorf("%d of %d null pairs at p < 0.05, want about 20", alarms, pairs)
	}
	if _, ok := FastestShift(busyRuns(rng, 10, 1000), busyRuns(rng, 13, 1000), 0.95); ok {
		t.Error("10 and 13 runs accepted, want sides within 1.25× of each other")
	}
}

func TestFastestShiftRefuses(t *testing.T) {
	many := make([]float64, maxFastestRuns+1)
	for i := range many {
		many[i] = float64(1 + i)
	}
	if _, ok := FastestShift(many, many, 0.95); ok {
		t.Errorf("%d runs a side accepted, want at most %d", len(many), maxFastestRuns)
	}
	few := []float64{1, 2, 3, 4, 5, 6, 7}
	enough := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	if _, ok := FastestShift(few, enough, 0.95); ok {
		t.Error("7 runs a side accepted, want at least 8")
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		head := append(append([]float64(nil), enough...), bad)
		if _, ok := FastestShift(enough, head, 0.95); ok {
			t.Errorf("a run of %v accepted", bad)
		}
	}
	// The same runs give the same answer: the draws have a fixed seed.
	b, h := busyRuns(rand.New(rand.NewPCG(3, 3)), 12, 1000), busyRuns(rand.New(rand.NewPCG(4, 4)), 12, 1000)
	if s1, s2 := fastestOf(b, h), fastestOf(b, h); s1 != s2 {
		t.Errorf("two calls on the same runs disagree: %+v and %+v", s1, s2)
	}
	// The means are of the fastest eighth, at least 3: 3 of 12.
	s := fastestOf([]float64{8, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9}, []float64{2, 2, 2, 9, 9, 9, 9, 9, 9, 9, 9, 3})
	if math.Abs(s.Base-1) > 1e-12 || math.Abs(s.Head-2) > 1e-12 || math.Abs(s.Delta-1) > 1e-12 {
		t.Errorf("fastest runs of 1s and 2s: %+v, want base 1, head 2, delta 1", s)
	}
}

func fastestOf(b, h []float64) Shift {
	s, _ := FastestShift(b, h, 0.95)
	return s
}

func BenchmarkFastestShift(b *testing.B) {
	for _, n := range []int{30, 100, 1000} {
		rng := rand.New(rand.NewPCG(5, 6))
		base, head := busyRuns(rng, n, 1000), busyRuns(rng, n, 1050)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				FastestShift(base, head, 0.95)
			}
		})
	}
}

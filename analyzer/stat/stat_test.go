package stat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"

	"github.com/aclements/go-moremath/stats"

	"github.com/perfhound/perfhound/analyzer/internal/memcap"
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
	// A merged hour of a busy service's samples: go-moremath's incomplete
	// beta panicked here. 2000 more of a million events is z ≈ 2.0, p ≈ 0.046.
	if p := PoissonRates(500_000, 1, 502_000, 1); math.Abs(p-0.0457) > 0.002 {
		t.Errorf("500000 vs 502000: p = %.4f, want 0.046", p)
	}
	if p := PoissonRates(314_400, 0.37, 536_785, 0.63); p < 0 || p > 1 || math.IsNaN(p) {
		t.Errorf("the agent's diff's counts: p = %v", p)
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

// ratioCIMatrix is RatioCI as it was: every pairwise log-ratio in a
// matrix, sorted, and the order statistics at the Moses rank. It is the
// reference the selection must match exactly.
func ratioCIMatrix(base, head []float64, k int) (lo, hi float64) {
	var d []float64
	for _, h := range head {
		for _, b := range base {
			d = append(d, math.Log(h/b))
		}
	}
	sort.Float64s(d)
	return math.Expm1(d[k-1]), math.Expm1(d[len(d)-k])
}

// mosesRankScan is mosesRank's exact rank as it was found: the U
// distribution's CDF at every k in turn.
func mosesRankScan(n1, n2 int, confidence float64) int {
	u := stats.UDist{N1: n1, N2: n2}
	tail := (1 - confidence) / 2
	k := 0
	for k < n1*n2/2 && u.CDF(float64(k)) <= tail {
		k++
	}
	return k
}

// The bisection finds the rank the scan of the CDF found, for every pair
// of sizes up to 20 and a few larger ones, at three confidences.
func TestMosesRankExactMatchesScan(t *testing.T) {
	type size struct{ n1, n2 int }
	var sizes []size
	for n1 := 1; n1 <= 20; n1++ {
		for n2 := n1; n2 <= 20; n2++ {
			sizes = append(sizes, size{n1, n2})
		}
	}
	sizes = append(sizes, size{3, 50}, size{25, 40})
	for _, c := range []float64{0.90, 0.95, 0.99} {
		for _, s := range sizes {
			if got, want := mosesRank(s.n1, s.n2, c), mosesRankScan(s.n1, s.n2, c); got != want {
				t.Errorf("mosesRank(%d, %d, %v) = %d, want %d", s.n1, s.n2, c, got, want)
			}
		}
	}
}

// Where both apply, the normal approximation of the rank is within one of
// the exact rank at 90% and 95% (it is what the U test's p-value uses
// above 50 a side); in the far tail of 99%, within three (of ~900 for
// 50×50: the order statistic three places over).
func TestMosesRankNormalNearExact(t *testing.T) {
	for n1 := 10; n1 <= 50; n1 += 10 {
		for n2 := n1; n2 <= 50; n2 += 10 {
			for _, c := range []struct {
				confidence float64
				tol        int
			}{{0.90, 1}, {0.95, 1}, {0.99, 3}} {
				tail := (1 - c.confidence) / 2
				exact, normal := mosesRankExact(n1, n2, tail), mosesRankNormal(n1, n2, tail)
				if d := normal - exact; d < -c.tol || d > c.tol {
					t.Errorf("%d×%d at %v: normal rank %d, exact %d", n1, n2, c.confidence, normal, exact)
				}
			}
		}
	}
	if k := mosesRank(100, 100, 0.95); k != mosesRankNormal(100, 100, 0.025) || k < 4000 || k > 4300 {
		t.Errorf("mosesRank(100, 100) = %d, want the normal rank, about 4,150", k)
	}
}

// The selection gives exactly the order statistics of the full matrix, on
// random samples and on samples full of ties, below and above the exact
// limit of 50 a side.
func TestRatioCIMatchesMatrix(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 1))
	sample := func(n int, tied bool, shift float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			if tied {
				xs[i] = float64(1000 + rng.IntN(4)) // 4 distinct values
			} else {
				xs[i] = 1000 * shift * math.Exp(0.05*rng.NormFloat64())
			}
		}
		return xs
	}
	for trial := range 300 {
		n1, n2 := 4+rng.IntN(30), 4+rng.IntN(30)
		if trial%10 == 0 {
			n1, n2 = 40+rng.IntN(40), 40+rng.IntN(40) // the normal rank
		}
		tied := trial%3 == 0
		base, head := sample(n1, tied, 1), sample(n2, tied, 1+0.1*rng.Float64())
		k := mosesRank(n1, n2, 0.95)
		if k == 0 {
			continue
		}
		lo, hi := RatioCI(base, head, 0.95)
		wlo, whi := ratioCIMatrix(base, head, k)
		if lo != wlo || hi != whi {
			t.Fatalf("%d×%d (tied %v): RatioCI = [%v, %v], matrix [%v, %v]", n1, n2, tied, lo, hi, wlo, whi)
		}
	}
}

// 10,000 runs a side: a 10% shift is found, and the interval costs memory
// linear in the input (two sorted copies, 160 kB), not the 800 MB of the
// matrix. The child's address space is capped in case that regresses.
func TestRatioCILargeIsLinear(t *testing.T) {
	if !memcap.Child(t, 512<<20) {
		return
	}
	const n = 10000
	rng := rand.New(rand.NewPCG(3, 4))
	base, head := make([]float64, n), make([]float64, n)
	for i := range base {
		base[i] = 1000 * math.Exp(0.05*rng.NormFloat64())
		head[i] = 1100 * math.Exp(0.05*rng.NormFloat64())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	lo, hi := RatioCI(base, head, 0.95)
	runtime.ReadMemStats(&after)
	if bytes := after.TotalAlloc - before.TotalAlloc; bytes > 4*8*n {
		t.Errorf("RatioCI of %d a side allocated %d bytes, want at most %d (linear)", n, bytes, 4*8*n)
	}
	if !(lo > 0.09 && lo < 0.10 && hi > 0.10 && hi < 0.11) {
		t.Errorf("RatioCI of a 10%% shift, %d a side = [%.4f, %.4f]", n, lo, hi)
	}
}

// Values that are not finite make no interval (and no NaN bound).
func TestRatioCINonFinite(t *testing.T) {
	base := []float64{1, 2, 3, 4, 5, 6, 7}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		head := []float64{1, 2, 3, 4, 5, 6, bad}
		lo, hi := RatioCI(base, head, 0.95)
		if !math.IsInf(lo, -1) || !math.IsInf(hi, 1) {
			t.Errorf("RatioCI with %v = [%v, %v], want unbounded", bad, lo, hi)
		}
	}
}

func BenchmarkRatioCI(b *testing.B) {
	for _, n := range []int{100, 10000} {
		rng := rand.New(rand.NewPCG(5, 6))
		base, head := make([]float64, n), make([]float64, n)
		for i := range base {
			base[i] = 1000 * math.Exp(0.05*rng.NormFloat64())
			head[i] = 1050 * math.Exp(0.05*rng.NormFloat64())
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				RatioCI(base, head, 0.95)
			}
		})
	}
}

// A change that is not a number (a median that overflowed to NaN) is not a
// finding; before, it counted as an improvement.
func TestClassifyNaNDelta(t *testing.T) {
	if got := Classify(0.001, math.NaN(), -0.5, 0.5, -1, DefaultThresholds); got != Unchanged {
		t.Errorf("Classify of a NaN change = %v, want unchanged", got)
	}
	if got := Classify(0.001, math.Inf(1), 0.5, math.Inf(1), -1, DefaultThresholds); got != Regression {
		t.Errorf("Classify of a change from 0 = %v, want regression", got)
	}
}

// The policy's rule, one place for compare and obsdiff: what fails for
// each policy, and that an unset policy is FailOnRegression.
func TestPolicyFails(t *testing.T) {
	for _, tc := range []struct {
		p                   Policy
		regressions, others int
		want                bool
	}{
		{FailOnRegression, 0, 0, false}, {FailOnRegression, 1, 0, true}, {FailOnRegression, 0, 3, false},
		{"", 1, 0, true}, {"", 0, 3, false},
		{FailOnChange, 0, 0, false}, {FailOnChange, 0, 1, true}, {FailOnChange, 1, 0, true},
		{FailNever, 2, 2, false},
	} {
		if got := tc.p.Fails(tc.regressions, tc.others); got != tc.want {
			t.Errorf("Policy(%q).Fails(%d, %d) = %v, want %v", tc.p, tc.regressions, tc.others, got, tc.want)
		}
	}
	for _, s := range []string{"regression", "change", "never"} {
		if p, err := ParsePolicy(s); err != nil || string(p) != s {
			t.Errorf("ParsePolicy(%q) = %q, %v", s, p, err)
		}
	}
	if _, err := ParsePolicy("sometimes"); err == nil {
		t.Error(`ParsePolicy("sometimes"): no error`)
	}
}

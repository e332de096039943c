package regress

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExcessWindowSizes: a share that jitters from window to window by
// the same τ² in windows of 190 and of 990 samples (10 s at 19 and at
// 99 Hz on one core) is estimated by one κ from either size, and the φ
// it gives each size is the variance its windows' shares really have
// over sampling's. χ²/df, the estimate with windows of one size, would
// take the small windows' φ for the large ones.
func TestExcessWindowSizes(t *testing.T) {
	const (
		p     = 0.1
		sigma = 0.15 // the share's lognormal jitter
		k     = 3000 // windows of each size
	)
	rng := rand.New(rand.NewPCG(7, 7))
	v := p * (1 - p)
	type side struct {
		n       float64
		x, x2n  float64
		e, e2   float64
		sh, sh2 float64 // Σ share, Σ share²
	}
	draw := func(n float64) side {
		s := side{n: n}
		for range k {
			q := p * math.Exp(sigma*rng.NormFloat64()-sigma*sigma/2)
			var x float64
			for range int(n) {
				if rng.Float64() < q {
					x++
				}
			}
			s.x += x
			s.x2n += x * x / n
			s.e += n
			s.e2 += n * n
			s.sh += x / n
			s.sh2 += (x / n) * (x / n)
		}
		return s
	}
	small, large := draw(190), draw(990)
	ex := func(s side) excess { return excessOf(pearson(s.x, s.x2n, s.e, true), k-1, s.e, s.e2) }
	ks, kl, kp := ex(small).kappa(), ex(large).kappa(), ex(small).plus(ex(large)).kappa()
	t.Logf("κ: small %.5f, large %.5f, pooled %.5f", ks, kl, kp)
	// τ² = p²·(e^{σ²} − 1) for a lognormal of mean p; κ = τ²/V.
	want := p * p * (math.Exp(sigma*sigma) - 1) / v
	for name, got := range map[string]float64{"small windows": ks, "large windows": kl, "pooled": kp} {
		if math.Abs(got-want)/want > 0.25 {
			t.Errorf("κ from %s = %.5f, want %.5f ± 25%%", name, got, want)
		}
	}
	// over is how much the windows' shares vary over sampling alone.
	over := func(s side) float64 {
		mean := s.sh / k
		return (s.sh2/k - mean*mean) / (v / s.n)
	}
	for _, s := range []side{small, large} {
		empirical := over(s)
		phi := 1 + kp*s.e2/s.e
		t.Logf("windows of %.0f: φ %.2f, empirical %.2f", s.n, phi, empirical)
		if math.Abs(phi-empirical)/empirical > 0.15 {
			t.Errorf("windows of %.0f samples: φ = %.2f, their shares vary %.2f times sampling's", s.n, phi, empirical)
		}
	}
	if chi2df, big := dispersion(pearson(small.x, small.x2n, small.e, true), k-1), over(large); math.Abs(chi2df-big)/big < 0.3 {
		t.Errorf("the small windows' χ²/df (%.2f) is close to the large ones' φ (%.2f): the test cannot tell the models apart", chi2df, big)
	}
}

package eval

import (
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// PowerModel is what a detector comparing a function's inclusive share
// of the service's CPU in a new version's first minutes with its share
// in the previous version's last BaseWindow can at best see, by the
// binomial model inflated by the windows' overdispersion φ. When only f
// changed, by a factor 1+d, the odds of a sample holding f change by
// exactly 1+d whatever f's share s, and the other functions' shares
// fall by the dilution c = 1/(1+s·d) with the very same samples: the
// evidence is the log odds ratio, z = ln(1+d) / sqrt(V_h + V_b), V =
// Var(p̂)/(p(1−p))², Var(p̂) = p(1−p)·Σ N_w φ_w/(Σ N_w)². (A test of p_h
// against c·p_b with c taken as known counts the dilution twice and
// overstates z by 1/(1−s): twice for a 50% function.) It is tested
// one-sided against a Bonferroni bound over the functions tested at a
// look with the FDR spent evenly over the looks, and must clear the
// minimum effect (relative to c·p_b: d itself). It is the yardstick the
// harness prints beside the detector's results: the detector cannot do
// much better, and should not do much worse.
type PowerModel struct {
	// Looks are the head ages at which the head is tested.
	Looks []time.Duration
	// FDR is the false discovery rate over a deploy's looks.
	FDR float64
	// MinShare is the least share a tested function holds; MinRel and
	// MinAbs the least relative and absolute (fraction of the CPU)
	// change reported; MinSamples the head samples a look needs.
	MinShare, MinRel, MinAbs, MinSamples float64
	// BaseWindow is the base's span.
	BaseWindow time.Duration
}

// DefaultPowerModel has the design's defaults.
func DefaultPowerModel() PowerModel {
	return PowerModel{
		Looks:      []time.Duration{1 * time.Minute, 2 * time.Minute, 3 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute},
		FDR:        0.01,
		MinShare:   0.01,
		MinRel:     0.05,
		MinAbs:     0.001,
		MinSamples: 200,
		BaseWindow: 30 * time.Minute,
	}
}

// Tested counts the functions of m holding at least MinShare.
func (pm PowerModel) Tested(m *Model) int {
	n := 0
	for _, f := range m.Functions() {
		if m.Share(f) >= pm.MinShare {
			n++
		}
	}
	return n
}

// Expect is the model's expectation for one cell.
type Expect struct {
	// Within3 and Within30 are the powers of the most powerful look
	// within 3 and 30 minutes of the deploy: a lower bound of the
	// chance to detect by then (the looks before add a little).
	Within3, Within30 float64
	// Z3 is the expected z at the 3-minute look.
	Z3 float64
	// TTD is the first look whose power reaches one half (the median
	// time to detect, roughly); 0 when none does.
	TTD time.Duration
}

// Expect is the expectation for a function of share s slowed by d in a
// service of cores, sampled at baseHz in the base and hz(age) in the
// head, among tested functions. The windows are overdispersed by
// φ(N) = 1 + κ·N for a window of N samples (Kappa): a pooled share's
// variance is p(1−p)·Σ N_w φ(N_w) / (Σ N_w)².
func (pm PowerModel) Expect(s, d, cores, kappa, baseHz float64, hz func(age time.Duration) float64, tested int) Expect {
	var e Expect
	secs := WindowLength.Seconds()
	nbw := cores * baseHz * secs
	nb := nbw * (pm.BaseWindow.Seconds() / secs)
	zcrit := distuv.UnitNormal.Quantile(1 - pm.FDR/float64(len(pm.Looks))/float64(max(tested, 1)))
	ph, pb := s*(1+d)/(1+s*d), s
	effect := math.Log1p(d)
	// The minimum effects, relative and absolute (of c·p_b), as log odds.
	floor := max(math.Log1p(pm.MinRel), math.Log1p(pm.MinAbs*(1+s*d)/s))
	vb := (1 + kappa*nbw) / nb / (pb * (1 - pb))
	for _, a := range pm.Looks {
		var nh, nhphi float64
		for age := time.Duration(0); age < a; age += WindowLength {
			nw := (1 + s*d) * cores * hz(age) * secs
			nh += nw
			nhphi += nw * (1 + kappa*nw)
		}
		if nh < pm.MinSamples {
			continue
		}
		se := math.Sqrt(nhphi/(nh*nh)/(ph*(1-ph)) + vb)
		thr := max(zcrit*se, floor)
		p := 1 - distuv.UnitNormal.CDF((thr-effect)/se)
		if a <= 3*time.Minute {
			e.Within3 = max(e.Within3, p)
			e.Z3 = effect / se
		}
		if a <= 30*time.Minute {
			e.Within30 = max(e.Within30, p)
		}
		if e.TTD == 0 && p >= 0.5 {
			e.TTD = a
		}
	}
	return e
}

// Kappa is the overdispersion of f's inclusive share per sample of a
// window under gamma jitter of CV v on m's groups: a window of N samples
// has φ = 1 + κ·N, κ = Var(p_w)/(p(1−p)), Var(p_w) = v²·Σ_g ((a_g −
// p·t_g)/T)² by the delta method (a_g: f's cost in group g, t_g: the
// group's, T: the service's). TestOverdispersion checks it against
// MeasurePhi.
func Kappa(m *Model, f string, v float64) float64 {
	a, tg := map[int]float64{}, map[int]float64{}
	var T, A float64
	for _, s := range m.Stacks {
		c := m.Rate*s.PerRequest + s.Fixed
		tg[s.Group] += c
		T += c
		if slices.Contains(s.Frames, f) {
			a[s.Group] += c
			A += c
		}
	}
	if T == 0 || A == 0 || A == T {
		return 0
	}
	p := A / T
	var vp float64
	for g := range tg {
		r := (a[g] - p*tg[g]) / T
		vp += v * v * r * r
	}
	return vp / (p * (1 - p))
}

// MeasurePhi simulates windows of m (one at a time, under the jitter)
// at hz and returns each target's Pearson dispersion: the variance of
// its per-window inclusive counts around N_w·p over the binomial's.
func MeasurePhi(m *Model, hz, jitter float64, windows int, seed uint64) map[string]float64 {
	sim := NewSim("phi", seed, jitter, 0)
	c := compile(m)
	ns := make([]float64, windows)
	xs := map[string][]float64{}
	for i := range windows {
		w := sim.window(c, Step{Version: "v", Start: Epoch.Add(time.Duration(i) * WindowLength), Hz: hz, Load: 1, Warm: 1})
		ns[i] = w.CPU.Samples
		for _, f := range Targets {
			xs[f] = append(xs[f], w.CPU.Funcs[f].Incl)
		}
	}
	out := map[string]float64{}
	for f, x := range xs {
		var sx, sn float64
		for i := range x {
			sx += x[i]
			sn += ns[i]
		}
		p := sx / sn
		var chi float64
		for i := range x {
			if ns[i] > 0 {
				r := x[i] - ns[i]*p
				chi += r * r / (ns[i] * p * (1 - p))
			}
		}
		out[f] = chi / float64(windows-1)
	}
	return out
}

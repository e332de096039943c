package eval

import (
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// reference is the design's version comparison at its simplest, for the
// harness's own tests: it knows nothing of cost shifts, load mixes or
// deduplication beyond blaming the function with the largest relative
// rise, and it raises at most one finding a deploy. It shows that the
// simulator, the harness's bookkeeping and the binomial model agree
// (what the model says is within reach, it reaches), and that the
// false-alarm scenarios bite (a detector this naive fails them).
type reference struct {
	pm         PowerModel
	version    string
	cur, base  []refWindow
	headStart  time.Time
	raised     bool
	lookIndex  int
	comparable bool
	calls      map[regress.Call]bool
}

type refWindow struct {
	start time.Time
	n     float64
	incl  map[string]float64
}

func newReference() Detector { return &reference{pm: DefaultPowerModel()} }

func (r *reference) Lookback() time.Duration { return 90 * time.Minute }

func (r *reference) Observe(w regress.Window) []regress.Event {
	rw := refWindow{start: w.Start, n: w.CPU.Samples, incl: map[string]float64{}}
	for f, c := range w.CPU.Funcs {
		rw.incl[f] = c.Incl
	}
	if r.calls == nil {
		r.calls = map[regress.Call]bool{}
	}
	for k := range w.CPU.Calls {
		r.calls[k] = true
	}
	if w.Version != r.version {
		// The base is the old version's last BaseWindow, when it had
		// that much; a first version has no base.
		r.base, r.comparable = nil, false
		if len(r.cur) > 0 && r.cur[len(r.cur)-1].start.Sub(r.cur[0].start) >= r.pm.BaseWindow-WindowLength {
			from := r.cur[len(r.cur)-1].start.Add(-r.pm.BaseWindow + WindowLength)
			for _, x := range r.cur {
				if !x.start.Before(from) {
					r.base = append(r.base, x)
				}
			}
			r.comparable = true
		}
		r.version, r.cur, r.headStart, r.raised, r.lookIndex = w.Version, nil, w.Start, false, 0
	}
	r.cur = append(r.cur, rw)
	if !r.comparable || r.raised || r.lookIndex >= len(r.pm.Looks) {
		return nil
	}
	end := w.Start.Add(w.Duration)
	if end.Sub(r.headStart) < r.pm.Looks[r.lookIndex] {
		return nil
	}
	r.lookIndex++
	f, ok := r.look()
	if !ok {
		return nil
	}
	r.raised = true
	return []regress.Event{{Finding: regress.Finding{ID: "ref/" + w.Service + "/" + f, Service: w.Service, Kind: regress.KindVersion,
		Function: f, BaseVersion: "base", HeadVersion: w.Version, DetectedAt: end}}}
}

// look tests every function holding MinShare on either side: the log
// odds ratio of a sample holding it, head against base, z with φ from
// both sides' windows, Bonferroni over the functions at
// FDR/len(Looks), and the minimum effect; it blames the significant
// function with the largest odds ratio (the deepest: its ancestors rise
// as much absolutely, less relatively).
func (r *reference) look() (string, bool) {
	type pool struct {
		n    float64
		incl map[string]float64
	}
	sum := func(ws []refWindow) pool {
		p := pool{incl: map[string]float64{}}
		for _, w := range ws {
			p.n += w.n
			for f, x := range w.incl {
				p.incl[f] += x
			}
		}
		return p
	}
	b, h := sum(r.base), sum(r.cur)
	if h.n < r.pm.MinSamples || b.n == 0 {
		return "", false
	}
	var tested []string
	for f := range b.incl {
		if b.incl[f]/b.n >= r.pm.MinShare || h.incl[f]/h.n >= r.pm.MinShare {
			tested = append(tested, f)
		}
	}
	for f := range h.incl {
		if _, ok := b.incl[f]; !ok && h.incl[f]/h.n >= r.pm.MinShare {
			tested = append(tested, f)
		}
	}
	slices.Sort(tested)
	zcrit := distuv.UnitNormal.Quantile(1 - r.pm.FDR/float64(len(r.pm.Looks))/float64(max(len(tested), 1)))
	type sig struct {
		f         string
		or, delta float64
	}
	var sigs []sig
	nbw, nhw := b.n/float64(len(r.base)), h.n/float64(len(r.cur))
	for _, f := range tested {
		// Half a sample on each side keeps a function new in the head
		// (or gone) finite.
		xb, xh := b.incl[f]+0.5, h.incl[f]+0.5
		pb, ph := xb/(b.n+1), xh/(h.n+1)
		// φ from the base's many windows; the head's windows, larger or
		// smaller, scale its excess (φ = 1 + κN).
		phib := max(1, dispersion(r.base, f, pb))
		phih := 1 + (phib-1)*nhw/nbw
		lor := math.Log(ph/(1-ph)) - math.Log(pb/(1-pb))
		se := math.Sqrt(phih/(h.n*ph*(1-ph)) + phib/(b.n*pb*(1-pb)))
		c := (1 - ph) / (1 - pb) // the others' dilution, were f the only change
		if lor/se < zcrit || lor < math.Log1p(r.pm.MinRel) || ph-c*pb < r.pm.MinAbs {
			continue
		}
		sigs = append(sigs, sig{f, math.Exp(lor), ph - pb})
	}
	// One slowdown raises its function and every caller above it by as
	// much: drop a caller whose rise a significant callee explains
	// (80%); blame the largest odds ratio of the rest.
	best, bestOR := "", 0.0
	for _, a := range sigs {
		explained := slices.ContainsFunc(sigs, func(g sig) bool {
			return g.f != a.f && g.delta >= 0.8*a.delta && r.reaches(a.f, g.f)
		})
		if !explained && a.or > bestOR {
			best, bestOR = a.f, a.or
		}
	}
	return best, best != ""
}

// reaches says whether a calls g, directly or not, in the calls seen.
func (r *reference) reaches(a, g string) bool {
	seen := map[string]bool{a: true}
	next := []string{a}
	for len(next) > 0 {
		f := next[0]
		next = next[1:]
		for k := range r.calls {
			if k.Caller == f && !seen[k.Callee] {
				if k.Callee == g {
					return true
				}
				seen[k.Callee] = true
				next = append(next, k.Callee)
			}
		}
	}
	return false
}

// dispersion is the Pearson dispersion of f's per-window counts around
// the share p.
func dispersion(ws []refWindow, f string, p float64) float64 {
	if len(ws) < 2 || p <= 0 || p >= 1 {
		return 1
	}
	var chi float64
	for _, w := range ws {
		if w.n > 0 {
			d := w.incl[f] - w.n*p
			chi += d * d / (w.n * p * (1 - p))
		}
	}
	return chi / float64(len(ws)-1)
}

package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

func model(t testing.TB, cores float64, tail int) *Model {
	t.Helper()
	m, err := NewModel(ModelOptions{Cores: cores, Tail: tail, CostPerRequest: 0.008})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The targets hold the shares their names say, the service the cores it
// was built for, and the tail has as many functions as asked.
func TestModelShares(t *testing.T) {
	for _, tail := range []int{0, 2000} {
		m := model(t, 0.5, tail)
		if got := m.Cores(); math.Abs(got-0.5) > 1e-9 {
			t.Errorf("tail %d: cores = %g, want 0.5", tail, got)
		}
		for pct, f := range Targets {
			if got := m.Share(f); math.Abs(got-float64(pct)/100) > 1e-9 {
				t.Errorf("tail %d: share of %s = %.4f, want %.2f", tail, f, got, float64(pct)/100)
			}
		}
		if n := len(m.Functions()); tail > 0 && (n < tail || n > tail+150) {
			t.Errorf("tail %d: %d functions", tail, n)
		}
	}
}

// A slowdown of f by 10% raises f's own cost by 10% of its inclusive
// cost and nothing else; a rename, an extraction and a move keep the
// service's total.
func TestModelChanges(t *testing.T) {
	m := model(t, 1, 200)
	slow := m.Clone()
	if err := slow.Slow(Func20, 0.1); err != nil {
		t.Fatal(err)
	}
	if got, want := slow.Cores(), 1+0.1*0.2; math.Abs(got-want) > 1e-9 {
		t.Errorf("slowed: cores %g, want %g", got, want)
	}
	if got, want := slow.Share(Func20)*slow.Cores(), 0.2*1.1; math.Abs(got-want) > 1e-9 {
		t.Errorf("slowed: %s costs %g cores, want %g", Func20, got, want)
	}
	if got, want := slow.Share(Func10)*slow.Cores(), 0.1; math.Abs(got-want) > 1e-9 {
		t.Errorf("slowed: %s costs %g cores, want %g (unchanged)", Func10, got, want)
	}
	if err := slow.Slow("no.such", 0.1); err == nil {
		t.Error("slowing a function that does not exist: no error")
	}
	for _, c := range []Change{RenameChange, ExtractChange, MoveChange} {
		h := m.Clone()
		if err := c.Apply(h); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if math.Abs(h.Cores()-1) > 1e-9 {
			t.Errorf("%s: cores %g, want 1", c.Name, h.Cores())
		}
	}
	h := m.Clone()
	MoveChange.Apply(h)
	if got := h.Share(Func10); math.Abs(got-0.13) > 1e-9 {
		t.Errorf("moved: %s share %g, want 0.13", Func10, got)
	}
	h = m.Clone()
	ExtractChange.Apply(h)
	if got := h.Share("main.(*server).authorize"); math.Abs(got-0.03) > 1e-9 {
		t.Errorf("extracted: helper share %g, want 0.03", got)
	}
	if m.Share("main.(*server).authorize") != 0 || math.Abs(m.Share(Func20)-0.2) > 1e-9 {
		t.Error("a change of a clone changed the original")
	}
}

// Each window's counts are consistent: the samples are the self counts'
// sum, every function's Incl is at least its Self and at most N, the
// recursive JSON decoder counts once per sample, calls are counted once
// per sample; the verdict is cpu-bound at the service's cores.
func TestWindowCounts(t *testing.T) {
	m := model(t, 2, 500)
	sim := NewSim("svc", 1, 0.05, 64<<20)
	c := compile(m)
	var n, obj, objSelf float64
	for i := range 60 {
		w := sim.window(c, Step{Version: "v", Start: Epoch.Add(time.Duration(i) * WindowLength), Hz: 19, Load: 1, Warm: 1})
		var self float64
		for f, fc := range w.CPU.Funcs {
			self += fc.Self
			if fc.Incl < fc.Self || fc.Incl > w.CPU.Samples || fc.Incl <= 0 {
				t.Fatalf("window %d: %s self %g incl %g of %g samples", i, f, fc.Self, fc.Incl, w.CPU.Samples)
			}
		}
		if self != w.CPU.Samples {
			t.Fatalf("window %d: self counts sum to %g, samples %g", i, self, w.CPU.Samples)
		}
		if got := w.CPU.Funcs["runtime.goexit"].Incl + w.CPU.Funcs["runtime.mcall"].Incl + w.CPU.Funcs["runtime.mstart"].Incl; got != w.CPU.Samples {
			t.Fatalf("window %d: roots hold %g of %g samples", i, got, w.CPU.Samples)
		}
		for k, v := range w.CPU.Calls {
			if v > w.CPU.Funcs[k.Caller].Incl || v > w.CPU.Funcs[k.Callee].Incl {
				t.Fatalf("window %d: call %v has %g samples, more than its ends", i, k, v)
			}
		}
		n += w.CPU.Samples
		obj += w.CPU.Funcs["encoding/json.(*decodeState).object"].Incl
		objSelf += w.CPU.Funcs["encoding/json.(*decodeState).object"].Self
		if mem := w.Verdict.Load[verdict.ClassMemory] / 2; mem < 0.17 || mem > 0.23 {
			t.Fatalf("window %d: memory management holds %.3f of the CPU, want about 0.2", i, mem)
		}
		if w.Verdict.Class != verdict.ClassCPU || math.Abs(w.Verdict.Load[verdict.ClassCPU]+w.Verdict.Load[verdict.ClassMemory]-2) > 0.5 {
			t.Fatalf("window %d: verdict %+v, want cpu at about 2 cores", i, w.Verdict)
		}
		if w.Memory < 20<<20 || w.Requests != 0 || w.CPU.Source != "ebpf" || w.Duration != WindowLength {
			t.Fatalf("window %d: memory %g requests %g source %q duration %v", i, w.Memory, w.Requests, w.CPU.Source, w.Duration)
		}
	}
	// 2 cores at 19 Hz for 600 s: 22,800 samples expected.
	if math.Abs(n-22800) > 5*math.Sqrt(22800*1.05) {
		t.Errorf("%g samples in 10 minutes, want about 22,800", n)
	}
	// object holds 3+2+4+1.5+3+3 = 16.5% of the CPU, counted once where it recurs.
	if got := obj / n; math.Abs(got-0.165) > 0.01 {
		t.Errorf("object's inclusive share %.3f, want 0.165", got)
	}
	if got := objSelf / n; math.Abs(got-0.05) > 0.006 {
		t.Errorf("object's own share %.3f, want 0.05", got)
	}
}

// The same seed gives the same windows; another seed other windows.
func TestDeterministic(t *testing.T) {
	sc := &Scenario{Name: "det", Cores: 0.25, Hz: 19, Jitter: 0.05, Tail: 300, Base: 5 * time.Minute, After: 5 * time.Minute,
		Deploy: true, Change: &Change{Name: "slow", Apply: func(m *Model) error { return m.Slow(Func10, 0.2) }}}
	draw := func(seed uint64) []regress.Window {
		base := model(t, 0.25, 300)
		head := base.Clone()
		sc.Change.Apply(head)
		s := newStream(sc, seed, base, head)
		var out []regress.Window
		for {
			w, ok := s.next()
			if !ok {
				return out
			}
			out = append(out, w)
		}
	}
	a, b, c := draw(7), draw(7), draw(8)
	if len(a) != 60 || a[30].Version != HeadVersion || a[29].Version != BaseVersion {
		t.Fatalf("%d windows, versions %s %s", len(a), a[29].Version, a[30].Version)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed drew different windows")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("two seeds drew the same windows")
	}
}

// The jitter overdisperses the shares as configured: with no jitter a
// function's per-window counts are binomial (Pearson dispersion about
// 1); with gamma jitter of CV v on the stacks' groups the dispersion is
// 1 + E[N]·Var(p_w)/(p(1−p)), Var(p_w) = v²·Σ_g ((a_g − p·t_g)/T)² by
// the delta method (a_g: the function's cost in group g, t_g: the
// group's, T: the service's).
func TestOverdispersion(t *testing.T) {
	m := model(t, 2, 500)
	for _, v := range []float64{0, 0.15, 0.3} {
		for _, f := range []string{Func20, Func5} {
			want := 1 + 2*99*10*Kappa(m, f, v)
			got := MeasurePhi(m, 99, v, 600, 3)[f]
			t.Logf("jitter %g: dispersion of %s %.2f, delta method %.2f", v, f, got, want)
			if math.Abs(got-want) > 0.15*want {
				t.Errorf("jitter %g: dispersion of %s = %.2f, want %.2f", v, f, got, want)
			}
		}
	}
}

// A load change scales the requests, and with them the per-request
// functions' CPU, not the fixed-cost ones': at half the load the ticker
// (fixed) holds nearly twice its share.
func TestLoadChange(t *testing.T) {
	m := model(t, 1, 200)
	sim := NewSim("svc", 3, 0, 64<<20)
	c := compile(m)
	share := func(load float64) (tick, reqs float64) {
		var n, x float64
		for range 200 {
			w := sim.window(c, Step{Version: "v", Start: Epoch, Hz: 99, Load: load, RequestsKnown: true, Warm: 1})
			n += w.CPU.Samples
			x += w.CPU.Funcs["main.(*server).tick"].Incl
			reqs += w.Requests
		}
		return x / n, reqs / 200
	}
	t1, r1 := share(1)
	t2, r2 := share(0.5)
	if math.Abs(r1-m.Rate*10) > 3 || math.Abs(r2-m.Rate*5) > 3 {
		t.Errorf("requests a window %g and %g, want %g and %g", r1, r2, m.Rate*10, m.Rate*5)
	}
	// fixed 11%: at half the load the tick's 2% becomes 2/(11+44.5) = 3.6%.
	if math.Abs(t1-0.02) > 0.002 || math.Abs(t2-0.02/0.555) > 0.003 {
		t.Errorf("tick's share %.4f at full load, %.4f at half, want 0.020 and 0.036", t1, t2)
	}
	if !slices.Contains(memoryFuncs, "runtime.mallocgc") {
		t.Fatal("mallocgc is memory management")
	}
}

// BenchmarkWindow is the cost of drawing one window of the default
// service (2,000 tail functions).
func BenchmarkWindow(b *testing.B) {
	for _, tc := range []struct {
		cores, hz float64
	}{{0.1, 19}, {2, 19}, {2, 99}} {
		b.Run(fmt.Sprintf("cores=%g/hz=%g", tc.cores, tc.hz), func(b *testing.B) {
			m := model(b, tc.cores, 2000)
			sim := NewSim("svc", 1, 0.15, 64<<20)
			c := compile(m)
			for b.Loop() {
				sim.window(c, Step{Version: "v", Start: Epoch, Hz: tc.hz, Load: 1, Warm: 1})
			}
		})
	}
}

// The alias table draws each index in proportion to its weight, zero
// weights never.
func TestAlias(t *testing.T) {
	w := []float64{0, 1, 2, 0, 7, 0.5, 0.25, 0.25}
	var a alias
	a.build(w)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200000
	got := make([]float64, len(w))
	for range n {
		got[a.draw(rng)]++
	}
	for i, x := range w {
		want := n * x / 11
		if math.Abs(got[i]-want) > 5*math.Sqrt(want+1) {
			t.Errorf("index %d: %g draws, want %.0f", i, got[i], want)
		}
	}
}

package regress

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// A service simulated for the trend tests: a call tree of functions, each
// with a self cost; every 10-s window draws each function's self samples
// as Poisson(rate·its part of the cost), with a per-window jitter of the
// costs (Gamma, as real services' mix moves from window to window), and
// sums them up the tree for the inclusive counts and the calls.

var simEpoch = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

type trendSimFn struct {
	name   string
	parent int // -1 for the root
	cost   float64
}

type trendSim struct {
	rng     *rand.Rand
	fns     []trendSimFn // parents before children
	hz      float64
	cores   float64 // CPU the service uses at scale 1, in cores
	shape   float64 // Gamma shape of the per-window jitter; 0: none
	service string
	version string
	start   time.Time
	window  time.Duration

	// scale is the request rate's factor at t (1 when nil): the CPU and
	// every load scale with it, except fixed-cost functions.
	scale func(t time.Time) float64
	// fixed are functions whose cost does not scale with the load.
	fixed map[int]bool
	// mult is a function's cost factor at t (1 when nil).
	mult func(fn int, t time.Time) float64
	// loads are the verdict's loads at scale 1 and t (nil: cpu only);
	// they get a 5% jitter.
	loads func(t time.Time) map[verdict.Class]float64
	// runQueue is the part of the cpu load spent waiting for a CPU at
	// scale 1 and t (nil: none); it is added to the cpu load.
	runQueue func(t time.Time) float64
	// mem is the memory at t (nil: 0, unknown).
	mem func(t time.Time) float64
	// requests: the requests a second at scale 1; 0 unknown.
	requests float64

	// scratch
	self, incl []float64
}

func newTrendSim(seed uint64, fns []trendSimFn) *trendSim {
	return &trendSim{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		fns:     fns,
		hz:      19,
		cores:   1,
		shape:   200,
		service: "svc",
		version: "v1",
		start:   simEpoch.Add(2 * time.Minute),
		window:  10 * time.Second,
	}
}

// tree builds main.main → handlers → leaves: the handlers share the
// cost as weights say, each with its own leaves whose costs fall off as
// 1/rank.
func tree(handlers []float64, leaves int) []trendSimFn {
	fns := []trendSimFn{{name: "main.main", parent: -1}}
	for h, w := range handlers {
		hi := len(fns)
		fns = append(fns, trendSimFn{name: fmt.Sprintf("main.handler%d", h), parent: 0, cost: w * 0.05})
		var norm float64
		for k := 1; k <= leaves; k++ {
			norm += 1 / float64(k)
		}
		for k := 1; k <= leaves; k++ {
			fns = append(fns, trendSimFn{name: fmt.Sprintf("main.h%d_leaf%d", h, k), parent: hi, cost: w * 0.95 / float64(k) / norm})
		}
	}
	return fns
}

func (s *trendSim) poisson(l float64) float64 {
	if l <= 0 {
		return 0
	}
	if l < 30 {
		L, k, p := math.Exp(-l), 0.0, 1.0
		for {
			p *= s.rng.Float64()
			if p <= L {
				return k
			}
			k++
		}
	}
	return math.Max(0, math.Round(l+math.Sqrt(l)*s.rng.NormFloat64()))
}

func (s *trendSim) gamma() float64 {
	if s.shape == 0 {
		return 1
	}
	// Marsaglia–Tsang for shape ≥ 1, scale 1/shape (mean 1).
	d := s.shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := s.rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := s.rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v / s.shape
		}
	}
}

// at makes window i.
func (s *trendSim) at(i int) Window {
	t := s.start.Add(time.Duration(i) * s.window)
	scale := 1.0
	if s.scale != nil {
		scale = s.scale(t)
	}
	if len(s.self) != len(s.fns) {
		s.self, s.incl = make([]float64, len(s.fns)), make([]float64, len(s.fns))
	}
	// The costs at t: per-request work scales, fixed work does not.
	var base, now float64
	for k, f := range s.fns {
		c := f.cost
		base += c
		if s.mult != nil {
			c *= s.mult(k, t)
		}
		if !s.fixed[k] {
			c *= scale
		}
		s.self[k] = c * s.gamma()
		now += c
	}
	cores := s.cores * now / base
	rate := cores * s.hz * s.window.Seconds()
	var sum float64
	for _, c := range s.self {
		sum += c
	}
	var n float64
	for k := range s.fns {
		s.self[k] = s.poisson(rate * s.self[k] / sum)
		s.incl[k] = s.self[k]
		n += s.self[k]
	}
	for k := len(s.fns) - 1; k > 0; k-- {
		s.incl[s.fns[k].parent] += s.incl[k]
	}
	w := Window{Service: s.service, Version: s.version, Start: t, Duration: s.window}
	w.CPU = Counts{Source: "ebpf", Samples: n, Funcs: map[string]FuncCount{}, Calls: map[Call]float64{}}
	for k, f := range s.fns {
		if s.incl[k] == 0 {
			continue
		}
		w.CPU.Funcs[f.name] = FuncCount{Self: s.self[k], Incl: s.incl[k]}
		if f.parent >= 0 {
			w.CPU.Calls[Call{Caller: s.fns[f.parent].name, Callee: f.name}] = s.incl[k]
		}
	}
	loads := map[verdict.Class]float64{verdict.ClassCPU: cores}
	if s.loads != nil {
		loads = s.loads(t)
		for c := range loads {
			loads[c] *= scale
		}
	}
	sum0 := verdict.Summary{Load: map[verdict.Class]float64{}, Confidence: 0.9}
	for c, l := range loads {
		sum0.Load[c] = l * (1 + 0.05*s.rng.NormFloat64())
	}
	if s.runQueue != nil {
		sum0.RunQueue = s.runQueue(t) * scale * (1 + 0.05*s.rng.NormFloat64())
		sum0.Load[verdict.ClassCPU] += sum0.RunQueue
	}
	w.Verdict = verdict.Combine([]verdict.Summary{sum0}, []float64{1}, verdict.DefaultThresholds())
	w.Verdict.Confidence = 0.9
	if s.mem != nil {
		w.Memory = s.mem(t)
	}
	if s.requests > 0 {
		w.Requests = s.poisson(s.requests * scale * s.window.Seconds())
	}
	return w
}

// run feeds windows [from, to) to t and returns the events.
func (s *trendSim) run(t *trends, from, to int) []Event {
	var ev []Event
	for i := from; i < to; i++ {
		ev = append(ev, t.observe(s.at(i))...)
	}
	return ev
}

// windows is how many windows d holds.
func (s *trendSim) windows(d time.Duration) int { return int(d / s.window) }

// fnIndex is the index of the function called name.
func (s *trendSim) fnIndex(name string) int {
	for k, f := range s.fns {
		if f.name == name {
			return k
		}
	}
	panic("no function " + name)
}

package eval

import (
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// WindowLength is the agent's window.
const WindowLength = 10 * time.Second

// memoryFuncs are the functions whose samples the verdict counts as
// memory management (GC and allocation) rather than CPU.
var memoryFuncs = []string{"runtime.gcBgMarkWorker", "runtime.mallocgc"}

// compiled is a Model laid out for sampling: function and call IDs, and
// per stack the functions and calls it holds, each once (recursion
// counts once per sample, as the contract says).
type compiled struct {
	model  *Model
	funcs  []string
	calls  []regress.Call
	incl   [][]int32 // per stack: its distinct functions
	self   []int32   // per stack: its leaf
	edges  [][]int32 // per stack: its distinct caller → callee pairs
	memory []bool    // per stack: GC or allocation
	group  []int
	groups int
}

func compile(m *Model) *compiled {
	c := &compiled{model: m}
	funcID, callID := map[string]int32{}, map[regress.Call]int32{}
	fid := func(f string) int32 {
		id, ok := funcID[f]
		if !ok {
			id = int32(len(c.funcs))
			funcID[f] = id
			c.funcs = append(c.funcs, f)
		}
		return id
	}
	for _, s := range m.Stacks {
		var incl, edges []int32
		for i, f := range s.Frames {
			if id := fid(f); !slices.Contains(incl, id) {
				incl = append(incl, id)
			}
			if i == 0 {
				continue
			}
			k := regress.Call{Caller: s.Frames[i-1], Callee: f}
			id, ok := callID[k]
			if !ok {
				id = int32(len(c.calls))
				callID[k] = id
				c.calls = append(c.calls, k)
			}
			if !slices.Contains(edges, id) {
				edges = append(edges, id)
			}
		}
		c.incl = append(c.incl, incl)
		c.self = append(c.self, fid(s.Frames[len(s.Frames)-1]))
		c.edges = append(c.edges, edges)
		mem := false
		for _, f := range memoryFuncs {
			mem = mem || slices.Contains(s.Frames, f)
		}
		c.memory = append(c.memory, mem)
		c.group = append(c.group, s.Group)
		c.groups = max(c.groups, s.Group+1)
	}
	return c
}

// Sim draws a service's windows. It is deterministic for a seed: the
// same calls give the same windows.
type Sim struct {
	// Service names the windows.
	Service string
	// Jitter is the coefficient of variation of the per-window factor
	// (Gamma, mean 1) multiplying each jitter group's cost: the
	// overdispersion of real windows (request mix, cache luck).
	Jitter float64
	// Memory is the service's live heap at its base load, in bytes.
	Memory float64

	src      *rand.PCG
	rng      *rand.Rand
	alias    alias
	lambda   []float64
	cum      []float64
	gfactor  []float64
	perStack []int32
	touched  []int32
	funcSelf []float64
	funcIncl []float64
	callN    []float64
}

// NewSim returns a simulator of service drawing from seed.
func NewSim(service string, seed uint64, jitter, memory float64) *Sim {
	src := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &Sim{Service: service, Jitter: jitter, Memory: memory, src: src, rng: rand.New(src)}
}

// Step is what one window of a service is: which code (model) at which
// load, sampled how fast, under which version.
type Step struct {
	Version string
	Start   time.Time
	// Hz is the sampling rate of the window.
	Hz float64
	// Load multiplies the model's request rate.
	Load float64
	// RequestsKnown says whether the window carries its request count.
	RequestsKnown bool
	// Warm is how far (0..1) the process's heap has grown back to its
	// plateau since it started; 1 for a process long running.
	Warm float64
}

// Window draws one window of c under st: the requests served ~
// Poisson(rate·10 s); each stack's expected samples, Hz × its CPU
// seconds (per request × requests + fixed × 10 s) × its group's jitter;
// the window's samples N ~ Poisson(their sum), spread over the stacks
// multinomially. The verdict's loads are the CPU the window really used
// (not the samples): memory for GC and allocation, cpu the rest, judged
// by the verdict's own rule (verdict.Combine). Memory is a plateau with
// the GC's sawtooth seen at a random phase.
func (s *Sim) window(c *compiled, st Step) regress.Window {
	m := c.model
	rate := m.Rate * st.Load
	secs := WindowLength.Seconds()
	reqs := distuv.Poisson{Lambda: rate * secs, Src: s.src}.Rand()

	s.gfactor = grow(s.gfactor, c.groups)
	for g := range s.gfactor {
		s.gfactor[g] = 1
		if s.Jitter > 0 {
			a := 1 / (s.Jitter * s.Jitter)
			s.gfactor[g] = distuv.Gamma{Alpha: a, Beta: a, Src: s.src}.Rand()
		}
	}
	s.lambda, s.cum = grow(s.lambda, len(m.Stacks)), grow(s.cum, len(m.Stacks))
	var total, cpuSecs, memSecs float64
	for i, sk := range m.Stacks {
		cpu := (reqs*sk.PerRequest + secs*sk.Fixed) * s.gfactor[c.group[i]]
		cpuSecs += cpu
		if c.memory[i] {
			memSecs += cpu
		}
		s.lambda[i] = cpu * st.Hz
		total += s.lambda[i]
		s.cum[i] = total
	}
	var n float64
	if total > 0 {
		n = distuv.Poisson{Lambda: total, Src: s.src}.Rand()
	}

	// Draw the samples, then count each stack's functions and calls once
	// per sample.
	s.perStack = grow(s.perStack, len(m.Stacks))
	s.touched = s.touched[:0]
	if n > 0 {
		// Few samples: a binary search of the cumulative weights each;
		// many: an alias table, O(stacks) to build, O(1) a draw.
		fast := n > float64(len(s.lambda))/8
		if fast {
			s.alias.build(s.lambda)
		}
		for range int(n) {
			var i int32
			if fast {
				i = s.alias.draw(s.rng)
			} else {
				i = int32(min(sort.SearchFloat64s(s.cum, s.rng.Float64()*total), len(s.cum)-1))
			}
			if s.perStack[i] == 0 {
				s.touched = append(s.touched, i)
			}
			s.perStack[i]++
		}
	}
	s.funcSelf, s.funcIncl = grow(s.funcSelf, len(c.funcs)), grow(s.funcIncl, len(c.funcs))
	s.callN = grow(s.callN, len(c.calls))
	var fs, cs []int32
	for _, i := range s.touched {
		k := float64(s.perStack[i])
		s.perStack[i] = 0
		for _, f := range c.incl[i] {
			if s.funcIncl[f] == 0 {
				fs = append(fs, f)
			}
			s.funcIncl[f] += k
		}
		s.funcSelf[c.self[i]] += k
		for _, e := range c.edges[i] {
			if s.callN[e] == 0 {
				cs = append(cs, e)
			}
			s.callN[e] += k
		}
	}
	// The sampling period, as the agent's windows carry it (WindowOf reads
	// the profile's): without it, a boosted window's five times the
	// samples read as five times the CPU.
	counts := regress.Counts{Source: "ebpf", Samples: n, Period: 1 / st.Hz, Funcs: make(map[string]regress.FuncCount, len(fs)), Calls: make(map[regress.Call]float64, len(cs))}
	for _, f := range fs {
		counts.Funcs[c.funcs[f]] = regress.FuncCount{Self: s.funcSelf[f], Incl: s.funcIncl[f]}
		s.funcSelf[f], s.funcIncl[f] = 0, 0
	}
	for _, e := range cs {
		counts.Calls[c.calls[e]] = s.callN[e]
		s.callN[e] = 0
	}

	w := regress.Window{
		Service:  s.Service,
		Version:  st.Version,
		Start:    st.Start,
		Duration: WindowLength,
		CPU:      counts,
		Verdict:  summary(cpuSecs/secs, memSecs/secs),
		Memory:   s.memory(st),
	}
	if st.RequestsKnown {
		w.Requests = reqs
	}
	return w
}

// summary is a window's verdict summary for its CPU and memory loads,
// judged by the verdict's rule (a service below 0.2 busy threads is
// bound by nothing).
func summary(cpu, mem float64) verdict.Summary {
	s := verdict.Summary{Confidence: 0.9, Load: map[verdict.Class]float64{verdict.ClassCPU: cpu - mem, verdict.ClassMemory: mem}}
	return verdict.Combine([]verdict.Summary{s}, []float64{WindowLength.Seconds()}, verdict.DefaultThresholds())
}

// memory is the resident memory at a window's end: 20 MiB of runtime and
// code plus the heap, whose live part grows a little with the load and
// which the GC lets grow up to twice the live heap (GOGC=100) before
// collecting: seen at a random phase of that sawtooth.
func (s *Sim) memory(st Step) float64 {
	live := s.Memory * (0.9 + 0.1*st.Load) * st.Warm
	return 20<<20 + live*(1+s.rng.Float64())
}

func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return append(b[:cap(b)], make([]T, n-cap(b))...)[:n]
	}
	return b[:n]
}

// alias draws indices in proportion to weights in O(1) a draw: Vose's
// alias method (written here: gonum's Categorical draws in O(log n)
// with an allocation each, half the simulator's time).
type alias struct {
	prob         []float64
	other        []int32
	small, large []int32
}

func (a *alias) build(w []float64) {
	n := len(w)
	a.prob, a.other = grow(a.prob, n), grow(a.other, n)
	a.small, a.large = a.small[:0], a.large[:0]
	var sum float64
	for _, x := range w {
		sum += x
	}
	for i, x := range w {
		a.prob[i] = x * float64(n) / sum
		if a.prob[i] < 1 {
			a.small = append(a.small, int32(i))
		} else {
			a.large = append(a.large, int32(i))
		}
	}
	for len(a.small) > 0 && len(a.large) > 0 {
		l, g := a.small[len(a.small)-1], a.large[len(a.large)-1]
		a.small = a.small[:len(a.small)-1]
		a.other[l] = g
		a.prob[g] += a.prob[l] - 1
		if a.prob[g] < 1 {
			a.large = a.large[:len(a.large)-1]
			a.small = append(a.small, g)
		}
	}
	// What is left is 1 but for rounding.
	for _, i := range a.small {
		a.prob[i] = 1
	}
	for _, i := range a.large {
		a.prob[i] = 1
	}
}

func (a *alias) draw(rng *rand.Rand) int32 {
	i := int32(rng.IntN(len(a.prob)))
	if rng.Float64() < a.prob[i] {
		return i
	}
	return a.other[i]
}

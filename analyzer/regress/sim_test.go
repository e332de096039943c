package regress

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// sim is a synthetic service for the tests: a call tree whose nodes do
// work of their own, per request (scaled by the load) or fixed (a
// background loop), sampled at hz into 10-s windows as the agent's
// would be. The helper C's harness (regress/eval) is the full simulator;
// this one is only what the unit tests need.
type sim struct {
	nodes []simNode
	// cores is the service's CPU at load 1.
	cores, hz float64
	// jitter is the lognormal σ of each leaf's weight from window to
	// window: overdispersion beyond the sampling's.
	jitter float64
	// reqRate, when positive, is requests per second at load 1: the
	// windows then count requests.
	reqRate float64
	rng     *rand.Rand
}

type simNode struct {
	name          string
	parent        int // index of the caller, -1 for a root; callers come first
	perReq, fixed float64
}

// tree builds a sim from lines "name parent perReq fixed" (weights in
// percent of the service's CPU at load 1).
func newSim(seed uint64, cores, hz float64, nodes []simNode) *sim {
	return &sim{nodes: slices.Clone(nodes), cores: cores, hz: hz, jitter: 0.05, rng: seeded(seed)}
}

// seeded is a generator whose stream depends on seed through splitmix64,
// so that nearby seeds give unrelated streams.
func seeded(seed uint64) *rand.Rand {
	mix := func(x uint64) uint64 {
		x += 0x9e3779b97f4a7c15
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		return x ^ x>>31
	}
	return rand.New(rand.NewPCG(mix(seed), mix(^seed)))
}

func (s *sim) clone(seed uint64) *sim {
	c := *s
	c.nodes = slices.Clone(s.nodes)
	c.rng = seeded(seed)
	return &c
}

func (s *sim) index(name string) int {
	for i, n := range s.nodes {
		if n.name == name {
			return i
		}
	}
	panic("no node " + name)
}

// slow makes a node's own work d slower (0.1: 10%).
func (s *sim) slow(name string, d float64) *sim {
	i := s.index(name)
	s.nodes[i].perReq *= 1 + d
	s.nodes[i].fixed *= 1 + d
	return s
}

// rename gives a node a new name.
func (s *sim) rename(from, to string) *sim {
	s.nodes[s.index(from)].name = to
	return s
}

// extract moves part of a node's own work into a new callee.
func (s *sim) extract(name, helper string, part float64) *sim {
	i := s.index(name)
	n := s.nodes[i]
	s.nodes[i].perReq, s.nodes[i].fixed = n.perReq*(1-part), n.fixed*(1-part)
	s.nodes = append(s.nodes, simNode{name: helper, parent: i, perReq: n.perReq * part, fixed: n.fixed * part})
	return s
}

// move moves own work from one node to another.
func (s *sim) move(from, to string, w float64) *sim {
	s.nodes[s.index(from)].perReq -= w
	s.nodes[s.index(to)].perReq += w
	return s
}

func (s *sim) weight(load float64) float64 {
	var w float64
	for _, n := range s.nodes {
		w += n.perReq*load + n.fixed
	}
	return w
}

// poisson draws from a Poisson distribution (Knuth's method for small
// means, a rounded normal above).
func (s *sim) poisson(mean float64) float64 {
	if mean <= 0 {
		return 0
	}
	if mean > 60 {
		return math.Max(0, math.Round(mean+math.Sqrt(mean)*s.rng.NormFloat64()))
	}
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= s.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// window is one 10-s window at a load (1: as at the base), the CPU
// scaling with the work (the service is not saturated).
func (s *sim) window(service, version string, start time.Time, load float64) Window {
	const secs = 10.0
	w := Window{Service: service, Version: version, Start: start, Duration: secs * time.Second,
		Verdict: verdict.Summary{Class: verdict.ClassCPU, Load: map[verdict.Class]float64{verdict.ClassCPU: s.cores}}}
	cpu := s.cores * s.weight(load) / s.weight(1)
	n := int(s.poisson(cpu * s.hz * secs))
	cum := make([]float64, len(s.nodes))
	var total float64
	for i, nd := range s.nodes {
		x := nd.perReq*load + nd.fixed
		if x > 0 && s.jitter > 0 {
			x *= math.Exp(s.jitter*s.rng.NormFloat64() - s.jitter*s.jitter/2)
		}
		total += x
		cum[i] = total
	}
	self := make([]float64, len(s.nodes))
	for range n {
		u := s.rng.Float64() * total
		self[sort.SearchFloat64s(cum, u)]++
	}
	incl := slices.Clone(self)
	for i := len(s.nodes) - 1; i >= 0; i-- {
		if p := s.nodes[i].parent; p >= 0 {
			incl[p] += incl[i]
		}
	}
	w.CPU = Counts{Source: "ebpf", Samples: float64(n), Period: 1 / s.hz, Funcs: map[string]FuncCount{}, Calls: map[Call]float64{}}
	for i, nd := range s.nodes {
		if incl[i] == 0 {
			continue
		}
		fc := w.CPU.Funcs[nd.name]
		fc.Self += self[i]
		fc.Incl += incl[i]
		w.CPU.Funcs[nd.name] = fc
		if nd.parent >= 0 {
			w.CPU.Calls[Call{s.nodes[nd.parent].name, nd.name}] += incl[i]
		}
	}
	if s.reqRate > 0 {
		w.Requests = s.poisson(s.reqRate * load * secs)
	}
	w.Memory = 100 << 20
	return w
}

// webService is the tests' service: an HTTP handler's call tree with a
// 10% leaf (main.parse), a fixed-cost background loop (8%), and a tail
// of small functions.
func webService(tail int) []simNode {
	nodes := []simNode{
		{name: "runtime.goexit", parent: -1},
		{name: "net/http.(*conn).serve", parent: 0, perReq: 2},
		{name: "main.handler", parent: 1, perReq: 3},
		{name: "main.parse", parent: 2, perReq: 10},
		{name: "main.compute", parent: 2, perReq: 6},
		{name: "crypto/sha256.block", parent: 4, perReq: 12},
		{name: "main.helperA", parent: 4, perReq: 4},
		{name: "main.render", parent: 2, perReq: 5},
		{name: "fmt.Fprintf", parent: 7, perReq: 5},
		{name: "main.db", parent: 2, perReq: 3},
		{name: "syscall.Syscall", parent: 9, perReq: 6},
		{name: "runtime.gcBgMarkWorker", parent: 0, perReq: 9},
		{name: "runtime.mallocgc", parent: 2, perReq: 7},
		{name: "main.background", parent: 0, fixed: 8},
		{name: "main.sortAll", parent: 2, perReq: 4},
		{name: "slices.Sort", parent: 14, perReq: 3},
	}
	// The tail: small functions under the handler and the compute step,
	// sharing what is left of 100%.
	var used float64
	for _, n := range nodes {
		used += n.perReq + n.fixed
	}
	for i := range tail {
		parent := 2
		if i%2 == 1 {
			parent = 4
		}
		nodes = append(nodes, simNode{name: fmt.Sprintf("main.tail%03d", i), parent: parent, perReq: (100 - used) / float64(tail)})
	}
	return nodes
}

// flatService is a service of n functions with Zipf-like shares under a
// few levels of callers: the 2,000-function null case.
func flatService(n int, seed uint64) []simNode {
	rng := rand.New(rand.NewPCG(seed, 1))
	nodes := []simNode{{name: "runtime.goexit", parent: -1}}
	for i := 1; i < n; i++ {
		parent := 0
		if i > 10 {
			parent = 1 + rng.IntN(min(i-1, 200))
		}
		nodes = append(nodes, simNode{name: fmt.Sprintf("pkg%d.fn%04d", i%37, i), parent: parent, perReq: 100 / math.Pow(float64(i), 0.9)})
	}
	return nodes
}

// stream is windows of a service: the base version for baseFor, then the
// head version for headFor (each its own sim), from start.
type stream struct {
	service         string
	start           time.Time
	base, head      *sim
	baseV, headV    string
	baseFor         time.Duration
	headFor         time.Duration
	baseLoad, hLoad float64
	// boostHz, when set, is the head's sampling rate for boostFor from
	// boostAfter on (the agent's boost of a fresh deploy: its rate
	// switches two windows after the window that saw the deploy).
	boostHz              float64
	boostAfter, boostFor time.Duration
}

func (st stream) windows() []Window {
	var out []Window
	t := st.start
	for ; t.Before(st.start.Add(st.baseFor)); t = t.Add(10 * time.Second) {
		out = append(out, st.base.window(st.service, st.baseV, t, or1(st.baseLoad)))
	}
	hz := st.head.hz
	defer func() { st.head.hz = hz }()
	deployed := t
	for end := t.Add(st.headFor); t.Before(end); t = t.Add(10 * time.Second) {
		st.head.hz = hz
		if st.boostHz > 0 && !t.Before(deployed.Add(st.boostAfter)) && t.Before(deployed.Add(st.boostAfter+st.boostFor)) {
			st.head.hz = st.boostHz
		}
		out = append(out, st.head.window(st.service, st.headV, t, or1(st.hLoad)))
	}
	return out
}

func or1(x float64) float64 {
	if x == 0 {
		return 1
	}
	return x
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// deploy is the usual stream: 40 minutes of v1, then head for 30.
func deploy(seed uint64, base *sim, head *sim) []Window {
	return stream{service: "web", start: t0, base: base.clone(seed), head: head.clone(seed + 1000),
		baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute}.windows()
}

// run feeds windows to a new detector and returns the raised findings
// (resolutions apart) in order.
func run(o Options, ws []Window) (raised []Finding, resolved []Finding) {
	d := New(o)
	for _, w := range ws {
		for _, ev := range d.Observe(w) {
			if ev.Resolved {
				resolved = append(resolved, ev.Finding)
			} else {
				raised = append(raised, ev.Finding)
			}
		}
	}
	return raised, resolved
}

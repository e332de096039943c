package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Stack is one call path of a simulated service, root first, with the
// CPU its leaf (the last frame) costs: PerRequest CPU seconds for every
// request served and Fixed CPU seconds every second whatever the load
// (GC's background part, tickers). Group is its jitter group: the
// stacks of one group share a window's overdispersion factor.
type Stack struct {
	Frames     []string
	PerRequest float64
	Fixed      float64
	Group      int
}

// Model is a simulated service: its stacks and its request rate. The
// CPU it uses is Rate·ΣPerRequest + ΣFixed cores. A code change is a
// function from one Model to another (Slow, Rename, Extract, Move); a
// load change scales Rate.
type Model struct {
	Stacks []Stack
	// Rate is the request rate, per second.
	Rate float64
}

// The functions the grid slows, by their inclusive share of the
// service's CPU at the base load (ModelOptions.Cores): 2, 5, 10, 20
// and 50%. They nest as in a real server: the handler holds the other
// four.
const (
	Func2  = "main.validate"
	Func5  = "main.(*cache).get"
	Func10 = "main.(*server).query"
	Func20 = "encoding/json.Unmarshal"
	Func50 = "main.(*server).handle"
)

// Targets maps a target share (percent) to the function holding it.
var Targets = map[int]string{2: Func2, 5: Func5, 10: Func10, 20: Func20, 50: Func50}

// ModelOptions shape a service.
type ModelOptions struct {
	// Cores is the CPU the service uses at its base load.
	Cores float64
	// Tail is how many small functions (the long tail) the service has
	// beyond its named ones; together they hold 15% of its CPU.
	Tail int
	// CostPerRequest is the CPU of one request in seconds (the base
	// rate is what makes Cores).
	CostPerRequest float64
}

// DefaultModelOptions: a service using one core, 111 requests a second
// of 8 ms of CPU each (89%; the fixed costs are the other 11%), with
// 2,000 functions in its tail.
func DefaultModelOptions() ModelOptions {
	return ModelOptions{Cores: 1, Tail: 2000, CostPerRequest: 0.008}
}

// skeleton is the named part of the service, shares of its CPU in
// percent at the base load: per request and fixed (per second). The
// tail (15%) is added by NewModel. Sums: 85% named, 7% of it fixed;
// with the tail's 4%, 11% of the service's CPU is fixed. GC and
// allocation hold 20%, clear of the verdict's 25% for the memory class.
var skeleton = []struct {
	path       string
	req, fixed float64
}{
	// HTTP serving: net/http.(*conn).serve holds 50 (handler) + 8 + 7 + 1 + tail.
	{"runtime.goexit;net/http.(*conn).serve", 1, 0},
	{"runtime.goexit;net/http.(*conn).serve;net/http.(*conn).readRequest;net/http.readRequest;net/textproto.(*Reader).ReadMIMEHeader", 4, 0},
	{"runtime.goexit;net/http.(*conn).serve;net/http.(*conn).readRequest;bufio.(*Reader).fill;net.(*conn).Read;internal/poll.(*FD).Read;syscall.read", 3, 0},
	{"runtime.goexit;net/http.(*conn).serve;net/http.(*conn).readRequest;runtime.mallocgc", 1, 0},
	{"runtime.goexit;net/http.(*conn).serve;net/http.(*response).finishRequest;bufio.(*Writer).Flush;net.(*conn).Write;internal/poll.(*FD).Write;syscall.write", 6, 0},
	{"runtime.goexit;net/http.(*conn).serve;net/http.(*response).finishRequest;runtime.mallocgc", 1, 0},

	// The handler, 50%: its own code 4, the four targets 2+5+10+20, render 6, tail 3.
	{h + "", 4, 0},
	{h + ";main.validate", 0.3, 0},
	{h + ";main.validate;regexp.(*Regexp).MatchString;regexp.(*Regexp).doExecute;regexp.(*Regexp).doOnePass", 1.7, 0},
	{h + ";main.(*cache).get", 1, 0},
	{h + ";main.(*cache).get;sync.(*RWMutex).RLock", 0.5, 0},
	{h + ";main.(*cache).get;runtime.mapaccess2_faststr", 2, 0},
	{h + ";main.(*cache).get;runtime.mapaccess2_faststr;runtime.memhash", 1.5, 0},
	{h + ";main.(*server).query", 0.5, 0},
	{h + ";main.(*server).query;database/sql.(*DB).QueryContext;database/sql.(*DB).query;github.com/lib/pq.(*conn).query;github.com/lib/pq.(*conn).recv;bufio.(*Reader).Read;net.(*conn).Read;internal/poll.(*FD).Read;syscall.read", 3, 0},
	{h + ";main.(*server).query;database/sql.(*DB).QueryContext;database/sql.(*DB).query;github.com/lib/pq.(*conn).query;github.com/lib/pq.(*conn).recv", 3, 0},
	{h + ";main.(*server).query;database/sql.(*DB).QueryContext;database/sql.(*DB).query;runtime.mallocgc", 1, 0},
	{h + ";main.(*server).query;main.scanRows;database/sql.(*Rows).Scan;database/sql.convertAssign", 2.5, 0},
	{js + "", 1, 0},
	{js + ";encoding/json.(*decodeState).object", 3, 0},
	{js + ";encoding/json.(*decodeState).object;encoding/json.(*decodeState).value;encoding/json.(*decodeState).object", 2, 0},
	{js + ";encoding/json.(*decodeState).object;encoding/json.(*decodeState).value;encoding/json.(*decodeState).literalStore", 5.5, 0},
	{js + ";encoding/json.(*decodeState).object;encoding/json.(*decodeState).value;encoding/json.(*decodeState).literalStore;reflect.Value.SetString", 1.5, 0},
	{js + ";encoding/json.(*decodeState).object;encoding/json.(*decodeState).rescanLiteral", 3, 0},
	{js + ";encoding/json.(*decodeState).object;runtime.mallocgc", 1.5, 0},
	{js + ";encoding/json.checkValid;encoding/json.stateInString", 2.5, 0},
	{h + ";main.(*server).render", 0.5, 0},
	{h + ";main.(*server).render;encoding/json.Marshal;encoding/json.(*encodeState).marshal;encoding/json.(*encodeState).reflectValue", 3, 0},
	{h + ";main.(*server).render;encoding/json.Marshal;encoding/json.(*encodeState).marshal;strconv.AppendInt", 1, 0},
	{h + ";main.(*server).render;encoding/json.Marshal;runtime.mallocgc", 1.5, 0},

	// Garbage collection, 12%: 9 driven by allocation (per request), 3 fixed.
	{"runtime.goexit;runtime.gcBgMarkWorker;runtime.systemstack;runtime.gcDrain", 0.8, 0.2},
	{"runtime.goexit;runtime.gcBgMarkWorker;runtime.systemstack;runtime.gcDrain;runtime.scanobject", 4, 1.5},
	{"runtime.goexit;runtime.gcBgMarkWorker;runtime.systemstack;runtime.gcDrain;runtime.scanobject;runtime.greyobject", 1.5, 0.5},
	{"runtime.goexit;runtime.gcBgMarkWorker;runtime.systemstack;runtime.gcDrain;runtime.scanobject;runtime.findObject", 1.5, 0.5},
	{"runtime.goexit;runtime.gcBgMarkWorker;runtime.systemstack;runtime.gcDrain;runtime.markBitsForAddr", 1.2, 0.3},
	// A ticker flushing metrics, 2% fixed (it shares encoding/json.Marshal with render).
	{"runtime.goexit;main.(*server).tick;main.(*metrics).flush", 0, 0.5},
	{"runtime.goexit;main.(*server).tick;main.(*metrics).flush;encoding/json.Marshal;encoding/json.(*encodeState).marshal;encoding/json.(*encodeState).reflectValue", 0, 1},
	{"runtime.goexit;main.(*server).tick;main.(*metrics).flush;net.(*conn).Write;internal/poll.(*FD).Write;syscall.write", 0, 0.5},
	// The scheduler, 7% (6 per request, 1 fixed), and sysmon 1% fixed.
	{"runtime.mcall;runtime.park_m;runtime.schedule;runtime.findRunnable;runtime.netpoll;runtime.epollwait", 3, 0.5},
	{"runtime.mcall;runtime.park_m;runtime.schedule;runtime.findRunnable", 2, 0.5},
	{"runtime.mcall;runtime.park_m;runtime.schedule;runtime.execute", 1, 0},
	{"runtime.mstart;runtime.mstart0;runtime.mstart1;runtime.sysmon;runtime.usleep", 0, 1},
}

// The handler's and the JSON decoder's paths.
const (
	h  = "runtime.goexit;net/http.(*conn).serve;net/http.serverHandler.ServeHTTP;net/http.HandlerFunc.ServeHTTP;main.(*server).handle"
	js = h + ";main.(*server).decodeRequest;encoding/json.Unmarshal"
)

// tailParts are where the tail's functions hang, with their share of the
// service's CPU in percent (15 in all: 3 under the handler, so that it
// holds 50%; 4 under the connection; 8 in background goroutines, half
// of it fixed).
var tailParts = []struct {
	parent     string
	req, fixed float64
	frac       float64 // of the tail's functions
}{
	{h, 3, 0, 0.25},
	{"runtime.goexit;net/http.(*conn).serve", 4, 0, 0.15},
	{"runtime.goexit", 4, 4, 0.60},
}

var (
	tailPkgs = []string{"auth", "billing", "catalog", "cart", "geo", "i18n", "inventory", "ledger", "metrics",
		"orders", "pricing", "promo", "search", "session", "shipping", "tax", "users", "audit", "feeds",
		"notify", "ratelimit", "reviews", "media", "export", "import", "quota", "flags", "tracing"}
	tailVerbs = []string{"Get", "Put", "List", "Parse", "Encode", "Decode", "Validate", "Lookup", "Merge", "Apply",
		"Render", "Compute", "Load", "Store", "Scan", "Sort", "Filter", "Hash", "Match", "Build"}
	tailNouns = []string{"Item", "Row", "Token", "Key", "Page", "Batch", "Entry", "Rule", "Price", "Order",
		"User", "Event", "Record", "Header", "Span", "Field", "Node", "Index", "Quota", "Rate"}
)

// NewModel builds the service: the skeleton's named functions and a
// tail of o.Tail small ones (Zipf-like shares, names such as
// "github.com/acme/shop/internal/cart.(*Store).ScanRow"), laid out
// deterministically (the tail's RNG is fixed, not a run's seed), at a
// request rate making o.Cores.
func NewModel(o ModelOptions) (*Model, error) {
	if !(o.Cores > 0) || !(o.CostPerRequest > 0) || o.Tail < 0 {
		return nil, fmt.Errorf("building a model: cores %g, cost per request %g and tail %d must be positive", o.Cores, o.CostPerRequest, o.Tail)
	}
	var reqTotal, fixedTotal float64
	var stacks []Stack
	add := func(frames []string, req, fixed float64, group int) {
		stacks = append(stacks, Stack{Frames: frames, PerRequest: req, Fixed: fixed, Group: group})
		reqTotal += req
		fixedTotal += fixed
	}
	for i, s := range skeleton {
		add(strings.Split(s.path, ";"), s.req, s.fixed, i)
	}
	group := len(skeleton)
	rng := rand.New(rand.NewPCG(15, 15))
	seen := map[string]bool{}
	for _, part := range tailParts {
		n := int(float64(o.Tail)*part.frac + 0.5)
		if n == 0 {
			// No tail: its share goes to the parent's own code, so that
			// the targets keep their shares.
			add(strings.Split(part.parent, ";"), part.req, part.fixed, group)
			group++
			continue
		}
		weights := make([]float64, n)
		var sum float64
		for k := range weights {
			weights[k] = 1 / math.Pow(float64(k+1), 1.1) // Zipf-like
			sum += weights[k]
		}
		groupOf := map[string]int{}
		for k := range n {
			pkg := tailPkgs[rng.IntN(len(tailPkgs))]
			var name string
			for {
				name = tailName(rng, pkg)
				if !seen[name] {
					break
				}
			}
			seen[name] = true
			g, ok := groupOf[pkg]
			if !ok {
				g = group
				groupOf[pkg] = g
				group++
			}
			frames := append(strings.Split(part.parent, ";"), "github.com/acme/shop/internal/"+pkg+".(*Service).Run", name)
			if part.parent == "runtime.goexit" {
				frames = []string{"runtime.goexit", "github.com/acme/shop/internal/" + pkg + ".(*worker).loop", name}
			}
			if k%7 == 3 {
				frames = append(frames, "runtime.mallocgc")
			}
			add(frames, part.req*weights[k]/sum, part.fixed*weights[k]/sum, g)
		}
	}
	// Shares in percent → CPU: at the base rate R the service uses
	// R·ΣPerRequest + ΣFixed = Cores, split as the shares say.
	total := reqTotal + fixedTotal
	perRequest := o.CostPerRequest
	rate := o.Cores * (reqTotal / total) / perRequest
	for i := range stacks {
		stacks[i].PerRequest = stacks[i].PerRequest / reqTotal * perRequest
		stacks[i].Fixed = stacks[i].Fixed / total * o.Cores
	}
	return &Model{Stacks: stacks, Rate: rate}, nil
}

// tailName is a tail function's name in pkg.
func tailName(rng *rand.Rand, pkg string) string {
	verb, noun := tailVerbs[rng.IntN(len(tailVerbs))], tailNouns[rng.IntN(len(tailNouns))]
	switch rng.IntN(3) {
	case 0:
		return fmt.Sprintf("github.com/acme/shop/internal/%s.%s%s", pkg, strings.ToLower(verb[:1])+verb[1:], noun)
	case 1:
		return fmt.Sprintf("github.com/acme/shop/internal/%s.(*%s).%s", pkg, noun, verb)
	default:
		return fmt.Sprintf("github.com/acme/shop/internal/%s.%s%s.func%d", pkg, verb, noun, 1+rng.IntN(3))
	}
}

// Clone is an independent copy of m.
func (m *Model) Clone() *Model {
	c := &Model{Rate: m.Rate, Stacks: make([]Stack, len(m.Stacks))}
	for i, s := range m.Stacks {
		s.Frames = slices.Clone(s.Frames)
		c.Stacks[i] = s
	}
	return c
}

// Cores is the CPU the model uses at its rate.
func (m *Model) Cores() float64 {
	var c float64
	for _, s := range m.Stacks {
		c += m.Rate*s.PerRequest + s.Fixed
	}
	return c
}

// Share is f's inclusive share of the model's CPU: the part of its
// stacks holding f.
func (m *Model) Share(f string) float64 {
	var in, all float64
	for _, s := range m.Stacks {
		c := m.Rate*s.PerRequest + s.Fixed
		all += c
		if slices.Contains(s.Frames, f) {
			in += c
		}
	}
	if all == 0 {
		return 0
	}
	return in / all
}

// Functions lists every function of the model, sorted.
func (m *Model) Functions() []string {
	seen := map[string]bool{}
	for _, s := range m.Stacks {
		for _, f := range s.Frames {
			seen[f] = true
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Ancestors lists the functions that call f, directly or not, on any of
// the model's stacks.
func (m *Model) Ancestors(f string) map[string]bool {
	out := map[string]bool{}
	for _, s := range m.Stacks {
		i := slices.Index(s.Frames, f)
		for _, a := range s.Frames[:max(i, 0)] {
			if a != f {
				out[a] = true
			}
		}
	}
	return out
}

// Slow makes f slower by frac (0.1 is 10%): on each distinct path to
// f's first frame, f's own code costs frac of its inclusive cost there
// more, per request and fixed alike. Its callees are unchanged, so the
// growth sits in f.
func (m *Model) Slow(f string, frac float64) error {
	type extra struct{ req, fixed float64 }
	paths := map[string]*extra{}
	var order []string
	for _, s := range m.Stacks {
		i := slices.Index(s.Frames, f)
		if i < 0 {
			continue
		}
		key := strings.Join(s.Frames[:i+1], ";")
		e := paths[key]
		if e == nil {
			e = &extra{}
			paths[key] = e
			order = append(order, key)
		}
		e.req += frac * s.PerRequest
		e.fixed += frac * s.Fixed
	}
	if len(order) == 0 {
		return fmt.Errorf("slowing %s: no such function", f)
	}
	for _, key := range order {
		e := paths[key]
		m.addSelf(strings.Split(key, ";"), e.req, e.fixed)
	}
	return nil
}

// addSelf adds cost to the stack ending at frames, or a new one in the
// group of the first stack that passes through them.
func (m *Model) addSelf(frames []string, req, fixed float64) {
	group := -1
	for i, s := range m.Stacks {
		if slices.Equal(s.Frames, frames) {
			m.Stacks[i].PerRequest += req
			m.Stacks[i].Fixed += fixed
			return
		}
		if group < 0 && len(s.Frames) > len(frames) && slices.Equal(s.Frames[:len(frames)], frames) {
			group = s.Group
		}
	}
	m.Stacks = append(m.Stacks, Stack{Frames: frames, PerRequest: req, Fixed: fixed, Group: max(group, 0)})
}

// Rename renames function old to new everywhere (a rename: the same
// code, the same cost).
func (m *Model) Rename(old, new string) error {
	n := 0
	for _, s := range m.Stacks {
		for i, f := range s.Frames {
			if f == old {
				s.Frames[i] = new
				n++
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("renaming %s: no such function", old)
	}
	return nil
}

// Extract moves frac of f's own cost (where f is the leaf) into a new
// callee helper: f's inclusive cost is unchanged, its self cost falls,
// helper's rises from nothing.
func (m *Model) Extract(f, helper string, frac float64) error {
	n := len(m.Stacks)
	found := false
	for i := range n {
		s := &m.Stacks[i]
		if len(s.Frames) == 0 || s.Frames[len(s.Frames)-1] != f {
			continue
		}
		found = true
		req, fixed := frac*s.PerRequest, frac*s.Fixed
		s.PerRequest -= req
		s.Fixed -= fixed
		frames := append(slices.Clone(s.Frames), helper)
		m.Stacks = append(m.Stacks, Stack{Frames: frames, PerRequest: req, Fixed: fixed, Group: s.Group})
	}
	if !found {
		return fmt.Errorf("extracting from %s: it has no own cost", f)
	}
	return nil
}

// Move moves share (a fraction of the service's CPU at the model's
// rate) of work from function from to function to, each of their stacks
// scaled alike: from's inclusive cost falls by share of the total, to's
// rises by as much, the service's total is unchanged. from and to must
// not be on one another's stacks (siblings, or unrelated).
func (m *Model) Move(from, to string, share float64) error {
	total := m.Cores()
	fromCost, toCost := m.Share(from)*total, m.Share(to)*total
	if fromCost == 0 || toCost == 0 {
		return fmt.Errorf("moving work from %s to %s: both must have a cost", from, to)
	}
	amount := share * total
	if amount >= fromCost {
		return fmt.Errorf("moving %.1f%% of the CPU from %s: it holds only %.1f%%", 100*share, from, 100*fromCost/total)
	}
	for i, s := range m.Stacks {
		hasFrom, hasTo := slices.Contains(s.Frames, from), slices.Contains(s.Frames, to)
		switch {
		case hasFrom && hasTo:
			return fmt.Errorf("moving work from %s to %s: one calls the other", from, to)
		case hasFrom:
			k := 1 - amount/fromCost
			m.Stacks[i].PerRequest *= k
			m.Stacks[i].Fixed *= k
		case hasTo:
			k := 1 + amount/toCost
			m.Stacks[i].PerRequest *= k
			m.Stacks[i].Fixed *= k
		}
	}
	return nil
}

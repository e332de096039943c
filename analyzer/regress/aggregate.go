package regress

import (
	"cmp"
	"slices"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// table numbers a service's function names and call edges, so that its
// aggregates are slices indexed by small integers: a window is added with
// one map lookup per function and per edge, and the aggregates of a
// service with 2,000 functions cost 32 bytes a function, not a map entry.
// It grows with the names the service's windows bring, and is compacted
// (compact) when it passes MaxFunctions.
type table struct {
	ids   map[string]int32
	names []string
	eids  map[uint64]int32
	edges []edge
}

type edge struct{ caller, callee int32 }

func newTable() *table {
	return &table{ids: map[string]int32{}, eids: map[uint64]int32{}}
}

func (t *table) fn(name string) int32 {
	if i, ok := t.ids[name]; ok {
		return i
	}
	i := int32(len(t.names))
	t.ids[name] = i
	t.names = append(t.names, name)
	return i
}

func (t *table) edge(caller, callee int32) int32 {
	k := uint64(uint32(caller))<<32 | uint64(uint32(callee))
	if i, ok := t.eids[k]; ok {
		return i
	}
	i := int32(len(t.edges))
	t.eids[k] = i
	t.edges = append(t.edges, edge{caller, callee})
	return i
}

// agg is the pooled counts of a span of windows of one version: what the
// tests read, and nothing per window.
type agg struct {
	all      int     // windows
	k        int     // windows with samples
	n        float64 // ΣN: samples
	secs     float64 // Σ window seconds
	expo     float64 // Σ e_w = T_w/period_w (T_w without a period): the windows' sampling exposure
	n2e      float64 // Σ N_w²/e_w: the dispersion of the sample rate
	n2       float64 // Σ N_w²: how unequal the windows are (excess)
	cpu      float64 // Σ N·period: CPU seconds, when every window's period is known
	noPeriod bool    // a window with samples did not say its period
	// period is the first sampled window's; mixed says another window
	// was sampled at another rate (the agent samples a fresh deploy
	// faster): counts per request then mean nothing across windows.
	period   float64
	mixed    bool
	req      float64 // Σ requests
	req2     float64 // Σ requests_w²
	reqK     int     // windows with samples and requests
	from, to time.Time

	// By function id: Σ self, Σ incl, Σ incl²/N, Σ incl²/requests.
	self, incl, x2n, x2r []float64
	calls                []float64 // by edge id
	verdict              verdictSum
}

// reset empties a for reuse, keeping its slices' memory.
func (a *agg) reset() {
	*a = agg{self: a.self[:0], incl: a.incl[:0], x2n: a.x2n[:0], x2r: a.x2r[:0], calls: a.calls[:0], verdict: verdictSum{load: a.verdict.load}}
	clear(a.verdict.load)
}

// grow makes a's slices cover n functions and e edges.
func (a *agg) grow(n, e int) {
	if len(a.self) < n {
		a.self = growTo(a.self, n)
		a.incl = growTo(a.incl, n)
		a.x2n = growTo(a.x2n, n)
		a.x2r = growTo(a.x2r, n)
	}
	if len(a.calls) < e {
		a.calls = growTo(a.calls, e)
	}
}

func growTo(s []float64, n int) []float64 {
	if cap(s) >= n {
		old := len(s)
		s = s[:n]
		clear(s[old:])
		return s
	}
	out := make([]float64, n, n+n/4)
	copy(out, s)
	return out
}

// windowIDs is a window's counts by table number, made once a window
// for every aggregate it goes into.
type windowIDs struct {
	fns   []idCount
	calls []idCall
}

type idCount struct {
	id         int32
	self, incl float64
}

type idCall struct {
	id int32
	v  float64
}

// index numbers a window's functions and calls: one map lookup each.
func (t *table) index(w *Window, ix *windowIDs) {
	ix.fns, ix.calls = ix.fns[:0], ix.calls[:0]
	for name, fc := range w.CPU.Funcs {
		ix.fns = append(ix.fns, idCount{t.fn(name), fc.Self, fc.Incl})
	}
	for c, v := range w.CPU.Calls {
		if c.Caller != c.Callee {
			ix.calls = append(ix.calls, idCall{t.edge(t.fn(c.Caller), t.fn(c.Callee)), v})
		}
	}
}

// add counts one window, indexed by t: O(its functions and edges). Its
// CPU counts only when cpu is true (a window of the span's source, or
// with no samples).
func (a *agg) add(w *Window, ix *windowIDs, t *table, cpu bool) {
	end := w.Start.Add(w.Duration)
	if a.all == 0 || w.Start.Before(a.from) {
		a.from = w.Start
	}
	if a.all == 0 || end.After(a.to) {
		a.to = end
	}
	a.all++
	a.verdict.add(w.Verdict, w.Duration.Seconds())
	if !cpu {
		return
	}
	secs := w.Duration.Seconds()
	a.secs += secs
	// A window's exposure is its samples' expected count at one core:
	// windows sampled at different rates (a boosted deploy's first
	// minutes) then share one sample rate under a steady load.
	expo := secs
	if w.CPU.Period > 0 {
		expo = secs / w.CPU.Period
	}
	a.expo += expo
	n := w.CPU.Samples
	if n <= 0 {
		return
	}
	if a.k == 0 {
		a.period = w.CPU.Period
	} else if w.CPU.Period != a.period {
		a.mixed = true
	}
	a.k++
	a.n += n
	a.n2 += n * n
	if expo > 0 {
		a.n2e += n * n / expo
	}
	if w.CPU.Period > 0 {
		a.cpu += n * w.CPU.Period
	} else {
		a.noPeriod = true
	}
	r := w.Requests
	if r > 0 {
		a.req += r
		a.req2 += r * r
		a.reqK++
	}
	a.grow(len(t.names), len(t.edges))
	for _, f := range ix.fns {
		a.self[f.id] += f.self
		a.incl[f.id] += f.incl
		a.x2n[f.id] += f.incl * f.incl / n
		if r > 0 {
			a.x2r[f.id] += f.incl * f.incl / r
		}
	}
	for _, c := range ix.calls {
		a.calls[c.id] += c.v
	}
}

// merge adds o's counts to a.
func (a *agg) merge(o *agg) {
	if o.all == 0 {
		return
	}
	if a.all == 0 || o.from.Before(a.from) {
		a.from = o.from
	}
	if a.all == 0 || o.to.After(a.to) {
		a.to = o.to
	}
	if o.k > 0 {
		if a.k == 0 {
			a.period = o.period
		} else if o.period != a.period {
			a.mixed = true
		}
		a.mixed = a.mixed || o.mixed
	}
	a.all += o.all
	a.k += o.k
	a.n += o.n
	a.secs += o.secs
	a.expo += o.expo
	a.n2e += o.n2e
	a.n2 += o.n2
	a.cpu += o.cpu
	a.noPeriod = a.noPeriod || o.noPeriod
	a.req += o.req
	a.req2 += o.req2
	a.reqK += o.reqK
	a.grow(len(o.self), len(o.calls))
	for i := range o.self {
		a.self[i] += o.self[i]
		a.incl[i] += o.incl[i]
		a.x2n[i] += o.x2n[i]
		a.x2r[i] += o.x2r[i]
	}
	for i, v := range o.calls {
		a.calls[i] += v
	}
	a.verdict.merge(&o.verdict)
}

// exposure2 is Σ e_w² over the windows with samples: of their samples,
// or of their requests when costs are per request.
func (a *agg) exposure2(perRequest bool) float64 {
	if perRequest {
		return a.req2
	}
	return a.n2
}

// perRequest tells whether every window with samples counted requests,
// all sampled at one rate (samples per request are compared as counts).
func (a *agg) perRequest() bool { return a.k > 0 && a.reqK == a.k && a.req > 0 && !a.mixed }

// cpuRate is the span's CPU per second of wall time: cores when the
// period is known, else samples per second (the same for both sides of
// a comparison at one sampling rate).
func (a *agg) cpuRate() float64 {
	if a.secs <= 0 {
		return 0
	}
	if !a.noPeriod && a.cpu > 0 {
		return a.cpu / a.secs
	}
	return a.n / a.secs
}

// verdictSum pools windows' verdict summaries as verdict.Combine does,
// as weighted sums, so that a span's verdict needs no per-window
// storage.
type verdictSum struct {
	w, rq, conf float64
	load        map[verdict.Class]float64
}

func (v *verdictSum) add(s verdict.Summary, weight float64) {
	if !(weight > 0) {
		return
	}
	if v.load == nil {
		v.load = map[verdict.Class]float64{}
	}
	v.w += weight
	v.rq += weight * s.RunQueue
	v.conf += weight * s.Confidence
	for c, l := range s.Load {
		v.load[c] += weight * l
	}
}

func (v *verdictSum) merge(o *verdictSum) {
	if o.w == 0 {
		return
	}
	if v.load == nil {
		v.load = map[verdict.Class]float64{}
	}
	v.w += o.w
	v.rq += o.rq
	v.conf += o.conf
	for c, l := range o.load {
		v.load[c] += l
	}
}

// summary is verdict.Combine of the pooled windows: their weighted means
// as one summary of their whole weight.
func (v *verdictSum) summary(th verdict.Thresholds) verdict.Summary {
	if v.w == 0 {
		return verdict.Combine(nil, nil, th)
	}
	s := verdict.Summary{Load: map[verdict.Class]float64{}, RunQueue: v.rq / v.w, Confidence: v.conf / v.w}
	for c, l := range v.load {
		s.Load[c] = l / v.w
	}
	return verdict.Combine([]verdict.Summary{s}, []float64{v.w}, th)
}

// ring is a version's recent windows in blocks of BlockLength, aligned
// to absolute time (so that the blocks, and what is compared, depend on
// the windows only, not on where a detector started reading them).
type ring struct {
	blocks []agg
	idx    []int64 // block number of each slot; -1 empty
	top    int64   // the newest block number added
	any    bool
}

func newRing(n int) *ring {
	r := &ring{blocks: make([]agg, n), idx: make([]int64, n)}
	for i := range r.idx {
		r.idx[i] = -1
	}
	return r
}

// blockOf is the number of the block a time falls in.
func blockOf(t time.Time, length time.Duration) int64 {
	return floorDiv(t.UnixNano(), int64(length))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// add puts w in its block, starting the block over when its slot held
// an older one. A window older than the ring reaches is dropped.
func (r *ring) add(w *Window, ix *windowIDs, length time.Duration, t *table, cpu bool) {
	b := blockOf(w.Start, length)
	n := int64(len(r.blocks))
	if r.any && b <= r.top-n {
		return
	}
	slot := int(((b % n) + n) % n)
	if r.idx[slot] != b {
		r.blocks[slot].reset()
		r.idx[slot] = b
	}
	r.blocks[slot].add(w, ix, t, cpu)
	if !r.any || b > r.top {
		r.top, r.any = b, true
	}
}

// merged pools the blocks numbered from `from` on, oldest first (the
// order fixes the floating-point sums, which Compare repeats).
func (r *ring) merged(from int64) *agg {
	order := make([]int, 0, len(r.blocks))
	for i, b := range r.idx {
		if b >= 0 && b >= from && b > r.top-int64(len(r.blocks)) {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(r.idx[x], r.idx[y]) })
	out := &agg{}
	for _, i := range order {
		out.merge(&r.blocks[i])
	}
	return out
}

// aggs lists the ring's blocks in use (for compaction).
func (r *ring) aggs() []*agg {
	var out []*agg
	for i := range r.blocks {
		if r.idx[i] >= 0 {
			out = append(out, &r.blocks[i])
		}
	}
	return out
}

// compact renumbers the table to the functions the aggregates still
// count, at most keep of them (the largest by their summed shares across
// the aggregates, so a function that matters in any of them stays), and
// the edges between kept functions that still have calls. A dropped
// function's samples stay in the totals: only its own line goes.
func (t *table) compact(aggs []*agg, keep int) {
	weight := make([]float64, len(t.names))
	for _, a := range aggs {
		if a.n <= 0 {
			continue
		}
		for i, v := range a.incl {
			weight[i] += v / a.n
		}
	}
	var live []int32
	for i, w := range weight {
		if w > 0 {
			live = append(live, int32(i))
		}
	}
	if len(live) > keep {
		slices.SortStableFunc(live, func(a, b int32) int { return cmp.Compare(weight[b], weight[a]) })
		live = live[:keep]
		slices.Sort(live)
	}
	remap := make([]int32, len(t.names))
	for i := range remap {
		remap[i] = -1
	}
	nt := newTable()
	for _, id := range live {
		remap[id] = nt.fn(t.names[id])
	}
	calls := make([]float64, len(t.edges))
	for _, a := range aggs {
		for i, v := range a.calls {
			calls[i] += v
		}
	}
	eremap := make([]int32, len(t.edges))
	for i, e := range t.edges {
		eremap[i] = -1
		if c, d := remap[e.caller], remap[e.callee]; c >= 0 && d >= 0 && calls[i] > 0 {
			eremap[i] = nt.edge(c, d)
		}
	}
	for _, a := range aggs {
		a.renumber(remap, eremap, len(nt.names), len(nt.edges))
	}
	*t = *nt
}

// renumber moves a's counts to new numbers (-1: dropped).
func (a *agg) renumber(remap, eremap []int32, nf, ne int) {
	move := func(s []float64, m []int32, n int) []float64 {
		out := make([]float64, n)
		for i, v := range s {
			if i < len(m) && m[i] >= 0 {
				out[m[i]] = v
			}
		}
		return out
	}
	a.self = move(a.self, remap, nf)
	a.incl = move(a.incl, remap, nf)
	a.x2n = move(a.x2n, remap, nf)
	a.x2r = move(a.x2r, remap, nf)
	a.calls = move(a.calls, eremap, ne)
}

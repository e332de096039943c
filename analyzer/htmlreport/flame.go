package htmlreport

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"path"
	"sort"
	"strconv"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// The bounds of a flame graph. A busy host's profile has hundreds of
// thousands of distinct stacks; frames under a thousandth of the total are
// too thin to see or click, and 10,000 frames keep the page's JSON near a
// few hundred kilobytes and its drawing fast.
const (
	minFrameShare = 0.001
	maxFrames     = 10000
)

// Kinds of frame, which the script colours apart.
const (
	frameUser    = iota // the program and its libraries
	frameKernel         // the kernel (and BPF programs)
	frameRuntime        // the Go runtime
	frameLabel          // not a function: the root, a thread state, a process
)

// stateNames say an off-CPU thread state (the "state" label of eBPF's
// off-CPU samples, as the kernel's task state letters) for a person.
var stateNames = map[string]string{
	"R": "R (runnable: waiting for a CPU)",
	"S": "S (sleeping)",
	"D": "D (uninterruptible: disk, faults)",
	"I": "I (idle)",
	"T": "T (stopped or traced)",
	"P": "P (parked)",
	"X": "X (other)",
}

// flameGraph is one kind of profile ready to draw.
type flameGraph struct {
	Kind   observation.ProfileKind
	Title  string
	Source observation.ProfileSource // the collector of the profiles drawn
	// Caption says what the values measure, and Coverage what span of
	// time they cover, when the graph needs it said (Go's profiles).
	Caption  string
	Coverage string
	Unit     string // of the values: "nanoseconds", "count"...
	Total    float64
	Frames   int // frames drawn
	// PrunedFrames and PrunedShare say what the bounds left out.
	PrunedFrames int
	PrunedShare  float64
	// Data is the tree as JSON for the script: {"unit", "total", "names",
	// "root"}, each node [name index, value, frame kind, [children]].
	Data template.JS
	// Absent says why there is nothing to draw, when there is nothing.
	Absent string
}

// TotalText is the graph's total in its unit.
func (g flameGraph) TotalText() string {
	if g.Unit == "nanoseconds" {
		return textfmt.Dur(g.Total)
	}
	return value(g.Total, g.Unit)
}

// flameNode is a frame in the merged tree: the sum of the samples whose
// stacks pass through the same path of function names. The sum is a
// float64, exact up to 2⁵³ (104 days in nanoseconds) and unable to wrap
// past int64 as a sum of hostile sample values would.
type flameNode struct {
	name     int32
	kind     uint8
	value    float64
	children []*flameNode
	index    map[frameKey]*flameNode // children by key, once they are many
}

type frameKey struct {
	name int32
	kind uint8
}

// flameTree merges stacks into a tree, interning names.
type flameTree struct {
	root  *flameNode
	names []string
	ids   map[string]int32
	nodes int
}

func newFlameTree(rootName string) *flameTree {
	t := &flameTree{ids: map[string]int32{}}
	t.root = &flameNode{name: t.intern(rootName), kind: frameLabel}
	t.nodes = 1
	return t
}

func (t *flameTree) intern(s string) int32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	id := int32(len(t.names))
	t.names = append(t.names, s)
	t.ids[s] = id
	return id
}

// child returns n's child of the key, adding it. Small fan-outs are
// searched; a map takes over past a few children, as a busy host's root
// can have thousands.
func (t *flameTree) child(n *flameNode, k frameKey) *flameNode {
	if n.index != nil {
		if c := n.index[k]; c != nil {
			return c
		}
	} else {
		for _, c := range n.children {
			if c.name == k.name && c.kind == k.kind {
				return c
			}
		}
	}
	c := &flameNode{name: k.name, kind: k.kind}
	n.children = append(n.children, c)
	t.nodes++
	if n.index == nil && len(n.children) > 16 {
		n.index = make(map[frameKey]*flameNode, len(n.children))
		for _, o := range n.children {
			n.index[frameKey{o.name, o.kind}] = o
		}
	}
	if n.index != nil {
		n.index[k] = c
	}
	return c
}

// frame is one function of a stack, named and kinded.
type frame struct {
	name string
	kind uint8
}

// add adds a sample of value v with its stack, root first.
func (t *flameTree) add(stack []frame, v int64) {
	n := t.root
	n.value += float64(v)
	for _, f := range stack {
		n = t.child(n, frameKey{t.intern(f.name), f.kind})
		n.value += float64(v)
	}
}

// stackOf lists a sample's frames root first. pprof keeps the leaf first,
// and each location's inlined functions innermost first.
func stackOf(s *profile.Sample, buf []frame) []frame {
	buf = buf[:0]
	for i := len(s.Location) - 1; i >= 0; i-- {
		l := s.Location[i]
		kind := uint8(frameUser)
		if verdict.IsKernel(l) || l.Mapping != nil && l.Mapping.File == "[bpf]" {
			kind = frameKernel
		}
		if len(l.Line) == 0 {
			name := fmt.Sprintf("0x%x", l.Address)
			if l.Mapping != nil && l.Mapping.File != "" {
				name = path.Base(l.Mapping.File) + "+" + fmt.Sprintf("0x%x", l.Address-l.Mapping.Start+l.Mapping.Offset)
			}
			buf = append(buf, frame{name, kind})
			continue
		}
		for j := len(l.Line) - 1; j >= 0; j-- {
			name := "?"
			if fn := l.Line[j].Function; fn != nil && fn.Name != "" {
				name = fn.Name
			} else if fn != nil && fn.SystemName != "" {
				name = fn.SystemName
			}
			k := kind
			if k == frameUser && verdict.IsGoRuntime(name) {
				k = frameRuntime
			}
			buf = append(buf, frame{name, k})
		}
	}
	return buf
}

// sampleIndexOf is the sample value a flame graph of a kind draws: for
// Go's contention profiles the delay, else the number of contentions;
// for the others as valueIndex picks.
func sampleIndexOf(p *profile.Profile, kind observation.ProfileKind) int {
	switch kind {
	case observation.KindCPU, observation.KindOffCPU, observation.KindThreadState:
		return valueIndex(p, "nanoseconds")
	case observation.KindMutex, observation.KindBlock, observation.KindContention:
		for _, typ := range []string{"delay", "contentions"} {
			for i, st := range p.SampleType {
				if st.Type == typ {
					return i
				}
			}
		}
	}
	return valueIndex(p, "")
}

// valueIndex is the sample value a flame graph draws: the profile's
// default type, else (for CPU) its nanoseconds, else the last type, as
// pprof itself picks.
func valueIndex(p *profile.Profile, preferUnit string) int {
	if p.DefaultSampleType != "" {
		for i, st := range p.SampleType {
			if st.Type == p.DefaultSampleType {
				return i
			}
		}
	}
	if preferUnit != "" {
		for i, st := range p.SampleType {
			if st.Unit == preferUnit {
				return i
			}
		}
	}
	return len(p.SampleType) - 1
}

func label(s *profile.Sample, key string) string {
	if v := s.Label[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// pickProfiles chooses the profiles a flame graph of a kind draws: those
// of the preferred source present first (eBPF sees every thread, kernel
// included; pprof only the Go program's), the others being the same time
// seen twice.
func pickProfiles(o *observation.Observation, kind observation.ProfileKind, sources ...observation.ProfileSource) []observation.Profile {
	all := o.ProfilesOf(kind)
	for _, src := range sources {
		var out []observation.Profile
		for _, p := range all {
			if p.Source == src && p.Profile != nil {
				out = append(out, p)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	var out []observation.Profile
	for _, p := range all {
		if p.Profile != nil {
			out = append(out, p)
			break
		}
	}
	return out
}

// buildFlame merges the chosen profiles of a kind into a tree. Off-CPU
// samples get their thread state as a frame under the root, and samples
// of several processes their command, so that unrelated programs' stacks
// do not merge.
func buildFlame(profiles []observation.Profile, kind observation.ProfileKind) (*flameTree, string) {
	t := newFlameTree("all")
	unit := ""
	multi := manyProcesses(profiles)
	var stack, prefix, fr []frame
	for _, p := range profiles {
		idx := sampleIndexOf(p.Profile, kind)
		if idx < 0 {
			continue
		}
		if unit == "" {
			unit = p.Profile.SampleType[idx].Unit
		}
		for _, s := range p.Profile.Sample {
			if idx >= len(s.Value) || s.Value[idx] <= 0 {
				continue
			}
			prefix = prefix[:0]
			if multi {
				comm := label(s, "comm")
				if comm == "" {
					comm = "?"
				}
				prefix = append(prefix, frame{"process: " + comm, frameLabel})
			}
			if st := label(s, "state"); st != "" {
				name, ok := stateNames[st]
				switch {
				case kind == observation.KindThreadState && st == "R":
					name = "R (running or runnable)" // sampled, not switched out
				case !ok:
					name = st
				}
				prefix = append(prefix, frame{"state: " + name, frameLabel})
			}
			if call := label(s, "syscall"); call != "" { // a sampled thread state's
				if fd := label(s, "fd"); fd != "" {
					call += " on a " + fd
				}
				prefix = append(prefix, frame{"syscall: " + call, frameLabel})
			}
			fr = stackOf(s, fr)
			stack = append(append(stack[:0], prefix...), fr...)
			t.add(stack, s.Value[idx])
		}
	}
	return t, unit
}

// manyProcesses reports whether the samples come from more than one
// command, as a host's do.
func manyProcesses(profiles []observation.Profile) bool {
	first := ""
	for _, p := range profiles {
		for _, s := range p.Profile.Sample {
			c := label(s, "comm")
			if c == "" {
				continue
			}
			if first == "" {
				first = c
			} else if c != first {
				return true
			}
		}
	}
	return false
}

// prune keeps the frames worth drawing: the largest first, from the root
// down, while they are at least minShare of the total and fewer than
// maxNodes. A frame's value is never more than its parent's, so taking
// the largest frames first keeps the tree connected. It returns the
// frames kept (children lists trimmed in place), how many were left out
// and their value.
func (t *flameTree) prune(minShare float64, maxNodes int) (kept, dropped int, droppedValue float64) {
	min := math.Max(1, math.Trunc(minShare*t.root.value))
	keep := map[*flameNode]bool{t.root: true}
	kept = 1
	h := &nodeHeap{}
	push := func(n *flameNode) {
		for _, c := range n.children {
			if c.value >= min {
				heap.Push(h, c)
			}
		}
	}
	push(t.root)
	for h.Len() > 0 && kept < maxNodes {
		n := heap.Pop(h).(*flameNode)
		keep[n] = true
		kept++
		push(n)
	}
	var walk func(n *flameNode)
	walk = func(n *flameNode) {
		out := n.children[:0]
		for _, c := range n.children {
			if keep[c] {
				out = append(out, c)
				walk(c)
			} else {
				droppedValue += c.value
			}
		}
		for i := len(out); i < len(n.children); i++ {
			n.children[i] = nil
		}
		n.children = out
		n.index = nil
		sort.Slice(n.children, func(i, j int) bool {
			a, b := n.children[i], n.children[j]
			return a.value > b.value || a.value == b.value && t.names[a.name] < t.names[b.name]
		})
	}
	walk(t.root)
	return kept, t.nodes - kept, droppedValue
}

// nodeHeap is a max-heap of frames by value.
type nodeHeap []*flameNode

func (h nodeHeap) Len() int           { return len(h) }
func (h nodeHeap) Less(i, j int) bool { return h[i].value > h[j].value }
func (h nodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)        { *h = append(*h, x.(*flameNode)) }
func (h *nodeHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}

// json writes the (pruned) tree for the script. Names are interned again
// so that the names of pruned frames are not shipped; json.Marshal
// escapes <, > and &, so no name can end the script element it goes in.
func (t *flameTree) json(unit string) []byte {
	ids := map[int32]int{}
	var names []string
	var b []byte
	var node func(n *flameNode)
	node = func(n *flameNode) {
		id, ok := ids[n.name]
		if !ok {
			id = len(names)
			ids[n.name] = id
			names = append(names, t.names[n.name])
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, n.value, 'f', -1, 64)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(n.kind), 10)
		if len(n.children) > 0 {
			b = append(b, ",["...)
			for i, c := range n.children {
				if i > 0 {
					b = append(b, ',')
				}
				node(c)
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	node(t.root)
	tree := b
	nb, _ := json.Marshal(names) // strings only: cannot fail
	ub, _ := json.Marshal(unit)
	out := make([]byte, 0, len(tree)+len(nb)+64)
	out = append(out, `{"unit":`...)
	out = append(out, ub...)
	out = append(out, `,"total":`...)
	out = strconv.AppendFloat(out, t.root.value, 'f', -1, 64)
	out = append(out, `,"names":`...)
	out = append(out, nb...)
	out = append(out, `,"root":`...)
	out = append(out, tree...)
	out = append(out, '}')
	return out
}

// flameSpec is a flame graph the page can show.
type flameSpec struct {
	kind    observation.ProfileKind
	title   string
	sources []observation.ProfileSource // the collectors to draw from, preferred first
	missing []string                    // signals whose absence explains the graph's
	// goWait marks a Go runtime profile of goroutines waiting: drawn only
	// when the observation has it with samples (the verdict's Missing
	// says when a Go program lacks it), captioned with what it measures
	// and over what span.
	goWait bool
	// optional marks a graph drawn only when the observation has its
	// profile with samples, with no word when it has not.
	optional bool
	caption  string
}

// flameSpecs are the flame graphs in page order: the threads' time
// first, then the Go runtime's view of its goroutines' waits. For a Go
// program bound by locks the latter is where the evidence is: its
// goroutines park in the runtime, and the off-CPU graph shows mostly the
// idle threads that ran them.
var flameSpecs = []flameSpec{
	{kind: observation.KindCPU, title: "On-CPU time", sources: []observation.ProfileSource{observation.SourceEBPF, observation.SourcePprof},
		missing: []string{verdict.SignalOnCPU, verdict.SignalEBPF, verdict.SignalPprofCPU, verdict.SignalPprof}},
	{kind: observation.KindOffCPU, title: "Off-CPU time", sources: []observation.ProfileSource{observation.SourceEBPF}, missing: []string{verdict.SignalOffCPU, verdict.SignalEBPF}},
	{kind: observation.KindThreadState, title: "Thread states", sources: []observation.ProfileSource{observation.SourceProcFS}, optional: true,
		caption: "Where the process's threads were, sampled from /proc 20 times a second without eBPF, summed over the threads: " +
			"running, or a sleeping thread's state, system call and the kernel function it slept in."},
	{kind: observation.KindMutex, title: "Go mutex contention", sources: []observation.ProfileSource{observation.SourcePprof, observation.SourceIngest}, goWait: true,
		caption: "Time goroutines waited for a sync.Mutex or RWMutex held by another, summed over the goroutines (so it can exceed the wall time), " +
			"charged to the stack that unlocked it: the critical section that made the others wait."},
	{kind: observation.KindBlock, title: "Go blocking", sources: []observation.ProfileSource{observation.SourcePprof, observation.SourceIngest}, goWait: true,
		caption: "Time goroutines spent blocked on channels, selects, locks and condition variables (not on sockets, files or sleeps), " +
			"summed over the goroutines (so it can exceed the wall time), at the stack that blocked."},
	{kind: observation.KindContention, title: "Go contention", sources: []observation.ProfileSource{observation.SourceIngest, observation.SourcePprof}, goWait: true,
		caption: "A Go block or mutex profile whose sender did not say which: time goroutines waited, summed over the goroutines."},
}

// flameGraphs builds the flame graphs of an observation, or says why an
// on-CPU or off-CPU one is absent.
func flameGraphs(o *observation.Observation, v *verdict.Verdict) []flameGraph {
	var out []flameGraph
	for _, sp := range flameSpecs {
		g := flameGraph{Kind: sp.kind, Title: sp.title, Caption: sp.caption}
		ps := pickProfiles(o, sp.kind, sp.sources...)
		if len(ps) == 0 {
			if !sp.goWait && !sp.optional {
				g.Absent = absence(sp.kind, o, v, sp.missing)
				out = append(out, g)
			}
			continue
		}
		g.Source = ps[0].Source
		t, unit := buildFlame(ps, sp.kind)
		if t.root.value == 0 {
			if !sp.goWait && !sp.optional {
				g.Absent = "The " + sourceName(g.Source) + " profile was collected but has no samples: the target did not " + map[observation.ProfileKind]string{
					observation.KindCPU: "run on a CPU", observation.KindOffCPU: "leave a CPU"}[sp.kind] + " while it was watched."
				out = append(out, g)
			}
			continue
		}
		if sp.goWait {
			g.Coverage = coverage(o, ps, unit, t.root.value)
		}
		kept, dropped, droppedValue := t.prune(minFrameShare, maxFrames)
		g.Unit, g.Total, g.Frames, g.PrunedFrames = unit, t.root.value, kept, dropped
		g.PrunedShare = droppedValue / t.root.value
		g.Data = template.JS(t.json(unit))
		out = append(out, g)
	}
	return out
}

// coverage says what span of time Go profiles cover, by the "mode" label
// goscrape gives them: a delta is the window's, a snapshot is cumulative
// since the process started. Profiles without the label are not guessed
// at.
func coverage(o *observation.Observation, ps []observation.Profile, unit string, total float64) string {
	modes := map[string]bool{}
	var window int64
	for _, p := range ps {
		modes[p.Labels["mode"]] = true
		window += p.Profile.DurationNanos
	}
	switch {
	case len(modes) == 1 && modes["delta"]:
		if window <= 0 {
			window = o.Meta.Duration.Nanoseconds()
		}
		if window <= 0 {
			return "A delta over the window."
		}
		rate := total / (float64(window) / 1e9)
		var what string
		switch unit {
		case "nanoseconds":
			what = fmt.Sprintf("goroutines waited %.2f s per second", rate/1e9)
		case "count":
			what = value(rate, "") + " contentions per second"
		default:
			what = value(rate, unit) + " per second"
		}
		return fmt.Sprintf("A delta over the window of %s: %s.", textfmt.Dur(float64(window)), what)
	case len(modes) == 1 && modes["snapshot"]:
		return "A cumulative snapshot: it covers the process's whole life, not only the window."
	case modes["delta"] && modes["snapshot"]:
		return "Deltas over the window merged with cumulative snapshots of the process's whole life: read the proportions, not the totals."
	}
	return ""
}

func sourceName(src observation.ProfileSource) string {
	switch src {
	case observation.SourceEBPF:
		return "eBPF"
	case observation.SourcePprof:
		return "Go pprof"
	}
	return string(src)
}

// absence says why a kind of profile is not in the observation: the first
// matching signal of the verdict's Missing (which includes the
// observation's own), or that it was simply not collected.
func absence(kind observation.ProfileKind, o *observation.Observation, v *verdict.Verdict, signals []string) string {
	what := map[observation.ProfileKind]string{observation.KindCPU: "An on-CPU profile", observation.KindOffCPU: "An off-CPU profile"}[kind]
	var gaps []verdict.Gap
	if v != nil {
		gaps = v.Missing
	}
	for _, m := range o.Missing {
		gaps = append(gaps, verdict.Gap{Signal: string(m.Signal), Reason: m.Reason})
	}
	for _, sig := range signals {
		for _, g := range gaps {
			if g.Signal == sig {
				return fmt.Sprintf("%s was not collected (%s: %s).", what, g.Signal, g.Reason)
			}
		}
	}
	return what + " was not collected."
}

package profdiff

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/internal/gosym"
)

// Key names the part of a profile that belongs to one Go benchmark. The
// zero Key holds samples outside any benchmark (GC workers, the testing
// harness) or the whole profile when it is not from `go test -bench`.
type Key struct {
	Package   string `json:"package,omitempty"`
	Benchmark string `json:"benchmark,omitempty"`
}

func (k Key) String() string {
	if k.Benchmark == "" {
		return "(outside benchmarks)"
	}
	return k.Benchmark
}

// labelKeys are pprof label keys that name the benchmark a sample belongs
// to, for users who tag their benchmarks with pprof.Do.
var labelKeys = []string{"benchmark", "bench"}

// cost accumulates one function's cost in one part of one profile.
type cost struct {
	flat, cum, own float64
	// ownEvents and cumEvents count the samples behind own and cum, for
	// the sampling-noise test.
	ownEvents, cumEvents float64
	// lib is whether the function is library code (see frames.go).
	lib bool
}

// add accumulates o into c.
func (c *cost) add(o *cost) {
	c.flat += o.flat
	c.cum += o.cum
	c.own += o.own
	c.ownEvents += o.ownEvents
	c.cumEvents += o.cumEvents
	c.lib = c.lib || o.lib
}

type part struct {
	total, events float64
	fn            map[string]*cost
}

// aggregated is one profile reduced to per-function costs per benchmark.
type aggregated struct {
	file  string
	parts map[Key]*part
	// all is every part together: the whole profile.
	all *part
	// frames resolves the profile's stacks again, for call trees.
	frames *frameTable
	// eventsKnown is false when the profile carries no sample counts.
	eventsKnown bool
}

// sampleType is "type/unit", as pprof's -sample_index flag names it.
func sampleType(v *profile.ValueType) string { return v.Type + "/" + v.Unit }

// valueIndex resolves which sample value to compare: the one named (by
// type, or "type/unit"), else the profile's default (pprof's rule: the
// DefaultSampleType, else the last one).
func valueIndex(p *profile.Profile, name string) (int, error) {
	if name == "" {
		name = p.DefaultSampleType
		if name == "" {
			return len(p.SampleType) - 1, nil
		}
	}
	if i := findSampleType(p, name); i >= 0 {
		return i, nil
	}
	var have []string
	for _, st := range p.SampleType {
		have = append(have, st.Type)
	}
	return 0, fmt.Errorf("no sample type %q (has %s)", name, strings.Join(have, ", "))
}

// HasSampleType reports whether p holds the named sample type ("alloc_space"
// or "alloc_space/bytes").
func HasSampleType(p *profile.Profile, name string) bool { return findSampleType(p, name) >= 0 }

// findSampleType returns the index of the named sample type, or -1.
func findSampleType(p *profile.Profile, name string) int {
	for i, st := range p.SampleType {
		if st.Type == name || sampleType(st) == name {
			return i
		}
	}
	return -1
}

// eventsOf returns how to count the samples behind a value: the index of a
// "samples/count" or other count-valued type, or the sampling period when
// the value is in the period's unit.
func eventsOf(p *profile.Profile, vi int) (idx int, period float64) {
	for i, st := range p.SampleType {
		if st.Type == "samples" && st.Unit == "count" {
			return i, 0
		}
	}
	vt := p.SampleType[vi]
	if vt.Unit == "count" {
		return vi, 0
	}
	if p.PeriodType != nil && p.PeriodType.Unit == vt.Unit && p.Period > 0 {
		return -1, float64(p.Period)
	}
	return -1, 0
}

// frame is one (possibly inlined) function on a stack.
type frame struct {
	fn   int32
	lib  bool
	line int64
}

// frameTable is a profile's functions and locations resolved once: names,
// library flags, the benchmark each function belongs to, and each
// location's frames, leaf first.
type frameTable struct {
	prof    *profile.Profile
	vi, ei  int
	period  float64
	names   []string
	library []bool
	bench   []Key
	locs    locTable
	// locBench is, per location, the root-most frame's function that
	// belongs to a benchmark, or -1; nil when no function does.
	locBench map[uint64]int32
}

// locTable maps location IDs to their frames. Profiles written by the Go
// runtime number locations densely from 1, so a slice serves; other
// numbering falls back to a map.
type locTable struct {
	dense  [][]frame
	sparse map[uint64][]frame
}

func newLocTable(p *profile.Profile) locTable {
	var top uint64
	for _, l := range p.Location {
		top = max(top, l.ID)
	}
	if top <= uint64(4*len(p.Location)+64) {
		return locTable{dense: make([][]frame, top+1)}
	}
	return locTable{sparse: make(map[uint64][]frame, len(p.Location))}
}

func (t *locTable) set(id uint64, fr []frame) {
	if t.dense != nil {
		t.dense[id] = fr
		return
	}
	t.sparse[id] = fr
}

func (t *locTable) get(id uint64) []frame {
	if t.dense != nil {
		return t.dense[id]
	}
	return t.sparse[id]
}

func newFrameTable(p *profile.Profile, vi int, underTest []string) *frameTable {
	goProf := isGoProfile(p)
	t := &frameTable{prof: p, vi: vi, locs: newLocTable(p)}
	t.ei, t.period = eventsOf(p, vi)

	// Functions are identified by name: pprof may hold several entries of
	// one name (different files or system names), and costs merge by name.
	idx := map[string]int32{}
	fnIndex := map[uint64]int32{}
	goroot := ""
	if goProf {
		goroot = goRoot(p)
	}
	for _, f := range p.Function {
		i, ok := idx[f.Name]
		if !ok {
			i = t.addName(f.Name)
			idx[f.Name] = i
			if goProf {
				// Library: standard-library packages, and code whose file
				// is in the distribution's source tree whatever its name
				// (runtime assembly; closures of inlined standard-library
				// functions, named after their caller), except cmd/.
				// The packages under test are first-party by name and by file.
				inRoot := false
				if goroot != "" && strings.HasPrefix(f.Filename, goroot) {
					dir := path.Dir(strings.TrimPrefix(f.Filename, goroot))
					inRoot = !strings.HasPrefix(dir, "cmd/") && !isUnderTest(dir, underTest)
				}
				pkg := gosym.Package(f.Name)
				t.library[i] = isGoStd(pkg) && !isUnderTest(pkg, underTest) || inRoot
				bp, bn := benchmarkOf(f.Name)
				t.bench[i] = Key{bp, bn}
			}
		}
		fnIndex[f.ID] = i
	}
	unknown := int32(-1)
	for _, l := range p.Location {
		libMap := isLibraryMapping(l.Mapping)
		var fr []frame
		for _, ln := range l.Line {
			if ln.Function == nil {
				continue
			}
			fi := fnIndex[ln.Function.ID]
			t.library[fi] = t.library[fi] || libMap
			fr = append(fr, frame{fi, t.library[fi], ln.Line})
		}
		if len(fr) == 0 {
			if unknown < 0 {
				unknown = t.addName("(unknown)")
			}
			fr = append(fr, frame{unknown, libMap, 0})
		}
		t.locs.set(l.ID, fr)
		for j := len(fr) - 1; j >= 0; j-- {
			if t.bench[fr[j].fn].Benchmark != "" {
				if t.locBench == nil {
					t.locBench = map[uint64]int32{}
				}
				t.locBench[l.ID] = fr[j].fn
				break
			}
		}
	}
	return t
}

func (t *frameTable) addName(name string) int32 {
	t.names = append(t.names, name)
	t.library = append(t.library, false)
	t.bench = append(t.bench, Key{})
	return int32(len(t.names) - 1)
}

// value returns a sample's compared value and the number of sampling
// events behind it (0 when the profile does not say).
func (t *frameTable) value(s *profile.Sample) (v, ev float64) {
	v = float64(s.Value[t.vi])
	switch {
	case t.ei >= 0:
		ev = float64(s.Value[t.ei])
	case t.period > 0:
		ev = v / t.period
	}
	return v, ev
}

// key returns the benchmark a sample ran under: its label, else its
// root-most Benchmark* frame, else the zero Key.
func (t *frameTable) key(s *profile.Sample) Key {
	if len(s.Label) > 0 {
		if k, ok := labelKey(s); ok {
			return k
		}
	}
	if t.locBench == nil {
		return Key{} // no benchmark in this profile
	}
	for i := len(s.Location) - 1; i >= 0; i-- {
		if fn, ok := t.locBench[s.Location[i].ID]; ok {
			return t.bench[fn]
		}
	}
	return Key{}
}

// aggregate reduces a profile to flat, cumulative and own cost per function,
// split by the benchmark each sample ran under.
func aggregate(file string, p *profile.Profile, vi int, underTest []string) *aggregated {
	t := newFrameTable(p, vi, underTest)
	a := &aggregated{file: file, parts: map[Key]*part{}, eventsKnown: t.ei >= 0 || t.period > 0, frames: t}

	type partAcc struct {
		total, events float64
		fn            []cost
	}
	parts := map[Key]*partAcc{}
	stamp := make([]int, len(t.names))
	for si, s := range p.Sample {
		v, ev := t.value(s)
		if v == 0 {
			continue
		}
		key := t.key(s)
		pa := parts[key]
		if pa == nil {
			pa = &partAcc{fn: make([]cost, len(t.names))}
			parts[key] = pa
		}
		pa.total += v
		pa.events += ev
		mark := si + 1
		leaf, owner := int32(-1), int32(-1)
		for _, loc := range s.Location {
			for _, fr := range t.locs.get(loc.ID) {
				if leaf < 0 {
					leaf = fr.fn
				}
				if owner < 0 && !fr.lib {
					owner = fr.fn
				}
				if stamp[fr.fn] != mark {
					stamp[fr.fn] = mark
					pa.fn[fr.fn].cum += v
					pa.fn[fr.fn].cumEvents += ev
				}
			}
		}
		if leaf < 0 {
			continue // a sample without locations counts only in the total
		}
		if owner < 0 {
			owner = leaf
		}
		pa.fn[leaf].flat += v
		pa.fn[owner].own += v
		pa.fn[owner].ownEvents += ev
	}

	for k, pa := range parts {
		pt := &part{total: pa.total, events: pa.events, fn: map[string]*cost{}}
		for i := range pa.fn {
			c := pa.fn[i]
			if c.cum != 0 {
				cc := c
				cc.lib = t.library[i]
				pt.fn[t.names[i]] = &cc
			}
		}
		a.parts[k] = pt
	}
	a.all = mergeParts(a.parts)
	return a
}

// mergeParts sums parts into one.
func mergeParts(parts map[Key]*part) *part {
	if len(parts) == 1 {
		for _, p := range parts {
			return p
		}
	}
	m := &part{fn: map[string]*cost{}}
	for _, p := range parts {
		m.total += p.total
		m.events += p.events
		for name, c := range p.fn {
			mc := m.fn[name]
			if mc == nil {
				mc = &cost{}
				m.fn[name] = mc
			}
			mc.add(c)
		}
	}
	return m
}

// labelKey returns the benchmark a sample is labelled with, if any.
func labelKey(s *profile.Sample) (Key, bool) {
	for _, k := range labelKeys {
		if v := s.Label[k]; len(v) > 0 {
			name := v[0]
			if i := strings.IndexByte(name, '/'); i >= 0 {
				name = name[:i] // sub-benchmarks share their parent's part
			}
			return Key{Benchmark: name}, true
		}
	}
	return Key{}, false
}

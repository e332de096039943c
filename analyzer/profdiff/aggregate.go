package profdiff

import (
	"fmt"
	"strings"

	"github.com/google/pprof/profile"
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
	// ownEvents counts the samples behind own, for the sampling-noise test.
	ownEvents float64
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
	for i, st := range p.SampleType {
		if st.Type == name || sampleType(st) == name {
			return i, nil
		}
	}
	var have []string
	for _, st := range p.SampleType {
		have = append(have, st.Type)
	}
	return 0, fmt.Errorf("no sample type %q (has %s)", name, strings.Join(have, ", "))
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

// aggregate reduces a profile to flat, cumulative and own cost per function,
// split by the benchmark each sample ran under.
func aggregate(file string, p *profile.Profile, vi int) *aggregated {
	goProf := isGoProfile(p)
	ei, period := eventsOf(p, vi)
	a := &aggregated{file: file, parts: map[Key]*part{}, eventsKnown: ei >= 0 || period > 0}

	// Functions are identified by name: pprof may hold several entries of
	// one name (different files or system names), and costs merge by name.
	idx := map[string]int32{}
	var names []string
	var library []bool
	var bench []Key
	fnIndex := map[uint64]int32{}
	for _, f := range p.Function {
		i, ok := idx[f.Name]
		if !ok {
			i = int32(len(names))
			idx[f.Name] = i
			names = append(names, f.Name)
			pkg := ""
			if goProf {
				pkg = goPackage(f.Name)
			}
			library = append(library, isGoStd(pkg))
			bp, bn := "", ""
			if goProf {
				bp, bn = benchmarkOf(f.Name)
			}
			bench = append(bench, Key{bp, bn})
		}
		fnIndex[f.ID] = i
	}
	unknown := int32(-1)

	// Each location expands to its (inlined) frames, leaf first.
	type frame struct {
		fn  int32
		lib bool
	}
	locFrames := make(map[uint64][]frame, len(p.Location))
	for _, l := range p.Location {
		libMap := isLibraryMapping(l.Mapping)
		var fr []frame
		for _, ln := range l.Line {
			if ln.Function == nil {
				continue
			}
			fi := fnIndex[ln.Function.ID]
			fr = append(fr, frame{fi, libMap || library[fi]})
		}
		if len(fr) == 0 {
			if unknown < 0 {
				unknown = int32(len(names))
				names = append(names, "(unknown)")
				library = append(library, false)
				bench = append(bench, Key{})
			}
			fr = append(fr, frame{unknown, libMap})
		}
		locFrames[l.ID] = fr
	}

	type partAcc struct {
		total, events float64
		fn            []cost
	}
	parts := map[Key]*partAcc{}
	stamp := make([]int, len(names))
	for si, s := range p.Sample {
		v := float64(s.Value[vi])
		if v == 0 {
			continue
		}
		var ev float64
		switch {
		case ei >= 0:
			ev = float64(s.Value[ei])
		case period > 0:
			ev = v / period
		}
		key, labelled := labelKey(s)
		leaf, owner := int32(-1), int32(-1)
		pa := (*partAcc)(nil)
		// First pass: find the part (root-most benchmark frame) unless a label names it.
		if !labelled {
			for _, loc := range s.Location {
				for _, fr := range locFrames[loc.ID] {
					if b := bench[fr.fn]; b.Benchmark != "" {
						key = b
					}
				}
			}
		}
		pa = parts[key]
		if pa == nil {
			pa = &partAcc{fn: make([]cost, len(names))}
			parts[key] = pa
		}
		pa.total += v
		pa.events += ev
		mark := si + 1
		for _, loc := range s.Location {
			for _, fr := range locFrames[loc.ID] {
				if leaf < 0 {
					leaf = fr.fn
				}
				if owner < 0 && !fr.lib {
					owner = fr.fn
				}
				if stamp[fr.fn] != mark {
					stamp[fr.fn] = mark
					pa.fn[fr.fn].cum += v
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
				pt.fn[names[i]] = &cc
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
			mc.flat += c.flat
			mc.cum += c.cum
			mc.own += c.own
			mc.ownEvents += c.ownEvents
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

package obsdiff

import (
	"fmt"
	"math"
	"sort"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdiff"
	"github.com/perfhound/perfhound/analyzer/stat"
)

// profileKey is how profiles pair across sides: an eBPF CPU profile and a
// Go one measure different things and never compare.
type profileKey struct {
	source observation.ProfileSource
	kind   observation.ProfileKind
}

func (k profileKey) String() string { return string(k.source) + " " + string(k.kind) }

// group collects an observation's profiles by source and kind, in order.
func group(o *observation.Observation) (map[profileKey][]observation.Profile, []profileKey) {
	m := map[profileKey][]observation.Profile{}
	var order []profileKey
	for _, p := range o.Profiles {
		if p.Profile == nil {
			continue
		}
		k := profileKey{p.Source, p.Kind}
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] = append(m[k], p)
	}
	return m, order
}

// compareProfiles compares every kind both sides have, in the head's order.
// Kinds on one side only are warnings.
func compareProfiles(base, head *observation.Observation, bw, hw float64, top int) ([]ProfileChange, []string) {
	out := []ProfileChange{}
	var warnings []string
	bm, border := group(base)
	hm, horder := group(head)
	for _, k := range horder {
		if _, ok := bm[k]; !ok {
			warnings = append(warnings, fmt.Sprintf("%s profile in the head only: not compared", k))
			continue
		}
		pc, err := compareKind(k, bm[k], hm[k], bw, hw, top)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s profiles not compared: %v", k, err))
			continue
		}
		out = append(out, pc)
	}
	for _, k := range border {
		if _, ok := hm[k]; !ok {
			warnings = append(warnings, fmt.Sprintf("%s profile in the base only: not compared", k))
		}
	}
	return out, warnings
}

// sideProfile is one side's profiles of a kind, merged, with what scales
// its values to Unit.
type sideProfile struct {
	prof  *profile.Profile
	index int
	total float64 // raw, in the profile's unit
	scale float64 // the whole profile in the compared unit
}

// prepare merges a side's profiles of one kind (several collectors or
// targets of one kind are one side, not replicates) and finds the compared
// value, its total, and the scale that puts it per second of window.
func prepare(ps []observation.Profile, kind observation.ProfileKind, window float64, snapshot bool) (*sideProfile, string, string, error) {
	var list []*profile.Profile
	for _, p := range ps {
		list = append(list, p.Profile)
	}
	prof := list[0]
	if len(list) > 1 {
		m, err := profile.Merge(list)
		if err != nil {
			return nil, "", "", fmt.Errorf("merging: %w", err)
		}
		prof = m
	}
	if len(prof.SampleType) == 0 {
		return nil, "", "", fmt.Errorf("a profile has no sample types")
	}
	i := valueIndex(prof, kind)
	st := prof.SampleType[i]
	s := &sideProfile{prof: prof, index: i}
	for _, smp := range prof.Sample {
		if i < len(smp.Value) {
			s.total += float64(smp.Value[i])
		}
	}
	factor, unit := unitOf(st.Unit)
	s.scale = s.total * factor
	if !snapshot {
		// A delta profile of a Go service covers its own duration; an
		// eBPF profile, the observation's window.
		w := window
		if prof.DurationNanos > 0 {
			w = float64(prof.DurationNanos) / 1e9
		}
		s.scale /= w
		unit += "/s"
	}
	return s, st.Type + "/" + st.Unit, unit, nil
}

// kindValue is the value compared for a kind whose profiles hold several
// that pprof's default would not pick: Go's allocs and heap profiles are
// one format with four values, and a delta of the heap in use says little
// about allocation.
var kindValue = map[observation.ProfileKind]string{
	observation.KindAllocs: "alloc_space",
	observation.KindHeap:   "inuse_space",
}

// valueIndex is the value compared: the kind's (kindValue) when the
// profile has it, else pprof's rule for the value a profile shows: its
// DefaultSampleType, else the last.
func valueIndex(p *profile.Profile, kind observation.ProfileKind) int {
	for _, want := range []string{kindValue[kind], p.DefaultSampleType} {
		if want == "" {
			continue
		}
		for i, st := range p.SampleType {
			if st.Type == want {
				return i
			}
		}
	}
	return len(p.SampleType) - 1
}

// unitOf converts time units to seconds, so that time per second reads as
// threads; other units stay.
func unitOf(u string) (factor float64, unit string) {
	switch u {
	case "nanoseconds":
		return 1e-9, "seconds"
	case "microseconds":
		return 1e-6, "seconds"
	case "milliseconds":
		return 1e-3, "seconds"
	case "seconds":
		return 1, "seconds"
	}
	return 1, u
}

// isSnapshot tells a profile of a state at one moment (the heap in use,
// the goroutines), which does not go per second, from one of events
// through the window.
func isSnapshot(ps []observation.Profile) bool {
	if m := ps[0].Labels["mode"]; m != "" {
		return m == "snapshot"
	}
	return ps[0].Kind == observation.KindHeap || ps[0].Kind == observation.KindGoroutine
}

func compareKind(k profileKey, bp, hp []observation.Profile, bw, hw float64, top int) (ProfileChange, error) {
	snapshot := isSnapshot(hp)
	b, bType, unit, err := prepare(bp, k.kind, bw, snapshot)
	if err != nil {
		return ProfileChange{}, fmt.Errorf("base: %w", err)
	}
	h, hType, _, err := prepare(hp, k.kind, hw, snapshot)
	if err != nil {
		return ProfileChange{}, fmt.Errorf("head: %w", err)
	}
	if bType != hType {
		return ProfileChange{}, fmt.Errorf("%w: base %s, head %s", profdiff.ErrSampleTypes, bType, hType)
	}
	pc := ProfileChange{Kind: string(k.kind), Source: string(k.source), SampleType: bType, Unit: unit,
		BaseTotal: b.scale, HeadTotal: h.scale, Functions: []FunctionChange{}}
	switch {
	case b.total == 0 && h.total == 0:
		pc.Note = "no samples on either side"
		return pc, nil
	case b.total == 0:
		pc.Note = "no samples in the base"
		return pc, nil
	case h.total == 0:
		pc.Note = "no samples in the head"
		return pc, nil
	}
	sel := profdiff.Options{SampleIndex: bType}
	bs, err := profdiff.NewSide([]profdiff.Input{{File: "base " + k.String(), Profile: b.prof}}, sel)
	if err != nil {
		return ProfileChange{}, err
	}
	hs, err := profdiff.NewSide([]profdiff.Input{{File: "head " + k.String(), Profile: h.prof}}, sel)
	if err != nil {
		return ProfileChange{}, err
	}
	// profdiff's test is not used: one profile a side has no replicate,
	// and the thresholds only classify, which this package does not.
	d, err := profdiff.Compare(bs, hs, profdiff.Selection{BaseScale: b.scale, HeadScale: h.scale, Unit: unit}, stat.DefaultThresholds)
	if err != nil {
		return ProfileChange{}, err
	}
	fns := d.Functions
	sort.SliceStable(fns, func(i, j int) bool {
		a, b := fns[i], fns[j]
		if da, db := math.Abs(a.Delta.Own), math.Abs(b.Delta.Own); da != db {
			return da > db
		}
		if da, db := math.Abs(a.Delta.Cum), math.Abs(b.Delta.Cum); da != db {
			return da > db
		}
		return a.Name < b.Name
	})
	for _, f := range fns {
		if !moved(f.Delta, b.scale, h.scale) {
			continue
		}
		pc.Changed++
		if len(pc.Functions) < top {
			pc.Functions = append(pc.Functions, FunctionChange{Name: f.Name, Library: f.Library, Base: f.Base, Head: f.Head, Delta: f.Delta})
		}
	}
	switch {
	case len(fns) == 0:
		pc.Note = "the samples carry no stacks"
	case pc.Changed == 0:
		pc.Note = "no function changed"
	}
	return pc, nil
}

// moved reports whether a function's cost changed by more than float
// rounding: profdiff divides and multiplies, so identical profiles of
// different windows can differ in the last bits.
func moved(d profdiff.Cost, scales ...float64) bool {
	eps := 0.0
	for _, s := range scales {
		eps = math.Max(eps, 1e-9*math.Abs(s))
	}
	return math.Abs(d.Flat) > eps || math.Abs(d.Cum) > eps || math.Abs(d.Own) > eps
}

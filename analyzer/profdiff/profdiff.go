// Package profdiff compares pprof profiles of a base and a head function by
// function.
//
// Each profile is reduced to three costs per function: flat (samples where
// it is the leaf), cum (samples where it is on the stack, once per sample
// even when recursive) and own (flat plus the standard-library, runtime and
// shared-library code it called, which no deeper first-party frame owns).
// Own is what regressions are ranked by: a change that makes a function
// hash more bytes shows up as flat cost in crypto/sha256, and as own cost of
// the function that asked for it.
//
// Profiles from `go test -bench` are split by benchmark, using the
// root-most Benchmark* frame of each sample (or a "benchmark" pprof label),
// so that one benchmark's share can be scaled by its measured time per op.
// Costs are normalised per profile before sides are compared: as a share of
// the profile (or of one benchmark's part), optionally times a scale such
// as the benchmark's sec/op. Then runs of different lengths compare.
//
// Significance: with at least MinProfilesForTTest profiles a side, each
// function's normalised own cost is compared across profiles with Welch's
// t-test, which sees the run-to-run variance; with fewer, the profiles of a
// side are pooled and the sample counts are compared with the exact test of
// two Poisson rates, which sees only sampling noise.
package profdiff

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/perfhound/perfhound/analyzer/internal/par"
	"github.com/perfhound/perfhound/analyzer/stat"
)

// MinProfilesForTTest is the number of profiles a side from which the
// per-function test runs across profiles.
const MinProfilesForTTest = 3

// ErrSampleTypes is returned when the two sides' profiles hold different
// sample types.
var ErrSampleTypes = errors.New("sample types differ")

// Input is one profile and the file it came from.
type Input struct {
	File    string
	Profile *profile.Profile
}

// Side is a set of profiles of one kind, reduced for comparison.
type Side struct {
	// SampleType is the compared value, "cpu/nanoseconds" for example.
	SampleType string
	// Types is the profile's full list of sample types, which identifies its kind.
	Types    string
	profiles []*aggregated
}

// Kind returns the kind of a profile: its sample types joined, e.g.
// "samples/count,cpu/nanoseconds". Only profiles of one kind compare.
func Kind(p *profile.Profile) string {
	var s []string
	for _, st := range p.SampleType {
		s = append(s, sampleType(st))
	}
	return strings.Join(s, ",")
}

// Options say how to read a side's profiles.
type Options struct {
	// SampleIndex picks the value to compare (a type such as
	// "alloc_space"), or "" for the profile's default.
	SampleIndex string
	// UnderTest lists the Go packages being benchmarked (the `pkg:` lines
	// of go test output). They are first-party even when they are in the
	// standard library, as when benchmarking strconv itself; their
	// external test packages (pkg_test) too.
	UnderTest []string
}

// NewSide reduces profiles of one kind.
func NewSide(in []Input, opt Options) (*Side, error) {
	if len(in) == 0 {
		return nil, errors.New("no profiles")
	}
	s := &Side{Types: Kind(in[0].Profile)}
	vi, err := valueIndex(in[0].Profile, opt.SampleIndex)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in[0].File, err)
	}
	s.SampleType = sampleType(in[0].Profile.SampleType[vi])
	s.profiles = make([]*aggregated, len(in))
	errs := make([]error, len(in))
	par.Do(len(in), func(i int) {
		if k := Kind(in[i].Profile); k != s.Types {
			errs[i] = fmt.Errorf("%s: %w: %s, not %s", in[i].File, ErrSampleTypes, k, s.Types)
			return
		}
		s.profiles[i] = aggregate(in[i].File, in[i].Profile, vi, opt.UnderTest)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Unit is the unit of the compared sample value.
func (s *Side) Unit() string {
	_, u, _ := strings.Cut(s.SampleType, "/")
	return u
}

// Benchmarks lists the benchmark parts found in the side's profiles.
func (s *Side) Benchmarks() []Key {
	seen := map[Key]bool{}
	var keys []Key
	for _, a := range s.profiles {
		for k := range a.parts {
			if k.Benchmark != "" && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

// Has reports whether any profile holds samples of benchmark k.
func (s *Side) Has(k Key) bool {
	for _, a := range s.profiles {
		if a.lookup(k) != nil {
			return true
		}
	}
	return false
}

// lookup finds the part for k. Parts from labels carry no package, and a
// benchmark in package main is named main.BenchmarkX in profiles while
// `go test` prints its import path, so when the exact key is missing a
// part of the same benchmark name is taken if it is the only one.
func (a *aggregated) lookup(k Key) *part {
	if rk, ok := a.resolve(k); ok {
		return a.parts[rk]
	}
	return nil
}

// resolve returns the key under which a stores the part for k (see lookup).
func (a *aggregated) resolve(k Key) (Key, bool) {
	if _, ok := a.parts[k]; ok || k.Benchmark == "" {
		return k, ok
	}
	var found Key
	n := 0
	for pk := range a.parts {
		if pk.Benchmark == k.Benchmark {
			found = pk
			n++
		}
	}
	return found, n == 1 // several: the same name in several packages
}

// Selection says which part of the profiles to compare and how to scale it.
type Selection struct {
	// Bench restricts the comparison to one benchmark; nil means the
	// whole profiles.
	Bench *Key
	// BaseScale and HeadScale multiply the shares of each side, for
	// example by the benchmark's sec/op; 0 means 1 (shares).
	BaseScale, HeadScale float64
	// Unit names the normalised unit ("sec/op"); "" means a share.
	Unit string
}

// Cost is a function's normalised cost on one side, or the difference.
type Cost struct {
	Flat float64 `json:"flat"`
	Cum  float64 `json:"cum"`
	Own  float64 `json:"own"`
}

// Function is one function's comparison.
type Function struct {
	Name  string `json:"name"`
	Base  Cost   `json:"base"`
	Head  Cost   `json:"head"`
	Delta Cost   `json:"delta"`
	// Library is whether the function is standard-library, runtime or
	// shared-library code, whose cost its first-party callers own.
	Library bool `json:"library,omitempty"`
	// P and PCum are the p-values of the tests on own and on cum cost;
	// 1 when untested.
	P      float64     `json:"p"`
	PCum   float64     `json:"p_cum"`
	Change stat.Change `json:"change"`
}

// Diff is the comparison of two sides' profiles.
type Diff struct {
	SampleType string `json:"sample_type"`
	// Unit is the unit of every cost: a share of the total when empty.
	Unit string `json:"unit,omitempty"`
	// Bench is the benchmark compared, if any.
	Bench *Key `json:"benchmark,omitempty"`
	// Test is "welch-t" (across profiles), "poisson" (sampling noise) or
	// "none" (the profiles carry no sample counts).
	Test        string     `json:"test"`
	BaseN       int        `json:"base_profiles"`
	HeadN       int        `json:"head_profiles"`
	BaseTotal   float64    `json:"base_total"`
	HeadTotal   float64    `json:"head_total"`
	BaseSamples float64    `json:"base_samples"`
	HeadSamples float64    `json:"head_samples"`
	Functions   []Function `json:"functions"`
	// FunctionsTotal counts the functions compared, when Functions was cut.
	FunctionsTotal int      `json:"functions_total,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
}

// sideView is one side's profiles restricted to a selection.
type sideView struct {
	parts  []*part
	scale  float64
	total  float64 // normalised total (= scale when any part has samples)
	events float64
}

func view(s *Side, bench *Key, scale float64) sideView {
	if scale == 0 {
		scale = 1
	}
	v := sideView{scale: scale}
	for _, a := range s.profiles {
		var p *part
		if bench != nil {
			p = a.lookup(*bench)
		} else {
			p = a.all
		}
		if p == nil || p.total == 0 {
			continue
		}
		v.parts = append(v.parts, p)
		v.events += p.events
	}
	if len(v.parts) > 0 {
		v.total = scale
	}
	return v
}

// pooled is a side's normalised cost of a function (its summed cost over
// the summed total, times the scale) and the samples behind own and cum.
func (v sideView) pooled(name string) (c Cost, ownEvents, cumEvents float64, lib bool) {
	var sum cost
	var total float64
	for _, p := range v.parts {
		total += p.total
		if fc := p.fn[name]; fc != nil {
			sum.add(fc)
		}
	}
	if total == 0 {
		return Cost{}, 0, 0, sum.lib
	}
	k := v.scale / total
	return Cost{sum.flat * k, sum.cum * k, sum.own * k}, sum.ownEvents, sum.cumEvents, sum.lib
}

// perProfile is a function's normalised own (or cum) cost in each profile.
func (v sideView) perProfile(name string, cum bool) []float64 {
	out := make([]float64, len(v.parts))
	for i, p := range v.parts {
		if fc := p.fn[name]; fc != nil {
			x := fc.own
			if cum {
				x = fc.cum
			}
			out[i] = x / p.total * v.scale
		}
	}
	return out
}

// Compare diffs base against head for a selection. th.MinChange is taken
// relative to the base total: a function is flagged when its own cost
// changes significantly by possibly that share of the whole.
func Compare(base, head *Side, sel Selection, th stat.Thresholds) (*Diff, error) {
	if base.Types != head.Types {
		return nil, fmt.Errorf("%w: base %s, head %s", ErrSampleTypes, base.Types, head.Types)
	}
	bv := view(base, sel.Bench, sel.BaseScale)
	hv := view(head, sel.Bench, sel.HeadScale)
	d := &Diff{
		SampleType:  base.SampleType,
		Unit:        sel.Unit,
		Bench:       sel.Bench,
		BaseN:       len(bv.parts),
		HeadN:       len(hv.parts),
		BaseTotal:   bv.total,
		HeadTotal:   hv.total,
		BaseSamples: bv.events,
		HeadSamples: hv.events,
	}
	if d.BaseN == 0 || d.HeadN == 0 {
		return nil, fmt.Errorf("no samples for %v on the %s side", sel.Bench, map[bool]string{true: "base", false: "head"}[d.BaseN == 0])
	}
	eventsKnown := true
	for _, a := range append(append([]*aggregated(nil), base.profiles...), head.profiles...) {
		eventsKnown = eventsKnown && a.eventsKnown
	}
	switch {
	case d.BaseN >= MinProfilesForTTest && d.HeadN >= MinProfilesForTTest:
		d.Test = "welch-t"
	case eventsKnown:
		d.Test = "poisson"
	default:
		d.Test = "none"
		d.Warnings = append(d.Warnings, "profiles carry no sample counts and there are too few for a test across profiles: changes are not tested for significance")
	}

	names := map[string]bool{}
	for _, v := range []sideView{bv, hv} {
		for _, p := range v.parts {
			for n := range p.fn {
				names[n] = true
			}
		}
	}
	for name := range names {
		bc, bown, bcum, blib := bv.pooled(name)
		hc, hown, hcum, hlib := hv.pooled(name)
		f := Function{
			Name:    name,
			Base:    bc,
			Head:    hc,
			Delta:   Cost{hc.Flat - bc.Flat, hc.Cum - bc.Cum, hc.Own - bc.Own},
			Library: blib || hlib,
			P:       1,
			PCum:    1,
		}
		test := func(delta, bev, hev float64, cum bool) float64 {
			if delta == 0 {
				return 1
			}
			switch d.Test {
			case "welch-t":
				// A failed test (both sides constant) reports p = 1.
				p, _ := stat.Welch(bv.perProfile(name, cum), hv.perProfile(name, cum))
				return p
			case "poisson":
				// Exposure is the number of "scale units" each side
				// observed: samples divided by the per-sample cost.
				return stat.PoissonRates(bev, bv.events/bv.scale, hev, hv.events/hv.scale)
			}
			return 1
		}
		f.P = test(f.Delta.Own, bown, hown, false)
		f.PCum = test(f.Delta.Cum, bcum, hcum, true)
		if f.Delta.Own != 0 {
			rel := f.Delta.Own / bv.total
			f.Change = stat.Classify(f.P, rel, rel, rel, -1, th)
		}
		d.Functions = append(d.Functions, f)
	}
	sort.Slice(d.Functions, func(i, j int) bool {
		a, b := d.Functions[i], d.Functions[j]
		if da, db := math.Abs(a.Delta.Own), math.Abs(b.Delta.Own); da != db {
			return da > db
		}
		if a.Head.Cum != b.Head.Cum {
			return a.Head.Cum > b.Head.Cum
		}
		return a.Name < b.Name
	})
	return d, nil
}

// Regressed returns the functions whose own cost grew, largest first.
func (d *Diff) Regressed() []Function {
	var out []Function
	for _, f := range d.Functions {
		if f.Delta.Own > 0 {
			out = append(out, f)
		}
	}
	return out
}

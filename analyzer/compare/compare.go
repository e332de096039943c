// Package compare is the judgement behind `perfhound compare`: it compares a
// base and a head (benchmark results, profiles, or both), decides what
// regressed beyond noise, attributes each benchmark regression to the
// functions whose cost grew, and ranks where the head spends its time.
//
// The Result is plain data with a versioned JSON schema (Schema); the
// renderers in this package turn it into text, Markdown or JSON.
package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/perf/benchfmt"

	"github.com/perfhound/perfhound/analyzer/benchdiff"
	"github.com/perfhound/perfhound/analyzer/input"
	"github.com/perfhound/perfhound/analyzer/profdiff"
	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Schema identifies the JSON layout of a Result. It changes only when a
// field changes meaning or disappears; new fields may be added within a version.
const Schema = "perfhound.compare/v1"

// ErrMismatch is returned when the two sides cannot be compared.
var ErrMismatch = errors.New("base and head do not match")

// Options configure a comparison.
type Options struct {
	Thresholds stat.Thresholds
	FailOn     stat.Policy
	// SampleIndex selects the profile value to compare ("alloc_space");
	// "" takes each profile's default.
	SampleIndex string
	// Top caps the functions listed per attribution and in priorities.
	Top int
}

// DefaultOptions are the command's defaults.
var DefaultOptions = Options{Thresholds: stat.DefaultThresholds, FailOn: stat.FailOnRegression, Top: 10}

// Side describes one side's inputs.
type Side struct {
	Paths    []string `json:"paths"`
	Inputs   string   `json:"inputs"`
	Skipped  []string `json:"skipped,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// PolicyInfo echoes the thresholds a Result was decided with.
type PolicyInfo struct {
	Alpha      float64     `json:"alpha"`
	Confidence float64     `json:"confidence"`
	Threshold  float64     `json:"threshold"`
	FailOn     stat.Policy `json:"fail_on"`
}

// Attribution is a function that grew while a benchmark regressed.
type Attribution struct {
	Function string `json:"function"`
	// Blamed marks the function the call-tree walk blames (see
	// profdiff.Blame); it comes first. Its Delta includes its callees.
	Blamed bool `json:"blamed,omitempty"`
	// Path is the call path from the benchmark to a blamed function.
	Path []string `json:"path,omitempty"`
	// Why says why the walk stopped at a blamed function.
	Why string `json:"why,omitempty"`
	// Delta is the growth of the function's own cost (with callees, for
	// the blamed function), in Unit.
	Delta float64 `json:"delta"`
	// DeltaFlat is the growth of its flat cost.
	DeltaFlat float64 `json:"delta_flat"`
	Unit      string  `json:"unit"`
	// Share is Delta over the benchmark's whole change.
	Share float64 `json:"share"`
	P     float64 `json:"p_value"`
}

// Finding is one flagged regression, improvement or change.
type Finding struct {
	Kind      string  `json:"kind"` // "benchmark" or "function"
	Package   string  `json:"package,omitempty"`
	Benchmark string  `json:"benchmark,omitempty"`
	Function  string  `json:"function,omitempty"`
	Unit      string  `json:"unit"`
	Base      float64 `json:"base"`
	Head      float64 `json:"head"`
	// FastestRuns says that Base and Head are the geometric means of each
	// side's fastest runs, which a busy machine's benchmark is
	// judged by (benchdiff.Row.Fastest), not its medians.
	FastestRuns bool `json:"fastest_runs,omitempty"`
	// DeltaPct is the relative change in percent; for functions, the
	// change as a percentage of the base profile's total.
	DeltaPct   float64     `json:"delta_pct"`
	DeltaLoPct *float64    `json:"delta_lo_pct,omitempty"`
	DeltaHiPct *float64    `json:"delta_hi_pct,omitempty"`
	P          float64     `json:"p_value"`
	Change     stat.Change `json:"change"`
	// AttributedTo lists the functions that grew, largest first.
	AttributedTo []Attribution `json:"attributed_to,omitempty"`
	// AttributionNote says why there is no attribution, when there is none.
	AttributionNote string `json:"attribution_note,omitempty"`
}

// Name is the benchmark or function the finding is about.
func (f *Finding) Name() string {
	if f.Kind == "function" {
		return f.Function
	}
	return f.Benchmark
}

// Priority is a place where the head spends its cost.
type Priority struct {
	Rank       int     `json:"rank"`
	Function   string  `json:"function"`
	SampleType string  `json:"sample_type"`
	Own        float64 `json:"own_share"`
	Flat       float64 `json:"flat_share"`
	Cum        float64 `json:"cum_share"`
	Cumulative float64 `json:"cumulative_share"`
}

// Result is everything a comparison found.
type Result struct {
	Schema       string           `json:"schema"`
	Base         Side             `json:"base"`
	Head         Side             `json:"head"`
	Policy       PolicyInfo       `json:"policy"`
	Benchmarks   *benchdiff.Table `json:"benchmarks,omitempty"`
	Profiles     []*profdiff.Diff `json:"profiles,omitempty"`
	Regressions  []Finding        `json:"regressions"`
	Improvements []Finding        `json:"improvements"`
	Changes      []Finding        `json:"changes,omitempty"`
	Priorities   []Priority       `json:"priorities,omitempty"`
	Warnings     []string         `json:"warnings,omitempty"`
	// Failed is whether the policy fails the build.
	Failed bool `json:"failed"`
}

// maxListedFunctions caps each profile diff in a Result; the functions are
// sorted by the size of their change, so what is cut moved least.
const maxListedFunctions = 200

// Run compares base with head.
func Run(base, head *input.Set, opt Options) (*Result, error) {
	if opt.Top <= 0 {
		opt.Top = DefaultOptions.Top
	}
	if opt.FailOn == "" {
		opt.FailOn = stat.FailOnRegression
	}
	th := opt.Thresholds
	r := &Result{
		Schema: Schema,
		Base:   describe(base),
		Head:   describe(head),
		Policy: PolicyInfo{th.Alpha, th.Confidence, th.MinChange, opt.FailOn},
	}
	if err := matchKinds(base, head); err != nil {
		return nil, err
	}
	if len(base.Bench) > 0 {
		t, err := benchdiff.Compare(base.Bench, head.Bench, mergeUnits(base, head), th)
		if err != nil {
			return nil, fmt.Errorf("%s vs %s: %w", strings.Join(base.Paths, " "), strings.Join(head.Paths, " "), err)
		}
		r.Benchmarks = t
		r.Warnings = append(r.Warnings, t.Warnings...)
	}
	sides, skipped, err := profileSides(base, head, opt.SampleIndex)
	if err != nil {
		return nil, err
	}
	r.Warnings = append(r.Warnings, skipped...)
	for _, s := range sides {
		d, err := profdiff.Compare(s.base, s.head, profdiff.Selection{}, th)
		if err != nil {
			return nil, err
		}
		r.Priorities = append(r.Priorities, priorities(d, opt.Top)...)
		// Keep the report readable: the functions that moved most.
		d.FunctionsTotal = len(d.Functions)
		d.Functions = d.Functions[:min(len(d.Functions), maxListedFunctions)]
		r.Profiles = append(r.Profiles, d)
	}
	r.collectFindings(sides, opt)
	r.Failed = r.decide(opt.FailOn)
	return r, nil
}

func describe(s *input.Set) Side {
	return Side{Paths: s.Paths, Inputs: s.Describe(), Skipped: s.Skipped, Warnings: s.Warnings}
}

func mergeUnits(base, head *input.Set) benchfmt.UnitMetadataMap {
	m := benchfmt.UnitMetadataMap{}
	for _, s := range []*input.Set{base, head} {
		for k, v := range s.Units {
			m[k] = v
		}
	}
	return m
}

// matchKinds checks that both sides hold the same kinds of input.
func matchKinds(base, head *input.Set) error {
	check := func(what string, b, h int) error {
		if (b == 0) != (h == 0) {
			has, lacks, n := "base", "head", b
			if b == 0 {
				has, lacks, n = "head", "base", h
			}
			return fmt.Errorf("%w: %s has %s (%d) but %s has none", ErrMismatch, has, what, n, lacks)
		}
		return nil
	}
	if err := check("benchmark results", len(base.Bench), len(head.Bench)); err != nil {
		return err
	}
	return check("profiles", len(base.Profiles), len(head.Profiles))
}

type sidePair struct {
	kind       string
	base, head *profdiff.Side
}

// profileSides groups each side's profiles by kind and pairs them. Every
// kind must be on both sides.
func profileSides(base, head *input.Set, sampleIndex string) (pairs []sidePair, skipped []string, err error) {
	opt := profdiff.Options{SampleIndex: sampleIndex, UnderTest: packagesUnderTest(base, head)}
	group := func(s *input.Set) (map[string][]profdiff.Input, []string) {
		m := map[string][]profdiff.Input{}
		var order []string
		for _, p := range s.Profiles {
			k := profdiff.Kind(p.Profile)
			if _, ok := m[k]; !ok {
				order = append(order, k)
			}
			m[k] = append(m[k], profdiff.Input{File: p.File, Profile: p.Profile})
		}
		return m, order
	}
	bm, border := group(base)
	hm, horder := group(head)
	for _, k := range horder {
		if _, ok := bm[k]; !ok {
			return nil, nil, fmt.Errorf("%s: %w: head profile of sample types %s has no counterpart in base (base has %s)",
				hm[k][0].File, profdiff.ErrSampleTypes, k, strings.Join(border, "; "))
		}
	}
	for _, k := range border {
		if _, ok := hm[k]; !ok {
			return nil, nil, fmt.Errorf("%s: %w: base profile of sample types %s has no counterpart in head (head has %s)",
				bm[k][0].File, profdiff.ErrSampleTypes, k, strings.Join(horder, "; "))
		}
		if sampleIndex != "" && !profdiff.HasSampleType(bm[k][0].Profile, sampleIndex) {
			skipped = append(skipped, fmt.Sprintf("profiles of sample types %s not compared: no %s", k, sampleIndex))
			continue
		}
		b, err := profdiff.NewSide(bm[k], opt)
		if err != nil {
			return nil, nil, err
		}
		h, err := profdiff.NewSide(hm[k], opt)
		if err != nil {
			return nil, nil, err
		}
		pairs = append(pairs, sidePair{k, b, h})
	}
	if len(pairs) == 0 && len(skipped) > 0 {
		return nil, nil, fmt.Errorf("%w: no profile has sample type %q (profiles have %s)", ErrMismatch, sampleIndex, strings.Join(border, "; "))
	}
	return pairs, skipped, nil
}

// packagesUnderTest are the `pkg:` values of the benchmark results.
func packagesUnderTest(sets ...*input.Set) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sets {
		for _, r := range s.Bench {
			if p := r.GetConfig("pkg"); p != "" && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func (r *Result) collectFindings(sides []sidePair, opt Options) {
	if r.Benchmarks != nil {
		for i := range r.Benchmarks.Rows {
			row := &r.Benchmarks.Rows[i]
			if row.Change == stat.Unchanged {
				continue
			}
			f := benchFinding(row)
			if row.Change == stat.Regression {
				f.AttributedTo, f.AttributionNote = attribute(row, sides, opt)
			}
			r.add(f)
		}
		return
	}
	// Profiles alone: flagged functions are the findings.
	for _, d := range r.Profiles {
		for _, fn := range d.Functions {
			if fn.Change == stat.Unchanged {
				continue
			}
			r.add(Finding{
				Kind:     "function",
				Function: fn.Name,
				Unit:     d.SampleType + " share",
				Base:     fn.Base.Own,
				Head:     fn.Head.Own,
				DeltaPct: 100 * fn.Delta.Own / d.BaseTotal,
				P:        fn.P,
				Change:   fn.Change,
			})
		}
	}
}

func (r *Result) add(f Finding) {
	switch f.Change {
	case stat.Regression:
		r.Regressions = append(r.Regressions, f)
	case stat.Improvement:
		r.Improvements = append(r.Improvements, f)
	default:
		r.Changes = append(r.Changes, f)
	}
}

func benchFinding(row *benchdiff.Row) Finding {
	f := Finding{
		Kind:       "benchmark",
		Package:    row.Package,
		Benchmark:  row.Name,
		Unit:       row.Unit,
		Base:       row.Base.Center,
		Head:       row.Head.Center,
		DeltaPct:   100 * row.Delta,
		DeltaLoPct: finitePct(row.DeltaLo),
		DeltaHiPct: finitePct(row.DeltaHi),
		P:          row.P,
		Change:     row.Change,
	}
	if row.Fastest != nil {
		f.Base, f.Head, f.FastestRuns = row.Fastest.Base, row.Fastest.Head, true
	}
	return f
}

// finitePct is x as a percentage for JSON, null when not finite.
func finitePct(x float64) *float64 { return textfmt.JSONNumber(100 * x) }

// attribute explains a regressed benchmark row by the functions whose own
// cost per op grew, in the profiles whose sample unit matches the row's.
func attribute(row *benchdiff.Row, sides []sidePair, opt Options) ([]Attribution, string) {
	if len(sides) == 0 {
		return nil, ""
	}
	key := profdiff.Key{Package: row.Package, Benchmark: row.BaseName()}
	for _, s := range sides {
		if !unitsMatch(row.Unit, s.base) {
			continue
		}
		sel := profdiff.Selection{Bench: &key, BaseScale: row.Base.Center, HeadScale: row.Head.Center, Unit: row.Unit}
		if !s.base.Has(key) || !s.head.Has(key) {
			if len(s.base.Benchmarks()) > 0 || len(s.head.Benchmarks()) > 0 {
				return nil, fmt.Sprintf("the %s profiles hold no samples of %s on both sides", s.base.SampleType, key.Benchmark)
			}
			// Profiles not split by benchmark: only usable whole.
			sel.Bench = nil
		}
		d, err := profdiff.Compare(s.base, s.head, sel, opt.Thresholds)
		if err != nil {
			return nil, err.Error()
		}
		change := row.Head.Center - row.Base.Center
		if row.Fastest != nil {
			change = row.Fastest.Head - row.Fastest.Base // the change the row reports
		}
		var out []Attribution
		if b := profdiff.BlameRegression(s.base, s.head, sel, opt.Thresholds); b != nil && b.Delta > 0 {
			a := Attribution{Function: b.Function, Blamed: true, Path: b.Path, Why: b.Why, Delta: b.Delta, Unit: row.Unit, Share: b.Delta / change, P: 1}
			for _, f := range d.Functions {
				if f.Name == b.Function {
					a.DeltaFlat, a.P = f.Delta.Flat, f.PCum
				}
			}
			out = append(out, a)
		}
		for _, f := range d.Regressed() {
			if len(out) == opt.Top {
				break
			}
			if len(out) > 0 && f.Name == out[0].Function {
				continue
			}
			out = append(out, Attribution{
				Function:  f.Name,
				Delta:     f.Delta.Own,
				DeltaFlat: f.Delta.Flat,
				Unit:      row.Unit,
				Share:     f.Delta.Own / change,
				P:         f.P,
			})
		}
		if len(out) == 0 {
			return nil, "no function's cost grew in the profiles"
		}
		return out, ""
	}
	if strings.HasSuffix(row.Unit, "/s") {
		// b.SetBytes throughput is bytes over sec/op: the sec/op row of
		// the same benchmark carries the attribution.
		return nil, "a rate: see the benchmark's sec/op"
	}
	return nil, "no profile measures " + row.Unit
}

// unitsMatch pairs benchmark units with profile sample units: time per op
// with CPU or delay profiles, bytes with allocation space, allocations
// with allocation counts.
func unitsMatch(benchUnit string, s *profdiff.Side) bool {
	unit := s.Unit()
	typ, _, _ := strings.Cut(s.SampleType, "/")
	switch {
	case strings.HasPrefix(benchUnit, "sec/"):
		return unit == "nanoseconds" || unit == "seconds" || unit == "microseconds" || unit == "milliseconds"
	case strings.HasPrefix(benchUnit, "B/"):
		return unit == "bytes"
	case strings.HasPrefix(benchUnit, "allocs/"):
		return unit == "count" && strings.Contains(typ, "alloc")
	}
	return false
}

// priorities ranks where the head's cost goes, by own share.
func priorities(d *profdiff.Diff, top int) []Priority {
	fns := append([]profdiff.Function(nil), d.Functions...)
	sort.Slice(fns, func(i, j int) bool {
		if fns[i].Head.Own != fns[j].Head.Own {
			return fns[i].Head.Own > fns[j].Head.Own
		}
		return fns[i].Name < fns[j].Name
	})
	var out []Priority
	cum := 0.0
	for i, f := range fns {
		if i == top || f.Head.Own <= 0 {
			break
		}
		cum += f.Head.Own
		out = append(out, Priority{Rank: i + 1, Function: f.Name, SampleType: d.SampleType,
			Own: f.Head.Own, Flat: f.Head.Flat, Cum: f.Head.Cum, Cumulative: cum})
	}
	return out
}

// decide applies the policy: improvements and changes with no known
// better direction are the changes other than regressions.
func (r *Result) decide(p stat.Policy) bool {
	return p.Fails(len(r.Regressions), len(r.Improvements)+len(r.Changes))
}

// MarshalJSON writes a number that is not finite as null: an infinite
// change (from a zero base, such as a first allocation in a benchmark that
// had none) as a null delta_pct, and a median that overflowed (values
// near ±1.8e308) as a null base or head. The fields after base are
// repeated to keep the order of the keys.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	return json.Marshal(struct {
		plain
		Base            *float64      `json:"base"`
		Head            *float64      `json:"head"`
		FastestRuns     bool          `json:"fastest_runs,omitempty"`
		DeltaLoPct      *float64      `json:"delta_lo_pct,omitempty"`
		DeltaHiPct      *float64      `json:"delta_hi_pct,omitempty"`
		P               *float64      `json:"p_value"`
		Change          stat.Change   `json:"change"`
		AttributedTo    []Attribution `json:"attributed_to,omitempty"`
		AttributionNote string        `json:"attribution_note,omitempty"`
		DeltaPct        *float64      `json:"delta_pct"`
	}{plain(f), textfmt.JSONNumber(f.Base), textfmt.JSONNumber(f.Head), f.FastestRuns, f.DeltaLoPct, f.DeltaHiPct, textfmt.JSONNumber(f.P), f.Change, f.AttributedTo,
		f.AttributionNote, textfmt.JSONNumber(f.DeltaPct)})
}

// MarshalJSON writes a cost that is not finite (per-op scaling by an
// overflowed median) as null, keeping the order of the keys.
func (a Attribution) MarshalJSON() ([]byte, error) {
	type plain Attribution
	return json.Marshal(struct {
		plain
		Delta     *float64 `json:"delta"`
		DeltaFlat *float64 `json:"delta_flat"`
		Unit      string   `json:"unit"`
		Share     *float64 `json:"share"`
		P         *float64 `json:"p_value"`
	}{plain(a), textfmt.JSONNumber(a.Delta), textfmt.JSONNumber(a.DeltaFlat), a.Unit, textfmt.JSONNumber(a.Share), textfmt.JSONNumber(a.P)})
}

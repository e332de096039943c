package regress

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// Units of a version finding's costs (Finding.Unit).
const (
	UnitShare             = "share of the service's CPU"
	UnitPerRequest        = "CPU seconds per request"
	UnitSamplesPerRequest = "CPU samples per request"
)

// Errors of Compare.
var (
	// ErrTooFewSamples: a side has fewer samples or windows than
	// VersionOptions ask for; the detector waits for more.
	ErrTooFewSamples = errors.New("too few samples to compare")
	// ErrNoWindows: a side has no windows.
	ErrNoWindows = errors.New("no windows")
	// ErrMixed: a side's windows are of several services or versions,
	// or the sides are of two services, or of two CPU sources.
	ErrMixed = errors.New("windows that do not compare")
)

// Comparison is one test of a head (a version's windows since it was
// deployed) against its base (the previous version's last windows), as
// a look of the Detector makes it and Compare repeats it on demand.
type Comparison struct {
	Service     string `json:"service"`
	BaseVersion string `json:"base_version"`
	HeadVersion string `json:"head_version"`
	Base        Range  `json:"base"`
	Head        Range  `json:"head"`
	// Unit is what a function's cost is per (Finding.Unit).
	Unit string `json:"unit"`
	// Common is c: the factor by which the head's typical function's
	// cost differs from the base's (dilution by a regression elsewhere,
	// a shift of the load's mix). A function is tested against c times
	// its base cost.
	Common float64 `json:"common_factor"`
	// Load is the head's CPU per second over the base's (requests per
	// second over the base's, per request), and LoadFell says whether it
	// fell beyond its noise: then a function must also cost more CPU per
	// second than in the base to be a regression (fixed-cost work's
	// share rises when the load falls).
	Load     float64 `json:"load_ratio"`
	LoadFell bool    `json:"load_fell"`
	// Q is the false discovery rate of the Benjamini–Hochberg procedure
	// over the tested functions.
	Q float64 `json:"q"`
	// Functions are the tests made, by p-value: each function's
	// cumulative cost when its cumulative share is MinShare or more on a
	// side, and its own code's when that is too (and it has callees).
	Functions   []FunctionTest  `json:"functions"`
	Findings    []Finding       `json:"findings"`
	BaseVerdict verdict.Summary `json:"base_verdict"`
	HeadVerdict verdict.Summary `json:"head_verdict"`
}

// FunctionTest is one test of one function: of its cumulative cost (it
// and its callees), or of its own code's.
type FunctionTest struct {
	Function string  `json:"function"`
	Measure  Measure `json:"measure"`
	// Base and Head are the measured cost on each side, in the unit.
	Base float64 `json:"base"`
	Head float64 `json:"head"`
	// Expected is the head's cost if the function had not changed: its
	// base cost times the common factor (or, when the load fell, its
	// base CPU per second).
	Expected float64 `json:"expected"`
	// ChangePct is the change against Expected, with its confidence
	// interval; 0 for a function the base never ran.
	ChangePct  float64 `json:"change_pct"`
	CILow      float64 `json:"ci_low_pct"`
	CIHigh     float64 `json:"ci_high_pct"`
	Z          float64 `json:"z"`
	PValue     float64 `json:"p_value"`
	Dispersion float64 `json:"dispersion"`
	Outcome    Outcome `json:"outcome"`
	// Related names the functions behind the outcome: where a cost
	// shift's cost came from, the callees that explain a rise.
	Related []string `json:"related,omitempty"`
}

// Measure says which cost of a function a test is of.
type Measure string

const (
	MeasureCum Measure = "cum" // the function and its callees: every sample it is on the stack of
	MeasureOwn Measure = "own" // the function's own code: the samples it is the leaf of
	MeasureNew Measure = "new" // the functions it calls that the base never ran
)

// Outcome is what the test of a function concluded.
type Outcome string

const (
	OutcomeRegression     Outcome = "regression"               // a finding
	OutcomeNotSignificant Outcome = "not significant"          // no rise beyond noise, after Benjamini–Hochberg
	OutcomeSmall          Outcome = "below the minimum effect" // significant, smaller than MinRelChange or MinAbsChange
	OutcomeShift          Outcome = "cost shift"               // the rise is cost that left other functions
	OutcomeHeld           Outcome = "held"                     // it may be one: a later look decides
	OutcomeExplained      Outcome = "explained by its callees" // the rise sits in a callee found deeper
	OutcomeNew            Outcome = "new"                      // significant, but the base never ran it: its caller is blamed
	OutcomeUniform        Outcome = "grew uniformly"           // its whole subtree grew alike: more calls or more load, no code of it slower
)

// Compare tests head against base as a look of the Detector does: the
// same statistics and thresholds (o, at one look's share of the false
// discovery rate), the same finding IDs. Given the windows of a finding's
// Base and Head ranges (those that start in [From, To)), it gives the
// finding the detector gave.
func Compare(base, head []Window, o VersionOptions) (*Comparison, error) {
	o = o.withDefaults()
	if len(base) == 0 || len(head) == 0 {
		return nil, fmt.Errorf("comparing versions: %w (%d base, %d head)", ErrNoWindows, len(base), len(head))
	}
	service := base[0].Service
	bv, hv := base[0].Version, head[0].Version
	for _, ws := range [][]Window{base, head} {
		for _, w := range ws {
			if w.Service != service || w.Version != ws[0].Version {
				return nil, fmt.Errorf("comparing versions: %w: %s %s among %s %s", ErrMixed, w.Service, w.Version, service, ws[0].Version)
			}
		}
	}
	t := newTable()
	var ix windowIDs
	bsrc, hsrc := sourceOf(base), sourceOf(head)
	if bsrc != hsrc && bsrc != "" && hsrc != "" {
		return nil, fmt.Errorf("comparing versions: %w: cpu from %s in the base, %s in the head", ErrMixed, bsrc, hsrc)
	}
	// The base in blocks merged oldest first, the head window after
	// window, as the detector sums them.
	blocks := map[int64]*agg{}
	for _, i := range byTime(base) {
		w := &base[i]
		b := blockOf(w.Start, o.BlockLength)
		if blocks[b] == nil {
			blocks[b] = &agg{}
		}
		t.index(w, &ix)
		blocks[b].add(w, &ix, t, countsCPU(w, bsrc))
	}
	ba := &agg{}
	for _, b := range slices.Sorted(maps.Keys(blocks)) {
		ba.merge(blocks[b])
	}
	ha := &agg{}
	for _, i := range byTime(head) {
		w := &head[i]
		t.index(w, &ix)
		ha.add(w, &ix, t, countsCPU(w, hsrc))
	}
	return evaluate(t, ba, ha, service, bv, hv, &o, o.lookQ(), nil)
}

// byTime is the indexes of ws in time order (stable).
func byTime(ws []Window) []int {
	idx := make([]int, len(ws))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return ws[a].Start.Compare(ws[b].Start) })
	return idx
}

// sourceOf is the CPU source of the first window with samples.
func sourceOf(ws []Window) string {
	for _, w := range ws {
		if w.CPU.Samples > 0 {
			return w.CPU.Source
		}
	}
	return ""
}

// countsCPU tells whether a window's CPU counts in a span of source src:
// windows of another source never pool with it.
func countsCPU(w *Window, src string) bool {
	return w.CPU.Samples <= 0 || w.CPU.Source == src
}

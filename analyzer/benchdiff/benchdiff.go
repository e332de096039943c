// Package benchdiff compares Go benchmark results of a base and a head the
// way benchstat does, and then decides what counts as a regression.
//
// Each benchmark × unit becomes a Row. The test is benchmath's: the
// Mann-Whitney U test unless the unit is declared exact, with benchstat's
// warnings kept as data. The delta is the ratio of medians, as benchstat
// prints it; its confidence interval is the Hodges-Lehmann/Moses interval
// of the log-ratio, the interval that belongs to the U test. A time per op
// whose runs spread as only a busy machine spreads them is also tested by
// its fastest runs (stat.FastestShift), and the better of the two tests
// decides, at half the significance level each.
//
// A row is a regression when the change is significant (p < Alpha), in the
// worse direction, and cannot be ruled smaller than MinChange: the end of
// its confidence interval on the worse side reaches MinChange. A change
// whose whole interval lies below MinChange is real but too small to count.
package benchdiff

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/internal/textfmt"
	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// ErrNoCommon is returned when base and head share no benchmark.
var ErrNoCommon = errors.New("no benchmark in common between base and head")

// Thresholds are the tunables of a comparison.
type Thresholds = stat.Thresholds

// DefaultThresholds are benchstat's alpha and confidence and a 5% floor.
var DefaultThresholds = stat.DefaultThresholds

// Summary is one side's center and its confidence interval.
type Summary struct {
	Center float64 `json:"center"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	N      int     `json:"n"`
}

// Row compares one benchmark in one unit.
type Row struct {
	Package string `json:"package,omitempty"`
	// Name is the full benchmark name without the "Benchmark" prefix,
	// as benchstat prints it: "Parse/size=1k-8".
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Better is +1 when higher values are better, -1 when lower are, 0 if unknown.
	Better int     `json:"better"`
	Base   Summary `json:"base"`
	Head   Summary `json:"head"`
	// Delta is Head.Center/Base.Center - 1, or Fastest.Head/Fastest.Base - 1
	// when Fastest is set.
	Delta float64 `json:"delta"`
	// DeltaLo and DeltaHi bound Delta at the Thresholds' confidence.
	DeltaLo float64     `json:"delta_lo"`
	DeltaHi float64     `json:"delta_hi"`
	P       float64     `json:"p"`
	Test    string      `json:"test"`
	Change  stat.Change `json:"change"`
	Warn    []string    `json:"warnings,omitempty"`
	// Fastest is set when the row was decided by its fastest runs (Test
	// "fastest-runs-permutation", on a busy machine): Delta then
	// compares these, not the medians.
	Fastest *Fastest `json:"fastest,omitempty"`
}

// Fastest holds the geometric means of each side's fastest runs.
type Fastest struct {
	Base float64 `json:"base"`
	Head float64 `json:"head"`
}

// BaseName is the benchmark's top-level name with the "Benchmark" prefix
// restored, as its function is named in Go: "BenchmarkParse".
func (r *Row) BaseName() string {
	return "Benchmark" + string(benchfmt.Name(r.Name).Base())
}

// Geomean is the geometric mean of the centers of one unit's rows.
type Geomean struct {
	Unit  string  `json:"unit"`
	Base  float64 `json:"base"`
	Head  float64 `json:"head"`
	Delta float64 `json:"delta"`
	Rows  int     `json:"rows"`
}

// Table is the whole comparison.
type Table struct {
	Rows     []Row     `json:"rows"`
	Geomeans []Geomean `json:"geomeans"`
	// Warnings are about the inputs as a whole: benchmarks on one side
	// only, values that are not finite, runs spread by a busy machine.
	Warnings []string `json:"warnings,omitempty"`
}

type rowKey struct{ pkg, name, unit string }

// Compare compares base with head results. units carries the unit
// metadata both sides declared.
func Compare(base, head []*benchfmt.Result, units benchfmt.UnitMetadataMap, th Thresholds) (*Table, error) {
	bv, border, bdrop := collect(base)
	hv, horder, hdrop := collect(head)
	t := &Table{}
	if w := nonFiniteWarning(bdrop, hdrop); w != "" {
		t.Warnings = append(t.Warnings, w)
	}
	var onlyBase, onlyHead []string
	for _, k := range border {
		if _, ok := hv[k]; !ok {
			onlyBase = append(onlyBase, k.label())
			continue
		}
		t.Rows = append(t.Rows, compareRow(k, bv[k], hv[k], units, th))
	}
	for _, k := range horder {
		if _, ok := bv[k]; !ok {
			onlyHead = append(onlyHead, k.label())
		}
	}
	if len(t.Rows) == 0 {
		return nil, ErrNoCommon
	}
	if len(onlyBase) > 0 {
		t.Warnings = append(t.Warnings, "only in base, not compared: "+strings.Join(dedup(onlyBase), ", "))
	}
	if len(onlyHead) > 0 {
		t.Warnings = append(t.Warnings, "only in head, not compared: "+strings.Join(dedup(onlyHead), ", "))
	}
	if w := busyWarning(t.Rows, bv, hv); w != "" {
		t.Warnings = append(t.Warnings, w)
	}
	t.Geomeans = geomeans(t.Rows)
	return t, nil
}

// busySpread is the ratio of a benchmark's slowest run to its fastest,
// on either side, from which busyWarning says the machine was busy. Runs
// on an idle machine spread a few percent; other work competing for the
// CPU only ever adds time, so a benchmark's runs spreading 1.5x or more
// is that work, not the code.
const busySpread = 1.5

// busy reports whether a row is a time per op whose runs spread
// busySpread or more on either side.
func busy(k rowKey, base, head []float64) bool {
	return k.unit == "sec/op" && math.Max(spreadOf(base), spreadOf(head)) >= busySpread
}

// busyWarning names the benchmarks whose time per op spread busySpread or
// more between runs, with what it means for the comparison.
func busyWarning(rows []Row, bv, hv map[rowKey][]float64) string {
	var named []string
	pkgs := map[string]bool{}
	for _, r := range rows {
		pkgs[r.Package] = true
	}
	for _, r := range rows {
		k := rowKey{pkg: r.Package, name: r.Name, unit: r.Unit}
		if busy(k, bv[k], hv[k]) {
			spread := math.Max(spreadOf(bv[k]), spreadOf(hv[k]))
			name := r.Name // as the table shows it, unless packages share names
			if len(pkgs) > 1 {
				name = k.label()
			}
			named = append(named, fmt.Sprintf("%s %.1f×", name, spread))
		}
	}
	if len(named) == 0 {
		return ""
	}
	return fmt.Sprintf("the runs of %s spread %.1f× or more from fastest to slowest (%s): "+
		"most likely other work on the machine took the CPU from them. They were judged by their fastest runs "+
		"too, which that work touched least, but a change within their spread can still hide. Run where nothing "+
		"else does, or interleave 20 or more rounds a side (docs/compare.md, \"On a busy machine\")",
		textfmt.Plural(len(named), "benchmark"), busySpread, strings.Join(named, ", "))
}

// spreadOf is the slowest value over the fastest, or 1.
func spreadOf(v []float64) float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if len(v) < 2 || lo <= 0 {
		return 1
	}
	return hi / lo
}

func (k rowKey) label() string {
	if k.pkg != "" {
		return k.pkg + "." + k.name
	}
	return k.name
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// collect groups values by package, name and (tidied) unit, keeping the
// order in which rows first appear. NaN and infinite values (a
// b.ReportMetric that divides by zero) are left out and counted in
// dropped: no statistic is defined over them, and a NaN sends the U test
// into unbounded memory.
func collect(rs []*benchfmt.Result) (m map[rowKey][]float64, order []rowKey, dropped *counts) {
	m = map[rowKey][]float64{}
	dropped = &counts{n: map[rowKey]int{}}
	for _, r := range rs {
		pkg := r.GetConfig("pkg")
		for _, v := range r.Values {
			k := rowKey{pkg, r.Name.String(), v.Unit}
			if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
				dropped.add(k)
				continue
			}
			if _, ok := m[k]; !ok {
				order = append(order, k)
			}
			m[k] = append(m[k], v.Value)
		}
	}
	return m, order, dropped
}

// counts counts values per row, in the order rows first appear.
type counts struct {
	n     map[rowKey]int
	order []rowKey
}

func (c *counts) add(k rowKey) {
	if c.n[k] == 0 {
		c.order = append(c.order, k)
	}
	c.n[k]++
}

// nonFiniteWarning says which rows lost values to collect, on which side,
// or "" when none did.
func nonFiniteWarning(base, head *counts) string {
	var parts []string
	for _, k := range base.order {
		parts = append(parts, fmt.Sprintf("%s in base, %d in head", valuesOf(base.n[k], k), head.n[k]))
	}
	for _, k := range head.order {
		if base.n[k] == 0 {
			parts = append(parts, fmt.Sprintf("%s in head", valuesOf(head.n[k], k)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "not finite, not compared: " + strings.Join(parts, "; ")
}

func valuesOf(n int, k rowKey) string {
	return textfmt.Plural(n, "value") + " of " + k.label() + " " + k.unit
}

func compareRow(k rowKey, bvals, hvals []float64, units benchfmt.UnitMetadataMap, th Thresholds) Row {
	bench := benchmath.DefaultThresholds
	bench.CompareAlpha = th.Alpha
	assume := units.GetAssumption(k.unit)
	bs := benchmath.NewSample(append([]float64(nil), bvals...), &bench)
	hs := benchmath.NewSample(append([]float64(nil), hvals...), &bench)
	bsum := assume.Summary(bs, th.Confidence)
	hsum := assume.Summary(hs, th.Confidence)
	cmp := assume.Compare(bs, hs)

	row := Row{
		Package: k.pkg,
		Name:    k.name,
		Unit:    k.unit,
		Better:  better(units, k.unit),
		Base:    Summary{bsum.Center, bsum.Lo, bsum.Hi, len(bvals)},
		Head:    Summary{hsum.Center, hsum.Lo, hsum.Hi, len(hvals)},
		P:       cmp.P,
		Test:    testName(assume),
	}
	for _, w := range append(append(append(bs.Warnings, hs.Warnings...), bsum.Warnings...), hsum.Warnings...) {
		row.Warn = append(row.Warn, w.Error())
	}
	for _, w := range cmp.Warnings {
		row.Warn = append(row.Warn, w.Error())
	}
	row.Delta = ratio(hsum.Center, bsum.Center) - 1
	if assume == benchmath.AssumeExact {
		row.DeltaLo, row.DeltaHi = row.Delta, row.Delta
		if bsum.Center == hsum.Center {
			row.P = 1
		}
	} else {
		row.DeltaLo, row.DeltaHi = stat.RatioCI(bs.Values, hs.Values, th.Confidence)
	}
	if assume != benchmath.AssumeExact && busy(k, bvals, hvals) {
		testFastest(&row, bvals, hvals, th.Confidence)
	}
	row.Change = stat.Classify(row.P, row.Delta, row.DeltaLo, row.DeltaHi, row.Better, th)
	return row
}

// testFastest tests a busy row a second way, by its fastest runs
// (stat.FastestShift), and keeps the test with the smaller p-value, each
// p doubled for the two tests made (Bonferroni): the row's false alarms
// stay within Alpha. The interval stays at the Thresholds' confidence, as
// the U test's does: wider at half the alpha, it would only let fewer
// changes reach MinChange. On a shared 2-CPU runner the fastest runs find 5%
// slowdowns the U test misses (docs/benchmarks.md, "On a busy runner").
func testFastest(row *Row, bvals, hvals []float64, confidence float64) {
	s, ok := stat.FastestShift(bvals, hvals, confidence)
	if !ok {
		return
	}
	pu, pf := math.Min(1, 2*row.P), math.Min(1, 2*s.P)
	if pu <= pf {
		row.P = pu
		return
	}
	row.P, row.Delta, row.DeltaLo, row.DeltaHi, row.Test = pf, s.Delta, s.Lo, s.Hi, fastestTest
	row.Fastest = &Fastest{Base: s.Base, Head: s.Head}
	row.Warn = append(row.Warn, fmt.Sprintf("runs spread %.1f×: the change is that of each side's fastest runs (an eighth, at least 3)",
		math.Max(spreadOf(bvals), spreadOf(hvals))))
}

// fastestTest is Row.Test for a row decided by its fastest runs.
const fastestTest = "fastest-runs-permutation"

func testName(a benchmath.Assumption) string {
	switch a {
	case benchmath.AssumeExact:
		return "exact"
	case benchmath.AssumeNormal:
		return "welch-t"
	}
	return "mann-whitney-u"
}

func ratio(a, b float64) float64 {
	if a == b {
		return 1
	}
	if b == 0 {
		return math.Inf(int(math.Copysign(1, a)))
	}
	return a / b
}

// better is benchfmt's notion of a unit's good direction, extended to
// custom b.ReportMetric units: rates ("/s") are better higher, costs per
// operation or element ("x/op", "ns/elem") better lower.
func better(units benchfmt.UnitMetadataMap, unit string) int {
	if b := units.GetBetter(unit); b != 0 {
		return b
	}
	switch {
	case strings.HasSuffix(unit, "/s"):
		return 1
	case strings.Contains(unit, "/"):
		return -1
	}
	return 0
}

func geomeans(rows []Row) []Geomean {
	type acc struct {
		b, h float64
		n    int
	}
	accs := map[string]*acc{}
	var order []string
	for _, r := range rows {
		if r.Base.Center <= 0 || r.Head.Center <= 0 {
			continue
		}
		a, ok := accs[r.Unit]
		if !ok {
			a = &acc{}
			accs[r.Unit] = a
			order = append(order, r.Unit)
		}
		a.b += math.Log(r.Base.Center)
		a.h += math.Log(r.Head.Center)
		a.n++
	}
	var out []Geomean
	for _, u := range order {
		a := accs[u]
		b, h := math.Exp(a.b/float64(a.n)), math.Exp(a.h/float64(a.n))
		out = append(out, Geomean{Unit: u, Base: b, Head: h, Delta: h/b - 1, Rows: a.n})
	}
	return out
}

// String formats a row in one line, for logs and test failures.
func (r *Row) String() string {
	return fmt.Sprintf("%s %s %+.2f%% [%+.2f%%, %+.2f%%] p=%.3f %v", r.Name, r.Unit, 100*r.Delta, 100*r.DeltaLo, 100*r.DeltaHi, r.P, r.Change)
}

// MarshalJSON writes infinite or undefined deltas (a zero base, too few
// samples for an interval) as null, which JSON can carry.
func (r Row) MarshalJSON() ([]byte, error) {
	type plain Row
	// P and the fields after it are repeated to keep the order of the keys.
	return json.Marshal(struct {
		plain
		P       *float64    `json:"p"`
		Test    string      `json:"test"`
		Change  stat.Change `json:"change"`
		Warn    []string    `json:"warnings,omitempty"`
		Fastest *Fastest    `json:"fastest,omitempty"`
		Delta   *float64    `json:"delta"`
		DeltaLo *float64    `json:"delta_lo"`
		DeltaHi *float64    `json:"delta_hi"`
	}{plain(r), textfmt.JSONNumber(r.P), r.Test, r.Change, r.Warn, r.Fastest, textfmt.JSONNumber(r.Delta), textfmt.JSONNumber(r.DeltaLo), textfmt.JSONNumber(r.DeltaHi)})
}

// MarshalJSON writes a geomean that overflowed (values hundreds of orders
// of magnitude apart) as null.
func (g Geomean) MarshalJSON() ([]byte, error) {
	type plain Geomean
	return json.Marshal(struct {
		plain
		Base  *float64 `json:"base"`
		Head  *float64 `json:"head"`
		Delta *float64 `json:"delta"`
		Rows  int      `json:"rows"` // again, to keep the order of the keys
	}{plain(g), textfmt.JSONNumber(g.Base), textfmt.JSONNumber(g.Head), textfmt.JSONNumber(g.Delta), g.Rows})
}

// MarshalJSON writes an unbounded interval (too few samples) as null.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Center *float64 `json:"center"`
		Lo     *float64 `json:"lo"`
		Hi     *float64 `json:"hi"`
		N      int      `json:"n"`
	}{textfmt.JSONNumber(s.Center), textfmt.JSONNumber(s.Lo), textfmt.JSONNumber(s.Hi), s.N})
}

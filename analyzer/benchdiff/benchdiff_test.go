package benchdiff

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"

	"github.com/perfhound/perfhound/analyzer/internal/memcap"
	"github.com/perfhound/perfhound/analyzer/stat"
)

// results reads `go test -bench` text the way perfhound's input does.
func results(t *testing.T, text string) ([]*benchfmt.Result, benchfmt.UnitMetadataMap) {
	t.Helper()
	r := benchfmt.NewReader(strings.NewReader(text), "test")
	var out []*benchfmt.Result
	for r.Scan() {
		if res, ok := r.Result().(*benchfmt.Result); ok {
			out = append(out, res.Clone())
		}
	}
	return out, r.Units()
}

// runs renders n runs of benchmarks whose ns/op are centre*(1±1% noise).
func runs(n int, seed uint64, centres map[string]float64, extra string) string {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: example.com/p\n")
	for range n {
		for _, name := range []string{"Fast", "Slow", "Rate"} {
			c, ok := centres[name]
			if !ok {
				continue
			}
			v := c * (1 + 0.01*rng.NormFloat64())
			fmt.Fprintf(&b, "Benchmark%s-2\t1000\t%.1f ns/op\t%d B/op\t3 allocs/op%s\n", name, v, 64, extra)
		}
	}
	return b.String()
}

func TestCompareFlagsBeyondNoiseAndThreshold(t *testing.T) {
	base, units := results(t, runs(10, 1, map[string]float64{"Fast": 1000, "Slow": 1000}, ""))
	head, _ := results(t, runs(10, 2, map[string]float64{"Fast": 1000, "Slow": 1200}, ""))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Row{}
	for _, r := range tab.Rows {
		got[r.Name+" "+r.Unit] = r
	}
	if r := got["Slow-2 sec/op"]; r.Change != stat.Regression || r.Delta < 0.15 || r.DeltaLo < 0.1 || r.Package != "example.com/p" {
		t.Errorf("Slow: %v, want a ~20%% regression", r.String())
	}
	if r := got["Fast-2 sec/op"]; r.Change != stat.Unchanged {
		t.Errorf("Fast: %v, want unchanged", r.String())
	}
	if r := got["Slow-2 allocs/op"]; r.Change != stat.Unchanged || r.Delta != 0 {
		t.Errorf("allocs/op: %v, want unchanged", r.String())
	}
	if len(tab.Geomeans) != 3 || tab.Geomeans[0].Unit != "sec/op" {
		t.Errorf("geomeans = %+v", tab.Geomeans)
	}
	if r := got["Slow-2 sec/op"]; r.BaseName() != "BenchmarkSlow" {
		t.Errorf("BaseName = %q", r.BaseName())
	}
}

// A real but small change (2%) is significant with 10 runs at 1% noise,
// yet its interval stays under the 5% threshold: not flagged.
func TestSmallRealChangeIsNotARegression(t *testing.T) {
	base, units := results(t, runs(10, 3, map[string]float64{"Slow": 1000}, ""))
	head, _ := results(t, runs(10, 4, map[string]float64{"Slow": 1020}, ""))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	r := tab.Rows[0]
	if r.Change != stat.Unchanged || r.DeltaHi >= 0.05 {
		t.Errorf("2%% change: %v, want unchanged with interval below 5%%", r.String())
	}
}

func TestCustomUnitsAndDirections(t *testing.T) {
	base, units := results(t, runs(10, 5, map[string]float64{"Rate": 1000}, "\t100 MB/s\t7 widgets"))
	head, _ := results(t, runs(10, 6, map[string]float64{"Rate": 1000}, "\t80 MB/s\t9 widgets"))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tab.Rows {
		switch r.Unit {
		case "B/s": // throughput fell: worse
			if r.Change != stat.Regression {
				t.Errorf("B/s: %v, want regression", r.String())
			}
		case "widgets": // no known direction
			if r.Change != stat.Changed {
				t.Errorf("widgets: %v, want changed", r.String())
			}
		}
	}
}

func TestNoCommonBenchmark(t *testing.T) {
	base, units := results(t, runs(3, 1, map[string]float64{"Fast": 1}, ""))
	head, _ := results(t, runs(3, 1, map[string]float64{"Slow": 1}, ""))
	if _, err := Compare(base, head, units, stat.DefaultThresholds); err != ErrNoCommon {
		t.Fatalf("err = %v, want ErrNoCommon", err)
	}
}

func TestFewRunsWarnAndMarshal(t *testing.T) {
	base, units := results(t, runs(2, 1, map[string]float64{"Fast": 1000}, ""))
	head, _ := results(t, runs(2, 2, map[string]float64{"Fast": 2000, "Slow": 5}, ""))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows[0].Warn) == 0 {
		t.Error("2 runs a side gave no warning")
	}
	if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "only in head") {
		t.Errorf("warnings = %q", tab.Warnings)
	}
	b, err := json.Marshal(tab) // unbounded intervals must not break JSON
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delta_lo":null`) {
		t.Errorf("unbounded interval not null in %s", b)
	}
}

// NaN and infinite values (a b.ReportMetric dividing by zero) never reach
// the statistics: before, a NaN made the U test take all memory. The
// comparison runs in a child capped at +1 GiB.
func TestCompareDropsNonFiniteValues(t *testing.T) {
	if !memcap.Child(t, 1<<30) {
		return
	}
	base, units := results(t, runs(6, 1, map[string]float64{"Fast": 1000}, "\tNaN hits/op\t+Inf misses/op\t0.5 ratio/op"))
	head, _ := results(t, runs(6, 2, map[string]float64{"Fast": 1000}, "\tNaN hits/op\t-Inf misses/op\t0.5 ratio/op"))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	var units2 []string
	for _, r := range tab.Rows {
		units2 = append(units2, r.Unit)
	}
	if got := strings.Join(units2, " "); got != "sec/op B/op allocs/op ratio/op" {
		t.Errorf("rows in units %s, want the finite ones only", got)
	}
	want := "not finite, not compared: 6 values of example.com/p.Fast-2 hits/op in base, 6 in head; " +
		"6 values of example.com/p.Fast-2 misses/op in base, 6 in head"
	if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], want) {
		t.Errorf("warnings = %q, want one saying %q", tab.Warnings, want)
	}
	if _, err := json.Marshal(tab); err != nil {
		t.Error(err)
	}
}

// Finite values far apart make infinite ratios and geomeans; JSON writes
// them as null instead of failing.
func TestExtremeValuesMarshal(t *testing.T) {
	var b, h strings.Builder
	for range 6 {
		b.WriteString("BenchmarkX-2 1 1e-300 x/op\nBenchmarkY-2 1 1e-300 x/op\n")
		h.WriteString("BenchmarkX-2 1 1e300 x/op\nBenchmarkY-2 1 1e300 x/op\n")
	}
	base, units := results(t, b.String())
	head, _ := results(t, h.String())
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Geomeans) != 1 || !math.IsInf(tab.Geomeans[0].Delta, 1) {
		t.Fatalf("geomeans = %+v, want an infinite delta", tab.Geomeans)
	}
	out, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"base":1.0000000000000237e-300,"head":9.999999999999763e+299,"delta":null,"rows":2}`) {
		t.Errorf("geomean delta not null in %s", out)
	}
}

// TestBusyMachineWarning names the benchmarks whose runs spread 1.5x or
// more (other work took the CPU: it only ever adds time), and says
// nothing of runs within a few percent of each other.
func TestBusyMachineWarning(t *testing.T) {
	base, units := results(t, runs(10, 1, map[string]float64{"Fast": 1000, "Slow": 1000}, ""))
	head, _ := results(t, runs(10, 2, map[string]float64{"Fast": 1000, "Slow": 1000}, ""))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range tab.Warnings {
		if strings.Contains(w, "busy") {
			t.Errorf("quiet runs: %q", w)
		}
	}
	// One run of Slow's head took 1.8 times as long: a job beside it.
	lines := strings.Split(runs(10, 2, map[string]float64{"Fast": 1000, "Slow": 1000}, ""), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "BenchmarkSlow-2") {
			f := strings.Fields(l)
			lines[i] = strings.Replace(l, f[2], "1800.0", 1)
			break
		}
	}
	head, _ = results(t, strings.Join(lines, "\n"))
	if tab, err = Compare(base, head, units, stat.DefaultThresholds); err != nil {
		t.Fatal(err)
	}
	var said string
	for _, w := range tab.Warnings {
		if strings.Contains(w, "busy") {
			said = w
		}
	}
	if !strings.Contains(said, "Slow-2 1.8×") || strings.Contains(said, "Fast-2") {
		t.Errorf("one run 1.8× the others: warning %q, want Slow-2 named alone", said)
	}
}

// busyRuns renders n runs of BenchmarkBusy: a third of them clean
// (centre ± 0.5%), the rest slowed 1.3× to 2.5× by other work, interleaved
// as a shared runner's rounds would be.
func busyRuns(n int, seed uint64, centre float64) string {
	rng := rand.New(rand.NewPCG(seed, 9))
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: example.com/p\n")
	for i := range n {
		v := centre * (1 + 0.005*rng.NormFloat64())
		if i%3 != 0 {
			v *= 1.3 + 1.2*rng.Float64()
		}
		fmt.Fprintf(&b, "BenchmarkBusy-2\t1000\t%.1f ns/op\n", v)
		fmt.Fprintf(&b, "BenchmarkFast-2\t1000\t%.1f ns/op\n", 1000*(1+0.01*rng.NormFloat64()))
	}
	return b.String()
}

// A busy machine's benchmark 5% slower is found by its fastest runs, where
// the U test over all of them sees noise; its quiet neighbour keeps the U
// test and its own p-value; with too few runs the U test alone decides.
func TestBusyRowJudgedByFastestRuns(t *testing.T) {
	base, units := results(t, busyRuns(30, 1, 1000))
	head, _ := results(t, busyRuns(30, 2, 1050))
	tab, err := Compare(base, head, units, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]Row{}
	for _, r := range tab.Rows {
		rows[r.Name] = r
	}
	busy, fast := rows["Busy-2"], rows["Fast-2"]
	if busy.Test != fastestTest || busy.Change != stat.Regression || busy.Fastest == nil {
		t.Fatalf("busy row %v, test %s, fastest %v: want a regression by its fastest runs", &busy, busy.Test, busy.Fastest)
	}
	if d := busy.Fastest.Head/busy.Fastest.Base - 1; math.Abs(d-busy.Delta) > 1e-9 || d < 0.03 || d > 0.07 {
		t.Errorf("busy row's delta %.4f, its fastest runs' %.4f: want the same, about 0.05", busy.Delta, d)
	}
	if len(busy.Warn) == 0 || !strings.Contains(busy.Warn[len(busy.Warn)-1], "fastest runs") {
		t.Errorf("busy row's warnings %q do not say how it was judged", busy.Warn)
	}
	if fast.Test != "mann-whitney-u" || fast.Fastest != nil {
		t.Errorf("quiet row judged by %s", fast.Test)
	}
	// Two tests were made: the row's p is the smaller doubled, so never
	// below half the U test's own, nor the fastest runs' own.
	th := benchmath.DefaultThresholds
	u := benchmath.AssumeNothing.Compare(benchmath.NewSample(values(base, "Busy-2"), &th), benchmath.NewSample(values(head, "Busy-2"), &th))
	f, _ := stat.FastestShift(values(base, "Busy-2"), values(head, "Busy-2"), 0.95)
	if want := math.Min(1, 2*math.Min(u.P, f.P)); math.Abs(busy.P-want) > 1e-12 {
		t.Errorf("busy row's p %v, want twice the smaller of the U test's %v and the fastest runs' %v", busy.P, u.P, f.P)
	}

	// Seven runs a side: too few for the fastest runs to say much.
	base, _ = results(t, busyRuns(7, 1, 1000))
	head, _ = results(t, busyRuns(7, 2, 1050))
	if tab, err = Compare(base, head, units, stat.DefaultThresholds); err != nil {
		t.Fatal(err)
	}
	for _, r := range tab.Rows {
		if r.Test != "mann-whitney-u" {
			t.Errorf("7 runs a side: %s judged by %s", r.Name, r.Test)
		}
	}
}

func values(rs []*benchfmt.Result, name string) []float64 {
	var out []float64
	for _, r := range rs {
		if r.Name.String() == name {
			out = append(out, r.Values[0].Value)
		}
	}
	return out
}

package regress

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

var deployAt = t0.Add(40 * time.Minute)

// A 10% slowdown of a 10% function (main.parse, a leaf) is found, and
// blamed first, by the time the version settles; how soon depends on the
// service's CPU (doc.go's table: at 19 Hz, 1 core gives too few samples
// for most deploys within 30 minutes, 2 cores most, 4 cores all, about
// two thirds within 10 minutes). The bounds are what these seeds give,
// with a margin.
func TestSlowdownFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cores   float64
		within  time.Duration
		atLeast int
	}{
		{2, 31 * time.Minute, 8},
		{4, 31 * time.Minute, 9},
		{4, 10 * time.Minute, 4},
	} {
		found := 0
		var times []time.Duration
		for seed := uint64(1); seed <= 10; seed++ {
			base := newSim(seed, tc.cores, 19, webService(30))
			raised, _ := run(DefaultOptions(), deploy(seed, base, base.clone(seed).slow("main.parse", 0.10)))
			if len(raised) == 0 {
				continue
			}
			f := raised[0]
			ttd := f.DetectedAt.Sub(deployAt)
			times = append(times, ttd)
			if f.Function == "main.parse" && ttd <= tc.within {
				found++
			}
			for _, g := range raised[1:] {
				t.Errorf("%.0f cores seed %d: a second finding, %s %+.1f%%", tc.cores, seed, g.Function, g.ChangePct)
			}
		}
		t.Logf("%.0f cores: main.parse first within %v in %d of 10 deploys (times %v)", tc.cores, tc.within, found, times)
		if found < tc.atLeast {
			t.Errorf("%.0f cores: found in %d of 10 deploys within %v, want %d", tc.cores, found, tc.within, tc.atLeast)
		}
	}
}

// A finding says what the issue asks: the function, its path, own and
// cumulative change with an interval, the p-value, both versions'
// verdicts and ranges, evidence; and it encodes to JSON.
func TestFindingFields(t *testing.T) {
	base := newSim(7, 4, 19, webService(30))
	raised, _ := run(DefaultOptions(), deploy(7, base, base.clone(7).slow("main.parse", 0.2)))
	if len(raised) != 1 {
		t.Fatalf("%d findings, want 1: %+v", len(raised), raised)
	}
	f := raised[0]
	if f.Kind != KindVersion || f.Service != "web" || f.Function != "main.parse" || f.BaseVersion != "v1" || f.HeadVersion != "v2" || f.Unit != UnitShare {
		t.Errorf("finding %+v", f)
	}
	wantPath := []string{"runtime.goexit", "net/http.(*conn).serve", "main.handler", "main.parse"}
	if !slices.Equal(f.Path, wantPath) {
		t.Errorf("path %v, want %v", f.Path, wantPath)
	}
	// 20% slower: the change's interval holds it, and the shares are
	// near 10% and 10%·1.2/1.02.
	if !(f.CILow < 20 && 20 < f.CIHigh && f.CILow < f.ChangePct && f.ChangePct < f.CIHigh) || f.Confidence != 0.95 {
		t.Errorf("change %+.1f%% (%+.1f..%+.1f)", f.ChangePct, f.CILow, f.CIHigh)
	}
	if f.Cum.Base < 0.09 || f.Cum.Base > 0.11 || f.Cum.Head < 0.105 || f.Cum.Head > 0.13 || f.Own != f.Cum {
		t.Errorf("own %+v cum %+v", f.Own, f.Cum)
	}
	if !(f.PValue < 1e-4) || f.ID == "" || len(f.Evidence) < 3 || !strings.Contains(f.Evidence[0], "main.parse's cumulative share of the service's CPU (it and its callees) rose from") {
		t.Errorf("p %v id %q evidence %q", f.PValue, f.ID, f.Evidence)
	}
	if f.Base.Version != "v1" || f.Head.Version != "v2" || !f.Head.From.Equal(deployAt.Add(20*time.Second)) || f.Head.To != f.DetectedAt ||
		f.Base.To != deployAt || f.Base.From != t0.Add(5*time.Minute) || f.Base.Windows != 210 || f.Head.Samples <= 0 {
		t.Errorf("ranges %+v %+v detected %v", f.Base, f.Head, f.DetectedAt)
	}
	if f.BaseVerdict.Class != verdict.ClassCPU || f.HeadVerdict.Class != verdict.ClassCPU || f.HeadVerdict.Load[verdict.ClassCPU] != 4 {
		t.Errorf("verdicts %+v %+v", f.BaseVerdict, f.HeadVerdict)
	}
	if _, err := json.Marshal(f); err != nil {
		t.Error(err)
	}
}

// Null deploys: the same code as a new version raises at most one
// finding in 100 deploys (the false discovery rate is 1% over a
// deployment's looks).
func TestNullDeploys(t *testing.T) {
	t.Parallel()
	var false_ []string
	for seed := uint64(1); seed <= 100; seed++ {
		cores := []float64{0.25, 0.5, 1, 2}[seed%4]
		base := newSim(seed, cores, 19, webService(30))
		raised, _ := run(DefaultOptions(), deploy(seed+100, base, base))
		for _, f := range raised {
			false_ = append(false_, f.Function)
		}
	}
	t.Logf("%d false findings in 100 null deploys: %v", len(false_), false_)
	if len(false_) > 1 {
		t.Errorf("%d false findings in 100 null deploys: %v", len(false_), false_)
	}
}

// Load changes: the same code at 1.5× and 0.5× the load. At 0.5×, the
// fixed-cost background loop's share nearly doubles against the typical
// function's; that is not a regression because its CPU per second did
// not rise (the load floor).
func TestLoadChanges(t *testing.T) {
	t.Parallel()
	for _, load := range []float64{1.5, 0.5} {
		for seed := uint64(1); seed <= 20; seed++ {
			base := newSim(seed, 2, 19, webService(30))
			ws := stream{service: "web", start: t0, base: base.clone(seed), head: base.clone(seed + 1000),
				baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: load}.windows()
			raised, _ := run(DefaultOptions(), ws)
			for _, f := range raised {
				t.Errorf("load ×%.1f seed %d: %s %+.1f%% (%v)", load, seed, f.Function, f.ChangePct, f.Evidence)
			}
		}
	}
	// What holds the background loop back at 0.5×: its share rose by
	// three quarters, the load fell, and it was tested against its base
	// CPU per second.
	base := newSim(3, 2, 19, webService(30))
	ws := stream{service: "web", start: t0, base: base.clone(3), head: base.clone(1003),
		baseV: "v1", headV: "v2", baseFor: 35 * time.Minute, headFor: 30 * time.Minute, hLoad: 0.5}.windows()
	c, err := Compare(ws[:210], ws[210:], VersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bg := function(t, c, "main.background", MeasureCum)
	if !c.LoadFell || c.Load > 0.6 || bg.Head < 1.6*bg.Base || bg.Outcome != OutcomeNotSignificant || bg.Expected < 1.8*bg.Base {
		t.Errorf("load %.2f fell %v; background %+v", c.Load, c.LoadFell, bg)
	}
	// A slowdown under a rising load is still found: the floor holds
	// only when the load falls.
	head := base.clone(3).slow("main.parse", 0.3)
	ws = stream{service: "web", start: t0, base: base.clone(3), head: head.clone(1003),
		baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: 1.5}.windows()
	if raised, _ := run(DefaultOptions(), ws); len(raised) != 1 || raised[0].Function != "main.parse" {
		t.Errorf("a 30%% slowdown under 1.5× load: %+v", raised)
	}
}

// function is a function's test of a measure in a comparison.
func function(t *testing.T, c *Comparison, name string, m Measure) FunctionTest {
	t.Helper()
	for _, f := range c.Functions {
		if f.Function == name && f.Measure == m {
			return f
		}
	}
	t.Fatalf("%s's %s cost not tested", name, m)
	return FunctionTest{}
}

// Cost shifts are not regressions: a rename, an extracted helper, work
// moved into an existing callee, or between siblings, with the
// service's total unchanged.
func TestCostShifts(t *testing.T) {
	t.Parallel()
	shifts := []struct {
		name  string
		head  func(*sim) *sim
		risen string // the function whose cost rose
		from  string // where the cost came from
	}{
		{"rename", func(s *sim) *sim { return s.rename("main.parse", "main.parseFast") }, "main.parseFast", "main.parse"},
		{"extracted helper", func(s *sim) *sim { return s.extract("main.compute", "main.computeStep", 0.8) }, "main.computeStep", "main.compute"},
		{"into an existing callee", func(s *sim) *sim { return s.move("main.compute", "main.helperA", 5) }, "main.helperA", "main.compute"},
		{"between siblings", func(s *sim) *sim { return s.move("main.parse", "main.render", 4) }, "main.render", "main.parse"},
	}
	for _, sh := range shifts {
		n := 0
		for seed := uint64(1); seed <= 20; seed++ {
			base := newSim(seed, 4, 19, webService(30))
			raised, _ := run(DefaultOptions(), deploy(seed, base, sh.head(base.clone(seed))))
			for _, f := range raised {
				n++
				t.Logf("%s seed %d: %s %+.1f%%", sh.name, seed, f.Function, f.ChangePct)
			}
		}
		if n > 1 {
			t.Errorf("%s: %d findings in 20 deploys", sh.name, n)
		}
		// The rule at work: the risen function is a cost shift from where
		// its cost came from.
		base := newSim(5, 4, 19, webService(30))
		ws := deploy(5, base, sh.head(base.clone(5)))
		c, err := Compare(ws[30:240], ws[242:], VersionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if f := function(t, c, sh.risen, MeasureCum); f.Outcome != OutcomeShift || !slices.Contains(f.Related, sh.from) {
			t.Errorf("%s: %s is %q from %v, want a cost shift from %s", sh.name, sh.risen, f.Outcome, f.Related, sh.from)
		}
	}
}

// Thousands of functions at once: 2,000 functions, most of them tiny, a
// null deploy: nothing.
func TestManyFunctionsNull(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 5; seed++ {
		base := newSim(seed, 2, 19, flatService(2000, seed))
		raised, _ := run(DefaultOptions(), deploy(seed, base, base))
		for _, f := range raised {
			t.Errorf("seed %d: %s %+.1f%% p=%g", seed, f.Function, f.ChangePct, f.PValue)
		}
	}
}

// A tiny function that doubles (0.43% of the CPU) is below MinShare:
// not tested, not a finding; with MinShare lowered it is found in most
// deploys.
func TestTinyFunction(t *testing.T) {
	t.Parallel()
	lowered := DefaultOptions()
	lowered.Version.MinShare = 0.002
	lowered.Version.MinAbsChange = 0.0001
	found := 0
	for seed := uint64(1); seed <= 10; seed++ {
		base := newSim(seed, 4, 19, webService(30))
		ws := deploy(seed, base, base.clone(seed).slow("main.tail004", 1.0))
		if raised, _ := run(DefaultOptions(), ws); len(raised) != 0 {
			t.Errorf("seed %d: tiny function: %+v", seed, raised)
		}
		if raised, _ := run(lowered, ws); len(raised) == 1 && raised[0].Function == "main.tail004" {
			found++
		}
	}
	if found < 8 {
		t.Errorf("with MinShare 0.2%%, found in %d of 10 deploys", found)
	}
}

// Too few samples: a service using 0.05 of a core gives ~57 samples a
// minute; the looks wait (no finding, however large the change) until
// the head holds MinSamples, then find it.
func TestTooFewSamples(t *testing.T) {
	base := newSim(4, 0.05, 19, webService(30))
	ws := deploy(4, base, base.clone(4).slow("main.parse", 2.0))
	c, err := Compare(ws[:240], ws[242:248], VersionOptions{})
	if !errors.Is(err, ErrTooFewSamples) || c != nil {
		t.Errorf("a minute of head: %v, %v", c, err)
	}
	raised, _ := run(DefaultOptions(), ws)
	if len(raised) == 0 || raised[0].Function != "main.parse" {
		t.Fatalf("never found: %+v", raised)
	}
	// 200 samples take 3.5 minutes: the 5-minute look is the first.
	if at := raised[0].DetectedAt.Sub(deployAt); at < 5*time.Minute || raised[0].Head.Samples < 200 {
		t.Errorf("found at %v over %v samples, before the head had 200", at, raised[0].Head.Samples)
	}
}

// A restart of the same version is the same version: no version finding,
// however its profile moves (a move that holds is a drift, trends' job).
func TestRestartSameVersion(t *testing.T) {
	base := newSim(6, 2, 19, webService(30))
	slower := base.clone(6).slow("main.parse", 0.5)
	var ws []Window
	ws = append(ws, stream{service: "web", start: t0, base: base.clone(6), head: slower.clone(7), baseV: "v1", headV: "v1",
		baseFor: 40 * time.Minute, headFor: 31 * time.Minute}.windows()...)
	if raised := ofKind(KindVersion, ws); len(raised) != 0 {
		t.Errorf("same version: %+v", raised)
	}
	// With a gap (the process restarting) too, and after a deploy.
	gap := slices.Clone(ws[:240])
	for _, w := range ws[240:] {
		w.Start = w.Start.Add(2 * time.Minute)
		gap = append(gap, w)
	}
	if raised := ofKind(KindVersion, gap); len(raised) != 0 {
		t.Errorf("same version after a gap: %+v", raised)
	}
}

// ofKind is what the default detector raises of kind k over ws.
func ofKind(k Kind, ws []Window) []Finding {
	raised, _ := run(DefaultOptions(), ws)
	return slices.DeleteFunc(raised, func(f Finding) bool { return f.Kind != k })
}

// A later version that no longer has the regression resolves it; one
// that keeps it does not. A rollback to the base version resolves it.
func TestResolved(t *testing.T) {
	base := newSim(8, 4, 19, webService(30))
	slow := base.clone(8).slow("main.parse", 0.3)
	v12 := deploy(8, base, slow)
	later := func(s *sim, version string) []Window {
		return stream{service: "web", start: deployAt.Add(31 * time.Minute), base: s.clone(9), head: s.clone(9),
			baseV: version, headV: version, baseFor: 31 * time.Minute}.windows()
	}
	for _, tc := range []struct {
		name     string
		next     []Window
		resolved bool
		by       string
	}{
		{"fixed in v3", later(base, "v3"), true, "v3"},
		{"kept in v3", later(slow, "v3"), false, ""},
		{"rollback to v1", later(base, "v1"), true, "v1"},
	} {
		raised, resolved := run(DefaultOptions(), append(slices.Clone(v12), tc.next...))
		var found []string
		for _, f := range raised {
			found = append(found, f.HeadVersion+":"+f.Function)
		}
		if found[0] != "v2:main.parse" {
			t.Fatalf("%s: raised %v", tc.name, found)
		}
		if !tc.resolved {
			if len(resolved) != 0 {
				t.Errorf("%s: resolved %+v", tc.name, resolved)
			}
			continue
		}
		if len(resolved) != 1 || resolved[0].ID != raised[0].ID || !resolved[0].Resolved || resolved[0].ResolvedBy != tc.by ||
			resolved[0].ResolvedAt.IsZero() || !strings.HasPrefix(resolved[0].Evidence[len(resolved[0].Evidence)-1], "Resolved by "+tc.by) {
			t.Errorf("%s: resolved %+v", tc.name, resolved)
		}
	}
}

// The deepest function is blamed: a slowdown in main.handler's own code
// is main.handler's (its own code's test finds it: its cumulative cost
// rose 2%), not its callers'; one in a callee is the callee's, not
// main.handler's or main.compute's, whose cumulative cost rose as much.
func TestBlameDeepest(t *testing.T) {
	for _, tc := range []struct {
		slow, want string
		measure    Measure
		explains   string // an ancestor it explains
	}{
		{"main.handler", "main.handler", MeasureOwn, ""},
		{"crypto/sha256.block", "crypto/sha256.block", MeasureCum, "main.compute"},
		{"main.compute", "main.compute", MeasureOwn, ""},
	} {
		base := newSim(11, 4, 19, webService(30))
		ws := deploy(11, base, base.clone(11).slow(tc.slow, 0.5))
		raised, _ := run(DefaultOptions(), ws)
		if len(raised) != 1 || raised[0].Function != tc.want {
			var got []string
			for _, f := range raised {
				got = append(got, f.Function)
			}
			t.Errorf("%s slower: found %v, want %s alone", tc.slow, got, tc.want)
			continue
		}
		if !strings.Contains(raised[0].Evidence[0], map[Measure]string{MeasureCum: "cumulative", MeasureOwn: "own code"}[tc.measure]) {
			t.Errorf("%s: evidence %q", tc.want, raised[0].Evidence[0])
		}
		if tc.explains == "" {
			continue
		}
		c, err := Compare(ws[30:240], ws[242:], VersionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a := function(t, c, tc.explains, MeasureCum); a.Outcome != OutcomeExplained || !slices.Equal(a.Related, []string{tc.want}) ||
			!strings.Contains(strings.Join(c.Findings[0].Evidence, " "), "It accounts for the rise of its callers "+tc.explains) {
			t.Errorf("%s: %s's test %+v", tc.want, tc.explains, a)
		}
	}
}

// A new callee (work the base never ran) is blamed on its caller, as
// compare blames new call sites, with the callee named.
func TestNewCallee(t *testing.T) {
	base := newSim(12, 4, 19, webService(30))
	head := base.clone(12)
	head.nodes = append(head.nodes, simNode{name: "main.audit", parent: 2, perReq: 4})
	raised, _ := run(DefaultOptions(), deploy(12, base, head))
	if len(raised) != 1 || raised[0].Function != "main.handler" || !strings.Contains(strings.Join(raised[0].Evidence, " "), "main.audit") {
		t.Errorf("new callee: %+v", raised)
	}
}

// Windows of different CPU sources never pool: a base profiled by eBPF
// and a head by the Go endpoint are not compared.
func TestSourcesDoNotPool(t *testing.T) {
	base := newSim(13, 4, 19, webService(30))
	ws := deploy(13, base, base.clone(13).slow("main.parse", 0.5))
	for i := range ws[240:] {
		ws[240+i].CPU.Source = "pprof"
	}
	if raised, _ := run(DefaultOptions(), ws); len(raised) != 0 {
		t.Errorf("ebpf against pprof: %+v", raised)
	}
	if _, err := Compare(ws[:240], ws[240:], VersionOptions{}); !errors.Is(err, ErrMixed) {
		t.Errorf("Compare: %v", err)
	}
}

func TestCompareErrors(t *testing.T) {
	base := newSim(14, 1, 19, webService(10))
	ws := deploy(14, base, base)
	if _, err := Compare(nil, ws, VersionOptions{}); !errors.Is(err, ErrNoWindows) {
		t.Errorf("no base: %v", err)
	}
	mixed := slices.Clone(ws[:10])
	mixed[3].Version = "v0"
	if _, err := Compare(mixed, ws[250:], VersionOptions{}); !errors.Is(err, ErrMixed) {
		t.Errorf("two versions in the base: %v", err)
	}
	other := slices.Clone(ws[250:])
	other[0].Service = "api"
	if _, err := Compare(ws[:240], other, VersionOptions{}); !errors.Is(err, ErrMixed) {
		t.Errorf("two services: %v", err)
	}
}

// Per request: with request counts on every window, a function's cost
// is CPU seconds per request; a load change (0.5×) is still no finding,
// and a slowdown is found in that unit.
func TestPerRequest(t *testing.T) {
	base := newSim(15, 2, 19, webService(30))
	base.reqRate = 500
	ws := stream{service: "web", start: t0, base: base.clone(15), head: base.clone(1015),
		baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: 0.5}.windows()
	if raised, _ := run(DefaultOptions(), ws); len(raised) != 0 {
		t.Errorf("0.5× load per request: %+v", raised)
	}
	raised, _ := run(DefaultOptions(), deploy(15, base, base.clone(15).slow("main.parse", 0.3)))
	if len(raised) != 1 || raised[0].Function != "main.parse" || raised[0].Unit != UnitPerRequest {
		t.Fatalf("per request: %+v", raised)
	}
	// 2 cores over 500 requests a second: 4 ms a request, a tenth of it
	// in main.parse.
	if f := raised[0]; f.Cum.Base < 0.00035 || f.Cum.Base > 0.00045 || f.Cum.Head < 1.2*f.Cum.Base {
		t.Errorf("costs %+v", f.Cum)
	}
}

// A function whose callees are shared with others is still measured: by
// name, every handler's hashing through one main.work is under each of
// them, and the functions outside are many and small (the kernel's and
// net/http's, under the 0.5% that measures c each), too little to measure
// it against (the live deploy test's service).
func TestSharedCallees(t *testing.T) {
	nodes := []simNode{
		{name: "runtime.goexit", parent: -1},
		{name: "net/http.(*conn).serve", parent: 0},
		{name: "main.handler", parent: 1, perReq: 1},
		{name: "main.decode", parent: 2, perReq: 0.5},
		{name: "main.work", parent: 3},
		{name: "crypto/sha256.block", parent: 4, perReq: 14},
		{name: "main.score", parent: 2, perReq: 0.5},
		{name: "main.work", parent: 6},
		{name: "crypto/sha256.block", parent: 7, perReq: 36},
		{name: "main.render", parent: 2, perReq: 0.5},
		{name: "main.work", parent: 9},
		{name: "crypto/sha256.block", parent: 10, perReq: 22},
	}
	for i := range 60 {
		nodes = append(nodes, simNode{name: fmt.Sprintf("kernel.fn%02d", i), parent: 1, perReq: 0.425})
	}
	base := newSim(11, 1, 99, nodes)
	head := base.clone(11)
	head.nodes[9].perReq = 10 // render's own code, 0.5% → 10% of the CPU
	raised, _ := run(DefaultOptions(), deploy(11, base, head))
	if len(raised) == 0 || raised[0].Kind != KindVersion || raised[0].Function != "main.render" {
		t.Fatalf("main.render's own code 20 times slower (23%% → 31%% of the CPU) over shared callees: %+v", raised)
	}
	if at := raised[0].DetectedAt.Sub(t0.Add(40 * time.Minute)); at > 5*time.Minute {
		t.Errorf("found %v after the deploy", at)
	}

	// The same service with almost nothing outside the handlers: every
	// function is under main.render by name but decode's and score's own
	// code and a few small ones (3% of the CPU), too little to measure
	// render's cumulative cost against; the rest of the service but
	// itself is the reference then, so that its cumulative cost is still
	// tested. render hashes twice as much, its own code unchanged: its
	// subtree grew uniformly while the rest moved together, which more
	// requests for render would do too (a mix change, not a regression).
	nodes = nodes[:20]
	for i := 12; i < 20; i++ {
		nodes[i].perReq = 0.2
	}
	base = newSim(12, 1, 99, nodes)
	head = base.clone(12)
	head.nodes[11].perReq = 44 // render's hashing, 22% → 44% of the base's CPU
	ws := deploy(12, base, head)
	c, err := Compare(ws[:240], ws[300:], VersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	render := function(t, c, "main.render", MeasureCum)
	if render.ChangePct < 40 || render.Outcome != OutcomeUniform {
		t.Errorf("main.render's cumulative cost over shared callees: %+v, want a rise of about 50%% that grew uniformly", render)
	}
	if raised, _ := run(DefaultOptions(), ws); len(raised) != 0 {
		t.Errorf("a subtree grown uniformly raised %+v", raised)
	}
}

// TestLoadChangeOneSubtree: a service whose per-request work sits under
// one caller (net/http.(*conn).serve, 80% of its CPU) but for the GC's
// (5%), and whose fixed costs (a background loop, a ticker, sysmon) are
// the rest. At 1.5× the load every per-request function's share rises
// together; the server's cumulative share, measured against what is
// outside it (mostly the fixed costs, whose share fell), looked like it
// rose by a third. Its subtree grew uniformly, no code of it slower, and
// the rest moved apart (the GC's share rose, the fixed costs' fell): no
// finding. A slowdown of one function's own code under the same load
// change is still found, on that function.
func TestLoadChangeOneSubtree(t *testing.T) {
	t.Parallel()
	nodes := []simNode{
		{name: "runtime.goexit", parent: -1},
		{name: "net/http.(*conn).serve", parent: 0, perReq: 4},
		{name: "main.handler", parent: 1, perReq: 4},
		{name: "main.parse", parent: 2, perReq: 12},
		{name: "main.compute", parent: 2, perReq: 20},
		{name: "crypto/sha256.block", parent: 4, perReq: 15},
		{name: "main.render", parent: 2, perReq: 10},
		{name: "runtime.gcBgMarkWorker", parent: 0, perReq: 5},
		{name: "main.background", parent: 0, fixed: 6},
		{name: "main.ticker", parent: 0, fixed: 5},
		{name: "runtime.sysmon", parent: 0, fixed: 4},
	}
	for i := range 20 {
		nodes = append(nodes, simNode{name: fmt.Sprintf("main.tail%02d", i), parent: 2, perReq: 0.5})
	}
	for seed := uint64(1); seed <= 10; seed++ {
		base := newSim(seed, 2, 19, nodes)
		ws := stream{service: "web", start: t0, base: base.clone(seed), head: base.clone(seed + 1000),
			baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: 1.5}.windows()
		raised, _ := run(DefaultOptions(), ws)
		for _, f := range raised {
			t.Errorf("load ×1.5 seed %d: %s %+.1f%% (%v)", seed, f.Function, f.ChangePct, f.Evidence)
		}
	}
	// Per request (the windows count requests) the server's cost held,
	// while the fixed costs' per request fell by a third.
	for seed := uint64(1); seed <= 10; seed++ {
		base := newSim(seed, 0.5, 19, nodes)
		base.reqRate = 50
		ws := stream{service: "web", start: t0, base: base.clone(seed), head: base.clone(seed + 1000),
			baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: 1.5}.windows()
		raised, _ := run(DefaultOptions(), ws)
		for _, f := range raised {
			t.Errorf("load ×1.5 per request seed %d: %s %+.1f%% (%v)", seed, f.Function, f.ChangePct, f.Evidence)
		}
	}
	// What the server's test says over 30 minutes at 99 Hz.
	base := newSim(1, 2, 99, nodes)
	ws := stream{service: "web", start: t0, base: base.clone(1), head: base.clone(1001),
		baseV: "v1", headV: "v2", baseFor: 30 * time.Minute, headFor: 30 * time.Minute, hLoad: 1.5}.windows()
	c, err := Compare(ws[:180], ws[180:], VersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if srv := function(t, c, "net/http.(*conn).serve", MeasureCum); srv.Outcome == OutcomeRegression || len(c.Findings) > 0 {
		t.Errorf("the server's rise: %+v; findings %+v", srv, c.Findings)
	}
	for _, sl := range []struct {
		hz   float64
		slow float64
	}{{19, 0.3}, {99, 0.2}} {
		base := newSim(2, 2, sl.hz, nodes)
		head := base.clone(2).slow("main.compute", sl.slow)
		ws = stream{service: "web", start: t0, base: base.clone(2), head: head.clone(1002),
			baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: 1.5}.windows()
		if raised, _ := run(DefaultOptions(), ws); len(raised) != 1 || raised[0].Function != "main.compute" {
			t.Errorf("a %g%% slowdown of main.compute's own code under 1.5× load at %g Hz: %+v", 100*sl.slow, sl.hz, raised)
		}
	}
}

// TestSubtreeDoesMoreWork: fixtures/deployapp's slowdown, main.render
// running its hashing loop 1.3 times as often (its whole subtree, shared
// with decode and score, grows alike) while the rest of the service
// moves alike: render is found first, though no part of its subtree grew
// against another (the live test, cmd's TestAgentDeployRegression).
func TestSubtreeDoesMoreWork(t *testing.T) {
	t.Parallel()
	nodes := []simNode{
		{name: "runtime.goexit", parent: -1},
		{name: "net/http.(*conn).serve", parent: 0, perReq: 3},
		{name: "main.handler", parent: 1, perReq: 2},
		{name: "main.decode", parent: 2, perReq: 0.5},
		{name: "main.work", parent: 3, perReq: 1},
		{name: "crypto/sha256.block", parent: 4, perReq: 17},
		{name: "main.score", parent: 2, perReq: 0.5},
		{name: "main.work", parent: 6, perReq: 2},
		{name: "crypto/sha256.block", parent: 7, perReq: 43},
		{name: "main.render", parent: 2, perReq: 0.5},
		{name: "main.work", parent: 9, perReq: 1.5},
		{name: "crypto/sha256.block", parent: 10, perReq: 25},
		{name: "runtime.gcBgMarkWorker", parent: 0, perReq: 3, fixed: 1},
	}
	for seed := uint64(1); seed <= 5; seed++ {
		base := newSim(seed, 1, 99, nodes)
		head := base.clone(seed)
		for _, i := range []int{9, 10, 11} {
			head.nodes[i].perReq *= 1.3
		}
		raised, _ := run(DefaultOptions(), deploy(seed, base, head))
		if len(raised) == 0 || raised[0].Function != "main.render" {
			t.Errorf("seed %d: render's loop run 1.3 times as often: %+v", seed, raised)
		}
	}
	// The same on a host that got busier at the deploy: every function's
	// CPU per request 6% more, at the same requests, so that the rest of
	// the service outside render's subtree uses 6% more CPU a second. That
	// is no load change: the rest rose far less than render's subtree.
	for seed := uint64(1); seed <= 5; seed++ {
		base := newSim(seed, 1, 99, nodes)
		head := base.clone(seed)
		for _, i := range []int{9, 10, 11} {
			head.nodes[i].perReq *= 1.3
		}
		for i := range head.nodes {
			head.nodes[i].perReq *= 1.06
			head.nodes[i].fixed *= 1.06
		}
		head.cores = base.cores * head.weight(1) / base.weight(1)
		raised, _ := run(DefaultOptions(), deploy(seed, base, head))
		if len(raised) == 0 || raised[0].Function != "main.render" {
			t.Errorf("seed %d: render's loop run 1.3 times as often on a busier host: %+v", seed, raised)
		}
	}
}

// A caller whose cumulative rise crosses the threshold at a later look
// than its callee's is the callee's rise found again: dedup counts the
// functions raised at the deploy's earlier looks as regressed (with their
// rise at this look), and drops the caller as explained by them. Without
// them, or when the callee holds too little of the caller's rise (work
// of the caller's own subtree that grew), the caller is kept.
func TestDedupEarlierLooks(t *testing.T) {
	mk := func(calleeRise float64, raised map[string]bool) (*evaluation, []int) {
		caller := &test{measure: MeasureCum, delta: 0.021, sd: 0.005, p: 2.6e-5, outcome: OutcomeRegression}
		callee := &test{measure: MeasureCum, delta: calleeRise, sd: 0.006, p: 0.02, outcome: OutcomeNotSignificant}
		e := &evaluation{raised: raised, fs: []fnStat{
			{name: "internal/poll.(*FD).Read", ib: 150, ih: 220, callees: []int{1}, cum: caller},
			{name: "syscall.read", ib: 150, ih: 215, callers: []int{0}, cum: callee},
		}}
		return e, []int{0}
	}
	for _, tc := range []struct {
		name       string
		calleeRise float64
		raised     map[string]bool
		kept       bool
	}{
		{"callee raised earlier, its rise the caller's", 0.020, map[string]bool{"syscall.read": true}, false},
		{"no earlier finding", 0.020, nil, true},
		{"callee raised earlier, a small part of the caller's rise", 0.004, map[string]bool{"syscall.read": true}, true},
	} {
		e, candidates := mk(tc.calleeRise, tc.raised)
		kept := e.dedup(candidates)
		if got := len(kept) == 1; got != tc.kept {
			t.Errorf("%s: kept %v, want the caller kept: %v", tc.name, kept, tc.kept)
		}
		if !tc.kept && (e.fs[0].cum.outcome != OutcomeExplained || !slices.Equal(e.fs[0].cum.related, []string{"syscall.read"})) {
			t.Errorf("%s: the caller's test %+v, want explained by syscall.read", tc.name, e.fs[0].cum)
		}
	}
}

// TestDedupDeepestFirst: one fluctuation of syscall.write (5.8% → 7.2% of
// a null deploy's CPU) raised it and two callers at one look:
// internal/poll.(*FD).Write, all of whose samples are in it (as many
// as its callee: by name it came first), and bufio.(*Writer).Flush,
// cheaper than the callee that other callers share. A callee goes
// before its callers, whatever their costs: the callee alone is kept.
func TestDedupDeepestFirst(t *testing.T) {
	rise := func(d float64) *test {
		return &test{measure: MeasureCum, delta: d, sd: 0.003, p: 3.6e-5, outcome: OutcomeRegression}
	}
	e := &evaluation{fs: []fnStat{
		{name: "bufio.(*Writer).Flush", ib: 530, ih: 670, callees: []int{1}, cum: rise(0.013)},
		{name: "internal/poll.(*FD).Write", ib: 580, ih: 720, callers: []int{0}, callees: []int{2}, cum: rise(0.014)},
		{name: "syscall.write", ib: 580, ih: 720, callers: []int{1, 3}, cum: rise(0.014)},
		{name: "os.(*File).Write", ib: 50, ih: 50, callees: []int{2}},
	}}
	for i := range 3 {
		e.fs[i].cum.f, e.fs[i].cum.fi = &e.fs[i], i
	}
	kept := e.dedup([]int{0, 1, 2})
	if len(kept) != 1 || e.fs[kept[0]].name != "syscall.write" {
		var names []string
		for _, k := range kept {
			names = append(names, e.fs[k].name)
		}
		t.Errorf("kept %v, want syscall.write alone", names)
	}
}

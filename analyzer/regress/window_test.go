package regress

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/observation/obstest"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// recordedWindows are real 10-s windows of fixtures/goservice as the
// agent stored them (eBPF cpu at 19 Hz, off-CPU, faults; the service's
// process.cpu series).
func recordedWindows(tb testing.TB) []*observation.Observation {
	return obstest.Windows(tb, "../../"+obstest.GoserviceWindows, 1)
}

// naiveCounts is Counts computed the plain way, sample by sample with
// maps, to hold WindowOf's indexed walk to: the samples of user-space
// code, and how many were in the kernel.
func naiveCounts(p *profile.Profile) (n, kernel float64, self, incl map[string]float64, calls map[Call]float64) {
	self, incl, calls = map[string]float64{}, map[string]float64{}, map[Call]float64{}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "samples" {
			vi = i
		}
	}
	for _, s := range p.Sample {
		v := float64(s.Value[vi])
		if len(s.Location) > 0 && s.Location[0].Mapping != nil && strings.HasPrefix(s.Location[0].Mapping.File, "[kernel") {
			kernel += v
			continue
		}
		n += v
		var stack []string // leaf first
		for _, l := range s.Location {
			if len(l.Line) == 0 {
				stack = append(stack, unknownFunction)
			}
			for _, ln := range l.Line {
				stack = append(stack, ln.Function.Name)
			}
		}
		if len(stack) == 0 {
			continue
		}
		self[stack[0]] += v
		seen := map[string]bool{}
		seenCall := map[Call]bool{}
		for i, f := range stack {
			if !seen[f] {
				seen[f] = true
				incl[f] += v
			}
			if i > 0 && stack[i] != stack[i-1] {
				c := Call{Caller: stack[i], Callee: stack[i-1]}
				if !seenCall[c] {
					seenCall[c] = true
					calls[c] += v
				}
			}
		}
	}
	return n, kernel, self, incl, calls
}

func TestWindowOfRecorded(t *testing.T) {
	for i, o := range recordedWindows(t) {
		s := verdict.Summary{Class: verdict.ClassCPU}
		w := WindowOf(o, "goservice", "v1", s)
		if w.Service != "goservice" || w.Version != "v1" || !w.Start.Equal(o.Meta.Start) || w.Duration != o.Meta.Duration || w.Verdict.Class != verdict.ClassCPU {
			t.Errorf("window %d: identity %+v", i, w)
		}
		if w.CPU.Source != string(observation.SourceEBPF) {
			t.Errorf("window %d: source %q, want ebpf", i, w.CPU.Source)
		}
		// 19 Hz: a sample stands for 1/19 s of CPU.
		if d := w.CPU.Period - 1.0/19; d > 1e-6 || d < -1e-6 {
			t.Errorf("window %d: period %v s, want 1/19", i, w.CPU.Period)
		}
		p := o.ProfilesOf(observation.KindCPU)[0].Profile
		n, kernel, self, incl, calls := naiveCounts(p)
		if w.CPU.Samples != n || n < 100 {
			t.Errorf("window %d: %v samples, want %v (the samples/count values of user-space code, not nanoseconds)", i, w.CPU.Samples, n)
		}
		if kernel == 0 {
			t.Errorf("window %d: no sample in the kernel: the recording no longer tests that they are left out", i)
		}
		if len(w.CPU.Funcs) != len(incl) || len(w.CPU.Calls) != len(calls) {
			t.Errorf("window %d: %d functions %d calls, want %d %d", i, len(w.CPU.Funcs), len(w.CPU.Calls), len(incl), len(calls))
		}
		for name, fc := range w.CPU.Funcs {
			if fc.Self != self[name] || fc.Incl != incl[name] || fc.Incl < fc.Self || fc.Incl > n {
				t.Errorf("window %d: %s %+v, want self %v incl %v", i, name, fc, self[name], incl[name])
			}
		}
		for c, v := range w.CPU.Calls {
			if v != calls[c] || v > w.CPU.Funcs[c.Callee].Incl || v > w.CPU.Funcs[c.Caller].Incl {
				t.Errorf("window %d: call %v = %v, want %v", i, c, v, calls[c])
			}
		}
		// The service burns a core on SHA-256: its block function is the
		// heaviest leaf, under main.burnCPU.
		var top string
		for name, fc := range w.CPU.Funcs {
			if top == "" || fc.Self > w.CPU.Funcs[top].Self {
				top = name
			}
		}
		if top != "crypto/internal/fips140/sha256.blockSHANI" || w.CPU.Calls[Call{"crypto/sha256.Sum256", "crypto/internal/fips140/sha256.(*Digest).Write"}] == 0 {
			t.Errorf("window %d: heaviest leaf %s", i, top)
		}
		// The agent's service windows carry no memory series today (the
		// split of a host's window keeps process.cpu and run delay only).
		if w.Memory != 0 || w.Requests != 0 {
			t.Errorf("window %d: memory %v requests %v, want 0 (none recorded)", i, w.Memory, w.Requests)
		}
	}
}

// cpuProfile is a small hand-made cpu profile: main.a → main.b (leaf) 3
// samples, main.a → main.a (recursion) → main.c 2 samples, and one
// sample with no location.
func cpuProfile(types []*profile.ValueType, scale int64) *profile.Profile {
	fa := &profile.Function{ID: 1, Name: "main.a"}
	fb := &profile.Function{ID: 2, Name: "main.b"}
	fc := &profile.Function{ID: 3, Name: "main.c"}
	la := &profile.Location{ID: 1, Line: []profile.Line{{Function: fa}}}
	lb := &profile.Location{ID: 2, Line: []profile.Line{{Function: fb}}}
	// c inlined into a: one location, innermost first.
	lca := &profile.Location{ID: 3, Line: []profile.Line{{Function: fc}, {Function: fa}}}
	val := func(n int64) []int64 {
		out := []int64{}
		for _, t := range types {
			if t.Unit == "count" {
				out = append(out, n)
			} else {
				out = append(out, n*scale)
			}
		}
		return out
	}
	return &profile.Profile{
		SampleType: types, PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: scale,
		Function: []*profile.Function{fa, fb, fc}, Location: []*profile.Location{la, lb, lca},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lb, la}, Value: val(3)},
			{Location: []*profile.Location{lca, la}, Value: val(2)},
			{Value: val(1)},
		},
	}
}

func TestWindowOfCounts(t *testing.T) {
	both := []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}
	nanosOnly := []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}
	want := map[string]FuncCount{"main.a": {0, 5}, "main.b": {3, 3}, "main.c": {2, 2}}
	wantCalls := map[Call]float64{{"main.a", "main.b"}: 3, {"main.a", "main.c"}: 2}
	for _, tc := range []struct {
		name string
		obs  observation.Observation
		src  string
	}{
		{"ebpf first", observation.Observation{Profiles: []observation.Profile{
			{Kind: observation.KindCPU, Source: observation.SourcePprof, Profile: cpuProfile(both, 10_000_000)},
			{Kind: observation.KindOffCPU, Source: observation.SourceEBPF, Profile: cpuProfile(both, 1)},
			{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: cpuProfile(both, 52_631_578)},
		}}, "ebpf"},
		{"pprof without ebpf", observation.Observation{Profiles: []observation.Profile{
			{Kind: observation.KindCPU, Source: observation.SourceIngest, Profile: cpuProfile(both, 10_000_000)},
			{Kind: observation.KindCPU, Source: observation.SourcePprof, Profile: cpuProfile(both, 10_000_000)},
		}}, "pprof"},
		{"nanoseconds only", observation.Observation{Profiles: []observation.Profile{
			{Kind: observation.KindCPU, Source: observation.SourceIngest, Profile: cpuProfile(nanosOnly, 10_000_000)},
		}}, "ingest"},
	} {
		w := WindowOf(&tc.obs, "s", "v", verdict.Summary{})
		if w.CPU.Source != tc.src || w.CPU.Samples != 6 {
			t.Errorf("%s: source %q samples %v, want %s 6", tc.name, w.CPU.Source, w.CPU.Samples, tc.src)
		}
		for name, fc := range want {
			if w.CPU.Funcs[name] != fc {
				t.Errorf("%s: %s %+v, want %+v", tc.name, name, w.CPU.Funcs[name], fc)
			}
		}
		if len(w.CPU.Funcs) != len(want) || len(w.CPU.Calls) != len(wantCalls) {
			t.Errorf("%s: funcs %v calls %v", tc.name, w.CPU.Funcs, w.CPU.Calls)
		}
		for c, v := range wantCalls {
			if w.CPU.Calls[c] != v {
				t.Errorf("%s: call %v = %v, want %v", tc.name, c, w.CPU.Calls[c], v)
			}
		}
	}
	// Two cpu profiles of the source (an SDK's pushes under two label
	// sets) are summed.
	o := observation.Observation{Profiles: []observation.Profile{
		{Kind: observation.KindCPU, Source: observation.SourceIngest, Labels: map[string]string{"a": "1"}, Profile: cpuProfile(both, 1)},
		{Kind: observation.KindCPU, Source: observation.SourceIngest, Labels: map[string]string{"a": "2"}, Profile: cpuProfile(both, 1)},
	}}
	if w := WindowOf(&o, "s", "v", verdict.Summary{}); w.CPU.Samples != 12 || w.CPU.Funcs["main.a"].Incl != 10 {
		t.Errorf("two profiles: %v samples, main.a %+v", w.CPU.Samples, w.CPU.Funcs["main.a"])
	}
	// A malformed sample (fewer values than sample types) counts for
	// nothing, and does not stop the rest.
	bad := cpuProfile(both, 1)
	bad.Sample[0].Value = nil
	o = observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: bad}}}
	if w := WindowOf(&o, "s", "v", verdict.Summary{}); w.CPU.Samples != 3 || w.CPU.Funcs["main.c"].Incl != 2 {
		t.Errorf("a malformed sample: %v samples, %+v", w.CPU.Samples, w.CPU.Funcs)
	}
	// No cpu profile: no samples.
	if w := WindowOf(&observation.Observation{}, "s", "v", verdict.Summary{}); w.CPU.Samples != 0 || w.CPU.Funcs != nil {
		t.Errorf("no profile: %+v", w.CPU)
	}
}

func TestWindowOfMemory(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pts := func(vs ...float64) []observation.Point {
		var out []observation.Point
		for i, v := range vs {
			out = append(out, observation.Point{Time: at.Add(time.Duration(i) * time.Second), Value: v})
		}
		return out
	}
	o := observation.Observation{Series: []observation.Series{
		{Name: observation.GoHeapInuse, Points: pts(5, 6)},
		{Name: observation.ProcessRSS, Labels: map[string]string{"pid": "1"}, Points: pts(100, 120)},
		{Name: observation.ProcessRSS, Labels: map[string]string{"pid": "2"}, Points: pts(10, 30)},
	}}
	if w := WindowOf(&o, "s", "v", verdict.Summary{}); w.Memory != 150 {
		t.Errorf("memory %v, want the processes' last RSS summed, 150", w.Memory)
	}
	o.Series = o.Series[:1]
	if w := WindowOf(&o, "s", "v", verdict.Summary{}); w.Memory != 6 {
		t.Errorf("memory %v, want the heap in use at the end, 6", w.Memory)
	}
}

// TestWindowOfMixedRates: a profile merged over windows sampled at 19 and
// at 99 Hz keeps the larger period (pprof's Merge); the window's period
// is what its CPU column says its samples stood for on average.
func TestWindowOfMixedRates(t *testing.T) {
	both := []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}
	const p19, p99 = int64(1e9) / 19, int64(1e9) / 99
	slow, fast := cpuProfile(both, p19), cpuProfile(both, p99)
	merged, err := profile.Merge([]*profile.Profile{slow, fast})
	if err != nil {
		t.Fatal(err)
	}
	if merged.Period != p19 {
		t.Fatalf("pprof's merge kept period %d, the test assumes the larger", merged.Period)
	}
	o := observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: merged}}}
	w := WindowOf(&o, "s", "v", verdict.Summary{})
	want := (6*float64(p19) + 6*float64(p99)) / 12 / 1e9
	if w.CPU.Samples != 12 || math.Abs(w.CPU.Period-want) > 1e-9 {
		t.Errorf("merged window: %v samples at %v s each, want 12 at %v", w.CPU.Samples, w.CPU.Period, want)
	}
}

// TestWindowOfRequests: a window's requests are its service.requests
// rates times its length, summed over the endpoints that recorded one;
// none recorded is 0, unknown.
func TestWindowOfRequests(t *testing.T) {
	rate := func(v float64, url string) observation.Series {
		return observation.Series{Name: observation.ServiceRequests, Unit: "1/s", Labels: map[string]string{"url": url},
			Points: []observation.Point{{Time: time.Unix(10, 0), Value: v}}}
	}
	o := &observation.Observation{Meta: observation.Meta{Start: time.Unix(0, 0), Duration: 10 * time.Second},
		Series: []observation.Series{rate(120, "http://a"), rate(30, "http://b"),
			{Name: observation.GoHeapAlloc, Unit: "bytes", Points: []observation.Point{{Time: time.Unix(10, 0), Value: 1 << 20}}}}}
	if w := WindowOf(o, "api", "v1", verdict.Summary{}); w.Requests != 1500 {
		t.Errorf("requests %v, want (120 + 30)/s over 10 s = 1500", w.Requests)
	}
	// Rolled up: six 10-s windows merged into one of a minute, each
	// window's rate a point of the one series.
	rolled := &observation.Observation{Meta: observation.Meta{Start: time.Unix(0, 0), Duration: time.Minute}}
	r := rate(0, "http://a")
	r.Points = nil
	for i, v := range []float64{100, 110, 120, 130, 140, 150} {
		r.Points = append(r.Points, observation.Point{Time: time.Unix(int64(10*(i+1)), 0), Value: v})
	}
	rolled.Series = []observation.Series{r}
	if w := WindowOf(rolled, "api", "v1", verdict.Summary{}); math.Abs(w.Requests-7500) > 1e-6 {
		t.Errorf("rolled-up requests %v, want 125/s on average over 60 s = 7500", w.Requests)
	}
	o.Series = o.Series[2:]
	if w := WindowOf(o, "api", "v1", verdict.Summary{}); w.Requests != 0 {
		t.Errorf("requests %v without a rate, want 0", w.Requests)
	}
}

// TestWindowOfKernel: a sample taken in the kernel is not the program's
// code and is left out, unless every sample is (a kernel thread).
func TestWindowOfKernel(t *testing.T) {
	kmap := &profile.Mapping{ID: 1, File: "[kernel.kallsyms]"}
	umap := &profile.Mapping{ID: 2, File: "/usr/bin/app"}
	user := &profile.Location{ID: 1, Mapping: umap, Line: []profile.Line{{Function: &profile.Function{ID: 1, Name: "main.handle"}}}}
	sys := &profile.Location{ID: 2, Mapping: kmap, Line: []profile.Line{{Function: &profile.Function{ID: 2, Name: "do_syscall_64"}}}}
	kthread := &profile.Location{ID: 3, Mapping: kmap, Line: []profile.Line{{Function: &profile.Function{ID: 3, Name: "worker_thread"}}}}
	window := func(samples ...*profile.Sample) Counts {
		p := &profile.Profile{Location: []*profile.Location{user, sys, kthread}, SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
			PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: int64(1e9) / 19, Sample: samples}
		o := observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: p}}}
		return WindowOf(&o, "s", "v", verdict.Summary{}).CPU
	}
	c := window(&profile.Sample{Location: []*profile.Location{user}, Value: []int64{5}},
		&profile.Sample{Location: []*profile.Location{sys, user}, Value: []int64{3}})
	if c.Samples != 5 || c.Funcs["main.handle"] != (FuncCount{Self: 5, Incl: 5}) || len(c.Funcs) != 1 {
		t.Errorf("a service's window: %v samples, %+v; want main.handle's 5 of its own code", c.Samples, c.Funcs)
	}
	c = window(&profile.Sample{Location: []*profile.Location{kthread}, Value: []int64{4}})
	if c.Samples != 4 || c.Funcs["worker_thread"].Self != 4 {
		t.Errorf("a kernel thread's window: %v samples, %+v; want all 4", c.Samples, c.Funcs)
	}
}

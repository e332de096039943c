package profdiff

import (
	"bytes"
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/internal/gosym"

	"github.com/perfhound/perfhound/analyzer/stat"
)

// build makes a CPU profile from stacks written leaf first. A frame
// "a+b" is a location where a was inlined into b; "a:12" is at line 12.
type stackCount struct {
	stack  []string
	count  int64
	labels map[string][]string
}

func build(samples []stackCount) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	fns := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	fn := func(name string) *profile.Function {
		if f := fns[name]; f != nil {
			return f
		}
		f := &profile.Function{ID: uint64(len(fns) + 1), Name: name, SystemName: name, Filename: "x.go"}
		fns[name] = f
		p.Function = append(p.Function, f)
		return f
	}
	for _, s := range samples {
		var stack []*profile.Location
		for _, frame := range s.stack {
			l := locs[frame]
			if l == nil {
				l = &profile.Location{ID: uint64(len(locs) + 1)}
				for _, name := range strings.Split(frame, "+") {
					name, line, _ := strings.Cut(name, ":")
					n, _ := strconv.Atoi(line)
					l.Line = append(l.Line, profile.Line{Function: fn(name), Line: int64(n)})
				}
				locs[frame] = l
				p.Location = append(p.Location, l)
			}
			stack = append(stack, l)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: stack, Value: []int64{s.count, s.count * 10_000_000}, Label: s.labels})
	}
	return p
}

const pkg = "example.com/app"

func TestAggregateFlatCumOwn(t *testing.T) {
	p := build([]stackCount{
		// parse calls the standard library: its own cost includes strconv.
		{[]string{"strconv.ParseInt", pkg + ".parse", pkg + ".BenchmarkParse", "testing.(*B).runN"}, 30, nil},
		{[]string{pkg + ".parse", pkg + ".BenchmarkParse", "testing.(*B).runN"}, 10, nil},
		// Recursion counts once in cum; sha256 inlined into hash.
		{[]string{"crypto/sha256.block+crypto/sha256.Sum256+" + pkg + ".hash", pkg + ".hash", pkg + ".BenchmarkHash.func1", "testing.(*B).runN"}, 20, nil},
		// GC work owned by no first-party frame stays with its leaf.
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, 5, nil},
	})
	a := aggregate("test", p, 1, nil)
	parse := a.parts[Key{pkg, "BenchmarkParse"}]
	if parse == nil || parse.total != 40e7 {
		t.Fatalf("BenchmarkParse part = %+v", parse)
	}
	c := parse.fn[pkg+".parse"]
	if c.flat != 10e7 || c.cum != 40e7 || c.own != 40e7 || c.ownEvents != 40 {
		t.Errorf("parse = %+v, want flat 10, cum 40, own 40 samples", *c)
	}
	if c := parse.fn["strconv.ParseInt"]; c.flat != 30e7 || c.own != 0 {
		t.Errorf("strconv.ParseInt = %+v, want flat 30, own 0", *c)
	}
	hash := a.parts[Key{pkg, "BenchmarkHash"}]
	if hash == nil {
		t.Fatalf("no BenchmarkHash part (closure BenchmarkHash.func1): %v", a.parts)
	}
	if c := hash.fn[pkg+".hash"]; c.cum != 20e7 || c.own != 20e7 {
		t.Errorf("recursive, inlining hash = %+v, want cum 20 (once), own 20", *c)
	}
	if c := a.parts[Key{}].fn["runtime.scanobject"]; c.own != 5e7 {
		t.Errorf("scanobject own = %v, want its flat 5", c.own)
	}
	if a.all.total != 65e7 {
		t.Errorf("whole profile total = %v", a.all.total)
	}
}

func TestLabelsNameTheBenchmark(t *testing.T) {
	p := build([]stackCount{
		{[]string{pkg + ".work", pkg + ".run"}, 7, map[string][]string{"benchmark": {"BenchmarkWork/size=10"}}},
	})
	a := aggregate("test", p, 1, nil)
	if pt := a.lookup(Key{pkg, "BenchmarkWork"}); pt == nil || pt.total != 7e7 {
		t.Fatalf("labelled part = %+v", pt)
	}
}

func TestNonGoProfileUsesMappings(t *testing.T) {
	p := build([]stackCount{{[]string{"memcpy", "foo.cold", "main"}, 10, nil}})
	for _, f := range p.Function {
		f.Filename = "x.c"
	}
	libc := &profile.Mapping{ID: 1, File: "/lib/x86_64-linux-gnu/libc.so.6"}
	exe := &profile.Mapping{ID: 2, File: "/usr/bin/app"}
	p.Mapping = []*profile.Mapping{exe, libc}
	for _, l := range p.Location {
		l.Mapping = exe
		if l.Line[0].Function.Name == "memcpy" {
			l.Mapping = libc
		}
	}
	a := aggregate("c", p, 1, nil)
	if c := a.all.fn["foo.cold"]; c == nil || c.own != 10e7 {
		t.Fatalf("foo.cold (a C symbol, not Go package foo) should own memcpy: %+v", a.all.fn)
	}
}

// sides builds n profiles a side where head spends `growth` more samples in
// slow per profile, with Poisson-like jitter.
func sides(t *testing.T, n int, growth float64) (*Side, *Side) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(slow float64) []Input {
		var in []Input
		for i := 0; i < n; i++ {
			jit := func(x float64) int64 { return int64(x + rng.NormFloat64()*math.Sqrt(x)) }
			p := build([]stackCount{
				{[]string{pkg + ".slow", pkg + ".BenchmarkA", "testing.(*B).runN"}, jit(slow), nil},
				{[]string{pkg + ".steady", pkg + ".BenchmarkA", "testing.(*B).runN"}, jit(400), nil},
			})
			in = append(in, Input{File: "p", Profile: p})
		}
		return in
	}
	b, err := NewSide(mk(400), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewSide(mk(400*(1+growth)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

func TestCompareFindsTheGrownFunction(t *testing.T) {
	for _, n := range []int{1, 2, 10} {
		b, h := sides(t, n, 0.5)
		d, err := Compare(b, h, Selection{}, stat.DefaultThresholds)
		if err != nil {
			t.Fatal(err)
		}
		wantTest := "poisson"
		if n >= MinProfilesForTTest {
			wantTest = "welch-t"
		}
		if d.Test != wantTest {
			t.Errorf("n=%d: test %s, want %s", n, d.Test, wantTest)
		}
		top := d.Functions[0]
		if top.Name != pkg+".slow" || top.Change != stat.Regression || top.Delta.Own <= 0 {
			t.Errorf("n=%d: top function %+v, want %s.slow regressed", n, top, pkg)
		}
	}
}

// Per-op scaling: when the benchmark's time per op rose 25% and only slow
// grew, slow's own cost per op accounts for the rise.
func TestCompareScaledPerOp(t *testing.T) {
	b, h := sides(t, 10, 0.5)
	key := Key{pkg, "BenchmarkA"}
	d, err := Compare(b, h, Selection{Bench: &key, BaseScale: 100, HeadScale: 125, Unit: "sec/op"}, stat.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	var slow, steady Function
	for _, f := range d.Functions {
		switch f.Name {
		case pkg + ".slow":
			slow = f
		case pkg + ".steady":
			steady = f
		}
	}
	if math.Abs(slow.Delta.Own-25) > 3 {
		t.Errorf("slow grew by %.2f per op, want ~25", slow.Delta.Own)
	}
	if math.Abs(steady.Delta.Own) > 3 || steady.Change != stat.Unchanged {
		t.Errorf("steady changed by %.2f per op (%v), want ~0", steady.Delta.Own, steady.Change)
	}
}

func TestCompareRejectsDifferentKinds(t *testing.T) {
	b, _ := sides(t, 1, 0)
	heap := build([]stackCount{{[]string{pkg + ".f"}, 1, nil}})
	heap.SampleType = []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}
	for _, s := range heap.Sample {
		s.Value = s.Value[:1]
	}
	h, err := NewSide([]Input{{File: "heap.pb.gz", Profile: heap}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compare(b, h, Selection{}, stat.DefaultThresholds); err == nil {
		t.Fatal("compared a CPU profile with a heap profile")
	}
}

// A real CPU profile of this test process: the first-party loop owns the
// hashing it asks crypto/sha256 for.
func TestRealProfileOwnership(t *testing.T) {
	if testing.Short() {
		t.Skip("records a CPU profile for 0.5 s")
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skip("CPU profiling unavailable:", err)
	}
	hashFor(500 * time.Millisecond)
	pprof.StopCPUProfile()
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSide([]Input{{"self", p}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const me = "github.com/perfhound/perfhound/analyzer/profdiff.hashFor"
	c := s.profiles[0].all.fn[me]
	if c == nil {
		t.Fatalf("%s not in the profile", me)
	}
	if c.own < 0.9*c.cum || c.flat > 0.5*c.cum {
		t.Errorf("hashFor: flat %.0f, own %.0f, cum %.0f; want own ≈ cum > flat", c.flat, c.own, c.cum)
	}
}

// hashFor hashes for d of CPU time (wall time on a busy machine could
// leave the profile nearly empty), or 20 s of wall time at most.
//
//go:noinline
func hashFor(d time.Duration) (sum [32]byte) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, deadline := cpu(), time.Now().Add(20*time.Second)
	for cpu()-start < d && time.Now().Before(deadline) {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	return sum
}

func TestLookupMainPackage(t *testing.T) {
	p := build([]stackCount{{[]string{"main.work", "main.BenchmarkWork", "testing.(*B).runN"}, 3, nil}})
	a := aggregate("main", p, 1, nil)
	if pt := a.lookup(Key{"example.com/cmd/tool", "BenchmarkWork"}); pt == nil || pt.total != 3e7 {
		t.Fatalf("benchmark in package main not found by its import path: %+v", a.parts)
	}
}

// Runtime assembly with no package in its name is still library code: its
// file is in the Go distribution's source tree.
func TestGoRootAssemblyIsLibrary(t *testing.T) {
	p := build([]stackCount{
		{[]string{"expandAVX512_60", "runtime.mallocgc", pkg + ".work"}, 4, nil},
		{[]string{"runtime.nanotime", pkg + ".work"}, 1, nil},
	})
	for _, f := range p.Function {
		switch f.Name {
		case "expandAVX512_60":
			f.Filename = "/usr/local/go/src/internal/runtime/gc/scan/expand_amd64.s"
		case "runtime.mallocgc", "runtime.nanotime":
			f.Filename = "/usr/local/go/src/runtime/malloc.go"
		}
	}
	a := aggregate("p", p, 1, nil)
	if c := a.all.fn[pkg+".work"]; c.own != 5e7 {
		t.Errorf("work owns %v, want all 5 samples", c.own/1e7)
	}
}

// A closure of an inlined standard-library function is named after its
// first-party caller but is library code: its file says so.
func TestInlinedStdClosureIsLibrary(t *testing.T) {
	p := build([]stackCount{
		{[]string{pkg + ".keys.FieldsSeq.func1", "runtime.nanotime", pkg + ".keys"}, 3, nil},
	})
	for _, f := range p.Function {
		switch f.Name {
		case pkg + ".keys.FieldsSeq.func1":
			f.Filename = "/usr/local/go/src/strings/iter.go"
		case "runtime.nanotime":
			f.Filename = "/usr/local/go/src/runtime/time.go"
		}
	}
	a := aggregate("p", p, 1, nil)
	if c := a.all.fn[pkg+".keys"]; c.own != 3e7 {
		t.Errorf("keys owns %v samples, want 3", c.own/1e7)
	}
}

// Benchmarking a standard-library package: its own functions are
// first-party, by name and by file; other std code stays library.
func TestStdPackageUnderTest(t *testing.T) {
	p := build([]stackCount{
		{[]string{"runtime.memmove", "strconv.appendQuotedWith", "strconv.Quote", "strconv_test.BenchmarkQuote", "testing.(*B).runN"}, 5, nil},
	})
	for _, f := range p.Function {
		pkg := gosym.Package(f.Name)
		f.Filename = "/usr/local/go/src/" + strings.TrimSuffix(pkg, "_test") + "/x.go"
	}
	a := aggregate("p", p, 1, []string{"strconv"})
	if c := a.all.fn["strconv.appendQuotedWith"]; c == nil || c.own != 5e7 {
		t.Errorf("strconv under test: appendQuotedWith should own memmove: %+v", a.all.fn)
	}
	b := aggregate("p", p, 1, nil)
	if c := b.all.fn["runtime.memmove"]; c == nil || c.own != 5e7 {
		t.Errorf("nothing under test: all library, the leaf keeps its cost: %+v", c)
	}
}

package profdecode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/internal/testprof"
	"google.golang.org/protobuf/encoding/protowire"
)

// realProfile is the CPU profile of a real compile (fixtures/profiles).
func realProfile(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("../../fixtures/profiles/compile-cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// shape builds a profile of n samples of the given depth, each with vals
// values and labels labels, over locs locations of lines lines each: the
// shapes a hostile profile can take to make parsing costly.
func shape(n, depth, vals, labels, locs, lines int) []byte {
	p := &profile.Profile{}
	for i := range max(vals, 1) {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: fmt.Sprint("t", i), Unit: "count"})
	}
	for i := range max(locs, 1) {
		f := &profile.Function{ID: uint64(i + 1), Name: fmt.Sprint("f", i), Filename: "x.go"}
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(i + 1)}
		for j := range lines {
			l.Line = append(l.Line, profile.Line{Function: f, Line: int64(j)})
		}
		p.Location = append(p.Location, l)
	}
	for range n {
		s := &profile.Sample{Value: make([]int64, max(vals, 1))}
		for range depth {
			s.Location = append(s.Location, p.Location[0])
		}
		if labels > 0 {
			s.Label = map[string][]string{}
			for j := range labels {
				s.Label[fmt.Sprint("k", j)] = []string{"v"}
			}
		}
		p.Sample = append(p.Sample, s)
	}
	var b bytes.Buffer
	if err := p.WriteUncompressed(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// TestMeasureCounts checks Measure's counts against what pprof parsed.
func TestMeasureCounts(t *testing.T) {
	data, err := Gunzip(realProfile(t), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"real":   data,
		"deep":   shape(100, 50, 1, 0, 3, 1),
		"wire":   testprof.Deep(100, 30),
		"labels": shape(100, 1, 2, 5, 1, 1),
		"lines":  shape(1, 1, 1, 0, 100, 3),
	} {
		c := Measure(data)
		p, err := profile.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		if want := counts(p); c.Samples != want.Samples || c.StackRefs != want.StackRefs || c.Values != want.Values ||
			c.Labels != want.Labels || c.Locations != want.Locations || c.Lines != want.Lines ||
			c.Functions != want.Functions || c.Mappings != want.Mappings || c.Legacy {
			t.Errorf("%s: Measure = %+v, parsed %+v", name, c, want)
		}
	}
}

// counts is the Cost a parsed profile shows (without Strings and Bytes,
// which it does not keep).
func counts(p *profile.Profile) Cost {
	c := Cost{Samples: len(p.Sample), Locations: len(p.Location), Functions: len(p.Function), Mappings: len(p.Mapping)}
	for _, s := range p.Sample {
		c.StackRefs += len(s.Location)
		c.Values += len(s.Value)
		for _, v := range s.Label {
			c.Labels += len(v)
		}
		for _, v := range s.NumLabel {
			c.Labels += len(v)
		}
	}
	for _, l := range p.Location {
		c.Lines += len(l.Line)
	}
	return c
}

// TestMeasureUnpacked: proto2-style unpacked repeated fields, which
// pprof's decoder accepts too, count the same.
func TestMeasureUnpacked(t *testing.T) {
	var sample []byte
	for i := range 7 {
		sample = protowire.AppendTag(sample, sampleLocationID, protowire.VarintType)
		sample = protowire.AppendVarint(sample, uint64(i+1)<<20) // multi-byte varints
	}
	sample = protowire.AppendTag(sample, sampleValue, protowire.VarintType)
	sample = protowire.AppendVarint(sample, 300)
	var b []byte
	b = protowire.AppendTag(b, fieldSample, protowire.BytesType)
	b = protowire.AppendBytes(b, sample)
	if c := Measure(b); c.Samples != 1 || c.StackRefs != 7 || c.Values != 1 || c.Legacy {
		t.Errorf("Measure = %+v, want 1 sample, 7 stack refs, 1 value", c)
	}
}

// TestMemoryBounds checks the estimate against what parsing allocates
// and keeps: it must not be below what stays live, nor far below what the
// parse allocates in all, for the shapes that amplify most.
func TestMemoryBounds(t *testing.T) {
	data, err := Gunzip(realProfile(t), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"real":   data,
		"deep":   shape(5000, 200, 1, 0, 1, 1),
		"empty":  shape(100000, 0, 0, 0, 1, 1),
		"labels": shape(5000, 1, 2, 10, 1, 1),
		"values": shape(5000, 1, 100, 0, 1, 1),
		"lines":  shape(1, 1, 1, 0, 30000, 3),
	} {
		est := Measure(data).Memory()
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		p, err := profile.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&m1)
		total := int64(m1.TotalAlloc - m0.TotalAlloc)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		live := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
		runtime.KeepAlive(p)
		t.Logf("%-6s %8d bytes: estimate %10d, allocated %10d, live %10d", name, len(data), est, total, live)
		if est < live || float64(est) < 0.75*float64(total) {
			t.Errorf("%s: estimate %d bytes, but parsing allocated %d and kept %d", name, est, total, live)
		}
	}
}

// TestDecodeRefusesBeforeParsing: a gzipped profile of a few kilobytes
// that would parse into hundreds of megabytes is refused by its limits
// or the budget, having allocated little more than its inflated bytes.
func TestDecodeRefusesBeforeParsing(t *testing.T) {
	raw := testprof.Deep(20000, 500) // 10M stack references
	bomb := testprof.Gzip(raw)
	est := Measure(raw).Memory()
	t.Logf("%d bytes gzipped, %d inflated, parse estimated at %d", len(bomb), len(raw), est)
	if est < 100*int64(len(bomb)) {
		t.Fatalf("test profile amplifies only %dx", est/int64(len(bomb)))
	}
	for name, tc := range map[string]struct {
		lim  Limits
		b    *Budget
		want error
	}{
		"limit":  {Limits{MaxMemory: 64 << 20}, nil, ErrTooLarge},
		"budget": {Limits{}, NewBudget(64 << 20), ErrOverBudget},
	} {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, _, err := Decode(bomb, tc.lim, tc.b)
		runtime.ReadMemStats(&m1)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: Decode = %v, want %v", name, err, tc.want)
		}
		if alloc := int64(m1.TotalAlloc - m0.TotalAlloc); alloc > 4*int64(len(raw)) {
			t.Errorf("%s: refusing allocated %d bytes for %d inflated", name, alloc, len(raw))
		}
		if tc.b.Used() != 0 {
			t.Errorf("%s: a refused profile left %d bytes charged", name, tc.b.Used())
		}
	}
}

func TestDecodeCharges(t *testing.T) {
	b := NewBudget(1 << 30)
	p, c, err := Decode(realProfile(t), Limits{}, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != c.Samples || b.Used() != c.Memory() {
		t.Errorf("samples %d, cost %+v, budget used %d", len(p.Sample), c, b.Used())
	}
	// A second profile that does not fit is refused and charges nothing.
	small := NewBudget(c.Memory() + c.Memory()/2)
	if _, _, err := Decode(realProfile(t), Limits{}, small); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Decode(realProfile(t), Limits{}, small); !errors.Is(err, ErrOverBudget) {
		t.Errorf("second profile over the budget: %v", err)
	}
	if small.Used() != c.Memory() {
		t.Errorf("budget used %d after a refusal, want %d", small.Used(), c.Memory())
	}
	small.Refund(c.Memory())
	if small.Used() != 0 {
		t.Errorf("after refund: %d", small.Used())
	}
}

func TestDecodeErrors(t *testing.T) {
	raw := shape(10, 3, 1, 0, 2, 1)
	for name, tc := range map[string]struct {
		data []byte
		lim  Limits
		want error
		msg  string
	}{
		"nested gzip":  {testprof.Gzip(testprof.Gzip(raw)), Limits{}, ErrNestedGzip, ""},
		"size":         {raw, Limits{MaxBytes: 10}, ErrTooLarge, "bytes, limit 10"},
		"inflated":     {testprof.Gzip(testprof.Deep(100, 100)), Limits{MaxBytes: 1000}, ErrTooLarge, "decompresses past"},
		"samples":      {raw, Limits{MaxSamples: 9}, ErrTooLarge, "more than 9 samples, limit 9"},
		"locations":    {raw, Limits{MaxLocations: 1}, ErrTooLarge, "more than 1 locations, limit 1"},
		"truncated gz": {testprof.Gzip(raw)[:40], Limits{}, nil, "truncated"},
		"garbage":      {[]byte("\x08\x96\x01 not a profile"), Limits{}, nil, "parsing pprof"},
	} {
		_, _, err := Decode(tc.data, tc.lim, nil)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Decode = %v, want %v containing %q", name, err, tc.want, tc.msg)
		}
	}
}

// TestLegacyText: pprof's legacy text formats are measured by size.
func TestLegacyText(t *testing.T) {
	text := []byte("--- contention:\ncycles/second=3000000000\n100 2 @ 0x1 0x2\n")
	c := Measure(text)
	if !c.Legacy || c.Memory() != int64(len(text))*legacyFactor {
		t.Errorf("Measure = %+v", c)
	}
	if _, _, err := Decode(text, Limits{}, nil); err != nil {
		t.Errorf("legacy contention profile: %v", err)
	}
}

// FuzzMeasure: Measure never panics, and on whatever pprof parses as
// protobuf its counts are the parsed profile's.
func FuzzMeasure(f *testing.F) {
	f.Add(shape(3, 2, 2, 1, 2, 2))
	raw, _ := Gunzip(realProfile(f), 1<<30)
	f.Add(raw[:4096])
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Measure(data)
		if c.Legacy {
			return
		}
		p, err := profile.ParseData(data)
		if err != nil {
			return
		}
		if want := counts(p); c.Samples != want.Samples || c.StackRefs != want.StackRefs || c.Values != want.Values ||
			c.Locations != want.Locations || c.Lines != want.Lines {
			t.Errorf("Measure = %+v, parsed %+v", c, want)
		}
	})
}

// BenchmarkRefuse is the cost of refusing a hostile profile (10M stack
// references, 42 KB gzipped) against the limits of a push: counting the
// whole profile, and stopping at the limit as Decode does.
func BenchmarkRefuse(b *testing.B) {
	raw := testprof.Deep(20000, 500)
	lim := Limits{MaxSamples: 1 << 16, MaxLocations: 1 << 16, MaxMemory: 64 << 20}.withDefaults()
	b.Run("count-all", func(b *testing.B) {
		for b.Loop() {
			if lim.check(Measure(raw)) == nil {
				b.Fatal("not refused")
			}
		}
	})
	b.Run("stop-at-limit", func(b *testing.B) {
		for b.Loop() {
			if lim.check(measureWithin(raw, &lim)) == nil {
				b.Fatal("not refused")
			}
		}
	})
}

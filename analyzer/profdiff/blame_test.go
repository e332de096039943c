package profdiff

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perfhound/perfhound/analyzer/stat"
)

// blameCase builds 10 profiles a side of BenchmarkParse → Parse, where
// Parse spends self samples itself and calls parseLine (from line 40) and
// helper (from line 41); head counts are given per stack.
type shape struct {
	self, line, helper, newSite float64
}

func blameSides(t *testing.T, base, head shape) (*Side, *Side) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	mk := func(sh shape) []Input {
		var in []Input
		for range 10 {
			jit := func(x float64) int64 {
				if x == 0 {
					return 0
				}
				return int64(math.Max(1, x+rng.NormFloat64()*math.Sqrt(x)))
			}
			root := []string{pkg + ".BenchmarkParse:20", "testing.(*B).runN:193"}
			stacks := []stackCount{
				{append([]string{"bytes.IndexByte:1", pkg + ".Parse:35"}, root...), jit(sh.self), nil},
				{append([]string{"strconv.Atoi:1", pkg + ".parseLine:60", pkg + ".Parse:40"}, root...), jit(sh.line), nil},
				{append([]string{pkg + ".helper:80", pkg + ".Parse:41"}, root...), jit(sh.helper), nil},
			}
			if sh.newSite > 0 {
				stacks = append(stacks, stackCount{append([]string{"strconv.Atoi:1", pkg + ".parseLine:60", pkg + ".Parse:50"}, root...), jit(sh.newSite), nil})
			}
			var kept []stackCount
			for _, s := range stacks {
				if s.count > 0 {
					kept = append(kept, s)
				}
			}
			in = append(in, Input{File: "p", Profile: build(kept)})
		}
		return in
	}
	b, err := NewSide(mk(base), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewSide(mk(head), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

func TestBlame(t *testing.T) {
	base := shape{self: 100, line: 600, helper: 300}
	for _, tc := range []struct {
		name string
		head shape
		want string
		path int
	}{
		// Parse does 10% more of everything: Parse changed.
		{"uniform growth blames the caller", shape{self: 110, line: 660, helper: 330}, pkg + ".Parse", 2},
		// parseLine got 20% slower, nothing else moved.
		{"a callee growing alone is blamed", shape{self: 100, line: 720, helper: 300}, pkg + ".parseLine", 3},
		// Parse calls parseLine from a new line: Parse changed, though
		// only parseLine's cost grew.
		{"new call sites blame the caller", shape{self: 100, line: 600, helper: 300, newSite: 120}, pkg + ".Parse", 2},
		// Parse's own code got slower.
		{"own code", shape{self: 250, line: 600, helper: 300}, pkg + ".Parse", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, h := blameSides(t, base, tc.head)
			key := Key{pkg, "BenchmarkParse"}
			bl := BlameRegression(b, h, Selection{Bench: &key, BaseScale: 1000, HeadScale: 1000 * (1 + (tc.head.self+tc.head.line+tc.head.helper+tc.head.newSite-1000)/1000), Unit: "sec/op"}, stat.DefaultThresholds)
			if bl == nil {
				t.Fatal("no blame")
			}
			if bl.Function != tc.want || len(bl.Path) != tc.path || bl.Path[0] != pkg+".BenchmarkParse" {
				t.Errorf("blamed %s via %v (%s), want %s", bl.Function, bl.Path, bl.Why, tc.want)
			}
		})
	}
}

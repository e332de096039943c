package compare

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/input"
)

// FuzzCompareProfiles compares arbitrary parsable profiles: whatever
// pprof accepts must compare or fail with an error, never panic.
func FuzzCompareProfiles(f *testing.F) {
	seeds, _ := filepath.Glob("../../fixtures/corpus/null-1/base/run-0[12].cpu.pprof")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b, b)
		}
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Function:   []*profile.Function{{ID: 1, Name: "example.com/p.BenchmarkX"}},
	}
	p.Location = []*profile.Location{{ID: 1, Line: []profile.Line{{Function: p.Function[0]}}}}
	p.Sample = []*profile.Sample{{Location: p.Location, Value: []int64{10}}}
	var buf bytes.Buffer
	p.WriteUncompressed(&buf)
	f.Add(buf.Bytes(), buf.Bytes())
	f.Fuzz(func(t *testing.T, a, b []byte) {
		pa, err := input.ParseProfile(a)
		if err != nil {
			return
		}
		pb, err := input.ParseProfile(b)
		if err != nil {
			return
		}
		base := &input.Set{Paths: []string{"a"}, Profiles: []input.Profile{{File: "a", Profile: pa}}}
		head := &input.Set{Paths: []string{"b"}, Profiles: []input.Profile{{File: "b", Profile: pb}}}
		res, err := Run(base, head, DefaultOptions)
		if err != nil {
			return
		}
		for _, f := range []Format{Text, Markdown, JSON} {
			if err := res.Render(&bytes.Buffer{}, f, RenderOptions{}); err != nil {
				t.Fatalf("render %s: %v", f, err)
			}
		}
	})
}

package compare

import (
	"github.com/perfhound/perfhound/internal/report"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/benchdiff"
	"github.com/perfhound/perfhound/analyzer/input"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/analyzer/profdiff"
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
		pa, _, err := profdecode.Decode(a, profdecode.Limits{}, nil)
		if err != nil || len(pa.Sample) == 0 {
			return
		}
		pb, _, err := profdecode.Decode(b, profdecode.Limits{}, nil)
		if err != nil || len(pb.Sample) == 0 {
			return
		}
		base := &input.Set{Paths: []string{"a"}, Profiles: []input.Profile{{File: "a", Profile: pa}}}
		head := &input.Set{Paths: []string{"b"}, Profiles: []input.Profile{{File: "b", Profile: pb}}}
		res, err := Run(base, head, DefaultOptions)
		if err != nil {
			return
		}
		for _, f := range []report.Format{report.Text, report.Markdown, report.JSON} {
			if err := res.Render(&bytes.Buffer{}, f, RenderOptions{}); err != nil {
				t.Fatalf("render %s: %v", f, err)
			}
		}
	})
}

// fuzzMaxLines caps the lines of each side of FuzzCompareBench, and
// fuzzMaxBytes what a gzipped side may inflate to, so that one input costs
// milliseconds: a row's runs are at most that many.
const (
	fuzzMaxLines = 300
	fuzzMaxBytes = 256 << 10
)

// FuzzCompareBench runs benchmark text for base and head through what
// `perfhound compare` does with it: the files are read and recognised by
// input.Load (gzip, detection, benchfmt, non-finite values, long lines),
// compared by Run and rendered in every format. It must end in a result or
// a documented input error, never a panic; the JSON must be valid; and the
// text and markdown must hold no control character but newlines, whatever
// the names in the input.
//
//	go test -run '^$' -fuzz '^FuzzCompareBench$' -fuzztime 3m ./analyzer/compare
func FuzzCompareBench(f *testing.F) {
	seeds := [][2]string{
		{"../../fixtures/corpus/HashBlocks-10/base/run-01.txt", "../../fixtures/corpus/HashBlocks-10/head/run-01.txt"},
		{"../../fixtures/corpus/null-1/base/run-02.txt", "../../fixtures/corpus/null-1/head/run-02.txt"},
		{"testdata/nonfinite/base.txt", "testdata/nonfinite/head.txt"},
	}
	for _, s := range seeds {
		b, errb := os.ReadFile(s[0])
		h, errh := os.ReadFile(s[1])
		if errb != nil || errh != nil {
			f.Fatalf("seed %v: %v %v", s, errb, errh)
		}
		f.Add(b, h)
	}
	var base, head strings.Builder
	for i := range 8 {
		fmt.Fprintf(&base, "BenchmarkE\x1b[2J|*_`<a>[x](y)-2\t1000\t%d ns/op\t%d B/op\t1e-300 x/op\n", 100+i, 64)
		fmt.Fprintf(&head, "BenchmarkE\x1b[2J|*_`<a>[x](y)-2\t1000\t%d ns/op\t%d B/op\t1e300 x/op\tNaN y/op\n", 150+i, 64)
	}
	f.Add([]byte(base.String()), []byte(head.String()))
	f.Add([]byte("BenchmarkA 1 -1.7e308 ns/op\nBenchmarkA 1 1.7e308 ns/op\n"), []byte("BenchmarkA 1 +Inf ns/op\nBenchmarkA 1 0 ns/op\n"))

	// One directory for the whole run (each worker process has its own):
	// a new one per input cost more than the comparison.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, base, head []byte) {
		if bytes.Count(base, []byte("\n")) > fuzzMaxLines || bytes.Count(head, []byte("\n")) > fuzzMaxLines {
			return
		}
		lim := input.Limits{MaxFileBytes: fuzzMaxBytes}
		load := func(name string, data []byte) (*input.Set, error) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return input.Load([]string{p}, lim)
		}
		b, err := load("base.txt", base)
		if err != nil {
			inputError(t, err)
			return
		}
		h, err := load("head.txt", head)
		if err != nil {
			inputError(t, err)
			return
		}
		res, err := Run(b, h, DefaultOptions)
		if err != nil {
			if !errors.Is(err, benchdiff.ErrNoCommon) && !errors.Is(err, ErrMismatch) && !errors.Is(err, profdiff.ErrSampleTypes) {
				t.Fatalf("Run: undocumented error %v", err)
			}
			return
		}
		if tab := res.Benchmarks; tab != nil {
			for _, row := range tab.Rows {
				if row.Base.N == 0 || row.Head.N == 0 {
					t.Fatalf("row %s %s compared with no values", row.Name, row.Unit)
				}
			}
		}
		for _, format := range []report.Format{report.Text, report.Markdown, report.JSON} {
			var out bytes.Buffer
			if err := res.Render(&out, format, RenderOptions{}); err != nil {
				t.Fatalf("render %s: %v", format, err)
			}
			if format == report.JSON {
				if !json.Valid(out.Bytes()) {
					t.Fatalf("invalid JSON:\n%s", out.Bytes())
				}
				continue
			}
			if i := bytes.IndexFunc(out.Bytes(), func(r rune) bool { return r < ' ' && r != '\n' || r == 0x7f }); i >= 0 {
				t.Fatalf("%s output holds control character %q at byte %d:\n%s", format, out.Bytes()[i], i, out.Bytes())
			}
		}
	})
}

// inputError fails t unless err is one of input's documented problems with
// a file: a *input.FileError naming it.
func inputError(t *testing.T, err error) {
	t.Helper()
	var fe *input.FileError
	if !errors.As(err, &fe) || fe.File == "" {
		t.Fatalf("Load: %v is not a *input.FileError", err)
	}
}

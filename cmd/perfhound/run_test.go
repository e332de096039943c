package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/spf13/cobra"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// benchRuns writes n runs of `go test -bench` output with the given ns/op
// centres and 1% noise.
func benchRuns(t *testing.T, dir string, n int, seed uint64, centres map[string]float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		var b strings.Builder
		b.WriteString("goos: linux\ngoarch: amd64\npkg: example.com/p\ncpu: test\n")
		for _, name := range []string{"Parse", "Hash"} {
			if c, ok := centres[name]; ok {
				fmt.Fprintf(&b, "Benchmark%s-2\t10000\t%.1f ns/op\t128 B/op\t2 allocs/op\n", name, c*(1+0.01*rng.NormFloat64()))
			}
		}
		b.WriteString("PASS\nok  \texample.com/p\t1.2s\n")
		writeFile(t, filepath.Join(dir, fmt.Sprintf("run-%02d.txt", i)), []byte(b.String()))
	}
}

func writeFile(t *testing.T, p string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "perfhound ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

func TestCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	base, head := filepath.Join(dir, "base"), filepath.Join(dir, "head")
	benchRuns(t, base, 10, 1, map[string]float64{"Parse": 1000, "Hash": 500})
	benchRuns(t, head, 10, 2, map[string]float64{"Parse": 1150, "Hash": 500})

	code, out, errOut := runCLI(t, "compare", base, head)
	if code != 1 || !strings.Contains(out, "FAIL: 1 regression") || errOut != "" {
		t.Errorf("regression: code %d (want 1), stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "compare", "--fail-on", "never", base, head); code != 0 {
		t.Errorf("--fail-on never: code %d, want 0", code)
	}
	if code, _, _ := runCLI(t, "compare", "--threshold", "30", base, head); code != 0 {
		t.Errorf("--threshold 30: code %d, want 0 (a 15%% change is under it)", code)
	}
	if code, _, _ := runCLI(t, "compare", base, base); code != 0 {
		t.Errorf("base vs itself: code %d, want 0", code)
	}

	code, out, _ = runCLI(t, "compare", "--format", "json", base, head)
	var res struct {
		Schema      string
		Failed      bool
		Regressions []struct {
			Kind      string
			Benchmark string
			Unit      string
			DeltaPct  float64 `json:"delta_pct"`
			P         float64 `json:"p_value"`
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if code != 1 || res.Schema != "perfhound.compare/v1" || !res.Failed || len(res.Regressions) != 1 ||
		res.Regressions[0].Benchmark != "Parse-2" || res.Regressions[0].Unit != "sec/op" || res.Regressions[0].DeltaPct < 10 || res.Regressions[0].P >= 0.05 {
		t.Errorf("json: code %d, %+v", code, res)
	}

	code, out, _ = runCLI(t, "compare", "-f", "markdown", base, head)
	if code != 1 || !strings.Contains(out, "### ❌ perfhound compare") || !strings.Contains(out, "| `Parse-2` | sec/op |") {
		t.Errorf("markdown: code %d\n%s", code, out)
	}
	outFile := filepath.Join(dir, "report.md")
	if code, _, _ := runCLI(t, "compare", "-f", "markdown", "-o", outFile, base, head); code != 1 {
		t.Errorf("-o: code %d", code)
	}
	if b, _ := os.ReadFile(outFile); !bytes.Contains(b, []byte("perfhound compare")) {
		t.Errorf("-o wrote %q", b)
	}
}

func TestCompareBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	benchRuns(t, good, 3, 1, map[string]float64{"Parse": 1000})
	other := filepath.Join(dir, "other")
	benchRuns(t, other, 3, 1, map[string]float64{"Hash": 1000})

	cpu := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Function:   []*profile.Function{{ID: 1, Name: "main.f"}},
	}
	cpu.Location = []*profile.Location{{ID: 1, Line: []profile.Line{{Function: cpu.Function[0]}}}}
	cpu.Sample = []*profile.Sample{{Location: cpu.Location, Value: []int64{1, 10}}}
	heap := cpu.Copy()
	heap.SampleType = []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"}}
	noSamples := cpu.Copy()
	noSamples.Sample = nil
	enc := func(p *profile.Profile) []byte {
		var b bytes.Buffer
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	cpuFile := writeFile(t, filepath.Join(dir, "cpu.pb.gz"), enc(cpu))
	heapFile := writeFile(t, filepath.Join(dir, "heap.pb.gz"), enc(heap))
	full := enc(cpu)
	truncated := writeFile(t, filepath.Join(dir, "truncated.pb.gz"), full[:len(full)-10])
	empty := writeFile(t, filepath.Join(dir, "empty.txt"), nil)
	nosamp := writeFile(t, filepath.Join(dir, "nosamples.pb.gz"), enc(noSamples))
	prose := writeFile(t, filepath.Join(dir, "notes.txt"), []byte("hello\n"))
	var raw bytes.Buffer
	if err := cpu.WriteUncompressed(&raw); err != nil {
		t.Fatal(err)
	}
	cut := writeFile(t, filepath.Join(dir, "cut.pb"), raw.Bytes()[:raw.Len()-3])

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"one argument", []string{"compare", good}, "needs BASE and HEAD"},
		{"bad flag", []string{"compare", "--nope", good, good}, "unknown flag"},
		{"bad format", []string{"compare", "-f", "xml", good, good}, "unknown format"},
		{"bad policy", []string{"compare", "--fail-on", "sometimes", good, good}, "unknown policy"},
		{"missing", []string{"compare", filepath.Join(dir, "nope"), good}, "nope: no such file"},
		{"empty", []string{"compare", empty, good}, "empty.txt: empty file"},
		{"truncated gzip", []string{"compare", truncated, cpuFile}, "truncated.pb.gz: decompressing gzip (truncated?)"},
		{"no samples", []string{"compare", nosamp, cpuFile}, "nosamples.pb.gz: pprof profile has no samples"},
		{"unrecognised", []string{"compare", prose, good}, "notes.txt: neither Go benchmark output nor a pprof profile"},
		{"broken profile", []string{"compare", cut, cpuFile}, "cut.pb: looks like a pprof profile but does not parse: parsing pprof: "},
		{"nothing in common", []string{"compare", good, other}, "no benchmark in common"},
		{"alpha NaN", []string{"compare", "--alpha", "NaN", good, good}, "--alpha NaN: want a number between 0 and 1"},
		{"alpha 0", []string{"compare", "--alpha", "0", good, good}, "--alpha 0: want a number between 0 and 1"},
		{"alpha 1", []string{"compare", "--alpha", "1", good, good}, "--alpha 1: want a number between 0 and 1"},
		{"alpha Inf", []string{"compare", "--alpha", "+Inf", good, good}, "--alpha +Inf: want a number between 0 and 1"},
		{"threshold NaN", []string{"compare", "--threshold", "NaN", good, good}, "--threshold NaN: want a percentage of 0 or more"},
		{"threshold negative", []string{"compare", "--threshold", "-1", good, good}, "--threshold -1: want a percentage of 0 or more"},
		{"threshold Inf", []string{"compare", "--threshold", "Inf", good, good}, "--threshold +Inf: want a percentage of 0 or more"},
		{"max-input-mb 0", []string{"compare", "--max-input-mb", "0", good, good}, "--max-input-mb 0: want 1 to 8796093022207"},
		{"max-input-mb negative", []string{"compare", "--max-input-mb", "-5", good, good}, "--max-input-mb -5: want 1 to"},
		{"max-input-mb overflow", []string{"compare", "--max-input-mb", "9000000000000", good, good}, "--max-input-mb 9000000000000: want 1 to"},
		{"sample types", []string{"compare", cpuFile, heapFile}, "heap.pb.gz: sample types differ"},
		{"kinds", []string{"compare", good, cpuFile}, "base has benchmark results (3) but head has none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != 2 {
				t.Errorf("code %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			first, _, _ := strings.Cut(errOut, "\n")
			if !strings.HasPrefix(first, "perfhound: ") || !strings.Contains(first, tc.want) {
				t.Errorf("stderr %q, want one line saying %q", errOut, tc.want)
			}
		})
	}
}

// Every command's --help shows examples.
func TestHelpHasExamples(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	cmds := append([]*cobra.Command{root}, root.Commands()...)
	for _, c := range cmds {
		if c.Name() == "help" || c.Name() == "completion" {
			continue // cobra's own
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
		code, out, _ := runCLI(t, append(strings.Fields(c.CommandPath())[1:], "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: code %d, no Examples section", c.CommandPath(), code)
		}
	}
}

// Real `go test -bench` output with NaN, +Inf and -Inf metrics compares
// (it took 24 GB before): the values are dropped with a note naming the
// file and line, in every format, and the JSON is valid.
func TestCompareNonFiniteBenchmarks(t *testing.T) {
	const dir = "../../analyzer/compare/testdata/nonfinite"
	base, head := filepath.Join(dir, "base.txt"), filepath.Join(dir, "head.txt")
	code, out, errOut := runCLI(t, "compare", "--fail-on", "never", base, head)
	if code != 0 || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	notes := out[strings.Index(out, "\nNotes\n"):]
	for _, want := range []string{
		"base: " + base + ":11: BenchmarkCold-2: not finite, dropped: -Inf balance/op, +Inf misses/hit",
		"head: " + head + ":17: BenchmarkIdle-2: not finite, dropped: NaN balance/op, NaN hits/lookup, NaN misses/hit",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(out, "NaN") && !strings.Contains(notes, "NaN") {
		t.Errorf("NaN outside the notes:\n%s", out)
	}
	code, out, _ = runCLI(t, "compare", "-f", "json", "--fail-on", "never", base, head)
	var res struct {
		Benchmarks struct {
			Rows []struct{ Name, Unit string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
		t.Fatalf("json: code %d, %v\n%s", code, err, out)
	}
	for _, r := range res.Benchmarks.Rows {
		if r.Name == "Idle-2" && r.Unit == "hits/lookup" {
			t.Errorf("a row of NaN values was compared: %+v", r)
		}
	}
}

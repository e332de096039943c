package compare

import (
	"github.com/perfhound/perfhound/internal/report"

	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/benchdiff"
	"github.com/perfhound/perfhound/analyzer/input"
	"github.com/perfhound/perfhound/analyzer/stat"
)

// Every number of a Result that is not finite is written as null: JSON
// has no infinity, and encoding/json fails the whole report on one.
func TestJSONWritesNonFiniteAsNull(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	r := &Result{
		Schema: Schema,
		Benchmarks: &benchdiff.Table{
			Rows: []benchdiff.Row{{Name: "X-2", Unit: "x/op", Base: benchdiff.Summary{Center: inf, Lo: math.Inf(-1), Hi: inf, N: 2},
				Delta: nan, DeltaLo: math.Inf(-1), DeltaHi: inf, P: nan}},
			Geomeans: []benchdiff.Geomean{{Unit: "x/op", Base: 1e-300, Head: 1e300, Delta: inf, Rows: 2}},
		},
		Regressions: []Finding{{Kind: "benchmark", Benchmark: "X-2", Unit: "x/op", Base: inf, Head: 1, DeltaPct: inf, P: nan,
			Change: stat.Regression, AttributedTo: []Attribution{{Function: "f", Delta: inf, DeltaFlat: nan, Share: inf, P: nan}}}},
	}
	var out bytes.Buffer
	if err := r.Render(&out, report.JSON, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Regressions []struct {
			Base, DeltaPct *float64
			AttributedTo   []struct{ Delta, Share *float64 } `json:"attributed_to"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if f := back.Regressions[0]; f.Base != nil || f.DeltaPct != nil || f.AttributedTo[0].Delta != nil || f.AttributedTo[0].Share != nil {
		t.Errorf("non-finite numbers not null:\n%s", out.Bytes())
	}
	for _, f := range []report.Format{report.Text, report.Markdown} {
		if err := r.Render(&bytes.Buffer{}, f, RenderOptions{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if strings.Contains(out.String(), "Inf") || strings.Contains(out.String(), "NaN") {
		t.Errorf("JSON spells out a non-finite number:\n%s", out.Bytes())
	}
}

// Values beyond the SI prefixes print in e-notation, not as hundreds of
// digits of tera.
func TestValueBeyondPrefixes(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{1e300, "1e+300"}, {-2.5e20, "-2.5e+20"}, {1e-300, "1e-300"}, {254.1e-6, "254.1µ"}, {0, "0.000"}, {math.NaN(), "?"}} {
		if got := value(tc.v, "sec/op"); got != tc.want {
			t.Errorf("value(%g) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// A benchmark's name and unit come from whoever wrote the benchmark (or
// its output): in the terminal they must not clear the screen, set the
// title or back over text, and in markdown they must not make links, HTML,
// emphasis or extra table cells. Both sides' files are read the way the
// CLI reads them, and the name also reaches the notes.
func TestHostileNamesAreEscaped(t *testing.T) {
	const name = "BenchmarkEvil\x1b[2J\x1b]0;title\x07\b|*_`<img/src=x>[a](http://e)~~s~~-2"
	dir := t.TempDir()
	var base, head strings.Builder
	for i := range 6 {
		fmt.Fprintf(&base, "%s\t1000\t%d ns/op\t5 wid\x1b[7mgets/op\n", name, 100+i)
		fmt.Fprintf(&head, "%s\t1000\t%d ns/op\t5 wid\x1b[7mgets/op\tNaN x/op\n", name, 150+i)
	}
	set := func(side, text string) *input.Set {
		p := filepath.Join(dir, side+"\x1b[1m.txt")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := input.Load([]string{p}, input.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	res, err := Run(set("base", base.String()), set("head", head.String()), DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Regressions) != 1 {
		t.Fatalf("regressions = %+v, want the 50%% slower Evil", res.Regressions)
	}
	var text, md bytes.Buffer
	if err := res.Render(&text, report.Text, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := res.Render(&md, report.Markdown, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	for format, out := range map[string]string{"text": text.String(), "markdown": md.String()} {
		if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && r < ' ' }); i >= 0 {
			t.Errorf("%s output holds control character %q at byte %d:\n%s", format, out[i], i, out)
		}
	}
	if !strings.Contains(text.String(), `Evil\x1b[2J\x1b]0;title\a\b|*_`+"`"+`<img/src=x>[a](http://e)~~s~~-2  sec/op`) {
		t.Errorf("text does not show the escaped name:\n%s", text.String())
	}
	// Outside code spans (where markdown is shown as it is), nothing of the
	// name may act: escaped backticks (\`) do not open a span.
	prose := codeSpan.ReplaceAllString(strings.ReplaceAll(md.String(), "\\`", ""), "")
	for _, bad := range []string{"<img", "a](http", "~~s", "*_"} {
		if strings.Contains(prose, bad) {
			t.Errorf("markdown holds %q unescaped outside code spans:\n%s", bad, prose)
		}
	}
	// Every table row keeps its columns: count the pipes no backslash escapes.
	for _, line := range strings.Split(md.String(), "\n") {
		if !strings.HasPrefix(line, "| `Evil") {
			continue
		}
		cells := len(strings.Split(strings.ReplaceAll(line, `\|`, ""), "|")) - 2
		if cells != 8 && cells != 6 {
			t.Errorf("table row has %d cells: %s", cells, line)
		}
	}
}

var codeSpan = regexp.MustCompile("`[^`]*`")

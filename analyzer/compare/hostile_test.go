package compare

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/benchdiff"
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
	if err := r.Render(&out, JSON, RenderOptions{}); err != nil {
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
	for _, f := range []Format{Text, Markdown} {
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

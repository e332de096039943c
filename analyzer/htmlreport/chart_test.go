package htmlreport

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/net/html"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// seriesOf is a series of values one second apart from the Unix epoch.
func seriesOf(name observation.SeriesName, unit string, vs ...float64) observation.Series {
	s := observation.Series{Name: name, Unit: unit}
	for i, v := range vs {
		s.Points = append(s.Points, observation.Point{Time: time.Unix(int64(i), 0), Value: v})
	}
	return s
}

// chartsWithin runs charts and fails the test if it does not return: the
// tick loops of an infinite or overflowing range never ended.
func chartsWithin(t *testing.T, o *observation.Observation) chartSet {
	t.Helper()
	done := make(chan chartSet, 1)
	go func() { done <- charts(o) }()
	select {
	case set := <-done:
		return set
	case <-time.After(30 * time.Second):
		t.Fatalf("charts did not return in 30 s: a tick loop does not end")
	}
	return chartSet{}
}

// checkChart checks what every chart must be whatever its data: a few
// ticks with short labels, every coordinate a finite number inside the
// chart's box, and a line for each series drawn.
func checkChart(t *testing.T, c chart) {
	t.Helper()
	inBox := func(what string, x, y float64) {
		t.Helper()
		if math.IsNaN(x) || math.IsNaN(y) || x < 0 || x > float64(c.W) || y < 0 || y > float64(c.H) {
			t.Errorf("chart %s: %s at (%v, %v), outside the box %dx%d", c.Title, what, x, y, c.W, c.H)
		}
	}
	if n := len(c.YTicks); n < 2 || n > maxTicks {
		t.Errorf("chart %s: %d y ticks, want 2..%d: %+v", c.Title, n, maxTicks, c.YTicks)
	}
	if n := len(c.XTicks); n < 1 || n > maxTicks {
		t.Errorf("chart %s: %d x ticks, want 1..%d", c.Title, n, maxTicks)
	}
	for _, tk := range c.YTicks {
		inBox("y tick "+tk.Label, c.X0, tk.Pos)
		if len(tk.Label) > 16 || tk.Label == "" || strings.Contains(tk.Label, "?") || strings.HasPrefix(tk.Label, "-0") && !strings.ContainsAny(tk.Label, "123456789") {
			t.Errorf("chart %s: y tick label %q", c.Title, tk.Label)
		}
	}
	for _, tk := range c.XTicks {
		inBox("x tick "+tk.Label, tk.Pos, c.Y1)
	}
	// Ticks go down the chart as their values go up, without repeating.
	for i := 1; i < len(c.YTicks); i++ {
		if c.YTicks[i].Pos >= c.YTicks[i-1].Pos || c.YTicks[i].Label == c.YTicks[i-1].Label {
			t.Errorf("chart %s: y ticks %+v and %+v out of order or the same", c.Title, c.YTicks[i-1], c.YTicks[i])
		}
	}
	for _, l := range c.Lines {
		if l.Path == "" {
			t.Errorf("chart %s: line %q has no path", c.Title, l.Label)
		}
		for _, m := range regexp.MustCompile(`[ML]\S+ \S+`).FindAllString(l.Path, -1) {
			x, errx := strconv.ParseFloat(strings.Fields(m[1:])[0], 64)
			y, erry := strconv.ParseFloat(strings.Fields(m[1:])[1], 64)
			if errx != nil || erry != nil {
				t.Errorf("chart %s: path segment %q is not two numbers", c.Title, m)
				continue
			}
			inBox("path point", x, y)
		}
		for _, d := range l.Dots {
			inBox("dot", d.X, d.Y)
		}
		if len(l.Summary) > 60 || svgNotNumber.MatchString(l.Summary) {
			t.Errorf("chart %s: summary %q", c.Title, l.Summary)
		}
	}
}

// TestChartExtremeValues draws series whose values are at the ends of
// what a float64 holds, not numbers at all, or not quite zero: each chart
// is drawn in bounded time and size with finite coordinates, and says
// what it left out.
func TestChartExtremeValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	const big = math.MaxFloat64
	tiny := math.SmallestNonzeroFloat64
	cases := []struct {
		name      string
		unit      string
		values    []float64
		nonFinite int
	}{
		{"±1e308", "ops/s", []float64{-1e308, 1e308, 0, 5e307}, 0},
		{"zero to max", "ops/s", []float64{0, big, big / 2}, 0},
		{"-max to zero", "ops/s", []float64{-big, 0, -1}, 0},
		{"±max", "ops/s", []float64{-big, big}, 0},
		{"±max seconds", "seconds", []float64{-big, big, 1}, 0},
		{"max bytes", "bytes", []float64{0, big}, 0},
		{"max ratio", "ratio", []float64{0, big, 0.5}, 0},
		{"max percent", "percent", []float64{-big, 50}, 0},
		{"ratio of 10¹⁵%", "ratio", []float64{-5e12, 1}, 0},
		{"max nanoseconds", "nanoseconds", []float64{1, big}, 0},
		{"not numbers", "ops/s", []float64{nan, 1, inf, 2, math.Inf(-1), 3, nan}, 4},
		{"nan first", "ops/s", []float64{nan, 5, 6}, 1},
		{"denormals", "ops/s", []float64{0, tiny, 1e-310, 3 * tiny}, 0},
		{"denormal negative", "ratio", []float64{-tiny, 0, tiny}, 0},
		{"tiny", "percent", []float64{1e-300, 3e-300}, 0},
		{"negative zero", "percent", []float64{math.Copysign(0, -1), -1e-20, 0}, 0},
		{"negative", "ops/s", []float64{-3, -1, -2}, 0},
		{"near max and min", "ops/s", []float64{big, big * (1 - 1e-15)}, 0},
		{"huge constant offset", "count", []float64{1e300, 1e300 + 1e285}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &observation.Observation{Meta: observation.Meta{Start: time.Unix(0, 0), Duration: 10 * time.Second}}
			o.Series = append(o.Series, seriesOf("process.cpu", tc.unit, tc.values...))
			set := chartsWithin(t, o)
			if len(set.Charts) != 1 {
				t.Fatalf("%d charts of a series that changes, want 1 (flat %d, no finite %d)", len(set.Charts), set.Flat, set.NoFinite)
			}
			c := set.Charts[0]
			checkChart(t, c)
			if c.NonFinite != tc.nonFinite {
				t.Errorf("the chart says %d points were not finite, want %d", c.NonFinite, tc.nonFinite)
			}
			t.Logf("y ticks %v", c.YTicks)
		})
	}
}

// TestChartsNotDrawn checks which series get no chart, and that the set
// says why: constant over their finite points, or no finite point at all.
func TestChartsNotDrawn(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	o := &observation.Observation{Meta: observation.Meta{Start: time.Unix(0, 0), Duration: 10 * time.Second}}
	for i, vs := range [][]float64{
		{nan, nan},
		{inf, math.Inf(-1), nan},
		{nan, 7, inf},     // a single finite point
		{5, nan, 5},       // constant where it is a number
		{math.MaxFloat64}, // a single point
		{1e308, 1e308},    // constant and huge
	} {
		s := seriesOf("host.disk.ops", "ops/s", vs...)
		s.Labels = map[string]string{"device": fmt.Sprint(i)}
		o.Series = append(o.Series, s)
	}
	set := chartsWithin(t, o)
	if len(set.Charts) != 0 || set.NoFinite != 2 || set.Flat != 4 {
		t.Errorf("%d charts, %d series without a finite value, %d flat: want 0, 2, 4", len(set.Charts), set.NoFinite, set.Flat)
	}
}

// svgNotNumber matches what no SVG attribute may hold: a number that is
// not one.
var svgNotNumber = regexp.MustCompile(`(?i)nan|inf`)

// checkSVG checks every attribute of the page's SVG elements that holds
// coordinates or sizes: finite numbers only.
func checkSVG(t testing.TB, b []byte) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	var walk func(n *html.Node, inSVG bool)
	walk = func(n *html.Node, inSVG bool) {
		if n.Type == html.ElementNode {
			inSVG = inSVG || n.Data == "svg"
			if inSVG {
				for _, a := range n.Attr {
					switch a.Key {
					case "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height", "d", "viewbox":
						if svgNotNumber.MatchString(a.Val) || len(a.Val) > 20*maxPointsPerLine {
							t.Errorf("<%s %s=%.80q>", n.Data, a.Key, a.Val)
						}
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inSVG)
		}
	}
	walk(doc, false)
}

// TestWriteExtremeSeries renders a whole report, verdict and all, of an
// observation whose series hold the extremes of a float64 and values that
// are not numbers: the page is whole, its drawings finite, and it says
// what it did not draw.
func TestWriteExtremeSeries(t *testing.T) {
	o, _ := load(t, "cpu-hash")
	nan, inf := math.NaN(), math.Inf(1)
	for _, s := range []observation.Series{
		seriesOf("process.cpu", "ratio", -1e308, 1e308, nan, 0.5),
		seriesOf("process.memory.rss", "bytes", 0, math.MaxFloat64, inf),
		seriesOf("host.psi", "ratio", nan, nan),
		seriesOf("go.gc.pause", "seconds", math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64),
	} {
		s.Labels = map[string]string{"extreme": "yes"}
		o.Series = append(o.Series, s)
	}
	v := verdict.Judge(o, verdict.DefaultThresholds())
	done := make(chan []byte, 1)
	go func() { done <- render(t, Report{Observation: o, Verdict: v}) }()
	var b []byte
	select {
	case b = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the report was not written in 30 s")
	}
	checkSVG(t, b)
	p := parse(t, b)
	page := text(p.doc)
	for _, want := range []string{"1 point is not a finite number (NaN or infinite): not drawn",
		"not charted: no point of it is a finite number"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}

// TestHugeProfileValues renders profiles whose sample values sum past
// int64: the flame graph's frames stay within their parents and its total
// is their sum, the goroutine table's shares within 0..1.
func TestHugeProfileValues(t *testing.T) {
	o, _ := load(t, "contention-go-mutex")
	cpu := synthetic(3, func(int) int64 { return math.MaxInt64 })
	gor := synthetic(3, func(int) int64 { return math.MaxInt64 })
	gor.SampleType, gor.DefaultSampleType = []*profile.ValueType{{Type: "goroutine", Unit: "count"}}, ""
	for _, s := range gor.Sample {
		s.Value = s.Value[1:]
	}
	o.Profiles = []observation.Profile{
		{Kind: observation.KindCPU, Source: "pprof", Profile: cpu},
		{Kind: observation.KindGoroutine, Source: "pprof", Profile: gor},
	}
	v := verdict.Judge(o, verdict.DefaultThresholds())
	b := render(t, Report{Observation: o, Verdict: v})
	checkSVG(t, b)
	p := parse(t, b)
	d := p.flames["cpu"]
	if want := 3 * float64(math.MaxInt64); float64(d.Total) < want*(1-1e-12) {
		t.Errorf("flame graph total %v, want %v", d.Total, want)
	}
	var walk func(n []any)
	walk = func(n []any) {
		if n[1].(float64) < 0 {
			t.Errorf("frame %v has a negative value", n)
		}
		if len(n) == 4 {
			var sum float64
			for _, c := range n[3].([]any) {
				sum += c.([]any)[1].(float64)
				walk(c.([]any))
			}
			if sum > n[1].(float64)*(1+1e-12) {
				t.Errorf("children of %v sum to %v, over its value %v", n[0], sum, n[1])
			}
		}
	}
	walk(d.Root)
	g := goroutines(o)
	if g == nil || g.Total < 0 {
		t.Fatalf("goroutine table %+v", g)
	}
	var sum float64
	for _, r := range g.Rows {
		if r.Share < 0 || r.Share > 1 || r.Count < 0 {
			t.Errorf("row %+v", r)
		}
		sum += r.Share
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("the rows' shares sum to %v, want 1", sum)
	}
	if page := text(p.doc); strings.Contains(page, "-2562047h") {
		t.Errorf("the page has a wrapped duration")
	}
}

// TestChartGroups pins which chart a series goes in: a ranked name takes
// the names under it but not a longer name that merely starts like it,
// and a family's series share a chart, their lines named by the rest.
func TestChartGroups(t *testing.T) {
	order := chartOrder(observation.TargetProcess)
	for _, c := range []struct {
		name        observation.SeriesName
		title, line string
		rank        int
		ok          bool
	}{
		{observation.ProcessCPU, "process.cpu", "", 0, true},
		{observation.ProcessCPU + ".steal", "process.cpu.steal", "", 0, true},
		{observation.ProcessCPU + "set", "", "", 0, false},
		{observation.ProcessPSI, "process.psi", "", 2, true},
		{observation.ProcessPSIAvg10, "", "", 0, false},
		{observation.HostCPU, "host.cpu", "", 5, true},
		{observation.HostMemFree, "host.memory.*", "free", 7, true},
		{observation.GoHeapAlloc, "go.heap.*", "alloc", 4, true},
		{observation.HostLoad1, "", "", 0, false},
	} {
		_, title, line, rank, ok := groupOf(observation.Series{Name: c.name, Unit: "x"}, order)
		if title != c.title || line != c.line || rank != c.rank || ok != c.ok {
			t.Errorf("%s: chart %q, line %q, rank %d, %v; want %q, %q, %d, %v", c.name, title, line, rank, ok, c.title, c.line, c.rank, c.ok)
		}
	}
}

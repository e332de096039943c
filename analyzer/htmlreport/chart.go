package htmlreport

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Chart bounds: enough charts to show each resource's story, few enough
// lines per chart to tell them apart, and few enough points per line that
// an agent's hour-long window stays small.
const (
	maxCharts        = 16
	maxLines         = 8
	maxPointsPerLine = 240
	maxDots          = 60 // lines with more points get no hover dots
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 480, 170
	padL, padR             = 56, 10
	padT, padB             = 10, 22
	plotW, plotH   float64 = chartW - padL - padR, chartH - padT - padB
)

// linePalette is 8 colours distinct for most eyes, in the order lines get
// them (the largest line first).
var linePalette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// chart is one SVG line chart: a series name (or family) and unit.
type chart struct {
	Title  string
	Unit   string
	Common string // labels every line shares
	W, H   int
	// The plot's box and where the axes' labels go, for the template.
	X0, X1, Y1, YTick, YLabelX, YXLabel float64
	XTicks                              []tick
	YTicks                              []tick
	Lines                               []chartLine
	Hidden                              int // lines left out past maxLines
	// NonFinite counts the points of the lines drawn that are not finite
	// numbers (NaN or infinite): gaps in their line.
	NonFinite int
}

type tick struct {
	Pos   float64 // x or y in user units
	Label string
}

type chartLine struct {
	Color   string
	Label   string
	Summary string // mean and max, in the unit
	Path    string // the SVG path's d
	Dots    []dot
}

type dot struct {
	X, Y  float64
	Title string
}

// chartSet is the charts of an observation and what was left out.
type chartSet struct {
	Charts []chart
	// Flat counts the series not charted for being all zero or constant
	// over the window (or having a single finite point); NoFinite those
	// without a finite point; Over the charts past maxCharts.
	Flat, NoFinite, Over int
}

// chartEntry is one rank of chartOrder: a series name, which takes the
// names under it too (host.cpu takes host.cpu.count), or a family.
type chartEntry struct {
	name   observation.SeriesName
	family observation.SeriesFamily
}

// takes tells whether a series of the name is charted at this rank.
func (e chartEntry) takes(n observation.SeriesName) bool {
	if e.name != "" {
		return n == e.name || n.In(observation.SeriesFamily(e.name+"."))
	}
	return n.In(e.family)
}

// chartOrder ranks the series by how much they say about the target: its
// own first, then the host's, unless the host is the target.
func chartOrder(targetKind string) []chartEntry {
	process := []chartEntry{{name: observation.ProcessCPU}, {name: observation.ProcessRunDelay}, {name: observation.ProcessPSI},
		{family: observation.FamilyProcessMemory}, {family: observation.FamilyGo}}
	host := []chartEntry{{name: observation.HostCPU}, {name: observation.HostPSI},
		{family: observation.FamilyHostMemory}, {family: observation.FamilyHostDisk}, {family: observation.FamilyHostNet}}
	if targetKind == observation.TargetHost {
		return append(host, process...)
	}
	return append(process, host...)
}

// families are the names whose series share a chart per unit, the last
// part of the name telling the lines apart: host.memory.free and
// host.memory.cached read best side by side.
var families = []observation.SeriesFamily{observation.FamilyHostMemory, observation.FamilyProcessMemory, observation.FamilyGoHeap}

// groupOf says which chart a series goes in and how its line is named
// there, or ok false when the report does not chart it.
func groupOf(s observation.Series, order []chartEntry) (key, title, line string, rank int, ok bool) {
	switch s.Name {
	case observation.HostPSIAvg10, observation.ProcessPSIAvg10, observation.HostCPUCount:
		// PSI's avg10 smooths what host.psi gives as a rate; the CPU
		// count is in the header.
		return "", "", "", 0, false
	}
	rank = slices.IndexFunc(order, func(e chartEntry) bool { return e.takes(s.Name) })
	if rank < 0 {
		return "", "", "", 0, false
	}
	title = string(s.Name)
	for _, f := range families {
		if s.Name.In(f) {
			title, line = string(f)+"*", strings.TrimPrefix(string(s.Name), string(f))
			break
		}
	}
	return title + "\x00" + s.Unit, title, line, rank, true
}

// charts picks and draws the series worth a chart.
func charts(o *observation.Observation) chartSet {
	order := chartOrder(o.Meta.Target.Kind)
	type group struct {
		key, title, unit string
		rank             int
		members          []chartMember
	}
	groups := map[string]*group{}
	var keys []string
	for _, s := range o.Series {
		key, title, line, rank, ok := groupOf(s, order)
		if !ok || len(s.Points) == 0 {
			continue
		}
		g := groups[key]
		if g == nil {
			g = &group{key: key, title: title, unit: s.Unit, rank: rank}
			groups[key] = g
			keys = append(keys, key)
		}
		g.members = append(g.members, chartMember{s, line})
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := groups[keys[i]], groups[keys[j]]
		return a.rank < b.rank || a.rank == b.rank && a.key < b.key
	})

	t0, span := window(o)
	var set chartSet
	for _, k := range keys {
		g := groups[k]
		members := g.members
		// A host's per-CPU lines repeat its total's; keep the total.
		if hasLabel(members, "cpu", "all") {
			kept := members[:0:0]
			for _, m := range members {
				if c, ok := m.s.Labels["cpu"]; !ok || c == "all" {
					kept = append(kept, m)
				}
			}
			members = kept
		}
		var lines []observation.Series
		var names []string
		for _, m := range members {
			switch flatness(m.s.Points) {
			case noFinite:
				set.NoFinite++
				continue
			case constant:
				set.Flat++
				continue
			}
			lines = append(lines, m.s)
			names = append(names, m.line)
		}
		if len(lines) == 0 {
			continue
		}
		if len(set.Charts) == maxCharts {
			set.Over++
			continue
		}
		set.Charts = append(set.Charts, drawChart(g.title, g.unit, lines, names, t0, span))
	}
	return set
}

// chartMember is a series in a chart, with its name there.
type chartMember struct {
	s    observation.Series
	line string
}

func hasLabel(ms []chartMember, k, v string) bool {
	for _, m := range ms {
		if m.s.Labels[k] == v {
			return true
		}
	}
	return false
}

// What a series' finite values show over the window.
const (
	changing = iota
	constant // all the same (zero, or a constant such as the total memory), or only one
	noFinite // none: every point NaN or infinite
)

// flatness says whether a series says anything a chart would show: its
// finite values must take two values at least. Points that are not finite
// are left out of the chart, so they neither make a series change nor
// keep it from being flat.
func flatness(ps []observation.Point) int {
	first, n := 0.0, 0
	for _, p := range ps {
		if !finite(p.Value) {
			continue
		}
		if n > 0 && p.Value != first {
			return changing
		}
		first = p.Value
		n++
	}
	if n == 0 {
		return noFinite
	}
	return constant
}

// window is the time the charts span: the observation's, stretched to
// the points it has.
func window(o *observation.Observation) (time.Time, time.Duration) {
	t0 := o.Meta.Start
	var last time.Time
	for _, s := range o.Series {
		for _, p := range s.Points {
			if t0.IsZero() || p.Time.Before(t0) {
				t0 = p.Time
			}
			if p.Time.After(last) {
				last = p.Time
			}
		}
	}
	span := o.Meta.Duration
	if d := last.Sub(t0); d > span {
		span = d
	}
	if span <= 0 {
		span = time.Second
	}
	return t0, span
}

// drawChart lays lines out in the chart's box: time along, value up from
// zero (or the least value, if negative). Points that are not finite
// numbers are gaps in their line, counted in the chart's NonFinite.
func drawChart(title, unit string, lines []observation.Series, names []string, t0 time.Time, span time.Duration) chart {
	type ranked struct {
		s    observation.Series
		name string
		max  float64
		mean float64
	}
	rs := make([]ranked, len(lines))
	for i, s := range lines {
		r := ranked{s: s, name: names[i], max: math.Inf(-1)}
		r.mean = finiteMean(s.Points)
		for _, p := range s.Points {
			if finite(p.Value) {
				r.max = math.Max(r.max, p.Value)
			}
		}
		rs[i] = r
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].max > rs[j].max })
	c := chart{Title: title, Unit: unit, W: chartW, H: chartH,
		X0: padL, X1: padL + plotW, Y1: padT + plotH, YTick: padT + plotH + 4, YLabelX: padL - 5, YXLabel: chartH - 5}
	if len(rs) > maxLines {
		c.Hidden = len(rs) - maxLines
		rs = rs[:maxLines]
	}

	// Labels every line shares go under the title; the rest name lines.
	common := map[string]string{}
	for k, v := range rs[0].s.Labels {
		common[k] = v
	}
	for _, r := range rs[1:] {
		for k, v := range common {
			if r.s.Labels[k] != v {
				delete(common, k)
			}
		}
	}
	if len(rs) == 1 {
		common = rs[0].s.Labels
	}
	c.Common = textfmt.Labels(common)

	lo, hi := 0.0, 0.0
	for _, r := range rs {
		for _, p := range r.s.Points {
			if finite(p.Value) {
				lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
			} else {
				c.NonFinite++
			}
		}
	}
	y := newScale(lo, hi)
	for _, v := range y.ticks {
		c.YTicks = append(c.YTicks, tick{Pos: y.pos(v), Label: axis(v, y.step, unit)})
	}
	secs := span.Seconds()
	xs := timeStep(secs / 5)
	// xs is at least a fifth of secs: six ticks at most.
	for i := range int(secs/xs+1e-3) + 1 {
		v := float64(i) * xs
		c.XTicks = append(c.XTicks, tick{Pos: xOf(v, secs), Label: secondsLabel(v, xs)})
	}

	for i, r := range rs {
		l := chartLine{Color: linePalette[i%len(linePalette)]}
		var parts []string
		if r.name != "" {
			parts = append(parts, r.name)
		}
		if own := ownLabels(r.s.Labels, common); own != "" {
			parts = append(parts, own)
		}
		// A chart's only line needs no name: the title says it.
		l.Label = strings.Join(parts, " ")
		what := l.Label
		if what == "" {
			what = title
		}
		l.Summary = "mean " + value(r.mean, unit) + ", max " + value(r.max, unit)
		pts := downsample(r.s.Points, maxPointsPerLine)
		var d strings.Builder
		pen := false
		for _, p := range pts {
			if !finite(p.Value) {
				pen = false
				continue
			}
			x := xOf(p.Time.Sub(t0).Seconds(), secs)
			y := y.pos(p.Value)
			if pen {
				d.WriteString(" L")
			} else {
				d.WriteString(" M")
			}
			d.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
			d.WriteByte(' ')
			d.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
			pen = true
			if len(pts) <= maxDots {
				l.Dots = append(l.Dots, dot{X: x, Y: y,
					Title: fmt.Sprintf("%s at %s: %s", what, secondsLabel(p.Time.Sub(t0).Seconds(), 0.1), value(p.Value, unit))})
			}
		}
		l.Path = strings.TrimSpace(d.String())
		c.Lines = append(c.Lines, l)
	}
	return c
}

// finite reports whether v is a number a chart can draw.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// finiteMean is the mean of the finite values, 0 for none. Values near
// the float64 limit are divided before they are summed, so that the sum
// of two of them does not overflow.
func finiteMean(ps []observation.Point) float64 {
	var sum float64
	n := 0
	for _, p := range ps {
		if finite(p.Value) {
			sum += p.Value
			n++
		}
	}
	if n == 0 {
		return 0
	}
	if finite(sum) {
		return sum / float64(n)
	}
	sum = 0
	for _, p := range ps {
		if finite(p.Value) {
			sum += p.Value / float64(n)
		}
	}
	return sum
}

// xOf is the x of a time offset in a window of secs seconds.
func xOf(offset, secs float64) float64 {
	return round1(padL + plotW*clamp01(offset/secs))
}

// clamp01 keeps a fraction of the plot inside it; NaN, which no caller
// should pass, is 0 rather than a coordinate no browser draws.
func clamp01(f float64) float64 {
	if !(f > 0) {
		return 0
	}
	return math.Min(f, 1)
}

// scale is a chart's vertical axis: values from bottom to top, the ticks
// at multiples of step in between. Its bounds are the data's, rounded out
// to a tick where that is a float64: a series reaching MaxFloat64 tops the
// axis without a tick at 2e308.
type scale struct {
	bottom, top, step float64
	ticks             []float64
}

// Bounds of the vertical scale. A step is at least a quarter of the range,
// so that an axis has at most 4 steps plus the two partial ones its ends
// round out to, 7 ticks; and at least minStep, so that no tick or label
// is computed in subnormal numbers, whose precision runs out.
const (
	maxTicks = 8
	minStep  = 1e-300
)

// newScale is the axis of the finite range lo ≤ 0 ≤ hi: ticks at 1, 2 or
// 5 times a power of ten, about four steps, from 0 to 1 for a range of
// zero. It cannot loop: the ticks are counted from integers, and the
// quarters of the range are taken apart, so that ±MaxFloat64 do not
// overflow to an infinite range.
func newScale(lo, hi float64) scale {
	step := 1.0
	if raw := hi/4 - lo/4; raw > 0 {
		step = niceStep(math.Max(raw, minStep))
	}
	// |lo|, |hi| ≤ 4 steps: i0 and i1 are small integers.
	i0, i1 := math.Floor(lo/step), math.Ceil(hi/step)
	if i1 == i0 {
		i1++
	}
	sc := scale{bottom: i0 * step, top: i1 * step, step: step}
	if math.IsInf(sc.bottom, 0) {
		sc.bottom, i0 = lo, i0+1
	}
	if math.IsInf(sc.top, 0) {
		sc.top, i1 = hi, i1-1
	}
	for i := int(i0); i <= int(i1); i++ {
		sc.ticks = append(sc.ticks, float64(i)*step+0) // +0: no "-0"
	}
	return sc
}

// pos is the y of a value on the scale, rounded to a tenth of a unit. The
// span of an axis from -MaxFloat64 to MaxFloat64 is not a float64: such
// a scale is measured in halves.
func (sc scale) pos(v float64) float64 {
	f := (v - sc.bottom) / (sc.top - sc.bottom)
	if math.IsInf(sc.top-sc.bottom, 0) {
		f = (v/2 - sc.bottom/2) / (sc.top/2 - sc.bottom/2)
	}
	return round1(padT + plotH*(1-clamp01(f)))
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// ownLabels is the labels of a line that not every line of its chart has.
func ownLabels(labels, common map[string]string) string {
	own := map[string]string{}
	for k, v := range labels {
		if _, ok := common[k]; !ok {
			own[k] = v
		}
	}
	return textfmt.Labels(own)
}

// niceStep rounds a step up to 1, 2 or 5 times a power of ten. Steps
// past 1e308, whose rounding would overflow, and under minStep are not
// rounded.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	if raw > 1e308 || raw < minStep {
		return raw
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// timeStep rounds a step of time up to one a clock reads: 1, 2, 5, 10,
// 15, 30 seconds, 1, 2, 5, 10, 15, 30 minutes, hours.
func timeStep(raw float64) float64 {
	for _, s := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600} {
		if raw <= s {
			return s
		}
	}
	return 3600 * niceStep(raw/3600)
}

// secondsLabel is a time offset: "4s", "2.5s", "3m".
func secondsLabel(s, step float64) string {
	switch {
	case step >= 3600 && math.Mod(s, 3600) == 0:
		return strconv.FormatFloat(s/3600, 'f', -1, 64) + "h"
	case step >= 60 && math.Mod(s, 60) == 0:
		return strconv.FormatFloat(s/60, 'f', -1, 64) + "m"
	case step >= 1:
		return strconv.FormatFloat(math.Round(s), 'f', -1, 64) + "s"
	}
	return strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64) + "s"
}

// downsample keeps at most max points of a long series: each bucket's
// least and greatest finite values, in time order, so that spikes
// survive; a bucket without a finite value keeps its first point, a gap.
func downsample(ps []observation.Point, max int) []observation.Point {
	if len(ps) <= max {
		return ps
	}
	buckets := max / 2
	out := make([]observation.Point, 0, max)
	for b := 0; b < buckets; b++ {
		lo, hi := b*len(ps)/buckets, (b+1)*len(ps)/buckets
		if lo >= hi {
			continue
		}
		mi, ma := -1, -1
		for i := lo; i < hi; i++ {
			if !finite(ps[i].Value) {
				continue
			}
			if mi < 0 || ps[i].Value < ps[mi].Value {
				mi = i
			}
			if ma < 0 || ps[i].Value > ps[ma].Value {
				ma = i
			}
		}
		if mi < 0 {
			out = append(out, ps[lo])
			continue
		}
		if mi > ma {
			mi, ma = ma, mi
		}
		out = append(out, ps[mi])
		if ma != mi {
			out = append(out, ps[ma])
		}
	}
	return out
}

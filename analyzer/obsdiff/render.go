package obsdiff

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/perfhound/perfhound/analyzer/compare"
	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// RenderOptions tune the renderers.
type RenderOptions struct {
	// Color adds ANSI colours to text output; set it only for a terminal.
	Color bool
}

// Render writes d in format f: compare's text, markdown or json.
func (d *Diff) Render(w io.Writer, f compare.Format, o RenderOptions) error {
	switch f {
	case compare.JSON:
		return d.json(w)
	case compare.Markdown:
		return d.markdown(w)
	}
	return d.text(w, o)
}

// json writes d with the verdict's JSON conventions (verdict.EncodeJSON):
// indented, non-integral numbers to four significant digits, so that
// documents compare stably.
func (d *Diff) json(w io.Writer) error {
	if err := verdict.EncodeJSON(w, d); err != nil {
		return fmt.Errorf("obsdiff: %w", err)
	}
	return nil
}

const (
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiReset = "\x1b[0m"
)

type textReport struct {
	w     *errWriter
	color bool
}

func (r *textReport) paint(code, s string) string {
	if !r.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (r *textReport) section(title, note string) {
	r.w.printf("\n%s", r.paint(ansiBold, title))
	if note != "" {
		r.w.printf(" %s", r.paint(ansiDim, "("+note+")"))
	}
	r.w.printf("\n")
}

// textWidth is the width prose wraps to, as in the verdict's report.
const textWidth = 110

// para writes prose wrapped to textWidth, the first line after first and
// the rest after an indent as wide.
func (r *textReport) para(first, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(first))
	for i, l := range wrap(text, textWidth-len(indent)) {
		if i == 0 {
			r.w.printf("%s%s\n", first, l)
		} else {
			r.w.printf("%s%s\n", indent, l)
		}
	}
}

// wrap breaks text at spaces into lines of at most width runes; a word
// longer than the width gets a line of its own.
func wrap(text string, width int) []string {
	var lines []string
	var line strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		wn := utf8.RuneCountInString(word)
		if n > 0 && n+1+wn > width {
			lines = append(lines, line.String())
			line.Reset()
			n = 0
		}
		if n > 0 {
			line.WriteByte(' ')
			n++
		}
		line.WriteString(word)
		n += wn
	}
	if n > 0 || len(lines) == 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// table writes what a tabwriter aligned, its header row dimmed.
func (r *textReport) table(s string) {
	header, rest, _ := strings.Cut(s, "\n")
	r.w.printf("%s\n%s", r.paint(ansiDim, header), rest)
}

func (r *textReport) change(c stat.Change) string {
	switch c {
	case stat.Regression:
		return r.paint(ansiRed, "regression")
	case stat.Improvement:
		return r.paint(ansiGreen, "improvement")
	}
	return ""
}

// headline is the one-line answer.
func (d *Diff) headline() string {
	switch {
	case len(d.Regressions) > 0:
		return count(len(d.Regressions), "regression") + " " + d.floors()
	case len(d.Improvements) > 0 && d.Policy.FailOn == compare.FailOnChange:
		return count(len(d.Improvements), "change") + " " + d.floors()
	}
	s := "no regression " + d.floors()
	if n := len(d.Improvements); n > 0 {
		s += "; " + count(n, "improvement")
	}
	return s
}

func (d *Diff) floors() string {
	return fmt.Sprintf("beyond the %s and %.2f-thread thresholds", renderPct(d.Policy.Threshold), d.Policy.MinLoadChange)
}

func (d *Diff) text(w io.Writer, o RenderOptions) error {
	r := &textReport{w: &errWriter{w: w}, color: o.Color}
	r.w.printf("%s\n", r.paint(ansiBold, "perfhound compare: observations"))
	for _, s := range []struct {
		label string
		side  Side
	}{{"base", d.Base}, {"head", d.Head}} {
		r.w.printf("  %s:   %s\n", s.label, s.side.Name)
		if t := describe(s.side); t != "" {
			r.para("          ", t)
		}
	}
	r.w.printf("  policy: threshold %s and %.2f threads, fail on %s\n\n", renderPct(d.Policy.Threshold), d.Policy.MinLoadChange, d.Policy.FailOn)
	word, code := "OK", ansiGreen
	if d.Failed {
		word, code = "FAIL", ansiRed
	}
	r.w.printf("%s: %s\n", r.paint(ansiBold+code, word), d.headline())
	for _, s := range d.Regressions {
		r.para("  - "+r.paint(ansiRed, "regression")+": ", s)
	}
	for _, s := range d.Improvements {
		r.para("  - "+r.paint(ansiGreen, "improvement")+": ", s)
	}

	c := d.Class
	r.section("Class", "what the target is bound by, with the verdict's confidence")
	r.w.printf("  %s → %s", classText(c.Base, c.BaseConfidence, c.BaseSecondary), classText(c.Head, c.HeadConfidence, c.HeadSecondary))
	if m := r.change(c.Change); m != "" {
		r.w.printf("  %s", m)
	}
	r.w.printf("\n")

	if len(d.Load) > 0 {
		r.section("Load", "threads bound per second of wall time, by class")
		var t bytes.Buffer
		tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  class\tbase\thead\tchange\n")
		for _, l := range d.Load {
			// The mark is the line's last cell, outside the columns, so
			// that an unmarked row has no trailing spaces.
			fmt.Fprintf(tw, "  %s\t%.2f\t%.2f\t%s", l.Class, l.Base, l.Head, changeText(l.Base, l.Delta, l.Relative))
			if m := r.change(l.Change); m != "" {
				fmt.Fprintf(tw, "\t%s", m)
			}
			fmt.Fprintf(tw, "\n")
		}
		tw.Flush()
		r.table(t.String())
	}

	if b := d.Breakdown; len(b.Categories) > 0 {
		r.section("Where the time went", "thread time per second, most changed first; "+sourceText(b))
		var t bytes.Buffer
		tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  category\tbase\thead\tchange\n")
		for _, cat := range b.Categories {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cat.Category, perSec(cat.Base), perSec(cat.Head), deltaPerSec(cat.Base, cat.Delta, cat.Relative))
		}
		tw.Flush()
		r.table(t.String())
	}

	if len(d.Profiles) > 0 {
		r.section("Functions", "per second of each window, by the change of own cost; one profile a side: not tested")
		for _, p := range d.Profiles {
			r.w.printf("  %s %s (%s, %s → %s)\n", p.Source, p.Kind, p.SampleType, cost(p.BaseTotal, p.Unit), cost(p.HeadTotal, p.Unit))
			if p.Note != "" {
				r.w.printf("    %s\n", p.Note)
				continue
			}
			var t bytes.Buffer
			tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "    Δ own\tΔ flat\tΔ cum\tbase own\thead own\t\tfunction\n")
			for _, f := range p.Functions {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t\t%s\n", signedCost(f.Delta.Own, p.Unit), signedCost(f.Delta.Flat, p.Unit),
					signedCost(f.Delta.Cum, p.Unit), cost(f.Base.Own, p.Unit), cost(f.Head.Own, p.Unit), shortName(f.Name))
			}
			tw.Flush()
			r.table(t.String())
			if n := p.Changed - len(p.Functions); n > 0 {
				r.w.printf("    %s\n", r.paint(ansiDim, fmt.Sprintf("(and %s that changed less)", count(n, "more function"))))
			}
		}
	}

	if len(d.Resources) > 0 {
		r.section("USE", "utilization, saturation, errors of the host's resources, base → head")
		var t bytes.Buffer
		tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  resource\tutilization\tsaturation\terrors\tstatus\n")
		for _, res := range d.Resources {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", res.Resource, metricArrow(res.Utilization), metricArrow(res.Saturation),
				metricArrow(res.Errors), arrow(orDash(res.BaseStatus), orDash(res.HeadStatus)))
		}
		tw.Flush()
		r.table(t.String())
	}

	if len(d.Latency) > 0 {
		r.section("Latency", "percentiles as upper bounds of eBPF's log2 histograms, base → head")
		var t bytes.Buffer
		tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  wait\tcount\tp50\tp95\tp99\n")
		for _, l := range d.Latency {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.Name, latencyArrow(l, pCount), latencyArrow(l, p50), latencyArrow(l, p95), latencyArrow(l, p99))
		}
		tw.Flush()
		r.table(t.String())
	}

	r.section("Priorities", "the head's, marked against the base's; saving in threads, base → head")
	if len(d.Priorities) == 0 {
		r.w.printf("  none on either side\n")
	} else {
		var t bytes.Buffer
		tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "   #\tmark\tsaving\tclass\tremedy\tkind\tname\n")
		for _, p := range d.Priorities {
			rank := "-"
			if p.Rank > 0 {
				rank = strconv.Itoa(p.Rank)
			}
			fmt.Fprintf(tw, "  %2s\t%s\t%s\t%s\t%s\t%s\t%s\n", rank, r.mark(p.Mark), savingArrow(p), p.Class, p.Remedy, orDash(p.Kind), shortNames(p.Name))
		}
		tw.Flush()
		r.table(t.String())
	}

	if len(d.Findings) > 0 {
		r.section("Findings", "")
		for _, f := range d.Findings {
			r.para("  - ", fmt.Sprintf("%s: %s: %s  [%s]", sideText(f.Side), f.Kind, f.Text, f.Signal))
		}
	}
	if len(d.Missing) > 0 {
		r.section("Missing", "what the observations lacked, and what that costs the comparison")
		for _, m := range d.Missing {
			s := fmt.Sprintf("%s: %s: %s", sideText(m.Side), m.Signal, m.Reason)
			if m.Cost != "" {
				s += " — " + m.Cost
			}
			r.para("  - ", s)
		}
	}
	if len(d.Warnings) > 0 {
		r.section("Notes", "")
		for _, s := range d.Warnings {
			r.para("  - ", s)
		}
	}
	return r.w.err
}

func (r *textReport) mark(m string) string {
	switch m {
	case MarkNew, MarkGrew:
		return r.paint(ansiRed, m)
	case MarkGone, MarkShrank:
		return r.paint(ansiGreen, m)
	}
	return m
}

func (d *Diff) markdown(w io.Writer) error {
	ew := &errWriter{w: w}
	icon, word := "✅", "OK"
	if d.Failed {
		icon, word = "❌", "FAIL"
	}
	ew.printf("### %s perfhound compare: %s, %s\n\n", icon, word, mdText(d.headline()))
	ew.printf("Base `%s` vs head `%s`; threshold %s and %.2f threads, fail on %s.\n\n", mdCode(d.Base.Name), mdCode(d.Head.Name),
		renderPct(d.Policy.Threshold), d.Policy.MinLoadChange, d.Policy.FailOn)
	for _, s := range []struct {
		label string
		side  Side
	}{{"Base", d.Base}, {"Head", d.Head}} {
		if t := describe(s.side); t != "" {
			ew.printf("- %s: _%s_\n", s.label, mdText(t))
		}
	}
	for _, s := range d.Regressions {
		ew.printf("- **regression**: %s\n", mdText(s))
	}
	for _, s := range d.Improvements {
		ew.printf("- improvement: %s\n", mdText(s))
	}

	c := d.Class
	ew.printf("\n#### Class\n\n%s → %s", mdText(classText(c.Base, c.BaseConfidence, c.BaseSecondary)), mdText(classText(c.Head, c.HeadConfidence, c.HeadSecondary)))
	if c.Change != stat.Unchanged {
		ew.printf(" (**%s**)", c.Change)
	}
	ew.printf("\n")

	if len(d.Load) > 0 {
		ew.printf("\n#### Load\n\nThreads bound per second of wall time, by class.\n\n| class | base | head | change | |\n|---|--:|--:|--:|---|\n")
		for _, l := range d.Load {
			mark := ""
			if l.Change != stat.Unchanged {
				mark = "**" + l.Change.String() + "**"
			}
			ew.printf("| %s | %.2f | %.2f | %s | %s |\n", l.Class, l.Base, l.Head, changeText(l.Base, l.Delta, l.Relative), mark)
		}
	}

	if b := d.Breakdown; len(b.Categories) > 0 {
		ew.printf("\n#### Where the time went\n\nThread time per second of wall time, most changed first; %s.\n\n", mdText(sourceText(b)))
		ew.printf("| category | base | head | change |\n|---|--:|--:|--:|\n")
		for _, cat := range b.Categories {
			ew.printf("| `%s` | %s | %s | %s |\n", mdCode(cat.Category), perSec(cat.Base), perSec(cat.Head), deltaPerSec(cat.Base, cat.Delta, cat.Relative))
		}
	}

	if len(d.Profiles) > 0 {
		// Folded: a pull request comment leads with the class and load.
		ew.printf("\n<details><summary>Functions that changed most (%s)</summary>\n\n", count(len(d.Profiles), "profile kind"))
		ew.printf("Per second of each window. One profile a side has no replicate for a test of significance: functions are ranked by the change of their own cost.\n")
		for _, p := range d.Profiles {
			ew.printf("\n**%s %s** (`%s`, %s → %s)", mdText(p.Source), mdText(p.Kind), mdCode(p.SampleType), cost(p.BaseTotal, p.Unit), cost(p.HeadTotal, p.Unit))
			if p.Note != "" {
				ew.printf(": %s.\n", mdText(p.Note))
				continue
			}
			ew.printf("\n\n| Δ own | Δ flat | Δ cum | base own | head own | function |\n|--:|--:|--:|--:|--:|---|\n")
			for _, f := range p.Functions {
				ew.printf("| %s | %s | %s | %s | %s | `%s` |\n", signedCost(f.Delta.Own, p.Unit), signedCost(f.Delta.Flat, p.Unit),
					signedCost(f.Delta.Cum, p.Unit), cost(f.Base.Own, p.Unit), cost(f.Head.Own, p.Unit), mdCode(shortName(f.Name)))
			}
			if n := p.Changed - len(p.Functions); n > 0 {
				ew.printf("\nAnd %s that changed less.\n", count(n, "more function"))
			}
		}
		ew.printf("\n</details>\n")
	}

	if len(d.Resources) > 0 {
		ew.printf("\n#### USE\n\nBase → head.\n\n| resource | utilization | saturation | errors | status |\n|---|---|---|---|---|\n")
		for _, res := range d.Resources {
			ew.printf("| %s | %s | %s | %s | %s |\n", mdText(res.Resource), metricArrow(res.Utilization), metricArrow(res.Saturation),
				metricArrow(res.Errors), arrow(orDash(res.BaseStatus), orDash(res.HeadStatus)))
		}
	}

	if len(d.Latency) > 0 {
		ew.printf("\n#### Latency\n\nPercentiles as upper bounds of eBPF's log2 histograms, base → head.\n\n| wait | count | p50 | p95 | p99 |\n|---|--:|--:|--:|--:|\n")
		for _, l := range d.Latency {
			ew.printf("| %s | %s | %s | %s | %s |\n", mdText(l.Name), latencyArrow(l, pCount), latencyArrow(l, p50), latencyArrow(l, p95), latencyArrow(l, p99))
		}
	}

	ew.printf("\n#### Priorities\n\n")
	if len(d.Priorities) == 0 {
		ew.printf("None on either side.\n")
	} else {
		ew.printf("The head's, marked against the base's; saving in threads, base → head.\n\n| # | mark | saving | class | remedy | kind | name |\n|--:|---|--:|---|---|---|---|\n")
		for _, p := range d.Priorities {
			rank := "-"
			if p.Rank > 0 {
				rank = strconv.Itoa(p.Rank)
			}
			mark := p.Mark
			if mark == MarkNew || mark == MarkGrew {
				mark = "**" + mark + "**"
			}
			ew.printf("| %s | %s | %s | %s | %s | %s | `%s` |\n", rank, mark, savingArrow(p), p.Class, mdText(p.Remedy), mdText(orDash(p.Kind)), mdCode(shortNames(p.Name)))
		}
	}

	if len(d.Findings) > 0 {
		ew.printf("\n#### Findings\n\n")
		for _, f := range d.Findings {
			ew.printf("- %s: **%s**: %s (`%s`)\n", sideText(f.Side), mdText(f.Kind), mdText(f.Text), mdCode(f.Signal))
		}
	}
	if len(d.Missing) > 0 {
		ew.printf("\n#### Missing\n\n")
		for _, m := range d.Missing {
			s := fmt.Sprintf("- %s: `%s`: %s", sideText(m.Side), mdCode(m.Signal), mdText(m.Reason))
			if m.Cost != "" {
				s += " — _" + mdText(m.Cost) + "_"
			}
			ew.printf("%s\n", s)
		}
	}
	if len(d.Warnings) > 0 {
		ew.printf("\n#### Notes\n\n")
		for _, s := range d.Warnings {
			ew.printf("- %s\n", mdText(s))
		}
	}
	return ew.err
}

// describe says what a side watched and when.
func describe(s Side) string {
	t := s.Target
	var what string
	switch {
	case t.Kind == "host":
		what = "the host"
	case len(t.Command) > 0:
		what = fmt.Sprintf("%s %s", t.Kind, strings.Join(t.Command, " "))
	case t.URL != "":
		what = t.URL
	case t.App != "":
		what = "app " + t.App
	case t.PID != 0:
		what = fmt.Sprintf("%s %d", t.Kind, t.PID)
	default:
		what = t.Kind
	}
	var when []string
	if s.Duration > 0 {
		when = append(when, s.Duration.Round(time.Millisecond).String())
	}
	if !s.Start.IsZero() {
		when = append(when, "from "+s.Start.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if len(when) > 0 {
		if what != "" {
			what += ", "
		}
		what += strings.Join(when, " ")
	}
	return what
}

func classText(c verdict.Class, confidence float64, secondary verdict.Class) string {
	s := fmt.Sprintf("%s (%s confidence", strings.ToUpper(string(c)), renderPct(confidence))
	if secondary != "" {
		s += ", secondary " + string(secondary)
	}
	return s + ")"
}

func sourceText(b BreakdownChange) string {
	if b.BaseSource == b.HeadSource {
		return "from " + sourceName(b.BaseSource)
	}
	return fmt.Sprintf("base from %s, head from %s", sourceName(b.BaseSource), sourceName(b.HeadSource))
}

func sourceName(s string) string {
	switch s {
	case "ebpf":
		return "eBPF thread states and stacks"
	case "proc":
		return "/proc CPU time and run delay"
	}
	return "nothing"
}

func sideText(s string) string {
	switch s {
	case "both":
		return "both"
	case "base":
		return "base only"
	}
	return "head only"
}

func arrow(b, h string) string {
	if b == h {
		return b
	}
	return b + " → " + h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func metricArrow(m *MetricChange) string {
	if m == nil {
		return "-"
	}
	cell := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return metricValue(*v, m.Unit)
	}
	return arrow(cell(m.Base), cell(m.Head))
}

// metricValue formats a USE value in its unit, briefly.
func metricValue(v float64, unit string) string {
	switch unit {
	case "ratio":
		return renderPct(v)
	case "seconds/s":
		return perSec(v)
	case "seconds":
		return time.Duration(v * 1e9).Round(time.Microsecond).String()
	case "bytes":
		return renderSI(v, "B")
	case "bytes/s":
		return renderSI(v, "B/s")
	case "count", "":
		return renderNum(v)
	}
	if rest, ok := strings.CutPrefix(unit, "count"); ok {
		return renderNum(v) + rest
	}
	return renderNum(v) + " " + unit
}

type percentile int

const (
	pCount percentile = iota
	p50
	p95
	p99
)

func latencyArrow(l LatencyChange, which percentile) string {
	cell := func(p *Percentiles) string {
		if p == nil {
			return "-"
		}
		switch which {
		case pCount:
			return strconv.FormatUint(p.Count, 10)
		case p50:
			return "≤ " + bound(p.P50)
		case p95:
			return "≤ " + bound(p.P95)
		}
		return "≤ " + bound(p.P99)
	}
	return arrow(cell(l.Base), cell(l.Head))
}

// bound formats a latency bound in seconds as the verdict does: rounded
// up to two significant digits, so that it stays an upper bound ("≤ 270µs"
// for 2^18 ns).
func bound(s float64) string {
	ns := s * 1e9
	if ns <= 0 {
		return "0s"
	}
	mag := math.Pow(10, math.Floor(math.Log10(ns))-1)
	d := time.Duration(math.Ceil(ns/mag) * mag)
	switch {
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		d = d.Round(10 * time.Nanosecond)
	}
	return d.String()
}

func savingArrow(p PriorityChange) string {
	switch p.Mark {
	case MarkNew:
		return "- → " + threads(p.Head)
	case MarkGone:
		return threads(p.Base) + " → -"
	}
	return threads(p.Base) + " → " + threads(p.Head)
}

func threads(v float64) string { return fmt.Sprintf("%.2f", v) }

func perSec(v float64) string { return fmt.Sprintf("%.2f s/s", v) }

func deltaPerSec(base, delta float64, rel *float64) string {
	if math.Abs(delta) < minShown {
		return "0"
	}
	s := fmt.Sprintf("%+.2f s/s", delta)
	if rel == nil || base < minShown {
		return s + " (from 0.00)"
	}
	return s + " (" + signedPct(*rel) + ")"
}

// cost formats a function's cost in its profile's unit.
func cost(v float64, unit string) string {
	per := ""
	if u, ok := strings.CutSuffix(unit, "/s"); ok {
		unit, per = u, "/s"
	}
	switch unit {
	case "seconds":
		if per != "" {
			return threeDigits(v) + " s/s"
		}
		return threeDigits(v) + " s"
	case "bytes":
		return renderSI(v, "B"+per)
	case "count":
		return threeDigits(v) + per
	}
	return threeDigits(v) + " " + unit + per
}

func signedCost(v float64, unit string) string {
	if v == 0 {
		return "0"
	}
	sign := "+"
	if v < 0 {
		sign = "-"
	}
	return sign + cost(math.Abs(v), unit)
}

// threeDigits formats a number to three decimals below 10, fewer above,
// and two significant digits below a thousandth: a function at a
// thousandth of a thread still shows.
func threeDigits(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a < 0.001:
		return fmt.Sprintf("%.2g", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func renderNum(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a < 0.01:
		return "<0.01"
	}
	return fmt.Sprintf("%.2f", v)
}

// renderPct is a ratio as a percentage, with a decimal under 10%.
func renderPct(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "?"
	case x == 0:
		return "0%"
	case math.Abs(x) < 0.001:
		return "<0.1%"
	case math.Abs(x) < 0.1:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", 100*x), ".0") + "%"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

func signedPct(x float64) string {
	if x >= 0 {
		return "+" + renderPct(x)
	}
	return "-" + renderPct(-x)
}

// renderSI scales v with SI prefixes: 1.2 MB/s.
func renderSI(v float64, unit string) string {
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.3g %s%s", v, prefixes[i], unit)
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// shortNames shortens each Go function name in a priority's name
// ("fsync from main.fsyncLoop").
func shortNames(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		words[i] = shortName(w)
	}
	return strings.Join(words, " ")
}

// mdText escapes text for a markdown table cell or list item.
func mdText(s string) string { return mdReplacer.Replace(s) }

var mdReplacer = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;")

// mdCode escapes text for a code span in a table.
func mdCode(s string) string { return strings.NewReplacer("|", `\|`, "`", "'").Replace(s) }

// errWriter keeps the first write error so renderers can write freely.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

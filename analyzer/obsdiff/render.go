package obsdiff

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/report"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// RenderOptions tune the renderers.
type RenderOptions struct {
	// Color adds ANSI colours to text output; set it only for a terminal.
	Color bool
}

// Render writes d in format f: text, markdown or json.
func (d *Diff) Render(w io.Writer, f report.Format, o RenderOptions) error {
	switch f {
	case report.JSON:
		return d.json(w)
	case report.Markdown:
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

type textReport struct {
	textfmt.Terminal
}

func (r *textReport) change(c stat.Change) string {
	switch c {
	case stat.Regression:
		return r.Paint(textfmt.Red, "regression")
	case stat.Improvement:
		return r.Paint(textfmt.Green, "improvement")
	}
	return ""
}

// headline is the one-line answer.
func (d *Diff) headline() string {
	switch {
	case len(d.Regressions) > 0:
		return textfmt.Plural(len(d.Regressions), "regression") + " " + d.floors()
	case len(d.Improvements) > 0 && d.Policy.FailOn == stat.FailOnChange:
		return textfmt.Plural(len(d.Improvements), "change") + " " + d.floors()
	}
	s := "no regression " + d.floors()
	if n := len(d.Improvements); n > 0 {
		s += "; " + textfmt.Plural(n, "improvement")
	}
	return s
}

func (d *Diff) floors() string {
	return fmt.Sprintf("beyond the %s and %.2f-thread thresholds", textfmt.Pct(d.Policy.Threshold), d.Policy.MinLoadChange)
}

func (d *Diff) text(w io.Writer, o RenderOptions) error {
	r := &textReport{textfmt.NewTerminal(w, o.Color)}
	r.Printf("%s\n", r.Paint(textfmt.Bold, "perfhound compare: observations"))
	for _, s := range []struct {
		label string
		side  Side
	}{{"base", d.Base}, {"head", d.Head}} {
		r.Printf("  %s:   %s\n", s.label, s.side.Name)
		if t := describe(s.side); t != "" {
			r.Para("          ", t)
		}
	}
	r.Printf("  policy: threshold %s and %.2f threads, fail on %s\n\n", textfmt.Pct(d.Policy.Threshold), d.Policy.MinLoadChange, d.Policy.FailOn)
	word, code := "OK", textfmt.Green
	if d.Failed {
		word, code = "FAIL", textfmt.Red
	}
	r.Printf("%s: %s\n", r.Paint(textfmt.Bold+code, word), d.headline())
	for _, s := range d.Regressions {
		r.Para("  - "+r.Paint(textfmt.Red, "regression")+": ", s)
	}
	for _, s := range d.Improvements {
		r.Para("  - "+r.Paint(textfmt.Green, "improvement")+": ", s)
	}

	c := d.Class
	r.Section("Class", "what the target is bound by, with the verdict's confidence")
	r.Printf("  %s → %s", classText(c.Base, c.BaseConfidence, c.BaseSecondary), classText(c.Head, c.HeadConfidence, c.HeadSecondary))
	if m := r.change(c.Change); m != "" {
		r.Printf("  %s", m)
	}
	r.Printf("\n")

	if len(d.Load) > 0 {
		r.Section("Load", "threads bound per second of wall time, by class")
		r.Columns(0, func(tw io.Writer) {
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
		})
	}

	if b := d.Breakdown; len(b.Categories) > 0 {
		r.Section("Where the time went", "thread time per second, most changed first; "+sourceText(b))
		r.Columns(0, func(tw io.Writer) {
			fmt.Fprintf(tw, "  category\tbase\thead\tchange\n")
			for _, cat := range b.Categories {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cat.Category, textfmt.PerSec(cat.Base), textfmt.PerSec(cat.Head), deltaPerSec(cat.Base, cat.Delta, cat.Relative))
			}
		})
	}

	if len(d.Profiles) > 0 {
		r.Section("Functions", "per second of each window, by the change of own cost; one profile a side: not tested")
		for _, p := range d.Profiles {
			r.Printf("  %s %s (%s, %s → %s)\n", p.Source, p.Kind, p.SampleType, cost(p.BaseTotal, p.Unit), cost(p.HeadTotal, p.Unit))
			if p.Note != "" {
				r.Printf("    %s\n", p.Note)
				continue
			}
			r.Columns(tabwriter.AlignRight, func(tw io.Writer) {
				fmt.Fprintf(tw, "    Δ own\tΔ flat\tΔ cum\tbase own\thead own\t\tfunction\n")
				for _, f := range p.Functions {
					fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t\t%s\n", signedCost(f.Delta.Own, p.Unit), signedCost(f.Delta.Flat, p.Unit),
						signedCost(f.Delta.Cum, p.Unit), cost(f.Base.Own, p.Unit), cost(f.Head.Own, p.Unit), textfmt.ShortName(f.Name))
				}
			})
			if n := p.Changed - len(p.Functions); n > 0 {
				r.Printf("    %s\n", r.Paint(textfmt.Dim, fmt.Sprintf("(and %s that changed less)", textfmt.Plural(n, "more function"))))
			}
		}
	}

	if len(d.Resources) > 0 {
		r.Section("USE", "utilization, saturation, errors of the host's resources, base → head")
		r.Columns(0, func(tw io.Writer) {
			fmt.Fprintf(tw, "  resource\tutilization\tsaturation\terrors\tstatus\n")
			for _, res := range d.Resources {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", res.Resource, metricArrow(res.Utilization), metricArrow(res.Saturation),
					metricArrow(res.Errors), arrow(textfmt.OrDash(res.BaseStatus), textfmt.OrDash(res.HeadStatus)))
			}
		})
	}

	if len(d.Latency) > 0 {
		r.Section("Latency", "percentiles as upper bounds of eBPF's log2 histograms, base → head")
		r.Columns(0, func(tw io.Writer) {
			fmt.Fprintf(tw, "  wait\tcount\tp50\tp95\tp99\n")
			for _, l := range d.Latency {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.Name, latencyArrow(l, pCount), latencyArrow(l, p50), latencyArrow(l, p95), latencyArrow(l, p99))
			}
		})
	}

	r.Section("Priorities", "the head's, marked against the base's; saving in threads, base → head")
	if len(d.Priorities) == 0 {
		r.Printf("  none on either side\n")
	} else {
		r.Columns(0, func(tw io.Writer) {
			fmt.Fprintf(tw, "   #\tmark\tsaving\tclass\tremedy\tkind\tname\n")
			for _, p := range d.Priorities {
				rank := "-"
				if p.Rank > 0 {
					rank = strconv.Itoa(p.Rank)
				}
				fmt.Fprintf(tw, "  %2s\t%s\t%s\t%s\t%s\t%s\t%s\n", rank, r.mark(p.Mark), savingArrow(p), p.Class, p.Remedy, textfmt.OrDash(p.Kind), textfmt.ShortNames(p.Name))
			}
		})
	}

	if len(d.Findings) > 0 {
		r.Section("Findings", "")
		for _, f := range d.Findings {
			r.Para("  - ", fmt.Sprintf("%s: %s: %s  [%s]", sideText(f.Side), f.Kind, f.Text, f.Signal))
		}
	}
	if len(d.Missing) > 0 {
		r.Section("Missing", "what the observations lacked, and what that costs the comparison")
		for _, m := range d.Missing {
			s := fmt.Sprintf("%s: %s: %s", sideText(m.Side), m.Signal, m.Reason)
			if m.Cost != "" {
				s += " — " + m.Cost
			}
			r.Para("  - ", s)
		}
	}
	if len(d.Warnings) > 0 {
		r.Section("Notes", "")
		for _, s := range d.Warnings {
			r.Para("  - ", s)
		}
	}
	return r.Err()
}

func (r *textReport) mark(m string) string {
	switch m {
	case MarkNew, MarkGrew:
		return r.Paint(textfmt.Red, m)
	case MarkGone, MarkShrank:
		return r.Paint(textfmt.Green, m)
	}
	return m
}

func (d *Diff) markdown(w io.Writer) error {
	ew := textfmt.NewWriter(w)
	icon, word := "✅", "OK"
	if d.Failed {
		icon, word = "❌", "FAIL"
	}
	ew.Printf("### %s perfhound compare: %s, %s\n\n", icon, word, textfmt.MarkdownText(d.headline()))
	ew.Printf("Base `%s` vs head `%s`; threshold %s and %.2f threads, fail on %s.\n\n", textfmt.MarkdownCode(d.Base.Name), textfmt.MarkdownCode(d.Head.Name),
		textfmt.Pct(d.Policy.Threshold), d.Policy.MinLoadChange, d.Policy.FailOn)
	for _, s := range []struct {
		label string
		side  Side
	}{{"Base", d.Base}, {"Head", d.Head}} {
		if t := describe(s.side); t != "" {
			ew.Printf("- %s: _%s_\n", s.label, textfmt.MarkdownText(t))
		}
	}
	for _, s := range d.Regressions {
		ew.Printf("- **regression**: %s\n", textfmt.MarkdownText(s))
	}
	for _, s := range d.Improvements {
		ew.Printf("- improvement: %s\n", textfmt.MarkdownText(s))
	}

	c := d.Class
	ew.Printf("\n#### Class\n\n%s → %s", textfmt.MarkdownText(classText(c.Base, c.BaseConfidence, c.BaseSecondary)), textfmt.MarkdownText(classText(c.Head, c.HeadConfidence, c.HeadSecondary)))
	if c.Change != stat.Unchanged {
		ew.Printf(" (**%s**)", c.Change)
	}
	ew.Printf("\n")

	if len(d.Load) > 0 {
		ew.Printf("\n#### Load\n\nThreads bound per second of wall time, by class.\n\n| class | base | head | change | |\n|---|--:|--:|--:|---|\n")
		for _, l := range d.Load {
			mark := ""
			if l.Change != stat.Unchanged {
				mark = "**" + l.Change.String() + "**"
			}
			ew.Printf("| %s | %.2f | %.2f | %s | %s |\n", l.Class, l.Base, l.Head, changeText(l.Base, l.Delta, l.Relative), mark)
		}
	}

	if b := d.Breakdown; len(b.Categories) > 0 {
		ew.Printf("\n#### Where the time went\n\nThread time per second of wall time, most changed first; %s.\n\n", textfmt.MarkdownText(sourceText(b)))
		ew.Printf("| category | base | head | change |\n|---|--:|--:|--:|\n")
		for _, cat := range b.Categories {
			ew.Printf("| `%s` | %s | %s | %s |\n", textfmt.MarkdownCode(cat.Category), textfmt.PerSec(cat.Base), textfmt.PerSec(cat.Head), deltaPerSec(cat.Base, cat.Delta, cat.Relative))
		}
	}

	if len(d.Profiles) > 0 {
		// Folded: a pull request comment leads with the class and load.
		ew.Printf("\n<details><summary>Functions that changed most (%s)</summary>\n\n", textfmt.Plural(len(d.Profiles), "profile kind"))
		ew.Printf("Per second of each window. One profile a side has no replicate for a test of significance: functions are ranked by the change of their own cost.\n")
		for _, p := range d.Profiles {
			ew.Printf("\n**%s %s** (`%s`, %s → %s)", textfmt.MarkdownText(p.Source), textfmt.MarkdownText(p.Kind), textfmt.MarkdownCode(p.SampleType), cost(p.BaseTotal, p.Unit), cost(p.HeadTotal, p.Unit))
			if p.Note != "" {
				ew.Printf(": %s.\n", textfmt.MarkdownText(p.Note))
				continue
			}
			ew.Printf("\n\n| Δ own | Δ flat | Δ cum | base own | head own | function |\n|--:|--:|--:|--:|--:|---|\n")
			for _, f := range p.Functions {
				ew.Printf("| %s | %s | %s | %s | %s | `%s` |\n", signedCost(f.Delta.Own, p.Unit), signedCost(f.Delta.Flat, p.Unit),
					signedCost(f.Delta.Cum, p.Unit), cost(f.Base.Own, p.Unit), cost(f.Head.Own, p.Unit), textfmt.MarkdownCode(textfmt.ShortName(f.Name)))
			}
			if n := p.Changed - len(p.Functions); n > 0 {
				ew.Printf("\nAnd %s that changed less.\n", textfmt.Plural(n, "more function"))
			}
		}
		ew.Printf("\n</details>\n")
	}

	if len(d.Resources) > 0 {
		ew.Printf("\n#### USE\n\nBase → head.\n\n| resource | utilization | saturation | errors | status |\n|---|---|---|---|---|\n")
		for _, res := range d.Resources {
			ew.Printf("| %s | %s | %s | %s | %s |\n", textfmt.MarkdownText(res.Resource), metricArrow(res.Utilization), metricArrow(res.Saturation),
				metricArrow(res.Errors), arrow(textfmt.OrDash(res.BaseStatus), textfmt.OrDash(res.HeadStatus)))
		}
	}

	if len(d.Latency) > 0 {
		ew.Printf("\n#### Latency\n\nPercentiles as upper bounds of eBPF's log2 histograms, base → head.\n\n| wait | count | p50 | p95 | p99 |\n|---|--:|--:|--:|--:|\n")
		for _, l := range d.Latency {
			ew.Printf("| %s | %s | %s | %s | %s |\n", textfmt.MarkdownText(l.Name), latencyArrow(l, pCount), latencyArrow(l, p50), latencyArrow(l, p95), latencyArrow(l, p99))
		}
	}

	ew.Printf("\n#### Priorities\n\n")
	if len(d.Priorities) == 0 {
		ew.Printf("None on either side.\n")
	} else {
		ew.Printf("The head's, marked against the base's; saving in threads, base → head.\n\n| # | mark | saving | class | remedy | kind | name |\n|--:|---|--:|---|---|---|---|\n")
		for _, p := range d.Priorities {
			rank := "-"
			if p.Rank > 0 {
				rank = strconv.Itoa(p.Rank)
			}
			mark := p.Mark
			if mark == MarkNew || mark == MarkGrew {
				mark = "**" + mark + "**"
			}
			ew.Printf("| %s | %s | %s | %s | %s | %s | `%s` |\n", rank, mark, savingArrow(p), p.Class, textfmt.MarkdownText(p.Remedy), textfmt.MarkdownText(textfmt.OrDash(p.Kind)), textfmt.MarkdownCode(textfmt.ShortNames(p.Name)))
		}
	}

	if len(d.Findings) > 0 {
		ew.Printf("\n#### Findings\n\n")
		for _, f := range d.Findings {
			ew.Printf("- %s: **%s**: %s (`%s`)\n", sideText(f.Side), textfmt.MarkdownText(f.Kind), textfmt.MarkdownText(f.Text), textfmt.MarkdownCode(f.Signal))
		}
	}
	if len(d.Missing) > 0 {
		ew.Printf("\n#### Missing\n\n")
		for _, m := range d.Missing {
			s := fmt.Sprintf("- %s: `%s`: %s", sideText(m.Side), textfmt.MarkdownCode(m.Signal), textfmt.MarkdownText(m.Reason))
			if m.Cost != "" {
				s += " — _" + textfmt.MarkdownText(m.Cost) + "_"
			}
			ew.Printf("%s\n", s)
		}
	}
	if len(d.Warnings) > 0 {
		ew.Printf("\n#### Notes\n\n")
		for _, s := range d.Warnings {
			ew.Printf("- %s\n", textfmt.MarkdownText(s))
		}
	}
	return ew.Err()
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
	if when := textfmt.Span(s.Start, s.Duration); when != "" {
		if what != "" {
			what += ", "
		}
		what += when
	}
	return what
}

func classText(c verdict.Class, confidence float64, secondary verdict.Class) string {
	s := fmt.Sprintf("%s (%s confidence", strings.ToUpper(string(c)), textfmt.Pct(confidence))
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

func metricArrow(m *MetricChange) string {
	if m == nil {
		return "-"
	}
	cell := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return textfmt.Value(*v, m.Unit)
	}
	return arrow(cell(m.Base), cell(m.Head))
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
			return "≤ " + textfmt.Bound(p.P50*1e9)
		case p95:
			return "≤ " + textfmt.Bound(p.P95*1e9)
		}
		return "≤ " + textfmt.Bound(p.P99*1e9)
	}
	return arrow(cell(l.Base), cell(l.Head))
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
			return textfmt.NumPrecise(v) + " s/s"
		}
		return textfmt.NumPrecise(v) + " s"
	case "bytes":
		return textfmt.SI(v, "B"+per)
	case "count":
		return textfmt.NumPrecise(v) + per
	}
	return textfmt.NumPrecise(v) + " " + unit + per
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

func signedPct(x float64) string {
	if x >= 0 {
		return "+" + textfmt.Pct(x)
	}
	return "-" + textfmt.Pct(-x)
}

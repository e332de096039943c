package obsdiff

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

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
		return report.WriteMarkdown(w, d.document())
	}
	return report.WriteText(w, d.document(), o.Color)
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

// document is d's report.
func (d *Diff) document() *report.Doc {
	doc := &report.Doc{Lead: d.lead()}
	c := d.Class
	cls := report.Cat(report.Plain(classText(c.Base, c.BaseConfidence, c.BaseSecondary)), report.Lit(" → "),
		report.Plain(classText(c.Head, c.HeadConfidence, c.HeadSecondary)))
	if c.Change != stat.Unchanged {
		cls = report.Cat(cls, report.Lit("  ").Only(report.TerminalOnly), changeMark(c.Change).Only(report.TerminalOnly),
			report.Lit(" (").Only(report.MarkdownOnly), changeMark(c.Change).Only(report.MarkdownOnly), report.Lit(")").Only(report.MarkdownOnly))
	}
	doc.Sections = append(doc.Sections, report.Section{Title: "Class", Note: "what the target is bound by, with the verdict's confidence",
		Blocks: []report.Block{&report.Para{Prefix: "  ", Text: cls, Unwrapped: true}}})
	if len(d.Load) > 0 {
		doc.Sections = append(doc.Sections, d.loadSection())
	}
	if len(d.Breakdown.Categories) > 0 {
		doc.Sections = append(doc.Sections, d.breakdownSection())
	}
	if len(d.Profiles) > 0 {
		doc.Sections = append(doc.Sections, d.functionsSection())
	}
	if len(d.Resources) > 0 {
		doc.Sections = append(doc.Sections, d.useSection())
	}
	if len(d.Latency) > 0 {
		doc.Sections = append(doc.Sections, d.latencySection())
	}
	doc.Sections = append(doc.Sections, d.prioritiesSection())
	if len(d.Findings) > 0 {
		l := &report.List{}
		for _, f := range d.Findings {
			l.Items = append(l.Items, report.Item{Label: report.Cat(report.Plain(sideText(f.Side)), report.Lit(": "), report.Plain(f.Kind).Strong()),
				Text: report.Plain(f.Text), Source: f.Signal})
		}
		doc.Sections = append(doc.Sections, report.Section{Title: "Findings", Blocks: []report.Block{l}})
	}
	if len(d.Missing) > 0 {
		l := &report.List{}
		for _, m := range d.Missing {
			text := report.Plain(m.Reason)
			if m.Cost != "" {
				text = report.Cat(text, report.Lit(" — "), report.Em(m.Cost))
			}
			l.Items = append(l.Items, report.Item{Label: report.Cat(report.Plain(sideText(m.Side)), report.Lit(": "), report.Code(m.Signal)), Text: text})
		}
		doc.Sections = append(doc.Sections, report.Section{Title: "Missing", Note: "what the observations lacked, and what that costs the comparison",
			Blocks: []report.Block{l}})
	}
	if len(d.Warnings) > 0 {
		l := &report.List{}
		for _, s := range d.Warnings {
			l.Items = append(l.Items, report.Item{Text: report.Plain(s)})
		}
		doc.Sections = append(doc.Sections, report.Section{Title: "Notes", Blocks: []report.Block{l}})
	}
	return doc
}

// lead is the answer and what was compared: on a terminal the sides and
// the policy first, a line each; in markdown the answer in the heading.
func (d *Diff) lead() []report.Block {
	word, tone, icon := "OK", report.Green, "✅"
	if d.Failed {
		word, tone, icon = "FAIL", report.Red, "❌"
	}
	out := []report.Block{
		&report.Title{Text: report.Cat(report.Lit(icon+" perfhound compare: "+word+", "), report.Plain(d.headline())), Only: report.MarkdownOnly},
		&report.Para{Text: report.Lit("perfhound compare: observations").Paint(report.Bold), Unwrapped: true, Only: report.TerminalOnly},
	}
	items := &report.List{Labels: report.LabelHanging}
	for _, s := range []struct {
		label, md string
		side      Side
	}{{"base", "Base", d.Base}, {"head", "Head", d.Head}} {
		out = append(out, &report.Para{Prefix: "  " + s.label + ":   ", Text: report.Plain(s.side.Name), Unwrapped: true, Only: report.TerminalOnly})
		if t := describe(s.side); t != "" {
			out = append(out, &report.Para{Prefix: "          ", Text: report.Plain(t), Only: report.TerminalOnly})
			items.Items = append(items.Items, report.Item{Label: report.Lit(s.md), Text: report.Em(t), Only: report.MarkdownOnly})
		}
	}
	policy := fmt.Sprintf("threshold %s and %.2f threads, fail on %s", textfmt.Pct(d.Policy.Threshold), d.Policy.MinLoadChange, d.Policy.FailOn)
	out = append(out,
		&report.Para{Prefix: "  policy: ", Text: report.Plain(policy), Unwrapped: true, Only: report.TerminalOnly},
		&report.Para{Text: report.Cat(report.Lit("Base "), report.Code(d.Base.Name), report.Lit(" vs head "), report.Code(d.Head.Name),
			report.Lit("; "), report.Plain(policy), report.Lit(".")), Only: report.MarkdownOnly},
		report.Blank,
		&report.Para{Text: report.Cat(report.Lit(word).Paint(report.Bold|tone), report.Lit(": "), report.Plain(d.headline())), Unwrapped: true,
			Only: report.TerminalOnly})
	for _, s := range d.Regressions {
		items.Items = append(items.Items, report.Item{Label: changeMark(stat.Regression), Text: report.Plain(s)})
	}
	for _, s := range d.Improvements {
		items.Items = append(items.Items, report.Item{Label: report.Lit("improvement").Paint(report.Green), Text: report.Plain(s)})
	}
	return append(out, items)
}

// changeMark is a change class: in colour on a terminal, in bold in
// markdown.
func changeMark(c stat.Change) report.Inline {
	tone := report.Red
	if c == stat.Improvement {
		tone = report.Green
	}
	return report.Lit(c.String()).Paint(tone).Strong()
}

func (d *Diff) loadSection() report.Section {
	const note = "threads bound per second of wall time, by class"
	// The mark is the last cell, left out unmarked, so that an unmarked
	// row has no trailing spaces on a terminal.
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "class"}, {Header: "base", Right: true}, {Header: "head", Right: true},
		{Header: "change", Right: true}, {Optional: true}}}
	for _, l := range d.Load {
		mark := report.Lit("")
		if l.Change != stat.Unchanged {
			mark = changeMark(l.Change)
		}
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Plain(string(l.Class)), report.Lit(threads(l.Base)), report.Lit(threads(l.Head)),
			report.Lit(changeText(l.Base, l.Delta, l.Relative)), mark}})
	}
	return report.Section{Title: "Load", Note: note, Blocks: []report.Block{&report.Para{Text: report.Plain(note), Sentence: true, Only: report.MarkdownOnly}, t}}
}

func (d *Diff) breakdownSection() report.Section {
	b := d.Breakdown
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "category"}, {Header: "base", Right: true}, {Header: "head", Right: true},
		{Header: "change", Right: true}}}
	for _, cat := range b.Categories {
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Code(cat.Category), report.Lit(textfmt.PerSec(cat.Base)),
			report.Lit(textfmt.PerSec(cat.Head)), report.Lit(deltaPerSec(cat.Base, cat.Delta, cat.Relative))}})
	}
	return report.Section{Title: "Where the time went", Note: "thread time per second, most changed first; " + sourceText(b), Blocks: []report.Block{
		&report.Para{Text: report.Cat(report.Lit("Thread time per second of wall time, most changed first; "), report.Plain(sourceText(b)), report.Lit(".")),
			Only: report.MarkdownOnly}, t}}
}

// functionsSection is each profile kind's functions that changed most;
// folded in markdown, where a pull request comment leads with the class
// and the load.
func (d *Diff) functionsSection() report.Section {
	s := report.Section{Title: "Functions", Note: "per second of each window, by the change of own cost; one profile a side: not tested",
		Fold: report.Lit("Functions that changed most (" + textfmt.Plural(len(d.Profiles), "profile kind") + ")"),
		Blocks: []report.Block{&report.Para{Only: report.MarkdownOnly, Text: report.Lit("Per second of each window. One profile a side has no " +
			"replicate for a test of significance: functions are ranked by the change of their own cost.")}}}
	for _, p := range d.Profiles {
		head := report.Cat(report.Plain(p.Source+" "+p.Kind).Strong(), report.Lit(" ("), report.Code(p.SampleType),
			report.Lit(", "+cost(p.BaseTotal, p.Unit)+" → "+cost(p.HeadTotal, p.Unit)+")"))
		if p.Note != "" {
			s.Blocks = append(s.Blocks,
				&report.Para{Prefix: "  ", Unwrapped: true, Text: report.Cat(head, report.Lit(": ").Only(report.MarkdownOnly),
					report.Plain(p.Note).Only(report.MarkdownOnly), report.Lit(".").Only(report.MarkdownOnly))},
				&report.Para{Prefix: "    ", Unwrapped: true, Text: report.Plain(p.Note), Only: report.TerminalOnly})
			continue
		}
		t := &report.Table{Indent: 4, Numbers: true, Columns: []report.Column{{Header: "Δ own", Right: true}, {Header: "Δ flat", Right: true},
			{Header: "Δ cum", Right: true}, {Header: "base own", Right: true}, {Header: "head own", Right: true}, {Header: "function"}}}
		for _, f := range p.Functions {
			t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Lit(signedCost(f.Delta.Own, p.Unit)), report.Lit(signedCost(f.Delta.Flat, p.Unit)),
				report.Lit(signedCost(f.Delta.Cum, p.Unit)), report.Lit(cost(f.Base.Own, p.Unit)), report.Lit(cost(f.Head.Own, p.Unit)),
				report.Code(textfmt.ShortName(f.Name))}})
		}
		s.Blocks = append(s.Blocks, &report.Para{Prefix: "  ", Unwrapped: true, Text: head}, t)
		if n := p.Changed - len(p.Functions); n > 0 {
			more := "and " + textfmt.Plural(n, "more function") + " that changed less"
			s.Blocks = append(s.Blocks,
				&report.Para{Prefix: "    ", Unwrapped: true, Text: report.Lit("(" + more + ")").Paint(report.Dim), Only: report.TerminalOnly},
				&report.Para{Text: report.Lit(more), Sentence: true, Only: report.MarkdownOnly})
		}
	}
	return s
}

func (d *Diff) useSection() report.Section {
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "resource"}, {Header: "utilization"}, {Header: "saturation"}, {Header: "errors"},
		{Header: "status"}}}
	for _, res := range d.Resources {
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Plain(res.Resource), report.Lit(metricArrow(res.Utilization)),
			report.Lit(metricArrow(res.Saturation)), report.Lit(metricArrow(res.Errors)),
			report.Plain(arrow(textfmt.OrDash(res.BaseStatus), textfmt.OrDash(res.HeadStatus)))}})
	}
	return report.Section{Title: "USE", Note: "utilization, saturation, errors of the host's resources, base → head",
		Blocks: []report.Block{&report.Para{Text: report.Lit("Base → head."), Only: report.MarkdownOnly}, t}}
}

func (d *Diff) latencySection() report.Section {
	const note = "percentiles as upper bounds of eBPF's log2 histograms, base → head"
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "wait"}, {Header: "count", Right: true}, {Header: "p50", Right: true},
		{Header: "p95", Right: true}, {Header: "p99", Right: true}}}
	for _, l := range d.Latency {
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Plain(l.Name), report.Lit(latencyArrow(l, pCount)), report.Lit(latencyArrow(l, p50)),
			report.Lit(latencyArrow(l, p95)), report.Lit(latencyArrow(l, p99))}})
	}
	return report.Section{Title: "Latency", Note: note, Blocks: []report.Block{&report.Para{Text: report.Plain(note), Sentence: true, Only: report.MarkdownOnly}, t}}
}

func (d *Diff) prioritiesSection() report.Section {
	const note = "the head's, marked against the base's; saving in threads, base → head"
	s := report.Section{Title: "Priorities", Note: note}
	if len(d.Priorities) == 0 {
		s.Blocks = []report.Block{&report.Para{Prefix: "  ", Text: report.Plain("none on either side"), Sentence: true}}
		return s
	}
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "#", Right: true, Width: 2}, {Header: "mark"}, {Header: "saving", Right: true},
		{Header: "class"}, {Header: "remedy"}, {Header: "kind"}, {Header: "name"}}}
	for _, p := range d.Priorities {
		rank := "-"
		if p.Rank > 0 {
			rank = strconv.Itoa(p.Rank)
		}
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Lit(rank), priorityMark(p.Mark), report.Lit(savingArrow(p)),
			report.Plain(string(p.Class)), report.Plain(p.Remedy), report.Plain(textfmt.OrDash(p.Kind)), report.Code(textfmt.ShortNames(p.Name))}})
	}
	s.Blocks = []report.Block{&report.Para{Text: report.Plain(note), Sentence: true, Only: report.MarkdownOnly}, t}
	return s
}

// priorityMark is a priority's mark: new and grew in red and bold, gone
// and shrank in green.
func priorityMark(m string) report.Inline {
	switch m {
	case MarkNew, MarkGrew:
		return report.Lit(m).Paint(report.Red).Strong()
	case MarkGone, MarkShrank:
		return report.Lit(m).Paint(report.Green)
	}
	return report.Lit(m)
}

// describe says what a side watched and when.
func describe(s Side) string {
	t := s.Target
	if len(t.Command) > 0 || t.URL != "" || t.App != "" {
		t.PID = 0 // another in every run: what was run names the target
	}
	what := t.Describe()
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
	case verdict.BreakdownEBPF:
		return "eBPF thread states and stacks"
	case verdict.BreakdownProc:
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

package verdict

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/internal/report"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// TextOptions tune WriteText.
type TextOptions struct {
	// Color adds ANSI colours; set it only for a terminal.
	Color bool
	// Brief keeps the headline, the summary and the first BriefPriorities
	// priorities: a verdict among others, such as a host's processes.
	Brief bool
}

// BriefPriorities is how many priorities a brief report lists.
const BriefPriorities = 3

// jsonDigits is the significant digits EncodeJSON keeps of non-integral
// numbers, so that documents compare stably.
const jsonDigits = 4

// EncodeJSON writes a document holding verdicts (made with ForJSON):
// indented, with non-integral numbers rounded to four significant digits.
// Reports that embed verdicts use it.
func EncodeJSON(w io.Writer, doc any) error {
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("verdict: %w", err)
	}
	rounded, err := roundJSONNumbers(raw.Bytes(), jsonDigits)
	if err != nil {
		return fmt.Errorf("verdict: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, rounded, "", "  "); err != nil {
		return fmt.Errorf("verdict: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// ForJSON is v with nil lists and maps made empty, so that consumers can
// iterate them without a null check. v itself is left alone.
func ForJSON(v *Verdict) *Verdict {
	c := Verdict{}
	if v != nil {
		c = *v
	}
	if c.Class == "" {
		c.Class = ClassNone
	}
	if c.Load == nil {
		c.Load = map[Class]float64{}
	}
	if c.Evidence == nil {
		c.Evidence = []Evidence{}
	}
	if c.Breakdown.Seconds == nil {
		c.Breakdown.Seconds = map[string]float64{}
	}
	if c.Breakdown.ByClass == nil {
		c.Breakdown.ByClass = map[Class]float64{}
	}
	if c.USE == nil {
		c.USE = []Resource{}
	}
	if c.Priorities == nil {
		c.Priorities = []Priority{}
	}
	return &c
}

// roundJSONNumbers rewrites every number of a JSON document that has a
// fraction or an exponent to digits significant digits. Integers (ranks,
// nanoseconds, PIDs) are left exact.
func roundJSONNumbers(b []byte, digits int) ([]byte, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return nil, fmt.Errorf("unterminated string in JSON")
			}
			out = append(out, b[i:j+1]...)
			i = j + 1
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(b) && strings.IndexByte("0123456789.eE+-", b[j]) >= 0 {
				j++
			}
			num := b[i:j]
			if bytes.ContainsAny(num, ".eE") {
				f, err := strconv.ParseFloat(string(num), 64)
				if err != nil {
					return nil, err
				}
				f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', digits, 64), 64)
				num, err = json.Marshal(f)
				if err != nil {
					return nil, err
				}
			}
			out = append(out, num...)
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

// WriteText writes v as a report for a terminal: the headline and summary,
// where the time went, the evidence, the USE table, findings, priorities
// and what the observation lacked.
func WriteText(w io.Writer, v *Verdict, opts TextOptions) error {
	return report.WriteText(w, document(v, opts.Brief), opts.Color)
}

// WriteMarkdown writes v as GitHub-flavoured markdown, for a pull
// request comment or a ticket: the same content as WriteText.
func WriteMarkdown(w io.Writer, v *Verdict) error {
	return report.WriteMarkdown(w, document(v, false))
}

// Report is v's report as a document of internal/report: what WriteText
// and WriteMarkdown write. Each call builds a new Doc, which a report
// holding verdicts (diagnosis's, of a host) may extend. A nil v is a
// verdict of nothing.
func (v *Verdict) Report() *report.Doc { return document(v, false) }

// BriefReport is v's report cut to the headline, the target, the summary
// and the first BriefPriorities priorities, a line each: a verdict among
// others. WriteText writes it with TextOptions.Brief.
func (v *Verdict) BriefReport() *report.Doc { return document(v, true) }

// document is v's report. Brief keeps the headline, the target, the
// summary and the first priorities.
func document(v *Verdict, brief bool) *report.Doc {
	if v == nil {
		v = &Verdict{}
	}
	d := &report.Doc{Lead: lead(v)}
	if brief {
		d.Lead = append(d.Lead, briefPriorities(v)...)
		return d
	}
	d.Sections = append(d.Sections, breakdownSection(v))
	if len(v.Evidence) > 0 {
		d.Sections = append(d.Sections, evidenceSection(v))
	}
	if len(v.USE) > 0 {
		d.Sections = append(d.Sections, useSection(v))
	}
	if len(v.Latency) > 0 {
		d.Sections = append(d.Sections, latencySection(v))
	}
	if len(v.Findings) > 0 {
		d.Sections = append(d.Sections, findingsSection(v))
	}
	d.Sections = append(d.Sections, prioritiesSection(v))
	if len(v.Missing) > 0 {
		d.Sections = append(d.Sections, missingSection(v))
	}
	return d
}

// lead is the headline, then on a terminal the target and the summary,
// in markdown the summary and the target.
func lead(v *Verdict) []report.Block {
	class := v.Class
	if class == "" {
		class = ClassNone
	}
	tone, icon := report.Bold|report.Red, "🔴"
	if class == ClassNone {
		tone, icon = report.Bold|report.Green, "🟢"
	}
	upper := func(c Class) string { return strings.ToUpper(string(c)) }
	head := report.Cat(report.Lit("perfhound verdict").Paint(report.Bold), report.Lit(": "), report.Plain(upper(class)).Paint(tone),
		report.Lit(", "+textfmt.Pct(v.Confidence)+" confidence"))
	mdHead := report.Cat(report.Lit(icon+" perfhound verdict: "), report.Plain(upper(class)), report.Lit(" ("+textfmt.Pct(v.Confidence)+" confidence)"))
	if v.Secondary != "" {
		head = report.Cat(head, report.Lit("; secondary "), report.Plain(upper(v.Secondary)).Paint(report.Bold))
		mdHead = report.Cat(mdHead, report.Lit(", secondary "), report.Plain(upper(v.Secondary)))
	}
	out := []report.Block{
		&report.Para{Text: head, Unwrapped: true, Only: report.TerminalOnly},
		&report.Title{Text: mdHead, Only: report.MarkdownOnly},
	}
	target := v.Target.DescribeSpan(v.Start, v.Duration)
	if target != "" {
		out = append(out, &report.Para{Prefix: "  ", Text: report.Plain(target), Only: report.TerminalOnly})
	}
	if v.Summary != "" {
		out = append(out, report.Blank, &report.Para{Text: report.Plain(v.Summary)})
	}
	if target != "" {
		out = append(out, &report.Para{Text: report.Em(target), Only: report.MarkdownOnly})
	}
	return out
}

// briefPriorities lists the first priorities, a line each.
func briefPriorities(v *Verdict) []report.Block {
	var out []report.Block
	for i, p := range v.Priorities {
		if i == BriefPriorities {
			break
		}
		out = append(out, &report.Para{Prefix: fmt.Sprintf("  %d. ", p.Rank), Text: report.Cat(report.Plain(textfmt.ShortNames(p.Name)),
			report.Lit(fmt.Sprintf("  %s (%s of busy, ", textfmt.PerSec(p.Saving), textfmt.Pct(p.Share))), report.Plain(string(p.Class)),
			report.Lit(", "), report.Plain(p.Remedy), report.Lit(")"))})
	}
	return out
}

func breakdownSection(v *Verdict) report.Section {
	b := v.Breakdown
	s := report.Section{Title: "Where the time went"}
	rows := breakdownRows(b, v.Duration.Seconds())
	if len(rows) == 0 {
		s.Blocks = []report.Block{&report.Para{Prefix: "  ", Sentence: true,
			Text: report.Plain("no breakdown: the observation has neither eBPF thread states nor /proc CPU time")}}
		return s
	}
	s.Note = "thread time per second of wall time; " + b.SourceText()
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "category"}, {}, {Header: "per second", Right: true, Width: 10},
		{Header: "share", MarkdownHeader: "share of thread time", Right: true, Width: 5}}}
	for _, row := range rows {
		if row.group {
			t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Plain(row.label).Strong(), nil,
				report.Lit(row.perSec).Strong(), report.Lit(row.share).Strong()}})
			continue
		}
		t.Rows = append(t.Rows, report.Row{Sub: true, Cells: []report.Inline{report.Code(row.category), report.Plain(row.label),
			report.Lit(row.perSec), report.Lit(row.share)}})
	}
	s.Blocks = []report.Block{
		&report.Para{Text: report.Cat(report.Lit("Thread time per second of wall time, "), report.Plain(b.SourceText()), report.Lit(".")),
			Only: report.MarkdownOnly},
		t,
	}
	// The categories left out and the load by class: a line each on a
	// terminal, one paragraph in markdown.
	var after report.Inline
	if n := skippedCategories(b); n > 0 {
		skipped := textfmt.Count(n, "category", "categories")
		s.Blocks = append(s.Blocks, &report.Para{Prefix: "  ", Unwrapped: true, Only: report.TerminalOnly,
			Text: report.Lit("(" + skipped + " under 1% not shown)").Paint(report.Dim)})
		after = report.Lit(skipped + " under 1% not shown. ") // a count: no capital to make
	}
	if l := textfmt.Loads(v.Load, ClassNone); l != "" {
		s.Blocks = append(s.Blocks, &report.Para{Prefix: "  by class: ", Text: report.Plain(l), Only: report.TerminalOnly})
		after = report.Cat(after, report.Lit("By class: "), report.Plain(l), report.Lit("."))
	}
	s.Blocks = append(s.Blocks, &report.Para{Text: after, Only: report.MarkdownOnly})
	return s
}

func evidenceSection(v *Verdict) report.Section {
	l := &report.List{Labels: report.LabelColumn}
	for _, e := range v.Evidence {
		l.Items = append(l.Items, report.Item{Label: report.Plain(string(e.Class)).Strong(), Text: report.Plain(e.Text), Source: e.Signal})
	}
	return report.Section{Title: "Evidence", Blocks: []report.Block{l}}
}

// useSection is the USE table: values on a terminal, with a note under the
// table for each signal of a resource that is not ok; in markdown each
// cell says it all.
func useSection(v *Verdict) report.Section {
	columns := []report.Column{{Header: "resource"}, {Header: "utilization"}, {Header: "saturation"}, {Header: "errors"}, {Header: "status"}}
	term := &report.Table{Indent: 2, Columns: columns, Only: report.TerminalOnly}
	md := &report.Table{Columns: columns, Only: report.MarkdownOnly}
	var notes []report.Block
	for _, res := range v.USE {
		term.Rows = append(term.Rows, report.Row{Cells: []report.Inline{report.Plain(res.Resource), metricValue(res.Utilization),
			metricValue(res.Saturation), metricValue(res.Errors), statusCell(res.Status)}})
		md.Rows = append(md.Rows, report.Row{Cells: []report.Inline{report.Plain(res.Resource), mdMetric(res.Utilization),
			mdMetric(res.Saturation), mdMetric(res.Errors), statusCell(res.Status)}})
		if res.Status == "ok" {
			continue
		}
		for _, c := range []struct {
			what string
			m    *Metric
		}{{"utilization", res.Utilization}, {"saturation", res.Saturation}, {"errors", res.Errors}} {
			if c.m == nil || c.m.Text == "" {
				continue
			}
			notes = append(notes, &report.Para{Prefix: fmt.Sprintf("  %s %s: ", res.Resource, c.what), Text: metricNote(c.m),
				Only: report.TerminalOnly})
		}
	}
	return report.Section{Title: "USE", Note: "utilization, saturation, errors of the host's resources",
		Blocks: append([]report.Block{term}, append(notes, md)...)}
}

// statusCell is a resource's status: in colour on a terminal, "-" there
// for none; in markdown in bold unless ok.
func statusCell(s string) report.Inline {
	switch s {
	case "ok":
		return report.Plain(s).Paint(report.Green)
	case "":
		return report.Lit("-").Only(report.TerminalOnly)
	case "busy":
		return report.Plain(s).Paint(report.Yellow).Strong()
	}
	return report.Plain(s).Paint(report.Red).Strong()
}

func latencySection(v *Verdict) report.Section {
	const note = "percentiles as upper bounds of eBPF's log2 histograms"
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "wait"}, {Header: "count", Right: true}, {Header: "p50", Right: true},
		{Header: "p95", Right: true}, {Header: "p99", Right: true}}}
	for _, l := range v.Latency {
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Plain(l.Name), report.Lit(strconv.FormatUint(l.Count, 10)),
			report.Lit("≤ " + textfmt.Bound(l.P50*1e9)), report.Lit("≤ " + textfmt.Bound(l.P95*1e9)), report.Lit("≤ " + textfmt.Bound(l.P99*1e9))}})
	}
	return report.Section{Title: "Latency", Note: note,
		Blocks: []report.Block{&report.Para{Text: report.Plain(note), Sentence: true, Only: report.MarkdownOnly}, t}}
}

func findingsSection(v *Verdict) report.Section {
	l := &report.List{}
	for _, f := range v.Findings {
		l.Items = append(l.Items, report.Item{Label: report.Plain(f.Kind).Strong().Paint(report.Yellow), Text: report.Plain(f.Text), Source: f.Signal})
	}
	return report.Section{Title: "Findings", Blocks: []report.Block{l}}
}

func prioritiesSection(v *Verdict) report.Section {
	const note = "what to optimize first, by the time it would save if it cost nothing"
	s := report.Section{Title: "Priorities", Note: note}
	if len(v.Priorities) == 0 {
		s.Blocks = []report.Block{&report.Para{Prefix: "  ", Text: report.Plain("none: no item costs enough to rank"), Sentence: true}}
		return s
	}
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "#", Right: true, Width: 2}, {Header: "saving", Right: true, Width: 10},
		{Header: "of busy", Right: true, Width: 7}, {Header: "class"}, {Header: "remedy"}, {Header: "kind"}, {Header: "name"}, {Header: "why", Beneath: true}}}
	for _, p := range v.Priorities {
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Lit(strconv.Itoa(p.Rank)), report.Lit(textfmt.PerSec(p.Saving)),
			report.Lit(textfmt.Pct(p.Share)), report.Plain(string(p.Class)), report.Plain(p.Remedy), report.Plain(textfmt.OrDash(p.Kind)),
			report.Code(textfmt.ShortNames(p.Name)), report.Plain(p.Why)}})
	}
	s.Blocks = []report.Block{&report.Para{Text: report.Plain(note), Sentence: true, Only: report.MarkdownOnly}, t}
	return s
}

func missingSection(v *Verdict) report.Section {
	l := &report.List{}
	for _, g := range v.Missing {
		l.Items = append(l.Items, report.Item{Label: report.Code(g.Signal), Text: gapText(g)})
	}
	return report.Section{Title: "Missing", Note: "what the observation lacked, and what that costs this verdict", Blocks: []report.Block{l}}
}

// gapText is why a signal is missing and, when known, what that costs.
func gapText(g Gap) report.Inline {
	s := report.Plain(g.Reason)
	if g.Cost != "" {
		s = report.Cat(s, report.Lit(" — "), report.Em(g.Cost))
	}
	return s
}

// breakdownRow is a line of the breakdown table: a group (on-CPU,
// off-CPU) or a category in it.
type breakdownRow struct {
	group                          bool
	category, label, perSec, share string
}

// breakdownRows lists the on-CPU then the off-CPU categories, most time
// first, skipping those under 1% of the total.
func breakdownRows(b Breakdown, window float64) []breakdownRow {
	total := b.Total()
	if total <= 0 {
		return nil
	}
	var out []breakdownRow
	for _, g := range b.Groups() {
		out = append(out, breakdownRow{group: true, label: g.Label, perSec: textfmt.PerWindow(g.Seconds, window), share: textfmt.Pct(g.Seconds / total)})
		for _, c := range g.Categories {
			if s := b.Seconds[c]; s/total >= 0.01 {
				out = append(out, breakdownRow{category: c, label: categoryNames[c], perSec: textfmt.PerWindow(s, window), share: textfmt.Pct(s / total)})
			}
		}
	}
	return out
}

// skippedCategories counts the categories with time that breakdownRows
// leaves out: those under 1% of the total, and those of neither side.
func skippedCategories(b Breakdown) int {
	total := b.Total()
	n := 0
	for _, s := range b.Seconds {
		if s > 0 {
			n++
		}
	}
	for _, g := range b.Groups() {
		for _, c := range g.Categories {
			if b.Seconds[c]/total >= 0.01 {
				n--
			}
		}
	}
	return n
}

// metricValue is a USE cell on a terminal: the value in its unit, "-"
// for none.
func metricValue(m *Metric) report.Inline {
	if m == nil {
		return report.Lit("-")
	}
	return report.Lit(textfmt.Value(m.Value, m.Unit))
}

// metricNote is a metric's text with its threshold and signal.
func metricNote(m *Metric) report.Inline {
	s := m.Text
	if m.Threshold > 0 {
		s += fmt.Sprintf(" (threshold %s)", textfmt.Value(m.Threshold, m.Unit))
	}
	return report.Plain(s + "  [" + m.Signal + "]")
}

// mdMetric is a USE cell in markdown: the metric's text, or its value,
// with its threshold.
func mdMetric(m *Metric) report.Inline {
	if m == nil {
		return report.Lit("-")
	}
	s := m.Text
	if s == "" {
		s = textfmt.Value(m.Value, m.Unit)
	}
	if m.Threshold > 0 {
		return report.Cat(report.Plain(s), report.Lit(fmt.Sprintf(" (threshold %s)", textfmt.Value(m.Threshold, m.Unit))))
	}
	return report.Plain(s)
}

package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchunit"

	"github.com/perfhound/perfhound/analyzer/benchdiff"
	"github.com/perfhound/perfhound/analyzer/profdiff"
	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/internal/report"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// RenderOptions tune the renderers.
type RenderOptions struct {
	// Color adds ANSI colours to text output; set it only for a terminal.
	Color bool
	// Functions caps the rows of the function table (default 10).
	Functions int
}

// Render writes r in format f.
func (r *Result) Render(w io.Writer, f report.Format, o RenderOptions) error {
	if o.Functions <= 0 {
		o.Functions = 10
	}
	switch f {
	case report.JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case report.Markdown:
		return report.WriteMarkdown(w, r.document(o))
	}
	return report.WriteText(w, r.document(o), o.Color)
}

// headline is the one-line answer.
func (r *Result) headline() string {
	th := pct0(r.Policy.Threshold)
	switch n := len(r.Regressions); {
	case n > 0:
		return fmt.Sprintf("%s beyond noise and the %s threshold", textfmt.Plural(n, "regression"), th)
	case len(r.Changes) > 0 && r.Policy.FailOn == stat.FailOnChange:
		return fmt.Sprintf("%s beyond noise and the %s threshold", textfmt.Plural(len(r.Changes), "change"), th)
	}
	s := "no regression beyond noise and the " + th + " threshold"
	if n := len(r.Improvements); n > 0 {
		s += "; " + textfmt.Plural(n, "improvement")
	}
	return s
}

func pct0(x float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", 100*x), ".0") + "%" }

// value formats a measurement in its unit with benchstat's SI scaling,
// or in e-notation beyond the prefixes' reach (benchunit would print 1e300
// as 289 digits of tera).
func value(v float64, unit string) string {
	switch a := math.Abs(v); {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return "?"
	case a >= 1e18 || a != 0 && a < 1e-12:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return benchunit.Scale(v, benchunit.ClassOf(unit))
}

func deltaCell(row *benchdiff.Row, alpha float64) string {
	if !(row.P < alpha) {
		return "~"
	}
	return signedPct(row.Delta)
}

func signedPct(x float64) string {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return "?"
	}
	return fmt.Sprintf("%+.2f%%", 100*x)
}

// withSpread is a center with its interval, as benchstat prints it: "254.1µ ± 5%".
func withSpread(s benchdiff.Summary, unit string) string {
	v := value(s.Center, unit)
	if sp := spread(s); sp != "" {
		v += " " + sp
	}
	return v
}

func spread(s benchdiff.Summary) string {
	if s.Center == 0 || math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) {
		return ""
	}
	v := math.Max(s.Hi/s.Center-1, 1-s.Lo/s.Center)
	return fmt.Sprintf("± %.0f%%", 100*v)
}

func pval(p float64, n1, n2 int) string {
	if n1 == n2 {
		return fmt.Sprintf("p=%.3f n=%d", p, n1)
	}
	return fmt.Sprintf("p=%.3f n=%d+%d", p, n1, n2)
}

// shortName drops the import path's directories from a function name:
// "github.com/x/y/pkg.(*T).M" becomes "pkg.(*T).M". Unlike
// textfmt.ShortName it also cuts a file path to its base name, as the
// benchmark comparison always has.
func shortName(fn string) string {
	paren := strings.IndexAny(fn, "([")
	head := fn
	if paren >= 0 {
		head = fn[:paren]
	}
	if i := strings.LastIndexByte(head, '/'); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// costValue formats a profile cost: a share as a percentage, else in its unit.
func costValue(v float64, unit string) string {
	if unit == "" {
		return fmt.Sprintf("%.2f%%", 100*v)
	}
	return value(v, unit)
}

// signedCost formats a cost change with its unit: "+3.66µs/op", "-1.20%".
func signedCost(v float64, unit string) string {
	sign := "+"
	if v < 0 {
		sign = "-"
	}
	s := costValue(math.Abs(v), unit)
	if unit != "" {
		s += strings.Replace(unit, "sec/", "s/", 1)
	}
	return sign + s
}

func profileTitle(d *profdiff.Diff) string {
	norm := "share of total"
	if d.Unit != "" {
		norm = d.Unit
	}
	test := map[string]string{
		"welch-t": fmt.Sprintf("Welch t-test across %d+%d profiles", d.BaseN, d.HeadN),
		"poisson": fmt.Sprintf("sampling noise, %.0f+%.0f samples", d.BaseSamples, d.HeadSamples),
		"none":    "untested",
	}[d.Test]
	return fmt.Sprintf("%s, %s; %s", d.SampleType, norm, test)
}

// document is r's report. The terminal's is benchstat's: a line for each
// finding, a table for each unit; the markdown's, for a pull request,
// puts the findings in tables and folds the rest.
func (r *Result) document(o RenderOptions) *report.Doc {
	d := &report.Doc{Lead: r.lead()}
	for _, sec := range []struct {
		title, note string
		fs          []Finding
	}{{"Regressions", "", r.Regressions}, {"Changes", "no known better direction", r.Changes}, {"Improvements", "", r.Improvements}} {
		if len(sec.fs) > 0 {
			d.Sections = append(d.Sections, report.Section{Title: sec.title, Note: sec.note, Blocks: r.findings(sec.fs)})
		}
	}
	if t := r.Benchmarks; t != nil {
		d.Sections = append(d.Sections, report.Section{Title: "Benchmarks", Fold: report.Lit(fmt.Sprintf("All benchmarks (%d rows)", len(t.Rows))),
			Blocks: []report.Block{r.benchmarksText(t), r.benchmarksMarkdown(t)}})
	}
	for _, p := range r.Profiles {
		d.Sections = append(d.Sections, functionsSection(p, o.Functions))
	}
	if len(r.Priorities) > 0 {
		d.Sections = append(d.Sections, r.prioritiesSection())
	}
	if notes := r.notes(); len(notes) > 0 {
		l := &report.List{Unwrapped: true}
		for _, n := range notes {
			l.Items = append(l.Items, report.Item{Text: report.Plain(n)})
		}
		d.Sections = append(d.Sections, report.Section{Title: "Notes", Fold: report.Lit(fmt.Sprintf("Notes (%d)", len(notes))), Blocks: []report.Block{l}})
	}
	return d
}

// lead is the answer and what was compared with what.
func (r *Result) lead() []report.Block {
	word, tone, icon := "OK", report.Green, "✅"
	if r.Failed {
		word, tone, icon = "FAIL", report.Red, "❌"
	}
	side := func(s Side) report.Inline {
		return report.Cat(report.Plain(strings.Join(s.Paths, " ")), report.Lit(" ("), report.Plain(s.Inputs), report.Lit(")"))
	}
	policy := fmt.Sprintf("alpha %.2g, threshold %s, fail on %s", r.Policy.Alpha, pct0(r.Policy.Threshold), r.Policy.FailOn)
	term := func(prefix string, text report.Inline) report.Block {
		return &report.Para{Prefix: prefix, Text: text, Unwrapped: true, Only: report.TerminalOnly}
	}
	return []report.Block{
		&report.Title{Text: report.Cat(report.Lit(icon+" perfhound compare: "), report.Plain(r.headline())), Only: report.MarkdownOnly},
		term("", report.Lit("perfhound compare").Paint(report.Bold)),
		term("  base:   ", side(r.Base)),
		term("  head:   ", side(r.Head)),
		term("  policy: ", report.Plain(policy)),
		report.Blank,
		term("", report.Cat(report.Lit(word).Paint(report.Bold|tone), report.Lit(": "), report.Plain(r.headline()))),
		&report.Para{Only: report.MarkdownOnly, Text: report.Cat(report.Lit("Base "), report.Code(strings.Join(r.Base.Paths, " ")),
			report.Lit(" ("+r.Base.Inputs+") vs head "), report.Code(strings.Join(r.Head.Paths, " ")), report.Lit(" ("+r.Head.Inputs+"); "),
			report.Plain(policy), report.Lit("."))},
	}
}

// findings are a line each on a terminal, with the functions each is
// attributed to under it; a table in markdown.
func (r *Result) findings(fs []Finding) []report.Block {
	var out []report.Block
	line := func(prefix string, text ...report.Inline) {
		out = append(out, &report.Para{Prefix: prefix, Text: report.Cat(text...), Unwrapped: true, Only: report.TerminalOnly})
	}
	t := &report.Table{Only: report.MarkdownOnly, Columns: []report.Column{{}, {Header: "unit"}, {Header: "base", Right: true},
		{Header: "head", Right: true}, {Header: "delta", Right: true}, {Header: "95% CI", Right: true}, {Header: "p", Right: true}, {Header: "attributed to"}}}
	for i := range fs {
		f := &fs[i]
		t.Rows = append(t.Rows, r.findingRow(f))
		if f.Kind == "function" {
			line("  ", report.Plain(shortName(f.Function)), report.Lit(fmt.Sprintf("  %+.2f%% of total ", f.DeltaPct)), report.Plain(f.Unit),
				report.Lit(fmt.Sprintf("  (p=%.3f)", f.P)))
			continue
		}
		ci := ""
		if f.DeltaLoPct != nil && f.DeltaHiPct != nil {
			ci = fmt.Sprintf(" [%+.1f%%, %+.1f%%]", *f.DeltaLoPct, *f.DeltaHiPct)
		}
		of := ""
		if f.FastestRuns {
			of = "fastest runs "
		}
		line("  ", report.Plain(f.Benchmark), report.Lit("  "), report.Plain(f.Unit),
			report.Lit(fmt.Sprintf("  %s%s → %s  %+.2f%%%s  (p=%.3f)", of, value(f.Base, f.Unit), value(f.Head, f.Unit), f.DeltaPct, ci, f.P)))
		for _, a := range f.AttributedTo {
			if a.Blamed {
				line("      ", report.Lit("blamed: "), report.Plain(shortName(a.Function)), report.Lit("  ("), report.Plain(signedCost(a.Delta, a.Unit)),
					report.Lit(fmt.Sprintf(", %.0f%% of the change, with callees; ", 100*a.Share)), report.Plain(a.Why), report.Lit(")"))
				if len(a.Path) > 1 {
					line("              ", report.Lit("via "), shortPath(a.Path))
				}
				continue
			}
			line("      ", report.Plain(signedCost(a.Delta, a.Unit)), report.Lit(fmt.Sprintf("  %3.0f%%  ", 100*a.Share)), report.Plain(shortName(a.Function)),
				report.Lit(sigNote(a.P, r.Policy.Alpha)))
		}
		if f.AttributionNote != "" {
			line("      ", report.Lit("(not attributed: "), report.Plain(f.AttributionNote), report.Lit(")"))
		}
	}
	return append(out, t)
}

// findingRow is a finding in markdown's table: the first three functions
// it is attributed to, a line each.
func (r *Result) findingRow(f *Finding) report.Row {
	ci := ""
	if f.DeltaLoPct != nil && f.DeltaHiPct != nil {
		ci = fmt.Sprintf("%+.1f%% … %+.1f%%", *f.DeltaLoPct, *f.DeltaHiPct)
	}
	var parts []report.Inline
	for i, a := range f.AttributedTo {
		if i == 3 {
			break
		}
		part := report.Code(shortName(a.Function))
		if a.Blamed {
			part = report.Cat(part, report.Lit(" "), report.Lit("blamed").Strong())
		}
		parts = append(parts, report.Cat(part, report.Lit(" "), report.Plain(signedCost(a.Delta, a.Unit)), report.Lit(fmt.Sprintf(" (%.0f%%)", 100*a.Share))))
	}
	if f.AttributionNote != "" {
		parts = append(parts, report.Em(f.AttributionNote))
	}
	attr := report.Lit("")
	for i, p := range parts {
		if i > 0 {
			attr = report.Cat(attr, report.Lit("<br>"))
		}
		attr = report.Cat(attr, p)
	}
	base, head := value(f.Base, f.Unit), value(f.Head, f.Unit)
	if f.FastestRuns {
		base = "fastest runs " + base
	}
	if f.Kind == "function" {
		base, head = fmt.Sprintf("%.2f%%", 100*f.Base), fmt.Sprintf("%.2f%%", 100*f.Head)
	}
	return report.Row{Cells: []report.Inline{report.Code(f.Name()), report.Plain(f.Unit), report.Lit(base), report.Lit(head),
		report.Lit(fmt.Sprintf("%+.2f%%", f.DeltaPct)), report.Lit(ci), report.Lit(fmt.Sprintf("%.3f", f.P)), attr}}
}

// benchmarksText is benchstat's table for a terminal: a block for each
// unit, under its own header row, aligned together.
func (r *Result) benchmarksText(t *benchdiff.Table) *report.Table {
	out := &report.Table{Only: report.TerminalOnly, Columns: make([]report.Column, 5)}
	for ui, rows := range byUnit(t) {
		unit := rows[0].Unit
		if ui > 0 {
			out.Rows = append(out.Rows, report.Row{Cells: []report.Inline{nil, nil, nil, nil, nil}})
		}
		out.Rows = append(out.Rows, report.Row{Head: true, Cells: []report.Inline{nil, report.Cat(report.Lit("base "), report.Plain(unit)),
			report.Cat(report.Lit("head "), report.Plain(unit)), report.Lit("delta"), nil}})
		for _, row := range rows {
			var mark report.Inline
			switch row.Change {
			case stat.Regression:
				mark = report.Lit("regression").Paint(report.Red)
			case stat.Improvement:
				mark = report.Lit("improvement").Paint(report.Green)
			case stat.Changed:
				mark = report.Lit("changed")
			}
			out.Rows = append(out.Rows, report.Row{Cells: []report.Inline{report.Plain(benchLabel(row, t)), report.Lit(withSpread(row.Base, row.Unit)),
				report.Lit(withSpread(row.Head, row.Unit)), report.Lit(deltaCell(row, r.Policy.Alpha)),
				report.Cat(report.Lit(pval(row.P, row.Base.N, row.Head.N)+" "), mark)}})
		}
		if g := geomeanOf(t, unit); g != nil {
			out.Rows = append(out.Rows, report.Row{Cells: []report.Inline{report.Lit("geomean"), report.Lit(value(g.Base, g.Unit)),
				report.Lit(value(g.Head, g.Unit)), report.Lit(signedPct(g.Delta)), nil}})
		}
	}
	return out
}

// benchmarksMarkdown is every row in one table, the unit a column, then
// the geomeans.
func (r *Result) benchmarksMarkdown(t *benchdiff.Table) *report.Table {
	out := &report.Table{Only: report.MarkdownOnly, Columns: []report.Column{{Header: "benchmark"}, {Header: "unit"}, {Header: "base", Right: true},
		{Header: "head", Right: true}, {Header: "delta", Right: true}, {Header: "p", Right: true}}}
	for _, row := range flatten(byUnit(t)) {
		out.Rows = append(out.Rows, report.Row{Cells: []report.Inline{report.Code(benchLabel(row, t)), report.Plain(row.Unit),
			report.Lit(withSpread(row.Base, row.Unit)), report.Lit(withSpread(row.Head, row.Unit)), report.Lit(deltaCell(row, r.Policy.Alpha)),
			report.Lit(fmt.Sprintf("%.3f", row.P))}})
	}
	for _, g := range t.Geomeans {
		if g.Rows > 1 {
			out.Rows = append(out.Rows, report.Row{Cells: []report.Inline{report.Lit("geomean"), report.Plain(g.Unit), report.Lit(value(g.Base, g.Unit)),
				report.Lit(value(g.Head, g.Unit)), report.Lit(signedPct(g.Delta)), nil}})
		}
	}
	return out
}

// functionsSection is the functions of a profile kind whose own cost
// changed most, at most top of them.
func functionsSection(d *profdiff.Diff, top int) report.Section {
	term := &report.Table{Only: report.TerminalOnly, Numbers: true, Columns: []report.Column{{Header: "Δ own"}, {Header: "Δ flat"},
		{Header: "base own"}, {Header: "head own"}, {Header: "p"}, {}}}
	md := &report.Table{Only: report.MarkdownOnly, Columns: []report.Column{{Header: "function"}, {Header: "Δ own", Right: true},
		{Header: "Δ flat", Right: true}, {Header: "base own", Right: true}, {Header: "head own", Right: true}, {Header: "p", Right: true}}}
	for i, f := range d.Functions {
		if i == top || f.Delta.Own == 0 {
			break
		}
		own, flat := report.Plain(signedCost(f.Delta.Own, d.Unit)), report.Plain(signedCost(f.Delta.Flat, d.Unit))
		base, head, p := report.Lit(costValue(f.Base.Own, d.Unit)), report.Lit(costValue(f.Head.Own, d.Unit)), report.Lit(fmt.Sprintf("%.3f", f.P))
		term.Rows = append(term.Rows, report.Row{Cells: []report.Inline{own, flat, base, head, p,
			report.Cat(report.Plain(shortName(f.Name)), report.Lit(changeMark(f.Change)))}})
		md.Rows = append(md.Rows, report.Row{Cells: []report.Inline{report.Code(shortName(f.Name)), own, flat, base, head, p}})
	}
	title := profileTitle(d)
	return report.Section{Title: "Functions", Note: title, Fold: report.Cat(report.Lit("Functions ("), report.Plain(title), report.Lit(")")),
		Blocks: []report.Block{term, md}}
}

// prioritiesSection is where the head spends its cost, by own share; on a
// terminal under the sample type of each profile kind, when there are
// several.
func (r *Result) prioritiesSection() report.Section {
	term := &report.Table{Only: report.TerminalOnly, Numbers: true, Columns: []report.Column{{Header: "rank"}, {Header: "own"}, {Header: "flat"},
		{Header: "cum"}, {Header: "cumulative"}, {}}}
	md := &report.Table{Only: report.MarkdownOnly, Columns: []report.Column{{Header: "#", Right: true}, {Header: "function"}, {Header: "own", Right: true},
		{Header: "flat", Right: true}, {Header: "cum", Right: true}, {Header: "cumulative", Right: true}}}
	pct := func(x float64) report.Inline { return report.Lit(fmt.Sprintf("%.1f%%", 100*x)) }
	st := ""
	for _, p := range r.Priorities {
		if p.SampleType != st && len(r.Profiles) > 1 {
			st = p.SampleType
			term.Rows = append(term.Rows, report.Row{Cells: []report.Inline{nil, nil, nil, nil, nil, report.Cat(report.Lit("["), report.Plain(st), report.Lit("]"))}})
		}
		rank := report.Lit(strconv.Itoa(p.Rank))
		term.Rows = append(term.Rows, report.Row{Cells: []report.Inline{rank, pct(p.Own), pct(p.Flat), pct(p.Cum), pct(p.Cumulative),
			report.Plain(shortName(p.Function))}})
		md.Rows = append(md.Rows, report.Row{Cells: []report.Inline{rank, report.Code(shortName(p.Function)), pct(p.Own), pct(p.Flat), pct(p.Cum),
			pct(p.Cumulative)}})
	}
	return report.Section{Title: "Optimization priorities", Note: "where the head spends its cost, by own share",
		Fold: report.Lit("Optimization priorities (head)"), Blocks: []report.Block{term, md}}
}

// byUnit groups rows by unit, as benchstat prints one table per unit,
// keeping the input order of units and of rows within a unit.
func byUnit(t *benchdiff.Table) [][]*benchdiff.Row {
	idx := map[string]int{}
	var out [][]*benchdiff.Row
	for i := range t.Rows {
		u := t.Rows[i].Unit
		j, ok := idx[u]
		if !ok {
			j = len(out)
			idx[u] = j
			out = append(out, nil)
		}
		out[j] = append(out[j], &t.Rows[i])
	}
	return out
}

func flatten(groups [][]*benchdiff.Row) []*benchdiff.Row {
	var out []*benchdiff.Row
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// geomeanOf returns the unit's geomean when it summarises several rows.
func geomeanOf(t *benchdiff.Table, unit string) *benchdiff.Geomean {
	for i := range t.Geomeans {
		if g := &t.Geomeans[i]; g.Unit == unit && g.Rows > 1 {
			return g
		}
	}
	return nil
}

func changeMark(c stat.Change) string {
	if c == stat.Unchanged {
		return ""
	}
	return "  (" + c.String() + ")"
}

// benchLabel names a row, with its package when the table spans several.
func benchLabel(row *benchdiff.Row, t *benchdiff.Table) string {
	pkgs := map[string]bool{}
	for _, r := range t.Rows {
		pkgs[r.Package] = true
	}
	if len(pkgs) > 1 && row.Package != "" {
		return row.Package + "." + row.Name
	}
	return row.Name
}

// shortPath is a call path of short names.
func shortPath(path []string) report.Inline {
	var s report.Inline
	for i, p := range path {
		if i > 0 {
			s = report.Cat(s, report.Lit(" → "))
		}
		s = report.Cat(s, report.Plain(shortName(p)))
	}
	return s
}

func sigNote(p, alpha float64) string {
	if p < alpha {
		return ""
	}
	return fmt.Sprintf("  (p=%.2f, within noise)", p)
}

// notes gathers every warning, so that nothing is silently dropped.
func (r *Result) notes() []string {
	var out []string
	out = append(out, r.Warnings...)
	for _, s := range []struct {
		name string
		side Side
	}{{"base", r.Base}, {"head", r.Head}} {
		for _, w := range s.side.Warnings {
			out = append(out, s.name+": "+w)
		}
		for _, w := range s.side.Skipped {
			out = append(out, s.name+": "+w)
		}
	}
	if t := r.Benchmarks; t != nil {
		seen := map[string]bool{}
		for _, row := range t.Rows {
			for _, w := range row.Warn {
				if !seen[w] {
					seen[w] = true
					out = append(out, row.Name+" "+row.Unit+": "+w)
				}
			}
		}
	}
	for _, d := range r.Profiles {
		out = append(out, d.Warnings...)
	}
	return out
}

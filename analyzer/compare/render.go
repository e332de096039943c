package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

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
		return r.markdown(w, o)
	}
	return r.text(w, o)
}

const (
	red   = "\x1b[31m"
	green = "\x1b[32m"
	bold  = "\x1b[1m"
	reset = "\x1b[0m"
)

func paint(on bool, code, s string) string {
	if !on {
		return s
	}
	return code + s + reset
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

func (r *Result) text(w io.Writer, o RenderOptions) error {
	ew := textfmt.NewWriter(w)
	c := o.Color
	ew.Printf("%s\n", paint(c, bold, "perfhound compare"))
	ew.Printf("  base:   %s (%s)\n", pr(strings.Join(r.Base.Paths, " ")), r.Base.Inputs)
	ew.Printf("  head:   %s (%s)\n", pr(strings.Join(r.Head.Paths, " ")), r.Head.Inputs)
	ew.Printf("  policy: alpha %.2g, threshold %s, fail on %s\n\n", r.Policy.Alpha, pct0(r.Policy.Threshold), r.Policy.FailOn)
	verdict := "OK"
	code := green
	if r.Failed {
		verdict, code = "FAIL", red
	}
	ew.Printf("%s: %s\n", paint(c, bold+code, verdict), r.headline())

	if len(r.Regressions) > 0 {
		ew.Printf("\n%s\n", paint(c, bold, "Regressions"))
		for i := range r.Regressions {
			r.textFinding(ew, &r.Regressions[i], o)
		}
	}
	if len(r.Changes) > 0 {
		ew.Printf("\n%s\n", paint(c, bold, "Changes (no known better direction)"))
		for i := range r.Changes {
			r.textFinding(ew, &r.Changes[i], o)
		}
	}
	if len(r.Improvements) > 0 {
		ew.Printf("\n%s\n", paint(c, bold, "Improvements"))
		for i := range r.Improvements {
			r.textFinding(ew, &r.Improvements[i], o)
		}
	}
	if t := r.Benchmarks; t != nil {
		ew.Printf("\n%s\n", paint(c, bold, "Benchmarks"))
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		for ui, rows := range byUnit(t) {
			unit := pr(rows[0].Unit)
			if ui > 0 {
				fmt.Fprintf(tw, "\t\t\t\t\n")
			}
			fmt.Fprintf(tw, "\tbase %s\thead %s\tdelta\t\n", unit, unit)
			for _, row := range rows {
				mark := ""
				switch row.Change {
				case stat.Regression:
					mark = paint(c, red, "regression")
				case stat.Improvement:
					mark = paint(c, green, "improvement")
				case stat.Changed:
					mark = "changed"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\n", pr(benchLabel(row, t)), withSpread(row.Base, row.Unit),
					withSpread(row.Head, row.Unit), deltaCell(row, r.Policy.Alpha), pval(row.P, row.Base.N, row.Head.N), mark)
			}
			if g := geomeanOf(t, rows[0].Unit); g != nil {
				fmt.Fprintf(tw, "geomean\t%s\t%s\t%s\t\n", value(g.Base, g.Unit), value(g.Head, g.Unit), signedPct(g.Delta))
			}
		}
		tw.Flush()
	}
	for _, d := range r.Profiles {
		ew.Printf("\n%s (%s)\n", paint(c, bold, "Functions"), pr(profileTitle(d)))
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "Δ own\tΔ flat\tbase own\thead own\tp\t\t\n")
		n := 0
		for _, f := range d.Functions {
			if n == o.Functions || f.Delta.Own == 0 {
				break
			}
			n++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t\t%s\n", pr(signedCost(f.Delta.Own, d.Unit)), pr(signedCost(f.Delta.Flat, d.Unit)),
				costValue(f.Base.Own, d.Unit), costValue(f.Head.Own, d.Unit), f.P, pr(shortName(f.Name))+changeMark(f.Change))
		}
		tw.Flush()
	}
	if len(r.Priorities) > 0 {
		ew.Printf("\n%s (where the head spends its cost, by own share)\n", paint(c, bold, "Optimization priorities"))
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "rank\town\tflat\tcum\tcumulative\t\t\n")
		st := ""
		for _, p := range r.Priorities {
			if p.SampleType != st && len(r.Profiles) > 1 {
				st = p.SampleType
				fmt.Fprintf(tw, "\t\t\t\t\t\t[%s]\n", pr(st))
			}
			fmt.Fprintf(tw, "%d\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t\t%s\n", p.Rank, 100*p.Own, 100*p.Flat, 100*p.Cum, 100*p.Cumulative, pr(shortName(p.Function)))
		}
		tw.Flush()
	}
	r.textNotes(ew)
	return ew.Err()
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

func (r *Result) textFinding(ew *textfmt.Writer, f *Finding, o RenderOptions) {
	if f.Kind == "function" {
		ew.Printf("  %s  %+.2f%% of total %s  (p=%.3f)\n", pr(shortName(f.Function)), f.DeltaPct, pr(f.Unit), f.P)
		return
	}
	ci := ""
	if f.DeltaLoPct != nil && f.DeltaHiPct != nil {
		ci = fmt.Sprintf(" [%+.1f%%, %+.1f%%]", *f.DeltaLoPct, *f.DeltaHiPct)
	}
	ew.Printf("  %s  %s  %s → %s  %+.2f%%%s  (p=%.3f)\n", pr(f.Benchmark), pr(f.Unit), value(f.Base, f.Unit), value(f.Head, f.Unit), f.DeltaPct, ci, f.P)
	for _, a := range f.AttributedTo {
		if a.Blamed {
			ew.Printf("      blamed: %s  (%s, %.0f%% of the change, with callees; %s)\n", pr(shortName(a.Function)), pr(signedCost(a.Delta, a.Unit)), 100*a.Share, pr(a.Why))
			if len(a.Path) > 1 {
				ew.Printf("              via %s\n", shortPath(a.Path))
			}
			continue
		}
		ew.Printf("      %s  %3.0f%%  %s%s\n", pr(signedCost(a.Delta, a.Unit)), 100*a.Share, pr(shortName(a.Function)), sigNote(a.P, r.Policy.Alpha))
	}
	if f.AttributionNote != "" {
		ew.Printf("      (not attributed: %s)\n", pr(f.AttributionNote))
	}
}

func shortPath(path []string) string {
	var s []string
	for _, p := range path {
		s = append(s, pr(shortName(p)))
	}
	return strings.Join(s, " → ")
}

func sigNote(p, alpha float64) string {
	if p < alpha {
		return ""
	}
	return fmt.Sprintf("  (p=%.2f, within noise)", p)
}

func (r *Result) textNotes(ew *textfmt.Writer) {
	notes := r.notes()
	if len(notes) == 0 {
		return
	}
	ew.Printf("\nNotes\n")
	for _, n := range notes {
		ew.Printf("  - %s\n", pr(n))
	}
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

func (r *Result) markdown(w io.Writer, o RenderOptions) error {
	ew := textfmt.NewWriter(w)
	icon := "✅"
	if r.Failed {
		icon = "❌"
	}
	ew.Printf("### %s perfhound compare: %s\n\n", icon, r.headline())
	ew.Printf("Base `%s` (%s) vs head `%s` (%s); alpha %.2g, threshold %s, fail on %s.\n",
		mdCode(strings.Join(r.Base.Paths, " ")), r.Base.Inputs, mdCode(strings.Join(r.Head.Paths, " ")), r.Head.Inputs,
		r.Policy.Alpha, pct0(r.Policy.Threshold), r.Policy.FailOn)
	for _, sec := range []struct {
		title string
		fs    []Finding
	}{{"Regressions", r.Regressions}, {"Changes", r.Changes}, {"Improvements", r.Improvements}} {
		if len(sec.fs) == 0 {
			continue
		}
		ew.Printf("\n#### %s\n\n| | unit | base | head | delta | 95%% CI | p | attributed to |\n|---|---|--:|--:|--:|--:|--:|---|\n", sec.title)
		for _, f := range sec.fs {
			ci := ""
			if f.DeltaLoPct != nil && f.DeltaHiPct != nil {
				ci = fmt.Sprintf("%+.1f%% … %+.1f%%", *f.DeltaLoPct, *f.DeltaHiPct)
			}
			var attr []string
			for i, a := range f.AttributedTo {
				if i == 3 {
					break
				}
				label := ""
				if a.Blamed {
					label = " **blamed**"
				}
				attr = append(attr, fmt.Sprintf("`%s`%s %s (%.0f%%)", mdCode(shortName(a.Function)), label, mdText(signedCost(a.Delta, a.Unit)), 100*a.Share))
			}
			if f.AttributionNote != "" {
				attr = append(attr, "_"+mdText(f.AttributionNote)+"_")
			}
			base, head := value(f.Base, f.Unit), value(f.Head, f.Unit)
			if f.Kind == "function" {
				base, head = fmt.Sprintf("%.2f%%", 100*f.Base), fmt.Sprintf("%.2f%%", 100*f.Head)
			}
			ew.Printf("| `%s` | %s | %s | %s | %+.2f%% | %s | %.3f | %s |\n", mdCode(f.Name()), mdText(f.Unit), base, head, f.DeltaPct, ci, f.P, strings.Join(attr, "<br>"))
		}
	}
	if t := r.Benchmarks; t != nil {
		ew.Printf("\n<details><summary>All benchmarks (%d rows)</summary>\n\n| benchmark | unit | base | head | delta | p |\n|---|---|--:|--:|--:|--:|\n", len(t.Rows))
		for _, row := range flatten(byUnit(t)) {
			ew.Printf("| `%s` | %s | %s | %s | %s | %.3f |\n", mdCode(benchLabel(row, t)), mdText(row.Unit), withSpread(row.Base, row.Unit),
				withSpread(row.Head, row.Unit), deltaCell(row, r.Policy.Alpha), row.P)
		}
		for _, g := range t.Geomeans {
			if g.Rows > 1 {
				ew.Printf("| geomean | %s | %s | %s | %s | |\n", mdText(g.Unit), value(g.Base, g.Unit), value(g.Head, g.Unit), signedPct(g.Delta))
			}
		}
		ew.Printf("\n</details>\n")
	}
	for _, d := range r.Profiles {
		ew.Printf("\n<details><summary>Functions (%s)</summary>\n\n| function | Δ own | Δ flat | base own | head own | p |\n|---|--:|--:|--:|--:|--:|\n", mdText(profileTitle(d)))
		n := 0
		for _, f := range d.Functions {
			if n == o.Functions || f.Delta.Own == 0 {
				break
			}
			n++
			ew.Printf("| `%s` | %s | %s | %s | %s | %.3f |\n", mdCode(shortName(f.Name)), mdText(signedCost(f.Delta.Own, d.Unit)), mdText(signedCost(f.Delta.Flat, d.Unit)),
				costValue(f.Base.Own, d.Unit), costValue(f.Head.Own, d.Unit), f.P)
		}
		ew.Printf("\n</details>\n")
	}
	if len(r.Priorities) > 0 {
		ew.Printf("\n<details><summary>Optimization priorities (head)</summary>\n\n| # | function | own | flat | cum | cumulative |\n|--:|---|--:|--:|--:|--:|\n")
		for _, p := range r.Priorities {
			ew.Printf("| %d | `%s` | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n", p.Rank, mdCode(shortName(p.Function)), 100*p.Own, 100*p.Flat, 100*p.Cum, 100*p.Cumulative)
		}
		ew.Printf("\n</details>\n")
	}
	if notes := r.notes(); len(notes) > 0 {
		ew.Printf("\n<details><summary>Notes (%d)</summary>\n\n", len(notes))
		for _, n := range notes {
			ew.Printf("- %s\n", mdText(n))
		}
		ew.Printf("\n</details>\n")
	}
	return ew.Err()
}

// Input-derived text (names of benchmarks, packages, functions, units and
// files, and notes quoting them) is escaped where it is written: pr for
// the terminal, mdText and mdCode for markdown text and code spans.
var (
	pr     = textfmt.Printable
	mdText = textfmt.MarkdownText
	mdCode = textfmt.MarkdownCode
)

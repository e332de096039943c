package verdict

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/perfhound/perfhound/internal/textfmt"
)

// Schema names the JSON document WriteJSON writes. It changes only when a
// field is removed or changes meaning; new fields keep it.
const Schema = "perfhound.verdict/v1"

// TextOptions tune WriteText.
type TextOptions struct {
	// Color adds ANSI colours; set it only for a terminal (see ColorFor).
	Color bool
	// Brief keeps the headline, the summary and the first BriefPriorities
	// priorities: a verdict among others, such as a host's processes.
	Brief bool
}

// BriefPriorities is how many priorities a brief report lists.
const BriefPriorities = 3

// ColorFor reports whether text written to f may be coloured: f is a
// terminal and the user has not asked for no colour (https://no-color.org,
// TERM=dumb).
func ColorFor(f *os.File) bool {
	if f == nil || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// jsonDigits is the significant digits WriteJSON keeps of non-integral
// numbers, so that documents compare stably.
const jsonDigits = 4

// WriteJSON writes v as a versioned document:
//
//	{"schema": "perfhound.verdict/v1", "verdict": {...}}
//
// with the class at .verdict.class. Non-integral numbers are rounded to
// four significant digits; lists and maps are empty rather than null.
func WriteJSON(w io.Writer, v *Verdict) error {
	return EncodeJSON(w, struct {
		Schema  string   `json:"schema"`
		Verdict *Verdict `json:"verdict"`
	}{Schema, ForJSON(v)})
}

// EncodeJSON writes a document holding verdicts (made with ForJSON) as
// WriteJSON does: indented, with non-integral numbers rounded to four
// significant digits. Reports that embed verdicts use it.
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
	if v == nil {
		v = &Verdict{}
	}
	r := &textReport{textfmt.NewTerminal(w, opts.Color)}
	r.headline(v)
	if opts.Brief {
		r.brief(v)
		return r.Err()
	}
	r.breakdown(v)
	r.evidence(v)
	r.use(v)
	r.latency(v)
	r.findings(v)
	r.priorities(v)
	r.missing(v)
	return r.Err()
}

type textReport struct {
	textfmt.Terminal
}

func (r *textReport) headline(v *Verdict) {
	class := v.Class
	if class == "" {
		class = ClassNone
	}
	code := textfmt.Bold + textfmt.Red
	if class == ClassNone {
		code = textfmt.Bold + textfmt.Green
	}
	line := fmt.Sprintf("%s: %s, %s confidence", r.Paint(textfmt.Bold, "perfhound verdict"),
		r.Paint(code, strings.ToUpper(string(class))), textfmt.Pct(v.Confidence))
	if v.Secondary != "" {
		line += fmt.Sprintf("; secondary %s", r.Paint(textfmt.Bold, strings.ToUpper(string(v.Secondary))))
	}
	r.Printf("%s\n", line)
	if t := v.Target.Describe(v.Start, v.Duration); t != "" {
		r.Para("  ", t)
	}
	if v.Summary != "" {
		r.Printf("\n")
		r.Para("", v.Summary)
	}
}

func (r *textReport) breakdown(v *Verdict) {
	b := v.Breakdown
	rows := breakdownRows(b, v.Duration.Seconds())
	if len(rows) == 0 {
		r.Section("Where the time went", "")
		r.Printf("  no breakdown: the observation has neither eBPF thread states nor /proc CPU time\n")
		return
	}
	r.Section("Where the time went", "thread time per second of wall time; "+b.SourceText())
	r.Columns(0, func(tw io.Writer) {
		fmt.Fprintf(tw, "  category\t\tper second\tshare\n")
		for _, row := range rows {
			if row.group {
				fmt.Fprintf(tw, "  %s\t\t%10s\t%5s\n", row.label, row.perSec, row.share)
				continue
			}
			fmt.Fprintf(tw, "    %s\t%s\t%10s\t%5s\n", row.category, row.label, row.perSec, row.share)
		}
	})
	if n := skippedCategories(b); n > 0 {
		r.Printf("  %s\n", r.Paint(textfmt.Dim, fmt.Sprintf("(%s under 1%% not shown)", textfmt.Count(n, "category", "categories"))))
	}
	if l := textfmt.Loads(v.Load, ClassNone); l != "" {
		r.Para("  by class: ", l)
	}
}

func (r *textReport) evidence(v *Verdict) {
	if len(v.Evidence) == 0 {
		return
	}
	r.Section("Evidence", "")
	width := 0
	for _, e := range v.Evidence {
		width = max(width, len(e.Class))
	}
	for _, e := range v.Evidence {
		r.Para(fmt.Sprintf("  - %-*s", width+2, e.Class), e.Text+"  ["+e.Signal+"]")
	}
}

func (r *textReport) use(v *Verdict) {
	if len(v.USE) == 0 {
		return
	}
	r.Section("USE", "utilization, saturation, errors of the host's resources")
	r.Columns(0, func(tw io.Writer) {
		fmt.Fprintf(tw, "  resource\tutilization\tsaturation\terrors\tstatus\n")
		for _, res := range v.USE {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", res.Resource, metricValue(res.Utilization), metricValue(res.Saturation),
				metricValue(res.Errors), r.status(res.Status))
		}
	})
	for _, res := range v.USE {
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
			r.Para(fmt.Sprintf("  %s %s: ", res.Resource, c.what), metricNote(c.m))
		}
	}
}

func (r *textReport) latency(v *Verdict) {
	if len(v.Latency) == 0 {
		return
	}
	r.Section("Latency", "percentiles as upper bounds of eBPF's log2 histograms")
	r.Columns(0, func(tw io.Writer) {
		fmt.Fprintf(tw, "  wait\tcount\tp50\tp95\tp99\n")
		for _, l := range v.Latency {
			fmt.Fprintf(tw, "  %s\t%d\t≤ %s\t≤ %s\t≤ %s\n", l.Name, l.Count, textfmt.Bound(l.P50*1e9), textfmt.Bound(l.P95*1e9), textfmt.Bound(l.P99*1e9))
		}
	})
}

func (r *textReport) status(s string) string {
	switch s {
	case "ok":
		return r.Paint(textfmt.Green, s)
	case "busy":
		return r.Paint(textfmt.Yellow, s)
	case "":
		return "-"
	}
	return r.Paint(textfmt.Red, s)
}

func (r *textReport) findings(v *Verdict) {
	if len(v.Findings) == 0 {
		return
	}
	r.Section("Findings", "")
	for _, f := range v.Findings {
		r.Para("  - ", fmt.Sprintf("%s: %s  [%s]", r.Paint(textfmt.Yellow, f.Kind), f.Text, f.Signal))
	}
}

// brief lists the first priorities, a line each.
func (r *textReport) brief(v *Verdict) {
	for i, p := range v.Priorities {
		if i == BriefPriorities {
			break
		}
		r.Para(fmt.Sprintf("  %d. ", p.Rank), fmt.Sprintf("%s  %s (%s of busy, %s, %s)", textfmt.ShortNames(p.Name),
			textfmt.PerSec(p.Saving), textfmt.Pct(p.Share), p.Class, p.Remedy))
	}
}

func (r *textReport) priorities(v *Verdict) {
	r.Section("Priorities", "what to optimize first, by the time it would save if it cost nothing")
	if len(v.Priorities) == 0 {
		r.Printf("  none: no item costs enough to rank\n")
		return
	}
	// The rows go through a tabwriter on their own, so that each row's
	// why can follow it without breaking the columns.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "   #\t    saving\tof busy\tclass\tremedy\tkind\tname\n")
	for _, p := range v.Priorities {
		fmt.Fprintf(tw, "  %2d\t%10s\t%7s\t%s\t%s\t%s\t%s\n", p.Rank, textfmt.PerSec(p.Saving), textfmt.Pct(p.Share), p.Class, p.Remedy,
			textfmt.OrDash(p.Kind), textfmt.ShortNames(p.Name))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	r.Printf("%s\n", r.Paint(textfmt.Dim, lines[0]))
	for i, p := range v.Priorities {
		r.Printf("%s\n", lines[i+1])
		if p.Why != "" {
			r.Para("        ", p.Why)
		}
	}
}

func (r *textReport) missing(v *Verdict) {
	if len(v.Missing) == 0 {
		return
	}
	r.Section("Missing", "what the observation lacked, and what that costs this verdict")
	for _, g := range v.Missing {
		r.Para("  - ", gapText(g))
	}
}

// WriteMarkdown writes v as GitHub-flavoured markdown, for a pull
// request comment or a ticket: the same content as WriteText.
func WriteMarkdown(w io.Writer, v *Verdict) error {
	if v == nil {
		v = &Verdict{}
	}
	ew := textfmt.NewWriter(w)
	class := v.Class
	if class == "" {
		class = ClassNone
	}
	icon := "🔴"
	if class == ClassNone {
		icon = "🟢"
	}
	head := fmt.Sprintf("### %s perfhound verdict: %s (%s confidence)", icon, strings.ToUpper(string(class)), textfmt.Pct(v.Confidence))
	if v.Secondary != "" {
		head += fmt.Sprintf(", secondary %s", strings.ToUpper(string(v.Secondary)))
	}
	ew.Printf("%s\n\n", head)
	if v.Summary != "" {
		ew.Printf("%s\n\n", textfmt.MarkdownText(v.Summary))
	}
	if t := v.Target.Describe(v.Start, v.Duration); t != "" {
		ew.Printf("_%s_\n", textfmt.MarkdownText(t))
	}

	b := v.Breakdown
	ew.Printf("\n#### Where the time went\n\n")
	if rows := breakdownRows(b, v.Duration.Seconds()); len(rows) > 0 {
		ew.Printf("Thread time per second of wall time, %s.\n\n", b.SourceText())
		ew.Printf("| category | | per second | share of thread time |\n|---|---|--:|--:|\n")
		for _, row := range rows {
			if row.group {
				ew.Printf("| **%s** | | **%s** | **%s** |\n", row.label, row.perSec, row.share)
				continue
			}
			ew.Printf("| `%s` | %s | %s | %s |\n", textfmt.MarkdownText(row.category), textfmt.MarkdownText(row.label), row.perSec, row.share)
		}
		ew.Printf("\n")
		if n := skippedCategories(b); n > 0 {
			ew.Printf("%s under 1%% not shown. ", capitalizeFirst(textfmt.Count(n, "category", "categories")))
		}
		if l := textfmt.Loads(v.Load, ClassNone); l != "" {
			ew.Printf("By class: %s.", textfmt.MarkdownText(l))
		}
		ew.Printf("\n")
	} else {
		ew.Printf("No breakdown: the observation has neither eBPF thread states nor /proc CPU time.\n")
	}

	if len(v.Evidence) > 0 {
		ew.Printf("\n#### Evidence\n\n")
		for _, e := range v.Evidence {
			text := textfmt.MarkdownText(e.Text)
			if e.Class != "" {
				text = fmt.Sprintf("**%s**: %s", e.Class, text)
			}
			ew.Printf("- %s (`%s`)\n", text, textfmt.MarkdownCode(e.Signal))
		}
	}

	if len(v.USE) > 0 {
		ew.Printf("\n#### USE\n\n| resource | utilization | saturation | errors | status |\n|---|---|---|---|---|\n")
		for _, res := range v.USE {
			status := res.Status
			if status != "ok" && status != "" {
				status = "**" + status + "**"
			}
			ew.Printf("| %s | %s | %s | %s | %s |\n", textfmt.MarkdownText(res.Resource), mdMetric(res.Utilization), mdMetric(res.Saturation),
				mdMetric(res.Errors), status)
		}
	}

	if len(v.Latency) > 0 {
		ew.Printf("\n#### Latency\n\nPercentiles as upper bounds of eBPF's log2 histograms.\n\n| wait | count | p50 | p95 | p99 |\n|---|--:|--:|--:|--:|\n")
		for _, l := range v.Latency {
			ew.Printf("| %s | %d | ≤ %s | ≤ %s | ≤ %s |\n", textfmt.MarkdownText(l.Name), l.Count, textfmt.Bound(l.P50*1e9), textfmt.Bound(l.P95*1e9), textfmt.Bound(l.P99*1e9))
		}
	}

	if len(v.Findings) > 0 {
		ew.Printf("\n#### Findings\n\n")
		for _, f := range v.Findings {
			ew.Printf("- **%s**: %s (`%s`)\n", textfmt.MarkdownText(f.Kind), textfmt.MarkdownText(f.Text), textfmt.MarkdownCode(f.Signal))
		}
	}

	ew.Printf("\n#### Priorities\n\n")
	if len(v.Priorities) == 0 {
		ew.Printf("None: no item costs enough to rank.\n")
	} else {
		ew.Printf("What to optimize first, by the time it would save if it cost nothing.\n\n")
		ew.Printf("| # | saving | of busy | class | remedy | kind | name | why |\n|--:|--:|--:|---|---|---|---|---|\n")
		for _, p := range v.Priorities {
			ew.Printf("| %d | %s | %s | %s | %s | %s | `%s` | %s |\n", p.Rank, textfmt.PerSec(p.Saving), textfmt.Pct(p.Share), p.Class,
				textfmt.MarkdownText(p.Remedy), textfmt.MarkdownText(textfmt.OrDash(p.Kind)), textfmt.MarkdownCode(textfmt.ShortNames(p.Name)), textfmt.MarkdownText(p.Why))
		}
	}

	if len(v.Missing) > 0 {
		ew.Printf("\n#### Missing\n\n")
		for _, g := range v.Missing {
			s := fmt.Sprintf("- `%s`: %s", textfmt.MarkdownCode(g.Signal), textfmt.MarkdownText(g.Reason))
			if g.Cost != "" {
				s += " — _" + textfmt.MarkdownText(g.Cost) + "_"
			}
			ew.Printf("%s\n", s)
		}
	}
	return ew.Err()
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
// leaves out for being under 1%, or for being neither on nor off CPU.
func skippedCategories(b Breakdown) int {
	total := b.Total()
	n := 0
	for c, s := range b.Seconds {
		if s > 0 && (s/total < 0.01 || !strings.HasPrefix(c, "cpu.") && !strings.HasPrefix(c, "wait.")) {
			n++
		}
	}
	return n
}

func gapText(g Gap) string {
	s := g.Signal + ": " + g.Reason
	if g.Cost != "" {
		s += " — " + g.Cost
	}
	return s
}

// metricValue is a USE cell: the value in its unit, "-" for none.
func metricValue(m *Metric) string {
	if m == nil {
		return "-"
	}
	return textfmt.Value(m.Value, m.Unit)
}

// metricNote is a metric's text with its threshold and signal.
func metricNote(m *Metric) string {
	s := m.Text
	if m.Threshold > 0 {
		s += fmt.Sprintf(" (threshold %s)", textfmt.Value(m.Threshold, m.Unit))
	}
	return s + "  [" + m.Signal + "]"
}

func mdMetric(m *Metric) string {
	if m == nil {
		return "-"
	}
	s := m.Text
	if s == "" {
		s = textfmt.Value(m.Value, m.Unit)
	}
	s = textfmt.MarkdownText(s)
	if m.Threshold > 0 {
		s += fmt.Sprintf(" (threshold %s)", textfmt.Value(m.Threshold, m.Unit))
	}
	return s
}

func capitalizeFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return strings.ToUpper(string(r)) + s[n:]
}

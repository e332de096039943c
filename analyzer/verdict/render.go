package verdict

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
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

// textWidth is the width text reports wrap their prose to.
const textWidth = 110

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

// ANSI colours for text reports.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiReset  = "\x1b[0m"
)

// WriteText writes v as a report for a terminal: the headline and summary,
// where the time went, the evidence, the USE table, findings, priorities
// and what the observation lacked.
func WriteText(w io.Writer, v *Verdict, opts TextOptions) error {
	if v == nil {
		v = &Verdict{}
	}
	r := &textReport{w: &renderWriter{w: w}, color: opts.Color}
	r.headline(v)
	if opts.Brief {
		r.brief(v)
		return r.w.err
	}
	r.breakdown(v)
	r.evidence(v)
	r.use(v)
	r.latency(v)
	r.findings(v)
	r.priorities(v)
	r.missing(v)
	return r.w.err
}

type textReport struct {
	w     *renderWriter
	color bool
}

func (r *textReport) paint(code, s string) string {
	if !r.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

// table writes a table from a tabwriter, its header row dimmed (the
// colour goes on after alignment, so that it does not count as width).
func (r *textReport) table(s string) {
	header, rest, _ := strings.Cut(s, "\n")
	r.w.printf("%s\n%s", r.paint(ansiDim, header), rest)
}

func (r *textReport) section(title, note string) {
	r.w.printf("\n%s", r.paint(ansiBold, title))
	if note != "" {
		r.w.printf(" %s", r.paint(ansiDim, "("+note+")"))
	}
	r.w.printf("\n")
}

// para writes prose wrapped to the report's width, the first line after
// first and the rest after an indent as wide.
func (r *textReport) para(first, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(first))
	for i, l := range renderWrap(text, textWidth-len(indent)) {
		if i == 0 {
			r.w.printf("%s%s\n", first, l)
		} else {
			r.w.printf("%s%s\n", indent, l)
		}
	}
}

func (r *textReport) headline(v *Verdict) {
	class := v.Class
	if class == "" {
		class = ClassNone
	}
	code := ansiBold + ansiRed
	if class == ClassNone {
		code = ansiBold + ansiGreen
	}
	line := fmt.Sprintf("%s: %s, %s confidence", r.paint(ansiBold, "perfhound verdict"),
		r.paint(code, strings.ToUpper(string(class))), renderPct(v.Confidence))
	if v.Secondary != "" {
		line += fmt.Sprintf("; secondary %s", r.paint(ansiBold, strings.ToUpper(string(v.Secondary))))
	}
	r.w.printf("%s\n", line)
	if t := renderTarget(v); t != "" {
		r.para("  ", t)
	}
	if v.Summary != "" {
		r.w.printf("\n")
		r.para("", v.Summary)
	}
}

func (r *textReport) breakdown(v *Verdict) {
	b := v.Breakdown
	rows := breakdownRows(b, v.Duration.Seconds())
	if len(rows) == 0 {
		r.section("Where the time went", "")
		r.w.printf("  no breakdown: the observation has neither eBPF thread states nor /proc CPU time\n")
		return
	}
	r.section("Where the time went", "thread time per second of wall time; "+breakdownSource(b.Source))
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  category\t\tper second\tshare\n")
	for _, row := range rows {
		if row.group {
			fmt.Fprintf(tw, "  %s\t\t%10s\t%5s\n", row.label, row.perSec, row.share)
			continue
		}
		fmt.Fprintf(tw, "    %s\t%s\t%10s\t%5s\n", row.category, row.label, row.perSec, row.share)
	}
	tw.Flush()
	r.table(table.String())
	if n := skippedCategories(b); n > 0 {
		r.w.printf("  %s\n", r.paint(ansiDim, fmt.Sprintf("(%s under 1%% not shown)", renderCount(n, "category", "categories"))))
	}
	if l := loadLine(v.Load); l != "" {
		r.para("  by class: ", l)
	}
}

func (r *textReport) evidence(v *Verdict) {
	if len(v.Evidence) == 0 {
		return
	}
	r.section("Evidence", "")
	width := 0
	for _, e := range v.Evidence {
		width = max(width, len(e.Class))
	}
	for _, e := range v.Evidence {
		r.para(fmt.Sprintf("  - %-*s", width+2, e.Class), e.Text+"  ["+e.Signal+"]")
	}
}

func (r *textReport) use(v *Verdict) {
	if len(v.USE) == 0 {
		return
	}
	r.section("USE", "utilization, saturation, errors of the host's resources")
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  resource\tutilization\tsaturation\terrors\tstatus\n")
	for _, res := range v.USE {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", res.Resource, metricValue(res.Utilization), metricValue(res.Saturation),
			metricValue(res.Errors), r.status(res.Status))
	}
	tw.Flush()
	r.table(table.String())
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
			r.para(fmt.Sprintf("  %s %s: ", res.Resource, c.what), metricNote(c.m))
		}
	}
}

func (r *textReport) latency(v *Verdict) {
	if len(v.Latency) == 0 {
		return
	}
	r.section("Latency", "percentiles as upper bounds of eBPF's log2 histograms")
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  wait\tcount\tp50\tp95\tp99\n")
	for _, l := range v.Latency {
		fmt.Fprintf(tw, "  %s\t%d\t≤ %s\t≤ %s\t≤ %s\n", l.Name, l.Count, bound(l.P50*1e9), bound(l.P95*1e9), bound(l.P99*1e9))
	}
	tw.Flush()
	r.table(table.String())
}

func (r *textReport) status(s string) string {
	switch s {
	case "ok":
		return r.paint(ansiGreen, s)
	case "busy":
		return r.paint(ansiYellow, s)
	case "":
		return "-"
	}
	return r.paint(ansiRed, s)
}

func (r *textReport) findings(v *Verdict) {
	if len(v.Findings) == 0 {
		return
	}
	r.section("Findings", "")
	for _, f := range v.Findings {
		r.para("  - ", fmt.Sprintf("%s: %s  [%s]", r.paint(ansiYellow, f.Kind), f.Text, f.Signal))
	}
}

// brief lists the first priorities, a line each.
func (r *textReport) brief(v *Verdict) {
	for i, p := range v.Priorities {
		if i == BriefPriorities {
			break
		}
		r.para(fmt.Sprintf("  %d. ", p.Rank), fmt.Sprintf("%s  %s (%s of busy, %s, %s)", shortNames(p.Name),
			renderPerSec(p.Saving), renderPct(p.Share), p.Class, p.Remedy))
	}
}

func (r *textReport) priorities(v *Verdict) {
	r.section("Priorities", "what to optimize first, by the time it would save if it cost nothing")
	if len(v.Priorities) == 0 {
		r.w.printf("  none: no item costs enough to rank\n")
		return
	}
	// The rows go through a tabwriter on their own, so that each row's
	// why can follow it without breaking the columns.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "   #\t    saving\tof busy\tclass\tremedy\tkind\tname\n")
	for _, p := range v.Priorities {
		fmt.Fprintf(tw, "  %2d\t%10s\t%7s\t%s\t%s\t%s\t%s\n", p.Rank, renderPerSec(p.Saving), renderPct(p.Share), p.Class, p.Remedy,
			orDash(p.Kind), shortNames(p.Name))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	r.w.printf("%s\n", r.paint(ansiDim, lines[0]))
	for i, p := range v.Priorities {
		r.w.printf("%s\n", lines[i+1])
		if p.Why != "" {
			r.para("        ", p.Why)
		}
	}
}

func (r *textReport) missing(v *Verdict) {
	if len(v.Missing) == 0 {
		return
	}
	r.section("Missing", "what the observation lacked, and what that costs this verdict")
	for _, g := range v.Missing {
		r.para("  - ", gapText(g))
	}
}

// WriteMarkdown writes v as GitHub-flavoured markdown, for a pull
// request comment or a ticket: the same content as WriteText.
func WriteMarkdown(w io.Writer, v *Verdict) error {
	if v == nil {
		v = &Verdict{}
	}
	ew := &renderWriter{w: w}
	class := v.Class
	if class == "" {
		class = ClassNone
	}
	icon := "🔴"
	if class == ClassNone {
		icon = "🟢"
	}
	head := fmt.Sprintf("### %s perfhound verdict: %s (%s confidence)", icon, strings.ToUpper(string(class)), renderPct(v.Confidence))
	if v.Secondary != "" {
		head += fmt.Sprintf(", secondary %s", strings.ToUpper(string(v.Secondary)))
	}
	ew.printf("%s\n\n", head)
	if v.Summary != "" {
		ew.printf("%s\n\n", mdText(v.Summary))
	}
	if t := renderTarget(v); t != "" {
		ew.printf("_%s_\n", mdText(t))
	}

	b := v.Breakdown
	ew.printf("\n#### Where the time went\n\n")
	if rows := breakdownRows(b, v.Duration.Seconds()); len(rows) > 0 {
		ew.printf("Thread time per second of wall time, %s.\n\n", breakdownSource(b.Source))
		ew.printf("| category | | per second | share of thread time |\n|---|---|--:|--:|\n")
		for _, row := range rows {
			if row.group {
				ew.printf("| **%s** | | **%s** | **%s** |\n", row.label, row.perSec, row.share)
				continue
			}
			ew.printf("| `%s` | %s | %s | %s |\n", mdText(row.category), mdText(row.label), row.perSec, row.share)
		}
		ew.printf("\n")
		if n := skippedCategories(b); n > 0 {
			ew.printf("%s under 1%% not shown. ", capitalizeFirst(renderCount(n, "category", "categories")))
		}
		if l := loadLine(v.Load); l != "" {
			ew.printf("By class: %s.", mdText(l))
		}
		ew.printf("\n")
	} else {
		ew.printf("No breakdown: the observation has neither eBPF thread states nor /proc CPU time.\n")
	}

	if len(v.Evidence) > 0 {
		ew.printf("\n#### Evidence\n\n")
		for _, e := range v.Evidence {
			text := mdText(e.Text)
			if e.Class != "" {
				text = fmt.Sprintf("**%s**: %s", e.Class, text)
			}
			ew.printf("- %s (`%s`)\n", text, mdCode(e.Signal))
		}
	}

	if len(v.USE) > 0 {
		ew.printf("\n#### USE\n\n| resource | utilization | saturation | errors | status |\n|---|---|---|---|---|\n")
		for _, res := range v.USE {
			status := res.Status
			if status != "ok" && status != "" {
				status = "**" + status + "**"
			}
			ew.printf("| %s | %s | %s | %s | %s |\n", mdText(res.Resource), mdMetric(res.Utilization), mdMetric(res.Saturation),
				mdMetric(res.Errors), status)
		}
	}

	if len(v.Latency) > 0 {
		ew.printf("\n#### Latency\n\nPercentiles as upper bounds of eBPF's log2 histograms.\n\n| wait | count | p50 | p95 | p99 |\n|---|--:|--:|--:|--:|\n")
		for _, l := range v.Latency {
			ew.printf("| %s | %d | ≤ %s | ≤ %s | ≤ %s |\n", mdText(l.Name), l.Count, bound(l.P50*1e9), bound(l.P95*1e9), bound(l.P99*1e9))
		}
	}

	if len(v.Findings) > 0 {
		ew.printf("\n#### Findings\n\n")
		for _, f := range v.Findings {
			ew.printf("- **%s**: %s (`%s`)\n", mdText(f.Kind), mdText(f.Text), mdCode(f.Signal))
		}
	}

	ew.printf("\n#### Priorities\n\n")
	if len(v.Priorities) == 0 {
		ew.printf("None: no item costs enough to rank.\n")
	} else {
		ew.printf("What to optimize first, by the time it would save if it cost nothing.\n\n")
		ew.printf("| # | saving | of busy | class | remedy | kind | name | why |\n|--:|--:|--:|---|---|---|---|---|\n")
		for _, p := range v.Priorities {
			ew.printf("| %d | %s | %s | %s | %s | %s | `%s` | %s |\n", p.Rank, renderPerSec(p.Saving), renderPct(p.Share), p.Class,
				mdText(p.Remedy), mdText(orDash(p.Kind)), mdCode(shortNames(p.Name)), mdText(p.Why))
		}
	}

	if len(v.Missing) > 0 {
		ew.printf("\n#### Missing\n\n")
		for _, g := range v.Missing {
			s := fmt.Sprintf("- `%s`: %s", mdCode(g.Signal), mdText(g.Reason))
			if g.Cost != "" {
				s += " — _" + mdText(g.Cost) + "_"
			}
			ew.printf("%s\n", s)
		}
	}
	return ew.err
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
	for _, g := range []struct{ prefix, label string }{{"cpu.", "on-CPU"}, {"wait.", "off-CPU"}} {
		var cats []string
		var sum float64
		for c, s := range b.Seconds {
			if strings.HasPrefix(c, g.prefix) && s > 0 {
				sum += s
				if s/total >= 0.01 {
					cats = append(cats, c)
				}
			}
		}
		if sum == 0 {
			continue
		}
		sort.Slice(cats, func(i, j int) bool {
			si, sj := b.Seconds[cats[i]], b.Seconds[cats[j]]
			return si > sj || si == sj && cats[i] < cats[j]
		})
		out = append(out, breakdownRow{group: true, label: g.label, perSec: perSecOf(sum, window), share: renderPct(sum / total)})
		for _, c := range cats {
			label := categoryNames[c]
			out = append(out, breakdownRow{category: c, label: label, perSec: perSecOf(b.Seconds[c], window), share: renderPct(b.Seconds[c] / total)})
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

func perSecOf(seconds, window float64) string {
	if window <= 0 {
		return fmt.Sprintf("%.2f s", seconds)
	}
	return renderPerSec(seconds / window)
}

func breakdownSource(s string) string {
	switch s {
	case "ebpf":
		return "from eBPF thread states and stacks"
	case "proc":
		return "from /proc CPU time and run delay, split by a pprof CPU profile where there is one"
	}
	return s
}

// loadLine is the load of each class, most first.
func loadLine(load map[Class]float64) string {
	var classes []Class
	for c, l := range load {
		if c != ClassNone && l >= 0.005 {
			classes = append(classes, c)
		}
	}
	sort.Slice(classes, func(i, j int) bool {
		return load[classes[i]] > load[classes[j]] || load[classes[i]] == load[classes[j]] && classes[i] < classes[j]
	})
	var parts []string
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %.2f", c, load[c]))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + " threads bound per second"
}

// renderTarget says what was watched and when.
func renderTarget(v *Verdict) string {
	t := v.Target
	var what string
	switch {
	case t.Kind == "host":
		what = "the host"
	case t.PID != 0 && len(t.Command) > 0:
		what = fmt.Sprintf("%s %d (%s)", t.Kind, t.PID, strings.Join(t.Command, " "))
	case t.PID != 0:
		what = fmt.Sprintf("%s %d", t.Kind, t.PID)
	case len(t.Command) > 0:
		what = fmt.Sprintf("%s %s", t.Kind, strings.Join(t.Command, " "))
	case t.URL != "":
		what = t.URL
	case t.App != "":
		what = "app " + t.App
	case t.Kind != "":
		what = t.Kind
	}
	if len(t.Labels) > 0 {
		keys := make([]string, 0, len(t.Labels))
		for k := range t.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var l []string
		for _, k := range keys {
			l = append(l, k+"="+t.Labels[k])
		}
		what += " {" + strings.Join(l, ", ") + "}"
	}
	var when []string
	if v.Duration > 0 {
		when = append(when, v.Duration.Round(time.Millisecond).String())
	}
	if !v.Start.IsZero() {
		when = append(when, "from "+v.Start.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if what == "" && len(when) == 0 {
		return ""
	}
	if what == "" {
		what = "target unknown"
	}
	if len(when) > 0 {
		what += ", " + strings.Join(when, " ")
	}
	return what
}

// shortNames drops the import path's directories from the Go function
// names in s, as compare does: "crypto/internal/fips140/sha256.blockSHANI
// from crypto/sha256.Sum256" becomes "sha256.blockSHANI from sha256.Sum256".
// File paths and library names ("/usr/lib/x.so", "[libc.so.6]") stay.
func shortNames(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		if w == "" || w[0] == '/' || w[0] == '[' {
			continue
		}
		head := w
		if j := strings.IndexAny(w, "(["); j >= 0 {
			head = w[:j]
		}
		if j := strings.LastIndexByte(head, '/'); j >= 0 {
			words[i] = w[j+1:]
		}
	}
	return strings.Join(words, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
	return renderValue(m.Value, m.Unit)
}

// metricNote is a metric's text with its threshold and signal.
func metricNote(m *Metric) string {
	s := m.Text
	if m.Threshold > 0 {
		s += fmt.Sprintf(" (threshold %s)", renderValue(m.Threshold, m.Unit))
	}
	return s + "  [" + m.Signal + "]"
}

func mdMetric(m *Metric) string {
	if m == nil {
		return "-"
	}
	s := m.Text
	if s == "" {
		s = renderValue(m.Value, m.Unit)
	}
	s = mdText(s)
	if m.Threshold > 0 {
		s += fmt.Sprintf(" (threshold %s)", renderValue(m.Threshold, m.Unit))
	}
	return s
}

// renderValue formats a value in its unit, briefly.
func renderValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	switch unit {
	case "ratio":
		return renderPct(v)
	case "seconds/s":
		return renderPerSec(v)
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

// renderNum is a plain number: whole numbers as they are, others with a
// precision that shrinks as they grow.
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

func renderPerSec(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "?"
	}
	return fmt.Sprintf("%.2f s/s", x)
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

func renderCount(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func capitalizeFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return strings.ToUpper(string(r)) + s[n:]
}

// renderWrap breaks text at spaces into lines of at most width runes; a
// word longer than the width gets a line of its own.
func renderWrap(text string, width int) []string {
	if width < 20 {
		width = 20
	}
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

// mdText escapes text for a markdown table cell or list item: pipes, and
// the characters that would start emphasis, code or HTML.
func mdText(s string) string {
	return mdReplacer.Replace(s)
}

var mdReplacer = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;")

// mdCode escapes text for a code span in a table: only pipes, and
// backticks, which would end it.
func mdCode(s string) string {
	return strings.NewReplacer("|", `\|`, "`", "'").Replace(s)
}

// renderWriter keeps the first write error so renderers can write freely.
type renderWriter struct {
	w   io.Writer
	err error
}

func (e *renderWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *renderWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

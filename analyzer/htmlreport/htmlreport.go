package htmlreport

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Report is one diagnosis to render: the observation and its verdict,
// plus optional per-process verdicts (host mode).
type Report struct {
	Observation *observation.Observation
	Verdict     *verdict.Verdict
	// Processes, for a host diagnosis: the processes ranked by impact,
	// each with its own verdict (may be empty).
	Processes []Process
}

// Process is one process of a host diagnosis.
type Process struct {
	PID  int
	Comm string
	// Impact is the process's share (0..1) of the host's busy and
	// blocked thread time.
	Impact float64
	// Load is its threads busy or blocked per second.
	Load    float64
	Verdict *verdict.Verdict // may be nil
}

// ErrNoVerdict is returned by Write for a report without a verdict: the
// page is a verdict's, and an observation alone has none to show.
var ErrNoVerdict = errors.New("htmlreport: report has no verdict")

var (
	//go:embed assets/report.html.tmpl
	pageTemplate string
	//go:embed assets/report.css
	pageCSS string
	//go:embed assets/report.js
	pageJS string
)

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper":  func(c verdict.Class) string { return strings.ToUpper(string(c)) },
	"pct":    textfmt.Pct,
	"perSec": textfmt.PerSec,
	"value":  value,
	"short":  textfmt.ShortNames,
	"dash":   textfmt.OrDash,
	"cell":   metricCell,
	"note":   metricNote,
	"bound":  bound,
	"count":  func(n int) string { return textfmt.Num(float64(n)) },
	// barWidth is a share as the width of a bar 100 wide, clamped.
	"barWidth": func(share float64) float64 { return 100 * max(0, min(1, share)) },
}).Parse(pageTemplate))

// Stylesheet is the report's stylesheet, for perfhound's other pages (the
// agent's) to look the same and use its classes: the verdict's block
// (.verdict, .badge), class tags (.cls-CLASS) and fills (.cls-fill-CLASS),
// tables.
func Stylesheet() template.CSS { return template.CSS(pageCSS) }

// Write renders r as one self-contained HTML page. It fails only on a
// report without a verdict (ErrNoVerdict) or when w does; a report
// without an observation gets a page without flame graphs and charts.
func Write(w io.Writer, r Report) error {
	if r.Verdict == nil {
		return ErrNoVerdict
	}
	o := r.Observation
	if o == nil {
		o = &observation.Observation{}
	}
	// The page is rendered whole before it is written (a few hundred
	// kilobytes at most), so that a failing writer is told apart from a
	// failing template and never gets half a page.
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newPage(o, r.Verdict, r.Processes)); err != nil {
		return fmt.Errorf("htmlreport: rendering: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("htmlreport: writing: %w", err)
	}
	return nil
}

// page is what the template shows, every string still unescaped.
type page struct {
	Title      string
	Class      verdict.Class
	Bad        bool // a bottleneck, red; none is green
	Confidence string
	Secondary  verdict.Class
	Summary    string
	Target     string
	Meta       []keyValue
	Load       string

	Priorities []verdict.Priority
	Breakdown  breakdownView
	Flames     []flameGraph
	Goroutines *goroutineView
	Charts     chartSet
	USE        []verdict.Resource
	Latency    []verdict.Latency
	Evidence   []verdict.Evidence
	Findings   []verdict.Finding
	Processes  []processRow
	Missing    []verdict.Gap

	CSS template.CSS
	JS  template.JS
}

type keyValue struct{ Key, Value string }

func newPage(o *observation.Observation, v *verdict.Verdict, procs []Process) *page {
	class := v.Class
	if class == "" {
		class = verdict.ClassNone
	}
	p := &page{
		Class:      class,
		Bad:        class != verdict.ClassNone,
		Confidence: textfmt.Pct(v.Confidence),
		Secondary:  v.Secondary,
		Summary:    v.Summary,
		Target:     v.Target.DescribeSpan(v.Start, v.Duration),
		Load:       textfmt.Loads(v.Load, verdict.ClassNone),
		Priorities: v.Priorities,
		Breakdown:  newBreakdown(v.Breakdown, v.Duration.Seconds()),
		Flames:     flameGraphs(o, v),
		Goroutines: goroutines(o),
		Charts:     charts(o),
		USE:        v.USE,
		Latency:    v.Latency,
		Evidence:   v.Evidence,
		Findings:   v.Findings,
		Processes:  processRows(procs),
		Missing:    v.Missing,
		CSS:        template.CSS(pageCSS),
		JS:         template.JS(pageJS),
	}
	p.Title = "perfhound: " + strings.ToUpper(string(class))
	if p.Target != "" {
		p.Title += " — " + p.Target
	}
	m := o.Meta
	add := func(k, v string) {
		if v != "" {
			p.Meta = append(p.Meta, keyValue{k, v})
		}
	}
	add("host", m.Host)
	add("kernel", m.Kernel)
	if m.CPUs > 0 {
		add("CPUs", textfmt.Num(float64(m.CPUs)))
	}
	if m.Memory > 0 {
		add("memory", textfmt.SIDecimal(float64(m.Memory), "B"))
	}
	if len(m.Collectors) > 0 {
		var cs []string
		for k, ver := range m.Collectors {
			cs = append(cs, k+" "+ver)
		}
		sort.Strings(cs)
		add("collectors", strings.Join(cs, ", "))
	}
	return p
}

// breakdownView is the wall-time breakdown as a table and a stacked bar.
type breakdownView struct {
	Source   string
	Rows     []breakdownRow
	Segments []segment
	Skipped  int // categories under 1% not in the table
}

type breakdownRow struct {
	Group                          bool
	Category, Label, PerSec, Share string
	Color                          string
}

// segment is a category's part of the stacked bar, in a box 1000 wide.
type segment struct {
	X, W  float64
	Color string
	Title string
}

// newBreakdown lists the on-CPU then the off-CPU categories, most time
// first; the table skips those under 1%, the bar draws them all.
func newBreakdown(b verdict.Breakdown, window float64) breakdownView {
	view := breakdownView{Source: b.SourceText()}
	total := b.Total()
	if total <= 0 {
		return view
	}
	x := 0.0
	for _, g := range b.Groups() {
		view.Rows = append(view.Rows, breakdownRow{Group: true, Label: g.Label, PerSec: textfmt.PerWindow(g.Seconds, window), Share: textfmt.Pct(g.Seconds / total)})
		for _, c := range g.Categories {
			s := b.Seconds[c]
			label := verdict.CategoryName(c)
			color := categoryColors[c]
			if color == "" {
				color = "#9aa5b1"
			}
			w := 1000 * s / total
			view.Segments = append(view.Segments, segment{X: round1(x), W: round1(w), Color: color,
				Title: fmt.Sprintf("%s (%s): %s, %s", label, c, textfmt.PerWindow(s, window), textfmt.Pct(s/total))})
			x += w
			if s/total < 0.01 {
				view.Skipped++
				continue
			}
			view.Rows = append(view.Rows, breakdownRow{Category: c, Label: label, PerSec: textfmt.PerWindow(s, window), Share: textfmt.Pct(s / total), Color: color})
		}
	}
	return view
}

// processRow is a process of a host diagnosis, with its verdict's gist.
type processRow struct {
	PID        int
	Comm       string
	Impact     string
	Load       string
	Class      verdict.Class
	Confidence string
	Summary    string
	Top        *verdict.Priority
}

func processRows(ps []Process) []processRow {
	out := make([]processRow, 0, len(ps))
	for _, p := range ps {
		r := processRow{PID: p.PID, Comm: p.Comm, Impact: textfmt.Pct(p.Impact), Load: fmt.Sprintf("%.2f", p.Load)}
		if v := p.Verdict; v != nil {
			r.Class = v.Class
			if r.Class == "" {
				r.Class = verdict.ClassNone
			}
			r.Confidence = textfmt.Pct(v.Confidence)
			r.Summary = v.Summary
			if len(v.Priorities) > 0 {
				top := v.Priorities[0]
				r.Top = &top
			}
		}
		out = append(out, r)
	}
	return out
}

// Package diagnosis is what `perfhound diagnose` and `perfhound analyze`
// report for an observation: its verdict and, for a host, the processes
// ranked by their impact with a verdict for the busiest. It is a pure
// function of the observation, so a saved observation analyzed later
// gives the same report.
package diagnosis

import (
	"fmt"
	"io"
	"strconv"

	"github.com/perfhound/perfhound/analyzer/htmlreport"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/report"
)

// Schema names the JSON document WriteJSON writes.
const Schema = "perfhound.diagnosis/v1"

// Options tune Analyze.
type Options struct {
	Thresholds verdict.Thresholds
	// Judge is how many of a host's processes get a verdict of their own,
	// busiest first; List how many are listed. Defaults 3 and 10.
	Judge, List int
	// MinLoad is the load (threads busy or blocked per second) under which
	// a process is not judged: there is nothing in it to diagnose.
	// Default 0.05.
	MinLoad float64
}

// minListedLoad is the load under which a process is not listed: a
// hundredth of a thread is a daemon's housekeeping, not an impact.
const minListedLoad = 0.01

// DefaultOptions are the options of perfhound diagnose.
func DefaultOptions() Options {
	return Options{Thresholds: verdict.DefaultThresholds(), Judge: 3, List: 10, MinLoad: 0.05}
}

// Report is one diagnosis.
type Report struct {
	Observation *observation.Observation `json:"-"`
	Verdict     *verdict.Verdict         `json:"verdict"`
	// Processes are a host's processes by impact (none for other targets);
	// Ranked is how many there were before the list was cut to
	// Options.List.
	Processes []Process `json:"processes"`
	Ranked    int       `json:"processes_ranked"`
}

// Process is one of a host's processes, with its verdict when it was
// among the busiest.
type Process struct {
	procrank.Process
	Verdict *verdict.Verdict `json:"verdict,omitempty"`
}

// Analyze judges o and, for a host, ranks and judges its processes.
func Analyze(o *observation.Observation, opts Options) *Report {
	def := DefaultOptions()
	if opts.Judge == 0 && opts.List == 0 && opts.MinLoad == 0 {
		opts.Judge, opts.List, opts.MinLoad = def.Judge, def.List, def.MinLoad
	}
	r := &Report{Observation: o, Verdict: verdict.Judge(o, opts.Thresholds)}
	host := procrank.NewHost(o)
	var watcher []int // perfhound itself, never one of the host's processes
	if o.Meta.WatcherPID > 0 {
		watcher = append(watcher, o.Meta.WatcherPID)
	}
	ranked := host.Rank(watcher...)
	r.Ranked = len(ranked)
	for i, p := range ranked {
		if i == opts.List || p.Load < minListedLoad {
			break
		}
		dp := Process{Process: p}
		if i < opts.Judge && p.Load >= opts.MinLoad {
			dp.Verdict = verdict.Judge(host.Split(p.PID), opts.Thresholds)
		}
		r.Processes = append(r.Processes, dp)
	}
	return r
}

// WriteText writes the verdict as verdict.WriteText does, then for a host
// the processes by impact and a brief verdict of each of the busiest.
func (r *Report) WriteText(w io.Writer, opts verdict.TextOptions) error {
	return report.WriteText(w, r.document(opts.Brief), opts.Color)
}

// WriteMarkdown writes the verdict as markdown, then a host's processes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	return report.WriteMarkdown(w, r.document(false))
}

// document is the verdict's report (brief: cut as verdict.BriefReport
// cuts it) and, for a host, a section of the processes by impact and, on
// a terminal, one of each judged process's brief verdict.
func (r *Report) document(brief bool) *report.Doc {
	d := r.Verdict.Report()
	if brief {
		d = r.Verdict.BriefReport()
	}
	if len(r.Processes) == 0 {
		return d
	}
	d.Sections = append(d.Sections, r.processesSection())
	for _, p := range r.Processes {
		if p.Verdict == nil {
			continue
		}
		d.Sections = append(d.Sections, report.Section{Only: report.TerminalOnly,
			Title:  fmt.Sprintf("Process %d (%s), %s of the host's load", p.PID, p.Comm, pct(p.Impact)),
			Blocks: p.Verdict.BriefReport().Lead})
	}
	return d
}

// processesSection is the table of the processes by impact: their class
// when judged ("-" on a terminal when not) and, in markdown, the first
// priority of each.
func (r *Report) processesSection() report.Section {
	const what = "share of the host's busy and blocked thread time"
	source := sourceText(r.Processes)
	t := &report.Table{Indent: 2, Columns: []report.Column{{Header: "pid", Right: true}, {Header: "command"},
		{Header: "impact", Right: true}, {Header: "threads/s", Right: true}, {Header: "on CPU", Right: true}, {Header: "class"},
		{Header: "first priority", Only: report.MarkdownOnly}}}
	for _, p := range r.Processes {
		class, first := report.Lit("-").Only(report.TerminalOnly), report.Lit("")
		if p.Verdict != nil {
			class = report.Plain(string(p.Verdict.Class))
			if len(p.Verdict.Priorities) > 0 {
				first = report.Code(p.Verdict.Priorities[0].Name)
			}
		}
		t.Rows = append(t.Rows, report.Row{Cells: []report.Inline{report.Lit(strconv.Itoa(p.PID)), report.Plain(p.Comm),
			report.Lit(pct(p.Impact)), report.Lit(fmt.Sprintf("%.2f", p.Load)), report.Lit(fmt.Sprintf("%.2f", p.CPU)), class, first}})
	}
	s := report.Section{Title: "Processes by impact", Note: what + "; " + source, Blocks: []report.Block{
		&report.Para{Text: report.Plain(what + " (" + source + ")"), Sentence: true, Only: report.MarkdownOnly}, t}}
	if more := r.Ranked - len(r.Processes); more > 0 {
		s.Blocks = append(s.Blocks, &report.Para{Prefix: "  ", Unwrapped: true, Only: report.TerminalOnly,
			Text: report.Lit(fmt.Sprintf("(%d more processes with less load not shown)", more))})
	}
	return s
}

// jsonReport is the document WriteJSON writes.
type jsonReport struct {
	Schema    string           `json:"schema"`
	Verdict   *verdict.Verdict `json:"verdict"`
	Processes []Process        `json:"processes"`
	Ranked    int              `json:"processes_ranked"`
}

// pct is a process's share of the host's load, in whole percent.
func pct(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }

// WriteJSON writes the report as a versioned document:
//
//	{"schema": "perfhound.diagnosis/v1", "verdict": {...}, "processes": [...], "processes_ranked": N}
//
// The verdict is verdict.ForJSON's, with the class at .verdict.class; each
// process has pid, comm, load, by_class, cpu, impact, source and, for the
// busiest, its own verdict. docs/analysis.md shows one
// (TestReportJSONDocumented).
func (r *Report) WriteJSON(w io.Writer) error {
	procs := make([]Process, len(r.Processes))
	for i, p := range r.Processes {
		procs[i] = p
		if p.Verdict != nil {
			procs[i].Verdict = verdict.ForJSON(p.Verdict)
		}
	}
	return verdict.EncodeJSON(w, jsonReport{Schema, verdict.ForJSON(r.Verdict), procs, r.Ranked})
}

// sourceText says where the ranking's numbers came from.
func sourceText(ps []Process) string {
	if len(ps) > 0 && ps[0].Source == verdict.BreakdownProc {
		return "from /proc: CPU time, run-queue wait and block I/O wait where delay accounting is on"
	}
	return "from eBPF thread states and stacks"
}

// WriteHTML writes the report as one self-contained HTML page (see
// analyzer/htmlreport): flame graphs, charts and the tables.
func (r *Report) WriteHTML(w io.Writer) error {
	hr := htmlreport.Report{Observation: r.Observation, Verdict: r.Verdict}
	for _, p := range r.Processes {
		hr.Processes = append(hr.Processes, htmlreport.Process{PID: p.PID, Comm: p.Comm, Impact: p.Impact, Load: p.Load, Verdict: p.Verdict})
	}
	return htmlreport.Write(w, hr)
}

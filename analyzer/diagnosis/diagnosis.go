// Package diagnosis is what `perfhound diagnose` and `perfhound analyze`
// report for an observation: its verdict and, for a host, the processes
// ranked by their impact with a verdict for the busiest. It is a pure
// function of the observation, so a saved observation analyzed later
// gives the same report.
package diagnosis

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/perfhound/perfhound/analyzer/htmlreport"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/verdict"
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
	if err := verdict.WriteText(w, r.Verdict, opts); err != nil {
		return err
	}
	if len(r.Processes) == 0 {
		return nil
	}
	bold := func(s string) string {
		if opts.Color {
			return "\x1b[1m" + s + "\x1b[0m"
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s (share of the host's busy and blocked thread time; %s)\n", bold("Processes by impact"), sourceText(r.Processes))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  pid\tcommand\timpact\tthreads/s\ton CPU\tclass\n")
	for _, p := range r.Processes {
		class := "-"
		if p.Verdict != nil {
			class = string(p.Verdict.Class)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%.0f%%\t%.2f\t%.2f\t%s\n", p.PID, p.Comm, 100*p.Impact, p.Load, p.CPU, class)
	}
	tw.Flush()
	if more := r.Ranked - len(r.Processes); more > 0 {
		fmt.Fprintf(&b, "  (%d more processes with less load not shown)\n", more)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, p := range r.Processes {
		if p.Verdict == nil {
			continue
		}
		if _, err := fmt.Fprintf(w, "\n%s\n", bold(fmt.Sprintf("Process %d (%s), %.0f%% of the host's load", p.PID, p.Comm, 100*p.Impact))); err != nil {
			return err
		}
		o := opts
		o.Brief = true
		if err := verdict.WriteText(w, p.Verdict, o); err != nil {
			return err
		}
	}
	return nil
}

// WriteMarkdown writes the verdict as markdown, then a host's processes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	if err := verdict.WriteMarkdown(w, r.Verdict); err != nil {
		return err
	}
	if len(r.Processes) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n#### Processes by impact\n\nShare of the host's busy and blocked thread time (%s).\n\n", sourceText(r.Processes))
	fmt.Fprintf(&b, "| pid | command | impact | threads/s | on CPU | class | first priority |\n|--:|---|--:|--:|--:|---|---|\n")
	for _, p := range r.Processes {
		class, first := "", ""
		if p.Verdict != nil {
			class = string(p.Verdict.Class)
			if len(p.Verdict.Priorities) > 0 {
				first = "`" + strings.ReplaceAll(p.Verdict.Priorities[0].Name, "`", "'") + "`"
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %.0f%% | %.2f | %.2f | %s | %s |\n", p.PID, strings.ReplaceAll(p.Comm, "|", "\\|"),
			100*p.Impact, p.Load, p.CPU, class, first)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonReport is the document WriteJSON writes.
type jsonReport struct {
	Schema    string           `json:"schema"`
	Verdict   *verdict.Verdict `json:"verdict"`
	Processes []Process        `json:"processes"`
	Ranked    int              `json:"processes_ranked"`
}

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

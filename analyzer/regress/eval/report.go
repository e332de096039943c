package eval

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// Target is one of the targets, judged on a report.
type Target struct {
	Name string
	Met  bool
	// Evaluated is false when the grid had no runs for it.
	Evaluated bool
	Verdict   string
}

// Targets judges the targets: 10% slowdowns of functions of 5%
// or more found within 3 minutes with the right function first in at
// least 90% of runs (per rate and service size; met when it holds for
// some), at most 1 false finding in 100 null deploys, none on load
// changes, none on cost shifts, and agent restarts changing nothing.
func (rep *Report) Targets() []Target {
	var out []Target

	// 1. Detection of 10% slowdowns of ≥ 5% functions within 3 minutes.
	t := Target{Name: "≥ 90% of 10% slowdowns of functions with ≥ 5% of the CPU found within 3 min, right function first"}
	var held, missed []string
	allHeld := true
	for _, r := range rep.Options.Rates {
		var yes, no []string
		for _, cores := range rep.Options.Cores {
			n, k := 0, 0
			var model float64
			for _, c := range rep.Slow {
				if c.Rate == r.Label && c.Cores == cores && c.Slowdown == 10 && c.Share >= 5 {
					n += c.Runs
					k += c.Target3
					model += c.Expect.Within3 * float64(c.Runs)
				}
			}
			if n == 0 {
				continue
			}
			t.Evaluated = true
			s := fmt.Sprintf("%g cores %d/%d (model ≥ %.0f%%)", cores, k, n, 100*model/float64(n))
			if float64(k) >= 0.9*float64(n) {
				yes = append(yes, s)
			} else {
				no = append(no, s)
				allHeld = false
			}
		}
		if len(yes) > 0 {
			held = append(held, r.Label+": "+strings.Join(yes, ", "))
		}
		if len(no) > 0 {
			missed = append(missed, r.Label+": "+strings.Join(no, ", "))
		}
	}
	t.Met = t.Evaluated && allHeld
	switch {
	case !t.Evaluated:
		t.Verdict = "not evaluated (no 10% slowdowns of ≥ 5% functions in the grid)"
	case len(held) == 0:
		t.Verdict = "not met anywhere: " + strings.Join(missed, "; ")
	case len(missed) == 0:
		t.Verdict = "met everywhere: " + strings.Join(held, "; ")
	default:
		t.Verdict = "met at " + strings.Join(held, "; ") + "; not at " + strings.Join(missed, "; ")
	}
	out = append(out, t)

	// 2–4. False findings.
	false_ := func(name string, match func(string) bool, perHundred bool) Target {
		t := Target{Name: name}
		var parts []string
		t.Met = true
		for _, g := range rep.Others {
			if !match(g.Group) {
				continue
			}
			t.Evaluated = true
			ok := g.Findings == 0
			if perHundred {
				ok = float64(g.Findings) <= float64(g.Runs)/100
			}
			t.Met = t.Met && ok
			if perHundred || g.Findings > 0 {
				parts = append(parts, fmt.Sprintf("%s, %s: %d in %d runs (%s)", g.Rate, g.Group, g.Findings, g.Runs, kinds(g.ByKind)))
			}
		}
		switch {
		case !t.Evaluated:
			t.Verdict = "not evaluated"
		case len(parts) == 0:
			t.Verdict = "met: no findings"
		case t.Met:
			t.Verdict = "met: " + strings.Join(parts, "; ")
		default:
			t.Verdict = "not met: " + strings.Join(parts, "; ")
		}
		return t
	}
	out = append(out,
		false_("≤ 1 false finding in 100 null deploys", func(g string) bool { return strings.HasPrefix(g, "null deploy") }, true),
		false_("no findings on load changes (×1.5, ×0.5, at a deploy or not)", func(g string) bool { return strings.HasPrefix(g, "load ") }, false),
		false_("no findings on cost shifts (rename, extracted helper, moved work)", func(g string) bool { return strings.HasPrefix(g, "cost shift") }, false),
		false_("no findings on a restart of the same version", func(g string) bool { return strings.HasPrefix(g, "service restart") }, false),
	)

	// 5. Agent restarts.
	t = Target{Name: "an agent restart changes no finding (IDs raised and resolved, detection times)", Met: true}
	var parts []string
	for _, r := range rep.Restarts {
		t.Evaluated = true
		t.Met = t.Met && r.Equal == r.Runs
		parts = append(parts, fmt.Sprintf("%s: %d/%d the same", strings.TrimPrefix(r.Name, "agent restart: "), r.Equal, r.Runs))
	}
	switch {
	case !t.Evaluated:
		t.Verdict = "not evaluated"
	case t.Met:
		t.Verdict = "met: " + strings.Join(parts, "; ")
	default:
		t.Verdict = "not met: " + strings.Join(parts, "; ")
	}
	return append(out, t)
}

func requests(known bool) string {
	if known {
		return "their request counts (per-request costs can be compared)"
	}
	return "no request counts (shares of the CPU only), but in the load changes marked so"
}

// detectorName is what the report calls the detector.
func detectorName(o GridOptions) string {
	if o.Detector != "" {
		return o.Detector
	}
	if o.New == nil {
		return "`regress.New(regress.DefaultOptions())`"
	}
	return "detector"
}

func kinds(m map[regress.Kind]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteMarkdown writes the report: the targets' verdicts, the time to
// detect by service size and rate, each rate's grid beside the binomial
// model's expectation, the runs where nothing regressed, the agent
// restarts, and the measured overdispersion.
func (rep *Report) WriteMarkdown(w io.Writer) {
	o := rep.Options
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("## Regression detector: evaluation\n\n")
	p("    go run ./analyzer/regress/eval/cmd/evalregress\n\n")
	p("%d runs, %s simulated 10-s windows, in %s on %d workers. ", rep.Runs, thousands(rep.Windows), rep.Elapsed.Round(time.Second), workers(o.Workers))
	p("Each run: %s of version %s, then the change at t0, then %s (%s for changes within a version); "+
		"a new %s fed every window in time order. "+
		"The service: a Go HTTP server (net/http → main.(*server).handle → JSON decoding, a SQL query, a cache, validation, rendering; "+
		"GC, a ticker, the scheduler) and a tail of %d small functions; 11%% of its CPU is fixed per second (GC's background part, "+
		"the ticker, the tail's background workers), the rest per request. "+
		"A window's samples ~ Poisson(CPU seconds × Hz), spread over the stacks multinomially, each stack's weight times a "+
		"per-window Gamma factor of CV %g (the overdispersion φ below). A slowdown of f by d adds d × f's inclusive cost to f's own code. "+
		"The windows carry %s.\n\n",
		dur(o.Base), BaseVersion, dur(o.After), dur(o.SameAfter), detectorName(o), o.Tail, o.Jitter, requests(o.RequestsKnown))
	pm := rep.Power
	p("The model (in parentheses) is the binomial test a detector of the design can at best make: the odds of a sample holding the "+
		"function, head against the base's last %s (exactly 1 + d when only the function changed, the dilution included), "+
		"with φ, one-sided, Bonferroni over the %d functions holding ≥ %g%% of the CPU at α = %g "+
		"spread over %d looks (%s), a change of at least %g%% (relative) and %g pp, a look needing %g head samples. "+
		"Its powers are those of the best single look, a lower bound of the chance by then.\n\n",
		dur(pm.BaseWindow), rep.Tested, 100*pm.MinShare, pm.FDR, len(pm.Looks), looks(pm.Looks), 100*pm.MinRel, 100*pm.MinAbs, pm.MinSamples)

	if rep.NoDetectedAt > 0 {
		p("**%d findings came without a DetectedAt**: taken as detected at the end of the window that raised them.\n\n", rep.NoDetectedAt)
	}
	p("### Targets\n\n")
	for _, t := range rep.Targets() {
		mark := "MET"
		if !t.Met {
			mark = "NOT MET"
		}
		p("- **%s** — %s: %s\n", mark, t.Name, escape(t.Verdict))
	}
	p("\n")

	rep.writeTTD(w)
	for _, r := range o.Rates {
		rep.writeRate(w, r)
	}
	rep.writeOthers(w)
	rep.writeRestarts(w)
	rep.writePhi(w)
}

// writeTTD is the median time to detect by service size and rate, for
// the reference cell and a harder one.
func (rep *Report) writeTTD(w io.Writer) {
	o := rep.Options
	for _, ref := range []struct{ share, slow int }{{10, 10}, {5, 10}, {20, 5}} {
		var rows []string
		for _, cores := range o.Cores {
			row := fmt.Sprintf("| %g |", cores)
			some := false
			for _, r := range o.Rates {
				c := rep.cell(r.Label, cores, ref.share, ref.slow)
				if c == nil {
					row += " |"
					continue
				}
				some = true
				row += fmt.Sprintf(" %s (%s) |", ttd(c), modelTTD(c))
			}
			if some {
				rows = append(rows, row)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "### Median time to detect a %d%% slowdown of a %d%% function, by cores and sampling rate (model)\n\n", ref.slow, ref.share)
		fmt.Fprintf(w, "| cores |")
		for _, r := range o.Rates {
			fmt.Fprintf(w, " %s |", r.Label)
		}
		fmt.Fprintf(w, "\n|--:|%s\n", strings.Repeat("--:|", len(o.Rates)))
		for _, row := range rows {
			fmt.Fprintln(w, row)
		}
		fmt.Fprintln(w)
	}
}

func (rep *Report) cell(rate string, cores float64, share, slow int) *SlowCell {
	for _, c := range rep.Slow {
		if c.Rate == rate && c.Cores == cores && c.Share == share && c.Slowdown == slow {
			return c
		}
	}
	return nil
}

// writeRate is one rate's grid: four tables, share × slowdown by cores.
func (rep *Report) writeRate(w io.Writer, r Rate) {
	cells := rep.cellsOf(r.Label)
	if len(cells) == 0 {
		return
	}
	o := rep.Options
	tables := []struct {
		title string
		cell  func(c *SlowCell) string
	}{
		{"found within 3 min with the right function first (model)", func(c *SlowCell) string {
			return fmt.Sprintf("%d/%d (%s)", c.Target3, c.Runs, pct(c.Expect.Within3))
		}},
		{"found within 30 min, any function (model)", func(c *SlowCell) string {
			return fmt.Sprintf("%d/%d (%s)", c.Found30, c.Runs, pct(c.Expect.Within30))
		}},
		{"median time to detect (model)", func(c *SlowCell) string { return fmt.Sprintf("%s (%s)", ttd(c), modelTTD(c)) }},
		{"first finding on the slowed function / runs with a finding; findings on other functions (of them on its callers), before the deploy", func(c *SlowCell) string {
			found := 0
			for _, t := range c.TTD {
				if t >= 0 {
					found++
				}
			}
			return fmt.Sprintf("%d/%d; %d (%d), %d", c.Right, found, c.Other, c.Ancestor, c.Before)
		}},
	}
	for _, t := range tables {
		fmt.Fprintf(w, "### %s: %s\n\n| share | slowdown |", r.Label, t.title)
		for _, cores := range o.Cores {
			fmt.Fprintf(w, " %g cores |", cores)
		}
		fmt.Fprintf(w, "\n|--:|--:|%s\n", strings.Repeat("--:|", len(o.Cores)))
		for _, share := range o.Shares {
			for _, slow := range o.Slowdowns {
				row := fmt.Sprintf("| %d%% | %d%% |", share, slow)
				some := false
				for _, cores := range o.Cores {
					c := rep.cell(r.Label, cores, share, slow)
					if c == nil {
						row += " |"
						continue
					}
					some = true
					row += " " + t.cell(c) + " |"
				}
				if some {
					fmt.Fprintln(w, row)
				}
			}
		}
		fmt.Fprintln(w)
	}
	var ex []string
	for _, c := range cells {
		for _, e := range c.Examples {
			if len(ex) < 8 {
				ex = append(ex, fmt.Sprintf("%d%% +%d%%: %s", c.Share, c.Slowdown, e))
			}
		}
	}
	if len(ex) > 0 {
		fmt.Fprintf(w, "Findings on other functions at %s, examples:\n\n", r.Label)
		for _, e := range ex {
			fmt.Fprintf(w, "- %s\n", escape(e))
		}
		fmt.Fprintln(w)
	}
}

func (rep *Report) writeOthers(w io.Writer) {
	if len(rep.Others) == 0 {
		return
	}
	fmt.Fprintf(w, "### Runs where nothing regressed (every finding is false)\n\n")
	fmt.Fprintf(w, "| scenario | rate | runs | runs with findings | findings | by kind | examples |\n|---|---|--:|--:|--:|---|---|\n")
	for _, g := range rep.Others {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %s | %s |\n", escape(g.Group), g.Rate, g.Runs, g.WithFindings, g.Findings, kinds(g.ByKind), escape(strings.Join(g.Examples, "; ")))
	}
	fmt.Fprintln(w)
}

func (rep *Report) writeRestarts(w io.Writer) {
	if len(rep.Restarts) == 0 {
		return
	}
	fmt.Fprintf(w, "### Agent restarts\n\nA base of 2 h (longer than the lookback), the agent killed at a random window within 30 min of the deploy; "+
		"a new detector replays the windows of its `Lookback()` (%s when it has none) and goes on. "+
		"The findings are both detectors' (the store keeps what was raised before).\n\n", dur(DefaultLookback))
	fmt.Fprintf(w, "| scenario | rate | runs | findings (uninterrupted) | same findings | differences |\n|---|---|--:|--:|--:|---|\n")
	for _, r := range rep.Restarts {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %s |\n", strings.TrimPrefix(r.Name, "agent restart: "), r.Rate, r.Runs, r.Findings, r.Equal, escape(strings.Join(r.Diffs, "; ")))
	}
	fmt.Fprintln(w)
}

func (rep *Report) writePhi(w io.Writer) {
	o := rep.Options
	fmt.Fprintf(w, "### Overdispersion φ of the targets' shares (360 simulated windows at the head's rate)\n\n| rate | cores |")
	for _, s := range o.Shares {
		fmt.Fprintf(w, " %d%% |", s)
	}
	fmt.Fprintf(w, "\n|---|--:|%s\n", strings.Repeat("--:|", len(o.Shares)))
	for _, r := range o.Rates {
		for _, cores := range o.Cores {
			fmt.Fprintf(w, "| %s | %g |", r.Label, cores)
			for _, s := range o.Shares {
				fmt.Fprintf(w, " %.2f |", rep.Phi[r.Label][cores][Targets[s]])
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
}

func ttd(c *SlowCell) string {
	m, ok := c.MedianTTD()
	if !ok {
		return "—"
	}
	return dur(m)
}

func modelTTD(c *SlowCell) string {
	if c.Expect.TTD == 0 {
		return "—"
	}
	return dur(c.Expect.TTD)
}

func pct(x float64) string {
	switch {
	case x >= 0.995:
		return "100%"
	case x < 0.005:
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// dur prints a duration as 3m, 2m30s, 1h30m, 40s.
func dur(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	var out string
	if h > 0 {
		out += fmt.Sprintf("%dh", h)
	}
	if m > 0 {
		out += fmt.Sprintf("%dm", m)
	}
	if sec > 0 || out == "" {
		out += fmt.Sprintf("%ds", sec)
	}
	return out
}

func looks(ls []time.Duration) string {
	var s []string
	for _, l := range ls {
		s = append(s, dur(l))
	}
	return strings.Join(s, ", ")
}

func workers(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// WriteModel writes the binomial model's expectation for every slowdown
// cell of o, without running anything: the power of the best look
// within 3 and 30 minutes, the expected z at 3 minutes, and the first
// look with power ≥ ½ — what to judge a detector's results by.
func WriteModel(w io.Writer, o GridOptions) error {
	pm := DefaultPowerModel()
	ref, err := NewModel(ModelOptions{Cores: 1, Tail: o.Tail, CostPerRequest: DefaultModelOptions().CostPerRequest})
	if err != nil {
		return err
	}
	tested := pm.Tested(ref)
	fmt.Fprintf(w, "## The binomial model's expectation\n\n%d functions tested (≥ %g%% of the CPU), α = %g over %d looks (%s), min change %g%% and %g pp, jitter CV %g.\n"+
		"Cells: power within 3 min / within 30 min, z at 3 min, first look with power ≥ ½, φ of a head window (1 + κN).\n\n",
		tested, 100*pm.MinShare, pm.FDR, len(pm.Looks), looks(pm.Looks), 100*pm.MinRel, 100*pm.MinAbs, o.Jitter)
	for _, r := range o.Rates {
		fmt.Fprintf(w, "### %s\n\n| share | slowdown |", r.Label)
		for _, cores := range o.Cores {
			fmt.Fprintf(w, " %g cores |", cores)
		}
		fmt.Fprintf(w, "\n|--:|--:|%s\n", strings.Repeat("--:|", len(o.Cores)))
		phis := map[float64]map[string]float64{}
		for _, cores := range o.Cores {
			m, err := NewModel(ModelOptions{Cores: cores, Tail: o.Tail, CostPerRequest: DefaultModelOptions().CostPerRequest})
			if err != nil {
				return err
			}
			phis[cores] = map[string]float64{}
			for _, f := range Targets {
				phis[cores][f] = Kappa(m, f, o.Jitter)
			}
		}
		for _, share := range o.Shares {
			for _, slow := range o.Slowdowns {
				fmt.Fprintf(w, "| %d%% | %d%% |", share, slow)
				for _, cores := range o.Cores {
					kappa := phis[cores][Targets[share]]
					phi := 1 + kappa*cores*max(r.Hz, r.BoostHz)*WindowLength.Seconds()
					e := pm.Expect(float64(share)/100, float64(slow)/100, cores, kappa, r.Hz, r.hz, tested)
					t := "—"
					if e.TTD > 0 {
						t = dur(e.TTD)
					}
					fmt.Fprintf(w, " %s / %s, z %.1f, %s, φ %.2f |", pct(e.Within3), pct(e.Within30), e.Z3, t, phi)
				}
				fmt.Fprintln(w)
			}
		}
		fmt.Fprintln(w)
	}
	return nil
}

// escape keeps a function name's * and | from turning into Markdown.
func escape(s string) string {
	return strings.NewReplacer("*", `\*`, "|", `\|`).Replace(s)
}

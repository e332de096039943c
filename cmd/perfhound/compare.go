package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/perfhound/perfhound/analyzer/compare"
	"github.com/perfhound/perfhound/analyzer/input"
	"github.com/perfhound/perfhound/analyzer/obsdiff"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/internal/report"
)

func newCompare() *cobra.Command {
	opt := compare.DefaultOptions
	var (
		threshold = 100 * opt.Thresholds.MinChange
		failOn    = string(opt.FailOn)
		format    = "text"
		output    string
		maxSize   int64 = input.DefaultLimits.MaxFileBytes >> 20
		mem       memoryFlag
	)
	cmd := &cobra.Command{
		Use:   "compare [flags] BASE HEAD",
		Short: "Compare benchmark results and profiles, or two observations, of a base and a head",
		Long: `Compare benchmark results and pprof profiles of a base and a head, flag
regressions that are beyond noise and the threshold, attribute them to the
functions whose cost grew, and rank where the head spends its time.

When BASE and HEAD are both saved observations (directories with an
observation.json, as 'perfhound diagnose --save DIR' writes them), compare
the two observations instead: the class each is bound by, the load of each
class, where the threads' time moved, the functions of each profile kind
that changed most (per second of each window), the USE table, latency
percentiles, and the head's priorities marked against the base's. A
regression there is the head bound by a class the base was not, or a
class's load grown by more than --threshold and by at least 0.2 threads;
--fail-on change also fails on the reverse. --alpha and --sample-index do
not apply: one window a side has no replicate to test, and every profile
kind is compared (docs/compare-observations.md).

BASE and HEAD are each a file or a directory. Files are recognised by their
content: 'go test -bench' output (any number of runs, -benchmem and custom
b.ReportMetric units included) and pprof profiles of any sample type
(gzipped or not). Benchmarks are compared with the Mann-Whitney U test, as
benchstat does; a row is a regression when the change is significant at
--alpha and its confidence interval reaches --threshold.

Exit status: 0 when nothing fails the --fail-on policy, 1 when something
does, 2 on bad input or usage.`,
		Example: `  # Ten runs a side, each with its CPU profile:
  go test -run '^$' -bench . -count 1 -cpuprofile base/cpu-1.pprof > base/bench-1.txt   # ... x10
  perfhound compare base/ head/

  # Benchmark output alone, as a PR comment:
  perfhound compare --format markdown old.txt new.txt >> "$GITHUB_STEP_SUMMARY"

  # Two CPU profiles, report only:
  perfhound compare --fail-on never before.pb.gz after.pb.gz

  # Two saved observations (perfhound diagnose --save DIR), as JSON:
  perfhound compare --format json obs/before obs/after | jq -r '.class.base + " -> " + .class.head'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("compare needs BASE and HEAD, got %d argument(s)", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return usageError{err}
			}
			if opt.FailOn, err = stat.ParsePolicy(failOn); err != nil {
				return usageError{err}
			}
			if err := checkPolicyFlags(threshold, opt.Thresholds.Alpha); err != nil {
				return usageError{err}
			}
			// Checked before anything is read: 0 used to mean the default,
			// and a value past 2⁶³ bytes wrapped around to it.
			if maxSize < 1 || maxSize > math.MaxInt64>>20 {
				return usageError{fmt.Errorf("--max-input-mb %d: want 1 to %d", maxSize, int64(math.MaxInt64>>20))}
			}
			opt.Thresholds.MinChange = threshold / 100
			budget, restore, err := mem.budget()
			if err != nil {
				return err
			}
			defer restore()
			baseObs, headObs := observation.IsSaved(args[0]), observation.IsSaved(args[1])
			if baseObs != headObs {
				obs, other := args[0], args[1]
				if headObs {
					obs, other = other, obs
				}
				return usageError{fmt.Errorf("%s is a saved observation but %s is not: compare two observations, or two sets of benchmark results and profiles", obs, other)}
			}
			if baseObs {
				oo := obsdiff.DefaultOptions()
				oo.Threshold, oo.FailOn, oo.Top = opt.Thresholds.MinChange, opt.FailOn, opt.Top
				return mem.explain(compareObservations(cmd, args[0], args[1], budget, f, oo, output))
			}
			// One budget for both sides: the run's memory, not a side's.
			lim := input.Limits{MaxFileBytes: maxSize << 20, Budget: budget}
			base, err := input.Load([]string{args[0]}, lim)
			if err != nil {
				return mem.explain(err)
			}
			head, err := input.Load([]string{args[1]}, lim)
			if err != nil {
				return mem.explain(err)
			}
			res, err := compare.Run(base, head, opt)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			ro := compare.RenderOptions{Color: output == "" && isTerminal(w), Functions: opt.Top}
			err = writeReport(w, output, func(w io.Writer) error { return res.Render(w, f, ro) })
			if err != nil {
				return err
			}
			if res.Failed {
				return errFindings
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&threshold, "threshold", threshold, "smallest relative change that counts, in percent")
	fl.Float64Var(&opt.Thresholds.Alpha, "alpha", opt.Thresholds.Alpha, "significance level of the tests")
	fl.StringVar(&failOn, "fail-on", failOn, "what exits 1: regression, change or never")
	fl.StringVarP(&format, "format", "f", format, "output format: text, markdown or json")
	fl.StringVarP(&output, "output", "o", "", "write the report to this file instead of stdout")
	fl.StringVar(&opt.SampleIndex, "sample-index", "", "profile value to compare, e.g. alloc_space (default: each profile's default)")
	fl.IntVar(&opt.Top, "top", opt.Top, "functions to list per attribution and in the priorities")
	fl.Int64Var(&maxSize, "max-input-mb", maxSize, "refuse input files (or their gunzipped content) larger than this")
	mem.add(cmd)
	return cmd
}

// checkPolicyFlags refuses a threshold or alpha that would decide nothing:
// a NaN compares false with every p-value and change, so it silently hid
// every regression.
func checkPolicyFlags(threshold, alpha float64) error {
	if !(threshold >= 0) || math.IsInf(threshold, 1) {
		return fmt.Errorf("--threshold %v: want a percentage of 0 or more", threshold)
	}
	if !(alpha > 0 && alpha < 1) {
		return fmt.Errorf("--alpha %v: want a number between 0 and 1 (exclusive)", alpha)
	}
	return nil
}

// compareObservations is compare for two saved observations.
func compareObservations(cmd *cobra.Command, baseDir, headDir string, budget *profdecode.Budget, f report.Format, opt obsdiff.Options, output string) error {
	base, err := loadObservation(baseDir, budget)
	if err != nil {
		return err
	}
	head, err := loadObservation(headDir, budget)
	if err != nil {
		return err
	}
	opt.BaseName, opt.HeadName = baseDir, headDir
	d, err := obsdiff.Compare(base, head, opt)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	ro := obsdiff.RenderOptions{Color: output == "" && isTerminal(w)}
	if err := writeReport(w, output, func(w io.Writer) error { return d.Render(w, f, ro) }); err != nil {
		return err
	}
	if d.Failed {
		return errFindings
	}
	return nil
}

// writeReport renders to w, or to the file output when it is set: fully
// first, so that a failure leaves no empty or partial report behind.
func writeReport(w io.Writer, output string, render func(io.Writer) error) error {
	if output == "" {
		if err := render(w); err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
		return nil
	}
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return fmt.Errorf("rendering report: %w", err)
	}
	return os.WriteFile(output, buf.Bytes(), 0o644)
}

// Command evalregress runs the regression detector's evaluation grid
// (analyzer/regress/eval) and prints it as Markdown: `make eval-regress`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/analyzer/regress/eval"
)

func main() {
	o := eval.FullGrid()
	seeds := flag.Int("seeds", o.Seeds, "runs of each slowdown cell")
	nulls := flag.Int("nulls", o.Nulls, "null deploys per sampling rate")
	rates := flag.String("rates", "19,99,19+99", "sampling rates: 19, 99, and 19+99 (99 Hz for a new version's first 5 min)")
	cores := flag.String("cores", "0.1,0.25,0.5,1,2", "service sizes, in cores")
	jitter := flag.Float64("jitter", o.Jitter, "per-window overdispersion: CV of each stack's Gamma factor")
	requests := flag.Bool("requests", false, "slowdowns and null deploys carry request counts (per-request costs)")
	workers := flag.Int("workers", 0, "parallel runs (0: GOMAXPROCS)")
	modelOnly := flag.Bool("model", false, "print the binomial model's expectation per cell only, run nothing")
	out := flag.String("o", "", "write the Markdown here instead of stdout")
	quiet := flag.Bool("q", false, "no progress on stderr")
	flag.Parse()

	o.Seeds, o.Nulls, o.Jitter, o.Workers, o.RequestsKnown = *seeds, *nulls, *jitter, *workers, *requests
	if o.Seeds < 0 || o.Nulls < 0 || !(o.Jitter >= 0) {
		fail(fmt.Errorf("-seeds %d, -nulls %d and -jitter %g must not be negative", o.Seeds, o.Nulls, o.Jitter))
	}
	var err error
	if o.Rates, err = parseRates(*rates); err != nil {
		fail(err)
	}
	if o.Cores, err = parseFloats(*cores); err != nil {
		fail(fmt.Errorf("-cores: %w", err))
	}
	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		w = f
	}
	if *modelOnly {
		if err := eval.WriteModel(w, o); err != nil {
			fail(err)
		}
		return
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	rep, err := eval.RunGrid(o, progress)
	if err != nil {
		fail(err)
	}
	rep.WriteMarkdown(w)
}

func parseRates(s string) ([]eval.Rate, error) {
	var out []eval.Rate
	for _, r := range strings.Split(s, ",") {
		switch strings.TrimSpace(r) {
		case "19":
			out = append(out, eval.Rate19)
		case "99":
			out = append(out, eval.Rate99)
		case "19+99":
			out = append(out, eval.Rate19Boost)
		default:
			return nil, fmt.Errorf("-rates: %q is not 19, 99 or 19+99", r)
		}
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0) {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "evalregress:", err)
	os.Exit(2)
}

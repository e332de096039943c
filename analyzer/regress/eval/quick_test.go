package eval

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// TestQuickGrid runs the quick grid against the detector and holds it to
// the targets where the binomial model says they are within
// reach (a detector as good as the model passes each cell with 98%
// probability): each of QuickCells found within its time with the slowed
// function blamed first in at least 9 (one cell: 8) of 10 runs, no finding in 20 null
// deploys, none on load changes, cost shifts or a restart of the same
// version, and agent restarts changing no finding. It fails against a
// detector that finds nothing.
func TestQuickGrid(t *testing.T) {
	rep, err := RunGrid(QuickGrid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteMarkdown(&b)
	t.Logf("%d runs, %d windows, %s\n%s", rep.Runs, rep.Windows, rep.Elapsed.Round(time.Millisecond), b.String())

	if len(rep.Slow) != len(QuickCells) {
		t.Fatalf("%d slowdown cells ran, want the %d quick cells", len(rep.Slow), len(QuickCells))
	}
	for _, q := range QuickCells {
		c := rep.cell(q.Rate.Label, q.Cores, q.Share, q.Slow)
		name := fmt.Sprintf("%s, %g cores, %d%% slowdown of the %d%% function", q.Rate.Label, q.Cores, q.Slow, q.Share)
		// The cell must be within reach, or the test asks too much.
		power, found := c.Expect.Within3, c.Target3
		if q.Within == 30*time.Minute {
			power, found = c.Expect.Within30, c.Target30
		}
		// A detector as good as the model passes with 98% probability.
		if miss := (distuv.Binomial{N: 10, P: power}).CDF(float64(q.Need - 1)); miss > 0.02 || q.Need < 8 {
			t.Errorf("%s: the model's power within %s is %.3f, P(< %d of 10) = %.3f: not a cell a detector must pass", name, dur(q.Within), power, q.Need, miss)
		}
		if c.Runs != 10 || found < q.Need {
			t.Errorf("%s: found within %s with the right function first in %d of %d runs, want ≥ %d (model: %.0f%%)", name, dur(q.Within), found, c.Runs, q.Need, 100*power)
		}
	}
	for _, g := range rep.Others {
		if g.Runs == 0 {
			t.Errorf("%s at %s: no runs", g.Group, g.Rate)
		}
		if g.Findings > 0 {
			t.Errorf("%s at %s: %d false findings in %d runs: %s", g.Group, g.Rate, g.Findings, g.Runs, strings.Join(g.Examples, "; "))
		}
	}
	for _, r := range rep.Restarts {
		if r.Runs == 0 || r.Equal != r.Runs {
			t.Errorf("%s: the findings changed in %d of %d runs: %s", r.Name, r.Runs-r.Equal, r.Runs, strings.Join(r.Diffs, "; "))
		}
	}
}

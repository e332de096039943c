package eval

import (
	"strings"
	"testing"
	"time"
)

// TestHarnessWithReference runs a small grid against the reference
// detector (the design's test, naive about everything else) and checks
// the harness end to end: what the binomial model puts within reach the
// reference reaches (every quick cell in ≥ 9 of 10 runs, the right
// function first; it blames a caller now and then, at the first look), a 2% slowdown is never found (the minimum effect), a
// cell the model gives even odds is found sometimes but not always, null
// deploys raise at most one finding in 20; the false-alarm scenarios
// bite (every cost shift and the load falling to half at a deploy make
// the naive reference raise a finding, which a real detector must not);
// and an agent restart replaying the reference's lookback changes
// nothing.
func TestHarnessWithReference(t *testing.T) {
	o := QuickGrid()
	o.New, o.Detector = newReference, "reference detector (harness_test.go)"
	o.Slowdowns = []int{2, 10, 20}
	o.Nulls = 10
	quick := o.Cell
	o.Cell = func(r Rate, cores float64, share, slow int) bool {
		return quick(r, cores, share, slow) ||
			(r.Label == Rate99.Label && cores == 2 && share == 20 && slow == 2) ||
			(r.Label == Rate19.Label && cores == 1 && share == 10 && slow == 10)
	}
	rep, err := RunGrid(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteMarkdown(&b)
	t.Logf("%d runs, %d windows, %s\n%s", rep.Runs, rep.Windows, rep.Elapsed.Round(time.Millisecond), b.String())

	for _, q := range QuickCells {
		c := rep.cell(q.Rate.Label, q.Cores, q.Share, q.Slow)
		found := c.Target3
		if q.Within == 30*time.Minute {
			found = c.Target30
		}
		if found < q.Need {
			t.Errorf("%s, %g cores, %d%% +%d%%: the reference found it within %s, right first, in %d of %d runs (model %.0f%%, %.0f%%)",
				q.Rate.Label, q.Cores, q.Share, q.Slow, dur(q.Within), found, c.Runs, 100*c.Expect.Within3, 100*c.Expect.Within30)
		}
	}
	if c := rep.cell(Rate99.Label, 2, 20, 2); c.Found30 != 0 || c.Runs != 10 {
		t.Errorf("2%% slowdown: found in %d of %d runs, want none (below the 5%% minimum effect)", c.Found30, c.Runs)
	}
	if c := rep.cell(Rate19.Label, 1, 10, 10); c.Target30 == 0 || c.Target30 == c.Runs || c.Expect.Within30 < 0.3 || c.Expect.Within30 > 0.7 {
		t.Errorf("a cell the model gives %.0f%% within 30 min: found in %d of %d runs, want some but not all", 100*c.Expect.Within30, c.Target30, c.Runs)
	} else if m, ok := c.MedianTTD(); ok && m > 30*time.Minute {
		t.Errorf("median time to detect %s beyond the last look", m)
	}
	seen := map[string]bool{}
	for _, g := range rep.Others {
		switch {
		case strings.HasPrefix(g.Group, "null deploy"):
			seen["null"] = true
			if g.Findings > 1 || g.Runs != 10 {
				t.Errorf("%s at %s: %d findings in %d runs, want ≤ 1: %v", g.Group, g.Rate, g.Findings, g.Runs, g.Examples)
			}
		case strings.HasPrefix(g.Group, "cost shift"):
			seen["shift"] = true
			if g.WithFindings != g.Runs {
				t.Errorf("%s at %s: the naive reference raised findings in %d of %d runs, want all (the scenario must bite)", g.Group, g.Rate, g.WithFindings, g.Runs)
			}
		case g.Group == "load ×0.5 at a deploy":
			seen["load"] = true
			if g.WithFindings == 0 {
				t.Errorf("%s at %s: the naive reference raised nothing; the fixed costs' share rising must bite", g.Group, g.Rate)
			}
		case strings.Contains(g.Group, "same version"):
			if g.Findings != 0 {
				t.Errorf("%s at %s: %d findings from a version comparison without a new version", g.Group, g.Rate, g.Findings)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("scenario groups seen: %v", seen)
	}
	for _, r := range rep.Restarts {
		if r.Equal != r.Runs || r.Runs != 2 {
			t.Errorf("%s: %d of %d the same: %v", r.Name, r.Equal, r.Runs, r.Diffs)
		}
		if !strings.Contains(r.Name, "null") && r.Findings == 0 {
			t.Errorf("%s: no findings to keep across the restart", r.Name)
		}
	}
	ts := rep.Targets()
	if len(ts) != 6 || !ts[0].Evaluated || ts[1].Name != "≤ 1 false finding in 100 null deploys" || !ts[1].Evaluated || ts[3].Met || !ts[4].Met || !ts[5].Met {
		t.Errorf("targets: %+v", ts)
	}
	if !strings.Contains(b.String(), "- **NOT MET** — no findings on cost shifts") {
		t.Error("the report does not say the cost-shift target is not met")
	}
}

// forgetful is the reference with a lookback too short to hold the base.
type forgetful struct{ *reference }

func (forgetful) Lookback() time.Duration { return 5 * time.Minute }

// An agent restart whose replay misses the base loses the findings not
// yet raised: the harness must say so, and which.
func TestRestartCatchesShortLookback(t *testing.T) {
	ch := SlowChange(Func20, 20)
	sc := &Scenario{Name: "forgetful", Cores: 1, Hz: 19, Jitter: 0.15, Tail: 500, Base: 2 * time.Hour, After: 35 * time.Minute,
		Deploy: true, Change: &ch, Truth: Func20, AgentRestart: 30 * time.Minute}
	differ := 0
	for i := range 6 {
		good, err := Run(sc, Seed(sc.Name, i), newReference)
		if err != nil {
			t.Fatal(err)
		}
		if !good.RestartEqual || len(good.Raised) != 1 || good.Raised[0].Function != Func20 {
			t.Fatalf("seed %d: with the reference's 90-min lookback: equal %v (%s), raised %+v", i, good.RestartEqual, good.RestartDiff, good.Raised)
		}
		bad, err := Run(sc, Seed(sc.Name, i), func() Detector { return forgetful{newReference().(*reference)} })
		if err != nil {
			t.Fatal(err)
		}
		before := bad.RestartAt.After(bad.Raised[0].At) || bad.RestartAt.Equal(bad.Raised[0].At)
		switch {
		case before && !bad.RestartEqual:
			t.Errorf("seed %d: raised at %s before the restart at %s, kept in the store, yet: %s", i, bad.Raised[0].At, bad.RestartAt, bad.RestartDiff)
		case !before && bad.RestartEqual:
			t.Errorf("seed %d: the restart at %s came before the finding at %s and the replay held no base, yet the findings are the same", i, bad.RestartAt, bad.Raised[0].At)
		case !before:
			differ++
			if !strings.Contains(bad.RestartDiff, "raised only without the restart") || !strings.Contains(bad.RestartDiff, Func20) {
				t.Errorf("seed %d: difference %q does not say the finding was lost", i, bad.RestartDiff)
			}
		}
	}
	if differ == 0 {
		t.Error("no run restarted before its finding: the test tested nothing")
	}
}

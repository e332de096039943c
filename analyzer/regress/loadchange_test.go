package regress_test

import (
	"testing"

	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/regress/eval"
)

// TestHarnessLoadAtDeploy: the evaluation harness's deploys at 1.5× the
// load (its service: 11% of the CPU fixed per second, the rest per
// request) that raised version findings on net/http.(*conn).readRequest
// (19 Hz) and net/http.(*conn).serve (99 Hz), both with their subtrees
// grown uniformly, measured against a rest whose fixed costs fell: no
// version finding.
func TestHarnessLoadAtDeploy(t *testing.T) {
	t.Parallel()
	o := eval.QuickGrid()
	for _, c := range []struct {
		rate eval.Rate
		seed uint64
	}{{eval.Rate19, 2323129971673477592}, {eval.Rate99, 774877411585593984}} {
		sc := &eval.Scenario{Name: "load ×1.5 at a deploy", Cores: 2, Hz: c.rate.Hz, Jitter: o.Jitter, Tail: o.Tail,
			Base: o.Base, After: o.After, Deploy: true, Load: 1.5}
		res, err := eval.Run(sc, c.seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Raised {
			if r.Kind == regress.KindVersion {
				t.Errorf("%s, seed %d: version finding on %s at t0+%v", c.rate.Label, c.seed, r.Function, r.At.Sub(res.T0))
			}
		}
	}
}

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
// version finding. The runs from 0.25 cores on raised net/http.(*conn).serve
// (70% of the CPU) or main.(*server).handle (49%) when the rest's
// functions scattered too little to tell that it moved apart; the rest's
// CPU per second rose by a third (restRose).
func TestHarnessLoadAtDeploy(t *testing.T) {
	t.Parallel()
	o := eval.QuickGrid()
	for _, c := range []struct {
		rate  eval.Rate
		cores float64
		seed  uint64
	}{
		{eval.Rate19, 2, 2323129971673477592},
		{eval.Rate99, 2, 774877411585593984},
		{eval.Rate19, 0.25, 8274173782450784563},
		{eval.Rate19, 0.25, 8274178180497297407},
		{eval.Rate19, 1, 14595372754438694522},
		{eval.Rate19Boost, 1, 5652088297219834870},
		{eval.Rate19Boost, 0.25, 7206950190612680238},
	} {
		sc := &eval.Scenario{Name: "load ×1.5 at a deploy", Cores: c.cores, Hz: c.rate.Hz,
			BoostHz: c.rate.BoostHz, BoostFor: c.rate.BoostFor, Jitter: o.Jitter, Tail: o.Tail,
			Base: o.Base, After: o.After, Deploy: true, Load: 1.5}
		res, err := eval.Run(sc, c.seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Raised {
			if r.Kind == regress.KindVersion {
				t.Errorf("%s, %g cores, seed %d: version finding on %s at t0+%v", c.rate.Label, c.cores, c.seed, r.Function, r.At.Sub(res.T0))
			}
		}
	}
}

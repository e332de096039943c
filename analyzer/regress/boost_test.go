package regress

import (
	"slices"
	"testing"
	"time"
)

// boosted is a deploy whose head is sampled at 99 Hz for its first 5
// minutes, as the agent boosts it, and at the base's 19 Hz after.
func boosted(seed uint64, base, head *sim, hLoad float64) []Window {
	return stream{service: "web", start: t0, base: base.clone(seed), head: head.clone(seed + 1000),
		baseV: "v1", headV: "v2", baseFor: 40 * time.Minute, headFor: 31 * time.Minute, hLoad: hLoad,
		boostHz: 99, boostFor: 5 * time.Minute}.windows()
}

// TestDeploying: a service is deploying from its new version's first
// window for the given span, when there is a version before it to
// compare with; a first version is not, nor is a service too small to
// compare.
func TestDeploying(t *testing.T) {
	base := newSim(1, 1, 19, webService(30))
	ws := deploy(1, base, base)
	d := New(DefaultOptions())
	var first, last time.Time
	for _, w := range ws {
		d.Observe(w)
		got := d.Deploying(5 * time.Minute)
		switch {
		case w.Version == "v1" && len(got) > 0:
			t.Fatalf("a first version is deploying at %v: %v", w.Start, got)
		case slices.Equal(got, []string{"web"}):
			if first.IsZero() {
				first = w.Start
			}
			last = w.Start
		case len(got) > 0:
			t.Fatalf("deploying %v", got)
		}
	}
	if !first.Equal(deployAt) || last.Sub(first) < 4*time.Minute || last.Sub(first) >= 5*time.Minute {
		t.Errorf("deploying from %v to %v, want the 5 min from %v", first, last, deployAt)
	}
	// A service too small to compare (its base under MinSamples: a
	// thousandth of a core) is not worth sampling the host faster for.
	tiny := newSim(2, 0.001, 19, webService(30))
	d = New(DefaultOptions())
	for _, w := range deploy(2, tiny, tiny) {
		d.Observe(w)
		if got := d.Deploying(5 * time.Minute); len(got) > 0 {
			t.Fatalf("a service of a thousandth of a core is deploying at %v", w.Start)
		}
	}
}

// TestBoostedDeploys: windows at two sampling rates within a version
// compare as the same service. A boosted null deploy raises no more
// than an unboosted one (at most 1 in 100), nor does a boosted load
// change; a 10% slowdown of main.parse on 2 cores is found within its
// first 5 minutes more often with the boost than without.
func TestBoostedDeploys(t *testing.T) {
	t.Parallel()
	var falses []string
	for seed := uint64(1); seed <= 100; seed++ {
		cores := []float64{0.25, 0.5, 1, 2}[seed%4]
		base := newSim(seed, cores, 19, webService(30))
		raised, _ := run(DefaultOptions(), boosted(seed+100, base, base, 1))
		for _, f := range raised {
			falses = append(falses, f.Function)
		}
	}
	t.Logf("%d false findings in 100 boosted null deploys: %v", len(falses), falses)
	if len(falses) > 1 {
		t.Errorf("%d false findings in 100 boosted null deploys: %v", len(falses), falses)
	}
	for _, load := range []float64{1.5, 0.5} {
		for seed := uint64(1); seed <= 20; seed++ {
			base := newSim(seed, 2, 19, webService(30))
			raised, _ := run(DefaultOptions(), boosted(seed, base, base, load))
			for _, f := range raised {
				t.Errorf("boosted, load ×%.1f seed %d: %s %+.1f%% (%v)", load, seed, f.Function, f.ChangePct, f.Evidence)
			}
		}
	}
	within := func(ws []Window) bool {
		raised, _ := run(DefaultOptions(), ws)
		return len(raised) > 0 && raised[0].Function == "main.parse" && raised[0].DetectedAt.Sub(deployAt) <= 5*time.Minute
	}
	plain, fast := 0, 0
	for seed := uint64(1); seed <= 20; seed++ {
		base := newSim(seed, 2, 19, webService(30))
		head := base.clone(seed).slow("main.parse", 0.10)
		if within(deploy(seed, base, head)) {
			plain++
		}
		if within(boosted(seed, base, head, 1)) {
			fast++
		}
	}
	t.Logf("a 10%% slowdown of main.parse on 2 cores found within 5 min: %d of 20 at 19 Hz, %d boosted to 99 Hz", plain, fast)
	if fast <= plain || fast < 10 {
		t.Errorf("found within 5 min in %d of 20 deploys boosted, %d not: the boost must find more, and most", fast, plain)
	}
}

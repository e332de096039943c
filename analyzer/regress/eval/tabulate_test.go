package eval

import (
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// A cell counts a run by its first finding after the deploy: within 3
// and 30 minutes, on the slowed function or not; a finding before the
// deploy, on another function or on a caller of the slowed one is
// counted as such; a run without findings is a miss in the median.
func TestSlowCellCounts(t *testing.T) {
	t0 := Epoch.Add(time.Hour)
	sc := &Scenario{Truth: Func20, Cores: 1}
	run := func(raised ...Raise) *Result {
		return &Result{Scenario: sc, T0: t0, Raised: raised, Ancestors: map[string]bool{Func50: true}}
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	c := &SlowCell{}
	c.add(run(Raise{ID: "a", Function: Func20, At: at(2 * time.Minute)}))                                                    // right, in 3 min
	c.add(run(Raise{ID: "b", Function: Func50, At: at(time.Minute)}, Raise{ID: "c", Function: Func20, At: at(time.Minute)})) // a caller first
	c.add(run(Raise{ID: "d", Kind: regress.KindDrift, Function: "x", At: at(-time.Minute)}, Raise{ID: "e", Function: Func20, At: at(20 * time.Minute)}))
	c.add(run())
	c.add(run(Raise{ID: "f", Function: Func20, At: at(40 * time.Minute)}))
	if c.Runs != 5 || c.Found3 != 2 || c.Target3 != 1 || c.Found30 != 3 || c.Target30 != 2 || c.Right != 3 {
		t.Errorf("runs %d found3 %d target3 %d found30 %d target30 %d right %d, want 5 2 1 3 2 3", c.Runs, c.Found3, c.Target3, c.Found30, c.Target30, c.Right)
	}
	if c.Other != 2 || c.Ancestor != 1 || c.Before != 1 || len(c.Examples) != 2 || !strings.Contains(c.Examples[1], "drift x at t0−1m") {
		t.Errorf("other %d ancestor %d before %d examples %q", c.Other, c.Ancestor, c.Before, c.Examples)
	}
	// TTDs 2m, 1m, 20m, never, 40m: the median is 20m.
	if m, ok := c.MedianTTD(); !ok || m != 20*time.Minute {
		t.Errorf("median %v %v, want 20m", m, ok)
	}
	for range 4 {
		c.add(run())
	}
	if m, ok := c.MedianTTD(); ok {
		t.Errorf("5 misses in 9 runs: median %v, want none", m)
	}
}

// The restart comparison names what differs: a finding lost, one
// detected at another time, one resolved on one side only.
func TestDiffFindings(t *testing.T) {
	a := &Result{Raised: []Raise{{ID: "1", Function: "f", At: Epoch}, {ID: "2", Function: "g", At: Epoch}}, Resolved: []string{"2"}}
	if d := diffFindings(a, a); d != "" {
		t.Errorf("a run against itself: %s", d)
	}
	b := &Result{Raised: []Raise{{ID: "1", Function: "f", At: Epoch.Add(WindowLength)}, {ID: "3", Function: "h", At: Epoch}}}
	d := diffFindings(a, b)
	for _, want := range []string{"1  f detected at", "2  g raised only without the restart", "3  h raised only after the restart", "2 resolved only without the restart"} {
		if !strings.Contains(d, want) {
			t.Errorf("%q does not say %q", d, want)
		}
	}
}

// Replay starts at the first window within the lookback.
func TestReplayFrom(t *testing.T) {
	var all []regress.Window
	for i := range 100 {
		all = append(all, regress.Window{Start: Epoch.Add(time.Duration(i) * WindowLength)})
	}
	if got := replayFrom(all, 90, 5*time.Minute); got != 60 {
		t.Errorf("replay from window %d, want 60", got)
	}
	if got := replayFrom(all, 10, time.Hour); got != 0 {
		t.Errorf("replay from window %d, want 0", got)
	}
}

// A finding without DetectedAt is taken at the end of the window that
// raised it, and counted; a second raise of an ID and a resolution are
// not raises.
func TestRecord(t *testing.T) {
	var r Result
	w := regress.Window{Start: Epoch, Duration: WindowLength}
	r.record(0, w, []regress.Event{{Finding: regress.Finding{ID: "a", Function: "f"}}, {Finding: regress.Finding{ID: "b", DetectedAt: Epoch.Add(time.Second)}}})
	r.record(1, w, []regress.Event{{Finding: regress.Finding{ID: "a"}}, {Finding: regress.Finding{ID: "b"}, Resolved: true}, {Finding: regress.Finding{ID: "c", Resolved: true}}})
	if len(r.Raised) != 2 || !r.Raised[0].At.Equal(Epoch.Add(WindowLength)) || r.NoDetectedAt != 1 || !r.Raised[1].At.Equal(Epoch.Add(time.Second)) {
		t.Errorf("raised %+v, %d without DetectedAt", r.Raised, r.NoDetectedAt)
	}
	if strings.Join(r.Resolved, ",") != "b,c" {
		t.Errorf("resolved %v, want b, c", r.Resolved)
	}
}

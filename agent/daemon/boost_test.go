package daemon

import (
	"slices"
	"testing"
	"time"
)

// TestBoostDecide follows the boost's decisions window by window: on
// while the detector says a service deploys, off when it stops saying
// so, and off once the hour's boosted time is spent, back on when the
// hour has moved past the spent time.
func TestBoostDecide(t *testing.T) {
	cfg := Boost{Frequency: 99, Duration: 5 * time.Minute, MaxPerHour: 2 * time.Minute}
	const window = 10 * time.Second
	var asked []time.Duration
	deploying := []string(nil)
	ask := func(within time.Duration) []string { asked = append(asked, within); return deploying }
	b := boosting{base: 19}
	t0 := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	at := func(i int) (time.Time, time.Time) {
		return t0.Add(time.Duration(i) * window), t0.Add(time.Duration(i+1) * window)
	}
	step := func(i int) int {
		start, end := at(i)
		hz, _ := b.decide(start, end, window, cfg, ask)
		return hz
	}
	if hz := step(0); hz != 19 || b.on {
		t.Fatalf("no deploy: %d Hz (on %v), want 19", hz, b.on)
	}
	deploying = []string{"shop"}
	if hz := step(1); hz != 99 || !b.on || asked[len(asked)-1] != cfg.Duration {
		t.Fatalf("a deploy: %d Hz (on %v, asked within %v), want 99", hz, b.on, asked[len(asked)-1])
	}
	deploying = nil
	if hz := step(2); hz != 19 {
		t.Fatalf("the deploy grown old: %d Hz, want 19", hz)
	}
	// One window boosted so far (window 2): eleven more fit in 2 min.
	deploying = []string{"shop"}
	var boosted []int
	for i := 3; i < 30; i++ {
		if step(i) == 99 {
			boosted = append(boosted, i)
		}
	}
	if want := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}; !slices.Equal(boosted, want) {
		t.Fatalf("boosted after windows %v, want the 2 min budget's: %v", boosted, want)
	}
	if _, end := at(29); b.used(end) > cfg.MaxPerHour {
		t.Fatalf("boosted %v in the hour, over the budget %v", b.used(end), cfg.MaxPerHour)
	}
	// An hour later the spent time has left the hour.
	if hz := step(400); hz != 99 {
		t.Fatalf("an hour later: %d Hz, want 99 again", hz)
	}
	// Detection off, or a boost not above the base: no boost.
	b = boosting{base: 19}
	if hz, _ := b.decide(t0, t0.Add(window), window, cfg, nil); hz != 19 {
		t.Errorf("detection off: %d Hz", hz)
	}
	if hz, _ := b.decide(t0, t0.Add(window), window, Boost{Frequency: 19, Duration: time.Minute, MaxPerHour: time.Hour}, ask); hz != 19 {
		t.Errorf("a boost at the base rate: %d Hz", hz)
	}
}

package daemon

import (
	"testing"
	"time"
)

// TestBoostDecide runs the boost's decisions over a simulated watcher,
// where a rate asked for after window k samples window k+2: boosted from
// two windows after the detector says a service deploys until two after
// it stops saying so, never more than MaxPerHour in any hour, and again
// once the spent time has left the hour.
func TestBoostDecide(t *testing.T) {
	cfg := Boost{Frequency: 99, Duration: 5 * time.Minute, MaxPerHour: 2 * time.Minute}
	const window = 10 * time.Second
	t0 := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	at := func(i int) (time.Time, time.Time) {
		return t0.Add(time.Duration(i) * window), t0.Add(time.Duration(i+1) * window)
	}
	var deploying func(i int) bool
	b := boosting{base: 19, asked: 19, next: 19}
	rates := map[int]int{}
	rate := func(i int) int {
		if r, ok := rates[i]; ok {
			return r
		}
		return 19
	}
	run := func(from, to int) {
		for i := from; i < to; i++ {
			start, end := at(i)
			b.next = rate(i + 1)
			want, _ := b.decide(start, end, rate(i), window, cfg, func(now time.Time, within time.Duration) []string {
				if within != cfg.Duration || !now.Equal(end) {
					t.Fatalf("asked for services deploying within %v at %v, want %v at %v", within, now, cfg.Duration, end)
				}
				if deploying(i) {
					return []string{"shop"}
				}
				return nil
			})
			b.asked = want
			rates[i+2] = want
		}
	}
	boosted := func(from, to int) (n int, first, last int) {
		first, last = -1, -1
		for i := from; i < to; i++ {
			if rate(i) == 99 {
				n++
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		return n, first, last
	}

	// A deploy seen after windows 10 to 14: windows 12 to 16 boosted.
	deploying = func(i int) bool { return i >= 10 && i < 15 }
	run(0, 30)
	if n, first, last := boosted(0, 32); n != 5 || first != 12 || last != 16 {
		t.Fatalf("boosted %d windows, %d to %d; want 5, 12 to 16", n, first, last)
	}
	// Deploys all the time: the 2 min an hour (12 windows) are spent,
	// 5 of them already.
	deploying = func(int) bool { return true }
	run(30, 100)
	if n, _, _ := boosted(0, 102); n != 12 {
		t.Fatalf("boosted %d windows in the hour, want the budget's 12", n)
	}
	// An hour after the first boosted windows, their time is free again.
	run(100, 400)
	if n, first, _ := boosted(102, 402); n == 0 || first < 12+360 {
		t.Fatalf("boosted %d windows from window %d in the next hour, want some from window %d", n, first, 12+360)
	}
	for i := 0; i+360 <= 402; i++ {
		if n, _, _ := boosted(i, i+360); n > 12 {
			t.Fatalf("%d windows boosted in the hour from window %d, over the budget's 12", n, i)
		}
	}
	// Detection off, or a boost not above the base: no boost.
	c := boosting{base: 19, asked: 19, next: 19}
	if hz, _ := c.decide(t0, t0.Add(window), 19, window, cfg, nil); hz != 19 {
		t.Errorf("detection off: %d Hz", hz)
	}
	always := func(time.Time, time.Duration) []string { return []string{"shop"} }
	if hz, _ := c.decide(t0, t0.Add(window), 19, window, Boost{Frequency: 19, Duration: time.Minute, MaxPerHour: time.Hour}, always); hz != 19 {
		t.Errorf("a boost at the base rate: %d Hz", hz)
	}
}

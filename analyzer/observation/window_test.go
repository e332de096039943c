package observation

import (
	"math"
	"path/filepath"
	"testing"
	"time"
)

// TestWindowSeconds pins the window every rate is computed over: the
// duration when there is one, else the span of the series' points.
func TestWindowSeconds(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 14, 25, 8, 0, time.UTC)
	at := func(secs ...float64) []Point {
		var out []Point
		for _, s := range secs {
			out = append(out, Point{Time: t0.Add(time.Duration(s * 1e9)), Value: 1})
		}
		return out
	}
	spread := []Series{{Name: "host.cpu", Points: at(3, 1, 2.5)}, {Name: "process.cpu", Points: at(4.25, 2)}}
	for _, c := range []struct {
		name     string
		duration time.Duration
		series   []Series
		want     float64
	}{
		{"the duration", 5 * time.Second, spread, 5},
		{"the duration, however the points spread", 1500 * time.Millisecond, spread, 1.5},
		{"no duration: the points' span, in any order, over every series", 0, spread, 3.25},
		{"a negative duration reads as none", -time.Second, spread, 3.25},
		{"nothing says", 0, nil, 0},
		{"series without points", 0, []Series{{Name: "host.cpu"}}, 0},
		{"one point", 0, []Series{{Name: "host.cpu", Points: at(2)}}, 0},
		// Times no collector writes, kept as the verdict has always read
		// them: a point at the Unix epoch is the scan's unset mark when it
		// comes first, and the earliest bound when it comes later.
		{"epoch first", 0, []Series{{Name: "host.cpu", Points: []Point{{Time: time.Unix(0, 0)}, {Time: time.Unix(2, 0)}}}}, 0},
		{"epoch later", 0, []Series{{Name: "host.cpu", Points: []Point{{Time: time.Unix(2, 0)}, {Time: time.Unix(0, 0)}}}}, 2},
		// Before the epoch, the span runs to the epoch (3 s, not 2).
		{"before the epoch", 0, []Series{{Name: "host.cpu", Points: []Point{{Time: time.Unix(-3, 0)}, {Time: time.Unix(-1, 0)}}}}, 3},
	} {
		o := &Observation{Meta: Meta{Start: t0, Duration: c.duration}, Series: c.series}
		if got := o.WindowSeconds(); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: WindowSeconds = %v, want %v", c.name, got, c.want)
		}
	}

	// A point without a time (the zero time.Time, which Load never
	// makes) is far before every real one: the span is centuries long,
	// never negative.
	o := &Observation{Series: []Series{{Name: "host.cpu", Points: append(at(1), Point{})}}}
	if got := o.WindowSeconds(); got < 200*365*24*3600 {
		t.Errorf("with a zero-time point: WindowSeconds = %v, want centuries", got)
	}
}

// TestWindowSecondsRecorded: a recorded observation's window is its
// duration, and without it the span of its readings, which lie within it.
func TestWindowSecondsRecorded(t *testing.T) {
	o, err := Load(filepath.Join("..", "..", "fixtures", "observations", "cpu-hash"))
	if err != nil {
		t.Fatal(err)
	}
	d := o.Meta.Duration.Seconds()
	if d <= 0 || o.WindowSeconds() != d {
		t.Fatalf("WindowSeconds = %v, want the duration %v", o.WindowSeconds(), d)
	}
	var first, last time.Time
	for _, s := range o.Series {
		for _, p := range s.Points {
			if first.IsZero() || p.Time.Before(first) {
				first = p.Time
			}
			if p.Time.After(last) {
				last = p.Time
			}
		}
	}
	o.Meta.Duration = 0
	want := last.Sub(first).Seconds()
	if got := o.WindowSeconds(); got != want || got <= 0 || got > d {
		t.Errorf("without a duration: WindowSeconds = %v, want the readings' span %v, within the %v s window", got, want, d)
	}
}

package collect

import (
	"context"
	"testing"
	"time"
)

// counting is a sampler whose counter grows by 1 per millisecond of wall
// time, so every rate it gives should be 1000/s.
type counting struct{ start time.Time }

func (c *counting) Name() string { return "test.counting" }
func (c *counting) Sample(_ context.Context, r *Recorder) error {
	r.Counter("test.counting", "count/s", nil, float64(time.Since(c.start).Milliseconds()))
	return nil
}

func TestRunCoversTheWindow(t *testing.T) {
	s := &counting{start: time.Now()}
	start := time.Now()
	series, missing := Run(context.Background(), []Sampler{s}, 100*time.Millisecond, 350*time.Millisecond)
	if took := time.Since(start); took < 350*time.Millisecond || took > 2*time.Second {
		t.Errorf("Run took %v for a 350ms window", took)
	}
	if len(series) != 1 || len(missing) != 0 {
		t.Fatalf("series %+v, missing %+v", series, missing)
	}
	// Readings at 0, 100, 200, 300 and 350 ms: four rates, the last one
	// over the window's final 50 ms.
	if n := len(series[0].Points); n != 4 {
		t.Errorf("%d rates, want 4 (readings at 0, 100, 200, 300 and the end, 350 ms)", n)
	}
	for _, p := range series[0].Points {
		if p.Value < 800 || p.Value > 1200 {
			t.Errorf("rate %v, want about 1000/s", p.Value)
		}
	}
}

func TestRunShorterThanInterval(t *testing.T) {
	s := &counting{start: time.Now()}
	series, missing := Run(context.Background(), []Sampler{s}, time.Second, 50*time.Millisecond)
	// Two readings, at the start and at the end of the window.
	if len(series) != 1 || len(series[0].Points) != 1 || len(missing) != 0 {
		t.Errorf("series %+v, missing %+v; want one rate over the whole window", series, missing)
	}
	// A counter read only once gives no rate, and says so.
	rec := NewRecorder()
	rec.Sample(context.Background(), []Sampler{s}, time.Now())
	rec.noteUnrated()
	if m := rec.MissingList(); len(rec.Series()) != 0 || len(m) != 1 || m[0].Signal != "test.counting" {
		t.Errorf("one reading: series %+v, missing %+v; want no series and test.counting missing", rec.Series(), m)
	}
}

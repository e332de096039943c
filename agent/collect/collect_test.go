package collect

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// counting is a sampler whose counter grows by 1 per millisecond of the
// readings' own times (not of when it happens to run on a busy machine),
// so every rate it gives should be 1000/s.
type counting struct{ start time.Time }

func (c *counting) Name() observation.Signal { return "test.counting" }
func (c *counting) Sample(_ context.Context, r *Recorder) error {
	r.Counter("test.counting", "count/s", nil, float64(r.at.Sub(c.start).Microseconds())/1000)
	return nil
}

func TestRunCoversTheWindow(t *testing.T) {
	s := &counting{start: time.Now()}
	start := time.Now()
	series, missing := Run(context.Background(), []Sampler{s}, 100*time.Millisecond, 350*time.Millisecond)
	// Generous: a busy machine may wake Run late, never early.
	if took := time.Since(start); took < 350*time.Millisecond || took > 30*time.Second {
		t.Errorf("Run took %v for a 350ms window", took)
	}
	if len(series) != 1 || len(missing) != 0 {
		t.Fatalf("series %+v, missing %+v", series, missing)
	}
	// Readings at 0, 100, 200, 300 and 350 ms: four rates, the last one
	// over the window's final 50 ms. Woken late, Run skips to the end: at
	// least one rate, the last at or after the end.
	points := series[0].Points
	if n := len(points); n < 1 || n > 4 {
		t.Errorf("%d rates, want 4 (readings at 0, 100, 200, 300 and the end, 350 ms), fewer if late", n)
	} else if end := points[n-1].Time; end.Before(s.start.Add(349 * time.Millisecond).UTC().Truncate(time.Millisecond)) {
		t.Errorf("last rate at %v, %v after the start: want the window's end, 350 ms", end, end.Sub(s.start))
	}
	for _, p := range points {
		if p.Value < 990 || p.Value > 1010 {
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

// TestSamplerSignals: every sampler registers under a catalogued signal
// and names itself by it, so that what it records as missing is named as
// the catalogue (and observation.md) says.
func TestSamplerSignals(t *testing.T) {
	catalogued := map[observation.Signal]bool{}
	for _, s := range observation.Signals() {
		catalogued[s] = true
	}
	registryMu.Lock()
	registered := slices.Sorted(maps.Keys(registry))
	registryMu.Unlock()
	for _, n := range registered {
		if !catalogued[n] {
			t.Errorf("sampler %s is not a catalogued signal", n)
		}
	}
	f := newFixture(t, copyTree(t, nil))
	samplers, missing := Samplers(f.env(), Target{PID: f.pid})
	var made []observation.Signal
	for _, s := range samplers {
		made = append(made, s.Name())
	}
	for _, m := range missing {
		made = append(made, m.Signal)
	}
	slices.Sort(made)
	if !slices.Equal(made, registered) {
		t.Errorf("samplers made or missing are named %v, registered %v", made, registered)
	}
	if n := Watcher().Name(); !catalogued[n] {
		t.Errorf("the watcher's sampler %s is not a catalogued signal", n)
	}
}

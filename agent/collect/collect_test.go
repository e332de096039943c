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
	r.Counter("test.counting", nil, float64(r.at.Sub(c.start).Microseconds())/1000)
	return nil
}

func TestRunCoversTheWindow(t *testing.T) {
	s := &counting{start: time.Now()}
	start := time.Now()
	series, missing := run(context.Background(), []Sampler{s}, 100*time.Millisecond, 350*time.Millisecond)
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
	series, missing := run(context.Background(), []Sampler{s}, time.Second, 50*time.Millisecond)
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

// switchable is a counter that grows like counting but is read only while
// on: a process or device that comes and goes.
type switchable struct {
	counting
	on bool
}

func (c *switchable) Name() observation.Signal { return "test.switchable" }
func (c *switchable) Sample(_ context.Context, r *Recorder) error {
	if c.on {
		r.Counter("test.switchable", nil, float64(r.at.Sub(c.start).Microseconds())/1000)
	}
	return nil
}

// TestRecorderWindowsKeepBaselines runs three windows shorter than the
// interval on one recorder: the first has readings at its start and end,
// the later ones only at their end, rated from the previous window's last
// reading, so each has one rate of 1000/s and nothing "read once". A
// counter missing from a window loses its baseline: read again only at
// the end of the next, it has no rate there.
func TestRecorderWindowsKeepBaselines(t *testing.T) {
	c := &counting{start: time.Now()}
	sw := &switchable{counting: *c, on: true}
	rec := NewRecorder()
	start := time.Now()
	for i, on := range []bool{true, false, true} {
		sw.on = on
		end := time.Now().Add(30 * time.Millisecond)
		series, missing := rec.Window(context.Background(), []Sampler{c, sw}, time.Hour, start, end)
		var want []string
		switch i {
		case 0:
			want = []string{"test.counting", "test.switchable"}
		case 1:
			want = []string{"test.counting"}
		case 2:
			want = []string{"test.counting"}
			if len(missing) != 1 || missing[0].Signal != "test.switchable" {
				t.Errorf("window %d: missing %+v, want test.switchable read once", i+1, missing)
			}
		}
		if i < 2 && len(missing) != 0 {
			t.Errorf("window %d: missing %+v, want none", i+1, missing)
		}
		if len(series) != len(want) {
			t.Fatalf("window %d: %d series %+v, want %v", i+1, len(series), series, want)
		}
		for j, s := range series {
			if string(s.Name) != want[j] || len(s.Points) != 1 || s.Points[0].Value < 990 || s.Points[0].Value > 1010 {
				t.Errorf("window %d: %s %+v, want %s with one rate of about 1000/s", i+1, s.Name, s.Points, want[j])
			}
		}
		start = end
	}
	if len(rec.last) != 2 {
		t.Errorf("%d baselines kept, want 2", len(rec.last))
	}
}

func TestProcDir(t *testing.T) {
	if got := (Env{}).ProcDir(); got != "/proc" {
		t.Errorf("default ProcDir %q, want /proc", got)
	}
	if got := (Env{ProcFS: "/host/proc"}).ProcDir(); got != "/host/proc" {
		t.Errorf("ProcDir %q, want /host/proc", got)
	}
	if got := (Env{}).withDefaults().ProcFS; got != "/proc" {
		t.Errorf("withDefaults ProcFS %q, want /proc", got)
	}
}

// run samples every interval until ctx is done or duration has passed
// (0: until ctx is done) in one recorder window, and returns the series and what was missing.
// The first reading is taken at once and, with a duration, the last one
// exactly at its end, so that the rates cover the whole window; counters
// give their first rate at the second reading.
func run(ctx context.Context, samplers []Sampler, interval, duration time.Duration) ([]observation.Series, []observation.Missing) {
	start := time.Now()
	var end time.Time
	if duration > 0 {
		end = start.Add(duration)
	}
	return NewRecorder().Window(ctx, samplers, interval, start, end)
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
	if n := SelfCPU().Name(); !catalogued[n] {
		t.Errorf("the watcher's sampler %s is not a catalogued signal", n)
	}
}

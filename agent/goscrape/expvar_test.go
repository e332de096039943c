package goscrape

import (
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// gcVars is a reading after numGC collections, the i-th having paused i µs
// and ended at second i.
func gcVars(at time.Time, numGC uint32, totalAlloc uint64) *vars {
	v := &vars{
		at:       at,
		gauges:   map[observation.SeriesName]float64{"go.heap.alloc": 1, "go.heap.goal": 2},
		counters: map[observation.SeriesName]float64{"go.gc.count": float64(numGC), "go.alloc.rate": float64(totalAlloc)},
		gc:       &gcRing{numGC: numGC},
	}
	for i := uint32(max(1, int64(numGC)-255)); i <= numGC; i++ {
		v.gc.pauseNs[(i+255)%256] = uint64(i) * 1000
		v.gc.pauseEnd[(i+255)%256] = uint64(i) * 1e9
	}
	return v
}

func seriesOf(ss []observation.Series, name observation.SeriesName) []observation.Point {
	for _, s := range ss {
		if s.Name == name {
			return s.Points
		}
	}
	return nil
}

func TestVarsSeries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t.Run("pauses in the window", func(t *testing.T) {
		ss, err := varsSeries(gcVars(t0, 10, 1000), gcVars(t0.Add(2*time.Second), 13, 5000), nil)
		if err != nil {
			t.Fatal(err)
		}
		pauses := seriesOf(ss, "go.gc.pause")
		if len(pauses) != 3 {
			t.Fatalf("%d pauses, want GCs 11, 12 and 13", len(pauses))
		}
		for i, p := range pauses {
			n := 11 + i
			if p.Value != float64(n)*1e-6 || !p.Time.Equal(time.Unix(int64(n), 0)) {
				t.Errorf("pause %d: %v, want %dµs ending at second %d", i, p, n, n)
			}
		}
		if r := seriesOf(ss, "go.gc.count"); len(r) != 1 || r[0].Value != 1.5 {
			t.Errorf("go.gc.count %v, want 1.5/s", r)
		}
		if r := seriesOf(ss, "go.alloc.rate"); len(r) != 1 || r[0].Value != 2000 {
			t.Errorf("go.alloc.rate %v, want 2000 bytes/s", r)
		}
	})
	t.Run("more GCs than the ring holds", func(t *testing.T) {
		ss, err := varsSeries(gcVars(t0, 5, 0), gcVars(t0.Add(time.Second), 1000, 0), nil)
		if err != nil {
			t.Fatal(err)
		}
		pauses := seriesOf(ss, "go.gc.pause")
		if len(pauses) != 256 || pauses[0].Value != 745e-6 || pauses[255].Value != 1000e-6 {
			t.Errorf("%d pauses from %v, want the last 256, GCs 745 to 1000", len(pauses), pauses[0])
		}
		// And the loss of the older ones is said.
		r := &varsReader{start: gcVars(t0, 5, 0), end: gcVars(t0.Add(time.Second), 1000, 0)}
		if _, why := r.series(nil); !strings.Contains(why, "995 collections") || !strings.Contains(why, "older 739") {
			t.Errorf("missing reason %q, want the 739 pauses not kept named", why)
		}
	})
	t.Run("no GC", func(t *testing.T) {
		ss, _ := varsSeries(gcVars(t0, 7, 0), gcVars(t0.Add(time.Second), 7, 0), nil)
		if p := seriesOf(ss, "go.gc.pause"); p != nil {
			t.Errorf("pauses %v, want none", p)
		}
	})
	t.Run("restarted", func(t *testing.T) {
		ss, err := varsSeries(gcVars(t0, 70, 1e6), gcVars(t0.Add(time.Second), 2, 1e3), nil)
		if err == nil || !strings.Contains(err.Error(), "went backwards") {
			t.Errorf("err %v, want counters that went backwards", err)
		}
		if seriesOf(ss, "go.gc.count") != nil || len(seriesOf(ss, "go.heap.alloc")) != 2 {
			t.Errorf("series %v: want the gauges and no rates", ss)
		}
	})
	t.Run("start only", func(t *testing.T) {
		ss, err := varsSeries(gcVars(t0, 3, 0), nil, nil)
		if err != nil || len(seriesOf(ss, "go.heap.goal")) != 1 || seriesOf(ss, "go.alloc.rate") != nil {
			t.Errorf("series %v, err %v: want gauges with one point", ss, err)
		}
	})
}

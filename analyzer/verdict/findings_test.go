package verdict

import (
	"math"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/observation"
)

func TestLeakFindingsRecorded(t *testing.T) {
	// memory-leak keeps 2 MiB more every 100 ms; memory-churn allocates
	// as fast as it can but keeps a bounded live set (its RSS is flat).
	leaks := map[string]bool{"memory-leak": true}
	for name, o := range recorded(t) {
		fs := leakFindings(o, DefaultThresholds())
		for _, f := range fs {
			t.Logf("%s: %s: %s", name, f.Signal, f.Text)
		}
		if !leaks[name] {
			if len(fs) != 0 {
				t.Errorf("%s: findings %+v, want none", name, fs)
			}
			continue
		}
		if len(fs) != 1 || fs[0].Kind != "leak" || fs[0].Signal != "process.memory.rss" || fs[0].Unit != "bytes/s" {
			t.Fatalf("%s: findings %+v, want one RSS leak", name, fs)
		}
		if name == "memory-leak" {
			if mib := fs[0].Rate / (1 << 20); mib < 15 || mib > 21 {
				t.Errorf("memory-leak: %.1f MiB/s, want about 20 (2 MiB per 100 ms and a little)", mib)
			}
			if want := "RSS grew 19.7 MiB/s, 9.0 MiB → 107.6 MiB over 5s (steady: r²=1.00)"; fs[0].Text != want {
				t.Errorf("memory-leak: text %q, want %q", fs[0].Text, want)
			}
		}
	}
}

func TestLeakFindings(t *testing.T) {
	const mib = 1 << 20
	th := DefaultThresholds()
	line := func(start, perSecond float64, n int) []float64 {
		var v []float64
		for i := range n {
			v = append(v, start+perSecond*float64(i))
		}
		return v
	}
	for _, c := range []struct {
		name   string
		series observation.SeriesName
		values []float64
		want   float64 // the rate found, 0 for none
	}{
		{"steady", "process.memory.rss", line(10*mib, 5*mib, 6), 5 * mib},
		{"noisy but climbing", "process.memory.rss", []float64{10 * mib, 16 * mib, 19 * mib, 26 * mib, 29 * mib, 36 * mib}, 5.0286 * mib},
		{"go heap", "go.heap.inuse", line(50*mib, 4*mib, 6), 4 * mib},
		{"flat", "process.memory.rss", line(10*mib, 0, 6), 0},
		{"shrinking", "process.memory.rss", line(100*mib, -5*mib, 6), 0},
		{"too slow", "process.memory.rss", line(1*mib, 0.5*mib, 6), 0},
		{"small against the start", "process.memory.rss", line(1<<30, 2*mib, 6), 0},
		// A GC's sawtooth: the fit slopes up 11 MiB/s, but explains little.
		{"sawtooth", "process.memory.rss", []float64{10 * mib, 60 * mib, 110 * mib, 10 * mib, 60 * mib, 110 * mib}, 0},
		// Something filled once (a cache warming): up, then flat.
		{"step", "process.memory.rss", []float64{10 * mib, 10 * mib, 10 * mib, 50 * mib, 50 * mib, 50 * mib}, 0},
		// Two readings (goscrape's Go heap): a line through them says nothing.
		{"two points", "go.heap.inuse", line(50*mib, 40*mib, 2), 0},
		{"three points", "process.memory.rss", line(50*mib, 40*mib, 3), 0},
		{"four points", "process.memory.rss", line(50*mib, 40*mib, 4), 40 * mib},
		{"one point", "process.memory.rss", line(50*mib, 0, 1), 0},
		{"no points", "process.memory.rss", nil, 0},
	} {
		o := useObs(useSeries(c.series, nil, 0, c.values...), useSeries("process.memory.vms", nil, 0, line(0, 100*mib, 6)...))
		fs := leakFindings(o, th)
		if c.want == 0 {
			if len(fs) != 0 {
				t.Errorf("%s: findings %+v, want none", c.name, fs)
			}
			continue
		}
		if len(fs) != 1 || fs[0].Signal != string(c.series) || math.Abs(fs[0].Rate-c.want) > 0.001*mib {
			t.Errorf("%s: findings %+v, want one on %s at %.3f MiB/s", c.name, fs, c.series, c.want/mib)
			continue
		}
		t.Logf("%s: %s", c.name, fs[0].Text)
	}
	if fs := leakFindings(useObs(), th); len(fs) != 0 {
		t.Errorf("no series: findings %+v", fs)
	}
	fs := leakFindings(useObs(useSeries("go.heap.inuse", nil, 0, line(50*mib, 4*mib, 6)...)), th)
	if len(fs) != 1 || !strings.HasPrefix(fs[0].Text, "Go heap in use grew 4.0 MiB/s, 50.0 MiB → 70.0 MiB over 5s") {
		t.Errorf("go heap finding %+v", fs)
	}
}

func TestFitLine(t *testing.T) {
	pts := useSeries("x", nil, 0, 3, 5, 7, 9).Points
	if slope, r2 := fitLine(pts); slope != 2 || r2 != 1 {
		t.Errorf("fitLine(3 5 7 9) = %v, %v, want 2, 1", slope, r2)
	}
	pts = useSeries("x", nil, 0, 1, 3, 1, 3).Points
	if slope, r2 := fitLine(pts); math.Abs(slope-0.4) > 1e-12 || math.Abs(r2-0.2) > 1e-12 {
		t.Errorf("fitLine(1 3 1 3) = %v, %v, want 0.4, 0.2", slope, r2)
	}
	if slope, r2 := fitLine(useSeries("x", nil, 0, 4, 4, 4).Points); slope != 0 || r2 != 0 {
		t.Errorf("fitLine(flat) = %v, %v, want 0, 0", slope, r2)
	}
}

package verdict

import (
	"fmt"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// leakSeries are the memory series judged for leaks: the target's
// resident memory, and the Go heap in use where a Go service's runtime
// statistics were read (agent/goscrape).
var leakSeries = []struct {
	name observation.SeriesName
	what string
}{
	{observation.ProcessRSS, "RSS"},
	{observation.GoHeapInuse, "Go heap in use"},
}

// Steadiness: a leak is growth that a straight line explains. Through two
// or three readings a line explains nearly anything (goscrape reads the Go
// heap at the window's start and end only, so today the Go heap is never
// judged); below leakMinR2 the memory went up and down (a GC sawtooth, a
// cache filling once) rather than climbing.
const (
	leakMinPoints = 4
	leakMinR2     = 0.9
)

// leakFindings reports memory growing through the window: a series of
// leakSeries whose least-squares slope is at least LeakBytesPerSecond,
// whose fitted growth over the window is at least LeakGrowth of its first
// value, and whose fit is steady (at least leakMinPoints points, r² at
// least leakMinR2).
func leakFindings(o *observation.Observation, th Thresholds) []Finding {
	var out []Finding
	for _, ls := range leakSeries {
		for _, s := range o.SeriesNamed(ls.name, nil) {
			if f, ok := leakIn(s, ls.what, th); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

func leakIn(s observation.Series, what string, th Thresholds) (Finding, bool) {
	pts := s.Points
	if len(pts) < leakMinPoints {
		return Finding{}, false
	}
	slope, r2 := fitLine(pts)
	first, last := pts[0], pts[len(pts)-1]
	span := last.Time.Sub(first.Time).Seconds()
	if slope < th.LeakBytesPerSecond || slope*span < th.LeakGrowth*first.Value || r2 < leakMinR2 {
		return Finding{}, false
	}
	return Finding{
		Kind:   FindingLeak,
		Signal: string(s.Name),
		Text: fmt.Sprintf("%s grew %s/s, %s → %s over %s (steady: r²=%.2f)", what, textfmt.Bytes(slope),
			textfmt.Bytes(first.Value), textfmt.Bytes(last.Value), time.Duration(span*1e9).Round(100*time.Millisecond), r2),
		Rate: slope,
		Unit: "bytes/s",
	}, true
}

// fitLine fits value = a + slope·t by least squares, t in seconds, and
// says how much of the variance the line explains (r², 0 for a flat or
// instantaneous series).
func fitLine(pts []observation.Point) (slope, r2 float64) {
	var mt, mv float64
	for _, p := range pts {
		mt += p.Time.Sub(pts[0].Time).Seconds()
		mv += p.Value
	}
	n := float64(len(pts))
	mt, mv = mt/n, mv/n
	var stt, svv, stv float64
	for _, p := range pts {
		dt, dv := p.Time.Sub(pts[0].Time).Seconds()-mt, p.Value-mv
		stt += dt * dt
		svv += dv * dv
		stv += dt * dv
	}
	if stt == 0 || svv == 0 {
		return 0, 0
	}
	return stv / stt, stv * stv / (stt * svv)
}

package htmlreport

import (
	"bytes"
	"encoding/binary"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// fuzzUnits are the units the charts format apart.
var fuzzUnits = []string{"ratio", "percent", "seconds", "nanoseconds", "bytes", "bytes/s", "ops/s", "count", ""}

// fuzzNames put the fuzzed series in charts of their own and in a family
// sharing one.
var fuzzNames = []observation.SeriesName{observation.ProcessCPU, observation.HostMemFree, observation.HostMemCached, observation.GoGCPause}

// maxFuzzPoints bounds a fuzzed series: past maxPointsPerLine, so that
// downsampling is fuzzed too.
const maxFuzzPoints = 600

// fuzzObservation builds an observation of series whose values are the
// bytes read as float64 bit patterns (little-endian, NaNs and infinities
// and subnormals included), spread over the names and units by the low
// bits of each value's first byte, step nanoseconds apart.
func fuzzObservation(units uint8, step, dur int64, raw []byte) *observation.Observation {
	start := time.Unix(1_700_000_000, 0)
	o := &observation.Observation{Meta: observation.Meta{
		Target: observation.Target{Kind: observation.TargetProcess, PID: 1},
		Start:  start, Duration: time.Duration(dur),
	}}
	series := make([]observation.Series, len(fuzzNames))
	for i, name := range fuzzNames {
		series[i] = observation.Series{Name: name, Unit: fuzzUnits[(int(units)+i)%len(fuzzUnits)]}
	}
	for i := 0; i+8 <= len(raw) && i/8 < maxFuzzPoints; i += 8 {
		v := math.Float64frombits(binary.LittleEndian.Uint64(raw[i:]))
		s := &series[int(raw[i])%len(series)]
		s.Points = append(s.Points, observation.Point{Time: start.Add(time.Duration(step * int64(len(s.Points)))), Value: v})
	}
	o.Series = series
	return o
}

// absurdNumber is what no chart should show: a number that is not one,
// or one printed to hundreds of digits.
var absurdNumber = regexp.MustCompile(`\bNaN\b|[+-]Inf\b|\d{30,}`)

// chartSection is the page's charts, without the words that name NaN
// for what it is. (The verdict's own text, elsewhere on the page, prints
// what the verdict computed from such values: a number of 300 digits from
// a process.cpu of 1e300 is the verdict's to refuse.)
func chartSection(page []byte) []byte {
	_, rest, _ := bytes.Cut(page, []byte(`<section id="charts">`))
	charts, _, _ := bytes.Cut(rest, []byte("</section>"))
	return bytes.ReplaceAll(charts, []byte("(NaN or infinite)"), nil)
}

// floats is values as the bytes fuzzObservation reads.
func floats(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// FuzzChart draws charts of series of any float64 values, and the whole
// page of an observation carrying them and a CPU profile whose samples
// weigh any int64: every chart within its bounds with finite
// coordinates, the page written, small, its drawings finite.
func FuzzChart(f *testing.F) {
	f.Add(uint8(0), int64(1e6), int64(time.Second), int64(10*time.Second), floats(-1e308, 1e308, 0, 5e307))
	f.Add(uint8(1), int64(math.MaxInt64), int64(time.Second), int64(0), floats(0, math.MaxFloat64, math.MaxFloat64/2, -math.MaxFloat64))
	f.Add(uint8(2), int64(1), int64(time.Millisecond), int64(time.Second), floats(math.NaN(), 1, math.Inf(1), 2, math.Inf(-1), 3))
	f.Add(uint8(4), int64(0), int64(1), int64(-1), floats(0, math.SmallestNonzeroFloat64, 1e-310, math.Copysign(0, -1), -1e-20))
	f.Add(uint8(5), int64(-1), int64(math.MaxInt64), int64(math.MaxInt64), floats(1, 2, 3, 4, 5, 6, 7, 8))
	f.Add(uint8(6), int64(math.MaxInt64/2), int64(-time.Hour), int64(time.Hour), floats(1e300, 1e300+1e285, 7, 7))
	f.Fuzz(func(t *testing.T, units uint8, sample, step, dur int64, raw []byte) {
		o := fuzzObservation(units, step, dur, raw)
		o.Profiles = []observation.Profile{{Kind: observation.KindCPU, Source: "pprof",
			Profile: synthetic(3, func(i int) int64 { return sample >> i })}}
		for _, c := range chartsWithin(t, o).Charts {
			checkChart(t, c)
		}
		done := make(chan error, 1)
		var buf bytes.Buffer
		go func() {
			done <- Write(&buf, Report{Observation: o, Verdict: verdict.Judge(o, verdict.DefaultThresholds())})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("judging and writing did not end in 10 s")
		}
		if buf.Len() > 1<<20 {
			t.Fatalf("a page of %d points is %d bytes", len(raw)/8, buf.Len())
		}
		checkSVG(t, buf.Bytes())
		if m := absurdNumber.Find(chartSection(buf.Bytes())); m != nil {
			t.Fatalf("the charts show %.80q", m)
		}
	})
}

package regress

import (
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// denseWindows are windows of a 2,000-function service sampled densely
// enough (16 cores at 99 Hz, ~16,000 samples a window) that nearly every
// function is in every window: the most a window can cost the detector.
func denseWindows(b *testing.B, n int, version string, start time.Time, s *sim) []Window {
	b.Helper()
	ws := make([]Window, n)
	for i := range ws {
		ws[i] = s.window("svc", version, start.Add(time.Duration(i)*10*time.Second), 1)
	}
	return ws
}

// BenchmarkObserve is the detector's cost per stored window of a
// 2,000-function service in its steady state (no look due): the agent
// calls it every 10 s per service.
func BenchmarkObserve(b *testing.B) {
	s := newSim(1, 16, 99, flatService(2000, 1))
	ws := denseWindows(b, 60, "v1", t0, s)
	funcs := 0
	for _, w := range ws {
		funcs += len(w.CPU.Funcs)
	}
	d := New(DefaultOptions())
	at := t0
	next := func(i int) Window {
		w := ws[i%len(ws)]
		w.Start = at
		at = at.Add(10 * time.Second)
		return w
	}
	// Past the version's looks: 40 minutes of windows.
	for i := range 240 {
		d.Observe(next(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Observe(next(i))
		i++
	}
	b.ReportMetric(float64(funcs)/float64(len(ws)), "funcs/window")
}

// BenchmarkLook is one look of a 2,000-function service: 30 minutes of
// base against 30 of head with a function 30% slower (the shift and
// dedup checks run), as the detector makes it at most 7 times a deploy.
func BenchmarkLook(b *testing.B) {
	base := newSim(1, 16, 99, flatService(2000, 1))
	head := base.clone(2).slow("pkg3.fn0003", 0.3)
	t := newTable()
	var ix windowIDs
	ba, ha := &agg{}, &agg{}
	for _, w := range denseWindows(b, 180, "v1", t0, base) {
		t.index(&w, &ix)
		ba.add(&w, &ix, t, true)
	}
	for _, w := range denseWindows(b, 180, "v2", t0.Add(time.Hour), head) {
		t.index(&w, &ix)
		ha.add(&w, &ix, t, true)
	}
	o := DefaultVersionOptions()
	c, err := evaluate(t, ba, ha, "svc", "v1", "v2", &o, o.lookQ(), nil)
	if err != nil || len(c.Findings) != 1 || c.Findings[0].Function != "pkg3.fn0003" {
		b.Fatalf("the look found %+v (%v)", c, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		evaluate(t, ba, ha, "svc", "v1", "v2", &o, o.lookQ(), nil)
	}
	b.ReportMetric(float64(len(c.Functions)), "tests")
}

// BenchmarkWindowOf is WindowOf of a real stored window (goservice, 19
// Hz, ~110 samples).
func BenchmarkWindowOf(b *testing.B) {
	o := recordedWindows(b)[0]
	b.ReportAllocs()
	for b.Loop() {
		WindowOf(o, "goservice", "v1", verdict.Summary{})
	}
}

// Package htmlreport renders one diagnosis, an observation and its
// verdict, as a single self-contained HTML file: the verdict, where the
// time went, interactive flame graphs of on-CPU and off-CPU time, charts
// of the metric series, and what was missing.
//
// For a Go program watched through its pprof endpoint, the page adds flame
// graphs of its mutex and block profiles (the delay, summed over
// goroutines) and a table of its goroutines by what they wait on and
// where. A Go program's goroutines park in the runtime when they wait, so
// its off-CPU graph shows mostly idle threads: for a contention verdict
// these are where the evidence is. Each Go graph says whether it covers
// the window (a delta) or the process's whole life (a cumulative
// snapshot).
//
// The file needs no network to open: its stylesheet, script and charts are
// inline, so it can be attached to a ticket or opened on an air-gapped
// host. Flame graphs are pruned (frames under 0.1% of the total, at most
// 10,000 frames each) so that a busy host's report stays a few hundred
// kilobytes; the page says what was pruned. Charts draw any float64:
// points that are not numbers (NaN, infinities) are gaps the chart counts,
// an axis has at most 8 ticks whatever the range, up to ±MaxFloat64, and
// a series that is constant where it is a number is listed, not drawn.
//
// Like the rest of analyzer, it does no I/O beyond the writer it is
// handed.
package htmlreport

// Package goscrape collects a Go service's own view of itself over HTTP, the
// profiles its net/http/pprof handlers serve and the runtime statistics its
// expvar handler publishes, window after window, as pieces of an
// observation: profiles, series, and what was missing and why. A Scraper
// (NewScraper) lives across windows; Scrape is one window of one.
//
// What each profile covers (the "mode" label says it too):
//
//	cpu        the window                      /debug/pprof/profile?seconds=N
//	allocs     a delta over the window         /debug/pprof/allocs at its start and end
//	block      a delta over the window         /debug/pprof/block at its start and end
//	mutex      a delta over the window         /debug/pprof/mutex at its start and end
//	heap       a snapshot at the window's end  /debug/pprof/heap
//	goroutine  a snapshot at the window's end  /debug/pprof/goroutine
//
// A delta is the cumulative profile at the window's end minus the one at
// its start, as net/http/pprof makes one for ?seconds=N, and its
// DurationNanos is the time between the two; goscrape subtracts itself so
// that a window's end profile is the next window's start, and consecutive
// windows follow each other without a gap (the CPU profile excepted: it
// runs from each window's call for N seconds). This also serves services
// from before Go 1.16, which had no deltas. The start profiles and the CPU
// profile are requested together, so they cover the same N seconds. The
// difference of two live heaps or two goroutine lists is a change, with
// negative values, not a picture of the service: those two are taken as
// they are when the window ends. In the heap snapshot, inuse_* is the live
// heap as of the last completed GC and alloc_* counts since the process
// started; the allocs delta is the one to read for the window.
//
// Block and mutex profiling are off in a Go program until it calls
// runtime.SetBlockProfileRate or runtime.SetMutexProfileFraction, and the
// endpoints then serve empty profiles. An empty delta is told apart from a
// quiet window by the cumulative profile: empty too means profiling is off,
// which is recorded as Missing with the call that turns it on; a cumulative
// profile with samples means nothing contended in the window, and the empty
// delta is kept as the answer.
//
// Series come from /debug/vars, expvar's memstats, read at the start and at
// the end of the window (a window's end reading is the next one's start): go.heap.alloc, go.heap.sys, go.heap.inuse,
// go.heap.objects, go.heap.goal and go.gc.cpu_fraction as two points each;
// go.gc.count and go.alloc.rate as one rate over the window; go.gc.pause as
// one point per GC that ended in the window (the last 256 when there were
// more: runtime.MemStats keeps no more); go.goroutines when the service
// publishes a "goroutines" variable. go.gc.cpu_fraction is the runtime's
// average since the process started, not the window's. A service without
// expvar gets a Missing "go.expvar"; when it serves the Prometheus Go
// client's text at /metrics instead, the same series but go.gc.pause come
// from there (go_memstats_*, go_goroutines, go_gc_duration_seconds_count),
// and the Missing entry says so.
//
// Traps. A Go process runs one CPU profile at a time: while another profiler
// (a pyroscope SDK, someone's go tool pprof) holds it, the CPU profile is
// Missing with the service's own words for it. An Options.Client whose
// Timeout is shorter than the window cuts the CPU profile short. Every request
// carries User-Agent "perfhound", is bounded by Options.Timeout beyond the
// profile's own seconds and by Options.MaxBytes (a gzip body's decompressed
// size too), and a redirect to another host is refused, so a service cannot
// send the agent to fetch from somewhere else.
package goscrape

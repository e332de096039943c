package goscrape

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// Profile modes, the "mode" label of every profile.
const (
	ModeDelta    = "delta"    // what happened during the window (cpu, allocs, block, mutex)
	ModeSnapshot = "snapshot" // the state at the window's end (heap, goroutine)
)

// kindSpec is one net/http/pprof profile and how it is taken.
type kindSpec struct {
	kind  observation.ProfileKind
	path  string // under /debug/pprof/
	delta bool   // the difference of the cumulative profiles at the window's start and end; else cpu (the window) or a snapshot at its end
	// off is, for block and mutex, why an empty profile means profiling is
	// off and how to turn it on.
	off string
}

var kinds = []kindSpec{
	{kind: observation.KindCPU, path: "profile"},
	{kind: observation.KindHeap, path: "heap"},
	{kind: observation.KindAllocs, path: "allocs", delta: true},
	{kind: observation.KindGoroutine, path: "goroutine"},
	{kind: observation.KindBlock, path: "block", delta: true,
		off: "runtime.SetBlockProfileRate is 0 in the service (no blocking event recorded since it started); " +
			"call runtime.SetBlockProfileRate(rate) at startup, e.g. 10000 to sample about one event per 10µs spent blocked"},
	{kind: observation.KindMutex, path: "mutex", delta: true,
		off: "runtime.SetMutexProfileFraction is 0 in the service (no contention recorded since it started); " +
			"call runtime.SetMutexProfileFraction(n) at startup, e.g. 100 to sample one contention event in 100"},
}

// job is one profile's way through a Scraper's windows.
type job struct {
	spec kindSpec
	url  string // the endpoint, without a query
	// last is a delta's cumulative profile read at the previous window's
	// end: the next window's start. nil when there is none (the first
	// window, or the read failed).
	last *profile.Profile

	// The window's: the profile, its mode, or why it is missing; a
	// delta's cumulative profile at the window's start.
	prof  *profile.Profile
	mode  string
	err   error
	start *profile.Profile
}

// atStart runs as the window starts: the CPU profile over the window,
// or a delta's start, which is the previous window's end when there was
// one (read now when not).
func (j *job) atStart(ctx context.Context, c *client, window time.Duration) {
	j.prof, j.mode, j.err, j.start = nil, "", nil, nil
	switch {
	case j.spec.kind == observation.KindCPU:
		secs := strconv.Itoa(int(window / time.Second))
		j.prof, j.err = c.fetchProfile(ctx, j.url+"?seconds="+secs, window)
		j.mode = ModeDelta
	case j.spec.delta:
		j.start, j.last = j.last, nil
		if j.start == nil {
			j.start, j.err = c.fetchProfile(ctx, j.url, 0)
		}
	}
}

// atEnd runs when the window is over: the snapshots, a delta's end (kept
// as the next window's start, even when this window's start failed) and
// the subtraction, and the check that an empty block or mutex profile
// means that profiling is off.
func (j *job) atEnd(ctx context.Context, c *client, window time.Duration) {
	switch {
	case j.spec.kind == observation.KindCPU:
		return
	case !j.spec.delta:
		j.prof, j.err = c.fetchProfile(ctx, j.url, 0)
		j.mode = ModeSnapshot
		return
	}
	end, err := c.fetchProfile(ctx, j.url, 0)
	if err == nil {
		j.last = end
	}
	if j.err != nil {
		return
	}
	if err != nil {
		j.err = err
		return
	}
	j.prof, j.err = subtract(end, j.start, window)
	j.mode = ModeDelta
	if j.err == nil && j.spec.off != "" && len(j.prof.Sample) == 0 && len(end.Sample) == 0 {
		j.prof, j.err = nil, errors.New("endpoint serves an empty profile: "+j.spec.off)
	}
}

// fetchProfile gets and parses one profile.
func (c *client) fetchProfile(ctx context.Context, u string, extra time.Duration) (*profile.Profile, error) {
	r, err := c.get(ctx, u, extra)
	if err != nil {
		return nil, err
	}
	return c.parseProfile(r)
}

// parseProfile decompresses a body at most once, within MaxBytes (pprof's
// own parser would decompress without a bound, nested gzip included), and
// parses it within profdecode's limits on what parsing builds.
func (c *client) parseProfile(r *response) (*profile.Profile, error) {
	if r.contentType == "text/html" {
		return nil, fmt.Errorf("not a profile: got text/html from %s", r.url)
	}
	data := r.body
	if profdecode.IsGzip(data) {
		var err error
		data, err = profdecode.Gunzip(data, c.maxBytes)
		if errors.Is(err, profdecode.ErrTooLarge) {
			return nil, &tooLargeError{url: r.url, max: c.maxBytes, decompressed: true}
		}
		if err != nil {
			return nil, fmt.Errorf("not a profile at %s: %v", r.url, err)
		}
		if profdecode.IsGzip(data) {
			return nil, fmt.Errorf("not a profile at %s: %v", r.url, profdecode.ErrNestedGzip)
		}
	}
	p, _, err := profdecode.Decode(data, profdecode.Limits{MaxBytes: c.maxBytes}, nil)
	if errors.Is(err, profdecode.ErrTooLarge) {
		return nil, fmt.Errorf("profile at %s too costly to parse: %w", r.url, err)
	}
	if err != nil {
		return nil, fmt.Errorf("not a profile at %s: %v", r.url, err)
	}
	if len(p.SampleType) == 0 {
		return nil, fmt.Errorf("not a profile at %s: no sample types", r.url)
	}
	return p, nil
}

// subtract returns end minus start, as net/http/pprof makes a delta. window
// is the duration when the profiles carry no times.
func subtract(end, start *profile.Profile, window time.Duration) (*profile.Profile, error) {
	neg := start.Copy()
	neg.Scale(-1)
	d, err := profile.Merge([]*profile.Profile{neg, end})
	if err != nil {
		return nil, fmt.Errorf("subtracting the window's start from its end: %w", err)
	}
	d.TimeNanos = end.TimeNanos
	d.DurationNanos = end.TimeNanos - start.TimeNanos
	if end.TimeNanos == 0 || start.TimeNanos == 0 || d.DurationNanos <= 0 {
		d.DurationNanos = window.Nanoseconds()
	}
	return d, nil
}

package goscrape

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Errors Scrape and Probe return, to test with errors.Is.
var (
	// ErrUnreachable: nothing answered at the URL (connection refused, no
	// such host, a timeout, a reset). The error wraps the cause too.
	ErrUnreachable = errors.New("unreachable")
	// ErrNotPprof: something answered, but not net/http/pprof (an HTML
	// page, 404 everywhere, a login redirect to another host).
	ErrNotPprof = errors.New("not a Go pprof endpoint")
)

const (
	defaultTimeout  = 10 * time.Second
	defaultMaxBytes = 64 << 20
)

// Options says what to scrape and within which limits.
type Options struct {
	// BaseURL is the service's address, e.g. http://127.0.0.1:6060; the
	// /debug/pprof/ and /debug/vars paths are under it. A URL under
	// /debug/pprof/ is taken for the base above it, and a bare host:port
	// for http.
	BaseURL string
	// Duration is the window: the CPU profile's seconds and the deltas',
	// rounded up to whole seconds, at least 1.
	Duration time.Duration
	// Timeout bounds every request beyond the profile's own seconds;
	// default 10s.
	Timeout time.Duration
	// MaxBytes caps every response body, and a gzip body's decompressed
	// size; default 64 MiB. A bigger body makes that endpoint Missing.
	MaxBytes int64
	// Client makes the requests; default a plain http.Client. Its
	// CheckRedirect still runs, after goscrape's refusal of other hosts.
	Client *http.Client
	// Profiles are which of cpu, heap, allocs, goroutine, block and mutex
	// to take; default all.
	Profiles []string
}

// Result is what one scrape collected.
type Result struct {
	// Profiles in the order cpu, heap, allocs, goroutine, block, mutex:
	// Source "pprof", Labels "url" (the base URL) and "mode" (ModeDelta
	// or ModeSnapshot).
	Profiles []observation.Profile
	// Series from expvar's memstats (or the Prometheus text at /metrics),
	// labelled with the base URL.
	Series []observation.Series
	// Missing lists each profile or signal that was wanted and not
	// collected, with the reason: "pprof.<kind>" and "go.expvar"
	// (observation's catalogue).
	Missing []observation.Missing
	// Start is when the window started, Duration how long it lasted.
	Start    time.Time
	Duration time.Duration
}

// Scrape takes the profiles and runtime statistics of the Go service at
// opts.BaseURL over one window of opts.Duration (see the package doc for
// what each covers). It first probes the URL as Probe does.
//
// It returns an error wrapping ErrUnreachable or ErrNotPprof when the
// target is unreachable or not net/http/pprof at all, an error for bad
// Options, and ctx's error when ctx ends first. Whatever fails after the
// probe (an endpoint off, missing, too big, too slow, not a profile) is in
// Result.Missing with the reason and the endpoint.
func Scrape(ctx context.Context, opts Options) (*Result, error) {
	specs, err := opts.kinds()
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	window := max(time.Second, (opts.Duration + time.Second - 1).Truncate(time.Second))

	c, err := newClient(opts.BaseURL, opts.Client, opts.Timeout, opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	if err := c.probe(ctx); err != nil {
		return nil, err
	}

	jobs := make([]*job, len(specs))
	for i, k := range specs {
		jobs[i] = &job{spec: k, url: c.pprofURL(k.path)}
	}
	var wg sync.WaitGroup
	vr := &varsReader{c: c}
	start := time.Now()
	wg.Go(func() { vr.readStart(ctx) })
	for _, j := range jobs {
		if j.spec.window() {
			wg.Go(func() { j.atStart(ctx, c, window) })
		}
	}
	wg.Go(func() {
		t := time.NewTimer(window)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	})
	wg.Wait()
	elapsed := time.Since(start)

	wg.Go(func() { vr.readEnd(ctx) })
	for _, j := range jobs {
		wg.Go(func() { j.atEnd(ctx, c, elapsed) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scraping %s: %w", c, err)
	}

	res := &Result{Start: start, Duration: elapsed}
	for _, j := range jobs {
		if j.err != nil {
			res.Missing = append(res.Missing, observation.Missing{Signal: observation.ProfileSignal(observation.SourcePprof, j.spec.kind), Reason: j.err.Error()})
			continue
		}
		res.Profiles = append(res.Profiles, observation.Profile{
			Kind:    j.spec.kind,
			Source:  observation.SourcePprof,
			Labels:  map[string]string{"url": c.String(), "mode": j.mode},
			Profile: j.prof,
		})
	}
	series, why := vr.series(map[string]string{"url": c.String()})
	res.Series = series
	if why != "" {
		res.Missing = append(res.Missing, observation.Missing{Signal: observation.SignalGoExpvar, Reason: why})
	}
	return res, nil
}

// kinds returns the profiles opts asks for, in the order of kinds.
func (o Options) kinds() ([]kindSpec, error) {
	if len(o.Profiles) == 0 {
		return kinds, nil
	}
	var names []string
	for _, k := range kinds {
		names = append(names, k.name)
	}
	for _, p := range o.Profiles {
		if !slices.Contains(names, p) {
			return nil, fmt.Errorf("unknown profile %q in Options.Profiles (want some of %s)", p, strings.Join(names, ", "))
		}
	}
	var out []kindSpec
	for _, k := range kinds {
		if slices.Contains(o.Profiles, k.name) {
			out = append(out, k)
		}
	}
	return out, nil
}

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
	// Timeout bounds every request beyond the profile's own seconds;
	// default 10s.
	Timeout time.Duration
	// MaxBytes caps every response body, and a gzip body's decompressed
	// size; default 64 MiB. A bigger body makes that endpoint Missing.
	MaxBytes int64
	// Client makes the requests; default a plain http.Client with a
	// transport of the Scraper's own. Its CheckRedirect still runs, after
	// goscrape's refusal of other hosts.
	Client *http.Client
	// Profiles are which of cpu, heap, allocs, goroutine, block and mutex
	// to take; default all.
	Profiles []string
	// RequestsMetric, when set, is the counter in the service's
	// Prometheus text at /metrics that counts its requests (e.g.
	// http_requests_total, or a histogram's _count), summed over its
	// label sets: its rate is the series service.requests.
	RequestsMetric string
}

// Result is what one window of scraping collected.
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
// opts.BaseURL over one window of d (see Scraper.Window): it is
// NewScraper, one Window and Close.
//
// It returns an error wrapping ErrUnreachable or ErrNotPprof when the
// target is unreachable or not net/http/pprof at all, an error for bad
// Options, and ctx's error when ctx ends first. Whatever fails after the
// probe (an endpoint off, missing, too big, too slow, not a profile) is in
// Result.Missing with the reason and the endpoint.
func Scrape(ctx context.Context, opts Options, d time.Duration) (*Result, error) {
	s, err := NewScraper(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Window(ctx, d)
}

// Scraper scrapes one Go service window after window. What a window
// reads at its end is the next window's start: the cumulative allocs,
// block and mutex profiles its deltas are taken from, and the runtime
// statistics the go.* rates and GC pauses count from; so consecutive
// windows tile the service's time, the time between two Window calls
// included. The CPU profile is each window's own, from its call for its
// duration: the time between windows is not in it. Heap and goroutine
// are snapshots at each window's end.
//
// Window calls must not overlap (a Scraper is not safe for concurrent
// use); Close releases the idle connections of the Scraper's own
// transport.
type Scraper struct {
	c    *client
	own  *http.Transport // made for this Scraper (no Options.Client), closed by Close
	jobs []*job
	vars *varsReader
	end  time.Time // the previous window's end, zero before the first
}

// NewScraper checks opts and probes the URL as Probe does, with the same
// errors as Scrape; ctx bounds the probe.
func NewScraper(ctx context.Context, opts Options) (*Scraper, error) {
	specs, err := opts.kinds()
	if err != nil {
		return nil, err
	}
	if opts.RequestsMetric != "" && !ValidMetricName(opts.RequestsMetric) {
		return nil, fmt.Errorf("requests metric %q is not a Prometheus metric name", opts.RequestsMetric)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	s := &Scraper{}
	hc := opts.Client
	if hc == nil {
		s.own = http.DefaultTransport.(*http.Transport).Clone()
		hc = &http.Client{Transport: s.own}
	}
	c, err := newClient(opts.BaseURL, hc, opts.Timeout, opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	if err := c.probe(ctx); err != nil {
		s.Close()
		return nil, err
	}
	c.requests = opts.RequestsMetric
	s.c, s.vars = c, &varsReader{c: c}
	for _, k := range specs {
		s.jobs = append(s.jobs, &job{spec: k, url: c.pprofURL(k.path)})
	}
	return s, nil
}

// Window scrapes one window of d, rounded up to whole seconds (at least
// one): the CPU profile's seconds, and the time waited before the end's
// readings. The first window starts at the call; a later one where the
// previous one ended (see Scraper). It returns ctx's error when ctx ends
// first (the next window then reads its start anew); whatever else fails
// is in Result.Missing, an unreachable service included.
func (s *Scraper) Window(ctx context.Context, d time.Duration) (*Result, error) {
	window := max(time.Second, (d + time.Second - 1).Truncate(time.Second))
	start := time.Now()
	if !s.end.IsZero() {
		start = s.end
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.vars.readStart(ctx) })
	for _, j := range s.jobs {
		wg.Go(func() { j.atStart(ctx, s.c, window) })
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
	end := time.Now()
	s.end = end

	wg.Go(func() { s.vars.readEnd(ctx) })
	for _, j := range s.jobs {
		wg.Go(func() { j.atEnd(ctx, s.c, window) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		s.forget()
		return nil, fmt.Errorf("scraping %s: %w", s.c, err)
	}
	return s.result(start, end.Sub(start)), nil
}

// forget drops what a window cut short read at its end: it may be from
// any time, so the next window reads its start anew.
func (s *Scraper) forget() {
	s.end = time.Time{}
	s.vars.last = nil
	for _, j := range s.jobs {
		j.last = nil
	}
}

// result gathers the window's profiles, series and what is missing.
func (s *Scraper) result(start time.Time, d time.Duration) *Result {
	res := &Result{Start: start, Duration: d}
	for _, j := range s.jobs {
		if j.err != nil {
			res.Missing = append(res.Missing, observation.Missing{Signal: observation.ProfileSignal(observation.SourcePprof, j.spec.kind), Reason: j.err.Error()})
			continue
		}
		res.Profiles = append(res.Profiles, observation.Profile{
			Kind:    j.spec.kind,
			Source:  observation.SourcePprof,
			Labels:  map[string]string{"url": s.c.String(), "mode": j.mode},
			Profile: j.prof,
		})
	}
	series, why := s.vars.series(map[string]string{"url": s.c.String()})
	res.Series = series
	if why != "" {
		res.Missing = append(res.Missing, observation.Missing{Signal: observation.SignalGoExpvar, Reason: why})
	}
	return res
}

// Close releases the idle connections of the Scraper's own transport. It
// is safe to call more than once.
func (s *Scraper) Close() {
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
}

// kinds returns the profiles opts asks for, in the order of kinds.
func (o Options) kinds() ([]kindSpec, error) {
	if len(o.Profiles) == 0 {
		return kinds, nil
	}
	var names []string
	for _, k := range kinds {
		names = append(names, string(k.kind))
	}
	for _, p := range o.Profiles {
		if !slices.Contains(names, p) {
			return nil, fmt.Errorf("unknown profile %q in Options.Profiles (want some of %s)", p, strings.Join(names, ", "))
		}
	}
	var out []kindSpec
	for _, k := range kinds {
		if slices.Contains(o.Profiles, string(k.kind)) {
			out = append(out, k)
		}
	}
	return out, nil
}

// ValidMetricName says whether name is a Prometheus metric name in the
// classic charset, [a-zA-Z_:][a-zA-Z0-9_:]*.
func ValidMetricName(name string) bool {
	for i, c := range name {
		switch {
		case c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

// Package api is the agent's HTTP API and web page: read-only views of
// what the store holds, per service and time range.
//
//	GET /healthz                 200 once the agent collects, 503 before
//	GET /api/v1/services         services, versions, first and last seen, latest verdict
//	GET /api/v1/profile          one merged pprof (gzip) of a service's windows
//	GET /api/v1/diagnosis        perfhound diagnose's report over a range
//	GET /api/v1/diff             perfhound compare of two versions or ranges (obsdiff)
//	GET /api/v1/regressions      the regressions found, active first, with links to their evidence
//	GET /ui/SERVICE/FROM/TO/     pprof's web UI over a service's range (agent/pprofui)
//	GET /                        the web page: services, verdicts over time, versions, regressions, links
//	    /ingest                  the Pyroscope ingest handler it is given (agent/ingest)
//	GET /metrics                 the registry it is given, with the API's own request metrics
//
// docs/agent.md ("HTTP API") is the reference. Who may call it is the caller's
// business (agent/webauth wraps the handler); what a request may cost is
// decided here: ranges at most Options.MaxRange, read and merged a chunk
// (Options.ChunkSpan) at a time with each chunk's decoded profiles within
// a profdecode.Budget of Options.QueryMemory, at most
// Options.MaxQueries such queries at once (503 past them), and at most
// Options.UICache pprof UIs kept. Unsafe cross-origin requests are refused
// (http.CrossOriginProtection).
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// Options tune the API; the zero value of each field takes its default.
type Options struct {
	// Ingest, when not nil, is served at /ingest (agent/ingest's Handler).
	Ingest http.Handler
	// Registry is served at /metrics, and the API registers its own
	// metrics in it; nil: a registry of the API's metrics alone.
	Registry *prometheus.Registry
	// Now is the clock that relative times ("-2h", "now") and default
	// ranges read; time.Now by default.
	Now func() time.Time
	// MaxRange is the longest range a request may ask for: what the store
	// keeps. Default 7 days.
	MaxRange time.Duration
	// MaxSeriesRange is the longest range a diagnosis or a diff may
	// cover: they merge every window's series and histograms, which the
	// profiles' budget does not bound (a week of a service's series is
	// hundreds of MB). Default 24 hours.
	MaxSeriesRange time.Duration
	// QueryMemory is what one query may spend decoding the stored
	// profiles of one chunk of its range (a profdecode.Budget); a query
	// reads two chunks at once. Default 256 MiB.
	QueryMemory int64
	// ChunkSpan is how much of a range a query reads and merges at a
	// time: its memory is one chunk's windows and the merge so far.
	// Default 5 minutes.
	ChunkSpan time.Duration
	// MaxQueries is how many queries that decode profiles run at once;
	// more get 503 with Retry-After. Default 2.
	MaxQueries int
	// UICache is how many pprof UIs (one per service and range, each
	// holding its merged profiles) are kept; default 4.
	UICache int
	// VersionSpan is how much of a version a diff compares: its last
	// VersionSpan of windows. Default 1 hour.
	VersionSpan time.Duration
	// Regress returns the version options the regression detector runs
	// with (the daemon's, which a reload may change): /api/v1/diff
	// compares the functions with them, so that a finding's diff gives
	// what the detector gave. nil: regress.DefaultVersionOptions().
	Regress func() regress.VersionOptions
	// PageServices is how many services the page shows, the most recently
	// seen first; default 100.
	PageServices int
	// ErrorLog receives what pprof reports while rendering a view; nil
	// discards it.
	ErrorLog io.Writer
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRange <= 0 {
		o.MaxRange = 7 * 24 * time.Hour
	}
	if o.MaxSeriesRange <= 0 {
		o.MaxSeriesRange = min(24*time.Hour, o.MaxRange)
	}
	if o.QueryMemory <= 0 {
		o.QueryMemory = 256 << 20
	}
	if o.ChunkSpan <= 0 {
		o.ChunkSpan = 5 * time.Minute
	}
	if o.MaxQueries <= 0 {
		o.MaxQueries = 2
	}
	if o.UICache <= 0 {
		o.UICache = 4
	}
	if o.VersionSpan <= 0 {
		o.VersionSpan = time.Hour
	}
	if o.PageServices <= 0 {
		o.PageServices = 100
	}
	return o
}

// Server is the API's handler. Close frees its pprof UIs.
type Server struct {
	src     Source
	opts    Options
	h       http.Handler
	queries chan struct{} // a slot per query that decodes profiles
	uis     *uiCache
	metrics *metrics
}

// New returns the API over src. It fails only when opts.Registry holds
// other metrics under the API's names.
func New(src Source, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{src: src, opts: opts, queries: make(chan struct{}, opts.MaxQueries), metrics: m}
	s.uis = newUICache(opts.UICache)
	mux := http.NewServeMux()
	route := func(pattern, name string, query bool, h http.HandlerFunc) {
		mux.Handle(pattern, m.instrument(name, query, h))
	}
	route("GET /healthz", "healthz", false, s.healthz)
	route("GET /api/v1/services", "services", true, s.services)
	route("GET /api/v1/profile", "profile", true, s.profile)
	route("GET /api/v1/diagnosis", "diagnosis", true, s.diagnosis)
	route("GET /api/v1/diff", "diff", true, s.diff)
	route("GET /api/v1/regressions", "regressions", false, s.regressions)
	// Any method: pprof's config menu saves with POST and deletes with
	// DELETE, and pprofui checks each view's method itself.
	route("/ui/{service}/{from}/{to}/{rest...}", "ui", true, s.ui)
	route("GET /ui/{service}/{from}/{to}", "ui", false, s.uiSlash)
	route("GET /flame", "flame", false, s.flame)
	route("GET /diff", "diffpage", true, s.diffPage)
	route("GET /{$}", "page", true, s.page)
	route("GET /metrics", "metrics", false, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP)
	if opts.Ingest != nil {
		route("/ingest", "ingest", false, opts.Ingest.ServeHTTP)
	}
	route("/", "other", false, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.h = http.NewCrossOriginProtection().Handler(mux)
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// Close frees the pprof UIs kept.
func (s *Server) Close() error { return s.uis.close() }

// metrics are the API's own: requests by handler and status, and how
// long queries take.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_http_requests_total",
			Help: "HTTP requests to the agent's API, by handler and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "perfhound_agent_query_duration_seconds",
			Help:    "Time to answer the agent's queries (services, profiles, diagnoses, diffs, the pprof UI, the page), by handler.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"handler"}),
	}
	// A second API on the same registry (the daemon's reload) shares the
	// first one's metrics.
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("registering the API's metrics: %w", err)
	}
	return c, nil
}

func (m *metrics) instrument(name string, query bool, h http.Handler) http.Handler {
	h = promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(prometheus.Labels{"handler": name}), h)
	if query {
		h = promhttp.InstrumentHandlerDuration(m.duration.MustCurryWith(prometheus.Labels{"handler": name}), h)
	}
	return h
}

// Errors other than a bad parameter, with their status.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &statusError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

var errBusy = &statusError{http.StatusServiceUnavailable, "busy: as many queries as the agent runs at once are running; retry"}

// writeError answers {"error": "...", "parameter": NAME} with the
// status the error calls for.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	body := struct {
		Error     string `json:"error"`
		Parameter string `json:"parameter,omitempty"`
	}{Error: err.Error()}
	var pe *paramError
	var se *statusError
	switch {
	case errors.As(err, &pe):
		status, body.Parameter = http.StatusBadRequest, pe.Param
	case errors.As(err, &se):
		status = se.status
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, "{\"error\": %q}\n", "encoding the answer: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// write sends a rendered body.
func write(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(body)
}

// acquire takes a query slot, or says the agent is busy.
func (s *Server) acquire() (release func(), err error) {
	select {
	case s.queries <- struct{}{}:
		return func() { <-s.queries }, nil
	default:
		return nil, errBusy
	}
}

// Package ingest receives profiles pushed by applications instrumented
// with the Pyroscope SDKs (github.com/grafana/pyroscope-go and its
// siblings) on Pyroscope's own wire protocol, so that an application
// already set up for Pyroscope can point its ServerAddress at perfhound.
//
// The protocol, as the SDK speaks it (pyroscope-go upstream/remote):
//
//	POST /ingest?name=APP{k=v,...}&from=T&until=T&spyName=gospy&sampleRate=100&units=samples&aggregationType=sum
//	Content-Type: multipart/form-data
//	  part "profile":            a pprof profile, gzipped or not
//	  part "sample_type_config": optional JSON, sample type → {units, aggregation, display-name, cumulative}
//
// A raw pprof body (format=pprof, or no format) is accepted too. Other
// formats of the old protocol (trie, tree, lines, jfr) are refused with 415.
// Times are Unix seconds, milliseconds, microseconds or nanoseconds, told
// apart by magnitude as Pyroscope does.
package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/input"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// Push is one accepted upload.
type Push struct {
	App             string
	Labels          map[string]string
	From, Until     time.Time
	SpyName         string
	SampleRate      int
	Units           string
	AggregationType string
	Profile         observation.Profile
	// Bytes is the profile's size as received, what the Receiver's
	// memory budget counts.
	Bytes int
}

// Options configure the handler.
type Options struct {
	// MaxBodyBytes caps a request body; default 16 MiB. Pyroscope's own
	// distributor defaults to a few MiB per profile.
	MaxBodyBytes int64
	// MaxProfileBytes caps a profile once decompressed; default 64 MiB.
	MaxProfileBytes int64
	// MaxConcurrent bounds the requests handled at once; more get 503
	// with Retry-After, which the SDKs honour by retrying. Default 8:
	// with the caps above, at most about 650 MiB in flight.
	MaxConcurrent int
	// Sink receives every accepted push. An error from it is a 503.
	Sink func(Push) error
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.MaxProfileBytes == 0 {
		o.MaxProfileBytes = 64 << 20
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 8
	}
	return o
}

// Handler serves POST /ingest.
type Handler struct {
	opts  Options
	slots chan struct{} // one per request being handled
}

// NewHandler returns the /ingest handler.
func NewHandler(opts Options) *Handler {
	opts = opts.withDefaults()
	return &Handler{opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
}

// requestError is a client mistake: a 4xx with a reason.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "ingest: only POST", http.StatusMethodNotAllowed)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("ingest: busy: %d requests already in progress", h.opts.MaxConcurrent), http.StatusServiceUnavailable)
		return
	}
	push, err := h.parse(w, r)
	if err == nil && h.opts.Sink != nil {
		if err = h.opts.Sink(push); err != nil {
			http.Error(w, "ingest: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			http.Error(w, "ingest: "+re.msg, re.status)
			return
		}
		http.Error(w, "ingest: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) parse(w http.ResponseWriter, r *http.Request) (Push, error) {
	q := r.URL.Query()
	var p Push
	var err error
	if p.App, p.Labels, err = ParseName(q.Get("name")); err != nil {
		return p, badRequest("name: %v", err)
	}
	if p.From, err = parseTime(q.Get("from")); err != nil {
		return p, badRequest("from: %v", err)
	}
	if p.Until, err = parseTime(q.Get("until")); err != nil {
		return p, badRequest("until: %v", err)
	}
	if !p.From.IsZero() && !p.Until.IsZero() && p.Until.Before(p.From) {
		return p, badRequest("until %s is before from %s", p.Until.Format(time.RFC3339), p.From.Format(time.RFC3339))
	}
	if sr := q.Get("sampleRate"); sr != "" {
		if p.SampleRate, err = strconv.Atoi(sr); err != nil || p.SampleRate < 0 {
			return p, badRequest("sampleRate %q is not a rate", sr)
		}
	}
	p.SpyName, p.Units, p.AggregationType = q.Get("spyName"), q.Get("units"), q.Get("aggregationType")
	if f := q.Get("format"); f != "" && f != "pprof" {
		return p, &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("format %q: only pprof is accepted", f)}
	}

	body := http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	raw, config, err := h.readBody(r, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return p, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", h.opts.MaxBodyBytes)}
		}
		return p, err
	}
	prof, err := h.parseProfile(raw)
	if err != nil {
		return p, err
	}
	kind := kindOf(prof, config, p.App)
	p.Profile = observation.Profile{
		Kind:    kind,
		Source:  "ingest",
		Labels:  p.Labels,
		Profile: prof,
	}
	p.Bytes = len(raw)
	p.App = trimKindSuffix(p.App, kind)
	return p, nil
}

// sampleTypeConfig is the SDK's description of each sample type.
type sampleTypeConfig map[string]struct {
	Units       string `json:"units"`
	Aggregation string `json:"aggregation"`
	DisplayName string `json:"display-name"`
	Sampled     bool   `json:"sampled"`
	Cumulative  bool   `json:"cumulative"`
}

// readBody returns the profile bytes and the optional sample type config.
func (h *Handler) readBody(r *http.Request, body io.Reader) ([]byte, sampleTypeConfig, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	if mt != "multipart/form-data" {
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, nil, err
		}
		if len(b) == 0 {
			return nil, nil, badRequest("empty body")
		}
		return b, nil, nil
	}
	if params["boundary"] == "" {
		return nil, nil, badRequest("multipart body without a boundary")
	}
	mr := multipart.NewReader(body, params["boundary"])
	var (
		prof   []byte
		config sampleTypeConfig
	)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, err
			}
			return nil, nil, badRequest("multipart body: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, err
			}
			return nil, nil, badRequest("part %q: %v", part.FormName(), err)
		}
		switch part.FormName() {
		case "profile":
			prof = b
		case "sample_type_config":
			if err := json.Unmarshal(b, &config); err != nil {
				return nil, nil, badRequest("sample_type_config: %v", err)
			}
		case "prev_profile":
			// Deprecated by the SDKs (cumulative profiles); ignored.
		default:
			return nil, nil, badRequest("unexpected part %q (want profile, sample_type_config)", part.FormName())
		}
	}
	if prof == nil {
		return nil, nil, badRequest("no \"profile\" part")
	}
	return prof, config, nil
}

// parseProfile decompresses once, within a cap (a gzip bomb, nested or
// not, must not take the agent down), and parses.
func (h *Handler) parseProfile(b []byte) (*profile.Profile, error) {
	p, err := input.DecodeProfile(b, h.opts.MaxProfileBytes)
	if errors.Is(err, input.ErrTooLarge) {
		return nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("profile over %d bytes decompressed", h.opts.MaxProfileBytes)}
	}
	if err != nil {
		return nil, badRequest("profile: %v", err)
	}
	if len(p.Sample) == 0 && len(p.SampleType) == 0 {
		return nil, badRequest("profile: no sample types")
	}
	return p, nil
}

// kindOf tells what a pushed profile measures, from its sample types, the
// SDK's sample type config, and the old protocol's ".cpu"-style suffix.
func kindOf(p *profile.Profile, config sampleTypeConfig, name string) string {
	has := func(t string) bool {
		for _, st := range p.SampleType {
			if st.Type == t {
				return true
			}
		}
		return false
	}
	display := func(prefix string) bool {
		for _, c := range config {
			if strings.HasPrefix(c.DisplayName, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case has("cpu"):
		return observation.KindCPU
	case has("inuse_space") || has("inuse_objects"):
		return observation.KindHeap
	case has("alloc_space") || has("alloc_objects"):
		return observation.KindAllocs
	case has("goroutine") || has("goroutines"):
		return observation.KindGoroutine
	case display("mutex") || strings.HasSuffix(name, ".mutex_count") || strings.HasSuffix(name, ".mutex_duration"):
		return observation.KindMutex
	case display("block") || strings.HasSuffix(name, ".block_count") || strings.HasSuffix(name, ".block_duration"):
		return observation.KindBlock
	case has("contentions") || has("delay"):
		// Go's mutex and block profiles have the same sample and period
		// types; only the SDK's config or the old name suffix tells them
		// apart, and without either we do not guess.
		return observation.KindContention
	}
	if len(p.SampleType) > 0 {
		return p.SampleType[len(p.SampleType)-1].Type
	}
	return "unknown"
}

// kindSuffixes are the ".cpu"-style suffixes the old protocol put on
// application names, with the kind each one names.
var kindSuffixes = map[string]string{
	".cpu":           observation.KindCPU,
	".alloc_objects": observation.KindHeap, ".alloc_space": observation.KindHeap,
	".inuse_objects": observation.KindHeap, ".inuse_space": observation.KindHeap,
	".goroutines":  observation.KindGoroutine,
	".mutex_count": observation.KindMutex, ".mutex_duration": observation.KindMutex,
	".block_count": observation.KindBlock, ".block_duration": observation.KindBlock,
}

// trimKindSuffix drops an old-protocol suffix from an application name,
// only when it names the kind the profile has: an application called
// "billing.cpu" pushing heap profiles keeps its name.
func trimKindSuffix(app, kind string) string {
	for suffix, k := range kindSuffixes {
		if t, ok := strings.CutSuffix(app, suffix); ok && t != "" && (k == kind || kind == observation.KindAllocs && k == observation.KindHeap) {
			return t
		}
	}
	return app
}

// parseTime reads a Unix time in s, ms, µs or ns, told apart by magnitude
// (as Pyroscope's attime does); "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%q is not a Unix time", s)
	}
	switch {
	case n > 1e17:
		return time.Unix(0, n).UTC(), nil
	case n > 1e14:
		return time.UnixMicro(n).UTC(), nil
	case n > 1e11:
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Unix(n, 0).UTC(), nil
}

// Server returns an http.Server for addr serving the handler at /ingest,
// with timeouts so that a slow or stalled client cannot hold a connection:
// the headers within 10 s, the whole request within 60 s.
func (h *Handler) Server(addr string) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/ingest", h)
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// Counted from the end of the headers, like ReadTimeout: longer,
		// so that a request read in full can always be answered (an
		// unanswered SDK retries, and the profile would arrive twice).
		WriteTimeout:   75 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
	}
}

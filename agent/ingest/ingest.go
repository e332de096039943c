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
//
// The handler is meant to face hostile clients: every request is bounded
// in time (a minimum transfer rate), in slots (per client), in the size of
// its profile (bytes, samples, locations, parsed memory: profdecode) and
// in the memory it holds while handled, which is charged to the same
// budget as the profiles a Receiver keeps. Serve it with Handler.Server,
// whose timeouts the handler checks for.
package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
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
	// Cost is what the parsed profile holds, as profdecode counts it.
	// Cost.Memory() stays charged to the handler's Budget while the
	// profile is kept (see Options.Budget).
	Cost profdecode.Cost
	// Client is the IP address the push came from.
	Client string
}

// PushLimits bound one pushed profile, once decompressed. They are
// Pyroscope's defaults made roomier (its distributor takes 4 MiB and
// 16,000 samples): an SDK's 10 to 15 s profiles are tens of KB.
var PushLimits = profdecode.Limits{
	MaxBytes:     16 << 20,
	MaxSamples:   64 << 10,
	MaxLocations: 64 << 10,
	MaxMemory:    64 << 20,
}

// Options configure the handler. Zero fields take the defaults given.
type Options struct {
	// MaxBodyBytes caps a request body; default 16 MiB.
	MaxBodyBytes int64
	// Limits bound each pushed profile; zero fields take PushLimits'.
	Limits profdecode.Limits
	// MaxConcurrent bounds the requests handled at once (default 8), and
	// MaxPerClient those of one client, an application at one address
	// (default half of MaxConcurrent). A request finding no slot waits
	// up to SlotWait (default 10 s), then gets 503; a client with
	// MaxConcurrent requests already pending gets 429.
	MaxConcurrent, MaxPerClient int
	SlotWait                    time.Duration
	// A body must start arriving within ReadGrace (default 5 s) of the
	// request getting its slot, then keep up MinRate bytes a second on
	// average (default 16 KiB/s), and arrive whole within MaxReadTime
	// (default 60 s); a slower one is cut off with 408. With ReadGrace
	// under SlotWait, a push waiting behind clients that trickle gets the
	// first slot they lose.
	MinRate                int64
	ReadGrace, MaxReadTime time.Duration
	// Budget is charged for what each request holds while it is handled
	// (its body, the decompressed profile) and for each parsed profile
	// (Push.Cost.Memory()), and refuses a request it cannot hold (503).
	// When Sink accepts a push (returns nil), the profile's charge passes
	// to the Sink, which refunds it when it drops the profile; when Sink
	// refuses, the handler refunds it. Nil: a budget of the handler's own
	// (DefaultMemory) bounds requests in flight, and each push's charge is
	// refunded once Sink returns. Receiver.Handler shares the
	// receiver's budget.
	Budget *profdecode.Budget
	// MakeRoom, when the budget cannot hold a push's profile, may make
	// need bytes of room by dropping profiles it holds, and charge them
	// to the budget for the push in the same step (so that no other
	// request takes the room); it reports whether it did, and then the
	// handler parses the profile without charging it again.
	MakeRoom func(p *Push, need int64) bool
	// Sink receives every accepted push. An error from it refuses the
	// push: its status when it is a *StatusError, else 503.
	Sink func(Push) error
}

// DefaultMemory is the default of a handler's or a Receiver's budget.
const DefaultMemory = 256 << 20

func (o Options) withDefaults() Options {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxBodyBytes, 16<<20)
	def(&o.MinRate, 16<<10)
	defDur(&o.SlotWait, 10*time.Second)
	defDur(&o.ReadGrace, 5*time.Second)
	defDur(&o.MaxReadTime, 60*time.Second)
	l := &o.Limits
	def(&l.MaxBytes, PushLimits.MaxBytes)
	def(&l.MaxMemory, PushLimits.MaxMemory)
	if l.MaxSamples <= 0 {
		l.MaxSamples = PushLimits.MaxSamples
	}
	if l.MaxLocations <= 0 {
		l.MaxLocations = PushLimits.MaxLocations
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 8
	}
	if o.MaxPerClient <= 0 {
		o.MaxPerClient = max(1, o.MaxConcurrent/2)
	}
	return o
}

// Handler serves POST /ingest.
type Handler struct {
	opts Options
	gate *gate
	// keeps tells whether the Sink keeps the charge of what it accepts.
	keeps bool
}

// NewHandler returns the /ingest handler.
func NewHandler(opts Options) *Handler {
	opts = opts.withDefaults()
	keeps := opts.Budget != nil
	if !keeps {
		opts.Budget = profdecode.NewBudget(DefaultMemory)
	}
	return &Handler{opts: opts, gate: newGate(opts.MaxConcurrent, opts.MaxPerClient), keeps: keeps}
}

// StatusError is a refusal with its HTTP status: a Sink's, or the
// handler's own.
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &StatusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// The statuses the handler answers with, each with the refusals it means.
// The fuzz test holds every answer to this list.
var statuses = map[int]string{
	http.StatusOK:                    "accepted",
	http.StatusBadRequest:            "a malformed request: name, times, body, profile",
	http.StatusMethodNotAllowed:      "not POST",
	http.StatusRequestTimeout:        "a body slower than the minimum rate",
	http.StatusRequestEntityTooLarge: "a body or profile over a limit",
	http.StatusUnsupportedMediaType:  "a format other than pprof",
	http.StatusTooManyRequests:       "a client over its share: slots, or new targets",
	http.StatusInternalServerError:   "a server without the timeouts the handler needs",
	http.StatusServiceUnavailable:    "busy, or the memory budget is full",
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, msg := h.serve(w, r)
	if status == http.StatusOK {
		w.WriteHeader(status)
		return
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	// The body may be unread: net/http would read what is left of it
	// before answering, at the client's pace and under no deadline.
	w.Header().Set("Connection", "close")
	http.Error(w, "ingest: "+msg, status)
}

// serve handles a request and returns the answer's status and reason.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return http.StatusMethodNotAllowed, "only POST"
	}
	if err := checkServer(r); err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	push, err := parseQuery(r)
	if err != nil {
		return statusOf(err)
	}
	push.Client = remoteIP(r)
	release, err := h.gate.acquire(r.Context(), clientOf(r, push.App), h.opts.SlotWait)
	if err != nil {
		return statusOf(err)
	}
	defer release()
	l := &ledger{b: h.opts.Budget}
	defer l.close()

	if err := h.readProfile(w, r, &push, l); err != nil {
		return statusOf(err)
	}
	if h.opts.Sink == nil {
		h.opts.Budget.Refund(push.Cost.Memory())
		return http.StatusOK, ""
	}
	if err := h.opts.Sink(push); err != nil {
		h.opts.Budget.Refund(push.Cost.Memory())
		return statusOf(err)
	}
	if !h.keeps {
		h.opts.Budget.Refund(push.Cost.Memory())
	}
	return http.StatusOK, ""
}

// statusOf maps an error to its answer.
func statusOf(err error) (int, string) {
	var se *StatusError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return se.Status, se.Msg
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", mbe.Limit)
	case errors.Is(err, errTooSlow):
		return http.StatusRequestTimeout, err.Error()
	case errors.Is(err, profdecode.ErrOverBudget):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, profdecode.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, err.Error()
	}
	return http.StatusServiceUnavailable, err.Error()
}

// parseQuery reads everything but the profile from the query.
func parseQuery(r *http.Request) (Push, error) {
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
			return p, badRequest("sampleRate %s is not a rate", short(sr))
		}
	}
	p.SpyName, p.Units, p.AggregationType = q.Get("spyName"), q.Get("units"), q.Get("aggregationType")
	if f := q.Get("format"); f != "" && f != "pprof" {
		return p, &StatusError{http.StatusUnsupportedMediaType, fmt.Sprintf("format %s: only pprof is accepted", short(f))}
	}
	return p, nil
}

// readProfile reads the body at the minimum rate, decompresses and
// parses its profile within the limits and the budget, and completes p.
func (h *Handler) readProfile(w http.ResponseWriter, r *http.Request, p *Push, l *ledger) error {
	if r.ContentLength > h.opts.MaxBodyBytes {
		return &http.MaxBytesError{Limit: h.opts.MaxBodyBytes}
	}
	rr := newRateReader(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes), w, h.opts)
	body, err := readAll(rr, r.ContentLength, l)
	if err != nil {
		return err
	}
	rr.done()
	raw, config, err := splitBody(r.Header.Get("Content-Type"), body, l)
	if err != nil {
		return err
	}
	if profdecode.IsGzip(raw) {
		if raw, err = gunzip(raw, h.opts.Limits.MaxBytes, l); err != nil {
			return profileError(err)
		}
	}
	prof, cost, err := profdecode.Decode(raw, h.opts.Limits, h.opts.Budget)
	if errors.Is(err, profdecode.ErrOverBudget) && h.opts.MakeRoom != nil && h.opts.MakeRoom(p, cost.Memory()) {
		// The room is charged already: parse without charging again.
		prof, cost, err = profdecode.Decode(raw, h.opts.Limits, nil)
		if err != nil {
			h.opts.Budget.Refund(cost.Memory())
		}
	}
	if err != nil {
		return profileError(err)
	}
	if len(prof.Sample) == 0 && len(prof.SampleType) == 0 {
		h.opts.Budget.Refund(cost.Memory())
		return badRequest("profile: no sample types")
	}
	kind := kindOf(prof, config, p.App)
	p.Profile = observation.Profile{Kind: kind, Source: observation.SourceIngest, Labels: p.Labels, Profile: prof}
	p.Cost = cost
	p.App = trimKindSuffix(p.App, kind)
	return nil
}

// profileError says what was wrong with a profile, keeping the sentinels
// that choose the status.
func profileError(err error) error {
	if errors.Is(err, profdecode.ErrTooLarge) || errors.Is(err, profdecode.ErrOverBudget) {
		return fmt.Errorf("profile: %w", err)
	}
	return badRequest("profile: %v", err)
}

// parseTime reads a Unix time in s, ms, µs or ns, told apart by magnitude
// (as Pyroscope's attime does); "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%s is not a Unix time", short(s))
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

// active is how many requests hold a slot.
func (h *Handler) active() int { return h.gate.inUse() }

// Package pyroscope is a forward.Sink that pushes windows to Grafana
// Pyroscope's push.v1 API with its official Connect client
// (github.com/grafana/pyroscope/api), over the Connect protocol, gRPC or
// gRPC-Web. Each window is one push (more when it is over the server's
// request size): a series per profile, labelled as Pyroscope's own
// collectors label theirs, each profile split into several when it is
// over the server's limits.
package pyroscope

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// Protocols a sink speaks (forward.SinkConfig.Protocol).
const (
	ProtocolConnect = "connect" // the default: HTTP/1.1 or 2, protobuf bodies
	ProtocolGRPC    = "grpc"    // HTTP/2 (h2c for http:// URLs)
	ProtocolGRPCWeb = "grpcweb"
)

// Protocols lists the protocols, the default first.
var Protocols = []string{ProtocolConnect, ProtocolGRPC, ProtocolGRPCWeb}

// Label names the sink sets.
const (
	LabelName     = "__name__"
	LabelDelta    = "__delta__"
	LabelService  = "service_name"
	LabelVersion  = "service_version"
	LabelHost     = "host"
	agentVersion  = "version" // the agent's own name of the version label
	tenantHeader  = "X-Scope-OrgID"
	authorization = "Authorization"
)

// Limits are the server's per-tenant validation limits the sink keeps
// to, so that a window is never refused for its size (Pyroscope's
// defaults, pkg/validation/limits.go).
type Limits struct {
	// MaxLabels is the most labels a series has, __name__ included.
	MaxLabels int
	// MaxNameLength and MaxValueLength bound a label's name and value.
	MaxNameLength, MaxValueLength int
	// MaxProfileBytes bounds a profile's uncompressed size, MaxSamples
	// its samples: a profile over either is split into several.
	MaxProfileBytes int
	MaxSamples      int
	// MaxRequestBytes bounds a push's profiles, compressed: a window
	// over it goes in several pushes. Under the server's ingestion burst
	// (2 MB by default), so that no push is refused for its size.
	MaxRequestBytes int
}

// DefaultLimits are Pyroscope's defaults.
var DefaultLimits = Limits{
	MaxLabels: 30, MaxNameLength: 1024, MaxValueLength: 2048,
	MaxProfileBytes: 4 << 20, MaxSamples: 16000, MaxRequestBytes: 1 << 20,
}

// Names are the __name__ of each profile kind: those of Pyroscope's own
// collectors (the Go SDK, Alloy's pyroscope.scrape and pyroscope.ebpf),
// so that the agent's profiles sit in the same profile types as theirs.
// Page faults and contention of no known kind have no such name.
var Names = map[observation.ProfileKind]string{
	observation.KindCPU:        "process_cpu",
	observation.KindOffCPU:     "off_cpu",
	observation.KindHeap:       "memory",
	observation.KindAllocs:     "memory",
	observation.KindGoroutine:  "goroutines",
	observation.KindBlock:      "block",
	observation.KindMutex:      "mutex",
	observation.KindPageFaults: "page_faults",
	observation.KindContention: "contention",
}

// Sink pushes windows to one Pyroscope.
type Sink struct {
	client pushv1connect.PusherServiceClient
	limits Limits

	// The pushes of the last window a Send did not finish: a retry of the
	// same window sends only those the server has not acknowledged.
	mu     sync.Mutex
	resume string
	acked  int

	// BytesSent counts the compressed profile bytes acknowledged (for
	// sizing: docs/fleet.md).
	bytesSent int64
}

// Options are what New needs beyond the sink's config.
type Options struct {
	Limits Limits // zero: DefaultLimits
	// HTTPClient replaces the one made from the config (tests).
	HTTPClient connect.HTTPClient
}

// New makes a sink from c: its URL, protocol, tenant and auth (the
// secret files read now).
func New(c forward.SinkConfig, o Options) (*Sink, error) {
	proto := cmp.Or(c.Protocol, ProtocolConnect)
	var opts []connect.ClientOption
	switch proto {
	case ProtocolConnect:
	case ProtocolGRPC:
		opts = append(opts, connect.WithGRPC())
	case ProtocolGRPCWeb:
		opts = append(opts, connect.WithGRPCWeb())
	default:
		return nil, fmt.Errorf("sink %s: protocol %q is none of %s", c.Name, c.Protocol, strings.Join(Protocols, ", "))
	}
	hc := o.HTTPClient
	if hc == nil {
		cl, err := c.HTTPClient(proto == ProtocolGRPC)
		if err != nil {
			return nil, err
		}
		hc = cl
	}
	auth, err := c.AuthHeader()
	if err != nil {
		return nil, err
	}
	tenant := c.Tenant
	opts = append(opts, connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if tenant != "" {
				req.Header().Set(tenantHeader, tenant)
			}
			if auth != "" {
				req.Header().Set(authorization, auth)
			}
			return next(ctx, req)
		}
	})))
	limits := o.Limits
	if limits == (Limits{}) {
		limits = DefaultLimits
	}
	return &Sink{client: pushv1connect.NewPusherServiceClient(hc, c.URL, opts...), limits: limits}, nil
}

// BytesSent is the compressed profile bytes the server acknowledged.
func (s *Sink) BytesSent() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytesSent
}

// Send pushes w: nil once every push of it is acknowledged.
func (s *Sink) Send(ctx context.Context, w forward.Window) error {
	reqs, err := s.requests(w)
	if err != nil {
		return forward.Refused("unencodable", err)
	}
	key := fmt.Sprintf("%s\x00%s\x00%d", w.Service, w.Version, w.Start.UnixNano())
	s.mu.Lock()
	skip := 0
	if s.resume == key {
		skip = min(s.acked, len(reqs))
	}
	s.resume, s.acked = key, skip
	s.mu.Unlock()
	for _, r := range reqs[skip:] {
		if _, err := s.client.Push(ctx, connect.NewRequest(r.req)); err != nil {
			return classify(err)
		}
		s.mu.Lock()
		s.acked++
		s.bytesSent += int64(r.bytes)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.resume, s.acked = "", 0
	s.mu.Unlock()
	return nil
}

// classify maps a Connect error onto the forward contract: the server
// refused the data (retrying cannot help) or could not take it now.
// Authentication and a wrong URL are retried: a fixed token or config
// (a reload) sends what waited, where dropping would lose it.
func classify(err error) error {
	code := connect.CodeOf(err)
	switch code {
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange, connect.CodeAlreadyExists:
		return forward.Refused(code.String(), err)
	}
	return fmt.Errorf("%w: %w", forward.ErrUnavailable, err)
}

type request struct {
	req   *pushv1.PushRequest
	bytes int
}

// requests is w as pushes: a series per profile (split over the limits),
// packed into pushes of at most MaxRequestBytes of profiles each (one
// series alone may be over it: it goes alone).
func (s *Sink) requests(w forward.Window) ([]request, error) {
	var out []request
	cur := request{req: &pushv1.PushRequest{}}
	for _, p := range w.Profiles {
		labels := s.labels(w, p.Kind)
		// Stamped with the window's span: the server files a profile, and
		// holds it to its ingestion window, by its time.
		q := shallow(p.Profile)
		q.TimeNanos, q.DurationNanos = w.Start.UnixNano(), int64(w.End.Sub(w.Start))
		parts, err := split(q, s.limits)
		if err != nil {
			return nil, fmt.Errorf("%s profile of %s: %w", p.Kind, w.Service, err)
		}
		for _, raw := range parts {
			if cur.bytes > 0 && cur.bytes+len(raw) > s.limits.MaxRequestBytes {
				out = append(out, cur)
				cur = request{req: &pushv1.PushRequest{}}
			}
			cur.req.Series = append(cur.req.Series, &pushv1.RawProfileSeries{
				Labels:  labels,
				Samples: []*pushv1.RawSample{{RawProfile: raw, ID: newUUID()}},
			})
			cur.bytes += len(raw)
		}
	}
	if len(cur.req.Series) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// labels are a series' labels by Pyroscope's conventions: __name__ from
// the kind, service_name, service_version (the agent's version label's
// value: the name Pyroscope's Go SDK and Grafana's source links read, as
// OpenTelemetry's service.version becomes), host, __delta__="false" (the
// agent's profiles are already a window's delta: the server's own delta
// of cumulative profiles would subtract windows pushed out of order
// after an outage), then the window's labels. Names are sanitized to
// Prometheus' (dots become _), values cut to the limits; past
// MaxLabels, the window's labels are kept in name order.
func (s *Sink) labels(w forward.Window, kind observation.ProfileKind) []*typesv1.LabelPair {
	fixed := map[string]string{
		LabelName:    cmp.Or(Names[kind], sanitize(string(kind))),
		LabelDelta:   "false",
		LabelService: w.Service,
		LabelVersion: w.Version,
	}
	if w.Host != "" {
		fixed[LabelHost] = w.Host
	}
	out := make([]*typesv1.LabelPair, 0, len(fixed)+len(w.Labels))
	for _, k := range slices.Sorted(maps.Keys(fixed)) {
		v := fixed[k]
		if !strings.HasPrefix(k, "__") { // the sink's own: short
			v = truncate(v, s.limits.MaxValueLength)
		}
		out = append(out, &typesv1.LabelPair{Name: k, Value: v})
	}
	seen := map[string]bool{}
	for k := range fixed {
		seen[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(w.Labels)) {
		name := sanitize(k)
		v := w.Labels[k]
		switch {
		case len(out) >= s.limits.MaxLabels:
			continue
		case name == "" || len(name) > s.limits.MaxNameLength || strings.HasPrefix(name, "__") || seen[name] || v == "":
			continue
		case k == agentVersion || k == LabelService:
			continue // service_version and service_name say it
		}
		seen[name] = true
		out = append(out, &typesv1.LabelPair{Name: name, Value: truncate(v, s.limits.MaxValueLength)})
	}
	slices.SortFunc(out, func(a, b *typesv1.LabelPair) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// sanitize makes a label name Prometheus' [a-zA-Z_][a-zA-Z0-9_]*.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// truncate cuts v to at most n bytes, on a character's boundary.
func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	v = v[:n]
	for len(v) > 0 && !utf8.ValidString(v) {
		v = v[:len(v)-1]
	}
	return v
}

// split is p as gzipped pprof, in as many profiles as its samples need
// to keep each within MaxSamples and MaxProfileBytes uncompressed: the
// samples in halves until each part fits, each part with only the
// locations, functions and mappings it uses.
func split(p *profile.Profile, l Limits) ([][]byte, error) {
	if len(p.Sample) <= l.MaxSamples {
		size, err := uncompressedSize(p)
		if err != nil {
			return nil, err
		}
		if size <= l.MaxProfileBytes {
			var buf bytes.Buffer
			if err := p.Write(&buf); err != nil {
				return nil, err
			}
			return [][]byte{buf.Bytes()}, nil
		}
		if len(p.Sample) == 1 {
			return nil, fmt.Errorf("one sample is %d bytes, over the server's %d", size, l.MaxProfileBytes)
		}
	}
	half := len(p.Sample) / 2
	a, err := split(observation.Prune(p, p.Sample[:half]), l)
	if err != nil {
		return nil, err
	}
	b, err := split(observation.Prune(p, p.Sample[half:]), l)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// shallow is a copy of p sharing its samples, locations and the rest
// (profile.Profile holds a lock: a struct copy would copy it).
func shallow(p *profile.Profile) *profile.Profile {
	return &profile.Profile{
		SampleType: p.SampleType, DefaultSampleType: p.DefaultSampleType, Sample: p.Sample,
		Mapping: p.Mapping, Location: p.Location, Function: p.Function, Comments: p.Comments, DocURL: p.DocURL,
		DropFrames: p.DropFrames, KeepFrames: p.KeepFrames, TimeNanos: p.TimeNanos, DurationNanos: p.DurationNanos,
		PeriodType: p.PeriodType, Period: p.Period,
	}
}

func uncompressedSize(p *profile.Profile) (int, error) {
	var n countWriter
	err := p.WriteUncompressed(&n)
	return int(n), err
}

type countWriter int

func (c *countWriter) Write(b []byte) (int, error) { *c += countWriter(len(b)); return len(b), nil }

var _ io.Writer = (*countWriter)(nil)

// newUUID is a random (version 4) UUID: RawSample.ID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

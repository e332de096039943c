// Package otlp forwards the agent's windows to an OpenTelemetry
// Collector as OTLP profiles (v1development), over gRPC or HTTP.
package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"

	"github.com/perfhound/perfhound/agent/forward"
)

// Protocol is how profiles travel to the Collector.
type Protocol string

const (
	ProtocolGRPC Protocol = "grpc" // the Collector's otlp receiver, grpc (default port 4317)
	ProtocolHTTP Protocol = "http" // the Collector's otlp receiver, http (default port 4318)
)

// HTTPPath is where the Collector's otlp receiver takes profiles over
// HTTP; an HTTP endpoint without a path gets it.
const HTTPPath = "/v1development/profiles"

// DefaultTimeout bounds one export when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Options says where and how to send. The agent's config fills it.
type Options struct {
	// Endpoint is host:port for gRPC; for HTTP a URL
	// (http://collector:4318, or with a path of its own) or host:port.
	Endpoint string
	Protocol Protocol
	// Headers go with every export (e.g. an authorization token).
	Headers map[string]string
	// Insecure sends in plain text; otherwise TLS with TLS (nil: the
	// system's roots).
	Insecure bool
	TLS      *tls.Config
	// Compression is "gzip" (the default when empty) or "none".
	Compression string
	// Timeout bounds one export (DefaultTimeout when zero).
	Timeout time.Duration
	// MaxRequestBytes: a window whose request is larger (uncompressed)
	// goes as one request per profile (DefaultMaxRequestBytes when zero).
	MaxRequestBytes int
}

// DefaultMaxRequestBytes keeps a request under the 4 MiB a Collector's
// gRPC receiver takes by default (max_recv_msg_size_mib), which it
// checks after decompressing; its HTTP receiver takes 20 MiB.
const DefaultMaxRequestBytes = 4<<20 - 64<<10

// Sink sends windows to one Collector. It implements forward.Sink.
type Sink struct {
	opts Options
	gzip bool

	conn   *grpc.ClientConn
	client pprofileotlp.GRPCClient

	url  string
	http *http.Client
}

var _ forward.Sink = (*Sink)(nil)

// New checks opts and prepares the connection; nothing is dialled
// before the first Send.
func New(opts Options) (*Sink, error) {
	if opts.Endpoint == "" {
		return nil, errors.New("otlp sink: no endpoint")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	s := &Sink{opts: opts}
	switch opts.Compression {
	case "", "gzip":
		s.gzip = true
	case "none":
	default:
		return nil, fmt.Errorf("otlp sink %s: compression %q: want gzip or none", opts.Endpoint, opts.Compression)
	}
	switch opts.Protocol {
	case ProtocolGRPC, "":
		s.opts.Protocol = ProtocolGRPC
		creds := insecure.NewCredentials()
		if !opts.Insecure {
			creds = credentials.NewTLS(opts.TLS)
		}
		conn, err := grpc.NewClient(grpcTarget(opts.Endpoint), grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("otlp sink %s: %w", opts.Endpoint, err)
		}
		s.conn, s.client = conn, pprofileotlp.NewGRPCClient(conn)
	case ProtocolHTTP:
		u, err := httpURL(opts.Endpoint, opts.Insecure)
		if err != nil {
			return nil, fmt.Errorf("otlp sink %s: %w", opts.Endpoint, err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = opts.TLS
		s.url, s.http = u, &http.Client{Transport: tr}
	default:
		return nil, fmt.Errorf("otlp sink %s: protocol %q: want grpc or http", opts.Endpoint, opts.Protocol)
	}
	return s, nil
}

// grpcTarget accepts the Collector exporter's habit of writing a gRPC
// endpoint as a URL.
func grpcTarget(endpoint string) string {
	for _, p := range []string{"http://", "https://"} {
		if strings.HasPrefix(endpoint, p) {
			return strings.TrimSuffix(strings.TrimPrefix(endpoint, p), "/")
		}
	}
	return endpoint
}

func httpURL(endpoint string, insecure bool) (string, error) {
	if !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if insecure {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("want an http(s) URL or host:port")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = HTTPPath
	}
	return u.String(), nil
}

// Close releases the connection.
func (s *Sink) Close() error {
	if s.conn != nil {
		return s.conn.Close()
	}
	s.http.CloseIdleConnections()
	return nil
}

// Send converts w and exports it, in one request, or one per profile
// when one would be over MaxRequestBytes; see forward.Sink for what the
// error means. After a failure part of the window may have arrived: a
// retry sends the same profile IDs again.
func (s *Sink) Send(ctx context.Context, w forward.Window) error {
	reqs, err := s.requests(w)
	if err != nil {
		return fmt.Errorf("converting the window of %s: %w", w.Service, err)
	}
	for _, pd := range reqs {
		if pd.SampleCount() == 0 {
			continue
		}
		if err := s.export(ctx, pd); err != nil {
			return fmt.Errorf("sending the window of %s to %s: %w", w.Service, s.opts.Endpoint, err)
		}
	}
	return nil
}

// requests converts w into the requests to send.
func (s *Sink) requests(w forward.Window) ([]pprofile.Profiles, error) {
	pd, err := Convert(w)
	if err != nil {
		return nil, err
	}
	if len(w.Profiles) < 2 || (&pprofile.ProtoMarshaler{}).ProfilesSize(pd) <= s.opts.MaxRequestBytes {
		return []pprofile.Profiles{pd}, nil
	}
	reqs := make([]pprofile.Profiles, len(w.Profiles))
	for i := range w.Profiles {
		if reqs[i], err = convert(w, i); err != nil {
			return nil, err
		}
	}
	return reqs, nil
}

func (s *Sink) export(ctx context.Context, pd pprofile.Profiles) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if s.conn != nil {
		return s.exportGRPC(ctx, pd)
	}
	return s.exportHTTP(ctx, pd)
}

func (s *Sink) exportGRPC(ctx context.Context, pd pprofile.Profiles) error {
	if len(s.opts.Headers) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(s.opts.Headers))
	}
	var opts []grpc.CallOption
	if s.gzip {
		opts = append(opts, grpc.UseCompressor(grpcgzip.Name))
	}
	resp, err := s.client.Export(ctx, pprofileotlp.NewExportRequestFromProfiles(pd), opts...)
	if err != nil {
		return grpcError(err)
	}
	return partialSuccess(resp, pd.ProfileCount())
}

// maxResponse bounds what is read of a Collector's answer.
const maxResponse = 64 << 10

func (s *Sink) exportHTTP(ctx context.Context, pd pprofile.Profiles) error {
	body, err := s.encode(pd)
	if err != nil {
		return fmt.Errorf("%w: encoding: %v", forward.ErrInvalid, err)
	}
	return s.post(ctx, body, pd.ProfileCount())
}

// encode marshals pd as the otlp receiver's protobuf body, gzipped
// unless compression is off.
func (s *Sink) encode(pd pprofile.Profiles) ([]byte, error) {
	raw, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
	if err != nil || !s.gzip {
		return raw, err
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// post sends an encoded body and reads the answer.
func (s *Sink) post(ctx context.Context, body []byte, profiles int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range s.opts.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set(pprofileotlp.DevelopmentVersionHeader, pprofileotlp.DevelopmentVersion)
	if s.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", forward.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && resp.StatusCode == http.StatusOK {
		return fmt.Errorf("%w: reading the answer: %v", forward.ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return httpError(resp.StatusCode, resp.Header.Get("Content-Type"), answer)
	}
	er := pprofileotlp.NewExportResponse()
	if len(answer) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
		if err := er.UnmarshalProto(answer); err != nil {
			return fmt.Errorf("%w: decoding the answer: %v", forward.ErrUnavailable, err)
		}
	}
	return partialSuccess(er, profiles)
}

// FromConfig is the sink of a configured forward.sinks entry of type
// otlp: for grpc its URL's host:port (https://: TLS, http://: plain
// text), for http the URL itself; the tenant as X-Scope-OrgID (what
// Grafana Pyroscope's OTLP endpoint reads), the bearer or basic auth as
// Authorization, the sink's CA and client certificate.
func FromConfig(c forward.SinkConfig) (*Sink, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink %s: URL %q: want http:// or https:// and a host", c.Name, c.URL)
	}
	auth, err := c.AuthHeader()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	headers := map[string]string{}
	if c.Tenant != "" {
		headers["X-Scope-OrgID"] = c.Tenant
	}
	if auth != "" {
		headers["Authorization"] = auth
	}
	o := Options{Protocol: Protocol(c.Protocol), Headers: headers, Insecure: u.Scheme == "http", TLS: tlsCfg, Timeout: c.Timeout}
	if o.Protocol == ProtocolHTTP {
		o.Endpoint = c.URL
	} else {
		o.Endpoint = u.Host
	}
	return New(o)
}

package forward

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/perfhound/perfhound/agent/forward/relabel"

	"github.com/perfhound/perfhound/agent/webauth"
)

// The sink types, each with its wire protocols (the first the default):
// the one list agent/config validates against and agent/daemon's switch
// makes sinks of.
const (
	TypePyroscope = "pyroscope" // agent/forward/pyroscope: Pyroscope's push.v1
	TypeOTLP      = "otlp"      // agent/forward/otlp: OTLP profiles to a Collector
)

// SinkTypes lists the sink types; SinkProtocols each one's protocols.
var (
	SinkTypes     = []string{TypePyroscope, TypeOTLP}
	SinkProtocols = map[string][]string{
		TypePyroscope: {"connect", "grpc", "grpcweb"},
		TypeOTLP:      {"grpc", "http"},
	}
)

// SinkConfig is one configured sink, as the daemon builds it (from
// agent/config's forward.sinks). The daemon's switch on Type makes the
// Sink (agent/daemon/forward.go).
type SinkConfig struct {
	// Name names the sink's cursor in the store and its metrics: a sink
	// renamed starts from nothing (within its ingestion window).
	Name string
	// Type is the backend, one of SinkTypes.
	Type string
	URL  string
	// Protocol is the wire protocol where a backend speaks several
	// (Pyroscope: connect, grpc, grpcweb; "" is the backend's default).
	Protocol string
	// Tenant is sent as X-Scope-OrgID ("" sends none).
	Tenant string
	// IngestionWindow is how old a window the backend still takes
	// (Pyroscope's reject_older_than; 0: DefaultIngestionWindow).
	IngestionWindow time.Duration
	// Timeout bounds each request (0: DefaultTimeout).
	Timeout time.Duration
	Auth    Auth
	TLS     TLS
	// Relabel is the sink's relabeling (agent/forward/relabel); its zero
	// value changes nothing but caps the series and labels at the
	// defaults.
	Relabel relabel.Config
}

// Auth is how a sink authenticates: basic (a user and a password read
// from a file), or a bearer token read from a file, or neither; mTLS is
// TLS's client certificate.
type Auth struct {
	Username, PasswordFile string
	BearerTokenFile        string
}

// TLS configures https:// URLs: the CA that signs the server's
// certificate (none: the system's), and a client certificate (mTLS).
type TLS struct {
	CAFile, CertFile, KeyFile string
}

// Defaults.
const (
	// DefaultIngestionWindow is Pyroscope's default reject_older_than.
	DefaultIngestionWindow = time.Hour
	// DefaultTimeout bounds one push: a push of a window is tens of KB.
	DefaultTimeout = 30 * time.Second
)

// AuthHeader is the Authorization header of c's auth ("" for none), the
// secrets read from their files now (webauth.ReadTokenFile's rules: the
// first line, mode 0600).
func (c SinkConfig) AuthHeader() (string, error) {
	a := c.Auth
	switch {
	case a.BearerTokenFile != "" && (a.Username != "" || a.PasswordFile != ""):
		return "", fmt.Errorf("sink %s: basic and bearer auth both set: choose one", c.Name)
	case a.BearerTokenFile != "":
		tok, err := webauth.ReadTokenFile(a.BearerTokenFile)
		if err != nil {
			return "", fmt.Errorf("sink %s: %w", c.Name, err)
		}
		return "Bearer " + tok, nil
	case a.Username != "" || a.PasswordFile != "":
		if a.Username == "" || a.PasswordFile == "" {
			return "", fmt.Errorf("sink %s: basic auth needs both a username and a password file", c.Name)
		}
		pw, err := webauth.ReadTokenFile(a.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("sink %s: %w", c.Name, err)
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+pw)), nil
	}
	return "", nil
}

// HTTPClient is the client a sink sends with: c's TLS (CA, client
// certificate), HTTP/2 where http2 (gRPC needs it, over TLS or in clear
// text: h2c), and c's timeout per request.
func (c SinkConfig) HTTPClient(http2 bool) (*http.Client, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink %s: URL %q: want http:// or https:// and a host", c.Name, c.URL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		if u.Scheme != "https" {
			return nil, fmt.Errorf("sink %s: TLS files set for an http:// URL", c.Name)
		}
		tr.TLSClientConfig = cfg
	}
	if http2 {
		var p http.Protocols
		if u.Scheme == "https" {
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
		}
		tr.Protocols = &p
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// TLSConfig is the sink's TLS: its CA and client certificate read from
// their files; nil when it sets neither (the system's roots).
func (c SinkConfig) TLSConfig() (*tls.Config, error) {
	t := c.TLS
	if t == (TLS{}) {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sink %s: reading the CA: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sink %s: %s holds no PEM certificate", c.Name, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sink %s: reading the client certificate: %w", c.Name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, errors.New("sink " + c.Name + ": a client certificate needs both cert_file and key_file")
	}
	return cfg, nil
}

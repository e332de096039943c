package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/agent/forward/relabel"
	"github.com/perfhound/perfhound/agent/webauth"
)

// Forward configures forwarding the stored windows to the backends a
// fleet runs (agent/forward): several sinks at once, each behind its own
// cursor in the store.
type Forward struct {
	Sinks []Sink `yaml:"sinks"`
}

// Sink is one backend the windows are forwarded to.
type Sink struct {
	// Name names the sink's cursor in the store and its metrics.
	Name string `yaml:"name"`
	// Type is one of forward.SinkTypes.
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
	// Protocol is the wire protocol (forward.SinkProtocols: Pyroscope's
	// connect, grpc or grpcweb; OTLP's grpc or http).
	Protocol string `yaml:"protocol"`
	// Tenant is sent as X-Scope-OrgID.
	Tenant string `yaml:"tenant"`
	// IngestionWindow: windows older than this are not sent (the
	// backend's reject_older_than); 0 is DefaultIngestionWindow.
	IngestionWindow Duration `yaml:"ingestion_window"`
	// Timeout bounds each request; 0 is DefaultSinkTimeout.
	Timeout         Duration  `yaml:"timeout"`
	BasicAuth       BasicAuth `yaml:"basic_auth"`
	BearerTokenFile string    `yaml:"bearer_token_file"`
	TLS             SinkTLS   `yaml:"tls"`
	// Relabel is the sink's relabel_configs, max_series and max_labels
	// (agent/forward/relabel: Prometheus's syntax), at the sink's level.
	Relabel relabel.Config `yaml:",inline"`
}

// BasicAuth is a user and the file holding its password.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// SinkTLS is the CA of an https:// sink, and the agent's client
// certificate (mTLS).
type SinkTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// The sinks' bounds and defaults, and why.
const (
	// DefaultIngestionWindow is Pyroscope's default reject_older_than.
	DefaultIngestionWindow = Duration(time.Hour)
	// MinIngestionWindow: a window shorter than a few windows would give
	// up on a backend's restart.
	MinIngestionWindow = Duration(time.Minute)
	// DefaultSinkTimeout: a push of a window is tens of KB.
	DefaultSinkTimeout = Duration(30 * time.Second)
	MinSinkTimeout     = Duration(time.Second)
	MaxSinkTimeout     = Duration(5 * time.Minute)
)

var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// resolveSinks makes the sinks' files relative to dir.
func (c *Config) resolveSinks(dir string) {
	for i := range c.Forward.Sinks {
		s := &c.Forward.Sinks[i]
		for _, p := range []*string{&s.BasicAuth.PasswordFile, &s.BearerTokenFile, &s.TLS.CAFile, &s.TLS.CertFile, &s.TLS.KeyFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
}

func (c Config) validateForward(bad func(key, format string, args ...any)) {
	names := map[string]int{}
	for i, s := range c.Forward.Sinks {
		key := fmt.Sprintf("forward.sinks[%d]", i)
		switch j, dup := names[s.Name]; {
		case !sinkName.MatchString(s.Name):
			bad(key+".name", "%q: want 1 to 63 letters, digits, _, . or -, the first a letter or digit", s.Name)
		case dup:
			bad(key+".name", "%q is forward.sinks[%d]'s already", s.Name, j)
		default:
			names[s.Name] = i
		}
		if !slices.Contains(forward.SinkTypes, s.Type) {
			bad(key+".type", "%q is none of %s", s.Type, strings.Join(forward.SinkTypes, ", "))
		}
		u, err := url.Parse(s.URL)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			bad(key+".url", "want an http:// or https:// URL with a host")
		} else if u.Scheme == "http" && s.TLS != (SinkTLS{}) {
			bad(key+".tls", "set for an http:// URL")
		}
		if ps, ok := forward.SinkProtocols[s.Type]; ok && s.Protocol != "" && !slices.Contains(ps, s.Protocol) {
			bad(key+".protocol", "%q is none of %s", s.Protocol, strings.Join(ps, ", "))
		}
		if w := s.IngestionWindow; w != 0 && (w < MinIngestionWindow || w > c.Retention.MaxAge) {
			bad(key+".ingestion_window", "%v is out of range %v..retention.max_age (%v)", w, MinIngestionWindow, c.Retention.MaxAge)
		}
		if t := s.Timeout; t != 0 && (t < MinSinkTimeout || t > MaxSinkTimeout) {
			bad(key+".timeout", "%v is out of range %v..%v", t, MinSinkTimeout, MaxSinkTimeout)
		}
		a := s.BasicAuth
		switch {
		case (a.Username == "") != (a.PasswordFile == ""):
			bad(key+".basic_auth", "needs both username and password_file")
		case a.Username != "" && s.BearerTokenFile != "":
			bad(key+".bearer_token_file", "set with basic_auth: choose one")
		}
		if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
			bad(key+".tls", "a client certificate needs both cert_file and key_file")
		}
		if err := s.Relabel.Validate(); err != nil {
			// The error names the rule (relabel_configs[i]) or the cap.
			bad(key, "%v", err)
		}
	}
}

// checkSinkFiles reads the sinks' secrets and certificates, as the agent
// will at start.
func (c Config) checkSinkFiles() []error {
	var errs []error
	for i, s := range c.Forward.Sinks {
		key := fmt.Sprintf("forward.sinks[%d]", i)
		for _, kf := range [][2]string{{"basic_auth.password_file", s.BasicAuth.PasswordFile}, {"bearer_token_file", s.BearerTokenFile}} {
			if kf[1] == "" {
				continue
			}
			if _, err := webauth.ReadTokenFile(kf[1]); err != nil {
				errs = append(errs, &KeyError{key + "." + kf[0], err.Error()})
			}
		}
		if s.TLS.CertFile != "" && s.TLS.KeyFile != "" {
			if _, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile); err != nil {
				errs = append(errs, &KeyError{key + ".tls", err.Error()})
			}
		}
	}
	return errs
}

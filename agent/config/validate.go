package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/perfhound/perfhound/agent/goscrape"
	"github.com/perfhound/perfhound/agent/ingest"
	"github.com/perfhound/perfhound/agent/webauth"
)

// ErrInvalid is what every Validate error is (errors.Is).
var ErrInvalid = errors.New("invalid config")

// KeyError is one invalid value, named by its key's path.
type KeyError struct {
	Key string // as "retention.rollups[1].step"
	Msg string
}

func (e *KeyError) Error() string        { return e.Key + ": " + e.Msg }
func (e *KeyError) Is(target error) bool { return target == ErrInvalid }

// Bounds Validate holds values to, and why.
const (
	// MaxWindow: a window is what kill -9 may lose, and what the agent
	// holds in memory before writing it.
	MaxWindow = Duration(time.Hour)
	// MaxFrequency: above 1 kHz, sampling every CPU of the host costs far
	// more than the 0.5% of a core the agent is for (19 Hz is the default,
	// diagnose's 99 Hz already doubles the kernel's share).
	MaxFrequency = 1000
	// MaxOffCPUSampling: following fewer than 1 switch in 1000 leaves a
	// window almost no off-CPU stacks to estimate from.
	MaxOffCPUSampling = 1000
	// MinMaxSize: below it the store cannot hold a few hours of one busy
	// host, and retention would drop each window as it is written.
	MinMaxSize = Size(16 << 20)
	// MinIngestMemory holds one full-size pushed body (ingest.Options'
	// 16 MiB MaxBodyBytes default) while it is handled.
	MinIngestMemory = Size(16 << 20)
	// MinWebhookTimeout, MaxWebhookTimeout: a request must have time to
	// cross a network, and must not hold the webhook's queue for long.
	MinWebhookTimeout = Duration(time.Second)
	MaxWebhookTimeout = Duration(5 * time.Minute)
	// MaxWebhookAttempts: backoff reaches its 1 min cap by the 7th try;
	// 20 tries hold one event for about a quarter of an hour.
	MaxWebhookAttempts = 20
)

// LogLevels are the values of log_level (slog's levels).
var LogLevels = []string{"debug", "info", "warn", "error"}

// reservedLabels are set per service by the agent: a static label of
// that name would give every service the same.
var reservedLabels = map[string]string{
	"service_name": "services rules or go_services name services",
	"version":      "a services rule's version sets a version",
}

// Validate checks every value and returns every error found, joined, each
// a *KeyError naming its key. It reads no file (CheckFiles does).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{key, fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data_dir", "missing")
	}
	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%v", err)
	} else if c.TokenFile == "" && !webauth.LocalAddr(c.Listen) {
		bad("token_file", "a token is required when listening on %s: set token_file (listen on 127.0.0.1 or unix:/path to go without)", c.Listen)
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		bad("tls.key_file", "missing: tls.cert_file is set, and TLS needs both")
	case c.TLS.KeyFile != "" && c.TLS.CertFile == "":
		bad("tls.cert_file", "missing: tls.key_file is set, and TLS needs both")
	case c.TLS.Enabled() && strings.HasPrefix(c.Listen, webauth.UnixPrefix):
		bad("tls", "TLS over a Unix socket protects nothing more: remove it or listen on TCP")
	}
	switch {
	case c.Window < MinWindow:
		bad("window", "%v is shorter than %v", c.Window, MinWindow)
	case c.Window > MaxWindow:
		bad("window", "%v is longer than %v", c.Window, MaxWindow)
	}
	switch {
	case c.Interval < MinInterval:
		bad("interval", "%v is shorter than %v: each reading of /proc, /sys and PSI costs about 2 ms of CPU, and the agent keeps to 0.5%% of one core", c.Interval, MinInterval)
	case c.Interval > c.Window && c.Window >= MinWindow:
		bad("interval", "%v is longer than window %v: a window would hold no reading", c.Interval, c.Window)
	}
	if f := c.EBPF.Frequency; f < 1 || f > MaxFrequency {
		bad("ebpf.frequency", "%d Hz is out of range 1..%d", f, MaxFrequency)
	}
	if n := c.EBPF.OffCPUSampling; n < 1 || n > MaxOffCPUSampling {
		bad("ebpf.offcpu_sampling", "%d is out of range 1..%d (1 follows every switch)", n, MaxOffCPUSampling)
	}
	c.validateRetention(bad)
	for i := range c.Services {
		r := c.Services[i]
		if err := r.Compile(); err != nil {
			bad(fmt.Sprintf("services[%d]", i), "%v", err)
		}
	}
	urls := map[string]int{}
	for i, g := range c.GoServices {
		key := fmt.Sprintf("go_services[%d]", i)
		if err := checkURL(g.URL); err != nil {
			bad(key+".url", "%v", err)
		} else if j, dup := urls[g.URL]; dup {
			bad(key+".url", "%s is go_services[%d]'s already", g.URL, j)
		} else {
			urls[g.URL] = i
		}
		if g.Service == "" {
			bad(key+".service", "missing (the name the service's profiles are stored under)")
		} else if err := ingest.CheckLabel("service_name", g.Service); err != nil {
			bad(key+".service", "%v", err)
		}
		checkLabels(key+".labels", g.Labels, bad)
		if g.RequestsMetric != "" && !goscrape.ValidMetricName(g.RequestsMetric) {
			bad(key+".requests_metric", "%q is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", g.RequestsMetric)
		}
	}
	if c.Ingest.Enabled && c.Ingest.MaxMemory < MinIngestMemory {
		bad("ingest.max_memory", "%v cannot hold one pushed body of the largest size; at least %v", c.Ingest.MaxMemory, MinIngestMemory)
	}
	c.validateDetector(bad)
	c.validateWebhook(bad)
	c.validateForward(bad)
	checkLabels("labels", c.Labels, bad)
	if !slices.Contains(LogLevels, c.LogLevel) {
		bad("log_level", "%q is none of %s", c.LogLevel, strings.Join(LogLevels, ", "))
	}
	return errors.Join(errs...)
}

func (c Config) validateRetention(bad func(key, format string, args ...any)) {
	r := c.Retention
	if r.MaxAge < c.Window || r.MaxAge <= 0 {
		bad("retention.max_age", "%v keeps less than one window (%v)", r.MaxAge, c.Window)
	}
	if r.MaxSize < MinMaxSize {
		bad("retention.max_size", "%v is less than %v", r.MaxSize, MinMaxSize)
	}
	prev := Rollup{Step: c.Window}
	for i, ru := range r.Rollups {
		key := fmt.Sprintf("retention.rollups[%d]", i)
		switch {
		case ru.After <= prev.After:
			bad(key+".after", "%v is not after the previous rollup's %v: rollups go from recent to old", ru.After, prev.After)
		case ru.After >= r.MaxAge:
			bad(key+".after", "%v is not before retention.max_age %v: the rollup would never run", ru.After, r.MaxAge)
		}
		switch {
		case ru.Step <= prev.Step:
			bad(key+".step", "%v is not longer than the windows it merges (%v)", ru.Step, prev.Step)
		case prev.Step > 0 && ru.Step%prev.Step != 0:
			bad(key+".step", "%v is not a whole number of the windows it merges (%v)", ru.Step, prev.Step)
		}
		prev = ru
	}
}

func (c Config) validateDetector(bad func(key, format string, args ...any)) {
	r := c.Regressions
	inRange := func(key string, v, lo, hi float64) {
		if !(v >= lo && v <= hi) {
			bad("regressions."+key, "%v is out of range %v..%v", v, lo, hi)
		}
	}
	inRange("min_share", r.MinShare, MinRegressShare, MaxRegressShare)
	inRange("fdr", r.FDR, MinRegressFDR, MaxRegressFDR)
	inRange("min_change", r.MinChange, MinRegressChange, MaxRegressChange)
	if r.BaseWindow < MinBaseWindow || r.BaseWindow > MaxBaseWindow {
		bad("regressions.base_window", "%v is out of range %v..%v", r.BaseWindow, MinBaseWindow, MaxBaseWindow)
	}
	b := r.Boost
	if b.Frequency < 0 || b.Frequency > MaxBoostFrequency {
		bad("regressions.boost.frequency", "%d is out of range 0..%d", b.Frequency, MaxBoostFrequency)
	}
	if b.Duration < Duration(time.Minute) || b.Duration > Duration(time.Hour) {
		bad("regressions.boost.duration", "%v is out of range 1m..1h", b.Duration)
	}
	if b.MaxPerHour < 0 || b.MaxPerHour > Duration(time.Hour) {
		bad("regressions.boost.max_per_hour", "%v is out of range 0s..1h", b.MaxPerHour)
	}
}

func (c Config) validateWebhook(bad func(key, format string, args ...any)) {
	w := c.Regressions.Webhook
	const key = "regressions.webhook."
	if w.URL != "" {
		if u, err := url.Parse(w.URL); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			// The URL itself is not repeated: its path is often the secret.
			bad(key+"url", "want an http:// or https:// URL with a host")
		}
	} else if w.TokenFile != "" {
		bad(key+"token_file", "set without regressions.webhook.url")
	}
	if w.Timeout < MinWebhookTimeout || w.Timeout > MaxWebhookTimeout {
		bad(key+"timeout", "%v is out of range %v..%v", w.Timeout, MinWebhookTimeout, MaxWebhookTimeout)
	}
	if w.MaxAttempts < 1 || w.MaxAttempts > MaxWebhookAttempts {
		bad(key+"max_attempts", "%d is out of range 1..%d", w.MaxAttempts, MaxWebhookAttempts)
	}
}

// checkListen checks a listen address's form: host:port with a numeric
// port, or unix: and an absolute path.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("missing")
	}
	if p, ok := strings.CutPrefix(addr, webauth.UnixPrefix); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%q: a Unix socket needs an absolute path, as in unix:/run/perfhound/agent.sock", addr)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// checkURL checks a Go service's base URL: http or https, with a host.
func checkURL(s string) error {
	if s == "" {
		return errors.New("missing (the service's base URL, as http://127.0.0.1:6060)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: want an http:// or https:// URL with a host", s)
	}
	return nil
}

// checkLabels holds labels to Pyroscope's rules (ingest.CheckLabel): at
// most ingest.MaxLabels, names of letters, digits, _ and ., none reserved.
func checkLabels(key string, labels map[string]string, bad func(key, format string, args ...any)) {
	if len(labels) > ingest.MaxLabels {
		bad(key, "%d labels, at most %d", len(labels), ingest.MaxLabels)
	}
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case strings.HasPrefix(k, "__"):
			bad(key+"."+k, "names starting with __ are reserved (Pyroscope's)")
		case reservedLabels[k] != "":
			bad(key+"."+k, "set by the agent for each service: %s", reservedLabels[k])
		default:
			if err := ingest.CheckLabel(k, labels[k]); err != nil {
				bad(key+"."+k, "%v", err)
			}
		}
	}
}

// CheckFiles reads the files the config names, as the agent will at
// start: the tokens (webauth.ReadTokenFile: a good token, mode 0600) and
// the TLS key pair. Validate first.
func (c Config) CheckFiles() error {
	var errs []error
	if c.TokenFile != "" {
		if _, err := webauth.ReadTokenFile(c.TokenFile); err != nil {
			errs = append(errs, &KeyError{"token_file", err.Error()})
		}
	}
	if f := c.Regressions.Webhook.TokenFile; f != "" {
		if _, err := webauth.ReadTokenFile(f); err != nil {
			errs = append(errs, &KeyError{"regressions.webhook.token_file", err.Error()})
		}
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			errs = append(errs, &KeyError{"tls", err.Error()})
		}
	}
	errs = append(errs, c.checkSinkFiles()...)
	return errors.Join(errs...)
}

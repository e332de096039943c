package goscrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

const userAgent = "perfhound"

// client is the HTTP side of one target: its base URL, an http.Client that
// refuses redirects to other hosts, and the limits every request obeys.
type client struct {
	base     *url.URL // scheme://host[/prefix], without /debug/pprof and without a trailing slash
	http     *http.Client
	timeout  time.Duration
	maxBytes int64
	requests string // the /metrics counter of the service's requests, "" for none
}

func newClient(baseURL string, hc *http.Client, timeout time.Duration, maxBytes int64) (*client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	var c http.Client
	if hc != nil {
		c = *hc // a copy: the caller's client keeps its own redirect policy
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if from := via[0].URL; req.URL.Host != from.Host {
			return &redirectError{from: from.Redacted(), to: req.URL.Redacted()}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &client{base: base, http: &c, timeout: timeout, maxBytes: maxBytes}, nil
}

// parseBase accepts a service's base URL ("http://host:6060"), a bare
// host:port, or any URL under its /debug/pprof/ (what `go tool pprof` is
// given), and returns the base with everything from /debug/pprof on, the
// query and the fragment removed.
func parseBase(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, errors.New("no base URL")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parsing base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("base URL %q: scheme %q is not http or https", raw, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("base URL %q has no host", raw)
	}
	if i := strings.Index(u.Path, "/debug/pprof"); i >= 0 {
		u.Path = u.Path[:i]
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment, u.RawFragment = "", "", "", ""
	return u, nil
}

// String is the base URL as labels and messages show it, without a password.
func (c *client) String() string { return c.base.Redacted() }

// pprofURL is the URL of a net/http/pprof endpoint ("" for the index).
func (c *client) pprofURL(name string) string { return c.url("/debug/pprof/" + name) }

func (c *client) url(path string) string {
	u := *c.base
	u.Path += path
	return u.String()
}

// response is a 200 OK answer, its body read in full.
type response struct {
	url         string
	contentType string // the media type, without parameters
	body        []byte
	at          time.Time // when the headers arrived
}

// get fetches u. extra is how long the server is expected to take on top of
// the Timeout (a profile's seconds). An answer other than 200 OK is a
// *statusError, a failure to talk to the server a *transportError, and a
// body over MaxBytes a *tooLargeError.
func (c *client) get(ctx context.Context, u string, extra time.Duration) (*response, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, extra+c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("making request for %s: %w", u, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		var re *redirectError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, newTransportError(redact(u), start, err)
	}
	defer resp.Body.Close()
	r := &response{url: redact(u), at: time.Now()}
	r.contentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		se := &statusError{url: r.url, code: resp.StatusCode, status: resp.Status}
		if r.contentType == "text/plain" && resp.StatusCode != http.StatusNotFound { // "404 page not found" says nothing more
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			se.msg = firstLine(string(msg))
		}
		return nil, se
	}
	if resp.ContentLength > c.maxBytes {
		return nil, &tooLargeError{url: r.url, max: c.maxBytes}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, bodyError(r.url, start, len(body), err)
	}
	if int64(len(body)) > c.maxBytes {
		return nil, &tooLargeError{url: r.url, max: c.maxBytes}
	}
	r.body = body
	return r, nil
}

// statusError is an answer other than 200 OK.
type statusError struct {
	url    string
	code   int
	status string // "404 Not Found"
	msg    string // the first line of a text/plain body: net/http/pprof says what went wrong there
}

func (e *statusError) Error() string {
	s := e.status + " at " + e.url
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// transportError is a request that got no answer: connection refused, no
// such host, a timeout, a reset. It wraps ErrUnreachable and the cause.
type transportError struct {
	url     string
	why     string
	timeout bool
	err     error
}

func newTransportError(u string, start time.Time, err error) *transportError {
	e := &transportError{url: u, err: err}
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		e.timeout = true
		e.why = fmt.Sprintf("timed out after %v", time.Since(start).Round(time.Millisecond))
	case errors.Is(err, context.Canceled):
		e.why = "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.why = "connection refused"
	case errors.As(err, &dnsErr):
		e.why = "looking up " + dnsErr.Name + ": " + dnsErr.Err
	case errors.Is(err, syscall.ECONNRESET):
		e.why = "connection reset by the server"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		e.why = "connection closed by the server before it answered"
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			e.why = ue.Err.Error()
		} else {
			e.why = err.Error()
		}
	}
	return e
}

// bodyError is a transport error after the answer began: the headers
// arrived, then the body stopped after n bytes (a server that crashed or
// was killed mid-answer).
func bodyError(u string, start time.Time, n int, err error) *transportError {
	e := newTransportError(u, start, err)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		e.why = fmt.Sprintf("connection closed by the server after %d bytes of the body", n)
	} else {
		e.why += fmt.Sprintf(" (%d bytes of the body read)", n)
	}
	return e
}

func (e *transportError) Error() string   { return e.why + " at " + e.url }
func (e *transportError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// tooLargeError is a body over Options.MaxBytes.
type tooLargeError struct {
	url          string
	max          int64
	decompressed bool
}

func (e *tooLargeError) Error() string {
	what := "body"
	if e.decompressed {
		what = "decompressed body"
	}
	return fmt.Sprintf("%s over the %d-byte cap (MaxBytes) at %s", what, e.max, e.url)
}

// redirectError is a redirect to another host, refused.
type redirectError struct{ from, to string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirect to another host refused: %s at %s", e.to, e.from)
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return u
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

package goscrape

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Probe checks cheaply that baseURL serves net/http/pprof: the pprof index
// page at /debug/pprof/, or, for a service that mounted the handlers without
// the index, a text answer at /debug/pprof/cmdline. It takes what Scrape
// takes as Options.BaseURL and uses the default Timeout.
//
// The error wraps ErrUnreachable when nothing answered (connection refused,
// no such host, a timeout) and ErrNotPprof when something answered but not
// net/http/pprof; either way it says what was got from where.
func Probe(ctx context.Context, baseURL string) error {
	c, err := newClient(baseURL, nil, defaultTimeout, defaultMaxBytes)
	if err != nil {
		return err
	}
	return c.probe(ctx)
}

// probeMaxBytes caps the answers a probe reads: the pprof index is a few KiB.
const probeMaxBytes = 1 << 20

func (c *client) probe(ctx context.Context) error {
	pc := *c
	pc.maxBytes = min(c.maxBytes, probeMaxBytes)

	index, err := pc.get(ctx, pc.pprofURL(""), 0)
	if err == nil && isPprofIndex(index) {
		return nil
	}
	if err := c.unreachable(err); err != nil {
		return err
	}
	got := []string{describeAnswer(index, err, "the pprof index")}

	cmdline, err := pc.get(ctx, pc.pprofURL("cmdline"), 0)
	if err == nil && cmdline.contentType == "text/plain" {
		return nil
	}
	if err := c.unreachable(err); err != nil {
		return err
	}
	got = append(got, describeAnswer(cmdline, err, "the command line as text/plain"))
	return fmt.Errorf("%s: %w: %s%s", c, ErrNotPprof, strings.Join(got, "; "), notPprofHint(index, cmdline, err))
}

// unreachable turns a transport error into the error Probe returns, and
// anything else into nil.
func (c *client) unreachable(err error) error {
	var te *transportError
	if !errors.As(err, &te) {
		return nil
	}
	if te.timeout {
		return fmt.Errorf("%s does not answer: %w", c, err)
	}
	return fmt.Errorf("%s is unreachable: %w", c, err)
}

// isPprofIndex says whether a 200 answer is net/http/pprof's index page.
func isPprofIndex(r *response) bool {
	b := string(r.body)
	return r.contentType == "text/html" && strings.Contains(b, "/debug/pprof/") && strings.Contains(b, "goroutine")
}

// describeAnswer says what an endpoint gave instead of what was wanted.
func describeAnswer(r *response, err error, want string) string {
	if err != nil {
		return err.Error()
	}
	ct := r.contentType
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("got %s from %s, not %s", ct, r.url, want)
}

func notPprofHint(index, cmdline *response, err error) string {
	var se *statusError
	if !errors.As(err, &se) {
		return ""
	}
	switch se.code {
	case http.StatusNotFound:
		if index == nil && cmdline == nil {
			return ` (does the service import _ "net/http/pprof" and serve http.DefaultServeMux, or mount pprof.Index and friends on its own mux, under this URL?)`
		}
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (the endpoint wants credentials: give Options.Client a transport that adds them)"
	}
	return ""
}

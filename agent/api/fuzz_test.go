package api

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
)

// emptySource is a store with nothing in it.
type emptySource struct{}

func (emptySource) Healthy() bool                { return true }
func (emptySource) Services() ([]Service, error) { return nil, nil }
func (emptySource) Range(Query) ([]Record, error) {
	return nil, errors.New("Range called for a service that does not exist")
}
func (emptySource) Verdicts(string, time.Time, time.Time) ([]VerdictPoint, error) {
	return nil, nil
}

// FuzzQuery holds every endpoint's parameter parsing to its contract for
// any raw query string: a request is either refused with a paramError
// naming one parameter (400), or parsed into a range that is positive and
// at most the maximum, and names that are bounded UTF-8. The handlers,
// over an empty store, answer 400 or 404 with a JSON error, or 200 for
// the endpoints that need no service, and never panic.
//
//	go test -run '^$' -fuzz FuzzQuery -fuzztime 1m ./agent/api
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		"service=shop&type=cpu",
		"service=shop&type=cpu&from=-2h&to=-1h&version=v1&source=ebpf",
		"service=shop&type=inuse&from=2026-12-04T10:00:00Z&to=2026-12-04T11:00:00.5Z",
		"service=shop&from=now&to=%2B1h&format=md",
		"service=shop&base=-2h/-1h&head=abc/def/ghi/jkl",
		"service=shop&base=2026-12-04T10:00:00Z/now&head=v2&format=json",
		"service=a%00b&type=cpu",
		"service=shop&service=x",
		"from=-9999999h&to=+9999999h&service=x",
		"service=shop&active=true", "active=false", "active=yes",
		"%zz", "a=1;b=2", "",
	} {
		f.Add(seed)
	}
	const max = 7 * 24 * time.Hour
	s, err := New(emptySource{}, Options{Now: func() time.Time { return testNow }, MaxRange: max})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, raw string) {
		check := func(endpoint string, err error, allowed ...string) {
			t.Helper()
			if err == nil {
				return
			}
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: %v is not a parameter's error", endpoint, err)
			}
			if !slices.Contains(append(allowed, "query"), pe.Param) && !strings.HasPrefix(pe.Param, `"`) {
				t.Fatalf("%s: the error names %q, not one of its parameters", endpoint, pe.Param)
			}
			if !strings.HasPrefix(err.Error(), pe.Param+": ") || !utf8.ValidString(pe.Param) {
				t.Fatalf("%s: %q does not start with its parameter", endpoint, err)
			}
		}
		span := func(endpoint string, from, to time.Time) {
			t.Helper()
			if !from.Before(to) || to.Sub(from) > max {
				t.Fatalf("%s: parsed a range from %v to %v", endpoint, from, to)
			}
		}
		name := func(endpoint, n string, required bool) {
			t.Helper()
			if required && n == "" || len(n) > maxNameLen || !utf8.ValidString(n) || strings.ContainsAny(n, "\x00\n\r") {
				t.Fatalf("%s: parsed the name %q", endpoint, n)
			}
		}

		p, err := parseProfileReq(raw, testNow, max)
		check("profile", err, "service", "type", "from", "to", "version", "source")
		if err == nil {
			span("profile", p.From, p.To)
			name("profile", p.Service, true)
			name("profile", p.Version, false)
			if p.Kind == "" {
				t.Fatal("profile: parsed no type")
			}
		}
		d, err := parseDiagnosisReq(raw, testNow, max)
		check("diagnosis", err, "service", "from", "to", "version", "format")
		if err == nil {
			span("diagnosis", d.From, d.To)
			name("diagnosis", d.Service, true)
			if !slices.Contains([]string{"json", "text", "markdown", "html"}, d.Format) {
				t.Fatalf("diagnosis: format %q", d.Format)
			}
		}
		df, err := parseDiffReq(raw, testNow, max)
		check("diff", err, "service", "base", "head", "format")
		if err == nil {
			name("diff", df.Service, true)
			for _, sd := range []side{df.Base, df.Head} {
				if sd.Version != "" {
					name("diff", sd.Version, true)
				} else {
					span("diff", sd.From, sd.To)
				}
			}
		}
		rg, err := parseRegressionsReq(raw, testNow)
		check("regressions", err, "service", "active")
		if err == nil {
			name("regressions", rg.Service, false)
			if !slices.Contains([]string{"", "true", "false"}, rg.Active) {
				t.Fatalf("regressions: active %q", rg.Active)
			}
		}
		r, err := parseRangeReq(raw, testNow, max)
		check("page", err, "service", "from", "to")
		if err == nil && !r.From.IsZero() {
			span("page", r.From, r.To)
		}

		for _, path := range []string{"/api/v1/profile", "/api/v1/diagnosis", "/api/v1/diff", "/api/v1/services", "/api/v1/regressions", "/", "/flame", "/diff"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path, raw
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			switch w.Code {
			case 200, 303:
				if path != "/api/v1/services" && path != "/api/v1/regressions" && path != "/" && path != "/flame" {
					t.Fatalf("%s?%s: %d over an empty store", path, raw, w.Code)
				}
				continue
			case 400, 404:
			default:
				t.Fatalf("%s?%s: %d %s", path, raw, w.Code, w.Body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s?%s: %d with %q, not a JSON error", path, raw, w.Code, w.Body)
			}
		}
	})
}

func (emptySource) HostSeries(time.Time, time.Time) ([]observation.Series, error) { return nil, nil }

func (emptySource) Regressions() ([]regress.Finding, error) { return nil, nil }

package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/report"
)

// paramError is a request the API refuses because of one parameter: 400
// with {"error": "...", "parameter": NAME}.
type paramError struct {
	Param string
	Msg   string
}

func (e *paramError) Error() string { return e.Param + ": " + e.Msg }

func badParam(param, format string, args ...any) error {
	return &paramError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// maxNameLen bounds a service or version name: a build ID is 40 to 83
// characters, a systemd unit at most 255.
const maxNameLen = 256

// query is a request's parameters, checked against the names its endpoint
// takes: an unknown name (a typo such as "servce") or a repeated one is
// refused rather than ignored.
type query struct {
	v   url.Values
	now time.Time
}

func parseQuery(raw string, now time.Time, allowed ...string) (query, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, badParam("query", "malformed query string: %v", err)
	}
	// In a fixed order, so that the error names the same one every time.
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			return query{}, badParam(printable(name), "unknown parameter: this endpoint takes %s", strings.Join(allowed, ", "))
		}
		if len(v[name]) > 1 {
			return query{}, badParam(name, "given %d times, want once", len(v[name]))
		}
	}
	return query{v: v, now: now}, nil
}

// printable quotes a parameter name from the request for an error, cut
// short: the name is the client's, and the error goes back to it and to
// logs.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func (q query) get(name string) string { return q.v.Get(name) }

// name is a service or version name: required (when required is set), at
// most maxNameLen bytes of UTF-8 without control characters.
func (q query) name(param string, required bool) (string, error) {
	s := q.get(param)
	if s == "" {
		if required {
			return "", badParam(param, "required")
		}
		return "", nil
	}
	return s, checkName(param, s)
}

func checkName(param, s string) error {
	if len(s) > maxNameLen {
		return badParam(param, "%d bytes, at most %d", len(s), maxNameLen)
	}
	if !utf8.ValidString(s) {
		return badParam(param, "not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return badParam(param, "has a control character")
		}
	}
	return nil
}

// span is from= and to=: RFC3339 times, "now", or durations from now
// ("-2h"); the last hour when both are absent, from an hour before to
// when only to is given, to now when only from is. The span must be
// positive and at most max.
func (q query) span(max time.Duration) (from, to time.Time, err error) {
	to = q.now
	if s := q.get("to"); s != "" {
		if to, err = parseTime("to", s, q.now); err != nil {
			return
		}
	}
	from = to.Add(-time.Hour)
	if s := q.get("from"); s != "" {
		if from, err = parseTime("from", s, q.now); err != nil {
			return
		}
	}
	return from, to, checkSpan("from", from, to, max)
}

func checkSpan(param string, from, to time.Time, max time.Duration) error {
	if !from.Before(to) {
		return badParam(param, "%s is not before %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	// Sub saturates, so a span of centuries compares as long, not wrapped.
	if d := to.Sub(from); d > max {
		return badParam(param, "the range is %s long, at most %s (what the store keeps)", d, max)
	}
	return nil
}

// parseTime reads one end of a range: an RFC3339 time, "now", or a
// signed Go duration from now ("-90m").
func parseTime(param, s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, badParam(param, "%s is not a duration like -2h", printable(s))
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badParam(param, "%s is not an RFC3339 time (2006-01-02T15:04:05Z), now, or a duration from now like -2h", printable(s))
	}
	return t, nil
}

// side is one side of a diff: a version, or a range.
type side struct {
	Version  string
	From, To time.Time // when Version is ""
	Raw      string
}

// parseSide reads base= or head=: FROM/TO, each end as from= and to=
// take them ("-2h/-1h", "2026-12-04T10:00:00Z/2026-12-04T11:00:00Z"), or
// else a version name. A version may itself hold a slash (a Go build ID
// is four parts joined by slashes), so a value is a range only when it is
// two parts that both read as times.
func parseSide(param, s string, now time.Time, max time.Duration) (side, error) {
	if s == "" {
		return side{}, badParam(param, "required: a version, or a range FROM/TO")
	}
	if a, b, ok := strings.Cut(s, "/"); ok && !strings.Contains(b, "/") {
		from, errA := parseTime(param, a, now)
		to, errB := parseTime(param, b, now)
		if errA == nil && errB == nil {
			if err := checkSpan(param, from, to, max); err != nil {
				return side{}, err
			}
			return side{From: from, To: to, Raw: s}, nil
		}
	}
	if err := checkName(param, s); err != nil {
		return side{}, err
	}
	return side{Version: s, Raw: s}, nil
}

// kindAliases are the names the issue and pyroscope users say for kinds
// perfhound names otherwise.
var kindAliases = map[string]observation.ProfileKind{
	"alloc": observation.KindAllocs,
	"inuse": observation.KindHeap,
}

// parseKind reads type=: a profile kind (observation.ProfileKinds), an
// alias, or any other kind a Pyroscope SDK may push (a sample type's
// name: letters, digits, '_', '-', '.').
func parseKind(param, s string) (observation.ProfileKind, error) {
	if s == "" {
		return "", badParam(param, "required: one of %s, or a kind an SDK pushed", kindList())
	}
	if k, ok := kindAliases[s]; ok {
		return k, nil
	}
	if len(s) > 64 {
		return "", badParam(param, "%d bytes, at most 64", len(s))
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.') {
			return "", badParam(param, "%s is not a profile kind: want one of %s, or a kind an SDK pushed", printable(s), kindList())
		}
	}
	return observation.ProfileKind(s), nil
}

func kindList() string {
	var names []string
	for _, k := range observation.ProfileKinds() {
		names = append(names, string(k))
	}
	for a := range kindAliases {
		names = append(names, a)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// profileSources are the values of source=, in the order a profile kind
// that several collected is chosen when source= is not given: eBPF sees
// every thread, a Go service's endpoint its goroutines, a push what the
// SDK chose.
var profileSources = []observation.ProfileSource{observation.SourceEBPF, observation.SourcePprof, observation.SourceIngest}

func parseSource(param, s string) (observation.ProfileSource, error) {
	if s == "" || slices.Contains(profileSources, observation.ProfileSource(s)) {
		return observation.ProfileSource(s), nil
	}
	return "", badParam(param, "%s: want ebpf, pprof or ingest", printable(s))
}

// parseFormat reads format=: one of allowed, the first by default.
func parseFormat(param, s string, allowed ...string) (string, error) {
	if s == "" {
		return allowed[0], nil
	}
	if s == "md" {
		s = string(report.Markdown)
	}
	if slices.Contains(allowed, s) {
		return s, nil
	}
	return "", badParam(param, "%s: want %s", printable(s), strings.Join(allowed, ", "))
}

// The requests of the endpoints that take parameters, parsed.

type profileReq struct {
	Service, Version string
	Kind             observation.ProfileKind
	Source           observation.ProfileSource
	From, To         time.Time
}

func parseProfileReq(raw string, now time.Time, max time.Duration) (r profileReq, err error) {
	q, err := parseQuery(raw, now, "service", "type", "from", "to", "version", "source")
	if err != nil {
		return r, err
	}
	if r.Service, err = q.name("service", true); err != nil {
		return r, err
	}
	if r.Version, err = q.name("version", false); err != nil {
		return r, err
	}
	if r.Kind, err = parseKind("type", q.get("type")); err != nil {
		return r, err
	}
	if r.Source, err = parseSource("source", q.get("source")); err != nil {
		return r, err
	}
	r.From, r.To, err = q.span(max)
	return r, err
}

type diagnosisReq struct {
	Service, Version string
	From, To         time.Time
	Format           string
}

func parseDiagnosisReq(raw string, now time.Time, max time.Duration) (r diagnosisReq, err error) {
	q, err := parseQuery(raw, now, "service", "from", "to", "version", "format")
	if err != nil {
		return r, err
	}
	if r.Service, err = q.name("service", true); err != nil {
		return r, err
	}
	if r.Version, err = q.name("version", false); err != nil {
		return r, err
	}
	if r.Format, err = parseFormat("format", q.get("format"), "json", "text", "markdown", "html"); err != nil {
		return r, err
	}
	r.From, r.To, err = q.span(max)
	return r, err
}

type diffReq struct {
	Service    string
	Base, Head side
	Format     string
}

func parseDiffReq(raw string, now time.Time, max time.Duration) (r diffReq, err error) {
	q, err := parseQuery(raw, now, "service", "base", "head", "format")
	if err != nil {
		return r, err
	}
	if r.Service, err = q.name("service", true); err != nil {
		return r, err
	}
	if r.Base, err = parseSide("base", q.get("base"), now, max); err != nil {
		return r, err
	}
	if r.Head, err = parseSide("head", q.get("head"), now, max); err != nil {
		return r, err
	}
	r.Format, err = parseFormat("format", q.get("format"), "json", "text", "markdown")
	return r, err
}

// rangeReq is the parameters of the page and of /flame: an optional
// service, and a span.
type rangeReq struct {
	Service  string
	From, To time.Time
}

func parseRangeReq(raw string, now time.Time, max time.Duration) (r rangeReq, err error) {
	q, err := parseQuery(raw, now, "service", "from", "to")
	if err != nil {
		return r, err
	}
	if r.Service, err = q.name("service", false); err != nil {
		return r, err
	}
	if q.get("from") == "" && q.get("to") == "" {
		return r, nil // the caller's default
	}
	r.From, r.To, err = q.span(max)
	return r, err
}

// regressionsReq is the parameters of /api/v1/regressions.
type regressionsReq struct {
	Service string
	// Active is "" (every finding), "true" (the active ones) or "false"
	// (the resolved ones).
	Active string
}

func parseRegressionsReq(raw string, now time.Time) (r regressionsReq, err error) {
	q, err := parseQuery(raw, now, "service", "active")
	if err != nil {
		return r, err
	}
	if r.Service, err = q.name("service", false); err != nil {
		return r, err
	}
	r.Active = q.get("active")
	if r.Active != "" && r.Active != "true" && r.Active != "false" {
		return r, badParam("active", "%s: want true or false", printable(r.Active))
	}
	return r, nil
}

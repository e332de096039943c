package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// regressionJSON is one item of /api/v1/regressions: the finding as the
// detector made it (schema regress.Schema), and where to look at it.
type regressionJSON struct {
	regress.Finding
	Links regressionLinks `json:"links"`
}

// regressionLinks lead to the finding's evidence in the API: the diff of
// its two sides, and each side's flame graphs. Each is "" (left out) when
// the finding does not say enough to make it.
type regressionLinks struct {
	Diff      string `json:"diff,omitempty"`
	BaseFlame string `json:"base_flame,omitempty"`
	HeadFlame string `json:"head_flame,omitempty"`
}

// regressionQueries are a finding's links as query strings, for the API
// (absolute paths) and the page (relative ones) alike.
type regressionQueries struct {
	diff, baseFlame, headFlame string
}

func (q regressionQueries) api() regressionLinks {
	l := regressionLinks{}
	if q.diff != "" {
		l.Diff = "/api/v1/diff?" + q.diff
	}
	if q.baseFlame != "" {
		l.BaseFlame = "/flame?" + q.baseFlame
	}
	if q.headFlame != "" {
		l.HeadFlame = "/flame?" + q.headFlame
	}
	return l
}

// linksOf makes f's links: a side of the diff is its range of windows
// (what the detector compared), else its version; a flame graph needs
// the range. A range longer than a diff or a query may cover keeps its
// end.
func (s *Server) linksOf(f regress.Finding) regressionQueries {
	var q regressionQueries
	side := func(r regress.Range, version string, max time.Duration) string {
		if from, to, ok := rangeOf(r, max); ok {
			return stamp(from) + "/" + stamp(to)
		}
		return version
	}
	base := side(f.Base, f.BaseVersion, s.opts.MaxSeriesRange)
	head := side(f.Head, f.HeadVersion, s.opts.MaxSeriesRange)
	if base != "" && head != "" {
		q.diff = url.Values{"service": {f.Service}, "base": {base}, "head": {head}}.Encode()
	}
	flame := func(r regress.Range) string {
		from, to, ok := rangeOf(r, s.opts.MaxRange)
		if !ok {
			return ""
		}
		return url.Values{"service": {f.Service}, "from": {stamp(from)}, "to": {stamp(to)}}.Encode()
	}
	q.baseFlame, q.headFlame = flame(f.Base), flame(f.Head)
	return q
}

// rangeOf is r in whole seconds (the links' times), its start rounded
// down and its end up so that it keeps its windows, at most max long.
func rangeOf(r regress.Range, max time.Duration) (from, to time.Time, ok bool) {
	if r.From.IsZero() || !r.To.After(r.From) {
		return from, to, false
	}
	from, to = r.From.Truncate(time.Second), r.To.Truncate(time.Second)
	if to.Before(r.To) {
		to = to.Add(time.Second)
	}
	if to.Sub(from) > max {
		from = to.Add(-max)
	}
	return from, to, true
}

// regressions answers /api/v1/regressions: the findings stored, the
// active ones first, each group the most recently detected first;
// ?service= keeps one service's, ?active=true the active ones and
// ?active=false the resolved ones.
func (s *Server) regressions(w http.ResponseWriter, r *http.Request) {
	req, err := parseRegressionsReq(r.URL.RawQuery, s.now())
	if err != nil {
		writeError(w, err)
		return
	}
	fs, err := s.findings(req.Service)
	if err != nil {
		writeError(w, err)
		return
	}
	out := struct {
		Regressions []regressionJSON `json:"regressions"`
	}{Regressions: []regressionJSON{}}
	for _, f := range fs {
		if req.Active != "" && f.Resolved == (req.Active == "true") {
			continue
		}
		out.Regressions = append(out.Regressions, regressionJSON{Finding: f, Links: s.linksOf(f).api()})
	}
	writeJSON(w, http.StatusOK, out)
}

// findings are the stored findings of service ("" for all) in the order
// the API lists them, their times in UTC. A service neither stored nor
// with findings is 404.
func (s *Server) findings(service string) ([]regress.Finding, error) {
	all, err := s.src.Regressions()
	if err != nil {
		return nil, fmt.Errorf("reading the regressions: %w", err)
	}
	var fs []regress.Finding
	for _, f := range all {
		if service == "" || f.Service == service {
			fs = append(fs, utcFinding(f))
		}
	}
	if service != "" && len(fs) == 0 {
		if _, err := s.service(service, "", "service"); err != nil {
			return nil, err
		}
	}
	sortFindings(fs)
	return fs, nil
}

// sortFindings puts the active findings first, each group the most
// recently detected first.
func sortFindings(fs []regress.Finding) {
	slices.SortStableFunc(fs, func(a, b regress.Finding) int {
		if a.Resolved != b.Resolved {
			if a.Resolved {
				return 1
			}
			return -1
		}
		return cmp.Or(b.DetectedAt.Compare(a.DetectedAt), cmp.Compare(a.ID, b.ID))
	})
}

func utcFinding(f regress.Finding) regress.Finding {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.UTC()
	}
	f.DetectedAt, f.ResolvedAt = utc(f.DetectedAt), utc(f.ResolvedAt)
	f.Base.From, f.Base.To = utc(f.Base.From), utc(f.Base.To)
	f.Head.From, f.Head.To = utc(f.Head.From), utc(f.Head.To)
	return f
}

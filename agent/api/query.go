package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/diagnosis"
	"github.com/perfhound/perfhound/analyzer/obsdiff"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/report"
)

func (s *Server) now() time.Time { return s.opts.Now() }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.src.Healthy() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not collecting"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "collecting"})
}

// serviceJSON is a service as /api/v1/services shows it.
type serviceJSON struct {
	Name     string        `json:"name"`
	First    time.Time     `json:"first"`
	Last     time.Time     `json:"last"`
	Verdict  *Summary      `json:"verdict"` // null before any verdict
	Versions []versionJSON `json:"versions"`
}

type versionJSON struct {
	Version string            `json:"version"`
	First   time.Time         `json:"first"`
	Last    time.Time         `json:"last"`
	Labels  map[string]string `json:"labels,omitempty"`
}

func (s *Server) services(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery, s.now()); err != nil {
		writeError(w, err)
		return
	}
	svcs, err := s.src.Services()
	if err != nil {
		writeError(w, fmt.Errorf("reading the services: %w", err))
		return
	}
	out := struct {
		Services []serviceJSON `json:"services"`
	}{Services: []serviceJSON{}}
	for _, svc := range svcs {
		sj := serviceJSON{Name: svc.Name, First: svc.First.UTC(), Last: svc.Last.UTC(), Versions: []versionJSON{}}
		if svc.Verdict.Class != "" {
			v := svc.Verdict
			sj.Verdict = &v
		}
		for _, v := range svc.Versions {
			sj.Versions = append(sj.Versions, versionJSON{Version: v.Version, First: v.First.UTC(), Last: v.Last.UTC(), Labels: v.Labels})
		}
		out.Services = append(out.Services, sj)
	}
	writeJSON(w, http.StatusOK, out)
}

// service finds a service by name, 404 when the store has none of it, and
// checks that it has version (when not "").
func (s *Server) service(name, version, param string) (Service, error) {
	svcs, err := s.src.Services()
	if err != nil {
		return Service{}, fmt.Errorf("reading the services: %w", err)
	}
	for _, svc := range svcs {
		if svc.Name != name {
			continue
		}
		if version != "" && !slices.ContainsFunc(svc.Versions, func(v Version) bool { return v.Version == version }) {
			return Service{}, notFound("%s: service %q has no version %q", param, name, version)
		}
		return svc, nil
	}
	return Service{}, notFound("service: no service %q is stored", name)
}

// gather is the query's windows merged into one observation. It reads
// them a chunk (Options.ChunkSpan) at a time, each chunk decoded within a
// fresh budget of Options.QueryMemory and merged on its own, two chunks
// at a time (one decodes while the other merges), so that a query holds
// two chunks' windows and the merges so far, not the whole range's
// windows at once; at maxParts merged chunks they are merged into one
// (merging each chunk into all before it re-merged the samples so far
// once a chunk). It stops when ctx is done (the client left). param is
// the parameter to blame when a chunk does not fit. With profilesOnly,
// the windows' series and histograms are left out of the merge: a
// profile or the pprof UI has no use for them.
func (s *Server) gather(ctx context.Context, q Query, param string, profilesOnly bool) (*observation.Observation, error) {
	const (
		maxParts = 16
		workers  = 2
	)
	type chunk struct{ from, to time.Time }
	var chunks []chunk
	for from := q.From; from.Before(q.To); {
		to := from.Add(s.opts.ChunkSpan)
		if to.After(q.To) || !to.After(from) {
			to = q.To
		}
		chunks = append(chunks, chunk{from, to})
		from = to
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu    sync.Mutex
		parts []*observation.Observation
	)
	// add keeps a merged chunk, folding the parts into one at maxParts.
	add := func(part *observation.Observation) error {
		mu.Lock()
		defer mu.Unlock()
		parts = append(parts, part)
		if len(parts) < maxParts {
			return nil
		}
		m, err := observation.Merge(parts)
		parts = []*observation.Observation{m}
		return err
	}
	read := func(c chunk) error {
		cq := q
		cq.From, cq.To, cq.Budget = c.from, c.to, profdecode.NewBudget(s.opts.QueryMemory)
		recs, err := s.src.Range(cq)
		if errors.Is(err, profdecode.ErrOverBudget) {
			return badParam(param, "the windows from %s to %s hold more profile data than one query may decode at once (%d MiB): narrow the range (%v)", stamp(c.from), stamp(c.to), s.opts.QueryMemory>>20, err)
		}
		if err != nil {
			return fmt.Errorf("reading service %q from %s to %s: %w", q.Service, stamp(c.from), stamp(c.to), err)
		}
		obs := observations(recs, profilesOnly)
		if len(obs) == 0 {
			return nil
		}
		part, err := observation.Merge(obs)
		if err != nil {
			return err
		}
		return add(part)
	}
	next := make(chan chunk)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range next {
				if err := read(c); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, c := range chunks {
		select {
		case next <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if len(parts) > 1 {
		m, err := observation.Merge(parts)
		if err != nil {
			return nil, err
		}
		parts = []*observation.Observation{m}
	}
	if len(parts) == 0 {
		what := "service " + q.Service
		if q.Version != "" {
			what += " version " + q.Version
		}
		return nil, notFound("%s: nothing stored of %s from %s to %s", param, what, stamp(q.From), stamp(q.To))
	}
	return parts[0], nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// observations are the records' observations, oldest first; with
// profilesOnly, copies without their series and histograms.
func observations(recs []Record, profilesOnly bool) []*observation.Observation {
	obs := make([]*observation.Observation, 0, len(recs))
	for _, r := range recs {
		o := r.Obs
		if o == nil {
			continue
		}
		if profilesOnly {
			c := *o
			c.Series, c.Histograms = nil, nil
			o = &c
		}
		obs = append(obs, o)
	}
	return obs
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	req, err := parseProfileReq(r.URL.RawQuery, s.now(), s.opts.MaxRange)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.service(req.Service, req.Version, "version"); err != nil {
		writeError(w, err)
		return
	}
	release, err := s.acquire()
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	o, err := s.gather(r.Context(), Query{Service: req.Service, Version: req.Version, From: req.From, To: req.To, Kinds: []observation.ProfileKind{req.Kind}}, "from", true)
	if err != nil {
		writeError(w, err)
		return
	}
	p, source, err := mergedProfile(o, req.Kind, req.Source)
	if err != nil {
		writeError(w, err)
		return
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		writeError(w, fmt.Errorf("writing the merged profile: %w", err))
		return
	}
	name := fmt.Sprintf("%s-%s-%s-%s.pb.gz", fileSafe(req.Service), req.Kind, source, req.From.UTC().Format("20060102T150405Z"))
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Perfhound-Profile-Source", string(source))
	write(w, "application/octet-stream", buf.Bytes())
}

// mergedProfile merges o's profiles of kind from one source (those of
// several labels): source, or the first of profileSources that has any. The profiles of
// one kind from several sources are the same time seen twice (eBPF and a
// Go service's endpoint both see its CPU), so they are never summed.
func mergedProfile(o *observation.Observation, kind observation.ProfileKind, source observation.ProfileSource) (*profile.Profile, observation.ProfileSource, error) {
	bySource := map[observation.ProfileSource][]*profile.Profile{}
	for _, p := range o.ProfilesOf(kind) {
		if p.Profile != nil {
			bySource[p.Source] = append(bySource[p.Source], p.Profile)
		}
	}
	if source == "" {
		for _, src := range profileSources {
			if len(bySource[src]) > 0 {
				source = src
				break
			}
		}
		if source == "" {
			for src := range bySource { // an unknown source: any, but the same every time
				if source == "" || src < source {
					source = src
				}
			}
		}
	}
	ps := bySource[source]
	if len(ps) == 0 {
		if len(bySource) > 0 {
			var have []string
			for src := range bySource {
				have = append(have, string(src))
			}
			slices.Sort(have)
			return nil, "", notFound("source: no %s profiles from %s in the range; there are from %s", kind, source, strings.Join(have, ", "))
		}
		return nil, "", notFound("type: no %s profiles of the service in the range", kind)
	}
	p := ps[0]
	var err error
	if len(ps) > 1 {
		p, err = profile.Merge(ps)
	}
	if err != nil {
		return nil, "", fmt.Errorf("merging %d %s profiles from %s: %w", len(ps), kind, source, err)
	}
	return p, source, nil
}

// fileSafe is a service name as part of a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.' || r == '@' {
			return r
		}
		return '_'
	}, s)
}

func (s *Server) diagnosis(w http.ResponseWriter, r *http.Request) {
	req, err := parseDiagnosisReq(r.URL.RawQuery, s.now(), s.opts.MaxSeriesRange)
	if err != nil {
		writeError(w, err)
		return
	}
	body, contentType, err := s.diagnose(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	write(w, contentType, body)
}

// diagnose is diagnose's report of a service's range, rendered.
func (s *Server) diagnose(ctx context.Context, req diagnosisReq) ([]byte, string, error) {
	if _, err := s.service(req.Service, req.Version, "version"); err != nil {
		return nil, "", err
	}
	release, err := s.acquire()
	if err != nil {
		return nil, "", err
	}
	defer release()
	o, err := s.gather(ctx, Query{Service: req.Service, Version: req.Version, From: req.From, To: req.To}, "from", false)
	if err != nil {
		return nil, "", err
	}
	host, err := s.src.HostSeries(req.From, req.To)
	if err != nil {
		return nil, "", fmt.Errorf("reading the host's series from %s to %s: %w", stamp(req.From), stamp(req.To), err)
	}
	o.Series = append(o.Series, host...)
	rep := diagnosis.Analyze(o, diagnosis.DefaultOptions())
	var buf bytes.Buffer
	contentType := "text/plain; charset=utf-8"
	switch req.Format {
	case "json":
		err, contentType = rep.WriteJSON(&buf), "application/json"
	case "markdown":
		err, contentType = rep.WriteMarkdown(&buf), "text/markdown; charset=utf-8"
	case "html":
		err, contentType = rep.WriteHTML(&buf), "text/html; charset=utf-8"
	default:
		err = rep.WriteText(&buf, verdict.TextOptions{})
	}
	if err != nil {
		return nil, "", fmt.Errorf("rendering the diagnosis: %w", err)
	}
	return buf.Bytes(), contentType, nil
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	req, err := parseDiffReq(r.URL.RawQuery, s.now(), s.opts.MaxSeriesRange)
	if err != nil {
		writeError(w, err)
		return
	}
	text, err := s.renderDiff(r.Context(), req, report.Format(req.Format))
	if err != nil {
		writeError(w, err)
		return
	}
	contentType := "text/plain; charset=utf-8"
	switch req.Format {
	case "json":
		contentType = "application/json"
	case "markdown":
		contentType = "text/markdown; charset=utf-8"
	}
	write(w, contentType, text)
}

// renderDiff is the comparison of req's two sides in format; in JSON
// with the regression detector's comparison of the functions
// (functionsJSON).
func (s *Server) renderDiff(ctx context.Context, req diffReq, format report.Format) ([]byte, error) {
	d, fn, err := s.compare(ctx, req, format == report.JSON)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := d.Render(&buf, format, obsdiff.RenderOptions{}); err != nil {
		return nil, fmt.Errorf("rendering the diff: %w", err)
	}
	if format == report.JSON {
		return withFunctions(buf.Bytes(), fn)
	}
	return buf.Bytes(), nil
}

// compare is perfhound compare of the two sides' merged windows, and
// with functions the detector's comparison of their windows.
func (s *Server) compare(ctx context.Context, req diffReq, functions bool) (*obsdiff.Diff, functionsJSON, error) {
	var fn functionsJSON
	svc, err := s.service(req.Service, "", "service")
	if err != nil {
		return nil, fn, err
	}
	base, err := s.sideQuery(svc, req.Base, "base")
	if err != nil {
		return nil, fn, err
	}
	head, err := s.sideQuery(svc, req.Head, "head")
	if err != nil {
		return nil, fn, err
	}
	release, err := s.acquire()
	if err != nil {
		return nil, fn, err
	}
	defer release()
	sides := [2]*observation.Observation{}
	for i, q := range []Query{base, head} {
		if sides[i], err = s.gather(ctx, q, [2]string{"base", "head"}[i], false); err != nil {
			return nil, fn, err
		}
	}
	opt := obsdiff.DefaultOptions()
	opt.BaseName, opt.HeadName = sideName(req.Service, req.Base), sideName(req.Service, req.Head)
	d, err := obsdiff.Compare(sides[0], sides[1], opt)
	if err != nil {
		return nil, fn, fmt.Errorf("comparing %s with %s: %w", opt.BaseName, opt.HeadName, err)
	}
	if functions {
		if fn, err = s.functions(ctx, base, head); err != nil {
			return nil, fn, err
		}
	}
	return d, fn, nil
}

// sideQuery is the query of one side of a diff: a range as given, or a
// version's last VersionSpan.
func (s *Server) sideQuery(svc Service, sd side, param string) (Query, error) {
	q := Query{Service: svc.Name, From: sd.From, To: sd.To}
	if sd.Version == "" {
		return q, nil
	}
	i := slices.IndexFunc(svc.Versions, func(v Version) bool { return v.Version == sd.Version })
	if i < 0 {
		return q, notFound("%s: service %q has no version %q, and it is not a range FROM/TO", param, svc.Name, sd.Version)
	}
	v := svc.Versions[i]
	q.Version = v.Version
	// Last is the end of the version's last window: its start is before.
	q.To = v.Last
	q.From = v.Last.Add(-s.opts.VersionSpan)
	if q.From.Before(v.First) {
		q.From = v.First
	}
	return q, nil
}

// sideName names a side in the diff's report.
func sideName(service string, sd side) string {
	if sd.Version != "" {
		return service + " version " + sd.Version
	}
	return fmt.Sprintf("%s %s to %s", service, stamp(sd.From), stamp(sd.To))
}

// uiPath is the path of the pprof UI of a service's range, relative to
// the API's root.
func uiPath(service string, from, to time.Time) string {
	return "ui/" + url.PathEscape(service) + "/" + stamp(from) + "/" + stamp(to) + "/"
}

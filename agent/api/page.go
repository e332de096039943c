package api

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/htmlreport"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/report"
	"github.com/perfhound/perfhound/internal/textfmt"
)

//go:embed page.html.tmpl
var pageTemplate string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"upper": func(c verdict.Class) string { return strings.ToUpper(string(c)) },
	"pct":   textfmt.Pct,
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"loads": func(l map[verdict.Class]float64) string { return textfmt.Loads(l, verdict.ClassNone) },
}).Parse(pageTemplate))

// pageData is the page: the services, each with its chart.
type pageData struct {
	CSS      template.CSS
	Healthy  bool
	Now      time.Time
	From, To time.Time // the charts' range
	Services []pageService
	Hidden   int // services past Options.PageServices
	Classes  []verdict.Class
	// Diff, on the diff page: the report and where it came from.
	Diff *pageDiff
}

type pageService struct {
	Name        string
	First, Last time.Time
	Verdict     Summary
	Bad         bool // bound by a class, not none
	Chart       chart
	Versions    []Version
	// Regressions are the service's findings, the active first.
	Regressions []pageRegression
	// Links, relative to the page.
	FlameHour, FlameRange, DiagnosisHour, Diff, DiffJSON string
	// Form defaults: the charts' range.
	FromValue, ToValue string
}

// pageRegression is a finding as the page lists it.
type pageRegression struct {
	ID, Kind   string
	What       string // the blamed function, or the resource
	IsFunction bool
	Change     string // "+11.0% (95% CI +6.0% to +16.0%)"
	Base, Head string // versions
	DetectedAt time.Time
	Resolved   bool
	ResolvedBy string
	Evidence   []string
	// Links, relative to the page; "" when the finding lacks what they
	// need.
	Diff, DiffJSON, BaseFlame, HeadFlame string
}

type pageDiff struct {
	Service, Base, Head string
	Text                string
	JSON, Markdown      string // links
}

// page renders the web page: every service (the most recently seen first,
// at most Options.PageServices) with its verdict over the range (the last
// 24 hours unless from= and to= say otherwise), its versions, and links.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	now := s.now().Truncate(time.Second)
	req, err := parseRangeReq(r.URL.RawQuery, now, s.opts.MaxRange)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.From.IsZero() {
		req.From, req.To = now.Add(-24*time.Hour), now
	}
	svcs, err := s.src.Services()
	if err != nil {
		writeError(w, fmt.Errorf("reading the services: %w", err))
		return
	}
	if req.Service != "" {
		svcs = slices.DeleteFunc(svcs, func(svc Service) bool { return svc.Name != req.Service })
		if len(svcs) == 0 {
			writeError(w, notFound("service: no service %q is stored", req.Service))
			return
		}
	}
	slices.SortStableFunc(svcs, func(a, b Service) int { return b.Last.Compare(a.Last) })
	all, err := s.src.Regressions()
	if err != nil {
		writeError(w, fmt.Errorf("reading the regressions: %w", err))
		return
	}
	findings := map[string][]regress.Finding{}
	for _, f := range all {
		findings[f.Service] = append(findings[f.Service], utcFinding(f))
	}
	data := pageData{CSS: htmlreport.Stylesheet(), Healthy: s.src.Healthy(), Now: now, From: req.From, To: req.To, Classes: verdict.Classes}
	if len(svcs) > s.opts.PageServices {
		data.Hidden = len(svcs) - s.opts.PageServices
		svcs = svcs[:s.opts.PageServices]
	}
	for _, svc := range svcs {
		points, err := s.src.Verdicts(svc.Name, req.From, req.To)
		if err != nil {
			writeError(w, fmt.Errorf("reading the verdicts of %q: %w", svc.Name, err))
			return
		}
		data.Services = append(data.Services, s.pageService(svc, points, findings[svc.Name], req.From, req.To, now))
	}
	s.render(w, data)
}

func (s *Server) pageService(svc Service, points []VerdictPoint, fs []regress.Finding, from, to, now time.Time) pageService {
	ps := pageService{
		Name: svc.Name, First: svc.First, Last: svc.Last, Verdict: svc.Verdict, Versions: svc.Versions,
		Bad:       svc.Verdict.Class != "" && svc.Verdict.Class != verdict.ClassNone,
		Chart:     newChart(points, from, to),
		FromValue: stamp(from), ToValue: stamp(to),
	}
	// The last hour the service was seen, not the last hour of the clock:
	// a service that stopped is still worth a look.
	end := svc.Last
	if end.IsZero() || end.After(now) {
		end = now
	}
	hourFrom := end.Add(-time.Hour)
	// A window starts before its end: the range must hold the last start.
	ps.FlameHour = uiPath(svc.Name, hourFrom, end)
	ps.FlameRange = uiPath(svc.Name, from, to)
	ps.DiagnosisHour = "api/v1/diagnosis?" + url.Values{"service": {svc.Name}, "from": {stamp(hourFrom)}, "to": {stamp(end)}, "format": {"html"}}.Encode()
	if n := len(svc.Versions); n >= 2 {
		v := url.Values{"service": {svc.Name}, "base": {svc.Versions[n-2].Version}, "head": {svc.Versions[n-1].Version}}
		ps.Diff = "diff?" + v.Encode()
		ps.DiffJSON = "api/v1/diff?" + v.Encode()
	}
	sortFindings(fs)
	for _, f := range fs {
		ps.Regressions = append(ps.Regressions, s.pageRegression(f))
	}
	ps.Chart.Markers = regressionMarkers(fs, from, to)
	return ps
}

func (s *Server) pageRegression(f regress.Finding) pageRegression {
	pr := pageRegression{ID: f.ID, Kind: string(f.Kind), What: f.Function, IsFunction: f.Function != "",
		Change: change(f), Base: f.BaseVersion, Head: f.HeadVersion, DetectedAt: f.DetectedAt,
		Resolved: f.Resolved, ResolvedBy: f.ResolvedBy, Evidence: f.Evidence}
	if pr.What == "" {
		pr.What = f.Resource
	}
	q := s.linksOf(f)
	if q.diff != "" {
		pr.Diff, pr.DiffJSON = "diff?"+q.diff, "api/v1/diff?"+q.diff
	}
	if q.baseFlame != "" {
		pr.BaseFlame = "flame?" + q.baseFlame
	}
	if q.headFlame != "" {
		pr.HeadFlame = "flame?" + q.headFlame
	}
	return pr
}

// change is a finding's change with its interval, in percent.
func change(f regress.Finding) string {
	c := fmt.Sprintf("%+.1f%%", f.ChangePct)
	if f.Confidence > 0 && (f.CILow != 0 || f.CIHigh != 0) {
		c += fmt.Sprintf(" (%s CI %+.1f%% to %+.1f%%)", textfmt.Pct(f.Confidence), f.CILow, f.CIHigh)
	}
	return c
}

// marker is a regression on a service's chart: a line at the end of the
// window that found it.
type marker struct {
	X        float64
	ID       string
	Resolved bool
	Title    string
}

// regressionMarkers places fs detected within [from, to) on the chart.
func regressionMarkers(fs []regress.Finding, from, to time.Time) []marker {
	span := to.Sub(from)
	var out []marker
	for _, f := range fs {
		if span <= 0 || f.DetectedAt.Before(from) || !f.DetectedAt.Before(to) {
			continue
		}
		what := cmp.Or(f.Function, f.Resource)
		title := fmt.Sprintf("%s: %s regression of %s, %s, %s → %s", f.DetectedAt.Format("2006-01-02 15:04:05"), f.Kind, what, change(f), f.BaseVersion, f.HeadVersion)
		if f.Resolved {
			title += ", resolved by " + f.ResolvedBy
		}
		out = append(out, marker{X: float64(chartW) * float64(f.DetectedAt.Sub(from)) / float64(span), ID: f.ID, Resolved: f.Resolved, Title: title})
	}
	return out
}

func (s *Server) render(w http.ResponseWriter, data pageData) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, data); err != nil {
		writeError(w, fmt.Errorf("rendering the page: %w", err))
		return
	}
	write(w, "text/html; charset=utf-8", buf.Bytes())
}

// flame sends the page's range form to the pprof UI of the range.
func (s *Server) flame(w http.ResponseWriter, r *http.Request) {
	req, err := parseRangeReq(r.URL.RawQuery, s.now(), s.opts.MaxRange)
	if err == nil && req.Service == "" {
		err = badParam("service", "required")
	}
	if err == nil && req.From.IsZero() {
		req.From, req.To, err = query{now: s.now()}.span(s.opts.MaxRange)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", uiPath(req.Service, req.From, req.To))
	w.WriteHeader(http.StatusSeeOther)
}

// diffPage shows /api/v1/diff's comparison as text in the page.
func (s *Server) diffPage(w http.ResponseWriter, r *http.Request) {
	req, err := parseDiffReq(r.URL.RawQuery, s.now(), s.opts.MaxSeriesRange)
	if err != nil {
		writeError(w, err)
		return
	}
	text, err := s.renderDiff(r.Context(), req, report.Text)
	if err != nil {
		writeError(w, err)
		return
	}
	v := url.Values{"service": {req.Service}, "base": {req.Base.Raw}, "head": {req.Head.Raw}}
	pd := &pageDiff{Service: req.Service, Base: req.Base.Raw, Head: req.Head.Raw, Text: string(text), JSON: "api/v1/diff?" + v.Encode()}
	v.Set("format", "markdown")
	pd.Markdown = "api/v1/diff?" + v.Encode()
	s.render(w, pageData{CSS: htmlreport.Stylesheet(), Healthy: s.src.Healthy(), Now: s.now(), Diff: pd})
}

// chart is a service's load by class over the page's range, as stacked
// bars: one bar per slot of the range, its height the windows' loads
// averaged by their length (threads bound per second). A slot without a
// window is a gap: the service was not seen, or the agent not running.
type chart struct {
	W, H     int
	PlotH    float64
	Bars     []bar
	Max      float64 // the y axis' top, in threads
	MaxLabel string
	From, To string
	Windows  int // windows charted
	// Markers are the regressions detected within the range.
	Markers []marker
}

type bar struct {
	X, W  float64
	Rects []rect
	Title string
}

type rect struct {
	Class verdict.Class
	Y, H  float64
}

const (
	chartW, chartH = 720, 120
	chartSlots     = 120
)

func newChart(points []VerdictPoint, from, to time.Time) chart {
	c := chart{W: chartW, H: chartH, PlotH: chartH - 16, From: from.UTC().Format("01-02 15:04"), To: to.UTC().Format("01-02 15:04"), Windows: len(points)}
	span := to.Sub(from)
	if span <= 0 {
		return c
	}
	slot := span / chartSlots
	if slot <= 0 {
		slot = 1
	}
	type acc struct {
		load map[verdict.Class]float64
		secs float64
		n    int
	}
	slots := make([]acc, chartSlots)
	for _, p := range points {
		if p.Start.Before(from) || !p.Start.Before(to) {
			continue
		}
		i := min(int(p.Start.Sub(from)/slot), chartSlots-1)
		a := &slots[i]
		if a.load == nil {
			a.load = map[verdict.Class]float64{}
		}
		w := p.Duration.Seconds()
		if w <= 0 {
			w = 1
		}
		for cl, l := range p.Verdict.Load {
			a.load[cl] += l * w
		}
		a.secs += w
		a.n++
	}
	for i := range slots {
		a := &slots[i]
		total := 0.0
		for cl := range a.load {
			a.load[cl] /= a.secs
			total += a.load[cl]
		}
		c.Max = max(c.Max, total)
	}
	if c.Max <= 0 {
		c.Max = 1
	}
	c.MaxLabel = textfmt.Num(c.Max)
	bw := float64(chartW) / chartSlots
	for i, a := range slots {
		if a.n == 0 {
			continue
		}
		b := bar{X: float64(i) * bw, W: bw * 0.85}
		y := c.PlotH
		var parts []string
		for _, cl := range verdict.Classes {
			l := a.load[cl]
			if l <= 0 {
				continue
			}
			h := l / c.Max * c.PlotH
			y -= h
			b.Rects = append(b.Rects, rect{Class: cl, Y: y, H: h})
			parts = append(parts, fmt.Sprintf("%s %s", cl, textfmt.Num(l)))
		}
		start := from.Add(time.Duration(i) * slot)
		b.Title = fmt.Sprintf("%s: %s (%d windows)", start.UTC().Format("2006-01-02 15:04"), orNone(parts), a.n)
		c.Bars = append(c.Bars, b)
	}
	return c
}

func orNone(parts []string) string {
	if len(parts) == 0 {
		return "no load"
	}
	return strings.Join(parts, ", ")
}

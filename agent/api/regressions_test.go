package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/regress"
)

// versionRange is the range of a service's version in src.
func versionRange(t *testing.T, src Source, service, version string) regress.Range {
	t.Helper()
	svcs, err := src.Services()
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range svcs {
		for _, v := range svc.Versions {
			if svc.Name == service && v.Version == version {
				return regress.Range{Version: version, From: v.First, To: v.Last, Windows: windowsPerVersion}
			}
		}
	}
	t.Fatalf("no version %s of %s", version, service)
	return regress.Range{}
}

// testFindings are regressions of the test source's services: shop's v2
// slows main.hash (active, its ranges the versions'), an older one of
// shop's resolved by v2 (versions only), and a leak of locks (active,
// the latest).
func testFindings(t *testing.T, src Source) []regress.Finding {
	v1, v2 := versionRange(t, src, "shop", "v1"), versionRange(t, src, "shop", "v2")
	g1 := versionRange(t, src, "locks", "g1")
	return []regress.Finding{
		{ID: "fixed", Service: "shop", Kind: regress.KindVersion, Function: "main.parse", BaseVersion: "v1", HeadVersion: "v2",
			DetectedAt: testNow.Add(-100 * time.Minute), ChangePct: 7, PValue: 1e-4,
			Resolved: true, ResolvedAt: v2.To, ResolvedBy: "v2"},
		{ID: "slow", Service: "shop", Kind: regress.KindVersion, Function: "main.hash", Path: []string{"main.main", "main.hash"},
			BaseVersion: "v1", HeadVersion: "v2", Base: v1, Head: v2, DetectedAt: v2.To,
			ChangePct: 11.04, CILow: 6, CIHigh: 16, Confidence: 0.95, PValue: 3e-6, Unit: "share of the service's CPU",
			Cum:      regress.Change{Base: 0.05, Head: 0.0555},
			Evidence: []string{"main.hash's share of the service's CPU rose from 5.0% to 5.6% (+11%, 95% CI +6..+16%)"}},
		{ID: "leak", Service: "locks", Kind: regress.KindLeak, Resource: "memory", BaseVersion: "g1", HeadVersion: "g1",
			Base: g1, Head: g1, DetectedAt: testNow.Add(-5 * time.Minute), ChangePct: 25, PValue: 1e-5},
	}
}

func regressionIDs(items []map[string]any) string {
	var ids []string
	for _, it := range items {
		ids = append(ids, fmt.Sprint(it["id"]))
	}
	return strings.Join(ids, ",")
}

// TestRegressionsList: the findings, active first and the latest first,
// each with the fields the issue names and links that answer; filtered
// by service and state.
func TestRegressionsList(t *testing.T) {
	src := newTestSource(t)
	src.findings = testFindings(t, src)
	_, ts := newTestServer(t, src, Options{})
	list := func(query string) []map[string]any {
		t.Helper()
		a := get(t, ts, "/api/v1/regressions"+query)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", query, a.status, a.body)
		}
		var out struct{ Regressions []map[string]any }
		a.json(t, &out)
		return out.Regressions
	}
	all := list("")
	if got := regressionIDs(all); got != "leak,slow,fixed" {
		t.Fatalf("listed %s, want leak,slow,fixed (active first, the latest first)", got)
	}
	slow := all[1]
	for _, k := range []string{"id", "service", "function", "change_pct", "base_version", "head_version", "detected_at", "kind", "p_value", "evidence", "base", "head", "resolved", "links", "path", "ci_low_pct", "ci_high_pct"} {
		if _, ok := slow[k]; !ok {
			t.Errorf("an item lacks %q: %v", k, slow)
		}
	}
	if slow["function"] != "main.hash" || slow["change_pct"] != 11.04 || slow["kind"] != "version" || slow["p_value"] != 3e-6 {
		t.Errorf("slow: %v", slow)
	}
	if d, err := time.Parse(time.RFC3339, fmt.Sprint(slow["detected_at"])); err != nil || !strings.HasSuffix(fmt.Sprint(slow["detected_at"]), "Z") || d.IsZero() {
		t.Errorf("detected_at %v is not an RFC 3339 time in UTC (%v)", slow["detected_at"], err)
	}

	// The links answer: the diff of the two ranges (v1 hashes, v2 adds
	// I/O), and each side's flame graphs.
	links := func(item map[string]any) map[string]string {
		out := map[string]string{}
		for k, v := range item["links"].(map[string]any) {
			out[k] = v.(string)
		}
		return out
	}
	ls := links(slow)
	if !strings.HasPrefix(ls["diff"], "/api/v1/diff?") || !strings.HasPrefix(ls["base_flame"], "/flame?") || !strings.HasPrefix(ls["head_flame"], "/flame?") {
		t.Fatalf("links %v", ls)
	}
	d := get(t, ts, ls["diff"])
	var doc diffDoc
	d.json(t, &doc)
	if d.status != 200 || !strings.HasPrefix(doc.Base.Name, "shop 2026-12-04T10:00:00Z to ") {
		t.Errorf("the diff link: %d, base %q", d.status, doc.Base.Name)
	}
	ioGrew := false
	for _, l := range doc.Load {
		if l.Class == "io" && l.Head > l.Base+0.5 {
			ioGrew = true
		}
	}
	if !ioGrew {
		t.Errorf("the diff of the finding's ranges does not show v2's I/O: %+v", doc.Load)
	}
	for _, side := range []string{"base_flame", "head_flame"} {
		resp, err := ts.Client().Get(ts.URL + ls[side])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.Path, "/ui/shop/") {
			t.Errorf("%s ended at %d %s", side, resp.StatusCode, resp.Request.URL.Path)
		}
	}
	// A finding with versions and no ranges: the diff of the versions,
	// no flame graphs.
	lf := links(all[2])
	if lf["diff"] != "/api/v1/diff?base=v1&head=v2&service=shop" || lf["base_flame"] != "" || lf["head_flame"] != "" {
		t.Errorf("links of a finding without ranges: %v", lf)
	}
	if d := get(t, ts, lf["diff"]); d.status != 200 {
		t.Errorf("%s: %d", lf["diff"], d.status)
	}

	for query, want := range map[string]string{
		q("service", "shop"):                    "slow,fixed",
		q("active", "true"):                     "leak,slow",
		q("active", "false"):                    "fixed",
		q("service", "locks", "active", "true"): "leak",
	} {
		if got := regressionIDs(list(query)); got != want {
			t.Errorf("%s: %s, want %s", query, got, want)
		}
	}
	src.findings = src.findings[:1] // shop's only
	if got := list(q("service", "locks")); len(got) != 0 {
		t.Errorf("a service without regressions: %v", got)
	}
	for query, status := range map[string]int{
		q("service", "nope"):    404,
		q("active", "yes"):      400,
		q("servce", "shop"):     400,
		"?active=true&active=1": 400,
	} {
		if a := get(t, ts, "/api/v1/regressions"+query); a.status != status {
			t.Errorf("%s: %d %s, want %d", query, a.status, a.body, status)
		}
	}
}

// A side longer than a diff may cover keeps its last 24 hours in the
// link; times are whole seconds, the range's start rounded down and its
// end up.
func TestRegressionLinks(t *testing.T) {
	s, _ := newTestServer(t, newTestSource(t), Options{})
	f := regress.Finding{Service: "a b", BaseVersion: "v1", HeadVersion: "v2",
		Base: regress.Range{From: testNow.Add(-72 * time.Hour), To: testNow.Add(-time.Hour)},
		Head: regress.Range{From: testNow.Add(-time.Hour + 500*time.Millisecond), To: testNow.Add(-1500 * time.Millisecond)}}
	got := s.linksOf(f).api()
	v, err := url.ParseQuery(strings.TrimPrefix(got.Diff, "/api/v1/diff?"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("service") != "a b" || v.Get("base") != "2026-12-03T11:00:00Z/2026-12-04T11:00:00Z" || v.Get("head") != "2026-12-04T11:00:00Z/2026-12-04T11:59:59Z" {
		t.Errorf("diff link %s: %v", got.Diff, v)
	}
	if got.BaseFlame != "/flame?from=2026-12-01T12%3A00%3A00Z&service=a+b&to=2026-12-04T11%3A00%3A00Z" {
		t.Errorf("base flame link %s", got.BaseFlame)
	}
	if got := s.linksOf(regress.Finding{Service: "x"}).api(); got != (regressionLinks{}) {
		t.Errorf("a finding without versions or ranges has links %+v", got)
	}
}

// TestRegressionsFromStore: the store's findings through StoreSource.
func TestRegressionsFromStore(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := regress.Finding{ID: "x1", Service: "shop", Kind: regress.KindDrift, Function: "main.f", DetectedAt: testNow, ChangePct: 9}
	if _, err := st.PutFindings([]regress.Finding{f}); err != nil {
		t.Fatal(err)
	}
	_, ts := newTestServer(t, StoreSource(st, func() bool { return true }), Options{})
	a := get(t, ts, "/api/v1/regressions")
	var out struct{ Regressions []regress.Finding }
	if err := json.Unmarshal(a.body, &out); err != nil || a.status != 200 || len(out.Regressions) != 1 || out.Regressions[0].ID != "x1" || out.Regressions[0].ChangePct != 9 {
		t.Errorf("%d %s", a.status, a.body)
	}
}

// TestPageRegressions: each service's regressions on its chart (a marker
// where each was detected) and in a list with their links.
func TestPageRegressions(t *testing.T) {
	src := newTestSource(t)
	src.findings = testFindings(t, src)
	_, ts := newTestServer(t, src, Options{})
	page := string(get(t, ts, "/").body)
	shop := page[strings.Index(page, `data-service="shop"`):]
	shop = shop[:strings.Index(shop, "</section>")]
	slowX := float64(chartW) * float64(src.findings[1].DetectedAt.Sub(testNow.Add(-24*time.Hour))) / float64(24*time.Hour)
	for _, want := range []string{
		`<g class="regression-marker" data-id="slow">`,
		fmt.Sprintf(`<line class="regression-marker" x1="%.2f"`, slowX),
		`<g class="regression-marker" data-id="fixed">`, `<line class="regression-marker resolved"`,
		`<tr class="regression active" data-id="slow" data-kind="version">`,
		`<code class="function">main.hash</code>`,
		`&#43;11.0% (95% CI &#43;6.0% to &#43;16.0%)`, // html/template escapes +
		`<code>v1</code> → <code>v2</code>`,
		`main.hash&#39;s share of the service&#39;s CPU rose`,
		`<a class="regression-diff" href="diff?base=`,
		`<a class="regression-head-flame" href="flame?from=`,
		`<tr class="regression resolved" data-id="fixed"`, `resolved by <code>v2</code>`,
	} {
		if !strings.Contains(shop, want) {
			t.Errorf("shop's section lacks %s", want)
		}
	}
	if strings.Contains(shop, "None detected.") || strings.Contains(shop, `data-id="leak"`) {
		t.Errorf("shop's section says none, or shows locks' leak")
	}
	if !strings.Contains(page, `<tr class="regression active" data-id="leak" data-kind="leak">`) {
		t.Errorf("locks' leak is not listed")
	}
	// Out of the charted range: listed, not marked.
	page = string(get(t, ts, "/"+q("from", "-50m", "to", "now")).body)
	if strings.Contains(page, `<g class="regression-marker" data-id="fixed">`) || !strings.Contains(page, `data-id="fixed" data-kind`) {
		t.Errorf("a regression detected before the range is marked, or not listed")
	}
}

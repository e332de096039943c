package api

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

func TestPage(t *testing.T) {
	_, ts := newTestServer(t, newTestSource(t), Options{})
	a := get(t, ts, "/")
	page := string(a.body)
	if a.status != 200 || a.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %v", a.status, a.header)
	}
	for _, want := range []string{
		`data-service="shop"`, `data-service="locks"`,
		`<code>v1</code>`, `<code>v2</code>`,
		`href="diff?base=v1&amp;head=v2&amp;service=shop"`,
		`href="ui/shop/`,
		"None detected.",
		`class="cls-fill-cpu"`, `class="cls-fill-io"`,
		`id="health">collecting`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// No external assets: nothing is fetched from elsewhere.
	for _, bad := range []string{"<script src", "<link", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("page has %q", bad)
		}
	}
	// The most recently seen service first: locks' windows end after
	// shop's.
	if strings.Index(page, `data-service="locks"`) > strings.Index(page, `data-service="shop"`) {
		t.Errorf("shop listed before locks, which was seen last")
	}

	a = get(t, ts, "/"+q("service", "locks"))
	if strings.Contains(string(a.body), `data-service="shop"`) || !strings.Contains(string(a.body), `data-service="locks"`) {
		t.Errorf("?service=locks shows other services")
	}
	if a := get(t, ts, "/"+q("service", "nope")); a.status != 404 {
		t.Errorf("?service=nope: %d", a.status)
	}

	// The flame form sends to the UI of the range.
	resp, err := ts.Client().Get(ts.URL + "/flame" + q("service", "shop", "from", "2026-12-04T10:00:00Z", "to", "2026-12-04T11:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/ui/shop/2026-12-04T10:00:00Z/2026-12-04T11:00:00Z/" {
		t.Errorf("/flame ended at %d %s", resp.StatusCode, resp.Request.URL.Path)
	}

	a = get(t, ts, "/diff"+q("service", "shop", "base", "v1", "head", "v2"))
	if a.status != 200 || !strings.Contains(string(a.body), `<pre class="report">`) || !strings.Contains(string(a.body), "io load grew") {
		t.Errorf("diff page: %d %.400s", a.status, a.body)
	}
}

// TestChart checks the chart's arithmetic: windows in one slot are
// averaged by their length, classes stack in their order, and the tallest
// bar fills the plot.
func TestChart(t *testing.T) {
	from := testNow.Add(-chartSlots * time.Minute) // a slot a minute
	points := []VerdictPoint{
		{Start: from, Duration: 10 * time.Second, Verdict: Summary{Load: map[verdict.Class]float64{"cpu": 1, "io": 0.5}}},
		{Start: from.Add(20 * time.Second), Duration: 30 * time.Second, Verdict: Summary{Load: map[verdict.Class]float64{"cpu": 2}}},
		{Start: from.Add(5 * time.Minute), Duration: 10 * time.Second, Verdict: Summary{Load: map[verdict.Class]float64{"network": 0.25}}},
		{Start: from.Add(-time.Second), Duration: time.Second, Verdict: Summary{Load: map[verdict.Class]float64{"cpu": 100}}},
		{Start: testNow, Duration: time.Second, Verdict: Summary{Load: map[verdict.Class]float64{"cpu": 100}}},
	}
	c := newChart(points, from, testNow)
	if len(c.Bars) != 2 {
		t.Fatalf("%d bars, want 2 (points outside the range left out)", len(c.Bars))
	}
	// Slot 0: cpu (1×10 + 2×30)/40 = 1.75, io 0.5×10/40 = 0.125.
	if want := 1.875; math.Abs(c.Max-want) > 1e-9 {
		t.Errorf("max %v, want %v", c.Max, want)
	}
	b := c.Bars[0]
	if len(b.Rects) != 2 || b.Rects[0].Class != "cpu" || b.Rects[1].Class != "io" {
		t.Fatalf("slot 0 rects %+v", b.Rects)
	}
	if got := b.Rects[0].H + b.Rects[1].H; math.Abs(got-c.PlotH) > 1e-9 || math.Abs(b.Rects[1].Y) > 1e-9 {
		t.Errorf("the tallest bar is %v high from %v, want the plot's %v from 0", got, b.Rects[1].Y, c.PlotH)
	}
	if math.Abs(b.Rects[0].H/b.Rects[1].H-14) > 1e-9 {
		t.Errorf("cpu:io heights %v:%v, want 1.75:0.125", b.Rects[0].H, b.Rects[1].H)
	}
	if want := float64(chartW) / chartSlots * 5; c.Bars[1].X != want {
		t.Errorf("the network bar at x %v, want %v", c.Bars[1].X, want)
	}
	if !strings.Contains(b.Title, "cpu 1.75") || !strings.Contains(b.Title, "2 windows") {
		t.Errorf("title %q", b.Title)
	}
}

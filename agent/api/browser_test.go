package api

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium to drive, "" when there is none.
func chromium() string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowser opens the page in headless Chromium, as a person would:
// the services are there with their charts drawn in the classes' colours,
// the flame-graph link opens pprof's flame graph of the service's last
// hour, and the diff link the comparison of its last two versions; a
// regression is marked on its service's chart and listed, its diff link
// opening the comparison of its two sides and its flame-graph link
// pprof's UI of its head; with no script errors on the way.
func TestBrowser(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("chromium not found: apt-get install chromium")
	}
	src := newTestSource(t)
	src.findings = testFindings(t, src)
	_, ts := newTestServer(t, src, Options{})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(1280, 1000),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses root without it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	var mu sync.Mutex
	var scriptErrors []string
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			scriptErrors = append(scriptErrors, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
			mu.Unlock()
		}
	}))
	defer cancelTab()

	const shop = `section.service[data-service="shop"]`
	do(t, ctx, "opening the page", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(shop+` svg.loadchart`)))
	names := run(t, ctx, "listing services", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('section.service')).map(function (s) { return s.dataset.service; }).join(',')`))
	if names != "locks,shop" {
		t.Errorf("services shown %q, want locks,shop", names)
	}
	badge := run(t, ctx, "reading shop's verdict", chromedp.Text(chromedp.CSS(shop+` .verdict .badge`)))
	if badge != "CPU" {
		t.Errorf("shop's verdict reads %q, want CPU", badge)
	}
	// The bars are drawn, in htmlreport's class colours (--cpu #d84315,
	// --io #1565c0): the stylesheet applies.
	fill := func(class string) string {
		return run(t, ctx, "reading a "+class+" bar's colour", chromedp.Evaluate[string](`(function () {
			var r = document.querySelector('`+shop+` rect[data-class="`+class+`"]');
			return r ? getComputedStyle(r).fill : 'none';
		})()`))
	}
	if got := fill("cpu"); got != "rgb(216, 67, 21)" {
		t.Errorf("cpu bars filled %q, want rgb(216, 67, 21)", got)
	}
	if got := fill("io"); got != "rgb(21, 101, 192)" {
		t.Errorf("io bars filled %q, want rgb(21, 101, 192)", got)
	}
	height := run(t, ctx, "measuring the chart", chromedp.Evaluate[float64](`document.querySelector('`+shop+` rect[data-class="cpu"]').getBoundingClientRect().height`))
	if height <= 1 {
		t.Errorf("the tallest cpu bar is %v pixels high", height)
	}

	// Flame graphs of the last hour: pprof's index, then its flame graph.
	do(t, ctx, "opening the flame graphs", chromedp.Click(chromedp.CSS(shop+` a.flame-hour`)), chromedp.WaitVisible(chromedp.CSS(`a[href$="/flamegraph"]`)))
	do(t, ctx, "opening a flame graph", chromedp.Click(chromedp.CSS(`a[href$="/flamegraph"]`)), chromedp.WaitVisible(chromedp.CSS(`#stack-chart`)))
	boxes := run(t, ctx, "counting the flame graph's boxes", chromedp.Evaluate[int](`document.querySelectorAll('#stack-chart .boxbg').length`))
	if boxes < 5 {
		t.Errorf("pprof's flame graph drew %d boxes, want more", boxes)
	}

	// The diff of the last two versions.
	do(t, ctx, "going back", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(shop+` a.diff`)))
	do(t, ctx, "opening the diff", chromedp.Click(chromedp.CSS(shop+` a.diff`)), chromedp.WaitVisible(chromedp.CSS(`pre.report`)))
	text := run(t, ctx, "reading the diff", chromedp.Text(chromedp.CSS(`pre.report`)))
	if !strings.Contains(text, "io load grew") {
		t.Errorf("the diff page reads %.300q, want the io load's growth", text)
	}

	// shop's regression: a marker on the chart where it was detected,
	// drawn, inside the plot; a row in the list.
	do(t, ctx, "going back", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(shop+` tr.regression[data-id="slow"]`)))
	marker := run(t, ctx, "measuring the regression's marker", chromedp.Evaluate[string](`(function () {
		var svg = document.querySelector('`+shop+` svg.loadchart').getBoundingClientRect();
		var m = document.querySelector('`+shop+` g.regression-marker[data-id="slow"] line').getBoundingClientRect();
		var fixed = document.querySelector('`+shop+` g.regression-marker[data-id="fixed"] line');
		return [m.height > svg.height/2, m.left > svg.left + svg.width/2, m.right <= svg.right + 1,
			getComputedStyle(fixed).strokeDasharray !== 'none'].join(',');
	})()`))
	if marker != "true,true,true,true" {
		t.Errorf("the marker of shop's regression (tall, in the chart's right half, inside it; the resolved one dashed): %s", marker)
	}
	row := run(t, ctx, "reading the regression's row", chromedp.Text(chromedp.CSS(shop+` tr.regression[data-id="slow"]`)))
	for _, want := range []string{"version", "main.hash", "+11.0% (95% CI +6.0% to +16.0%)", "v1 → v2", "active"} {
		if !strings.Contains(row, want) {
			t.Errorf("the regression's row %q lacks %q", row, want)
		}
	}
	do(t, ctx, "opening the regression's diff", chromedp.Click(chromedp.CSS(shop+` tr.regression[data-id="slow"] a.regression-diff`)), chromedp.WaitVisible(chromedp.CSS(`pre.report`)))
	if text := run(t, ctx, "reading the regression's diff", chromedp.Text(chromedp.CSS(`pre.report`))); !strings.Contains(text, "io load grew") {
		t.Errorf("the regression's diff reads %.300q, want the io load's growth", text)
	}
	do(t, ctx, "going back", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(shop+` tr.regression[data-id="slow"]`)))
	do(t, ctx, "opening the regression's head", chromedp.Click(chromedp.CSS(shop+` tr.regression[data-id="slow"] a.regression-head-flame`)), chromedp.WaitVisible(chromedp.CSS(`a[href$="/flamegraph"]`)))

	mu.Lock()
	defer mu.Unlock()
	if len(scriptErrors) > 0 {
		t.Errorf("script errors: %v", scriptErrors)
	}
}

// do runs chromedp steps, failing the test with what it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// run runs a chromedp action that returns a value.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

package htmlreport

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
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

// openReport renders a recorded observation's report to a file and opens
// it in headless Chromium, as a person would. It returns the tab's
// context and the script errors the page has thrown so far.
func openReport(t *testing.T, name string) (context.Context, func() []string) {
	t.Helper()
	exe := chromium()
	if exe == "" {
		t.Skip("chromium not found: apt-get install chromium")
	}
	o, v := load(t, name)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, render(t, Report{Observation: o, Verdict: v}), 0o644); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(1280, 1000),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses root without it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	var mu sync.Mutex
	var scriptErrors []string
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			scriptErrors = append(scriptErrors, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
			mu.Unlock()
		}
	}))
	t.Cleanup(cancelTab)
	do(t, ctx, "opening the report", chromedp.Navigate("file://"+file))
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), scriptErrors...)
	}
}

// TestBrowser opens the cpu-hash report in headless Chromium and checks
// that the flame graph is drawn and answers a hover, a search and a
// click, with no script errors.
func TestBrowser(t *testing.T) {
	ctx, scriptErrors := openReport(t, "cpu-hash")
	const fg = `.flamegraph[data-kind="cpu"]`
	do(t, ctx, "waiting for the flame graph", chromedp.WaitVisible(chromedp.CSS(fg+` .frame`)))
	headline := run(t, ctx, "reading the verdict", chromedp.Text(chromedp.CSS(`#verdict .badge`)))
	class := run(t, ctx, "reading data-class", chromedp.AttributeValue(chromedp.CSS(`#verdict`), "data-class"))
	if headline != "CPU" || class.Value != "cpu" {
		t.Errorf("verdict shows %q (data-class %q), want CPU", headline, class.Value)
	}
	frames := run(t, ctx, "counting frames", chromedp.Evaluate[int](`document.querySelectorAll('`+fg+` .frame').length`))
	if frames <= 5 {
		t.Errorf("%d frames drawn, want more than 5", frames)
	}
	do(t, ctx, "scrolling", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+fg+`').scrollIntoView({block: 'center'}), undefined`))
	shot := run(t, ctx, "taking a screenshot", chromedp.Screenshot(chromedp.CSS(fg)))

	// Hover the root frame: the tooltip tells its time and share.
	run(t, ctx, "hovering", chromedp.Evaluate[bool](`(function () {
		var f = document.querySelector('`+fg+` .frame[data-i="0"]');
		var r = f.getBoundingClientRect();
		f.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: r.left + 5, clientY: r.top + 5}));
		return true;
	})()`))
	tip := run(t, ctx, "reading the tooltip", chromedp.Text(chromedp.CSS(fg+` .fg-tip`), chromedp.NodeVisible))
	if !strings.Contains(tip, "%") || !strings.Contains(tip, "of all") {
		t.Errorf("hover tooltip %q does not give the root's time and share", tip)
	}

	// Search: the matching frames light up.
	do(t, ctx, "searching",
		chromedp.SendKeys(chromedp.CSS(fg+` .fg-search`), "sha256"),
		chromedp.Steps(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`document.querySelectorAll('`+fg+` .frame.match').length > 0`, chromedp.WithPollingTimeout(5*time.Second))(ctx, tg)
			return chromedp.Void{}, err
		}),
	)
	matched := run(t, ctx, "counting matches", chromedp.Evaluate[int](`document.querySelectorAll('`+fg+` .frame.match').length`))
	matchText := run(t, ctx, "reading the match", chromedp.Text(chromedp.CSS(fg+` .fg-match`)))
	if matched == 0 || !strings.Contains(matchText, "matched") {
		t.Errorf("search for sha256 lit %d frames (%q)", matched, matchText)
	}

	// Click a frame below the root: the graph zooms into it; reset undoes it.
	do(t, ctx, "zooming", chromedp.Click(chromedp.CSS(fg+` .frame[data-i="1"]`)))
	crumbs := run(t, ctx, "reading the zoom", chromedp.Text(chromedp.CSS(fg+` .fg-crumbs`)))
	if !strings.HasPrefix(crumbs, "zoomed into ") {
		t.Errorf("after a click the graph says %q, want zoomed into a frame", crumbs)
	}
	do(t, ctx, "resetting", chromedp.Click(chromedp.CSS(fg+` .fg-reset`)))
	if after := run(t, ctx, "reading the zoom", chromedp.Evaluate[string](`document.querySelector('`+fg+` .fg-crumbs').textContent`)); after != "" {
		t.Errorf("after reset the graph says %q, want no zoom", after)
	}

	if errs := scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors: %v", errs)
	}

	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	warm, all := flamePixels(img)
	t.Logf("screenshot %dx%d: %d of %d pixels in the flame palette", img.Bounds().Dx(), img.Bounds().Dy(), warm, all)
	if all == 0 || float64(warm)/float64(all) < 0.10 {
		t.Errorf("the flame graph looks blank: %d of %d pixels in the flame palette, want 10%%", warm, all)
	}
	if out := os.Getenv("PERFHOUND_SCREENSHOT"); out != "" {
		// For a person to look at: PERFHOUND_SCREENSHOT=/tmp/fg.png.
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// TestBrowserGoWaits opens the contention-go-mutex report: the graphs of
// Go's mutex and block profiles are drawn, in their violet palette, and
// the goroutine table shows the lock the goroutines wait on.
func TestBrowserGoWaits(t *testing.T) {
	ctx, scriptErrors := openReport(t, "contention-go-mutex")
	const fg = `.flamegraph[data-kind="mutex"]`
	do(t, ctx, "waiting for the mutex flame graph", chromedp.WaitVisible(chromedp.CSS(fg+` .frame`)))
	frames := run(t, ctx, "counting frames", chromedp.Evaluate[int](`document.querySelectorAll('`+fg+` .frame').length`))
	if frames < 3 {
		t.Errorf("%d frames drawn in the mutex graph, want the root, main.contend.func1 and sync.(*Mutex).Unlock", frames)
	}
	names := run(t, ctx, "reading frames", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('`+fg+` .frame')).map(function (f) { return f.textContent; }).join('|')`))
	if !strings.Contains(names, "main.contend.func1") {
		t.Errorf("the mutex graph's frames %q do not name main.contend.func1", names)
	}
	block := run(t, ctx, "counting block frames", chromedp.Evaluate[int](`document.querySelectorAll('.flamegraph[data-kind="block"] .frame').length`))
	if block < 3 {
		t.Errorf("%d frames drawn in the block graph, want at least 3", block)
	}
	row := run(t, ctx, "reading the goroutine table", chromedp.Text(chromedp.CSS(`table.goroutines tbody tr`)))
	if !strings.Contains(row, "waiting on a lock") || !strings.Contains(row, "main.contend.func1") {
		t.Errorf("the goroutine table's first row reads %q, want the lock in main.contend.func1", row)
	}
	do(t, ctx, "scrolling", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+fg+`').scrollIntoView({block: 'center'}), undefined`))
	shot := run(t, ctx, "taking a screenshot", chromedp.Screenshot(chromedp.CSS(fg+` .fg-canvas`)))
	if errs := scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors: %v", errs)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	violet, all := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			h, s, _ := hsl(float64(r)/65535, float64(g)/65535, float64(bl)/65535)
			all++
			if h >= 245 && h <= 295 && s > 0.3 {
				violet++
			}
		}
	}
	t.Logf("mutex graph %dx%d: %d of %d pixels violet", b.Dx(), b.Dy(), violet, all)
	if all == 0 || float64(violet)/float64(all) < 0.3 {
		t.Errorf("the mutex graph is not drawn in its palette: %d of %d pixels violet, want 30%%", violet, all)
	}
	if out := os.Getenv("PERFHOUND_SCREENSHOT_MUTEX"); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// flamePixels counts the pixels of an image in the on-CPU flame palette
// (saturated reds, oranges and yellows), of all its pixels.
func flamePixels(img image.Image) (warm, all int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			h, s, l := hsl(float64(r)/65535, float64(g)/65535, float64(bl)/65535)
			all++
			if (h < 65 || h > 350) && s > 0.45 && l > 0.3 && l < 0.85 {
				warm++
			}
		}
	}
	return warm, all
}

// hsl converts RGB (0..1) to hue (degrees), saturation and lightness.
func hsl(r, g, b float64) (h, s, l float64) {
	mx, mn := max(r, g, b), min(r, g, b)
	l = (mx + mn) / 2
	d := mx - mn
	if d == 0 {
		return 0, 0, l
	}
	s = d / (1 - abs(2*l-1))
	switch mx {
	case r:
		h = 60 * (g - b) / d
	case g:
		h = 60 * ((b-r)/d + 2)
	default:
		h = 60 * ((r-g)/d + 4)
	}
	if h < 0 {
		h += 360
	}
	return h, s, l
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
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

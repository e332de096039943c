package daemon

import (
	"fmt"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// BenchmarkDetect is the regression detector's cost in the loop, per
// window: a recorded host window split into its services by the real
// batch (and a Go service's window), fed to the real detector. ns/op is
// per window; divide by the window (10 s) for the share of a core.
func BenchmarkDetect(b *testing.B) {
	host, err := observation.Load("../store/testdata/host-window")
	if err != nil {
		b.Fatal(err)
	}
	ids, err := identity.New(identity.Options{Env: collect.Env{ProcFS: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	live := Live{Thresholds: verdict.DefaultThresholds(), Regressions: Regressions{Enabled: true}}
	td := newTestDaemon(b, b.TempDir(), live, nil)
	td.newDetector = newDetector // the daemon's own, unwrapped
	bt := td.batch(host, nil, nil, ids, td.live)
	g := *goserviceWindows(b)[0]
	g.Meta.Start = host.Meta.Start
	bt.Records = append(bt.Records, record(&g, "goservice", "v1", live.Thresholds))
	td.startDetection(detectorOptions(live.Regressions), host.Meta.Start)
	for i := 0; b.Loop(); i++ {
		// Each window 10 s after the one before, as the loop feeds them.
		for j := range bt.Records {
			o := *bt.Records[j].Obs
			o.Meta.Start = host.Meta.Start.Add(time.Duration(i) * 10 * time.Second)
			bt.Records[j].Obs = &o
		}
		td.detect(bt, td.live)
	}
	b.ReportMetric(float64(len(bt.Records)), "records/window")
}

// BenchmarkReplay is the agent's start: the store's last 90 minutes of
// 10 s windows of 20 services (real Go service windows) replayed into a
// new detector.
func BenchmarkReplay(b *testing.B) {
	const services = 20
	windows := int(defaultLookback / (10 * time.Second))
	live := Live{Regressions: Regressions{Enabled: true}}
	dir := b.TempDir()
	td := newTestDaemon(b, dir, live, func() detector { return regress.New(regress.DefaultOptions()) })
	counted := &counter{}
	td.newDetector = func(o regress.Options) detector { counted.det = newDetector(o); counted.n = 0; return counted }
	gs := goserviceWindows(b)
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for w := range windows {
		var bt store.Batch
		for s := range services {
			o := *gs[(w+s)%len(gs)]
			o.Meta.Start, o.Meta.Duration = start.Add(time.Duration(w)*10*time.Second), 10*time.Second
			bt.Records = append(bt.Records, record(&o, fmt.Sprintf("svc%02d", s), "v1", verdict.DefaultThresholds()))
		}
		if err := td.store.Put(bt); err != nil {
			b.Fatal(err)
		}
	}
	end := start.Add(time.Duration(windows) * 10 * time.Second)
	for b.Loop() {
		td.startDetection(detectorOptions(live.Regressions), end)
	}
	b.ReportMetric(float64(windows*services), "records")
	b.ReportMetric(float64(counted.peak)/(1<<20), "peak-heap-MiB")
	if got := counted.n; got != windows*services {
		b.Fatalf("replayed %d windows, want %d", got, windows*services)
	}
}

// counter counts the windows a detector is fed, and keeps none; every
// 100th it reads the heap's objects' bytes, for their peak.
type counter struct {
	det  detector
	n    int
	peak uint64
}

func (c *counter) Observe(w regress.Window) []regress.Event {
	c.n++
	if c.n%100 == 0 {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		rtmetrics.Read(s)
		c.peak = max(c.peak, s[0].Value.Uint64())
	}
	return c.det.Observe(w)
}

package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/notify"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/observation/obstest"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// recorder is a detector that remembers what it was fed.
type recorder struct {
	det           detector
	windows       []regress.Window
	restored      []regress.Finding
	restoredAfter int
}

func (r *recorder) Observe(w regress.Window) []regress.Event {
	r.windows = append(r.windows, w)
	return r.det.Observe(w)
}

// Restore passes the stored findings on to a detector that takes them,
// noting how many windows it had been fed then.
func (r *recorder) Restore(fs []regress.Finding) {
	r.restored, r.restoredAfter = append(r.restored, fs...), len(r.windows)
	if rs, ok := r.det.(interface{ Restore([]regress.Finding) }); ok {
		rs.Restore(fs)
	}
}

// versionDetector is a detector simple enough to know what it must find:
// a finding per change of a service's version (the function is made up),
// resolved by the next change. Its findings depend only on the windows
// it is fed, as the real detector's must.
type versionDetector struct {
	last   map[string]string
	raised map[string]regress.Finding // the open finding per service
}

func (v *versionDetector) Observe(w regress.Window) []regress.Event {
	if v.last == nil {
		v.last, v.raised = map[string]string{}, map[string]regress.Finding{}
	}
	prev, seen := v.last[w.Service]
	v.last[w.Service] = w.Version
	if !seen || prev == w.Version {
		return nil
	}
	var events []regress.Event
	at := w.Start.Add(w.Duration)
	if f, ok := v.raised[w.Service]; ok {
		f.Resolved, f.ResolvedAt, f.ResolvedBy = true, at, w.Version
		events = append(events, regress.Event{Finding: f, Resolved: true})
	}
	f := regress.Finding{ID: w.Service + "/" + prev + "/" + w.Version, Service: w.Service, Kind: regress.KindVersion,
		Function: "main.slow", BaseVersion: prev, HeadVersion: w.Version, DetectedAt: at, ChangePct: 12.5, PValue: 1e-6,
		Base: regress.Range{Version: prev}, Head: regress.Range{Version: w.Version, From: w.Start, To: at, Windows: 1}}
	v.raised[w.Service] = f
	return append(events, regress.Event{Finding: f})
}

// testDaemon is a daemon over a real store in dir with no collectors: the
// window loop's work after a window is stored, and Reload.
type testDaemon struct {
	*Daemon
	reg  *prometheus.Registry
	logs *bytes.Buffer
	fed  []*recorder // the detectors made, in order
}

func newTestDaemon(t testing.TB, dir string, live Live, newDet func() detector) *testDaemon {
	t.Helper()
	st, err := store.Open(dir, store.Options{Rollups: []store.Rollup{}})
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	d := &Daemon{opts: Options{Env: collect.Env{ProcFS: t.TempDir()}}, log: slog.New(slog.NewTextHandler(syncWriter{w: td.logs}, nil)),
		scraper: map[string]*goService{}, store: st}
	d.newDetector = func(o regress.Options) detector {
		r := &recorder{det: newDet()}
		td.fed = append(td.fed, r)
		return r
	}
	d.metrics = newMetrics(td.reg)
	if live.Window == 0 {
		live.Window = 10 * time.Second
	}
	if err := d.setLive(live); err != nil {
		t.Fatal(err)
	}
	td.Daemon = d
	t.Cleanup(func() { d.closeHook(); st.Close() })
	return td
}

// syncWriter is a log's buffer, written by the loop and the webhook.
type syncWriter struct{ w *bytes.Buffer }

var logMu sync.Mutex

func (s syncWriter) Write(b []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return s.w.Write(b)
}

func (td *testDaemon) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return td.logs.String()
}

// window stores b and does what the loop does after.
func (td *testDaemon) window(t *testing.T, b store.Batch) {
	t.Helper()
	if err := td.store.Put(b); err != nil {
		t.Fatal(err)
	}
	td.mu.Lock()
	live := td.live
	td.mu.Unlock()
	td.detect(b, live)
}

// metric is a metric's value in the registry, by its labels (-1: none).
func (td *testDaemon) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := td.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// goserviceWindows are the recorded windows of fixtures/goservice.
func goserviceWindows(t testing.TB) []*observation.Observation {
	return obstest.Windows(t, "../../"+obstest.GoserviceWindows, 6)
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// deployBatches are n windows of goservice 10 s apart from start, of
// version v1 for the first half and v2 after: a deploy.
func deployBatches(t *testing.T, start time.Time, n int) []store.Batch {
	ws := goserviceWindows(t)
	var out []store.Batch
	for i := range n {
		o := *ws[i%len(ws)]
		o.Meta.Start, o.Meta.Duration = start.Add(time.Duration(i)*10*time.Second), 10*time.Second
		version := "v1"
		if i >= n/2 {
			version = "v2"
		}
		r := record(&o, "goservice", version, verdict.DefaultThresholds())
		out = append(out, store.Batch{Records: []store.Record{r}})
	}
	return out
}

// normalized is w as read back: times in UTC without a monotonic clock.
func normalized(ws []regress.Window) []regress.Window {
	out := make([]regress.Window, len(ws))
	for i, w := range ws {
		w.Start = w.Start.UTC()
		out[i] = w
	}
	return out
}

// TestDetectorReplay: the windows a detector is fed as they are stored
// are the windows a new one is fed from the store after a restart, in the
// same order, read the same (WindowOf of the live observation and of the
// stored one), the lookback's only: a host's window split into its
// services by the real batch, and a Go service's windows.
func TestDetectorReplay(t *testing.T) {
	host, err := observation.Load("../store/testdata/host-window")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.New(identity.Options{Env: collect.Env{ProcFS: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	live := Live{Thresholds: verdict.DefaultThresholds(), Regressions: Regressions{Enabled: true}}
	a := newTestDaemon(t, dir, live, func() detector { return regress.New(regress.DefaultOptions()) })
	gs := goserviceWindows(t)
	// Windows 40 minutes apart over two hours: the first falls out of
	// the 90 minutes replayed.
	var last store.Batch
	for i := range 4 {
		start := t0.Add(time.Duration(i) * 40 * time.Minute)
		h := *host
		h.Meta.Start = start
		b := a.batch(&h, nil, nil, ids, a.live)
		g := *gs[i]
		// The scrape's window began a little before the host's: fed
		// first, though the batch lists it last.
		g.Meta.Start = start.Add(-2 * time.Second)
		b.Records = append(b.Records, record(&g, "goservice", "v1", live.Thresholds))
		if i == 0 {
			// The first window starts the detector, replaying an empty
			// store up to it, itself included.
			a.startDetection(detectorOptions(live.Regressions), start)
		}
		a.window(t, b)
		last = b
	}
	if len(a.fed) != 1 {
		t.Fatalf("%d detectors made, want 1", len(a.fed))
	}
	lived := a.fed[0].windows
	perWindow := len(last.Records)
	if perWindow < 5 || len(lived) != 4*perWindow {
		t.Fatalf("fed %d windows for 4 windows of %d records", len(lived), perWindow)
	}
	for i := 1; i < len(lived); i++ {
		p, w := lived[i-1], lived[i]
		if w.Start.Before(p.Start) || w.Start.Equal(p.Start) && w.Service+"\x00"+w.Version < p.Service+"\x00"+p.Version {
			t.Fatalf("fed %s %s at %s after %s %s at %s: not in time, service, version order", w.Service, w.Version, w.Start, p.Service, p.Version, p.Start)
		}
	}
	a.closeHook()
	a.store.Close()

	// The restart: a new daemon on the store replays what it holds.
	b := newTestDaemon(t, dir, live, func() detector { return regress.New(regress.DefaultOptions()) })
	b.startDetection(detectorOptions(live.Regressions), batchEnd(last))
	if len(b.fed) != 1 {
		t.Fatalf("%d detectors made, want 1", len(b.fed))
	}
	replayed := normalized(b.fed[0].windows)
	want := normalized(lived[perWindow:]) // the first window is older than the lookback
	if !reflect.DeepEqual(replayed, want) {
		if len(replayed) != len(want) {
			t.Fatalf("replayed %d windows, want %d", len(replayed), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(replayed[i], want[i]) {
				t.Fatalf("replayed window %d:\n%+v\nwant (fed live)\n%+v", i, replayed[i], want[i])
			}
		}
	}
	if !strings.Contains(b.logText(), "regression detection started") || !strings.Contains(b.logText(), fmt.Sprintf("replayed_windows=%d", len(want))) {
		t.Errorf("the start of detection is not logged:\n%s", b.logText())
	}
}

// webhook is an httptest server taking the agent's events.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	events []notify.Payload
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p notify.Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook: %v", err)
		}
		w.mu.Lock()
		w.events = append(w.events, p)
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.events {
		out = append(out, p.Event+" "+p.Regression.ID)
	}
	return out
}

// TestRegressionEvents: what the detector finds is stored, logged,
// posted and exported; found again (a replay after a restart), it is
// none of these again.
func TestRegressionEvents(t *testing.T) {
	hook := newWebhook(t)
	live := Live{Regressions: Regressions{Enabled: true, Webhook: notify.Target{URL: hook.URL + "/hook"}}}
	td := newTestDaemon(t, t.TempDir(), live, func() detector { return &versionDetector{} })
	slow := regress.Finding{ID: "f1", Service: "shop", Kind: regress.KindVersion, Function: "main.parse",
		BaseVersion: "v1", HeadVersion: "v2", DetectedAt: t0, ChangePct: 11.04, PValue: 3e-6}
	leak := regress.Finding{ID: "f2", Service: "shop", Kind: regress.KindLeak, Resource: "memory",
		BaseVersion: "v2", HeadVersion: "v2", DetectedAt: t0.Add(time.Minute), ChangePct: 25}
	fixed := slow
	fixed.ResolvedAt, fixed.ResolvedBy = t0.Add(time.Hour), "v3"
	td.handle([]regress.Event{{Finding: slow}, {Finding: leak}})
	td.handle([]regress.Event{{Finding: fixed, Resolved: true}})

	fs, err := td.store.Findings()
	if err != nil || len(fs) != 2 || fs[0].ID != "f1" || !fs[0].Resolved || fs[0].ResolvedBy != "v3" || fs[1].Resolved {
		t.Fatalf("stored %+v, %v; want f1 resolved by v3, f2 active", fs, err)
	}
	logs := td.logText()
	for _, want := range []string{
		`level=WARN msg=regression service=shop function=main.parse kind=version change_pct=+11.0 base_version=v1 head_version=v2 id=f1`,
		`level=WARN msg=regression service=shop resource=memory kind=leak change_pct=+25.0`,
		`level=INFO msg="regression resolved" service=shop function=main.parse kind=version`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	if v := td.metric(t, "perfhound_regressions_active", "service", "shop", "function", "memory", "kind", "leak"); v != 1 {
		t.Errorf("active leak gauge %v, want 1", v)
	}
	if v := td.metric(t, "perfhound_regressions_active", "function", "main.parse"); v != -1 {
		t.Errorf("the resolved finding is still exported as active (%v)", v)
	}
	for kind, want := range map[string]float64{"version": 1, "leak": 1} {
		if v := td.metric(t, "perfhound_regressions_raised_total", "kind", kind); v != want {
			t.Errorf("raised_total{kind=%s} %v, want %v", kind, v, want)
		}
	}
	if v := td.metric(t, "perfhound_regressions_resolved_total", "kind", "version"); v != 1 {
		t.Errorf("resolved_total{kind=version} %v, want 1", v)
	}

	// The same events again, as a replay finds them: nothing new.
	before := len(td.logText())
	td.handle([]regress.Event{{Finding: slow}, {Finding: leak}, {Finding: fixed, Resolved: true}})
	td.closeHook() // drains the queue
	if got := strings.Join(hook.got(), ", "); got != "raised f1, raised f2, resolved f1" {
		t.Errorf("webhook got %s", got)
	}
	if more := td.logText()[before:]; strings.Contains(more, "regression") {
		t.Errorf("a finding found again is logged again:\n%s", more)
	}
	if v := td.metric(t, "perfhound_regressions_raised_total", "kind", "version"); v != 1 {
		t.Errorf("raised_total{kind=version} %v after a replay, want 1", v)
	}
	if v := td.metric(t, "perfhound_agent_webhook_events_total", "outcome", "delivered"); v != 3 {
		t.Errorf("webhook deliveries %v, want 3", v)
	}
}

// TestRestartChangesNothing: a deploy found before a restart is found by
// the replay after it, the same finding, said once; a deploy whose
// windows were stored but whose finding was not (kill -9 between the
// two) is found by the replay and said then.
func TestRestartChangesNothing(t *testing.T) {
	hook := newWebhook(t)
	live := Live{Regressions: Regressions{Enabled: true, Webhook: notify.Target{URL: hook.URL}}}
	newDet := func() detector { return &versionDetector{} }
	batches := deployBatches(t, t0, 12)
	end := batchEnd(batches[len(batches)-1])

	dir := t.TempDir()
	a := newTestDaemon(t, dir, live, newDet)
	a.startDetection(detectorOptions(live.Regressions), t0)
	for _, b := range batches {
		a.window(t, b)
	}
	a.closeHook()
	first, err := a.store.Findings()
	if err != nil || len(first) != 1 || first[0].ID != "goservice/v1/v2" {
		t.Fatalf("found %+v, %v; want the deploy", first, err)
	}
	a.store.Close()
	b := newTestDaemon(t, dir, live, newDet)
	if got := b.storeEnd(); !got.Equal(end) {
		t.Fatalf("the store ends at %v, want the last window's end %v", got, end)
	}
	// Started hours later: the replay reads the windows before the
	// stop, not the empty hours before the clock.
	b.startDetection(detectorOptions(live.Regressions), b.storeEnd())
	b.closeHook()
	again, err := b.store.Findings()
	if err != nil || !reflect.DeepEqual(again, first) {
		t.Errorf("after a restart: %+v, %v\nwant %+v", again, err, first)
	}
	if len(b.fed) != 1 || len(b.fed[0].windows) != len(batches) {
		t.Errorf("the restart replayed %d windows, want %d", len(b.fed[0].windows), len(batches))
	}

	// Killed after storing the windows, before their finding.
	dir2 := t.TempDir()
	c := newTestDaemon(t, dir2, live, newDet)
	for _, bt := range batches {
		if err := c.store.Put(bt); err != nil {
			t.Fatal(err)
		}
	}
	c.startDetection(detectorOptions(live.Regressions), end)
	c.closeHook()
	got, err := c.store.Findings()
	if err != nil || !reflect.DeepEqual(got, first) {
		t.Errorf("found by the replay: %+v, %v\nwant %+v", got, err, first)
	}
	if got := strings.Join(hook.got(), ", "); got != "raised goservice/v1/v2, raised goservice/v1/v2" {
		t.Errorf("webhook got %s: want the deploy once per store", got)
	}
	if v := c.metric(t, "perfhound_regressions_active", "service", "goservice", "function", "main.slow", "kind", "version"); v != 1 {
		t.Errorf("active gauge after the replay: %v", v)
	}
}

// TestRegressionsReload: a reload points the webhook elsewhere, refuses
// a token that does not read (keeping the running webhook), removes it;
// detection turned off stops feeding and exporting, turned on again it
// replays first.
func TestRegressionsReload(t *testing.T) {
	one, two := newWebhook(t), newWebhook(t)
	live := Live{Window: 10 * time.Second, Regressions: Regressions{Enabled: true, Webhook: notify.Target{URL: one.URL}}}
	td := newTestDaemon(t, t.TempDir(), live, func() detector { return &versionDetector{} })
	batches := deployBatches(t, t0, 8)
	for _, b := range batches[:4] {
		td.window(t, b) // v1
	}
	live.Regressions.Webhook.URL = two.URL
	if err := td.Reload(live); err != nil {
		t.Fatal(err)
	}
	bad := live
	bad.Regressions.Webhook.TokenFile = filepath.Join(t.TempDir(), "none")
	if err := td.Reload(bad); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("a reload with a missing webhook token: %v", err)
	}
	if td.metric(t, "perfhound_agent_config_last_reload_successful") != 0 {
		t.Error("the refused reload is not in the metrics")
	}
	td.window(t, batches[4]) // v2: the deploy, to the second webhook
	td.mu.Lock()
	hook := td.hook
	td.mu.Unlock()
	hook.Close()
	if len(one.got()) != 0 || strings.Join(two.got(), ",") != "raised goservice/v1/v2" {
		t.Errorf("first webhook got %v, second %v; want the deploy at the second", one.got(), two.got())
	}
	live.Regressions.Webhook.URL = ""
	if err := td.Reload(live); err != nil || td.hook != nil {
		t.Errorf("reload without a webhook: %v, hook %v", err, td.hook)
	}

	live.Regressions.Enabled = false
	if err := td.Reload(live); err != nil {
		t.Fatal(err)
	}
	td.window(t, batches[5])
	if td.det.det != nil || td.metric(t, "perfhound_regressions_active", "service", "goservice") != -1 {
		t.Error("detection off: the detector or its gauges remain")
	}
	fed := len(td.fed[0].windows)
	live.Regressions.Enabled = true
	if err := td.Reload(live); err != nil {
		t.Fatal(err)
	}
	td.window(t, batches[6])
	if len(td.fed) != 2 || fed != 5 || len(td.fed[1].windows) != 7 {
		t.Errorf("detectors %d, the first fed %d windows (want 5), the second %d (want the 7 stored, replayed)", len(td.fed), fed, len(td.fed[len(td.fed)-1].windows))
	}
	if v := td.metric(t, "perfhound_regressions_active", "service", "goservice"); v != 1 {
		t.Errorf("after detection is back: active gauge %v, want 1", v)
	}
}

// TestRegressionSeriesBounded: at most maxRegressionSeries label sets,
// the most recently detected; the rest counted.
func TestRegressionSeriesBounded(t *testing.T) {
	td := &testDaemon{reg: prometheus.NewRegistry()}
	m := newMetrics(td.reg)
	var fs []regress.Finding
	for i := range maxRegressionSeries + 100 {
		fs = append(fs, regress.Finding{ID: fmt.Sprint(i), Service: "shop", Kind: regress.KindVersion,
			Function: fmt.Sprintf("main.f%d", i), DetectedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	fs = append(fs, regress.Finding{ID: "r", Service: "shop", Kind: regress.KindDrift, Function: "main.gone", Resolved: true, DetectedAt: t0.Add(time.Hour)})
	// Two findings under one label set (two deploys blaming one function),
	// the latest of all.
	last := fmt.Sprintf("main.f%d", maxRegressionSeries+99)
	fs = append(fs, regress.Finding{ID: "dup", Service: "shop", Kind: regress.KindVersion, Function: last, DetectedAt: t0})
	m.setRegressions(fs)
	if n := td.series(t, "perfhound_regressions_active"); n != maxRegressionSeries {
		t.Errorf("%d label sets exported, want %d", n, maxRegressionSeries)
	}
	if got := td.metric(t, "perfhound_regressions_unexported"); got != 100 {
		t.Errorf("unexported %v, want 100", got)
	}
	if got := td.metric(t, "perfhound_regressions_active", "function", last); got != 2 {
		t.Errorf("the label set of two findings counts %v", got)
	}
	if got := td.metric(t, "perfhound_regressions_active", "function", "main.f0"); got != -1 {
		t.Errorf("the oldest label set is exported (%v), not the latest", got)
	}
	m.setRegressions(nil)
	if n := td.series(t, "perfhound_regressions_active"); n != 0 {
		t.Errorf("%d label sets left with no finding", n)
	}
}

// series counts a metric's label sets.
func (td *testDaemon) series(t *testing.T, name string) int {
	mfs, err := td.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestRestoreBeforeReplay: a new detector is told the stored findings
// before the replay, so a version deployed since resolves a regression
// raised by windows older than the replay reaches (the real detector,
// on the recorded goservice windows: its function's share in v2 is the
// finding's base share, half the regressed one).
func TestRestoreBeforeReplay(t *testing.T) {
	live := Live{Regressions: Regressions{Enabled: true}}
	batches := deployBatches(t, t0, 120) // v1 for 10 minutes, then v2
	end := batchEnd(batches[len(batches)-1])
	td := newTestDaemon(t, t.TempDir(), live, func() detector { return regress.New(regress.DefaultOptions()) })
	for _, b := range batches {
		if err := td.store.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	// The heaviest function below the roots, as the windows hold it.
	var fn string
	var incl, samples float64
	for _, b := range batches[:60] {
		w := regress.WindowOf(b.Records[0].Obs, "goservice", "v1", verdict.Summary{})
		samples += w.CPU.Samples
		if fn == "" {
			for name, c := range w.CPU.Funcs {
				if c.Incl < 0.6*w.CPU.Samples && (fn == "" || c.Incl > w.CPU.Funcs[fn].Incl || c.Incl == w.CPU.Funcs[fn].Incl && name < fn) {
					fn = name
				}
			}
		}
		incl += w.CPU.Funcs[fn].Incl
	}
	share := incl / samples
	old := regress.Finding{ID: "v0-v1", Service: "goservice", Kind: regress.KindVersion, Function: fn,
		BaseVersion: "v0", HeadVersion: "v1", Unit: regress.UnitShare, ChangePct: 100, PValue: 1e-9,
		Cum:        regress.Change{Base: share, Head: 2 * share},
		Base:       regress.Range{Version: "v0", From: t0.Add(-3 * time.Hour), To: t0.Add(-2 * time.Hour)},
		Head:       regress.Range{Version: "v1", From: t0.Add(-2 * time.Hour), To: t0.Add(-90 * time.Minute)},
		DetectedAt: t0.Add(-90 * time.Minute)}
	if _, err := td.store.PutFindings([]regress.Finding{old}); err != nil {
		t.Fatal(err)
	}
	td.startDetection(detectorOptions(live.Regressions), end)
	if len(td.fed) != 1 || len(td.fed[0].restored) != 1 || td.fed[0].restoredAfter != 0 {
		t.Fatalf("restored %d findings after %d windows, want the stored one before the replay", len(td.fed[0].restored), td.fed[0].restoredAfter)
	}
	fs, err := td.store.Findings()
	if err != nil || len(fs) != 1 || !fs[0].Resolved || fs[0].ResolvedBy != "v2" {
		t.Errorf("%s at %.1f%%, regressed to %.1f%% by v1: after the replay of v1 and v2 (%.1f%% again): %+v, %v; want it resolved by v2", fn, 100*share, 200*share, 100*share, fs, err)
	}
}

// TestUnknownVersionUnversioned: a window of a process gone before its
// version was read is fed to the detector as unversioned (its trends, no
// version comparison: it would look like a deploy of version "unknown"
// between its real version's windows).
func TestUnknownVersionUnversioned(t *testing.T) {
	gs := goserviceWindows(t)
	recs := []store.Record{
		record(gs[0], "shop", "v1", verdict.DefaultThresholds()),
		record(gs[1], "shop", identity.UnknownVersion, verdict.DefaultThresholds()),
		record(gs[2], "shop", "v1", verdict.DefaultThresholds()),
	}
	ws := windowsOf(nil, recs)
	if len(ws) != 3 || ws[0].w.Unversioned || !ws[1].w.Unversioned || ws[2].w.Unversioned {
		t.Fatalf("fed %+v, want the unknown one unversioned", ws)
	}
}

package daemon

import (
	"cmp"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/perfhound/perfhound/agent/notify"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// maxServiceSeries bounds the per-service load gauges: a host running
// thousands of short-lived services must not make /metrics grow without
// end. Services past it are counted, not exported.
const maxServiceSeries = 500

// maxRegressionSeries bounds the active regressions' gauges the same way:
// the most recently detected are exported, the rest counted.
const maxRegressionSeries = 500

// metrics is the agent's /metrics: its own health, and per service the
// latest window's load by class, so dashboards and alerts can use them.
// Names follow Prometheus' conventions: perfhound_agent_ for the agent,
// base units, _total on counters.
type metrics struct {
	windows      *prometheus.CounterVec
	failed       *prometheus.CounterVec
	samples      *prometheus.CounterVec
	lost         prometheus.Counter
	missing      *prometheus.CounterVec
	errors       *prometheus.CounterVec
	writeSeconds prometheus.Histogram
	services     prometheus.Gauge
	load         *prometheus.GaugeVec
	overflow     prometheus.Counter
	reloadOK     prometheus.Gauge
	reloadAt     prometheus.Gauge
	samplingHz   prometheus.Gauge
	// Regressions: the active ones by label set, those past the bound,
	// the events, and the webhook's deliveries.
	active     *prometheus.GaugeVec
	unexported prometheus.Gauge
	raised     *prometheus.CounterVec
	resolved   *prometheus.CounterVec
	webhook    *prometheus.CounterVec

	mu       sync.Mutex
	exported map[string]bool // services with load gauges
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_windows_total", Help: "Windows collected and stored, by source of the records (host, pprof, ingest).",
		}, []string{"source"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_windows_failed_total", Help: "Windows not stored, by the stage that failed (watch, store).",
		}, []string{"stage"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_samples_total", Help: "Profile samples stored, by profile kind.",
		}, []string{"kind"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "perfhound_agent_lost_windows_total", Help: "Windows whose eBPF collectors lost events to full maps or unreadable stacks.",
		}),
		missing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_missing_signals_total", Help: "Windows in which a signal could not be collected, by signal.",
		}, []string{"signal"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_errors_total", Help: "Errors, by where they happened.",
		}, []string{"stage"}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "perfhound_agent_store_write_seconds", Help: "Time to split, judge and store one window.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "perfhound_agent_services", Help: "Services and versions with a record in the last window.",
		}),
		load: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "perfhound_service_load", Help: "The last window's verdict per service: thread time per second bound by each class (1 is one thread all the time).",
		}, []string{"service", "class"}),
		overflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "perfhound_agent_service_series_dropped_total", Help: "Service windows whose load was not exported: more services than the bound.",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "perfhound_agent_config_last_reload_successful", Help: "Whether the last configuration reload succeeded.",
		}),
		reloadAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "perfhound_agent_config_last_reload_success_timestamp_seconds", Help: "When the configuration was last loaded successfully.",
		}),
		samplingHz: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "perfhound_agent_sampling_hz", Help: "The eBPF on-CPU sampling rate of the window in progress (higher while a fresh deploy is boosted; 0 without eBPF).",
		}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "perfhound_regressions_active", Help: "Regressions raised and not resolved, by service, blamed function (or resource) and kind.",
		}, []string{"service", "function", "kind"}),
		unexported: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "perfhound_regressions_unexported", Help: "Active regressions not in perfhound_regressions_active: more label sets than its bound.",
		}),
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_regressions_raised_total", Help: "Regressions raised, by kind.",
		}, []string{"kind"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_regressions_resolved_total", Help: "Regressions resolved, by kind.",
		}, []string{"kind"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_webhook_events_total", Help: "Regression events for the webhook, by outcome (delivered, failed, dropped).",
		}, []string{"outcome"}),
		exported: map[string]bool{},
	}
	m.reloadOK.Set(1)
	m.reloadAt.SetToCurrentTime()
	for _, o := range []notify.Outcome{notify.Delivered, notify.Failed, notify.Dropped} {
		m.webhook.WithLabelValues(string(o))
	}
	reg.MustRegister(m.windows, m.failed, m.samples, m.lost, m.missing, m.errors, m.writeSeconds,
		m.services, m.load, m.overflow, m.reloadOK, m.reloadAt, m.samplingHz,
		m.active, m.unexported, m.raised, m.resolved, m.webhook)
	// Registering twice (a second daemon on one registry, in tests) is not
	// an error worth failing for.
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_ = reg.Register(collectors.NewGoCollector())
	return m
}

// watchStore exports the store's size.
func (m *metrics) watchStore(reg *prometheus.Registry, st *store.Store) {
	reg.MustRegister(storeCollector{st})
}

func (m *metrics) webhookOutcome(o notify.Outcome) { m.webhook.WithLabelValues(string(o)).Inc() }

func (m *metrics) regressionEvent(event string, f regress.Finding) {
	if event == notify.Resolved {
		m.resolved.WithLabelValues(string(f.Kind)).Inc()
		return
	}
	m.raised.WithLabelValues(string(f.Kind)).Inc()
}

// setRegressions exports the active findings among fs: a gauge per
// service, blamed function (a resource when none) and kind, counting the
// findings under it, for the most recently detected label sets up to
// maxRegressionSeries. Resolved findings leave.
func (m *metrics) setRegressions(fs []regress.Finding) {
	type key struct{ service, function, kind string }
	count := map[key]int{}
	latest := map[key]time.Time{}
	for _, f := range fs {
		if f.Resolved {
			continue
		}
		k := key{f.Service, cmp.Or(f.Function, f.Resource), string(f.Kind)}
		count[k]++
		if f.DetectedAt.After(latest[k]) {
			latest[k] = f.DetectedAt
		}
	}
	keys := make([]key, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(latest[b].Compare(latest[a]), cmp.Compare(a.service, b.service), cmp.Compare(a.function, b.function), cmp.Compare(a.kind, b.kind))
	})
	unexported := 0
	if len(keys) > maxRegressionSeries {
		for _, k := range keys[maxRegressionSeries:] {
			unexported += count[k]
		}
		keys = keys[:maxRegressionSeries]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active.Reset()
	for _, k := range keys {
		m.active.WithLabelValues(k.service, k.function, k.kind).Set(float64(count[k]))
	}
	m.unexported.Set(float64(unexported))
}

func (m *metrics) windowFailed(stage string) { m.failed.WithLabelValues(stage).Inc() }

func (m *metrics) reloaded(ok bool) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadAt.SetToCurrentTime()
		return
	}
	m.reloadOK.Set(0)
}

// observed counts what the window's host observation brought.
func (m *metrics) observed(host *observation.Observation, b store.Batch) {
	for _, mi := range host.Missing {
		if mi.LostEvents() {
			m.lost.Inc()
			continue
		}
		m.missing.WithLabelValues(string(mi.Signal)).Inc()
	}
	for _, r := range b.Records {
		for _, p := range r.Obs.Profiles {
			if p.Profile != nil {
				m.samples.WithLabelValues(string(p.Kind)).Add(float64(len(p.Profile.Sample)))
			}
		}
	}
}

// stored counts a stored window and exports its services' loads.
func (m *metrics) stored(b store.Batch, took time.Duration) {
	m.writeSeconds.Observe(took.Seconds())
	m.windows.WithLabelValues("host").Inc()
	m.services.Set(float64(len(b.Records)))

	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range b.Records {
		var s verdict.Summary
		if json.Unmarshal(r.Verdict, &s) != nil || seen[r.Service] {
			continue
		}
		if !m.exported[r.Service] && len(m.exported) >= maxServiceSeries {
			m.overflow.Inc()
			continue
		}
		seen[r.Service] = true
		m.exported[r.Service] = true
		for _, c := range verdict.Classes {
			m.load.WithLabelValues(r.Service, string(c)).Set(s.Load[c])
		}
	}
	// A service gone for a window leaves /metrics: its gauges would
	// otherwise claim a load it no longer has.
	for svc := range m.exported {
		if !seen[svc] {
			for _, c := range verdict.Classes {
				m.load.DeleteLabelValues(svc, string(c))
			}
			delete(m.exported, svc)
		}
	}
}

// storeCollector reads the store's size when /metrics is scraped.
type storeCollector struct{ st *store.Store }

var (
	storeBytes     = prometheus.NewDesc("perfhound_agent_store_bytes", "Bytes the store's data takes on disk (pages in use).", nil, nil)
	storeOldest    = prometheus.NewDesc("perfhound_agent_store_oldest_timestamp_seconds", "Start of the oldest stored window.", nil, nil)
	storeFileBytes = prometheus.NewDesc("perfhound_agent_store_file_bytes", "The store file's size: its high-water mark, pages in use and free.", nil, nil)
	storeDropped   = prometheus.NewDesc("perfhound_agent_store_dropped_hours_total", "Hours of data dropped (age, size bound, full disk) since the agent started.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeBytes
	ch <- storeOldest
	ch <- storeDropped
	ch <- storeFileBytes
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.st.Stats()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(storeBytes, prometheus.GaugeValue, float64(s.UsedBytes))
	ch <- prometheus.MustNewConstMetric(storeFileBytes, prometheus.GaugeValue, float64(s.FileBytes))
	if !s.Oldest.IsZero() {
		ch <- prometheus.MustNewConstMetric(storeOldest, prometheus.GaugeValue, float64(s.Oldest.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(storeDropped, prometheus.CounterValue, float64(s.DroppedHours))
}

// Package daemon is the loop of `perfhound agent`: it watches the whole
// host window after window with one observe.Watcher (the eBPF session and
// every collector's state live across windows), scrapes the configured
// Go services, drains what SDKs pushed, tells who is who (agent/identity),
// splits the host's window per service and version (analyzer/procrank),
// judges each part (analyzer/verdict), stores it all in one transaction
// per window (agent/store), and feeds the stored windows to the
// regression detector (analyzer/regress), whose findings it stores, logs,
// posts to a webhook (agent/notify) and exports as metrics.
//
// Windows tile time: the work after a window (splitting, judging,
// storing) happens while the next one is already gathering, because the
// watcher's next window starts where the last one ended. A canceled
// context ends the window in flight early; what it gathered is stored
// before Run returns, so SIGTERM loses nothing that was watched.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/ingest"
	"github.com/perfhound/perfhound/agent/notify"
	"github.com/perfhound/perfhound/agent/observe"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// Options configure a Daemon. cmd/perfhound maps the config file and
// flags (agent/config) onto them.
type Options struct {
	// Interval is how often the metric series are read within a window.
	Interval time.Duration
	// EBPF turns the eBPF collectors on where the host allows them, at
	// Frequency Hz on-CPU, following one off-CPU switch in OffCPUSampling,
	// walking code without frame pointers by its tables with NativeUnwind.
	EBPF           bool
	Frequency      int
	OffCPUSampling int
	NativeUnwind   bool
	// NoEBPF is why eBPF is off when EBPF is false, as Missing says it.
	NoEBPF string

	// DataDir holds the store.
	DataDir string

	// Live is what SIGHUP may change without losing the store or the
	// eBPF session.
	Live Live

	// Ingest, when set, receives what SDKs push (its handler is served at
	// /ingest by the caller); each window drains it.
	Ingest *ingest.Receiver

	// Env says where /proc and /sys are (tests); Registry receives the
	// agent's metrics (nil: a registry of the daemon's own); Log its log.
	Env      collect.Env
	Registry *prometheus.Registry
	Log      *slog.Logger
	// Ready is called once, when the first window is stored (sd_notify).
	Ready func()
}

// Live is the part of the options a reload replaces.
type Live struct {
	// Window is how long each stored window lasts.
	Window time.Duration
	// Store is the store's retention.
	Store store.Options
	// Rules name services (first match wins); see agent/identity.
	Rules []identity.Rule
	// GoServices are net/http/pprof endpoints scraped every window.
	GoServices []GoService
	// Labels are added to every service's labels (e.g. env=prod).
	Labels map[string]string
	// Thresholds judge every window; the zero value means the defaults.
	Thresholds verdict.Thresholds
	// Regressions configures regression detection and its webhook.
	Regressions Regressions
	// Forward are the sinks the stored windows are forwarded to
	// (agent/forward), each behind its own cursor in the store.
	Forward []forward.SinkConfig
}

// GoService is a Go service whose net/http/pprof endpoint is scraped.
type GoService struct {
	URL     string
	Service string
	// Version overrides the build ID the service's profiles carry.
	Version string
	Labels  map[string]string
	// RequestsMetric names the /metrics counter of its requests
	// (goscrape.Options.RequestsMetric).
	RequestsMetric string
}

// Daemon is a running agent.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	store   *store.Store
	watcher *observe.Watcher
	metrics *metrics

	mu      sync.Mutex // guards live, ids, scrapers and hook (Reload)
	live    Live
	ids     *identity.Resolver
	scraper map[string]*goService // by URL
	hook    *notify.Webhook       // nil: no webhook

	// The regression detector, the loop's alone; newDetector makes one
	// (tests wrap it).
	det         detection
	newDetector func(regress.Options) detector
	boosted     boosting // the loop's

	// The forwarders, by sink name (under fwdMu), and the list the
	// window loop notifies without a lock.
	fwdMu      sync.Mutex
	fwd        map[string]*forward.Forwarder
	fwdList    atomic.Pointer[[]*forward.Forwarder]
	fwdMetrics *forward.Metrics

	collecting atomic.Bool
	ready      sync.Once
	lastStored atomic.Int64 // Unix ns when the last window was stored (or the daemon made, or a replay went on)
}

// New opens the store and starts the collectors. It fails when the store
// cannot be opened (another agent holds it, no permission); collectors
// that cannot run here are not an error: every window's Missing says so.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	d := &Daemon{opts: opts, log: opts.Log, scraper: map[string]*goService{}, newDetector: newDetector}
	d.metrics = newMetrics(opts.Registry)
	d.fwdMetrics = forward.NewMetrics(opts.Registry)
	sinks, err := buildSinks(opts.Live.Forward)
	if err != nil {
		return nil, err
	}
	if err := d.setLive(opts.Live); err != nil {
		return nil, err
	}
	so := opts.Live.Store
	so.CombineVerdicts = combineVerdicts(opts.Live.Thresholds)
	st, err := store.Open(opts.DataDir, so)
	if err != nil {
		d.closeScrapers()
		d.closeHook()
		return nil, err
	}
	d.store = st
	d.metrics.watchStore(opts.Registry, st)
	w, err := observe.Start(ctx, observe.Options{
		Interval: opts.Interval, EBPF: opts.EBPF, Frequency: opts.Frequency,
		OffCPUSampling: opts.OffCPUSampling, NativeUnwind: opts.NativeUnwind, NoEBPF: opts.NoEBPF, Env: opts.Env,
	})
	if err != nil {
		d.closeScrapers()
		st.Close()
		d.closeHook()
		return nil, fmt.Errorf("starting the collectors: %w", err)
	}
	d.watcher = w
	d.lastStored.Store(time.Now().UnixNano())
	d.applySinks(sinks)
	return d, nil
}

// Store is the daemon's store, for the HTTP API.
func (d *Daemon) Store() *store.Store { return d.store }

// Collecting tells whether a window has been stored: /healthz.
func (d *Daemon) Collecting() bool { return d.collecting.Load() }

// Progressing tells whether a window was stored (or the daemon started)
// within the last max: the systemd watchdog's test of a live loop.
func (d *Daemon) Progressing(max time.Duration) bool {
	return time.Since(time.Unix(0, d.lastStored.Load())) < max
}

// Run collects window after window until ctx ends, then stores the window
// in flight (cut short) and returns nil. A window that cannot be stored
// is logged and counted; the next one is tried. Before the first window,
// the regression detector is fed the store's last windows.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	rs := d.live.Regressions
	d.mu.Unlock()
	if rs.Enabled {
		d.startDetection(detectorOptions(rs), d.storeEnd())
	}
	for {
		err := d.window(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, observe.ErrClosed) {
			return err
		}
		if err != nil {
			d.log.Error("window not stored", "err", err)
		}
	}
}

// Close stops the collectors and closes the store. Call it after Run has
// returned.
func (d *Daemon) Close() error {
	d.closeSinks()
	d.closeScrapers()
	d.closeHook()
	werr := d.watcher.Close()
	serr := d.store.Close()
	return errors.Join(werr, serr)
}

// ReloadFailed records a reload refused before it reached the daemon (a
// config file that does not load), for /metrics.
func (d *Daemon) ReloadFailed() { d.metrics.reloaded(false) }

// Reload replaces the live options: identity rules, Go services, labels,
// thresholds, the store's retention and the sinks. The store, the eBPF
// session and the window in flight are kept; the new rules apply from
// the next window on, the retention from the next maintenance; each
// sink keeps its cursor, so nothing queued is lost.
func (d *Daemon) Reload(live Live) error {
	err := d.reload(live)
	d.metrics.reloaded(err == nil)
	return err
}

// reload applies all of live or none of it: the retention is checked and
// set first, and set back if the rest is refused.
func (d *Daemon) reload(live Live) error {
	d.mu.Lock()
	old := d.live.Store
	d.mu.Unlock()
	sinks, err := buildSinks(live.Forward)
	if err != nil {
		return err
	}
	if err := d.store.SetRetention(live.Store); err != nil {
		return err
	}
	if err := d.setLive(live); err != nil {
		d.store.SetRetention(old)
		return err
	}
	d.applySinks(sinks)
	return nil
}

// setLive swaps live in; on error (a bad rule, a bad Go service, a
// webhook token that does not read) the old one stays. The identity
// caches survive a reload: SetRules re-resolves each process under the
// new rules, but build IDs stay read. The webhook keeps its queue across
// a reload that changes where it posts.
func (d *Daemon) setLive(live Live) error {
	if live.Window <= 0 {
		return errors.New("the window must be positive")
	}
	if live.Thresholds == (verdict.Thresholds{}) {
		live.Thresholds = verdict.DefaultThresholds()
	}
	if err := checkGoServices(live.GoServices); err != nil {
		return err
	}
	hook := live.Regressions.Webhook
	if hook.URL != "" {
		if err := hook.Check(); err != nil {
			return err
		}
	}
	d.mu.Lock()
	if d.ids == nil {
		ids, err := identity.New(identity.Options{Rules: live.Rules, Env: d.opts.Env})
		if err != nil {
			d.mu.Unlock()
			return err
		}
		d.ids = ids
	} else if err := d.ids.SetRules(live.Rules); err != nil {
		d.mu.Unlock()
		return err
	}
	d.syncScrapers(live.GoServices)
	d.live = live
	old := d.setHook(hook)
	d.mu.Unlock()
	if old != nil {
		old.Close() // bounded: notify.Options.CloseTimeout
	}
	return nil
}

// setHook points the webhook at t (d.mu held), and returns the webhook to
// close when there is to be none. It was checked (Target.Check): an
// error here is the token file changing since, and leaves things as they
// were, said in the log.
func (d *Daemon) setHook(t notify.Target) (old *notify.Webhook) {
	switch {
	case t.URL == "":
		old, d.hook = d.hook, nil
		return old
	case d.hook != nil:
		if err := d.hook.Reconfigure(t); err != nil {
			d.log.Error("the webhook is unchanged", "err", err)
		}
	default:
		h, err := notify.New(notify.Options{Target: t, Log: d.log, Outcome: d.metrics.webhookOutcome})
		if err != nil {
			d.log.Error("no webhook", "err", err)
			return nil
		}
		d.hook = h
	}
	return nil
}

// closeHook stops the webhook, giving its queue a bounded time.
func (d *Daemon) closeHook() {
	d.mu.Lock()
	h := d.hook
	d.hook = nil
	d.mu.Unlock()
	if h != nil {
		h.Close()
	}
}

// newDetector is the daemon's detector.
func newDetector(o regress.Options) detector { return regress.New(o) }

// combineVerdicts is the store's rollup of verdict summaries: the
// verdict's own Combine, weighted by the windows' seconds.
func combineVerdicts(th verdict.Thresholds) func([]json.RawMessage, []float64) json.RawMessage {
	if th == (verdict.Thresholds{}) {
		th = verdict.DefaultThresholds()
	}
	return func(raws []json.RawMessage, weights []float64) json.RawMessage {
		ss := make([]verdict.Summary, len(raws))
		for i, r := range raws {
			if json.Unmarshal(r, &ss[i]) != nil {
				weights[i] = 0 // unreadable: counts for nothing
			}
		}
		b, err := json.Marshal(verdict.Combine(ss, weights, th))
		if err != nil {
			return nil
		}
		return b
	}
}

func (d *Daemon) snapshot() (Live, *identity.Resolver, []*goService) {
	d.mu.Lock()
	defer d.mu.Unlock()
	gs := make([]*goService, 0, len(d.scraper))
	for _, k := range sortedKeys(d.scraper) {
		gs = append(gs, d.scraper[k])
	}
	live := d.live
	live.Labels = maps.Clone(live.Labels)
	return live, d.ids, gs
}

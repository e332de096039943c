package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/perfhound/perfhound/agent/api"
	"github.com/perfhound/perfhound/agent/config"
	"github.com/perfhound/perfhound/agent/daemon"
	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/agent/ingest"
	"github.com/perfhound/perfhound/agent/notify"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/agent/webauth"
	"github.com/perfhound/perfhound/analyzer/regress"
)

func newAgent() *cobra.Command {
	var (
		configPath string
		check      bool
		fl         agentFlags
	)
	cmd := &cobra.Command{
		Use:   "agent [flags]",
		Short: "Profile this host all the time, keep what it saw, and serve it over HTTP",
		Long: `Run the perfhound agent until stopped: every window (10 s) it profiles the
whole host with eBPF (on-CPU at 19 Hz, off-CPU sampled), reads /proc, PSI and
cgroups, scrapes the configured Go services' net/http/pprof endpoints, and takes
what applications instrumented with the Pyroscope SDKs push to its /ingest.
Every sample belongs to a service (a config rule, else the systemd unit, the
container, the executable) and a version (the executable's build ID). Each
window is judged per service, as diagnose judges, and stored in DATA-DIR
(bbolt, crash-safe), merged into coarser windows as it ages and dropped past
the retention.

The HTTP API (JSON), the web page, pprof's UI over any service and range,
/ingest and /metrics are served on --listen, loopback by default. Listening
on anything else needs a bearer token from a file (token_file).

SIGHUP re-reads the config file (a bad one is refused and the old one kept);
SIGTERM stores the window in flight and exits. docs/agent.md has the config
reference, the API, sizing and troubleshooting.

Exit status: 0 when stopped, 1 when the agent cannot run (the store is held
by another agent, the port is taken), 2 for a bad flag or config.`,
		Example: `  sudo perfhound agent
  sudo perfhound agent --config /etc/perfhound/agent.yaml
  perfhound agent --config agent.yaml --check-config
  curl -s 127.0.0.1:7474/api/v1/services`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			load := func() (config.Config, error) { return agentConfig(cmd, configPath, fl) }
			cfg, err := load()
			if err != nil {
				return usageError{err}
			}
			if check {
				if err := cfg.CheckFiles(); err != nil {
					return usageError{err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "config OK: data in %s, listening on %s, windows of %s\n", cfg.DataDir, cfg.Listen, time.Duration(cfg.Window))
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, cfg, load, cmd.ErrOrStderr(), nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "read the config from this YAML file (flags override it)")
	f.BoolVar(&check, "check-config", false, "check the config and the files it names, then exit")
	fl.add(cmd)
	return cmd
}

// agentFlags are the flags that override config keys.
type agentFlags struct {
	dataDir, listen, tokenFile, logLevel string
	window, interval                     time.Duration
	noEBPF                               bool
	frequency                            int
}

func (fl *agentFlags) add(cmd *cobra.Command) {
	d := config.Default()
	f := cmd.Flags()
	f.StringVar(&fl.dataDir, "data-dir", d.DataDir, "where the store lives (data_dir)")
	f.StringVar(&fl.listen, "listen", d.Listen, "host:port or unix:PATH of the HTTP API (listen)")
	f.StringVar(&fl.tokenFile, "token-file", "", "the API's bearer token, first line of this file (token_file)")
	f.DurationVar(&fl.window, "window", time.Duration(d.Window), "how long each stored window lasts (window)")
	f.DurationVar(&fl.interval, "interval", time.Duration(d.Interval), "time between two readings of /proc and PSI (interval)")
	f.BoolVar(&fl.noEBPF, "no-ebpf", false, "do not load the eBPF collectors (ebpf.enabled: false)")
	f.IntVar(&fl.frequency, "frequency", d.EBPF.Frequency, "on-CPU sampling rate in Hz (ebpf.frequency)")
	f.StringVar(&fl.logLevel, "log-level", d.LogLevel, "debug, info, warn or error (log_level)")
}

// agentConfig is the defaults, overlaid by the file when there is one,
// then by the flags the user set; validated.
func agentConfig(cmd *cobra.Command, path string, fl agentFlags) (config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, err
		}
	}
	var o config.Overrides
	f := cmd.Flags()
	if f.Changed("data-dir") {
		o.DataDir = &fl.dataDir
	}
	if f.Changed("listen") {
		o.Listen = &fl.listen
	}
	if f.Changed("token-file") {
		o.TokenFile = &fl.tokenFile
	}
	if f.Changed("window") {
		o.Window = &fl.window
	}
	if f.Changed("interval") {
		o.Interval = &fl.interval
	}
	if f.Changed("no-ebpf") {
		on := !fl.noEBPF
		o.EBPF = &on
	}
	if f.Changed("frequency") {
		o.Frequency = &fl.frequency
	}
	if f.Changed("log-level") {
		o.LogLevel = &fl.logLevel
	}
	cfg = cfg.Apply(o)
	if o.Window != nil && o.Interval == nil && cfg.Interval > cfg.Window {
		// --window alone, shorter than the readings' interval: read as
		// often as the windows come rather than refuse.
		cfg.Interval = cfg.Window
	}
	if err := cfg.Validate(); err != nil {
		if path != "" {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
		return cfg, err
	}
	return cfg, nil
}

// agentMemoryLimit is the Go heap's soft limit in the agent, unless
// GOMEMLIMIT says otherwise: the 64 MiB RSS goal less the binary's text
// and the runtime's own.
const agentMemoryLimit = 48 << 20

// agentShutdown bounds what follows SIGTERM once the window in flight is
// stored: requests in flight get this long.
const agentShutdown = 2 * time.Second

// runAgent runs the agent on cfg until ctx ends. reload re-reads the
// config on SIGHUP. started, when not nil, is called with the address
// listened on once the agent serves (tests listen on port 0).
func runAgent(ctx context.Context, cfg config.Config, reload func() (config.Config, error), stderr io.Writer, started func(addr string)) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The agent's goal is 64 MiB of RSS: a soft limit under it makes
		// the collector run before the heap doubles (GOGC) past it.
		debug.SetMemoryLimit(agentMemoryLimit)
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// SIGHUP's default is to end the process: catch it before the slow
	// start (loading eBPF), so that a reload sent then waits for the loop.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	token := ""
	if cfg.TokenFile != "" {
		var err error
		if token, err = webauth.ReadTokenFile(cfg.TokenFile); err != nil {
			return usageError{err}
		}
	}
	// Listen before loading anything: a port in use fails at once.
	ln, local, err := webauth.Listen(cfg.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if !local && token == "" {
		return usageError{fmt.Errorf("a token is required when listening on %s, which other hosts can reach: set token_file", ln.Addr())}
	}

	var receiver *ingest.Receiver
	var ingestHandler http.Handler
	if cfg.Ingest.Enabled {
		receiver = &ingest.Receiver{MaxMemory: int64(cfg.Ingest.MaxMemory)}
		ingestHandler = receiver.Handler(ingest.Options{})
	}
	reg := prometheus.NewRegistry()
	d, err := daemon.New(ctx, daemonOptions(cfg, receiver, reg, log))
	if err != nil {
		return err
	}
	defer d.Close()

	srv, closeAPI, err := agentServer(cfg, d, ingestHandler, reg, token, local, stderr)
	if err != nil {
		return err
	}
	defer closeAPI()
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS.Enabled() {
			errc <- srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	if !local && !cfg.TLS.Enabled() {
		log.Warn("other hosts reach the API over plain HTTP: the token and the profiles travel in clear text; set tls.cert_file and tls.key_file, or listen on loopback behind an SSH tunnel", "listen", ln.Addr().String())
	}
	log.Info("perfhound agent started", "listen", scheme+"://"+ln.Addr().String()+"/", "data_dir", cfg.DataDir, "window", time.Duration(cfg.Window), "token", token != "")
	if started != nil {
		started(ln.Addr().String())
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	stopWatchdog := watchdog(d, time.Duration(cfg.Window))
	defer stopWatchdog()

	for {
		select {
		case <-hup:
			next, err := reload()
			if err != nil {
				log.Error("config not reloaded; the running one is kept", "err", err)
				d.ReloadFailed()
				continue
			}
			if keys := config.NeedsRestart(cfg, next); len(keys) > 0 {
				log.Warn("config keys changed that only a restart applies", "keys", strings.Join(keys, ", "))
			}
			if err := d.Reload(live(next)); err != nil {
				log.Error("config not reloaded; the running one is kept", "err", err)
				continue
			}
			level.Set(logLevel(next.LogLevel))
			cfg = next
			log.Info("config reloaded")
		case err := <-errc:
			cancel()
			<-done
			return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
		case err := <-done:
			return err
		case <-ctx.Done():
			// A second SIGTERM or Ctrl-C ends the process at once.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
			log.Info("stopping: storing the window in flight")
			cancel()
			err := <-done
			sctx, scancel := context.WithTimeout(context.Background(), agentShutdown)
			defer scancel()
			if serr := srv.Shutdown(sctx); serr != nil {
				srv.Close()
			}
			log.Info("stopped")
			return err
		}
	}
}

// daemonOptions maps the config onto the daemon's options.
func daemonOptions(cfg config.Config, receiver *ingest.Receiver, reg *prometheus.Registry, log *slog.Logger) daemon.Options {
	opts := daemon.Options{
		Interval:       time.Duration(cfg.Interval),
		EBPF:           cfg.EBPF.Enabled,
		Frequency:      cfg.EBPF.Frequency,
		OffCPUSampling: cfg.EBPF.OffCPUSampling,
		NativeUnwind:   cfg.EBPF.NativeUnwind,
		DataDir:        cfg.DataDir,
		Live:           live(cfg),
		Ingest:         receiver,
		Registry:       reg,
		Log:            log,
		Ready:          func() { sddaemon.SdNotify(false, sddaemon.SdNotifyReady) },
	}
	if !cfg.EBPF.Enabled {
		opts.NoEBPF = "turned off in the config (ebpf.enabled: false, or --no-ebpf)"
	}
	return opts
}

// live is the part of the config a reload applies.
func live(cfg config.Config) daemon.Live {
	l := daemon.Live{
		Window: time.Duration(cfg.Window),
		Rules:  cfg.Services,
		Labels: cfg.Labels,
		Store:  storeOptions(cfg.Retention),
		Regressions: daemon.Regressions{
			Enabled:  cfg.Regressions.Enabled,
			Detector: detectorOptions(cfg.Regressions),
			Webhook: notify.Target{
				URL:         cfg.Regressions.Webhook.URL,
				TokenFile:   cfg.Regressions.Webhook.TokenFile,
				Timeout:     time.Duration(cfg.Regressions.Webhook.Timeout),
				MaxAttempts: cfg.Regressions.Webhook.MaxAttempts,
			},
			Boost: daemon.Boost{
				Frequency:  cfg.Regressions.Boost.Frequency,
				Duration:   time.Duration(cfg.Regressions.Boost.Duration),
				MaxPerHour: time.Duration(cfg.Regressions.Boost.MaxPerHour),
			},
		},
	}
	for _, g := range cfg.GoServices {
		l.GoServices = append(l.GoServices, daemon.GoService{URL: g.URL, Service: g.Service, Version: g.Version, Labels: g.Labels, RequestsMetric: g.RequestsMetric})
	}
	for _, s := range cfg.Forward.Sinks {
		l.Forward = append(l.Forward, sinkConfig(s))
	}
	return l
}

// sinkConfig is a configured sink as the daemon starts it.
func sinkConfig(s config.Sink) forward.SinkConfig {
	return forward.SinkConfig{
		Name: s.Name, Type: s.Type, URL: s.URL, Protocol: s.Protocol, Tenant: s.Tenant,
		IngestionWindow: time.Duration(s.IngestionWindow), Timeout: time.Duration(s.Timeout),
		Auth:    forward.Auth{Username: s.BasicAuth.Username, PasswordFile: s.BasicAuth.PasswordFile, BearerTokenFile: s.BearerTokenFile},
		TLS:     forward.TLS{CAFile: s.TLS.CAFile, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile},
		Relabel: s.Relabel,
	}
}

// detectorOptions are the detector's options with the knobs the config
// sets: min_share, fdr and min_change for the version comparison and the
// trends alike, base_window for the version comparison.
func detectorOptions(r config.Regressions) regress.Options {
	o := regress.DefaultOptions()
	o.Version.MinShare, o.Trend.MinShare = r.MinShare, r.MinShare
	o.Version.FDR, o.Trend.FDR = r.FDR, r.FDR
	o.Version.MinRelChange, o.Trend.MinRelChange = r.MinChange, r.MinChange
	o.Version.BaseWindow = time.Duration(r.BaseWindow)
	return o
}

func storeOptions(r config.Retention) store.Options {
	// Rollups never nil: the store reads nil as its defaults, and
	// `rollups: []` keeps every window as it was.
	o := store.Options{MaxAge: time.Duration(r.MaxAge), MaxBytes: int64(r.MaxSize), Rollups: []store.Rollup{}}
	for _, ru := range r.Rollups {
		o.Rollups = append(o.Rollups, store.Rollup{After: time.Duration(ru.After), Step: time.Duration(ru.Step)})
	}
	return o
}

// agentServer is the HTTP server: the API behind the token (or, on
// loopback without one, behind the loopback-name check), with the
// settings /ingest needs (ingest.Handler.Server's).
func agentServer(cfg config.Config, d *daemon.Daemon, ingestHandler http.Handler, reg *prometheus.Registry, token string, local bool, stderr io.Writer) (*http.Server, func() error, error) {
	a, err := api.New(api.StoreSource(d.Store(), d.Collecting), api.Options{
		Ingest:   ingestHandler,
		Registry: reg,
		MaxRange: time.Duration(cfg.Retention.MaxAge),
		Regress:  d.VersionOptions,
		ErrorLog: stderr,
	})
	if err != nil {
		return nil, nil, err
	}
	var h http.Handler = a
	if token != "" {
		g, err := webauth.New(webauth.Options{Token: token, LoopbackHosts: local && !strings.HasPrefix(cfg.Listen, webauth.UnixPrefix)})
		if err != nil {
			a.Close()
			return nil, nil, err
		}
		h = g.Handler(h)
	} else {
		h = webauth.LoopbackOnly(h)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// A push read in full is always answered (ingest.Handler.Server).
		WriteTimeout: 2 * time.Minute,
	}, a.Close, nil
}

// watchdog pings systemd's watchdog (WatchdogSec in the unit) while the
// window loop makes progress; it stops pinging when a window is overdue,
// so a stuck agent is restarted.
func watchdog(d *daemon.Daemon, window time.Duration) (stop func()) {
	every, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return func() {}
	}
	t := time.NewTicker(every / 3)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				if d.Progressing(2*window + time.Minute) {
					sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
				}
			case <-quit:
				return
			}
		}
	}()
	return func() { t.Stop(); close(quit) }
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

package observe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/goscrape"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
)

// ErrNoProcess is a PID with no process behind it when the watch begins.
var ErrNoProcess = errors.New("no such process")

// NotRequested is the reason Missing gives for eBPF when Options did not
// ask for it and gave no reason of their own (NoEBPF).
const NotRequested = "not requested"

// Options say what to watch and how.
type Options struct {
	// Target: a process (PID), a Go service (URL), or the host (neither).
	PID int
	URL string
	// Interval between metric readings; default 1 s.
	Interval time.Duration
	// EBPF turns the eBPF collectors on when this host allows them;
	// Frequency is their on-CPU sampling rate (default 99 Hz).
	EBPF      bool
	Frequency int
	// OffCPUSampling follows one switch-out in this many (bpf.Options);
	// 0 follows every one, as diagnose does.
	OffCPUSampling int
	// NativeUnwind walks user stacks by the .eh_frame tables of
	// what a process maps, where all its code has them (bpf.Options):
	// C and C++ built without frame pointers get their callers.
	NativeUnwind bool
	// NoEBPF, with EBPF off, is why, as Missing says it: the caller knows
	// better than "not requested" (a service that does not run here).
	NoEBPF string
	// ThreadStates says when a process's threads' states are sampled
	// from /proc (collect.ThreadStates): by default only when no eBPF
	// session runs, the off-CPU view eBPF would otherwise give.
	ThreadStates ThreadStateMode
	// Env says where /proc and /sys are.
	Env collect.Env
	// Stop, when closed, ends the window early without an error: the
	// watched command has exited. A Watcher's later windows end at once.
	Stop <-chan struct{}
}

// ThreadStateMode says when to sample a process's thread states.
type ThreadStateMode int

// The thread-state modes.
const (
	ThreadStatesWithoutEBPF ThreadStateMode = iota // when no eBPF session runs (the default)
	ThreadStatesAlways                             // beside eBPF too: a recording that keeps both views
	ThreadStatesOff
)

// Watch watches one target for one window of d with every collector that
// applies and can run here: eBPF (host-wide, or the PID and its
// children), /proc and PSI metric series, and the Go service's pprof
// endpoint. It returns the observation, whose Missing lists every signal
// that could not be had and why. The error is for a target that cannot be
// watched at all (a URL that is not pprof); a PID that exits during the
// window is not an error: its series end there and Missing says so.
// It is Start, one Window of d, and Close.
func Watch(ctx context.Context, opts Options, d time.Duration) (*observation.Observation, error) {
	if d <= 0 {
		return nil, errWindow
	}
	w, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return w.Window(ctx, d)
}

var errWindow = errors.New("observe: a window needs a positive duration")

// ErrClosed is Window's error after Close, and, wrapped, that of a window
// that Close cut short.
var ErrClosed = errors.New("observe: watcher closed")

// ErrBusy is Window's error while another Window of the same watcher is
// in flight: windows tile time, one after the other.
var ErrBusy = errors.New("observe: a window is already in flight")

// Watcher watches one target window after window (see the package doc
// for its lifecycle). What it starts once it keeps for every window: the
// eBPF session (loaded and attached once; each window reads what it
// gathered since the previous one), the samplers and the recorder's
// counter baselines, the process scan's last reading, the Go service's
// scrape state (its last cumulative profiles and runtime statistics),
// and the symbolizer's caches inside the session. Consecutive windows
// tile time: each begins where the previous one ended.
//
// Concurrency: one Window at a time (an overlapping call gets ErrBusy);
// Close may be called from any goroutine at any time, a window in flight
// included: it cuts that window short (the window returns what it
// watched so far and an error wrapping ErrClosed), waits for it to
// return, then frees everything.
type Watcher struct {
	opts Options
	// base holds what every window's observation starts with: the
	// target, the host, the collectors, and what cannot be collected.
	base     observation.Observation
	samplers []collect.Sampler
	rec      *collect.Recorder
	session  *bpf.Session
	running  []bpf.Collector // the eBPF collectors attached, nil without a session
	scan     *collect.ProcessScan
	threads  *collect.ThreadStates // a process's thread states, nil when not sampled
	scraper  *goscrape.Scraper
	end      time.Time // the previous window's end, zero before the first

	// mu guards closed and the window in flight, which Close ends.
	mu       sync.Mutex
	closed   bool
	cancel   context.CancelCauseFunc // the window in flight's, nil between windows
	inFlight chan struct{}           // closed when the window in flight has returned
	close    sync.Once
	closeErr error

	// windowStarted, when set (by tests), is called as a window starts.
	windowStarted func()
}

// Start checks the target and starts every collector that applies and can
// run here (see Watch); what cannot run is in every window's Missing. ctx
// bounds Start (a URL's probe; a ctx that has ended once the collectors
// are started fails Start, which then closes them), not the watcher.
func Start(ctx context.Context, opts Options) (_ *Watcher, err error) {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	w := &Watcher{opts: opts, rec: collect.NewRecorder()}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if err := w.checkTarget(ctx); err != nil {
		return nil, err
	}
	w.describeHost()
	w.openSamplers()
	w.startEBPF()
	w.startThreadStates()
	w.startProcessScan()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("observe: starting the collectors: %w", err)
	}
	return w, nil
}

// checkTarget names the target in base and refuses one that cannot be
// watched: a URL that is not net/http/pprof (its scraper starts here), a
// PID with no process.
func (w *Watcher) checkTarget(ctx context.Context) error {
	t := &w.base.Meta.Target
	switch {
	case w.opts.URL != "":
		*t = observation.Target{Kind: observation.TargetURL, URL: w.opts.URL}
		s, err := goscrape.NewScraper(ctx, goscrape.Options{BaseURL: w.opts.URL})
		if err != nil {
			return err
		}
		w.scraper = s
	case w.opts.PID > 0:
		*t = observation.Target{Kind: observation.TargetProcess, PID: w.opts.PID}
		if _, err := os.Stat(fmt.Sprintf("%s/%d/stat", w.opts.Env.ProcDir(), w.opts.PID)); err != nil {
			return fmt.Errorf("observe: no process %d: %w", w.opts.PID, ErrNoProcess)
		}
	default:
		*t = observation.Target{Kind: observation.TargetHost}
	}
	return nil
}

// describeHost records the host and perfhound's own collectors.
func (w *Watcher) describeHost() {
	Host(&w.base.Meta, w.opts.Env)
	Collector(&w.base.Meta, "perfhound", "")
	Collector(&w.base.Meta, "gopsutil", "github.com/shirou/gopsutil/v4")
}

// openSamplers makes the /proc and PSI samplers of the target, and the
// sampler of perfhound's own CPU time, read in the same rounds as the
// host's so that the analyzer can leave it out of the host's.
func (w *Watcher) openSamplers() {
	samplers, missing := collect.Samplers(w.opts.Env, collect.Target{PID: w.opts.PID})
	w.base.Missing = append(w.base.Missing, missing...)
	w.base.Meta.WatcherPID = collect.WatcherPID(w.opts.Env)
	w.samplers = append(samplers, collect.SelfCPU())
}

// startEBPF loads and attaches the eBPF collectors this host allows, when
// asked for, following the PID and its children.
func (w *Watcher) startEBPF() {
	if !w.opts.EBPF {
		why := w.opts.NoEBPF
		if why == "" {
			why = NotRequested
		}
		w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: why})
		return
	}
	support := bpf.Probe()
	FromSupport(&w.base, support)
	if !support.Available() {
		return
	}
	running := available(support)
	session, err := bpf.Start(bpf.Options{
		Collectors:     running,
		Frequency:      w.opts.Frequency,
		OffCPUSampling: w.opts.OffCPUSampling,
		NativeUnwind:   w.opts.NativeUnwind,
		PIDs:           pids(w.opts.PID),
		FollowChildren: w.opts.PID > 0,
		ProcFS:         w.opts.Env.ProcDir(),
	})
	if err != nil {
		w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: err.Error()})
		return
	}
	if err := session.NativeUnwindError(); err != nil {
		w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalEBPFUnwind,
			Reason: "user stacks walked by frame pointers alone, so code built without them loses its callers: " + err.Error()})
	}
	if w.opts.PID > 0 {
		// The fork tracepoint follows children forked from now on; those
		// forked before (a pre-fork server's workers) are told now.
		if err := session.Follow(collect.Descendants(w.opts.Env, w.opts.PID)); err != nil {
			w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalEBPF,
				Reason: "some of the process's children are not watched: " + err.Error()})
		}
	}
	w.session, w.running = session, running
	Collector(&w.base.Meta, string(observation.SourceEBPF), "github.com/cilium/ebpf")
}

// startThreadStates samples a process target's thread states, as
// opts.ThreadStates says.
func (w *Watcher) startThreadStates() {
	switch {
	case w.opts.PID <= 0, w.opts.ThreadStates == ThreadStatesOff,
		w.opts.ThreadStates == ThreadStatesWithoutEBPF && w.session != nil:
		return
	}
	ts, err := collect.StartThreadStates(w.opts.Env, w.opts.PID, collect.ThreadStateOptions{})
	if err != nil {
		w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalThreadStates, Reason: err.Error()})
		return
	}
	w.threads = ts
}

// startProcessScan takes a host's first scan of every process, to learn
// whether the process table can be read (Collecting, Missing); the first
// window takes its own.
func (w *Watcher) startProcessScan() {
	if w.base.Meta.Target.Kind != observation.TargetHost {
		return
	}
	scan, err := collect.StartProcessScan(w.opts.Env)
	if err != nil {
		w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalHostScan, Reason: err.Error()})
		return
	}
	w.scan = scan
}

// Window watches for d and returns the window's observation (see Watch).
// The first window starts now; a later one where the previous one ended,
// and ends d after the call: its first metric interval, its eBPF data,
// its process scan and its Go service's deltas and go.* rates also cover
// the time between the calls. The eBPF data of a window runs from the
// previous window's read of the session to this one's, which follows the
// metric readings by the time the process table takes to read. A Go
// service's CPU profile is the window's own, from the call for d. The
// window ends early, without an error, when opts.Stop is closed; with
// ctx's error (and what was watched so far) when ctx ends; and with an
// error wrapping ErrClosed (and what was watched so far) when Close is
// called. A scrape that fails is in the observation's Missing.
func (w *Watcher) Window(ctx context.Context, d time.Duration) (*observation.Observation, error) {
	if d <= 0 {
		return nil, errWindow
	}
	wctx, done, err := w.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if w.end.IsZero() {
		w.rebaseline()
	}
	if w.windowStarted != nil {
		w.windowStarted()
	}
	anchor := time.Now()
	start := w.end
	if start.IsZero() {
		start = anchor
	}
	g := w.gather(wctx, anchor, d)
	// The window ends here: reading the process table and the eBPF maps
	// below takes time the rates must not be spread over.
	end := time.Now()
	w.end = end

	o := w.assemble(g, wctx.Err() != nil)
	o.Meta.Start, o.Meta.Duration = start.UTC(), end.Sub(start)
	if err := ctx.Err(); err != nil {
		return o, fmt.Errorf("observe: window cut short: %w", err)
	}
	if errors.Is(context.Cause(wctx), ErrClosed) {
		return o, fmt.Errorf("observe: window cut short: %w", ErrClosed)
	}
	return o, nil
}

// begin makes the window in flight: its context, which opts.Stop and
// Close end, and done, which the window calls as it returns. It refuses a
// closed watcher and a window while another is in flight.
func (w *Watcher) begin(ctx context.Context) (context.Context, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, ErrClosed
	}
	if w.inFlight != nil {
		return nil, nil, ErrBusy
	}
	wctx, cancel := context.WithCancelCause(ctx)
	if w.opts.Stop != nil {
		go func() {
			select {
			case <-w.opts.Stop:
				cancel(nil)
			case <-wctx.Done():
			}
		}()
	}
	finished := make(chan struct{})
	w.cancel, w.inFlight = cancel, finished
	return wctx, func() {
		cancel(nil)
		w.mu.Lock()
		w.cancel, w.inFlight = nil, nil
		w.mu.Unlock()
		close(finished)
	}, nil
}

// Close stops every collector and frees what they hold: the eBPF
// programs, maps, links and the symbolizer's caches, and the scraper's
// idle connections. A window in flight is cut short first, and Close
// waits for it to return. It is safe to call more than once, and from
// any goroutine; every call returns the first one's error.
func (w *Watcher) Close() error {
	w.close.Do(func() {
		w.mu.Lock()
		w.closed = true
		cancel, inFlight := w.cancel, w.inFlight
		w.mu.Unlock()
		if cancel != nil {
			cancel(ErrClosed)
			<-inFlight
		}
		if w.scraper != nil {
			w.scraper.Close()
		}
		if w.session != nil {
			w.closeErr = w.session.Close()
		}
		if w.scan != nil {
			w.scan.Close()
		}
		if w.threads != nil {
			w.threads.Close()
		}
	})
	return w.closeErr
}

// rebaseline drops what was gathered before the first window (while the
// watcher started, and until Window was called), so that the window holds
// its own span: what the eBPF session gathered, and the process scan's
// first reading, taken again.
func (w *Watcher) rebaseline() {
	if w.session != nil {
		w.session.Read()
	}
	if w.threads != nil {
		w.threads.Finish()
	}
	if w.scan != nil {
		w.scan.Close()
		scan, err := collect.StartProcessScan(w.opts.Env)
		if err != nil {
			w.base.Missing = append(w.base.Missing, observation.Missing{Signal: observation.SignalHostScan, Reason: err.Error()})
		}
		w.scan = scan
	}
}

// SetFrequency changes the eBPF on-CPU sampling rate from the next
// window on (bpf.Session.SetFrequency): the agent samples a fresh
// deploy faster. Without eBPF it does nothing.
func (w *Watcher) SetFrequency(hz int) error {
	if w.session == nil {
		return nil
	}
	return w.session.SetFrequency(hz)
}

// Frequency is the eBPF on-CPU sampling rate of the window in progress,
// in Hz; 0 without eBPF.
func (w *Watcher) Frequency() int {
	if w.session == nil {
		return 0
	}
	return w.session.Frequency()
}

// Collecting names what each window collects: the eBPF collectors, the
// Go service's pprof endpoint, the /proc and PSI samplers, the process
// table; for a progress display.
func (w *Watcher) Collecting() []string {
	return collecting(w.samplers, w.running, w.scraper != nil, w.scan != nil, w.threads != nil)
}

// gathered is what a window's samplers and scrape returned.
type gathered struct {
	series    []observation.Series
	missing   []observation.Missing
	scraped   *goscrape.Result
	scrapeErr error
}

// gather runs the samplers every interval from anchor for d, and the Go
// service's scrape beside them, until both are done or ctx ends.
func (w *Watcher) gather(ctx context.Context, anchor time.Time, d time.Duration) gathered {
	var (
		g  gathered
		wg sync.WaitGroup
	)
	wg.Go(func() {
		g.series, g.missing = w.rec.Window(ctx, w.samplers, w.opts.Interval, anchor, anchor.Add(d))
	})
	if w.scraper != nil {
		wg.Go(func() {
			g.scraped, g.scrapeErr = w.scraper.Window(ctx, d)
		})
	}
	wg.Wait()
	return g
}

// newObservation is a window's observation before anything of the window
// is in it: base, with its own copy of what a window may change.
func (w *Watcher) newObservation() *observation.Observation {
	o := &observation.Observation{Meta: w.base.Meta}
	o.Meta.Collectors = maps.Clone(w.base.Meta.Collectors)
	o.Missing = slices.Clone(w.base.Missing)
	return o
}

// assemble makes the window's observation: what gather returned, each
// process's share of the window, and what the eBPF session gathered;
// for a host, without the watcher's own process. A scrape that failed
// is Missing, unless the window was cut short (the scrape then returns
// nothing, and the window says why it ended).
func (w *Watcher) assemble(g gathered, cutShort bool) *observation.Observation {
	o := w.newObservation()
	o.Series = append(o.Series, g.series...)
	o.Missing = append(o.Missing, g.missing...)
	if g.scraped != nil {
		o.Profiles = append(o.Profiles, g.scraped.Profiles...)
		o.Series = append(o.Series, g.scraped.Series...)
		o.Missing = append(o.Missing, g.scraped.Missing...)
	}
	if g.scrapeErr != nil && !cutShort {
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalPprof, Reason: g.scrapeErr.Error()})
	}
	w.finishProcessScan(o)
	w.finishThreadStates(o)
	w.readEBPF(o)
	if o.Meta.Target.Kind == observation.TargetHost {
		dropProcess(o, o.Meta.WatcherPID)
	}
	return o
}

// finishProcessScan adds each process's share of the window (a host's).
func (w *Watcher) finishProcessScan(o *observation.Observation) {
	if w.scan == nil {
		return
	}
	ps, missing, err := w.scan.Finish()
	if err != nil {
		missing = append(missing, observation.Missing{Signal: observation.SignalHostScan, Reason: err.Error()})
	}
	o.Series = append(o.Series, ps...)
	o.Missing = append(o.Missing, missing...)
}

// finishThreadStates adds the thread states sampled in the window.
func (w *Watcher) finishThreadStates(o *observation.Observation) {
	if w.threads == nil {
		return
	}
	p, missing := w.threads.Finish()
	o.Missing = append(o.Missing, missing...)
	if p == nil {
		return
	}
	var labels map[string]string
	if v := w.threads.GoVersion(); v != "" {
		labels = map[string]string{observation.ProfileLabelGo: v}
	}
	o.Profiles = append(o.Profiles, observation.Profile{Kind: observation.KindThreadState, Source: observation.SourceProcFS,
		Labels: labels, Profile: p})
}

// readEBPF adds what the eBPF session gathered since its previous read.
func (w *Watcher) readEBPF(o *observation.Observation) {
	if w.session == nil {
		return
	}
	win, err := w.session.Read()
	if err != nil {
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: err.Error()})
		return
	}
	FromBPF(o, win)
}

// dropProcess removes a process from a host observation: the watcher's
// own samples, series and histograms are not part of what was watched.
// (The eBPF programs can only be told which processes to follow, not
// which to leave out; the watcher's samples are dropped here.)
func dropProcess(o *observation.Observation, pid int) {
	id := strconv.Itoa(pid)
	for _, p := range o.Profiles {
		if p.Source != observation.SourceEBPF || p.Profile == nil {
			continue
		}
		kept := p.Profile.Sample[:0]
		for _, s := range p.Profile.Sample {
			if v := s.NumLabel["pid"]; len(v) == 1 && v[0] == int64(pid) {
				continue
			}
			kept = append(kept, s)
		}
		p.Profile.Sample = kept
	}
	hs := o.Histograms[:0]
	for _, h := range o.Histograms {
		if h.Labels["pid"] != id {
			hs = append(hs, h)
		}
	}
	o.Histograms = hs
	ss := o.Series[:0]
	for _, s := range o.Series {
		if !s.Name.In(observation.FamilyHostScan) || s.Labels["pid"] != id {
			ss = append(ss, s)
		}
	}
	o.Series = ss
}

// collecting names what a window collects: the /proc and PSI samplers,
// the eBPF collectors, the Go service's pprof endpoint, the process scan.
func collecting(samplers []collect.Sampler, ebpf []bpf.Collector, pprof, scan, threads bool) []string {
	var out []string
	if len(ebpf) > 0 {
		names := make([]string, len(ebpf))
		for i, c := range ebpf {
			names[i] = string(c)
		}
		out = append(out, "eBPF "+strings.Join(names, ","))
	}
	if pprof {
		out = append(out, "pprof")
	}
	if len(samplers) > 0 {
		out = append(out, fmt.Sprintf("%d /proc and PSI samplers", len(samplers)))
	}
	if scan {
		out = append(out, "process table")
	}
	if threads {
		out = append(out, fmt.Sprintf("thread states at %d Hz", collect.DefaultThreadStateRate))
	}
	return out
}

// available lists the collectors the probe allows.
func available(s bpf.Support) []bpf.Collector {
	var out []bpf.Collector
	for _, c := range bpf.AllCollectors {
		if s.Collectors[c] == nil {
			out = append(out, c)
		}
	}
	return out
}

func pids(pid int) []int {
	if pid > 0 {
		return []int{pid}
	}
	return nil
}

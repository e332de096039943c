package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// NotRequested is the reason Missing gives for eBPF when WatchOptions did
// not ask for it.
const NotRequested = "not requested"

// WatchOptions say what to watch and how.
type WatchOptions struct {
	// Target: a process (PID), a Go service (URL), or the host (neither).
	PID int
	URL string
	// Duration of the window; Interval between metric readings.
	Duration time.Duration
	Interval time.Duration // default 1 s
	// EBPF turns the eBPF collectors on when this host allows them;
	// Frequency is their on-CPU sampling rate (default 99 Hz).
	EBPF      bool
	Frequency int
	// Env says where /proc and /sys are.
	Env collect.Env
	// Stop, when closed, ends the window early without an error: the
	// watched command has exited.
	Stop <-chan struct{}
	// Started, when set, is called as the window starts with what is
	// being collected, for a progress display.
	Started func(collecting []string)
}

// Watch watches one target for one window with every collector that
// applies and can run here: eBPF (host-wide, or the PID and its
// children), /proc and PSI metric series, and the Go service's pprof
// endpoint. It returns the observation, whose Missing lists every signal
// that could not be had and why. The error is for a target that cannot be
// watched at all (a URL that is not pprof); a PID that exits during the
// window is not an error: its series end there and Missing says so.
func Watch(ctx context.Context, opts WatchOptions) (*observation.Observation, error) {
	if opts.Duration <= 0 {
		return nil, errors.New("observe: a window needs a positive duration")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	o := &observation.Observation{}
	switch {
	case opts.URL != "":
		o.Meta.Target = observation.Target{Kind: observation.TargetURL, URL: opts.URL}
		if err := goscrape.Probe(ctx, opts.URL); err != nil {
			return nil, err
		}
	case opts.PID > 0:
		o.Meta.Target = observation.Target{Kind: observation.TargetProcess, PID: opts.PID}
		procfs := opts.Env.ProcFS
		if procfs == "" {
			procfs = "/proc"
		}
		if _, err := os.Stat(fmt.Sprintf("%s/%d/stat", procfs, opts.PID)); err != nil {
			return nil, fmt.Errorf("observe: no process %d: %w", opts.PID, ErrNoProcess)
		}
	default:
		o.Meta.Target = observation.Target{Kind: observation.TargetHost}
	}
	Host(&o.Meta, opts.Env.ProcFS)
	Collector(&o.Meta, "perfhound", "")
	Collector(&o.Meta, "gopsutil", "github.com/shirou/gopsutil/v4")

	samplers, missing := collect.Samplers(opts.Env, collect.Target{PID: opts.PID})
	o.Missing = append(o.Missing, missing...)
	// The watcher's own CPU time, read in the same rounds as the host's,
	// so that the analyzer can leave it out of the host's.
	o.Meta.WatcherPID = collect.WatcherPID(opts.Env)
	samplers = append(samplers, collect.Watcher())

	var (
		session *bpf.Session
		running []bpf.Collector
	)
	if opts.EBPF {
		support := bpf.Probe()
		FromSupport(o, support)
		var err error
		if support.Available() {
			running = available(support)
			session, err = bpf.Start(bpf.Options{
				Collectors:     running,
				Frequency:      opts.Frequency,
				PIDs:           pids(opts.PID),
				FollowChildren: opts.PID > 0,
				ProcFS:         opts.Env.ProcFS,
			})
		}
		if err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: err.Error()})
		}
		if session != nil {
			defer session.Close()
			Collector(&o.Meta, string(observation.SourceEBPF), "github.com/cilium/ebpf")
		}
	} else {
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: NotRequested})
	}

	var scan *collect.ProcessScan
	if o.Meta.Target.Kind == observation.TargetHost {
		var err error
		if scan, err = collect.StartProcessScan(opts.Env); err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalHostScan, Reason: err.Error()})
		}
	}

	// The window ends at its duration, when ctx is done, or at Stop.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Stop != nil {
		go func() {
			select {
			case <-opts.Stop:
				cancel()
			case <-wctx.Done():
			}
		}()
	}
	if opts.Started != nil {
		if session == nil {
			running = nil
		}
		opts.Started(collecting(samplers, running, opts.URL != "", scan != nil))
	}
	start := time.Now()
	var (
		wg      sync.WaitGroup
		series  []observation.Series
		smiss   []observation.Missing
		scraped *goscrape.Result
		scrErr  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		series, smiss = collect.Run(wctx, samplers, opts.Interval, opts.Duration)
	}()
	if opts.URL != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scraped, scrErr = goscrape.Scrape(wctx, goscrape.Options{BaseURL: opts.URL, Duration: opts.Duration})
		}()
	}
	wg.Wait()
	// The window ends here: reading the process table and the eBPF maps
	// below takes time the rates must not be spread over.
	end := time.Now()
	o.Series = append(o.Series, series...)
	o.Missing = append(o.Missing, smiss...)
	if scrErr != nil && wctx.Err() == nil {
		return nil, scrErr
	}
	if scraped != nil {
		o.Profiles = append(o.Profiles, scraped.Profiles...)
		o.Series = append(o.Series, scraped.Series...)
		o.Missing = append(o.Missing, scraped.Missing...)
	}
	if scan != nil {
		ps, pmiss, err := scan.Finish()
		if err != nil {
			pmiss = append(pmiss, observation.Missing{Signal: observation.SignalHostScan, Reason: err.Error()})
		}
		o.Series = append(o.Series, ps...)
		o.Missing = append(o.Missing, pmiss...)
	}
	if session != nil {
		w, err := session.Read()
		if err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: err.Error()})
		} else {
			FromBPF(o, w)
		}
	}
	if o.Meta.Target.Kind == observation.TargetHost {
		dropProcess(o, o.Meta.WatcherPID)
	}
	o.Meta.Start, o.Meta.Duration = start.UTC(), end.Sub(start)
	if err := ctx.Err(); err != nil {
		return o, fmt.Errorf("observe: window cut short: %w", err)
	}
	return o, nil
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
func collecting(samplers []collect.Sampler, ebpf []bpf.Collector, pprof, scan bool) []string {
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

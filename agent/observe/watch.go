package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/goscrape"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
)

// ErrNoProcess is a PID with no process behind it when the watch begins.
var ErrNoProcess = errors.New("no such process")

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

	var session *bpf.Session
	if opts.EBPF {
		support := bpf.Probe()
		FromSupport(o, support)
		var err error
		if support.Available() {
			session, err = bpf.Start(bpf.Options{
				Collectors:     available(support),
				Frequency:      opts.Frequency,
				PIDs:           pids(opts.PID),
				FollowChildren: opts.PID > 0,
				ProcFS:         opts.Env.ProcFS,
			})
		}
		if err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: "ebpf", Reason: err.Error()})
		}
		if session != nil {
			defer session.Close()
			Collector(&o.Meta, "ebpf", "github.com/cilium/ebpf")
		}
	} else {
		o.Missing = append(o.Missing, observation.Missing{Signal: "ebpf", Reason: "not requested"})
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
		series, smiss = collect.Run(ctx, samplers, opts.Interval, opts.Duration)
	}()
	if opts.URL != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scraped, scrErr = goscrape.Scrape(ctx, goscrape.Options{BaseURL: opts.URL, Duration: opts.Duration})
		}()
	}
	wg.Wait()
	o.Series = append(o.Series, series...)
	o.Missing = append(o.Missing, smiss...)
	if scrErr != nil && ctx.Err() == nil {
		return nil, scrErr
	}
	if scraped != nil {
		o.Profiles = append(o.Profiles, scraped.Profiles...)
		o.Series = append(o.Series, scraped.Series...)
		o.Missing = append(o.Missing, scraped.Missing...)
	}
	if session != nil {
		w, err := session.Read()
		if err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: "ebpf", Reason: err.Error()})
		} else {
			FromBPF(o, w)
		}
	}
	o.Meta.Start, o.Meta.Duration = start.UTC(), time.Since(start)
	if err := ctx.Err(); err != nil {
		return o, fmt.Errorf("observe: window cut short: %w", err)
	}
	return o, nil
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

package observe

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
)

// cpuSeconds is the CPU time a process.cpu series says the target used in
// the window: each rate times the time since the reading before it (the
// window's start for the first).
func cpuSeconds(o *observation.Observation) float64 {
	var secs float64
	for _, s := range o.SeriesNamed("process.cpu", nil) {
		prev := o.Meta.Start
		for _, p := range s.Points {
			secs += p.Value * p.Time.Sub(prev).Seconds()
			prev = p.Time
		}
	}
	return secs
}

// cpuSamples is the number of on-CPU samples in o's eBPF CPU profile.
func cpuSamples(o *observation.Observation) int64 {
	var n int64
	for _, p := range o.ProfilesOf(observation.KindCPU) {
		for _, s := range p.Profile.Sample {
			n += s.Value[0]
		}
	}
	return n
}

// TestWatcherWindows watches a spinning process with two watchers at
// once: one for three consecutive windows of a second, the other for one
// window over the same span (stopped when the three have ended). Each of
// the three is a whole observation (its series, its eBPF CPU profile),
// each begins where the previous one ended, and between them they count
// the CPU time and the on-CPU samples the one window counts, within
// sampling noise: no time is counted twice (a baseline or an eBPF map
// not carried over) or lost between windows. The spinner's CPU time is
// the kernel's (/proc), whatever share of a CPU a busy machine gives it;
// the two watchers' spans differ by how long the last window takes to
// read the eBPF maps, so the one window's counts are scaled to the three's
// span. Between the first two windows the test waits for 500 ms of the
// spinner's CPU time: a later window that began at its call rather than
// at the previous window's end would lose it. Later windows open nothing
// the first had not opened.
func TestWatcherWindows(t *testing.T) {
	support := bpf.Probe()
	ebpf := support.Collectors[bpf.OnCPU] == nil
	cmd := spinner(t, 10*time.Minute)
	ctx := context.Background()
	stop := make(chan struct{})
	oneStarted := make(chan struct{})
	opts := WatchOptions{PID: cmd.Process.Pid, Interval: 250 * time.Millisecond, EBPF: true}
	oneOpts := opts
	oneOpts.Stop, oneOpts.Started = stop, func([]string) { close(oneStarted) }
	one, err := Start(ctx, oneOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	three, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer three.Close()

	type result struct {
		o   *observation.Observation
		err error
	}
	oneDone := make(chan result, 1)
	go func() {
		o, err := one.Window(ctx, 10*time.Minute)
		oneDone <- result{o, err}
	}()
	<-oneStarted
	var (
		windows []*observation.Observation
		fds     map[string]string
	)
	for i := range 3 {
		o, err := three.Window(ctx, time.Second)
		if err != nil {
			t.Fatalf("window %d: %v", i+1, err)
		}
		windows = append(windows, o)
		if i == 0 {
			// The time between two calls is the next window's: the
			// spinner's CPU time in it must not be lost.
			before := onCPU(cmd.Process.Pid)
			for deadline := time.Now().Add(2 * time.Minute); onCPU(cmd.Process.Pid)-before < 500*time.Millisecond; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the spinner had less than 500 ms of CPU time in two minutes")
				}
			}
			fds = openFDs()
		}
	}
	// Nothing was loaded or opened again for a later window, nor left
	// open by one.
	if extra := newFDs(fds); len(extra) > 0 {
		t.Errorf("windows 2 and 3 have open what window 1 had not (loaded again, or left open): %v", extra)
	}
	close(stop)
	r := <-oneDone
	if r.err != nil {
		t.Fatal(r.err)
	}
	whole := r.o

	var cpu3, span3 float64
	var samples3 int64
	for i, o := range windows {
		if o.Meta.Target.PID != cmd.Process.Pid || o.Meta.Duration < time.Second {
			t.Errorf("window %d: meta %+v", i+1, o.Meta)
		}
		if len(o.SeriesNamed("process.cpu", nil)) == 0 || len(o.SeriesNamed("watcher.cpu", nil)) == 0 {
			t.Errorf("window %d: no process.cpu or watcher.cpu series", i+1)
		}
		for _, m := range o.Missing {
			if strings.Contains(m.Reason, "read once") {
				t.Errorf("window %d: %s: %s", i+1, m.Signal, m.Reason)
			}
		}
		if ebpf && len(o.ProfilesOf(observation.KindCPU)) != 1 {
			t.Errorf("window %d: %d eBPF CPU profiles, want 1", i+1, len(o.ProfilesOf(observation.KindCPU)))
		}
		if i > 0 {
			prev := windows[i-1].Meta
			if gap := o.Meta.Start.Sub(prev.Start.Add(prev.Duration)); gap.Abs() > time.Millisecond {
				t.Errorf("window %d starts %v after window %d ends, want where it ended", i+1, gap, i)
			}
		}
		cpu3 += cpuSeconds(o)
		samples3 += cpuSamples(o)
	}
	// From the first window's start to the last one's end: time between
	// windows that none of them counted is in it.
	last := windows[2].Meta
	span3 = last.Start.Add(last.Duration).Sub(windows[0].Meta.Start).Seconds()
	scale := span3 / whole.Meta.Duration.Seconds()
	cpu1, samples1 := cpuSeconds(whole)*scale, float64(cpuSamples(whole))*scale
	t.Logf("three windows over %.3f s: %.3f s of CPU, %d samples; one window over %.3f s: %.3f s of CPU, %.0f samples (scaled to the three's span)",
		span3, cpu3, samples3, whole.Meta.Duration.Seconds(), cpu1, samples1)
	if cpu3 <= 0 || math.Abs(cpu3-cpu1) > 0.1*cpu1+0.05 {
		t.Errorf("three windows count %.3f s of the spinner's CPU time, the one window %.3f s", cpu3, cpu1)
	}
	if !ebpf {
		t.Skipf("the eBPF profiles not compared: %s", strings.Join(support.Missing(), "; "))
	}
	if samples3 <= 0 || math.Abs(float64(samples3)-samples1) > 0.2*samples1+5 {
		t.Errorf("three windows hold %d on-CPU samples, the one window %.0f", samples3, samples1)
	}
	// At 99 Hz, a sample per 1/99 s the spinner was on a CPU.
	if perSec := float64(samples3) / cpu3; perSec < 60 || perSec > 140 {
		t.Errorf("%.0f on-CPU samples per second of the spinner's CPU time, want about 99", perSec)
	}
}

// TestWatcherClosed: a closed watcher refuses a window, and closes once.
func TestWatcherClosed(t *testing.T) {
	w, err := Start(context.Background(), WatchOptions{PID: spinner(t, time.Minute).Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Window(context.Background(), 0); err == nil {
		t.Error("a window of no duration: no error")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Window(context.Background(), time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Window after Close: %v, want ErrClosed", err)
	}
}

// TestWatcherHostWindows watches the host without eBPF for two windows
// shorter than the interval: the second has its rates although it reads
// only at its end (the first window's last reading is its baseline), and
// begins where the first ended.
func TestWatcherHostWindows(t *testing.T) {
	w, err := Start(context.Background(), WatchOptions{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var prev *observation.Observation
	for i := range 2 {
		o, err := w.Window(context.Background(), 200*time.Millisecond)
		if err != nil {
			t.Fatalf("window %d: %v", i+1, err)
		}
		if o.Meta.Target.Kind != observation.TargetHost || len(o.SeriesNamed("host.cpu", nil)) == 0 || len(o.SeriesNamed("watcher.cpu", nil)) == 0 {
			t.Errorf("window %d: target %+v, %d host.cpu series", i+1, o.Meta.Target, len(o.SeriesNamed("host.cpu", nil)))
		}
		for _, m := range o.Missing {
			if strings.Contains(m.Reason, "read once") {
				t.Errorf("window %d: %s: %s", i+1, m.Signal, m.Reason)
			}
		}
		if prev != nil {
			if gap := o.Meta.Start.Sub(prev.Meta.Start.Add(prev.Meta.Duration)); gap.Abs() > time.Millisecond {
				t.Errorf("window 2 starts %v after window 1 ends", gap)
			}
		}
		prev = o
	}
}

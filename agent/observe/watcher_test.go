package observe

import (
	"bufio"
	"context"
	"errors"
	"expvar"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
	"github.com/perfhound/perfhound/internal/testproc"
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
	opts := Options{PID: cmd.Process.Pid, Interval: 250 * time.Millisecond, EBPF: true}
	oneOpts := opts
	oneOpts.Stop = stop
	one, err := Start(ctx, oneOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	one.windowStarted = func() { close(oneStarted) }
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
			before := testproc.OnCPU(cmd.Process.Pid)
			for deadline := time.Now().Add(2 * time.Minute); testproc.OnCPU(cmd.Process.Pid)-before < 500*time.Millisecond; time.Sleep(10 * time.Millisecond) {
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
	w, err := Start(context.Background(), Options{PID: spinner(t, time.Minute).Process.Pid})
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
	w, err := Start(context.Background(), Options{Interval: time.Hour})
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
		if o.Meta.Target.Kind != observation.TargetHost || len(o.SeriesNamed(observation.HostCPU, nil)) == 0 || len(o.SeriesNamed("watcher.cpu", nil)) == 0 {
			t.Errorf("window %d: target %+v, %d host.cpu series", i+1, o.Meta.Target, len(o.SeriesNamed(observation.HostCPU, nil)))
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

// TestWatcherCloseDuringWindow closes a watcher, twice at once, while its
// window of ten minutes is in flight (run it with -race): the window ends
// at once with what it watched and an error wrapping ErrClosed, a second
// window meanwhile is refused with ErrBusy, and once Close has returned
// nothing the watcher opened is left open.
func TestWatcherCloseDuringWindow(t *testing.T) {
	pid := spinner(t, 10*time.Minute).Process.Pid
	before := openFDs()
	w, err := Start(context.Background(), Options{PID: pid, Interval: 250 * time.Millisecond, EBPF: true})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	w.windowStarted = func() { close(started) }
	type result struct {
		o   *observation.Observation
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, err := w.Window(context.Background(), 10*time.Minute)
		done <- result{o, err}
	}()
	<-started
	if _, err := w.Window(context.Background(), time.Second); !errors.Is(err, ErrBusy) {
		t.Errorf("a second window while one is in flight: %v, want ErrBusy", err)
	}
	closed := make(chan error, 2)
	for range 2 {
		go func() { closed <- w.Close() }()
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the window in flight did not end within a minute of Close")
	}
	if !errors.Is(r.err, ErrClosed) || r.o == nil || r.o.Meta.Target.PID == 0 {
		t.Errorf("the window Close cut short: %v, %v; want what it watched and ErrClosed", r.o, r.err)
	}
	for range 2 {
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if _, err := w.Window(context.Background(), time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Window after Close: %v, want ErrClosed", err)
	}
	if extra := newFDs(before); len(extra) > 0 {
		t.Errorf("open after Close: %v", extra)
	}
}

// TestWatcherLaterScrapeFails watches a Go service (this test process's
// own net/http/pprof and expvar) that stops answering after the first
// window: the second window is still an observation, of the host around
// it, with each endpoint that failed in Missing, not an error.
func TestWatcherLaterScrapeFails(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.Handle("/debug/vars", expvar.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	w, err := Start(context.Background(), Options{URL: srv.URL, Interval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	o, err := w.Window(context.Background(), time.Second)
	if err != nil {
		t.Fatalf("window 1: %v", err)
	}
	if len(o.ProfilesOf(observation.KindCPU)) != 1 || len(o.ProfilesOf(observation.KindAllocs)) != 1 {
		t.Fatalf("window 1: profiles %v, missing %v: want the service's", o.Profiles, o.Missing)
	}
	srv.CloseClientConnections()
	srv.Close()
	o, err = w.Window(context.Background(), time.Second)
	if err != nil {
		t.Fatalf("window 2, the service gone: %v, want an observation saying so", err)
	}
	if len(o.Profiles) != 0 || len(o.SeriesNamed(observation.HostCPU, nil)) == 0 {
		t.Errorf("window 2: %d profiles, %d host.cpu series: want none, and the host's", len(o.Profiles), len(o.SeriesNamed(observation.HostCPU, nil)))
	}
	missing := map[observation.Signal]string{}
	for _, m := range o.Missing {
		missing[m.Signal] = m.Reason
	}
	for _, s := range []observation.Signal{observation.SignalPprofCPU, observation.SignalPprofHeap, observation.SignalPprofAllocs,
		observation.SignalPprofGoroutine, observation.SignalPprofBlock, observation.SignalPprofMutex, observation.SignalGoExpvar} {
		if !strings.Contains(missing[s], srv.URL) {
			t.Errorf("window 2: missing %s: %q, want the failure at %s", s, missing[s], srv.URL)
		}
	}
}

// TestWatcherFirstWindowProcScan: a host watcher's first window begins at
// its Window call, and so do its proc.* rates. Between Start and the
// first Window a child spins for 300 ms of CPU time, then blocks; the
// window (at least as long as the spin took) must count for the child
// what the kernel counts for it in the window, about nothing, not the
// spin before.
func TestWatcherFirstWindowProcScan(t *testing.T) {
	w, err := Start(context.Background(), Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	begun := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PERFHOUND_SPIN_CPU=300ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	spun := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(stdout).ReadString('\n')
		spun <- err
	}()
	select {
	case err := <-spun:
		if err != nil {
			t.Fatalf("the child did not say it spun: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the child did not spin 300 ms of CPU time in two minutes")
	}
	pid := cmd.Process.Pid
	cpu0 := testproc.OnCPU(pid)
	o, err := w.Window(context.Background(), max(500*time.Millisecond, time.Since(begun)))
	kernel := (testproc.OnCPU(pid) - cpu0).Seconds()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, s := range o.SeriesNamed(observation.HostScanCPU, map[string]string{"pid": strconv.Itoa(pid)}) {
		for _, p := range s.Points {
			counted += p.Value * o.Meta.Duration.Seconds()
		}
	}
	t.Logf("the child: %.3f s of CPU counted in the %v window, %.3f s by the kernel's count around it", counted, o.Meta.Duration, kernel)
	if counted > kernel+0.02 {
		t.Errorf("the first window counts %.3f s of the child's CPU time, the kernel %.3f s: the spin before the window is in it", counted, kernel)
	}
}

// TestStartCanceled: a Start whose ctx has ended by the time the
// collectors (the eBPF session, the samplers) are started fails, and
// closes what it had opened.
func TestStartCanceled(t *testing.T) {
	pid := spinner(t, time.Minute).Process.Pid
	before := openFDs()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w, err := Start(ctx, Options{PID: pid, EBPF: true})
	if !errors.Is(err, context.Canceled) || w != nil {
		t.Errorf("Start with an ended context: %v, %v; want context.Canceled", w, err)
	}
	if extra := newFDs(before); len(extra) > 0 {
		t.Errorf("open after a failed Start: %v", extra)
	}
}

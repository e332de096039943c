package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/goscrape"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
	"github.com/perfhound/perfhound/internal/testproc"
)

// spinner re-runs the test binary as a process that burns one CPU for d
// and exits by itself (see TestMain), or when the test ends.
func spinner(t *testing.T, d time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PERFHOUND_SPIN="+d.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestWatchProcess watches a spinner for 1.5 s and until the kernel has
// counted 100 ms of its CPU time (about ten samples at 99 Hz), however
// little of a CPU a busy machine gives it.
func TestWatchProcess(t *testing.T) {
	cmd := spinner(t, 10*time.Minute)
	const minWindow, minCPU = 1500 * time.Millisecond, 100 * time.Millisecond
	stop := make(chan struct{})
	var cpu0 time.Duration
	var start time.Time
	started := make(chan struct{})
	go func() {
		<-started
		defer close(stop)
		for deadline := start.Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if time.Since(start) >= minWindow && testproc.OnCPU(cmd.Process.Pid)-cpu0 >= minCPU {
				return
			}
		}
	}()
	w, err := Start(context.Background(), Options{PID: cmd.Process.Pid, Interval: 250 * time.Millisecond, EBPF: true, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.windowStarted = func() { start, cpu0 = time.Now(), testproc.OnCPU(cmd.Process.Pid); close(started) }
	o, err := w.Window(context.Background(), 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	<-stop
	if o.Meta.Target.Kind != observation.TargetProcess || o.Meta.Target.PID != cmd.Process.Pid || o.Meta.Duration < 1400*time.Millisecond {
		t.Errorf("meta %+v", o.Meta)
	}
	// On CPU or waiting for one: about a core between them, however busy
	// the machine is with other tests.
	mean := func(name observation.SeriesName) float64 {
		var v float64
		for _, s := range o.SeriesNamed(name, nil) {
			for _, p := range s.Points {
				v += p.Value / float64(len(s.Points))
			}
		}
		return v
	}
	if busy := mean("process.cpu") + mean("process.schedstat.run_delay"); busy < 0.7 {
		t.Errorf("process.cpu plus run delay average %.2f cores for a spinning process, want about 1", busy)
	}
	if support := bpf.Probe(); support.Collectors[bpf.OnCPU] == nil {
		cpu := o.ProfilesOf(observation.KindCPU)
		if len(cpu) != 1 || len(cpu[0].Profile.Sample) == 0 {
			t.Errorf("no eBPF CPU profile of the spinner: %d profiles", len(cpu))
		}
	} else {
		found := false
		for _, m := range o.Missing {
			found = found || m.Signal == "ebpf.oncpu"
		}
		if !found {
			t.Errorf("eBPF unavailable but not said so: %+v", o.Missing)
		}
	}
	dir := filepath.Join(t.TempDir(), "obs")
	if err := observation.Save(o, dir); err != nil {
		t.Fatal(err)
	}
	back, err := observation.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Series) != len(o.Series) || len(back.Profiles) != len(o.Profiles) {
		t.Errorf("round trip lost data: %d/%d series, %d/%d profiles", len(back.Series), len(o.Series), len(back.Profiles), len(o.Profiles))
	}
}

// TestWatchHostLeavesOutTheWatcher watches the host while the watcher
// itself (this test process) spins: its own samples and process series
// are dropped, and its CPU time is recorded apart (watcher.cpu) for the
// analyzer to take out of the host's.
func TestWatchHostLeavesOutTheWatcher(t *testing.T) {
	var stopped atomic.Bool
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		for !stopped.Load() { // spins: the watcher's own CPU must not hide this thread's
		}
	}()
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	o, err := Watch(context.Background(), Options{Interval: 500 * time.Millisecond, EBPF: true}, 1500*time.Millisecond)
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	stopped.Store(true)
	<-spun
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	if o.Meta.WatcherPID != me {
		t.Errorf("watcher PID %d, want this process, %d", o.Meta.WatcherPID, me)
	}
	// The watcher's CPU over the window, from its series, is part of
	// what the process used around the whole Watch, and it spun.
	var own float64
	for _, s := range o.SeriesNamed("watcher.cpu", nil) {
		for _, p := range s.Points {
			own += p.Value / float64(len(s.Points))
		}
	}
	used := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()).Seconds() / o.Meta.Duration.Seconds()
	if len(o.SeriesNamed("watcher.cpu", nil)) != 2 || own <= 0 || own > used*1.05 {
		t.Errorf("watcher.cpu averages %.3f cores, want more than 0 and at most the %.3f this process used", own, used)
	}
	for _, s := range o.Series {
		if s.Name.In(observation.FamilyHostScan) && s.Labels["pid"] == strconv.Itoa(me) {
			t.Errorf("the watcher's own %s series is in the host's", s.Name)
		}
	}
	for _, p := range o.Profiles {
		for _, s := range p.Profile.Sample {
			if v := s.NumLabel["pid"]; len(v) == 1 && v[0] == int64(me) {
				t.Fatalf("the watcher's own samples are in the host's %s profile", p.Kind)
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "obs")
	if err := observation.Save(o, dir); err != nil {
		t.Fatal(err)
	}
	if back, err := observation.Load(dir); err != nil || back.Meta.WatcherPID != me {
		t.Errorf("saved and loaded: %v, watcher %+v", err, back)
	}
}

// TestWatchProcessThatExits watches a process that exits once the window
// has started (its stdin closes then), and stops the window three readings
// after it has exited, however long that takes on a busy machine.
func TestWatchProcessThatExits(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read _")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	const interval = 200 * time.Millisecond
	stop := make(chan struct{})
	go func() {
		<-exited
		time.Sleep(3 * interval) // readings after the exit, not a guess at it
		close(stop)
	}()
	w, err := Start(context.Background(), Options{PID: cmd.Process.Pid, Interval: interval, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.windowStarted = func() { stdin.Close() }
	o, err := w.Window(context.Background(), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var gone int
	for _, m := range o.Missing {
		if m.Signal == "process" {
			gone++
		}
	}
	if gone != 1 {
		t.Errorf("%d 'process' missing entries for a process that exited, want 1: %+v", gone, o.Missing)
	}
}

func TestWatchNoSuchProcess(t *testing.T) {
	// Pids are below pid_max (at most 2^22): this one never exists.
	_, err := Watch(context.Background(), Options{PID: 1 << 23}, time.Second)
	if !errors.Is(err, ErrNoProcess) {
		t.Errorf("Watch of a missing pid: %v, want ErrNoProcess", err)
	}
}

func TestWatchURLThatIsNotPprof(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>hello</html>"))
	}))
	defer srv.Close()
	_, err := Watch(context.Background(), Options{URL: srv.URL}, time.Second)
	if !errors.Is(err, goscrape.ErrNotPprof) {
		t.Errorf("Watch of an HTML site: %v, want ErrNotPprof", err)
	}
}

// TestMain doubles as the spinner's body when PERFHOUND_SPIN is set, and
// fails the tests that passed if they left a goroutine or a file
// descriptor open (see checkLeaks).
func TestMain(m *testing.M) {
	if v := os.Getenv("PERFHOUND_SPIN_CPU"); v != "" {
		spinCPU(v)
	}
	if v := os.Getenv("PERFHOUND_SPIN"); v != "" {
		d, _ := time.ParseDuration(v)
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
		os.Exit(0)
	}
	warmUp()
	before := openFDs()
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(before); err != nil {
			fmt.Fprintln(os.Stderr, "agent/observe:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// spinCPU is a child's body: it spins until the kernel has counted d of
// its CPU time, says "spun" on stdout, then blocks until stdin closes.
func spinCPU(d string) {
	want, _ := time.ParseDuration(d)
	for {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= want {
			break
		}
	}
	os.Stdout.WriteString("spun\n")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// TestWatchThreadStates: without eBPF a process's thread states are
// sampled into the window (labelled a Go program: the spinner is one);
// off, or beside an eBPF session by default, they are not.
func TestWatchThreadStates(t *testing.T) {
	cmd := spinner(t, 10*time.Minute)
	for _, c := range []struct {
		name string
		opts Options
		want bool
	}{
		{"without eBPF", Options{}, true},
		{"off", Options{ThreadStates: ThreadStatesOff}, false},
		{"always, eBPF not asked for", Options{ThreadStates: ThreadStatesAlways}, true},
	} {
		c.opts.PID, c.opts.Interval = cmd.Process.Pid, 250*time.Millisecond
		o, err := Watch(context.Background(), c.opts, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ps := o.ProfilesOf(observation.KindThreadState)
		if got := len(ps) == 1 && len(ps[0].Profile.Sample) > 0; got != c.want {
			t.Errorf("%s: %d threadstate profiles, want one with samples: %v", c.name, len(ps), c.want)
			continue
		}
		if c.want && ps[0].Labels[observation.ProfileLabelGo] == "" {
			t.Errorf("%s: the Go spinner's profile not labelled go: %v", c.name, ps[0].Labels)
		}
	}
	if bpf.Probe().Available() {
		o, err := Watch(context.Background(), Options{PID: cmd.Process.Pid, EBPF: true, Interval: 250 * time.Millisecond}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(o.ProfilesOf(observation.KindThreadState)); n != 0 {
			t.Errorf("beside eBPF: %d threadstate profiles, want none", n)
		}
	}
}

// TestWatchPreforkedChild watches a process whose worker was forked before
// the watch began (a pre-fork server's, here a shell's background
// command): the eBPF collectors follow it from the start, though no fork
// event told them of it. Until they were told of the process's
// descendants at start, a postmaster watched under pgbench showed no
// sample at all.
func TestWatchPreforkedChild(t *testing.T) {
	if support := bpf.Probe(); support.Collectors[bpf.OnCPU] != nil {
		t.Skipf("eBPF on-CPU sampling unavailable: %v", support.Collectors[bpf.OnCPU])
	}
	sh := exec.Command("/bin/sh", "-c", os.Args[0]+" -test.run=^$ & wait")
	sh.Env = append(os.Environ(), "PERFHOUND_SPIN=2m")
	sh.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	t.Cleanup(func() {
		if child > 0 {
			syscall.Kill(child, syscall.SIGKILL)
		}
		sh.Process.Kill()
		sh.Wait()
	})
	for deadline := time.Now().Add(time.Minute); child == 0; time.Sleep(10 * time.Millisecond) {
		if kids := collect.Descendants(collect.Env{}, sh.Process.Pid); len(kids) > 0 {
			child = kids[0]
		} else if time.Now().After(deadline) {
			t.Fatal("the shell's child never appeared")
		}
	}
	stop := make(chan struct{})
	started := make(chan struct{})
	go func() {
		<-started
		defer close(stop)
		// Until the kernel has counted 100 ms of the child's CPU time
		// (about ten samples at 99 Hz), however busy the machine.
		cpu0 := testproc.OnCPU(child)
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if testproc.OnCPU(child)-cpu0 >= 100*time.Millisecond {
				return
			}
		}
	}()
	w, err := Start(context.Background(), Options{PID: sh.Process.Pid, Interval: 250 * time.Millisecond, EBPF: true, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.windowStarted = func() { close(started) }
	o, err := w.Window(context.Background(), 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var samples int64
	for _, p := range o.ProfilesOf(observation.KindCPU) {
		for _, s := range p.Profile.Sample {
			if pid := s.NumLabel["pid"]; len(pid) == 1 && pid[0] == int64(child) {
				samples += s.Value[0]
			}
		}
	}
	if samples == 0 {
		t.Errorf("no on-CPU sample of the child %d forked before the watch (missing %+v)", child, o.Missing)
	}
}

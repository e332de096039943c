package collect

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/testproc"
)

// TestLive samples a spinning child with every sampler: a shell counting
// (one thread, in user mode, always on a CPU or waiting for one) until it
// is killed; its count and its parent's end bound it. On a busy machine
// the child may get little of a CPU (CI runs other jobs, maybe at a higher
// priority), so the window lasts until the kernel has counted enough of
// the child's own CPU time, and the rates are checked against each other
// and against the wall clock as the kernel's accounting says they must add
// up, not against a share of a CPU the child might not get.
func TestLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("/bin/sh", "-c", `i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); done`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread() // Pdeathsig follows the thread that started it
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	samplers, missing := Samplers(Env{}, Target{PID: cmd.Process.Pid})
	for _, m := range missing {
		t.Logf("missing: %s: %s", m.Signal, m.Reason)
	}
	// At least 1.5 s, and until the child has had 200 ms of CPU time: 20
	// clock ticks of /proc/PID/stat, enough to tell user from system time
	// and to compare them with schedstat's nanoseconds.
	const interval, minWindow, minCPU = 250 * time.Millisecond, 1500 * time.Millisecond, 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, cpu0 := time.Now(), testproc.OnCPU(cmd.Process.Pid)
	go func() {
		defer cancel()
		for deadline := start.Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if time.Since(start) >= minWindow && testproc.OnCPU(cmd.Process.Pid)-cpu0 >= minCPU {
				return
			}
		}
	}()
	series, missing := run(ctx, samplers, interval, 0)
	window := time.Since(start)
	for _, m := range missing {
		t.Errorf("missing while sampling: %s: %s", m.Signal, m.Reason)
	}

	user, ok := findSeries(series, "process.cpu", l("mode", "user"))
	if !ok || len(user.Points) < 4 {
		t.Fatalf("process.cpu{mode=user}: %+v", user)
	}
	// Each series as seconds over the window: its rates times the
	// intervals they cover.
	total := func(name observation.SeriesName, labels map[string]string) float64 {
		s, ok := findSeries(series, name, labels)
		if !ok || len(s.Points) == 0 {
			t.Fatalf("no %s%v", name, labels)
		}
		sum, prev := 0.0, s.Points[0].Time.Add(-interval)
		for _, p := range s.Points {
			sum += p.Value * p.Time.Sub(prev).Seconds()
			prev = p.Time
		}
		return sum
	}
	span := func(name observation.SeriesName) float64 {
		s, _ := findSeries(series, name, nil)
		return s.Points[len(s.Points)-1].Time.Sub(s.Points[0].Time.Add(-interval)).Seconds()
	}
	u, sys := total("process.cpu", l("mode", "user")), total("process.cpu", l("mode", "system"))
	on, delay := total("process.schedstat.on_cpu", nil), total("process.schedstat.run_delay", nil)
	secs := span("process.schedstat.run_delay")
	t.Logf("spinning child over %d points, %.2f s (window %v): user %.3f s, system %.3f s, on a CPU %.3f s, waiting for one %.3f s",
		len(user.Points), secs, window.Round(time.Millisecond), u, sys, on, delay)
	if on < minCPU.Seconds()*0.9 {
		t.Fatalf("the child had %.3f s on a CPU in the window, want at least %v", on, minCPU)
	}
	// A spinning thread is on a CPU or waiting for one: together they are
	// the window, whatever share of a CPU it got.
	if got := on + delay; got < 0.85*secs || got > 1.15*secs {
		t.Errorf("on a CPU %.3f s + waiting for one %.3f s = %.3f s in a window of %.3f s, want about the window", on, delay, got, secs)
	}
	// /proc/PID/stat's user and system time are the same CPU time as
	// schedstat's, in clock ticks (10 ms): they add up to it.
	if d := u + sys - on; d < -0.1*on-0.03 || d > 0.1*on+0.03 {
		t.Errorf("user %.3f s + system %.3f s, want the %.3f s schedstat counts on a CPU", u, sys, on)
	}
	// And it spins in user mode.
	if u < 0.8*(u+sys) {
		t.Errorf("user %.3f s of %.3f s on a CPU, want nearly all of a spinning child's", u, u+sys)
	}
	for _, mode := range []string{"user", "system", "idle"} {
		if s, ok := findSeries(series, "host.cpu", l("cpu", "all", "mode", mode)); !ok || len(s.Points) < 4 {
			t.Errorf("host.cpu{cpu=all,mode=%s}: %d points", mode, len(s.Points))
		}
	}
	for _, name := range []observation.SeriesName{"process.schedstat.on_cpu", "process.ctxsw", "process.memory.rss", "process.fds", "host.load.load1", "host.memory.available"} {
		found := false
		for _, s := range series {
			found = found || s.Name == name
		}
		if !found {
			t.Errorf("no %s series", name)
		}
	}

	// The child exits: each process sampler says so once, then nothing.
	cmd.Process.Kill()
	cmd.Wait()
	exited = true
	rec := NewRecorder()
	for _, s := range samplers {
		err := s.Sample(context.Background(), rec)
		isProcess := len(s.Name()) > 8 && s.Name()[:8] == "process."
		if isProcess && !errors.Is(err, ErrProcessGone) {
			t.Errorf("%s after exit: %v, want ErrProcessGone", s.Name(), err)
		}
		if !isProcess && err != nil {
			t.Errorf("%s: %v", s.Name(), err)
		}
		if err := s.Sample(context.Background(), rec); err != nil {
			t.Errorf("%s, second sample after exit: %v", s.Name(), err)
		}
	}
}

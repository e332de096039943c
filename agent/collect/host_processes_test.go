package collect

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/internal/testproc"
)

// TestProcessScan scans the real /proc around a spinning shell and a
// sleeping process. The window lasts at least a second and until the
// kernel has counted 200 ms of the shell's CPU time, however little of a
// CPU a busy machine gives it: the shell is then on a CPU or waiting for
// one all the window (about one thread's worth between them), its CPU time
// is the kernel's, and the sleeping process is left out.
func TestProcessScan(t *testing.T) {
	// A count and the test's own end bound the shell (Pdeathsig, with the
	// thread that starts it locked).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	spin := testproc.Spin(t, 1e8)
	idle := exec.Command("sleep", "600")
	idle.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { idle.Process.Kill(); idle.Wait() }()
	// Past its exec and its loader: asleep in (clock_)nanosleep.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", idle.Process.Pid))
		if strings.HasPrefix(string(b), "230 ") || strings.HasPrefix(string(b), "35 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep not asleep after a minute: %q", b)
		}
	}

	const minWindow, minCPU = time.Second, 200 * time.Millisecond
	before := testproc.OnCPU(spin.Process.Pid)
	scan, err := StartProcessScan(Env{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for deadline := start.Add(2 * time.Minute); time.Since(start) < minWindow || testproc.OnCPU(spin.Process.Pid)-before < minCPU; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the spinning shell had %v of CPU time in two minutes", testproc.OnCPU(spin.Process.Pid)-before)
		}
	}
	series, _, err := scan.Finish()
	if err != nil {
		t.Fatal(err)
	}
	after := testproc.OnCPU(spin.Process.Pid)
	secs := time.Since(start).Seconds()
	pid := strconv.Itoa(spin.Process.Pid)
	var cpu, delay, rss float64
	for _, s := range series {
		switch {
		case s.Labels["pid"] == strconv.Itoa(idle.Process.Pid):
			t.Errorf("the sleeping process was recorded: %+v", s)
		case s.Labels["pid"] != pid:
		case s.Name == "proc.cpu":
			cpu += s.Points[0].Value
		case s.Name == "proc.run_delay":
			delay += s.Points[0].Value
		case s.Name == "proc.memory.rss":
			rss += s.Points[0].Value
		}
	}
	// Its resident memory, as its status file tells it now: a spinning
	// shell's moves by a few pages at most. The two files do not count it
	// alike: stat reads the kernel's per-CPU RSS counters without summing
	// their CPUs' pending deltas (get_mm_rss), status sums them (Linux
	// 6.16 on), and each of the three counters (file, anon, shmem) may
	// hold up to its batch, max(32, 2·CPUs) pages, on every CPU: after the
	// shell's start that was 73 pages on 2 CPUs.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%s/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStatus("status", b, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	cpus := runtime.NumCPU()
	pending := float64(3 * max(32, 2*cpus) * cpus * os.Getpagesize())
	if vm := float64(st["VmRSS"]); rss < 0.9*vm-pending || rss > 1.1*vm+pending || vm == 0 {
		t.Errorf("the spinning shell's proc.memory.rss %.0f bytes, its VmRSS %.0f", rss, vm)
	}
	t.Logf("the spinning shell over %.2f s: %.3f cores on a CPU, %.3f waiting for one; the kernel counted %.3f s on a CPU", secs, cpu, delay, (after - before).Seconds())
	// One thread, always runnable.
	if cpu+delay < 0.8 || cpu+delay > 1.2 {
		t.Errorf("the spinning shell: %.2f cores on a CPU + %.2f waiting for one, want about 1", cpu, delay)
	}
	// Its CPU time, in clock ticks over a window a little shorter than
	// the span the test read the kernel's nanoseconds over.
	if got, kernel := cpu*secs, (after - before).Seconds(); got > kernel+0.03 || got < 0.8*kernel-0.03 {
		t.Errorf("the spinning shell: %.3f s on a CPU in the scan, the kernel counted %.3f s around it", got, kernel)
	}
}

// TestProcessScanWindows finishes two windows of one scan: a shell spins
// in the first until the kernel has counted 50 ms of its CPU time, and
// is stopped (SIGSTOP) in the second. The second window starts at the
// first's last scan, so the shell is in the first and not in the second.
func TestProcessScanWindows(t *testing.T) {
	spin := testproc.Spin(t, 1e8)
	pid := spin.Process.Pid
	scan, err := StartProcessScan(Env{})
	if err != nil {
		t.Fatal(err)
	}
	before := testproc.OnCPU(pid)
	for deadline := time.Now().Add(2 * time.Minute); testproc.OnCPU(pid)-before < 50*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the spinning shell had less than 50 ms of CPU time in two minutes")
		}
	}
	if err := spin.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped: its state in /proc/PID/stat is T.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "T" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell not stopped after a minute")
		}
	}
	has := func(window int) bool {
		series, _, err := scan.Finish()
		if err != nil {
			t.Fatalf("window %d: %v", window, err)
		}
		for _, s := range series {
			if s.Name == "proc.cpu" && s.Labels["pid"] == strconv.Itoa(pid) && s.Points[0].Value > 0 {
				return true
			}
		}
		return false
	}
	if !has(1) {
		t.Error("window 1: the spinning shell has no proc.cpu")
	}
	time.Sleep(20 * time.Millisecond) // the second window lasts a while
	if has(2) {
		t.Error("window 2: the stopped shell has proc.cpu: the window did not start at the first's end")
	}
}

// TestProcessScanSkipsIdleThreads runs the scan on a /proc tree written
// here: a sleeping process whose CPU time did not move keeps its run
// delay from the scan before (its schedstat is not read), and has it
// counted once its CPU time moves; a runnable one that got no CPU time
// (starved) is read all the same.
func TestProcessScanSkipsIdleThreads(t *testing.T) {
	proc := t.TempDir()
	write := func(pid int, state byte, utime, delayNs uint64) {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		os.MkdirAll(dir, 0o755)
		// Fields 3 to 52: state, then zeros but utime (14), threads (20),
		// starttime (22) and rss (24).
		f := make([]string, 50)
		for i := range f {
			f[i] = "0"
		}
		f[0], f[14-3], f[20-3], f[22-3], f[24-3] = string(state), strconv.FormatUint(utime, 10), "1", "4242", "10"
		stat := fmt.Sprintf("%d (app %d) %s\n", pid, pid, strings.Join(f, " "))
		schedstat := fmt.Sprintf("%d %d 7\n", utime*1e7, delayNs)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "schedstat"), []byte(schedstat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const sleeping, starved = 100, 200
	write(sleeping, 'S', 50, 1e9)
	write(starved, 'R', 50, 1e9)
	scan, err := StartProcessScan(Env{ProcFS: proc})
	if err != nil {
		t.Fatal(err)
	}
	delays := func() map[string]float64 {
		t.Helper()
		series, _, err := scan.Finish()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, s := range series {
			if s.Name == "proc.run_delay" {
				out[s.Labels["pid"]] = s.Points[0].Value
			}
		}
		return out
	}
	// Both waited a second more; neither ran.
	write(sleeping, 'S', 50, 2e9)
	write(starved, 'R', 50, 2e9)
	d := delays()
	if d["100"] != 0 || d["200"] == 0 {
		t.Errorf("run delay with no CPU time: %v, want the starved (runnable) process's only", d)
	}
	// The sleeping one ran a tick: its wait since the first scan is counted.
	write(sleeping, 'S', 51, 3e9)
	if d := delays(); d["100"] == 0 {
		t.Errorf("run delay once it ran: %v, want the sleeping process's wait counted", d)
	}
	// It waits without running again: counted by the next full scan
	// (every fullScanEvery-th), not later.
	scans := 2
	for delay := uint64(4e9); ; delay += 1e9 {
		write(sleeping, 'S', 51, delay)
		scans++
		d := delays()
		if scans%fullScanEvery == 0 {
			if d["100"] == 0 {
				t.Errorf("scan %d, a full one: no run delay of the sleeping process", scans)
			}
			break
		}
		if d["100"] != 0 {
			t.Errorf("scan %d: the sleeping process's schedstat read", scans)
		}
	}
}

package collect

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/perfhound/perfhound/internal/testproc"
)

// startShell runs script under /bin/sh with a stdin to release it and a
// stdout to read its lines; both end with the test.
func startShell(t *testing.T, script string, args ...string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", script}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd, stdin, bufio.NewReader(out)
}

// waitChild waits (bounded) for w's target to have a child, and returns
// its PID.
func waitChild(t *testing.T, w *procWatch) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if d := w.descendants(nil); len(d) > 0 {
			pid, _ := strconv.Atoi(d[0])
			return pid
		}
	}
	t.Fatal("no child within 20 s (CONFIG_PROC_CHILDREN?)")
	return 0
}

// TestTreeCPU: a shell whose work is a child's (a subshell spinning, which
// the shell waits for) counts the child's CPU time while it runs and after
// it has exited and been reaped, and its own stays next to nothing. Bounded
// by iterations, judged by the child's own CPU time as schedstat counts it.
func TestTreeCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children"); err != nil {
		t.Skip("no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)")
	}
	cmd, stdin, out := startShell(t, `read -r _; (i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done); echo done; read -r _`)
	w, err := newProcWatch(Env{}.withDefaults(), cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var high treeCounters
	before, ok, err := w.treeStat(&high)
	if !ok {
		t.Fatal(err)
	}
	own0, _, _ := w.read()
	stdin.Write([]byte("go\n"))
	child := waitChild(t, w)
	// The per-thread readers (scheduler statistics, switches) read the
	// child's threads too.
	cur, err := w.readThreads("schedstat", func(path string, b []byte) ([]uint64, error) {
		v, err := parseSchedstat(path, b)
		return v[:], err
	})
	if _, ok := cur[strconv.Itoa(child)]; err != nil || !ok {
		t.Errorf("schedstat of the tree: %v, %v; want the child's thread %d", cur, err, child)
	}
	// The child's CPU time as the kernel's scheduler counts it, last seen
	// before it exited: a lower bound of what it used.
	var spun time.Duration
	var during treeCounters
	for {
		if d := testproc.OnCPU(child); d > spun {
			spun = d
			during, _, _ = w.treeStat(&high)
		}
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat"); err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line, err := out.ReadString('\n'); err != nil || line != "done\n" {
		t.Fatalf("shell: %q, %v", line, err)
	}
	// Read afresh, without the running high: the reaped child's time is
	// in the shell's children's totals, not held from the reading above.
	var fresh treeCounters
	after, ok, err := w.treeStat(&fresh)
	if !ok {
		t.Fatal(err)
	}
	own1, _, _ := w.read()
	ticks := func(n uint64) time.Duration {
		return time.Duration(float64(n) / cpu.ClocksPerSec * float64(time.Second))
	}
	counted := ticks(after.utime + after.stime - before.utime - before.stime)
	own := ticks(own1.utime + own1.stime - own0.utime - own0.stime)
	t.Logf("child %d ran %v (schedstat, last seen); the tree counted %v, %v while it ran; the shell itself %v",
		child, spun, counted, ticks(during.utime+during.stime-before.utime-before.stime), own)
	if spun < 50*time.Millisecond {
		t.Skipf("the child ran only %v: too little to compare", spun)
	}
	// Clock ticks are 10 ms: allow two of them and 10%.
	if counted < spun*9/10-20*time.Millisecond {
		t.Errorf("the tree counted %v of CPU, want the reaped child's %v or more", counted, spun)
	}
	if own > spun/4 {
		t.Errorf("the shell's own CPU %v: the child's time was not its own", own)
	}
	if after.utime+after.stime < during.utime+during.stime {
		t.Errorf("the tree's CPU time went back once the child was reaped: %+v after %+v", after, during)
	}
}

// TestThreadStatesTree: a shell's child is sampled with it, each sample
// under its own process, and a Go child's samples carry its Go version
// while the shell's do not.
func TestThreadStatesTree(t *testing.T) {
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children"); err != nil {
		t.Skip("no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)")
	}
	// The child is this test binary as the thread-state subject: a Go
	// program whose threads sleep in known calls.
	t.Setenv(threadStateSubject, "1")
	cmd, _, out := startShell(t, `"$0" -test.run='^$' -test.bench='^$'; true`, os.Args[0])
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("subject: %q, %v", line, err)
	}
	ts, err := StartThreadStates(Env{}, cmd.Process.Pid, ThreadStateOptions{Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	if v := ts.GoVersion(); v != "" {
		t.Errorf("the shell taken for a Go program (%s)", v)
	}
	shell := int64(cmd.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		p, _ := ts.Finish()
		var pids []int64
		var childGo, shellGo, childPipe bool
		for _, s := range p.Sample {
			pid := s.NumLabel["pid"][0]
			if !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
			goLabel := len(s.Label["go"]) == 1 && s.Label["go"][0] != ""
			if pid == shell {
				shellGo = shellGo || goLabel
				continue
			}
			childGo = childGo || goLabel
			childPipe = childPipe || slices.Equal(s.Label["syscall"], []string{"read"}) && slices.Equal(s.Label["fd"], []string{"pipe"})
		}
		if shellGo {
			t.Fatalf("the shell's samples labelled Go: %v", p)
		}
		if len(pids) >= 2 && childGo && childPipe {
			t.Logf("pids sampled: %v", pids)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: pids %v, a Go-labelled child %v, its pipe read seen %v", pids, childGo, childPipe)
		}
	}
}

// TestThreadStatesListLate: a sampler whose ticks come late (starved of
// the CPU by a target's real-time threads) lists the tree again once a
// second has passed, not only every second's worth of ticks: a child
// forked after the first listing is sampled at the next late tick.
func TestThreadStatesListLate(t *testing.T) {
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children"); err != nil {
		t.Skip("no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)")
	}
	cmd, stdin, _ := startShell(t, `read line; sleep 60 & wait`)
	ts, err := newThreadStates(Env{}, cmd.Process.Pid, ThreadStateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.files.Close()
	ts.tick() // the first listing: the shell alone
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	child := waitChild(t, ts.w)
	listed := func() bool {
		return slices.ContainsFunc(ts.tasks, func(tk task) bool { return tk.pid == child })
	}
	ts.lastList = time.Now() // the second tick, on time (however long the fork took): no listing
	ts.tick()
	if listed() {
		t.Fatal("listed again at the second tick: the test cannot tell a late listing")
	}
	ts.lastList = time.Now().Add(-1100 * time.Millisecond) // the third tick, late
	ts.tick()
	if !listed() {
		t.Errorf("the child %d not listed at a tick 1.1 s after the last listing: tasks %v", child, ts.tasks)
	}
}

//go:build linux && amd64

package bpf

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// requireCollectors skips the test, saying why, unless this host lets the
// given collectors run (root or CAP_BPF+CAP_PERFMON, BTF, the tracepoints).
func requireCollectors(t *testing.T, cs ...Collector) {
	t.Helper()
	s := Probe()
	var missing []string
	for _, c := range cs {
		if err := s.Collectors[c]; err != nil {
			missing = append(missing, string(c)+": "+err.Error())
		}
	}
	if len(missing) > 0 {
		t.Skipf("eBPF collection unavailable here: %s", strings.Join(missing, "; "))
	}
}

// Subject binaries, built once per test binary.
var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	binaries  = map[string]string{} // name → path
)

// subjectsEnv names a directory of subjects built already (workload,
// workload-stripped, cwork, as subject builds them): scripts/test-busy.sh
// builds them at normal priority before it runs the tests niced.
const subjectsEnv = "PERFHOUND_TEST_SUBJECTS"

// subject returns the path of a test subject: "go" (the workload built
// normally), "go-stripped" (-ldflags=-s -w) or "c" (cwork, frame pointers).
func subject(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv(subjectsEnv); dir != "" {
			for name, file := range map[string]string{"go": "workload", "go-stripped": "workload-stripped", "c": "cwork"} {
				if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
					binaries[name] = filepath.Join(dir, file)
				}
			}
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "perfhound-bpf-subjects-")
		if buildErr != nil {
			return
		}
		run := func(args ...string) error {
			cmd := exec.Command(args[0], args[1:]...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				return &buildError{args, out.String(), err}
			}
			return nil
		}
		goBin := filepath.Join(buildDir, "workload")
		if buildErr = run("go", "build", "-buildvcs=false", "-o", goBin, "../fixtures/workloads"); buildErr != nil {
			return
		}
		binaries["go"] = goBin
		stripped := filepath.Join(buildDir, "workload-stripped")
		if buildErr = run("go", "build", "-buildvcs=false", "-ldflags=-s -w", "-o", stripped, "../fixtures/workloads"); buildErr != nil {
			return
		}
		binaries["go-stripped"] = stripped
		cBin := filepath.Join(buildDir, "cwork")
		if _, err := exec.LookPath("gcc"); err == nil {
			if buildErr = run("gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-Wall", "-o", cBin, "../fixtures/workloads/c/cwork.c"); buildErr != nil {
				return
			}
			binaries["c"] = cBin
		}
	})
	if buildErr != nil {
		t.Fatalf("building test subjects: %v", buildErr)
	}
	path, ok := binaries[name]
	if !ok {
		t.Skipf("test subject %q unavailable (gcc missing?)", name)
	}
	return path
}

type buildError struct {
	args []string
	out  string
	err  error
}

func (e *buildError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// gated is a subject process that waits on its stdin before it execs the
// real program, so that a session can watch its pid from the first
// instruction: exec keeps the pid. startGated returns once the gate is
// blocked reading its stdin, so that what the kernel counts for the pid
// from then on (CPU time, scheduling) is what a session started then sees.
type gated struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
	done  chan error
}

func startGated(t *testing.T, argv ...string) *gated {
	t.Helper()
	g := &gated{done: make(chan error, 1)}
	g.cmd = exec.Command("/bin/sh", append([]string{"-c", `read _ && exec "$0" "$@"`}, argv...)...)
	g.cmd.Stdout, g.cmd.Stderr = &g.out, &g.out
	// Killed with the test binary, if it dies before its cleanups run.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		<-g.done
	})
	awaitRead(t, g.pid())
	return g
}

// awaitRead waits until pid sleeps in read(2) (its gate), however long a
// busy machine takes to get it there.
func awaitRead(t *testing.T, pid int) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/syscall", pid)
	for deadline := time.Now().Add(time.Minute); ; {
		// "0 0x0 ..." is read (syscall 0 on amd64) on fd 0.
		if b, err := os.ReadFile(path); err == nil && strings.HasPrefix(string(b), "0 0x0 ") {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("pid %d not waiting on its gate after a minute: %q, %v", pid, b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *gated) pid() int { return g.cmd.Process.Pid }

func (g *gated) release(t *testing.T) {
	t.Helper()
	if _, err := g.stdin.Write([]byte("go\n")); err != nil {
		t.Fatalf("releasing subject: %v", err)
	}
	g.stdin.Close()
}

// wait waits for the subject to finish, failing the test after limit.
func (g *gated) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("subject %v: %v\n%s", g.cmd.Args, err, g.out.String())
		}
	case <-time.After(limit):
		t.Fatalf("subject %v still running after %v", g.cmd.Args, limit)
	}
}

// awaitLine reads r until a line starting with prefix, for up to limit,
// then drains the rest in the background.
func awaitLine(t *testing.T, r io.Reader, prefix string, limit time.Duration) {
	t.Helper()
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), prefix) {
				ok = true
				found <- true
			}
		}
		if !ok {
			found <- false
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("no line %q before the end of the output", prefix)
		}
	case <-time.After(limit):
		t.Fatalf("no line %q after %v", prefix, limit)
	}
}

// cpuTime is the CPU time, user and system, the kernel accounted to the
// subject (all its threads, its gate included), once it has ended.
func (g *gated) cpuTime() time.Duration {
	return g.cmd.ProcessState.UserTime() + g.cmd.ProcessState.SystemTime()
}

// rusage is the subject's resource usage as wait4(2) reported it, once it
// has ended.
func (g *gated) rusage() *syscall.Rusage {
	return g.cmd.ProcessState.SysUsage().(*syscall.Rusage)
}

// schedstat is what the kernel's scheduler statistics say of a process,
// summed over its threads (/proc/PID/task/*/schedstat).
type schedstat struct {
	onCPU, runDelay time.Duration
	slices          int64 // times a thread was put on a CPU
}

func (a schedstat) sub(b schedstat) schedstat {
	return schedstat{a.onCPU - b.onCPU, a.runDelay - b.runDelay, a.slices - b.slices}
}

// readSchedstat sums the scheduler statistics of every live thread of the
// pids.
func readSchedstat(t *testing.T, pids ...int) schedstat {
	t.Helper()
	var sum schedstat
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/task", pid)
		tids, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("reading the threads of pid %d: %v", pid, err)
		}
		for _, tid := range tids {
			b, err := os.ReadFile(filepath.Join(dir, tid.Name(), "schedstat"))
			if os.IsNotExist(err) {
				continue // the thread ended
			}
			f := strings.Fields(string(b))
			if err != nil || len(f) != 3 {
				t.Fatalf("schedstat of pid %d thread %s: %q, %v", pid, tid.Name(), b, err)
			}
			var v [3]int64
			for i := range v {
				if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
					t.Fatalf("schedstat of pid %d thread %s: %q", pid, tid.Name(), b)
				}
			}
			sum.onCPU += time.Duration(v[0])
			sum.runDelay += time.Duration(v[1])
			sum.slices += v[2]
		}
	}
	return sum
}

// awaitSchedstat polls the kernel's scheduler statistics of the pids until
// enough says they have run (or waited) enough, for up to limit.
func awaitSchedstat(t *testing.T, limit time.Duration, enough func(schedstat) bool, pids ...int) schedstat {
	t.Helper()
	for deadline := time.Now().Add(limit); ; {
		s := readSchedstat(t, pids...)
		if enough(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the kernel counts only %+v for pids %v", limit, s, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startSession(t *testing.T, opts Options) *Session {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func read(t *testing.T, s *Session) *Window {
	t.Helper()
	w, err := s.Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return w
}

// checkProfile validates p and has `go tool pprof -top` open it.
func checkProfile(t *testing.T, p *profile.Profile) {
	t.Helper()
	if err := p.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	path := filepath.Join(t.TempDir(), "p.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("go", "tool", "pprof", "-top", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
}

// leafUserFunction is the innermost user-space function of a sample.
func leafUserFunction(s *profile.Sample) string {
	for _, loc := range s.Location {
		if loc.Mapping != nil && strings.HasPrefix(loc.Mapping.File, "[kernel") {
			continue
		}
		if len(loc.Line) > 0 && loc.Line[0].Function != nil {
			return loc.Line[0].Function.Name
		}
		return ""
	}
	return ""
}

// stackHas reports whether any frame of s is in a function matching one of
// the names (substring match).
func stackHas(s *profile.Sample, names ...string) bool {
	for _, loc := range s.Location {
		for _, ln := range loc.Line {
			if ln.Function == nil {
				continue
			}
			for _, n := range names {
				if strings.Contains(ln.Function.Name, n) {
					return true
				}
			}
		}
	}
	return false
}

// stackHasFunction reports whether a frame of s is in the function name
// (exactly).
func stackHasFunction(s *profile.Sample, name string) bool {
	for _, loc := range s.Location {
		for _, ln := range loc.Line {
			if ln.Function != nil && ln.Function.Name == name {
				return true
			}
		}
	}
	return false
}

// pidSamples returns the samples labelled with pid.
func pidSamples(p *profile.Profile, pid int) []*profile.Sample {
	var out []*profile.Sample
	for _, s := range p.Sample {
		if len(s.NumLabel["pid"]) == 1 && s.NumLabel["pid"][0] == int64(pid) {
			out = append(out, s)
		}
	}
	return out
}

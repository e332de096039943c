package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/diagnose"
)

// The subjects: the fixture workloads (fixtures/workloads), built once.
var (
	buildOnce  sync.Once
	buildErr   error
	workloads  string // the Go workloads binary
	perfhound  string // this command, built, for what must run as its own process
	cwork      string // the C workloads binary, "" without gcc
	subjectDir string
)

// subjectsEnv names a directory of subjects built already (workloads,
// perfhound, cwork, as buildSubjects builds them): scripts/test-busy.sh
// builds them at normal priority before it runs the tests niced.
const subjectsEnv = "PERFHOUND_TEST_SUBJECTS"

func buildSubjects(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv(subjectsEnv); dir != "" {
			workloads, perfhound = filepath.Join(dir, "workloads"), filepath.Join(dir, "perfhound")
			for _, p := range []string{workloads, perfhound} {
				if _, err := os.Stat(p); err != nil {
					buildErr = fmt.Errorf("%s: %w", subjectsEnv, err)
					return
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "cwork")); err == nil {
				cwork = filepath.Join(dir, "cwork")
			}
			return
		}
		subjectDir, buildErr = os.MkdirTemp("", "perfhound-diagnose-test")
		if buildErr != nil {
			return
		}
		workloads = filepath.Join(subjectDir, "workloads")
		out, err := exec.Command("go", "build", "-buildvcs=false", "-o", workloads, "../../fixtures/workloads").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
			return
		}
		perfhound = filepath.Join(subjectDir, "perfhound")
		if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", perfhound, ".").CombinedOutput(); err != nil {
			buildErr = err
			t.Logf("%s", out)
			return
		}
		if _, err := exec.LookPath("gcc"); err == nil {
			c := filepath.Join(subjectDir, "cwork")
			out, err := exec.Command("gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o", c, "../../fixtures/workloads/c/cwork.c").CombinedOutput()
			if err != nil {
				buildErr = err
				t.Logf("%s", out)
				return
			}
			cwork = c
		}
	})
	if buildErr != nil {
		t.Fatalf("building the workloads: %v", buildErr)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if subjectDir != "" {
		os.RemoveAll(subjectDir)
	}
	os.Exit(code)
}

// diagnosisJSON is the part of perfhound.diagnosis/v1 the tests read.
type diagnosisJSON struct {
	Schema  string `json:"schema"`
	Verdict struct {
		Class      string             `json:"class"`
		Secondary  string             `json:"secondary"`
		Confidence float64            `json:"confidence"`
		Duration   int64              `json:"duration_ns"`
		Load       map[string]float64 `json:"load"`
		Breakdown  struct {
			Seconds map[string]float64 `json:"seconds"`
			ByClass map[string]float64 `json:"by_class"`
		} `json:"breakdown"`
		Evidence []struct {
			Signal string  `json:"signal"`
			Value  float64 `json:"value"`
		} `json:"evidence"`
		Target struct {
			Kind string `json:"kind"`
			PID  int    `json:"pid"`
		} `json:"target"`
		Missing []struct {
			Signal string `json:"signal"`
			Reason string `json:"reason"`
		} `json:"missing"`
	} `json:"verdict"`
	Processes []struct {
		PID     int     `json:"pid"`
		Comm    string  `json:"comm"`
		Impact  float64 `json:"impact"`
		Verdict *struct {
			Class string `json:"class"`
		} `json:"verdict"`
	} `json:"processes"`
	Ranked int `json:"processes_ranked"`
}

func parseDiagnosis(t *testing.T, out string) diagnosisJSON {
	t.Helper()
	var d diagnosisJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("diagnose -f json gave no JSON: %v\n%s", err, out)
	}
	if d.Schema != "perfhound.diagnosis/v1" {
		t.Fatalf("schema %q", d.Schema)
	}
	return d
}

// dieWithTest kills a subject with the test binary, if it dies before its
// cleanups run (a timeout, a signal).
var dieWithTest = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

// startSubject starts a workload that ends by itself, and stops it at the
// end of the test if it has not.
func startSubject(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = dieWithTest
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd
}

// startReady starts a Go workload with -ready and waits until it says its
// work has begun (after its set-up: a file written, a server child
// started), however long a busy machine takes: two minutes at most.
func startReady(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, append(args, "-ready")...)
	cmd.Stderr = w
	cmd.SysProcAttr = dieWithTest
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	ready := make(chan error, 1)
	go func() {
		defer r.Close()
		br := bufio.NewReader(r)
		line, err := br.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, br) // the rest, until it exits
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%s %v: not ready: %v", name, args, err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s %v: not ready after two minutes", name, args)
	}
	return cmd
}

// freeLoopbackAddr is a loopback TCP address nobody listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// awaitHTTP waits until url answers 200, for a service starting up: two
// minutes at most, for a busy machine.
func awaitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within two minutes", url)
}

func TestDiagnoseBadTargets(t *testing.T) {
	buildSubjects(t)
	notPprof := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>a blog</body></html>"))
	}))
	defer notPprof.Close()

	threaded := startReady(t, workloads, "-mode", "sleep", "-duration", "10m") // its runtime threads started
	tid := ""
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", threaded.Process.Pid))
	for _, task := range tasks {
		if task.Name() != strconv.Itoa(threaded.Process.Pid) {
			tid = task.Name()
		}
	}
	// A zombie: a child that exited and was not waited for yet.
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	defer zombie.Wait()
	awaitZombie(t, zombie.Process.Pid)
	notEmpty := t.TempDir()
	writeFile(t, filepath.Join(notEmpty, "notes.txt"), []byte("mine"))
	// Exits 5 s after it is ready, inside a 60 s window, and after
	// perfhound has started it even on a busy machine (with --no-ebpf it
	// reads /proc only): the first case.
	short := startReady(t, workloads, "-mode", "sleep", "-duration", "5s")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"pid exits during the window", []string{"--pid", strconv.Itoa(short.Process.Pid), "-d", "60s"}, "exited"},
		{"no such pid", []string{"--pid", "999999999"}, "no process 999999999"},
		{"unreachable url", []string{"--url", "http://" + freeLoopbackAddr(t)}, "unreachable"},
		{"url not pprof", []string{"--url", notPprof.URL}, "not a Go pprof endpoint"},
		{"no such command", []string{"--", "/nonexistent/perfhound-test-command"}, "could not be watched"},
		{"two targets", []string{"--pid", "1", "--url", notPprof.URL}, "none of the others can be"},
		{"pid 0", []string{"--pid", "0"}, "not a PID"},
		{"a thread, not a process", []string{"--pid", tid}, "is a thread of process " + strconv.Itoa(threaded.Process.Pid)},
		{"a zombie", []string{"--pid", strconv.Itoa(zombie.Process.Pid)}, "already exited"},
		{"output in a missing directory", []string{"-o", "/nonexistent/dir/report.txt"}, "cannot write"},
		{"save over someone's files", []string{"--save", notEmpty}, notEmpty},
		{"bad format", []string{"-f", "pdf"}, "unknown --format"},
		{"argument without --", []string{"ls"}, "after --"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runCLI(t, append([]string{"diagnose", "--no-ebpf", "-d", "2s"}, c.args...)...)
			if code != exitBadInput {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitBadInput, out, errb)
			}
			if !strings.Contains(errb, c.want) {
				t.Fatalf("stderr does not say %q:\n%s", c.want, errb)
			}
			if out != "" {
				t.Fatalf("a failed diagnosis printed a report:\n%s", out)
			}
		})
	}
}

// TestDiagnoseShortCommands: a command that exits within MinCommandRun of
// its start is refused, too short to diagnose (exit 2; the reason, with its
// exit status if it failed). On a busy machine even true may take longer
// than that to start and exit: it is then diagnosed like any command (exit
// 0) over a window of MinCommandRun or more, and the report says how it
// exited. Either way the rule holds, by the time the command ran.
func TestDiagnoseShortCommands(t *testing.T) {
	for _, c := range []struct {
		name   string
		argv   []string
		status string
	}{
		{"exits at once", []string{"true"}, ""},
		{"fails at once", []string{"sh", "-c", "exit 3"}, "status 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runCLI(t, append([]string{"diagnose", "--no-ebpf", "-d", "2s", "-f", "json", "--"}, c.argv...)...)
			switch code {
			case exitBadInput:
				m := regexp.MustCompile(`exited after ([0-9.]+[a-zµ]+) \(([^)]*)\): too soon`).FindStringSubmatch(errb)
				if m == nil || out != "" {
					t.Fatalf("exit %d: stderr does not say it exited too soon:\n%s\nstdout: %s", code, errb, out)
				}
				if ran, err := time.ParseDuration(m[1]); err != nil || ran >= diagnose.MinCommandRun {
					t.Errorf("refused after %s (%v), want under %v", m[1], err, diagnose.MinCommandRun)
				}
				if !strings.Contains(m[2], c.status) {
					t.Errorf("exited %q, want %q", m[2], c.status)
				}
			case 0:
				d := parseDiagnosis(t, out)
				if ran := time.Duration(d.Verdict.Duration); ran < diagnose.MinCommandRun {
					t.Errorf("a %v window diagnosed, want it refused under %v", ran, diagnose.MinCommandRun)
				}
				said := c.status == ""
				for _, m := range d.Verdict.Missing {
					said = said || m.Signal == "command" && strings.Contains(m.Reason, c.status)
				}
				if !said {
					t.Errorf("the report does not say the command exited with %s: %+v", c.status, d.Verdict.Missing)
				}
				t.Logf("diagnosed over %v: the command took that long to start and exit", time.Duration(d.Verdict.Duration))
			default:
				t.Fatalf("exit %d: %s", code, errb)
			}
		})
	}
}

// TestDiagnoseCommandToItsEnd: a command's CPU time is counted to its
// exit, even when it runs for less than one sampling interval and its
// work is a child's: the window's last reading finds it exited but not yet
// reaped, and its counters hold what the child it waited for used. Without
// eBPF (the counters are then the whole story), with an interval of 30 s
// and a command of about a second (bounded by iterations), judged against
// the CPU time the shell itself reports for its children (times).
func TestDiagnoseCommandToItsEnd(t *testing.T) {
	times := filepath.Join(t.TempDir(), "times")
	code, out, errb := runCLI(t, "diagnose", "--no-ebpf", "-d", "2m", "--interval", "30s", "-f", "json", "--",
		"sh", "-c", `(i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done); times >"$0"`, times)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	d := parseDiagnosis(t, out)
	b, err := os.ReadFile(times)
	if err != nil {
		t.Fatal(err)
	}
	// "0m0.000000s 0m0.000000s\n0m1.388000s 0m0.004000s": the shell's
	// user and system time, then its children's.
	var secs []float64
	for _, m := range regexp.MustCompile(`(\d+)m([0-9.]+)s`).FindAllStringSubmatch(string(b), -1) {
		min, _ := strconv.ParseFloat(m[1], 64)
		sec, _ := strconv.ParseFloat(m[2], 64)
		secs = append(secs, 60*min+sec)
	}
	if len(secs) != 4 {
		t.Fatalf("times said %q", b)
	}
	used := secs[0] + secs[1] + secs[2] + secs[3]
	sec := d.Verdict.Breakdown.Seconds
	counted := sec["cpu.user"] + sec["cpu.syscall"]
	t.Logf("ran %v: counted user %.2f s, system %.2f s; the shell says %.2f s with its children; class %s",
		time.Duration(d.Verdict.Duration), sec["cpu.user"], sec["cpu.syscall"], used, d.Verdict.Class)
	// /proc counts in clock ticks (10 ms): allow two and 10%.
	if counted < 0.9*used-0.02 || counted > 1.1*used+0.02 {
		t.Errorf("counted %.2f s of CPU, want the %.2f s the command used", counted, used)
	}
	if d.Verdict.Class != "cpu" {
		t.Errorf("class %q, want cpu", d.Verdict.Class)
	}
}

// TestDiagnoseCommandLeavesAChild: a command that exits leaving a child
// running, which holds its output open, ends the window when it exits (the
// child goes with its group), not at the window's end. The command spins
// for a bounded count, a second or more here: well past MinCommandRun (a
// count that took 0.46 s on a CI runner was refused as too short).
func TestDiagnoseCommandLeavesAChild(t *testing.T) {
	code, out, errb := runCLI(t, "diagnose", "--no-ebpf", "-d", "2m", "-f", "json", "--",
		"sh", "-c", `sleep 600 & i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); done`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	d := parseDiagnosis(t, out)
	ran := time.Duration(d.Verdict.Duration)
	for _, m := range d.Verdict.Missing {
		if m.Signal == "command" && strings.Contains(m.Reason, "still running") {
			t.Errorf("the window ran to its end (%v): %s", ran, m.Reason)
		}
	}
	if ran > time.Minute {
		t.Errorf("a window of %v: it did not end when the command exited", ran)
	}
}

// awaitZombie waits until pid has exited and is not yet waited for.
func awaitZombie(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not a zombie after two minutes: %q, %v", pid, b, err)
		}
	}
}

// TestAnalyzeReproducesDiagnose saves an observation with diagnose and
// checks that analyze gives the very same report from it.
func TestAnalyzeReproducesDiagnose(t *testing.T) {
	buildSubjects(t)
	args := []string{"diagnose", "-d", "2s", "--interval", "750ms", "-f", "json"}
	if os.Geteuid() != 0 {
		args = append(args, "--no-ebpf")
	}
	dir := filepath.Join(t.TempDir(), "obs")
	code, out, errb := runCLI(t, append(args, "--save", dir, "--", workloads, "-mode", "hash", "-duration", "5s")...)
	if code != 0 {
		t.Fatalf("diagnose: exit %d: %s", code, errb)
	}
	for _, format := range []string{"json", "text", "markdown"} {
		code, again, errb := runCLI(t, "analyze", "-f", format, dir)
		if code != 0 {
			t.Fatalf("analyze -f %s: exit %d: %s", format, code, errb)
		}
		if format == "json" && again != out {
			t.Fatalf("analyze gave another report than diagnose:\n--- diagnose\n%s\n--- analyze\n%s", out, again)
		}
		if again == "" {
			t.Fatalf("analyze -f %s wrote nothing", format)
		}
	}
	if d := parseDiagnosis(t, out); d.Verdict.Target.Kind != "command" || d.Verdict.Class != "cpu" {
		t.Errorf("hash workload: target %q, class %q; want command, cpu", d.Verdict.Target.Kind, d.Verdict.Class)
	}
	// A host: the ranking and the processes' verdicts come back too.
	busy := startReady(t, workloads, "-mode", "hash", "-duration", "10m")
	hostDir := filepath.Join(t.TempDir(), "host")
	hostArgs := append([]string{}, args...)
	code, out, errb = runCLI(t, append(hostArgs, "--save", hostDir)...)
	if code != 0 {
		t.Fatalf("diagnose of the host: exit %d: %s", code, errb)
	}
	if code, again, errb := runCLI(t, "analyze", "-f", "json", hostDir); code != 0 || again != out {
		t.Fatalf("analyze of the host: exit %d %s; same report: %v", code, errb, again == out)
	}
	// The hashing workload among them: on a busy machine other
	// processes may rank above it (TestDiagnoseHost finds it anywhere).
	d := parseDiagnosis(t, out)
	found := false
	for _, p := range d.Processes {
		found = found || p.PID == busy.Process.Pid
	}
	if d.Verdict.Target.Kind != "host" || !found {
		t.Errorf("host diagnosis: target %q, processes %+v; want the hashing workload %d among them", d.Verdict.Target.Kind, d.Processes, busy.Process.Pid)
	}
	if code, _, errb := runCLI(t, "analyze", t.TempDir()); code != exitBadInput || !strings.Contains(errb, "not a perfhound observation") {
		t.Errorf("analyze of an empty directory: exit %d, %s", code, errb)
	}
}

// TestDiagnoseInterrupt sends perfhound SIGINT 2.5 s into a window: it
// reports on the window so far, says it was cut short, and exits 0. The
// window starts when the command does (perfhound holds it at a gate until
// then), which the command says on perfhound's stderr; on a busy machine
// that may take a while, and so may the signal's handling: the window
// reported is checked against those times.
func TestDiagnoseInterrupt(t *testing.T) {
	buildSubjects(t)
	args := []string{"diagnose", "-f", "json", "-d", "10m"}
	if os.Geteuid() != 0 {
		args = append(args, "--no-ebpf")
	}
	cmd := exec.Command(perfhound, append(args, "--", workloads, "-mode", "hash", "-duration", "10m", "-ready")...)
	var out, errb strings.Builder
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan bool, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			errb.WriteString(sc.Text() + "\n")
			if !seen && sc.Text() == "ready" {
				seen = true
				ready <- true
			}
		}
		if !seen {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-copied
			t.Fatalf("perfhound ended before its command began: %s", errb.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the command did not begin within two minutes")
	}
	watched := time.Now() // the window began before this
	time.Sleep(2500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	interrupted := time.Since(watched)
	done := make(chan error, 1)
	go func() { <-copied; done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("perfhound after SIGINT: %v\n%s", err, errb.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("perfhound did not end within two minutes of SIGINT")
	}
	lived := time.Since(begun)
	var d struct {
		Verdict struct {
			Class    string `json:"class"`
			Duration int64  `json:"duration_ns"`
			Missing  []struct{ Signal, Reason string }
		} `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(out.String()), &d); err != nil {
		t.Fatalf("no report after SIGINT: %v\n%s\n%s", err, out.String(), errb.String())
	}
	// From before the command began to the signal, or later: at least
	// the 2.5 s, and less than perfhound's whole life.
	if window := time.Duration(d.Verdict.Duration); window < interrupted-100*time.Millisecond || window > lived {
		t.Errorf("window of %v, want the %v from the command's start to the interrupt, or a little more (perfhound lived %v)", window, interrupted, lived)
	}
	cut := false
	for _, m := range d.Verdict.Missing {
		cut = cut || m.Signal == "window" && strings.Contains(m.Reason, "interrupt")
	}
	if !cut || d.Verdict.Class != "cpu" {
		t.Errorf("class %q, missing %+v: want cpu, and the window said to be cut short", d.Verdict.Class, d.Verdict.Missing)
	}
}

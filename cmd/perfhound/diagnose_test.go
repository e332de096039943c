package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

func buildSubjects(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
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
		Class      string  `json:"class"`
		Secondary  string  `json:"secondary"`
		Confidence float64 `json:"confidence"`
		Target     struct {
			Kind string `json:"kind"`
			PID  int    `json:"pid"`
		} `json:"target"`
		Missing []struct {
			Signal string `json:"signal"`
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

// startSubject starts a workload that ends by itself, and stops it at the
// end of the test if it has not.
func startSubject(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
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

// awaitHTTP waits until url answers 200, for a service starting up.
func awaitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
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
	t.Fatalf("%s did not answer within 10s", url)
}

func TestDiagnoseBadTargets(t *testing.T) {
	buildSubjects(t)
	notPprof := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>a blog</body></html>"))
	}))
	defer notPprof.Close()

	short := startSubject(t, workloads, "-mode", "sleep", "-duration", "1s")
	threaded := startSubject(t, workloads, "-mode", "sleep", "-duration", "10s")
	time.Sleep(200 * time.Millisecond) // its runtime threads started
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
	time.Sleep(100 * time.Millisecond)
	notEmpty := t.TempDir()
	writeFile(t, filepath.Join(notEmpty, "notes.txt"), []byte("mine"))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no such pid", []string{"--pid", "999999999"}, "no process 999999999"},
		{"pid exits during the window", []string{"--pid", strconv.Itoa(short.Process.Pid), "-d", "4s"}, "exited"},
		{"unreachable url", []string{"--url", "http://" + freeLoopbackAddr(t)}, "unreachable"},
		{"url not pprof", []string{"--url", notPprof.URL}, "not a Go pprof endpoint"},
		{"no such command", []string{"--", "/nonexistent/perfhound-test-command"}, "could not be watched"},
		{"command exits at once", []string{"--", "true"}, "too soon"},
		{"command fails at once", []string{"--", "sh", "-c", "exit 3"}, "status 3"},
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
	busy := startSubject(t, workloads, "-mode", "hash", "-duration", "5s")
	hostDir := filepath.Join(t.TempDir(), "host")
	hostArgs := append([]string{}, args...)
	code, out, errb = runCLI(t, append(hostArgs, "--save", hostDir)...)
	if code != 0 {
		t.Fatalf("diagnose of the host: exit %d: %s", code, errb)
	}
	if code, again, errb := runCLI(t, "analyze", "-f", "json", hostDir); code != 0 || again != out {
		t.Fatalf("analyze of the host: exit %d %s; same report: %v", code, errb, again == out)
	}
	if d := parseDiagnosis(t, out); d.Verdict.Target.Kind != "host" || len(d.Processes) == 0 || d.Processes[0].PID != busy.Process.Pid {
		t.Errorf("host diagnosis: target %q, processes %+v; want the hashing workload %d first", d.Verdict.Target.Kind, d.Processes, busy.Process.Pid)
	}
	if code, _, errb := runCLI(t, "analyze", t.TempDir()); code != exitBadInput || !strings.Contains(errb, "not a perfhound observation") {
		t.Errorf("analyze of an empty directory: exit %d, %s", code, errb)
	}
}

// TestDiagnoseInterrupt sends perfhound SIGINT in the middle of a window:
// it reports on the window so far, says it was cut short, and exits 0.
func TestDiagnoseInterrupt(t *testing.T) {
	buildSubjects(t)
	args := []string{"diagnose", "-f", "json", "-d", "20s"}
	if os.Geteuid() != 0 {
		args = append(args, "--no-ebpf")
	}
	cmd := exec.Command(perfhound, append(args, "--", workloads, "-mode", "hash", "-duration", "20s")...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(2500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("perfhound after SIGINT: %v\n%s", err, errb.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("perfhound did not end within 15 s of SIGINT")
	}
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
	if secs := float64(d.Verdict.Duration) / 1e9; secs < 1 || secs > 6 {
		t.Errorf("window of %.1fs, want the 2.5s before the interrupt", secs)
	}
	cut := false
	for _, m := range d.Verdict.Missing {
		cut = cut || m.Signal == "window" && strings.Contains(m.Reason, "interrupt")
	}
	if !cut || d.Verdict.Class != "cpu" {
		t.Errorf("class %q, missing %+v: want cpu, and the window said to be cut short", d.Verdict.Class, d.Verdict.Missing)
	}
}

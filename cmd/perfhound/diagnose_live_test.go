package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/bpf"
)

// requireEBPF skips a live diagnosis test where eBPF cannot run: the
// verdicts it checks are the ones eBPF's thread states make.
func requireEBPF(t *testing.T) {
	t.Helper()
	s := bpf.Probe()
	if !s.Available() {
		var why []string
		for c, err := range s.Collectors {
			if err != nil {
				why = append(why, fmt.Sprintf("%s: %v", c, err))
			}
		}
		t.Skipf("eBPF collection unavailable here (run as root, or with CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE): %s", strings.Join(why, "; "))
	}
	if testing.Short() {
		t.Skip("live diagnosis: skipped in -short mode")
	}
}

// TestDiagnoseWorkloads diagnoses each fixture workload live twice, run
// by diagnose (-- CMD, watched to its end) and watched by PID, and checks the class in the JSON report against the bottleneck
// the workload was built to have.
func TestDiagnoseWorkloads(t *testing.T) {
	requireEBPF(t)
	buildSubjects(t)
	dir := t.TempDir() // for the I/O workloads' files
	cases := []struct {
		name, class string
		subject     func(t *testing.T) []string
		skip        string
	}{
		{"cpu-hash", "cpu", func(*testing.T) []string { return []string{workloads, "-mode", "hash"} }, ""},
		{"cpu-compress", "cpu", func(*testing.T) []string { return []string{workloads, "-mode", "compress"} }, ""},
		{"cpu-c-spin", "cpu", func(*testing.T) []string { return []string{cwork, "spin"} }, "c"},
		{"memory-churn", "memory", func(*testing.T) []string { return []string{workloads, "-mode", "churn", "-gogc", "5"} }, ""},
		{"memory-leak", "none", func(*testing.T) []string { return []string{workloads, "-mode", "leak"} }, ""},
		{"io-fsync", "io", func(*testing.T) []string { return []string{workloads, "-mode", "fsync", "-dir", dir} }, ""},
		{"io-direct", "io", func(*testing.T) []string { return []string{workloads, "-mode", "direct", "-dir", dir} }, ""},
		{"network-slowclient", "network", func(*testing.T) []string { return []string{workloads, "-mode", "slowclient"} }, ""},
		{"network-bulk", "network", func(*testing.T) []string { return []string{workloads, "-mode", "bulk"} }, ""},
		// The same requests blocking in recv(2), and from a poll(2) loop
		// where the stack says only that it polls.
		{"network-c-slowclient", "network", slowServerClient("tcp"), "c"},
		{"network-c-pollclient", "network", slowServerClient("poll"), "c"},
		{"contention-c-mutex", "contention", func(*testing.T) []string { return []string{cwork, "mutex", "16"} }, "c"},
		{"none-sleep", "none", func(*testing.T) []string { return []string{workloads, "-mode", "sleep"} }, ""},
		// Hashing on one CPU while another thread fsyncs: about a thread of
		// each (cpu 1.10-1.14, io 0.96-1.01 in 4 s windows here), so the
		// two classes must both be named, in either order.
		{"mixed-cpu-io", "cpu+io", func(*testing.T) []string { return []string{workloads, "-mode", "mixed", "-dir", dir} }, ""},
	}
	const window = 4 // seconds
	for _, c := range cases {
		for _, mode := range []string{"command", "pid"} {
			byPID := mode == "pid"
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				if c.skip == "c" && cwork == "" {
					t.Skip("gcc not found: the C workloads were not built")
				}
				argv := c.subject(t)
				var args []string
				if byPID {
					// The workload outlives the window by a second.
					if argv[0] == cwork {
						argv = append(argv, strconv.Itoa(window+2))
					} else {
						argv = append(argv, "-duration", fmt.Sprintf("%ds", window+2))
					}
					cmd := startSubject(t, argv[0], argv[1:]...)
					time.Sleep(300 * time.Millisecond) // past its start-up
					args = []string{"--pid", strconv.Itoa(cmd.Process.Pid), "-d", fmt.Sprintf("%ds", window)}
				} else {
					// The command ends before the window: diagnose watches it to its end.
					if argv[0] == cwork {
						argv = append(argv, strconv.Itoa(window))
					} else {
						argv = append(argv, "-duration", fmt.Sprintf("%ds", window))
					}
					args = append([]string{"-d", "30s", "--"}, argv...)
				}
				code, out, errb := runCLI(t, append([]string{"diagnose", "-f", "json"}, args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errb)
				}
				d := parseDiagnosis(t, out)
				if first, second, both := strings.Cut(c.class, "+"); both {
					got := map[string]bool{d.Verdict.Class: true, d.Verdict.Secondary: true}
					if !got[first] || !got[second] {
						t.Fatalf("%s diagnosed as %q, secondary %q; want %s and %s\n%s", c.name, d.Verdict.Class, d.Verdict.Secondary, first, second, out)
					}
				} else if d.Verdict.Class != c.class {
					t.Fatalf("%s diagnosed as %q (confidence %.2f), want %q\n%s", c.name, d.Verdict.Class, d.Verdict.Confidence, c.class, out)
				}
				if d.Verdict.Target.Kind != mode && !(mode == "pid" && d.Verdict.Target.Kind == "process") {
					t.Errorf("target kind %q for a %s diagnosis", d.Verdict.Target.Kind, mode)
				}
			})
		}
	}
}

// TestDiagnoseURL diagnoses a Go service through its pprof endpoint: 64
// goroutines on one sync.Mutex park in the Go scheduler, so only the
// runtime's mutex and block profiles show the contention.
func TestDiagnoseURL(t *testing.T) {
	requireEBPF(t)
	buildSubjects(t)
	addr := freeLoopbackAddr(t)
	cmd := startSubject(t, workloads, "-mode", "mutex", "-pprof", addr, "-duration", "10s")
	awaitHTTP(t, "http://"+addr+"/debug/pprof/cmdline")
	code, out, errb := runCLI(t, "diagnose", "-f", "json", "-d", "4s", "--url", "http://"+addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	d := parseDiagnosis(t, out)
	if d.Verdict.Class != "contention" {
		t.Errorf("mutex service diagnosed as %q, want contention\n%s", d.Verdict.Class, out)
	}
	if d.Verdict.Target.Kind != "url" || d.Verdict.Target.PID != cmd.Process.Pid {
		t.Errorf("target %+v: want the url, with the PID listening there (%d)", d.Verdict.Target, cmd.Process.Pid)
	}
}

// TestDiagnoseHost watches the whole host while one workload spins among
// sleeping ones, and checks that the ranking puts it first, as CPU-bound.
func TestDiagnoseHost(t *testing.T) {
	requireEBPF(t)
	buildSubjects(t)
	for range 5 {
		startSubject(t, workloads, "-mode", "sleep", "-duration", "10s")
	}
	busy := startSubject(t, workloads, "-mode", "hash", "-duration", "10s")
	time.Sleep(300 * time.Millisecond)
	code, out, errb := runCLI(t, "diagnose", "-f", "json", "-d", "4s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	d := parseDiagnosis(t, out)
	if d.Verdict.Target.Kind != "host" {
		t.Fatalf("target kind %q", d.Verdict.Target.Kind)
	}
	if len(d.Processes) == 0 {
		t.Fatalf("no processes ranked:\n%s", out)
	}
	top := d.Processes[0]
	if top.PID != busy.Process.Pid {
		t.Fatalf("busiest process %d (%s, %.0f%%), want the hashing workload %d\n%s", top.PID, top.Comm, 100*top.Impact, busy.Process.Pid, out)
	}
	if top.Verdict == nil || top.Verdict.Class != "cpu" {
		t.Errorf("the hashing workload's verdict: %+v, want cpu", top.Verdict)
	}
	for _, p := range d.Processes {
		if p.PID == os.Getpid() {
			t.Errorf("perfhound ranked itself: %+v", p)
		}
	}
}

// slowServerClient starts a server answering each request after 50 ms,
// apart so that only the client is watched, and gives the C client of it
// in mode ("tcp" or "poll").
func slowServerClient(mode string) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		addr := freeLoopbackAddr(t)
		startSubject(t, workloads, "-mode", "slowserve", "-addr", addr, "-duration", "30s")
		awaitTCP(t, addr)
		host, port, _ := net.SplitHostPort(addr)
		return []string{cwork, mode, host, port}
	}
}

// awaitTCP waits until addr accepts connections.
func awaitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not accept within 10s", addr)
}

package main

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/diagnosis"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/bpf"
	"github.com/perfhound/perfhound/internal/testproc"
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
// by diagnose (-- CMD, watched to its end) and watched by PID, and checks
// the class in the JSON report against the bottleneck the workload was
// built to have; on a busy machine, where the workload may wait for a CPU
// longer than for anything else, against what it got (see checkClass).
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
		// A lock of its own on a futex, called through syscall(2). Its
		// recorded fixture holds the class (callSites); live, on a busy
		// machine, checkClass also takes cpu where its run-queue wait
		// explains it, so this checks the pipeline, not the rule.
		{"contention-c-futexlock", "contention", func(*testing.T) []string { return []string{cwork, "futexlock", "8"} }, "c"},
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
				var pid int
				if byPID {
					// The workload outlives the window, however long
					// perfhound takes to start on a busy machine: it is
					// killed at the end of the test. The window starts
					// once its work has (C workloads start theirs at once).
					var cmd *exec.Cmd
					if argv[0] == cwork {
						cmd = startSubject(t, argv[0], append(argv[1:], "600")...)
					} else {
						cmd = startReady(t, argv[0], append(argv[1:], "-duration", "10m")...)
					}
					pid = cmd.Process.Pid
					args = []string{"--pid", strconv.Itoa(pid), "-d", fmt.Sprintf("%ds", window)}
				} else {
					// The command ends before the window: diagnose watches it to its end.
					if argv[0] == cwork {
						argv = append(argv, strconv.Itoa(window))
					} else {
						argv = append(argv, "-duration", fmt.Sprintf("%ds", window))
					}
					args = append([]string{"-d", "30s", "--"}, argv...)
				}
				// The kernel's count of the PID's waits for a CPU, from
				// before the window to after it.
				var delay0 time.Duration
				if byPID {
					delay0 = runDelay(t, pid)
				}
				code, out, errb := runCLI(t, append([]string{"diagnose", "-f", "json"}, args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errb)
				}
				d := parseDiagnosis(t, out)
				kernelDelay := -1.0 // seconds; unknown for a command, gone by now
				if byPID {
					kernelDelay = (runDelay(t, pid) - delay0).Seconds()
				}
				if err := checkClass(d, c.class, kernelDelay); err != nil {
					t.Fatalf("%s: %v\n%s", c.name, err, out)
				} else if d.Verdict.Class != c.class && !strings.Contains(c.class, "+") {
					t.Logf("%s diagnosed as %q: it waited %.2f s for a CPU in %.2f s (the kernel's count, -1 for the report's own: %.2f s); loads %v",
						c.name, d.Verdict.Class, d.Verdict.Breakdown.Seconds[verdict.WaitRunQueue], float64(d.Verdict.Duration)/1e9, kernelDelay, d.Verdict.Load)
				}
				if d.Verdict.Target.Kind != mode && !(mode == "pid" && d.Verdict.Target.Kind == "process") {
					t.Errorf("target kind %q for a %s diagnosis", d.Verdict.Target.Kind, mode)
				}
			})
		}
	}
}

// checkClass checks a verdict against the class a workload was built to
// have ("cpu+io" for two, in either order). On a busy machine a workload
// may wait for a CPU (preempted: wait.runqueue, cpu load) longer than for
// its own bottleneck, and the verdict is then rightly cpu. That is
// accepted only when it is so, by the verdict's loads with the wait for a
// CPU taken out of cpu's ("own" loads):
//   - the verdict is cpu, and the kernel counted at least 0.9x that wait
//     (kernelDelay: the PID's schedstat over a span that holds the window;
//     for a command, gone by now, the report's own schedstat evidence);
//   - apart from the wait (for none: the wait reaches MinLoad), the
//     workload's class is what the verdict's rules would name: it leads the own loads (memory: it takes
//     MemoryShareOfCPU of the time on a CPU, the rule for memory; none:
//     no own load reaches MinLoad; cpu+io: io is a second class,
//     SecondaryRatio of the own cpu load, and the wait is what left it out).
//
// On an idle machine the wait is small, and the class must be the
// workload's, as before.
func checkClass(d diagnosisJSON, want string, kernelDelay float64) error {
	v := d.Verdict
	first, second, both := strings.Cut(want, "+")
	var wrong error
	switch {
	case both:
		if got := map[string]bool{v.Class: true, v.Secondary: true}; got[first] && got[second] {
			return nil
		}
		wrong = fmt.Errorf("diagnosed as %q, secondary %q; want %s and %s", v.Class, v.Secondary, first, second)
	case v.Class == want:
		return nil
	default:
		wrong = fmt.Errorf("diagnosed as %q (confidence %.2f), want %q", v.Class, v.Confidence, want)
	}
	cpu := string(verdict.ClassCPU)
	if v.Class != cpu {
		return wrong
	}
	window := float64(v.Duration) / 1e9
	rq := v.Breakdown.Seconds[verdict.WaitRunQueue] / window
	own := map[string]float64{}
	for c, l := range v.Load {
		own[c] = l
	}
	own[cpu] = max(0, own[cpu]-rq)
	th := verdict.DefaultThresholds()
	switch {
	case both:
		e := first
		if e == cpu {
			e = second
		}
		if own[e] < th.MinLoad || own[e] < th.SecondaryRatio*own[cpu] || own[e] >= th.SecondaryRatio*(own[cpu]+rq) {
			return fmt.Errorf("%w: waiting for a CPU %.2f, own loads %v: not what left %s out", wrong, rq, own, e)
		}
	case want == string(verdict.ClassNone):
		if rq < th.MinLoad {
			return fmt.Errorf("%w: waiting for a CPU %.2f is not what makes it cpu", wrong, rq)
		}
		for c, l := range own {
			if l >= th.MinLoad {
				return fmt.Errorf("%w: apart from waiting for a CPU, %.2f of %s", wrong, l, c)
			}
		}
	default:
		// Waiting for a CPU counts as cpu load: on a busy machine it can
		// lift cpu past what the target itself did (a bulk transfer on
		// loopback is both on a CPU and waiting on its socket). What
		// the verdict must not do is rank cpu first on the target's own
		// time: checked below, with the wait left out.
		if total := own[cpu] + rq; total < own[want] {
			return fmt.Errorf("%w: cpu %.2f with its wait for a CPU does not reach its %.2f of %s", wrong, total, own[want], want)
		}
		if want == string(verdict.ClassMemory) {
			if own[want] == 0 || own[want] < th.MemoryShareOfCPU*(own[cpu]+own[want]) {
				return fmt.Errorf("%w: memory management %.2f of %.2f on a CPU", wrong, own[want], own[cpu]+own[want])
			}
			break
		}
		for c, l := range own {
			if l > own[want] {
				return fmt.Errorf("%w: apart from waiting for a CPU, %.2f of %s leads its %.2f of %s", wrong, l, c, own[want], want)
			}
		}
	}
	if kernelDelay < 0 {
		for _, e := range v.Evidence {
			if e.Signal == "process.schedstat.run_delay" {
				kernelDelay = e.Value * window
			}
		}
	}
	if kernelDelay < 0.9*rq*window-0.05 {
		return fmt.Errorf("%w: %.2f s waiting for a CPU seen, the kernel counted %.2f s", wrong, rq*window, kernelDelay)
	}
	return nil
}

// TestCheckClass: what checkClass accepts in place of a workload's class,
// on loads from this machine beside stress-ng --cpu 2, niced below it, and
// the same numbers moved to where the verdict would be wrong.
func TestCheckClass(t *testing.T) {
	// A 4 s window; runQueue of the cpu load waiting for a CPU.
	verdictOf := func(class, secondary string, runQueue float64, load map[string]float64) diagnosisJSON {
		var d diagnosisJSON
		v := &d.Verdict
		v.Class, v.Secondary, v.Duration, v.Load = class, secondary, 4e9, load
		v.Breakdown.Seconds = map[string]float64{"wait.runqueue": runQueue * 4}
		return d
	}
	leak := func(class string, runQueue, cpu float64) diagnosisJSON {
		return verdictOf(class, "", runQueue, map[string]float64{"cpu": runQueue + cpu, "memory": 0.04})
	}
	// churn: 1.06 of waiting for a CPU; on a CPU, 0.025 of its code and
	// 0.03 of GC and allocation; starved GC handoffs make lock waits.
	churn := func(runQueue, code, memory float64) diagnosisJSON {
		return verdictOf("cpu", "", runQueue, map[string]float64{"cpu": runQueue + code, "memory": memory, "contention": 0.085})
	}
	slowclient := func(runQueue, network float64) diagnosisJSON {
		return verdictOf("cpu", "network", runQueue, map[string]float64{"cpu": runQueue + 0.02, "network": network})
	}
	mixed := func(runQueue, io float64) diagnosisJSON {
		return verdictOf("cpu", "", runQueue, map[string]float64{"cpu": runQueue + 0.17, "io": io})
	}
	for _, tc := range []struct {
		name        string
		d           diagnosisJSON
		want        string
		kernelDelay float64 // seconds
		ok          bool
	}{
		{"the class", leak("none", 0.02, 0.03), "none", 0.1, true},
		{"leak: cpu from waiting for a CPU", leak("cpu", 0.3, 0.03), "none", 1.5, true},
		{"leak: cpu from its own code", leak("cpu", 0.02, 0.3), "none", 1.5, false},
		{"leak: a wait the kernel did not count", leak("cpu", 0.3, 0.03), "none", 0.2, false},
		{"leak: not cpu", leak("io", 0.3, 0.03), "none", 1.5, false},
		{"churn: starved", churn(1.06, 0.025, 0.03), "memory", 4.5, true},
		{"churn: memory under its share of the CPU time", churn(1.06, 0.2, 0.03), "memory", 4.5, false},
		{"churn: an idle machine, cpu", churn(0.01, 1.2, 0.35), "memory", 0.05, false},
		{"slowclient: starved", slowclient(0.8, 0.52), "network", 3.3, true},
		{"slowclient: its code leads", slowclient(0.8, 0.01), "network", 3.3, false},
		{"slowclient: waits less than it waits on peers", slowclient(0.4, 0.52), "network", 3.3, false},
		// network-bulk beside stress-ng in CI: cpu 0.98 (0.52 of it
		// waiting for a CPU) just over its 0.97 of network.
		{"bulk: the wait lifts cpu past network", verdictOf("cpu", "network", 0.52, map[string]float64{"cpu": 0.98, "network": 0.97}), "network", 2.2, true},
		{"bulk: its own cpu leads", verdictOf("cpu", "network", 0.1, map[string]float64{"cpu": 0.98, "network": 0.5}), "network", 0.5, false},
		{"mixed: starved", mixed(1.63, 0.76), "cpu+io", 6.6, true},
		{"mixed: io too small", mixed(1.63, 0.05), "cpu+io", 6.6, false},
		{"mixed: io left out without the wait", mixed(0.1, 0.05), "cpu+io", 6.6, false},
	} {
		if err := checkClass(tc.d, tc.want, tc.kernelDelay); (err == nil) != tc.ok {
			t.Errorf("%s: checkClass = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// runDelay is the time the kernel counts pid's live threads waiting for a
// CPU (/proc/PID/task/*/schedstat).
func runDelay(t *testing.T, pid int) time.Duration {
	t.Helper()
	_, wait, err := testproc.Schedstat(pid)
	if err != nil {
		t.Fatalf("threads of pid %d: %v", pid, err)
	}
	return wait
}

// TestDiagnoseURL diagnoses a Go service through its pprof endpoint: 64
// goroutines on one sync.Mutex park in the Go scheduler, so only the
// runtime's mutex and block profiles show the contention.
func TestDiagnoseURL(t *testing.T) {
	requireEBPF(t)
	buildSubjects(t)
	addr := freeLoopbackAddr(t)
	cmd := startReady(t, workloads, "-mode", "mutex", "-pprof", addr, "-duration", "10m")
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

// TestDiagnoseHost watches the whole host while one workload hashes among
// sleeping ones. On a busy machine other processes (CI's other job, a
// CPU hog) may rank above it, so it is found by its PID among every
// ranked process (from the saved observation, as analyze reads it), with
// the load of a thread always on a CPU or waiting for one, and judged
// CPU-bound.
func TestDiagnoseHost(t *testing.T) {
	requireEBPF(t)
	buildSubjects(t)
	for range 5 {
		startReady(t, workloads, "-mode", "sleep", "-duration", "10m")
	}
	busy := startReady(t, workloads, "-mode", "hash", "-duration", "10m")
	dir := filepath.Join(t.TempDir(), "host")
	code, out, errb := runCLI(t, "diagnose", "-f", "json", "-d", "4s", "--save", dir)
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
	for _, p := range d.Processes {
		if p.PID == os.Getpid() {
			t.Errorf("perfhound ranked itself: %+v", p)
		}
	}
	p, rank := rankedProcess(t, dir, busy.Process.Pid)
	t.Logf("the hashing workload ranks %d of %d, load %.2f (%.2f on a CPU), impact %.0f%%", rank, d.Ranked, p.Load, p.CPU, 100*p.Impact)
	if p.Load < 0.8 {
		t.Errorf("the hashing workload's load %.2f, want a thread's at least, on a CPU or waiting for one", p.Load)
	}
	if p.Verdict == nil || p.Verdict.Class != verdict.ClassCPU {
		t.Errorf("the hashing workload's verdict: %+v, want cpu", p.Verdict)
	}
	// The report lists the busiest with verdicts as analyze does: the
	// workload, if it is among them, with the same class.
	for i, q := range d.Processes {
		if q.PID == busy.Process.Pid && i < diagnosis.DefaultOptions().Judge && (q.Verdict == nil || q.Verdict.Class != "cpu") {
			t.Errorf("the hashing workload ranked %d in the report with verdict %+v, want cpu", i+1, q.Verdict)
		}
	}
}

// rankedProcess finds pid among every process of the host observation
// saved in dir, judged whatever its rank, and returns it with its rank
// (1 for the busiest).
func rankedProcess(t *testing.T, dir string, pid int) (diagnosis.Process, int) {
	t.Helper()
	o, err := observation.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := diagnosis.DefaultOptions()
	opts.Judge, opts.List, opts.MinLoad = math.MaxInt, math.MaxInt, 0
	r := diagnosis.Analyze(o, opts)
	for i, p := range r.Processes {
		if p.PID == pid {
			return p, i + 1
		}
	}
	t.Fatalf("pid %d not among the %d processes ranked", pid, r.Ranked)
	return diagnosis.Process{}, 0
}

// slowServerClient starts a server answering each request after 50 ms,
// apart so that only the client is watched, and gives the C client of it
// in mode ("tcp" or "poll").
func slowServerClient(mode string) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		addr := freeLoopbackAddr(t)
		startReady(t, workloads, "-mode", "slowserve", "-addr", addr, "-duration", "10m")
		host, port, _ := net.SplitHostPort(addr)
		return []string{cwork, mode, host, port}
	}
}

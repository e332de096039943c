package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
)

// The live tests of `perfhound agent`: the agent runs as its own process
// (the binary buildSubjects builds), so that it can be killed with -9 and
// sent SIGHUP and SIGTERM, on a data directory of the test's. They wait
// on what the agent says (its log, its API, its /metrics, its store),
// never on time: every deadline is generous (agentDeadline) for a busy
// 2-core runner.

// agentDeadline bounds every wait on the agent: its start (loading the
// eBPF programs), a window stored, a service seen.
const agentDeadline = 2 * time.Minute

// agentEBPF tells whether the agent can load its eBPF collectors here,
// and if not why.
func agentEBPF() (bool, string) {
	s := bpf.Probe()
	if s.Available() {
		return true, ""
	}
	var why []string
	for c, err := range s.Collectors {
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", c, err))
		}
	}
	slices.Sort(why)
	return false, strings.Join(why, "; ")
}

// requireAgentEBPF skips a test that needs the agent's eBPF collectors
// (a workload's samples, its profile, the eBPF session kept across a
// reload) where they cannot load.
func requireAgentEBPF(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	if ok, why := agentEBPF(); !ok {
		t.Skipf("eBPF collection unavailable here (run as root, or with CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE): %s", why)
	}
}

// ebpfFlag is --no-ebpf where eBPF cannot load, for the tests that do
// not need it: they run on the rest.
func ebpfFlag() []string {
	if ok, _ := agentEBPF(); ok {
		return nil
	}
	return []string{"--no-ebpf"}
}

// agentProc is a perfhound agent running as its own process.
type agentProc struct {
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:PORT
	done chan struct{}
	err  error // cmd.Wait's, once done is closed

	mu  sync.Mutex
	log bytes.Buffer // its stderr
}

// keepFailedEnv names a directory where a failed test's agent store is
// copied (its --data-dir), to replay what the agent saw: the store is in
// the test's temporary directory, removed when it ends.
const keepFailedEnv = "PERFHOUND_KEEP_FAILED"

// keepStore copies the --data-dir of a failed test's agent to
// $PERFHOUND_KEEP_FAILED/<test>-<n>, when that is set.
func keepStore(t *testing.T, args []string) {
	root := os.Getenv(keepFailedEnv)
	i := slices.Index(args, "--data-dir")
	if root == "" || i < 0 || i+1 == len(args) {
		return
	}
	dst, err := os.MkdirTemp(root, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err == nil {
		err = os.CopyFS(dst, os.DirFS(args[i+1]))
	}
	if err != nil {
		t.Logf("keeping the agent's store: %v", err)
		return
	}
	t.Logf("the agent's store is kept in %s", dst)
}

var startedLine = regexp.MustCompile(`msg="perfhound agent started" listen=(https?)://(\S+)/`)

// startAgent runs `perfhound agent ARGS` and waits until it serves. It is
// killed (-9) at the end of the test if still running; its log is shown
// when the test fails.
func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	buildSubjects(t)
	a := &agentProc{done: make(chan struct{})}
	a.cmd = exec.Command(perfhound, append([]string{"agent", "--log-level", "debug"}, args...)...)
	a.cmd.SysProcAttr = dieWithTest
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			a.mu.Lock()
			a.log.Write(sc.Bytes())
			a.log.WriteByte('\n')
			a.mu.Unlock()
			if m := startedLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1] + "://" + m[2]
			}
		}
		io.Copy(io.Discard, stderr)
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent %v log:\n%s", args, a.logText())
			keepStore(t, args)
		}
	})
	select {
	case u := <-addr:
		// An agent on every address is reached on loopback.
		a.url = strings.Replace(u, "://0.0.0.0:", "://127.0.0.1:", 1)
		a.url = strings.Replace(a.url, "://[::]:", "://127.0.0.1:", 1)
	case <-a.done:
		t.Fatalf("agent %v exited before serving (%v):\n%s", args, a.err, a.logText())
	case <-time.After(agentDeadline):
		t.Fatalf("agent %v not serving after %v:\n%s", args, agentDeadline, a.logText())
	}
	return a
}

func (a *agentProc) logText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// get requests PATH of the agent, with the bearer token when not "".
func (a *agentProc) get(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", a.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: agentDeadline}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, b
}

// agentService is a service as /api/v1/services lists it.
type agentService struct {
	Name     string         `json:"name"`
	First    time.Time      `json:"first"`
	Last     time.Time      `json:"last"`
	Versions []agentVersion `json:"versions"`
}

type agentVersion struct {
	Version string            `json:"version"`
	First   time.Time         `json:"first"`
	Last    time.Time         `json:"last"`
	Labels  map[string]string `json:"labels"`
}

// version is the index of version v, -1 when the service has none.
func (s agentService) version(v string) int {
	return slices.IndexFunc(s.Versions, func(x agentVersion) bool { return x.Version == v })
}

func (a *agentProc) services(t *testing.T, token string) map[string]agentService {
	t.Helper()
	code, body := a.get(t, "/api/v1/services", token)
	if code != http.StatusOK {
		t.Fatalf("/api/v1/services: %d %s", code, body)
	}
	var out struct {
		Services []agentService `json:"services"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("/api/v1/services: %v\n%s", err, body)
	}
	m := map[string]agentService{}
	for _, s := range out.Services {
		m[s.Name] = s
	}
	return m
}

// metric is the value of one sample of /metrics (NAME or NAME{LABELS} as
// the text format writes it), -1 when absent.
func (a *agentProc) metric(t *testing.T, series string) float64 {
	t.Helper()
	code, body := a.get(t, "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// windows is how many windows this agent process has stored.
func (a *agentProc) windows(t *testing.T) int {
	return int(a.metric(t, `perfhound_agent_windows_total{source="host"}`))
}

// waitFor polls cond until it holds, failing the test after
// agentDeadline with what cond said last (or when the agent exits).
func (a *agentProc) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	a.waitWithin(t, agentDeadline, what, cond)
}

// waitWithin is waitFor with its own deadline.
func (a *agentProc) waitWithin(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-a.done:
			t.Fatalf("waiting for %s: the agent exited (%v); last: %s", what, a.err, last)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after %v; last: %s", what, within, last)
		}
		time.Sleep(200 * time.Millisecond) // a poll, not a wait for correctness
	}
}

// waitWindows waits until the agent has stored at least n windows.
func (a *agentProc) waitWindows(t *testing.T, n int) {
	t.Helper()
	a.waitFor(t, fmt.Sprintf("%d windows stored", n), func() (bool, string) {
		w := a.windows(t)
		return w >= n, fmt.Sprintf("%d windows", w)
	})
}

// signal sends sig and waits (within agentDeadline) for the agent to
// exit; it returns how long that took.
func (a *agentProc) stop(t *testing.T, sig syscall.Signal) time.Duration {
	t.Helper()
	start := time.Now()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(agentDeadline):
		t.Fatalf("agent still running %v after %v", agentDeadline, sig)
	}
	return time.Since(start)
}

// spinnerSource is a Go program that spins in spinHound for -duration
// (bounded: it is also killed when the test ends); salt makes each
// build's binary, so its build ID, differ.
func spinnerSource(salt int) string {
	return fmt.Sprintf(`package main

import (
	"flag"
	"fmt"
	"time"
)

const salt = %d

//go:noinline
func spinHound(n int) int {
	x := salt
	for i := range n {
		x = x*31 + i
	}
	return x
}

func main() {
	d := flag.Duration("duration", 3*time.Minute, "how long to spin")
	flag.Parse()
	deadline := time.Now().Add(*d)
	x := 0
	for time.Now().Before(deadline) {
		x += spinHound(1 << 20)
	}
	fmt.Println(x)
}
`, salt)
}

// buildSpinner builds spinnerSource(salt) to out and returns its Go build
// ID as `go tool buildid` prints it.
func buildSpinner(t *testing.T, out string, salt int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "go.mod"), []byte("module spinner\n\ngo 1.22\n"))
	writeFile(t, filepath.Join(src, "main.go"), []byte(spinnerSource(salt)))
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", out, ".")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", out, err, b)
	}
	b, err := exec.Command("go", "tool", "buildid", out).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool buildid %s: %v\n%s", out, err, b)
	}
	return strings.TrimSpace(string(b))
}

// runSpinner starts the spinner at path; it is killed at the end of the
// test, or by stop.
func runSpinner(t *testing.T, path string) (pid int, stop func()) {
	t.Helper()
	cmd := startSubject(t, path, "-duration", "3m")
	return cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }
}

// expectedService is the service the agent should name pid: its
// executable's base name, unless the process runs in a systemd service
// or a container (a test run from a unit or in a container), which name
// it before the executable does.
func expectedService(t *testing.T, pid int, exe string) string {
	t.Helper()
	r, err := identity.New(identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Resolve(pid)
	if err != nil {
		t.Fatalf("resolving the workload %d: %v", pid, err)
	}
	if u, c := id.Labels[identity.LabelUnit], id.Labels["container_id"]; u != "" || c != "" {
		t.Logf("the workload runs in unit %q container %q: the agent names it %q, not by its executable", u, c, id.Service)
		return id.Service
	}
	return filepath.Base(exe)
}

// TestAgentWorkload: a real workload (a Go program built here, spinning)
// appears in /api/v1/services named after its executable, versioned by
// its Go build ID; a new binary at the same path is a new version of the
// same service; and the API's merged CPU profile of it opens in `go tool
// pprof`, which lists the function it spins in.
func TestAgentWorkload(t *testing.T) {
	requireAgentEBPF(t)
	exe := filepath.Join(t.TempDir(), "spinner")
	v1 := buildSpinner(t, exe, 1)
	a := startAgent(t, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--window", "1s", "--interval", "1s")

	pid, stop := runSpinner(t, exe)
	name := expectedService(t, pid, exe)
	var svc agentService
	a.waitFor(t, "the spinner's service and version", func() (bool, string) {
		svc = a.services(t, "")[name]
		return svc.version(v1) >= 0, fmt.Sprintf("service %q: %+v", name, svc)
	})
	if l := svc.Versions[svc.version(v1)].Labels; l[identity.LabelService] != name || l[identity.LabelVersion] != v1 || l["exe"] != "spinner" {
		t.Errorf("version %s labels %v: want service_name %q, version the build ID, exe spinner", v1, l, name)
	}

	t.Run("profile-opens-in-pprof", func(t *testing.T) {
		q := url.Values{"service": {name}, "version": {v1}, "type": {"cpu"}}
		var body []byte
		a.waitFor(t, "a CPU profile of the spinner that holds spinHound", func() (bool, string) {
			code, b := a.get(t, "/api/v1/profile?"+q.Encode(), "")
			if code != http.StatusOK {
				return false, fmt.Sprintf("%d %s", code, b)
			}
			p, err := profile.ParseData(b)
			if err != nil {
				t.Fatalf("the profile does not parse: %v", err)
			}
			body = b
			return hasFunction(p, "main.spinHound"), fmt.Sprintf("%d samples, no main.spinHound", len(p.Sample))
		})
		file := filepath.Join(t.TempDir(), "spinner.pb.gz")
		writeFile(t, file, body)
		cmd := exec.Command("go", "tool", "pprof", "-top", file)
		cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof -top: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "main.spinHound") {
			t.Errorf("go tool pprof -top does not list main.spinHound:\n%s", out)
		}
	})

	t.Run("new-binary-new-version", func(t *testing.T) {
		stop()
		v2 := buildSpinner(t, exe, 2)
		if v2 == v1 {
			t.Fatalf("two different sources built the same build ID %s", v1)
		}
		runSpinner(t, exe)
		a.waitFor(t, "the new binary's version", func() (bool, string) {
			svc = a.services(t, "")[name]
			return svc.version(v2) >= 0, fmt.Sprintf("service %q: %+v", name, svc)
		})
		if svc.version(v1) < 0 {
			t.Errorf("the first version %s is gone: %+v", v1, svc)
		}
		for _, v := range svc.Versions {
			t.Logf("version %s first %v last %v labels %v", v.Version, v.First, v.Last, v.Labels)
		}
		if i, j := svc.version(v1), svc.version(v2); i >= 0 && svc.Versions[j].First.Before(svc.Versions[i].First) {
			t.Errorf("version %s first seen %v, before the first one's %v", v2, svc.Versions[j].First, svc.Versions[i].First)
		}
	})
}

func hasFunction(p *profile.Profile, name string) bool {
	for _, s := range p.Sample {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && l.Function.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// storedWindow is one record of a store, as the kill -9 test compares
// them: its series, start, duration and verdict.
type storedWindow struct {
	Series   string // "" for the host's, else service \x00 version
	Start    time.Time
	Duration time.Duration
	Verdict  string
}

// storeContents opens the store in dir (no agent may hold it) and reads
// every record of every series, and the services.
func storeContents(t *testing.T, dir string) (map[storedWindow]bool, []store.Service) {
	t.Helper()
	st, err := store.Open(dir, store.Options{Rollups: []store.Rollup{}})
	if err != nil {
		t.Fatalf("opening the store after the agent: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("store check: %v", err)
	}
	from, to := time.Now().Add(-24*time.Hour), time.Now().Add(time.Hour)
	out := map[storedWindow]bool{}
	add := func(series string, rs []store.Record) {
		for _, r := range rs {
			if r.Obs == nil {
				t.Errorf("%q at %v: no observation", series, r.Start)
			}
			out[storedWindow{series, r.Start.UTC(), r.Duration, string(r.Verdict)}] = true
		}
	}
	hosts, err := st.HostRange(from, to)
	if err != nil {
		t.Fatalf("reading the host's windows: %v", err)
	}
	add("", hosts)
	svcs, err := st.Services()
	if err != nil {
		t.Fatalf("reading the services: %v", err)
	}
	for _, s := range svcs {
		rs, err := st.Range(store.Query{Service: s.Name, From: from, To: to})
		if err != nil {
			t.Fatalf("reading service %s: %v", s.Name, err)
		}
		for _, r := range rs {
			add(s.Name+"\x00"+r.Version, []store.Record{r})
		}
	}
	return out, svcs
}

func hostWindows(ws map[storedWindow]bool) (n int, last time.Time) {
	for w := range ws {
		if w.Series == "" {
			n++
			if w.Start.After(last) {
				last = w.Start
			}
		}
	}
	return n, last
}

// TestAgentKill9: an agent killed with -9 loses no stored window, and a
// new agent on the same data directory starts without repair and keeps
// adding windows. What the API showed before the kill (the windows
// /metrics counted, each service's versions and last seen) is in the
// store after it; every record there after the kill is there, the same,
// after the restart, beside the new agent's.
func TestAgentKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	dir := t.TempDir()
	args := append([]string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--window", "1s", "--interval", "1s"}, ebpfFlag()...)
	a := startAgent(t, args...)
	a.waitWindows(t, 3)
	before := a.services(t, "")
	n := a.windows(t) // read last: every window the services show is counted
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done

	afterKill, svcs := storeContents(t, dir)
	hosts, lastHost := hostWindows(afterKill)
	if hosts < n {
		t.Errorf("%d host windows stored after kill -9, the agent had counted %d", hosts, n)
	}
	stored := map[string]store.Service{}
	for _, s := range svcs {
		stored[s.Name] = s
	}
	for name, s := range before {
		got, ok := stored[name]
		switch {
		case !ok:
			t.Errorf("service %s, listed before the kill, is not stored", name)
			continue
		case !got.First.Equal(s.First) || got.Last.Before(s.Last):
			t.Errorf("service %s: first %v last %v before the kill, %v %v stored", name, s.First, s.Last, got.First, got.Last)
		}
		for _, v := range s.Versions {
			if !slices.ContainsFunc(got.Versions, func(x store.Version) bool { return x.Version == v.Version && !x.Last.Before(v.Last) }) {
				t.Errorf("service %s version %s (last %v before the kill) not stored: %+v", name, v.Version, v.Last, got.Versions)
			}
		}
	}
	if len(before) == 0 {
		t.Fatal("no service listed before the kill")
	}
	t.Logf("before the kill: %d windows counted, %d services; after: %d records, %d host windows", n, len(before), len(afterKill), hosts)

	b := startAgent(t, args...)
	b.waitWindows(t, 2)
	b.stop(t, syscall.SIGTERM)
	afterRestart, _ := storeContents(t, dir)
	for w := range afterKill {
		if !afterRestart[w] {
			t.Errorf("window %q at %v (%v) stored before the restart is gone or changed", w.Series, w.Start, w.Duration)
		}
	}
	hosts2, lastHost2 := hostWindows(afterRestart)
	if hosts2 < hosts+2 || !lastHost2.After(lastHost) {
		t.Errorf("after the restart %d host windows, the last at %v; before it %d, the last at %v: the new agent added fewer than 2", hosts2, lastHost2, hosts, lastHost)
	}
}

// seedWindow stores one window of service (or of the host, for "") at
// start, as an agent would have before this one started.
func seedWindow(t *testing.T, st *store.Store, service string, start time.Time, d time.Duration) {
	t.Helper()
	o := &observation.Observation{Meta: observation.Meta{Start: start, Duration: d, Target: observation.Target{Kind: observation.TargetHost}}}
	b := store.Batch{Host: &store.Record{Obs: o}}
	if service != "" {
		so := *o
		so.Meta.Target = observation.Target{Kind: observation.TargetService, Service: service, Labels: map[string]string{"version": "v0"}}
		b.Records = []store.Record{{Service: service, Version: "v0", Obs: &so}}
	}
	if err := st.Put(b); err != nil {
		t.Fatal(err)
	}
}

// TestAgentRetention: an agent whose retention (config file) keeps 8
// hours drops what a previous agent stored before that, on its own
// (its maintenance after a window, with the real clock), forgets the
// services seen only then, keeps what is younger, and with `rollups: []`
// keeps every window as it was (docs/agent.md). The old windows are
// written beforehand into the data directory with agent/store: an agent
// would take hours to make them.
func TestAgentRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	dir := t.TempDir()
	now := time.Now()
	ancient := now.Add(-10 * time.Hour)
	old := now.Add(-7 * time.Hour).Truncate(time.Minute) // past the default rollups' 6 h
	recent := now.Add(-30 * time.Minute)
	st, err := store.Open(dir, store.Options{Rollups: []store.Rollup{}})
	if err != nil {
		t.Fatal(err)
	}
	seedWindow(t, st, "ancient", ancient, 10*time.Second)
	seedWindow(t, st, "old", old, 10*time.Second)
	seedWindow(t, st, "old", old.Add(10*time.Second), 10*time.Second)
	seedWindow(t, st, "recent", recent, 10*time.Second)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := writeFile(t, filepath.Join(t.TempDir(), "agent.yaml"), []byte(fmt.Sprintf(
		"data_dir: %s\nlisten: 127.0.0.1:0\nwindow: 1s\ninterval: 1s\nretention:\n  max_age: 8h\n  rollups: []\n", dir)))
	a := startAgent(t, append([]string{"--config", cfg}, ebpfFlag()...)...)
	a.waitWindows(t, 2) // maintenance follows each window
	svcs := a.services(t, "")
	if _, ok := svcs["ancient"]; ok {
		t.Errorf("service ancient, seen only 10 h ago, still listed with max_age 8h")
	}
	for _, name := range []string{"old", "recent"} {
		if _, ok := svcs[name]; !ok {
			t.Errorf("service %s, seen within max_age, not listed", name)
		}
	}
	a.stop(t, syscall.SIGTERM)

	st, err = store.Open(dir, store.Options{Rollups: []store.Rollup{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rs, err := st.HostRange(ancient.Add(-time.Hour), ancient.Add(time.Hour)); err != nil || len(rs) != 0 {
		t.Errorf("the host's windows of 10 h ago: %d left (%v), want them dropped", len(rs), err)
	}
	if rs, err := st.Range(store.Query{Service: "ancient", From: ancient.Add(-time.Hour), To: now}); err != nil || len(rs) != 0 {
		t.Errorf("service ancient: %d windows left (%v), want them dropped", len(rs), err)
	}
	rs, err := st.Range(store.Query{Service: "old", From: old.Add(-time.Hour), To: now})
	if err != nil || len(rs) != 2 || rs[0].Duration != 10*time.Second || rs[1].Duration != 10*time.Second {
		t.Errorf("service old: %d windows (%v), want its two 10 s windows as they were (rollups: [])", len(rs), err)
		for _, r := range rs {
			t.Logf("  %v %v", r.Start, r.Duration)
		}
	}
	if rs, err := st.Range(store.Query{Service: "recent", From: recent.Add(-time.Minute), To: now}); err != nil || len(rs) != 1 {
		t.Errorf("service recent: %d windows (%v), want 1", len(rs), err)
	}
}

// TestAgentRetentionReload: retention is reloaded (docs/agent.md): an
// agent keeping the default 7 days, sent SIGHUP with max_age 8h, drops
// the windows stored 10 h ago without a restart.
func TestAgentRetentionReload(t *testing.T) {
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Rollups: []store.Rollup{}})
	if err != nil {
		t.Fatal(err)
	}
	seedWindow(t, st, "ancient", time.Now().Add(-10*time.Hour), 10*time.Second)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "agent.yaml")
	base := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nwindow: 1s\ninterval: 1s\n", dir)
	writeFile(t, cfgFile, []byte(base))
	a := startAgent(t, append([]string{"--config", cfgFile}, ebpfFlag()...)...)
	a.waitWindows(t, 1)
	if _, ok := a.services(t, "")["ancient"]; !ok {
		t.Fatal("service ancient, seen 10 h ago, not listed with the default 7 days of retention")
	}
	writeFile(t, cfgFile, []byte(base+"retention:\n  max_age: 8h\n  rollups: []\n"))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the reload", func() (bool, string) {
		v := a.metric(t, "perfhound_agent_config_last_reload_successful")
		return v == 1, fmt.Sprintf("perfhound_agent_config_last_reload_successful %v", v)
	})
	reloaded := a.windows(t)
	a.waitWindows(t, reloaded+2) // maintenance follows each window
	if _, ok := a.services(t, "")["ancient"]; ok {
		t.Errorf("service ancient, seen 10 h ago, still listed two windows after a reload to max_age 8h")
	}
}

// pyroapp is fixtures/pyroapp (the real pyroscope-go SDK), built once,
// or taken from PERFHOUND_TEST_SUBJECTS.
var (
	pyroappOnce sync.Once
	pyroappBin  string
	pyroappErr  error
)

func buildPyroapp(t *testing.T) string {
	t.Helper()
	pyroappOnce.Do(func() {
		if dir := os.Getenv(subjectsEnv); dir != "" {
			pyroappBin = filepath.Join(dir, "pyroapp")
			_, pyroappErr = os.Stat(pyroappBin)
			return
		}
		buildSubjects(t)
		pyroappBin = filepath.Join(filepath.Dir(perfhound), "pyroapp")
		if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", pyroappBin, "../../fixtures/pyroapp").CombinedOutput(); err != nil {
			pyroappErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if pyroappErr != nil {
		t.Fatalf("building fixtures/pyroapp: %v", pyroappErr)
	}
	return pyroappBin
}

// TestAgentPyroscopeSDK: an application instrumented with pyroscope-go,
// configured with the agent's address, shows up as a service named by its
// application name, and the kinds it pushed (CPU, heap) are served by
// /api/v1/profile with its own functions in them.
func TestAgentPyroscopeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	app := buildPyroapp(t)
	a := startAgent(t, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--window", "1s", "--interval", "1s", "--no-ebpf")
	const name = "perfhound.agenttest"
	p := startSubject(t, app, "-server", a.url, "-app", name, "-duration", "3s", "-cpu", "500ms")
	a.waitFor(t, "the SDK's application as a service", func() (bool, string) {
		svcs := a.services(t, "")
		_, ok := svcs[name]
		return ok, fmt.Sprintf("%d services", len(svcs))
	})
	// Its labels: the application's name as service_name (Pyroscope's
	// convention) and the tags the SDK was given.
	if svc := a.services(t, "")[name]; len(svc.Versions) == 0 || svc.Versions[0].Labels[identity.LabelService] != name || svc.Versions[0].Labels["fixture"] != "pyroapp" {
		t.Errorf("service %s: versions %+v, want labels service_name=%s and the SDK's tag fixture=pyroapp", name, svc.Versions, name)
	}
	for _, c := range []struct {
		kind observation.ProfileKind
		fn   string
	}{{observation.KindCPU, "main.burnCPU"}, {observation.KindHeap, "main.churnAllocs"}} {
		q := url.Values{"service": {name}, "type": {string(c.kind)}}
		a.waitFor(t, fmt.Sprintf("a %s profile with %s", c.kind, c.fn), func() (bool, string) {
			code, b := a.get(t, "/api/v1/profile?"+q.Encode(), "")
			if code != http.StatusOK {
				return false, fmt.Sprintf("%d %s", code, b)
			}
			pr, err := profile.ParseData(b)
			if err != nil {
				t.Fatalf("the %s profile does not parse: %v", c.kind, err)
			}
			return hasFunction(pr, c.fn), fmt.Sprintf("%d samples, no %s", len(pr.Sample), c.fn)
		})
	}
	p.Process.Kill()
}

// TestAgentToken: listening on every address without a token is refused
// before anything starts (exit 2, naming token_file); with --token-file
// the agent starts and answers only requests that bear the token.
func TestAgentToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runCLI(t, "agent", "--listen", "0.0.0.0:0", "--data-dir", dir)
	if code != 2 || !strings.Contains(stderr, "token_file") {
		t.Errorf("--listen 0.0.0.0:0 without a token: exit %d, stderr %q; want 2 naming token_file", code, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the refused agent made its data directory: %v", err)
	}
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}

	const token = "s3cret-agent-test-token"
	tokenFile := writeFile(t, filepath.Join(t.TempDir(), "token"), []byte(token+"\n"))
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "--data-dir", dir, "--listen", "0.0.0.0:0", "--token-file", tokenFile, "--window", "1s", "--interval", "1s", "--no-ebpf")
	for _, path := range []string{"/api/v1/services", "/metrics", "/"} {
		if code, body := a.get(t, path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d %.200s, want 401", path, code, body)
		}
		if code, body := a.get(t, path, "not-"+token); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d %.200s, want 401", path, code, body)
		}
	}
	if code, body := a.get(t, "/api/v1/services", token); code != http.StatusOK {
		t.Errorf("GET /api/v1/services with the token: %d %s, want 200", code, body)
	}
}

// TestAgentRegressions: a webhook's token file that others can read is
// refused by --check-config, naming its key; the agent starts regression
// detection by replaying its store, answers /api/v1/regressions and
// exports the webhook's counters; a reload that turns detection off and
// points the webhook elsewhere applies, and one whose webhook token does
// not read is refused with the running config kept.
func TestAgentRegressions(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "hook-token"), []byte("s3cret-hook-token-0123\n"))
	hook := "regressions:\n  webhook:\n    url: http://127.0.0.1:9/hook\n    token_file: hook-token\n"
	cfg := writeFile(t, filepath.Join(dir, "agent.yaml"), []byte(hook))
	code, _, stderr := runCLI(t, "agent", "--config", cfg, "--check-config")
	if code != 2 || !strings.Contains(stderr, "regressions.webhook.token_file: token file") || !strings.Contains(stderr, "chmod 600") || strings.Contains(stderr, "s3cret") {
		t.Errorf("--check-config with a webhook token others can read: exit %d, %q", code, stderr)
	}
	if err := os.Chmod(token, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "agent", "--config", cfg, "--check-config"); code != 0 {
		t.Errorf("--check-config with a good webhook token: exit %d, %q", code, stderr)
	}
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	a := startAgent(t, append([]string{"--config", cfg, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--window", "1s", "--interval", "1s"}, ebpfFlag()...)...)
	a.waitFor(t, "regression detection", func() (bool, string) {
		return strings.Contains(a.logText(), `msg="regression detection started" replayed_windows=0`), "no line"
	})
	if code, body := a.get(t, "/api/v1/regressions", ""); code != http.StatusOK || strings.Join(strings.Fields(string(body)), "") != `{"regressions":[]}` {
		t.Errorf("/api/v1/regressions: %d %s", code, body)
	}
	if v := a.metric(t, `perfhound_agent_webhook_events_total{outcome="dropped"}`); v != 0 {
		t.Errorf("webhook drops %v, want 0 exported", v)
	}

	writeFile(t, cfg, []byte("regressions:\n  enabled: false\n  webhook:\n    url: http://127.0.0.1:10/elsewhere\n"))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the reload", func() (bool, string) {
		return strings.Contains(a.logText(), "config reloaded"), "not yet"
	})
	if strings.Contains(a.logText(), "only a restart applies") {
		t.Errorf("a change of regressions needs a restart:\n%s", a.logText())
	}
	os.Chmod(token, 0o644)
	writeFile(t, cfg, []byte(hook))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The gauge and the log line are both written by the reload; either
	// may be seen first.
	a.waitFor(t, "the refused reload", func() (bool, string) {
		v := a.metric(t, "perfhound_agent_config_last_reload_successful")
		return v == 0 && strings.Contains(a.logText(), "config not reloaded"), fmt.Sprintf("perfhound_agent_config_last_reload_successful %v", v)
	})
	if strings.Contains(a.logText(), "s3cret") {
		t.Errorf("the token is in the log:\n%s", a.logText())
	}
}

// progIDs are the IDs of the eBPF programs pid holds (its program and
// link descriptors' fdinfo).
func progIDs(t *testing.T, pid int) []int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed since
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				if id, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// TestAgentReload: SIGHUP with a changed config applies it without a
// restart (a service rule renames the workload in the windows that
// follow, the eBPF programs are the same ones), a broken config on SIGHUP
// is refused with the running one kept (/metrics says so), and SIGTERM
// ends the agent within 5 s.
func TestAgentReload(t *testing.T) {
	requireAgentEBPF(t)
	exe := filepath.Join(t.TempDir(), "spinner")
	v1 := buildSpinner(t, exe, 1)
	pid, _ := runSpinner(t, exe)
	name := expectedService(t, pid, exe)

	cfgFile := filepath.Join(t.TempDir(), "agent.yaml")
	base := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nwindow: 1s\ninterval: 1s\n", t.TempDir())
	writeFile(t, cfgFile, []byte(base))
	a := startAgent(t, "--config", cfgFile)
	a.waitFor(t, "the spinner's service", func() (bool, string) {
		svc := a.services(t, "")[name]
		return svc.version(v1) >= 0, fmt.Sprintf("%+v", svc)
	})
	progs := progIDs(t, a.cmd.Process.Pid)
	if len(progs) == 0 {
		t.Fatal("the agent holds no eBPF program")
	}

	const renamed = "renamed-spinner"
	writeFile(t, cfgFile, []byte(base+fmt.Sprintf("services:\n  - exe: %q\n    service: %s\n", exe, renamed)))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the renamed service", func() (bool, string) {
		svc, ok := a.services(t, "")[renamed]
		return ok && svc.version(v1) >= 0, fmt.Sprintf("%+v", svc)
	})
	if ok := a.metric(t, "perfhound_agent_config_last_reload_successful"); ok != 1 {
		t.Errorf("perfhound_agent_config_last_reload_successful %v after a good reload, want 1", ok)
	}
	if got := progIDs(t, a.cmd.Process.Pid); !slices.Equal(got, progs) {
		t.Errorf("eBPF programs %v before the reload, %v after: the session was reloaded", progs, got)
	}

	writeFile(t, cfgFile, []byte(base+"services: [{exe: '[broken'\n"))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the broken config refused", func() (bool, string) {
		v := a.metric(t, "perfhound_agent_config_last_reload_successful")
		return v == 0, fmt.Sprintf("perfhound_agent_config_last_reload_successful %v", v)
	})
	// The log reaches the test through a pipe: wait for the line rather
	// than read it once as the metric turns.
	a.waitFor(t, "the refused reload logged", func() (bool, string) {
		return strings.Contains(a.logText(), "config not reloaded"), "no \"config not reloaded\" in the agent's log"
	})
	// The running config goes on: windows after the refusal still name
	// the workload by the rule.
	refused := time.Now()
	a.waitFor(t, "a window after the refused reload", func() (bool, string) {
		svc := a.services(t, "")[renamed]
		return svc.Last.After(refused), fmt.Sprintf("%s last seen %v", renamed, svc.Last)
	})
	if got := progIDs(t, a.cmd.Process.Pid); !slices.Equal(got, progs) {
		t.Errorf("eBPF programs %v before, %v after the refused reload", progs, got)
	}

	if took := a.stop(t, syscall.SIGTERM); took > 5*time.Second {
		t.Errorf("SIGTERM: exited after %v, want within 5 s", took)
	}
	if a.err != nil {
		t.Errorf("SIGTERM: %v, want exit 0", a.err)
	}
}

// TestAgentSIGTERM: SIGTERM stores the window in flight, cut short, and
// the agent exits 0 within 5 s.
func TestAgentSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	dir := t.TempDir()
	a := startAgent(t, append([]string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--window", "30s", "--interval", "1s"}, ebpfFlag()...)...)
	if w := a.windows(t); w > 0 { // -1: none counted yet
		t.Fatalf("%d windows stored before the first window ended", w)
	}
	took := a.stop(t, syscall.SIGTERM)
	t.Logf("SIGTERM: exited after %v", took)
	if took > 5*time.Second {
		t.Errorf("SIGTERM: exited after %v, want within 5 s", took)
	}
	if a.err != nil {
		t.Errorf("SIGTERM: %v, want exit 0", a.err)
	}
	ws, _ := storeContents(t, dir)
	n, _ := hostWindows(ws)
	if n != 1 {
		t.Fatalf("%d host windows stored, want the one in flight", n)
	}
	for w := range ws {
		if w.Series == "" && (w.Duration <= 0 || w.Duration >= 30*time.Second) {
			t.Errorf("the window in flight lasts %v: want it cut short by SIGTERM", w.Duration)
		}
	}
}

// FuzzAgentCheckConfig: any config file with any --window and --listen
// on `perfhound agent --check-config` exits 0 or 2, never panics nor
// starts anything; when it accepts, the flags given are what the config
// says (flags override the file).
func FuzzAgentCheckConfig(f *testing.F) {
	f.Add([]byte("window: 5s\n"), "2s", "127.0.0.1:0")
	f.Add([]byte(""), "1h", "0.0.0.0:7474")
	f.Add([]byte("listen: unix:/tmp/perfhound.sock\ntoken_file: /nonexistent\n"), "", "")
	f.Add([]byte("retention: {max_age: 1s, rollups: []}\n"), "1s", "[::1]:1")
	f.Add([]byte("window: 1m\nretention: {rollups: [{after: 1h, step: 2m}]}\n"), "", "localhost:7474")
	f.Add([]byte(" "), "0", "0") // --window=0 divided by zero in fitRollups (found by this fuzzer, 2026-12-06)
	f.Fuzz(func(t *testing.T, file []byte, window, listen string) {
		dir := t.TempDir()
		cfg := writeFile(t, filepath.Join(dir, "agent.yaml"), file)
		data := filepath.Join(dir, "data")
		args := []string{"agent", "--config", cfg, "--check-config", "--data-dir", data}
		if window != "" {
			args = append(args, "--window="+window)
		}
		if listen != "" {
			args = append(args, "--listen="+listen)
		}
		code, out, errb := runCLI(t, args...)
		switch code {
		case 2:
			if errb == "" {
				t.Fatalf("exit 2 without a word: %q", args)
			}
			return
		case 0:
		default:
			t.Fatalf("exit %d (want 0 or 2): %q\n%s%s", code, args, out, errb)
		}
		if !strings.Contains(out, "config OK: data in "+data+",") {
			t.Errorf("--data-dir %s not in force: %q", data, out)
		}
		if listen != "" && !strings.Contains(out, "listening on "+listen+",") {
			t.Errorf("--listen %s not in force: %q", listen, out)
		}
		if d, err := time.ParseDuration(window); window != "" && err == nil && !strings.HasSuffix(out, "windows of "+d.String()+"\n") {
			t.Errorf("--window %s not in force: %q", window, out)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("--check-config made the data directory: %v", err)
		}
	})
}

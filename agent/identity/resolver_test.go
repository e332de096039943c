package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/agent/collect"
)

// checkNoSecrets fails when a label value holds what only the command
// line said.
func checkNoSecrets(t *testing.T, id Identity, secrets ...string) {
	t.Helper()
	for k, v := range id.Labels {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("label %s=%q holds the command line's %q", k, v, s)
			}
		}
	}
	for k := range id.Labels {
		switch k {
		case LabelService, LabelVersion, LabelUnit, LabelContainer, LabelExe, LabelBuildID:
		default:
			t.Errorf("label %q is not one of the package's", k)
		}
	}
}

// TestResolveSelf resolves the test process itself: its version is the
// test binary's Go build ID and its service follows its own cgroup line.
func TestResolveSelf(t *testing.T) {
	r := newResolver(t, Options{})
	id := resolve(t, r, os.Getpid())
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if want := goBuildID(t, exe); id.Version != want || id.Labels[LabelBuildID] != want {
		t.Errorf("version %q, build_id %q; go tool buildid says %q", id.Version, id.Labels[LabelBuildID], want)
	}
	cg := ownCgroup(t)
	want := filepath.Base(exe)
	switch {
	case cg.Unit != "" && !cg.ContainerWins:
		want = strings.TrimSuffix(strings.TrimSuffix(cg.Unit, ".service"), ".scope")
	case cg.ContainerID != "":
		want = shortID(cg.ContainerID)
	}
	t.Logf("own cgroup %+v: service %q", cg, id.Service)
	if id.Service != want || id.Labels[LabelService] != want || id.Labels[LabelExe] != filepath.Base(exe) {
		t.Errorf("identity %+v, want service %q, exe %q", id, want, filepath.Base(exe))
	}
	checkNoSecrets(t, id, "-test.")
	// The labels are the caller's: changing them changes no later answer.
	id.Labels[LabelService] = "changed"
	if again := resolve(t, r, os.Getpid()); again.Labels[LabelService] != want {
		t.Errorf("a caller's change reached the cache: %v", again.Labels)
	}
	if s := r.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Errorf("stats %+v, want 1 miss then 1 hit", s)
	}
}

// TestNewBinaryIsNewVersion: a program rebuilt at the same path is a new
// version, for a new process and for the same process after execve (same
// PID, same start time).
func TestNewBinaryIsNewVersion(t *testing.T) {
	out := filepath.Join(t.TempDir(), "api-server")
	buildGo(t, out, "one")
	v1 := goBuildID(t, out)
	r := newResolver(t, Options{})
	p1 := startProg(t, out)
	id1 := resolve(t, r, p1.pid())
	if id1.Version != v1 || id1.Labels[LabelExe] != "api-server" {
		t.Fatalf("first build: %+v, want version %s", id1, v1)
	}

	buildGo(t, out, "two")
	v2 := goBuildID(t, out)
	if v1 == v2 {
		t.Fatalf("two sources, one build ID %s", v1)
	}
	p2 := startProg(t, out)
	if id := resolve(t, r, p2.pid()); id.Version != v2 {
		t.Errorf("second build, new process: version %q, want %q", id.Version, v2)
	}
	// The first process still runs the first build.
	if id := resolve(t, r, p1.pid()); id.Version != v1 {
		t.Errorf("first process: version %q, want %q", id.Version, v1)
	}
	// It execs the path: same PID and start time, the new file.
	fmt.Fprintln(p1.in, "exec")
	if ready := p1.waitReady(t); ready != "ready two" {
		t.Fatalf("after exec: %q", ready)
	}
	if id := resolve(t, r, p1.pid()); id.Version != v2 {
		t.Errorf("after execve of the new build: version %q, want %q", id.Version, v2)
	}
	if s := r.Stats(); s.Misses != 3 || s.Hits != 1 || s.Executables != 2 {
		t.Errorf("stats %+v, want 3 misses (two processes, one exec), 1 hit, 2 executables", s)
	}
}

// TestKernelThread resolves kthreadd (PID 2).
func TestKernelThread(t *testing.T) {
	if b, err := os.ReadFile("/proc/2/comm"); err != nil || strings.TrimSpace(string(b)) != "kthreadd" {
		t.Skipf("PID 2 is not kthreadd here (%q, %v): another PID namespace", b, err)
	}
	id := resolve(t, newResolver(t, Options{}), 2)
	if id.Service != KernelService {
		t.Errorf("kthreadd: service %q, want %q", id.Service, KernelService)
	}
	if notes, err := os.ReadFile("/sys/kernel/notes"); err == nil {
		raw, err := hex.DecodeString(id.Version)
		if err != nil || len(raw) < 8 || !strings.Contains(string(notes), string(raw)) {
			t.Errorf("version %q is not the kernel's build ID from /sys/kernel/notes", id.Version)
		}
	}
	if _, ok := id.Labels[LabelExe]; ok {
		t.Errorf("a kernel thread has an exe label: %v", id.Labels)
	}
	if id := resolve(t, newResolver(t, Options{KernelThreadsByName: true}), 2); id.Service != "kthreadd" {
		t.Errorf("by name: service %q, want kthreadd", id.Service)
	}
}

// TestRulesComeFirst: the first matching rule names the service, its
// version replaces the build ID (kept as build_id), and a rule on the
// command line never puts it in a label.
func TestRulesComeFirst(t *testing.T) {
	out := filepath.Join(t.TempDir(), "billing")
	buildGo(t, out, "rules")
	buildID := goBuildID(t, out)
	p := startProg(t, out, "--listen=:8080", "--token=hunter2")
	for _, tc := range []struct {
		name             string
		rules            []Rule
		service, version string
	}{
		{"none", nil, "billing", buildID},
		{"exe glob", []Rule{{Service: "payments", Exe: filepath.Dir(out) + "/bill*"}}, "payments", buildID},
		{"first wins", []Rule{
			{Service: "nothing", Exe: "/nowhere/*"},
			{Service: "by-cmdline", Version: "v1.2.3", Cmdline: `--token=\S+`},
			{Service: "by-exe", Exe: "billing"},
		}, "by-cmdline", "v1.2.3"},
		{"all fields must match", []Rule{
			{Service: "wrong", Exe: "billing", Cmdline: "--listen=:9090"},
			{Service: "right", Exe: "billing", Cmdline: "--listen=:8080"},
		}, "right", buildID},
		{"cgroup of the test", []Rule{{Service: "here", Cgroup: "/"}}, "here", buildID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := resolve(t, newResolver(t, Options{Rules: tc.rules}), p.pid())
			if id.Service != tc.service || id.Version != tc.version || id.Labels[LabelBuildID] != buildID {
				t.Errorf("%+v, want service %q version %q build_id %q", id, tc.service, tc.version, buildID)
			}
			checkNoSecrets(t, id, "hunter2", "8080")
		})
	}
	if _, err := New(Options{Rules: []Rule{{Service: "ok", Exe: "x"}, {Service: "bad", Cmdline: "("}}}); !errors.Is(err, ErrBadRule) || !strings.Contains(err.Error(), "rule 2") {
		t.Errorf("a bad second rule: %v, want ErrBadRule naming rule 2", err)
	}
	// A reload forgets what the old rules decided.
	r := newResolver(t, Options{})
	if id := resolve(t, r, p.pid()); id.Service != "billing" {
		t.Fatalf("before reload: %q", id.Service)
	}
	if err := r.SetRules([]Rule{{Service: "reloaded", Exe: "billing"}}); err != nil {
		t.Fatal(err)
	}
	if id := resolve(t, r, p.pid()); id.Service != "reloaded" {
		t.Errorf("after reload: %q, want reloaded", id.Service)
	}
}

// TestGoneProcess: a PID that exited is ErrNoProcess.
func TestGoneProcess(t *testing.T) {
	out := filepath.Join(t.TempDir(), "gone")
	buildGo(t, out, "gone")
	p := startProg(t, out)
	pid := p.pid()
	r := newResolver(t, Options{})
	alive, err := r.Resolve(pid)
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	if _, err := newResolver(t, Options{}).Resolve(pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("Resolve of exited PID %d: %v, want ErrNoProcess", pid, err)
	}
	// Resolved while alive, it keeps its identity once gone: the window
	// it exits in still has its samples.
	if id, err := r.Resolve(pid); err != nil || id.Service != alive.Service || id.Version != alive.Version || id.Version == UnknownVersion {
		t.Errorf("exited PID %d resolved before: %+v, %v; want %+v", pid, id, err, alive)
	}
	r.Forget(func(int) bool { return false })
	if _, err := r.Resolve(pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("exited and forgotten PID %d: %v, want ErrNoProcess", pid, err)
	}
}

// fakeProc writes a /proc/PID tree under root: stat with the start time,
// cgroup, and exe a link to a real file. Like procfs, it makes the
// directory anew, with another inode than the one it replaces: the new
// tree is made beside the old one before it takes its place.
func fakeProc(t testing.TB, root string, pid int, comm string, start uint64, exe, cgroup string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	fresh, err := os.MkdirTemp(root, "new-")
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(fresh, dir); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (%s) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, comm, start)
	for name, data := range map[string]string{"stat": stat, "cgroup": cgroup, "cmdline": comm + "\x00"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if exe != "" {
		if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
	}
}

// oneFakeProcess makes a fake /proc of one process, pid, started at tick
// 1000 in the systemd unit UNIT.service, and a Resolver on it that has
// resolved it once, to UNIT.
func oneFakeProcess(t *testing.T, pid int, unit string) (root, exe string, r *Resolver) {
	t.Helper()
	root = t.TempDir()
	exe, _ = os.Executable()
	fakeProc(t, root, pid, "worker", 1000, exe, "0::/system.slice/"+unit+".service\n")
	r = newResolver(t, Options{Env: collect.Env{ProcFS: root}})
	if id := resolve(t, r, pid); id.Service != unit {
		t.Fatalf("first look at pid %d: %+v, want service %s", pid, id, unit)
	}
	return root, exe, r
}

// TestPIDReuseByStartTime: the same PID with another start time is
// another process, even with the same executable.
func TestPIDReuseByStartTime(t *testing.T) {
	root, exe, r := oneFakeProcess(t, 4242, "old")
	// The cache answers for the same incarnation even if the files change
	// under it (a process moved between cgroups keeps its identity).
	fakeProc(t, root, 4242, "worker", 1000, exe, "0::/system.slice/moved.service\n")
	if id := resolve(t, r, 4242); id.Service != "old" {
		t.Errorf("same incarnation: %q, want the cached old", id.Service)
	}
	fakeProc(t, root, 4242, "worker", 2000, exe, "0::/system.slice/new.service\n")
	if id := resolve(t, r, 4242); id.Service != "new" {
		t.Errorf("PID reused: service %q, want new", id.Service)
	}
}

// TestSameIncarnationByInode: while /proc/PID is the same directory
// (inode) and its executable the same file, Resolve answers from the
// cache without reading the stat file, which here has become unreadable
// garbage that the long way would fail on.
func TestSameIncarnationByInode(t *testing.T) {
	root, exe, r := oneFakeProcess(t, 4243, "kept")
	if err := os.WriteFile(filepath.Join(root, "4243", "stat"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if id, err := r.Resolve(4243); err != nil || id.Service != "kept" {
		t.Errorf("same directory and executable: %+v, %v; want the cached kept", id, err)
	}
	// A new directory is the long way: the stat is read, and fails.
	fakeProc(t, root, 4243, "worker", 1000, exe, "0::/system.slice/kept.service\n")
	if err := os.WriteFile(filepath.Join(root, "4243", "stat"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(4243); err == nil {
		t.Error("a new /proc/PID with an unreadable stat resolved without reading it")
	}
}

// TestPIDReuseLive gets a real PID back (ns_last_pid, root in this PID
// namespace) for another program: it is resolved anew.
func TestPIDReuseLive(t *testing.T) {
	const lastPID = "/proc/sys/kernel/ns_last_pid"
	dir := t.TempDir()
	a, b := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	buildGo(t, a, "a")
	buildGo(t, b, "b")
	r := newResolver(t, Options{})
	pa := startProg(t, a)
	pid := pa.pid()
	if id := resolve(t, r, pid); id.Service != "first" {
		t.Fatalf("first: %+v", id)
	}
	pa.stop()
	for try := 0; try < 50; try++ {
		if err := os.WriteFile(lastPID, []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
			t.Skipf("cannot set %s (needs CAP_SYS_ADMIN in this PID namespace): %v", lastPID, err)
		}
		pb := startProg(t, b)
		if pb.pid() != pid {
			pb.stop() // another fork took it first; try again
			continue
		}
		if id := resolve(t, r, pid); id.Service != "second" || id.Version != goBuildID(t, b) {
			t.Errorf("PID %d reused by second: %+v", pid, id)
		}
		return
	}
	t.Skipf("PID %d never came back in 50 tries (a busy host)", pid)
}

// TestProcessCacheBound resolves 3x MaxProcesses PIDs: the cache holds
// MaxProcesses, evicts the rest, and an evicted PID resolves again.
func TestProcessCacheBound(t *testing.T) {
	const max, n = 100, 300
	root := t.TempDir()
	exe, _ := os.Executable()
	for pid := 1000; pid < 1000+n; pid++ {
		fakeProc(t, root, pid, "churn", uint64(pid), exe, "0::/user.slice/user-0.slice/session-1.scope\n")
	}
	r := newResolver(t, Options{Env: collect.Env{ProcFS: root}, MaxProcesses: max, MaxExecutables: 1})
	for pid := 1000; pid < 1000+n; pid++ {
		resolve(t, r, pid)
		if s := r.Stats(); s.Processes > max || s.Executables > 1 {
			t.Fatalf("after %d PIDs: %+v, over the bounds %d and 1", pid-999, s, max)
		}
	}
	if s := r.Stats(); s.Processes != max || s.Evicted != n-max || s.Misses != n {
		t.Errorf("stats %+v, want %d entries, %d evicted, %d misses", s, max, n-max, n)
	}
	resolve(t, r, 1000+n-1) // the most recent: a hit
	resolve(t, r, 1000)     // the oldest: evicted, a miss
	if s := r.Stats(); s.Hits != 1 || s.Misses != n+1 {
		t.Errorf("stats %+v, want 1 hit and %d misses", s, n+1)
	}
	if got := r.Forget(func(pid int) bool { return pid%2 == 0 }); got != max/2 {
		t.Errorf("Forget dropped %d, want %d", got, max/2)
	}
	if s := r.Stats(); s.Processes != max/2 || s.Forgotten != max/2 {
		t.Errorf("after Forget: %+v", s)
	}
}

// TestForgetExited: Forget with the kernel's word drops an exited
// process and keeps a live one.
func TestForgetExited(t *testing.T) {
	out := filepath.Join(t.TempDir(), "short")
	buildGo(t, out, "short")
	r := newResolver(t, Options{})
	p := startProg(t, out)
	resolve(t, r, p.pid())
	resolve(t, r, os.Getpid())
	p.stop()
	alive := func(pid int) bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return err == nil
	}
	if n := r.Forget(alive); n != 1 {
		t.Errorf("Forget dropped %d, want the one exited", n)
	}
	if s := r.Stats(); s.Processes != 1 {
		t.Errorf("%d entries left, want this process's", s.Processes)
	}
}

func randomName(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("perfhound-test-%d-%x", os.Getpid(), b)
}

func TestParseStat(t *testing.T) {
	// A comm with ") " and spaces in it (prctl PR_SET_NAME allows any).
	st, err := parseStat("77 (a) b (c) S 1 1 1 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 18 0 0 18446744073709551615\n")
	if err != nil || st.comm != "a) b (c" || !st.kthread || st.start != 18 {
		t.Errorf("%+v, %v", st, err)
	}
	for _, bad := range []string{"", "77 a S 1", "77 (a) S 1 1 1 0 -1 x 0 0 0 0 0 1 0 0 20 0 1 0 18", "77 (a) S 1 1 1 0 -1 0 0 0 0 0 0 1 0 0 20 0 1 0"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

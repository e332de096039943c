package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// runWithin is run that fails the test if it does not return in a minute.
func runWithin(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &errb) }()
	select {
	case code = <-done:
		return code, out.String(), errb.String()
	case <-time.After(time.Minute):
		t.Fatalf("perfhound %q did not return in a minute", args)
		return 0, "", ""
	}
}

// copyObservation copies a recorded observation to a temporary directory.
func copyObservation(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "obs")
	if err := os.CopyFS(dir, os.DirFS(serveFixture)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// obsWithFIFO copies a recorded observation and puts a FIFO in the place
// of one of its files.
func obsWithFIFO(t *testing.T, name string) (dir, fifo string) {
	t.Helper()
	dir = copyObservation(t)
	fifo = filepath.Join(dir, name)
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, fifo
}

// A FIFO in an observation used to hang analyze, compare and serve
// forever (serve then ignoring SIGINT and SIGTERM); it is refused.
func TestObservationWithFIFO(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	profiles, err := filepath.Glob(filepath.Join(serveFixture, "profiles", "*"))
	if err != nil || len(profiles) == 0 {
		t.Fatalf("no profiles in %s", serveFixture)
	}
	for _, name := range []string{"observation.json", filepath.Join("profiles", filepath.Base(profiles[0]))} {
		dir, fifo := obsWithFIFO(t, name)
		for _, args := range [][]string{
			{"analyze", dir},
			{"serve", "--listen", "127.0.0.1:0", dir},
			{"compare", dir, serveFixture},
		} {
			code, _, stderr := runWithin(t, args...)
			want := fifo + ": named pipe (FIFO), not a regular file"
			if code != exitBadInput || !strings.Contains(stderr, want) {
				t.Errorf("perfhound %q: exit %d, stderr %q; want %d and %q", args, code, stderr, exitBadInput, want)
			}
		}
	}
}

// compare on a directory given as a symlink, holding symlinked runs and a
// FIFO: every run is compared, the FIFO is a note.
func TestCompareSymlinksAndFIFO(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(root, "store")
	for _, side := range []string{"base", "head"} {
		for i := range 6 {
			ns := 1000 + i
			if side == "head" {
				ns = 2000 + i
			}
			path := filepath.Join(root, side, "run-"+string(rune('a'+i))+".txt")
			if i%2 == 1 { // every other run is a symlink into a store
				path = filepath.Join(store, side+"-"+string(rune('a'+i))+".txt")
				if err := os.MkdirAll(filepath.Join(root, side), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(path, filepath.Join(root, side, "run-"+string(rune('a'+i))+".txt")); err != nil {
					t.Fatal(err)
				}
			}
			writeFile(t, path, []byte("pkg: example.com/x\nBenchmarkX-2 1000 "+strconv.Itoa(ns)+" ns/op\n"))
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "base", "run-z.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "base"), filepath.Join(root, "base-link")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runWithin(t, "compare", "--format", "markdown", filepath.Join(root, "base-link"), filepath.Join(root, "head"))
	if code != exitFindings {
		t.Fatalf("exit %d, want %d (a doubling)\n%s%s", code, exitFindings, stdout, stderr)
	}
	if strings.Count(stdout, "(6 benchmark files)") != 2 || !strings.Contains(stdout, "base-link/run-z.txt: named pipe (FIFO), not a regular file, skipped") {
		t.Errorf("want 6 runs a side and the FIFO in the notes:\n%s", stdout)
	}
}

// serve installs its SIGINT and SIGTERM handler before loading, so a load
// that takes long (or blocked, as a FIFO did) must still end on either.
func TestServeExitsOnSignalWhileLoading(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			defer close(release)
			loadForServe = func(string, *profdecode.Budget) (*observation.Observation, error) {
				close(started)
				<-release // loads for as long as the test lasts
				return nil, os.ErrDeadlineExceeded
			}
			defer func() { loadForServe = loadObservation }()
			var out, errb syncBuffer
			done := make(chan int, 1)
			go func() { done <- run([]string{"serve", "--listen", "127.0.0.1:0", serveFixture}, &out, &errb) }()
			select {
			case <-started:
			case <-time.After(time.Minute):
				t.Fatal("serve did not start loading in a minute")
			}
			// The handler is installed: the signal goes to serve, not to
			// the test process.
			if err := syscall.Kill(os.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != exitOK || !strings.Contains(errb.String(), "interrupted while loading") {
					t.Errorf("exit %d, stderr %q; want 0 and the interrupt", code, errb.String())
				}
			case <-time.After(time.Minute):
				t.Fatalf("serve still loading a minute after %v", sig)
			}
		})
	}
}

// A profile of a few KB whose parse takes hundreds of MB is refused under
// --max-memory-mb, by name, with how much it needs and how to raise it;
// the same for analyze and serve on an observation holding it.
func TestMaxMemory(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	root := t.TempDir()
	costly := testprof.Gzip(testprof.Deep(20_000, 1_000)) // 53 KB, about 480 MB parsed
	base := writeFile(t, filepath.Join(root, "base", "cpu.pb.gz"), costly)
	writeFile(t, filepath.Join(root, "head", "cpu.pb.gz"), costly)
	code, _, stderr := runWithin(t, "compare", "--max-memory-mb", "64", filepath.Join(root, "base"), filepath.Join(root, "head"))
	for _, want := range []string{base + ": over the memory budget: parsing needs about 4", "of 64.0 MiB", "--max-memory-mb 64: raise it"} {
		if code != exitBadInput || !strings.Contains(stderr, want) {
			t.Errorf("compare: exit %d, stderr %q; want %d and %q", code, stderr, exitBadInput, want)
		}
	}

	dir := copyObservation(t)
	profiles, _ := filepath.Glob(filepath.Join(dir, "profiles", "*"))
	writeFile(t, profiles[0], costly)
	for _, args := range [][]string{
		{"analyze", "--max-memory-mb", "64", dir},
		{"serve", "--max-memory-mb", "64", "--listen", "127.0.0.1:0", dir},
		{"compare", "--max-memory-mb", "64", dir, dir},
	} {
		code, _, stderr := runWithin(t, args...)
		if code != exitBadInput || !strings.Contains(stderr, profiles[0]+": over the memory budget") || !strings.Contains(stderr, "--max-memory-mb 64") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
	for _, cmd := range []string{"compare", "analyze", "serve"} {
		code, _, stderr := runWithin(t, cmd, "--max-memory-mb", "0", dir, dir)
		if cmd != "compare" {
			code, _, stderr = runWithin(t, cmd, "--max-memory-mb", "0", dir)
		}
		if code != exitBadInput || !strings.Contains(stderr, "--max-memory-mb must be positive") {
			t.Errorf("%s --max-memory-mb 0: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}

// The default budget is a quarter of what this process may use, and at
// most 2 GiB; under an address-space rlimit below the machine's memory it
// follows the rlimit.
func TestDefaultBudget(t *testing.T) {
	if b := defaultBudget(); b <= 0 || b > 2<<30 || b > memoryLimit()/4 {
		t.Errorf("default budget %d, memory limit %d", b, memoryLimit())
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_AS, &rl)
	// Half the RAM: below the machine's memory, far above this process's
	// address space (a Go test maps a GB or two).
	half := si.Totalram * uint64(si.Unit) / 2
	if half < 8<<30 || rl.Cur < half {
		t.Skipf("%d bytes of RAM, address space limited to %d: nothing to lower", half*2, rl.Cur)
	}
	lowered := syscall.Rlimit{Cur: half, Max: rl.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lowered); err != nil {
		t.Fatal(err)
	}
	if got := memoryLimit(); got > int64(half) {
		t.Errorf("memory limit %d above the rlimit %d", got, half)
	}
}

// The budget sets the Go runtime's soft memory limit for the command and
// puts the previous one back after; GOMEMLIMIT, when set, wins.
func TestMemoryFlagSoftLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	m := memoryFlag{mb: 100}
	_, restore, err := m.budget()
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != softLimit(100<<20) || got < 100<<20 {
		t.Errorf("soft limit %d during the command, want %d", got, softLimit(100<<20))
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("soft limit %d after, want %d back", got, before)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	_, restore, _ = m.budget()
	defer restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("soft limit %d with GOMEMLIMIT set, want it untouched (%d)", got, before)
	}
}

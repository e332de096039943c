package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
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

// obsWithFIFO copies a recorded observation and puts a FIFO in the place
// of one of its files.
func obsWithFIFO(t *testing.T, name string) (dir, fifo string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "obs")
	if err := os.CopyFS(dir, os.DirFS(serveFixture)); err != nil {
		t.Fatal(err)
	}
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
			loadForServe = func(string) (*observation.Observation, error) {
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

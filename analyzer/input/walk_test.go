package input

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin is Load that fails the test if it does not return in a
// minute: what these tests check used to block forever.
func loadWithin(t *testing.T, paths []string) (*Set, error) {
	t.Helper()
	type result struct {
		set *Set
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Load(paths, DefaultLimits)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.set, r.err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%q) blocked for a minute", paths)
		return nil, nil
	}
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// benchRun is one run of real go test -bench output, told apart by its value.
func benchRun(i int) []byte {
	return []byte(fmt.Sprintf("goos: linux\npkg: example.com/smoke\nBenchmarkHash-2   \t   10000\t     %d ns/op\nPASS\n", 20000+i))
}

func hasNote(notes []string, path, says string) bool {
	for _, n := range notes {
		if strings.HasPrefix(n, path+": ") && strings.Contains(n, says) {
			return true
		}
	}
	return false
}

// A FIFO with no writer used to block open(2) forever, whether named or
// found in a directory; a socket and a device are refused the same way.
func TestLoadRefusesNamedFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := mkfifo(t, filepath.Join(dir, "bench.txt"))
	for _, p := range []string{fifo, "/dev/zero", "/proc/self/stat"} {
		_, err := loadWithin(t, []string{p})
		var fe *FileError
		if !errors.As(err, &fe) || fe.File != p || !errors.Is(err, ErrNotRegular) {
			t.Errorf("Load(%s) = %v, want a *FileError naming it, ErrNotRegular", p, err)
		}
	}
	if _, err := loadWithin(t, []string{fifo}); err == nil || err.Error() != fifo+": named pipe (FIFO), not a regular file" {
		t.Errorf("error %v does not say what the file is", err)
	}
}

func TestLoadSkipsFIFOAndSocketInDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "bench-1.txt", benchRun(1))
	fifo := mkfifo(t, filepath.Join(dir, "bench-2.txt"))
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	set, err := loadWithin(t, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Bench) != 1 {
		t.Errorf("results = %d, want 1", len(set.Bench))
	}
	if !hasNote(set.Skipped, fifo, "named pipe (FIFO)") || !hasNote(set.Skipped, sock, "socket") || len(set.Skipped) != 2 {
		t.Errorf("skipped = %q, want the FIFO and the socket", set.Skipped)
	}
	// A directory holding only a FIFO has no input, and says why.
	only := t.TempDir()
	mkfifo(t, filepath.Join(only, "fifo"))
	if _, err := loadWithin(t, []string{only}); !errors.Is(err, ErrNoInputs) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("Load of a directory of a FIFO = %v", err)
	}
}

// Symlinks used to be dropped without a word: a directory given as a
// symlink had no input files, and linked runs inside a directory were left
// out (5 of 10 runs compared). They are followed, a symlink loop ends, and
// a file or directory reached twice is read once, with a note.
func TestLoadFollowsSymlinks(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(root, "store")
	base := filepath.Join(root, "base")
	for i := range 10 {
		if i < 5 {
			write(t, base, fmt.Sprintf("run-%02d.txt", i), benchRun(i))
		} else {
			target := write(t, store, fmt.Sprintf("run-%02d.txt", i), benchRun(i))
			symlink(t, target, filepath.Join(base, fmt.Sprintf("run-%02d.txt", i)))
		}
	}
	linkedDir := symlink(t, base, filepath.Join(root, "base-link"))

	set, err := loadWithin(t, []string{linkedDir})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Bench) != 10 || len(set.Skipped) != 0 {
		t.Errorf("through a symlinked directory: %d results, skipped %q; want 10 and none", len(set.Bench), set.Skipped)
	}

	// A loop back to the top, a symlink to itself, a dangling one, a second
	// name for a run, a symlinked subdirectory.
	symlink(t, ".", filepath.Join(base, "loop"))
	symlink(t, "self", filepath.Join(base, "self"))
	symlink(t, filepath.Join(root, "gone"), filepath.Join(base, "dangling"))
	symlink(t, "run-00.txt", filepath.Join(base, "zz-again.txt"))
	sub := filepath.Join(root, "more")
	write(t, sub, "run-10.txt", benchRun(10))
	symlink(t, sub, filepath.Join(base, "more"))
	symlink(t, base, filepath.Join(sub, "up")) // a cycle through two directories

	set, err = loadWithin(t, []string{base})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Bench) != 11 {
		t.Errorf("results = %d, want 11 (each run once)", len(set.Bench))
	}
	for _, want := range []struct{ path, says string }{
		{filepath.Join(base, "loop"), "again"},
		{filepath.Join(base, "more", "up"), "again"},
		{filepath.Join(base, "self"), "broken symlink (a symlink loop)"},
		{filepath.Join(base, "dangling"), "broken symlink (no such file or directory)"},
		{filepath.Join(base, "zz-again.txt"), "the same file as " + filepath.Join(base, "run-00.txt")},
	} {
		if !hasNote(set.Skipped, want.path, want.says) {
			t.Errorf("skipped = %q, want %s: %s", set.Skipped, want.path, want.says)
		}
	}
	if len(set.Skipped) != 5 {
		t.Errorf("skipped = %q, want 5 notes", set.Skipped)
	}
}

// A file named directly through a symlink is read.
func TestLoadNamedSymlinkToFile(t *testing.T) {
	dir := t.TempDir()
	target := write(t, dir, "run.txt", benchRun(1))
	set, err := loadWithin(t, []string{symlink(t, target, filepath.Join(dir, "link"))})
	if err != nil || len(set.Bench) != 1 {
		t.Fatalf("Load of a symlink to a file = %v, %v", set, err)
	}
}

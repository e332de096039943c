package regfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// within fails the test if f does not return in a minute: what it tests
// used to block forever.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("blocked for a minute")
	}
}

func TestReadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for path, want := range map[string]string{
		fifo:                        "named pipe (FIFO), not a regular file",
		sock:                        "socket, not a regular file",
		"/dev/zero":                 "character device, not a regular file",
		"/proc/self/stat":           "file of /proc, not a regular file",
		"/sys/kernel/uevent_seqnum": "file of /sys, not a regular file",
		dir:                         "directory, not a regular file",
	} {
		within(t, func() {
			_, _, err := Read(path, 1<<20, nil)
			if !errors.Is(err, ErrNotRegular) || err.Error() != want {
				t.Errorf("Read(%s) = %v, want %q", path, err, want)
			}
		})
	}
}

func TestReadCapsRegularFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	budget := profdecode.NewBudget(1 << 20)
	b, charged, err := Read(path, 1000, budget)
	if err != nil || len(b) != 1000 || charged != 1001 || budget.Used() != 1001 {
		t.Fatalf("Read at the cap = %d bytes, %d charged, %v; want 1000, 1001 (the size and a byte to see the end)", len(b), charged, err)
	}
	if _, _, err := Read(path, 999, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read past the cap = %v, want ErrTooLarge", err)
	}
	if _, _, err := Read(path, 1000, profdecode.NewBudget(1000)); !errors.Is(err, profdecode.ErrOverBudget) {
		t.Fatalf("Read past the budget = %v, want ErrOverBudget", err)
	}
	if _, _, err := Read(filepath.Join(t.TempDir(), "none"), 10, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Read of a missing file = %v", err)
	}
}

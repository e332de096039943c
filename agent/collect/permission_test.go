package collect

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// asNobody runs fn on a thread whose file-system UID is nobody's, so that
// permission checks fail even when the test runs as root: setfsuid(2) to a
// non-zero UID also drops the capabilities that bypass file permissions.
// The thread stays locked and exits with its goroutine, so the change
// never reaches another goroutine.
func asNobody(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan bool)
	go func() {
		runtime.LockOSThread()
		if os.Geteuid() == 0 {
			syscall.Syscall(syscall.SYS_SETFSUID, 65534, 0, 0)
			if cur, _, _ := syscall.Syscall(syscall.SYS_SETFSUID, 65534, 0, 0); cur != 65534 {
				done <- false
				return
			}
		}
		fn()
		done <- true
	}()
	if !<-done {
		t.Skip("cannot change the file-system UID")
	}
}

func TestProcessUnreadable(t *testing.T) {
	// The tree must be reachable by nobody: t.TempDir is mode 0700.
	root, err := os.MkdirTemp("", "collect-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tree := copyTree(t, nil)
	if err := os.Rename(tree, filepath.Join(root, "tree")); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, filepath.Join(root, "tree"))
	if err := os.Chmod(filepath.Dir(f.link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(filepath.Dir(f.link)), 0o755); err != nil {
		t.Fatal(err)
	}
	pidDir := filepath.Join(root, "tree", "t0", "proc", strconv.Itoa(f.pid))
	ioS := makeSampler(t, f, "process.io")
	fdS := makeSampler(t, f, "process.fds")
	if err := os.Chmod(filepath.Join(pidDir, "io"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(pidDir, "fd"), 0); err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	var ioErr, fdErr error
	asNobody(t, func() {
		for i := 0; i < 2; i++ {
			ioErr = ioS.Sample(context.Background(), rec)
			fdErr = fdS.Sample(context.Background(), rec)
		}
	})
	if ioErr != nil || fdErr != nil {
		t.Fatalf("errors instead of missing: io %v, fds %v", ioErr, fdErr)
	}
	m := rec.MissingList()
	if len(m) != 2 {
		t.Fatalf("missing = %+v, want process.io and process.fds once each", m)
	}
	for _, x := range m {
		if !strings.Contains(x.Reason, "permission denied") || !strings.Contains(x.Reason, "CAP_SYS_PTRACE") {
			t.Errorf("%s: reason %q", x.Signal, x.Reason)
		}
	}
	if len(rec.Series()) != 0 {
		t.Errorf("series recorded from unreadable files: %d", len(rec.Series()))
	}
}

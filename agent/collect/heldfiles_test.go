package collect

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestHeldFilesReadAfresh holds a live process's /proc/PID/stat open and
// reads it again and again: each read must see the CPU time move on (a
// pread at 0 regenerates a procfs file), and once the process has exited
// and been reaped the held file must fail rather than repeat its last
// content, and be let go.
func TestHeldFilesReadAfresh(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	spin := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := spin.Start(); err != nil {
		t.Fatal(err)
	}
	pid := spin.Process.Pid
	reaped := false
	defer func() {
		if !reaped {
			spin.Process.Kill()
			spin.Wait()
		}
	}()
	env := Env{}.withDefaults()
	h := newHeldFiles()
	defer h.Close()
	ticks := func() (uint64, bool) {
		b, err := h.read(env, pid, "stat")
		if err != nil {
			return 0, false
		}
		st, err := parseProcStat("stat", b)
		if err != nil {
			t.Fatal(err)
		}
		return st.utime + st.stime, true
	}
	first, ok := ticks()
	if !ok {
		t.Fatal("the spinning process's stat cannot be read")
	}
	if len(h.fds) != 1 {
		t.Fatalf("%d files held after a read, want 1", len(h.fds))
	}
	// The shell spins on a CPU: its CPU time moves within a few clock
	// ticks of CPU it gets. The deadline is for a loaded machine.
	for deadline := time.Now().Add(time.Minute); ; {
		if now, _ := ticks(); now > first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a held stat file read %d ticks for a minute of a spinning process", first)
		}
		time.Sleep(20 * time.Millisecond)
	}

	spin.Process.Kill()
	spin.Wait()
	reaped = true
	if _, ok := ticks(); ok {
		t.Error("the stat file of a reaped process still reads")
	}
	if len(h.fds) != 0 {
		t.Errorf("%d files held for a process that is gone", len(h.fds))
	}
}

// TestHeldFilesKeep closes the files of processes no longer listed, and
// reads past maxHeldFiles without holding more.
func TestHeldFilesKeep(t *testing.T) {
	proc := t.TempDir()
	for pid := 1; pid <= 3; pid++ {
		dir := proc + "/" + strconv.Itoa(pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/stat", []byte(strconv.Itoa(pid)+" (x) S"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := Env{ProcFS: proc}
	h := newHeldFiles()
	defer h.Close()
	h.max = 2
	for pid := 1; pid <= 3; pid++ {
		b, err := h.read(env, pid, "stat")
		if err != nil || string(b) != strconv.Itoa(pid)+" (x) S" {
			t.Fatalf("pid %d: %q, %v", pid, b, err)
		}
	}
	if len(h.fds) != 2 {
		t.Errorf("%d files held, want the bound of 2", len(h.fds))
	}
	// Rewritten in place, as procfs regenerates it: read afresh.
	if err := os.WriteFile(proc+"/2/stat", []byte("2 (y) R"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := h.read(env, 2, "stat"); string(b) != "2 (y) R" {
		t.Errorf("read %q after a rewrite, want the new content", b)
	}
	h.keep(func(pid int) bool { return pid == 2 })
	if len(h.fds) != 1 {
		t.Errorf("%d files held after keeping one process's", len(h.fds))
	}
	h.Close()
	if len(h.fds) != 0 {
		t.Errorf("%d files held after Close", len(h.fds))
	}
	var nilSet *heldFiles
	if b, err := nilSet.read(env, 3, "stat"); err != nil || string(b) != "3 (x) S" {
		t.Errorf("a nil set reads %q, %v", b, err)
	}
}

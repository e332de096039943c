//go:build amd64

package ehframe_test

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/perfhound/perfhound/bpf/ehframe"
	"github.com/perfhound/perfhound/bpf/ehframe/ehtest"
)

// TestWalkLive unwinds a real, stripped process built without frame
// pointers, stopped by ptrace inside libc, through a signal handler: the
// walk must reach _start by the tables alone, through every frame of the
// subject's call chain, in order, and through libc (built without frame
// pointers too) on both sides of the signal.
func TestWalkLive(t *testing.T) {
	named, stripped := ehtest.Build(t, t.TempDir())
	pid := ehtest.Start(t, stripped, "block").Process.Pid

	regs, err := stopAndReadRegs(pid)
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("ptrace: %v (needs the same user and ptrace_scope <= 1, or CAP_SYS_PTRACE)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.PtraceDetach(pid)
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	read := func(addr uint64) (uint64, bool) {
		var b [8]byte
		if _, err := mem.ReadAt(b[:], int64(addr)); err != nil {
			return 0, false
		}
		return binary.LittleEndian.Uint64(b[:]), true
	}
	maps := ehtest.ReadMappings(t, pid)
	tables := map[string]*ehframe.Table{}
	find := func(pc uint64) (ehframe.Object, bool) {
		m, ok := maps.Find(pc)
		if !ok {
			return ehframe.Object{}, false
		}
		tab, ok := tables[m.Path]
		if !ok {
			ef, err := elf.Open(m.Path)
			if err != nil {
				t.Fatal(err)
			}
			if tab, err = ehframe.CompileELF(ef); err != nil {
				t.Fatalf("%s: %v", m.Path, err)
			}
			ef.Close()
			tables[m.Path] = tab
		}
		return ehframe.Object{Table: tab, Bias: m.Bias}, true
	}
	pcs, cut := ehframe.Walk(regs, find, read, 128)

	ours, others := ehtest.Chain(pcs, maps, stripped, ehtest.ReadSymbols(t, named))
	t.Logf("%d frames, %v: the subject's %s, %d others", len(pcs), cut, strings.Join(ours, " "), others)
	if cut != ehframe.Complete {
		t.Errorf("walk ended %v after %d frames, want complete", cut, len(pcs))
	}
	want := []string{"blocker", "handler", "block_alloca", "block_outer", "main", "_start"}
	if strings.Join(ours, " ") != strings.Join(want, " ") {
		t.Errorf("the subject's frames, innermost first: %v, want %v", ours, want)
	}
	// pause, the signal trampoline, raise's internals, and the start of
	// main: libc is walked by its tables too.
	if others < 4 {
		t.Errorf("%d frames in libc, want pause, __restore_rt, raise and __libc_start_main's at least", others)
	}
}

// stopAndReadRegs attaches to pid with ptrace, waits until it stops, and
// reads its registers. ptrace's requests must all come from the thread
// that attached: the goroutine stays on it until the caller detaches.
func stopAndReadRegs(pid int) (ehframe.Regs, error) {
	runtime.LockOSThread()
	if err := syscall.PtraceAttach(pid); err != nil {
		runtime.UnlockOSThread()
		return ehframe.Regs{}, err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return ehframe.Regs{}, err
	}
	var r syscall.PtraceRegs
	if err := syscall.PtraceGetRegs(pid, &r); err != nil {
		return ehframe.Regs{}, err
	}
	return ehframe.Regs{PC: r.Rip, SP: r.Rsp, BP: r.Rbp}, nil
}

//go:build amd64

package ehframe

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestWalkLive unwinds a real, stripped process built without frame
// pointers, stopped by ptrace inside libc, through a signal handler: the
// walk must reach _start by the tables alone, through every frame of the
// fixture's call chain, in order, and through libc (built without frame
// pointers too) on both sides of the signal.
func TestWalkLive(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: no subject to walk")
	}
	if _, err := exec.LookPath("strip"); err != nil {
		t.Skip("strip (binutils) not installed")
	}
	named := buildFixture(t)[0]
	stripped := filepath.Join(t.TempDir(), "frames-stripped")
	if b, err := exec.Command("strip", "-o", stripped, named).CombinedOutput(); err != nil {
		t.Fatalf("strip: %v\n%s", err, b)
	}

	cmd := exec.Command(stripped, "block")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("subject said %q (%v)", line, err)
	}
	pid := cmd.Process.Pid

	regs, err := stopAndReadRegs(pid)
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("ptrace: %v (needs the same user and ptrace_scope <= 1, or CAP_SYS_PTRACE)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
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
	maps := readMaps(t, pid)
	pcs, cut := Walk(regs, maps.find, read, 128)
	defer syscall.PtraceDetach(pid)

	names := maps.name(t, pcs, stripped, named)
	t.Logf("%d frames, %v:\n  %s", len(pcs), cut, strings.Join(names, "\n  "))
	if cut != Complete {
		t.Errorf("walk ended %v after %d frames, want complete", cut, len(pcs))
	}
	var ours []string
	libc := 0
	for _, n := range names {
		if name, ok := strings.CutPrefix(n, "frames:"); ok {
			name, _, _ = strings.Cut(name, ".") // gcc's clones: block_outer.constprop.0
			ours = append(ours, name)
		} else if strings.HasPrefix(n, "libc") {
			libc++
		}
	}
	want := []string{"blocker", "handler", "block_alloca", "block_outer", "main", "_start"}
	if strings.Join(ours, " ") != strings.Join(want, " ") {
		t.Errorf("the fixture's frames, innermost first: %v, want %v", ours, want)
	}
	// pause, the signal trampoline, raise's internals, and the start of
	// main: libc is walked by its tables too.
	if libc < 4 {
		t.Errorf("%d frames in libc, want pause, __restore_rt, raise and __libc_start_main's at least", libc)
	}
}

// stopAndReadRegs attaches to pid with ptrace, waits until it stops, and
// reads its registers. ptrace's requests must all come from the thread
// that attached: the goroutine stays on it until the caller detaches.
func stopAndReadRegs(pid int) (Regs, error) {
	runtime.LockOSThread()
	if err := syscall.PtraceAttach(pid); err != nil {
		runtime.UnlockOSThread()
		return Regs{}, err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return Regs{}, err
	}
	var r syscall.PtraceRegs
	if err := syscall.PtraceGetRegs(pid, &r); err != nil {
		return Regs{}, err
	}
	return Regs{PC: r.Rip, SP: r.Rsp, BP: r.Rbp}, nil
}

// mapping is an executable mapping of /proc/PID/maps.
type mapping struct {
	start, end, off uint64
	path            string
	obj             Object
}

type processMaps []mapping

// readMaps reads a process's executable file mappings and compiles each
// object's table.
func readMaps(t *testing.T, pid int) processMaps {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out processMaps
	tables := map[string]*Table{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(f[1], "x") || !strings.HasPrefix(f[5], "/") {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		m := mapping{path: f[5]}
		m.start, _ = strconv.ParseUint(lo, 16, 64)
		m.end, _ = strconv.ParseUint(hi, 16, 64)
		m.off, _ = strconv.ParseUint(f[2], 16, 64)
		ef, err := elf.Open(m.path)
		if err != nil {
			t.Fatal(err)
		}
		tab, ok := tables[m.path]
		if !ok {
			if tab, err = CompileELF(ef); err != nil {
				t.Fatalf("%s: %v", m.path, err)
			}
			tables[m.path] = tab
		}
		// The load segment this mapping maps: an address's virtual
		// address is its offset in the file moved to the segment's.
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD && m.off >= p.Off && m.off < p.Off+p.Filesz {
				m.obj = Object{Table: tab, Bias: m.start - m.off + p.Off - p.Vaddr}
			}
		}
		ef.Close()
		if m.obj.Table == nil {
			t.Fatalf("%s: no load segment at offset %#x", m.path, m.off)
		}
		out = append(out, m)
	}
	return out
}

func (ms processMaps) find(pc uint64) (Object, bool) {
	for _, m := range ms {
		if pc >= m.start && pc < m.end {
			return m.obj, true
		}
	}
	return Object{}, false
}

// name names each pc "object:function": the fixture's from the unstripped
// copy's symbols (the stripped one, which ran, has none), other objects'
// by file only.
func (ms processMaps) name(t *testing.T, pcs []uint64, stripped, named string) []string {
	ef, err := elf.Open(named)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, pc := range pcs {
		at := pc
		if i > 0 {
			at-- // a return address: the call is the byte before
		}
		n := "?"
		for _, m := range ms {
			if at < m.start || at >= m.end {
				continue
			}
			n = filepath.Base(m.path)
			if m.path == stripped {
				n = "frames:?"
				v := at - m.obj.Bias
				for _, s := range syms {
					if elf.ST_TYPE(s.Info) == elf.STT_FUNC && v >= s.Value && v < s.Value+s.Size {
						n = "frames:" + s.Name
					}
				}
			}
		}
		out = append(out, fmt.Sprintf("%s %#x", n, pc))
	}
	for i := range out {
		out[i], _, _ = strings.Cut(out[i], " ")
	}
	return out
}

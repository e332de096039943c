// Package ehtest gives the unwinders' live tests (bpf/ehframe's Walk, the
// kernel's walker in bpf) their subject: testdata/frames.c built the way
// distribution code is (-O2 -fomit-frame-pointer, stripped), started, and
// its executable mappings with their load biases.
package ehtest

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/bpf/ehframe"
	"github.com/perfhound/perfhound/bpf/symbolize"
)

// Source is the subject's C source.
func Source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "frames.c")
}

// Build compiles the subject into dir, with its symbols (named) and
// stripped of them (stripped, which the tests run). It skips the test
// without gcc or strip.
func Build(t testing.TB, dir string) (named, stripped string) {
	t.Helper()
	for _, tool := range []string{"gcc", "strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: no subject to walk", tool)
		}
	}
	named, stripped = filepath.Join(dir, "frames"), filepath.Join(dir, "frames-stripped")
	// -ldl: dlopen is in libc itself only since glibc 2.34.
	if b, err := exec.Command("gcc", "-O2", "-fomit-frame-pointer", "-o", named, Source(), "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	if b, err := exec.Command("strip", "-o", stripped, named).CombinedOutput(); err != nil {
		t.Fatalf("strip: %v\n%s", err, b)
	}
	return named, stripped
}

// BuildPlugin compiles testdata/plugin.c into dir as the shared library
// "frames dlopen" loads, built as distribution code is. It skips the test
// without gcc.
func BuildPlugin(t testing.TB, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: no library to load")
	}
	out := filepath.Join(dir, "plugin.so")
	src := filepath.Join(filepath.Dir(Source()), "plugin.c")
	if b, err := exec.Command("gcc", "-O2", "-fomit-frame-pointer", "-shared", "-fPIC", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

// Start runs path with args until it prints "ready", and kills it when the
// test ends.
func Start(t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("%s said %q (%v)", path, line, err)
	}
	return cmd
}

// Mapping is an executable file mapping of a process.
type Mapping struct {
	Start, End, Bias uint64
	Path             string
}

// Mappings are a process's executable file mappings.
type Mappings []Mapping

// ReadMappings reads pid's executable file mappings and their biases.
func ReadMappings(t testing.TB, pid int) Mappings {
	t.Helper()
	maps, err := symbolize.ReadExecMappings(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out Mappings
	for _, mm := range maps {
		if !strings.HasPrefix(mm.Path, "/") {
			continue
		}
		ef, err := elf.Open(mm.Path)
		if err != nil {
			t.Fatal(err)
		}
		bias, ok := ehframe.LoadBias(ef, mm.Start, mm.Offset)
		ef.Close()
		if !ok {
			t.Fatalf("%s: no executable segment at offset %#x", mm.Path, mm.Offset)
		}
		out = append(out, Mapping{Start: mm.Start, End: mm.End, Bias: bias, Path: mm.Path})
	}
	return out
}

// Find is the mapping that holds pc.
func (ms Mappings) Find(pc uint64) (Mapping, bool) {
	for _, m := range ms {
		if pc >= m.Start && pc < m.End {
			return m, true
		}
	}
	return Mapping{}, false
}

// Symbols names addresses of an unstripped object by its function
// symbols.
type Symbols []elf.Symbol

// ReadSymbols reads path's function symbols.
func ReadSymbols(t testing.TB, path string) Symbols {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var out Symbols
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
			out = append(out, s)
		}
	}
	return out
}

// At names a virtual address without gcc's clone suffixes
// (block_outer.constprop.0 is block_outer), or "?0x…".
func (s Symbols) At(v uint64) string {
	for _, sym := range s {
		if v >= sym.Value && v < sym.Value+sym.Size {
			name, _, _ := strings.Cut(sym.Name, ".")
			return name
		}
	}
	return fmt.Sprintf("?%#x", v)
}

// Chain names the subject's frames of a walk, innermost first: pcs after
// the first are return addresses, named by the call before them.
func Chain(pcs []uint64, maps Mappings, subject string, syms Symbols) (ours []string, others int) {
	for i, pc := range pcs {
		if i > 0 {
			pc--
		}
		if m, ok := maps.Find(pc); ok && m.Path == subject {
			ours = append(ours, syms.At(pc-m.Bias))
		} else {
			others++
		}
	}
	return ours, others
}

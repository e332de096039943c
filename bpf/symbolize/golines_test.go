//go:build linux

package symbolize

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoExternalPIE resolves a stripped PIE linked by the C linker: its
// pclntab header records no text start, it has no runtime.text symbol, and
// C startup code precedes Go's text, so the start of .text would shift every
// function. The text start comes from the dynamic relocations.
func TestGoExternalPIE(t *testing.T) {
	needGo(t) // the source tree, and the go command
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc is not in PATH: %v", err)
	}
	dir := filepath.Join(buildDir, "gosrc")
	full := filepath.Join(buildDir, "go-pie-ext")
	stripped := filepath.Join(buildDir, "go-pie-ext-stripped")
	for _, args := range [][]string{
		{"-buildmode=pie", "-ldflags=-linkmode=external", "-o", full},
		{"-buildmode=pie", "-ldflags=-s -w -linkmode=external", "-o", stripped},
	} {
		cmd := exec.Command("go", append([]string{"build", "-buildvcs=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	entry := symbolValue(t, full, goFunc)
	if a, b := textBytes(t, full, entry), textBytes(t, stripped, entry); !bytes.Equal(a, b) {
		t.Fatalf("%s is not at %#x in the stripped build", goFunc, entry)
	}
	// The premise: the fallback would be wrong here.
	ef, err := elf.Open(stripped)
	if err != nil {
		t.Fatal(err)
	}
	text := symbolValue(t, full, "runtime.text")
	if ef.Section(".text").Addr == text {
		t.Logf(".text starts at runtime.text: the test does not show the shift")
	}
	if got := relocatedTextStart(ef, pclntabSection(ef).Addr); got != text {
		t.Errorf("relocatedTextStart = %#x, want runtime.text %#x", got, text)
	}
	ef.Close()

	cmd := start(t, stripped)
	pid := cmd.Process.Pid
	addr := runtimeAddr(t, pid, stripped, entry)
	s := New(Options{})
	defer s.Close()
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	mid := uint64(12)
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + mid, addr + 1, 0}, Values: []int64{1, 10}})
	if len(p.Sample) != 1 || len(p.Sample[0].Location) != 2 {
		t.Fatalf("want 1 sample of 2 locations, got %v", p)
	}
	for i, at := range []uint64{entry + mid, entry} {
		f := frameOf(p.Sample[0].Location[i])
		if f.fn != goFunc || !strings.HasSuffix(f.file, "/main.go") || f.mapping != stripped {
			t.Errorf("frame %d: got %+v, want %s in main.go, mapping %s", i, f, goFunc, stripped)
		}
		if want := addr2line(t, full, at); f.line != want {
			t.Errorf("frame %d: line %d, want %d (addr2line)", i, f.line, want)
		}
	}
	for e := s.cache.ll.Front(); e != nil; e = e.Next() {
		o := e.Value.(*object)
		if o.warn != nil {
			t.Errorf("%s: %v", o.key, o.warn)
		}
	}
}

// TestRelativeAddends finds the relocation of a Go 1.18-1.25 pclntab
// header's textStart field among synthetic Elf64_Rela entries.
func TestRelativeAddends(t *testing.T) {
	var buf bytes.Buffer
	put := func(off, typ, addend uint64) {
		var e [24]byte
		binary.LittleEndian.PutUint64(e[0:], off)
		binary.LittleEndian.PutUint64(e[8:], typ)
		binary.LittleEndian.PutUint64(e[16:], addend)
		buf.Write(e[:])
	}
	put(0x1000, 8, 0x1)
	put(0x5018, 6, 0x2) // same offset, another type
	put(0x5018, 8, 0x2c400)
	put(0x5018, 8, 0x3)
	got, ok := relativeAddends(bytes.NewReader(buf.Bytes()), binary.LittleEndian, 8, func(off, _ uint64) bool { return off == 0x5000+24 })
	if !ok || got != 0x2c400 {
		t.Errorf("got %#x, %v; want 0x2c400", got, ok)
	}
	if _, ok := relativeAddends(bytes.NewReader(buf.Bytes()[:30]), binary.LittleEndian, 8, func(off, _ uint64) bool { return off == 0x5018 }); ok {
		t.Error("found a relocation in a truncated table")
	}
}

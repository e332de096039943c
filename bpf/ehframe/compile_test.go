//go:build amd64

package ehframe

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompileSystemObjects compiles real objects and checks the table
// against the rule tables it came from (which TestAgainstReadelf checks
// against readelf): at every row's address the walker's entry says the
// same CFA and return address, gaps between functions end the walk, and
// what cannot be followed is a counted, invalid entry.
func TestCompileSystemObjects(t *testing.T) {
	objects := existing(t, systemObjects)
	objects = append(objects, buildFixture(t)...)
	if len(objects) == 0 {
		t.Skip("none of the objects is on this machine")
	}
	for _, path := range objects {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tab, err := CompileELF(f)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(tab.Entries); i++ {
				if tab.Entries[i].PC <= tab.Entries[i-1].PC {
					t.Fatalf("entries %d and %d out of order: %#x, %#x", i-1, i, tab.Entries[i-1].PC, tab.Entries[i].PC)
				}
				if sameEntry(tab.Entries[i], tab.Entries[i-1]) {
					t.Fatalf("entries %d and %d at %#x and %#x say the same", i-1, i, tab.Entries[i-1].PC, tab.Entries[i].PC)
				}
			}
			fdes, _ := FromELF(f)
			rows := 0
			for i := range fdes {
				fde := &fdes[i]
				fde.Rows(func(r *Row) bool {
					rows++
					want := entryOf(fde.CIE, r)
					got, ok := tab.Lookup(r.Loc)
					if !ok || !sameEntry(got, want) {
						t.Errorf("at %#x (FDE %#x..%#x): entry %+v, want %+v", r.Loc, fde.Begin, fde.End, got, want)
						return false
					}
					return true
				})
				// Past a function, up to the next one: an end entry
				// unless the next starts within the padding.
				if e, ok := tab.Lookup(fde.End); ok && e.Kind != KindEnd && !covered(fdes, fde.End, minGap) {
					t.Errorf("at %#x, past FDE %#x..%#x, with no FDE within %d bytes: entry %v, want end", fde.End, fde.Begin, fde.End, minGap, e.Kind)
				}
			}
			invalid := 0
			for _, n := range tab.Invalid {
				invalid += n
			}
			text := f.Section(".text")
			size := uint64(1)
			if text != nil {
				size = text.Size
			}
			t.Logf("%d FDEs, %d rows into %d entries (%d B, %.0f KB per MB of .text), %d invalid %v, skipped %v",
				tab.FDEs, rows, len(tab.Entries), tab.Bytes(), float64(tab.Bytes())/float64(size)*1024, invalid, tab.Invalid, tab.Skipped)
			if tab.FDEs != len(fdes) {
				t.Errorf("compiled %d of %d FDEs (skipped %v)", tab.FDEs, len(fdes), tab.Skipped)
			}
		})
	}
}

// covered tells an address with an FDE starting less than gap bytes after it.
func covered(fdes []FDE, pc, gap uint64) bool {
	for i := range fdes {
		if fdes[i].Begin >= pc && fdes[i].Begin < pc+gap {
			return true
		}
	}
	return false
}

// TestCompileKinds checks the entries that are not a plain CFA on a
// register, in libc, where each occurs: its PLT (binutils' expression),
// the signal trampoline __restore_rt (a CIE with "S"), and _start's
// outermost frame in a program.
func TestCompileKinds(t *testing.T) {
	libc := existing(t, []string{"/lib/x86_64-linux-gnu/libc.so.6"})
	if len(libc) == 0 {
		t.Skip("Debian's libc.so.6 is not here")
	}
	f, err := elf.Open(libc[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := CompileELF(f)
	if err != nil {
		t.Fatal(err)
	}
	plt := f.Section(".plt")
	if plt == nil {
		t.Fatal("libc has no .plt")
	}
	e, _ := tab.Lookup(plt.Addr + 16)
	if e.Kind != KindPLT || e.CFAOffset != 8 || e.PLTThreshold != 11 {
		t.Errorf("libc's .plt at %#x: %+v, want a PLT entry, rsp+8, +8 from byte 11", plt.Addr+16, e)
	}
	restore := symbol(t, f, "__restore_rt")
	if e, _ := tab.Lookup(restore); e.Kind != KindSignal {
		t.Errorf("__restore_rt at %#x: %v, want signal", restore, e.Kind)
	}

	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: _start not checked")
	}
	prog := buildFixture(t)[0]
	pf, err := elf.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	ptab, err := CompileELF(pf)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := ptab.Lookup(pf.Entry); e.Kind != KindStop {
		t.Errorf("_start at %#x: %v, want stop", pf.Entry, e.Kind)
	}
	onRBP := symbol(t, pf, "on_rbp")
	found := false
	for pc := onRBP; pc < onRBP+64; pc++ {
		if e, _ := ptab.Lookup(pc); e.Kind == KindCFARBP && e.CFAOffset == 16 && e.RBP == RBPAtCFA && e.RBPOffset == -16 {
			found = true
			break
		}
	}
	if !found {
		t.Error("on_rbp (alloca): no entry with CFA = rbp+16 and rbp saved at CFA-16")
	}
}

// symbol is a function's address from the object's symbol tables (libc
// keeps .dynsym and a debuglink; the fixture is not stripped).
func symbol(t *testing.T, f *elf.File, name string) uint64 {
	t.Helper()
	for _, read := range []func() ([]elf.Symbol, error){f.Symbols, f.DynamicSymbols} {
		syms, _ := read()
		for _, s := range syms {
			if s.Name == name || strings.HasPrefix(s.Name, name+"@") {
				return s.Value
			}
		}
	}
	// Stripped libc: the trampoline is found by its code, mov $15,%eax; syscall.
	if text := f.Section(".text"); text != nil {
		if b, err := text.Data(); err == nil {
			if i := strings.Index(string(b), "\x48\xc7\xc0\x0f\x00\x00\x00\x0f\x05"); i >= 0 {
				return text.Addr + uint64(i)
			}
		}
	}
	t.Fatalf("no symbol %s", name)
	return 0
}

// TestPack checks the layout the walker reads.
func TestPack(t *testing.T) {
	var b [EntrySize]byte
	e := Entry{PC: 0x12345678, Kind: KindCFARSP, CFAOffset: 0x1234, RBP: RBPAtCFA, RBPOffset: -16}
	e.Pack(b[:])
	want := [EntrySize]byte{0x78, 0x56, 0x34, 0x12, 0x34, 0x12, byte(KindCFARSP) | byte(RBPAtCFA)<<4, 0xfe}
	if b != want {
		t.Errorf("packed % x, want % x", b, want)
	}
	p := Entry{PC: 0x1000, Kind: KindPLT, CFAOffset: 8, PLTThreshold: 11}
	p.Pack(b[:])
	if b[6] != byte(KindPLT) || b[7] != 11 || b[4] != 8 {
		t.Errorf("PLT packed % x", b)
	}
}

// BenchmarkCompile compiles the largest object around: a JVM's libjvm.so
// (about 30 MB) where one is installed, else libcrypto.
func BenchmarkCompile(b *testing.B) {
	paths, _ := filepath.Glob("/usr/lib/jvm/*/lib/server/libjvm.so")
	paths = append(paths, systemObjects...)
	var path string
	var size int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Size() > size {
			path, size = p, st.Size()
		}
	}
	if path == "" {
		b.Skip("no object to compile")
	}
	b.Logf("%s, %.1f MB", path, float64(size)/1e6)
	for b.Loop() {
		f, err := elf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		tab, err := CompileELF(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(tab.Entries)), "entries")
		b.ReportMetric(float64(tab.Bytes()), "table-B")
	}
}

// TestParseSkipsBadEntries breaks the first CIE of a real .eh_frame: its
// FDEs are dropped and said, the others are read.
func TestParseSkipsBadEntries(t *testing.T) {
	objs := existing(t, []string{"/usr/bin/xz", "/usr/bin/gzip"})
	if len(objs) == 0 {
		t.Skip("no object to break")
	}
	f, err := elf.Open(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".eh_frame")
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Parse(data, sec.Addr, f.ByteOrder, 8)
	if err != nil || len(whole) == 0 {
		t.Fatalf("%d FDEs, %v", len(whole), err)
	}
	first := 0
	for _, fde := range whole {
		if fde.CIE.Offset == 0 {
			first++
		}
	}
	broken := append([]byte(nil), data...)
	broken[8] = 9 // the first CIE's version
	some, err := Parse(broken, sec.Addr, f.ByteOrder, 8)
	if err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("error %v, want the CIE's version named", err)
	}
	if len(some) != len(whole)-first {
		t.Errorf("%d FDEs read, want %d: all but the broken CIE's %d", len(some), len(whole)-first, first)
	}
}

//go:build linux

package symbolize

import (
	"debug/elf"
	"debug/gosym"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// goTables opens path's .gopclntab both ways: with debug/gosym (the
// oracle) and in place.
func goTables(t *testing.T, path string) (*gosym.Table, *pclntab) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	sec := pclntabSection(ef)
	if sec == nil {
		t.Fatalf("%s has no .gopclntab", path)
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	// Where runtime.text is, as parseObject finds it: the symbol, else
	// the pclntab header, else the relocations, else .text.
	text := uint64(0)
	if syms, err := ef.Symbols(); err == nil {
		for _, s := range syms {
			if s.Name == "runtime.text" {
				text = s.Value
			}
		}
	}
	if text == 0 {
		text = pclntabTextStart(data, ef.ByteOrder)
	}
	if text == 0 {
		text = relocatedTextStart(ef, sec.Addr)
	}
	if text == 0 {
		text = ef.Section(".text").Addr
	}
	want, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parsePclntab(data, text)
	if err != nil {
		t.Fatal(err)
	}
	return want, got
}

// TestPclntabMatchesGosym reads real Go binaries (this test's own, and the
// toolchain's compile, the largest at hand) both ways: every function, its
// bounds and name, and file:line at each function's entry, middle and
// last byte, as gosym gives them.
func TestPclntabMatchesGosym(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bins := []string{self}
	if out, err := exec.Command("go", "env", "GOTOOLDIR").Output(); err == nil {
		bins = append(bins, filepath.Join(string(out[:len(out)-1]), "compile"))
	} else {
		t.Logf("no go command (%v): only this test's binary", err)
	}
	for _, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			want, got := goTables(t, bin)
			funcs, err := got.funcs()
			if err != nil {
				t.Fatal(err)
			}
			if len(funcs) != len(want.Funcs) {
				t.Fatalf("%d functions, gosym %d", len(funcs), len(want.Funcs))
			}
			lines, bare := 0, 0
			for i, f := range want.Funcs {
				g := funcs[i]
				if g.start != f.Entry || g.start+g.size != f.End || g.name != f.Name {
					t.Fatalf("function %d: %s [%#x, %#x), gosym %s [%#x, %#x)", i, g.name, g.start, g.start+g.size, f.Name, f.Entry, f.End)
				}
				if pcln, _ := got.field(uint32(i), 6); pcln == 0 {
					// A marker such as go:textfipsstart: no line table
					// (offset 0, which the runtime reads as none and
					// gosym decodes from the pctab's first byte).
					if f, l := got.pcToLine(f.Entry); l != 0 {
						t.Errorf("%s has no line table, got %s:%d", g.name, f, l)
					}
					bare++
					continue
				}
				for _, pc := range []uint64{f.Entry, f.Entry + (f.End-f.Entry)/2, f.End - 1} {
					wf, wl, _ := want.PCToLine(pc)
					wl = max(wl, 0) // gosym's -1: no line
					gf, gl := got.pcToLine(pc)
					if gf != wf || gl != wl {
						t.Fatalf("%s+%#x: %s:%d, gosym %s:%d", f.Name, pc-f.Entry, gf, gl, wf, wl)
					}
					if gl > 0 {
						lines++
					}
				}
			}
			// Outside the table: nothing.
			if f, l := got.pcToLine(want.Funcs[0].Entry - 1); f != "" || l != 0 {
				t.Errorf("before the first function: %s:%d", f, l)
			}
			if f, l := got.pcToLine(want.Funcs[len(want.Funcs)-1].End); f != "" || l != 0 {
				t.Errorf("past the last function: %s:%d", f, l)
			}
			if lines < len(want.Funcs) {
				t.Errorf("only %d of %d lookups found a line", lines, 3*len(want.Funcs))
			}
			t.Logf("%d functions (%d without a line table), %d lookups agree; %d file names held", len(funcs), bare, 3*(len(funcs)-bare), len(got.files))
		})
	}
}

// TestPclntabMalformed reads truncated and corrupted copies of a real table
// with nothing to recover panics: a bad table gives errors or no answers.
func TestPclntabMalformed(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	data, err := pclntabSection(ef).Data()
	if err != nil {
		t.Fatal(err)
	}
	read := func(b []byte) {
		tab, err := parsePclntab(b, 0x401000)
		if err != nil {
			return
		}
		_, _ = tab.funcs()
		for pc := uint64(0x401000); pc < 0x401000+1<<16; pc += 97 {
			tab.pcToLine(pc)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 7, 8, 40, 72, 100, 4096, len(data) / 2, len(data) - 1} {
		read(data[:n])
	}
	for range 200 {
		b := append([]byte(nil), data[:min(len(data), 1<<20)]...)
		for range 1 + rng.IntN(64) {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		read(b)
	}
	if runtime.GOARCH == "amd64" {
		if _, err := parsePclntab([]byte{0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8}, 0); err != errOldPclntab {
			t.Errorf("a Go 1.2 header: %v, want errOldPclntab", err)
		}
	}
}

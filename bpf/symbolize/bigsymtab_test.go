//go:build linux

package symbolize

import (
	"debug/elf"
	"os"
	"testing"
)

// TestSymbolsInPlace: a symbol table over the budget debug/elf needs is
// read in place (a large C++ program's, node's), and names every function
// as the ordinary reading does, the versioned and the local ones included.
func TestSymbolsInPlace(t *testing.T) {
	bins := needC(t)
	path := bins.plain
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	bid := BuildID(ef)
	full := parseObject(ef, f, "full", bid, 1<<30)
	if full.err != nil || full.syms.len() == 0 || full.syms.mapped != nil {
		t.Fatalf("read whole: %v, %d symbols, in place %v", full.err, full.syms.len(), full.syms.mapped != nil)
	}
	// A budget debug/elf's reading is over, and reading in place is not.
	budget := readCost(ef, elf.SHT_SYMTAB) - 1
	small := parseObject(ef, f, "small", bid, budget)
	if small.err != nil || small.syms.mapped == nil {
		t.Fatalf("over budget: %v, in place %v (warn %v)", small.err, small.syms.mapped != nil, small.warn)
	}
	if small.syms.len() != full.syms.len() {
		t.Errorf("%d functions in place, %d read whole", small.syms.len(), full.syms.len())
	}
	for i := range full.syms.len() {
		addr := full.syms.start(i)
		want, _, _, _ := full.resolve(addr)
		got, _, _, ok := small.resolve(addr)
		if !ok || got != want {
			t.Errorf("%#x: %q in place, %q read whole", addr, got, want)
		}
	}
	if name, _, _, _ := small.resolve(full.syms.start(full.syms.lookup(symbolValue(t, path, cFunc)))); name != cFunc {
		t.Errorf("%s resolved as %q", cFunc, name)
	}
	// 14 bytes a function, whatever their names' length.
	if got, want := small.syms.bytes(), int64(14*small.syms.len()); got > want {
		t.Errorf("in place the table holds %d bytes of heap for %d functions, want %d at most", got, small.syms.len(), want)
	}
	small.release()
	if small.syms.len() != 0 {
		t.Error("released, the table still answers")
	}
	// A stripped program keeps .dynsym alone: read in place too.
	sf, err := os.Open(bins.stripped)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	sef, err := elf.NewFile(sf)
	if err != nil {
		t.Fatal(err)
	}
	dyn := parseObject(sef, sf, "dyn", BuildID(sef), readCost(sef, elf.SHT_DYNSYM)-1)
	if dyn.syms.mapped == nil {
		t.Fatalf(".dynsym over budget not read in place: %v %v", dyn.err, dyn.warn)
	}
	if name, _, _, _ := dyn.resolve(symbolValue(t, bins.dyn, cFunc) + 2); name != cFunc {
		t.Errorf(".dynsym in place resolved %s as %q", cFunc, name)
	}
	dyn.release()
	// Too small for either: the object says why.
	tiny := parseObject(ef, f, "tiny", bid, 1024)
	if tiny.syms.mapped != nil {
		t.Error("a budget of 1 KiB read in place")
	}
}

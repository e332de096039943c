//go:build linux

package symbolize

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"syscall"
)

// goLines answers file:line for the code of a Go binary from its
// .gopclntab: read in place (pclntab) from Go 1.18 on, with debug/gosym
// before.
//
// Memory: the section is 8 MB for the toolchain's compile binary, so it is
// mapped from the file rather than copied, and the pages read while listing
// the functions are dropped again (MADV_DONTNEED); a lookup faults in the few
// pages it reads. Of gosym's Table only the line table is kept: the Funcs,
// Syms and Files it builds (5 MB for compile) are dropped after the function
// names are copied into the object's symtab, and lookups hand PCToLine a
// one-entry Funcs that covers the PC, which is all it searches.
type goLines struct {
	pcln   *pclntab    // Go 1.18 on
	tab    gosym.Table // before: Funcs, Syms, Files and Objs dropped
	region []byte      // the mapping to unmap; nil when the data is on the heap
	heap   int64       // heap held: the section when not mapped, and gosym's name cache
	lo, hi uint64      // PCs the table covers
}

// newGoLines reads the line table of sec. textStart is runtime.text's
// address, or 0 when unknown; it is then read from the table's header, or
// from the relocations that fill it at load time, or, failing those,
// assumed to be the start of .text, which warn says.
func newGoLines(ef *elf.File, sec *elf.Section, f *os.File, textStart uint64) (g *goLines, funcs []rawSym, warn, err error) {
	g = &goLines{}
	var data []byte
	if f != nil {
		g.region, data, _ = mapSection(f, sec.Offset, sec.Size)
	}
	if g.region == nil {
		if data, err = sec.Data(); err != nil {
			return nil, nil, nil, err
		}
		g.heap = int64(len(data))
	}
	var guessed error
	if textStart == 0 {
		textStart = pclntabTextStart(data, ef.ByteOrder)
	}
	if textStart == 0 {
		textStart = relocatedTextStart(ef, sec.Addr)
	}
	if textStart == 0 {
		// With external linking, C startup code precedes Go's text, and
		// every function would be off by its size: say so.
		if text := ef.Section(".text"); text != nil {
			textStart = text.Addr
			guessed = fmt.Errorf("%w: assumed the start of .text, %#x", errTextStartUnknown, textStart)
		}
	}
	err = guardFaults(func() error {
		t, err := parsePclntab(data, textStart)
		if err == nil {
			if funcs, err = t.funcs(); err != nil {
				return err
			}
			g.pcln, g.lo, g.hi = t, t.pc(0), t.pc(t.nfunc)
			return nil
		}
		if !errors.Is(err, errOldPclntab) {
			return err
		}
		tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, textStart))
		if err != nil {
			return err
		}
		if len(tab.Funcs) == 0 {
			return errors.New("no functions")
		}
		funcs = make([]rawSym, 0, len(tab.Funcs))
		for _, fn := range tab.Funcs {
			funcs = append(funcs, rawSym{start: fn.Entry, size: fn.End - fn.Entry, name: fn.Name, rank: -1})
			// gosym caches every name it decoded.
			g.heap += int64(len(fn.Name)) + 48
		}
		g.lo, g.hi = tab.Funcs[0].Entry, tab.Funcs[len(tab.Funcs)-1].End
		tab.Funcs, tab.Syms, tab.Files, tab.Objs = nil, nil, nil, nil
		g.tab = *tab
		return nil
	})
	if g.region != nil {
		_ = syscall.Madvise(g.region, syscall.MADV_DONTNEED)
	}
	if err != nil {
		g.release()
		return nil, nil, nil, err
	}
	return g, funcs, guessed, nil
}

// pcToLine returns the file and line of pc, or "", 0. With inlining, these
// are the innermost inlined call's: gosym does not expose the inline tree.
func (g *goLines) pcToLine(pc uint64) (file string, line int) {
	if pc < g.lo || pc >= g.hi {
		return "", 0
	}
	_ = guardFaults(func() error {
		if g.pcln != nil {
			file, line = g.pcln.pcToLine(pc)
			return nil
		}
		t := g.tab
		t.Funcs = []gosym.Func{{Entry: pc, End: pc + 1}}
		file, line, _ = t.PCToLine(pc)
		return nil
	})
	return file, line
}

func (g *goLines) heapBytes() int64 {
	if g.pcln != nil {
		return g.heap + g.pcln.heapBytes()
	}
	return g.heap
}

func (g *goLines) release() {
	if g.region != nil {
		_ = syscall.Munmap(g.region)
		g.region = nil
	}
	g.tab, g.pcln = gosym.Table{}, nil
	g.lo, g.hi = 0, 0
}

// mapSection maps [off, off+size) of f read-only. region is what to unmap.
func mapSection(f *os.File, off, size uint64) (region, data []byte, err error) {
	page := uint64(os.Getpagesize())
	start := off &^ (page - 1)
	n := off + size - start
	if size == 0 || n > 1<<31 {
		return nil, nil, fmt.Errorf("cannot map %d bytes", size)
	}
	region, err = syscall.Mmap(int(f.Fd()), int64(start), int(n), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	return region, region[off-start:], nil
}

// guardFaults runs fn with memory faults turned into panics, and turns any
// panic into an error: a mapped file truncated under us raises SIGBUS, and
// malformed tables can make gosym index out of range.
func guardFaults(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading line table: %v", r)
		}
	}()
	return fn()
}

// pclntabTextStart reads the text start recorded in a Go 1.18+ pclntab
// header (magic, 2 pad bytes, min LC, pointer size, nfunc, nfiles,
// textStart), or 0. It is 0 in PIE files, where a relocation fills it, and
// from Go 1.26 on, which no longer records it.
func pclntabTextStart(data []byte, bo binary.ByteOrder) uint64 {
	if len(data) < 8 {
		return 0
	}
	switch bo.Uint32(data) {
	case 0xfffffff0, 0xfffffff1: // Go 1.18, Go 1.20 and later
	default:
		return 0
	}
	ps := int(data[7])
	at := 8 + 2*ps
	switch {
	case ps == 4 && len(data) >= at+4:
		return uint64(bo.Uint32(data[at:]))
	case ps == 8 && len(data) >= at+8:
		return bo.Uint64(data[at:])
	}
	return 0
}

// errTextStartUnknown marks a Go line table whose text start had to be
// guessed.
//
//lint:ignore ST1005 "Go" is a proper noun
var errTextStartUnknown = errors.New("Go text start unknown")

// relocatedTextStart returns runtime.text's address in a position-
// independent 64-bit Go file, from the R_*_RELATIVE relocations of
// .rela.dyn, or 0. Go 1.18 to 1.25 relocate the pclntab header's textStart
// field (pclntab+24); Go 1.26 leaves it 0 and unrelocated, and the address
// is then moduledata.text, found as the word 176 bytes after the one
// relocated to the pclntab itself (moduledata.pcHeader; then six slices,
// findfunctab, minpc and maxpc, a layout unchanged since Go 1.16).
func relocatedTextStart(ef *elf.File, pclntab uint64) uint64 {
	if ef.Class != elf.ELFCLASS64 {
		return 0
	}
	var relative uint32
	switch ef.Machine {
	case elf.EM_X86_64:
		relative = uint32(elf.R_X86_64_RELATIVE)
	case elf.EM_AARCH64:
		relative = uint32(elf.R_AARCH64_RELATIVE)
	default:
		return 0
	}
	rela := ef.Section(".rela.dyn")
	if rela == nil || rela.Type != elf.SHT_RELA {
		return 0
	}
	const headerTextStart, moduleText = 8 + 2*8, 8 + 6*24 + 3*8
	var moduledata []uint64
	if a, ok := relativeAddends(rela.Open(), ef.ByteOrder, relative, func(off, addend uint64) bool {
		if addend == pclntab {
			moduledata = append(moduledata, off)
		}
		return off == pclntab+headerTextStart
	}); ok && a != 0 {
		return a
	}
	for _, m := range moduledata {
		if a, ok := relativeAddends(rela.Open(), ef.ByteOrder, relative, func(off, _ uint64) bool {
			return off == m+moduleText
		}); ok && a != 0 {
			return a
		}
	}
	return 0
}

// relativeAddends streams the Elf64_Rela entries of r, calls match with
// the offset and addend of each relocation of type typ, and returns the
// addend of the first one it accepts.
func relativeAddends(r io.Reader, bo binary.ByteOrder, typ uint32, match func(off, addend uint64) bool) (uint64, bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	var e [24]byte
	for {
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, false
		}
		if uint32(bo.Uint64(e[8:])) != typ {
			continue
		}
		if off, addend := bo.Uint64(e[0:]), bo.Uint64(e[16:]); match(off, addend) {
			return addend, true
		}
	}
}

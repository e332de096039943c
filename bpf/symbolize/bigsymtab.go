//go:build linux

package symbolize

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"syscall"
)

// A large program's symbol table (node's is 170,000 entries, 7 MB of
// names) is over the budget debug/elf needs to read it (an elf.Symbol of
// about 100 bytes each, every name copied): it would go unsymbolized. Read
// in place instead, it costs 14 bytes a function: the table is scanned
// from a read-only mapping of the file, and the names stay in the file's
// string table, mapped, each copied out when a lookup asks for it. The
// pages the scan read are dropped again (MADV_DONTNEED); a lookup faults in
// the page of its name.

// mappedSym is a function symbol found by the scan: its name is at nameOff
// in the string table.
type mappedSym struct {
	start   uint64
	size    uint32
	nameOff uint32
	nameLen uint16 // for the order among symbols at one start (newSymtab's)
	under   uint8  // leading underscores, likewise
	rank    int8
}

// mappedSymbols reads the function symbols of the ELF64 little-endian
// symbol table sec (SHT_SYMTAB or SHT_DYNSYM) in place from f. The table
// it returns holds its string table's mapping, which release unmaps; the
// scan's transient heap is 24 bytes an entry, so its cost against budget is
// that and the table's 14 bytes a function.
func mappedSymbols(ef *elf.File, f *os.File, sec *elf.Section, budget int64) (*symtab, error) {
	if ef.Class != elf.ELFCLASS64 || ef.Data != elf.ELFDATA2LSB {
		return nil, errors.New("mapped symbol tables: ELF64 little-endian only")
	}
	const entSize = 24 // Elf64_Sym
	if int(sec.Link) >= len(ef.Sections) || sec.Size%entSize != 0 {
		return nil, fmt.Errorf("%s: malformed", sec.Name)
	}
	strs := ef.Sections[sec.Link]
	n := sec.Size / entSize
	if cost := int64(n) * (24 + 12); cost > budget {
		return nil, fmt.Errorf("%w: %s of %d entries would take %d MiB in place, over the budget of %d MiB",
			errOverBudget, sec.Name, n, cost>>20, budget>>20)
	}
	symRegion, symData, err := mapSection(f, sec.Offset, sec.Size)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", sec.Name, err)
	}
	defer syscall.Munmap(symRegion)
	strRegion, strData, err := mapSection(f, strs.Offset, strs.Size)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", strs.Name, err)
	}
	// The scan and the sort read the mapping: a file truncated under them
	// faults, which the guard turns into an error.
	var t *symtab
	err = guardFaults(func() error {
		t = newMappedSymtab(scanSymbols(ef, symData, strData), strData)
		return nil
	})
	_ = syscall.Madvise(strRegion, syscall.MADV_DONTNEED)
	if err != nil {
		syscall.Munmap(strRegion)
		return nil, fmt.Errorf("%s: %w", sec.Name, err)
	}
	if t.len() == 0 {
		syscall.Munmap(strRegion)
		return t, nil
	}
	t.region = strRegion
	return t, nil
}

// scanSymbols keeps the function symbols as elfSym does, ranked alike.
func scanSymbols(ef *elf.File, symData, strData []byte) []mappedSym {
	le := binary.LittleEndian
	var out []mappedSym
	for off := 24; off+24 <= len(symData); off += 24 { // entry 0 is the null symbol
		e := symData[off : off+24]
		name, info, shndx := le.Uint32(e[0:]), e[4], elf.SectionIndex(le.Uint16(e[6:]))
		value, size := le.Uint64(e[8:]), le.Uint64(e[16:])
		if value == 0 || name == 0 || shndx == elf.SHN_UNDEF || int(name) >= len(strData) {
			continue
		}
		rank := int8(0)
		switch elf.ST_TYPE(info) {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		case elf.STT_NOTYPE:
			if int(shndx) >= len(ef.Sections) || ef.Sections[shndx].Flags&elf.SHF_EXECINSTR == 0 {
				continue
			}
			rank = 3
		default:
			continue
		}
		switch elf.ST_BIND(info) {
		case elf.STB_GLOBAL:
		case elf.STB_WEAK:
			rank++
		default:
			rank += 2
		}
		s := strData[name:]
		end := bytes.IndexByte(s, 0)
		if end < 0 {
			continue
		}
		s = s[:end]
		if at := bytes.IndexByte(s, '@'); at >= 0 {
			s = s[:at] // a versioned name (pthread_mutex_lock@@GLIBC_2.2.5): the function is the same
		}
		if len(s) == 0 {
			continue
		}
		under := len(s) - len(bytes.TrimLeft(s, "_"))
		out = append(out, mappedSym{start: value, size: uint32(min(size, math.MaxUint32)), nameOff: name,
			nameLen: uint16(min(len(s), math.MaxUint16)), under: uint8(min(under, math.MaxUint8)), rank: rank})
	}
	return out
}

// newMappedSymtab is newSymtab for symbols whose names stay in strs: one a
// start, chosen in the same order (rank, fewer leading underscores, the
// shorter name, then the name).
func newMappedSymtab(syms []mappedSym, strs []byte) *symtab {
	name := func(s mappedSym) []byte { return strs[s.nameOff : s.nameOff+uint32(s.nameLen)] }
	slices.SortFunc(syms, func(a, b mappedSym) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.rank, b.rank), cmp.Compare(a.under, b.under),
			cmp.Compare(a.nameLen, b.nameLen), bytes.Compare(name(a), name(b)))
	})
	syms = firstPerStart(syms, func(s *mappedSym) uint64 { return s.start }, func(keep, drop *mappedSym) { keep.size = max(keep.size, drop.size) })
	t := &symtab{mapped: strs}
	if len(syms) == 0 {
		return t
	}
	t.base = syms[0].start
	n := len(syms)
	t.off, t.size, t.name, t.nameLen = make([]uint32, 0, n), make([]uint32, 0, n), make([]uint32, 0, n), make([]uint16, 0, n)
	for _, s := range syms {
		if s.start-t.base > math.MaxUint32 {
			break // sorted: the rest are further still
		}
		t.off = append(t.off, uint32(s.start-t.base))
		t.size = append(t.size, s.size)
		t.name = append(t.name, s.nameOff)
		t.nameLen = append(t.nameLen, s.nameLen)
	}
	return t
}

// mappedName copies the name of symbol i out of the mapped string table;
// "" if the file under it was truncated (the read faults).
func (t *symtab) mappedName(i int) (s string) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	off := t.name[i]
	return string(t.mapped[off : off+uint32(t.nameLen[i])])
}

// release unmaps the string table of a mapped table.
func (t *symtab) release() {
	if t != nil && t.region != nil {
		_ = syscall.Munmap(t.region)
		t.region, t.mapped = nil, nil
		t.off, t.size, t.name, t.nameLen = nil, nil, nil, nil
	}
}

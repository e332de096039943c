//go:build linux

package symbolize

import (
	"math"
	"slices"
	"strings"
)

// symtab is a compact, immutable, address-sorted symbol table: 12 bytes a
// symbol plus its name in one string arena. Starts are stored as 32-bit
// offsets from base, which holds for one ELF object and for the kernel (its
// text, modules and BPF programs all live in the top 2 GiB).
type symtab struct {
	base  uint64
	off   []uint32 // start - base, ascending
	size  []uint32 // 0: unknown, the symbol runs to the next one; nil: all unknown
	name  []uint32 // offset of the name in arena; a name ends where the next begins
	mod   []uint16 // kernel only: index into kernelSyms.mods; nil: all 0
	arena string

	// A table read in place (bigsymtab.go) keeps its names in the file's
	// string table, mapped: name holds offsets into mapped, nameLen their
	// lengths, and region is the mapping to unmap.
	mapped, region []byte
	nameLen        []uint16
}

// rawSym is a symbol before compaction.
type rawSym struct {
	start uint64
	size  uint64
	name  string
	rank  int8 // among symbols at the same start, the lowest rank is kept
	mod   uint16
}

// newSymtab sorts syms, keeps one symbol per start address (the lowest rank,
// then the name with the fewest leading underscores, then the shortest) and
// compacts them. Symbols more than 4 GiB above the lowest are dropped and
// counted in the second result.
func newSymtab(syms []rawSym) (*symtab, int) {
	slices.SortFunc(syms, func(a, b rawSym) int {
		switch {
		case a.start != b.start:
			if a.start < b.start {
				return -1
			}
			return 1
		case a.rank != b.rank:
			return int(a.rank) - int(b.rank)
		}
		ua := len(a.name) - len(strings.TrimLeft(a.name, "_"))
		ub := len(b.name) - len(strings.TrimLeft(b.name, "_"))
		if ua != ub {
			return ua - ub
		}
		if len(a.name) != len(b.name) {
			return len(a.name) - len(b.name)
		}
		return strings.Compare(a.name, b.name)
	})
	syms = firstPerStart(syms, func(s *rawSym) uint64 { return s.start }, func(keep, drop *rawSym) { keep.size = max(keep.size, drop.size) })
	t := &symtab{}
	if len(syms) == 0 {
		return t, 0
	}
	t.base = syms[0].start
	dropped := 0
	n, arena := 0, 0
	sized, withMod := false, false
	for _, s := range syms {
		if s.start-t.base > math.MaxUint32 {
			dropped++
			continue
		}
		n++
		arena += len(s.name)
		sized = sized || s.size != 0
		withMod = withMod || s.mod != 0
	}
	t.off = make([]uint32, 0, n)
	if sized {
		t.size = make([]uint32, 0, n)
	}
	t.name = make([]uint32, 0, n)
	if withMod {
		t.mod = make([]uint16, 0, n)
	}
	var b strings.Builder
	b.Grow(arena)
	for _, s := range syms {
		if s.start-t.base > math.MaxUint32 {
			continue
		}
		t.off = append(t.off, uint32(s.start-t.base))
		if sized {
			t.size = append(t.size, uint32(min(s.size, math.MaxUint32)))
		}
		t.name = append(t.name, uint32(b.Len()))
		if withMod {
			t.mod = append(t.mod, s.mod)
		}
		b.WriteString(s.name)
	}
	t.arena = b.String()
	return t, dropped
}

// firstPerStart keeps the first of each run of sorted symbols with one
// start, merged with the rest of its run (their largest size).
func firstPerStart[S any](syms []S, start func(*S) uint64, merge func(keep, drop *S)) []S {
	w := 0
	for r := range syms {
		if w > 0 && start(&syms[w-1]) == start(&syms[r]) {
			merge(&syms[w-1], &syms[r])
			continue
		}
		syms[w] = syms[r]
		w++
	}
	return syms[:w]
}

// lookup returns the index of the symbol covering addr, or -1. A symbol with
// a size covers [start, start+size); one without covers up to the next symbol.
func (t *symtab) lookup(addr uint64) int {
	if t == nil || len(t.off) == 0 || addr < t.base || addr-t.base > math.MaxUint32 {
		return -1
	}
	a := uint32(addr - t.base)
	i, found := slices.BinarySearch(t.off, a)
	if !found {
		i--
	}
	if i < 0 {
		return -1
	}
	if t.size != nil {
		if sz := t.size[i]; sz != 0 && uint64(a) >= uint64(t.off[i])+uint64(sz) {
			return -1
		}
	}
	return i
}

func (t *symtab) symName(i int) string {
	if t.mapped != nil {
		return t.mappedName(i)
	}
	end := len(t.arena)
	if i+1 < len(t.name) {
		end = int(t.name[i+1])
	}
	return t.arena[t.name[i]:end]
}

func (t *symtab) start(i int) uint64 { return t.base + uint64(t.off[i]) }

func (t *symtab) modOf(i int) int {
	if t.mod == nil {
		return 0
	}
	return int(t.mod[i])
}

func (t *symtab) len() int {
	if t == nil {
		return 0
	}
	return len(t.off)
}

// bytes is the heap the table holds, for Stats.
func (t *symtab) bytes() int64 {
	if t == nil {
		return 0
	}
	return int64(len(t.arena) + 4*cap(t.off) + 4*cap(t.size) + 4*cap(t.name) + 2*cap(t.mod) + 2*cap(t.nameLen))
}

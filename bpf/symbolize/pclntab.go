//go:build linux

package symbolize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// pclntab reads the function table, names, files and lines of a Go 1.18 or
// later .gopclntab in place (the layout of runtime/symtab.go's pcHeader and
// _func, which debug/gosym also follows). gosym does the same but keeps
// every function name it decoded, in a map the caller cannot clear, and
// allocates a Func and a Sym per function to list them: for the agent's
// own 41 MB binary that is 3 MB of names held twice (once copied into the
// object's symtab) and 10 MB of garbage each time the binary is parsed.
// Here only the file names looked up are kept. Older tables (Go 1.2 to
// 1.17) still go through gosym.
//
// Every read is bounds-checked: a malformed table gives an error or no
// answer, never a panic. A table mapped from a file can still fault when
// the file is truncated; callers run under guardFaults.
type pclntab struct {
	bo        binary.ByteOrder
	quantum   uint64
	textStart uint64
	nfunc     uint32
	functab   []byte // nfunc (entry offset, _func offset) pairs, then the end's offset
	funcdata  []byte // where _func offsets point; starts with functab
	funcnames []byte
	cutab     []byte
	filetab   []byte
	pctab     []byte
	files     map[uint32]string // file names looked up, by offset in filetab
	nfiles    uint64
}

// go118Magic and go120Magic are the pclntab magics of Go 1.18-1.19 and of
// Go 1.20 on; the layout is the same.
const go118Magic, go120Magic = 0xfffffff0, 0xfffffff1

// errOldPclntab marks a table older than Go 1.18, for gosym.
var errOldPclntab = errors.New("pclntab older than Go 1.18")

// parsePclntab reads the header of data. textStart is runtime.text's
// address: Go 1.26 no longer records it in the header, and PIE files
// relocate it, so the caller finds it.
func parsePclntab(data []byte, textStart uint64) (*pclntab, error) {
	if len(data) < 8 {
		return nil, errors.New("pclntab too short")
	}
	t := &pclntab{textStart: textStart, files: map[uint32]string{}}
	switch {
	case isMagic(binary.LittleEndian.Uint32(data)):
		t.bo = binary.LittleEndian
	case isMagic(binary.BigEndian.Uint32(data)):
		t.bo = binary.BigEndian
	default:
		return nil, errOldPclntab
	}
	quantum, ptrSize := data[6], int(data[7])
	if data[4] != 0 || data[5] != 0 || (quantum != 1 && quantum != 2 && quantum != 4) || (ptrSize != 4 && ptrSize != 8) {
		return nil, errors.New("pclntab header malformed")
	}
	t.quantum = uint64(quantum)
	// After the 8 bytes: nfunc, nfiles, textStart, and the offsets of
	// funcnametab, cutab, filetab, pctab and functab, a word each.
	const words = 8
	if len(data) < 8+words*ptrSize {
		return nil, errors.New("pclntab header truncated")
	}
	word := func(i int) uint64 {
		if ptrSize == 4 {
			return uint64(t.bo.Uint32(data[8+4*i:]))
		}
		return t.bo.Uint64(data[8+8*i:])
	}
	from := func(i int) ([]byte, error) {
		off := word(i)
		if off > uint64(len(data)) {
			return nil, fmt.Errorf("pclntab offset %d past its %d bytes", off, len(data))
		}
		return data[off:], nil
	}
	nfunc := word(0)
	if nfunc == 0 || nfunc > 1<<28 {
		return nil, fmt.Errorf("pclntab of %d functions", nfunc)
	}
	t.nfunc, t.nfiles = uint32(nfunc), min(word(1), 1<<24)
	var err error
	for i, dst := range []*[]byte{&t.funcnames, &t.cutab, &t.filetab, &t.pctab, &t.funcdata} {
		if *dst, err = from(3 + i); err != nil {
			return nil, err
		}
	}
	// The file names end where the pc tables begin (the linker's order):
	// that bounds what a lookup can read of them, and so what the cache of
	// names looked up can hold, whatever a malformed table says.
	if ft, pt := word(5), word(6); pt > ft {
		t.filetab = t.filetab[:min(uint64(len(t.filetab)), pt-ft)]
	}
	t.nfiles = min(t.nfiles, uint64(len(t.filetab)))
	if n := (2*uint64(t.nfunc) + 1) * 4; n > uint64(len(t.funcdata)) {
		return nil, errors.New("pclntab function table truncated")
	}
	t.functab = t.funcdata[:(2*uint64(t.nfunc)+1)*4]
	return t, nil
}

func isMagic(m uint32) bool { return m == go118Magic || m == go120Magic }

// pc is the entry of function i, or for i == nfunc the end of the last.
func (t *pclntab) pc(i uint32) uint64 { return t.textStart + uint64(t.bo.Uint32(t.functab[8*i:])) }

// field reads the n-th 32-bit field of function i's _func (0: entry
// offset, 1: name offset, 5: pcfile, 6: pcln, 8: cuOffset).
func (t *pclntab) field(i uint32, n int) (uint32, bool) {
	off := uint64(t.bo.Uint32(t.functab[8*i+4:])) + 4*uint64(n)
	if off+4 > uint64(len(t.funcdata)) {
		return 0, false
	}
	return t.bo.Uint32(t.funcdata[off:]), true
}

// cstring is the NUL-terminated string at off of b, or false.
func cstring(b []byte, off uint32) ([]byte, bool) {
	if uint64(off) >= uint64(len(b)) {
		return nil, false
	}
	n := bytes.IndexByte(b[off:], 0)
	if n < 0 {
		return nil, false
	}
	return b[off : off+uint32(n)], true
}

// funcs lists the functions, with their names, in address order (the
// table's). rank is gosym's: the pclntab's names win over the ELF symbol
// table's at the same address.
func (t *pclntab) funcs() ([]rawSym, error) {
	out := make([]rawSym, 0, t.nfunc)
	for i := range t.nfunc {
		entry, end := t.pc(i), t.pc(i+1)
		nameOff, ok := t.field(i, 1)
		if !ok {
			return nil, fmt.Errorf("function %d: _func past the table", i)
		}
		name, ok := cstring(t.funcnames, nameOff)
		if !ok || end < entry {
			return nil, fmt.Errorf("function %d at %#x malformed", i, entry)
		}
		out = append(out, rawSym{start: entry, size: end - entry, name: string(name), rank: -1})
	}
	return out, nil
}

// find returns the index of the function covering pc.
func (t *pclntab) find(pc uint64) (uint32, bool) {
	if pc < t.pc(0) || pc >= t.pc(t.nfunc) {
		return 0, false
	}
	// The first function whose entry is past pc, less one.
	lo, hi := uint32(0), t.nfunc
	for lo < hi {
		m := lo + (hi-lo)/2
		if t.pc(m) <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1, true
}

// pcvalue runs the pc-value table at off of the function entered at entry
// to target: the value in effect there, or false.
func (t *pclntab) pcvalue(off uint32, entry, target uint64) (int32, bool) {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return 0, false
	}
	p := t.pctab[off:]
	val, pc := int32(-1), entry
	for {
		// A zero value delta ends the table, but for the first pair (the
		// runtime's and gosym's rule: while pc is still the entry).
		first := pc == entry
		uvdelta, n := binary.Uvarint(p)
		if n <= 0 || uvdelta > 1<<32-1 {
			return 0, false
		}
		p = p[n:]
		if uvdelta == 0 && !first {
			return 0, false
		}
		pcdelta, n := binary.Uvarint(p)
		if n <= 0 || pcdelta > 1<<32-1 {
			return 0, false
		}
		p = p[n:]
		// Zig-zag: the low bit is the sign.
		d := uint32(uvdelta)
		if d&1 != 0 {
			d = ^(d >> 1)
		} else {
			d >>= 1
		}
		val += int32(d)
		pc += pcdelta * t.quantum
		if target < pc {
			return val, true
		}
	}
}

// pcToLine returns the file and line of pc, each empty or 0 where the
// table has none: the innermost inlined call's, as gosym gives them.
func (t *pclntab) pcToLine(pc uint64) (file string, line int) {
	i, ok := t.find(pc)
	if !ok {
		return "", 0
	}
	entry := t.pc(i)
	if pcln, ok := t.field(i, 6); ok {
		if l, ok := t.pcvalue(pcln, entry, pc); ok && l > 0 {
			line = int(l)
		}
	}
	pcfile, ok1 := t.field(i, 5)
	cu, ok2 := t.field(i, 8)
	if !ok1 || !ok2 {
		return "", line
	}
	fno, ok := t.pcvalue(pcfile, entry, pc)
	if !ok || fno < 0 {
		return "", line
	}
	at := (uint64(cu) + uint64(fno)) * 4
	if at+4 > uint64(len(t.cutab)) {
		return "", line
	}
	off := t.bo.Uint32(t.cutab[at:])
	if off == ^uint32(0) {
		return "", line
	}
	file, ok = t.files[off]
	if !ok {
		b, ok := cstring(t.filetab, off)
		if !ok {
			return "", line
		}
		file = string(b)
		if uint64(len(t.files)) < t.nfiles {
			t.files[off] = file
		}
	}
	return file, line
}

// heapBytes bounds the file names the table can come to hold, were every
// one looked up: at most nfiles names, whose bytes the file table holds,
// and a map slot each. Fixed from the start, since the object cache adds
// an object's size when it caches it and takes the same off when it drops
// it.
func (t *pclntab) heapBytes() int64 { return int64(len(t.filetab)) + int64(t.nfiles)*48 }

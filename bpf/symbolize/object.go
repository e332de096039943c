//go:build linux

package symbolize

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/bpf/ehframe"
)

// object is what symbolization keeps of one ELF file: its build ID, where
// its PT_LOAD segments sit, a compact symbol table and, for Go, a line
// table. It never holds the file or its *elf.File.
type object struct {
	key     string
	buildID string
	loads   []loadSeg // executable segments first
	syms    *symtab
	// frames are the code ranges .eh_frame describes, nameless: in a
	// stripped object they are the functions no symbol names, which are
	// then named by object and start address (unnamedPrefix).
	frames *symtab
	lines  *goLines // nil unless the object has a .gopclntab
	err    error    // why the object resolves nothing, if it does not
	warn   error    // why it resolves less than it could (errOverBudget, a bad table)

	aliases []string // stat identities that name this object in the cache

	// memo keeps the addresses resolved before: the same stacks come back
	// every window, and a Go line-table walk (under a fault guard) was a
	// fifth of the agent's CPU (agentprof). Two generations of at most
	// memoMax entries each: when memo fills it becomes old and a new one
	// starts, and a hit in old moves to memo, so what every window asks
	// for survives the turnover (a single map that started over when full
	// lost the hot addresses of a process with more than memoMax).
	memo, old map[uint64]resolved
}

// memoMax bounds each of an object's two memo generations: about 64 KiB
// of entries.
const memoMax = 1024

// resolved is what symbolize found for one address.
type resolved struct {
	name, file string
	line       int
	ok         bool
}

type loadSeg struct {
	off, vaddr, filesz uint64
}

// fileVaddr turns an offset in the file into the link-time virtual address
// of the PT_LOAD segment that maps it.
func (o *object) fileVaddr(off uint64) (uint64, bool) {
	for _, l := range o.loads {
		if off >= l.off && off-l.off < l.filesz {
			return off - l.off + l.vaddr, true
		}
	}
	return 0, false
}

// symbolize resolves a link-time address. file and line are set for Go code.
func (o *object) symbolize(vaddr uint64) (name, file string, line int, ok bool) {
	r, hit := o.memo[vaddr]
	if hit {
		return r.name, r.file, r.line, r.ok
	}
	if r, hit = o.old[vaddr]; !hit {
		r.name, r.file, r.line, r.ok = o.resolve(vaddr)
	}
	if o.memo == nil || len(o.memo) >= memoMax {
		o.old, o.memo = o.memo, make(map[uint64]resolved, 64)
	}
	o.memo[vaddr] = r
	return r.name, r.file, r.line, r.ok
}

// resolve is symbolize without the memo.
func (o *object) resolve(vaddr uint64) (name, file string, line int, ok bool) {
	i := o.syms.lookup(vaddr)
	if i < 0 {
		if j := o.frames.lookup(vaddr); j >= 0 {
			return unnamedPrefix + strconv.FormatUint(o.frames.start(j), 16), "", 0, true
		}
		return "", "", 0, false
	}
	name = o.syms.symName(i)
	if o.lines != nil {
		file, line = o.lines.pcToLine(vaddr)
	}
	return name, file, line, true
}

// bytes approximates the heap the object holds, for Stats.
func (o *object) bytes() int64 {
	n := int64(256 + len(o.key) + len(o.buildID) + 24*len(o.loads) + 2*64*memoMax)
	n += o.syms.bytes() + o.frames.bytes()
	if o.lines != nil {
		n += o.lines.heapBytes()
	}
	return n
}

// release unmaps what the object mapped. The caller must hold the
// Symbolizer's lock, so that no lookup is running.
func (o *object) release() {
	if o.lines != nil {
		o.lines.release()
	}
	o.syms.release()
}

// symbolsInPlace reads ef's symbol table of type typ in place
// (bigsymtab.go) when reading it with debug/elf was over the budget
// (readErr), for an object whose file is open (f) and that is not a Go
// program (its .gopclntab names its functions). Otherwise it returns nil
// and readErr.
func symbolsInPlace(ef *elf.File, f *os.File, typ elf.SectionType, budget int64, readErr error) (*symtab, error) {
	if !errors.Is(readErr, errOverBudget) || f == nil || pclntabSection(ef) != nil {
		return nil, readErr
	}
	sec := sectionOfType(ef, typ)
	if sec == nil {
		return nil, readErr
	}
	t, err := mappedSymbols(ef, f, sec, budget)
	switch {
	case err != nil:
		return nil, errors.Join(readErr, err)
	case t.len() == 0:
		return nil, readErr
	}
	return t, nil
}

// sectionOfType is ef's first section of type typ, or nil.
func sectionOfType(ef *elf.File, typ elf.SectionType) *elf.Section {
	for _, s := range ef.Sections {
		if s.Type == typ {
			return s
		}
	}
	return nil
}

// maxNoteBytes bounds the note sections read for a build ID.
const maxNoteBytes = 64 << 10

// BuildID returns the GNU build ID in hex, or failing that the Go build
// ID as it is printed by `go tool buildid`, or "".
func BuildID(ef *elf.File) string {
	var goID string
	scan := func(r io.Reader) string {
		data, err := io.ReadAll(io.LimitReader(r, maxNoteBytes))
		if err != nil && len(data) == 0 {
			return ""
		}
		gnu, g := parseNotes(data, ef.ByteOrder)
		if goID == "" {
			goID = g
		}
		return gnu
	}
	seen := false
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOTE {
			seen = true
			if id := scan(s.Open()); id != "" {
				return id
			}
		}
	}
	if !seen {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_NOTE {
				if id := scan(p.Open()); id != "" {
					return id
				}
			}
		}
	}
	return goID
}

// parseNotes walks ELF notes and returns the GNU (NT_GNU_BUILD_ID) and Go
// (type 4, name "Go") build IDs found.
func parseNotes(data []byte, bo binary.ByteOrder) (gnu, goID string) {
	Notes(data, bo, func(name string, typ uint32, desc []byte) {
		switch {
		case name == "GNU" && typ == 3 && gnu == "":
			gnu = hex.EncodeToString(desc)
		case name == "Go" && typ == 4 && goID == "":
			goID = string(desc)
		}
	})
	return
}

// Notes walks the ELF notes in data (a note section or PT_NOTE segment:
// namesz, descsz, type, then name and desc each padded to 4 bytes),
// calling each with every note's name (NULs trimmed), type and
// description. It stops at the first note that does not fit: data is the
// file's, not trusted.
func Notes(data []byte, bo binary.ByteOrder, each func(name string, typ uint32, desc []byte)) {
	align4 := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(data) >= 12 {
		namesz := uint64(bo.Uint32(data[0:]))
		descsz := uint64(bo.Uint32(data[4:]))
		typ := bo.Uint32(data[8:])
		data = data[12:]
		if align4(namesz) > uint64(len(data)) {
			return
		}
		name := string(bytes.TrimRight(data[:namesz], "\x00"))
		data = data[align4(namesz):]
		if descsz > uint64(len(data)) {
			return
		}
		desc := data[:descsz]
		data = data[min(align4(descsz), uint64(len(data))):]
		each(name, typ, desc)
	}
}

// parseObject reads the segments, symbols and Go line table of an ELF file.
// f, when not nil, is the open file under ef, used to map the Go line table
// instead of copying it to the heap. On failure the object carries the error
// and resolves nothing, so that the failure is cached too.
//
// budget bounds the heap that reading a symbol table may take: one over it
// with debug/elf is read in place (symbolsInPlace), and one over it even
// so is skipped for .dynsym (and .gopclntab), which warn says.
func parseObject(ef *elf.File, f *os.File, key, buildID string, budget int64) *object {
	o := &object{key: key, buildID: buildID}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		l := loadSeg{off: p.Off, vaddr: p.Vaddr, filesz: p.Filesz}
		if p.Flags&elf.PF_X != 0 {
			o.loads = append([]loadSeg{l}, o.loads...)
		} else {
			o.loads = append(o.loads, l)
		}
	}
	if len(o.loads) == 0 {
		o.err = errors.New("no PT_LOAD segment")
		return o
	}

	// Problems that leave the object with fewer symbols than it has: an
	// error if it ends up with none, a warning otherwise.
	var problems []error
	raw, textStart, err := functionSymbols(ef, elf.SHT_SYMTAB, budget)
	inPlace, err := symbolsInPlace(ef, f, elf.SHT_SYMTAB, budget, err) // a large C or C++ program's
	if err != nil {
		problems = append(problems, err)
	}
	if len(raw) == 0 && inPlace == nil && buildID != "" {
		// A stripped library (Debian's libc): its full symbol table may be
		// in a separate debug file, found by build ID as gdb and perf find
		// it (libc6-dbg installs libc's). The build ID is of the contents,
		// so the host's file serves a container's copy too.
		if dbg, err := elf.Open(debugFile(buildID)); err == nil {
			switch id := BuildID(dbg); {
			case id != buildID:
				problems = append(problems, fmt.Errorf("%s: build ID %s, not the object's", debugFile(buildID), id))
			default:
				if raw, textStart, err = functionSymbols(dbg, elf.SHT_SYMTAB, budget); err != nil {
					problems = append(problems, fmt.Errorf("%s: %w", debugFile(buildID), err))
				}
			}
			dbg.Close()
		}
	}
	// A full symbol table (the object's or its debug file's) names every
	// function; .dynsym names only the exported ones.
	full := len(raw) > 0 || inPlace != nil
	if !full {
		raw, textStart, err = functionSymbols(ef, elf.SHT_DYNSYM, budget)
		if inPlace, err = symbolsInPlace(ef, f, elf.SHT_DYNSYM, budget, err); err != nil {
			problems = append(problems, err)
		}
	}

	if sec := pclntabSection(ef); sec != nil {
		g, funcs, warn, err := newGoLines(ef, sec, f, textStart)
		if warn != nil {
			problems = append(problems, warn)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("reading .gopclntab: %w", err))
		} else {
			o.lines = g
			raw = append(raw, funcs...)
		}
	}
	o.syms, _ = newSymtab(raw)
	if inPlace != nil {
		o.syms = inPlace
	}
	if !full {
		// Only the functions no symbol names need .eh_frame's ranges.
		frames, err := functionRanges(ef, budget)
		if err != nil {
			problems = append(problems, err)
		}
		o.frames = frames
	}
	switch {
	case o.syms.len() == 0 && o.frames.len() > 0:
		// Stripped: its functions are named by address (unnamedPrefix).
		if len(problems) > 0 {
			o.warn = errors.Join(problems...)
		}
	case o.syms.len() == 0 && len(problems) == 0:
		o.err = errors.New("no function symbols")
	case o.syms.len() == 0:
		o.err = errors.Join(problems...)
	case len(problems) > 0:
		o.warn = errors.Join(problems...)
	}
	return o
}

// unnamedPrefix begins the name resolve gives a function that no symbol
// names, found by its .eh_frame range: "+0x1a960", its start address in
// the object. The caller puts the object's file name before it
// ("xz+0x1a960"), as perf does, so that samples in one function group
// together and can be named later from a debug file with the build ID
// (addr2line -e FILE 0x1a960). No symbol begins with "+".
const unnamedPrefix = "+0x"

// functionRanges reads the code ranges of ef's .eh_frame, which the
// x86-64 ABI keeps in stripped objects; nil without one, and an error
// when it is over budget: reading it holds about five times its size
// (the section, an FDE of 72 bytes for every 20 or so of it, the ranges).
func functionRanges(ef *elf.File, budget int64) (*symtab, error) {
	s := ef.Section(".eh_frame")
	if s == nil {
		return nil, nil
	}
	if 5*int64(s.Size) > budget {
		return nil, fmt.Errorf(".eh_frame of %d bytes: %w", s.Size, errOverBudget)
	}
	fdes, err := ehframe.FromELF(ef)
	if err != nil && len(fdes) == 0 {
		return nil, nil
	}
	raw := make([]rawSym, len(fdes))
	for i, f := range fdes {
		raw[i] = rawSym{start: f.Begin, size: f.End - f.Begin}
	}
	t, _ := newSymtab(raw)
	return t, nil
}

// functionSymbols reads the function symbols of one symbol table of ef,
// and where Go's runtime.text is when it is there.
func functionSymbols(ef *elf.File, typ elf.SectionType, budget int64) (raw []rawSym, textStart uint64, err error) {
	syms, err := readSymbols(ef, typ, budget)
	for _, s := range syms {
		if s.Name == "runtime.text" {
			textStart = s.Value
		}
		if r, ok := elfSym(ef, s); ok {
			raw = append(raw, r)
		}
	}
	return raw, textStart, err
}

// DebugDir is where separate debug files are looked up by build ID:
// DebugDir/.build-id/ab/cdef....debug.
var DebugDir = "/usr/lib/debug"

// debugFile is the path of the separate debug file of an object.
func debugFile(buildID string) string {
	if len(buildID) < 3 {
		return ""
	}
	return filepath.Join(DebugDir, ".build-id", buildID[:2], buildID[2:]+".debug")
}

// readSymbols reads the symbol table of type typ (SHT_SYMTAB or SHT_DYNSYM)
// if the object has one and reading it fits in budget.
func readSymbols(ef *elf.File, typ elf.SectionType, budget int64) ([]elf.Symbol, error) {
	c := readCost(ef, typ)
	if c == 0 {
		return nil, nil
	}
	name := ".dynsym"
	if typ == elf.SHT_SYMTAB {
		name = ".symtab"
	}
	if c > budget {
		return nil, fmt.Errorf("%w: %s would take %d MiB to read, over the budget of %d MiB", errOverBudget, name, c>>20, budget>>20)
	}
	var syms []elf.Symbol
	var err error
	if typ == elf.SHT_SYMTAB {
		syms, err = ef.Symbols()
	} else {
		syms, err = ef.DynamicSymbols()
	}
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return syms, nil
}

// errOverBudget marks a symbol table skipped for its size.
var errOverBudget = errors.New("symbol table over budget")

// readCost estimates the heap that reading the first section of type typ
// with debug/elf takes: about 100 bytes an elf.Symbol, plus the names. It is
// 0 when there is no such section.
func readCost(ef *elf.File, typ elf.SectionType) int64 {
	for _, s := range ef.Sections {
		if s.Type != typ {
			continue
		}
		ent := s.Entsize
		if ent == 0 {
			ent = 24
		}
		cost := int64(s.Size/ent) * 100
		if int(s.Link) < len(ef.Sections) {
			cost += int64(ef.Sections[s.Link].Size)
		}
		return cost
	}
	return 0
}

// elfSym keeps function symbols, ranking global over weak over local, and
// untyped symbols in executable sections (hand-written assembly) last.
func elfSym(ef *elf.File, s elf.Symbol) (rawSym, bool) {
	if s.Value == 0 || s.Name == "" || s.Section == elf.SHN_UNDEF {
		return rawSym{}, false
	}
	rank := 0
	switch elf.ST_TYPE(s.Info) {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
	case elf.STT_NOTYPE:
		if int(s.Section) >= len(ef.Sections) || ef.Sections[s.Section].Flags&elf.SHF_EXECINSTR == 0 {
			return rawSym{}, false
		}
		rank = 3
	default:
		return rawSym{}, false
	}
	switch elf.ST_BIND(s.Info) {
	case elf.STB_GLOBAL:
	case elf.STB_WEAK:
		rank++
	default:
		rank += 2
	}
	// A .symtab names a versioned symbol with its version
	// ("pthread_mutex_lock@@GLIBC_2.2.5", a separate debug file's glibc);
	// .dynsym keeps the version apart (debug/elf leaves it out of Name).
	// The function is the same with and without the debug file.
	name, _, _ := strings.Cut(s.Name, "@")
	if name == "" {
		return rawSym{}, false
	}
	return rawSym{start: s.Value, size: s.Size, name: name, rank: int8(rank)}, true
}

func pclntabSection(ef *elf.File) *elf.Section {
	for _, name := range []string{".gopclntab", ".data.rel.ro.gopclntab"} {
		if s := ef.Section(name); s != nil && s.Type != elf.SHT_NOBITS && s.Size > 0 {
			return s
		}
	}
	return nil
}

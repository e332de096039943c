// Package ehframe reads the call frame information of an ELF object's
// .eh_frame section and evaluates it into rule tables: at each address of
// a function, where the caller's stack pointer (the CFA, canonical frame
// address) is, and where each register the function saved, the return
// address first, can be read back.
//
// The x86-64 ABI requires .eh_frame for C++ exceptions and keeps it in
// stripped binaries, including distribution ones built without frame
// pointers, so it is what lets a profiler walk such stacks. This package
// is pure (no eBPF, no process memory): it is the user-space half of
// native unwinding, compiled to compact rows by Compile and checked
// against binutils' readelf --debug-dump=frames-interp in its tests.
//
// Written here rather than imported: Delve's pkg/dwarf/frame gives the
// rules at one address but cannot list a function's rows, and reads only
// pc-relative pointers; the OpenTelemetry profiler's reader emits its
// own eBPF format with no stable API.
//
// The format is DWARF's .debug_frame with the changes the LSB's "Exception
// Frames" section lists: CIE pointers relative to the FDE, augmentation
// strings ("zR", "zPLR", "zRS") and encoded pointers (DW_EH_PE_*).
package ehframe

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// Reg is a DWARF register number. On x86-64 (the psABI's table): 0 rax,
// 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 16 the
// return address (rip).
type Reg uint16

// x86-64 DWARF register numbers used by the unwinder.
const (
	RegRBP Reg = 6
	RegRSP Reg = 7
	RegRA  Reg = 16
)

// maxReg bounds the registers a table tracks: x86-64's 0..16 and arm64's
// x0..x30, sp (31) and pc (32). Rules for others (vector registers) are
// read and dropped: no unwinder needs them.
const maxReg = 33

// RuleKind says how a register of the caller is recovered.
type RuleKind uint8

// The register rules of DWARF 5, section 6.4.1.
const (
	// RuleUndefined: not recoverable. For the return address it marks the
	// outermost frame (_start, a thread's entry).
	RuleUndefined     RuleKind = iota
	RuleSameValue              // unchanged by this function
	RuleOffset                 // saved at CFA+Offset
	RuleValOffset              // the value is CFA+Offset
	RuleRegister               // held in register Reg
	RuleExpression             // saved at the address Expr computes
	RuleValExpression          // the value is what Expr computes
)

// Rule is a register's rule at some address.
type Rule struct {
	Kind   RuleKind
	Offset int64
	Reg    Reg
	Expr   []byte // a DWARF expression, for the expression kinds
}

// CFA is the rule for the canonical frame address: Reg+Offset, or, when
// Expr is set, what the DWARF expression computes (PLT stubs, realigned
// stacks, signal trampolines).
type CFA struct {
	Reg    Reg
	Offset int64
	Expr   []byte
}

// Row is the unwind rules from Loc to the next row's Loc (or the FDE's
// end). Rows handed to a callback are reused: copy what is kept.
type Row struct {
	Loc  uint64
	CFA  CFA
	Regs [maxReg]Rule
}

// RA is the return address's rule.
func (r *Row) RA(cie *CIE) Rule { return r.Regs[cie.RAReg] }

// CIE is a Common Information Entry: what its FDEs share.
type CIE struct {
	Offset        uint32 // in the section, for messages
	Augmentation  string
	CodeAlign     uint64
	DataAlign     int64
	RAReg         Reg
	SignalFrame   bool  // 'S': its FDEs are signal trampolines (the caller's pc is not a return address)
	ptrEnc        uint8 // 'R': how its FDEs' addresses are encoded
	initial       []byte
	initialRow    Row // the rules after the initial instructions
	initialRowErr error
}

// FDE is a Frame Description Entry: one function's (or code range's)
// rules, as instructions run from its CIE's initial row.
type FDE struct {
	Offset uint32 // in the section, for messages
	CIE    *CIE
	Begin  uint64 // first address covered
	End    uint64 // first address past it
	instr  []byte
	sec    *section
}

// section is what decoding needs besides the bytes: the section's
// address (for pc-relative pointers) and the object's byte order and
// pointer size.
type section struct {
	data    []byte
	addr    uint64
	order   binary.ByteOrder
	ptrSize int
}

// ErrNoEHFrame is returned for an object with no .eh_frame (Go binaries
// have none: their unwinding comes from .gopclntab and frame pointers).
var ErrNoEHFrame = errors.New("no .eh_frame section")

// FromELF reads the FDEs of an object's .eh_frame, sorted as the section
// lists them (linkers sort them by address; Compile does not rely on it).
func FromELF(f *elf.File) ([]FDE, error) {
	s := f.Section(".eh_frame")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, ErrNoEHFrame
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf(".eh_frame: %w", err)
	}
	ptrSize := 8
	if f.Class == elf.ELFCLASS32 {
		ptrSize = 4
	}
	return Parse(data, s.Addr, f.ByteOrder, ptrSize)
}

// Parse reads the CIEs and FDEs of an .eh_frame section's bytes, loaded at
// addr. An entry that cannot be read is skipped (its length says where
// the next begins), with the FDEs of a CIE that cannot be read; the error
// then names the first few, beside the FDEs that could be read. Only a
// length that runs past the section ends the reading there.
func Parse(data []byte, addr uint64, order binary.ByteOrder, ptrSize int) ([]FDE, error) {
	sec := &section{data: data, addr: addr, order: order, ptrSize: ptrSize}
	cies := map[uint32]*CIE{}
	bad := map[uint32]bool{} // CIEs that could not be read
	var fdes []FDE
	var errs []error
	skipped := 0
	fail := func(err error) {
		if skipped++; len(errs) < maxErrors {
			errs = append(errs, err)
		}
	}
	for off := 0; off < len(data); {
		r := reader{sec: sec, pos: off}
		length := uint64(r.u32())
		if r.err != nil {
			fail(fmt.Errorf(".eh_frame+%#x: %w", off, r.err))
			break
		}
		if length == 0 { // the terminator (crtend's zero word)
			break
		}
		dwarf64 := length == 0xffffffff
		if dwarf64 {
			length = r.u64()
		}
		start := r.pos
		if r.err != nil || length > uint64(len(data)-start) {
			fail(fmt.Errorf(".eh_frame+%#x: entry of %d bytes runs past the section's %d", off, length, len(data)))
			break
		}
		end := start + int(length)
		idPos := r.pos
		var id uint64
		if dwarf64 {
			id = r.u64()
		} else {
			id = uint64(r.u32())
		}
		body := reader{sec: sec, pos: r.pos, end: end}
		switch {
		case r.err != nil:
			fail(fmt.Errorf(".eh_frame+%#x: %w", off, r.err))
		case id == 0:
			cie, err := parseCIE(uint32(off), &body)
			if err != nil {
				bad[uint32(off)] = true
				fail(fmt.Errorf(".eh_frame+%#x: CIE: %w", off, err))
				break
			}
			cies[uint32(off)] = cie
		case id > uint64(idPos):
			// The CIE pointer is the distance back from this field.
			fail(fmt.Errorf(".eh_frame+%#x: FDE's CIE pointer %#x points before the section", off, id))
		default:
			cieOff := uint32(uint64(idPos) - id)
			cie, ok := cies[cieOff]
			if !ok {
				if !bad[cieOff] {
					fail(fmt.Errorf(".eh_frame+%#x: FDE's CIE at %#x is not a CIE read before it", off, cieOff))
				} else {
					skipped++
				}
				break
			}
			fde, err := parseFDE(uint32(off), cie, &body)
			if err != nil {
				fail(fmt.Errorf(".eh_frame+%#x: FDE: %w", off, err))
				break
			}
			if fde.End > fde.Begin { // zero-length FDEs cover nothing (discarded code)
				fdes = append(fdes, fde)
			}
		}
		off = end
	}
	if skipped > 0 {
		return fdes, fmt.Errorf("%d entries not read: %w", skipped, errors.Join(errs...))
	}
	return fdes, nil
}

// maxErrors bounds the entries Parse's error names.
const maxErrors = 4

func parseCIE(off uint32, r *reader) (*CIE, error) {
	cie := &CIE{Offset: off, ptrEnc: peAbsPtr}
	version := r.u8()
	if version != 1 && version != 3 {
		return nil, fmt.Errorf("version %d (want 1 or 3)", version)
	}
	cie.Augmentation = r.cstring()
	if cie.Augmentation == "eh" { // GCC 2.x: a pointer to exception data follows
		r.skip(r.sec.ptrSize)
	}
	cie.CodeAlign = r.uleb()
	cie.DataAlign = r.sleb()
	if version == 1 {
		cie.RAReg = Reg(r.u8())
	} else {
		cie.RAReg = Reg(r.uleb())
	}
	if cie.RAReg >= maxReg {
		return nil, fmt.Errorf("return address register %d", cie.RAReg)
	}
	if len(cie.Augmentation) > 0 && cie.Augmentation[0] == 'z' {
		n := r.uleb()
		if r.err == nil && n > uint64(r.end-r.pos) {
			return nil, fmt.Errorf("augmentation data of %d bytes runs past the entry", n)
		}
		augEnd := r.pos + int(n)
	aug:
		for _, c := range cie.Augmentation[1:] {
			switch c {
			case 'L': // the LSDA's encoding, for the FDEs' augmentation data
				r.u8()
			case 'P': // the personality routine: an encoding and a pointer, skipped
				enc := r.u8()
				if enc&0x70 == peAligned {
					r.pointer(enc)
				} else {
					r.value(enc & 0x0f)
				}
			case 'R':
				cie.ptrEnc = r.u8()
			case 'S':
				cie.SignalFrame = true
			case 'B', 'G': // arm64: BTI, MTE-tagged frames; no data
			default:
				break aug // unknown: the rest is skipped by the length
			}
		}
		r.pos = augEnd
	} else if cie.Augmentation != "" && cie.Augmentation != "eh" {
		return nil, fmt.Errorf("augmentation %q cannot be skipped without 'z'", cie.Augmentation)
	}
	if r.err != nil {
		return nil, r.err
	}
	cie.initial = r.sec.data[r.pos:r.end]
	// Every register starts undefined (DWARF's default, and readelf's):
	// for the return address that means the outermost frame; an unwinder
	// reads any other register without a rule as unchanged.
	cie.initialRow.CFA.Reg = RegRSP
	m := machine{cie: cie, row: &cie.initialRow, sec: r.sec}
	cie.initialRowErr = m.run(cie.initial, ^uint64(0), nil)
	return cie, nil
}

func parseFDE(off uint32, cie *CIE, r *reader) (FDE, error) {
	fde := FDE{Offset: off, CIE: cie, sec: r.sec}
	fde.Begin = r.pointer(cie.ptrEnc)
	// The range is a length: the encoding's format, never its base.
	fde.End = fde.Begin + r.value(cie.ptrEnc&0x0f)
	if len(cie.Augmentation) > 0 && cie.Augmentation[0] == 'z' {
		n := r.uleb()
		r.skip(int(min(n, uint64(r.end-r.pos)+1)))
	}
	if r.err != nil {
		return fde, r.err
	}
	fde.instr = r.sec.data[r.pos:r.end]
	return fde, nil
}

// Rows calls fn with each row of the FDE's rule table in address order,
// until fn returns false. The row is reused between calls. A row is
// given where an instruction changed a rule; it may still say what the
// one before said (a rule set back, a state restored). An error is a
// malformed or unsupported instruction; the rows before it were given.
func (f *FDE) Rows(fn func(*Row) bool) error {
	return f.rows(new(scratch), fn)
}

// scratch is what evaluating an FDE needs besides the FDE: kept across
// FDEs by Compile, so that tens of thousands of FDEs do not each
// allocate a row.
type scratch struct {
	row   Row
	m     machine
	instr section
}

func (f *FDE) rows(s *scratch, fn func(*Row) bool) error {
	if f.CIE.initialRowErr != nil {
		return fmt.Errorf("CIE at %#x: %w", f.CIE.Offset, f.CIE.initialRowErr)
	}
	s.row = f.CIE.initialRow
	s.row.Loc = f.Begin
	s.m = machine{cie: f.CIE, row: &s.row, initial: &f.CIE.initialRow, sec: f.sec, changed: true,
		saved: s.m.saved[:0], instr: &s.instr}
	m := &s.m
	emit := func() bool {
		if s.row.Loc >= f.End || !m.changed {
			return true
		}
		m.changed = false
		return fn(&s.row)
	}
	err := m.run(f.instr, f.End, emit)
	if err != nil {
		return fmt.Errorf("FDE at %#x: %w", f.Offset, err)
	}
	if !m.stopped {
		emit()
	}
	return nil
}

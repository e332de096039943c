package ehframe

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Kind is how an Entry finds the caller's frame (x86-64).
type Kind uint8

// The kinds of entries. The walker (bpf/c) reads the return address at
// CFA-8 and, for the frame-pointer-relative kinds, the caller's rbp where
// the entry says.
const (
	// KindEnd: no code here (a gap between FDEs): the stack is cut, the
	// address is not in any function the object describes.
	KindEnd Kind = iota
	// KindCFARSP: CFA = rsp + CFAOffset.
	KindCFARSP
	// KindCFARBP: CFA = rbp + CFAOffset (a frame on rbp: alloca, a
	// realigned stack, or code built with frame pointers).
	KindCFARBP
	// KindPLT: a PLT stub: CFA = rsp + CFAOffset, plus 8 once the low
	// four bits of rip reach PLTThreshold (after its push).
	KindPLT
	// KindSignal: a signal trampoline (__restore_rt): the interrupted
	// registers are in the signal frame's ucontext, on the stack.
	KindSignal
	// KindStop: the outermost frame (_start, a thread's entry: the return
	// address is undefined). The walk ends here, complete.
	KindStop
	// KindInvalid: rules the walker cannot follow (a CFA computed by
	// another expression or kept in another register, a return address
	// not at CFA-8). The walk is cut and the reason counted.
	KindInvalid
)

var kindNames = [...]string{"end", "cfa=rsp", "cfa=rbp", "plt", "signal", "stop", "invalid"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// RBPRule is where the caller's rbp is.
type RBPRule uint8

const (
	// RBPUnchanged: this function left rbp alone (or restored it).
	RBPUnchanged RBPRule = iota
	// RBPAtCFA: saved at CFA + RBPOffset.
	RBPAtCFA
	// RBPLost: saved where the walker cannot read it (another register,
	// an expression): a caller whose CFA is on rbp cannot be unwound.
	RBPLost
)

// Entry is one row of an object's compiled unwind table: the rules from
// PC to the next entry's PC. Addresses are the object's virtual
// addresses (as in its ELF headers); the walker subtracts the load bias.
type Entry struct {
	PC           uint64
	Kind         Kind
	CFAOffset    uint16 // also a PLT's first offset
	PLTThreshold uint8  // KindPLT only
	RBP          RBPRule
	RBPOffset    int16 // KindCFARSP/KindCFARBP with RBPAtCFA
	// Reason says why an entry is KindInvalid, for the counters.
	Reason Reason
}

// Reason is why an entry is invalid.
type Reason uint8

// The reasons an entry is invalid.
const (
	ReasonNone Reason = iota
	ReasonRANotAtCFA
	ReasonCFAExpression
	ReasonCFARegister
	ReasonCFAOffset
	ReasonInstructions // the FDE's instructions are malformed or unknown
)

var reasonNames = [...]string{"", "return address not at CFA-8", "CFA by expression", "CFA in another register", "CFA offset beyond 16 bits", "unreadable instructions"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// EntrySize is the bytes an Entry takes in the walker's table
// (Pack): a 32-bit address, the CFA offset, the kind with the rbp rule,
// and rbp's offset in 8-byte words.
const EntrySize = 8

// Pack writes the entry as the walker reads it, little-endian:
//
//	u32 pc; u16 cfa_offset; u8 kind | rbp_rule<<4; s8 rbp_offset/8 (a PLT's threshold)
//
// The address must fit 32 bits (Compile checks the object's range).
func (e *Entry) Pack(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], uint32(e.PC))
	binary.LittleEndian.PutUint16(b[4:], e.CFAOffset)
	b[6] = byte(e.Kind) | byte(e.RBP)<<4
	if e.Kind == KindPLT {
		b[7] = e.PLTThreshold
	} else {
		b[7] = byte(int8(e.RBPOffset / 8))
	}
}

// Table is an object's compiled unwind table.
type Table struct {
	Entries []Entry
	// FDEs is the count of FDEs compiled; Skipped those not (their
	// instructions did not run: their range is one invalid entry; or they
	// overlapped another), by reason.
	FDEs    int
	Skipped map[string]int
	// Invalid counts the invalid entries by reason.
	Invalid map[Reason]int
	// Unread says which entries of .eh_frame could not be read, if any:
	// the code they describe has no entry, and walks through it are cut.
	Unread error
}

// Bytes is the table's size packed for the walker.
func (t *Table) Bytes() int { return len(t.Entries) * EntrySize }

// minGap is the gap between two FDEs left without an end entry: linkers
// pad functions to 16 bytes with nops that belong to no FDE, and no pc is
// sampled there.
const minGap = 16

// CompileELF reads an object's .eh_frame and compiles it.
func CompileELF(f *elf.File) (*Table, error) {
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%s: only x86-64 is compiled", f.Machine)
	}
	fdes, err := FromELF(f)
	if len(fdes) == 0 {
		if err == nil {
			err = errors.New(".eh_frame describes no code")
		}
		return nil, err
	}
	t, cerr := Compile(fdes)
	if t != nil {
		t.Unread = err
	}
	return t, cerr
}

// Compile turns FDEs into one sorted table of entries for an unwinder
// that knows x86-64's rules: the return address at CFA-8, the CFA on rsp
// or rbp, rbp saved on the stack. Rules it cannot follow become invalid
// entries with a reason, never guesses.
func Compile(fdes []FDE) (*Table, error) {
	order := make([]*FDE, len(fdes))
	for i := range fdes {
		order[i] = &fdes[i]
	}
	slices.SortStableFunc(order, func(a, b *FDE) int {
		switch {
		case a.Begin < b.Begin:
			return -1
		case a.Begin > b.Begin:
			return 1
		}
		return 0
	})
	t := &Table{Skipped: map[string]int{}, Invalid: map[Reason]int{}}
	for _, fde := range order {
		if fde.End > math.MaxUint32 {
			return nil, fmt.Errorf("code up to %#x (FDE at %#x): the table's 32-bit addresses cannot hold it", fde.End, fde.Offset)
		}
	}
	// About seven entries an FDE in distribution objects (measured: 6.3 in
	// libc, 7.4 in libjvm): sized once rather than grown.
	t.Entries = make([]Entry, 0, 8*len(fdes))
	var end uint64 // the end of the last FDE compiled
	s := new(scratch)
	for _, fde := range order {
		if fde.Begin < end {
			t.Skipped["overlaps another FDE"]++
			continue
		}
		if len(t.Entries) > 0 && fde.Begin-end >= minGap {
			t.add(Entry{PC: end, Kind: KindEnd})
		}
		start := len(t.Entries)
		err := fde.rows(s, func(r *Row) bool {
			if n := len(t.Entries); r.Loc < fde.Begin || n > 0 && r.Loc < t.Entries[n-1].PC {
				return false // out of order: malformed (Rows never goes back)
			}
			t.add(entryOf(fde.CIE, r))
			return true
		})
		if err != nil {
			// Its range is marked, not left to the rules before it.
			t.Entries = t.Entries[:start]
			t.add(Entry{PC: fde.Begin, Kind: KindInvalid, Reason: ReasonInstructions})
			t.Skipped["instructions"]++
		} else {
			t.FDEs++
		}
		end = fde.End
	}
	if len(t.Entries) > 0 {
		t.add(Entry{PC: end, Kind: KindEnd})
	}
	for _, e := range t.Entries {
		if e.Kind == KindInvalid {
			t.Invalid[e.Reason]++
		}
	}
	return t, nil
}

// add appends an entry unless it says what the previous one says.
func (t *Table) add(e Entry) {
	if n := len(t.Entries); n > 0 {
		last := t.Entries[n-1]
		if last.PC == e.PC { // rules changed with no advance between (advance_loc 0): the later hold
			t.Entries[n-1] = e
			if n > 1 && sameEntry(t.Entries[n-2], e) {
				t.Entries = t.Entries[:n-1]
			}
			return
		}
		if sameEntry(last, e) {
			return
		}
	}
	t.Entries = append(t.Entries, e)
}

func sameEntry(a, b Entry) bool {
	a.PC, b.PC = 0, 0
	return a == b
}

// entryOf is the x86-64 walker's entry for a row.
func entryOf(cie *CIE, r *Row) Entry {
	e := Entry{PC: r.Loc}
	invalid := func(reason Reason) Entry {
		return Entry{PC: r.Loc, Kind: KindInvalid, Reason: reason}
	}
	ra := r.Regs[cie.RAReg]
	if ra.Kind == RuleUndefined {
		e.Kind = KindStop
		return e
	}
	if cie.SignalFrame {
		e.Kind = KindSignal
		return e
	}
	if ra.Kind != RuleOffset || ra.Offset != -8 {
		return invalid(ReasonRANotAtCFA)
	}
	switch {
	case r.CFA.Expr != nil:
		off, threshold, ok := pltExpression(r.CFA.Expr)
		if !ok {
			return invalid(ReasonCFAExpression)
		}
		e.Kind, e.CFAOffset, e.PLTThreshold = KindPLT, off, threshold
		return e
	case r.CFA.Reg == RegRSP:
		e.Kind = KindCFARSP
	case r.CFA.Reg == RegRBP:
		e.Kind = KindCFARBP
	default:
		return invalid(ReasonCFARegister)
	}
	if r.CFA.Offset < 0 || r.CFA.Offset > math.MaxUint16 {
		return invalid(ReasonCFAOffset)
	}
	e.CFAOffset = uint16(r.CFA.Offset)
	switch rbp := r.Regs[RegRBP]; rbp.Kind {
	case RuleUndefined, RuleSameValue:
		e.RBP = RBPUnchanged
	case RuleOffset:
		if rbp.Offset%8 != 0 || rbp.Offset/8 < math.MinInt8 || rbp.Offset/8 > math.MaxInt8 {
			e.RBP = RBPLost
		} else {
			e.RBP, e.RBPOffset = RBPAtCFA, int16(rbp.Offset)
		}
	default:
		e.RBP = RBPLost
	}
	return e
}

// pltExpression recognises the CFA expression binutils' ld writes for a
// PLT (the same for .plt and .plt.sec, with 10 or 11 as the threshold):
//
//	DW_OP_breg7 (rsp) N; DW_OP_breg16 (rip) 0; DW_OP_lit15; DW_OP_and;
//	DW_OP_lit10|11; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
//
// that is CFA = rsp + N + ((rip & 15) >= threshold ? 8 : 0): a stub pushes
// once, part-way through its 16 bytes.
func pltExpression(expr []byte) (offset uint16, threshold uint8, ok bool) {
	const (
		opBreg7 = 0x77
		opBreg  = 0x80 // breg16: 0x70 + 16
		opLit0  = 0x30
		opAnd   = 0x1a
		opGe    = 0x2a
		opShl   = 0x24
		opPlus  = 0x22
	)
	if len(expr) < 2 || expr[0] != opBreg7 {
		return 0, 0, false
	}
	r := reader{sec: &section{data: expr[1:]}}
	n := r.sleb()
	rest := expr[1+r.pos:]
	if r.err != nil || n < 0 || n > math.MaxUint16 || len(rest) != 9 {
		return 0, 0, false
	}
	lit := rest[4] - opLit0
	want := []byte{opBreg, 0x00, opLit0 + 15, opAnd, rest[4], opGe, opLit0 + 3, opShl, opPlus}
	if !bytes.Equal(rest, want) || lit > 15 {
		return 0, 0, false
	}
	return uint16(n), lit, true
}

// Lookup is the entry that covers pc (a virtual address of the object),
// as the walker's binary search finds it: the last entry at or before pc.
// False before the first entry.
func (t *Table) Lookup(pc uint64) (Entry, bool) {
	i, found := slices.BinarySearchFunc(t.Entries, pc, func(e Entry, pc uint64) int {
		switch {
		case e.PC < pc:
			return -1
		case e.PC > pc:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return Entry{}, false
	}
	return t.Entries[i], true
}

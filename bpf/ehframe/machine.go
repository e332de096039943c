package ehframe

import (
	"errors"
	"fmt"
	"math"
)

// Call frame instructions (DWARF 5, section 6.4.2, and GNU extensions).
const (
	cfaAdvanceLoc = 0x40 // high two bits; delta in the low six
	cfaOffset     = 0x80 // high two bits; register in the low six
	cfaRestore    = 0xc0 // high two bits; register in the low six

	cfaNop                     = 0x00
	cfaSetLoc                  = 0x01
	cfaAdvanceLoc1             = 0x02
	cfaAdvanceLoc2             = 0x03
	cfaAdvanceLoc4             = 0x04
	cfaOffsetExtended          = 0x05
	cfaRestoreExtended         = 0x06
	cfaUndefined               = 0x07
	cfaSameValue               = 0x08
	cfaRegister                = 0x09
	cfaRememberState           = 0x0a
	cfaRestoreState            = 0x0b
	cfaDefCFA                  = 0x0c
	cfaDefCFARegister          = 0x0d
	cfaDefCFAOffset            = 0x0e
	cfaDefCFAExpression        = 0x0f
	cfaExpression              = 0x10
	cfaOffsetExtendedSF        = 0x11
	cfaDefCFASF                = 0x12
	cfaDefCFAOffsetSF          = 0x13
	cfaValOffset               = 0x14
	cfaValOffsetSF             = 0x15
	cfaValExpression           = 0x16
	cfaGNUWindowSave           = 0x2d // arm64: DW_CFA_AARCH64_negate_ra_state
	cfaGNUArgsSize             = 0x2e
	cfaGNUNegativeOffsetExtend = 0x2f
)

// maxRememberDepth bounds DW_CFA_remember_state's stack: compilers nest a
// few; crafted input must not grow it without end.
const maxRememberDepth = 64

// machine runs call frame instructions over a row.
type machine struct {
	cie     *CIE
	row     *Row
	initial *Row // the CIE's row, for DW_CFA_restore; nil while running the CIE's own instructions
	sec     *section
	saved   []Row
	stopped bool     // emit asked to stop
	changed bool     // a rule changed since the last emit
	instr   *section // the instructions being run, for their reader
}

// run executes instr. Before each advance of the location it calls emit
// with the row as it stands (nil emit: the CIE's initial instructions,
// which have no location). It stops at end.
func (m *machine) run(instr []byte, end uint64, emit func() bool) error {
	// Operands are read from instr alone: its own bytes, the object's
	// byte order and pointer size.
	if m.instr == nil {
		m.instr = new(section)
	}
	*m.instr = section{data: instr, order: m.sec.order, ptrSize: m.sec.ptrSize}
	r := reader{sec: m.instr}
	var wrapped bool
	advance := func(delta uint64) bool {
		if emit != nil && !emit() {
			m.stopped = true
			return false
		}
		if m.cie.CodeAlign != 0 && delta > (math.MaxUint64-m.row.Loc)/m.cie.CodeAlign {
			wrapped = true // past the address space: malformed
			return false
		}
		m.row.Loc += delta * m.cie.CodeAlign
		return m.row.Loc < end
	}
	for r.pos < len(instr) && r.err == nil {
		op := r.u8()
		switch op & 0xc0 {
		case cfaAdvanceLoc:
			if !advance(uint64(op & 0x3f)) {
				return wrappedErr(wrapped)
			}
			continue
		case cfaOffset:
			m.changed = true
			m.set(Reg(op&0x3f), Rule{Kind: RuleOffset, Offset: int64(r.uleb()) * m.cie.DataAlign})
			continue
		case cfaRestore:
			m.changed = true
			m.restore(Reg(op & 0x3f))
			continue
		}
		switch op {
		case cfaNop, cfaGNUWindowSave, cfaGNUArgsSize, cfaSetLoc, cfaAdvanceLoc1, cfaAdvanceLoc2, cfaAdvanceLoc4:
		default:
			m.changed = true
		}
		switch op {
		case cfaNop, cfaGNUWindowSave:
		case cfaSetLoc:
			// The new location is absolute, encoded as the CIE's addresses
			// are; instructions are not in the section's address space
			// here, so a pc-relative one cannot be resolved.
			if m.cie.ptrEnc&0x70 != peAbsPtr {
				return fmt.Errorf("DW_CFA_set_loc with pointer encoding %#x", m.cie.ptrEnc)
			}
			loc := r.value(m.cie.ptrEnc & 0x0f)
			if loc < m.row.Loc {
				return fmt.Errorf("DW_CFA_set_loc goes back, from %#x to %#x", m.row.Loc, loc)
			}
			if emit != nil && !emit() {
				m.stopped = true
				return nil
			}
			m.row.Loc = loc
			if loc >= end {
				return nil
			}
		case cfaAdvanceLoc1:
			if !advance(uint64(r.u8())) {
				return wrappedErr(wrapped)
			}
		case cfaAdvanceLoc2:
			if !advance(uint64(r.u16())) {
				return wrappedErr(wrapped)
			}
		case cfaAdvanceLoc4:
			if !advance(uint64(r.u32())) {
				return wrappedErr(wrapped)
			}
		case cfaOffsetExtended:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleOffset, Offset: int64(r.uleb()) * m.cie.DataAlign})
		case cfaOffsetExtendedSF:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleOffset, Offset: r.sleb() * m.cie.DataAlign})
		case cfaGNUNegativeOffsetExtend:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleOffset, Offset: -int64(r.uleb()) * m.cie.DataAlign})
		case cfaValOffset:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleValOffset, Offset: int64(r.uleb()) * m.cie.DataAlign})
		case cfaValOffsetSF:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleValOffset, Offset: r.sleb() * m.cie.DataAlign})
		case cfaRestoreExtended:
			m.restore(Reg(r.uleb()))
		case cfaUndefined:
			m.set(Reg(r.uleb()), Rule{Kind: RuleUndefined})
		case cfaSameValue:
			m.set(Reg(r.uleb()), Rule{Kind: RuleSameValue})
		case cfaRegister:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleRegister, Reg: Reg(r.uleb())})
		case cfaExpression:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleExpression, Expr: r.bytes(int(min(r.uleb(), uint64(len(instr)))))})
		case cfaValExpression:
			reg := Reg(r.uleb())
			m.set(reg, Rule{Kind: RuleValExpression, Expr: r.bytes(int(min(r.uleb(), uint64(len(instr)))))})
		case cfaRememberState:
			if len(m.saved) >= maxRememberDepth {
				return fmt.Errorf("DW_CFA_remember_state nested over %d deep", maxRememberDepth)
			}
			m.saved = append(m.saved, *m.row)
		case cfaRestoreState:
			if len(m.saved) == 0 {
				return fmt.Errorf("DW_CFA_restore_state with no state remembered")
			}
			loc := m.row.Loc
			*m.row = m.saved[len(m.saved)-1]
			m.row.Loc = loc
			m.saved = m.saved[:len(m.saved)-1]
		case cfaDefCFA:
			m.row.CFA = CFA{Reg: Reg(r.uleb()), Offset: int64(r.uleb())}
		case cfaDefCFASF:
			m.row.CFA = CFA{Reg: Reg(r.uleb()), Offset: r.sleb() * m.cie.DataAlign}
		case cfaDefCFARegister:
			m.row.CFA.Reg, m.row.CFA.Expr = Reg(r.uleb()), nil
		case cfaDefCFAOffset:
			m.row.CFA.Offset, m.row.CFA.Expr = int64(r.uleb()), nil
		case cfaDefCFAOffsetSF:
			m.row.CFA.Offset, m.row.CFA.Expr = r.sleb()*m.cie.DataAlign, nil
		case cfaDefCFAExpression:
			m.row.CFA = CFA{Expr: r.bytes(int(min(r.uleb(), uint64(len(instr)))))}
		case cfaGNUArgsSize:
			r.uleb() // bytes of outgoing arguments: for exception handling only
		default:
			return fmt.Errorf("call frame instruction %#x at +%d", op, r.pos-1)
		}
	}
	if r.err != nil {
		return fmt.Errorf("instructions: %w", r.err)
	}
	return nil
}

// errWrapped is an advance of the location past the address space.
var errWrapped = errors.New("the location advances past the address space")

func wrappedErr(wrapped bool) error {
	if wrapped {
		return errWrapped
	}
	return nil
}

// set gives a register a rule; registers past maxReg are dropped.
func (m *machine) set(reg Reg, rule Rule) {
	if reg < maxReg {
		m.row.Regs[reg] = rule
	}
}

// restore gives a register back the CIE's rule for it.
func (m *machine) restore(reg Reg) {
	if reg < maxReg && m.initial != nil {
		m.row.Regs[reg] = m.initial.Regs[reg]
	}
}

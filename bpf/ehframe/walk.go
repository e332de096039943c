package ehframe

import (
	"debug/elf"
	"os"
)

// Walk is the unwinder the eBPF walker implements, in Go: the reference
// its tests and the kernel side's are held to, and the one user space
// uses where it has a stopped thread's registers and memory.

// Regs are the registers a walk starts from: a thread's user registers
// when it was interrupted.
type Regs struct {
	PC, SP, BP uint64
}

// LoadBias is what to subtract from an address of an executable mapping
// (at start, of the file from offset off, as /proc/PID/maps says) to get
// the object's virtual address, which its table is keyed by. The segment
// is the executable one whose file range the mapping's page holds: lld
// places text at an offset that is not page aligned, in the same page as
// the read-only segment before it.
func LoadBias(ef *elf.File, start, off uint64) (uint64, bool) {
	progs := make([]elf.ProgHeader, len(ef.Progs))
	for i, p := range ef.Progs {
		progs[i] = p.ProgHeader
	}
	return LoadBiasOf(progs, start, off)
}

// LoadBiasOf is LoadBias from an object's program headers, kept without
// the file.
func LoadBiasOf(progs []elf.ProgHeader, start, off uint64) (uint64, bool) {
	page := uint64(os.Getpagesize())
	for _, p := range progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && off >= p.Off&^(page-1) && off < p.Off+p.Filesz {
			return start - off + p.Off - p.Vaddr, true
		}
	}
	return 0, false
}

// Object is the compiled table of the object mapped at an address, and
// how to turn the address into the object's virtual address. With
// FramePointers, the code its table does not cover (all of it when Table
// is nil) keeps frame pointers and is walked by them: a Go binary's, whose
// .eh_frame, if any, covers its cgo parts alone.
type Object struct {
	Table         *Table
	FramePointers bool
	// Bias is what to subtract from an address to get the object's
	// virtual address (its load address for a shared object or PIE).
	Bias uint64
}

// Cut says why a walk ended before the outermost frame.
type Cut uint8

// Why walks end. Complete is the only one that is not a cut.
const (
	Complete     Cut = iota // reached an outermost frame (_start, a thread's entry)
	CutNoObject             // the pc is in no object with a table (JIT code, an unknown mapping)
	CutNotInCode            // the pc is in an object, outside every function it describes
	CutInvalid              // the rules there cannot be followed (Entry.Reason)
	CutReadFault            // a saved register could not be read
	CutRBPLost              // a CFA on rbp, where rbp's value was lost by a callee
	CutBadStack             // the stack pointer did not move up the stack
	CutDepth                // more frames than the walk's bound
)

var cutNames = [...]string{"complete", "no_object", "not_in_code", "invalid", "read_fault", "rbp_lost", "bad_stack", "depth"}

func (c Cut) String() string {
	if int(c) < len(cutNames) {
		return cutNames[c]
	}
	return "cut"
}

// Signal frame layout on x86-64 (the kernel's rt_sigframe): when the
// trampoline runs, the stack pointer is at the ucontext, whose
// mcontext's general registers start 40 bytes in (uc_flags, uc_link,
// uc_stack), in the order of struct sigcontext_64.
const (
	sigMcontext = 40
	sigRBP      = 10 * 8
	sigRSP      = 15 * 8
	sigRIP      = 16 * 8
)

// Walk unwinds a stack from regs: the pcs of its frames, innermost first,
// and why it ended. find gives the object mapped at an address; read
// reads 8 bytes of the thread's memory. At most maxFrames frames are returned.
// No frame is guessed: where a rule cannot be followed the walk stops
// and says why.
func Walk(regs Regs, find func(pc uint64) (Object, bool), read func(addr uint64) (uint64, bool), maxFrames int) ([]uint64, Cut) {
	pc, sp, bp := regs.PC, regs.SP, regs.BP
	bpKnown := true
	var pcs []uint64
	// The first frame's pc is where the thread is; a caller's is a return
	// address, one past its call instruction, which may be the first
	// byte of the next function: it is looked up one byte back.
	exact := true
	fpBefore := false // the frame before was left by its frame pointer
	for {
		if len(pcs) == maxFrames {
			return pcs, CutDepth
		}
		pcs = append(pcs, pc)
		at := pc
		if !exact {
			at--
		}
		obj, ok := find(at)
		if !ok {
			return pcs, CutNoObject
		}
		var e Entry
		inTable := false
		if obj.Table != nil {
			e, inTable = obj.Table.Lookup(at - obj.Bias)
			inTable = inTable && e.Kind != KindEnd
		}
		if !inTable && !obj.FramePointers {
			return pcs, CutNotInCode
		}
		if !inTable {
			// rbp is the frame's base: the caller's rbp at [rbp], the
			// return address above it. A table-walked frame before may
			// have been on another stack (a cgo call runs C on the
			// thread's system stack, Go on the goroutine's), so only
			// from one frame-pointer frame to the next must the stack go up.
			switch {
			case !bpKnown:
				return pcs, CutRBPLost
			case bp == 0: // the chain's end (a goroutine's first frame)
				return pcs, Complete
			case fpBefore && bp+16 <= sp:
				return pcs, CutBadStack
			}
			ra, ok1 := read(bp + 8)
			nbp, ok2 := read(bp)
			if !ok1 || !ok2 {
				return pcs, CutReadFault
			}
			if ra == 0 {
				return pcs, Complete
			}
			pc, sp, bp, exact, fpBefore = ra, bp+16, nbp, false, true
			continue
		}
		fpBefore = false
		var cfa uint64
		switch e.Kind {
		case KindStop:
			return pcs, Complete
		case KindInvalid:
			return pcs, CutInvalid
		case KindSignal:
			mc := sp + sigMcontext
			nbp, ok1 := read(mc + sigRBP)
			nsp, ok2 := read(mc + sigRSP)
			npc, ok3 := read(mc + sigRIP)
			if !ok1 || !ok2 || !ok3 {
				return pcs, CutReadFault
			}
			// The interrupted pc is where that thread was, not a return
			// address.
			pc, sp, bp, bpKnown, exact = npc, nsp, nbp, true, true
			if pc == 0 {
				return pcs, Complete
			}
			continue
		case KindCFARSP:
			cfa = sp + uint64(e.CFAOffset)
		case KindCFARBP:
			if !bpKnown {
				return pcs, CutRBPLost
			}
			cfa = bp + uint64(e.CFAOffset)
		case KindPLT:
			cfa = sp + uint64(e.CFAOffset)
			if pc&15 >= uint64(e.PLTThreshold) {
				cfa += 8
			}
		}
		if cfa <= sp {
			return pcs, CutBadStack
		}
		ra, ok := read(cfa - 8)
		if !ok {
			return pcs, CutReadFault
		}
		switch e.RBP {
		case RBPAtCFA:
			if bp, ok = read(cfa + uint64(int64(e.RBPOffset))); !ok {
				return pcs, CutReadFault
			}
			bpKnown = true
		case RBPLost:
			bpKnown = false
		}
		if ra == 0 { // a thread's entry with a zeroed return address
			return pcs, Complete
		}
		pc, sp, exact = ra, cfa, false
	}
}

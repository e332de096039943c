package ehframe

import "testing"

// TestWalkCuts walks made-up stacks through a made-up object: each way a
// walk ends is reached, and a cut keeps the frames found before it.
func TestWalkCuts(t *testing.T) {
	// Code at 0x1000..0x1400 (bias 0): a function with its CFA on rsp+16
	// and rbp saved at CFA-16; one on rbp+16; a PLT; an invalid range; a
	// gap; the outermost frame.
	tab := &Table{Entries: []Entry{
		{PC: 0x1000, Kind: KindCFARSP, CFAOffset: 16, RBP: RBPAtCFA, RBPOffset: -16},
		{PC: 0x1100, Kind: KindCFARBP, CFAOffset: 16},
		{PC: 0x1200, Kind: KindPLT, CFAOffset: 8, PLTThreshold: 11},
		{PC: 0x1210, Kind: KindInvalid, Reason: ReasonCFARegister},
		{PC: 0x1220, Kind: KindEnd},
		{PC: 0x1300, Kind: KindStop},
		{PC: 0x1400, Kind: KindEnd},
	}}
	find := func(pc uint64) (Object, bool) { return Object{Table: tab}, pc >= 0x1000 && pc < 0x1400 }
	mem := map[uint64]uint64{}
	read := func(a uint64) (uint64, bool) { v, ok := mem[a]; return v, ok }

	// frame 0 at 0x1010 (CFA rsp+16): returns into 0x1150 (CFA rbp+16),
	// which returns into 0x1301 (the outermost frame).
	sp := uint64(0x7000)
	mem[sp+16-8] = 0x1150 // return address at CFA-8
	mem[sp+16-16] = 0x7100
	mem[0x7100+16-8] = 0x1301
	pcs, cut := Walk(Regs{PC: 0x1010, SP: sp, BP: 0xdead}, find, read, 16)
	if cut != Complete || len(pcs) != 3 || pcs[1] != 0x1150 || pcs[2] != 0x1301 {
		t.Errorf("walk: %#x, %v; want 0x1010 0x1150 0x1301, complete", pcs, cut)
	}

	for _, tc := range []struct {
		name string
		regs Regs
		want Cut
		n    int
	}{
		{"no object", Regs{PC: 0x9000, SP: sp}, CutNoObject, 1},
		{"a gap", Regs{PC: 0x1230, SP: sp}, CutNotInCode, 1},
		{"invalid rules", Regs{PC: 0x1215, SP: sp}, CutInvalid, 1},
		{"unreadable stack", Regs{PC: 0x1010, SP: 0x5000}, CutReadFault, 1},
		{"stack going down", Regs{PC: 0x1110, SP: sp, BP: 0x10}, CutBadStack, 1},
		{"depth", Regs{PC: 0x1010, SP: sp, BP: 0xdead}, CutDepth, 2},
	} {
		max := 16
		if tc.want == CutDepth {
			max = 2
		}
		pcs, cut := Walk(tc.regs, find, read, max)
		if cut != tc.want || len(pcs) != tc.n {
			t.Errorf("%s: %d frames, %v; want %d, %v", tc.name, len(pcs), cut, tc.n, tc.want)
		}
	}

	// A PLT stub pushes once: before byte 11 of its 16 the return address
	// is at rsp, from it at rsp+8.
	mem[sp] = 0x1301
	mem[sp+8] = 0x1302
	for _, tc := range []struct{ pc, ra uint64 }{{0x1206, 0x1301}, {0x120b, 0x1302}} {
		pcs, _ := Walk(Regs{PC: tc.pc, SP: sp}, find, read, 4)
		if len(pcs) < 2 || pcs[1] != tc.ra {
			t.Errorf("PLT at %#x: %#x, want the caller %#x", tc.pc, pcs, tc.ra)
		}
	}

	// A callee that lost rbp: its caller's CFA on rbp cannot be found.
	lost := &Table{Entries: []Entry{
		{PC: 0x1000, Kind: KindCFARSP, CFAOffset: 8, RBP: RBPLost},
		{PC: 0x1100, Kind: KindCFARBP, CFAOffset: 16},
		{PC: 0x1400, Kind: KindEnd},
	}}
	mem[sp] = 0x1150
	pcs, cut = Walk(Regs{PC: 0x1010, SP: sp}, func(pc uint64) (Object, bool) { return Object{Table: lost}, true }, read, 8)
	if cut != CutRBPLost || len(pcs) != 2 {
		t.Errorf("rbp lost: %#x, %v; want 2 frames, rbp_lost", pcs, cut)
	}
}

// TestWalkMixed walks a cgo call's stack: C code by its table (on the
// thread's system stack), then Go code by frame pointers (on the
// goroutine's stack, lower in memory), to the chain's end.
func TestWalkMixed(t *testing.T) {
	// A cgo binary: C at 0x1000 (its .eh_frame's one function), Go
	// around it; and a Go shared object without a table at 0x4000.
	c := &Table{Entries: []Entry{
		{PC: 0x1000, Kind: KindCFARSP, CFAOffset: 16, RBP: RBPAtCFA, RBPOffset: -16}, // pushes rbp
		{PC: 0x1100, Kind: KindEnd},
	}}
	find := func(pc uint64) (Object, bool) {
		switch {
		case pc >= 0x800 && pc < 0x2000:
			return Object{Table: c, FramePointers: true}, true
		case pc >= 0x4000 && pc < 0x5000:
			return Object{FramePointers: true}, true
		}
		return Object{}, false
	}
	mem := map[uint64]uint64{}
	read := func(a uint64) (uint64, bool) { v, ok := mem[a]; return v, ok }
	sys, gstack := uint64(0x7f00_0000), uint64(0xc000_1000)
	// The C frame returns into Go (asmcgocall) and restores the rbp it
	// saved: the Go caller's frame on the goroutine stack, whose chain
	// goes up through two more Go frames to rbp 0.
	mem[sys+8] = 0x1810 // Go code before the C (asmcgocall)
	mem[sys] = gstack
	mem[gstack+8], mem[gstack] = 0x1120, gstack+0x40 // Go code after it
	mem[gstack+0x48], mem[gstack+0x40] = 0x4030, 0
	pcs, cut := Walk(Regs{PC: 0x1010, SP: sys, BP: 0xdead}, find, read, 16)
	if cut != Complete || len(pcs) != 4 || pcs[1] != 0x1810 || pcs[2] != 0x1120 || pcs[3] != 0x4030 {
		t.Errorf("mixed walk: %#x, %v; want 0x1010 0x1810 0x1120 0x4030, complete", pcs, cut)
	}
	// A frame-pointer chain going down its stack is cut.
	mem[gstack] = gstack - 0x100
	mem[gstack-0x100+8] = 0x4040
	if pcs, cut := Walk(Regs{PC: 0x1010, SP: sys, BP: 0xdead}, find, read, 16); cut != CutBadStack || len(pcs) != 3 {
		t.Errorf("a chain going down: %#x, %v; want 3 frames, bad_stack", pcs, cut)
	}
}

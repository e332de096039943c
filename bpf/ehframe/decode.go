package ehframe

import (
	"errors"
	"fmt"
)

// reader decodes one entry's fields. The first error sticks; later reads
// return zero.
type reader struct {
	sec *section
	pos int
	end int // 0: the section's end
	err error
}

var errShort = errors.New("entry ends in the middle of a field")

func (r *reader) limit() int {
	if r.end == 0 {
		return len(r.sec.data)
	}
	return r.end
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.limit()-r.pos {
		r.err = errShort
		return nil
	}
	b := r.sec.data[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *reader) skip(n int) { r.bytes(n) }

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return r.sec.order.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return r.sec.order.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return r.sec.order.Uint64(b)
	}
	return 0
}

func (r *reader) cstring() string {
	for i := r.pos; i < r.limit(); i++ {
		if r.sec.data[i] == 0 {
			s := string(r.sec.data[r.pos:i])
			r.pos = i + 1
			return s
		}
	}
	r.err = errShort
	return ""
}

func (r *reader) uleb() uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		b := r.u8()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= uint64(b&0x7f) << shift
		}
		if b&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) sleb() int64 {
	var v int64
	shift := uint(0)
	for {
		b := r.u8()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= int64(b&0x7f) << shift
		}
		shift += 7
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

// Pointer encodings (DW_EH_PE_*, LSB "Exception Frames").
const (
	peAbsPtr  = 0x00
	peULEB128 = 0x01
	peUData2  = 0x02
	peUData4  = 0x03
	peUData8  = 0x04
	peSLEB128 = 0x09
	peSData2  = 0x0a
	peSData4  = 0x0b
	peSData8  = 0x0c

	pePCRel   = 0x10
	peAligned = 0x50
	peOmit    = 0xff
)

// value reads a number in one of the encodings' formats (the low nibble).
func (r *reader) value(format uint8) uint64 {
	switch format {
	case peAbsPtr:
		if r.sec.ptrSize == 4 {
			return uint64(r.u32())
		}
		return r.u64()
	case peULEB128:
		return r.uleb()
	case peUData2:
		return uint64(r.u16())
	case peUData4:
		return uint64(r.u32())
	case peUData8:
		return r.u64()
	case peSLEB128:
		return uint64(r.sleb())
	case peSData2:
		return uint64(int64(int16(r.u16())))
	case peSData4:
		return uint64(int64(int32(r.u32())))
	case peSData8:
		return r.u64()
	}
	if r.err == nil {
		r.err = fmt.Errorf("pointer format %#x", format)
	}
	return 0
}

// pointer reads an address encoded as enc says. Only the bases an
// .eh_frame's code addresses use are known: absolute and pc-relative (to
// the field's own address). The others (text-, data-, function-relative)
// need addresses this reader does not have, and are errors.
func (r *reader) pointer(enc uint8) uint64 {
	if enc == peOmit {
		return 0
	}
	if enc&0x70 == peAligned {
		if a := r.sec.ptrSize; r.pos%a != 0 {
			r.skip(a - r.pos%a)
		}
		return r.value(peAbsPtr)
	}
	field := r.sec.addr + uint64(r.pos)
	v := r.value(enc & 0x0f)
	switch enc & 0x70 {
	case peAbsPtr:
	case pePCRel:
		v += field
	default:
		if r.err == nil {
			r.err = fmt.Errorf("pointer encoding %#x: only absolute and pc-relative addresses are read", enc)
		}
	}
	// 0x80 (indirect) says the address holds the pointer: for a
	// personality routine, which is skipped, never followed.
	return v
}

package ehframe

import (
	"debug/elf"
	"encoding/binary"
	"testing"
)

// FuzzParse feeds arbitrary bytes as an .eh_frame section: parsing and
// evaluating must end, without panics, whatever the bytes say (the
// objects come from the hosts the agent watches, not from us).
func FuzzParse(f *testing.F) {
	for _, path := range existing(nil, []string{"/usr/bin/xz", "/lib64/ld-linux-x86-64.so.2"}) {
		ef, err := elf.Open(path)
		if err != nil {
			continue
		}
		if s := ef.Section(".eh_frame"); s != nil {
			if b, err := s.Data(); err == nil {
				f.Add(b[:min(len(b), 4096)])
			}
		}
		ef.Close()
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		fdes, _ := Parse(data, 0x1000, binary.LittleEndian, 8)
		for i := range fdes {
			n := 0
			fdes[i].Rows(func(*Row) bool { n++; return n < 1<<16 })
		}
		Compile(fdes)
	})
}

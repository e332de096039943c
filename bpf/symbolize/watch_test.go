//go:build linux

package symbolize

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWatchGoneAndReused checks, on a fake /proc, that a process exiting
// mid-Watch (empty maps) keeps its snapshot, that a kernel thread's empty
// maps are not taken for an exit, and that a Builder re-watches a PID reused
// since its snapshot.
func TestWatchGoneAndReused(t *testing.T) {
	bins := needC(t)
	procfs := t.TempDir()
	dir := filepath.Join(procfs, "4242")
	bin := filepath.Join(dir, "root", "usr", "bin", "hot")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	data, err := os.ReadFile(bins.plain)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	writeStat := func(flags, start uint64) {
		os.WriteFile(filepath.Join(dir, "stat"), fmt.Appendf(nil, "4242 (hot) S 1 4242 4242 0 -1 %d 100 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n", flags, start), 0o644)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	major, minor := devOf(st.Dev)
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	var text *elf.Prog
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			text = p
		}
	}
	ef.Close()
	const base = 0x555555554000
	start, end := base+text.Vaddr&^0xfff, base+(text.Vaddr+text.Memsz+0xfff)&^0xfff
	mapsOK := fmt.Sprintf("%x-%x r-xp %08x %02x:%02x %d   /usr/bin/hot\n", start, end, text.Off&^0xfff, major, minor, st.Ino)
	writeMaps := func(s string) { os.WriteFile(filepath.Join(dir, "maps"), []byte(s), 0o644) }
	addr := base + symbolValue(t, bin, cFunc) + 4
	resolves := func(s *Symbolizer) bool {
		p := profileOf(t, s, Sample{PID: 4242, User: []uint64{addr}, Values: []int64{1, 1}})
		return frameOf(p.Sample[0].Location[0]).fn == cFunc
	}

	s := New(Options{ProcFS: procfs})
	defer s.Close()
	writeStat(4194560, 12345)
	writeMaps(mapsOK)
	if err := s.Watch(4242); err != nil {
		t.Fatal(err)
	}

	// Exiting: the maps read empty, with no error.
	writeMaps("")
	if err := s.Watch(4242); !errors.Is(err, ErrProcessGone) {
		t.Errorf("Watch with empty maps: %v, want ErrProcessGone", err)
	}
	if p := s.snapshot(4242); p == nil || len(p.maps) != 1 {
		t.Errorf("the snapshot was replaced: %+v", p)
	}
	if !resolves(s) {
		t.Error("the kept snapshot does not resolve")
	}

	// A kernel thread (PF_KTHREAD) maps nothing and is there.
	writeStat(0x00200040, 12345)
	if err := s.Watch(4242); err != nil {
		t.Errorf("Watch of a kernel thread: %v", err)
	}

	// The PID reused by a process that maps something else: a Builder
	// must not resolve through the old process's snapshot.
	writeStat(4194560, 12345)
	writeMaps(mapsOK)
	if err := s.Watch(4242); err != nil {
		t.Fatal(err)
	}
	writeStat(4194560, 99999)
	writeMaps("7ffd00000000-7ffd00021000 r-xp 00000000 00:00 0   [anon]\n")
	if resolves(s) {
		t.Error("a reused PID resolved through the old snapshot")
	}
	if p := s.snapshot(4242); p == nil || p.startTime != 99999 {
		t.Errorf("not watched again: %+v", p)
	}
}

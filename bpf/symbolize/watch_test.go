//go:build linux

package symbolize

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWatchGoneAndReused checks, on a fake /proc, that a process exiting
// mid-Watch (empty maps) keeps its snapshot, that a kernel thread's empty
// maps are not taken for an exit, and that a Builder re-watches a PID reused
// since its snapshot.
func TestWatchGoneAndReused(t *testing.T) {
	f := newFakeProc(t)
	procfs, dir, bin := f.procfs, f.dir, f.bin
	writeStat := func(flags, start uint64) {
		os.WriteFile(filepath.Join(dir, "stat"), fmt.Appendf(nil, "4242 (hot) S 1 4242 4242 0 -1 %d 100 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n", flags, start), 0o644)
	}
	mapsOK := f.mapsLine(f.ino)
	writeMaps := func(s string) { os.WriteFile(filepath.Join(dir, "maps"), []byte(s), 0o644) }
	addr := fakeBase + symbolValue(t, bin, cFunc) + 4
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
	// procfs makes the new process's /proc/PID anew (another inode):
	// with the same directory, the snapshot's process is still there.
	writeStat(4194560, 99999)
	writeMaps("7ffd00000000-7ffd00021000 r-xp 00000000 00:00 0   [anon]\n")
	if !resolves(s) {
		t.Error("/proc/PID unchanged: the snapshot was not kept")
	}
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(dir, 0o755)
	writeStat(4194560, 99999)
	writeMaps("7ffd00000000-7ffd00021000 r-xp 00000000 00:00 0   [anon]\n")
	if resolves(s) {
		t.Error("a reused PID resolved through the old snapshot")
	}
	if p := s.snapshot(4242); p == nil || p.startTime != 99999 {
		t.Errorf("not watched again: %+v", p)
	}
}

// TestWatchFileRewritten: a new snapshot reuses the files its last one
// identified, unless a file changed in place (same inode, another size
// or modification time): that one is looked up again.
func TestWatchFileRewritten(t *testing.T) {
	f := newFakeProc(t)
	os.WriteFile(filepath.Join(f.dir, "stat"), []byte("4242 (hot) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 100\n"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "maps"), []byte(f.mapsLine(f.ino)), 0o644)
	s := New(Options{ProcFS: f.procfs})
	defer s.Close()
	if err := s.Watch(4242); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	if err := s.Watch(4242); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ObjectHits+st.ObjectMisses != before.ObjectHits+before.ObjectMisses {
		t.Fatalf("an unchanged file was looked up again: %+v, before %+v", st, before)
	}
	// Rewritten in place: the same inode, a byte longer.
	w, err := os.OpenFile(f.bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{0})
	w.Close()
	if err := s.Watch(4242); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ObjectHits+st.ObjectMisses == before.ObjectHits+before.ObjectMisses {
		t.Errorf("a file rewritten in place kept its old identification: %+v", st)
	}
}

// BenchmarkPIDCheck is what a Builder pays once per PID a window to tell
// a reused PID: /proc/PID's inode (procInode), against reading the
// task's stat (readStat), for this test process.
func BenchmarkPIDCheck(b *testing.B) {
	pid := os.Getpid()
	b.Run("inode", func(b *testing.B) {
		for b.Loop() {
			procInode("/proc", pid)
		}
	})
	b.Run("stat", func(b *testing.B) {
		for b.Loop() {
			readStat("/proc", pid)
		}
	})
}

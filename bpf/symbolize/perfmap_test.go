//go:build linux

package symbolize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePerfMap(t *testing.T) {
	m, err := parsePerfMap(strings.NewReader(strings.Join([]string{
		"7f0000001000 100 JS:*hot /app/x.js:1:17",
		"7f0000002000 80 LazyCompile:~cold /app/x.js:9",
		"not a line",
		"7f0000003000 zz bad size",
		"7f0000001080 40 JS:*recompiled /app/x.js:1:17", // later, overlapping the first: it wins
		"0x7f0000004000 0x10 py::main:/app/m.py",
		"7f0000005000 20", // cut short as the JIT writes it
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[uint64]string{
		0x7f0000001090: "JS:*recompiled /app/x.js:1:17",
		0x7f0000001010: "", // the first symbol was dropped for the later one
		0x7f000000207f: "LazyCompile:~cold /app/x.js:9",
		0x7f0000002080: "",
		0x7f0000004008: "py::main:/app/m.py",
		0x7f0000005000: "",
	} {
		got, ok := m.lookup(addr)
		if got != want || ok != (want != "") {
			t.Errorf("lookup(%#x) = %q, %v; want %q", addr, got, ok, want)
		}
	}
	var none *perfMap
	if _, ok := none.lookup(1); ok {
		t.Error("a process without a perf map named a frame")
	}
}

// TestPerfMapFrames names a frame in an anonymous executable mapping (a
// JIT's code) from the process's /tmp/perf-PID.map, read through its
// root, under the PID it has in its own namespace.
func TestPerfMapFrames(t *testing.T) {
	f := newFakeProc(t)
	os.WriteFile(filepath.Join(f.dir, "stat"), []byte("4242 (node) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 100\n"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "status"), []byte("Name:\tnode\nNSpid:\t4242\t7\n"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "maps"), []byte(f.mapsLine(f.ino)+"3e0000000000-3e0000100000 rwxp 00000000 00:00 0\n"), 0o644)
	os.MkdirAll(filepath.Join(f.dir, "root", "tmp"), 0o755)
	os.WriteFile(filepath.Join(f.dir, "root", "tmp", "perf-7.map"), []byte("3e0000000100 200 JS:*hot /app/x.js:1:17\n"), 0o644)

	s := New(Options{ProcFS: f.procfs})
	defer s.Close()
	if err := s.Watch(4242); err != nil {
		t.Fatal(err)
	}
	p := profileOf(t, s, Sample{PID: 4242, User: []uint64{0x3e0000000180, 0x3e0000090000}, Values: []int64{1, 1}})
	locs := p.Sample[0].Location
	if got := frameOf(locs[0]); got.fn != "JS:*hot /app/x.js:1:17" {
		t.Errorf("JIT frame: %+v", got)
	}
	if got := frameOf(locs[1]); got.fn != "" {
		t.Errorf("a frame the perf map does not cover was named: %+v", got)
	}

	// Exited, not yet reaped (diagnose reads a command's last window
	// before it reaps it): /proc/PID stays, its root does not. The map is
	// then the one this host's /tmp holds under its PID, written since it
	// started.
	if err := os.Rename(filepath.Join(f.dir, "root"), filepath.Join(f.dir, "root.gone")); err != nil {
		t.Fatal(err)
	}
	hostMap := filepath.Join("/tmp", "perf-4242.map")
	if _, err := os.Stat(hostMap); err == nil {
		t.Skipf("%s exists: not ours to replace", hostMap)
	}
	if err := os.WriteFile(hostMap, []byte("3e0000000100 200 JS:*hot /app/x.js:1:17\n"), 0o644); err != nil {
		t.Skipf("cannot write %s: %v", hostMap, err)
	}
	defer os.Remove(hostMap)
	p = profileOf(t, s, Sample{PID: 4242, User: []uint64{0x3e0000000180}, Values: []int64{1}})
	if got := frameOf(p.Sample[0].Location[0]); got.fn != "JS:*hot /app/x.js:1:17" {
		t.Errorf("a zombie's JIT frame: %+v", got)
	}
}

//go:build linux

package symbolize

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGoBinaries(t *testing.T) {
	bins := needGo(t)
	entry := symbolValue(t, bins.def, goFunc)
	// -s -w drops .symtab and DWARF, not code: the function is where it is
	// in the unstripped build. Check rather than assume.
	if a, b := textBytes(t, bins.def, entry), textBytes(t, bins.stripped, entry); !bytes.Equal(a, b) {
		t.Fatalf("%s is not at %#x in the stripped build", goFunc, entry)
	}
	for _, tc := range []struct {
		name, path, symPath string
	}{
		{"default", bins.def, bins.def},
		{"stripped", bins.stripped, bins.def},
		{"pie", bins.pie, bins.pie},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := start(t, tc.path)
			pid := cmd.Process.Pid
			addr := runtimeAddr(t, pid, tc.path, symbolValue(t, tc.symPath, goFunc))
			if tc.name == "pie" {
				if addr == symbolValue(t, tc.symPath, goFunc) {
					t.Fatalf("PIE runs at its link-time address %#x: no load bias to test", addr)
				}
			}
			s := New(Options{})
			defer s.Close()
			if err := s.Watch(pid); err != nil {
				t.Fatal(err)
			}
			// A leaf inside the loop, a caller frame right after the entry.
			mid := uint64(12)
			p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + mid, addr + 1, 0, 0}, Values: []int64{1, 10}})
			if len(p.Sample) != 1 || len(p.Sample[0].Location) != 2 {
				t.Fatalf("want 1 sample of 2 locations, got %v", p)
			}
			for i, l := range p.Sample[0].Location {
				f := frameOf(l)
				if f.fn != goFunc || !strings.HasSuffix(f.file, "/main.go") || f.mapping != tc.path {
					t.Errorf("frame %d: got %+v, want %s in main.go, mapping %s", i, f, goFunc, tc.path)
				}
			}
			// The caller frame is looked up at addr+1-1, the entry. go tool
			// addr2line is the oracle for lines.
			entry := symbolValue(t, tc.symPath, goFunc)
			for i, at := range []uint64{entry + mid, entry} {
				if got, want := frameOf(p.Sample[0].Location[i]).line, addr2line(t, tc.symPath, at); got != want {
					t.Errorf("frame %d: line %d, want %d (addr2line)", i, got, want)
				}
			}
			if got := p.Sample[0].Location[1].Address; got != addr+1 {
				t.Errorf("caller frame keeps address %#x, want %#x", got, addr+1)
			}
			m := p.Sample[0].Location[0].Mapping
			if want := gnuBuildID(t, tc.path); m.BuildID != want {
				t.Errorf("build ID %q, want %q", m.BuildID, want)
			}
			if !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers {
				t.Errorf("mapping flags %+v", m)
			}
			if p.Sample[0].Value[1] != 10 {
				t.Errorf("values %v", p.Sample[0].Value)
			}
		})
	}
}

// addr2line returns the line of a link-time address, from go tool addr2line.
func addr2line(t *testing.T, path string, vaddr uint64) int64 {
	t.Helper()
	cmd := exec.Command("go", "tool", "addr2line", path)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("%#x\n", vaddr))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool addr2line: %v", err)
	}
	// "main.perfhoundHotLoop\n/path/main.go:15\n"
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	_, ln, ok := strings.Cut(lines[len(lines)-1], ".go:")
	var n int64
	if _, err := fmt.Sscan(ln, &n); !ok || err != nil || lines[0] != goFunc {
		t.Fatalf("go tool addr2line: %q", out)
	}
	return n
}

// textBytes returns 32 bytes of code at a link-time address of a file.
func textBytes(t *testing.T, path string, vaddr uint64) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr+32 <= p.Vaddr+p.Filesz {
			b := make([]byte, 32)
			if _, err := p.ReadAt(b, int64(vaddr-p.Vaddr)); err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%s: %#x not in a segment", path, vaddr)
	return nil
}

// TestCStrippedNamedByAddress symbolizes a program stripped of every
// symbol: its function is named by the program's file and the function's
// start, from .eh_frame ("c-bare+0x1139"), the same for every address in
// it, and the mapping keeps the build ID and says it has no symbols, so
// that pprof can name it later from a debug file.
func TestCStrippedNamedByAddress(t *testing.T) {
	bins := needC(t)
	cmd := start(t, bins.bare)
	pid := cmd.Process.Pid
	start := symbolValue(t, bins.plain, cFunc) // the same code, at the same address
	addr := runtimeAddr(t, pid, bins.bare, start)

	s := New(Options{})
	defer s.Close()
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + 4, addr + 9}, Values: []int64{1}})
	want := fmt.Sprintf("%s+0x%x", filepath.Base(bins.bare), start)
	for i, l := range p.Sample[0].Location {
		if f := frameOf(l); f.fn != want || f.mapping != bins.bare {
			t.Errorf("frame %d: %+v, want %s in %s", i, f, want, bins.bare)
		}
		if m := l.Mapping; m.BuildID != gnuBuildID(t, bins.bare) || m.HasFunctions {
			t.Errorf("mapping: build ID %q, has functions %v; want %q and false", m.BuildID, m.HasFunctions, gnuBuildID(t, bins.bare))
		}
	}
}

func TestCBinaries(t *testing.T) {
	bins := needC(t)
	for _, tc := range []struct {
		name, path, symPath string
	}{
		{"symtab", bins.plain, bins.plain},
		{"dynsym-only", bins.stripped, bins.dyn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := start(t, tc.path)
			pid := cmd.Process.Pid
			addr := runtimeAddr(t, pid, tc.path, symbolValue(t, tc.symPath, cFunc))
			libc := mappingOf(t, pid, func(p string) bool { return strings.Contains(filepath.Base(p), "libc.so") })
			nanosleep := runtimeAddr(t, pid, libc.path, symbolValue(t, libc.path, "nanosleep"))

			s := New(Options{})
			defer s.Close()
			if err := s.Watch(pid); err != nil {
				t.Fatal(err)
			}
			p := profileOf(t, s, Sample{
				PID:       pid,
				User:      []uint64{nanosleep + 2, addr + 4},
				Values:    []int64{1, 10},
				Labels:    map[string][]string{"comm": {"c-prog"}},
				NumLabels: map[string][]int64{"pid": {int64(pid)}},
			})
			locs := p.Sample[0].Location
			if f := frameOf(locs[0]); f.fn != "nanosleep" && !strings.Contains(f.fn, "nanosleep") || f.mapping != libc.path {
				t.Errorf("libc frame: %+v, want nanosleep in %s", f, libc.path)
			}
			if f := frameOf(locs[1]); f.fn != cFunc || f.mapping != tc.path || f.file != "" {
				t.Errorf("program frame: %+v, want %s in %s", f, cFunc, tc.path)
			}
			if got := p.Sample[0].Label["comm"]; len(got) != 1 || got[0] != "c-prog" {
				t.Errorf("labels %v", p.Sample[0].Label)
			}
			if got := p.Sample[0].NumLabel["pid"]; len(got) != 1 || got[0] != int64(pid) {
				t.Errorf("num labels %v", p.Sample[0].NumLabel)
			}
			if m := locs[1].Mapping; m.BuildID != gnuBuildID(t, tc.path) || !m.HasFunctions || m.HasFilenames {
				t.Errorf("mapping %+v", m)
			}
		})
	}
}

func TestResolvesAfterExit(t *testing.T) {
	bins := needGo(t)
	for _, maxObjects := range []int{0, 1} {
		t.Run(fmt.Sprintf("MaxObjects=%d", maxObjects), func(t *testing.T) {
			cmd := start(t, bins.pie)
			pid := cmd.Process.Pid
			addr := runtimeAddr(t, pid, bins.pie, symbolValue(t, bins.pie, goFunc))
			s := New(Options{MaxObjects: maxObjects})
			defer s.Close()
			if err := s.Watch(pid); err != nil {
				t.Fatal(err)
			}
			stop(t, cmd)
			if err := s.Watch(pid); !errors.Is(err, ErrProcessGone) {
				t.Fatalf("Watch of an exited process: %v, want ErrProcessGone", err)
			}
			// With one object cached, the objects mapped above the binary
			// (the vDSO at least) evicted it; it is read again from its
			// path, accepted because the build ID is the same.
			p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + 3}, Values: []int64{1, 1}})
			if f := frameOf(p.Sample[0].Location[0]); f.fn != goFunc {
				t.Errorf("after exit: %+v, want %s", f, goFunc)
			}
			st := s.Stats()
			if maxObjects == 1 && (st.ObjectReloads == 0 || st.Objects != 1) {
				t.Errorf("want a reload and one object, got %+v", st)
			}
			if st.UnknownUserFrames != 0 || st.GoneBeforeWatch != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestVDSO(t *testing.T) {
	bins := needGo(t)
	cmd := start(t, bins.def)
	pid := cmd.Process.Pid
	vdso := mappingOf(t, pid, func(p string) bool { return p == VDSOMapping })
	img, err := readVDSO("/proc", pid, vdso.start, vdso.end)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := ef.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var addr uint64
	for _, sym := range syms {
		if sym.Name == "__vdso_clock_gettime" {
			// The image is mapped from its start: file offset = image offset.
			for _, p := range ef.Progs {
				if p.Type == elf.PT_LOAD && sym.Value >= p.Vaddr && sym.Value < p.Vaddr+p.Filesz {
					addr = vdso.start + sym.Value - p.Vaddr + p.Off
				}
			}
		}
	}
	if addr == 0 {
		t.Fatal("no __vdso_clock_gettime in the vdso")
	}
	s := New(Options{})
	defer s.Close()
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + 8}, Values: []int64{1, 1}})
	f := frameOf(p.Sample[0].Location[0])
	if !strings.HasSuffix(f.fn, "clock_gettime") || f.mapping != VDSOMapping {
		t.Errorf("vdso frame %+v, want clock_gettime in %s", f, VDSOMapping)
	}
}

func TestKernel(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	heap0 := heapInUse()
	if err := s.LoadKernel(); err != nil {
		t.Skipf("kernel symbols unavailable: %v", err)
	}
	st := s.Stats()
	t.Logf("kallsyms: %d text symbols, table %d KiB, heap +%d KiB", st.KernelSymbols, st.KernelBytes>>10, int64(heapInUse()-heap0)>>10)
	k := s.kernelSymbols(false)
	i := k.tab.lookup(kallsymsAddr(t, "schedule"))
	if i < 0 || k.tab.symName(i) != "schedule" || i+1 >= k.tab.len() {
		t.Fatal("schedule not in the kernel table")
	}
	sched, next := k.tab.start(i), k.tab.start(i+1)
	// The caller frame's address is the start of the next symbol: it is a
	// return address, so it belongs to schedule.
	p := profileOf(t, s, Sample{Kernel: []uint64{sched + 4, next}, Values: []int64{1, 1}})
	for i, l := range p.Sample[0].Location {
		if f := frameOf(l); f.fn != "schedule" || f.mapping != KernelMapping {
			t.Errorf("kernel frame %d: %+v, want schedule in %s", i, f, KernelMapping)
		}
	}
	if got := p.Sample[0].Location[1].Address; got != next {
		t.Errorf("address %#x, want %#x", got, next)
	}
	// As a leaf, the same address is the next function.
	p = profileOf(t, s, Sample{Kernel: []uint64{next}, Values: []int64{1, 1}})
	if f := frameOf(p.Sample[0].Location[0]); f.fn != k.tab.symName(i+1) {
		t.Errorf("leaf at %#x: %+v, want %s", next, f, k.tab.symName(i+1))
	}
	if st := s.Stats(); st.KernelSymbols < 1000 || st.KernelError != nil {
		t.Errorf("stats %+v", st)
	}
}

func kallsymsAddr(t *testing.T, name string) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[2] == name && (f[1] == "T" || f[1] == "t") {
			var a uint64
			fmt.Sscanf(f[0], "%x", &a)
			return a
		}
	}
	t.Skipf("no %s in /proc/kallsyms", name)
	return 0
}

func TestKallsymsFixture(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kallsyms")
	os.WriteFile(path, []byte(`ffffffff81000000 T _text
ffffffff81000100 T start_kernel
ffffffff81000200 t helper
ffffffff81000300 D some_data
ffffffff81000400 T _etext
ffffffffc0001000 t nft_do_chain	[nf_tables]
ffffffffc0001100 T nft_register	[nf_tables]
ffffffffc0002000 t bpf_prog_6deef7357e7b4530_sd_fw	[bpf]
`), 0o644)
	s := New(Options{KallsymsPath: path})
	p := profileOf(t, s, Sample{
		Kernel: []uint64{0xffffffffc0001010, 0xffffffffc0002001, 0xffffffff81000201, 0xffffffff81000101, 0x1234},
		Values: []int64{1, 1},
	})
	want := []frame{
		{fn: "nft_do_chain", mapping: "[nf_tables]", addr: 0xffffffffc0001010},
		{fn: "bpf_prog_6deef7357e7b4530_sd_fw", mapping: "[bpf]", addr: 0xffffffffc0002001},
		{fn: "helper", mapping: KernelMapping, addr: 0xffffffff81000201},
		{fn: "start_kernel", mapping: KernelMapping, addr: 0xffffffff81000101},
		{addr: 0x1234}, // not a kernel address
	}
	for i, l := range p.Sample[0].Location {
		if got := frameOf(l); got != want[i] {
			t.Errorf("frame %d: %+v, want %+v", i, got, want[i])
		}
	}
	if st := s.Stats(); st.KernelSymbols != 6 || st.UnknownKernelFrames != 1 || st.KernelFrames != 5 {
		t.Errorf("stats %+v", st)
	}
}

// TestKallsymsEnds checks that kernel symbols end (kallsyms gives no
// sizes), that an address past them misses, and that a miss reads kallsyms
// again.
func TestKallsymsEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kallsyms")
	const base = `ffffffff81000000 T _text
ffffffff810000f0 t __pfx_start_kernel
ffffffff81000100 T start_kernel
ffffffff81000200 t helper
ffffffff81000400 T _etext
ffffffff83000000 T _sinittext
ffffffff83000000 T init_fn
ffffffff83000100 T _einittext
ffffffffc0001000 t nft_do_chain	[nf_tables]
ffffffffc0001100 T nft_register	[nf_tables]
ffffffffc0002000 t bpf_prog_6deef7357e7b4530_sd_fw	[bpf]
ffffffffc0100000 t xt_main	[x_tables]
ffffffffc0100800 t xt_last	[x_tables]
`
	os.WriteFile(path, []byte(base), 0o644)
	s := New(Options{KallsymsPath: path})
	k := s.kernelSymbols(false)
	if k == nil {
		t.Fatal(s.Stats().KernelError)
	}
	for _, tc := range []struct {
		addr uint64
		name string // "" for a miss
	}{
		{0xffffffff810000f8, "_text"}, // padding: the function before
		{0xffffffff81000100, "start_kernel"},
		{0xffffffff810003ff, "helper"},
		{0xffffffff81000400, ""}, // _etext
		{0xffffffff82000000, ""}, // between text and init text
		{0xffffffff830000ff, "init_fn"},
		{0xffffffff83000100, ""},
		{0xffffffffc0001fff, "nft_register"}, // the module's last: the bound
		{0xffffffffc0002000 + maxLastBPFSym - 1, "bpf_prog_6deef7357e7b4530_sd_fw"},
		{0xffffffffc0002000 + maxLastBPFSym, ""},
		{0xffffffffc0050000, ""}, // a gap between modules
		{0xffffffffc01007ff, "xt_main"},
		{0xffffffffc0100800 + maxLastModuleSym - 1, "xt_last"},
		{0xffffffffc0100800 + maxLastModuleSym, ""},
	} {
		name, _, ok := k.lookup(tc.addr)
		if ok != (tc.name != "") || name != tc.name {
			t.Errorf("lookup(%#x) = %q, %v; want %q", tc.addr, name, ok, tc.name)
		}
	}
	for i := range k.tab.len() {
		if n := k.tab.symName(i); strings.HasPrefix(n, "__pfx_") || kernelEndMarkers[n] {
			t.Errorf("kept %s", n)
		}
	}

	// A module loaded in the gap: the miss reads kallsyms again, once the
	// retry interval has passed.
	os.WriteFile(path, []byte(base+"ffffffffc0050000 t new_fn\t[new_mod]\n"), 0o644)
	s.mu.Lock()
	s.kernelLoaded = time.Now().Add(-2 * kallsymsRetry)
	s.mu.Unlock()
	p := profileOf(t, s, Sample{Kernel: []uint64{0xffffffffc0050010}, Values: []int64{1, 1}})
	if f := frameOf(p.Sample[0].Location[0]); f.fn != "new_fn" || f.mapping != "[new_mod]" {
		t.Errorf("after reload: %+v", f)
	}
}

func TestKallsymsHidden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kallsyms")
	os.WriteFile(path, []byte("0000000000000000 T _text\n0000000000000000 T schedule\n"), 0o644)
	s := New(Options{KallsymsPath: path})
	if err := s.LoadKernel(); !errors.Is(err, ErrKallsymsHidden) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadKernel: %v, want ErrKallsymsHidden naming %s", err, path)
	}
	p := profileOf(t, s, Sample{Kernel: []uint64{0xffffffff81000004}, Values: []int64{3, 30}})
	if f := frameOf(p.Sample[0].Location[0]); f.fn != "" || p.Sample[0].Value[0] != 3 {
		t.Errorf("got %+v %v", f, p.Sample[0].Value)
	}
	if st := s.Stats(); !errors.Is(st.KernelError, ErrKallsymsHidden) {
		t.Errorf("Stats.KernelError = %v", st.KernelError)
	}
}

func TestUnknownPID(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	pid := goneProcess(t)
	labels := map[string][]string{"comm": {"gone"}}
	p := profileOf(t, s,
		Sample{PID: pid, User: []uint64{0x401000, 0x402000, 0x403000}, Values: []int64{1, 10}, Labels: labels},
		Sample{PID: pid, User: []uint64{0x404000}, Values: []int64{2, 20}, Labels: labels},
		Sample{PID: pid, Values: []int64{4, 40}}, // no stack at all: kept, with no location
	)
	if len(p.Sample) != 3 {
		t.Fatalf("%d samples, want 3", len(p.Sample))
	}
	var total int64
	for i, smp := range p.Sample {
		total += smp.Value[1]
		if i < 2 {
			if len(smp.Location) != 1 || frameOf(smp.Location[0]).fn != UnknownFunction || smp.Location[0].Mapping != nil {
				t.Errorf("sample %d: %v", i, smp.Location)
			}
		}
	}
	if total != 70 || len(p.Location) != 1 {
		t.Errorf("total %d, %d locations", total, len(p.Location))
	}
	st := s.Stats()
	if st.GoneBeforeWatch != 1 || st.UnknownPIDSamples != 2 || st.UnknownUserFrames != 4 {
		t.Errorf("stats %+v", st)
	}
	if err := s.Watch(pid); !errors.Is(err, ErrProcessGone) {
		t.Errorf("Watch: %v, want ErrProcessGone", err)
	}
}

// goneProcess returns the PID of a process that has exited and been reaped.
func goneProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run /bin/true: %v", err)
	}
	return cmd.Process.Pid
}

func TestLazyWatchAndUnmapped(t *testing.T) {
	bins := needGo(t)
	cmd := start(t, bins.def)
	pid := cmd.Process.Pid
	addr := runtimeAddr(t, pid, bins.def, symbolValue(t, bins.def, goFunc))
	s := New(Options{})
	defer s.Close()
	// Never watched but running: the builder watches it.
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr, 0x10}, Values: []int64{1, 1}})
	if f := frameOf(p.Sample[0].Location[0]); f.fn != goFunc {
		t.Errorf("%+v", f)
	}
	if f := frameOf(p.Sample[0].Location[1]); f.fn != "" || f.mapping != "" || f.addr != 0x10 {
		t.Errorf("unmapped frame %+v", f)
	}
	if st := s.Stats(); st.LazyWatches != 1 || st.UnknownUserFrames != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestObjectLRU(t *testing.T) {
	bins := needC(t)
	cmd := start(t, bins.plain)
	pid := cmd.Process.Pid
	addr := runtimeAddr(t, pid, bins.plain, symbolValue(t, bins.plain, cFunc))
	// The C program maps itself, libc, ld.so and the vDSO: four objects.
	s := New(Options{MaxObjects: 2})
	defer s.Close()
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Objects != 2 || st.ObjectEvictions < 2 || st.ObjectMisses < 4 {
		t.Fatalf("after Watch: %+v", st)
	}
	// The program itself was evicted; the frame reloads it from the live
	// process.
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + 4}, Values: []int64{1, 1}})
	if f := frameOf(p.Sample[0].Location[0]); f.fn != cFunc {
		t.Errorf("%+v", f)
	}
	st = s.Stats()
	if st.Objects != 2 || st.ObjectReloads != 1 {
		t.Errorf("after lookup: %+v", st)
	}
	// Watching it again takes the objects its snapshot identified: no
	// file is looked up.
	before := st
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	if st = s.Stats(); st.ObjectHits != before.ObjectHits || st.ObjectMisses != before.ObjectMisses {
		t.Errorf("a second Watch of one process looked its files up: %+v, before %+v", st, before)
	}
	// Another process of the same program hits the cache by file
	// identity for what is cached.
	if err := s.Watch(start(t, bins.plain).Process.Pid); err != nil {
		t.Fatal(err)
	}
	if st = s.Stats(); st.ObjectHits <= before.ObjectHits {
		t.Errorf("no cache hit watching a second process of the program: %+v", st)
	}
}

func TestProcessCap(t *testing.T) {
	bins := needC(t)
	a, b, c := start(t, bins.plain), start(t, bins.plain), start(t, bins.plain)
	s := New(Options{MaxProcesses: 2})
	defer s.Close()
	for _, cmd := range []*exec.Cmd{a, b} {
		if err := s.Watch(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	stop(t, b) // the newer one goes: it is evicted before the older, alive a
	if err := s.Watch(c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, hasA := s.procs[a.Process.Pid]
	_, hasB := s.procs[b.Process.Pid]
	_, hasC := s.procs[c.Process.Pid]
	s.mu.Unlock()
	if !hasA || hasB || !hasC {
		t.Errorf("kept a=%v b=%v c=%v, want a and c", hasA, hasB, hasC)
	}
	if st := s.Stats(); st.Processes != 2 || st.ProcessEvictions != 1 {
		t.Errorf("stats %+v", st)
	}
	s.Forget(a.Process.Pid)
	if st := s.Stats(); st.Processes != 1 {
		t.Errorf("after Forget: %+v", st)
	}
}

// TestFakeProcFS watches a process that exists only as files: a maps line
// naming a copy of the C program under root/, then the same through
// map_files/ when the inode in maps does not match root/'s file.
func TestFakeProcFS(t *testing.T) {
	f := newFakeProc(t)
	procfs, dir, bin := f.procfs, f.dir, f.bin
	os.WriteFile(filepath.Join(dir, "stat"), []byte("4242 (hot prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 100\n"), 0o644)
	writeMaps := func(inode uint64) {
		os.WriteFile(filepath.Join(dir, "maps"), []byte(f.mapsLine(inode)+"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0   [stack]\n"), 0o644)
	}
	addr := fakeBase + symbolValue(t, bin, cFunc) + 4

	for _, tc := range []struct {
		name  string
		inode uint64
	}{{"root", f.ino}, {"map_files", f.ino + 1}} {
		t.Run(tc.name, func(t *testing.T) {
			writeMaps(tc.inode)
			os.RemoveAll(filepath.Join(dir, "map_files"))
			if tc.name == "map_files" {
				os.MkdirAll(filepath.Join(dir, "map_files"), 0o755)
				os.Symlink(bin, filepath.Join(dir, "map_files", fmt.Sprintf("%x-%x", f.start, f.end)))
			}
			s := New(Options{ProcFS: procfs})
			defer s.Close()
			if err := s.Watch(4242); err != nil {
				t.Fatal(err)
			}
			p := profileOf(t, s, Sample{PID: 4242, User: []uint64{addr}, Values: []int64{1, 1}})
			if f := frameOf(p.Sample[0].Location[0]); f.fn != cFunc || f.mapping != "/usr/bin/hot" {
				t.Errorf("%+v", f)
			}
		})
	}
}

// TestPprofOpens writes a profile of Go, C, vDSO, kernel and unknown
// frames and reads it back with go tool pprof.
func TestPprofOpens(t *testing.T) {
	gobins := needGo(t)
	gocmd := start(t, gobins.pie)
	goAddr := runtimeAddr(t, gocmd.Process.Pid, gobins.pie, symbolValue(t, gobins.pie, goFunc))
	s := New(Options{})
	defer s.Close()
	samples := []Sample{
		{PID: gocmd.Process.Pid, User: []uint64{goAddr + 5}, Values: []int64{3, 30}, Labels: map[string][]string{"comm": {"go-pie"}}},
		{PID: goneProcess(t), User: []uint64{0x401000}, Values: []int64{1, 10}},
	}
	if _, err := os.Stat("/proc/kallsyms"); err == nil && s.LoadKernel() == nil {
		samples = append(samples, Sample{PID: gocmd.Process.Pid, Kernel: []uint64{kallsymsAddr(t, "schedule") + 4}, User: []uint64{goAddr + 5}, Values: []int64{2, 20}})
	}
	p := profileOf(t, s, samples...)
	path := filepath.Join(t.TempDir(), "cpu.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, args := range [][]string{{"-raw"}, {"-top", "-nodecount=20"}} {
		out, err := exec.Command("go", append(append([]string{"tool", "pprof", "-symbolize=none"}, args...), path)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof %v: %v\n%s", args, err, out)
		}
		for _, want := range []string{goFunc, UnknownFunction} {
			if !strings.Contains(string(out), want) {
				t.Errorf("go tool pprof %v: no %s in\n%s", args, want, out)
			}
		}
		if len(samples) == 3 && !strings.Contains(string(out), "schedule") {
			t.Errorf("go tool pprof %v: no schedule in\n%s", args, out)
		}
	}
}

// TestDebugFile strips a C program and keeps its symbols in a separate
// debug file under DebugDir/.build-id, as Debian's -dbg packages do: the
// program's own function, in no table of the stripped file, is named from
// the debug file.
func TestDebugFile(t *testing.T) {
	bins := needC(t)
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skipf("objcopy not found (binutils): %v", err)
	}
	dir := t.TempDir()
	stripped := filepath.Join(dir, "c-debuglink")
	debug := filepath.Join(dir, "c.debug")
	for _, args := range [][]string{
		{"--only-keep-debug", bins.plain, debug},
		{"--strip-all", bins.plain, stripped},
	} {
		if out, err := exec.Command(objcopy, args...).CombinedOutput(); err != nil {
			t.Fatalf("objcopy %v: %v\n%s", args, err, out)
		}
	}
	id := gnuBuildID(t, stripped)
	if id != gnuBuildID(t, bins.plain) {
		t.Fatal("strip changed the build ID")
	}
	if err := os.Chmod(stripped, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "debug")
	if err := os.MkdirAll(filepath.Join(root, ".build-id", id[:2]), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(debug, filepath.Join(root, ".build-id", id[:2], id[2:]+".debug")); err != nil {
		t.Fatal(err)
	}
	old := DebugDir
	DebugDir = root
	defer func() { DebugDir = old }()

	cmd := start(t, stripped)
	pid := cmd.Process.Pid
	addr := runtimeAddr(t, pid, stripped, symbolValue(t, bins.plain, cFunc))
	s := New(Options{})
	defer s.Close()
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + 4}, Values: []int64{1, 10}})
	if f := frameOf(p.Sample[0].Location[0]); f.fn != cFunc || f.mapping != stripped {
		t.Errorf("frame of the stripped program: %+v, want %s from its debug file", f, cFunc)
	}
}

// TestVersionedSymbols builds a shared library whose .symtab names its
// exported function with a version, "api@@V1" (as the separate debug file
// of Debian's glibc names "pthread_mutex_lock@@GLIBC_2.2.5"), and finds it
// named "api": the name .dynsym gives it, so that a function is named the
// same with the debug file and without it.
func TestVersionedSymbols(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc is not in PATH: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "v.c")
	script := filepath.Join(dir, "v.map")
	lib := filepath.Join(dir, "libv.so")
	if err := os.WriteFile(src, []byte("int api_impl(int x) { return x * 3 + 1; }\n__asm__(\".symver api_impl, api@@V1\");\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("V1 { global: api; local: *; };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-O1", "-Wl,--version-script="+script, "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	ef, err := elf.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var addr uint64
	for _, s := range syms {
		if s.Name == "api@@V1" {
			addr = s.Value
		}
	}
	if addr == 0 {
		t.Skipf("this linker does not name versioned symbols in .symtab (%d symbols)", len(syms))
	}
	o := parseObject(ef, nil, lib, "", 1<<30)
	if name, _, _, ok := o.symbolize(addr); !ok || name != "api" {
		t.Errorf("symbol at %#x: %q (%v), want api", addr, name, ok)
	}
}

// TestCPlusPlusDemangled: a C++ function's frame is named as pprof shows
// it (no parameters or template arguments), its symbol kept as the
// SystemName: os::PlatformEvent::park, not _ZN2os13PlatformEvent4parkEv
// (a JVM's lock wait, as the verdict named it until 2026-12-06).
func TestCPlusPlusDemangled(t *testing.T) {
	cxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skipf("g++ is not in PATH: %v", err)
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "hot.cc"), filepath.Join(dir, "cxx-prog")
	if err := os.WriteFile(src, []byte(`#include <cstdio>
#include <unistd.h>
namespace perfhound {
template <typename T> struct Hot {
	__attribute__((noinline)) static T loop(T n, int k) { T s = 0; for (T i = 0; i < n; i++) s += i * k; return s; }
};
}
volatile unsigned long sink;
int main() {
	sink = perfhound::Hot<unsigned long>::loop(10, 3);
	std::printf("ready\n");
	std::fflush(stdout);
	pause();
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cxx, "-O1", "-fno-omit-frame-pointer", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("g++: %v\n%s", err, out)
	}
	const symbol = "_ZN9perfhound3HotImE4loopEmi"
	cmd := start(t, bin)
	pid := cmd.Process.Pid
	addr := runtimeAddr(t, pid, bin, symbolValue(t, bin, symbol))
	s := New(Options{})
	defer s.Close()
	if err := s.Watch(pid); err != nil {
		t.Fatal(err)
	}
	p := profileOf(t, s, Sample{PID: pid, User: []uint64{addr + 4}, Values: []int64{1, 10}, NumLabels: map[string][]int64{"pid": {int64(pid)}}})
	l := p.Sample[0].Location[0]
	if len(l.Line) != 1 || l.Line[0].Function.Name != "perfhound::Hot::loop" || l.Line[0].Function.SystemName != symbol {
		t.Errorf("frame %+v, want perfhound::Hot::loop (system name %s)", l.Line, symbol)
	}
	if got := demangled("nanosleep"); got != "nanosleep" {
		t.Errorf("a C name demangled to %q", got)
	}
}

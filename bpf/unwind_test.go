//go:build linux && amd64

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/bpf/ehframe"
	"github.com/perfhound/perfhound/bpf/ehframe/ehtest"
	"github.com/perfhound/perfhound/internal/testproc"
)

// TestUnwindWalkLive runs c/unwind.h's walker in the kernel on a stripped
// C program built without frame pointers, sampled on CPU while it sorts
// with libc's qsort (no frame pointers either) calling back into it: at
// least 95% of the walks must reach _start by the tables alone (issue 18's
// bar), through main and the program's own frames on both sides of libc.
func TestUnwindWalkLive(t *testing.T) {
	requireCollectors(t, OnCPU)
	named, stripped := ehtest.Build(t, t.TempDir())
	pid := ehtest.Start(t, stripped, "spin").Process.Pid

	walks := walkSamples(t, pid, 200, nil)

	syms := ehtest.ReadSymbols(t, named)
	maps := ehtest.ReadMappings(t, pid)
	complete, throughMain := 0, 0
	cuts := map[uint8]int{}
	depth := 0
	for i, w := range walks {
		cuts[w.Cut]++
		depth += int(w.Len)
		ours, _ := ehtest.Chain(w.Pcs[:w.Len], maps, stripped, syms)
		chain := strings.Join(ours, " ")
		if w.Cut == uint8(ehframe.Complete) {
			complete++
		}
		if strings.Contains(chain, "work_alloca work_outer") && strings.HasSuffix(chain, "main _start") {
			throughMain++
			if i == 0 {
				t.Logf("walk 0 (%d frames), the program's: %s", w.Len, chain)
			}
		} else if i < 5 || w.Cut == uint8(ehframe.Complete) {
			t.Logf("walk %d (%d frames, %v): %s", i, w.Len, ehframe.Cut(w.Cut), chain)
		}
	}
	t.Logf("%d walks: %d complete, %d through main to _start, cuts %v, mean depth %.1f", len(walks), complete, throughMain, cuts, float64(depth)/float64(len(walks)))
	if complete*100 < 95*len(walks) || throughMain*100 < 95*len(walks) {
		t.Errorf("%d of %d walks complete, %d through the program's frames to _start; want 95%% each", complete, len(walks), throughMain)
	}
}

// walkSamples loads the walker for pid, describes pid's mappings to it,
// and collects n walks of its stack from cpu-clock samples at 499 Hz. go,
// if set, is called once the sampler is attached (to let the subject
// start its work). Bounded by samples, not time: n walks, however long a
// busy machine takes to give the subject that much CPU (a minute at most).
func walkSamples(t *testing.T, pid, n int, goAhead func()) []unwindwalkEhwState {
	t.Helper()
	objs := loadWalker(t, pid)
	u := newUnwinder(objs.UnwindTables, objs.UnwindProcs, 64<<20)
	mapped, left, err := u.addProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if left > 0 {
		t.Errorf("%d mappings left out", left)
	}
	if mapped < 2 {
		t.Fatalf("%d of the subject's mappings have a table, want the program's and libc's at least", mapped)
	}
	rd, err := ringbuf.NewReader(objs.UnwindWalks)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	sampler, err := attachPerfSampler(objs.UnwindWalk, 499)
	if err != nil {
		t.Fatal(err)
	}
	defer sampler.Close()
	if goAhead != nil {
		goAhead()
	}
	// The walker's own time, from the kernel's statistics of the program.
	if stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
		defer stats.Close()
		defer func() {
			if st, err := objs.UnwindWalk.Stats(); err == nil && st.RunCount > 0 {
				// Other processes' samples return at once: the time is the walks'.
				t.Logf("walker: %v in all for %d walks, at most %v a walk (%d runs)", st.Runtime, n, st.Runtime/time.Duration(n), st.RunCount)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	var walks []unwindwalkEhwState
	for len(walks) < n {
		rd.SetDeadline(deadline)
		rec, err := rd.Read()
		if err != nil {
			t.Fatalf("after %d walks: %v", len(walks), err)
		}
		var st unwindwalkEhwState
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &st); err != nil {
			t.Fatal(err)
		}
		walks = append(walks, st)
	}
	return walks
}

// loadWalker loads unwindwalk.bpf.c for target pid, and unloads it when
// the test ends.
func loadWalker(t *testing.T, pid int) *unwindwalkObjects {
	t.Helper()
	spec, err := loadUnwindwalk()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["target_tgid"].Set(uint32(pid)); err != nil {
		t.Fatal(err)
	}
	var objs unwindwalkObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v", ve)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	if info, err := objs.UnwindWalk.Info(); err == nil {
		if n, ok := info.VerifiedInstructions(); ok {
			t.Logf("walker verified in %d instructions", n)
		}
	}
	return &objs
}

// TestUnwinderSharesAndEvicts: two processes of one program share its
// tables and libc's (one table an object, by build ID); under a byte bound
// smaller than libc's table the least recently used tables go, the kernel's
// map holds what the unwinder counts, and a process added again finds a
// table for its mappings again.
func TestUnwinderSharesAndEvicts(t *testing.T) {
	requireCollectors(t, OnCPU)
	_, stripped := ehtest.Build(t, t.TempDir())
	a := ehtest.Start(t, stripped, "spin").Process.Pid
	b := ehtest.Start(t, stripped, "spin").Process.Pid
	objs := loadWalker(t, a)
	inKernel := func() int {
		var k, v uint32
		n := 0
		for it := objs.UnwindTables.Iterate(); it.Next(&k, &v); {
			n++
		}
		return n
	}

	u := newUnwinder(objs.UnwindTables, objs.UnwindProcs, 64<<20)
	if n, _, err := u.addProcess(a); err != nil || n < 2 {
		t.Fatalf("first process: %d mappings with tables, %v", n, err)
	}
	tables, bytes, opens := inKernel(), u.bytes, u.opens
	if _, _, err := u.addProcess(b); err != nil {
		t.Fatal(err)
	}
	if inKernel() != tables || u.bytes != bytes {
		t.Errorf("the second process of the same program: %d tables, %d bytes; want the first's %d and %d", inKernel(), u.bytes, tables, bytes)
	}
	// Nor are its files opened again (the same mapped files): once each.
	if u.opens != opens {
		t.Errorf("the second process opened %d files for their headers, want none", u.opens-opens)
	}

	for _, o := range u.objects {
		if o.id != 0 {
			u.tables.Delete(o.id)
		}
	}
	const bound = 100 << 10 // libc's table is 187 KB
	small := newUnwinder(objs.UnwindTables, objs.UnwindProcs, bound)
	small.next = u.next
	if _, _, err := small.addProcess(a); err != nil {
		t.Fatal(err)
	}
	if got := inKernel(); got != small.lru.Len() || small.bytes > bound && got > 1 {
		t.Errorf("bound %d: %d tables in the kernel, %d counted, %d bytes", bound, got, small.lru.Len(), small.bytes)
	}
	t.Logf("under %d bytes: %d tables kept, %d bytes", bound, small.lru.Len(), small.bytes)
	if n, _, _ := small.addProcess(a); n == 0 {
		t.Error("added again: no mapping has its table")
	}
}

// TestUnwindWalkDistributionBinary walks Debian's xz, stripped and built
// without frame pointers, compressing on CPU: at least 95% of the walks
// must end at its outermost frame by the tables alone.
func TestUnwindWalkDistributionBinary(t *testing.T) {
	requireCollectors(t, OnCPU)
	xz, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("xz not installed")
	}
	// Blocked reading its input until the sampler is on: its libraries
	// are mapped by then, and every sample is of its work.
	cmd := exec.Command(xz, "-6", "-T1", "-c")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitBlockedInRead(t, cmd.Process.Pid)
	// perf's own DWARF unwinding of the same run, where perf is here: the
	// reference the issue names.
	var perfDepths func() map[int]int
	if perf, err := exec.LookPath("perf"); err == nil {
		perfDepths = recordPerf(t, perf, cmd.Process.Pid)
	} else {
		t.Log("perf not installed: the walks are not compared with perf record --call-graph dwarf")
	}
	walks := walkSamples(t, cmd.Process.Pid, 200, func() {
		go func() {
			// Random bytes: the slowest input for xz, about 0.7 s of CPU a MB.
			buf := make([]byte, 1<<20)
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 8; i++ {
				for j := range buf {
					buf[j] = byte(r.Uint32())
				}
				if _, err := in.Write(buf); err != nil {
					return
				}
			}
			in.Close()
		}()
	})
	complete, depth := 0, 0
	cuts := map[ehframe.Cut]int{}
	for _, w := range walks {
		cuts[ehframe.Cut(w.Cut)]++
		depth += int(w.Len)
		if w.Cut == uint8(ehframe.Complete) {
			complete++
		}
	}
	mean := float64(depth) / float64(len(walks))
	t.Logf("%d walks of xz: %d complete, cuts %v, mean depth %.1f", len(walks), complete, cuts, mean)
	if complete*100 < 95*len(walks) {
		t.Errorf("%d of %d walks complete, want 95%%", complete, len(walks))
	}
	if perfDepths != nil {
		hist := perfDepths()
		ours := map[int]int{}
		for _, w := range walks {
			ours[int(w.Len)]++
		}
		n, sum := 0, 0
		for d, c := range hist {
			n, sum = n+c, sum+d*c
		}
		if n < 50 {
			t.Fatalf("perf recorded %d samples with a user stack", n)
		}
		perfMean := float64(sum) / float64(n)
		t.Logf("depths, ours %v; perf's (%d samples, mean %.1f) %v", ours, n, perfMean, hist)
		if math.Abs(mean-perfMean) > 0.1*perfMean {
			t.Errorf("mean depth %.1f, perf's %.1f: more than 10%% apart", mean, perfMean)
		}
	}
}

// recordPerf starts perf record --call-graph dwarf on pid and returns a
// function that stops it and gives the user-stack depths it unwound
// (frames per sample; kernel frames, and the inlined functions perf lists
// at their caller's address, left out: the walker has neither).
func recordPerf(t *testing.T, perf string, pid int) func() map[int]int {
	t.Helper()
	data := filepath.Join(t.TempDir(), "perf.data")
	rec := exec.Command(perf, "record", "-q", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
		"-p", strconv.Itoa(pid), "-o", data)
	var errs bytes.Buffer
	rec.Stderr = &errs
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	// perf writes the file's header once its events are open.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(data); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			rec.Process.Kill()
			t.Fatalf("perf record never started: %s", errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() map[int]int {
		rec.Process.Signal(os.Interrupt)
		if err := rec.Wait(); err != nil {
			t.Logf("perf record: %v %s", err, errs.String())
		}
		out, err := exec.Command(perf, "script", "-i", data, "-F", "ip").Output()
		if err != nil {
			t.Fatalf("perf script: %v", err)
		}
		hist := map[int]int{}
		n, prev := 0, ""
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
				if n > 0 {
					hist[n]++
				}
				n, prev = 0, ""
			case f[0] == prev || strings.HasPrefix(f[0], "ffff"):
				// An inlined function perf names at its caller's address,
				// or a kernel frame.
			default:
				n, prev = n+1, f[0]
			}
		}
		return hist
	}
}

// waitBlockedInRead waits until pid sleeps waiting for its input, in
// read(2) or poll(2) (xz polls its stdin beside a signal pipe), from
// /proc/PID/syscall: an event, not a guess of time.
func waitBlockedInRead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
		nr, _, _ := strings.Cut(string(b), " ")
		if err == nil && (nr == "0" || nr == "7" || nr == "271") { // read, poll, ppoll on x86-64
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never blocked reading its input", pid)
}

// TestNativeUnwindCollectors runs each stack collector with NativeUnwind
// on a program built without frame pointers whose work is in libc (no
// frame pointers either): on CPU sorting with qsort, which calls back into
// it, and reading the clock (in the vDSO, walked by its own .eh_frame);
// off CPU sleeping in clock_nanosleep; faulting in memset. With tables
// at least 95% of its stacks reach main and _start, symbolized, where the
// frame-pointer walk of the same program loses its callers. Each run is
// bounded by what the kernel counts of the subject's work (its CPU time,
// its voluntary switches, its page faults), not by the clock.
func TestNativeUnwindCollectors(t *testing.T) {
	named, _ := ehtest.Build(t, t.TempDir())
	for _, c := range []struct {
		collector Collector
		mode      string
		progress  func(pid int) int64 // what the kernel counts of the subject's work
		enough    int64
		profile   func(*Window) *profile.Profile
		value     int // the sample value counted: samples, waits, faults
	}{
		{OnCPU, "spin", func(pid int) int64 { return int64(testproc.OnCPU(pid)) }, int64(500 * time.Millisecond), // about 50 samples
			func(w *Window) *profile.Profile { return w.OnCPU }, 0},
		{OnCPU, "clock", func(pid int) int64 { return int64(testproc.OnCPU(pid)) }, int64(500 * time.Millisecond),
			func(w *Window) *profile.Profile { return w.OnCPU }, 0},
		{OffCPU, "sleep", voluntarySwitches, 300,
			func(w *Window) *profile.Profile { return w.OffCPU }, 1},
		{PageFaults, "fault", minorFaults, 3000,
			func(w *Window) *profile.Profile { return w.PageFaults }, 0},
	} {
		t.Run(string(c.collector)+"/"+c.mode, func(t *testing.T) {
			requireCollectors(t, c.collector)
			pid := ehtest.Start(t, named, c.mode).Process.Pid
			for _, native := range []bool{true, false} {
				s := startSession(t, Options{Collectors: []Collector{c.collector}, PIDs: []int{pid}, NativeUnwind: native, FaultStacks: true})
				read(t, s) // a window from here on: the subject's mappings are known
				start := c.progress(pid)
				deadline := time.Now().Add(60 * time.Second)
				for c.progress(pid)-start < c.enough && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				w := read(t, s)
				s.Close()
				p := c.profile(w)
				checkProfile(t, p)
				total, full, _ := countChains(p, pid, c.value, func(chain string) bool {
					return strings.Contains(chain, " main ") && strings.HasSuffix(chain, "_start")
				})
				k := string(c.collector)
				t.Logf("native %v: %d of %d through main to _start; counters: walks %d, cut %d, user stacks lost %d",
					native, full, total, w.Counters[k+".native_walks"], w.Counters[k+".native_cut"], w.Counters[k+".user_stack_lost"])
				if total < 20 {
					t.Fatalf("native %v: %d of the subject's %s", native, total, p.SampleType[c.value].Type)
				}
				switch {
				case native && full*100 < 95*total:
					t.Errorf("with tables: %d of %d reach main and _start, want 95%%", full, total)
				case !native && full*2 > total:
					t.Errorf("by frame pointers: %d of %d reach main and _start: the subject is not the test it should be", full, total)
				}
			}
		})
	}
}

// TestUnwindMissRedescribes: a library a process loads after the walker
// was told its mappings (dlopen, past the looks that follow an exec) is
// described to it once a walk cut in it has had the session look at the
// process again (unwind_misses), not left cut: then at least 95% of the
// samples in it reach main and _start. The subject is watched by PID, so no exec starts
// the looks that would otherwise find the library in time.
func TestUnwindMissRedescribes(t *testing.T) {
	requireCollectors(t, OnCPU)
	dir := t.TempDir()
	named, _ := ehtest.Build(t, dir)
	lib := ehtest.BuildPlugin(t, dir)
	cmd := ehtest.Start(t, named, "dlopen", lib)
	pid := cmd.Process.Pid
	s := startSession(t, Options{Collectors: []Collector{OnCPU}, PIDs: []int{pid}, NativeUnwind: true, Frequency: 499})
	read(t, s) // described, without the library
	if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	// Wait, however long a busy machine takes, for the library to be
	// mapped and the walker to be told of it (only a walk cut in it
	// tells the session); then measure.
	deadline := time.Now().Add(60 * time.Second)
	for !describedWith(t, s, pid, lib) {
		if time.Now().After(deadline) {
			t.Fatal("the process was not described again with the library it loaded within 60 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	read(t, s)
	start := testproc.OnCPU(pid)
	for testproc.OnCPU(pid)-start < time.Second && time.Now().Before(deadline) { // about 500 samples
		time.Sleep(20 * time.Millisecond)
	}
	w := read(t, s)
	checkProfile(t, w.OnCPU)
	var inLib, full int64
	var cut string
	for _, smp := range w.OnCPU.Sample {
		if len(smp.NumLabel["pid"]) != 1 || smp.NumLabel["pid"][0] != int64(pid) {
			continue
		}
		var names []string
		for _, l := range smp.Location {
			for _, ln := range l.Line {
				names = append(names, ln.Function.Name)
			}
		}
		chain := strings.Join(names, " ")
		if !strings.Contains(chain, "plugin_") {
			continue
		}
		inLib += smp.Value[0]
		if strings.Contains(chain, "plugin_spin dlopened main") && strings.HasSuffix(chain, "_start") {
			full += smp.Value[0]
		} else {
			cut = chain
		}
	}
	t.Logf("%d of %d samples in the library reach main and _start (one that does not: %q); counters: walks %d, cut %d",
		full, inLib, cut, w.Counters["oncpu.native_walks"], w.Counters["oncpu.native_cut"])
	if inLib < 100 {
		t.Fatalf("%d samples in the library", inLib)
	}
	if full*100 < 95*inLib {
		t.Errorf("%d of %d samples in the library reach main and _start, want 95%%", full, inLib)
	}
}

// describedWith tells whether the walker has pid's mapping of path.
func describedWith(t *testing.T, s *Session, pid int, path string) bool {
	var lib ehtest.Mapping
	for _, m := range ehtest.ReadMappings(t, pid) {
		if m.Path == path {
			lib = m
		}
	}
	if lib.Path == "" {
		return false // not loaded yet
	}
	var proc unwindwalkEhwProc
	s.unwindMu.Lock()
	err := s.unwind.procs.Lookup(uint32(pid), &proc)
	s.unwindMu.Unlock()
	if err != nil {
		return false
	}
	for _, m := range proc.M[:proc.N] {
		if m.Start == lib.Start && m.Table != 0 {
			return true
		}
	}
	return false
}

// countChains sums value (a sample type's index) over pid's samples of p,
// and over those whose stack, its function names innermost first joined
// by spaces, match says yes to; example is one of those.
func countChains(p *profile.Profile, pid, value int, match func(chain string) bool) (total, matched int64, example string) {
	for _, smp := range pidSamples(p, pid) {
		var names []string
		for _, l := range smp.Location {
			for _, ln := range l.Line {
				names = append(names, ln.Function.Name)
			}
		}
		chain := strings.Join(names, " ")
		total += smp.Value[value]
		if match(chain) {
			matched += smp.Value[value]
			example = chain
		}
	}
	return total, matched, example
}

// voluntarySwitches is how often pid's main thread left the CPU to wait.
func voluntarySwitches(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// minorFaults is pid's minor page faults so far (/proc/PID/stat's
// minflt, after the command's parenthesised name).
func minorFaults(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 8 {
		return 0
	}
	n, _ := strconv.ParseInt(f[7], 10, 64)
	return n
}

// TestUnwinderMappings: Go code has no .eh_frame (Go keeps frame
// pointers), so a program of Go alone is not given to the walker and
// keeps the kernel's frame-pointer walk, which goes through its frames;
// a cgo program, whose .eh_frame covers its C parts alone, is walked
// mixed, its Go frames by frame pointers; and so is a C program with
// anonymous executable memory (a JIT's code).
func TestUnwinderMappings(t *testing.T) {
	requireCollectors(t, OnCPU)
	// Go alone: built without cgo, it maps nothing else.
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "main.go"), filepath.Join(dir, "pure")
	os.WriteFile(src, []byte("package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n)\n\nfunc main() { fmt.Println(\"ready\"); time.Sleep(time.Hour) }\n"), 0o644)
	build := exec.Command("go", "build", "-o", bin, src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	goPID := ehtest.Start(t, bin).Process.Pid
	objs := loadWalker(t, goPID)
	u := newUnwinder(objs.UnwindTables, objs.UnwindProcs, 64<<20)
	if n, _, err := u.addProcess(goPID); err != nil || n != 0 {
		t.Errorf("a Go process: %d mappings given to the walker (%v), want none (frame pointers)", n, err)
	}
	cgoPID := ehtest.Start(t, buildCgo(t)).Process.Pid
	n, _, err := u.addProcess(cgoPID)
	if err != nil {
		t.Fatal(err)
	}
	var proc unwindwalkEhwProc
	if err := objs.UnwindProcs.Lookup(uint32(cgoPID), &proc); err != nil || n == 0 {
		t.Fatalf("a cgo process: %d mappings given to the walker (%v), want its code", n, err)
	}
	gaps := 0
	for _, m := range proc.M[:proc.N] {
		if m.Len&unwindFPGaps != 0 {
			gaps++
		}
	}
	if gaps != 1 {
		t.Errorf("a cgo process: %d mappings walked by frame pointers where their table stops, want 1 (its binary)", gaps)
	}

	named, _ := ehtest.Build(t, t.TempDir())
	jitPID := ehtest.Start(t, named, "jit").Process.Pid
	if _, _, err := u.addProcess(jitPID); err != nil {
		t.Fatal(err)
	}
	if err := objs.UnwindProcs.Lookup(uint32(jitPID), &proc); err != nil {
		t.Fatalf("a process with JIT code: not given to the walker (%v)", err)
	}
	jit := 0
	for _, m := range proc.M[:proc.N] {
		if m.Table == 0 && m.Len == unwindFPGaps {
			jit++
		}
	}
	if jit != 1 {
		t.Errorf("a process with JIT code: %d mappings walked by frame pointers alone, want 1 (the anonymous one)", jit)
	}
}

// TestNativeUnwindCgo samples a cgo program on CPU, its time in C built
// without frame pointers sorting through libc with a callback: with
// tables at least 95% of its stacks go through the C frames and on up its
// Go frames to runtime.main; the kernel's frame-pointer walk loses them.
func TestNativeUnwindCgo(t *testing.T) {
	requireCollectors(t, OnCPU)
	pid := ehtest.Start(t, buildCgo(t)).Process.Pid
	for _, native := range []bool{true, false} {
		s := startSession(t, Options{Collectors: []Collector{OnCPU}, PIDs: []int{pid}, NativeUnwind: native})
		read(t, s)
		start := testproc.OnCPU(pid)
		deadline := time.Now().Add(60 * time.Second)
		for testproc.OnCPU(pid)-start < 500*time.Millisecond && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		w := read(t, s)
		s.Close()
		total, full, example := countChains(w.OnCPU, pid, 0, func(chain string) bool {
			return strings.Contains(chain, "main.sortInC main.main runtime.main")
		})
		t.Logf("native %v: %d of %d samples through main.sortInC to runtime.main (e.g. %s); walks %d, cut %d",
			native, full, total, example, w.Counters["oncpu.native_walks"], w.Counters["oncpu.native_cut"])
		if total < 20 {
			t.Fatalf("native %v: %d samples of the subject", native, total)
		}
		switch {
		case native && full*100 < 95*total:
			t.Errorf("with tables: %d of %d samples reach runtime.main, want 95%%", full, total)
		case !native && full*2 > total:
			t.Errorf("by frame pointers: %d of %d samples reach runtime.main: the subject is not the test it should be", full, total)
		}
	}
}

// buildCgo builds testdata/cgosort (needs gcc).
func buildCgo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: no cgo program to walk")
	}
	bin := filepath.Join(t.TempDir(), "cgosort")
	cmd := exec.Command("go", "build", "-o", bin, "./ehframe/testdata/cgosort")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build (cgo): %v\n%s", err, b)
	}
	return bin
}

// TestNativeUnwindSupport: where the collectors run on a kernel with the
// walker's helpers (5.17 and later), the probe finds them and a session
// asked to walk by tables does; on an older one it would walk frame
// pointers alone and say why (Session.NativeUnwindError).
func TestNativeUnwindSupport(t *testing.T) {
	requireCollectors(t, OnCPU)
	supported := nativeUnwindSupport()
	t.Logf("kernel helpers for the walker: %v", supported)
	var u unix.Utsname
	unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(release, "%d.%d", &major, &minor)
	if supported != nil && (major > 5 || major == 5 && minor >= 17) {
		t.Errorf("kernel %s has bpf_loop and bpf_task_pt_regs, and the probe says: %v", release, supported)
	}
	s := startSession(t, Options{Collectors: []Collector{OnCPU}, NativeUnwind: true, PIDs: []int{os.Getpid()}})
	defer s.Close()
	if got := s.NativeUnwindError(); (got == nil) != (supported == nil) {
		t.Errorf("NativeUnwindError %v, the kernel's support %v", got, supported)
	}
	if supported == nil && s.unwind == nil {
		t.Error("the kernel has the walker's helpers and the session has no walker")
	}
}

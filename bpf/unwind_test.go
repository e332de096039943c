//go:build linux && amd64

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/bpf/ehframe"
	"github.com/perfhound/perfhound/bpf/ehframe/ehtest"
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
		if strings.Contains(chain, "spin_alloca spin_outer") && strings.HasSuffix(chain, "main _start") {
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
	defer objs.Close()
	if info, err := objs.UnwindWalk.Info(); err == nil {
		if n, ok := info.VerifiedInstructions(); ok {
			t.Logf("walker verified in %d instructions", n)
		}
	}
	u := newUnwinder(objs.UnwindTables, objs.UnwindProcs)
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
	t.Logf("%d walks of xz: %d complete, cuts %v, mean depth %.1f", len(walks), complete, cuts, float64(depth)/float64(len(walks)))
	if complete*100 < 95*len(walks) {
		t.Errorf("%d of %d walks complete, want 95%%", complete, len(walks))
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

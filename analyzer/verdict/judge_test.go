package verdict

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// truth is a recorded observation's known answer (fixtures/observations/manifest.json).
type truth struct {
	Class     Class  `json:"class"`
	Secondary Class  `json:"secondary"`
	Findings  string `json:"findings"`
	Command   string `json:"command"`
}

func manifest(t testing.TB) map[string]truth {
	t.Helper()
	b, err := os.ReadFile("../../fixtures/observations/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]truth
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestJudgeRecordedWorkloads: every recorded workload gets its known
// class and secondary, with its findings.
func TestJudgeRecordedWorkloads(t *testing.T) {
	obs := recorded(t)
	for name, want := range manifest(t) {
		v := Judge(obs[name], DefaultThresholds())
		t.Logf("%-20s %-10s %-10s conf %.2f  %s", name, v.Class, v.Secondary, v.Confidence, v.Summary)
		if v.Class != want.Class || v.Secondary != want.Secondary {
			t.Errorf("%s: class %q secondary %q, want %q and %q; load %v", name, v.Class, v.Secondary, want.Class, want.Secondary, v.Load)
		}
		if v.Confidence < 0.5 || v.Confidence > 1 {
			t.Errorf("%s: confidence %.2f out of [0.5, 1] with full evidence", name, v.Confidence)
		}
		var kinds []string
		for _, f := range v.Findings {
			kinds = append(kinds, f.Kind)
		}
		if want.Findings != "" && !strings.Contains(strings.Join(kinds, ","), want.Findings) {
			t.Errorf("%s: findings %v, want %s", name, kinds, want.Findings)
		}
		if v.Class != ClassNone && len(v.Priorities) == 0 {
			t.Errorf("%s: %s-bound with no priorities", name, v.Class)
		}
		for i, p := range v.Priorities {
			if p.Rank != i+1 || p.Saving <= 0 || p.Share <= 0 || p.Share > 1 || p.Remedy == "" || p.Why == "" {
				t.Errorf("%s: priority %+v incomplete", name, p)
			}
			if i > 0 && p.Saving > v.Priorities[i-1].Saving {
				t.Errorf("%s: priorities out of order at %d", name, i)
			}
		}
	}
}

// TestJudgeTopPriorities checks that the first priority is the workload's
// own hot spot, named by the code the user can change.
func TestJudgeTopPriorities(t *testing.T) {
	obs := recorded(t)
	for name, want := range map[string]struct{ name, remedy string }{
		"cpu-c-spin":   {"spin_hot", RemedyAlgorithm},
		"cpu-hash":     {"crypto/sha256", RemedyCaching},
		"cpu-compress": {"compress/flate", RemedyCaching},
		"io-fsync":     {"fsync from main.fsyncLoop", RemedyBatching},
		"io-direct":    {"from main.directReads", RemedyIOPattern},
		"memory-churn": {"main.churn", RemedyAllocations},
		// The C fixtures' locks and system calls are named by their
		// caller in the program: recorded with glibc walked by its
		// .eh_frame tables (no frame pointers there).
		"contention-c-mutex":     {"contend", RemedyLockScope},
		"contention-c-hammer":    {"hammer", RemedyLockScope},
		"contention-c-mapconvoy": {"churn_maps", RemedyLockScope},
		// A lock of its own, called through syscall(2): named by its
		// lock and unlock functions (futex_lock, futex_unlock).
		"contention-c-futexlock": {"futex_", RemedyLockScope},
		// A spin lock whose waiters yield: named by the lock function
		// that yields.
		"contention-c-yieldspin": {"spin_lock_yielding", RemedyLockScope},
		"network-c-slowclient":   {"recvfrom from tcp_client", RemedyAsync},
		"contention-go-mutex":    {"main.contend", RemedyLockScope},
	} {
		v := Judge(obs[name], DefaultThresholds())
		if len(v.Priorities) == 0 {
			t.Errorf("%s: no priorities", name)
			continue
		}
		p := v.Priorities[0]
		if !strings.Contains(p.Name, want.name) || p.Remedy != want.remedy {
			t.Errorf("%s: first priority %q (%s), want %q (%s)", name, p.Name, p.Remedy, want.name, want.remedy)
		}
	}
}

// withoutEBPF is the observation as a host without eBPF would have made it.
func withoutEBPF(o *observation.Observation) *observation.Observation {
	c := *o
	c.Profiles = nil
	for _, p := range o.Profiles {
		if p.Source != "ebpf" {
			c.Profiles = append(c.Profiles, p)
		}
	}
	c.Histograms = nil
	c.Missing = append([]observation.Missing(nil), o.Missing...)
	c.Missing = append(c.Missing, observation.Missing{Signal: "ebpf", Reason: "test: eBPF removed"})
	return &c
}

// TestDegradedEvidence removes the eBPF profiles and histograms. Where
// /proc, PSI and Go's own profiles suffice the class stays, with less
// confidence; where they do not, the verdict says what is missing.
func TestDegradedEvidence(t *testing.T) {
	// What /proc cannot tell: GC from user code (memory-churn): that
	// needs stacks.
	suffices := map[string]bool{
		"cpu-hash": true, "cpu-compress": true, "cpu-c-spin": true, // process CPU time
		"io-fsync": true, "io-direct": true, // system time and I/O pressure
		"none-sleep": true, "memory-leak": true, // no load; RSS growth
		"contention-go-mutex": true, // Go's mutex profile
		"mixed-cpu-io":        true,
		// Thread states sampled from /proc: a C client blocked in recv(2)
		// or poll(2) on its connection, a C mutex's waiters (the lock
		// word says so, and their hand-offs' run-queue waits).
		"network-c-slowclient": true, "network-c-pollclient": true,
		"contention-c-mutex": true, "contention-c-mapconvoy": true,
		// Their system time, by the calls their threads sleep in: the
		// hammer's futexes, the churner's munmap and mprotect on the mm
		// lock (chargeSystemTime).
		"contention-c-hammer": true, "memory-c-mmap": true,
		// A lock of the program's own on a futex: its waiters sleep on
		// a word the thread states read as locked with waiters (2).
		"contention-c-futexlock": true,
		// A Go client waiting in its netpoller on the slow server it
		// started: the server's end of their connection is not the
		// client serving (process.tcp counts it once, as active).
		"network-slowclient": true,
		// A Go uploader: its threads' sleeps, one for the process, are
		// in the netpoller while its connections carry data, and its
		// wait for a CPU follows them (runDelayShares).
		"network-bulk": true,
		// Threads that never sleep, switched out 80,000 times a
		// CPU-second: yields, not preemptions (runDelayShares).
		"contention-c-yieldspin": true,
	}
	obs := recorded(t)
	for name, want := range manifest(t) {
		full := Judge(obs[name], DefaultThresholds())
		v := Judge(withoutEBPF(obs[name]), DefaultThresholds())
		t.Logf("%-20s %-10s conf %.2f (full %.2f)", name, v.Class, v.Confidence, full.Confidence)
		if v.Breakdown.Source != "proc" {
			t.Errorf("%s: breakdown source %q without eBPF, want proc", name, v.Breakdown.Source)
		}
		if v.Confidence >= full.Confidence {
			t.Errorf("%s: confidence %.2f without eBPF, not below %.2f with it", name, v.Confidence, full.Confidence)
		}
		var said bool
		for _, g := range v.Missing {
			said = said || g.Signal == "ebpf" && g.Cost != ""
		}
		if !said {
			t.Errorf("%s: verdict without eBPF does not say what is missing: %+v", name, v.Missing)
		}
		if len(obs[name].ProfilesOf(observation.KindThreadState)) > 0 && !v.Breakdown.ThreadStates {
			t.Errorf("%s: recorded with thread states, breakdown without them", name)
		}
		if suffices[name] && v.Class != want.Class {
			t.Errorf("%s: class %q without eBPF, want %q; load %v", name, v.Class, want.Class, v.Load)
		}
	}
}

func TestChoose(t *testing.T) {
	th := DefaultThresholds()
	for _, tc := range []struct {
		load               map[Class]float64
		runQueue           float64 // of the cpu load, waiting for a CPU
		primary, secondary Class
	}{
		{map[Class]float64{}, 0, ClassNone, ""},
		{map[Class]float64{ClassCPU: th.MinLoad / 2, ClassIO: th.MinLoad / 3}, 0, ClassNone, ""},
		{map[Class]float64{ClassCPU: 1}, 0, ClassCPU, ""},
		{map[Class]float64{ClassCPU: 1, ClassIO: 0.6}, 0, ClassCPU, ClassIO},
		{map[Class]float64{ClassCPU: 1, ClassIO: 0.4}, 0, ClassCPU, ""},
		// GC taking a third of the CPU time: memory, before the CPU.
		{map[Class]float64{ClassCPU: 1, ClassMemory: 0.5}, 0, ClassMemory, ClassCPU},
		{map[Class]float64{ClassCPU: 1, ClassMemory: 0.3}, 0, ClassCPU, ""},
		{map[Class]float64{ClassContention: 14, ClassCPU: 1.3}, 0, ClassContention, ""},
		// The churn workload beside stress-ng --cpu 2: GC and allocation
		// take 62% of its time on a CPU, and it waits for one most of the
		// window. Waiting for a CPU is no CPU time: still memory.
		{map[Class]float64{ClassCPU: 1.07, ClassMemory: 0.31}, 0.88, ClassMemory, ClassCPU},
		// A target that only waits for a CPU is CPU-bound, whatever share
		// of its little CPU time goes to memory management below MinLoad.
		{map[Class]float64{ClassCPU: 0.9, ClassMemory: 0.01}, 0.89, ClassCPU, ""},
	} {
		p, s := choose(tc.load, tc.runQueue, th)
		if p != tc.primary || s != tc.secondary {
			t.Errorf("choose(%v) = %q, %q; want %q, %q", tc.load, p, s, tc.primary, tc.secondary)
		}
	}
}

// TestJudgeEmpty: an observation with nothing in it is judged none, with
// no confidence to speak of, and says why.
func TestJudgeEmpty(t *testing.T) {
	for _, o := range []*observation.Observation{
		{},
		{Meta: observation.Meta{Duration: 5 * time.Second, Target: observation.Target{Kind: observation.TargetProcess, PID: 42}}},
	} {
		v := Judge(o, DefaultThresholds())
		if v.Class != ClassNone || v.Confidence > 0.5 || len(v.Missing) == 0 {
			t.Errorf("empty observation: class %q confidence %.2f missing %v", v.Class, v.Confidence, v.Missing)
		}
	}
}

// FuzzJudge judges recorded observations cut down and distorted by the
// fuzzer's bytes: no panic, and numbers that stay numbers.
func FuzzJudge(f *testing.F) {
	dir := "../../fixtures/observations"
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	var obs []*observation.Observation
	for _, e := range entries {
		if e.IsDir() {
			o, err := observation.Load(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			obs = append(obs, o)
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), []byte{1, 2, 3, 255, 0, 7})
	f.Fuzz(func(t *testing.T, which uint8, cuts []byte) {
		o := distort(obs[int(which)%len(obs)], cuts)
		v := Judge(o, DefaultThresholds())
		if math.IsNaN(v.Confidence) || v.Confidence < 0 || v.Confidence > 1 {
			t.Fatalf("confidence %v", v.Confidence)
		}
		for c, l := range v.Load {
			if math.IsNaN(l) || math.IsInf(l, 0) {
				t.Fatalf("load[%s] = %v", c, l)
			}
		}
	})
}

// distort copies an observation, dropping and scaling parts of it as the
// bytes say: profiles, samples, series points, histograms, the duration.
func distort(src *observation.Observation, cuts []byte) *observation.Observation {
	o := *src
	next := func() byte {
		if len(cuts) == 0 {
			return 0
		}
		b := cuts[0]
		cuts = cuts[1:]
		return b
	}
	if b := next(); b%5 == 1 {
		o.Meta.Duration = time.Duration(b) * time.Millisecond
	} else if b%5 == 2 {
		o.Meta.Duration = 0
	}
	o.Profiles = nil
	for _, p := range src.Profiles {
		b := next()
		if b%3 == 0 {
			continue
		}
		c := p
		if p.Profile != nil && b%3 == 2 {
			c.Profile = p.Profile.Copy()
			keep := int(next()) % (len(c.Profile.Sample) + 1)
			c.Profile.Sample = c.Profile.Sample[:keep]
		}
		o.Profiles = append(o.Profiles, c)
	}
	o.Series = nil
	for _, s := range src.Series {
		b := next()
		if b%4 == 0 {
			continue
		}
		c := s
		c.Points = append([]observation.Point(nil), s.Points...)
		if b%4 == 2 && len(c.Points) > 0 {
			c.Points = c.Points[:int(next())%len(c.Points)]
		}
		if b%4 == 3 {
			for i := range c.Points {
				c.Points[i].Value *= float64(int8(next()))
			}
		}
		o.Series = append(o.Series, c)
	}
	if next()%2 == 1 {
		o.Histograms = nil
	}
	return &o
}

// A target called memory-bound with less memory load than cpu load (the
// memory rule of choose) is told why: memory management's share of its
// time on a CPU.
func TestSummaryMemoryOverCPU(t *testing.T) {
	v := &Verdict{Class: ClassMemory, Secondary: ClassCPU, runQueue: 0.14,
		Load: map[Class]float64{ClassMemory: 0.30, ClassCPU: 0.94, ClassIO: 0.77}}
	got := summary(v)
	// 0.30 of 0.30 + (0.94 - 0.14) on a CPU: 27%.
	if !strings.Contains(got, "0.30 threads' worth of time per second, 27% of its time on a CPU, then CPU-bound (0.94)") {
		t.Errorf("summary %q does not say memory management's share of the CPU time", got)
	}
	v.Load[ClassMemory] = 1.2
	if got := summary(v); strings.Contains(got, "of its time on a CPU") {
		t.Errorf("summary %q explains a memory load that leads anyway", got)
	}
}

// TestEmptyEBPFProfiles: eBPF profiles with no sample of the target (its
// processes were not followed: a postmaster's backends forked before the
// watch) leave the breakdown to /proc, which saw the target work, and
// say so; the verdict is not "none" for want of samples.
func TestEmptyEBPFProfiles(t *testing.T) {
	o := *recorded(t)["cpu-c-spin"]
	o.Profiles = nil
	for _, p := range recorded(t)["cpu-c-spin"].Profiles {
		if p.Source == observation.SourceEBPF {
			empty := p.Profile.Copy()
			empty.Sample = nil
			p.Profile = empty
		}
		o.Profiles = append(o.Profiles, p)
	}
	v := Judge(&o, DefaultThresholds())
	if v.Breakdown.Source != BreakdownProc || v.Class != ClassCPU {
		t.Errorf("breakdown from %q, class %s; want /proc's, cpu", v.Breakdown.Source, v.Class)
	}
	var said bool
	for _, g := range v.Missing {
		said = said || g.Signal == SignalEBPF && strings.Contains(g.Reason, "no sample of the target")
	}
	if !said {
		t.Errorf("the empty eBPF profiles are not said: %+v", v.Missing)
	}
}

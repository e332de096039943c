package verdict

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// recorded loads the observations of fixtures/observations with the
// manifest's truth.
func recorded(t *testing.T) map[string]*observation.Observation {
	t.Helper()
	dir := "../../fixtures/observations"
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	out := map[string]*observation.Observation{}
	for name := range manifest {
		o, err := observation.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = o
	}
	return out
}

func describe(b Breakdown) string {
	keys := make([]string, 0, len(b.Seconds))
	for k := range b.Seconds {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return b.Seconds[keys[i]] > b.Seconds[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*b.Share(k)))
	}
	return strings.Join(parts, ", ")
}

// TestBreakdownOfRecordedWorkloads checks that each workload's known
// bottleneck is where its thread time goes, once idle time is set aside.
func TestBreakdownOfRecordedWorkloads(t *testing.T) {
	busy := func(b Breakdown, categories ...string) float64 {
		var in, all float64
		for k, v := range b.Seconds {
			if k == WaitIdle || k == WaitSleep {
				continue
			}
			all += v
			for _, c := range categories {
				if k == c {
					in += v
				}
			}
		}
		if all == 0 {
			return 0
		}
		return in / all
	}
	for name, o := range recorded(t) {
		b := BreakdownOf(o)
		t.Logf("%-20s %s", name, describe(b))
		if b.Source != "ebpf" {
			t.Errorf("%s: no eBPF breakdown", name)
			continue
		}
		var want []string
		switch {
		case strings.HasPrefix(name, "cpu-"):
			want = []string{OnCPUUser}
		case name == "memory-churn":
			want = []string{OnCPUGC, OnCPUAlloc, OnCPUPageFault}
		case strings.HasPrefix(name, "io-"):
			want = []string{WaitDisk, OnCPUSyscall, OnCPUKernel}
		case name == "contention-c-mutex":
			want = []string{WaitLock, OnCPUUser}
		default:
			continue
		}
		if s := busy(b, want...); s < 0.6 {
			t.Errorf("%s: %.0f%% of the non-idle time in %v, want most", name, 100*s, want)
		}
	}
}

// TestBreakdownSides pins the one split of a breakdown into its sides
// that the table, the evidence and a host's ranking read: categories by
// side, most time first; a category of neither side is in no group and
// counts as skipped, as categories under 1% do.
func TestBreakdownSides(t *testing.T) {
	b := Breakdown{Source: BreakdownEBPF, Seconds: map[string]float64{
		OnCPUUser: 6, OnCPUGC: 0.05, OnCPUSyscall: 2, WaitDisk: 4, WaitIdle: 0, "unknown.side": 1,
	}}
	groups := b.Groups()
	if len(groups) != 2 {
		t.Fatalf("groups %+v, want on-CPU and off-CPU", groups)
	}
	on, off := groups[0], groups[1]
	if !on.OnCPU || on.Label != "on-CPU" || math.Abs(on.Seconds-8.05) > 1e-9 || strings.Join(on.Categories, " ") != "cpu.user cpu.syscall cpu.gc" {
		t.Errorf("on-CPU side %+v", on)
	}
	if off.OnCPU || off.Label != "off-CPU" || off.Seconds != 4 || strings.Join(off.Categories, " ") != "wait.disk" {
		t.Errorf("off-CPU side %+v", off)
	}
	if n := skippedCategories(b); n != 2 {
		t.Errorf("%d categories skipped, want 2 (cpu.gc under 1%%, unknown.side)", n)
	}
	for _, c := range []struct {
		source string
		want   []string
	}{
		{BreakdownEBPF, []string{SignalOnCPU, SignalOffCPU}},
		{BreakdownProc, []string{SignalProcessCPU, SignalProcFallback}},
	} {
		b.Source = c.source
		ev := breakdownEvidence(b, 10)
		if len(ev) != 2 || ev[0].Signal != c.want[0] || ev[1].Signal != c.want[1] {
			t.Errorf("%s breakdown's evidence %+v, want signals %v", c.source, ev, c.want)
		}
		if math.Abs(ev[0].Value-0.805) > 1e-9 || !strings.HasPrefix(ev[0].Text, "on-CPU 0.81 s per second: user code 75%, syscalls 25%") {
			t.Errorf("%s on-CPU evidence %+v", c.source, ev[0])
		}
	}
	// Only the off-CPU side: no on-CPU group, and no on-CPU evidence.
	w := Breakdown{Source: BreakdownEBPF, Seconds: map[string]float64{WaitSleep: 3}}
	if g := w.Groups(); len(g) != 1 || g[0].OnCPU {
		t.Errorf("a sleeping breakdown's groups %+v", g)
	}
}

package verdict

import (
	"encoding/json"
	"fmt"
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

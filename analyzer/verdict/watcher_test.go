package verdict

import (
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestHostLeavesOutTheWatcher: an idle host of 2 CPUs where perfhound
// itself, reading /proc every millisecond, spent 1.1 cores (issue 12: it
// diagnosed the host as CPU-bound, itself). The host's CPU counts it; the
// verdict must not.
func TestHostLeavesOutTheWatcher(t *testing.T) {
	host := func(mode string, v float64) observation.Series {
		return useSeries("host.cpu", map[string]string{"cpu": "all", "mode": mode}, 1, v, v, v)
	}
	watcher := func(mode string, v float64) observation.Series {
		return useSeries("watcher.cpu", map[string]string{"mode": mode}, 1, v, v, v)
	}
	o := useObs(host("user", 0.62), host("system", 0.5), host("idle", 0.88),
		useSeries("host.cpu.count", nil, 0, 2, 2, 2, 2),
		useSeries("host.psi", map[string]string{"resource": "cpu", "kind": "some"}, 1, 0.01, 0.01, 0.01),
		watcher("user", 0.6), watcher("system", 0.48))
	o.Meta.Target = observation.Target{Kind: observation.TargetHost}
	o.Meta.WatcherPID = 4242

	v := Judge(o, DefaultThresholds())
	if v.Class != ClassNone {
		t.Errorf("idle host judged %s (load %v): perfhound's own CPU counted", v.Class, v.Load)
	}
	if on := v.Breakdown.Seconds[OnCPUUser] + v.Breakdown.Seconds[OnCPUSyscall]; !useNear(on, 0.04*5, 1e-9) {
		t.Errorf("on-CPU %.3f s over the 5 s window, want the host's 0.04 cores less perfhound's", on)
	}
	cpu := rowNamed(t, v.USE, "cpu")
	if cpu.Utilization == nil || !useNear(cpu.Utilization.Value, 0.02, 1e-9) || cpu.Status != "ok" {
		t.Fatalf("cpu row %+v: want 2%% busy, perfhound's 1.08 cores left out", cpu.Utilization)
	}
	if !strings.Contains(cpu.Utilization.Text, "perfhound's own 1.08 cores left out") {
		t.Errorf("utilization text %q does not say perfhound's own time was left out", cpu.Utilization.Text)
	}

	// Old observations have no watcher.cpu: the host's CPU stands.
	o.Series = o.Series[:5]
	if v := Judge(o, DefaultThresholds()); v.Class != ClassCPU {
		t.Errorf("without watcher.cpu: %s, want the host's 1.12 cores as they are (cpu)", v.Class)
	}
}

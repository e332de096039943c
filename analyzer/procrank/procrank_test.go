package procrank

import (
	"strconv"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

func load(t *testing.T, name string) *observation.Observation {
	t.Helper()
	o, err := observation.Load("../../fixtures/observations/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// hostOf merges process observations recorded one after another into one
// host observation, as if they had run side by side: their eBPF samples
// and histograms keep their pid labels.
func hostOf(t *testing.T, names ...string) (*observation.Observation, []int) {
	t.Helper()
	host := &observation.Observation{}
	var pids []int
	for i, n := range names {
		o := load(t, n)
		if i == 0 {
			host.Meta = o.Meta
		}
		pids = append(pids, o.Meta.Target.PID)
		host.Profiles = append(host.Profiles, o.Profiles...)
		host.Histograms = append(host.Histograms, o.Histograms...)
	}
	host.Meta.Target = observation.Target{Kind: observation.TargetHost}
	return host, pids
}

func TestRankAndSplitEBPF(t *testing.T) {
	host, pids := hostOf(t, "cpu-hash", "io-fsync", "none-sleep")
	h := NewHost(host)
	ranked := h.Rank()
	if len(ranked) < 2 {
		t.Fatalf("ranked %d processes, want at least 2: %+v", len(ranked), ranked)
	}
	var sum float64
	for _, p := range ranked {
		sum += p.Impact
		if p.Source != "ebpf" {
			t.Errorf("pid %d: source %q, want ebpf", p.PID, p.Source)
		}
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("impacts sum to %.4f, want 1", sum)
	}
	want := map[int]verdict.Class{pids[0]: verdict.ClassCPU, pids[1]: verdict.ClassIO}
	for _, p := range ranked[:2] {
		class, ok := want[p.PID]
		if !ok {
			t.Fatalf("the two busiest are not the hash and fsync workloads: %+v", ranked)
		}
		sub := h.Split(p.PID)
		if sub.Meta.Target.PID != p.PID || sub.Meta.Target.Kind != observation.TargetProcess {
			t.Errorf("split target %+v", sub.Meta.Target)
		}
		for _, pr := range sub.Profiles {
			for _, s := range pr.Profile.Sample {
				if s.NumLabel["pid"][0] != int64(p.PID) {
					t.Fatalf("split of %d holds a sample of %v", p.PID, s.NumLabel["pid"])
				}
			}
		}
		if v := verdict.Judge(sub, verdict.DefaultThresholds()); v.Class != class {
			t.Errorf("pid %d (%s) judged %s alone, want %s", p.PID, p.Comm, v.Class, class)
		}
	}
	// The sleeping workload is idle: it has no load to rank, or little.
	for _, p := range ranked {
		if p.PID == pids[2] && p.Load > 0.1 {
			t.Errorf("the sleeping workload has load %.2f", p.Load)
		}
	}
	if NewHost(load(t, "cpu-hash")).Rank() != nil {
		t.Error("a process observation was ranked")
	}
}

func TestRankFromScans(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	series := func(name observation.SeriesName, pid int, comm, mode string, v float64) observation.Series {
		l := map[string]string{"pid": strconv.Itoa(pid), "comm": comm}
		if mode != "" {
			l["mode"] = mode
		}
		return observation.Series{Name: name, Unit: "cores", Labels: l, Points: []observation.Point{{Time: at, Value: v}}}
	}
	o := &observation.Observation{
		Meta: observation.Meta{Target: observation.Target{Kind: observation.TargetHost}, Duration: 10 * time.Second},
		Series: []observation.Series{
			series("proc.cpu", 10, "busy", "user", 0.9), series("proc.cpu", 10, "busy", "system", 0.1),
			series("proc.run_delay", 10, "busy", "", 0.5),
			series("proc.cpu", 20, "disk", "system", 0.1), series("proc.blkio_delay", 20, "disk", "", 0.4),
			series("proc.cpu", 30, "me", "user", 5),
			series("host.cpu", 0, "", "user", 1),
		},
	}
	o.Series[len(o.Series)-1].Labels = nil
	h := NewHost(o)
	ranked := h.Rank(30)
	if len(ranked) != 2 || ranked[0].PID != 10 || ranked[1].PID != 20 {
		t.Fatalf("ranked %+v, want busy (10) then disk (20), without the excluded 30", ranked)
	}
	if got := ranked[0].Load; got < 1.499 || got > 1.501 {
		t.Errorf("busy load %.3f, want 1.5 (CPU 1.0 + run delay 0.5)", got)
	}
	if ranked[1].ByClass[verdict.ClassIO] != 0.4 || ranked[0].Source != "proc" {
		t.Errorf("disk by class %v, source %q", ranked[1].ByClass, ranked[0].Source)
	}
	sub := h.Split(10)
	if len(sub.SeriesNamed("process.cpu", map[string]string{"mode": "user"})) != 1 ||
		len(sub.SeriesNamed("process.schedstat.run_delay", nil)) != 1 || len(sub.SeriesNamed("host.cpu", nil)) != 1 ||
		len(sub.SeriesNamed("proc.cpu", nil)) != 0 {
		t.Errorf("split series: %+v", sub.Series)
	}
	if sub.Meta.Target.Command[0] != "busy" {
		t.Errorf("split target %+v", sub.Meta.Target)
	}
}

func TestCommName(t *testing.T) {
	for in, want := range map[string]string{
		"workloads":             "workloads",
		"kworker/0:1-events":    "kworker/0:1-events",
		"\x1b]0;pwn\x07\x1b[2J": `\x1b]0;pwn\a\x1b[2J`,
		"tab\there":             `tab\there`,
		"naïve":                 "naïve",
		"a\u202egnp.exe":        `a\u202egnp.exe`, // a right-to-left override
	} {
		if got := commName(in); got != want {
			t.Errorf("commName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRankWindow checks that a host's processes are ranked per second of
// the observation's window (Observation.WindowSeconds): its duration, and
// for an observation saved without one the span of its series, which the
// verdict uses too; and that a process's CPU is its breakdown's on-CPU
// side.
func TestRankWindow(t *testing.T) {
	host, pids := hostOf(t, "cpu-hash")
	host.Series = load(t, "cpu-hash").Series
	b := verdict.BreakdownOf(host)
	var onCPU, busy float64
	for _, g := range b.Groups() {
		if g.OnCPU {
			onCPU = g.Seconds
		}
	}
	for c, s := range b.ByClass {
		if c != verdict.ClassNone {
			busy += s
		}
	}
	for _, d := range []time.Duration{host.Meta.Duration, 0} {
		host.Meta.Duration = d
		window := host.WindowSeconds()
		if window <= 0 {
			t.Fatalf("duration %v: no window", d)
		}
		ranked := NewHost(host).Rank()
		if len(ranked) != 1 || ranked[0].PID != pids[0] {
			t.Fatalf("duration %v: ranked %+v, want the hash workload alone", d, ranked)
		}
		p := ranked[0]
		if want := onCPU / window; p.CPU < want*0.999999 || p.CPU > want*1.000001 {
			t.Errorf("duration %v: CPU %.6f, want %.6f (on-CPU seconds over a %.3f s window)", d, p.CPU, want, window)
		}
		if want := busy / window; p.Load < want*0.999999 || p.Load > want*1.000001 {
			t.Errorf("duration %v: load %.6f, want %.6f", d, p.Load, want)
		}
	}
}

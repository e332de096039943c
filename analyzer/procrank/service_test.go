package procrank

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// busy is a breakdown's thread time per second in every class but none,
// as Rank counts a process's load.
func busy(o *observation.Observation) float64 {
	b := verdict.BreakdownOf(o)
	var sum float64
	for c, s := range b.ByClass {
		if c != verdict.ClassNone {
			sum += s
		}
	}
	return sum / o.WindowSeconds()
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func service(name string) observation.Target {
	return observation.Target{Kind: observation.TargetService, Service: name, Labels: map[string]string{"version": "v1"}}
}

// TestSplitServiceEBPF: a group of a host's processes split out of real
// recorded eBPF samples holds the samples and histograms of its pids and
// no others', one profile per host profile, and its load is the sum of
// its processes' loads as Rank tells them.
func TestSplitServiceEBPF(t *testing.T) {
	host, pids := hostOf(t, "cpu-hash", "io-fsync", "cpu-compress", "none-sleep")
	h := NewHost(host)
	loads := map[int]float64{}
	for _, p := range h.Rank() {
		loads[p.PID] = p.Load
	}
	group := []int{pids[1], pids[0], pids[1]} // io-fsync and cpu-hash, one given twice
	sub := h.SplitService(service("shop"), group)
	if sub.Meta.Target.Kind != observation.TargetService || sub.Meta.Target.Service != "shop" || sub.Meta.Target.Labels["version"] != "v1" {
		t.Errorf("target %+v", sub.Meta.Target)
	}
	if sub.Meta.Host != host.Meta.Host || sub.Meta.Duration != host.Meta.Duration || len(sub.Missing) != len(host.Missing) {
		t.Errorf("meta %+v, missing %d: not the host's", sub.Meta, len(sub.Missing))
	}
	want := loads[pids[0]] + loads[pids[1]]
	if got := busy(sub); !near(got, want) || want < 1 {
		t.Errorf("group load %.9f, want %.9f (hash %.3f + fsync %.3f)", got, want, loads[pids[0]], loads[pids[1]])
	}
	mine := map[int64]bool{int64(pids[0]): true, int64(pids[1]): true}
	seen := map[int64]int{}
	for _, p := range sub.Profiles {
		for _, s := range p.Profile.Sample {
			pid := s.NumLabel["pid"][0]
			if !mine[pid] {
				t.Fatalf("the group holds a sample of pid %d", pid)
			}
			seen[pid]++
		}
	}
	if len(seen) != 2 {
		t.Errorf("samples by pid %v, want both processes'", seen)
	}
	// One profile per host profile with samples of the group: as many of
	// each kind as the host has, at most.
	kinds := map[observation.ProfileKind]int{}
	for _, p := range host.Profiles {
		kinds[p.Kind]++
	}
	for _, p := range sub.Profiles {
		if kinds[p.Kind]--; kinds[p.Kind] < 0 {
			t.Errorf("more %s profiles than the host has", p.Kind)
		}
	}
	var hists int
	for _, hg := range host.Histograms {
		if pid, _ := strconv.Atoi(hg.Labels["pid"]); mine[int64(pid)] {
			hists++
		}
	}
	if len(sub.Histograms) != hists || hists == 0 {
		t.Errorf("%d histograms, want the group's %d", len(sub.Histograms), hists)
	}
	for _, hg := range sub.Histograms {
		if pid, _ := strconv.Atoi(hg.Labels["pid"]); !mine[int64(pid)] {
			t.Errorf("histogram %s of pid %s", hg.Name, hg.Labels["pid"])
		}
	}
	v := verdict.Judge(sub, verdict.DefaultThresholds())
	if v.Class != verdict.ClassCPU && v.Class != verdict.ClassIO {
		t.Errorf("group judged %s, want cpu or io: %s", v.Class, v.Summary)
	}
	if v.Load[verdict.ClassCPU] < 0.5 || v.Load[verdict.ClassIO] < 0.5 {
		t.Errorf("group loads %v: want both the hash's CPU and the fsync's I/O", v.Load)
	}
	if v.Target.Describe() != "service shop" {
		t.Errorf("verdict's target %q", v.Target.Describe())
	}
}

// TestSplitServiceOne: a group of one process is that process's split,
// judged the same, whatever its target.
func TestSplitServiceOne(t *testing.T) {
	host, pids := hostOf(t, "cpu-hash", "io-fsync", "contention-c-mutex", "network-slowclient")
	host.Series = load(t, "cpu-hash").Series // the host's own series around them
	h := NewHost(host)
	th := verdict.DefaultThresholds()
	for _, pid := range pids {
		one, sub := h.Split(pid), h.SplitService(service("s"), []int{pid})
		if !reflect.DeepEqual(one.Profiles, sub.Profiles) || !reflect.DeepEqual(one.Series, sub.Series) ||
			!reflect.DeepEqual(one.Histograms, sub.Histograms) {
			t.Errorf("pid %d: the group of one differs from the process's split", pid)
		}
		a, b := verdict.Judge(one, th), verdict.Judge(sub, th)
		if a.Class != b.Class || a.Secondary != b.Secondary || a.Confidence != b.Confidence || !reflect.DeepEqual(a.Load, b.Load) {
			t.Errorf("pid %d: judged %s/%s %.2f %v alone, %s/%s %.2f %v as a service", pid,
				a.Class, a.Secondary, a.Confidence, a.Load, b.Class, b.Secondary, b.Confidence, b.Load)
		}
	}
}

// scansOf makes a host observation without eBPF from recorded process
// windows, as if their processes had run side by side and been scanned:
// each one's process.cpu and run delay over the window become its proc.*
// series, one point at the window's end.
func scansOf(t *testing.T, names ...string) (*observation.Observation, []int) {
	t.Helper()
	var host *observation.Observation
	var pids []int
	for _, n := range names {
		o := load(t, n)
		if host == nil {
			host = &observation.Observation{Meta: o.Meta}
			host.Meta.Target = observation.Target{Kind: observation.TargetHost}
		}
		pid := o.Meta.Target.PID
		pids = append(pids, pid)
		end := host.Meta.Start.Add(host.Meta.Duration)
		for _, s := range o.Series {
			labels := map[string]string{"pid": strconv.Itoa(pid), "comm": "workloads"}
			var name observation.SeriesName
			switch s.Name {
			case observation.ProcessCPU:
				name, labels["mode"] = observation.HostScanCPU, s.Labels["mode"]
			case observation.ProcessRunDelay:
				name = observation.HostScanRunDelay
			default:
				continue
			}
			var sum float64
			for _, p := range s.Points {
				sum += p.Value
			}
			host.Series = append(host.Series, observation.Series{Name: name, Unit: s.Unit, Labels: labels,
				Points: []observation.Point{{Time: end, Value: sum / float64(len(s.Points))}}})
		}
	}
	host.Series = append(host.Series, observation.Series{Name: observation.HostCPU, Unit: "cores",
		Labels: map[string]string{"cpu": "all", "mode": "user"}, Points: []observation.Point{{Time: host.Meta.Start, Value: 1.9}}})
	return host, pids
}

// TestSplitServiceScans: without eBPF, a group's process.* series are its
// processes' proc.* series summed, and the verdict reads them, not the
// host's CPU: its load is the sum of its processes' loads from Rank.
func TestSplitServiceScans(t *testing.T) {
	host, pids := scansOf(t, "cpu-hash", "cpu-compress", "none-sleep")
	h := NewHost(host)
	loads := map[int]float64{}
	for _, p := range h.Rank() {
		loads[p.PID] = p.Load
	}
	sub := h.SplitService(service("shop"), pids[:2])
	var user float64
	for _, pid := range pids[:2] {
		user += host.SeriesNamed(observation.HostScanCPU, map[string]string{"pid": strconv.Itoa(pid), "mode": "user"})[0].Points[0].Value
	}
	got := sub.SeriesNamed(observation.ProcessCPU, map[string]string{"mode": "user"})
	if len(got) != 1 || len(got[0].Points) != 1 || !near(got[0].Points[0].Value, user) {
		t.Fatalf("process.cpu{mode=user}: %+v, want one point of %.6f", got, user)
	}
	if len(sub.SeriesNamed(observation.HostScanCPU, nil)) != 0 || len(sub.SeriesNamed(observation.HostCPU, nil)) != 1 {
		t.Errorf("series %+v: want the host's own and no scan's", sub.Series)
	}
	// The host's points are not changed by the sum.
	if v := host.SeriesNamed(observation.HostScanCPU, map[string]string{"pid": strconv.Itoa(pids[0]), "mode": "user"})[0].Points[0].Value; near(v, user) {
		t.Errorf("the host's series now holds the sum")
	}
	v := verdict.Judge(sub, verdict.DefaultThresholds())
	var total float64
	for _, l := range v.Load {
		total += l
	}
	want := loads[pids[0]] + loads[pids[1]]
	if !near(total, want) || want < 1 || v.Class != verdict.ClassCPU || v.Breakdown.Source != verdict.BreakdownProc {
		t.Errorf("group judged %s from %q, load %.9f %v; want cpu from proc, load %.9f (the sum of its processes')",
			v.Class, v.Breakdown.Source, total, v.Load, want)
	}
}

// PIDs lists every process the window saw, from samples and scans alike,
// and Comm names each as the window saw it.
func TestPIDsAndComm(t *testing.T) {
	host, pids := hostOf(t, "cpu-hash", "io-fsync")
	h := NewHost(host)
	got := h.PIDs()
	for _, pid := range pids {
		if _, ok := slices.BinarySearch(got, pid); !ok {
			t.Errorf("PIDs %v lacks %d", got, pid)
		}
		if h.Comm(pid) == "" {
			t.Errorf("Comm(%d) is empty", pid)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("PIDs %v not sorted", got)
	}
	scans, spids := scansOf(t, "cpu-hash", "cpu-compress")
	hs := NewHost(scans)
	for _, pid := range spids {
		if _, ok := slices.BinarySearch(hs.PIDs(), pid); !ok || hs.Comm(pid) == "" {
			t.Errorf("scans only: pid %d in %v, comm %q", pid, hs.PIDs(), hs.Comm(pid))
		}
	}
	if h.Comm(1<<30) != "" {
		t.Errorf("a pid never seen has a name")
	}
}

// A group's resident memory is one process.memory.rss series, the sum of
// its processes' proc.memory.rss, however many processes it has; another
// process's is left out.
func TestSplitServiceRSS(t *testing.T) {
	at := time.Date(2026, 3, 2, 0, 0, 10, 0, time.UTC)
	host := &observation.Observation{Meta: observation.Meta{Start: at.Add(-10 * time.Second), Duration: 10 * time.Second}}
	for pid, rss := range map[int]float64{10: 100 << 20, 11: 20 << 20, 12: 7 << 20} {
		l := map[string]string{"pid": strconv.Itoa(pid), "comm": "x"}
		host.Series = append(host.Series,
			observation.Series{Name: observation.HostScanCPU, Unit: "cores", Labels: map[string]string{"pid": l["pid"], "comm": "x", "mode": "user"}, Points: []observation.Point{{Time: at, Value: 0.1}}},
			observation.Series{Name: observation.HostScanRSS, Unit: "bytes", Labels: l, Points: []observation.Point{{Time: at, Value: rss}}})
	}
	sub := NewHost(host).SplitService(service("shop"), []int{11, 10})
	rss := sub.SeriesNamed(observation.ProcessRSS, nil)
	if len(rss) != 1 || len(rss[0].Points) != 1 || rss[0].Points[0].Value != 120<<20 || len(rss[0].Labels) != 0 {
		t.Fatalf("process.memory.rss %+v, want one series of 120 MiB", rss)
	}
	for _, s := range sub.Series {
		if s.Name.In(observation.FamilyHostScan) {
			t.Errorf("the split keeps %s{pid=%s}", s.Name, s.Labels["pid"])
		}
	}
	// The host's own series is not changed by the sum.
	for _, s := range host.Series {
		if s.Name == observation.HostScanRSS && s.Labels["pid"] == "11" && s.Points[0].Value != 20<<20 {
			t.Errorf("the host's proc.memory.rss of pid 11 is now %v", s.Points[0].Value)
		}
	}
}

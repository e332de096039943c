package verdict

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

var useStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// useSeries is a series with a point a second, from first seconds after
// useStart on: first is 0 for a gauge (read at the window's start), 1 for
// a counter's rates.
func useSeries(name observation.SeriesName, labels map[string]string, first int, values ...float64) observation.Series {
	s := observation.Series{Name: name, Labels: labels}
	for i, v := range values {
		s.Points = append(s.Points, observation.Point{Time: useStart.Add(time.Duration(first+i) * time.Second), Value: v})
	}
	return s
}

func useObs(series ...observation.Series) *observation.Observation {
	return &observation.Observation{
		Meta:   observation.Meta{Start: useStart, Duration: 5 * time.Second, Target: observation.Target{Kind: observation.TargetCommand, PID: 42}},
		Series: series,
	}
}

func rowNamed(t *testing.T, rows []Resource, name string) Resource {
	t.Helper()
	for _, r := range rows {
		if r.Resource == name {
			return r
		}
	}
	t.Fatalf("no %q row in %v", name, useRowNames(rows))
	return Resource{}
}

func useRowNames(rows []Resource) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Resource+" "+r.Status)
	}
	return out
}

func useNear(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestUseTableRecorded(t *testing.T) {
	th := DefaultThresholds()
	for name, o := range recorded(t) {
		rows := useTable(o, th)
		if len(rows) < 2 || rows[0].Resource != "cpu" || rows[1].Resource != "memory" {
			t.Fatalf("%s: rows %v, want cpu and memory first", name, useRowNames(rows))
		}
		for _, r := range rows[:2] {
			if r.Utilization == nil || r.Saturation == nil {
				t.Errorf("%s: %s row lacks a cell: %+v", name, r.Resource, r)
			}
		}
		if rows[0].Errors != nil {
			t.Errorf("%s: cpu errors %+v, want none (nothing counts them)", name, rows[0].Errors)
		}
		mem := rows[1]
		if mem.Errors == nil || mem.Errors.Value != 0 || mem.Status != "ok" {
			t.Errorf("%s: memory row %+v, want ok with 0 OOM kills", name, mem)
		}
		for _, r := range rows {
			t.Logf("%s: %-9s %-9s %s | %s", name, r.Resource, r.Status, cellText(r.Utilization), cellText(r.Saturation))
			if strings.HasPrefix(r.Resource, "disk ") && r.Errors != nil {
				t.Errorf("%s: %s has errors %+v: diskstats counts none", name, r.Resource, r.Errors)
			}
			if r.Resource == "net eth0" {
				t.Errorf("%s: eth0 carried nothing in any recording but has a row: %+v", name, r)
			}
			if strings.HasPrefix(r.Resource, "net ") && r.Utilization != nil {
				t.Errorf("%s: %s has a utilization %+v: no link speed is known", name, r.Resource, *r.Utilization)
			}
		}
	}
}

func cellText(m *Metric) string {
	if m == nil {
		return "-"
	}
	return m.Text
}

func TestUseTableRecordedWorkloads(t *testing.T) {
	th := DefaultThresholds()
	obs := recorded(t)

	// One hashing goroutine on a 2-CPU host: one core busy, nothing waits.
	cpu := rowNamed(t, useTable(obs["cpu-hash"], th), "cpu")
	if !useNear(cpu.Utilization.Value, 0.5, 0.05) || cpu.Status != "ok" {
		t.Errorf("cpu-hash: cpu row %+v, %+v, want 50%% busy and ok", cpu, *cpu.Utilization)
	}
	if cpu.Saturation.Signal != "host.psi{cpu,some}" || cpu.Saturation.Value > 0.05 {
		t.Errorf("cpu-hash: cpu saturation %+v, want PSI near 0", *cpu.Saturation)
	}

	// The churn workload and its collector take more than one CPU of two.
	if cpu := rowNamed(t, useTable(obs["memory-churn"], th), "cpu"); cpu.Utilization.Value < 0.55 {
		t.Errorf("memory-churn: cpu row %+v, %+v, want over 55%% busy", cpu, *cpu.Utilization)
	}

	// Sixteen threads taking turns on a mutex: tasks wait for a CPU half the time.
	if cpu := rowNamed(t, useTable(obs["contention-c-mutex"], th), "cpu"); cpu.Status != "saturated" || cpu.Saturation.Value < 0.4 {
		t.Errorf("contention-c-mutex: cpu row %+v, %+v, want saturated", cpu, *cpu.Saturation)
	}

	// fsync after every small write: the disk is busy most of the time with
	// about one request in flight, each served in tens of microseconds.
	for _, name := range []string{"io-fsync", "io-direct"} {
		disk := rowNamed(t, useTable(obs[name], th), "disk vda")
		if disk.Status != "busy" || disk.Utilization.Value < th.DiskBusy {
			t.Errorf("%s: disk row %+v, %+v, want busy", name, disk, *disk.Utilization)
		}
		if disk.Saturation.Value < 0.5 || !strings.Contains(disk.Saturation.Text, "await") || !strings.Contains(disk.Saturation.Text, "µs") {
			t.Errorf("%s: disk saturation %+v, want about 1 in flight with an await in µs", name, *disk.Saturation)
		}
	}

	// A sleeper on an idle host: no disk, no interface has a row.
	if rows := useTable(obs["none-sleep"], th); len(rows) != 2 {
		t.Errorf("none-sleep: rows %v, want cpu and memory only", useRowNames(rows))
	}

	// Bulk transfer over loopback: gigabytes per second, a few
	// retransmits, no drops.
	lo := rowNamed(t, useTable(obs["network-bulk"], th), "net lo")
	if lo.Saturation.Signal != "host.tcp.retrans_ratio" || lo.Saturation.Value <= 0 || lo.Status != "ok" {
		t.Errorf("network-bulk: lo row %+v, %+v, want ok with a retransmit ratio", lo, *lo.Saturation)
	}
	if !regexp.MustCompile(`^in [0-9.]+ GiB/s, out [0-9.]+ GiB/s; `).MatchString(lo.Saturation.Text) {
		t.Errorf("network-bulk: lo saturation text %q, want the traffic first", lo.Saturation.Text)
	}
}

func TestUseTableNoSeries(t *testing.T) {
	for _, o := range []*observation.Observation{{}, useObs()} {
		rows := useTable(o, DefaultThresholds())
		if len(rows) != 2 {
			t.Fatalf("rows %v, want cpu and memory", useRowNames(rows))
		}
		for _, r := range rows {
			if r.Utilization != nil || r.Saturation != nil || r.Errors != nil || r.Status != "unknown" {
				t.Errorf("%s: %+v, want nil cells and unknown", r.Resource, r)
			}
		}
	}
}

func TestUseTableCPU(t *testing.T) {
	th := DefaultThresholds()
	busy := func(user, system float64) []observation.Series {
		return []observation.Series{
			useSeries("host.cpu", map[string]string{"cpu": "all", "mode": "user"}, 1, user, user),
			useSeries("host.cpu", map[string]string{"cpu": "all", "mode": "system"}, 1, system, system),
			useSeries("host.cpu", map[string]string{"cpu": "all", "mode": "idle"}, 1, 4-user-system, 4-user-system),
			useSeries("host.cpu", map[string]string{"cpu": "0", "mode": "user"}, 1, 1, 1),
		}
	}
	// 3.6 of 4 cores: busy; PSI judges saturation, the run queue is context.
	o := useObs(append(busy(3, 0.6),
		useSeries("host.cpu.count", nil, 0, 4, 4, 4),
		useSeries("host.psi", map[string]string{"resource": "cpu", "kind": "some"}, 1, 0.05, 0.07),
		useSeries("host.load.procs_running", nil, 0, 20, 20, 20))...)
	cpu := useTable(o, th)[0]
	if !useNear(cpu.Utilization.Value, 0.9, 1e-9) || cpu.Status != "busy" || cpu.Saturation.Signal != "host.psi{cpu,some}" {
		t.Errorf("cpu row %+v %+v %+v, want 90%% busy, PSI not over", cpu, *cpu.Utilization, *cpu.Saturation)
	}
	if !strings.Contains(cpu.Utilization.Text, "90% of 4 CPUs") || !strings.Contains(cpu.Saturation.Text, "20.0 runnable on 4 CPUs") {
		t.Errorf("cpu texts %q, %q", cpu.Utilization.Text, cpu.Saturation.Text)
	}

	// Without host.cpu.count the metadata's CPUs serve; without PSI the
	// run queue judges: 12 runnable, less the reader, on 4 CPUs is 2.75
	// per CPU.
	o = useObs(append(busy(1, 1), useSeries("host.load.procs_running", nil, 0, 12, 12))...)
	o.Meta.CPUs = 4
	cpu = useTable(o, th)[0]
	if cpu.Utilization == nil || !useNear(cpu.Utilization.Value, 0.5, 1e-9) || cpu.Utilization.Signal != "host.cpu{all}/meta.cpus" {
		t.Fatalf("cpu utilization %+v, want 50%% from meta.cpus", cpu.Utilization)
	}
	if cpu.Saturation == nil || !useNear(cpu.Saturation.Value, 2.75, 1e-9) || cpu.Status != "saturated" {
		t.Fatalf("cpu row %+v, saturation %+v, want 2.75 runnable per CPU, saturated", cpu, cpu.Saturation)
	}
	// 4 runnable (3 without the reader) on 4 CPUs: no task waits.
	o.Series[len(o.Series)-1] = useSeries("host.load.procs_running", nil, 0, 4, 4)
	if cpu = useTable(o, th)[0]; cpu.Saturation.Value != 0.75 || cpu.Status != "ok" {
		t.Errorf("cpu row %+v, saturation %+v, want 0.75 runnable per CPU, ok", cpu, *cpu.Saturation)
	}

	// No CPU count at all: nothing to divide by, so no utilization and no
	// run-queue figure; PSI still says something.
	o = useObs(append(busy(1, 1),
		useSeries("host.load.procs_running", nil, 0, 12, 12),
		useSeries("host.psi", map[string]string{"resource": "cpu", "kind": "some"}, 1, 0.5))...)
	cpu = useTable(o, th)[0]
	if cpu.Utilization != nil || cpu.Saturation == nil || cpu.Saturation.Value != 0.5 || cpu.Status != "saturated" {
		t.Errorf("cpu row without a CPU count: %+v, want no utilization, PSI saturated", cpu)
	}
}

func TestUseTableMemory(t *testing.T) {
	th := DefaultThresholds()
	gib := float64(1 << 30)
	o := useObs(
		useSeries("host.memory.total", nil, 0, 16*gib, 16*gib, 16*gib),
		useSeries("host.memory.available", nil, 0, 1*gib, 2*gib, 3*gib),
		useSeries("host.memory.pgscan", map[string]string{"reclaimer": "direct"}, 1, 100, 300),
		useSeries("host.memory.pgscan", map[string]string{"reclaimer": "kswapd"}, 1, 5000, 5000),
		useSeries("host.memory.pswpin", nil, 1, 0, 0),
		useSeries("host.memory.oom_kill", nil, 1, 0, 0),
	)
	mem := useTable(o, th)[1]
	if !useNear(mem.Utilization.Value, 1-2.0/16, 1e-9) || mem.Utilization.Text != "88% of 16.0 GiB in use" {
		t.Errorf("memory utilization %+v", *mem.Utilization)
	}
	// Without PSI, direct reclaim scanning is saturation.
	if mem.Saturation.Signal != "host.memory.pgscan{direct}" || mem.Saturation.Value != 200 || mem.Status != "saturated" {
		t.Errorf("memory row %+v, saturation %+v, want direct reclaim 200 pages/s, saturated", mem, *mem.Saturation)
	}
	if mem.Errors.Value != 0 || mem.Errors.Text != "no OOM kills" {
		t.Errorf("memory errors %+v", *mem.Errors)
	}

	// With PSI, PSI judges and the reclaim is context; an OOM kill (one in
	// the second interval) makes the row "errors" whatever else.
	o.Series = append(o.Series, useSeries("host.psi", map[string]string{"resource": "memory", "kind": "some"}, 1, 0.01, 0.01))
	o.Series[5] = useSeries("host.memory.oom_kill", nil, 1, 0, 1)
	mem = useTable(o, th)[1]
	if mem.Saturation.Signal != "host.psi{memory,some}" || !strings.Contains(mem.Saturation.Text, "direct reclaim scanned 200 pages/s") {
		t.Errorf("memory saturation %+v, want PSI with the reclaim as context", *mem.Saturation)
	}
	if mem.Errors.Value != 1 || mem.Status != "errors" {
		t.Errorf("memory row %+v, errors %+v, want 1 OOM kill", mem, *mem.Errors)
	}
}

func TestEventsIn(t *testing.T) {
	// Rates over 2 s intervals: 0.5/s then 1.5/s is 1 + 3 events.
	s := observation.Series{Name: "host.memory.oom_kill", Points: []observation.Point{
		{Time: useStart.Add(2 * time.Second), Value: 0.5}, {Time: useStart.Add(4 * time.Second), Value: 1.5}}}
	o := &observation.Observation{Meta: observation.Meta{Start: useStart}, Series: []observation.Series{s}}
	if n, ok := eventsIn(o, "host.memory.oom_kill", nil); !ok || n != 4 {
		t.Errorf("eventsIn = %v, %v, want 4", n, ok)
	}
	o.Meta.Start = time.Time{} // unknown start: the first interval is taken as the next one
	if n, _ := eventsIn(o, "host.memory.oom_kill", nil); n != 4 {
		t.Errorf("eventsIn without a start = %v, want 4", n)
	}
	if _, ok := eventsIn(o, "host.net.errors", nil); ok {
		t.Error("eventsIn of a missing series is ok")
	}
}

func TestUseTableDisks(t *testing.T) {
	th := DefaultThresholds()
	vda := map[string]string{"device": "vda"}
	op := func(o string) map[string]string { return map[string]string{"device": "vda", "op": o} }
	loop := map[string]string{"device": "loop0"}
	hung := map[string]string{"device": "sdb"}
	o := useObs(
		useSeries("host.disk.ops", op("read"), 1, 100, 0),
		useSeries("host.disk.ops", op("write"), 1, 0, 900),
		useSeries("host.disk.await", op("read"), 1, 0.001),
		useSeries("host.disk.await", op("write"), 2, 0.010),
		useSeries("host.disk.bytes", op("read"), 1, 0, 0),
		useSeries("host.disk.utilization", vda, 1, 0.4, 0.6),
		useSeries("host.disk.queue", vda, 1, 2, 4),
		useSeries("host.disk.ops", map[string]string{"device": "loop0", "op": "read"}, 1, 0, 0),
		useSeries("host.disk.utilization", loop, 1, 0, 0),
		useSeries("host.disk.queue", loop, 1, 0, 0),
		// A disk that completes nothing but always has a request in flight.
		useSeries("host.disk.ops", map[string]string{"device": "sdb", "op": "read"}, 1, 0, 0),
		useSeries("host.disk.utilization", hung, 1, 1, 1),
		useSeries("host.disk.queue", hung, 1, 1, 1),
	)
	rows := useTable(o, th)
	if len(rows) != 4 || rows[2].Resource != "disk sdb" || rows[3].Resource != "disk vda" {
		t.Fatalf("rows %v, want cpu, memory, disk sdb, disk vda (no idle loop0)", useRowNames(rows))
	}
	d := rows[3]
	if d.Utilization.Value != 0.5 || d.Saturation.Value != 3 || d.Status != "saturated" || d.Errors != nil {
		t.Errorf("vda %+v %+v %+v, want 50%% busy, 3 in flight, saturated", d, *d.Utilization, *d.Saturation)
	}
	// Await weighted by requests: (100×1 ms + 900×10 ms) / 1000.
	if want := "await 9.1ms, 3.00 in flight"; d.Saturation.Text != want {
		t.Errorf("vda saturation text %q, want %q", d.Saturation.Text, want)
	}
	if h := rows[2]; h.Status != "busy" || h.Saturation.Value != 1 || strings.Contains(h.Saturation.Text, "await") {
		t.Errorf("sdb %+v %+v, want busy, 1 in flight, no await", h, *h.Saturation)
	}
}

func TestUseTableNet(t *testing.T) {
	th := DefaultThresholds()
	dir := func(iface, d string) map[string]string { return map[string]string{"interface": iface, "dir": d} }
	iface := func(name string, in, out, drops, errs float64) []observation.Series {
		return []observation.Series{
			useSeries("host.net.bytes", dir(name, "in"), 1, in, in),
			useSeries("host.net.bytes", dir(name, "out"), 1, out, out),
			useSeries("host.net.drops", dir(name, "in"), 1, drops, 0),
			useSeries("host.net.drops", dir(name, "out"), 1, 0, 0),
			useSeries("host.net.errors", dir(name, "in"), 1, 0, errs),
			useSeries("host.net.errors", dir(name, "out"), 1, 0, 0),
		}
	}
	var series []observation.Series
	series = append(series, iface("eth0", 1e6, 2e6, 0, 0)...)
	series = append(series, iface("eth1", 100, 100, 4, 0)...)
	series = append(series, iface("eth2", 100, 100, 0, 3)...)
	series = append(series, iface("idle0", 0, 0, 0, 0)...)
	series = append(series, useSeries("host.tcp.retrans_ratio", nil, 1, 0.004, 0.008))
	rows := useTable(useObs(series...), th)
	if got := strings.Join(useRowNames(rows), ", "); got != "cpu unknown, memory unknown, net eth0 ok, net eth1 saturated, net eth2 errors" {
		t.Fatalf("rows %s", got)
	}
	eth0 := rows[2]
	if eth0.Utilization != nil {
		t.Errorf("eth0 utilization %+v, want none (no link speed)", *eth0.Utilization)
	}
	if eth0.Saturation.Signal != "host.tcp.retrans_ratio" || !useNear(eth0.Saturation.Value, 0.006, 1e-12) || eth0.Saturation.Threshold != th.RetransRatio {
		t.Errorf("eth0 saturation %+v, want the retransmit ratio", *eth0.Saturation)
	}
	if want := "in 976.6 KiB/s, out 1.9 MiB/s; host TCP retransmitted 0.60% of segments; no drops"; eth0.Saturation.Text != want {
		t.Errorf("eth0 saturation text %q, want %q", eth0.Saturation.Text, want)
	}
	if s := rows[3].Saturation; s.Signal != "host.net.drops{eth1}" || s.Value != 2 {
		t.Errorf("eth1 saturation %+v, want 2 drops/s", *s)
	}
	if e := rows[4].Errors; e.Value != 3 || e.Text != "3 errors" {
		t.Errorf("eth2 errors %+v, want 3", *e)
	}

	// Retransmitting beyond the threshold saturates every interface with
	// traffic (the ratio is the host's).
	series[len(series)-1] = useSeries("host.tcp.retrans_ratio", nil, 1, 0.05, 0.05)
	if r := useTable(useObs(series...), th)[2]; r.Status != "saturated" {
		t.Errorf("eth0 with 5%% retransmits: %+v, want saturated", r)
	}
}

package daemon

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/testproc"
)

// A recorded host window (agent/store/testdata/host-window, this VM's,
// its processes long gone) is split into one record per service: every
// process the window saw is in exactly one, named by its command as a
// process gone before it could be resolved is, with its own samples, a
// verdict, and none of the host's series, which the host record has.
func TestBatchOfHostWindow(t *testing.T) {
	host, err := observation.Load("../store/testdata/host-window")
	if err != nil {
		t.Fatal(err)
	}
	// Its processes are looked up in an empty /proc: all gone, as they
	// are (a live lookup would find this host's own kernel threads at
	// the same PIDs).
	ids, err := identity.New(identity.Options{Env: collect.Env{ProcFS: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{}
	live := Live{Thresholds: verdict.DefaultThresholds(), Labels: map[string]string{"env": "test"}}
	b := d.batch(host, nil, nil, ids, live)

	split := procrank.NewHost(host)
	pids := split.PIDs()
	if len(pids) < 10 {
		t.Fatalf("the recorded window has %d processes: not a host's", len(pids))
	}
	byService := map[string]bool{}
	for _, pid := range pids {
		byService[gone(split.Comm(pid)).Service] = true
	}
	if len(b.Records) != len(byService) {
		t.Errorf("%d records for %d services", len(b.Records), len(byService))
	}
	samples := 0
	for _, r := range b.Records {
		if r.Version != identity.UnknownVersion || r.Labels[identity.LabelService] != r.Service || r.Labels["env"] != "test" {
			t.Errorf("record %s %s labels %v", r.Service, r.Version, r.Labels)
		}
		if r.Obs.Meta.Target.Kind != observation.TargetService || r.Obs.Meta.Target.Service != r.Service {
			t.Errorf("record %s: target %+v", r.Service, r.Obs.Meta.Target)
		}
		var s verdict.Summary
		if err := json.Unmarshal(r.Verdict, &s); err != nil || s.Class == "" {
			t.Errorf("record %s: verdict %s (%v)", r.Service, r.Verdict, err)
		}
		for _, p := range r.Obs.Profiles {
			for _, smp := range p.Profile.Sample {
				samples++
				pid := int(smp.NumLabel["pid"][0])
				if gone(split.Comm(pid)).Service != r.Service {
					t.Fatalf("record %s holds a sample of pid %d (%s)", r.Service, pid, split.Comm(pid))
				}
			}
		}
	}
	want := 0
	for _, p := range host.Profiles {
		if p.Source == observation.SourceEBPF {
			for _, smp := range p.Profile.Sample {
				if _, ok := smp.NumLabel["pid"]; ok {
					want++
				}
			}
		}
	}
	if samples != want || want == 0 {
		t.Errorf("the records hold %d samples, the host window %d", samples, want)
	}
	if b.Host == nil || len(b.Host.Obs.Profiles) != 0 {
		t.Fatalf("host record %+v", b.Host)
	}
	for _, s := range b.Host.Obs.Series {
		if s.Name.In(observation.FamilyHostScan) {
			t.Errorf("the host record keeps %s{pid=%s}: the services have it", s.Name, s.Labels["pid"])
		}
	}
	if len(b.Host.Obs.Series) == 0 {
		t.Error("the host record has no series")
	}
}

// Two replicas of one application pushing under one name, with labels of
// their own, are one record of the window (the store keeps one per
// service, version and window: the second overwrote the first), their
// profiles merged, filed at the window that drained them whatever times
// the clients claimed.
func TestPushesOfOneServiceOneRecord(t *testing.T) {
	host, err := observation.Load("../store/testdata/host-window")
	if err != nil {
		t.Fatal(err)
	}
	app, err := observation.Load("../../fixtures/observations/cpu-hash")
	if err != nil {
		t.Fatal(err)
	}
	var cpu *observation.Profile
	for i, p := range app.Profiles {
		if p.Kind == observation.KindCPU {
			cpu = &app.Profiles[i]
		}
	}
	if cpu == nil {
		t.Fatal("the fixture has no cpu profile")
	}
	push := func(instance string, start time.Time) *observation.Observation {
		return &observation.Observation{
			Meta: observation.Meta{
				Target: observation.Target{Kind: observation.TargetApp, App: "shop", Labels: map[string]string{"instance": instance}},
				Start:  start, Duration: 10 * time.Second,
			},
			Profiles: []observation.Profile{{Kind: observation.KindCPU, Source: observation.SourceIngest, Profile: cpu.Profile.Copy()},
				{Kind: observation.KindCPU, Source: observation.SourceIngest, Profile: cpu.Profile.Copy()}},
		}
	}
	ids, err := identity.New(identity.Options{Env: collect.Env{ProcFS: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	live := Live{Thresholds: verdict.DefaultThresholds()}
	pushes := []*observation.Observation{push("a", time.Time{}), push("b", time.Unix(1<<40, 0))}
	b := (&Daemon{}).batch(host, nil, pushes, ids, live)
	var shop []store.Record
	for _, r := range b.Records {
		if r.Service == "shop" {
			shop = append(shop, r)
		}
	}
	if len(shop) != 1 {
		t.Fatalf("%d records of shop, want 1", len(shop))
	}
	r := shop[0]
	if !r.Obs.Meta.Start.Equal(host.Meta.Start) || r.Obs.Meta.Duration != host.Meta.Duration {
		t.Errorf("filed at %v for %v, want the window's %v for %v", r.Obs.Meta.Start, r.Obs.Meta.Duration, host.Meta.Start, host.Meta.Duration)
	}
	total := func(p *observation.Profile) (n int64) {
		for _, s := range p.Profile.Sample {
			n += s.Value[0]
		}
		return n
	}
	if len(r.Obs.Profiles) != 1 || total(&r.Obs.Profiles[0]) != 4*total(cpu) {
		t.Errorf("%d profiles, want the four pushes merged into one", len(r.Obs.Profiles))
	}
}

// A service split out of a host's window carries its processes' resident
// memory, summed into one process.memory.rss series, and the regression
// detector's window reads it: a live scan of this host's /proc around a
// spinning shell (the recorded host windows predate proc.memory.rss).
func TestBatchCarriesMemory(t *testing.T) {
	spin := testproc.Spin(t, 1e8)
	scan, err := collect.StartProcessScan(collect.Env{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	before := testproc.OnCPU(spin.Process.Pid)
	for deadline := start.Add(2 * time.Minute); testproc.OnCPU(spin.Process.Pid)-before < 50*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the spinning shell had less than 50 ms of CPU time in two minutes")
		}
	}
	series, _, err := scan.Finish()
	if err != nil {
		t.Fatal(err)
	}
	host := &observation.Observation{Meta: observation.Meta{Host: "test", Start: start.UTC(), Duration: time.Since(start)}, Series: series}
	ids, err := identity.New(identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ids.Resolve(spin.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The RSS of every process of the shell's service and version.
	var want float64
	pids := 0
	for _, s := range series {
		if s.Name != observation.HostScanRSS {
			continue
		}
		pid, _ := strconv.Atoi(s.Labels["pid"])
		if o, err := ids.Resolve(pid); err == nil && o.Service == id.Service && o.Version == id.Version {
			want += s.Points[0].Value
			pids++
		}
	}
	if want == 0 {
		t.Fatalf("the scan holds no proc.memory.rss of the shell's service %s", id.Service)
	}
	d := &Daemon{}
	b := d.batch(host, nil, nil, ids, Live{Thresholds: verdict.DefaultThresholds()})
	for _, r := range b.Records {
		if r.Service != id.Service || r.Version != id.Version {
			continue
		}
		if n := len(r.Obs.SeriesNamed(observation.ProcessRSS, nil)); n != 1 {
			t.Errorf("%d process.memory.rss series, want one for the service", n)
		}
		for _, s := range r.Obs.Series {
			if s.Name.In(observation.FamilyHostScan) {
				t.Errorf("the record keeps %s{pid=%s}", s.Name, s.Labels["pid"])
			}
		}
		w := regress.WindowOf(r.Obs, r.Service, r.Version, verdict.Summary{})
		t.Logf("%s %s: %d processes, memory %.1f MiB", r.Service, r.Version, pids, w.Memory/(1<<20))
		if w.Memory != want {
			t.Errorf("the window's memory %.0f bytes, the processes' RSS %.0f", w.Memory, want)
		}
		return
	}
	t.Fatalf("no record of %s %s", id.Service, id.Version)
}

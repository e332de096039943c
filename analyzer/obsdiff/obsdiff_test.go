package obsdiff

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

const observationsDir = "../../fixtures/observations"

func load(t *testing.T, name string) *observation.Observation {
	t.Helper()
	o, err := observation.Load(filepath.Join(observationsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func diff(t *testing.T, base, head string, edit func(*Options)) *Diff {
	t.Helper()
	opt := DefaultOptions()
	opt.BaseName, opt.HeadName = base, head
	if edit != nil {
		edit(&opt)
	}
	d, err := Compare(load(t, base), load(t, head), opt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func profileOf(d *Diff, source, kind string) *ProfileChange {
	for i := range d.Profiles {
		if p := &d.Profiles[i]; p.Source == source && p.Kind == kind {
			return p
		}
	}
	return nil
}

func functionOf(p *ProfileChange, name string) *FunctionChange {
	for i := range p.Functions {
		if p.Functions[i].Name == name {
			return &p.Functions[i]
		}
	}
	return nil
}

// A CPU-bound hash loop against an fsync loop: the class moves from cpu to
// io, which is a regression, and the functions say which code moved.
func TestCPUToIO(t *testing.T) {
	d := diff(t, "cpu-hash", "io-fsync", nil)
	if d.Class.Base != verdict.ClassCPU || d.Class.Head != verdict.ClassIO || d.Class.Change != stat.Regression {
		t.Errorf("class %s → %s (%v), want cpu → io (regression)", d.Class.Base, d.Class.Head, d.Class.Change)
	}
	if !d.Regressed() || !d.Failed {
		t.Errorf("regressed %v, failed %v; want both (regressions %q)", d.Regressed(), d.Failed, d.Regressions)
	}
	loads := map[verdict.Class]LoadChange{}
	for _, l := range d.Load {
		loads[l.Class] = l
	}
	if l := loads[verdict.ClassIO]; l.Change != stat.Regression || l.Head < 0.5 || l.Relative != nil {
		t.Errorf("io load %+v, want a regression from nothing", l)
	}
	if l := loads[verdict.ClassCPU]; l.Change != stat.Improvement || l.Delta > -0.5 {
		t.Errorf("cpu load %+v, want an improvement", l)
	}

	cpu := profileOf(d, "ebpf", "cpu")
	if cpu == nil || cpu.Unit != "seconds/s" {
		t.Fatalf("ebpf cpu profile change %+v, want one in seconds/s", cpu)
	}
	if cpu.Functions[0].Name != "main.hashBlocks" || cpu.Functions[0].Delta.Own > -0.9 {
		t.Errorf("ebpf cpu: first function %+v, want main.hashBlocks losing about one thread", cpu.Functions[0])
	}
	off := profileOf(d, "ebpf", "offcpu")
	if f := functionOf(off, "main.fsyncLoop"); f == nil || f.Delta.Own < 0.5 {
		t.Errorf("ebpf offcpu: main.fsyncLoop %+v, want over half a thread more waiting", f)
	}
	if p := profileOf(d, "ebpf", "faults"); p == nil || p.Note == "" {
		t.Errorf("ebpf faults %+v, want a note: neither side has samples", p)
	}

	if len(d.Priorities) == 0 || d.Priorities[0].Mark != MarkNew || !strings.HasPrefix(d.Priorities[0].Name, "fsync from") {
		t.Errorf("first priority %+v, want a new fsync", d.Priorities)
	}
	last := d.Priorities[len(d.Priorities)-1]
	if last.Mark != MarkGone || !strings.Contains(last.Name, "sha256") {
		t.Errorf("last priority %+v, want the hashing gone", last)
	}

	var disk *ResourceChange
	for i := range d.Resources {
		if d.Resources[i].Resource == "disk vda" {
			disk = &d.Resources[i]
		}
	}
	if disk == nil || disk.Utilization == nil || *disk.Utilization.Head <= *disk.Utilization.Base || disk.HeadStatus != "busy" {
		t.Errorf("disk vda %+v, want busier in the head", disk)
	}
	var bio *LatencyChange
	for i := range d.Latency {
		if strings.HasPrefix(d.Latency[i].Name, "block I/O") {
			bio = &d.Latency[i]
		}
	}
	if bio == nil || bio.Base != nil || bio.Head == nil || bio.Head.Count == 0 {
		t.Errorf("block I/O latency %+v, want the head's only", bio)
	}
	if !hasString(d.Warnings, "different targets") {
		t.Errorf("warnings %q, want one about different targets", d.Warnings)
	}
}

func hasString(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Every recorded observation compared with itself: nothing changes, under
// the strictest policy.
func TestSelf(t *testing.T) {
	for _, name := range []string{"cpu-hash", "io-fsync", "contention-go-mutex", "memory-leak", "none-sleep", "network-slowclient"} {
		t.Run(name, func(t *testing.T) {
			d := diff(t, name, name, func(o *Options) { o.FailOn = stat.FailOnChange; o.Threshold = 0 })
			if d.Changed() || d.Failed || d.Class.Change != stat.Unchanged {
				t.Errorf("changed %v, failed %v: %q %q", d.Changed(), d.Failed, d.Regressions, d.Improvements)
			}
			for _, p := range d.Profiles {
				if len(p.Functions) > 0 {
					t.Errorf("%s %s: %d functions changed, want none", p.Source, p.Kind, len(p.Functions))
				}
			}
			for _, p := range d.Priorities {
				if p.Mark != MarkSame {
					t.Errorf("priority %q marked %s, want same", p.Name, p.Mark)
				}
			}
			for _, m := range d.Missing {
				if m.Side != "both" {
					t.Errorf("missing %s on the %s side only", m.Signal, m.Side)
				}
			}
		})
	}
}

// From busy to idle is an improvement: it fails only --fail-on change.
func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy stat.Policy
		fail   bool
	}{{stat.FailOnRegression, false}, {stat.FailOnChange, true}, {stat.FailNever, false}} {
		d := diff(t, "cpu-hash", "none-sleep", func(o *Options) { o.FailOn = tc.policy })
		if d.Class.Change != stat.Improvement || d.Regressed() || !d.Changed() {
			t.Errorf("cpu → none: class %v, regressions %q, improvements %q; want an improvement only", d.Class.Change, d.Regressions, d.Improvements)
		}
		if d.Failed != tc.fail {
			t.Errorf("--fail-on %s: failed %v, want %v", tc.policy, d.Failed, tc.fail)
		}
	}
	if d := diff(t, "io-fsync", "cpu-hash", func(o *Options) { o.FailOn = stat.FailNever }); d.Failed || !d.Regressed() {
		t.Errorf("--fail-on never: failed %v (want false), regressed %v (want true: io → cpu)", d.Failed, d.Regressed())
	}
}

// The load rule: relative and absolute floors, both ways.
func TestLoadRule(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, head float64
		threshold  float64
		minChange  float64
		want       stat.Change
	}{
		{"grew past both", 1.0, 1.3, 0.05, 0.2, stat.Regression},
		{"under the absolute floor", 1.0, 1.15, 0.05, 0.2, stat.Unchanged},
		{"smaller floor", 1.0, 1.15, 0.05, 0.1, stat.Regression},
		{"under the relative threshold", 4.0, 4.3, 0.1, 0.2, stat.Unchanged},
		{"fell", 2.0, 1.5, 0.05, 0.2, stat.Improvement},
		{"from nothing", 0, 0.25, 0.05, 0.2, stat.Regression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Diff{}
			bv := &verdict.Verdict{Load: map[verdict.Class]float64{verdict.ClassCPU: tc.base}}
			hv := &verdict.Verdict{Load: map[verdict.Class]float64{verdict.ClassCPU: tc.head}}
			d.compareLoad(bv, hv, Options{Threshold: tc.threshold, MinLoadChange: tc.minChange})
			if len(d.Load) != 1 || d.Load[0].Change != tc.want {
				t.Fatalf("%v → %v: %+v, want %v", tc.base, tc.head, d.Load, tc.want)
			}
			if (tc.want == stat.Regression) != (len(d.Regressions) == 1) || (tc.want == stat.Improvement) != (len(d.Improvements) == 1) {
				t.Errorf("regressions %q, improvements %q", d.Regressions, d.Improvements)
			}
		})
	}
}

// scaled is o watched for k times as long, doing the same per second: the
// window, the profiles' durations and every sample value times k.
func scaled(o *observation.Observation, k int64) *observation.Observation {
	c := *o
	c.Meta.Duration *= time.Duration(k)
	c.Profiles = nil
	for _, p := range o.Profiles {
		pp := p.Profile.Copy()
		pp.DurationNanos *= k
		for _, s := range pp.Sample {
			for i := range s.Value {
				s.Value[i] *= k
			}
		}
		p.Profile = pp
		c.Profiles = append(c.Profiles, p)
	}
	return &c
}

// Costs are per second of each window: the same work over a window twice
// as long is no change.
func TestWindowsOfDifferentLengths(t *testing.T) {
	base := load(t, "cpu-hash")
	d, err := Compare(base, scaled(base, 2), Options{Threshold: 0, FailOn: stat.FailOnChange})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Profiles {
		if len(p.Functions) > 0 || p.BaseTotal != 0 && !near(p.BaseTotal, p.HeadTotal) {
			t.Errorf("%s %s: totals %v → %v, %d functions changed; want no change", p.Source, p.Kind, p.BaseTotal, p.HeadTotal, len(p.Functions))
		}
	}
	for _, c := range d.Breakdown.Categories {
		if !near(c.Base, c.Head) {
			t.Errorf("%s: %v → %v per second, want no change", c.Category, c.Base, c.Head)
		}
	}
}

func near(a, b float64) bool { return a == b || (a-b)/(a+b) < 1e-9 && (b-a)/(a+b) < 1e-9 }

func TestNoWindow(t *testing.T) {
	o := load(t, "cpu-hash")
	empty := &observation.Observation{Meta: observation.Meta{Target: o.Meta.Target}}
	if _, err := Compare(o, empty, DefaultOptions()); !errors.Is(err, ErrNoWindow) || !strings.Contains(err.Error(), "head") {
		t.Errorf("err %v, want ErrNoWindow naming the head", err)
	}
}

// Kinds on one side only and kinds whose sample types differ are notes,
// not failures.
func TestUnpairedProfiles(t *testing.T) {
	d := diff(t, "memory-leak", "contention-go-mutex", nil)
	if !hasString(d.Warnings, "pprof mutex profile in the head only") {
		t.Errorf("warnings %q, want the head's mutex profile unpaired", d.Warnings)
	}
	if profileOf(d, "pprof", "mutex") != nil || profileOf(d, "ebpf", "cpu") == nil {
		t.Errorf("profiles %+v: want ebpf cpu compared, pprof mutex not", d.Profiles)
	}

	base := load(t, "cpu-hash")
	head := scaled(base, 1)
	for i, p := range head.Profiles {
		if p.Kind == observation.KindCPU {
			p.Profile.SampleType = []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "wall", Unit: "nanoseconds"}}
			p.Profile.DefaultSampleType = ""
			head.Profiles[i] = p
		}
	}
	d, err := Compare(base, head, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !hasString(d.Warnings, "ebpf cpu profiles not compared") {
		t.Errorf("warnings %q, want the cpu profiles' sample types told apart", d.Warnings)
	}
}

// TestServiceTargets: two windows of one service, another version in
// each, are one target's; two services are not.
func TestServiceTargets(t *testing.T) {
	svc := func(name, version string) *observation.Observation {
		o := load(t, "cpu-hash")
		o.Meta.Target = observation.Target{Kind: observation.TargetService, Service: name, Labels: map[string]string{"version": version}}
		return o
	}
	for _, c := range []struct {
		base, head *observation.Observation
		want       bool
	}{
		{svc("shop", "v1"), svc("shop", "v2"), false},
		{svc("shop", "v1"), svc("cart", "v1"), true},
	} {
		d, err := Compare(c.base, c.head, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if got := hasString(d.Warnings, "different targets"); got != c.want {
			t.Errorf("%s against %s: warned of different targets %v, want %v (%q)", c.base.Meta.Target.Service, c.head.Meta.Target.Service, got, c.want, d.Warnings)
		}
	}
}

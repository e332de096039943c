package observation

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// shifted is o moved later by d: another window of the same target.
func shifted(o *Observation, d time.Duration) *Observation {
	c := *o
	c.Meta.Start = o.Meta.Start.Add(d)
	c.Series = nil
	for _, s := range o.Series {
		s.Points = append([]Point(nil), s.Points...)
		for i := range s.Points {
			s.Points[i].Time = s.Points[i].Time.Add(d)
		}
		c.Series = append(c.Series, s)
	}
	return &c
}

// totals sums each sample value column of p.
func totals(p *profile.Profile) []int64 {
	out := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		for i, v := range s.Value {
			out[i] += v
		}
	}
	return out
}

// TestMergeTwoWindows: two windows of each committed observation merge
// into one whose sample values (of the additive profile kinds; a
// snapshot's are their average, the same), histogram counts and duration
// are the sums of theirs, whose series hold both windows' points in time order,
// and whose Start is the earlier window's, whatever order they come in.
func TestMergeTwoWindows(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		first, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := Marshal(first)
		second := shifted(first, first.Meta.Duration)
		m, err := Merge([]*Observation{second, first})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if after, _ := Marshal(first); !bytes.Equal(before, after) {
			t.Errorf("%s: Merge changed its input", dir)
		}
		if !m.Meta.Start.Equal(first.Meta.Start) || m.Meta.Duration != 2*first.Meta.Duration {
			t.Errorf("%s: start %s duration %s, want %s and %s", dir, m.Meta.Start, m.Meta.Duration, first.Meta.Start, 2*first.Meta.Duration)
		}
		if len(m.Profiles) != len(first.Profiles) {
			t.Fatalf("%s: %d profiles, want %d", dir, len(m.Profiles), len(first.Profiles))
		}
		for i, p := range first.Profiles {
			got, want := totals(m.Profiles[i].Profile), totals(p.Profile)
			times := int64(2)
			if p.Kind.Snapshot() {
				times = 1
			}
			for k := range want {
				if got[k] != times*want[k] {
					t.Errorf("%s: %s profile's %s total %d, want %d×%d", dir, p.Kind, p.Profile.SampleType[k].Type, got[k], times, want[k])
				}
			}
		}
		if len(m.Series) != len(first.Series) {
			t.Fatalf("%s: %d series, want %d", dir, len(m.Series), len(first.Series))
		}
		for i, s := range first.Series {
			g := m.Series[i]
			if g.Name != s.Name || len(g.Points) != 2*len(s.Points) {
				t.Fatalf("%s: series %s has %d points, want 2×%d", dir, g.Name, len(g.Points), len(s.Points))
			}
			for k := 1; k < len(g.Points); k++ {
				if g.Points[k].Time.Before(g.Points[k-1].Time) {
					t.Fatalf("%s: series %s out of time order at %d", dir, g.Name, k)
				}
			}
			if len(s.Points) > 0 && (g.Points[0] != s.Points[0] || g.Points[len(g.Points)-1] != second.Series[i].Points[len(s.Points)-1]) {
				t.Errorf("%s: series %s runs from %v to %v", dir, g.Name, g.Points[0], g.Points[len(g.Points)-1])
			}
		}
		for i, h := range first.Histograms {
			g := m.Histograms[i]
			if g.Count != 2*h.Count || g.Sum != 2*h.Sum {
				t.Errorf("%s: histogram %s count %d sum %d, want 2×%d 2×%d", dir, h.Name, g.Count, g.Sum, h.Count, h.Sum)
			}
			for k := range h.Slots {
				if g.Slots[k] != 2*h.Slots[k] {
					t.Errorf("%s: histogram %s slot %d is %d, want 2×%d", dir, h.Name, k, g.Slots[k], h.Slots[k])
				}
			}
		}
		if (len(m.Missing) > 0 || len(first.Missing) > 0) && !reflect.DeepEqual(m.Missing, first.Missing) {
			t.Errorf("%s: missing %v, want %v once", dir, m.Missing, first.Missing)
		}
		// The merge is an observation like any: it encodes.
		if _, err := Marshal(m); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
}

// TestMergeSnapshots: the real heap and goroutine snapshots of a Go
// service (fixture contention-go-mutex), in two windows, the second's
// three times the first's, merge into their time-weighted average: twice
// the first's over windows of one duration, 2.5 times over a second
// window three times longer. The window's CPU profiles still sum.
func TestMergeSnapshots(t *testing.T) {
	first, err := Load("../../fixtures/observations/contention-go-mutex")
	if err != nil {
		t.Fatal(err)
	}
	byKind := func(o *Observation, kind ProfileKind) *profile.Profile {
		t.Helper()
		for _, p := range o.Profiles {
			if p.Kind == kind && p.Source == SourcePprof {
				return p.Profile
			}
		}
		t.Fatalf("no pprof %s profile", kind)
		return nil
	}
	for _, kind := range []ProfileKind{KindHeap, KindGoroutine, KindCPU} {
		if len(byKind(first, kind).Sample) == 0 {
			t.Fatalf("the fixture's %s profile is empty", kind)
		}
	}
	for _, tc := range []struct {
		name   string
		longer time.Duration // the second window's duration over the first's
		// want is the merged snapshot's totals over the first's, in
		// quarters: (1×d + 3×longer×d) / (d + longer×d).
		want int64
	}{
		{"equal windows", 1, 8},
		{"a second window three times longer", 3, 10},
	} {
		second := shifted(first, first.Meta.Duration)
		second.Meta.Duration = tc.longer * first.Meta.Duration
		second.Profiles = slices.Clone(first.Profiles)
		for i, p := range second.Profiles {
			if p.Kind.Snapshot() {
				second.Profiles[i].Profile = p.Profile.Copy()
				second.Profiles[i].Profile.Scale(3)
			}
		}
		m, err := Merge([]*Observation{first, second})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, kind := range []ProfileKind{KindHeap, KindGoroutine} {
			p := byKind(first, kind)
			got, one := totals(byKind(m, kind)), totals(p)
			for k, st := range p.SampleType {
				// Each sample's weighted value is rounded: off by at most
				// half a unit per sample of each window.
				want, slack := one[k]*tc.want/4, int64(len(p.Sample))
				if got[k] < want-slack || got[k] > want+slack {
					t.Errorf("%s: merged %s %s total %d, want %d/4 × %d = %d (±%d); the sum would be %d",
						tc.name, kind, st.Type, got[k], tc.want, one[k], want, slack, 4*one[k])
				}
			}
		}
		got, one := totals(byKind(m, KindCPU)), totals(byKind(first, KindCPU))
		for k := range one {
			if got[k] != 2*one[k] {
				t.Errorf("%s: merged cpu total %d, want the sum 2×%d", tc.name, got[k], one[k])
			}
		}
	}
	// One window's pushes of one kind (an SDK's, every 10 s) average too.
	pushes := *first
	heap := byKind(first, KindHeap)
	pushes.Profiles = []Profile{{Kind: KindHeap, Source: SourceIngest, Profile: heap}, {Kind: KindHeap, Source: SourceIngest, Profile: heap}}
	m, err := Merge([]*Observation{&pushes})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := totals(m.Profiles[0].Profile), totals(heap); !slices.Equal(got, want) {
		t.Errorf("two pushes of one heap in one window: totals %v, want %v", got, want)
	}
}

// TestMergeKeepsApart: profiles of other labels, series of other labels
// and histograms of other names stay apart, and histograms of different
// lengths sum.
func TestMergeKeepsApart(t *testing.T) {
	a := sampleObservation()
	b := shifted(sampleObservation(), 10*time.Second)
	b.Histograms[0].Slots = []uint64{1, 0, 0, 4}
	b.Histograms = append(b.Histograms, Histogram{Name: "block.latency", Unit: "nanoseconds", Slots: []uint64{2}, Count: 2, Sum: 2})
	b.Meta.Collectors = map[string]string{"gopsutil": "v4"}
	m, err := Merge([]*Observation{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Profiles) != 3 || m.Profiles[1].Labels["pid"] != "43" {
		t.Fatalf("profiles %+v", m.Profiles)
	}
	if got := totals(m.Profiles[1].Profile); got[0] != 20 {
		t.Errorf("pid 43's cpu total %v, want 20", got)
	}
	if h := m.Histograms[0]; !reflect.DeepEqual(h.Slots, []uint64{1, 1, 5, 4}) || h.Count != 12 || h.Sum != 100 {
		t.Errorf("runq.latency %+v", h)
	}
	if len(m.Histograms) != 2 {
		t.Errorf("%d histograms, want 2", len(m.Histograms))
	}
	if len(m.Meta.Collectors) != 2 {
		t.Errorf("collectors %v, want both windows'", m.Meta.Collectors)
	}
}

func TestMergeRefuses(t *testing.T) {
	if _, err := Merge(nil); !errors.Is(err, ErrMerge) {
		t.Errorf("Merge(nil): %v", err)
	}
	a, b := sampleObservation(), sampleObservation()
	b.Meta.Target.Kind = TargetHost
	if _, err := Merge([]*Observation{a, b}); !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), `"host"`) {
		t.Errorf("targets of two kinds: %v", err)
	}
	b = sampleObservation()
	b.Profiles[2].Profile.SampleType[0].Type = "alloc_space"
	_, err := Merge([]*Observation{a, b})
	if !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), "heap profiles from pprof") || !strings.Contains(err.Error(), "alloc_space") {
		t.Errorf("heap profiles of two sample types: %v", err)
	}
	b = sampleObservation()
	b.Histograms[0].Unit = "bytes"
	if _, err := Merge([]*Observation{a, b}); !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), "runq.latency") {
		t.Errorf("a histogram in two units: %v", err)
	}
	b = sampleObservation()
	b.Profiles[0].Profile = nil
	if _, err := Merge([]*Observation{a, b}); !errors.Is(err, ErrMerge) {
		t.Errorf("a nil profile: %v", err)
	}
}

// TestMergeMissing: a signal once, its distinct reasons joined up to a
// bound, and lost events kept apart from the signal's absence, so that
// LostEvents still tells them.
func TestMergeMissing(t *testing.T) {
	var obs []*Observation
	for i, r := range []string{"no BTF", "no BTF", "not root", "locked down", "map full", "other"} {
		o := shifted(sampleObservation(), time.Duration(i)*10*time.Second)
		o.Missing = []Missing{{Signal: SignalEBPF, Reason: r}, EventsLost([]string{"offcpu_full " + r})}
		obs = append(obs, o)
	}
	m, err := Merge(obs)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Missing) != 2 {
		t.Fatalf("missing %v, want two entries", m.Missing)
	}
	if got := m.Missing[0].Reason; got != "no BTF; not root; locked down; and other reasons" {
		t.Errorf("reasons %q", got)
	}
	if m.Missing[0].LostEvents() || !m.Missing[1].LostEvents() {
		t.Errorf("lost events not kept apart: %v", m.Missing)
	}
}

package api

import (
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestMerge checks merge against observation.Merge's contract on three
// windows of a recorded observation: profiles, series points, histogram
// counts and durations add up three times, Missing and the profiles'
// identities once, and the merged window starts at the earliest.
func TestMerge(t *testing.T) {
	const n = 3
	one, err := observation.Load(fixtureDir("mixed-cpu-io"))
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Histograms) == 0 || len(one.Missing) == 0 {
		t.Fatal("the fixture has no histograms or no missing signals: pick another")
	}
	var obs []*observation.Observation
	for i := range n {
		o, err := observation.Load(fixtureDir("mixed-cpu-io"))
		if err != nil {
			t.Fatal(err)
		}
		// Newest first: merge must still order points and find the start.
		shift(o, testNow.Add(-time.Duration(i)*time.Minute))
		obs = append(obs, o)
	}
	m, err := merge(obs)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Meta.Start.Equal(testNow.Add(-(n - 1) * time.Minute)) {
		t.Errorf("starts %v, want the earliest window's", m.Meta.Start)
	}
	if m.Meta.Duration != n*one.Meta.Duration {
		t.Errorf("duration %v, want %d windows' %v", m.Meta.Duration, n, n*one.Meta.Duration)
	}
	if len(m.Profiles) != len(one.Profiles) || len(m.Series) != len(one.Series) || len(m.Histograms) != len(one.Histograms) || len(m.Missing) != len(one.Missing) {
		t.Fatalf("%d profiles, %d series, %d histograms, %d missing; want one window's %d, %d, %d, %d",
			len(m.Profiles), len(m.Series), len(m.Histograms), len(m.Missing), len(one.Profiles), len(one.Series), len(one.Histograms), len(one.Missing))
	}
	for i, p := range m.Profiles {
		if p.Kind != one.Profiles[i].Kind || profileTotal(p.Profile) != n*profileTotal(one.Profiles[i].Profile) {
			t.Errorf("profile %d (%s): total %d, want %d × %d", i, p.Kind, profileTotal(p.Profile), n, profileTotal(one.Profiles[i].Profile))
		}
	}
	for i, s := range m.Series {
		if len(s.Points) != n*len(one.Series[i].Points) {
			t.Errorf("series %s: %d points, want %d", s.Name, len(s.Points), n*len(one.Series[i].Points))
		}
		for j := 1; j < len(s.Points); j++ {
			if s.Points[j].Time.Before(s.Points[j-1].Time) {
				t.Fatalf("series %s: points out of order at %d", s.Name, j)
			}
		}
	}
	for i, h := range m.Histograms {
		w := one.Histograms[i]
		if h.Count != n*w.Count || h.Sum != n*w.Sum || len(h.Slots) != len(w.Slots) {
			t.Errorf("histogram %s: count %d sum %d, want %d × (%d, %d)", h.Name, h.Count, h.Sum, n, w.Count, w.Sum)
		}
		for j := range h.Slots {
			if h.Slots[j] != n*w.Slots[j] {
				t.Errorf("histogram %s slot %d: %d, want %d × %d", h.Name, j, h.Slots[j], n, w.Slots[j])
			}
		}
	}
}

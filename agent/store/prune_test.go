package store

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
)

// prune keeps of a service's split what its samples use: the profile it
// writes reads back with the same samples as profile.Compact's, and none
// of the host's other symbols.
func TestPruneSplit(t *testing.T) {
	host, err := observation.Load("testdata/host-window")
	if err != nil {
		t.Fatal(err)
	}
	h := procrank.NewHost(host)
	checked, pb, cb := 0, 0, 0
	for _, pid := range h.PIDs() {
		for _, p := range h.Split(pid).Profiles {
			pruned := observation.Prune(p.Profile, p.Profile.Sample)
			if err := pruned.CheckValid(); err != nil {
				t.Fatalf("pid %d %s: %v", pid, p.Kind, err)
			}
			if len(pruned.Location) > len(p.Profile.Location) || len(pruned.Function) > len(p.Profile.Function) {
				t.Fatalf("pid %d %s: pruning grew the profile", pid, p.Kind)
			}
			var a, b bytes.Buffer
			if err := pruned.Write(&a); err != nil {
				t.Fatal(err)
			}
			if err := p.Profile.Compact().Write(&b); err != nil {
				t.Fatal(err)
			}
			pb, cb = pb+a.Len(), cb+b.Len()
			got, want := total(t, a.Bytes()), total(t, b.Bytes())
			if got != want {
				t.Errorf("pid %d %s: %d samples' worth after pruning, %d after compacting", pid, p.Kind, got, want)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d profiles", checked)
	}
	// Compact also folds symbols that are equal but distinct objects:
	// pruning keeps a little more, before compression.
	t.Logf("%d profiles: pruned %d B, compacted %d B", checked, pb, cb)
	if pb > cb*13/10 {
		t.Errorf("pruned profiles take %d B, compacted %d B", pb, cb)
	}
	// A busy process's split holds a small part of the host's symbols.
	big := h.Split(h.Rank()[0].PID).Profiles[0]
	if n, all := len(observation.Prune(big.Profile, big.Profile.Sample).Location), len(big.Profile.Location); n*2 > all {
		t.Errorf("the busiest process keeps %d of the host's %d locations", n, all)
	}
}

func total(t *testing.T, b []byte) (n int64) {
	t.Helper()
	p, err := profileParse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	return n
}

var profileParse = profile.ParseData

// BenchmarkPrune against BenchmarkCompact: what each costs for every
// process's profiles of a recorded host window.
func BenchmarkPrune(b *testing.B) {
	benchSplits(b, func(p *profile.Profile) *profile.Profile { return observation.Prune(p, p.Sample) })
}
func BenchmarkCompact(b *testing.B) { benchSplits(b, (*profile.Profile).Compact) }

func benchSplits(b *testing.B, shrink func(*profile.Profile) *profile.Profile) {
	host, err := observation.Load("testdata/host-window")
	if err != nil {
		b.Fatal(err)
	}
	h := procrank.NewHost(host)
	var profs []*profile.Profile
	for _, pid := range h.PIDs() {
		for _, p := range h.Split(pid).Profiles {
			profs = append(profs, p.Profile)
		}
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range profs {
			shrink(p)
		}
	}
}

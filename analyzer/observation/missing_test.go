package observation

import "testing"

// TestEventsLost: the entry of an eBPF window that lost events is told by
// LostEvents, both as EventsLost makes it now and as observations saved
// before it existed hold it; other eBPF entries are not.
func TestEventsLost(t *testing.T) {
	if m := EventsLost([]string{"offcpu_full 3"}); !m.LostEvents() || m.Signal != "ebpf" {
		t.Errorf("EventsLost made %+v, which LostEvents does not tell", m)
	}
	o, err := Load("../../fixtures/observations/io-fsync")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, m := range o.Missing {
		if m.LostEvents() {
			lost++
		}
	}
	if lost != 1 {
		t.Errorf("%d entries of lost events in the saved io-fsync, want 1: %+v", lost, o.Missing)
	}
	for _, m := range []Missing{{Signal: "ebpf", Reason: "not requested"}, {Signal: "ebpf.offcpu", Reason: "events lost"}} {
		if m.LostEvents() {
			t.Errorf("%+v taken for lost events", m)
		}
	}
}

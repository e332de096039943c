package verdict

import (
	"reflect"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestPollPeersDecidedOnData: the peers of an event loop whose network
// load came from its waits in epoll or poll are its priorities because
// goroutineLoad said so (inference.pollPeers), not because of how an
// evidence sentence is worded: rewording every sentence changes no
// priority. The recorded poll client's connections are left without
// lifetimes (all still open at the window's end), so that the peers come
// from pollPeerItems.
func TestPollPeersDecidedOnData(t *testing.T) {
	o := recorded(t)["network-c-pollclient"]
	var hs []observation.Histogram
	for _, h := range o.Histograms {
		if h.Name != observation.HistTCPLifetime {
			hs = append(hs, h)
		}
	}
	o.Histograms = hs
	th := DefaultThresholds()
	v := Judge(o, th)
	if v.Class != ClassNetwork {
		t.Fatalf("class %s, want network; load %v", v.Class, v.Load)
	}
	var peers int
	for _, p := range v.Priorities {
		if p.Kind == PriorityPeer && strings.HasPrefix(p.Why, "waited on in epoll or poll") {
			peers++
		}
	}
	if peers == 0 {
		t.Fatalf("no peer waited on in epoll or poll among the priorities %+v", v.Priorities)
	}

	for i := range v.Evidence {
		v.Evidence[i].Text = "reworded"
	}
	again := priorities(o, v, parkingOf(o), callSitesOf(o, newClassifier(parkingOf(o))), newClassifier(parkingOf(o)), true, o.WindowSeconds(), th)
	if !reflect.DeepEqual(again, v.Priorities) {
		t.Errorf("reworded evidence changed the priorities:\n got %+v\nwant %+v", again, v.Priorities)
	}
	without := priorities(o, v, parkingOf(o), callSitesOf(o, newClassifier(parkingOf(o))), newClassifier(parkingOf(o)), false, o.WindowSeconds(), th)
	for _, p := range without {
		if p.Kind == PriorityPeer {
			t.Errorf("a peer without the poll inference: %+v", p)
		}
	}
}

// TestFoldRuntimeDecidedOnData: what is folded into the Go runtime's own
// work is what was charged to it, whatever the items are called.
func TestFoldRuntimeDecidedOnData(t *testing.T) {
	items := []Priority{
		{Class: ClassCPU, Kind: PrioritySyscall, Name: "futex from the Go runtime", Saving: 0.1, runtimeWork: true},
		{Class: ClassCPU, Kind: PriorityFunction, Name: "runtime.findRunnable", Saving: 0.2, runtimeWork: true},
		{Class: ClassNetwork, Kind: PriorityPeer, Name: "a peer called the Go runtime", Saving: 0.3},
		{Class: ClassMemory, Kind: PriorityAllocation, Name: "the Go runtime", Saving: 0.4, runtimeWork: true},
	}
	got := foldRuntime(items)
	var names []string
	var rt float64
	for _, p := range got {
		names = append(names, p.Name)
		if p.Kind == PriorityRuntime {
			rt = p.Saving
		}
	}
	want := []string{"a peer called the Go runtime", "the Go runtime", "the Go runtime's own work"}
	if !reflect.DeepEqual(names, want) || rt < 0.3-1e-9 || rt > 0.3+1e-9 {
		t.Errorf("folded into %v with %.2f s/s of runtime work, want %v with 0.30", names, rt, want)
	}
}

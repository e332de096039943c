package observe

import (
	"bytes"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
)

func TestFromBPF(t *testing.T) {
	var lat bpf.Histogram
	lat.Slots[10], lat.Count, lat.Sum = 3, 3, 3000
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	w := &bpf.Window{
		Start:    start,
		End:      start.Add(10 * time.Second),
		RunQueue: []bpf.RunQueueLatency{{PID: 7, Comm: "x", Latency: lat}, {PID: 8, Comm: "idle"}},
		BlockIO:  []bpf.BlockIOLatency{{Device: "254:0", Name: "vda", PID: 7, Comm: "x", Op: "write", Latency: lat, Bytes: lat, Errors: 1}},
		TCP:      []bpf.TCPConnections{{PID: 7, Comm: "x", Peer: netip.MustParseAddrPort("127.0.0.1:80"), Connect: lat, Retransmits: 2}},
		Counters: map[string]uint64{"oncpu.samples": 100, "oncpu.map_full": 3, "stacks.missing": 0},
	}
	var o observation.Observation
	FromBPF(&o, w)
	if o.Meta.Start != start || o.Meta.Duration != 10*time.Second {
		t.Errorf("window bounds %v %v", o.Meta.Start, o.Meta.Duration)
	}
	names := map[observation.HistogramName]int{}
	for _, h := range o.Histograms {
		names[h.Name]++
		if len(h.Slots) != 11 {
			t.Errorf("%s: %d slots, want the empty top trimmed to 11", h.Name, len(h.Slots))
		}
	}
	// The idle process has no latencies, and no histogram.
	want := map[observation.HistogramName]int{"runq.latency": 1, "block.latency": 1, "block.size": 1, "tcp.connect": 1}
	for k, v := range want {
		if names[k] != v {
			t.Errorf("%d %s histograms, want %d (all: %v)", names[k], k, v, names)
		}
	}
	for _, h := range o.Histograms {
		if h.Name == "block.latency" && (h.Labels["device"] != "254:0" || h.Labels["op"] != "write" || h.Labels["errors"] != "1" || h.Labels["pid"] != "7") {
			t.Errorf("block labels %v", h.Labels)
		}
		if h.Name == "tcp.connect" && (h.Labels["peer"] != "127.0.0.1:80" || h.Labels["retransmits"] != "2") {
			t.Errorf("tcp labels %v", h.Labels)
		}
	}
	if len(o.Missing) != 1 || !strings.Contains(o.Missing[0].Reason, "oncpu.map_full 3") {
		t.Errorf("lost events not reported: %+v", o.Missing)
	}
}

func TestFromSupport(t *testing.T) {
	var o observation.Observation
	FromSupport(&o, bpf.Support{Collectors: map[bpf.Collector]error{bpf.OnCPU: nil, bpf.TCP: bpf.ErrPrivileges}})
	if len(o.Missing) != 1 {
		t.Fatalf("missing %+v", o.Missing)
	}
	for _, m := range o.Missing {
		if m.Signal == observation.SignalEBPFTCP && m.Reason != bpf.ErrPrivileges.Error() {
			t.Errorf("tcp: %q", m.Reason)
		}
	}
}

// TestCollectorSignals: every eBPF collector is missing under a catalogued
// signal, and every catalogued eBPF signal but the symbolization's is a
// collector.
func TestCollectorSignals(t *testing.T) {
	collectors := map[observation.Signal]bool{}
	for _, c := range bpf.AllCollectors {
		collectors[collectorSignal(c)] = true
	}
	catalogued := map[observation.Signal]bool{}
	for _, s := range observation.Signals() {
		if strings.HasPrefix(string(s), string(observation.SignalEBPF)+".") && s != observation.SignalEBPFSymbols && s != observation.SignalEBPFUnwind {
			catalogued[s] = true
		}
	}
	for s := range collectors {
		if !catalogued[s] {
			t.Errorf("collector %s is not a catalogued signal", s)
		}
	}
	for s := range catalogued {
		if !collectors[s] {
			t.Errorf("catalogued signal %s is no eBPF collector", s)
		}
	}
}

// TestLiveWindowRoundTrip collects a real eBPF window of a busy process,
// assembles it, saves and loads it, and gets the same observation.
func TestLiveWindowRoundTrip(t *testing.T) {
	support := bpf.Probe()
	if support.Collectors[bpf.OnCPU] != nil || support.Collectors[bpf.RunQueue] != nil {
		t.Skipf("eBPF unavailable: %s", strings.Join(support.Missing(), "; "))
	}
	cmd := exec.Command("/bin/sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done")
	s, err := bpf.Start(bpf.Options{Collectors: []bpf.Collector{bpf.OnCPU, bpf.OffCPU, bpf.RunQueue}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	w, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	var o observation.Observation
	o.Meta.Target = observation.Target{Kind: observation.TargetHost}
	Host(&o.Meta, collect.Env{})
	Collector(&o.Meta, "ebpf", "github.com/cilium/ebpf")
	FromSupport(&o, support)
	FromBPF(&o, w)
	if o.Meta.CPUs == 0 || o.Meta.Memory == 0 || o.Meta.Kernel == "" {
		t.Errorf("host identity incomplete: %+v", o.Meta)
	}
	dir := filepath.Join(t.TempDir(), "obs")
	if err := observation.Save(&o, dir); err != nil {
		t.Fatal(err)
	}
	back, err := observation.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Profiles) != len(o.Profiles) || len(back.Histograms) != len(o.Histograms) || len(back.Missing) != len(o.Missing) {
		t.Fatalf("round trip: %d/%d profiles, %d/%d histograms, %d/%d missing",
			len(back.Profiles), len(o.Profiles), len(back.Histograms), len(o.Histograms), len(back.Missing), len(o.Missing))
	}
	for i := range o.Profiles {
		var a, b bytes.Buffer
		o.Profiles[i].Profile.WriteUncompressed(&a)
		back.Profiles[i].Profile.WriteUncompressed(&b)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("profile %s differs after the round trip", o.Profiles[i].Kind)
		}
	}
	var shSamples int64
	for _, smp := range o.ProfilesOf(observation.KindCPU)[0].Profile.Sample {
		if smp.Label["comm"][0] == "sh" {
			shSamples += smp.Value[0]
		}
	}
	if shSamples == 0 {
		t.Error("the busy shell left no on-CPU samples")
	}
}

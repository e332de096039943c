package observation

import (
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/internal/doccheck"
)

func TestHasTargetData(t *testing.T) {
	point := []Point{{Time: time.Unix(1, 0), Value: 1}}
	hostCPU := Series{Name: "host.cpu", Unit: "ratio", Points: point}
	for _, c := range []struct {
		name string
		o    Observation
		want bool
	}{
		{"nothing", Observation{Meta: Meta{Target: Target{Kind: TargetURL}}}, false},
		{"a URL's target with host series only", Observation{Meta: Meta{Target: Target{Kind: TargetURL, URL: "http://x"}}, Series: []Series{hostCPU}}, false},
		{"a process with host series only", Observation{Meta: Meta{Target: Target{Kind: TargetProcess, PID: 4}}, Series: []Series{hostCPU}}, false},
		{"a series without points", Observation{Meta: Meta{Target: Target{Kind: TargetURL}}, Series: []Series{{Name: "go.heap.alloc"}}}, false},
		{"a profile entry without its profile", Observation{Meta: Meta{Target: Target{Kind: TargetURL}}, Profiles: []Profile{{Kind: KindCPU}}}, false},
		{"an empty histogram", Observation{Meta: Meta{Target: Target{Kind: TargetProcess, PID: 4}}, Histograms: []Histogram{{Name: "runq.latency"}}}, false},
		{"the host's host series", Observation{Meta: Meta{Target: Target{Kind: TargetHost}}, Series: []Series{hostCPU}}, true},
		{"an unnamed target without a PID: a host", Observation{Series: []Series{hostCPU}}, true},
		{"a Go service's series", Observation{Meta: Meta{Target: Target{Kind: TargetURL}}, Series: []Series{hostCPU, {Name: "go.heap.alloc", Points: point}}}, true},
		{"a process's series", Observation{Meta: Meta{Target: Target{Kind: TargetCommand, PID: 4}}, Series: []Series{{Name: "process.cpu", Points: point}}}, true},
		{"a profile", Observation{Meta: Meta{Target: Target{Kind: TargetURL}}, Profiles: []Profile{{Kind: KindHeap, Profile: &profile.Profile{}}}}, true},
		{"a histogram", Observation{Meta: Meta{Target: Target{Kind: TargetProcess, PID: 4}}, Histograms: []Histogram{{Name: "runq.latency", Count: 3}}}, true},
		{"a service with host series only", Observation{Meta: Meta{Target: Target{Kind: TargetService, Service: "shop"}}, Series: []Series{hostCPU}}, false},
		{"a service's summed process series", Observation{Meta: Meta{Target: Target{Kind: TargetService, Service: "shop"}}, Series: []Series{hostCPU, {Name: "process.cpu", Points: point}}}, true},
	} {
		if got := c.o.HasTargetData(); got != c.want {
			t.Errorf("%s: HasTargetData %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDescribeSpan(t *testing.T) {
	for _, c := range []struct {
		name string
		got  string
		want string
	}{
		{"process with command and labels", Target{Kind: "process", PID: 42, Command: []string{"./server", "-p", "80"}, Labels: map[string]string{"z": "1", "a": "2"}}.
			DescribeSpan(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 10*time.Second+400*time.Microsecond),
			"process 42 (./server -p 80) {a=2, z=1}, 10s from 2025-01-02 03:04:05 UTC"},
		{"unknown", Target{}.DescribeSpan(time.Time{}, time.Second), "target unknown, 1s"},
		{"nothing", Target{}.DescribeSpan(time.Time{}, 0), ""},
		{"host", Target{Kind: TargetHost}.DescribeSpan(time.Time{}, 0), "the host"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestTargetDescribe(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Kind: TargetHost}, "the host"},
		{Target{Kind: TargetProcess, PID: 42}, "process 42"},
		{Target{Kind: TargetCommand, PID: 42, Command: []string{"./server", "-p", "80"}}, "command 42 (./server -p 80)"},
		{Target{Kind: TargetCommand, Command: []string{"./server"}}, "command ./server"},
		{Target{Kind: TargetURL, URL: "http://127.0.0.1:6060"}, "http://127.0.0.1:6060"},
		{Target{Kind: TargetApp, App: "shop", Labels: map[string]string{"env": "prod"}}, "app shop"},
		{Target{Kind: TargetService, Service: "shop", Labels: map[string]string{"version": "abc"}}, "service shop"},
		{Target{Kind: TargetService}, "service"},
		{Target{Kind: "other"}, "other"},
		{Target{}, ""},
	} {
		if got := c.t.Describe(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}

func TestMetaTitle(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Kind: TargetHost}, "host web1"},
		{Target{Kind: TargetProcess, PID: 42}, "process 42 on web1"},
		{Target{Kind: TargetCommand, PID: 42, Command: []string{"./server", "-p", "80"}}, "./server -p 80"},
		{Target{Kind: TargetCommand}, "command on web1"},
		{Target{Kind: TargetURL, URL: "http://127.0.0.1:6060"}, "http://127.0.0.1:6060"},
		{Target{Kind: TargetApp, App: "shop"}, "app shop"},
		{Target{Kind: TargetService, Service: "shop"}, "service shop on web1"},
		{Target{Kind: TargetService}, "service on web1"},
	} {
		if got := (Meta{Target: c.t, Host: "web1"}).Title(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}

// TestTargetKindsDocumented: docs/observation.md's table of target kinds
// and TargetKinds name the same kinds.
func TestTargetKindsDocumented(t *testing.T) {
	const doc = "../../docs/observation.md"
	kinds := map[string]string{}
	for _, k := range TargetKinds() {
		kinds[k] = ""
	}
	doccheck.Agree(t, "target kind", doc, doccheck.Documented(t, doccheck.Tables(t, doc, "The target"), "target kind"), kinds)
}

func TestIsHost(t *testing.T) {
	for _, c := range []struct {
		t    Target
		want bool
	}{
		{Target{Kind: TargetHost}, true},
		{Target{}, true},
		{Target{PID: 4}, false},
		{Target{Kind: TargetProcess, PID: 4}, false},
		{Target{Kind: TargetURL, URL: "http://x"}, false},
		{Target{Kind: TargetApp, App: "shop"}, false},
		{Target{Kind: TargetService, Service: "shop"}, false},
	} {
		if got := c.t.IsHost(); got != c.want {
			t.Errorf("%+v: IsHost %v, want %v", c.t, got, c.want)
		}
	}
}

package verdict

import (
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// withoutTarget is a recorded observation of a busy host turned into what
// watching a Go service's endpoint gives when every fetch fails: the
// host's series, none of the target's, and the failures in Missing.
func withoutTarget(t *testing.T, name string) *observation.Observation {
	t.Helper()
	o := recorded(t)[name]
	o.Meta.Target = observation.Target{Kind: observation.TargetURL, URL: "http://127.0.0.1:6060"}
	o.Profiles, o.Histograms = nil, nil
	var host []observation.Series
	for _, s := range o.Series {
		if s.Name.In(observation.FamilyHost) {
			host = append(host, s)
		}
	}
	o.Series = host
	o.Missing = []observation.Missing{
		{Signal: "pprof.cpu", Reason: "500 Internal Server Error at http://127.0.0.1:6060/debug/pprof/profile?seconds=10"},
		{Signal: "go.expvar", Reason: "500 Internal Server Error at http://127.0.0.1:6060/debug/vars"},
	}
	return o
}

// TestJudgeWithoutTargetData: a verdict on an observation with nothing of
// its target claims no class, however busy the host around it was, and
// says why.
func TestJudgeWithoutTargetData(t *testing.T) {
	for _, name := range []string{"cpu-hash", "io-fsync", "none-sleep"} {
		v := Judge(withoutTarget(t, name), DefaultThresholds())
		t.Logf("%s: %s %.2f %s", name, v.Class, v.Confidence, v.Summary)
		if v.Class != ClassNone || v.Confidence != 0 || len(v.Load) != 0 || len(v.Priorities) != 0 {
			t.Errorf("%s: class %q confidence %.2f load %v, %d priorities: want none, 0, no load, no priorities",
				name, v.Class, v.Confidence, v.Load, len(v.Priorities))
		}
		if !strings.Contains(v.Summary, "Nothing of the target was collected") {
			t.Errorf("%s: summary %q does not say that nothing of the target was collected", name, v.Summary)
		}
		signals := map[string]bool{}
		for _, g := range v.Missing {
			signals[g.Signal] = true
		}
		if !signals["pprof.cpu"] || !signals["go.expvar"] {
			t.Errorf("%s: missing %v lacks the failed fetches", name, v.Missing)
		}
	}
}

package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// slowed is o with its cpu profiles' samples whose leaf is fn k times
// heavier: fn's own code k times slower.
func slowed(o *observation.Observation, fn string, k int64) *observation.Observation {
	c := *o
	c.Profiles = append([]observation.Profile(nil), o.Profiles...)
	for i, p := range c.Profiles {
		if p.Kind != observation.KindCPU || p.Profile == nil {
			continue
		}
		pp := p.Profile.Copy()
		for _, s := range pp.Sample {
			if len(s.Location) > 0 && len(s.Location[0].Line) > 0 && s.Location[0].Line[0].Function.Name == fn {
				for j := range s.Value {
					s.Value[j] *= k
				}
			}
		}
		c.Profiles[i].Profile = pp
	}
	return &c
}

// TestDiffGivesTheFinding: the real detector fed the recorded goservice
// windows (v1 for 40 minutes, then v2 whose heaviest leaf function is
// twice as slow: it, or the nearest caller tested, is found), stored in
// the real store with its findings: the
// finding's diff link answers, in its "functions" section, the finding's
// function, change and p-value.
func TestDiffGivesTheFinding(t *testing.T) {
	windows := goserviceWindows(t)
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := start.Add(2 * time.Hour)
	st, err := store.Open(t.TempDir(), store.Options{Now: func() time.Time { return now }, Rollups: []store.Rollup{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// The heaviest function that is only ever a leaf.
	self := map[string]float64{}
	for _, o := range windows {
		for name, c := range regress.WindowOf(o, "goservice", "v1", verdict.Summary{}).CPU.Funcs {
			if c.Self == c.Incl {
				self[name] += c.Self
			} else {
				self[name] = -1e18
			}
		}
	}
	var fn string
	for name, s := range self {
		if fn == "" || s > self[fn] || s == self[fn] && name < fn {
			fn = name
		}
	}

	det := regress.New(regress.DefaultOptions())
	var found []regress.Finding
	for i := range 420 { // 40 minutes of v1, 30 of v2
		o, version := *windows[i%len(windows)], "v1"
		if i >= 240 {
			o, version = *slowed(windows[i%len(windows)], fn, 2), "v2"
		}
		o.Meta.Start, o.Meta.Duration = start.Add(time.Duration(i)*10*time.Second), 10*time.Second
		if err := st.Put(store.Batch{Records: []store.Record{{Service: "goservice", Version: version, Obs: &o}}}); err != nil {
			t.Fatal(err)
		}
		for _, ev := range det.Observe(regress.WindowOf(&o, "goservice", version, verdict.Summary{})) {
			if ev.Finding.Kind == regress.KindVersion && !ev.Resolved {
				found = append(found, ev.Finding)
			}
		}
	}
	if len(found) == 0 {
		t.Fatalf("%s twice as slow: found nothing", fn)
	}
	if _, err := st.PutFindings(found); err != nil {
		t.Fatal(err)
	}
	_, ts := newTestServer(t, StoreSource(st, func() bool { return true }), Options{Now: func() time.Time { return now }})

	var list struct {
		Regressions []struct {
			regress.Finding
			Links regressionLinks
		}
	}
	get(t, ts, "/api/v1/regressions"+q("service", "goservice")).json(t, &list)
	if len(list.Regressions) != len(found) {
		t.Fatalf("listed %d regressions, want %d", len(list.Regressions), len(found))
	}
	for _, r := range list.Regressions {
		a := get(t, ts, r.Links.Diff)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", r.Links.Diff, a.status, a.body)
		}
		var d struct {
			Functions struct {
				Findings []regress.Finding `json:"findings"`
				Error    string            `json:"error"`
			} `json:"functions"`
		}
		a.json(t, &d)
		u, _ := url.QueryUnescape(r.Links.Diff)
		var same *regress.Finding
		for i, f := range d.Functions.Findings {
			if f.Function == r.Function {
				same = &d.Functions.Findings[i]
			}
		}
		if same == nil || same.ChangePct != r.ChangePct || same.PValue != r.PValue || same.ID != r.ID {
			t.Errorf("%s: the diff's functions %+v (%s)\nwant %s %+.2f%% p = %.3g (%s)", u, d.Functions.Findings, d.Functions.Error, r.Function, r.ChangePct, r.PValue, r.ID)
		}
	}
}

package regress

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// regressedDeploy is the replay tests' stream: v1 for two and a half
// hours (longer than a replay reaches), then v2 with main.parse and
// fmt.Fprintf 30% slower, at 4 cores.
func regressedDeploy() ([]Window, time.Time) {
	base := newSim(21, 4, 19, webService(30))
	head := base.clone(21).slow("main.parse", 0.3).slow("fmt.Fprintf", 0.3)
	return stream{service: "web", start: t0, base: base.clone(21), head: head.clone(1021),
		baseV: "v1", headV: "v2", baseFor: 150 * time.Minute, headFor: 31 * time.Minute}.windows(), t0.Add(150 * time.Minute)
}

// A restarted agent replays the store's last Lookback of windows into a
// new detector, then goes on: whenever it restarts, it raises the same
// findings, with the same IDs and numbers, as the detector that never
// stopped; with the findings it had raised restored, it raises none of
// them twice.
func TestReplay(t *testing.T) {
	ws, deployAt := regressedDeploy()
	all, _ := run(DefaultOptions(), ws)
	if len(all) != 2 {
		t.Fatalf("the detector that never stopped: %d findings, want 2", len(all))
	}
	lookback := New(DefaultOptions()).Lookback()
	for _, restart := range []time.Duration{-5 * time.Minute, 2 * time.Minute, 4 * time.Minute, 12 * time.Minute, 31 * time.Minute} {
		at := deployAt.Add(restart)
		k := slices.IndexFunc(ws, func(w Window) bool { return !w.Start.Before(at) })
		if k < 0 {
			k = len(ws)
		}
		from := slices.IndexFunc(ws, func(w Window) bool { return !w.Start.Before(at.Add(-lookback)) })
		if from == 0 {
			t.Fatalf("a lookback of %v replays every window", lookback)
		}
		// Without the findings restored: the replay raises them again,
		// identical.
		got, _ := run(DefaultOptions(), ws[from:])
		if !reflect.DeepEqual(got, all) {
			t.Errorf("restart at deploy%+v, replaying %d windows: %+v\nwant %+v", restart, k-from, ids(got), ids(all))
		}
		// With them restored: only what the first detector raised after
		// the restart.
		var before, after []Finding
		for _, f := range all {
			if f.DetectedAt.After(ws[k-1].Start) {
				after = append(after, f)
			} else {
				before = append(before, f)
			}
		}
		d := New(DefaultOptions())
		d.Restore(before)
		var raised []Finding
		for _, w := range ws[from:] {
			for _, ev := range d.Observe(w) {
				raised = append(raised, ev.Finding)
			}
		}
		if !reflect.DeepEqual(ids(raised), ids(after)) {
			t.Errorf("restart at deploy%+v with %d restored: raised %v, want %v", restart, len(before), ids(raised), ids(after))
		}
	}
}

func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Function+"/"+f.ID)
	}
	return out
}

// The on-demand comparison of a finding's two ranges gives the finding
// the detector gave, to the bit.
func TestCompareMatchesDetector(t *testing.T) {
	ws, _ := regressedDeploy()
	raised, _ := run(DefaultOptions(), ws)
	if len(raised) == 0 {
		t.Fatal("no finding")
	}
	for _, f := range raised {
		var base, head []Window
		for _, w := range ws {
			switch {
			case w.Version == f.BaseVersion && !w.Start.Before(f.Base.From) && w.Start.Before(f.Base.To):
				base = append(base, w)
			case w.Version == f.HeadVersion && !w.Start.Before(f.Head.From) && w.Start.Before(f.Head.To):
				head = append(head, w)
			}
		}
		c, err := Compare(base, head, VersionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(c.Findings, func(g Finding) bool { return g.ID == f.ID })
		if i < 0 {
			t.Errorf("%s: Compare found %v", f.Function, ids(c.Findings))
			continue
		}
		if !reflect.DeepEqual(c.Findings[i], f) {
			t.Errorf("%s: Compare gave\n%+v\nthe detector\n%+v", f.Function, c.Findings[i], f)
		}
	}
}

// A restored finding is resolved by a later version that fixes it.
func TestRestoreResolves(t *testing.T) {
	ws, _ := regressedDeploy()
	raised, _ := run(DefaultOptions(), ws)
	base := newSim(21, 4, 19, webService(30))
	fixed := stream{service: "web", start: ws[len(ws)-1].Start.Add(10 * time.Second), base: base.clone(5), head: base.clone(6),
		baseV: "v3", headV: "v3", baseFor: 31 * time.Minute}.windows()
	d := New(DefaultOptions())
	d.Restore(raised)
	// The replay of v2's last windows, then v3.
	var resolved []string
	for _, w := range append(slices.Clone(ws[len(ws)-200:]), fixed...) {
		for _, ev := range d.Observe(w) {
			if !ev.Resolved {
				t.Errorf("raised %s again", ev.Finding.Function)
				continue
			}
			resolved = append(resolved, ev.Finding.Function+"/"+ev.Finding.ResolvedBy)
		}
	}
	slices.Sort(resolved)
	if want := []string{"fmt.Fprintf/v3", "main.parse/v3"}; !slices.Equal(resolved, want) {
		t.Errorf("resolved %v, want %v", resolved, want)
	}
}

// MaxServices bounds the services the detector keeps: the least recently
// seen is forgotten.
func TestMaxServices(t *testing.T) {
	o := DefaultOptions()
	o.MaxServices = 3
	d := New(o)
	s := newSim(1, 0.1, 19, webService(5))
	for i := range 50 {
		d.Observe(s.window(fmt.Sprintf("svc%d", i%5), "v1", t0.Add(time.Duration(i)*10*time.Second), 1))
		if d.lru.Len() > 3 || len(d.services) > 3 {
			t.Fatalf("after %d windows: %d services kept", i+1, len(d.services))
		}
	}
	for _, name := range []string{"svc2", "svc3", "svc4"} {
		if d.services[name] == nil {
			t.Errorf("%s, among the last seen, forgotten", name)
		}
	}
}

// MaxFunctions bounds a service's table and aggregates, however many
// names its windows bring (a JIT, generated code): the heavy functions
// stay, and a regression among them is still found.
func TestMaxFunctions(t *testing.T) {
	o := DefaultOptions()
	o.Version.MaxFunctions = 500
	d := New(o)
	base := newSim(3, 4, 19, webService(30))
	ws := deploy(3, base, base.clone(3).slow("main.parse", 0.3))
	var raised []Finding
	for i, w := range ws {
		// 40 names never seen before in every window.
		for j := range 40 {
			w.CPU.Funcs[fmt.Sprintf("jit.fn%d_%d", i, j)] = FuncCount{Self: 0, Incl: 1}
		}
		for _, ev := range d.Observe(w) {
			raised = append(raised, ev.Finding)
		}
		s := d.services["web"].Value.(*service)
		if len(s.table.names) > 500 {
			t.Fatalf("window %d: %d functions in the table", i, len(s.table.names))
		}
		for _, tr := range s.tracks {
			for _, a := range tr.ring.aggs() {
				if len(a.incl) > 500 || len(a.x2n) > 500 {
					t.Fatalf("window %d: an aggregate of %d functions", i, len(a.incl))
				}
			}
		}
	}
	if len(raised) != 1 || raised[0].Function != "main.parse" {
		t.Errorf("found %v", ids(raised))
	}
}

// A version stopped longer ago than MaxBaseAge is forgotten with its
// blocks: a service deployed again and again keeps one version's.
func TestOldVersionsForgotten(t *testing.T) {
	d := New(DefaultOptions())
	s := newSim(2, 0.5, 19, webService(10))
	at := t0
	for i, v := range []string{"v1", "v2", "v3", "v4", "v5", "v6"} {
		for range 6 * 40 {
			d.Observe(s.window("web", v, at, 1))
			at = at.Add(10 * time.Second)
		}
		svc := d.services["web"].Value.(*service)
		var blocks int
		for _, tr := range svc.tracks {
			blocks += len(tr.ring.aggs())
		}
		if len(svc.tracks) != 1 || svc.tracks[0].version != v || blocks > 7 || svc.tracks[0].dep != nil {
			t.Errorf("after version %d: %d versions, %d blocks kept", i+1, len(svc.tracks), blocks)
		}
	}
}

// The replay after a restart must hold what the trends compare with as
// well as the version comparison's span: Lookback is the longer.
func TestLookbackCoversTrends(t *testing.T) {
	o := DefaultOptions()
	version := New(o).Lookback()
	vo := o.Version.withDefaults()
	if want := max(vo.lookback(), o.Trend.Lookback()); version != want {
		t.Errorf("default lookback %v: want the longer of the version comparison's %v and the trends' %v", version, vo.lookback(), o.Trend.Lookback())
	}
	o.Trend.RefBlocks = 24 // a 2-hour reference
	if got := New(o).Lookback(); got != o.Trend.Lookback() || got <= vo.lookback() {
		t.Errorf("lookback with a 2-hour trend reference: %v, want the trends' %v", got, o.Trend.Lookback())
	}
}

// TestUnversionedNoDeploy: windows whose version could not be read,
// between windows of the real version, are no deploy: no version
// comparison starts, and nothing is deploying.
func TestUnversionedNoDeploy(t *testing.T) {
	base := newSim(5, 1, 19, webService(30))
	ws := deploy(5, base, base.clone(5).slow("main.parse", 0.5))
	d := New(DefaultOptions())
	for i, w := range ws {
		if w.Version == "v2" { // the "deploy" is of windows with no version read
			w.Version, w.Unversioned = "unknown", true
		}
		for _, ev := range d.Observe(w) {
			if ev.Finding.Kind == KindVersion {
				t.Fatalf("window %d: a version finding from unversioned windows: %+v", i, ev.Finding)
			}
		}
		if got := d.Deploying(w.Start.Add(w.Duration), time.Hour); len(got) > 0 {
			t.Fatalf("window %d: deploying %v", i, got)
		}
	}
}

// TestConcurrentVersions: two versions running at once (a canary), their
// windows of one start fed in name order, the new one's name first: the
// old version's next window is not a rollback, and the deploy is the
// new version's, compared with the old.
func TestConcurrentVersions(t *testing.T) {
	base := newSim(6, 1, 19, webService(30))
	head := base.clone(6)
	d := New(DefaultOptions())
	start := t0
	for i := range 240 { // 40 minutes of "v9"
		d.Observe(base.window("web", "v9", start.Add(time.Duration(i)*10*time.Second), 1))
	}
	at := start.Add(40 * time.Minute)
	for i := range 12 { // then "v1" (sorting first) beside "v9"
		w := at.Add(time.Duration(i) * 10 * time.Second)
		d.Observe(head.window("web", "v1", w, 1))
		d.Observe(base.window("web", "v9", w, 1))
	}
	s := d.services["web"].Value.(*service)
	newest := s.tracks[len(s.tracks)-1]
	if newest.version != "v1" || newest.dep == nil || newest.dep.pred != "v9" {
		t.Fatalf("newest run %s (compared with %v), want v1 compared with v9", newest.version, newest.dep)
	}
}

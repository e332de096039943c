package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// hostWindow is a real 10 s window of this VM (perfhound diagnose
// --frequency 19 --save: eBPF at the agent's rate, ~130 processes).
var hostWindow = sync.OnceValues(func() (*observation.Observation, error) {
	return observation.Load("testdata/host-window")
})

// testBatches builds a window per start from the host window: the host's
// record and the records of its n busiest processes, each a service of
// its own (the daemon will group processes by service).
type windowMaker struct {
	host  *observation.Observation
	procs []*observation.Observation
	names []string
}

func newWindowMaker(t testing.TB, n int) *windowMaker {
	t.Helper()
	m, err := makeWindows(n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func makeWindows(n int) (*windowMaker, error) {
	host, err := hostWindow()
	if err != nil {
		return nil, err
	}
	h := procrank.NewHost(host)
	m := &windowMaker{host: host}
	for _, p := range h.Rank() {
		if len(m.procs) == n {
			break
		}
		o := h.Split(p.PID)
		for i := range o.Profiles {
			o.Profiles[i].Profile = o.Profiles[i].Profile.Compact()
		}
		m.procs = append(m.procs, o)
		m.names = append(m.names, fmt.Sprintf("svc%03d-%s", len(m.names), p.Comm))
	}
	if len(m.procs) < n {
		return nil, fmt.Errorf("the host window ranks %d processes, want %d", len(m.procs), n)
	}
	return m, nil
}

// at returns the observation o as if made at start.
func at(o *observation.Observation, start time.Time) *observation.Observation {
	c := *o
	c.Meta.Start = start
	return &c
}

func verdictJSON(class string, load float64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"class":%q,"load":{"cpu":%g}}`, class, load))
}

func (m *windowMaker) batch(start time.Time) Batch {
	b := Batch{Host: &Record{Obs: at(m.host, start), Verdict: verdictJSON("none", 0.1)}}
	for i, o := range m.procs {
		b.Records = append(b.Records, Record{Service: m.names[i], Version: "v1", Obs: at(o, start),
			Verdict: verdictJSON("cpu", float64(i)), Labels: map[string]string{"service_name": m.names[i], "version": "v1"}})
	}
	return b
}

// fakeClock is the store's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func totals(p *profile.Profile) []int64 {
	out := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		for i, v := range s.Value {
			out[i] += v
		}
	}
	return out
}

// sumOf is the total of the first sample value of every profile of kind
// in obs.
func sumOf(kind observation.ProfileKind, obs ...*observation.Observation) int64 {
	var n int64
	for _, o := range obs {
		for _, p := range o.ProfilesOf(kind) {
			n += totals(p.Profile)[0]
		}
	}
	return n
}

func TestPutRange(t *testing.T) {
	m := newWindowMaker(t, 5)
	s := open(t, t.TempDir(), Options{})
	// Three windows across an hour's end: two hour buckets.
	starts := []time.Time{t0.Add(-20 * time.Second), t0.Add(-10 * time.Second), t0}
	for _, st := range starts {
		if err := s.Put(m.batch(st)); err != nil {
			t.Fatal(err)
		}
	}
	svc := m.names[0]
	rs, err := s.Range(Query{Service: svc, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d records of %s, want 3", len(rs), svc)
	}
	want := m.procs[0]
	for i, r := range rs {
		if !r.Start.Equal(starts[i]) || r.Duration != want.Meta.Duration || r.Version != "v1" || r.Service != svc || r.Labels["service_name"] != svc {
			t.Errorf("record %d: %s %s %s/%s %v", i, r.Start, r.Duration, r.Service, r.Version, r.Labels)
		}
		if len(r.Obs.Profiles) != len(want.Profiles) || sumOf(observation.KindCPU, r.Obs) != sumOf(observation.KindCPU, want) {
			t.Errorf("record %d: %d profiles, cpu %d; want %d, %d", i, len(r.Obs.Profiles), sumOf(observation.KindCPU, r.Obs), len(want.Profiles), sumOf(observation.KindCPU, want))
		}
		// The host's series are kept once, in the host's record.
		if own := ownSeries(want, m.host); !r.HostSeries || len(r.Obs.Series) != own || own == 0 || own == len(want.Series) || len(r.Obs.Histograms) != len(want.Histograms) {
			t.Errorf("record %d: %d series (host's left out: %v) %d histograms, want %d %d", i, len(r.Obs.Series), r.HostSeries, len(r.Obs.Histograms), own, len(want.Histograms))
		}
		if string(r.Verdict) != string(verdictJSON("cpu", 0)) {
			t.Errorf("record %d: verdict %s", i, r.Verdict)
		}
	}
	// A range holds the windows that start in it: one window; none of
	// a window that only overlaps it; a version that is not stored.
	if rs, _ := s.Range(Query{Service: svc, From: t0, To: t0.Add(time.Second)}); len(rs) != 1 || !rs[0].Start.Equal(t0) {
		t.Errorf("[t0, t0+1s) gave %d records", len(rs))
	}
	if rs, _ := s.Range(Query{Service: svc, From: t0.Add(time.Second), To: t0.Add(2 * time.Second)}); len(rs) != 0 {
		t.Errorf("[t0+1s, t0+2s) gave %d records, want none (the window at t0 only overlaps it)", len(rs))
	}
	if rs, _ := s.Range(Query{Service: svc, Version: "v2", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}); len(rs) != 0 {
		t.Errorf("version v2 gave %d records", len(rs))
	}
	// A prefix of a service's name is not that service.
	if rs, _ := s.Range(Query{Service: svc[:4], From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}); len(rs) != 0 {
		t.Errorf("service %q gave %d records", svc[:4], len(rs))
	}
	// One kind: the others are not decoded.
	rs, err = s.Range(Query{Service: svc, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Kinds: []observation.ProfileKind{observation.KindOffCPU}})
	if err != nil || len(rs) != 3 {
		t.Fatalf("offcpu only: %d records, %v", len(rs), err)
	}
	for _, r := range rs {
		for _, p := range r.Obs.Profiles {
			if p.Kind != observation.KindOffCPU {
				t.Errorf("asked for offcpu, got %s", p.Kind)
			}
		}
	}
	// Merged: the windows' sample values add up.
	if m, err := s.Merged(Query{Service: svc, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}); err != nil || len(m.Series) != ownSeries(want, m0(t)) {
		t.Errorf("merged without the host: %v", err)
	}
	merged, err := s.Merged(Query{Service: svc, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), WithHost: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, w := sumOf(observation.KindCPU, merged), 3*sumOf(observation.KindCPU, want); got != w || merged.Meta.Duration != 3*want.Meta.Duration {
		t.Errorf("merged cpu %d over %s, want %d over %s", got, merged.Meta.Duration, w, 3*want.Meta.Duration)
	}
	// Merged puts the host's series back.
	if len(merged.Series) != len(want.Series) {
		t.Errorf("merged: %d series, the process's split %d", len(merged.Series), len(want.Series))
	}
	for _, sr := range want.Series {
		if got := merged.SeriesNamed(sr.Name, sr.Labels); len(got) != 1 || len(got[0].Points) != 3*len(sr.Points) {
			t.Errorf("merged: series %s %v: %d", sr.Name, sr.Labels, len(got))
		}
	}
	if _, err := s.Merged(Query{Service: svc, From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}); !errors.Is(err, ErrNoData) {
		t.Errorf("an empty range: %v, want ErrNoData", err)
	}
	// The host's records, and the verdicts without decoding.
	hs, err := s.HostRange(t0.Add(-time.Hour), t0.Add(time.Hour), observation.KindCPU)
	if err != nil || len(hs) != 3 || hs[0].Service != "" || sumOf(observation.KindCPU, hs[0].Obs) != sumOf(observation.KindCPU, m.host) {
		t.Fatalf("host range: %d records, %v", len(hs), err)
	}
	vs, err := s.Verdicts(m.names[2], t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(vs) != 3 || string(vs[2].Verdict) != string(verdictJSON("cpu", 2)) || !vs[2].Start.Equal(t0) || vs[0].Version != "v1" {
		t.Fatalf("verdicts: %+v, %v", vs, err)
	}
	svcs, err := s.Services()
	if err != nil || len(svcs) != 5 {
		t.Fatalf("services: %d, %v", len(svcs), err)
	}
	got := svcs[slices.IndexFunc(svcs, func(x Service) bool { return x.Name == svc })]
	if !got.First.Equal(starts[0]) || !got.Last.Equal(t0.Add(want.Meta.Duration)) || len(got.Versions) != 1 || got.Versions[0].Labels["version"] != "v1" {
		t.Errorf("service %+v", got)
	}
	st, err := s.Stats()
	if err != nil || st.Hours != 2 || !st.Oldest.Equal(t0.Add(-time.Hour)) || !st.Newest.Equal(t0) || st.UsedBytes <= 0 || st.UsedBytes > st.FileBytes {
		t.Errorf("stats %+v, %v", st, err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func m0(t *testing.T) *observation.Observation {
	h, err := hostWindow()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ownSeries counts the series of a split that are not the host's.
func ownSeries(split, host *observation.Observation) int {
	n := 0
	for _, s := range split.Series {
		if s.Labels["pid"] != "" || len(host.SeriesNamed(s.Name, s.Labels)) == 0 {
			n++
		}
	}
	return n
}

func TestPutRefuses(t *testing.T) {
	m := newWindowMaker(t, 1)
	s := open(t, t.TempDir(), Options{})
	for _, b := range []Batch{
		{Records: []Record{{Service: "a"}}},
		{Records: []Record{{Service: "", Obs: m.procs[0]}}},
		{Records: []Record{{Service: "a\x00b", Obs: m.procs[0]}}},
		{Records: []Record{{Service: "a", Version: "1\x00", Obs: m.procs[0]}}},
		{Host: &Record{}},
	} {
		if err := s.Put(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("Put(%+v): %v, want ErrBadRecord", b, err)
		}
	}
	// A bad record in a batch stores none of it.
	b := m.batch(t0)
	b.Records = append(b.Records, Record{Service: "x"})
	s.Put(b)
	if st, _ := s.Stats(); st.Hours != 0 {
		t.Errorf("a refused batch left %d hours", st.Hours)
	}
	if _, err := s.Range(Query{Service: ""}); !errors.Is(err, ErrBadRecord) {
		t.Errorf("Range of no service: %v", err)
	}
}

// TestSecondOpen: one directory, one store: a second Open, from this
// process or another agent, fails with ErrLocked, saying why.
func TestSecondOpen(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) || !strings.Contains(err.Error(), "another perfhound agent") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestBadRollups(t *testing.T) {
	for _, rs := range [][]Rollup{
		{{After: time.Hour, Step: 7 * time.Minute}},
		{{After: time.Hour, Step: time.Minute}, {After: time.Minute, Step: 10 * time.Minute}},
		{{After: time.Hour, Step: 0}},
	} {
		if _, err := Open(t.TempDir(), Options{Rollups: rs}); err == nil {
			t.Errorf("rollups %v accepted", rs)
		}
	}
}

// TestRangeBudget: a range is decoded within QueryMemory, counted before
// parsing; asking for one kind makes the same range fit.
func TestRangeBudget(t *testing.T) {
	m := newWindowMaker(t, 1)
	host := m.host
	s := open(t, t.TempDir(), Options{QueryMemory: 4 << 20})
	for i := range 6 {
		b := Batch{Host: &Record{Obs: at(host, t0.Add(time.Duration(i)*10*time.Second))}}
		if err := s.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.HostRange(t0, t0.Add(time.Hour)); !errors.Is(err, profdecode.ErrOverBudget) {
		t.Fatalf("six host windows in 4 MiB: %v, want ErrOverBudget", err)
	}
	rs, err := s.HostRange(t0, t0.Add(time.Hour), observation.KindPageFaults)
	if err != nil || len(rs) != 6 {
		t.Fatalf("the faults profiles alone: %d, %v", len(rs), err)
	}
}

func TestMaintainAge(t *testing.T) {
	m := newWindowMaker(t, 2)
	clock := &fakeClock{t: t0}
	s := open(t, t.TempDir(), Options{MaxAge: 90 * time.Minute, Now: clock.Now, Rollups: []Rollup{}})
	// A window every 20 minutes for three hours: hours 7, 8 and 9.
	for i := range 9 {
		if err := s.Put(m.batch(t0.Add(-3*time.Hour + time.Duration(i)*20*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Cutoff 08:30: hour 7 ends before it, hour 8 does not.
	st, _ := s.Stats()
	if st.Hours != 2 || !st.Oldest.Equal(t0.Add(-2*time.Hour)) || st.DroppedHours != 1 {
		t.Fatalf("after age retention: %+v", st)
	}
	if rs, _ := s.Range(Query{Service: m.names[0], From: t0.Add(-4 * time.Hour), To: t0}); len(rs) != 6 {
		t.Errorf("%d records left, want 6", len(rs))
	}
	// A service not seen since the cutoff is forgotten.
	clock.Set(t0.Add(3 * time.Hour))
	s.Maintain(context.Background())
	if svcs, _ := s.Services(); len(svcs) != 0 {
		t.Errorf("services kept past their data: %v", svcs)
	}
}

func TestMaintainSize(t *testing.T) {
	m := newWindowMaker(t, 8)
	clock := &fakeClock{t: t0}
	s := open(t, t.TempDir(), Options{MaxBytes: 4 << 20, Now: clock.Now, Rollups: []Rollup{}})
	// A window every 10 minutes for 10 hours.
	for i := range 60 {
		if err := s.Put(m.batch(t0.Add(-10*time.Hour + time.Duration(i)*10*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.Stats()
	if before.UsedBytes <= 4<<20 {
		t.Fatalf("60 windows use %d bytes: too few for the test", before.UsedBytes)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Stats()
	t.Logf("before %+v\nafter %+v", before, after)
	if after.UsedBytes > 4<<20 || after.Hours >= before.Hours || !after.Newest.Equal(before.Newest) || after.Oldest.Equal(before.Oldest) {
		t.Fatalf("size retention: before %+v, after %+v", before, after)
	}
	// What is left is the newest hours, whole.
	if rs, _ := s.Range(Query{Service: m.names[0], From: after.Oldest, To: t0}); len(rs) != 6*after.Hours {
		t.Errorf("%d records in the %d hours left", len(rs), after.Hours)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

// TestRollups: with rollups of 20 s after 1 min and 1 min after 3 min,
// six minutes of 10 s windows become 1-min records, then 20 s ones, then
// the windows of the last minute; every sample is still there, the time
// covered too, and each merged verdict is CombineVerdicts' of the
// windows', weighted by their seconds.
func TestRollups(t *testing.T) {
	m := newWindowMaker(t, 2)
	clock := &fakeClock{t: t0}
	var calls int
	combine := func(ss []json.RawMessage, ws []float64) json.RawMessage {
		calls++
		var secs float64
		for _, w := range ws {
			secs += w
		}
		return json.RawMessage(fmt.Sprintf(`{"windows":%d,"seconds":%g}`, len(ss), secs))
	}
	s := open(t, t.TempDir(), Options{Now: clock.Now, CombineVerdicts: combine,
		Rollups: []Rollup{{After: time.Minute, Step: 20 * time.Second}, {After: 3 * time.Minute, Step: time.Minute}}})
	start := t0.Add(-6 * time.Minute)
	for i := range 36 {
		b := m.batch(start.Add(time.Duration(i) * 10 * time.Second))
		b.Records[0].Obs.Meta.Duration = 10 * time.Second
		if err := s.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	q := Query{Service: m.names[0], From: start, To: t0, WithHost: true}
	before, err := s.Merged(q)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Range(q)
	if err != nil {
		t.Fatal(err)
	}
	// 09:54-09:57 in three 1-min records, 09:57-09:59 in six 20 s ones,
	// 09:59-10:00 in six windows.
	var durs []time.Duration
	for _, r := range rs {
		durs = append(durs, r.Duration)
	}
	want := slices.Concat(slices.Repeat([]time.Duration{time.Minute}, 3), slices.Repeat([]time.Duration{20 * time.Second}, 6), slices.Repeat([]time.Duration{10 * time.Second}, 6))
	if !slices.Equal(durs, want) {
		t.Fatalf("durations after the rollups %v, want %v", durs, want)
	}
	if !rs[0].Start.Equal(start) || !rs[3].Start.Equal(start.Add(3*time.Minute)) {
		t.Errorf("starts %s %s", rs[0].Start, rs[3].Start)
	}
	if string(rs[0].Verdict) != `{"windows":3,"seconds":60}` || string(rs[3].Verdict) != `{"windows":2,"seconds":20}` || string(rs[10].Verdict) != string(verdictJSON("cpu", 0)) {
		t.Errorf("verdicts %s, %s, %s", rs[0].Verdict, rs[3].Verdict, rs[10].Verdict)
	}
	after, err := s.Merged(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []observation.ProfileKind{observation.KindCPU, observation.KindOffCPU} {
		if sumOf(k, after) != sumOf(k, before) || sumOf(k, before) == 0 {
			t.Errorf("%s samples %d after the rollups, %d before", k, sumOf(k, after), sumOf(k, before))
		}
	}
	if after.Meta.Duration != 6*time.Minute || len(after.Series) != len(before.Series) {
		t.Errorf("after the rollups: %s, %d series; before %s, %d", after.Meta.Duration, len(after.Series), before.Meta.Duration, len(before.Series))
	}
	// A second pass finds nothing more to merge.
	n := calls
	if err := s.Maintain(context.Background()); err != nil || calls != n {
		t.Errorf("a second pass merged %d slots more: %v", calls-n, err)
	}
	// The host's record is rolled up too.
	if hs, _ := s.HostRange(start, start.Add(time.Minute), observation.KindCPU); len(hs) != 1 || hs[0].Duration != 6*m.host.Meta.Duration {
		t.Errorf("host records in the first minute: %d", len(hs))
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

// TestSetRetention: a retention set on an open store (the agent's
// reload) is the one the next Maintain applies.
func TestSetRetention(t *testing.T) {
	m := newWindowMaker(t, 2)
	clock := &fakeClock{t: t0}
	s := open(t, t.TempDir(), Options{Now: clock.Now, Rollups: []Rollup{}})
	for i := range 9 {
		if err := s.Put(m.batch(t0.Add(-3*time.Hour + time.Duration(i)*20*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Hours != 3 {
		t.Fatalf("the default 7 days dropped hours: %+v", st)
	}
	if err := s.SetRetention(Options{Rollups: []Rollup{{After: time.Hour, Step: 7 * time.Minute}}}); err == nil {
		t.Error("a rollup step that does not divide an hour was set")
	}
	if err := s.SetRetention(Options{MaxAge: 90 * time.Minute, Rollups: []Rollup{}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Hours != 2 || !st.Oldest.Equal(t0.Add(-2*time.Hour)) {
		t.Fatalf("after SetRetention(90 min): %+v", st)
	}
}

// TestMaintainIncremental: on a store of 72 hours already rolled up, a
// Maintain 10 s later visits at most the one hour each rollup's cutoff is
// in and commits nothing (it visited every hour past each cutoff and
// committed one transaction per hour, and one each for age retention
// and services, every window: ~90 commits here); work that appears
// later (hours crossing a cutoff) is still done.
func TestMaintainIncremental(t *testing.T) {
	m := newWindowMaker(t, 2)
	clock := &fakeClock{t: t0}
	s := open(t, t.TempDir(), Options{Now: clock.Now})
	for h := range 72 {
		for i := range 3 {
			if err := s.Put(m.batch(t0.Add(-time.Duration(72-h)*time.Hour + time.Duration(i)*10*time.Second))); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	first, firstHours := s.maintainCommits.Load(), s.rollupHours.Load()
	if first < 66 || firstHours < 66+24 {
		t.Fatalf("the first Maintain committed %d times over %d hours: it rolled up nothing?", first, firstHours)
	}
	svc := Query{Service: m.names[0], From: t0.Add(-72 * time.Hour), To: t0}
	rs, err := s.Range(svc)
	if err != nil || len(rs) != 66+3*6 {
		t.Fatalf("%d records after the rollups, want %d: %v", len(rs), 66+3*6, err)
	}
	// (The slot at t0-6h ends 60 s later: five windows before it.)
	for i := range 5 {
		clock.Set(t0.Add(time.Duration(i+1) * 10 * time.Second))
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commits, hours := s.maintainCommits.Load()-first, s.rollupHours.Load()-firstHours
	t.Logf("first Maintain: %d commits, %d hours visited; the next five: %d commits, %d hours", first, firstHours, commits, hours)
	if commits != 0 || hours > 5*2 {
		t.Errorf("five Maintains with nothing to do committed %d times and visited %d hours", commits, hours)
	}
	// Seven hours later the newest six hours crossed the 1-min cutoff.
	clock.Set(t0.Add(7 * time.Hour))
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Range(svc); err != nil || len(rs) != 72 {
		t.Errorf("%d records seven hours later, want 72: %v", len(rs), err)
	}
}

// BenchmarkMaintainMature is a Maintain per 10 s window on a store of 72
// hours (three windows of a host and two processes an hour) already
// rolled up: the steady state of a store days old. Run it with
// -benchtime 360x (an hour of windows): the clock moves 10 s an op.
func BenchmarkMaintainMature(b *testing.B) {
	m := newWindowMaker(b, 2)
	clock := &fakeClock{t: t0}
	s := open(b, b.TempDir(), Options{Now: clock.Now})
	for h := range 72 {
		for i := range 3 {
			if err := s.Put(m.batch(t0.Add(-time.Duration(72-h)*time.Hour + time.Duration(i)*10*time.Second))); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	if err := s.Maintain(ctx); err != nil {
		b.Fatal(err)
	}
	now := t0
	for b.Loop() {
		now = now.Add(10 * time.Second)
		clock.Set(now)
		if err := s.Maintain(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

package eval

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// Epoch is when every simulated service starts.
var Epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Versions of the simulated deploys.
const (
	BaseVersion = "1.41.0"
	HeadVersion = "1.42.0"
)

// DefaultLookback is what an agent restart replays when the detector
// does not say (Detector.Lookback).
const DefaultLookback = 90 * time.Minute

// Detector is what the harness evaluates: a *regress.Detector, or any
// other implementation of its contract (windows in time order in,
// events out). One that has a Lookback() time.Duration method says what
// an agent replays after a restart.
type Detector interface {
	Observe(regress.Window) []regress.Event
}

// NewDetector makes a run's detector.
type NewDetector func() Detector

// DefaultDetector is the agent's: regress.New(regress.DefaultOptions()).
func DefaultDetector() Detector { return regress.New(regress.DefaultOptions()) }

// Change is a code change a new version brings.
type Change struct {
	// Name says what it is ("slow encoding/json.Unmarshal +10%").
	Name  string
	Apply func(*Model) error
}

// SlowChange slows f by pct percent.
func SlowChange(f string, pct float64) Change {
	return Change{Name: fmt.Sprintf("%s +%g%%", f, pct), Apply: func(m *Model) error { return m.Slow(f, pct/100) }}
}

// The cost shifts: the same work, moved.
var (
	// RenameChange renames the request decoder (20% of the CPU).
	RenameChange = Change{Name: "rename main.(*server).decodeRequest → main.(*server).decodeBody",
		Apply: func(m *Model) error { return m.Rename("main.(*server).decodeRequest", "main.(*server).decodeBody") }}
	// ExtractChange moves three quarters of the handler's own code (3% of
	// the CPU) into a new callee.
	ExtractChange = Change{Name: "extract main.(*server).authorize from main.(*server).handle (3%)",
		Apply: func(m *Model) error { return m.Extract(Func50, "main.(*server).authorize", 0.75) }}
	// MoveChange moves 3% of the CPU from the renderer (6%) to the query
	// (10%): query +30%, render −50%.
	MoveChange = Change{Name: "move 3% from main.(*server).render to main.(*server).query",
		Apply: func(m *Model) error { return m.Move("main.(*server).render", Func10, 0.03) }}
)

// Scenario is one simulated history of one service with a known truth:
// Base of one version, then at t0 (Epoch+Base) a deploy, a load change,
// a restart, or nothing, and After more.
type Scenario struct {
	// Name identifies the scenario (and seeds its runs).
	Name string
	// Cores is the CPU the service uses at its base load.
	Cores float64
	// Hz is the sampling rate; BoostHz, when set, is the rate of a new
	// version's first BoostFor (the agent sampling a fresh deploy
	// faster).
	Hz       float64
	BoostHz  float64
	BoostFor time.Duration
	// Jitter is the per-window overdispersion (Sim.Jitter).
	Jitter float64
	// Tail is the model's long tail (ModelOptions.Tail).
	Tail int
	// Base and After are the spans before and after t0.
	Base, After time.Duration
	// Deploy: the version changes at t0.
	Deploy bool
	// Change is the new version's code change; nil for none.
	Change *Change
	// Load multiplies the request rate from t0; 0 or 1 for no change.
	Load float64
	// RequestsKnown: windows carry their request count.
	RequestsKnown bool
	// ServiceRestart: the service's process restarts at t0 (a 20-s gap
	// without windows, a heap that fills up again over 5 minutes).
	ServiceRestart bool
	// Truth is the slowed function, "" when nothing regressed: any
	// finding is then false.
	Truth string
	// AgentRestart: the agent restarts at a random window within this
	// long after t0 (at least one window after it): a new detector
	// replays the windows of its Lookback before that window and goes
	// on. 0: no restart.
	AgentRestart time.Duration
}

// Raise is a finding as the harness saw it raised: the first event
// that raised its ID.
type Raise struct {
	ID       string
	Kind     regress.Kind
	Function string
	Resource string
	At       time.Time // DetectedAt
	Window   int       // the index of the window whose Observe raised it
}

// Result is one run of a scenario.
type Result struct {
	Scenario *Scenario
	Seed     uint64
	T0       time.Time
	Windows  int
	// Raised holds every finding raised, in the order the detector
	// raised them; Resolved the IDs resolved.
	Raised   []Raise
	Resolved []string
	// NoDetectedAt counts the findings raised without a DetectedAt.
	NoDetectedAt int
	// Ancestors of Truth in the head's code (a finding on one of them
	// is a deduplication miss).
	Ancestors map[string]bool
	// With an agent restart: when, and whether the findings (IDs raised
	// and resolved) equal the uninterrupted run's; Diff says how not.
	RestartAt    time.Time
	RestartEqual bool
	RestartDiff  string
}

// Seed is the seed of a scenario's i-th run.
func Seed(name string, i int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", name, i)
	return h.Sum64()
}

// Run simulates sc with seed and feeds its windows to a new detector
// (newDet, nil for DefaultDetector), in time order. With an agent
// restart it runs the detector twice over the same windows,
// uninterrupted and restarted, and returns the uninterrupted run's
// findings with the comparison.
func Run(sc *Scenario, seed uint64, newDet NewDetector) (*Result, error) {
	if newDet == nil {
		newDet = DefaultDetector
	}
	base, err := NewModel(ModelOptions{Cores: sc.Cores, Tail: sc.Tail, CostPerRequest: DefaultModelOptions().CostPerRequest})
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	head := base
	if sc.Change != nil {
		head = base.Clone()
		if err := sc.Change.Apply(head); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
	}
	res := &Result{Scenario: sc, Seed: seed, T0: Epoch.Add(sc.Base)}
	if sc.Truth != "" {
		res.Ancestors = head.Ancestors(sc.Truth)
	}
	windows := newStream(sc, seed, base, head)
	if sc.AgentRestart <= 0 {
		d := newDet()
		for i := 0; ; i++ {
			w, ok := windows.next()
			if !ok {
				break
			}
			res.record(i, w, d.Observe(w))
			res.Windows++
		}
		return res, nil
	}
	var all []regress.Window
	for {
		w, ok := windows.next()
		if !ok {
			break
		}
		all = append(all, w)
	}
	res.Windows = len(all)
	d := newDet()
	for i, w := range all {
		res.record(i, w, d.Observe(w))
	}
	restarted, at := restartRun(sc, seed, all, res.T0, newDet)
	res.RestartAt = at
	res.RestartDiff = diffFindings(res, restarted)
	res.RestartEqual = res.RestartDiff == ""
	return res, nil
}

// restartRun feeds all to a detector until a random window after t0,
// then to a new detector: first the windows of its Lookback before that
// window (the agent's replay of its store), then the rest. The findings
// are both detectors' (the agent keeps what it stored before dying).
func restartRun(sc *Scenario, seed uint64, all []regress.Window, t0 time.Time, newDet NewDetector) (*Result, time.Time) {
	rng := rand.New(rand.NewPCG(seed, 0xa9e47))
	first := slices.IndexFunc(all, func(w regress.Window) bool { return !w.Start.Before(t0) })
	span := max(1, int(sc.AgentRestart/WindowLength))
	k := min(len(all)-1, first+1+rng.IntN(span))
	out := &Result{}
	d := newDet()
	for i := range k {
		out.record(i, all[i], d.Observe(all[i]))
	}
	d = newDet()
	for i := replayFrom(all, k, lookback(d)); i < k; i++ {
		out.record(i, all[i], d.Observe(all[i]))
	}
	for i := k; i < len(all); i++ {
		out.record(i, all[i], d.Observe(all[i]))
	}
	return out, all[k].Start
}

// replayFrom is the first window an agent restarting at window k
// replays: the first starting within lookback of window k's start.
func replayFrom(all []regress.Window, k int, lookback time.Duration) int {
	from := all[k].Start.Add(-lookback)
	i, _ := slices.BinarySearchFunc(all[:k], from, func(w regress.Window, t time.Time) int { return w.Start.Compare(t) })
	return i
}

// lookback is the detector's Lookback when it has one.
func lookback(d Detector) time.Duration {
	if l, ok := d.(interface{ Lookback() time.Duration }); ok {
		return l.Lookback()
	}
	return DefaultLookback
}

// record notes the events of window i, w: the first raise of each ID,
// each ID resolved. A finding without DetectedAt is taken as detected
// at w's end, and counted.
func (r *Result) record(i int, w regress.Window, evs []regress.Event) {
	for _, e := range evs {
		f := e.Finding
		if e.Resolved || f.Resolved {
			if !slices.Contains(r.Resolved, f.ID) {
				r.Resolved = append(r.Resolved, f.ID)
			}
			continue
		}
		if slices.ContainsFunc(r.Raised, func(x Raise) bool { return x.ID == f.ID }) {
			continue
		}
		at := f.DetectedAt
		if at.IsZero() {
			at = w.Start.Add(w.Duration)
			r.NoDetectedAt++
		}
		r.Raised = append(r.Raised, Raise{ID: f.ID, Kind: f.Kind, Function: f.Function, Resource: f.Resource, At: at, Window: i})
	}
}

// diffFindings says how b's findings differ from a's: IDs raised or
// resolved in one only, or raised at another DetectedAt; "" when equal.
func diffFindings(a, b *Result) string {
	var out []string
	at := func(r *Result) map[string]Raise {
		m := map[string]Raise{}
		for _, x := range r.Raised {
			m[x.ID] = x
		}
		return m
	}
	ra, rb := at(a), at(b)
	for _, x := range a.Raised {
		y, ok := rb[x.ID]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s %s %s raised only without the restart", x.ID, x.Kind, x.Function+x.Resource))
		case !y.At.Equal(x.At):
			out = append(out, fmt.Sprintf("%s %s %s detected at %s, after the restart at %s", x.ID, x.Kind, x.Function+x.Resource, x.At.Format(time.TimeOnly), y.At.Format(time.TimeOnly)))
		}
	}
	for _, y := range b.Raised {
		if _, ok := ra[y.ID]; !ok {
			out = append(out, fmt.Sprintf("%s %s %s raised only after the restart", y.ID, y.Kind, y.Function+y.Resource))
		}
	}
	for _, id := range a.Resolved {
		if !slices.Contains(b.Resolved, id) {
			out = append(out, fmt.Sprintf("%s resolved only without the restart", id))
		}
	}
	for _, id := range b.Resolved {
		if !slices.Contains(a.Resolved, id) {
			out = append(out, fmt.Sprintf("%s resolved only after the restart", id))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprint(out)
}

// stream yields a scenario's windows in time order.
type stream struct {
	sc         *Scenario
	sim        *Sim
	base, head *compiled
	i, n       int
	t0         int // the first window at or after t0
	gap        int // windows missing after t0 (a service restart)
}

func newStream(sc *Scenario, seed uint64, base, head *Model) *stream {
	sim := NewSim("shop", seed, sc.Jitter, (24<<20)+(48<<20)*sc.Cores)
	s := &stream{sc: sc, sim: sim, t0: int(sc.Base / WindowLength), n: int((sc.Base + sc.After) / WindowLength)}
	s.base = compile(base)
	s.head = s.base
	if head != base {
		s.head = compile(head)
	}
	if sc.ServiceRestart {
		s.gap = 2 // the process is down for 20 s
	}
	return s
}

func (s *stream) next() (regress.Window, bool) {
	if s.i == s.t0 {
		s.i += s.gap
	}
	if s.i >= s.n {
		return regress.Window{}, false
	}
	i := s.i
	s.i++
	sc := s.sc
	start := Epoch.Add(time.Duration(i) * WindowLength)
	st := Step{Version: BaseVersion, Start: start, Hz: sc.Hz, Load: 1, RequestsKnown: sc.RequestsKnown, Warm: 1}
	c := s.base
	if i >= s.t0 {
		c = s.head
		if sc.Load > 0 {
			st.Load = sc.Load
		}
		if sc.Deploy {
			st.Version = HeadVersion
			if sc.BoostHz > 0 && time.Duration(i-s.t0)*WindowLength < sc.BoostFor {
				st.Hz = sc.BoostHz
			}
		}
		if sc.ServiceRestart {
			up := time.Duration(i-s.t0-s.gap+1) * WindowLength
			st.Warm = min(1, 0.3+0.7*up.Seconds()/(5*time.Minute).Seconds())
		}
	}
	return s.sim.window(c, st), true
}

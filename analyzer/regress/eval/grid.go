package eval

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// Rate is how the agent samples: Hz, and BoostHz for a new version's
// first BoostFor when set.
type Rate struct {
	Label    string
	Hz       float64
	BoostHz  float64
	BoostFor time.Duration
}

// hz is the rate of the head at age a.
func (r Rate) hz(a time.Duration) float64 {
	if r.BoostHz > 0 && a < r.BoostFor {
		return r.BoostHz
	}
	return r.Hz
}

// The rates of the grids: the agent's 19 Hz, 99 Hz throughout, and 19 Hz
// with a fresh deploy's first 5 minutes at 99 Hz (the idea).
var (
	Rate19      = Rate{Label: "19 Hz", Hz: 19}
	Rate99      = Rate{Label: "99 Hz", Hz: 99}
	Rate19Boost = Rate{Label: "19 Hz, 99 Hz for 5 min after a deploy", Hz: 19, BoostHz: 99, BoostFor: 5 * time.Minute}
)

// GridOptions say which scenarios to run and how many times.
type GridOptions struct {
	Rates     []Rate
	Cores     []float64
	Shares    []int // percent of the service's CPU: keys of Targets
	Slowdowns []int // percent
	// Seeds is the runs of each slowdown cell.
	Seeds int
	// Nulls is the null deploys per rate, spread over Cores.
	Nulls int
	// LoadSeeds and ShiftSeeds are the runs of each load-change and
	// cost-shift scenario per rate and cores; Restarts the runs of each
	// agent-restart scenario and ServiceRestarts of the service restart
	// (the first rate only).
	LoadSeeds, ShiftSeeds, Restarts, ServiceRestarts int
	// Jitter is the per-window overdispersion (Sim.Jitter).
	Jitter float64
	// RequestsKnown: the slowdowns' and null deploys' windows carry
	// their request counts (the load changes run both ways).
	RequestsKnown bool
	// Tail is the service's long tail of functions.
	Tail int
	// Base and After are the spans before and after a deploy; SameAfter
	// after a change within a version (a load change, a restart), long
	// enough for drift to persist.
	Base, After, SameAfter time.Duration
	// Workers run scenarios in parallel; 0 is GOMAXPROCS.
	Workers int
	// Cell, when set, picks the slowdown cells to run (the quick grid).
	Cell func(r Rate, cores float64, share, slow int) bool
	// SideCores are the service sizes of the null deploys, load changes,
	// cost shifts and service restarts; nil is Cores.
	SideCores []float64
	// New makes each run's detector; nil is DefaultDetector. Detector
	// names it in the report.
	New      NewDetector
	Detector string
}

// FullGrid is the benchmark: 4 slowdowns × 5 shares × 5 service
// sizes × 3 rates × 20 seeds, 100 null deploys a rate, load changes and
// cost shifts at every size, agent and service restarts.
func FullGrid() GridOptions {
	return GridOptions{
		Rates:     []Rate{Rate19, Rate99, Rate19Boost},
		Cores:     []float64{0.1, 0.25, 0.5, 1, 2},
		Shares:    []int{2, 5, 10, 20, 50},
		Slowdowns: []int{2, 5, 10, 20},
		Seeds:     20, Nulls: 100, LoadSeeds: 4, ShiftSeeds: 4, Restarts: 10, ServiceRestarts: 4,
		Jitter: 0.15, Tail: 2000,
		Base: 45 * time.Minute, After: 35 * time.Minute, SameAfter: 60 * time.Minute,
	}
}

// QuickCell is a slowdown cell of the quick grid: found within Within
// of the deploy, the slowed function blamed first, in at least Need of
// 10 runs.
type QuickCell struct {
	Rate        Rate
	Cores       float64
	Share, Slow int
	Within      time.Duration
	Need        int
}

// QuickCells are cells that a detector as good as the binomial model
// passes with 98% probability (TestQuickGrid checks that too): 3 minutes
// for 20% slowdowns and, at 99 Hz on 2 cores, a 10% slowdown of the 50%
// function (the target; the model gives it 97%, so 8 of 10);
// 30 minutes for two 19-Hz cells.
var QuickCells = []QuickCell{
	{Rate19, 2, 50, 20, 3 * time.Minute, 9},
	{Rate99, 2, 50, 10, 3 * time.Minute, 8},
	{Rate99, 0.5, 50, 20, 3 * time.Minute, 9},
	{Rate99, 1, 20, 20, 3 * time.Minute, 9},
	{Rate99, 2, 10, 20, 3 * time.Minute, 9},
	{Rate19, 2, 20, 10, 30 * time.Minute, 9},
	{Rate19, 2, 10, 20, 30 * time.Minute, 9},
}

// QuickGrid is the grid of the package's test: QuickCells, 10 runs each;
// 10 null deploys a rate; each load change, cost shift, a service
// restart and each agent restart scenario once or twice, at 0.25 and 2
// cores; 19 and 99 Hz.
func QuickGrid() GridOptions {
	o := FullGrid()
	o.Rates = []Rate{Rate19, Rate99}
	o.Cores = []float64{0.5, 1, 2}
	o.Shares = []int{10, 20, 50}
	o.Slowdowns = []int{10, 20}
	o.Seeds, o.Nulls, o.LoadSeeds, o.ShiftSeeds, o.Restarts, o.ServiceRestarts = 10, 10, 1, 1, 2, 1
	o.SideCores = []float64{0.25, 2}
	o.Cell = func(r Rate, cores float64, share, slow int) bool {
		return slices.ContainsFunc(QuickCells, func(q QuickCell) bool {
			return q.Rate.Label == r.Label && q.Cores == cores && q.Share == share && q.Slow == slow
		})
	}
	return o
}

// Report is what a grid found.
type Report struct {
	Options GridOptions
	Power   PowerModel
	// Tested is the functions with at least Power.MinShare of the CPU.
	Tested int
	// Phi is the measured dispersion of each target's share, by rate
	// label and cores.
	Phi      map[string]map[float64]map[string]float64
	Slow     []*SlowCell
	Others   []*GroupRow
	Restarts []*RestartRow
	Runs     int
	Windows  int
	// NoDetectedAt counts findings raised without a DetectedAt (taken
	// as detected at the end of the window that raised them).
	NoDetectedAt int
	Elapsed      time.Duration
}

// SlowCell is the outcome of a slowdown cell: a function of Share% of
// the CPU slowed by Slowdown% in a service of Cores at Rate.
type SlowCell struct {
	Rate            string
	Cores           float64
	Share, Slowdown int
	Runs            int
	// Found3 and Found30: runs whose first finding after the deploy came
	// within 3 and 30 minutes of it; Right: runs whose first finding
	// blames the slowed function; Target3 and Target30: both, within 3
	// and 30 minutes.
	Found3, Found30, Right, Target3, Target30 int
	// TTD holds every run's time from the deploy to its first finding,
	// -1 for none.
	TTD []time.Duration
	// Other counts findings on any other function or resource (Ancestor
	// of them on the slowed function's callers: a deduplication miss);
	// Before the findings before the deploy.
	Other, Ancestor, Before int
	Examples                []string
	// Expect is the binomial model's expectation (with Kappa, the
	// overdispersion per sample by the delta method); Phi the dispersion
	// measured on simulated windows at the head's rate.
	Expect     Expect
	Kappa, Phi float64
}

// MedianTTD is the median time to the first finding, misses counting as
// never; ok is false when half the runs or more missed.
func (c *SlowCell) MedianTTD() (time.Duration, bool) {
	return medianTTD(c.TTD)
}

func medianTTD(ts []time.Duration) (time.Duration, bool) {
	if len(ts) == 0 {
		return 0, false
	}
	s := slices.Clone(ts)
	for i, t := range s {
		if t < 0 {
			s[i] = 1 << 62
		}
	}
	slices.Sort(s)
	m := s[(len(s)-1)/2]
	return m, m < 1<<62
}

// GroupRow is the outcome of runs where nothing regressed: every finding
// is false.
type GroupRow struct {
	Group string
	Rate  string
	Runs  int
	// WithFindings runs raised any; Findings counts them, by kind.
	WithFindings, Findings int
	ByKind                 map[regress.Kind]int
	Examples               []string
}

// RestartRow is the outcome of agent restarts in one scenario.
type RestartRow struct {
	Name        string
	Rate        string
	Runs, Equal int
	// Findings is the uninterrupted runs' findings (to show the restart
	// had something to keep).
	Findings int
	Diffs    []string
}

// job is one run to do and where its result goes.
type job struct {
	sc   *Scenario
	seed uint64
	res  *Result
	err  error
}

// RunGrid runs the grid and tabulates it. Progress, when not nil, gets a
// line now and then.
func RunGrid(o GridOptions, progress io.Writer) (*Report, error) {
	start := time.Now()
	rep := &Report{Options: o, Power: DefaultPowerModel(), Phi: map[string]map[float64]map[string]float64{}}
	ref, err := NewModel(ModelOptions{Cores: 1, Tail: o.Tail, CostPerRequest: DefaultModelOptions().CostPerRequest})
	if err != nil {
		return nil, err
	}
	rep.Tested = rep.Power.Tested(ref)

	var jobs []*job
	add := func(sc *Scenario, seed uint64) *job {
		j := &job{sc: sc, seed: seed}
		jobs = append(jobs, j)
		return j
	}
	base := func(name string, r Rate, cores float64) *Scenario {
		return &Scenario{Name: name, Cores: cores, Hz: r.Hz, BoostHz: r.BoostHz, BoostFor: r.BoostFor, Jitter: o.Jitter, Tail: o.Tail,
			Base: o.Base, After: o.After, Deploy: true, RequestsKnown: o.RequestsKnown}
	}

	// Slowdowns: a cell's i-th run shares its seed (its base windows)
	// with the i-th run of every other cell of the same rate and size,
	// so that cells differ by their change only.
	type slowJobs struct {
		cell *SlowCell
		jobs []*job
	}
	var slows []slowJobs
	for _, r := range o.Rates {
		rep.Phi[r.Label] = map[float64]map[string]float64{}
		for _, cores := range o.Cores {
			m, err := NewModel(ModelOptions{Cores: cores, Tail: o.Tail, CostPerRequest: DefaultModelOptions().CostPerRequest})
			if err != nil {
				return nil, err
			}
			phi := MeasurePhi(m, max(r.Hz, r.BoostHz), o.Jitter, 360, Seed("phi/"+r.Label, int(cores*1000)))
			rep.Phi[r.Label][cores] = phi
			for _, share := range o.Shares {
				f, ok := Targets[share]
				if !ok {
					return nil, fmt.Errorf("no target function holds %d%% of the CPU (targets: 2, 5, 10, 20, 50)", share)
				}
				kappa := Kappa(m, f, o.Jitter)
				for _, slow := range o.Slowdowns {
					if o.Cell != nil && !o.Cell(r, cores, share, slow) {
						continue
					}
					ch := SlowChange(f, float64(slow))
					sc := base(fmt.Sprintf("slow/%s/%gc/%d%%/+%d%%", r.Label, cores, share, slow), r, cores)
					sc.Change, sc.Truth = &ch, f
					cell := &SlowCell{Rate: r.Label, Cores: cores, Share: share, Slowdown: slow, Phi: phi[f], Kappa: kappa,
						Expect: rep.Power.Expect(float64(share)/100, float64(slow)/100, cores, kappa, r.Hz, r.hz, rep.Tested)}
					sj := slowJobs{cell: cell}
					for i := range o.Seeds {
						sj.jobs = append(sj.jobs, add(sc, Seed(fmt.Sprintf("base/%s/%g", r.Label, cores), i)))
					}
					slows = append(slows, sj)
				}
			}
		}
	}

	// Runs where nothing regressed, grouped by what happened at t0.
	type groupJobs struct {
		row  *GroupRow
		jobs []*job
	}
	side := o.SideCores
	if side == nil {
		side = o.Cores
	}
	var groups []groupJobs
	group := func(name string, r Rate) *groupJobs {
		groups = append(groups, groupJobs{row: &GroupRow{Group: name, Rate: r.Label, ByKind: map[regress.Kind]int{}}})
		return &groups[len(groups)-1]
	}
	for ri, r := range o.Rates {
		g := group("null deploy (new version, same code)", r)
		for i := range o.Nulls {
			cores := side[i%len(side)]
			sc := base(fmt.Sprintf("null/%s/%gc", r.Label, cores), r, cores)
			g.jobs = append(g.jobs, add(sc, Seed("null/"+r.Label, i)))
		}
		for _, load := range []float64{1.5, 0.5} {
			for _, deploy := range []bool{true, false} {
				for _, known := range []bool{false, true} {
					what := fmt.Sprintf("load ×%g", load)
					if deploy {
						what += " at a deploy"
					} else {
						what += ", same version"
					}
					if known {
						what += ", requests known"
					}
					g := group(what, r)
					for _, cores := range side {
						sc := base(fmt.Sprintf("%s/%s/%gc", what, r.Label, cores), r, cores)
						sc.Load, sc.Deploy, sc.RequestsKnown = load, deploy, known
						if !deploy {
							sc.After = o.SameAfter
						}
						for i := range o.LoadSeeds {
							g.jobs = append(g.jobs, add(sc, Seed(sc.Name, i)))
						}
					}
				}
			}
		}
		for _, ch := range []Change{RenameChange, ExtractChange, MoveChange} {
			g := group("cost shift: "+ch.Name, r)
			for _, cores := range side {
				sc := base(fmt.Sprintf("shift %s/%s/%gc", ch.Name, r.Label, cores), r, cores)
				sc.Change = &ch
				for i := range o.ShiftSeeds {
					g.jobs = append(g.jobs, add(sc, Seed(sc.Name, i)))
				}
			}
		}
		if ri == 0 && o.ServiceRestarts > 0 {
			g := group("service restart, same version", r)
			for _, cores := range side {
				sc := base(fmt.Sprintf("service restart/%s/%gc", r.Label, cores), r, cores)
				sc.Deploy, sc.ServiceRestart, sc.After = false, true, o.SameAfter
				for i := range o.ServiceRestarts {
					g.jobs = append(g.jobs, add(sc, Seed(sc.Name, i)))
				}
			}
		}
	}

	// Agent restarts: a base longer than any lookback, a restart within
	// 30 minutes of the deploy.
	type restartJobs struct {
		row  *RestartRow
		jobs []*job
	}
	var restarts []restartJobs
	if o.Restarts > 0 && len(o.Rates) > 0 {
		r := o.Rates[0]
		for _, rs := range []struct {
			name  string
			cores float64
			ch    *Change
			truth string
		}{
			{"10% slowdown of a 10% function, 1 core", 1, new(SlowChange(Func10, 10)), Func10},
			{"20% slowdown of a 20% function, 1 core", 1, new(SlowChange(Func20, 20)), Func20},
			{"20% slowdown of a 50% function, 0.25 cores", 0.25, new(SlowChange(Func50, 20)), Func50},
			{"null deploy, 0.25 cores", 0.25, nil, ""},
		} {
			sc := base("restart/"+rs.name+"/"+r.Label, r, rs.cores)
			sc.Change, sc.Truth, sc.Base, sc.AgentRestart = rs.ch, rs.truth, 2*time.Hour, 30*time.Minute
			rj := restartJobs{row: &RestartRow{Name: "agent restart: " + rs.name, Rate: r.Label}}
			for i := range o.Restarts {
				rj.jobs = append(rj.jobs, add(sc, Seed(sc.Name, i)))
			}
			restarts = append(restarts, rj)
		}
	}

	if err := runJobs(jobs, o.Workers, o.New, progress); err != nil {
		return nil, err
	}

	for _, j := range jobs {
		rep.Runs++
		rep.Windows += j.res.Windows
		rep.NoDetectedAt += j.res.NoDetectedAt
	}
	for _, s := range slows {
		for _, j := range s.jobs {
			s.cell.add(j.res)
		}
		rep.Slow = append(rep.Slow, s.cell)
	}
	for _, g := range groups {
		for _, j := range g.jobs {
			g.row.add(j.res)
		}
		rep.Others = append(rep.Others, g.row)
	}
	for _, r := range restarts {
		for _, j := range r.jobs {
			r.row.Runs++
			r.row.Findings += len(j.res.Raised)
			if j.res.RestartEqual {
				r.row.Equal++
			} else if len(r.row.Diffs) < 3 {
				r.row.Diffs = append(r.row.Diffs, fmt.Sprintf("seed %d, restart at t0+%s: %s", j.seed, j.res.RestartAt.Sub(j.res.T0), j.res.RestartDiff))
			}
		}
		rep.Restarts = append(rep.Restarts, r.row)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// runJobs runs the jobs on workers goroutines. A detector's panic is an
// error naming the run, so that it can be replayed alone.
func runJobs(jobs []*job, workers int, newDet NewDetector, progress io.Writer) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan *job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for j := range next {
				j.res, j.err = runSafe(j.sc, j.seed, newDet)
				mu.Lock()
				done++
				if progress != nil && (done%200 == 0 || done == len(jobs)) {
					fmt.Fprintf(progress, "%d/%d runs, %s\n", done, len(jobs), time.Since(start).Round(time.Second))
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
	}
	return nil
}

func runSafe(sc *Scenario, seed uint64, newDet NewDetector) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("scenario %s, seed %d: the detector panicked: %v", sc.Name, seed, p)
		}
	}()
	return Run(sc, seed, newDet)
}

// After is the findings raised from t0 on, in the detector's order.
func (r *Result) After() []Raise {
	var out []Raise
	for _, x := range r.Raised {
		if !x.At.Before(r.T0) {
			out = append(out, x)
		}
	}
	return out
}

func (c *SlowCell) add(r *Result) {
	c.Runs++
	after := r.After()
	c.Before += len(r.Raised) - len(after)
	ttd := time.Duration(-1)
	if len(after) > 0 {
		first := after[0]
		ttd = first.At.Sub(r.T0)
		right := first.Function == r.Scenario.Truth
		if right {
			c.Right++
		}
		if ttd <= 3*time.Minute {
			c.Found3++
			if right {
				c.Target3++
			}
		}
		if ttd <= 30*time.Minute {
			c.Found30++
			if right {
				c.Target30++
			}
		}
	}
	c.TTD = append(c.TTD, ttd)
	for _, x := range r.Raised {
		if x.Function == r.Scenario.Truth && x.Function != "" {
			continue
		}
		c.Other++
		if r.Ancestors[x.Function] {
			c.Ancestor++
		}
		if len(c.Examples) < 3 {
			c.Examples = append(c.Examples, describe(r, x))
		}
	}
}

func (g *GroupRow) add(r *Result) {
	g.Runs++
	if len(r.Raised) > 0 {
		g.WithFindings++
	}
	for _, x := range r.Raised {
		g.Findings++
		g.ByKind[x.Kind]++
		if len(g.Examples) < 3 {
			g.Examples = append(g.Examples, describe(r, x))
		}
	}
}

// describe is one finding of a run in words.
func describe(r *Result, x Raise) string {
	what := x.Function
	if what == "" {
		what = x.Resource
	}
	at := x.At.Sub(r.T0)
	sign := "+"
	if at < 0 {
		sign, at = "−", -at
	}
	return fmt.Sprintf("%s %s at t0%s%s (%g cores, seed %d)", x.Kind, what, sign, dur(at), r.Scenario.Cores, r.Seed)
}

// cellsOf returns the slowdown cells of one rate, in share then
// slowdown order.
func (rep *Report) cellsOf(rate string) []*SlowCell {
	var out []*SlowCell
	for _, c := range rep.Slow {
		if c.Rate == rate {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Share != out[j].Share {
			return out[i].Share < out[j].Share
		}
		return out[i].Slowdown < out[j].Slowdown
	})
	return out
}

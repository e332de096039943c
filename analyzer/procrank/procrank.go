// Package procrank ranks the processes of a host observation by their
// impact on the host, and splits out each one's own observation so that
// it can be judged like a process watched alone.
//
// A process's load is the thread time per second it spent busy or blocked:
//
//   - with eBPF, its threads' time in every class but none, as the
//     verdict's breakdown tells it from thread states and stacks (on-CPU,
//     waiting for a CPU, for a disk, a socket read, a lock); sleeping in
//     poll or idle does not count;
//   - without eBPF, from the two /proc scans of the window (proc.* series,
//     see agent/collect.ProcessScan): CPU time, run-queue wait, and block
//     I/O wait where the kernel keeps delay accounting. This is the
//     load-average view of a process: running, runnable, or in
//     uninterruptible sleep.
//
// Its impact is that load as a share of all processes' load, so the
// impacts of a host's processes sum to one.
package procrank

import (
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// Process is one process's part of a host window.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Load is its threads' busy and blocked time per second of wall time,
	// and ByClass the same by class (none excluded).
	Load    float64                   `json:"load"`
	ByClass map[verdict.Class]float64 `json:"by_class"`
	// CPU is its on-CPU time per second, part of Load.
	CPU float64 `json:"cpu"`
	// Impact is Load as a share of all processes' load.
	Impact float64 `json:"impact"`
	// Source is "ebpf" or "proc", as for a verdict's breakdown.
	Source string `json:"source"`
}

// Host is a host observation split by process: its eBPF samples grouped
// by PID once, for ranking and for as many splits as are wanted.
type Host struct {
	o     *observation.Observation
	byPID map[int][]part
}

// part is one process's samples of one of the host's eBPF profiles.
type part struct {
	src     int // the profile's index in the host's Profiles
	samples []*profile.Sample
}

// NewHost groups a host observation's eBPF samples by process.
func NewHost(o *observation.Observation) *Host {
	return &Host{o: o, byPID: splitProfiles(o)}
}

// PIDs lists, sorted, every process the window saw do something: those
// with eBPF samples and those in the process scans (proc.* series).
func (h *Host) PIDs() []int {
	pids := slices.Collect(maps.Keys(h.byPID))
	for _, s := range h.o.Series {
		if !s.Name.In(observation.FamilyHostScan) {
			continue
		}
		if pid, err := strconv.Atoi(s.Labels["pid"]); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

// Comm is the command name the window saw for pid: its samples', else
// its process scans'; "" when it saw none.
func (h *Host) Comm(pid int) string {
	for _, pt := range h.byPID[pid] {
		for _, s := range pt.samples {
			if v := s.Label["comm"]; len(v) == 1 && v[0] != "" {
				return commName(v[0])
			}
		}
	}
	id := strconv.Itoa(pid)
	for _, s := range h.o.Series {
		if s.Labels["pid"] == id && s.Labels["comm"] != "" {
			return commName(s.Labels["comm"])
		}
	}
	return ""
}

// Rank lists the host's processes by load, most first, leaving out the
// PIDs in exclude (the watcher itself). It returns nil for an observation
// that is not of a host or has neither eBPF profiles nor process scans.
func (h *Host) Rank(exclude ...int) []Process {
	o := h.o
	if o.Meta.Target.Kind != observation.TargetHost {
		return nil
	}
	window := o.WindowSeconds()
	if window <= 0 {
		return nil
	}
	skip := map[int]bool{}
	for _, pid := range exclude {
		skip[pid] = true
	}
	var out []Process
	if len(h.byPID) > 0 {
		for pid := range h.byPID {
			if skip[pid] {
				continue
			}
			profs := h.profiles([]int{pid})
			b := verdict.BreakdownOf(&observation.Observation{Profiles: profs})
			p := Process{PID: pid, Comm: commName(commOf(profs)), ByClass: map[verdict.Class]float64{}, Source: verdict.BreakdownEBPF}
			// In the classes' order, not the map's: a float sum in map
			// order differs in its last bits from run to run, and two
			// processes of equal load would swap places in the report.
			for _, c := range slices.Sorted(maps.Keys(b.ByClass)) {
				if s := b.ByClass[c]; c != verdict.ClassNone && s > 0 {
					p.ByClass[c] = s / window
					p.Load += s / window
				}
			}
			for _, g := range b.Groups() {
				if g.OnCPU {
					p.CPU = g.Seconds / window
				}
			}
			if p.Load > 0 {
				out = append(out, p)
			}
		}
	} else {
		out = fromScans(o, skip)
	}
	var total float64
	for _, p := range out {
		total += p.Load
	}
	for i := range out {
		if total > 0 {
			out[i].Impact = out[i].Load / total
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Load != out[j].Load {
			return out[i].Load > out[j].Load
		}
		return out[i].PID < out[j].PID
	})
	return out
}

// fromScans ranks from the proc.* series of the window's /proc scans.
func fromScans(o *observation.Observation, skip map[int]bool) []Process {
	byPID := map[int]*Process{}
	for _, s := range o.Series {
		var class verdict.Class
		switch s.Name {
		case observation.HostScanCPU, observation.HostScanRunDelay:
			class = verdict.ClassCPU
		case observation.HostScanBlkioDelay:
			class = verdict.ClassIO
		default:
			continue
		}
		pid, err := strconv.Atoi(s.Labels["pid"])
		if err != nil || skip[pid] || len(s.Points) == 0 {
			continue
		}
		p := byPID[pid]
		if p == nil {
			p = &Process{PID: pid, Comm: commName(s.Labels["comm"]), ByClass: map[verdict.Class]float64{}, Source: verdict.BreakdownProc}
			byPID[pid] = p
		}
		v := s.Points[len(s.Points)-1].Value
		p.ByClass[class] += v
		p.Load += v
		if s.Name == observation.HostScanCPU {
			p.CPU += v
		}
	}
	out := make([]Process, 0, len(byPID))
	for _, p := range byPID {
		if p.Load > 0 {
			out = append(out, *p)
		}
	}
	return out
}

// Split returns the observation of one process of the host: the
// samples of the eBPF profiles and the histograms labelled with its PID,
// its proc.* series under the names a process watch records
// (process.cpu, process.schedstat.run_delay), the host's own series (for
// the USE table), and the host's missing signals. The profiles share
// their locations and functions with the host's.
func (h *Host) Split(pid int) *observation.Observation {
	sub := h.SplitService(observation.Target{Kind: observation.TargetProcess, PID: pid}, []int{pid})
	if len(sub.Profiles) > 0 {
		sub.Meta.Target.Command = []string{commName(commOf(sub.Profiles))}
		return sub
	}
	id := strconv.Itoa(pid)
	for _, s := range h.o.Series {
		if s.Labels["pid"] == id && s.Labels["comm"] != "" {
			sub.Meta.Target.Command = []string{commName(s.Labels["comm"])}
			break
		}
	}
	return sub
}

// SplitService returns the observation of a group of the host's
// processes, such as a service's, as target t: the samples of the pids
// in the host's eBPF profiles (one profile per host profile that has
// any, sharing its locations and functions), the histograms labelled
// with one of the pids, their proc.* series under the names a process
// watch records (process.cpu{mode}, process.schedstat.run_delay,
// process.blkio_delay, process.memory.rss) summed across the pids point
// by point (one series per name for the service, however many
// processes: the store keeps it in every record), the host's
// own series, and the host's missing signals. A pid given twice counts
// once; the samples and series of the pids are taken in the order of
// the pids sorted.
func (h *Host) SplitService(t observation.Target, pids []int) *observation.Observation {
	o := h.o
	pids = slices.Clone(pids)
	slices.Sort(pids)
	pids = slices.Compact(pids)
	in := make(map[string]bool, len(pids))
	for _, pid := range pids {
		in[strconv.Itoa(pid)] = true
	}
	sub := &observation.Observation{Meta: o.Meta, Missing: o.Missing, Profiles: h.profiles(pids)}
	sub.Meta.Target = t
	for _, h := range o.Histograms {
		if in[h.Labels["pid"]] {
			sub.Histograms = append(sub.Histograms, h)
		}
	}
	sum := summer{at: map[string]int{}}
	for _, s := range o.Series {
		if s.Labels["pid"] == "" {
			if !s.Name.In(observation.FamilyHostScan) {
				sub.Series = append(sub.Series, s)
			}
			continue
		}
		if !in[s.Labels["pid"]] {
			continue
		}
		switch s.Name {
		case observation.HostScanCPU:
			s.Name, s.Labels = observation.ProcessCPU, map[string]string{"mode": s.Labels["mode"]}
		case observation.HostScanRunDelay:
			s.Name, s.Labels = observation.ProcessRunDelay, nil
		case observation.HostScanBlkioDelay:
			s.Name, s.Labels = observation.ProcessBlkioDelay, nil
		case observation.HostScanRSS:
			s.Name, s.Labels = observation.ProcessRSS, nil
		default:
			sub.Series = append(sub.Series, s)
			continue
		}
		sub.Series = sum.add(sub.Series, s)
	}
	return sub
}

// summer sums the renamed process series of several processes: one
// series per name and labels, where the first of them came.
type summer struct {
	at     map[string]int // name and labels → index in the series
	copied map[int]bool   // the series at an index has its own points
}

// add adds s to the series: a new name and labels is appended as it is,
// another's points are added to the first's, point by point by time.
func (m *summer) add(series []observation.Series, s observation.Series) []observation.Series {
	key := string(s.Name) + "\x00" + s.Labels["mode"] // the only label a renamed series keeps
	i, ok := m.at[key]
	if !ok {
		m.at[key] = len(series)
		return append(series, s)
	}
	if m.copied == nil {
		m.copied = map[int]bool{}
	}
	if !m.copied[i] {
		// The first series' points are the host's: add into a copy.
		series[i].Points = slices.Clone(series[i].Points)
		m.copied[i] = true
	}
	series[i].Points = addPoints(series[i].Points, s.Points)
	return series
}

// addPoints adds b's points to a's of the same time, and keeps b's other
// points, in time order.
func addPoints(a, b []observation.Point) []observation.Point {
	for _, p := range b {
		j := slices.IndexFunc(a, func(q observation.Point) bool { return q.Time.Equal(p.Time) })
		if j >= 0 {
			a[j].Value += p.Value
			continue
		}
		a = append(a, p)
	}
	slices.SortStableFunc(a, func(x, y observation.Point) int { return x.Time.Compare(y.Time) })
	return a
}

// profiles are the host's eBPF profiles holding only the samples of the
// pids, in the host's order, those with none left out.
func (h *Host) profiles(pids []int) []observation.Profile {
	bySrc := map[int][]*profile.Sample{}
	for _, pid := range pids {
		for _, pt := range h.byPID[pid] {
			bySrc[pt.src] = append(bySrc[pt.src], pt.samples...)
		}
	}
	var out []observation.Profile
	for i, p := range h.o.Profiles {
		if ss := bySrc[i]; len(ss) > 0 {
			out = append(out, observation.Profile{Kind: p.Kind, Source: p.Source, Labels: p.Labels, Profile: withSamples(p.Profile, ss)})
		}
	}
	return out
}

// splitProfiles groups the samples of the eBPF profiles by their pid
// label, in one pass: each process gets its samples of each profile.
func splitProfiles(o *observation.Observation) map[int][]part {
	out := map[int][]part{}
	for i, p := range o.Profiles {
		if p.Source != observation.SourceEBPF || p.Profile == nil {
			continue
		}
		samples := map[int][]*profile.Sample{}
		for _, s := range p.Profile.Sample {
			if pid, ok := samplePID(s); ok {
				samples[pid] = append(samples[pid], s)
			}
		}
		for pid, ss := range samples {
			out[pid] = append(out[pid], part{src: i, samples: ss})
		}
	}
	return out
}

// commOf is the command name the samples carry.
func commOf(profs []observation.Profile) string {
	for _, p := range profs {
		for _, s := range p.Profile.Sample {
			if v := s.Label["comm"]; len(v) == 1 && v[0] != "" {
				return v[0]
			}
		}
	}
	return ""
}

// withSamples is p holding only samples, sharing everything else with p
// (a struct copy would copy p's lock).
func withSamples(p *profile.Profile, samples []*profile.Sample) *profile.Profile {
	return &profile.Profile{
		SampleType: p.SampleType, DefaultSampleType: p.DefaultSampleType, Sample: samples,
		Mapping: p.Mapping, Location: p.Location, Function: p.Function,
		Comments: p.Comments, DropFrames: p.DropFrames, KeepFrames: p.KeepFrames,
		TimeNanos: p.TimeNanos, DurationNanos: p.DurationNanos, PeriodType: p.PeriodType, Period: p.Period,
		DocURL: p.DocURL,
	}
}

// samplePID is the process of an eBPF sample: its numeric label "pid"
// (the thread group ID), or a string label of that name.
func samplePID(s *profile.Sample) (int, bool) {
	if v := s.NumLabel["pid"]; len(v) == 1 {
		return int(v[0]), true
	}
	if v := s.Label["pid"]; len(v) == 1 {
		pid, err := strconv.Atoi(v[0])
		return pid, err == nil
	}
	return 0, false
}

// commName is a process's name as reports may show it: any process can
// name itself (prctl PR_SET_NAME), and a name that reached a terminal as
// it is could move the cursor, clear the screen or set the title.
func commName(s string) string { return textfmt.Printable(s) }

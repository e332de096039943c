package regress

import (
	"slices"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// cpuSources are the sources of a window's on-CPU profile, preferred
// first: the eBPF sampler sees every thread, kernel frames included; a Go
// service's pprof endpoint and an SDK's push see their process's Go code.
var cpuSources = []observation.ProfileSource{observation.SourceEBPF, observation.SourcePprof, observation.SourceIngest}

// WindowOf is what the detector reads of a stored window's observation of
// service and version, judged as s: the on-CPU samples of its code by
// function (user space: see inKernel) of the first source of cpuSources
// that has a cpu profile (all of that source's cpu profiles, summed), its
// memory at the window's end, and its
// requests (0 unless its config names a requests counter: the cost is
// then a share of the service's CPU).
func WindowOf(o *observation.Observation, service, version string, s verdict.Summary) Window {
	w := Window{Service: service, Version: version, Start: o.Meta.Start, Duration: o.Meta.Duration, Verdict: s}
	for _, src := range cpuSources {
		var c counter
		for _, p := range o.Profiles {
			if p.Kind == observation.KindCPU && p.Source == src && p.Profile != nil {
				c.add(p.Profile)
			}
		}
		if c.used {
			w.CPU = c.counts(string(src))
			break
		}
	}
	w.Memory = memoryOf(o)
	w.Requests = requestsOf(o)
	return w
}

// requestsOf is how many requests the service served in the window: for
// each scraped endpoint's service.requests series, its mean rate times
// the window's length, summed; 0 when none was recorded. A series has one
// point per window it covers: a stored record rolled up from six 10-s
// windows has six, and a length of 60 s.
func requestsOf(o *observation.Observation) float64 {
	var n float64
	for _, s := range o.SeriesNamed(observation.ServiceRequests, nil) {
		if len(s.Points) == 0 {
			continue
		}
		var sum float64
		for _, p := range s.Points {
			sum += p.Value
		}
		n += sum / float64(len(s.Points)) * o.Meta.Duration.Seconds()
	}
	return n
}

// memoryOf is the service's resident memory at the window's end: the
// last point of each of its processes' process.memory.rss series, summed;
// else the last points of its Go heap in use; 0 when neither was
// recorded. A service split out of a host's window has its processes'
// proc.memory.rss summed into one process.memory.rss (procrank).
func memoryOf(o *observation.Observation) float64 {
	for _, name := range []observation.SeriesName{observation.ProcessRSS, observation.GoHeapInuse} {
		var sum float64
		found := false
		for _, s := range o.SeriesNamed(name, nil) {
			if n := len(s.Points); n > 0 {
				sum += s.Points[n-1].Value
				found = true
			}
		}
		if found {
			return sum
		}
	}
	return 0
}

// counter sums cpu profiles into Counts. Functions are named as pprof
// names them; a location without lines is "(unknown)", as in compare.
type counter struct {
	used    bool
	samples float64
	period  float64
	// cpuNs and cpuSamples are the CPU time and the samples of the
	// profiles that state both: a profile merged over windows sampled at
	// different rates keeps the largest period (pprof's Merge), and only
	// its CPU column says what its samples stood for.
	cpuNs, cpuSamples float64
	funcs             map[string]FuncCount
	calls             map[Call]float64
}

// unknownFunction names the frames of a location pprof has no lines for.
const unknownFunction = "(unknown)"

// add counts one profile. A sample's weight is its count of samples: the
// samples/count value, else a count-valued first type, else its value
// over the profile's period when the value is in the period's unit (a
// profile with nanoseconds only). A profile with neither is skipped.
//
// Only the samples of the program's own code are counted: a sample
// whose leaf is in the kernel (inKernel) is left out, unless every
// sample of the profile is (a kernel thread's service, all kernel).
func (c *counter) add(p *profile.Profile) {
	vi, period := sampleCount(p)
	if vi < 0 {
		return
	}
	userOnly := !allKernel(p)
	ci := cpuColumn(p, vi)
	if !c.used {
		c.used = true
		c.funcs = map[string]FuncCount{}
		c.calls = map[Call]float64{}
		c.period = periodSeconds(p)
	}
	// Each location's frames, leaf first, as indexes into names: every
	// name is looked up once per profile, not once per sample.
	var names []string
	index := map[string]int32{}
	frames := make(map[uint64][]int32, len(p.Location))
	for _, l := range p.Location {
		var fr []int32
		for _, ln := range l.Line {
			if ln.Function == nil {
				continue
			}
			fr = append(fr, intern(ln.Function.Name, index, &names))
		}
		if len(fr) == 0 {
			fr = append(fr, intern(unknownFunction, index, &names))
		}
		frames[l.ID] = fr
	}
	self := make([]float64, len(names))
	incl := make([]float64, len(names))
	seen := make([]int, len(names)) // sample number+1 that last counted a function
	edges := map[[2]int32]float64{}
	edgeSeen := map[[2]int32]int{}
	for si, s := range p.Sample {
		if vi >= len(s.Value) {
			continue // a malformed sample: nothing to count
		}
		v := float64(s.Value[vi])
		if period > 0 {
			v /= period
		}
		if ci >= 0 && ci < len(s.Value) && v > 0 {
			c.cpuNs += float64(s.Value[ci])
			c.cpuSamples += v
		}
		if v <= 0 || userOnly && inKernel(s) {
			continue
		}
		c.samples += v
		mark := si + 1
		prev := int32(-1) // the callee of the frame walked next
		for li, loc := range s.Location {
			if loc == nil {
				continue
			}
			for fi, f := range frames[loc.ID] {
				if li == 0 && fi == 0 {
					self[f] += v
				}
				if seen[f] != mark {
					seen[f] = mark
					incl[f] += v
				}
				if prev >= 0 && prev != f {
					e := [2]int32{f, prev}
					if edgeSeen[e] != mark {
						edgeSeen[e] = mark
						edges[e] += v
					}
				}
				prev = f
			}
		}
	}
	for i, name := range names {
		if incl[i] > 0 {
			fc := c.funcs[name]
			fc.Self += self[i]
			fc.Incl += incl[i]
			c.funcs[name] = fc
		}
	}
	for e, v := range edges {
		c.calls[Call{Caller: names[e[0]], Callee: names[e[1]]}] += v
	}
}

// inKernel tells a sample taken in the kernel (its leaf is a kernel
// frame) from one of the program's own code. The version comparison
// counts the program's code only. The kernel's share of a service's CPU
// moves with the machine, not with the code the version ships:
// interrupts and softirqs run in whatever task is current, a busier
// machine preempts and switches the service more, and its system calls
// wake and wait on contended run queues. On a 2-core VM shared with two
// busy loops, the same build deployed again at the same request rate put
// 28.3% of its CPU in system calls (do_syscall_64) where 24.5% diluted to
// 21.3% was expected, when a neighbour grew busier (+33%, p 2.5e-5); its
// slowed twin's first finding was the preemption path
// (exit_to_user_mode_loop, +131%), not its code. A Go service's own CPU
// profile and an SDK's push hold no kernel frames at all: without the
// kernel's, the eBPF sampler's windows measure what theirs do.
func inKernel(s *profile.Sample) bool {
	return len(s.Location) > 0 && s.Location[0] != nil && verdict.IsKernel(s.Location[0])
}

// allKernel tells a profile whose every sample is in the kernel.
func allKernel(p *profile.Profile) bool {
	return len(p.Sample) > 0 && !slices.ContainsFunc(p.Sample, func(s *profile.Sample) bool { return !inKernel(s) })
}

func intern(name string, index map[string]int32, names *[]string) int32 {
	if i, ok := index[name]; ok {
		return i
	}
	i := int32(len(*names))
	index[name] = i
	*names = append(*names, name)
	return i
}

func (c *counter) counts(source string) Counts {
	period := c.period
	if c.cpuNs > 0 && c.cpuSamples > 0 {
		period = c.cpuNs / 1e9 / c.cpuSamples
	}
	return Counts{Source: source, Samples: c.samples, Period: period, Funcs: c.funcs, Calls: c.calls}
}

// cpuColumn is the index of the CPU time column (cpu/nanoseconds) other
// than the count at vi; -1 when there is none.
func cpuColumn(p *profile.Profile, vi int) int {
	for i, st := range p.SampleType {
		if i != vi && st.Type == "cpu" && st.Unit == "nanoseconds" {
			return i
		}
	}
	return -1
}

// sampleCount is the index of the value that counts samples, and the
// period to divide it by (0 when it is a count already); -1 when the
// profile says neither.
func sampleCount(p *profile.Profile) (int, float64) {
	for i, st := range p.SampleType {
		if st.Type == "samples" && st.Unit == "count" {
			return i, 0
		}
	}
	for i, st := range p.SampleType {
		if st.Unit == "count" {
			return i, 0
		}
	}
	if len(p.SampleType) > 0 && p.PeriodType != nil && p.Period > 0 && p.PeriodType.Unit == p.SampleType[0].Unit {
		return 0, float64(p.Period)
	}
	return -1, 0
}

// periodSeconds is the CPU time one sample stands for, when the profile's
// period is CPU nanoseconds; 0 otherwise.
func periodSeconds(p *profile.Profile) float64 {
	if p.PeriodType != nil && p.PeriodType.Unit == "nanoseconds" && p.Period > 0 {
		return float64(p.Period) / 1e9
	}
	return 0
}

package observation

import "github.com/google/pprof/profile"

// Prune is p holding only samples, and only the mappings, locations and
// functions they use, in p's order (the main binary's mapping stays
// first); what it keeps is shared with p. A service's split of a host
// window shares the host's whole symbol table, and a part of a profile
// sent on its own needs only its own: profile.Compact (a Merge) drops the
// rest too, but rebuilds every sample and location to do so, a tenth of
// the agent's CPU (agentprof).
func Prune(p *profile.Profile, samples []*profile.Sample) *profile.Profile {
	locs := map[*profile.Location]bool{}
	fns := map[*profile.Function]bool{}
	maps := map[*profile.Mapping]bool{}
	q := &profile.Profile{
		SampleType: p.SampleType, DefaultSampleType: p.DefaultSampleType, Sample: samples,
		Comments: p.Comments, DropFrames: p.DropFrames, KeepFrames: p.KeepFrames,
		TimeNanos: p.TimeNanos, DurationNanos: p.DurationNanos, PeriodType: p.PeriodType, Period: p.Period,
		DocURL: p.DocURL,
	}
	for _, s := range samples {
		for _, l := range s.Location {
			if locs[l] {
				continue
			}
			locs[l] = true
			maps[l.Mapping] = true
			for _, ln := range l.Line {
				fns[ln.Function] = true
			}
		}
	}
	for _, m := range p.Mapping {
		if maps[m] {
			q.Mapping = append(q.Mapping, m)
		}
	}
	for _, l := range p.Location {
		if locs[l] {
			q.Location = append(q.Location, l)
		}
	}
	for _, f := range p.Function {
		if fns[f] {
			q.Function = append(q.Function, f)
		}
	}
	return q
}

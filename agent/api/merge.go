package api

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// merge is one observation covering the windows of obs (oldest first), as
// the contract of observation.Merge (analyzer/observation/merge.go, being
// written beside this package) says: profiles merged per (kind, source,
// labels) with profile.Merge, series with the same name and labels
// concatenated in time order, histograms with the same name and labels
// summed, Missing and Collectors unioned, Meta the first's with the
// earliest Start and the windows' durations summed (the time covered: a
// gap while the agent was down must not dilute loads). When that lands,
// this function becomes a call of it.
func merge(obs []*observation.Observation) (*observation.Observation, error) {
	if len(obs) == 0 {
		return nil, errors.New("merging windows: none")
	}
	out := &observation.Observation{Meta: obs[0].Meta}
	out.Meta.Collectors = map[string]string{}
	out.Meta.Duration = 0
	var (
		profiles = map[string][]*profile.Profile{}
		profMeta = map[string]observation.Profile{}
		series   = map[string]int{}
		hists    = map[string]int{}
		missing  = map[observation.Signal]bool{}
		pkeys    []string
	)
	for _, o := range obs {
		if o.Meta.Start.Before(out.Meta.Start) {
			out.Meta.Start = o.Meta.Start
		}
		out.Meta.Duration += o.Meta.Duration
		for k, v := range o.Meta.Collectors {
			if _, ok := out.Meta.Collectors[k]; !ok {
				out.Meta.Collectors[k] = v
			}
		}
		for _, p := range o.Profiles {
			if p.Profile == nil {
				continue
			}
			k := string(p.Kind) + "\x00" + string(p.Source) + "\x00" + labelKey(p.Labels)
			if _, ok := profiles[k]; !ok {
				pkeys = append(pkeys, k)
				profMeta[k] = p
			}
			profiles[k] = append(profiles[k], p.Profile)
		}
		for _, s := range o.Series {
			k := string(s.Name) + "\x00" + s.Unit + "\x00" + labelKey(s.Labels)
			i, ok := series[k]
			if !ok {
				i = len(out.Series)
				series[k] = i
				out.Series = append(out.Series, observation.Series{Name: s.Name, Unit: s.Unit, Labels: s.Labels})
			}
			out.Series[i].Points = append(out.Series[i].Points, s.Points...)
		}
		for _, h := range o.Histograms {
			k := string(h.Name) + "\x00" + h.Unit + "\x00" + labelKey(h.Labels)
			i, ok := hists[k]
			if !ok {
				i = len(out.Histograms)
				hists[k] = i
				out.Histograms = append(out.Histograms, observation.Histogram{Name: h.Name, Unit: h.Unit, Labels: h.Labels})
			}
			sum := &out.Histograms[i]
			if len(h.Slots) > len(sum.Slots) {
				sum.Slots = append(sum.Slots, make([]uint64, len(h.Slots)-len(sum.Slots))...)
			}
			for j, n := range h.Slots {
				sum.Slots[j] += n
			}
			sum.Count += h.Count
			sum.Sum += h.Sum
		}
		for _, m := range o.Missing {
			if !missing[m.Signal] {
				missing[m.Signal] = true
				out.Missing = append(out.Missing, m)
			}
		}
	}
	// Windows come oldest first, so the points are mostly in order
	// already: checking is cheaper than sorting.
	for i := range out.Series {
		pts := out.Series[i].Points
		if !slices.IsSortedFunc(pts, comparePoints) {
			slices.SortStableFunc(pts, comparePoints)
		}
	}
	for _, k := range pkeys {
		p := profMeta[k]
		merged, err := mergeProfiles(profiles[k])
		if err != nil {
			return nil, fmt.Errorf("merging the %s profiles from %s: %w", p.Kind, p.Source, err)
		}
		p.Profile = merged
		out.Profiles = append(out.Profiles, p)
	}
	return out, nil
}

func comparePoints(a, b observation.Point) int { return a.Time.Compare(b.Time) }

// mergeProfiles is profile.Merge, which says which sample types differ
// when they do, and a single profile as it is.
func mergeProfiles(ps []*profile.Profile) (*profile.Profile, error) {
	if len(ps) == 1 {
		return ps[0], nil
	}
	return profile.Merge(ps)
}

// labelKey is labels in a fixed order, as part of a map key.
func labelKey(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

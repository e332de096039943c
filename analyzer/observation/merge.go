package observation

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// ErrMerge is a set of windows that cannot be one observation: none, of
// different kinds of target, or with profiles or histograms of one name
// that measure different things.
var ErrMerge = errors.New("cannot merge observations")

// maxMergedReasons bounds the distinct reasons kept for one missing
// signal: a week of windows must not make a reason a week long.
const maxMergedReasons = 3

// Merge makes one observation of several windows of the same target, as
// a store's rollups and a query over a range want it:
//   - profiles of the same kind, source and labels merged into one with
//     profile.Merge (their sample types must match): summed, except
//     snapshot kinds (ProfileKind.Snapshot: heap, goroutine), which are
//     their time-weighted average, each window's weighing its Duration
//     (shared by the profiles of one window, as an SDK's pushes are; equal
//     weights when a window has none). The weighted values are rounded to
//     whole numbers per sample;
//   - series of the same name and labels made one, their points in time
//     order;
//   - histograms of the same name and labels summed slot by slot;
//   - missing signals once each (an "events lost" entry apart from the
//     signal's others), with up to three distinct reasons;
//   - meta from the earliest window, its Start, Duration the sum of the
//     windows' durations (the time covered: a gap between windows while
//     nothing watched must not dilute rates), Collectors the union.
//
// The windows are read, never changed. Merge does no I/O.
func Merge(obs []*Observation) (*Observation, error) {
	if len(obs) == 0 {
		return nil, fmt.Errorf("%w: no observation", ErrMerge)
	}
	byStart := slices.Clone(obs)
	for i, o := range byStart {
		if o == nil {
			return nil, fmt.Errorf("%w: observation %d is nil", ErrMerge, i)
		}
	}
	sort.SliceStable(byStart, func(i, j int) bool { return byStart[i].Meta.Start.Before(byStart[j].Meta.Start) })
	meta, err := mergeMeta(byStart)
	if err != nil {
		return nil, err
	}
	out := &Observation{Meta: meta}
	if out.Profiles, err = mergeProfiles(byStart); err != nil {
		return nil, err
	}
	out.Series = mergeSeries(byStart)
	if out.Histograms, err = mergeHistograms(byStart); err != nil {
		return nil, err
	}
	out.Missing = mergeMissing(byStart)
	return out, nil
}

func mergeMeta(obs []*Observation) (Meta, error) {
	m := obs[0].Meta
	m.Target.Labels = maps.Clone(m.Target.Labels)
	m.Collectors = maps.Clone(m.Collectors)
	var total time.Duration
	for _, o := range obs {
		if o.Meta.Target.Kind != m.Target.Kind {
			return Meta{}, fmt.Errorf("%w: targets of kinds %q and %q", ErrMerge, m.Target.Kind, o.Meta.Target.Kind)
		}
		total += o.Meta.Duration
		for k, v := range o.Meta.Collectors {
			if _, ok := m.Collectors[k]; !ok {
				if m.Collectors == nil {
					m.Collectors = map[string]string{}
				}
				m.Collectors[k] = v
			}
		}
	}
	m.Duration = total
	return m, nil
}

// labelKey is a map's contents as one comparable string.
func labelKey(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

func mergeProfiles(obs []*Observation) ([]Profile, error) {
	type group struct {
		Profile
		parts   []*profile.Profile
		weights []float64 // a snapshot's share of its window's duration
	}
	var groups []*group
	index := map[string]*group{}
	for _, o := range obs {
		keys := make([]string, len(o.Profiles))
		inWindow := map[string]int{} // profiles of each group in this window
		for i, p := range o.Profiles {
			if p.Profile == nil {
				return nil, fmt.Errorf("%w: profile %d (%s) of the window at %s is nil", ErrMerge, i, p.Kind, o.Meta.Start.Format(time.RFC3339))
			}
			keys[i] = string(p.Kind) + "\x00" + string(p.Source) + "\x00" + labelKey(p.Labels)
			inWindow[keys[i]]++
		}
		for i, p := range o.Profiles {
			g := index[keys[i]]
			if g == nil {
				g = &group{Profile: Profile{Kind: p.Kind, Source: p.Source, Labels: maps.Clone(p.Labels)}}
				index[keys[i]] = g
				groups = append(groups, g)
			}
			g.parts = append(g.parts, p.Profile)
			g.weights = append(g.weights, float64(o.Meta.Duration)/float64(inWindow[keys[i]]))
		}
	}
	var out []Profile
	for _, g := range groups {
		merge := profile.Merge
		if g.Kind.Snapshot() {
			merge = func(ps []*profile.Profile) (*profile.Profile, error) { return average(ps, g.weights) }
		}
		merged, err := merge(g.parts)
		if err != nil {
			return nil, fmt.Errorf("%w: %s profiles from %s%s: %v (sample types %s)",
				ErrMerge, g.Kind, g.Source, labelText(g.Labels), err, sampleTypes(g.parts))
		}
		g.Profile.Profile = merged
		out = append(out, g.Profile)
	}
	return out, nil
}

// average is the weighted average of snapshots, a new profile. Equal
// weights (or any weight not positive: all are then equal) sum the
// snapshots and divide the sum, rounding once; else each is scaled by its
// share of the total (a copy: the inputs are never changed) before the
// sum. pprof's Scale scales every sample value column alike.
func average(ps []*profile.Profile, weights []float64) (*profile.Profile, error) {
	total, equal := 0.0, true
	for _, w := range weights {
		if w <= 0 {
			equal = true
			break
		}
		total += w
		equal = equal && w == weights[0]
	}
	if equal {
		m, err := profile.Merge(ps)
		if err != nil {
			return nil, err
		}
		m.Scale(1 / float64(len(ps)))
		return m, nil
	}
	scaled := make([]*profile.Profile, len(ps))
	for i, p := range ps {
		scaled[i] = p.Copy()
		scaled[i].Scale(weights[i] / total)
	}
	return profile.Merge(scaled)
}

// labelText is labels for a message: " {k=v, ...}", or "" for none.
func labelText(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return " {" + strings.Join(parts, ", ") + "}"
}

// sampleTypes names the distinct sample types of profiles, for the error
// of a merge that cannot be.
func sampleTypes(ps []*profile.Profile) string {
	var seen []string
	for _, p := range ps {
		var ts []string
		for _, st := range p.SampleType {
			ts = append(ts, st.Type+"/"+st.Unit)
		}
		s := "[" + strings.Join(ts, " ") + "]"
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	return strings.Join(seen, " and ")
}

func mergeSeries(obs []*Observation) []Series {
	var out []Series
	index := map[string]int{}
	for _, o := range obs {
		for _, s := range o.Series {
			key := string(s.Name) + "\x00" + labelKey(s.Labels)
			i, ok := index[key]
			if !ok {
				i = len(out)
				index[key] = i
				out = append(out, Series{Name: s.Name, Unit: s.Unit, Labels: maps.Clone(s.Labels)})
			}
			out[i].Points = append(out[i].Points, s.Points...)
		}
	}
	for i := range out {
		sort.SliceStable(out[i].Points, func(a, b int) bool { return out[i].Points[a].Time.Before(out[i].Points[b].Time) })
	}
	return out
}

func mergeHistograms(obs []*Observation) ([]Histogram, error) {
	var out []Histogram
	index := map[string]int{}
	for _, o := range obs {
		for _, h := range o.Histograms {
			key := string(h.Name) + "\x00" + labelKey(h.Labels)
			i, ok := index[key]
			if !ok {
				i = len(out)
				index[key] = i
				out = append(out, Histogram{Name: h.Name, Unit: h.Unit, Labels: maps.Clone(h.Labels)})
			}
			m := &out[i]
			if m.Unit != h.Unit {
				return nil, fmt.Errorf("%w: histogram %s%s in %s and in %s", ErrMerge, h.Name, labelText(h.Labels), m.Unit, h.Unit)
			}
			if len(h.Slots) > len(m.Slots) {
				m.Slots = append(m.Slots, make([]uint64, len(h.Slots)-len(m.Slots))...)
			}
			for s, n := range h.Slots {
				m.Slots[s] += n
			}
			m.Count += h.Count
			m.Sum += h.Sum
		}
	}
	return out, nil
}

func mergeMissing(obs []*Observation) []Missing {
	type entry struct {
		Missing
		reasons []string
		more    bool
	}
	var entries []*entry
	index := map[string]*entry{}
	for _, o := range obs {
		for _, m := range o.Missing {
			key := string(m.Signal)
			if m.LostEvents() {
				key += "\x00lost"
			}
			e := index[key]
			if e == nil {
				e = &entry{Missing: Missing{Signal: m.Signal}}
				index[key] = e
				entries = append(entries, e)
			}
			switch {
			case slices.Contains(e.reasons, m.Reason):
			case len(e.reasons) < maxMergedReasons:
				e.reasons = append(e.reasons, m.Reason)
			default:
				e.more = true
			}
		}
	}
	var out []Missing
	for _, e := range entries {
		e.Reason = strings.Join(e.reasons, "; ")
		if e.more {
			e.Reason += "; and other reasons"
		}
		out = append(out, e.Missing)
	}
	return out
}

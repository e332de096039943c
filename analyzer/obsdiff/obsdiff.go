package obsdiff

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdiff"
	"github.com/perfhound/perfhound/analyzer/stat"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// Schema identifies the JSON layout of a Diff. It changes only when a field
// changes meaning or disappears; new fields may be added within a version.
const Schema = "perfhound.obsdiff/v1"

// ErrNoWindow is returned for an observation that covers no time: nothing
// in it can be put per second.
var ErrNoWindow = errors.New("observation covers no time")

// Options configure a comparison.
type Options struct {
	// Threshold is the smallest relative change of a class's load that
	// counts (0.05 = 5%); it also marks priorities that grew or shrank.
	Threshold float64
	// MinLoadChange is the smallest absolute change of a class's load, in
	// threads, that counts; 0 takes Verdict.MinLoad. It keeps the small
	// loads of idle classes, which double on noise, out of the findings.
	MinLoadChange float64
	// FailOn says what fails (see the package doc); "" is regression.
	FailOn stat.Policy
	// Top caps the functions listed per profile and the priorities; 0
	// means 10.
	Top int
	// Verdict are the thresholds both observations are judged with; the
	// zero value takes verdict.DefaultThresholds.
	Verdict verdict.Thresholds
	// BaseName and HeadName say where each side came from in reports
	// (their directories); "" is "base" and "head".
	BaseName, HeadName string
}

// DefaultOptions are the command's defaults.
func DefaultOptions() Options {
	return Options{
		Threshold: stat.DefaultThresholds.MinChange,
		FailOn:    stat.FailOnRegression,
		Top:       10,
		Verdict:   verdict.DefaultThresholds(),
	}
}

// minSavingChange is the least change of a priority's saving, in threads,
// that marks it grown or shrunk: a hundredth of a thread is below what a
// window of a few seconds measures.
const minSavingChange = 0.01

// Diff is what changed from the base to the head.
type Diff struct {
	Schema string     `json:"schema"`
	Base   Side       `json:"base"`
	Head   Side       `json:"head"`
	Policy PolicyInfo `json:"policy"`

	Class      ClassChange      `json:"class"`
	Load       []LoadChange     `json:"load"`
	Breakdown  BreakdownChange  `json:"breakdown"`
	Profiles   []ProfileChange  `json:"profiles"`
	Resources  []ResourceChange `json:"resources"`
	Latency    []LatencyChange  `json:"latency"`
	Priorities []PriorityChange `json:"priorities"`
	Findings   []FindingChange  `json:"findings"`
	Missing    []MissingChange  `json:"missing"`

	// Regressions and Improvements say, one sentence each, what the rule
	// of the package doc found.
	Regressions  []string `json:"regressions"`
	Improvements []string `json:"improvements"`
	Warnings     []string `json:"warnings"`
	// Failed is whether the policy fails.
	Failed bool `json:"failed"`

	// BaseVerdict and HeadVerdict are the verdicts compared, for callers
	// that want to show them whole.
	BaseVerdict *verdict.Verdict `json:"-"`
	HeadVerdict *verdict.Verdict `json:"-"`
}

// Side describes one observation.
type Side struct {
	Name     string             `json:"name"`
	Target   observation.Target `json:"target"`
	Host     string             `json:"host,omitempty"`
	CPUs     int                `json:"cpus,omitempty"`
	Start    time.Time          `json:"start"`
	Duration time.Duration      `json:"duration_ns"`
	Summary  string             `json:"summary"`
}

// PolicyInfo echoes what the Diff was decided with.
type PolicyInfo struct {
	Threshold     float64     `json:"threshold"`
	MinLoadChange float64     `json:"min_load_change"`
	FailOn        stat.Policy `json:"fail_on"`
}

// ClassChange is the verdicts' classes side by side.
type ClassChange struct {
	Base           verdict.Class `json:"base"`
	Head           verdict.Class `json:"head"`
	BaseConfidence float64       `json:"base_confidence"`
	HeadConfidence float64       `json:"head_confidence"`
	BaseSecondary  verdict.Class `json:"base_secondary,omitempty"`
	HeadSecondary  verdict.Class `json:"head_secondary,omitempty"`
	// Change is regression (bound by a class the base was not),
	// improvement (bound by nothing any more) or unchanged.
	Change stat.Change `json:"change"`
}

// LoadChange is one class's load, in threads bound per second of wall time.
type LoadChange struct {
	Class verdict.Class `json:"class"`
	Base  float64       `json:"base"`
	Head  float64       `json:"head"`
	Delta float64       `json:"delta"`
	// Relative is Delta over Base; null when the base had no load.
	Relative *float64    `json:"relative"`
	Change   stat.Change `json:"change"`
}

// BreakdownChange is the thread time per second of wall time by category
// (verdict's cpu.* and wait.*), most changed first.
type BreakdownChange struct {
	BaseSource string           `json:"base_source"`
	HeadSource string           `json:"head_source"`
	Categories []CategoryChange `json:"categories"`
}

// CategoryChange is one category's thread time per second.
type CategoryChange struct {
	Category string   `json:"category"`
	Base     float64  `json:"base"`
	Head     float64  `json:"head"`
	Delta    float64  `json:"delta"`
	Relative *float64 `json:"relative"`
}

// ProfileChange compares the profiles of one kind and source.
type ProfileChange struct {
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// SampleType is the value compared, as the profile names it.
	SampleType string `json:"sample_type"`
	// Unit is the unit of every cost: "seconds/s" (threads) for time,
	// "bytes/s" or "count/s" for rates; "bytes" or "count" for snapshots.
	Unit string `json:"unit"`
	// BaseTotal and HeadTotal are the whole profiles in Unit.
	BaseTotal float64 `json:"base_total"`
	HeadTotal float64 `json:"head_total"`
	// Functions are those that changed most, by their own cost; Changed
	// counts all those that changed at all.
	Functions []FunctionChange `json:"functions"`
	Changed   int              `json:"functions_changed"`
	// Note says why there are no functions, when there are none.
	Note string `json:"note,omitempty"`
}

// FunctionChange is one function's cost on each side, in its profile's unit.
type FunctionChange struct {
	Name    string        `json:"name"`
	Library bool          `json:"library,omitempty"`
	Base    profdiff.Cost `json:"base"`
	Head    profdiff.Cost `json:"head"`
	Delta   profdiff.Cost `json:"delta"`
}

// ResourceChange is one row of the USE tables.
type ResourceChange struct {
	Resource    string        `json:"resource"`
	Utilization *MetricChange `json:"utilization,omitempty"`
	Saturation  *MetricChange `json:"saturation,omitempty"`
	Errors      *MetricChange `json:"errors,omitempty"`
	// BaseStatus and HeadStatus are the verdicts' statuses, "" where the
	// side has no such row.
	BaseStatus string `json:"base_status"`
	HeadStatus string `json:"head_status"`
}

// MetricChange is one cell of a USE row; a side without it is null.
type MetricChange struct {
	Unit string   `json:"unit"`
	Base *float64 `json:"base"`
	Head *float64 `json:"head"`
}

// LatencyChange is one wait's percentiles; a side without it is null.
type LatencyChange struct {
	Name   string       `json:"name"`
	Signal string       `json:"signal"`
	Base   *Percentiles `json:"base"`
	Head   *Percentiles `json:"head"`
}

// Percentiles of a latency, in seconds (upper bounds: see verdict.Latency).
type Percentiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_seconds"`
	P95   float64 `json:"p95_seconds"`
	P99   float64 `json:"p99_seconds"`
}

// Marks of a priority against the base's list.
const (
	MarkNew    = "new"    // not in the base's list
	MarkGone   = "gone"   // in the base's list only
	MarkGrew   = "grew"   // its saving grew beyond the threshold
	MarkShrank = "shrank" // its saving fell beyond the threshold
	MarkSame   = "same"
)

// PriorityChange is one of the head's priorities (or a base's that is
// gone), matched with the base's by kind and name.
type PriorityChange struct {
	Mark string `json:"mark"`
	// Rank and BaseRank are the item's ranks in each list, 0 where it is
	// not in the list.
	Rank     int           `json:"rank"`
	BaseRank int           `json:"base_rank"`
	Class    verdict.Class `json:"class"`
	Kind     string        `json:"kind"`
	Name     string        `json:"name"`
	Remedy   string        `json:"remedy"`
	// Base and Head are the savings, in threads (see verdict.Priority).
	Base float64 `json:"base"`
	Head float64 `json:"head"`
}

// FindingChange is a verdict finding (a leak) of either side.
type FindingChange struct {
	Side   string `json:"side"` // "base", "head" or "both"
	Kind   string `json:"kind"`
	Signal string `json:"signal"`
	Text   string `json:"text"` // the head's text when both have it
}

// MissingChange is a signal either observation lacked.
type MissingChange struct {
	Side   string `json:"side"` // "base", "head" or "both"
	Signal string `json:"signal"`
	Reason string `json:"reason"`
	Cost   string `json:"cost,omitempty"`
}

// Compare judges both observations with opts.Verdict and compares them.
// It fails only on an observation that covers no time (ErrNoWindow); what
// cannot be compared (a profile kind on one side only, profiles of
// different sample types) is a warning in the Diff.
func Compare(base, head *observation.Observation, opts Options) (*Diff, error) {
	if opts.Verdict == (verdict.Thresholds{}) {
		opts.Verdict = verdict.DefaultThresholds()
	}
	if opts.MinLoadChange <= 0 {
		opts.MinLoadChange = opts.Verdict.MinLoad
	}
	if opts.FailOn == "" {
		opts.FailOn = stat.FailOnRegression
	}
	if opts.Top <= 0 {
		opts.Top = 10
	}
	if opts.BaseName == "" {
		opts.BaseName = "base"
	}
	if opts.HeadName == "" {
		opts.HeadName = "head"
	}
	bw, hw := base.WindowSeconds(), head.WindowSeconds()
	if bw <= 0 {
		return nil, fmt.Errorf("%s: %w", opts.BaseName, ErrNoWindow)
	}
	if hw <= 0 {
		return nil, fmt.Errorf("%s: %w", opts.HeadName, ErrNoWindow)
	}
	bv, hv := verdict.Judge(base, opts.Verdict), verdict.Judge(head, opts.Verdict)
	d := &Diff{
		Schema:       Schema,
		Base:         side(opts.BaseName, base, bv),
		Head:         side(opts.HeadName, head, hv),
		Policy:       PolicyInfo{opts.Threshold, opts.MinLoadChange, opts.FailOn},
		Regressions:  []string{},
		Improvements: []string{},
		Warnings:     []string{},
		BaseVerdict:  bv,
		HeadVerdict:  hv,
	}
	d.Warnings = append(d.Warnings, sideWarnings(base, head, bv, hv)...)
	d.compareClass(bv, hv)
	d.compareLoad(bv, hv, opts)
	d.Breakdown = breakdownChange(bv, hv, bw, hw)
	profiles, warnings := compareProfiles(base, head, bw, hw, opts.Top)
	d.Profiles = profiles
	d.Warnings = append(d.Warnings, warnings...)
	d.Resources = resourceChanges(bv.USE, hv.USE)
	d.Latency = latencyChanges(bv.Latency, hv.Latency)
	d.Priorities = priorityChanges(bv.Priorities, hv.Priorities, opts)
	d.Findings = findingChanges(bv.Findings, hv.Findings)
	d.Missing = missingChanges(bv.Missing, hv.Missing)
	d.Failed = d.decide(opts.FailOn)
	return d, nil
}

// Regressed reports whether the rule found a regression.
func (d *Diff) Regressed() bool { return len(d.Regressions) > 0 }

// Changed reports whether the rule found any change, either way.
func (d *Diff) Changed() bool { return len(d.Regressions)+len(d.Improvements) > 0 }

func (d *Diff) decide(p stat.Policy) bool {
	return p.Fails(len(d.Regressions), len(d.Improvements))
}

func side(name string, o *observation.Observation, v *verdict.Verdict) Side {
	return Side{Name: name, Target: o.Meta.Target, Host: o.Meta.Host, CPUs: o.Meta.CPUs,
		Start: o.Meta.Start, Duration: o.Meta.Duration, Summary: v.Summary}
}

// sideWarnings says what makes the two observations less comparable than
// two windows of one target on one machine.
func sideWarnings(base, head *observation.Observation, bv, hv *verdict.Verdict) []string {
	var out []string
	bt, ht := base.Meta.Target, head.Meta.Target
	if bt.Kind != ht.Kind || bt.URL != ht.URL || bt.App != ht.App || bt.Service != ht.Service || !sameCommand(bt.Command, ht.Command) {
		out = append(out, "the observations watched different targets: the comparison is of two workloads, not two versions of one")
	}
	if base.Meta.CPUs != head.Meta.CPUs && base.Meta.CPUs > 0 && head.Meta.CPUs > 0 {
		out = append(out, fmt.Sprintf("the hosts have different CPU counts (%d and %d): loads and utilizations compare only roughly", base.Meta.CPUs, head.Meta.CPUs))
	}
	if bs, hs := bv.Breakdown.Source, hv.Breakdown.Source; bs != hs {
		out = append(out, fmt.Sprintf("the breakdowns come from different sources (%s and %s): loads are measured differently", orNone(bs), orNone(hs)))
	}
	return out
}

// sameCommand compares commands by their programs and arguments, not the
// directory each program ran from (a temporary build directory).
func sameCommand(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if i == 0 {
			x, y = x[strings.LastIndexByte(x, '/')+1:], y[strings.LastIndexByte(y, '/')+1:]
		}
		if x != y {
			return false
		}
	}
	return true
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (d *Diff) compareClass(bv, hv *verdict.Verdict) {
	c := ClassChange{
		Base: classOf(bv), Head: classOf(hv),
		BaseConfidence: bv.Confidence, HeadConfidence: hv.Confidence,
		BaseSecondary: bv.Secondary, HeadSecondary: hv.Secondary,
	}
	switch {
	case c.Base == c.Head:
	case c.Head != verdict.ClassNone:
		c.Change = stat.Regression
		if c.Base == verdict.ClassNone {
			d.Regressions = append(d.Regressions, fmt.Sprintf("the head is bound by %s; the base was bound by nothing", c.Head))
		} else {
			d.Regressions = append(d.Regressions, fmt.Sprintf("the head is bound by %s; the base was bound by %s", c.Head, c.Base))
		}
	default:
		c.Change = stat.Improvement
		d.Improvements = append(d.Improvements, fmt.Sprintf("the head is bound by nothing; the base was bound by %s", c.Base))
	}
	d.Class = c
}

func classOf(v *verdict.Verdict) verdict.Class {
	if v.Class == "" {
		return verdict.ClassNone
	}
	return v.Class
}

// minShown is the least load or time per second listed: below it both
// sides round to 0.00.
const minShown = 0.005

func (d *Diff) compareLoad(bv, hv *verdict.Verdict, opts Options) {
	d.Load = []LoadChange{}
	for _, c := range verdict.Classes {
		b, h := bv.Load[c], hv.Load[c]
		if b < minShown && h < minShown {
			continue
		}
		l := LoadChange{Class: c, Base: b, Head: h, Delta: h - b, Relative: relative(b, h)}
		beyond := math.Abs(l.Delta) >= opts.MinLoadChange && math.Abs(l.Delta) > opts.Threshold*b
		switch {
		case beyond && l.Delta > 0:
			l.Change = stat.Regression
			d.Regressions = append(d.Regressions, fmt.Sprintf("%s load grew %.2f → %.2f threads (%s)", c, b, h, changeText(l.Base, l.Delta, l.Relative)))
		case beyond:
			l.Change = stat.Improvement
			d.Improvements = append(d.Improvements, fmt.Sprintf("%s load fell %.2f → %.2f threads (%s)", c, b, h, changeText(l.Base, l.Delta, l.Relative)))
		}
		d.Load = append(d.Load, l)
	}
}

// relative is the change from b to h over b, nil when b is 0.
func relative(b, h float64) *float64 {
	if b == 0 {
		return nil
	}
	r := (h - b) / b
	return &r
}

// changeText is a change with its relative size: "+0.81, +81%", or
// "+0.98, from 0.00" when the base rounds to nothing (where a relative
// change of thousands of percent would say nothing).
func changeText(base, delta float64, rel *float64) string {
	if math.Abs(delta) < minShown {
		return "0"
	}
	s := fmt.Sprintf("%+.2f", delta)
	if rel == nil || base < minShown {
		return s + ", from 0.00"
	}
	return s + ", " + signedPct(*rel)
}

func breakdownChange(bv, hv *verdict.Verdict, bw, hw float64) BreakdownChange {
	out := BreakdownChange{BaseSource: bv.Breakdown.Source, HeadSource: hv.Breakdown.Source, Categories: []CategoryChange{}}
	seen := map[string]bool{}
	for _, b := range []verdict.Breakdown{bv.Breakdown, hv.Breakdown} {
		for c := range b.Seconds {
			if seen[c] {
				continue
			}
			seen[c] = true
			bs, hs := bv.Breakdown.Seconds[c]/bw, hv.Breakdown.Seconds[c]/hw
			if bs < minShown && hs < minShown {
				continue
			}
			out.Categories = append(out.Categories, CategoryChange{Category: c, Base: bs, Head: hs, Delta: hs - bs, Relative: relative(bs, hs)})
		}
	}
	sort.Slice(out.Categories, func(i, j int) bool {
		a, b := out.Categories[i], out.Categories[j]
		if da, db := math.Abs(a.Delta), math.Abs(b.Delta); da != db {
			return da > db
		}
		return a.Category < b.Category
	})
	return out
}

// resourceChanges pairs the USE rows by resource, in the head's order then
// the base's rows the head lacks.
func resourceChanges(base, head []verdict.Resource) []ResourceChange {
	out := []ResourceChange{}
	byName := map[string]*verdict.Resource{}
	for i := range base {
		byName[base[i].Resource] = &base[i]
	}
	cell := func(b, h *verdict.Metric) *MetricChange {
		if b == nil && h == nil {
			return nil
		}
		m := &MetricChange{}
		if b != nil {
			m.Unit, m.Base = b.Unit, &b.Value
		}
		if h != nil {
			m.Unit, m.Head = h.Unit, &h.Value
		}
		return m
	}
	add := func(b, h *verdict.Resource) {
		var r ResourceChange
		var bu, bs, be, hu, hs, he *verdict.Metric
		if b != nil {
			r.Resource, r.BaseStatus = b.Resource, b.Status
			bu, bs, be = b.Utilization, b.Saturation, b.Errors
		}
		if h != nil {
			r.Resource, r.HeadStatus = h.Resource, h.Status
			hu, hs, he = h.Utilization, h.Saturation, h.Errors
		}
		r.Utilization, r.Saturation, r.Errors = cell(bu, hu), cell(bs, hs), cell(be, he)
		out = append(out, r)
	}
	seen := map[string]bool{}
	for i := range head {
		h := &head[i]
		seen[h.Resource] = true
		add(byName[h.Resource], h)
	}
	for i := range base {
		if !seen[base[i].Resource] {
			add(&base[i], nil)
		}
	}
	return out
}

// latencyChanges pairs the latency rows by name, in the head's order then
// the base's rows the head lacks.
func latencyChanges(base, head []verdict.Latency) []LatencyChange {
	out := []LatencyChange{}
	pct := func(l *verdict.Latency) *Percentiles {
		if l == nil {
			return nil
		}
		return &Percentiles{Count: l.Count, P50: l.P50, P95: l.P95, P99: l.P99}
	}
	byName := map[string]*verdict.Latency{}
	for i := range base {
		byName[base[i].Name] = &base[i]
	}
	seen := map[string]bool{}
	for i := range head {
		h := &head[i]
		seen[h.Name] = true
		out = append(out, LatencyChange{Name: h.Name, Signal: h.Signal, Base: pct(byName[h.Name]), Head: pct(h)})
	}
	for i := range base {
		if b := &base[i]; !seen[b.Name] {
			out = append(out, LatencyChange{Name: b.Name, Signal: b.Signal, Base: pct(b)})
		}
	}
	return out
}

// priorityChanges marks the head's top priorities against the base's, then
// lists the base's that are gone from the head's list.
func priorityChanges(base, head []verdict.Priority, opts Options) []PriorityChange {
	out := []PriorityChange{}
	key := func(p verdict.Priority) string { return p.Kind + "\x00" + p.Name }
	byKey := map[string]verdict.Priority{}
	for _, p := range base {
		byKey[key(p)] = p
	}
	seen := map[string]bool{}
	for i, p := range head {
		if i == opts.Top {
			break
		}
		seen[key(p)] = true
		c := PriorityChange{Mark: MarkNew, Rank: p.Rank, Class: p.Class, Kind: p.Kind, Name: p.Name, Remedy: p.Remedy, Head: p.Saving}
		if b, ok := byKey[key(p)]; ok {
			c.BaseRank, c.Base = b.Rank, b.Saving
			delta := c.Head - c.Base
			beyond := math.Abs(delta) >= minSavingChange && math.Abs(delta) > opts.Threshold*c.Base
			switch {
			case beyond && delta > 0:
				c.Mark = MarkGrew
			case beyond:
				c.Mark = MarkShrank
			default:
				c.Mark = MarkSame
			}
		}
		out = append(out, c)
	}
	for i, p := range base {
		if i == opts.Top {
			break
		}
		if !seen[key(p)] {
			out = append(out, PriorityChange{Mark: MarkGone, BaseRank: p.Rank, Class: p.Class, Kind: p.Kind, Name: p.Name, Remedy: p.Remedy, Base: p.Saving})
		}
	}
	return out
}

// findingChanges lists each side's findings, matched by kind and signal.
func findingChanges(base, head []verdict.Finding) []FindingChange {
	out := []FindingChange{}
	inBase := map[string]bool{}
	for _, f := range base {
		inBase[f.Kind+"\x00"+f.Signal] = true
	}
	inHead := map[string]bool{}
	for _, f := range head {
		k := f.Kind + "\x00" + f.Signal
		inHead[k] = true
		s := "head"
		if inBase[k] {
			s = "both"
		}
		out = append(out, FindingChange{Side: s, Kind: f.Kind, Signal: f.Signal, Text: f.Text})
	}
	for _, f := range base {
		if !inHead[f.Kind+"\x00"+f.Signal] {
			out = append(out, FindingChange{Side: "base", Kind: f.Kind, Signal: f.Signal, Text: f.Text})
		}
	}
	return out
}

// missingChanges lists what either side lacked, matched by signal (the
// head's reason when both lack it: counts of lost events differ between
// windows): both sides' gaps cost every comparison built on them.
func missingChanges(base, head []verdict.Gap) []MissingChange {
	out := []MissingChange{}
	key := func(g verdict.Gap) string { return g.Signal }
	inBase := map[string]bool{}
	for _, g := range base {
		inBase[key(g)] = true
	}
	inHead := map[string]bool{}
	for _, g := range head {
		inHead[key(g)] = true
		s := "head"
		if inBase[key(g)] {
			s = "both"
		}
		out = append(out, MissingChange{Side: s, Signal: g.Signal, Reason: g.Reason, Cost: g.Cost})
	}
	for _, g := range base {
		if !inHead[key(g)] {
			out = append(out, MissingChange{Side: "base", Signal: g.Signal, Reason: g.Reason, Cost: g.Cost})
		}
	}
	return out
}

// Package observation is perfhound's common currency between collecting
// and judging: what one window of watching one target produced. Its
// profiles (pprof), metric series, latency histograms, metadata, and the
// list of what could not be collected and why.
//
// The collectors in agent/ and bpf/ build observations; the analyzer reads
// them and does no I/O of its own, so every verdict can be reproduced from
// an observation saved with Save and read back with Load.
package observation

import (
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// Observation is one window of one target.
type Observation struct {
	Meta       Meta
	Profiles   []Profile
	Series     []Series
	Histograms []Histogram
	// Missing lists every signal that was wanted and not collected, with
	// the reason: nothing is silently absent.
	Missing []Missing
}

// Meta says what was watched, where and when, and by what.
type Meta struct {
	Target   Target        `json:"target"`
	Host     string        `json:"host"`
	Kernel   string        `json:"kernel,omitempty"`
	CPUs     int           `json:"cpus,omitempty"`         // online CPUs
	Memory   uint64        `json:"memory_bytes,omitempty"` // total RAM
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	// Collectors names each collector that contributed, with its version
	// (e.g. "bpf": "perfhound 0.1", "gopsutil": "v4.26.10").
	Collectors map[string]string `json:"collectors,omitempty"`
	// WatcherPID is the process that watched (perfhound itself), as the
	// watched host's /proc numbers it; 0 in observations made before it
	// was recorded. Its threads are never part of a host's target: the
	// analyzer leaves them out of the host's processes, and its CPU time,
	// the watcher.cpu series, out of the host's CPU.
	WatcherPID int `json:"watcher_pid,omitempty"`
}

// Target kinds.
const (
	TargetHost    = "host"    // the whole machine
	TargetProcess = "process" // one PID and its threads
	TargetCommand = "command" // a command run and watched to its end
	TargetURL     = "url"     // a Go service's net/http/pprof endpoint
	TargetApp     = "app"     // an application pushing profiles (Pyroscope SDK)
	TargetService = "service" // a service's processes on one host, split out of a host's window
)

// Target identifies what was watched.
type Target struct {
	Kind    string   `json:"kind"`
	PID     int      `json:"pid,omitempty"`
	Command []string `json:"command,omitempty"`
	URL     string   `json:"url,omitempty"`
	App     string   `json:"app,omitempty"`
	// Service names a service target; its version, when known, is
	// Labels["version"].
	Service string            `json:"service,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Profile is one pprof profile and where it came from.
type Profile struct {
	Kind ProfileKind `json:"kind"`
	// Source is the collector that made it: eBPF, a Go service's pprof
	// endpoint, or an SDK's push (ingest).
	Source  ProfileSource     `json:"source"`
	Labels  map[string]string `json:"labels,omitempty"`
	Profile *profile.Profile  `json:"-"`
}

// Series is one metric over the window, sampled at an interval.
// Counters are stored as rates over each interval, so every point reads on
// its own. Names are in the catalogue (catalogue.go, docs/observation.md).
type Series struct {
	Name   SeriesName        `json:"name"`
	Unit   string            `json:"unit"`
	Labels map[string]string `json:"labels,omitempty"`
	Points []Point           `json:"points"`
}

// Point is one sample of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// Histogram is a log2 latency or size distribution (eBPF collectors):
// Slots[0] counts values 0 and 1, Slots[i] values in [2^i, 2^(i+1)).
type Histogram struct {
	Name   HistogramName     `json:"name"` // in the catalogue (catalogue.go)
	Unit   string            `json:"unit"` // "nanoseconds", "bytes"
	Labels map[string]string `json:"labels,omitempty"`
	Slots  []uint64          `json:"slots"`
	Count  uint64            `json:"count"`
	Sum    uint64            `json:"sum"`
}

// Missing is a signal that was not collected.
type Missing struct {
	Signal Signal `json:"signal"` // e.g. "ebpf.offcpu", "host.psi", "pprof.mutex" (catalogue.go)
	Reason string `json:"reason"`
}

// WindowSeconds is the observation's length in seconds: Meta.Duration
// when it is positive, else the span of its series' points, from the
// earliest to the latest (an observation loaded without its duration, or
// assembled from series); 0 when neither says. Every analysis that turns
// totals into rates over the window (the verdict, compare of two
// observations) divides by this.
//
// Point times are compared as Unix nanoseconds, and 0 is the unset mark
// of the scan, so a point at the Unix epoch itself or before it (a saved
// [0, v] point, which no collector writes) is not a reliable bound: the
// span is meant for real times, and is kept as the verdict has always
// read it.
func (o *Observation) WindowSeconds() float64 {
	if d := o.Meta.Duration.Seconds(); d > 0 {
		return d
	}
	var first, last int64
	for _, s := range o.Series {
		for _, p := range s.Points {
			t := p.Time.UnixNano()
			if first == 0 || t < first {
				first = t
			}
			if t > last {
				last = t
			}
		}
	}
	return float64(last-first) / 1e9
}

// eventsLost begins the reason of EventsLost's entries. The saved format
// has only a signal and a reason, so the reason's start is what marks
// the entry in saved observations: it never changes.
const eventsLost = "events lost"

// EventsLost is the missing entry of an eBPF window that lost events,
// listing the counters that counted them ("offcpu_full 3").
func EventsLost(counters []string) Missing {
	return Missing{Signal: SignalEBPF, Reason: eventsLost + " to full maps or unreadable stacks: " + strings.Join(counters, ", ")}
}

// LostEvents tells an entry EventsLost made: the eBPF profiles are still
// there, with a few stacks partial or events uncounted.
func (m Missing) LostEvents() bool {
	return m.Signal == SignalEBPF && strings.HasPrefix(m.Reason, eventsLost)
}

// SeriesNamed returns the series with the name whose labels include all of
// labels, in order.
func (o *Observation) SeriesNamed(name SeriesName, labels map[string]string) []Series {
	var out []Series
	for _, s := range o.Series {
		if s.Name == name && hasLabels(s.Labels, labels) {
			out = append(out, s)
		}
	}
	return out
}

// ProfilesOf returns the profiles of a kind, in order.
func (o *Observation) ProfilesOf(kind ProfileKind) []Profile {
	var out []Profile
	for _, p := range o.Profiles {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

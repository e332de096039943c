package ingest

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Receiver keeps what applications pushed until it is drained into
// observations, one per application per window. It is the Sink of a
// Handler. Memory is bounded: at most MaxApps applications and
// MaxProfiles profiles each; past that the oldest profiles are dropped
// and counted.
type Receiver struct {
	MaxApps     int // default 256
	MaxProfiles int // per application; default 1024

	mu      sync.Mutex
	apps    map[string]*appPushes
	dropped uint64
}

type appPushes struct {
	labels   map[string]string
	from     time.Time
	until    time.Time
	profiles []observation.Profile
	dropped  int
}

// Receive is a Handler Sink.
func (r *Receiver) Receive(p Push) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps == nil {
		r.apps = map[string]*appPushes{}
	}
	maxApps, maxProfiles := r.MaxApps, r.MaxProfiles
	if maxApps == 0 {
		maxApps = 256
	}
	if maxProfiles == 0 {
		maxProfiles = 1024
	}
	a := r.apps[p.App]
	if a == nil {
		if len(r.apps) >= maxApps {
			r.dropped++
			return errTooManyApps
		}
		a = &appPushes{labels: map[string]string{}}
		r.apps[p.App] = a
	}
	// Labels common to every push (the session id, the runtime) describe
	// the application; keep the first push's.
	if len(a.profiles) == 0 && a.dropped == 0 {
		for k, v := range p.Labels {
			a.labels[k] = v
		}
	}
	if a.from.IsZero() || (!p.From.IsZero() && p.From.Before(a.from)) {
		a.from = p.From
	}
	if p.Until.After(a.until) {
		a.until = p.Until
	}
	if len(a.profiles) >= maxProfiles {
		a.profiles = a.profiles[1:]
		a.dropped++
		r.dropped++
	}
	a.profiles = append(a.profiles, p.Profile)
	return nil
}

var errTooManyApps = &requestError{503, "too many applications pushing; try again after the next window"}

// Drain returns an observation per application of what arrived since the
// last Drain, in application order, and forgets it.
func (r *Receiver) Drain() []*observation.Observation {
	r.mu.Lock()
	apps := r.apps
	r.apps = nil
	r.mu.Unlock()
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*observation.Observation, 0, len(names))
	for _, n := range names {
		a := apps[n]
		o := &observation.Observation{
			Meta: observation.Meta{
				Target:     observation.Target{Kind: observation.TargetApp, App: n, Labels: a.labels},
				Start:      a.from,
				Duration:   a.until.Sub(a.from),
				Collectors: map[string]string{"ingest": "pyroscope protocol"},
			},
			Profiles: a.profiles,
		}
		if a.dropped > 0 {
			o.Missing = append(o.Missing, observation.Missing{
				Signal: "ingest",
				Reason: "dropped the oldest " + strconv.Itoa(a.dropped) + " pushed profiles to stay within the per-application cap",
			})
		}
		out = append(out, o)
	}
	return out
}

// Dropped is how many pushes were refused or dropped since start.
func (r *Receiver) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

package regress

import (
	"container/list"
	"slices"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Options configure a Detector. DefaultOptions are the agent's.
type Options struct {
	// Version configures the comparison of a new version with its
	// predecessor (version.go).
	Version VersionOptions
	// Trend configures drift, class and leak detection within a version
	// (trend.go).
	Trend TrendOptions
	// MaxServices bounds the services the detector keeps state for; the
	// least recently seen is forgotten past it.
	MaxServices int
}

// DefaultOptions are the agent's defaults.
func DefaultOptions() Options {
	return Options{Version: DefaultVersionOptions(), Trend: DefaultTrendOptions(), MaxServices: 500}
}

// Detector finds regressions in the windows it is fed. It is not safe for
// concurrent use.
type Detector struct {
	opts     Options
	services map[string]*list.Element // of *service, most recently seen in front
	lru      *list.List
	trends   *trends
}

// New returns a detector with no history. Zero fields of o.Version take
// their defaults, as does a MaxServices of 0.
func New(o Options) *Detector {
	o.Version = o.Version.withDefaults()
	if o.MaxServices <= 0 {
		o.MaxServices = DefaultOptions().MaxServices
	}
	return &Detector{opts: o, services: map[string]*list.Element{}, lru: list.New(), trends: newTrends(o.Trend)}
}

// Observe reads one window (a service's windows in time order; services
// interleaved) and returns what it changed.
func (d *Detector) Observe(w Window) []Event {
	var evs []Event
	if !w.Unversioned {
		evs = d.service(w.Service).observe(&w, &d.opts.Version)
	}
	return append(evs, d.trends.observe(w)...)
}

// Deploying names the services whose newest version replaced another
// less than within before now and is still being compared with it, on
// the eBPF collectors' samples (what a faster sampling rate gives more
// of), with a base of enough samples (MinSamples): where samples shorten
// the time to a finding most. now is the caller's clock (the end of the
// window just fed): a version that stopped sending windows grows old
// too. The agent samples faster while any service is deploying.
func (d *Detector) Deploying(now time.Time, within time.Duration) []string {
	var out []string
	for name, e := range d.services {
		s := e.Value.(*service)
		if len(s.tracks) == 0 {
			continue
		}
		tr := s.tracks[len(s.tracks)-1] // the newest run: start appends
		if tr.dep == nil || tr.dep.base == nil || tr.dep.base.n < d.opts.Version.MinSamples ||
			tr.source != string(observation.SourceEBPF) || now.Sub(tr.first) >= within {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Lookback is how much of the recent past a new detector must be fed
// (every service's windows that start in the last Lookback, in order)
// to find what this one would: the longer of the version comparison's
// reach (a head's last look, its warm-up, and its base's age and span)
// and the trends' (TrendOptions.Lookback: a version's warm-up block,
// reference, lag and persistence, and the leak rule's span).
func (d *Detector) Lookback() time.Duration {
	return max(d.opts.Version.lookback(), d.opts.Trend.Lookback())
}

// Restore tells a new detector the unresolved findings it raised before
// (the store's), before the replay: version findings so that a later
// version can resolve them, and replaying the windows that raised them
// does not raise them again; drift, class and leak findings so that they
// resolve when their version stops running, though the replay may not
// reach back to what raised them.
func (d *Detector) Restore(fs []Finding) {
	for _, f := range fs {
		if f.Resolved || f.Service == "" {
			continue
		}
		switch f.Kind {
		case KindVersion:
			d.service(f.Service).remember(f, &d.opts.Version)
		case KindDrift, KindClass, KindLeak:
			d.trends.restore(f)
		}
	}
}

// service is a service's state, made on first sight; past MaxServices the
// least recently seen service is forgotten, by this side and the trends.
func (d *Detector) service(name string) *service {
	if e, ok := d.services[name]; ok {
		d.lru.MoveToFront(e)
		return e.Value.(*service)
	}
	s := newService(name)
	d.services[name] = d.lru.PushFront(s)
	for d.lru.Len() > d.opts.MaxServices {
		old := d.lru.Remove(d.lru.Back()).(*service)
		delete(d.services, old.name)
		d.trends.forget(old.name)
	}
	return s
}

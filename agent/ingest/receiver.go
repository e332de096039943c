package ingest

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Receiver keeps what applications pushed until it is drained into
// observations, one per target per window. A target is an application
// name with its labels: replicas, or two runs of one program (the SDK
// labels each with its own session id), are different targets. Labels
// that name the library that made a profile (otel.scope.name and
// .version: the Go SDK pushes CPU profiles as one scope and heap profiles
// as another) stay on the profile and do not split the target. It is the
// Sink of a Handler.
//
// Memory is bounded: at most MaxTargets targets, MaxProfiles profiles
// each, and MaxBytes of profiles (as received) in all. Past a bound the
// oldest profiles of the target are dropped and counted, or a new target
// is refused (503, and the SDK retries after the next drain).
type Receiver struct {
	MaxTargets  int   // default 256
	MaxProfiles int   // per target; default 1024
	MaxBytes    int64 // all targets; default 256 MiB

	mu      sync.Mutex
	targets map[string]*targetPushes
	bytes   int64
	dropped uint64
}

type targetPushes struct {
	app      string
	labels   map[string]string
	from     time.Time
	until    time.Time
	profiles []observation.Profile
	sizes    []int
	dropped  int
}

var (
	errTooManyTargets = &requestError{503, "too many applications pushing; try again after the next window"}
	errFull           = &requestError{503, "receiver full; try again after the next window"}
)

func (r *Receiver) limits() (targets, profiles int, bytes int64) {
	targets, profiles, bytes = r.MaxTargets, r.MaxProfiles, r.MaxBytes
	if targets == 0 {
		targets = 256
	}
	if profiles == 0 {
		profiles = 1024
	}
	if bytes == 0 {
		bytes = 256 << 20
	}
	return targets, profiles, bytes
}

// targetKey identifies a target: the name and its labels, sorted, each
// string preceded by its length, so that no name or label can be read as
// another's whatever bytes it holds.
func targetKey(app string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	add := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	add(app)
	for _, k := range keys {
		add(k)
		add(labels[k])
	}
	return string(b)
}

// targetLabels are a push's labels without those of the library that
// made the profile.
func targetLabels(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if !strings.HasPrefix(k, "otel.scope.") {
			out[k] = v
		}
	}
	return out
}

// Receive is a Handler Sink.
func (r *Receiver) Receive(p Push) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets == nil {
		r.targets = map[string]*targetPushes{}
	}
	maxTargets, maxProfiles, maxBytes := r.limits()
	labels := targetLabels(p.Labels)
	key := targetKey(p.App, labels)
	t := r.targets[key]
	if t == nil {
		if len(r.targets) >= maxTargets {
			r.dropped++
			return errTooManyTargets
		}
		t = &targetPushes{app: p.App, labels: labels}
		r.targets[key] = t
	}
	// Make room: this target's oldest first. A push bigger than the
	// whole budget, or that other targets' profiles leave no room for,
	// is refused.
	for len(t.profiles) > 0 && (len(t.profiles) >= maxProfiles || r.bytes+int64(p.Bytes) > maxBytes) {
		r.bytes -= int64(t.sizes[0])
		t.profiles, t.sizes = t.profiles[1:], t.sizes[1:]
		t.dropped++
		r.dropped++
	}
	if r.bytes+int64(p.Bytes) > maxBytes {
		r.dropped++
		if len(t.profiles) == 0 && t.dropped == 0 {
			delete(r.targets, key)
		}
		return errFull
	}
	if t.from.IsZero() || (!p.From.IsZero() && p.From.Before(t.from)) {
		t.from = p.From
	}
	if p.Until.After(t.until) {
		t.until = p.Until
	}
	t.profiles = append(t.profiles, p.Profile)
	t.sizes = append(t.sizes, p.Bytes)
	r.bytes += int64(p.Bytes)
	return nil
}

// Drain returns an observation per target of what arrived since the last
// Drain, ordered by application and labels, and forgets it.
func (r *Receiver) Drain() []*observation.Observation {
	r.mu.Lock()
	targets := r.targets
	r.targets, r.bytes = nil, 0
	r.mu.Unlock()
	keys := make([]string, 0, len(targets))
	for k := range targets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*observation.Observation, 0, len(keys))
	for _, k := range keys {
		t := targets[k]
		o := &observation.Observation{
			Meta: observation.Meta{
				Target:     observation.Target{Kind: observation.TargetApp, App: t.app, Labels: t.labels},
				Start:      t.from,
				Duration:   t.until.Sub(t.from),
				Collectors: map[string]string{"ingest": "pyroscope protocol"},
			},
			Profiles: t.profiles,
		}
		if t.dropped > 0 {
			o.Missing = append(o.Missing, observation.Missing{
				Signal: "ingest",
				Reason: "dropped the oldest " + strconv.Itoa(t.dropped) + " pushed profiles to stay within the receiver's bounds",
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

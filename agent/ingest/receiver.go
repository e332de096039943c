package ingest

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// Receiver keeps what applications pushed until it is drained into
// observations, one per target per window. A target is an application
// name with its labels: replicas, or two runs of one program (the SDK
// labels each with its own session id), are different targets. Labels
// that name the library that made a profile (otel.scope.name and
// .version: the Go SDK pushes CPU profiles as one scope and heap profiles
// as another) stay on the profile and do not split the target. Serve it
// with Receiver.Handler.
//
// Memory is bounded by one budget (MaxMemory) for everything it holds and
// every request its handler has in flight, counted in what the parsed
// profiles cost (profdecode.Cost.Memory), not in bytes received. The
// bounds and what happens past them, as Pyroscope's distributor and
// ingesters do per tenant and series:
//   - a target keeps at most MaxProfiles profiles: past it, its oldest
//     is dropped;
//   - when the budget is full, the target holding the most memory loses
//     its oldest profiles, as many as the push needs, unless that would
//     leave it holding less than the pusher: then the pusher loses its
//     own oldest, and a push that even that cannot make room for is
//     refused (503) with nothing dropped. Dropped profiles are counted in
//     the observation's Missing list;
//   - at most MaxTargets targets are active (pushed in this window or the
//     last), and a client other than this host's loopback at most
//     MaxTargetsPerClient: a new target past either is refused with 429,
//     as Pyroscope refuses a new series past its limit, while every
//     active target keeps pushing. A target idle for a whole window is
//     forgotten, which frees its place.
type Receiver struct {
	MaxTargets          int   // default 256
	MaxTargetsPerClient int   // default a quarter of MaxTargets
	MaxProfiles         int   // per target; default 1024
	MaxMemory           int64 // default DefaultMemory (256 MiB)

	once    sync.Once
	budget  *profdecode.Budget
	mu      sync.Mutex
	targets map[string]*target
	window  int    // drains so far
	seq     uint64 // pushes accepted so far, to tell which came last
}

type target struct {
	app, client string
	labels      map[string]string
	from, until time.Time
	profiles    []observation.Profile
	costs       []int64
	held        int64 // sum of costs
	dropped     int   // profiles dropped this window
	window      int   // of the last push
	seq         uint64
}

var (
	errTooManyTargets = &StatusError{http.StatusTooManyRequests, "too many applications pushing; every one already pushing keeps its place, a new one gets a place when one stops"}
	errClientTargets  = &StatusError{http.StatusTooManyRequests, "this address pushes for too many applications already"}
)

func (r *Receiver) limits() (targets, perClient, profiles int) {
	targets, perClient, profiles = r.MaxTargets, r.MaxTargetsPerClient, r.MaxProfiles
	if targets <= 0 {
		targets = 256
	}
	if perClient <= 0 {
		perClient = max(1, targets/4)
	}
	if profiles <= 0 {
		profiles = 1024
	}
	return targets, perClient, profiles
}

// Budget is the receiver's memory budget, MaxMemory bytes, fixed at the
// first call.
func (r *Receiver) Budget() *profdecode.Budget {
	r.once.Do(func() {
		m := r.MaxMemory
		if m <= 0 {
			m = DefaultMemory
		}
		r.budget = profdecode.NewBudget(m)
	})
	return r.budget
}

// Handler returns the /ingest handler that feeds r: its pushes and its
// requests in flight are charged to r's budget, and r makes room in it.
// opts' Budget, MakeRoom and Sink are r's.
func (r *Receiver) Handler(opts Options) *Handler {
	opts.Budget, opts.MakeRoom, opts.Sink = r.Budget(), r.makeRoom, r.Receive
	return NewHandler(opts)
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

// Receive is the Sink of r's Handler. The push's Cost.Memory() must be
// charged to r's Budget: Receive keeps the charge when it accepts the
// push, and refunds it when it drops the profile or Drain hands it on.
// When it refuses the push, the charge stays with the caller.
func (r *Receiver) Receive(p Push) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets == nil {
		r.targets = map[string]*target{}
	}
	_, _, maxProfiles := r.limits()
	labels := targetLabels(p.Labels)
	key := targetKey(p.App, labels)
	t := r.targets[key]
	if t == nil {
		if err := r.admit(p.Client); err != nil {
			return err
		}
		t = &target{app: p.App, client: p.Client, labels: labels}
		r.targets[key] = t
	}
	if len(t.profiles) >= maxProfiles {
		r.dropOldest(t, true)
	}
	if t.from.IsZero() || (!p.From.IsZero() && p.From.Before(t.from)) {
		t.from = p.From
	}
	if p.Until.After(t.until) {
		t.until = p.Until
	}
	cost := p.Cost.Memory()
	t.profiles = append(t.profiles, p.Profile)
	t.costs = append(t.costs, cost)
	t.held += cost
	r.seq++
	t.window, t.seq = r.window, r.seq
	return nil
}

// admit checks there is a place for a new target of client. Places are
// freed only by Drain, of targets idle for a whole window, so that
// newcomers pushing first after a drain cannot displace an application
// that pushes every window. Called with mu held.
func (r *Receiver) admit(client string) error {
	maxTargets, perClient, _ := r.limits()
	if !isLoopback(client) {
		n := 0
		for _, t := range r.targets {
			if t.client == client {
				n++
			}
		}
		if n >= perClient {
			return errClientTargets
		}
	}
	if len(r.targets) >= maxTargets {
		return errTooManyTargets
	}
	return nil
}

// dropOldest drops t's oldest profile, and refunds its cost unless the
// caller hands the charge on. Called with mu held.
func (r *Receiver) dropOldest(t *target, refund bool) {
	if refund {
		r.budget.Refund(t.costs[0])
	}
	t.held -= t.costs[0]
	t.profiles[0] = observation.Profile{} // let the collector have it
	t.profiles, t.costs = t.profiles[1:], t.costs[1:]
	t.dropped++
}

// makeRoom is the handler's MakeRoom: it charges need bytes to the
// budget for p's profile, dropping profiles to make the room, fairly:
// from whichever target holds the most, as long as it holds more than
// p's target will, else from p's own target. It drops nothing unless
// that makes the room, and the charges of what it drops pass to p in
// the same step, so no other request can take the room in between: a
// push that cannot fit costs no one a profile.
func (r *Receiver) makeRoom(p *Push, need int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.Budget()
	// The name may still carry an old-protocol suffix; then the pusher
	// is taken as new, which only makes it more modest.
	own := r.targets[targetKey(p.App, targetLabels(p.Labels))]
	plan, freed := r.plan(own, need, need-(b.Max()-b.Used()))
	if plan == nil {
		return false
	}
	if d := need - freed; d > 0 {
		if b.Charge(d) != nil {
			return false // others took the room meanwhile
		}
	} else {
		b.Refund(-d)
	}
	for _, t := range plan {
		r.dropOldest(t, false)
	}
	return true
}

// plan chooses the profiles to drop, oldest first, to free short bytes
// for a push of need bytes to own (nil: a new target), and returns
// their targets, one entry a profile, and what they free; nil when it
// cannot. Called with mu held.
func (r *Receiver) plan(own *target, need, short int64) ([]*target, int64) {
	if short <= 0 {
		return []*target{}, 0
	}
	ownHeld := int64(0)
	if own != nil {
		ownHeld = own.held
	}
	held := map[*target]int64{}
	next := map[*target]int{} // profiles planned away
	for _, t := range r.targets {
		held[t] = t.held
	}
	var plan []*target
	freed := int64(0)
	for freed < short {
		// The richest other target, if it holds more than the pusher
		// will; else the pusher itself.
		var victim *target
		for t, h := range held {
			if t != own && next[t] < len(t.profiles) && h > ownHeld+need &&
				(victim == nil || h > held[victim] || h == held[victim] && t.seq < victim.seq) {
				victim = t
			}
		}
		if victim == nil && own != nil && next[own] < len(own.profiles) {
			victim = own
		}
		if victim == nil {
			return nil, 0
		}
		c := victim.costs[next[victim]]
		next[victim]++
		held[victim] -= c
		if victim == own {
			ownHeld -= c
		}
		freed += c
		plan = append(plan, victim)
	}
	return plan, freed
}

// Drain returns an observation per target of what arrived since the last
// Drain, ordered by application and labels, and forgets it: the profiles
// leave the budget with the observations. Targets that pushed in this
// window stay active into the next.
func (r *Receiver) Drain() []*observation.Observation {
	r.mu.Lock()
	var drained []*target
	var freed int64
	for k, t := range r.targets {
		if len(t.profiles) > 0 || t.dropped > 0 {
			drained = append(drained, &target{
				app: t.app, labels: t.labels, from: t.from, until: t.until,
				profiles: t.profiles, dropped: t.dropped,
			})
			freed += t.held
			t.profiles, t.costs, t.held, t.dropped = nil, nil, 0, 0
			t.from, t.until = time.Time{}, time.Time{}
		}
		if t.window < r.window {
			delete(r.targets, k) // idle for a whole window
		}
	}
	r.window++
	if r.budget != nil {
		r.budget.Refund(freed)
	}
	r.mu.Unlock()

	sort.Slice(drained, func(i, j int) bool {
		return targetKey(drained[i].app, drained[i].labels) < targetKey(drained[j].app, drained[j].labels)
	})
	out := make([]*observation.Observation, 0, len(drained))
	for _, t := range drained {
		o := &observation.Observation{
			Meta: observation.Meta{
				Target:     observation.Target{Kind: observation.TargetApp, App: t.app, Labels: t.labels},
				Start:      t.from,
				Duration:   t.until.Sub(t.from),
				Collectors: map[string]string{string(observation.SourceIngest): "pyroscope protocol"},
			},
			Profiles: t.profiles,
		}
		if t.dropped > 0 {
			o.Missing = append(o.Missing, observation.Missing{
				Signal: observation.SignalIngest,
				Reason: fmt.Sprintf("dropped the oldest %d pushed profiles to stay within the receiver's bounds (%d profiles a target, %d MiB in all)",
					t.dropped, r.maxProfiles(), r.Budget().Max()>>20),
			})
		}
		out = append(out, o)
	}
	return out
}

func (r *Receiver) maxProfiles() int { _, _, p := r.limits(); return p }

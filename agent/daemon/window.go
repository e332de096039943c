package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// window gathers one window from every source, judges and stores it.
func (d *Daemon) window(ctx context.Context) error {
	live, ids, scrapers := d.snapshot()

	// The Go services' windows run beside the host's, over the same span.
	goObs := make([]*observation.Observation, len(scrapers))
	var wg sync.WaitGroup
	for i, g := range scrapers {
		wg.Go(func() { goObs[i] = g.window(ctx, live.Window, ids) })
	}
	host, werr := d.watcher.Window(ctx, live.Window)
	wg.Wait()
	if host == nil {
		d.metrics.windowFailed("watch")
		return werr
	}

	began := time.Now()
	var pushes []*observation.Observation
	if d.opts.Ingest != nil {
		pushes = d.opts.Ingest.Drain()
	}
	b := d.batch(host, goObs, pushes, ids, live)
	d.metrics.observed(host, b)
	if err := d.store.Put(b); err != nil {
		var full *store.DiskFullError
		if !errors.As(err, &full) || !full.Stored {
			d.metrics.windowFailed("store")
			return fmt.Errorf("storing the window from %s: %w", host.Meta.Start.Format(time.RFC3339), err)
		}
		// Stored, at the cost of the oldest data: say so, go on.
		d.metrics.errors.WithLabelValues("disk_full").Inc()
		d.log.Warn("disk full: the oldest data was dropped to store the window", "dropped_hours", full.Dropped)
	}
	d.metrics.stored(b, time.Since(began))
	d.lastStored.Store(time.Now().UnixNano())
	d.notifySinks()
	d.detect(b, live)
	d.boost(host.Meta.Start, host.Meta.Start.Add(host.Meta.Duration), live)
	d.metrics.samplingHz.Set(float64(d.watcher.Frequency()))
	if err := d.store.Maintain(ctx); err != nil {
		d.metrics.errors.WithLabelValues("maintain").Inc()
		d.log.Warn("store maintenance", "err", err)
	}
	if !d.collecting.Swap(true) {
		d.log.Info("collecting", "window", live.Window, "services", len(b.Records))
		// What cannot be collected here (no eBPF privileges, no PSI, no
		// delay accounting), once: every window's record lists it too.
		for _, m := range host.Missing {
			if !m.LostEvents() {
				d.log.Warn("not collected", "signal", m.Signal, "reason", m.Reason)
			}
		}
		d.ready.Do(func() {
			if d.opts.Ready != nil {
				d.opts.Ready()
			}
		})
	}
	return werr
}

// gone is the identity of a process that exited before it could be
// resolved: its command name, as the window saw it, and no version.
func gone(comm string) identity.Identity {
	service := cmp.Or(comm, identity.UnknownService)
	return identity.Identity{Service: service, Version: identity.UnknownVersion,
		Labels: map[string]string{identity.LabelService: service, identity.LabelVersion: identity.UnknownVersion}}
}

// group is the processes of one service and version in a window.
type group struct {
	id   identity.Identity
	pids []int
}

// batch is the window's records: one per service and version that did
// something, and the host's own.
func (d *Daemon) batch(host *observation.Observation, goObs, pushes []*observation.Observation, ids *identity.Resolver, live Live) store.Batch {
	split := procrank.NewHost(host)
	groups := map[string]*group{}
	pids := split.PIDs()
	for _, pid := range pids {
		id, err := ids.Resolve(pid)
		if err != nil {
			// Gone before it could be looked at: named by what the
			// window saw of it.
			id = gone(split.Comm(pid))
		}
		k := id.Service + "\x00" + id.Version
		g := groups[k]
		if g == nil {
			g = &group{id: id}
			groups[k] = g
		}
		g.pids = append(g.pids, pid)
	}

	// Processes idle for a window leave the cache; they are resolved
	// again (tens of µs, the build ID cached) when next active.
	ids.Forget(func(pid int) bool { _, ok := slices.BinarySearch(pids, pid); return ok })

	var parts parts
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		labels := withLabels(g.id.Labels, live.Labels)
		t := observation.Target{Kind: observation.TargetService, Service: g.id.Service, Labels: labels}
		parts.add(g.id.Service, g.id.Version, split.SplitService(t, g.pids))
	}
	for _, o := range goObs {
		if o != nil {
			parts.add(o.Meta.Target.Service, o.Meta.Target.Labels[identity.LabelVersion], o)
		}
	}
	for _, o := range pushes {
		service, version := pushed(o, host, live)
		parts.add(service, version, o)
	}
	b := store.Batch{Host: hostRecord(host)}
	for _, k := range parts.keys {
		p := parts.by[k]
		b.Records = append(b.Records, record(p.window(), p.service, p.version, live.Thresholds))
	}
	return b
}

// parts gathers a window's observations by service and version: a
// service's processes, its Go endpoint and what its SDK pushed (or two
// replicas pushing under one name) are one record, as the store keeps
// one per service, version and window.
type parts struct {
	keys []string
	by   map[string]*part
}

type part struct {
	service, version string
	obs              []*observation.Observation
}

func (ps *parts) add(service, version string, o *observation.Observation) {
	if version == "" {
		version = identity.UnknownVersion
	}
	k := service + "\x00" + version
	if ps.by == nil {
		ps.by = map[string]*part{}
	}
	p := ps.by[k]
	if p == nil {
		p = &part{service: service, version: version}
		ps.by[k] = p
		ps.keys = append(ps.keys, k)
	}
	p.obs = append(p.obs, o)
}

// window is the part's one observation: the observations merged, their
// profiles one per kind, source and labels. They cover the same window
// side by side, so its span is theirs together, not the sum of their
// lengths that observation.Merge gives windows one after the other.
func (p *part) window() *observation.Observation {
	if len(p.obs) == 1 && !repeatsProfiles(p.obs[0]) {
		return p.obs[0] // a service's split: merging would copy its profiles for nothing
	}
	m, err := observation.Merge(p.obs)
	if err != nil {
		return p.obs[0] // profiles that cannot merge: keep the first source's
	}
	start, end := p.obs[0].Meta.Start, p.obs[0].Meta.Start.Add(p.obs[0].Meta.Duration)
	for _, o := range p.obs[1:] {
		if o.Meta.Start.Before(start) {
			start = o.Meta.Start
		}
		if e := o.Meta.Start.Add(o.Meta.Duration); e.After(end) {
			end = e
		}
	}
	m.Meta.Start, m.Meta.Duration = start, end.Sub(start)
	m.Meta.Target = p.obs[0].Meta.Target
	return m
}

// hostRecord is the host's part of the window: its own series and
// histograms. Its profiles are left out: they are the services' records,
// merged when the host is asked for. It carries no verdict: judging the
// whole host every window cost as much as every service's verdicts
// together (agentprof) for a judgement nothing reads.
func hostRecord(host *observation.Observation) *store.Record {
	o := *host
	o.Profiles = nil
	o.Series = slices.DeleteFunc(slices.Clone(o.Series), func(s observation.Series) bool {
		return s.Name.In(observation.FamilyHostScan) // the services' records have them
	})
	return &store.Record{Obs: &o}
}

// record judges a service's observation and keeps what the store needs:
// its labels (service_name, version, exe, build_id..., which the API
// lists per version) and its observation. The host's series in it are
// the host record's (the store keeps them once); its profiles are
// compacted by the store.
func record(o *observation.Observation, service, version string, th verdict.Thresholds) store.Record {
	v := verdict.Judge(o, th)
	if version == "" {
		version = identity.UnknownVersion
	}
	return store.Record{Service: service, Version: version, Obs: o, Verdict: summary(v), Labels: o.Meta.Target.Labels}
}

// pushed names what an SDK pushed: the application is the service
// unless its labels name one (service_name), and the version is its
// "version" label, else unknown. Its span is the window that drained it:
// the times a push claims are the client's (a missing one, or one in the
// future, would file it where retention never looks).
func pushed(o *observation.Observation, host *observation.Observation, live Live) (service, version string) {
	labels := withLabels(o.Meta.Target.Labels, live.Labels)
	service = cmp.Or(labels[identity.LabelService], o.Meta.Target.App)
	version = cmp.Or(labels[identity.LabelVersion], identity.UnknownVersion)
	labels[identity.LabelService], labels[identity.LabelVersion] = service, version
	o.Meta.Target = observation.Target{Kind: observation.TargetService, Service: service, Labels: labels}
	o.Meta.Start, o.Meta.Duration = host.Meta.Start, host.Meta.Duration
	return service, version
}

// repeatsProfiles tells whether two of o's profiles are of one kind,
// source and labels: an SDK's pushes of a window.
func repeatsProfiles(o *observation.Observation) bool {
	seen := map[string]bool{}
	for _, p := range o.Profiles {
		k := string(p.Kind) + "\x00" + string(p.Source) + "\x00" + textfmt.Labels(p.Labels)
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

func summary(v *verdict.Verdict) json.RawMessage {
	b, err := json.Marshal(v.Summarize())
	if err != nil {
		panic(err) // a struct of strings and numbers
	}
	return b
}

// withLabels is a copy of labels with the static labels added where they
// do not collide.
func withLabels(labels, static map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range static {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"syscall"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/agent/goscrape"
	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// goService is a configured Go service and its scraper, which keeps the
// last cumulative profiles so that every window gets deltas.
type goService struct {
	cfg     GoService
	scraper *goscrape.Scraper // nil until the service first answers
	pid     int               // the local process behind the URL, 0 until found
}

// checkGoServices refuses a list with a service unnamed or listed twice.
func checkGoServices(services []GoService) error {
	seen := map[string]bool{}
	for _, s := range services {
		if s.URL == "" || s.Service == "" {
			return fmt.Errorf("go service %q: both the URL and the service name are needed", s.URL)
		}
		if seen[s.URL] {
			return fmt.Errorf("go service %s is listed twice", s.URL)
		}
		seen[s.URL] = true
	}
	return nil
}

// syncScrapers makes the scrapers match services (checked): new ones are
// added (a service that does not answer yet is tried again every window),
// removed ones closed, changed ones replaced. d.mu is held.
func (d *Daemon) syncScrapers(services []GoService) {
	want := map[string]GoService{}
	for _, s := range services {
		want[s.URL] = s
	}
	for url, g := range d.scraper {
		if s, ok := want[url]; !ok || !sameService(s, g.cfg) {
			g.close()
			delete(d.scraper, url)
		}
	}
	for url, s := range want {
		if _, ok := d.scraper[url]; !ok {
			d.scraper[url] = &goService{cfg: s}
		}
	}
}

func sameService(a, b GoService) bool {
	return a.URL == b.URL && a.Service == b.Service && a.Version == b.Version && a.RequestsMetric == b.RequestsMetric && maps.Equal(a.Labels, b.Labels)
}

func (d *Daemon) closeScrapers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, g := range d.scraper {
		g.close()
	}
	clear(d.scraper)
}

func (g *goService) close() {
	if g.scraper != nil {
		g.scraper.Close()
	}
}

// window scrapes one window of d. A service that cannot be reached gives
// an observation with nothing but what is missing, so the service list
// shows it and why.
func (g *goService) window(ctx context.Context, d time.Duration, ids *identity.Resolver) *observation.Observation {
	start := time.Now()
	o := &observation.Observation{Meta: observation.Meta{
		Target: observation.Target{Kind: observation.TargetService, Service: g.cfg.Service},
		Start:  start.UTC(),
	}}
	if g.scraper == nil {
		s, err := goscrape.NewScraper(ctx, goscrape.Options{BaseURL: g.cfg.URL, RequestsMetric: g.cfg.RequestsMetric})
		if err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalPprof, Reason: err.Error()})
			// Wait out the window, so that an unreachable service is
			// not probed in a tight loop.
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			o.Meta.Duration = time.Since(start)
			g.label(ctx, o, ids)
			return o
		}
		g.scraper = s
	}
	res, err := g.scraper.Window(ctx, d)
	if res != nil {
		o.Profiles, o.Series, o.Missing = res.Profiles, res.Series, append(o.Missing, res.Missing...)
		o.Meta.Start, o.Meta.Duration = res.Start.UTC(), res.Duration
	}
	if err != nil {
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalPprof, Reason: err.Error()})
	}
	if o.Meta.Duration <= 0 {
		o.Meta.Duration = time.Since(start)
	}
	observeCollector(o)
	g.label(ctx, o, ids)
	return o
}

// label names the service's version: the configured one, else the
// version of the process serving the URL when it runs on this host (the
// identity its eBPF samples get, so that one binary is one version),
// else the build ID its profiles' main mapping carries, else unknown.
func (g *goService) label(ctx context.Context, o *observation.Observation, ids *identity.Resolver) {
	labels := maps.Clone(g.cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	version := cmp.Or(g.cfg.Version, g.localVersion(ctx, ids), mainBuildID(o.Profiles), identity.UnknownVersion)
	labels[identity.LabelService], labels[identity.LabelVersion] = g.cfg.Service, version
	o.Meta.Target.Labels = labels
}

// localVersion is the version of the local process listening on the
// service's port; it is looked for again when the one found is gone (a
// restart, a deploy).
func (g *goService) localVersion(ctx context.Context, ids *identity.Resolver) string {
	if g.pid > 0 {
		// Resolve keeps a gone process's identity: ask the kernel first.
		if alive(g.pid) {
			if id, err := ids.Resolve(g.pid); err == nil {
				return id.Version
			}
		}
		g.pid = 0
	}
	pid, ok := identity.ListenerPID(ctx, g.cfg.URL)
	if !ok {
		return ""
	}
	id, err := ids.Resolve(pid)
	if err != nil {
		return ""
	}
	g.pid = pid
	return id.Version
}

func mainBuildID(profs []observation.Profile) string {
	for _, p := range profs {
		if p.Profile == nil {
			continue
		}
		if m := mainMapping(p.Profile); m != nil && m.BuildID != "" {
			return m.BuildID
		}
	}
	return ""
}

// mainMapping is the profile's main executable: pprof puts it first.
func mainMapping(p *profile.Profile) *profile.Mapping {
	if len(p.Mapping) == 0 {
		return nil
	}
	return p.Mapping[0]
}

func observeCollector(o *observation.Observation) {
	o.Meta.Collectors = map[string]string{string(observation.SourcePprof): "net/http/pprof"}
}

// alive tells whether process pid exists (signal 0 checks, sends nothing).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

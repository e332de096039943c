package daemon

import (
	"context"
	"fmt"
	"maps"
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
	return a.URL == b.URL && a.Service == b.Service && a.Version == b.Version && maps.Equal(a.Labels, b.Labels)
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
func (g *goService) window(ctx context.Context, d time.Duration) *observation.Observation {
	start := time.Now()
	o := &observation.Observation{Meta: observation.Meta{
		Target: observation.Target{Kind: observation.TargetService, Service: g.cfg.Service},
		Start:  start.UTC(),
	}}
	if g.scraper == nil {
		s, err := goscrape.NewScraper(ctx, goscrape.Options{BaseURL: g.cfg.URL})
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
			g.label(o)
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
	g.label(o)
	return o
}

// label names the service's version: the configured one, else the build
// ID of the main executable that its profiles' first mapping carries
// (runtime/pprof reads it from the binary), else unknown.
func (g *goService) label(o *observation.Observation) {
	labels := maps.Clone(g.cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	version := g.cfg.Version
	if version == "" {
		version = mainBuildID(o.Profiles)
	}
	if version == "" {
		version = identity.UnknownVersion
	}
	labels[identity.LabelService], labels[identity.LabelVersion] = g.cfg.Service, version
	o.Meta.Target.Labels = labels
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

package daemon

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/agent/forward/otlp"
	"github.com/perfhound/perfhound/agent/forward/pyroscope"
	"github.com/perfhound/perfhound/agent/forward/relabel"
)

// newSink is the switch of sink types (forward.SinkTypes): each type's
// package makes its Sink from the sink's config.
func newSink(c forward.SinkConfig) (forward.Sink, error) {
	switch c.Type {
	case forward.TypePyroscope:
		return pyroscope.New(c, pyroscope.Options{})
	case forward.TypeOTLP:
		return otlp.FromConfig(c)
	}
	return nil, fmt.Errorf("sink %s: type %q is none of %s", c.Name, c.Type, strings.Join(forward.SinkTypes, ", "))
}

// sinkRelabel is the sink's relabeling step, through which every
// window's labels pass before its sink sees them: its relabel_configs,
// and the caps on series and labels (agent/forward/relabel).
func sinkRelabel(c forward.SinkConfig) (forward.Relabel, error) {
	r, err := relabel.New(c.Relabel)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", c.Name, err)
	}
	return r.Apply, nil
}

// builtSink is a configured sink made, not yet started.
type builtSink struct {
	cfg     forward.SinkConfig
	sink    forward.Sink
	relabel forward.Relabel
}

// buildSinks makes every configured sink (reading its secrets), or
// fails naming the first that cannot be made: nothing is started.
func buildSinks(cfgs []forward.SinkConfig) ([]builtSink, error) {
	var out []builtSink
	seen := map[string]bool{}
	for _, c := range cfgs {
		if c.Name == "" || seen[c.Name] {
			return nil, fmt.Errorf("sink %q: each sink needs a name of its own", c.Name)
		}
		seen[c.Name] = true
		s, err := newSink(c)
		if err != nil {
			return nil, err
		}
		r, err := sinkRelabel(c)
		if err != nil {
			return nil, err
		}
		out = append(out, builtSink{c, s, r})
	}
	return out, nil
}

// applySinks makes the running forwarders those of sinks: a sink already
// running takes its new config from its next window on (its cursor
// stays, so nothing queued is lost), a new one starts from its cursor (a
// sink's name is its cursor), a removed one stops; its cursor stays in
// the store.
func (d *Daemon) applySinks(sinks []builtSink) {
	d.fwdMu.Lock()
	defer d.fwdMu.Unlock()
	if d.fwd == nil {
		d.fwd = map[string]*forward.Forwarder{}
	}
	keep := map[string]bool{}
	for _, b := range sinks {
		keep[b.cfg.Name] = true
		if f := d.fwd[b.cfg.Name]; f != nil {
			f.Reconfigure(b.sink, b.cfg.IngestionWindow, b.relabel)
			continue
		}
		f, err := forward.Start(forward.Options{
			Name: b.cfg.Name, Sink: b.sink, Store: d.store, IngestionWindow: b.cfg.IngestionWindow,
			Relabel: b.relabel, Metrics: d.fwdMetrics, Log: d.log, Host: hostname(),
		})
		if err != nil {
			d.log.Error("sink not started", "sink", b.cfg.Name, "err", err)
			continue
		}
		d.fwd[b.cfg.Name] = f
	}
	for _, name := range slices.Sorted(maps.Keys(d.fwd)) {
		if !keep[name] {
			d.fwd[name].Close()
			d.fwd[name].Forget()
			delete(d.fwd, name)
		}
	}
	d.publishSinks()
}

// publishSinks makes the forwarders' list the window loop notifies
// (d.fwdMu held).
func (d *Daemon) publishSinks() {
	fs := slices.Collect(maps.Values(d.fwd))
	d.fwdList.Store(&fs)
}

// notifySinks tells every forwarder a window was stored; it never
// blocks the window loop.
func (d *Daemon) notifySinks() {
	if fs := d.fwdList.Load(); fs != nil {
		for _, f := range *fs {
			f.Notify()
		}
	}
}

// closeSinks stops every forwarder (Close, before the store closes).
func (d *Daemon) closeSinks() {
	d.fwdMu.Lock()
	defer d.fwdMu.Unlock()
	for name, f := range d.fwd {
		f.Close()
		delete(d.fwd, name)
	}
	d.publishSinks()
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

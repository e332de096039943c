package observation

import (
	"fmt"
	"strings"
	"time"

	"github.com/perfhound/perfhound/internal/textfmt"
)

// TargetKinds lists every target kind.
func TargetKinds() []string {
	return []string{TargetHost, TargetProcess, TargetCommand, TargetURL, TargetApp, TargetService}
}

// IsHost reports whether t is the whole machine: its kind says so, or it
// names no kind and no PID (an observation made before kinds were
// recorded). Every other target, a service's processes included, is
// judged by what is its own, not by the host around it.
func (t Target) IsHost() bool {
	return t.Kind == TargetHost || t.Kind == "" && t.PID == 0
}

// Describe names the target in a few words, as reports, errors and the
// progress line say it: "the host", "process 42", "command 42 (./server
// -p 80)", "command ./server -p 80", a URL, "app shop", "service shop",
// or its kind; "" when nothing is known.
func (t Target) Describe() string {
	switch {
	case t.Kind == TargetHost:
		return "the host"
	case t.Kind == TargetService && t.Service != "":
		return "service " + t.Service
	case t.PID != 0 && len(t.Command) > 0:
		return fmt.Sprintf("%s %d (%s)", t.Kind, t.PID, strings.Join(t.Command, " "))
	case t.PID != 0:
		return fmt.Sprintf("%s %d", t.Kind, t.PID)
	case len(t.Command) > 0:
		return fmt.Sprintf("%s %s", t.Kind, strings.Join(t.Command, " "))
	case t.URL != "":
		return t.URL
	case t.App != "":
		return "app " + t.App
	}
	return t.Kind
}

// Title names what was watched and where, for a page's title or a
// server's start-up line: the command or the URL as given, "process 42 on
// web1", "host web1", "app shop", "service shop on web1".
func (m Meta) Title() string {
	t := m.Target
	switch {
	case t.Kind == TargetCommand && len(t.Command) > 0:
		return strings.Join(t.Command, " ")
	case t.Kind == TargetProcess:
		return fmt.Sprintf("process %d on %s", t.PID, m.Host)
	case t.Kind == TargetURL && t.URL != "":
		return t.URL
	case t.Kind == TargetApp && t.App != "":
		return "app " + t.App
	case t.Kind == TargetHost:
		return "host " + m.Host
	case t.Kind == TargetService && t.Service != "":
		return "service " + t.Service + " on " + m.Host
	}
	return t.Kind + " on " + m.Host
}

// HasTargetData reports whether o holds anything of its target itself: a
// profile, a histogram, or a series with a point that is the target's.
// Every series is a host's target's; for another target the host.* series
// are not (they are the machine around it, perfhound's own work
// included), its process.* and go.* series are. The watcher.* series are
// perfhound's own, never the target's. Without any (a Go
// service whose endpoints all failed, a process whose /proc could not be
// read), there is nothing a verdict on the target could rest on.
func (o *Observation) HasTargetData() bool {
	for _, p := range o.Profiles {
		if p.Profile != nil {
			return true
		}
	}
	for _, h := range o.Histograms {
		if h.Count > 0 {
			return true
		}
	}
	host := o.Meta.Target.IsHost()
	for _, s := range o.Series {
		if len(s.Points) > 0 && !s.Name.In(FamilyWatcher) && (host || !s.Name.In(FamilyHost)) {
			return true
		}
	}
	return false
}

// DescribeSpan says what was watched and for how long from when, as a
// report's header does: "process 42 (./server -p 80) {env=prod}, 10s from
// 2025-01-02 03:04:05 UTC"; "" when nothing is known.
func (t Target) DescribeSpan(start time.Time, d time.Duration) string {
	what := t.Describe()
	if len(t.Labels) > 0 {
		what += " {" + textfmt.Labels(t.Labels) + "}"
	}
	when := textfmt.Span(start, d)
	if what == "" && when == "" {
		return ""
	}
	if what == "" {
		what = "target unknown"
	}
	if when != "" {
		what += ", " + when
	}
	return what
}

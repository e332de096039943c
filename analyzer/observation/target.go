package observation

import (
	"fmt"
	"strings"
	"time"

	"github.com/perfhound/perfhound/internal/textfmt"
)

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
	// An observation that names no kind is a host's when it names no PID.
	host := o.Meta.Target.Kind == TargetHost || o.Meta.Target.Kind == "" && o.Meta.Target.PID == 0
	for _, s := range o.Series {
		if len(s.Points) > 0 && !s.Name.In(FamilyWatcher) && (host || !s.Name.In(FamilyHost)) {
			return true
		}
	}
	return false
}

// Describe says what was watched and for how long from when: "process 42
// (./server -p 80) {env=prod}, 10s from 2025-01-02 03:04:05 UTC", "" when
// nothing is known.
func (t Target) Describe(start time.Time, d time.Duration) string {
	var what string
	switch {
	case t.Kind == "host":
		what = "the host"
	case t.PID != 0 && len(t.Command) > 0:
		what = fmt.Sprintf("%s %d (%s)", t.Kind, t.PID, strings.Join(t.Command, " "))
	case t.PID != 0:
		what = fmt.Sprintf("%s %d", t.Kind, t.PID)
	case len(t.Command) > 0:
		what = fmt.Sprintf("%s %s", t.Kind, strings.Join(t.Command, " "))
	case t.URL != "":
		what = t.URL
	case t.App != "":
		what = "app " + t.App
	case t.Kind != "":
		what = t.Kind
	}
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

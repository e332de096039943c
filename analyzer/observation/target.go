package observation

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

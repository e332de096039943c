package regress

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
	opts Options
}

// New returns a detector with no history.
func New(o Options) *Detector { return &Detector{opts: o} }

// Observe reads one window (a service's windows in time order; services
// interleaved) and returns what it changed.
func (d *Detector) Observe(w Window) []Event {
	// SCAFFOLD: replaced by the implementation (helper A).
	return nil
}

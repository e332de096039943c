package regress

import (
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// WindowOf is what the detector reads of a stored window's observation of
// service and version, judged as s. SCAFFOLD: implemented by helper A.
func WindowOf(o *observation.Observation, service, version string, s verdict.Summary) Window {
	return Window{Service: service, Version: version, Start: o.Meta.Start, Duration: o.Meta.Duration, Verdict: s}
}

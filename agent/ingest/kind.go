package ingest

import (
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// kindOf tells what a pushed profile measures, from its sample types, the
// SDK's sample type config, and the old protocol's ".cpu"-style suffix.
func kindOf(p *profile.Profile, config sampleTypeConfig, name string) observation.ProfileKind {
	has := func(t string) bool {
		for _, st := range p.SampleType {
			if st.Type == t {
				return true
			}
		}
		return false
	}
	display := func(prefix string) bool {
		for _, c := range config {
			if strings.HasPrefix(c.DisplayName, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case has("cpu"):
		return observation.KindCPU
	case has("inuse_space") || has("inuse_objects"):
		return observation.KindHeap
	case has("alloc_space") || has("alloc_objects"):
		return observation.KindAllocs
	case has("goroutine") || has("goroutines"):
		return observation.KindGoroutine
	case display("mutex") || strings.HasSuffix(name, ".mutex_count") || strings.HasSuffix(name, ".mutex_duration"):
		return observation.KindMutex
	case display("block") || strings.HasSuffix(name, ".block_count") || strings.HasSuffix(name, ".block_duration"):
		return observation.KindBlock
	case has("contentions") || has("delay"):
		// Go's mutex and block profiles have the same sample and period
		// types; only the SDK's config or the old name suffix tells them
		// apart, and without either we do not guess.
		return observation.KindContention
	}
	if len(p.SampleType) > 0 {
		return observation.ProfileKind(p.SampleType[len(p.SampleType)-1].Type)
	}
	return "unknown"
}

// kindSuffixes are the ".cpu"-style suffixes the old protocol put on
// application names, with the kind each one names.
var kindSuffixes = map[string]observation.ProfileKind{
	".cpu":           observation.KindCPU,
	".alloc_objects": observation.KindHeap, ".alloc_space": observation.KindHeap,
	".inuse_objects": observation.KindHeap, ".inuse_space": observation.KindHeap,
	".goroutines":  observation.KindGoroutine,
	".mutex_count": observation.KindMutex, ".mutex_duration": observation.KindMutex,
	".block_count": observation.KindBlock, ".block_duration": observation.KindBlock,
}

// trimKindSuffix drops an old-protocol suffix from an application name,
// only when it names the kind the profile has: an application called
// "billing.cpu" pushing heap profiles keeps its name.
func trimKindSuffix(app string, kind observation.ProfileKind) string {
	for suffix, k := range kindSuffixes {
		if t, ok := strings.CutSuffix(app, suffix); ok && t != "" && (k == kind || kind == observation.KindAllocs && k == observation.KindHeap) {
			return t
		}
	}
	return app
}

package verdict

import (
	"strconv"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// meanOf is the mean over the window of the series with the name and
// labels, summed across the series that match (e.g. process.cpu of both
// modes). ok is false when no matching series has a point.
func meanOf(o *observation.Observation, name observation.SeriesName, labels map[string]string) (mean float64, ok bool) {
	for _, s := range o.SeriesNamed(name, labels) {
		if len(s.Points) == 0 {
			continue
		}
		var sum float64
		for _, p := range s.Points {
			sum += p.Value
		}
		mean += sum / float64(len(s.Points))
		ok = true
	}
	return mean, ok
}

// cpuCount is the number of CPUs the target could run on, at least 1.
func cpuCount(o *observation.Observation) float64 {
	if o.Meta.CPUs > 0 {
		return float64(o.Meta.CPUs)
	}
	if n, ok := meanOf(o, observation.HostCPUCount, nil); ok && n >= 1 {
		return n
	}
	return 1
}

// targetPID is the watched process, 0 for a target that is not one
// process (a host, a service's processes, a URL, an app).
func targetPID(o *observation.Observation) int {
	return o.Meta.Target.PID
}

// hostLike reports whether the verdict reads the target's CPU time and
// pressure from the host's series (host.cpu, host.psi) rather than from
// process.* series: a host's, and a URL's or an app's, which have no
// process series of their own (as the verdict has always read them). One
// process (a PID), and a service's processes split out of a host window
// with their process.* series summed, are read from their own.
func hostLike(t observation.Target) bool {
	return t.IsHost() || t.PID == 0 && t.Kind != observation.TargetService
}

// histogramsOf returns the histograms with the name that belong to the
// target: for one process (a PID), those of its pid or of none; all of
// them for a target with no PID: a host's, and a service's, whose split
// (procrank.Host.SplitService) kept only its processes' histograms.
func histogramsOf(o *observation.Observation, name observation.HistogramName) []observation.Histogram {
	pid := targetPID(o)
	var out []observation.Histogram
	for _, h := range o.Histograms {
		if h.Name != name {
			continue
		}
		if pid != 0 && h.Labels["pid"] != "" && h.Labels["pid"] != strconv.Itoa(pid) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// quantile is an upper bound of the q-quantile of log2 histograms merged:
// the top of the slot where the cumulative count reaches q.
func quantile(hs []observation.Histogram, q float64) (float64, bool) {
	var slots []uint64
	var total uint64
	for _, h := range hs {
		for i, c := range h.Slots {
			for len(slots) <= i {
				slots = append(slots, 0)
			}
			slots[i] += c
			total += c
		}
	}
	if total == 0 {
		return 0, false
	}
	var cum uint64
	for i, c := range slots {
		cum += c
		if float64(cum) >= q*float64(total) {
			return float64(uint64(1) << (i + 1)), true
		}
	}
	return float64(uint64(1) << len(slots)), true
}

// watcherCPU is the watcher's own CPU time, perfhound's, in cores over the
// window by mode, from the watcher.cpu series: the host's CPU counters
// include it, and a verdict leaves it out of them. ok is false for an
// observation without the series (made before it was recorded).
func watcherCPU(o *observation.Observation) (user, system float64, ok bool) {
	u, okU := meanOf(o, observation.WatcherCPU, map[string]string{"mode": "user"})
	s, okS := meanOf(o, observation.WatcherCPU, map[string]string{"mode": "system"})
	return u, s, okU || okS
}

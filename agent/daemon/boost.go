package daemon

import (
	"slices"
	"strings"
	"time"
)

// Boost is the sampling rate for a fresh deploy (config
// regressions.boost): while the detector compares a new version of any
// service with the one before and the new one is younger than Duration,
// the host is sampled at Frequency, for at most MaxPerHour in any hour.
type Boost struct {
	Frequency  int
	Duration   time.Duration
	MaxPerHour time.Duration
}

// boosting is the loop's record of the boosted windows, for MaxPerHour.
type boosting struct {
	base  int    // the rate the watcher started at: ebpf.frequency
	spans []span // boosted windows of the last hour, oldest first
	on    bool   // the window in progress is boosted
}

type span struct{ start, end time.Time }

// used is the boosted time in the hour before now.
func (b *boosting) used(now time.Time) time.Duration {
	hour := now.Add(-time.Hour)
	b.spans = slices.DeleteFunc(b.spans, func(s span) bool { return !s.end.After(hour) })
	var d time.Duration
	for _, s := range b.spans {
		from := s.start
		if from.Before(hour) {
			from = hour
		}
		d += s.end.Sub(from)
	}
	return d
}

// boost sets the sampling rate of the next window, after the window from
// start to end was stored and fed to the detector (decide).
func (d *Daemon) boost(start, end time.Time, live Live) {
	if d.boosted.base == 0 {
		if d.boosted.base = d.watcher.Frequency(); d.boosted.base == 0 {
			return // no eBPF on-CPU sampling: nothing to boost
		}
	}
	var deploying func(time.Duration) []string
	if det, ok := d.det.det.(interface{ Deploying(time.Duration) []string }); ok && live.Regressions.Enabled {
		deploying = det.Deploying
	}
	was := d.boosted.on
	want, services := d.boosted.decide(start, end, live.Window, live.Regressions.Boost, deploying)
	if d.boosted.on == was {
		return
	}
	if err := d.watcher.SetFrequency(want); err != nil {
		d.log.Warn("sampling rate not changed", "hz", want, "err", err)
		d.boosted.on = was
		return
	}
	if d.boosted.on {
		d.log.Info("sampling faster for a deploy", "hz", want, "services", strings.Join(services, ","))
	} else {
		d.log.Info("sampling back at the base rate", "hz", want, "boosted_last_hour", d.boosted.used(end).Round(time.Second))
	}
}

// decide is the rate of the window after the one from start to end: the
// boost's while deploying (the detector's Deploying; nil: detection is
// off) names a service and the hour's boosted time leaves room for one
// more window of the given length, the base rate otherwise. It records
// the window that ended, and whether the next is boosted (b.on).
func (b *boosting) decide(start, end time.Time, window time.Duration, cfg Boost, deploying func(time.Duration) []string) (hz int, services []string) {
	if b.on {
		b.spans = append(b.spans, span{start, end})
	}
	hz = b.base
	if deploying != nil && cfg.Frequency > b.base && b.used(end)+window <= cfg.MaxPerHour {
		if services = deploying(cfg.Duration); len(services) > 0 {
			hz = cfg.Frequency
		}
	}
	b.on = hz != b.base
	return hz, services
}

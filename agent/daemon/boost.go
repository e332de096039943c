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

// boosting is the loop's record of the sampling rate. A rate asked for
// after window k is stored begins with window k+2: the watcher's read of
// window k+1's end switches it (bpf.Session.SetFrequency).
type boosting struct {
	base  int    // the rate the watcher started at: ebpf.frequency
	asked int    // the rate last asked for (base until a boost)
	next  int    // the rate of the window in progress, as the watcher said after the last window
	spans []span // boosted windows of the last hour, oldest first
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

// boost asks for the sampling rate of the windows to come, after the
// window from start to end was stored and fed to the detector (decide).
func (d *Daemon) boost(start, end time.Time, live Live) {
	b := &d.boosted
	if b.base == 0 {
		if b.base = d.watcher.Frequency(); b.base == 0 {
			return // no eBPF on-CPU sampling: nothing to boost
		}
		b.asked, b.next = b.base, b.base
	}
	ended, now := b.next, d.watcher.Frequency() // the rates of the window stored and of the one in progress
	b.next = now
	if now != b.asked && ended == b.asked {
		// Asked for after the window before: the read that ended this
		// one should have switched to it.
		d.log.Warn("sampling rate not changed", "hz", now, "asked", b.asked)
		b.asked = now
	}
	var deploying func(time.Time, time.Duration) []string
	if det, ok := d.det.det.(interface {
		Deploying(time.Time, time.Duration) []string
	}); ok && live.Regressions.Enabled {
		deploying = det.Deploying
	}
	want, services := b.decide(start, end, ended, live.Window, live.Regressions.Boost, deploying)
	if want == b.asked {
		return
	}
	if err := d.watcher.SetFrequency(want); err != nil {
		d.log.Warn("sampling rate not changed", "hz", want, "err", err)
		return
	}
	b.asked = want
	if want != b.base {
		d.log.Info("sampling faster for a deploy", "hz", want, "services", strings.Join(services, ","))
	} else {
		d.log.Info("sampling back at the base rate", "hz", want, "boosted_last_hour", b.used(end).Round(time.Second))
	}
}

// decide is the rate to ask for after the window from start to end,
// which was sampled at endedHz: the boost's while deploying (the
// detector's Deploying; nil: detection is off) names a service and the
// hour's boosted time leaves room for two more windows of the given
// length (the one in progress, at the rate asked for before, and the one
// this asks for), the base rate otherwise.
func (b *boosting) decide(start, end time.Time, endedHz int, window time.Duration, cfg Boost, deploying func(time.Time, time.Duration) []string) (hz int, services []string) {
	if endedHz > b.base {
		b.spans = append(b.spans, span{start, end})
	}
	hz = b.base
	inProgress := time.Duration(0)
	if b.next > b.base {
		inProgress = window
	}
	if deploying != nil && cfg.Frequency > b.base && b.used(end)+inProgress+window <= cfg.MaxPerHour {
		if services = deploying(end, cfg.Duration); len(services) > 0 {
			hz = cfg.Frequency
		}
	}
	return hz, services
}

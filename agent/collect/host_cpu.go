package collect

import (
	"context"
	"fmt"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.cpu: CPU time by mode, for the whole host and for each online CPU,
// from /proc/stat through gopsutil's cpu.ExLinux, which returns the raw
// tick counters and, unlike cpu.Times, reports a file it cannot parse
// instead of skipping it.
//
// Series (all CPU-seconds per second, "cores"):
//
//	host.cpu{cpu="all"|"0"|"1"|..., mode="user"|"nice"|"system"|"idle"|"iowait"|"irq"|"softirq"|"steal"|"guest"|"guest_nice"}
//	host.cpu.count   online CPUs (per-CPU lines in /proc/stat), a gauge
//
// As in the kernel, user includes guest and nice includes guest_nice.
// iowait is idle time with I/O outstanding and may go backwards on some
// kernels; the Recorder then drops that interval's point.

func init() { Register(observation.SignalHostCPU, newHostCPU) }

type hostCPU struct {
	env Env
	ex  *cpu.ExLinux
}

func newHostCPU(env Env, _ Target) (Sampler, error) {
	return &hostCPU{env: env.withDefaults(), ex: cpu.NewExLinux()}, nil
}

func (*hostCPU) Name() observation.Signal { return observation.SignalHostCPU }

func (s *hostCPU) Sample(ctx context.Context, rec *Recorder) error {
	path := s.env.proc("stat")
	gctx := s.env.gopsutil(ctx)
	all, err := s.ex.TimesWithContext(gctx, false)
	if err != nil {
		return fileError(path, err)
	}
	if len(all) != 1 {
		return fmt.Errorf("%s: no \"cpu\" line", path)
	}
	per, err := s.ex.TimesWithContext(gctx, true)
	if err != nil {
		return fileError(path, err)
	}
	if len(per) == 0 {
		return fmt.Errorf("%s: no per-CPU lines", path)
	}
	recordCPUTimes(rec, "all", all[0])
	for _, t := range per {
		recordCPUTimes(rec, strings.TrimPrefix(t.CPU, "cpu"), t)
	}
	rec.Gauge(observation.HostCPUCount, nil, float64(len(per)))
	return nil
}

func recordCPUTimes(rec *Recorder, cpuLabel string, t cpu.ExTimesStat) {
	for _, m := range []struct {
		mode  string
		ticks uint64
	}{
		{"user", t.User}, {"nice", t.Nice}, {"system", t.System}, {"idle", t.Idle},
		{"iowait", t.Iowait}, {"irq", t.Irq}, {"softirq", t.Softirq}, {"steal", t.Steal},
		{"guest", t.Guest}, {"guest_nice", t.GuestNice},
	} {
		rec.Counter(observation.HostCPU, map[string]string{"cpu": cpuLabel, "mode": m.mode}, float64(m.ticks)/cpu.ClocksPerSec)
	}
}

package collect

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.memory: memory in use from /proc/meminfo (through gopsutil's
// mem.VirtualMemory) and paging activity from /proc/vmstat.
//
// Gauges, "bytes":
//
//	host.memory.total, .available, .free, .buffers, .dirty, .writeback
//	host.memory.cached       the page cache: meminfo Cached (gopsutil adds SReclaimable; it is taken off again)
//	host.memory.swap_total, host.memory.swap_used   SwapTotal, SwapTotal-SwapFree
//
// Rates from /proc/vmstat, "count/s" (pages or events per second):
//
//	host.memory.pgfault, host.memory.pgmajfault   page faults; major ones needed I/O
//	host.memory.pswpin, host.memory.pswpout       pages swapped in and out
//	host.memory.pgscan{reclaimer="kswapd"|"direct"|"khugepaged"|"proactive"}   pages scanned for reclaim
//	host.memory.pgsteal{reclaimer=...}            pages reclaimed
//	host.memory.oom_kill                          OOM kills
//
// /proc/vmstat is read here: gopsutil reads it only inside
// mem.SwapMemory, which takes swap sizes from sysinfo(2) (the real host,
// whatever the tree) and keeps none of the reclaim counters. A required
// counter the kernel does not have (oom_kill before 4.13) is recorded as
// missing; the khugepaged and proactive reclaimers are recorded when the
// kernel counts them (recent kernels).

func init() { Register(observation.SignalHostMemory, newHostMemory) }

type hostMemory struct{ env Env }

func newHostMemory(env Env, _ Target) (Sampler, error) {
	return &hostMemory{env: env.withDefaults()}, nil
}

func (*hostMemory) Name() observation.Signal { return observation.SignalHostMemory }

// vmstatCounters maps /proc/vmstat names to series; required ones are
// recorded as missing when absent, the others (newer reclaimers) skipped.
var vmstatCounters = []struct {
	key       string
	series    observation.SeriesName
	reclaimer string
	required  bool
}{
	{"pgfault", observation.HostPageFaults, "", true},
	{"pgmajfault", observation.HostMajorFaults, "", true},
	{"pswpin", observation.HostSwapIn, "", true},
	{"pswpout", observation.HostSwapOut, "", true},
	{"pgscan_kswapd", observation.HostReclaimScan, "kswapd", true},
	{"pgscan_direct", observation.HostReclaimScan, "direct", true},
	{"pgscan_khugepaged", observation.HostReclaimScan, "khugepaged", false},
	{"pgscan_proactive", observation.HostReclaimScan, "proactive", false},
	{"pgsteal_kswapd", observation.HostReclaimSteal, "kswapd", true},
	{"pgsteal_direct", observation.HostReclaimSteal, "direct", true},
	{"pgsteal_khugepaged", observation.HostReclaimSteal, "khugepaged", false},
	{"pgsteal_proactive", observation.HostReclaimSteal, "proactive", false},
	{"oom_kill", observation.HostOOMKills, "", true},
}

var vmstatWanted = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range vmstatCounters {
		m[c.key] = true
	}
	return m
}()

func (s *hostMemory) Sample(ctx context.Context, rec *Recorder) error {
	path := s.env.proc("meminfo")
	vm, err := mem.VirtualMemoryWithContext(s.env.gopsutil(ctx))
	if err != nil {
		return fileError(path, err)
	}
	if vm.Total == 0 {
		return fmt.Errorf("%s: no MemTotal", path)
	}
	cached := vm.Cached
	if cached >= vm.Sreclaimable {
		cached -= vm.Sreclaimable
	}
	for _, g := range []struct {
		name observation.SeriesName
		v    uint64
	}{
		{observation.HostMemTotal, vm.Total},
		{observation.HostMemAvailable, vm.Available},
		{observation.HostMemFree, vm.Free},
		{observation.HostMemCached, cached},
		{observation.HostMemBuffers, vm.Buffers},
		{observation.HostMemDirty, vm.Dirty},
		{observation.HostMemWriteback, vm.WriteBack},
		{observation.HostSwapTotal, vm.SwapTotal},
		{observation.HostSwapUsed, vm.SwapTotal - min(vm.SwapFree, vm.SwapTotal)},
	} {
		rec.Gauge(g.name, nil, float64(g.v))
	}

	path = s.env.proc("vmstat")
	b, err := readFile(path)
	if err != nil {
		return err
	}
	vals, err := parseFlatKeyed(path, b, vmstatWanted)
	if err != nil {
		return err
	}
	for _, c := range vmstatCounters {
		v, ok := vals[c.key]
		if !ok {
			if c.required {
				signal := observation.Signal(c.series)
				if c.reclaimer != "" {
					signal = signal.Sub(c.reclaimer)
				}
				rec.Missing(signal, fmt.Sprintf("no %s in %s", c.key, path))
			}
			continue
		}
		var labels map[string]string
		if c.reclaimer != "" {
			labels = map[string]string{"reclaimer": c.reclaimer}
		}
		rec.Counter(c.series, labels, float64(v))
	}
	return nil
}

package collect

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"
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

func init() { Register("host.memory", newHostMemory) }

type hostMemory struct{ env Env }

func newHostMemory(env Env, _ Target) (Sampler, error) {
	return &hostMemory{env: env.withDefaults()}, nil
}

func (*hostMemory) Name() string { return "host.memory" }

// vmstatCounters maps /proc/vmstat names to series; required ones are
// recorded as missing when absent, the others (newer reclaimers) skipped.
var vmstatCounters = []struct {
	key, series, reclaimer string
	required               bool
}{
	{"pgfault", "host.memory.pgfault", "", true},
	{"pgmajfault", "host.memory.pgmajfault", "", true},
	{"pswpin", "host.memory.pswpin", "", true},
	{"pswpout", "host.memory.pswpout", "", true},
	{"pgscan_kswapd", "host.memory.pgscan", "kswapd", true},
	{"pgscan_direct", "host.memory.pgscan", "direct", true},
	{"pgscan_khugepaged", "host.memory.pgscan", "khugepaged", false},
	{"pgscan_proactive", "host.memory.pgscan", "proactive", false},
	{"pgsteal_kswapd", "host.memory.pgsteal", "kswapd", true},
	{"pgsteal_direct", "host.memory.pgsteal", "direct", true},
	{"pgsteal_khugepaged", "host.memory.pgsteal", "khugepaged", false},
	{"pgsteal_proactive", "host.memory.pgsteal", "proactive", false},
	{"oom_kill", "host.memory.oom_kill", "", true},
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
		name string
		v    uint64
	}{
		{"host.memory.total", vm.Total},
		{"host.memory.available", vm.Available},
		{"host.memory.free", vm.Free},
		{"host.memory.cached", cached},
		{"host.memory.buffers", vm.Buffers},
		{"host.memory.dirty", vm.Dirty},
		{"host.memory.writeback", vm.WriteBack},
		{"host.memory.swap_total", vm.SwapTotal},
		{"host.memory.swap_used", vm.SwapTotal - min(vm.SwapFree, vm.SwapTotal)},
	} {
		rec.Gauge(g.name, "bytes", nil, float64(g.v))
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
				signal := c.series
				if c.reclaimer != "" {
					signal += "." + c.reclaimer
				}
				rec.Missing(signal, fmt.Sprintf("no %s in %s", c.key, path))
			}
			continue
		}
		var labels map[string]string
		if c.reclaimer != "" {
			labels = map[string]string{"reclaimer": c.reclaimer}
		}
		rec.Counter(c.series, "count/s", labels, float64(v))
	}
	return nil
}
